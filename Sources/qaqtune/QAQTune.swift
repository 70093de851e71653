import ArgumentParser
import Foundation
import QAQ
import QAQTuning

/// `qaqtune`: profiles this host for QAQ's kernels and writes `profiles/<fingerprint>.json`.
///
/// Implemented so far: the `estimate` effort (no kernel timing: plans derived from the
/// topology, with the read roofs measured at every memory level). The timed efforts
/// (`measure`, `patient`) need the planner, which is not built yet; they are refused with a
/// clear message rather than faked.
@main
struct QAQTune: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qaqtune",
        abstract: "Profile this host for QAQ's kernels and write profiles/<fingerprint>.json.",
        subcommands: [Tune.self, Show.self, Check.self],
        defaultSubcommand: Tune.self)
}

/// The standard problem set: the reference model's shape and the attention issue's shapes.
let standardProblems: [Problem] = {
    var problems: [Problem] = []
    for (d, h, g) in [(64, 3, 3), (128, 8, 4), (64, 8, 1), (128, 8, 8)] {
        for context in [1024, 4096, 16384, 65536] {
            problems.append(Problem(headDim: d, kvHeads: h, gqa: g, contextBucket: context, threads: ProcessInfo.processInfo.activeProcessorCount))
        }
    }
    return problems
}()

struct Tune: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tune", abstract: "Profile this host (the default command).")

    @Option(help: "estimate (topology-derived, no kernel timing). measure and patient need the planner, not built yet.")
    var effort: String = "estimate"
    @Option(help: "Output path (default: profiles/<fingerprint>.json).") var output: String?
    @Option(help: "Threads the profile may use (default: all usable).") var threads: Int?
    @Flag(help: "Skip the read-roof measurement (faster; the profile then holds no roofs).") var noRoofs = false

    func validate() throws {
        guard let e = Effort(rawValue: effort) else { throw ValidationError("--effort must be estimate, measure or patient") }
        if e != .estimate {
            throw ValidationError("--effort \(effort) needs the planner that times kernel variants, which is not implemented yet; use --effort estimate")
        }
        if let threads, threads < 1 { throw ValidationError("--threads must be positive") }
    }

    func run() throws {
        let isa: ISALevel
        do { isa = try ISALevel.selected() } catch { throw ValidationError("\(error)") }
        let topology = Topology.current
        let progress = isatty(1) != 0
        print(topology.summary)
        var roofs: [RoofRecord] = []
        if !noRoofs {
            if progress { print("measuring read roofs (1 thread)…") }
            roofs = RoofProbe.measure(topology: topology, kernels: .forLevel(isa))
        }
        var problems = standardProblems
        if let threads { problems = problems.map { var p = $0; p.threads = threads; return p } }
        let profile = Estimate.profile(for: problems, topology: topology, roofs: roofs)
        let path = output ?? QAQRuntime.defaultProfilePath()
        do { try profile.write(to: path) } catch { throw ValidationError("\(error)") }
        print("wrote \(path) (effort estimate, \(profile.plans.count) plans, \(roofs.count) roofs)")
        for r in roofs {
            print(String(format: "  read roof %-5@ %9d KiB: %6.1f GB/s", r.level.rawValue, r.bytes >> 10, r.gbps))
        }
        for plan in profile.plans.prefix(8) {
            let p = plan.problem, v = plan.chosen.variant
            print("  D=\(p.headDim) H=\(p.kvHeads) GQA=\(p.gqa) ctx=\(p.contextBucket) → \(v.isa) page \(v.pageTokens) G=\(v.groupSize) threads \(v.threads) split \(v.split.rawValue)")
        }
        if profile.plans.count > 8 { print("  … \(profile.plans.count - 8) more") }
    }
}

struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a profile.")
    @Argument(help: "Profile path.") var path: String

    func run() throws {
        let profile: Profile
        do { profile = try Profile.load(from: path) } catch { throw ValidationError("\(error)") }
        print(String(decoding: try profile.encoded(), as: UTF8.self))
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Exit 0 if a profile is usable on this host, non-zero with the reason otherwise.")
    @Argument(help: "Profile path.") var path: String

    func run() throws {
        let runtime: QAQRuntime
        do { runtime = try QAQRuntime(profile: path) } catch {
            FileHandle.standardError.write(Data("qaqtune check: \(error)\n".utf8))
            throw ExitCode(2)
        }
        if let warning = runtime.warning {
            FileHandle.standardError.write(Data("qaqtune check: not usable on this host: \(warning)\n".utf8))
            throw ExitCode(1)
        }
        if let note = runtime.note { print("usable, with a note: \(note)") } else { print("usable: exact host match") }
    }
}

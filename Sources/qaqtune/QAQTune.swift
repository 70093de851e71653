import ArgumentParser
import Foundation
import QAQ
import QAQTuning

/// `qaqtune`: profiles this host for QAQ's kernels and writes `profiles/<fingerprint>.json`.
///
/// Efforts: `estimate` (no kernel timing: plans derived from the topology), `measure` (the
/// default: coordinate descent over the measure catalogue with robust timing, ≤ 60 s here) and
/// `patient` (wider catalogue, more samples, minutes). Timed profiles hold, per problem, the
/// winner, the runners-up and the estimate-level default's measured speed.
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

    @Option(help: "estimate (topology-derived, no timing), measure (default: timed coordinate descent, ≤ 60 s) or patient (wider search, minutes).")
    var effort: String = "measure"
    @Option(help: "Output path (default: profiles/<fingerprint>.json).") var output: String?
    @Option(help: "Threads the profile may use (default: all usable).") var threads: Int?
    @Option(help: "Seconds for the timed search of all problems (default: 40 for measure, 600 for patient).") var budget: Double?
    @Option(name: .customLong("quality-budget"), help: "Largest mean relative attention error a group size may have on the synthetic generator (default \(QualityGate.defaultBudget)).")
    var qualityBudget: Double = QualityGate.defaultBudget
    @Flag(help: "Skip the read-roof measurement (faster; the profile then holds no roofs).") var noRoofs = false

    func validate() throws {
        guard Effort(rawValue: effort) != nil else { throw ValidationError("--effort must be estimate, measure or patient") }
        if let threads, threads < 1 { throw ValidationError("--threads must be positive") }
        if let budget, !(budget >= 0 && budget.isFinite) { throw ValidationError("--budget must be a number of seconds ≥ 0") }
        guard qualityBudget > 0, qualityBudget.isFinite else { throw ValidationError("--quality-budget must be positive") }
    }

    func run() throws {
        let t0 = monotonicSeconds()
        let effort = Effort(rawValue: self.effort)!
        let isa: ISALevel
        do { isa = try ISALevel.selected() } catch { throw ValidationError("\(error)") }
        let topology = Topology.current
        let tty = isatty(1) != 0
        print(topology.summary)
        var roofs: [RoofRecord] = []
        if !noRoofs {
            if tty { print("measuring read roofs (1 thread)…") }
            roofs = effort == .estimate
                ? RoofProbe.measure(topology: topology, kernels: .forLevel(isa))
                : RoofProbe.measure(topology: topology, kernels: .forLevel(isa), repetitions: 3, minSeconds: 0.02)
        }
        var problems = standardProblems
        if let threads { problems = problems.map { var p = $0; p.threads = threads; return p } }
        let path = output ?? QAQRuntime.defaultProfilePath()

        let profile: Profile
        if effort == .estimate {
            profile = Estimate.profile(for: problems, topology: topology, roofs: roofs)
        } else {
            var settings = PlannerSettings.forEffort(effort)
            if let budget { settings.budgetSeconds = budget }
            let guardian = ForeignCPUGuard(cpuCount: topology.usablePUs)
            let timer = AttentionTimer(topology: topology, timer: RobustTimer(settings: settings.timing, guardian: guardian))
            let planner = Planner(topology: topology, settings: settings, quality: .synthetic(budget: qualityBudget, kernels: .forLevel(isa)))
            let display = ProgressDisplay(tty: tty)
            print("planning \(problems.count) problems (effort \(effort.rawValue), search budget \(Int(settings.budgetSeconds)) s, quality budget \(qualityBudget))")
            let plans = planner.plan(problems, timer: timer) { display.show($0) }
            display.done()
            profile = Profile(effort: effort, host: HostFingerprint(topology), roofs: roofs, plans: plans,
                              qualityBudget: qualityBudget, measureSeconds: monotonicSeconds() - t0)
            print(String(format: "cache fills took %.1f s", timer.fillSeconds))
        }
        do { try profile.write(to: path) } catch { throw ValidationError("\(error)") }
        print("wrote \(path) (effort \(effort.rawValue), \(profile.plans.count) plans, \(roofs.count) roofs) in \(String(format: "%.1f", monotonicSeconds() - t0)) s")
        for r in roofs {
            print(String(format: "  read roof %-5@ %9d KiB: %6.1f GB/s", r.level.rawValue, r.bytes >> 10, r.gbps))
        }
        print(summaryTable(profile))
    }
}

/// problem → chosen variant (`… int8` when its scores take int8 dot products), speed, speed-up
/// over the estimate-level default; geometric mean.
func summaryTable(_ profile: Profile) -> String {
    var lines: [String] = []
    let timed = profile.effort != .estimate
    lines.append(timed
        ? "problem                      chosen variant                              ns/tok·head    GB/s   default ns  speed-up"
        : "problem                      estimate-level variant")
    var logSum = 0.0, n = 0
    for plan in profile.plans {
        let p = plan.problem
        let name = "D=\(p.headDim) H=\(p.kvHeads) GQA=\(p.gqa) ctx=\(p.contextBucket)"
        let v = plan.chosen.variant.shortDescription
        guard timed else {
            lines.append(name.padding(toLength: 29, withPad: " ", startingAt: 0) + v)
            continue
        }
        let ns = plan.chosen.nsPerTokenKVHead.map { String(format: "%11.2f", $0) } ?? "          —"
        let gb = plan.chosen.gbps.map { String(format: "%7.2f", $0) } ?? "      —"
        let dns = plan.estimateDefault?.nsPerTokenKVHead.map { String(format: "%12.2f", $0) } ?? "           —"
        let sp = plan.speedup.map { String(format: "%8.2f×", $0) } ?? "        —"
        let noisy = (plan.chosen.noisy == true || plan.estimateDefault?.noisy == true) ? "  (noisy)" : ""
        lines.append(name.padding(toLength: 29, withPad: " ", startingAt: 0) + v.padding(toLength: 42, withPad: " ", startingAt: 0)
                     + ns + gb + dns + sp + noisy)
        if let s = plan.speedup, s > 0 { logSum += log(s); n += 1 }
    }
    if n > 0 { lines.append(String(format: "geometric mean speed-up over the estimate-level defaults: %.3f× (%d problems)", exp(logSum / Double(n)), n)) }
    return lines.joined(separator: "\n")
}

/// Live progress: one rewritten line on a terminal, plain lines (one per finished problem) otherwise.
final class ProgressDisplay {
    let tty: Bool
    private var lastLength = 0
    init(tty: Bool) { self.tty = tty }

    func show(_ e: PlannerEvent) {
        let p = e.problem
        let name = "[\(e.index)/\(e.count)] D=\(p.headDim) H=\(p.kvHeads) GQA=\(p.gqa) ctx=\(p.contextBucket)"
        switch e.kind {
        case .started:
            if tty { rewrite("\(name): filling caches…") }
        case .timed:
            if tty {
                let v = e.variant.map { m in "\(m.variant.shortDescription) \(m.nsPerTokenKVHead.map { String(format: "%.2f ns", $0) } ?? "—")" } ?? "failed"
                rewrite("\(name): \(e.evaluations) timed, last \(v)")
            }
        case .finished:
            let chosen = e.record?.chosen
            let sp = e.record?.speedup.map { String(format: "%.2f×", $0) } ?? "—"
            let line = "\(name): \(chosen?.variant.shortDescription ?? "?") \(chosen?.nsPerTokenKVHead.map { String(format: "%.2f ns/token·KV-head", $0) } ?? ""), \(sp) vs estimate, \(e.evaluations) variants timed"
            if tty { rewrite(line + "\n"); lastLength = 0 } else { print(line) }
        }
    }

    func done() { if tty && lastLength > 0 { FileHandle.standardOutput.write(Data("\n".utf8)) } }

    private func rewrite(_ s: String) {
        let cut = s.count > 150 ? String(s.prefix(150)) : s
        FileHandle.standardOutput.write(Data(("\r\u{1B}[K" + cut).utf8))
        lastLength = cut.count
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

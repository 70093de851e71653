import ArgumentParser
import Foundation
import QAQ

/// `qaqtune`: measures this host for the kernels. For now it reports the CPU, the ISA level
/// the kernels will use and the measured read roofs; the planner that times kernel variants
/// and writes `profiles/<fingerprint>.json` is not built yet (see the README's status).
@main
struct QAQTune: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qaqtune",
        abstract: "Measure this host for QAQ's kernels (CPU, ISA level, read roofs).",
        discussion: "The planner and per-machine profiles are not implemented yet: this prints measurements only and writes no file.")

    @Flag(help: "Print JSON.") var json = false

    struct Report: Encodable {
        var cpuModel: String
        var features: [String]
        var isaCompiled: [ISALevel]
        var isaSelected: ISALevel
        var readRoofs: [ReadRoof]
        var profileWritten: Bool
    }

    func run() throws {
        let isa: ISALevel
        do { isa = try ISALevel.selected() } catch { throw ValidationError("\(error)") }
        let kernels = KernelSet.forLevel(isa)
        let roofs = [32 << 10, 1 << 20, 256 << 20].map { ReadRoof.measure(bytes: $0, repetitions: 5, minSeconds: 0.05, kernels: kernels) }
        let report = Report(cpuModel: ISALevel.cpuModel, features: ISALevel.featureNames, isaCompiled: ISALevel.compiled,
                            isaSelected: isa, readRoofs: roofs, profileWritten: false)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
            return
        }
        print("qaqtune (QAQ \(QAQ.version))")
        print("CPU:      \(report.cpuModel.isEmpty ? "unknown" : report.cpuModel)")
        print("features: \(report.features.joined(separator: " "))")
        print("ISA:      \(isa) (compiled: \(ISALevel.compiled.map(\.rawValue).joined(separator: ", ")); QAQ_ISA overrides)")
        for r in roofs {
            print(String(format: "read roof, 1 thread, %9d KiB: %6.1f GB/s (median %6.1f)", r.bytes >> 10, r.gbps, r.medianGBps))
        }
        print("profile:  not written — the planner is not implemented yet")
    }
}

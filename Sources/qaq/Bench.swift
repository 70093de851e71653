import ArgumentParser
import Foundation
import QAQ

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure kernels on this machine (1 thread), each beside the read roof measured in the same run.",
        subcommands: [Quantize.self, Dot.self, Roof.self, Quality.self])
}

struct KernelOptions: ParsableArguments {
    @Option(help: "Bits per code: 1, 2, 3, 4 or 8.") var bits: Int = 4
    @Option(help: "Group size G (a multiple of 16 dividing D).") var group: Int = 32
    @Option(name: .customLong("head-dim"), help: "Head dimension D.") var dim: Int = 128
    @Option(help: "Exact outliers per vector.") var outliers: Int = 0
    @Option(help: "Vectors per pass.") var vectors: Int = 32768
    @Option(help: "ISA level (base, v3, v4); default: QAQ_ISA or the CPU's best.") var isa: String?
    @Option(help: "Timed repetitions (median reported).") var repetitions: Int = 9
    @Flag(help: "Also time the scalar reference (on a subset) and report the speed-up.") var reference = false
    @Flag(help: "Print one JSON object.") var json = false

    func layout() throws -> PackedLayout {
        do { return try PackedLayout(dim: dim, groupSize: group, bits: bits, outlierCount: outliers) } catch {
            throw ValidationError("\(error)")
        }
    }

    func kernels() throws -> KernelSet {
        guard let isa else { return KernelSet.forLevel(try selectedISA()) }
        do {
            return KernelSet.forLevel(try ISALevel.selected(environment: ["QAQ_ISA": isa]))
        } catch {
            throw ValidationError("\(error)")
        }
    }

    func validate() throws {
        guard vectors > 0, repetitions > 0 else { throw ValidationError("--vectors and --repetitions must be positive") }
    }
}

func describe(_ r: KernelBench.Result) -> String {
    var s = String(format: "%@ %@ D=%d G=%d b=%d k=%d: %.3f Gvalues/s, %.2f GB/s input, roof %.1f GB/s (%.0f%%), %d B/vector (%.3f bits/elem), median %.3f ms over %d vectors, 1 thread",
                   r.kernel, r.isa.rawValue, r.dim, r.groupSize, r.bits, r.outliers, r.gvaluesPerSecond, r.inputGBps,
                   r.roofGBps, 100 * r.fractionOfRoof, r.recordBytes, r.bitsPerElement, r.seconds * 1e3, r.vectors)
    if let x = r.speedupVsReference { s += String(format: ", %.1f× the scalar reference", x) }
    return s
}

extension Bench {
    struct Quantize: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Quantize fp32 rows into packed vectors.")
        @OptionGroup var options: KernelOptions

        func run() throws {
            let r = KernelBench.quantize(layout: try options.layout(), vectors: options.vectors, kernels: try options.kernels(),
                                         repetitions: options.repetitions, withReference: options.reference)
            try emit(r, json: options.json) { describe(r) }
        }
    }

    struct Dot: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Dot an fp32 query with packed vectors.")
        @OptionGroup var options: KernelOptions

        func run() throws {
            let r = KernelBench.dot(layout: try options.layout(), vectors: options.vectors, kernels: try options.kernels(),
                                    repetitions: options.repetitions, withReference: options.reference)
            try emit(r, json: options.json) { describe(r) }
        }
    }

    struct Roof: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "STREAM-like read probe (1 thread).")
        @Option(help: "Working-set sizes in KiB.") var sizes: [Int] = [32, 256, 2048, 16384, 262144]
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let kernels = KernelSet.forLevel(try selectedISA())
            let roofs = sizes.map { ReadRoof.measure(bytes: $0 << 10, repetitions: 5, minSeconds: 0.05, kernels: kernels) }
            try emit(roofs, json: json) {
                roofs.map { String(format: "%9d KiB: best %.1f GB/s, median %.1f GB/s (%@)", $0.bytes >> 10, $0.gbps, $0.medianGBps, $0.isa.rawValue) }
                    .joined(separator: "\n")
            }
        }
    }
}

extension Bench {
    struct Quality: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Attention-output error and exact bits per element of cache policies on synthetic K/V/q (streaming decode).",
            discussion: "Policies: fp32, fp16, q8_0, q4_0, uniform:B[:G], kivi:B[:G[:R]], qaq[:sigmaS=…:sigmaX=…:keys=token|channel|rotated:…]. Default: a standard set at 2, 3, 4 and 8 bits.")
        @Option(name: .customLong("policy"), help: "A policy (repeatable).") var policies: [String] = []
        @Option(help: "Tokens (decode steps).") var tokens: Int = 512
        @Option(name: .customLong("head-dim"), help: "Head dimension D.") var dim: Int = 64
        @Option(name: .customLong("kv-heads"), help: "KV heads.") var kvHeads: Int = 2
        @Option(help: "Query heads per KV head.") var gqa: Int = 3
        @Option(help: "Data seed.") var seed: UInt64 = 1
        @Flag(help: "Print one JSON object per policy (JSON lines).") var json = false

        static let standard = [
            "fp32", "fp16", "q8_0", "q4_0",
            "uniform:8:32", "uniform:4:32", "uniform:3:32", "uniform:2:32",
            "kivi:8", "kivi:4", "kivi:2",
            "qaq:sigmaS=0.005:sigmaX=0.01", "qaq:sigmaS=0.02:sigmaX=0.05", "qaq:sigmaS=0.05:sigmaX=0.2",
            "qaq:keys=channel:sigmaS=0.02:sigmaX=0.05", "qaq:keys=rotated:sigmaS=0.02:sigmaX=0.05",
        ]

        func run() throws {
            let data = SyntheticKV(tokens: tokens, kvHeads: kvHeads, queryHeadsPerKVHead: gqa, dim: dim, seed: seed)
            let kernels = KernelSet.forLevel(try selectedISA())
            for spec in policies.isEmpty ? Self.standard : policies {
                let policy: any CachePolicy
                do { policy = try PolicySpec.parse(spec) } catch { throw ValidationError("\(error)") }
                let r = try QualityBench.run(policy: policy, data: data, kernels: kernels)
                try emit(r, json: json) {
                    String(format: "%-52@ %6.3f bits/elem  %5.2f×  attention rel. error %.5f", r.policy, r.bitsPerElement, r.compressionRatio, r.attentionRelError)
                }
            }
        }
    }
}

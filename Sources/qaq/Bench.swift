import ArgumentParser
import Foundation
import QAQ

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure kernels on this machine (1 thread), each beside the read roof measured in the same run.",
        subcommands: [Quantize.self, Dequantize.self, Dot.self, Roof.self, Quality.self, Attention.self, Prefill.self])
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
    describeKernel(r.kernel, r.isa, r.dim, r.groupSize, r.bits, r.outliers,
                   rates: String(format: "%.3f Gvalues/s, %.2f GB/s input", r.gvaluesPerSecond, r.inputGBps),
                   roofGBps: r.roofGBps, fractionOfRoof: r.fractionOfRoof, recordBytes: r.recordBytes,
                   bitsPerElement: r.bitsPerElement, seconds: r.seconds, vectors: r.vectors, speedup: r.speedupVsReference)
}

func describe(_ r: DequantizeBench.Result) -> String {
    var s = describeKernel(r.kernel, r.isa, r.dim, r.groupSize, r.bits, r.outliers,
                           rates: String(format: "%.3f Gvalues/s, %.2f GB/s packed in + %.2f GB/s fp32 out",
                                         r.gvaluesPerSecond, r.inputGBps, r.outputGBps),
                           roofGBps: r.roofGBps, fractionOfRoof: r.fractionOfRoof, recordBytes: r.recordBytes,
                           bitsPerElement: r.bitsPerElement, seconds: r.seconds, vectors: r.vectors, speedup: r.speedupVsReference)
    if let same = r.matchesReference { s += same ? ", output = the reference's" : ", OUTPUT DIFFERS FROM THE REFERENCE" }
    return s
}

/// One line of `qaq bench` text output: the kernel and its layout, its rates, the roof.
private func describeKernel(_ kernel: String, _ isa: ISALevel, _ dim: Int, _ group: Int, _ bits: Int, _ outliers: Int,
                            rates: String, roofGBps: Double, fractionOfRoof: Double, recordBytes: Int,
                            bitsPerElement: Double, seconds: Double, vectors: Int, speedup: Double?) -> String {
    var s = String(format: "%@ %@ D=%d G=%d b=%d k=%d: %@, roof %.1f GB/s (%.0f%%), %d B/vector (%.3f bits/elem), median %.3f ms over %d vectors, 1 thread",
                   kernel, isa.rawValue, dim, group, bits, outliers, rates,
                   roofGBps, 100 * fractionOfRoof, recordBytes, bitsPerElement, seconds * 1e3, vectors)
    if let x = speedup { s += String(format: ", %.1f× the scalar reference", x) }
    return s
}

extension Bench {
    struct Quantize: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Quantize fp32 rows into packed vectors.")
        @OptionGroup var options: KernelOptions
        @Option(help: "affine (the midpoint quantizer, --group), codebook (Lloyd-Max levels, one fp16 scale per vector) or rotated (codebook after the Hadamard rotation, as the rlm formats).")
        var format: String = "affine"

        func validate() throws {
            guard ["affine", "codebook", "rotated"].contains(format) else {
                throw ValidationError("--format must be affine, codebook or rotated")
            }
        }

        func run() throws {
            if format != "affine" {
                let r: KernelBench.Result
                do {
                    r = try KernelBench.codebookQuantize(dim: options.dim, bits: options.bits, rotated: format == "rotated",
                                                         vectors: options.vectors, kernels: try options.kernels(),
                                                         repetitions: options.repetitions, withReference: options.reference)
                } catch let error as ValidationError { throw error } catch { throw ValidationError("\(error)") }
                return try emit(r, json: options.json) { describe(r) }
            }
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

    struct Dequantize: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Dequantize packed vectors into fp32 rows.",
            discussion: """
                The packed input is made once, untimed, by the same ISA level's quantize from synthetic keys. \
                inputGBps counts the packed bytes read, outputGBps the fp32 bytes written; the roof is read over a \
                buffer as large as both together, and fractionOfRoof is (input + output) ÷ roof. With --reference, \
                the first vectors (up to 512) are also dequantized by the scalar reference, timed, and compared bit \
                for bit with the kernel's output (matchesReference); a difference fails the command.
                """)
        @OptionGroup var options: KernelOptions

        func validate() throws {
            // The packed input and the fp32 output must fit in half of this machine's memory (and not overflow Int).
            let layout = try options.layout()
            let limit = ProcessInfo.processInfo.physicalMemory / 2
            let (total, overflow) = (layout.recordBytes + 4 * layout.dim).multipliedReportingOverflow(by: options.vectors)
            guard !overflow, UInt64(max(total, 0)) <= limit else {
                throw ValidationError("--vectors \(options.vectors) at D=\(layout.dim) b=\(layout.bits): the packed input and fp32 output would take more than half of this machine's memory (\(limit >> 20) MiB)")
            }
        }

        func run() throws {
            let r: DequantizeBench.Result
            do {
                r = try DequantizeBench.run(layout: try options.layout(), vectors: options.vectors, kernels: try options.kernels(),
                                            repetitions: options.repetitions, withReference: options.reference)
            } catch let error as ValidationError { throw error } catch { throw ValidationError("\(error)") }
            try emit(r, json: options.json) { describe(r) }
            if r.matchesReference == false {
                FileHandle.standardError.write(Data("qaq bench dequantize: \(r.isa) output differs from the scalar reference\n".utf8))
                throw ExitCode.failure
            }
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
            abstract: "Attention-output error and exact bits per element of cache policies on synthetic or real captured K/V/q (streaming decode).",
            discussion: """
                Policies: fp32, fp16, q8_0, q4_0, uniform:B[:G], kivi:B[:G[:R]], qaq[:sigmaS=…:sigmaX=…:keys=token|channel|rotated:…]. Default: a standard set at 2, 3, 4 and 8 bits.

                Without --activations: synthetic K/V/q (--tokens, --head-dim, --kv-heads, --gqa, --seed), one result per policy.
                With --activations DIR: real captured activations (a manifest.json and fp16 q/k/v files, as in shared/fixtures/smollm2-activations), one result per policy and layer: bits/elem, attention-output relative error, and KL(exact ‖ cache) of the attention probabilities with keys and values stored by the policy (klKV) and with keys only (klKeysOnly, values fp32). --head-dim, --kv-heads, --gqa and --seed are ignored there.
                """)
        @Option(name: .customLong("policy"), help: "A policy (repeatable).") var policies: [String] = []
        @Option(help: "Tokens (decode steps); default 512 synthetic, every token of the set with --activations.") var tokens: Int?
        @Option(name: .customLong("head-dim"), help: "Head dimension D.") var dim: Int = 64
        @Option(name: .customLong("kv-heads"), help: "KV heads.") var kvHeads: Int = 2
        @Option(help: "Query heads per KV head.") var gqa: Int = 3
        @Option(help: "Data seed.") var seed: UInt64 = 1
        @Option(help: "A directory of captured activations (manifest.json and fp16 q/k/v files) instead of synthetic data.") var activations: String?
        @Option(name: .customLong("layer"), help: "A layer of --activations (repeatable); default: every layer in the manifest.") var layers: [Int] = []
        @Flag(help: "Print one JSON object per policy (and layer, with --activations) (JSON lines).") var json = false

        static let standard = [
            "fp32", "fp16", "q8_0", "q4_0",
            "uniform:8:32", "uniform:4:32", "uniform:3:32", "uniform:2:32",
            "kivi:8", "kivi:4", "kivi:2",
            "qaq:sigmaS=0.005:sigmaX=0.01", "qaq:sigmaS=0.02:sigmaX=0.05", "qaq:sigmaS=0.05:sigmaX=0.2",
            "qaq:keys=channel:sigmaS=0.02:sigmaX=0.05", "qaq:keys=rotated:sigmaS=0.02:sigmaX=0.05",
            "rlm:4:4", "rlm:4:3", "rlm:4:3:scale=log8", "rlm:3:2:scale=log8:center=on:stage=64", "rlm:3:2",
            "qaq:map=lm:sigmaS=0.02:sigmaX=0.05",
        ]

        func validate() throws {
            if let tokens, tokens <= 0 { throw ValidationError("--tokens must be positive") }
            if activations == nil, !layers.isEmpty { throw ValidationError("--layer needs --activations") }
        }

        func parsedPolicies() throws -> [any CachePolicy] {
            try (policies.isEmpty ? Self.standard : policies).map { spec in
                do { return try PolicySpec.parse(spec) } catch { throw ValidationError("\(error)") }
            }
        }

        func run() throws {
            if let activations { return try runActivations(activations) }
            let data = SyntheticKV(tokens: tokens ?? 512, kvHeads: kvHeads, queryHeadsPerKVHead: gqa, dim: dim, seed: seed)
            let kernels = KernelSet.forLevel(try selectedISA())
            for policy in try parsedPolicies() {
                let r = try QualityBench.run(policy: policy, data: data, kernels: kernels)
                try emit(r, json: json) {
                    String(format: "%-52@ %6.3f bits/elem  %5.2f×  attention rel. error %.5f", r.policy, r.bitsPerElement, r.compressionRatio, r.attentionRelError)
                }
            }
        }

        func runActivations(_ path: String) throws {
            let directory = URL(fileURLWithPath: path, isDirectory: true)
            let policies = try parsedPolicies()
            let kernels = KernelSet.forLevel(try selectedISA())
            var failures = 0
            for layer in layers.isEmpty ? try ActivationSet.layers(in: directory) : layers {
                let set = try ActivationSet(directory: directory, layer: layer)
                let n = tokens ?? set.tokens
                guard n <= set.tokens else { throw ValidationError("--tokens \(n): layer \(layer) of \(path) has \(set.tokens) tokens") }
                let reference = RealQualityBench.Reference(set: set, tokens: n)
                for policy in policies {
                    let r: RealQualityBench.Result
                    do { r = try RealQualityBench.run(policy: policy, set: set, tokens: n, kernels: kernels, reference: reference) } catch {
                        // One policy failing (a format the cache refuses) does not hide the others' results.
                        FileHandle.standardError.write(Data("\(policy) layer \(layer): \(error)\n".utf8))
                        failures += 1
                        continue
                    }
                    try emit(r, json: json) {
                        String(format: "%-52@ layer %2d  %6.3f bits/elem  %5.2f×  rel. error %.5f  KL K+V %.3e  KL keys only %.3e",
                               r.policy, r.layer, r.bitsPerElement, r.compressionRatio, r.attentionRelError, r.klKV, r.klKeysOnly)
                    }
                }
            }
            if failures > 0 { throw ExitCode.failure }
        }
    }
}

/// `qaq bench dequantize`: `KernelBench`'s timing (``KernelBench/time(_:_:)``) and roof
/// (``ReadRoof/measure(bytes:repetitions:minSeconds:kernels:pool:)``, as `KernelBench` calls it)
/// around `KernelSet.dequantize`.
enum DequantizeBench {
    /// `KernelBench.Result`'s fields for dequantize, plus the fp32 bytes written.
    struct Result: Codable {
        var kernel = "dequantize"
        var isa: ISALevel
        var dim: Int
        var groupSize: Int
        var bits: Int
        var outliers: Int
        var vectors: Int
        var threads = 1
        /// Median seconds of one pass over all vectors.
        var seconds: Double
        /// Fastest pass.
        var minSeconds: Double
        /// Values (elements) written per second, 10⁹.
        var gvaluesPerSecond: Double
        /// Packed bytes read per second, 10⁹.
        var inputGBps: Double
        /// fp32 bytes written per second, 10⁹.
        var outputGBps: Double
        /// Packed bytes per vector, all overheads included.
        var recordBytes: Int
        var bitsPerElement: Double
        /// Read roof measured in the same run over a buffer of the packed input's and fp32 output's size.
        var roofGBps: Double
        /// (inputGBps + outputGBps) ÷ roofGBps.
        var fractionOfRoof: Double
        /// The scalar reference, seconds per pass (timed on a subset; nil without --reference).
        var referenceSeconds: Double?
        /// Speed-up over the scalar reference.
        var speedupVsReference: Double?
        /// Whether the kernel's fp32 output equals the scalar reference's bit for bit on that subset.
        var matchesReference: Bool?
    }

    struct SetupFailure: Error, CustomStringConvertible {
        var description: String
    }

    static func run(layout: PackedLayout, vectors: Int, kernels: KernelSet, repetitions: Int,
                    withReference: Bool) throws -> Result {
        let d = layout.dim
        let packed = UnsafeMutableRawPointer.allocate(byteCount: vectors * layout.recordBytes, alignment: 64)
        defer { packed.deallocate() }
        let keys = SyntheticKV(tokens: vectors, kvHeads: 1, queryHeadsPerKVHead: 1, dim: d).keys
        let status = keys.withUnsafeBytes { kernels.quantize($0.baseAddress!, .float32, vectors, d, layout, packed) }
        guard status.code == .ok else { throw SetupFailure(description: "quantize (making the packed input) failed: \(status)") }
        let out = UnsafeMutablePointer<Float>.allocate(capacity: vectors * d)
        defer { out.deallocate() }
        let times = KernelBench.time(repetitions) { kernels.dequantize(packed, vectors, layout, out, d) }
        var referenceSeconds: Double?
        var matches: Bool?
        if withReference {
            let n = min(vectors, 512)
            var expected = [Float](repeating: .nan, count: n * d)
            referenceSeconds = expected.withUnsafeMutableBufferPointer { buffer in
                KernelBench.time(3) { KernelSet.reference.dequantize(packed, n, layout, buffer.baseAddress!, d) }.median
            } * Double(vectors) / Double(n)
            matches = expected.indices.allSatisfy { expected[$0].bitPattern == out[$0].bitPattern }
        }
        let inputBytes = vectors * layout.recordBytes, outputBytes = vectors * d * 4
        let roof = ReadRoof.measure(bytes: inputBytes + outputBytes, repetitions: 5, minSeconds: 0.02, kernels: kernels)
        let inputGBps = Double(inputBytes) / times.median / 1e9, outputGBps = Double(outputBytes) / times.median / 1e9
        return Result(
            isa: kernels.isa, dim: d, groupSize: layout.groupSize, bits: layout.bits, outliers: layout.outlierCount,
            vectors: vectors, seconds: times.median, minSeconds: times.min,
            gvaluesPerSecond: Double(vectors * d) / times.median / 1e9, inputGBps: inputGBps, outputGBps: outputGBps,
            recordBytes: layout.recordBytes, bitsPerElement: layout.bitsPerElement,
            roofGBps: roof.medianGBps, fractionOfRoof: (inputGBps + outputGBps) / roof.medianGBps,
            referenceSeconds: referenceSeconds, speedupVsReference: referenceSeconds.map { $0 / times.median },
            matchesReference: matches)
    }
}

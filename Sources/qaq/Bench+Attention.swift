import ArgumentParser
import Foundation
import QAQ

extension Bench {
    struct Attention: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Decode attention over a filled cache (1 thread): cache bytes read per second beside the read roof.")
        @Option(name: .customLong("head-dim")) var dim: Int = 128
        @Option(name: .customLong("kv-heads")) var kvHeads: Int = 8
        @Option var gqa: Int = 4
        @Option var context: Int = 4096
        @Option var policy: String = "uniform:4:32"
        @Option(help: "Threads (only 1 is implemented so far).") var threads: Int = 1
        @Option var repetitions: Int = 9
        @Flag(help: "Cycle through ≥ 128 MiB of distinct caches and compare with the DRAM roof.") var cold = false
        @Flag var json = false

        func validate() throws {
            guard threads == 1 else { throw ValidationError("only --threads 1 is implemented so far") }
        }

        func run() throws {
            let p: any CachePolicy
            do { p = try PolicySpec.parse(policy) } catch { throw ValidationError("\(error)") }
            let r = try AttentionBench.run(policy: p, headDim: dim, kvHeads: kvHeads, gqa: gqa, context: context,
                                           repetitions: repetitions, cold: cold, kernels: .forLevel(try selectedISA()))
            try emit(r, json: json) {
                String(format: "%@ %@ D=%d H=%d GQA=%d ctx=%d: %.3f ms/step, %.2f GB/s of %.1f MB (%.2f bits/elem), roof %.1f GB/s (%.0f%%), %.2f ns/token·KV-head%@",
                       r.policy, r.isa.rawValue, r.headDim, r.kvHeads, r.gqa, r.context, r.seconds * 1e3, r.gbps,
                       Double(r.bytesRead) / 1e6, r.bitsPerElement, r.roofGBps, 100 * r.fractionOfRoof, r.nsPerTokenKVHead, r.cold ? " (cold)" : "")
            }
        }
    }
}

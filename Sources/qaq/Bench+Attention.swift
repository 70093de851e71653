import ArgumentParser
import Foundation
import QAQ

extension Bench {
    struct Attention: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Decode attention over a filled cache: cache bytes read per second beside the read roof.")
        @Option(name: .customLong("head-dim")) var dim: Int = 128
        @Option(name: .customLong("kv-heads")) var kvHeads: Int = 8
        @Option var gqa: Int = 4
        @Option var context: Int = 4096
        @Option(help: "Cache policy (default uniform:4:32, or uniform:4:G with the profile's group size G).") var policy: String?
        @Option(help: "A tuning profile (qaqtune): run its plan for this problem — threads, split, chunk, pinning, page size, group size and dot arithmetic (fp32 or int8); --threads/--split/--chunk/--cpus/--page are then ignored (--integer-dot still forces int8). A missing profile or one from another host: one warning, estimate-level defaults.")
        var profile: String?
        @Option(help: "Threads taking part (the caller included).") var threads: Int = 1
        @Option(help: "How threads divide the work: head, tokens or both.") var split: String = "head"
        @Option(help: "Tokens per work item for the tokens/both splits.") var chunk: Int = 1024
        @Option(help: "Comma-separated logical CPUs to pin workers to (default: unpinned).") var cpus: String = ""
        @Option(help: "Tokens per page.") var page: Int = 64
        @Flag(name: .customLong("integer-dot"), help: "Score keys and sum values with int8 dot products (4-bit affine, 2- to 4-bit code maps; AVX-512 VNNI; AttentionPlan.integerDot). Pages or ISA levels without integer kernels take fp32.")
        var integerDot = false
        @Option var repetitions: Int = 9
        @Flag(help: "Cycle through ≥ 128 MiB of distinct caches and compare with the DRAM roof.") var cold = false
        @Flag var json = false

        var cpuList: [Int]? {
            if cpus.isEmpty { return [] }
            let parts = cpus.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            return parts.contains(nil) ? nil : parts.compactMap { $0 }
        }

        func validate() throws {
            guard threads >= 1, chunk >= 1, page >= 1 else { throw ValidationError("--threads, --chunk and --page must be positive") }
            guard AttentionPlan.Split(rawValue: split) != nil else { throw ValidationError("--split must be head, tokens or both") }
            guard cpuList != nil else { throw ValidationError("--cpus must be a comma-separated list of CPU numbers") }
        }

        func run() throws {
            var plan = AttentionPlan(threads: threads, split: AttentionPlan.Split(rawValue: split)!, cpus: cpuList ?? [], chunkTokens: chunk,
                                     integerDot: integerDot)
            var pageTokens = page
            var spec = policy ?? "uniform:4:32"
            if let profile {
                let profiled = try ProfiledPlan.load(path: profile, headDim: dim, kvHeads: kvHeads, gqa: gqa, context: context, threads: nil)
                plan = profiled.attentionPlan  // the profile's dot choice included (variant.dot → integerDot)
                if integerDot { plan.integerDot = true }
                pageTokens = profiled.variant.pageTokens
                if policy == nil { spec = "uniform:4:\(profiled.variant.groupSize)" }
                if let note = profiled.note, !json { print(note) }
            }
            let p: any CachePolicy
            do { p = try PolicySpec.parse(spec) } catch { throw ValidationError("\(error)") }
            let r = try AttentionBench.run(policy: p, headDim: dim, kvHeads: kvHeads, gqa: gqa, context: context,
                                           repetitions: repetitions, cold: cold, kernels: .forLevel(try selectedISA()),
                                           pageTokens: pageTokens, plan: plan)
            try emit(AttentionBenchOutput(result: r, integerDot: plan.integerDot), json: json) {
                String(format: "%@ %@ D=%d H=%d GQA=%d ctx=%d: %.3f ms/step, %.2f GB/s of %.1f MB (%.2f bits/elem), roof %.1f GB/s (%.0f%%), %.2f ns/token·KV-head%@%@",
                       r.policy, r.isa.rawValue, r.headDim, r.kvHeads, r.gqa, r.context, r.seconds * 1e3, r.gbps,
                       Double(r.bytesRead) / 1e6, r.bitsPerElement, r.roofGBps, 100 * r.fractionOfRoof, r.nsPerTokenKVHead,
                       plan.integerDot ? ", int8 dots" : "", r.cold ? " (cold)" : "")
            }
        }
    }
}

/// `qaq bench attention --json`: the bench's result with the plan's score arithmetic
/// (`"integerDot": true/false`) among its keys.
struct AttentionBenchOutput: Encodable {
    var result: AttentionBench.Result
    var integerDot: Bool

    private enum CodingKeys: String, CodingKey { case integerDot }

    func encode(to encoder: any Encoder) throws {
        try result.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(integerDot, forKey: .integerDot)
    }
}

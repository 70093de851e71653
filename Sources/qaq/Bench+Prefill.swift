import ArgumentParser
import Foundation
import QAQ

extension Bench {
    struct Prefill: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Prefill into an empty cache: batched append and causal block attention, tokens per second.")
        @Option(name: .customLong("head-dim")) var dim: Int = 64
        @Option(name: .customLong("kv-heads")) var kvHeads: Int = 3
        @Option var gqa: Int = 3
        @Option(help: "Tokens of the prompt.") var tokens: Int = 512
        @Option(help: "Tokens per block (each block appended, then attended).") var block: Int = 512
        @Option(help: "Cache policy.") var policy: String = "uniform:4:32"
        @Option(help: "Threads taking part (the caller included), for the append and the attention.") var threads: Int = 1
        @Option(help: "Tokens per page.") var page: Int = 64
        @Option var repetitions: Int = 5
        @Flag var json = false

        func validate() throws {
            guard dim > 0, kvHeads > 0, gqa > 0, tokens > 0, block > 0, threads >= 1, page >= 1, repetitions >= 1 else {
                throw ValidationError("every size, --threads, --page and --repetitions must be positive")
            }
        }

        func run() throws {
            let p: any CachePolicy
            do { p = try PolicySpec.parse(policy) } catch { throw ValidationError("\(error)") }
            let r = try PrefillBench.run(policy: p, headDim: dim, kvHeads: kvHeads, gqa: gqa, tokens: tokens, block: block,
                                         repetitions: repetitions, kernels: .forLevel(try selectedISA()), pageTokens: page,
                                         plan: AttentionPlan(threads: threads, split: .head))
            try emit(r, json: json) {
                String(format: "%@ %@ D=%d H=%d GQA=%d T=%d block %d, %d thread%@: append %.3f ms (%.0f tokens/s), block attention %.3f ms (%.0f tokens/s), prefill %.0f tokens/s, %.2f bits/elem",
                       r.policy, r.isa.rawValue, r.headDim, r.kvHeads, r.gqa, r.tokens, r.block, r.threads, r.threads == 1 ? "" : "s",
                       r.appendSeconds * 1e3, r.appendTokensPerSecond, r.attentionSeconds * 1e3, r.attentionTokensPerSecond,
                       r.tokensPerSecond, r.bitsPerElement)
            }
        }
    }
}

/// Prefill timing: `tokens` tokens of synthetic K/V/q go into an empty one-layer cache in
/// blocks of `block` tokens — each block appended (window, quantization, outliers), then its
/// queries attend causally (``KVCache/attention(layer:queries:count:into:)``) — under an
/// ``AttentionPlan`` whose threads serve both the batched append and the block attention.
public enum PrefillBench {
    public struct Result: Codable, Sendable {
        public var policy: String
        public var isa: ISALevel
        public var headDim: Int
        public var kvHeads: Int
        public var gqa: Int
        public var tokens: Int
        public var block: Int
        public var threads: Int
        /// Median over repetitions of the seconds spent appending all tokens (one layer).
        public var appendSeconds: Double
        /// Median over repetitions of the seconds spent in block attention (one layer).
        public var attentionSeconds: Double
        public var appendTokensPerSecond: Double
        public var attentionTokensPerSecond: Double
        /// Tokens per second of the whole prefill (append + attention).
        public var tokensPerSecond: Double
        public var bitsPerElement: Double
    }

    public static func run(policy: any CachePolicy, headDim: Int, kvHeads: Int, gqa: Int, tokens: Int, block: Int,
                           repetitions: Int = 5, kernels: KernelSet = .active, pageTokens: Int = 64,
                           plan: AttentionPlan = .serial) throws(CacheError) -> Result {
        let row = kvHeads * headDim, qRow = kvHeads * gqa * headDim
        var rng = SyntheticKV.Generator(seed: 17)
        let keys = (0..<(tokens * row)).map { _ in Float(rng.gaussian()) }
        let values = (0..<(tokens * row)).map { _ in Float(rng.gaussian()) }
        let queries = (0..<(tokens * qRow)).map { _ in Float(rng.gaussian()) }
        var output = [Float](repeating: 0, count: tokens * qRow)
        var appendTimes: [Double] = [], attentionTimes: [Double] = []
        var bits = 0.0
        for _ in 0..<(max(1, repetitions) + 1) {   // the first run warms up and is not counted
            let cache = try KVCache(KVCacheConfiguration(layers: 1, kvHeads: kvHeads, queryHeadsPerKVHead: gqa, headDim: headDim,
                                                         policy: policy, pageTokens: pageTokens, kernels: kernels, attentionPlan: plan))
            var appendSeconds = 0.0, attentionSeconds = 0.0
            var done = 0
            while done < tokens {
                let n = min(block, tokens - done)
                let t0 = MonotonicClock.now()
                try keys.withUnsafeBufferPointer { k throws(CacheError) in
                    try values.withUnsafeBufferPointer { v throws(CacheError) in
                        try cache.append(layer: 0, keys: UnsafeBufferPointer(rebasing: k[(done * row)..<((done + n) * row)]),
                                         values: UnsafeBufferPointer(rebasing: v[(done * row)..<((done + n) * row)]))
                    }
                }
                let t1 = MonotonicClock.now()
                try queries.withUnsafeBufferPointer { q throws(CacheError) in
                    try output.withUnsafeMutableBufferPointer { o throws(CacheError) in
                        try cache.attention(layer: 0, queries: UnsafeBufferPointer(rebasing: q[(done * qRow)..<((done + n) * qRow)]), count: n,
                                            into: UnsafeMutableBufferPointer(rebasing: o[(done * qRow)..<((done + n) * qRow)]))
                    }
                }
                let t2 = MonotonicClock.now()
                appendSeconds += t1 - t0
                attentionSeconds += t2 - t1
                done += n
            }
            appendTimes.append(appendSeconds)
            attentionTimes.append(attentionSeconds)
            let m = cache.memory
            bits = Double((m.codes + m.metadata + m.outliers + m.window) * 8) / Double(max(1, tokens * row * 2))
        }
        appendTimes.removeFirst()
        attentionTimes.removeFirst()
        appendTimes.sort()
        attentionTimes.sort()
        let a = appendTimes[appendTimes.count / 2], s = attentionTimes[attentionTimes.count / 2]
        return Result(policy: policy.description, isa: kernels.isa, headDim: headDim, kvHeads: kvHeads, gqa: gqa, tokens: tokens,
                      block: block, threads: plan.threads, appendSeconds: a, attentionSeconds: s,
                      appendTokensPerSecond: Double(tokens) / a, attentionTokensPerSecond: Double(tokens) / s,
                      tokensPerSecond: Double(tokens) / (a + s), bitsPerElement: bits)
    }
}

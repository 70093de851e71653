/// Attention quality of a cache policy on streaming decode: every step appends one token and
/// attends with that step's queries; the cache's output is compared with exact fp64
/// attention over the unquantized inputs.
public enum QualityBench {
    public struct Result: Codable, Sendable {
        public var policy: String
        /// Bits per stored element at the end, everything included (window, bookkeeping).
        public var bitsPerElement: Double
        /// fp16 bytes ÷ bytes held.
        public var compressionRatio: Double
        /// Mean over steps (after the first `warmup`) and q heads of ‖out − exact‖ / ‖exact‖.
        public var attentionRelError: Double
        /// Bytes held at the end, split.
        public var memory: CacheMemory
        public var tokens: Int
        public var headDim: Int
        public var kvHeads: Int
        public var queryHeadsPerKVHead: Int
    }

    /// Runs `policy` over `data` (one layer). `refreshEvery` > 0 calls refresh every so many steps.
    /// `plan` is the cache's ``AttentionPlan`` (e.g. `integerDot` to measure int8 dot products).
    public static func run(policy: any CachePolicy, data: SyntheticKV, warmup: Int = 8, refreshEvery: Int = 16,
                           kernels: KernelSet = .active, plan: AttentionPlan = .serial) throws(CacheError) -> Result {
        let cache = try KVCache(KVCacheConfiguration(
            layers: 1, kvHeads: data.kvHeads, queryHeadsPerKVHead: data.queryHeadsPerKVHead,
            headDim: data.dim, policy: policy, kernels: kernels, attentionPlan: plan))
        var errorSum = 0.0
        var samples = 0
        let d = data.dim
        for t in 0..<data.tokens {
            let (k, v) = data.token(t)
            try cache.append(layer: 0, keys: Array(k), values: Array(v))
            let out = try cache.attention(layer: 0, queries: Array(data.query(t)))
            if refreshEvery > 0, t % refreshEvery == refreshEvery - 1 { try cache.refresh(layer: 0) }
            guard t >= warmup else { continue }
            let exact = data.exactAttention(step: t)
            for head in 0..<(data.kvHeads * data.queryHeadsPerKVHead) {
                var num = 0.0, den = 0.0
                for i in 0..<d {
                    let e = exact[head * d + i]
                    num += (Double(out[head * d + i]) - e) * (Double(out[head * d + i]) - e)
                    den += e * e
                }
                errorSum += (num / max(den, 1e-300)).squareRoot()
                samples += 1
            }
        }
        let memory = cache.memory
        return Result(policy: policy.description, bitsPerElement: memory.bitsPerElement,
                      compressionRatio: memory.compressionRatio,
                      attentionRelError: samples == 0 ? 0 : errorSum / Double(samples), memory: memory,
                      tokens: data.tokens, headDim: d, kvHeads: data.kvHeads, queryHeadsPerKVHead: data.queryHeadsPerKVHead)
    }
}

/// Decode-attention timing over a filled cache: one query token per q head against a
/// context of `context` tokens under an ``AttentionPlan``, the figure that matters being the
/// cache bytes read per second as a fraction of the read roof measured in the same run
/// (the roof probe reads with the plan's thread count).
public enum AttentionBench {
    public struct Result: Codable, Sendable {
        public var policy: String
        public var isa: ISALevel
        public var variant: String
        public var headDim: Int
        public var kvHeads: Int
        public var gqa: Int
        public var context: Int
        public var threads: Int
        /// Cache bytes one decode step reads: every stored key and value with its metadata,
        /// outliers and the fp16 window (bookkeeping excluded).
        public var bytesRead: Int
        /// Median seconds per decode step (one layer).
        public var seconds: Double
        public var gbps: Double
        /// Read roof over a buffer of the same size (or the DRAM roof in cold mode).
        public var roofGBps: Double
        public var fractionOfRoof: Double
        public var nsPerTokenKVHead: Double
        public var bitsPerElement: Double
        public var cold: Bool
    }

    public static func run(policy: any CachePolicy, headDim: Int, kvHeads: Int, gqa: Int, context: Int,
                           repetitions: Int = 9, cold: Bool = false, kernels: KernelSet = .active,
                           pageTokens: Int = 64, plan: AttentionPlan = .serial) throws(CacheError) -> Result {
        // Cold mode: enough independent caches to cycle through ≥ 128 MiB.
        let one = try fill(policy: policy, headDim: headDim, kvHeads: kvHeads, gqa: gqa, context: context, kernels: kernels, pageTokens: pageTokens, plan: plan)
        let bytes = one.memory.codes + one.memory.metadata + one.memory.outliers + one.memory.window
        var caches = [one]
        if cold {
            let copies = max(1, (128 << 20) / max(bytes, 1))
            for _ in 1..<copies { caches.append(try fill(policy: policy, headDim: headDim, kvHeads: kvHeads, gqa: gqa, context: context, kernels: kernels, pageTokens: pageTokens, plan: plan)) }
        }
        var rng = SyntheticKV.Generator(seed: 99)
        let queries = (0..<(kvHeads * gqa * headDim)).map { _ in Float(rng.gaussian()) }
        var next = 0
        var failure: CacheError?
        let times = KernelBench.time(repetitions) {
            do { _ = try caches[next].attention(layer: 0, queries: queries) } catch { failure = (error as? CacheError) ?? .invalidConfiguration("\(error)") }
            next = (next + 1) % caches.count
        }
        if let failure { throw failure }
        let roofPool = plan.threads > 1 ? WorkerPool(threads: plan.threads, cpus: plan.cpus) : nil
        let roof = ReadRoof.measure(bytes: cold ? 256 << 20 : max(bytes, 4096), repetitions: 5, minSeconds: 0.02, kernels: kernels, pool: roofPool)
        let gbps = Double(bytes) / times.median / 1e9
        return Result(policy: policy.description, isa: kernels.isa, variant: plan.description,
                      headDim: headDim, kvHeads: kvHeads, gqa: gqa, context: context, threads: plan.threads, bytesRead: bytes,
                      seconds: times.median, gbps: gbps, roofGBps: roof.medianGBps, fractionOfRoof: gbps / roof.medianGBps,
                      nsPerTokenKVHead: times.median * 1e9 / Double(context * kvHeads),
                      bitsPerElement: Double(bytes * 8) / Double(context * kvHeads * headDim * 2), cold: cold)
    }

    static func fill(policy: any CachePolicy, headDim: Int, kvHeads: Int, gqa: Int, context: Int, kernels: KernelSet,
                     pageTokens: Int, plan: AttentionPlan) throws(CacheError) -> KVCache {
        let cache = try KVCache(KVCacheConfiguration(layers: 1, kvHeads: kvHeads, queryHeadsPerKVHead: gqa, headDim: headDim,
                                                     policy: policy, pageTokens: pageTokens, kernels: kernels, attentionPlan: plan))
        var rng = SyntheticKV.Generator(seed: 5)
        let chunk = 256
        var done = 0
        while done < context {
            let n = min(chunk, context - done)
            let k = (0..<(n * kvHeads * headDim)).map { _ in Float(rng.gaussian()) }
            let v = (0..<(n * kvHeads * headDim)).map { _ in Float(rng.gaussian()) }
            try cache.append(layer: 0, keys: k, values: v)
            done += n
        }
        return cache
    }
}

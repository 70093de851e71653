import QAQ
#if canImport(Glibc)
import Glibc
#endif

/// Times decode attention of one shape (D, KV heads, GQA) over filled caches, keeping one cache
/// per (ISA, page size, group size) alive so every thread/split/chunk/pinning variant and every
/// context bucket reuses it: a cache is grown by appending (or truncated) to the context asked
/// for, only when a variant needs it — never refilled. Filling appends a pre-generated block of synthetic K/V (Gaussian,
/// as `AttentionBench`), so a fill costs the cache's quantize path, not the random generator.
public final class AttentionHarness {
    public let headDim: Int
    public let kvHeads: Int
    public let gqa: Int
    public let topology: Topology
    public let bits: Int
    /// Current context; caches are truncated to it.
    public private(set) var context: Int = 0
    /// Seconds spent filling caches so far.
    public private(set) var fillSeconds: Double = 0
    private struct Key: Hashable { var isa: ISALevel; var page: Int; var group: Int }
    private var caches: [Key: KVCache] = [:]
    private let blockTokens = 256
    private let blockK: [Float]
    private let blockV: [Float]
    private let queries: [Float]

    public init(headDim: Int, kvHeads: Int, gqa: Int, topology: Topology, bits: Int = 4) {
        self.headDim = headDim
        self.kvHeads = kvHeads
        self.gqa = gqa
        self.topology = topology
        self.bits = bits
        var rng = GaussianSource(seed: 5)
        let n = blockTokens * kvHeads * headDim
        blockK = (0..<n).map { _ in rng.next() }
        blockV = (0..<n).map { _ in rng.next() }
        var q = GaussianSource(seed: 99)
        queries = (0..<(kvHeads * gqa * headDim)).map { _ in q.next() }
    }

    /// Sets the context for the following measurements; caches follow lazily.
    public func setContext(_ tokens: Int) throws(CacheError) {
        guard tokens > 0 else { throw .invalidConfiguration("context must be positive") }
        context = tokens
    }

    /// Drops every cache (frees memory).
    public func reset() {
        caches.removeAll()
        context = 0
    }

    /// The filled cache for a variant's storage knobs.
    public func cache(for v: KernelVariant) throws(CacheError) -> KVCache {
        let key = Key(isa: v.isa, page: v.pageTokens, group: v.groupSize)
        let cache: KVCache
        if let c = caches[key] {
            cache = c
        } else {
            let policy = FixedPolicy.uniform(bits: bits, group: v.groupSize)
            cache = try KVCache(KVCacheConfiguration(layers: 1, kvHeads: kvHeads, queryHeadsPerKVHead: gqa, headDim: headDim,
                                                     policy: policy, pageTokens: v.pageTokens, kernels: .forLevel(v.isa)))
            caches[key] = cache
        }
        var done = try cache.tokenCount(layer: 0)
        if done > context {
            try cache.truncate(to: context)
            return cache
        }
        if done == context { return cache }
        let t0 = monotonicSeconds()
        let width = kvHeads * headDim
        while done < context {
            let n = min(blockTokens, context - done)
            try blockK.withUnsafeBufferPointer { (k) throws(CacheError) in
                try blockV.withUnsafeBufferPointer { (vv) throws(CacheError) in
                    try cache.append(layer: 0, keys: UnsafeBufferPointer(rebasing: k[0..<(n * width)]),
                                     values: UnsafeBufferPointer(rebasing: vv[0..<(n * width)]))
                }
            }
            done += n
        }
        fillSeconds += monotonicSeconds() - t0
        return cache
    }

    /// Bytes one decode step reads from a cache (codes, metadata, outliers, window).
    public static func bytesRead(_ cache: KVCache) -> Int {
        let m = cache.memory
        return m.codes + m.metadata + m.outliers + m.window
    }

    /// Times one variant at the current context; nil if the cache refuses it.
    public func measure(_ v: KernelVariant, timer: RobustTimer) -> MeasuredVariant? {
        guard context > 0, let cache = try? cache(for: v) else { return nil }
        cache.attentionPlan = v.attentionPlan(topology: topology)
        let q = queries
        var failed = false
        let r = timer.time(threads: v.threads) {
            do { _ = try cache.attention(layer: 0, queries: q) } catch { failed = true }
        }
        guard !failed, r.median.isFinite, r.median > 0 else { return nil }
        let bytes = Double(AttentionHarness.bytesRead(cache))
        let perToken = 1e9 / Double(context * kvHeads)
        return MeasuredVariant(variant: v, nsPerTokenKVHead: r.median * perToken, gbps: bytes / r.median / 1e9,
                               minNsPerTokenKVHead: r.min * perToken, samples: r.kept.count, rejectedSamples: r.rejected,
                               noisy: r.noisy, foreignShare: r.foreignShare)
    }
}

/// Deterministic N(0, 1) samples (SplitMix64 and Box–Muller) for the harness's synthetic data.
struct GaussianSource {
    private var state: UInt64
    init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 &+ 1 }
    private mutating func bits() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    private mutating func unit() -> Double { (Double(bits() >> 11) + 0.5) / Double(1 << 53) }
    mutating func next() -> Float {
        let u = unit(), v = unit()
        return Float((-2 * log(u)).squareRoot() * cos(2 * Double.pi * v))
    }
}

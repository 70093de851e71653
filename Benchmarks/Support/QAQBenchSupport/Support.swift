// Shared pieces of the QAQ benchmark suites (AttentionBenchmarks, PrefillBenchmarks,
// PlannerBenchmarks): metrics, the standard configuration (allocations gated strictly,
// time not gated), a monotonic clock, a seeded Gaussian generator and a cache filler
// that uses only the library's public API.
//
// KernelBenchmarks keeps its own copies of the metric and clock helpers (it predates this
// target); the metric names are the same, so baselines read alike.
import Benchmark
import QAQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Metrics

extension BenchmarkMetric {
    /// Cache (or buffer) bytes read per second, timed around the measured call; shown in M.
    public static var bytesPerSecond: BenchmarkMetric {
        .custom("bytes/s", polarity: .prefersLarger, useScalingFactor: false)
    }
    /// Picoseconds per (context token × KV head) of one decode step: the inverse rate,
    /// `qaq bench attention`'s ns/token·KV-head × 1000 (metrics are integers).
    public static var picosecondsPerTokenHead: BenchmarkMetric {
        .custom("ps/token-head", polarity: .prefersSmaller, useScalingFactor: false)
    }
    /// Tokens (all KV heads of one layer) appended per second; shown in K.
    public static var tokensPerSecond: BenchmarkMetric {
        .custom("tokens/s", polarity: .prefersLarger, useScalingFactor: false)
    }
    /// Planner problems per second.
    public static var problemsPerSecond: BenchmarkMetric {
        .custom("problems/s", polarity: .prefersLarger, useScalingFactor: false)
    }
    /// Variants the planner timed in one run.
    public static var variantsTimed: BenchmarkMetric {
        .custom("variants timed", polarity: .prefersLarger, useScalingFactor: false)
    }
}

/// The suites' configuration: wall clock, throughput, the rate metrics and the allocation
/// count. `baseline check` thresholds: allocations strict (deterministic; for the decode
/// attention benchmarks the baseline is 0), everything time-based none — wall time is a
/// report (`baseline compare`), not a gate (DESIGN.md §8, Benchmarks/README.md).
public func suiteConfiguration(
    rate: [BenchmarkMetric], units: [BenchmarkMetric: BenchmarkUnits] = [:],
    warmupIterations: Int = 3, maxDuration: Duration = .milliseconds(1000), maxIterations: Int = 1000,
    gateAllocations: Bool = true
) -> Benchmark.Configuration {
    let metrics: [BenchmarkMetric] = [.wallClock, .throughput] + rate + [.mallocCountTotal]
    var thresholds: [BenchmarkMetric: BenchmarkThresholds] = [:]
    for metric in metrics {
        thresholds[metric] = metric == .mallocCountTotal && gateAllocations ? .strict : BenchmarkThresholds.none
    }
    var allUnits: [BenchmarkMetric: BenchmarkUnits] = [:]
    for metric in rate { allUnits[metric] = units[metric] ?? .count }
    return .init(
        metrics: metrics,
        units: allUnits,
        warmupIterations: warmupIterations,
        maxDuration: maxDuration,
        maxIterations: maxIterations,
        thresholds: thresholds)
}

// MARK: - Timing

/// Monotonic nanoseconds.
@inline(__always)
public func nanosecondsNow() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// `amount` per second over `nanoseconds`, as an integer metric value.
public func perSecond(_ amount: Int, _ nanoseconds: UInt64) -> Int {
    Int((Double(amount) * 1e9 / Double(max(nanoseconds, 1))).rounded())
}

/// Stops the benchmark with a message (setup failures: the suite is wrong, not the library).
public func setupFailure(_ what: String, _ error: any Error) -> Never {
    fatalError("benchmark setup failed: \(what): \(error)")
}

// MARK: - Data

/// Seeded N(0, 1) numbers: SplitMix64 and Box–Muller. Deterministic for a seed.
public struct GaussianGenerator {
    private var state: UInt64
    private var spare: Double?

    public init(seed: UInt64) { state = seed }

    /// Uniform in (0, 1].
    private mutating func uniform() -> Double {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return (Double(z >> 11) + 1) * (1.0 / 9_007_199_254_740_992.0)
    }

    public mutating func next() -> Float {
        if let s = spare { spare = nil; return Float(s) }
        let r = (-2 * log(uniform())).squareRoot(), a = 2 * Double.pi * uniform()
        spare = r * sin(a)
        return Float(r * cos(a))
    }

    /// `count` numbers; with `channels` > 0 each is scaled by a per-channel factor in
    /// [0.5, 2] (element i is channel i % channels), so that groups differ in range as K/V
    /// activations do.
    public mutating func array(_ count: Int, channels: Int = 0) -> [Float] {
        var out = [Float](repeating: 0, count: count)
        for i in 0..<count {
            let scale: Float = channels > 0 ? 0.5 + 1.5 * Float((i % channels * 37) % 16) / 15 : 1
            out[i] = next() * scale
        }
        return out
    }
}

/// Synthetic K/V rows, `[tokens][kvHeads][headDim]`, generated once and reused cyclically
/// while filling (the timing does not depend on the values' identity, only on their formats).
public final class KVSource: @unchecked Sendable {
    public let tokens: Int
    public let row: Int
    public let keys: [Float]
    public let values: [Float]

    public init(tokens: Int, kvHeads: Int, headDim: Int, seed: UInt64) {
        self.tokens = tokens
        row = kvHeads * headDim
        var rng = GaussianGenerator(seed: seed)
        keys = rng.array(tokens * row, channels: headDim)
        values = rng.array(tokens * row)
    }
}

/// A one-layer cache of `context` tokens built with the public API: appended in batches of
/// `chunk` tokens from `source`. With a policy that uses attention (qaq), one decode step
/// is then run and the layer refreshed, so that the stored widths are the policy's mix
/// (tokens leave the window at the policy's maximum until statistics exist).
public func filledCache(policy: any CachePolicy, headDim: Int, kvHeads: Int, gqa: Int, context: Int,
                        plan: AttentionPlan, source: KVSource, queries: [Float], chunk: Int = 256) throws -> KVCache {
    let cache = try KVCache(KVCacheConfiguration(layers: 1, kvHeads: kvHeads, queryHeadsPerKVHead: gqa, headDim: headDim,
                                                 policy: policy, attentionPlan: plan))
    var done = 0
    try source.keys.withUnsafeBufferPointer { k in
        try source.values.withUnsafeBufferPointer { v in
            while done < context {
                let start = done % source.tokens
                let n = min(chunk, context - done, source.tokens - start)
                let range = (start * source.row)..<((start + n) * source.row)
                try cache.append(layer: 0, keys: UnsafeBufferPointer(rebasing: k[range]), values: UnsafeBufferPointer(rebasing: v[range]))
                done += n
            }
        }
    }
    if policy.usesAttention {
        _ = try cache.attention(layer: 0, queries: queries)
        try cache.refresh(layer: 0)
    }
    return cache
}

/// Bytes one decode step reads: every stored key and value with its metadata, outliers and
/// the fp16 window (bookkeeping excluded), as `AttentionBench` counts them.
public func bytesRead(_ cache: KVCache) -> Int {
    let m = cache.memory
    return m.codes + m.metadata + m.outliers + m.window
}

/// An aligned, caller-owned fp32 buffer (queries, outputs) for the pointer APIs.
public final class FloatBuffer: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    public init(_ values: [Float]) {
        count = values.count
        pointer = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
        for i in 0..<count { pointer[i] = values[i] }
    }

    public convenience init(zeros count: Int) { self.init([Float](repeating: 0, count: count)) }

    deinit { pointer.deallocate() }

    public var buffer: UnsafeBufferPointer<Float> { UnsafeBufferPointer(start: pointer, count: count) }
    public var mutableBuffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
}

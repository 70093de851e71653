// Batched append (prefill) into a fresh cache: T tokens of all KV heads of one layer in one
// `KVCache.append(layer:keys:values:)` call (the fp32 pointer API) — window, quantization,
// outliers, staging — for the reference model's shape and the attention issue's headline
// shape, at 4 bits and under the qaq policy, on 1 and 2 threads (the configuration's
// `attentionPlan`: a batch runs its KV heads concurrently on the plan's threads).
//
//   cd Benchmarks && swift package benchmark --target PrefillBenchmarks
//
// Names: `Prefill D=… H=… tokens=… <policy> threads=…` (H = KV heads).
//
// Each iteration creates a fresh one-layer cache outside the measured region; with 2
// threads its worker pool is started there too (a 2-token append, then `reset()`, which
// keeps the layer's workspace), so thread start-up is not timed. The measured region is
// the one append call. It allocates (pages, code tables): `Malloc (total)` is reported and
// gated strictly (the count is deterministic). The qaq policy stores every released token
// at its maximum width here (no attention statistics yet; `refresh` lowers them later).
//
// Metrics: `Time (wall clock)` per append of T tokens, `Throughput (# / s)` such appends
// per second, `tokens/s` (shown in K) = T over the call's time.
import Benchmark
import QAQ
import QAQBenchSupport

private struct Case {
    var headDim: Int
    var kvHeads: Int
    var tokens: Int
    var policy: String
    var threads: Int

    var name: String { "Prefill D=\(headDim) H=\(kvHeads) tokens=\(tokens) \(policy) threads=\(threads)" }
}

private let qaqSpec = "qaq:sigmaS=0.02:sigmaX=0.05"

private let cases: [Case] = {
    var c: [Case] = []
    for (d, h) in [(64, 3), (128, 8)] {
        for tokens in [512, 4096] {
            for threads in [1, 2] {
                c.append(Case(headDim: d, kvHeads: h, tokens: tokens, policy: "uniform:4:32", threads: threads))
            }
        }
        for threads in [1, 2] {
            c.append(Case(headDim: d, kvHeads: h, tokens: 4096, policy: qaqSpec, threads: threads))
        }
    }
    return c
}()

private final class PrefillState {
    let configuration: KVCacheConfiguration
    let keys: FloatBuffer
    let values: FloatBuffer
    let warmKeys: FloatBuffer
    let warmValues: FloatBuffer
    let tokens: Int

    init(_ c: Case) {
        do {
            let policy = try PolicySpec.parse(c.policy)
            configuration = KVCacheConfiguration(layers: 1, kvHeads: c.kvHeads, queryHeadsPerKVHead: 1, headDim: c.headDim,
                                                 policy: policy, attentionPlan: AttentionPlan(threads: c.threads, split: .head))
            let source = KVSource(tokens: c.tokens, kvHeads: c.kvHeads, headDim: c.headDim, seed: 17)
            keys = FloatBuffer(source.keys)
            values = FloatBuffer(source.values)
            warmKeys = FloatBuffer(Array(source.keys[0..<(2 * source.row)]))
            warmValues = FloatBuffer(Array(source.values[0..<(2 * source.row)]))
            tokens = c.tokens
            _ = try KVCache(configuration)   // the configuration is valid
        } catch {
            setupFailure(c.name, error)
        }
    }

    /// A fresh cache, its worker pool started when the plan has more than one thread.
    func freshCache() throws(CacheError) -> KVCache {
        let cache = try KVCache(configuration)
        if configuration.attentionPlan.threads > 1 {
            try cache.append(layer: 0, keys: warmKeys.buffer, values: warmValues.buffer)
            cache.reset()
        }
        return cache
    }
}

let benchmarks: @Sendable () -> Void = {
    for c in cases {
        Benchmark(
            c.name,
            configuration: suiteConfiguration(
                rate: [.tokensPerSecond], units: [.tokensPerSecond: .kilo],
                warmupIterations: 2, maxDuration: .milliseconds(1000), maxIterations: 500)
        ) { benchmark, state in
            let cache: KVCache
            do { cache = try state.freshCache() } catch {
                benchmark.error("cache: \(error)")
                return
            }
            let keys = state.keys.buffer, values = state.values.buffer
            var failure: CacheError?
            benchmark.startMeasurement()
            let t0 = nanosecondsNow()
            do throws(CacheError) { try cache.append(layer: 0, keys: keys, values: values) } catch { failure = error }
            let t1 = nanosecondsNow()
            benchmark.stopMeasurement()
            Benchmark.blackHole(cache)
            if let failure { benchmark.error("append failed: \(failure)") }
            benchmark.measurement(.tokensPerSecond, perSecond(state.tokens, t1 - t0))
        } setup: {
            PrefillState(c)
        }
    }
}

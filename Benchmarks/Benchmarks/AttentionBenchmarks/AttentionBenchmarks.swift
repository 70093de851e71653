// Fused decode attention over a filled cache (`KVCache.attention(layer:queries:into:)`) for
// the attention issue's shapes: D 64/128, GQA 1/3/4/8, contexts 1K–64K, 2/3/4/8 bits, the
// qaq mix and fp16, 1 and 2 threads, warm and cold. A representative set, not the cross
// product (33 benchmarks, about 3 minutes).
//
//   cd Benchmarks && swift package benchmark --target AttentionBenchmarks
//   swift package benchmark --target AttentionBenchmarks --filter 'Attention D=128 H=8 GQA=4 ctx=4096 .*'
//
// Names: `Attention D=… H=… GQA=… ctx=… <policy> threads=… warm|cold` (H = KV heads; the
// policy is a `PolicySpec` string, as `qaq bench attention --policy`).
//
// Setup (outside the measured region) builds the caches with the public API: batched
// appends of seeded Gaussian K/V rows; for the qaq policy one decode step and a refresh so
// that the stored widths are the policy's mix. Cold: enough distinct caches to cycle
// through ≥ 128 MiB (as `AttentionBench` does), one cache per measured call, so each call
// reads its cache from DRAM; warm: one cache, read again and again (in cache when it fits).
//
// The measured region is exactly one `attention(layer:queries:into:)` call into a
// caller-owned buffer: with a fixed policy it must not allocate, on one thread or two
// (`Malloc (total)` 0, gated strictly; the worker pool takes a C-convention job, so no
// closure context is boxed per call). The qaq policy records each step's attention
// (`recordAttention`, which takes an array); that count is gated strictly too
// (deterministic).
//
// Metrics: `Time (wall clock)` per decode step (one layer), `Throughput (# / s)` steps per
// second, `bytes/s` (shown in M, i.e. MB/s: the cache's codes + metadata + outliers +
// fp16 window per step over the step's time, as `qaq bench attention` reports GB/s) and
// `ps/token-head` (picoseconds per context token and KV head: `qaq bench attention`'s
// ns/token·KV-head × 1000).
import Benchmark
import QAQ
import QAQBenchSupport

/// One benchmark of the set.
private struct Case {
    var headDim: Int
    var kvHeads: Int
    var gqa: Int
    var context: Int
    var policy: String
    var threads: Int = 1
    var cold = false
    /// Scores of 4-bit keys by int8 dot products (`AttentionPlan.integerDot`; v4 hosts).
    var integerDot = false

    var name: String {
        "Attention D=\(headDim) H=\(kvHeads) GQA=\(gqa) ctx=\(context) \(policy)\(integerDot ? " int8" : "") threads=\(threads) \(cold ? "cold" : "warm")"
    }
}

/// The qaq policy benchmarked: the paper's targets (QAQPolicy's defaults, spelled out).
private let qaqSpec = "qaq:sigmaS=0.02:sigmaX=0.05"

private let cases: [Case] = {
    var c: [Case] = []
    // The attention issue's headline shape (Llama-3-8B-like): D=128, 8 KV heads, GQA 4.
    // Bits and policies at 4K, warm, 1 thread.
    for policy in ["uniform:2:32", "uniform:3:32", "uniform:4:32", "uniform:8:32", qaqSpec, "fp16"] {
        c.append(Case(headDim: 128, kvHeads: 8, gqa: 4, context: 4096, policy: policy))
    }
    // Contexts 1K–64K at 4 bits; 2 threads at 4K and 64K.
    for context in [1024, 16384, 65536] {
        c.append(Case(headDim: 128, kvHeads: 8, gqa: 4, context: context, policy: "uniform:4:32"))
    }
    c.append(Case(headDim: 128, kvHeads: 8, gqa: 4, context: 4096, policy: "uniform:4:32", threads: 2))
    c.append(Case(headDim: 128, kvHeads: 8, gqa: 4, context: 65536, policy: "uniform:4:32", threads: 2))
    // The reference model (SmolLM2-135M): D=64, 3 KV heads, GQA 3.
    for context in [1024, 4096, 16384] {
        c.append(Case(headDim: 64, kvHeads: 3, gqa: 3, context: context, policy: "uniform:4:32"))
    }
    c.append(Case(headDim: 64, kvHeads: 3, gqa: 3, context: 4096, policy: "uniform:4:32", threads: 2))
    c.append(Case(headDim: 64, kvHeads: 3, gqa: 3, context: 4096, policy: "uniform:2:32"))
    c.append(Case(headDim: 64, kvHeads: 3, gqa: 3, context: 4096, policy: qaqSpec))
    // No GQA (D=64, 8 KV heads) and GQA 8 (D=128).
    c.append(Case(headDim: 64, kvHeads: 8, gqa: 1, context: 4096, policy: "uniform:4:32"))
    c.append(Case(headDim: 64, kvHeads: 8, gqa: 1, context: 16384, policy: "uniform:4:32"))
    c.append(Case(headDim: 128, kvHeads: 8, gqa: 8, context: 4096, policy: "uniform:4:32"))
    c.append(Case(headDim: 128, kvHeads: 8, gqa: 8, context: 16384, policy: "uniform:4:32", threads: 2))
    // Int8 scores (AVX-512 VNNI) beside the fp32 ones: affine and rotated code-map keys.
    c.append(Case(headDim: 128, kvHeads: 8, gqa: 4, context: 4096, policy: "rlm:4:3"))
    for policy in ["uniform:4:32", "rlm:4:3"] {
        c.append(Case(headDim: 128, kvHeads: 8, gqa: 4, context: 4096, policy: policy, integerDot: true))
        c.append(Case(headDim: 128, kvHeads: 8, gqa: 4, context: 65536, policy: policy, integerDot: true))
    }
    // Cold: ≥ 128 MiB of distinct caches, 4K context.
    for policy in ["uniform:2:32", "uniform:4:32", "uniform:8:32", qaqSpec, "fp16"] {
        c.append(Case(headDim: 128, kvHeads: 8, gqa: 4, context: 4096, policy: policy, cold: true))
    }
    c.append(Case(headDim: 128, kvHeads: 8, gqa: 4, context: 4096, policy: "uniform:4:32", threads: 2, cold: true))
    c.append(Case(headDim: 64, kvHeads: 3, gqa: 3, context: 4096, policy: "uniform:4:32", cold: true))
    return c
}()

/// Bytes of distinct caches a cold benchmark cycles through at least.
private let coldBytes = 128 << 20

private final class AttentionState {
    let caches: [KVCache]
    let bytes: Int
    let tokenHeads: Int
    let queries: FloatBuffer
    let output: FloatBuffer
    var next = 0

    init(_ c: Case) {
        do {
            let policy = try PolicySpec.parse(c.policy)
            let plan = AttentionPlan(threads: c.threads, split: .head, integerDot: c.integerDot)
            let source = KVSource(tokens: min(c.context, 2048), kvHeads: c.kvHeads, headDim: c.headDim, seed: 5)
            var rng = GaussianGenerator(seed: 99)
            let q = rng.array(c.kvHeads * c.gqa * c.headDim)
            let first = try filledCache(policy: policy, headDim: c.headDim, kvHeads: c.kvHeads, gqa: c.gqa,
                                        context: c.context, plan: plan, source: source, queries: q)
            bytes = bytesRead(first)
            var all = [first]
            if c.cold {
                let copies = max(1, (coldBytes + bytes - 1) / max(bytes, 1))
                for _ in 1..<max(copies, 2) {
                    all.append(try filledCache(policy: policy, headDim: c.headDim, kvHeads: c.kvHeads, gqa: c.gqa,
                                               context: c.context, plan: plan, source: source, queries: q))
                }
            }
            caches = all
            tokenHeads = c.context * c.kvHeads
            queries = FloatBuffer(q)
            output = FloatBuffer(zeros: q.count)
            // One call per cache outside the measured region: workspaces and worker pools
            // grow to the context here, not in the first measured calls.
            for cache in caches { try cache.attention(layer: 0, queries: queries.buffer, into: output.mutableBuffer) }
        } catch {
            setupFailure(c.name, error)
        }
    }
}

let benchmarks: @Sendable () -> Void = {
    for c in cases {
        // Long contexts: fewer iterations suffice (a 64K step reads ~80 MB).
        let maxDuration: Duration = c.context >= 65536 ? .milliseconds(1500) : .milliseconds(800)
        Benchmark(
            c.name,
            configuration: suiteConfiguration(
                rate: [.bytesPerSecond, .picosecondsPerTokenHead], units: [.bytesPerSecond: .mega],
                maxDuration: maxDuration, maxIterations: 2000)
        ) { benchmark, state in
            let cache = state.caches[state.next]
            state.next = state.next + 1 == state.caches.count ? 0 : state.next + 1
            let queries = state.queries.buffer, output = state.output.mutableBuffer
            var failure: CacheError?
            benchmark.startMeasurement()
            let t0 = nanosecondsNow()
            do throws(CacheError) { try cache.attention(layer: 0, queries: queries, into: output) } catch { failure = error }
            let t1 = nanosecondsNow()
            benchmark.stopMeasurement()
            Benchmark.blackHole(output[0])
            if let failure { benchmark.error("attention failed: \(failure)") }
            benchmark.measurement(.bytesPerSecond, perSecond(state.bytes, t1 - t0))
            benchmark.measurement(.picosecondsPerTokenHead, Int((Double(t1 - t0) * 1000 / Double(state.tokenHeads)).rounded()))
        } setup: {
            AttentionState(c)
        }
    }
}

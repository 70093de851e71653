import QAQ
import QAQTestSupport
import Synchronization
import Testing

@Suite("Attention plans: threads and splits")
struct AttentionPlanTests {
    static let data = SyntheticKV(tokens: 150, kvHeads: 3, queryHeadsPerKVHead: 3, dim: 64, seed: 11)

    static let plans: [AttentionPlan] = [
        .serial,
        AttentionPlan(threads: 2, split: .head),
        AttentionPlan(threads: 2, split: .tokens, chunkTokens: 32),
        AttentionPlan(threads: 2, split: .both, chunkTokens: 16),
        AttentionPlan(threads: 3, split: .tokens, chunkTokens: 1),
        AttentionPlan(threads: 4, split: .both, cpus: [0], chunkTokens: 48),
    ]

    @Test("every plan gives the fp64 reference's output and probabilities (fp32 tolerance), every ISA level",
          arguments: ["fp16", "q4_0", "uniform:4:32", "uniform:2:32", "kivi:4", "qaq:window=4", "rlm:4:3:window=4",
                      "rlm:3:2:scale=log8:center=on:stage=8:window=4"])
    func plansMatchReference(spec: String) throws {
        let d = Self.data
        for isa in ISALevel.available {
            let cache = try KVCache(KVCacheConfiguration(layers: 1, kvHeads: 3, queryHeadsPerKVHead: 3, headDim: 64,
                                                         policy: try PolicySpec.parse(spec), pageTokens: 16, kernels: .forLevel(isa)))
            // Contexts that are not a multiple of the page, the chunk or the thread count.
            for t in 0..<150 {
                let (k, v) = d.token(t)
                try cache.append(layer: 0, keys: Array(k), values: Array(v))
                guard [1, 2, 17, 63, 101, 149].contains(t) else { continue }
                let q = Array(d.query(t))
                let reference = try cache.referenceAttention(layer: 0, queries: q)
                let scale = max(reference.output.map { abs($0) }.max()!, 1)
                var first: [Float]?
                for plan in Self.plans {
                    cache.attentionPlan = plan
                    let fused = try cache.attentionWithProbabilities(layer: 0, queries: q)
                    for i in 0..<fused.output.count {
                        #expect(abs(fused.output[i] - reference.output[i]) <= 2e-5 * scale, "\(spec) \(isa) \(plan) t=\(t) i=\(i)")
                    }
                    for i in 0..<fused.probabilities.count {
                        #expect(abs(fused.probabilities[i] - reference.probabilities[i]) <= 1e-5, "\(spec) \(isa) \(plan) t=\(t) p[\(i)]")
                    }
                    // Plans differ only in the order of fp32 sums.
                    if let first {
                        for i in 0..<first.count { #expect(abs(fused.output[i] - first[i]) <= 1e-5 * scale, "\(spec) \(plan) vs serial") }
                    } else {
                        first = fused.output
                    }
                }
            }
        }
    }

    @Test("the pointer API writes the same output as the array API, and an empty cache gives zeros")
    func pointerAPI() throws {
        let d = Self.data
        let cache = try KVCache(KVCacheConfiguration(layers: 2, kvHeads: 3, queryHeadsPerKVHead: 3, headDim: 64,
                                                     policy: try PolicySpec.parse("uniform:4:32"), pageTokens: 16,
                                                     attentionPlan: AttentionPlan(threads: 2, split: .tokens, chunkTokens: 16)))
        let q = Array(d.query(0))
        var out = [Float](repeating: .nan, count: q.count)
        try q.withUnsafeBufferPointer { qb in try out.withUnsafeMutableBufferPointer { try cache.attention(layer: 1, queries: qb, into: $0) } }
        #expect(out.allSatisfy { $0 == 0 })
        for t in 0..<40 {
            let (k, v) = d.token(t)
            try cache.append(layer: 1, keys: Array(k), values: Array(v))
        }
        let byArray = try cache.attention(layer: 1, queries: q)
        try q.withUnsafeBufferPointer { qb in try out.withUnsafeMutableBufferPointer { try cache.attention(layer: 1, queries: qb, into: $0) } }
        #expect(out == byArray)
        var short = [Float](repeating: 0, count: 5)
        #expect(throws: CacheError.self) {
            try q.withUnsafeBufferPointer { qb in try short.withUnsafeMutableBufferPointer { try cache.attention(layer: 1, queries: qb, into: $0) } }
        }
    }

    @Test("the worker pool runs every item exactly once, on up to its thread count of workers", arguments: [1, 2, 3, 8])
    func pool(threads: Int) {
        let pool = WorkerPool(threads: threads)
        for items in [0, 1, 5, 64, 1000] {
            let counts = UnsafeMutablePointer<Int>.allocate(capacity: max(items, 1))
            counts.initialize(repeating: 0, count: max(items, 1))
            // Workers seen, as a bit mask (an atomic: the thread sanitizer does not see
            // Synchronization.Mutex's locking on Linux and reported races through it).
            let workersSeen = Atomic<Int>(0)
            pool.run(items: items) { worker, i in
                counts[i] += 1
                workersSeen.bitwiseOr(worker >= 0 && worker < 62 ? 1 << worker : 1 << 62, ordering: .relaxed)
            }
            for i in 0..<items { #expect(counts[i] == 1, "item \(i) of \(items)") }
            #expect(workersSeen.load(ordering: .relaxed) >> threads == 0, "a worker index outside 0..<\(threads)")
            counts.deallocate()
        }
    }
}

import QAQ
import QAQTestSupport
import Testing

@Suite("Prefill: batched append on threads, causal block attention")
struct PrefillTests {
    static let data = SyntheticKV(tokens: 150, kvHeads: 3, queryHeadsPerKVHead: 3, dim: 64, seed: 23)
    /// The policies of AttentionPlanTests.
    static let policies = ["fp16", "q4_0", "uniform:4:32", "uniform:2:32", "kivi:4", "qaq:window=4", "rlm:4:3:window=4",
                           "rlm:3:2:scale=log8:center=on:stage=8:window=4"]

    static func cache(_ spec: String, plan: AttentionPlan, isa: ISALevel? = nil) throws -> KVCache {
        try KVCache(KVCacheConfiguration(layers: 1, kvHeads: 3, queryHeadsPerKVHead: 3, headDim: 64, policy: try PolicySpec.parse(spec),
                                         pageTokens: 16, kernels: isa.map(KernelSet.forLevel) ?? .active, attentionPlan: plan))
    }

    /// Tokens `range` of the data as one batch.
    static func append(_ cache: KVCache, _ range: Range<Int>) throws {
        guard !range.isEmpty else { return }
        let row = data.kvHeads * data.dim
        try cache.append(layer: 0, keys: Array(data.keys[(range.lowerBound * row)..<(range.upperBound * row)]),
                         values: Array(data.values[(range.lowerBound * row)..<(range.upperBound * row)]))
    }

    /// Queries of tokens `range`, `[count][queryHeads][D]`.
    static func queries(_ range: Range<Int>) -> [Float] {
        let row = data.kvHeads * data.queryHeadsPerKVHead * data.dim
        return Array(data.queries[(range.lowerBound * row)..<(range.upperBound * row)])
    }

    /// Everything observable of two caches is identical, bit for bit.
    static func expectIdentical(_ a: KVCache, _ b: KVCache, _ note: String) throws {
        #expect(try a.tokenCount(layer: 0) == b.tokenCount(layer: 0), "\(note): tokens")
        #expect(a.memory == b.memory, "\(note): memory")
        for h in 0..<3 {
            let fa = try a.storedFormats(layer: 0, head: h), fb = try b.storedFormats(layer: 0, head: h)
            #expect(fa.count == fb.count, "\(note): stored tokens of head \(h)")
            for (x, y) in zip(fa, fb) where x.position != y.position || x.key != y.key || x.value != y.value {
                Issue.record("\(note): head \(h) position \(x.position) stored as \(x.key)/\(x.value) vs \(y.position) \(y.key)/\(y.value)")
                break
            }
            for keys in [true, false] {
                let ra = try a.storedRows(layer: 0, head: h, keys: keys), rb = try b.storedRows(layer: 0, head: h, keys: keys)
                #expect(ra.map(\.bitPattern) == rb.map(\.bitPattern), "\(note): head \(h) \(keys ? "keys" : "values")")
            }
        }
    }

    @Test("a batched append on 2–4 threads stores exactly what the serial append stores (every policy)", arguments: policies)
    func parallelAppendIsSerial(spec: String) throws {
        for threads in [2, 3, 4] {
            let serial = try Self.cache(spec, plan: .serial)
            let parallel = try Self.cache(spec, plan: AttentionPlan(threads: threads, split: .head))
            var start = 0
            for n in [1, 37, 5, 64, 43] {
                try Self.append(serial, start..<(start + n))
                try Self.append(parallel, start..<(start + n))
                start += n
                try Self.expectIdentical(serial, parallel, "\(spec) \(threads) threads after \(start) tokens")
                // A decode step on both (the same serial plan: the same sums), so policies that
                // read attention see the same history before the next batch.
                parallel.attentionPlan = .serial
                let q = Array(Self.data.query(start - 1))
                let a = try serial.attention(layer: 0, queries: q), b = try parallel.attention(layer: 0, queries: q)
                #expect(a.map(\.bitPattern) == b.map(\.bitPattern), "\(spec) \(threads) threads: decode output after \(start)")
                parallel.attentionPlan = AttentionPlan(threads: threads, split: .head)
            }
            try serial.refresh(layer: 0)
            try parallel.refresh(layer: 0)
            try Self.expectIdentical(serial, parallel, "\(spec) \(threads) threads after refresh")
        }
    }

    @Test("a batched append on threads validates first: a bad token anywhere leaves the cache unchanged")
    func parallelAppendValidatesFirst() throws {
        let cache = try Self.cache("uniform:4:32", plan: AttentionPlan(threads: 3, split: .head))
        try Self.append(cache, 0..<40)
        let before = cache.memory
        let rows = try cache.storedRows(layer: 0, head: 2, keys: false)
        let row = 3 * 64
        var keys = Array(Self.data.keys[(40 * row)..<(60 * row)]), values = Array(Self.data.values[(40 * row)..<(60 * row)])
        values[19 * row + 2 * 64 + 5] = .nan
        #expect(throws: CacheError.nonFinite(layer: 0, token: 19)) { try cache.append(layer: 0, keys: keys, values: values) }
        values[19 * row + 2 * 64 + 5] = 0
        keys[7 * row + 1] = 70_000
        #expect(throws: CacheError.outOfRange(layer: 0, token: 7)) { try cache.append(layer: 0, keys: keys, values: values) }
        #expect(try cache.tokenCount(layer: 0) == 40)
        #expect(cache.memory == before)
        #expect(try cache.storedRows(layer: 0, head: 2, keys: false) == rows)
    }

    @Test("block attention: every query equals the fp64 reference over its causal prefix (blocks 1, 7, 33; 1 and 3 threads; every ISA level)",
          arguments: policies)
    func blockMatchesReference(spec: String) throws {
        for isa in ISALevel.available {
            for block in [1, 7, 33] {
                // Contexts of 1…134 tokens: not multiples of the 16-token page.
                for prefix in [0, 20, 101] {
                    for threads in [1, 3] {
                        let cache = try Self.cache(spec, plan: AttentionPlan(threads: threads, split: .head), isa: isa)
                        try Self.append(cache, 0..<prefix)
                        try Self.append(cache, prefix..<(prefix + block))
                        let q = Self.queries(prefix..<(prefix + block))
                        let out = try cache.attention(layer: 0, queries: q, count: block)
                        let qRow = 9 * 64
                        for i in 0..<block {
                            let reference = try cache.referenceAttention(layer: 0, queries: Array(q[(i * qRow)..<((i + 1) * qRow)]),
                                                                         context: prefix + i + 1).output
                            let scale = max(reference.map { abs($0) }.max()!, 1)
                            var worst: Float = 0
                            for e in 0..<qRow { worst = max(worst, abs(out[i * qRow + e] - reference[e])) }
                            #expect(worst <= 2e-5 * scale, "\(spec) \(isa) block \(block) prefix \(prefix) \(threads) threads: query \(i) off by \(worst)")
                        }
                    }
                }
            }
        }
    }

    @Test("block attention: query i equals decode attention on the cache truncated to its prefix",
          arguments: ["fp16", "q4_0", "uniform:4:32", "qaq:window=4", "rlm:4:3:window=4", "rlm:3:2:scale=log8:center=on:stage=8:window=4"])
    func blockMatchesDecodeOnPrefix(spec: String) throws {
        for block in [7, 33] {
            let cache = try Self.cache(spec, plan: AttentionPlan(threads: 2, split: .head))
            try Self.append(cache, 0..<90)
            try Self.append(cache, 90..<(90 + block))
            let q = Self.queries(90..<(90 + block))
            let out = try cache.attention(layer: 0, queries: q, count: block)
            cache.attentionPlan = .serial
            let qRow = 9 * 64
            for i in (0..<block).reversed() {
                try cache.truncate(to: 90 + i + 1)
                let decode = try cache.attention(layer: 0, queries: Array(q[(i * qRow)..<((i + 1) * qRow)]))
                let scale = max(decode.map { abs($0) }.max()!, 1)
                for e in 0..<qRow {
                    #expect(abs(out[i * qRow + e] - decode[e]) <= 2e-5 * scale, "\(spec) block \(block) query \(i) [\(e)]")
                }
            }
        }
    }

    @Test("block attention: typed errors for a bad count, shapes and non-finite queries")
    func blockErrors() throws {
        let cache = try Self.cache("uniform:4:32", plan: .serial)
        let q = Self.queries(0..<3)
        #expect(throws: CacheError.queryBlockOutOfRange(layer: 0, count: 1, tokens: 0)) { _ = try cache.attention(layer: 0, queries: Self.queries(0..<1), count: 1) }
        try Self.append(cache, 0..<2)
        #expect(throws: CacheError.queryBlockOutOfRange(layer: 0, count: 3, tokens: 2)) { _ = try cache.attention(layer: 0, queries: q, count: 3) }
        #expect(throws: CacheError.queryBlockOutOfRange(layer: 0, count: 0, tokens: 2)) { _ = try cache.attention(layer: 0, queries: [], count: 0) }
        #expect(throws: CacheError.self) { _ = try cache.attention(layer: 0, queries: q, count: 2) }
        #expect(throws: CacheError.layerOutOfRange(layer: 1, layers: 1)) { _ = try cache.attention(layer: 1, queries: q, count: 2) }
        var two = Self.queries(0..<2)
        var short = [Float](repeating: 0, count: two.count - 1)
        #expect(throws: CacheError.self) {
            try two.withUnsafeBufferPointer { qb in try short.withUnsafeMutableBufferPointer { try cache.attention(layer: 0, queries: qb, count: 2, into: $0) } }
        }
        two[9 * 64 + 3] = .infinity
        #expect(throws: CacheError.nonFinite(layer: 0, token: 1)) { _ = try cache.attention(layer: 0, queries: two, count: 2) }
        // The pointer API writes what the array API returns.
        let good = Self.queries(0..<2)
        let byArray = try cache.attention(layer: 0, queries: good, count: 2)
        var out = [Float](repeating: .nan, count: good.count)
        try good.withUnsafeBufferPointer { qb in try out.withUnsafeMutableBufferPointer { try cache.attention(layer: 0, queries: qb, count: 2, into: $0) } }
        #expect(out == byArray)
    }
}

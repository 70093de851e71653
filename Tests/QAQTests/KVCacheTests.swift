import QAQ
import QAQTestSupport
import Testing

/// Appends `data`'s tokens one by one with an attention step after each; returns the cache.
func streamCache(_ policy: any CachePolicy, _ data: SyntheticKV, refreshEvery: Int = 0) throws -> KVCache {
    let cache = try KVCache(KVCacheConfiguration(layers: 2, kvHeads: data.kvHeads, queryHeadsPerKVHead: data.queryHeadsPerKVHead,
                                                 headDim: data.dim, policy: policy, pageTokens: 16))
    for t in 0..<data.tokens {
        let (k, v) = data.token(t)
        for layer in 0..<2 {
            try cache.append(layer: layer, keys: Array(k), values: Array(v))
            _ = try cache.attention(layer: layer, queries: Array(data.query(t)))
            if refreshEvery > 0, t % refreshEvery == refreshEvery - 1 { try cache.refresh(layer: layer) }
        }
    }
    return cache
}

@Suite("KV cache")
struct KVCacheTests {
    static let data = SyntheticKV(tokens: 90, kvHeads: 2, queryHeadsPerKVHead: 3, dim: 64, seed: 7)

    @Test("fp32 cache attention equals exact fp64 attention")
    func exactAttention() throws {
        let d = Self.data
        let cache = try KVCache(KVCacheConfiguration(layers: 1, kvHeads: 2, queryHeadsPerKVHead: 3, headDim: 64, policy: FixedPolicy.fp32))
        for t in 0..<d.tokens {
            let (k, v) = d.token(t)
            try cache.append(layer: 0, keys: Array(k), values: Array(v))
            let out = try cache.attention(layer: 0, queries: Array(d.query(t)))
            let exact = d.exactAttention(step: t)
            for i in 0..<out.count { #expect(abs(Double(out[i]) - exact[i]) <= 1e-5 * max(1, abs(exact[i])), "t=\(t) i=\(i)") }
        }
    }

    @Test("fused attention matches the fp64 reference over the same stored cache, every policy and ISA level",
          arguments: ["fp32", "fp16", "q8_0", "q4_0", "uniform:4:32", "uniform:3:64", "kivi:2", "qaq:window=4",
                      "qaq:keys=channel:window=4", "qaq:keys=rotated:window=4:alpha=0.03",
                      "rlm:4:3:window=4", "rlm:3:2:scale=log8:center=on:stage=8:window=4", "qaq:map=lm:window=4"])
    func fusedMatchesReference(spec: String) throws {
        let d = Self.data
        for isa in ISALevel.available {
            let cache = try KVCache(KVCacheConfiguration(layers: 1, kvHeads: 2, queryHeadsPerKVHead: 3, headDim: 64,
                                                         policy: try PolicySpec.parse(spec), pageTokens: 16, kernels: .forLevel(isa)))
            for t in 0..<70 {
                let (k, v) = d.token(t)
                try cache.append(layer: 0, keys: Array(k), values: Array(v))
                let q = Array(d.query(t))
                let reference = try cache.referenceAttention(layer: 0, queries: q)
                let fused = try cache.attentionWithProbabilities(layer: 0, queries: q)
                // fp32 scores and accumulation vs fp64: relative to the output scale.
                let scale = reference.output.map { abs($0) }.max()!
                for i in 0..<fused.output.count {
                    #expect(abs(fused.output[i] - reference.output[i]) <= 2e-5 * max(scale, 1), "\(spec) \(isa) t=\(t) i=\(i)")
                }
                for i in 0..<fused.probabilities.count {
                    #expect(abs(fused.probabilities[i] - reference.probabilities[i]) <= 1e-5, "\(spec) \(isa) t=\(t) p[\(i)]")
                }
            }
        }
    }

    @Test("memory matches a hand count for fixed formats", arguments: ["fp32", "fp16", "q8_0", "q4_0", "uniform:4:32", "uniform:2:32", "uniform:3:64"])
    func handCountFixed(spec: String) throws {
        let d = Self.data
        let cache = try streamCache(try PolicySpec.parse(spec), d)
        let m = cache.memory
        let vectors = 2 * 2 * d.tokens            // layers × KV heads × tokens, per stream
        let perVector: Int
        switch spec {
        case "fp32": perVector = 4 * 64
        case "fp16": perVector = 2 * 64
        case "q8_0": perVector = 2 * 34          // two 32-value blocks
        case "q4_0": perVector = 2 * 18
        case "uniform:4:32": perVector = 64 * 4 / 8 + 2 * 4
        case "uniform:2:32": perVector = 64 * 2 / 8 + 2 * 4
        default: perVector = 64 * 3 / 8 + 1 * 4   // uniform:3:64
        }
        let stored: Int = 2 * vectors * perVector
        #expect(m.codes + m.metadata + m.outliers == stored)
        #expect(m.window == 0)
        // Bookkeeping: a 4-byte position per stored record (fixed policies keep no
        // attention history or ranges).
        let bookkeeping: Int = 2 * vectors * 4
        #expect(m.bookkeeping == bookkeeping)
        let elements: Int = vectors * 128
        #expect(m.elements == elements)
        let ratio: Double = Double(elements * 2) / Double(m.total)
        #expect(abs(m.compressionRatio - ratio) < 1e-12)
    }

    @Test("rlm: codebook records, fp16 sinks and window, counted exactly")
    func rlmHandCount() throws {
        let d = Self.data
        let cache = try streamCache(try PolicySpec.parse("rlm:4:3:sink=1:window=8"), d)
        let m = cache.memory
        let heads = 2 * 2
        let stored = d.tokens - 8 - 1                 // outside the window, past the sink
        let perToken: Int = (64 * 4 / 8 + 2) + (64 * 3 / 8 + 2)
        let sinkBytes: Int = 64 * 2 * 2
        #expect(m.codes + m.metadata + m.outliers == heads * (stored * perToken + sinkBytes))
        #expect(m.window == heads * 8 * 64 * 2 * 2)
        #expect(try cache.storedFormats(layer: 0, head: 0).first!.key == .fp16)
        #expect(throws: CacheError.self) { try PolicySpec.parse("rlm:5:3") }
        #expect(throws: CacheError.self) { try PolicySpec.parse("rlm:4:3:scale=bf16") }
    }

    @Test("KIVI: channel key blocks, per-token values and an fp16 residual, counted exactly")
    func kiviHandCount() throws {
        let d = Self.data
        let cache = try streamCache(KIVIPolicy(bits: 2), d)
        let m = cache.memory
        let blocks = d.tokens / 32                   // full key blocks per head
        let residual = d.tokens - 32 * blocks        // fp16 tokens per head
        let heads = 2 * 2
        let keyBlock: Int = 512 + 256                // codes (64·32·2/8) + fp16 scale and min per channel
        let value: Int = 16 + 8                      // 64·2/8 codes + two groups' lo/step
        let stored: Int = heads * (blocks * keyBlock + 32 * blocks * value)
        #expect(m.codes + m.metadata == stored)
        let window: Int = heads * residual * 256
        #expect(m.window == window)
    }

    @Test("QAQ: every stored token's bits follow the formula; bits never rise; memory matches the formats")
    func qaqBits() throws {
        let d = SyntheticKV(tokens: 120, kvHeads: 1, queryHeadsPerKVHead: 3, dim: 64, seed: 11)
        let policy = QAQPolicy(sigmaS: 0.02, sigmaX: 0.05, minBits: 1, maxBits: 8, group: 32, outlierFraction: 0, hotWindow: 8)
        let cache = try KVCache(KVCacheConfiguration(layers: 1, kvHeads: 1, queryHeadsPerKVHead: 3, headDim: 64, policy: policy, pageTokens: 16))
        var lastBits: [Int: (Int, Int)] = [:]
        for t in 0..<d.tokens {
            let (k, v) = d.token(t)
            try cache.append(layer: 0, keys: Array(k), values: Array(v))
            _ = try cache.attention(layer: 0, queries: Array(d.query(t)))
            if t % 10 == 9 { try cache.refresh(layer: 0) }
            for f in try cache.storedFormats(layer: 0, head: 0) {
                let bits = (f.key.bits, f.value.bits)
                if let prev = lastBits[f.position] {
                    #expect(bits.0 <= prev.0 && bits.1 <= prev.1, "position \(f.position): bits rose \(prev) → \(bits)")
                }
                lastBits[f.position] = bits
            }
        }
        let formats = try cache.storedFormats(layer: 0, head: 0)
        #expect(formats.count == d.tokens - 8)
        var bytes = 0
        for f in formats {
            for format in [f.key, f.value] {
                guard case .affine(let b, let g, let k) = format else { Issue.record("not affine: \(format)"); continue }
                bytes += try PackedLayout(dim: 64, groupSize: g, bits: b, outlierCount: k).recordBytes
            }
        }
        let m = cache.memory
        #expect(m.codes + m.metadata + m.outliers == bytes)
        #expect(m.window == 8 * 64 * 2 * 2)
        // Positions of stored records, 10 bytes of attention history and 4 of ranges per token.
        #expect(m.bookkeeping == 2 * formats.count * 4 + d.tokens * 14)
        // Varying sensitivities must give varying bits on this data.
        #expect(Set(formats.map(\.value.bits)).count > 1)
    }

    @Test("a token leaving the window gets the bits of the formula")
    func bitsFromFormula() throws {
        let policy = QAQPolicy(sigmaS: 0.01, sigmaX: 0.02, minBits: 1, maxBits: 8, group: 64, outlierFraction: 0, hotWindow: 2)
        let ctx = TokenContext(position: 5, contextLength: 40, keyRange: 6, valueRange: 3, recentMaxAttention: 0.3,
                               queryNormSquared: 2.5, dim: 64)
        let sigmaV = 0.02 / (40.0.squareRoot() * Double(Float(0.3)))
        let sigmaK = (log(40.0 * 40 * 40 / 39 * 0.01 * 0.01 + 1) / 2.5).squareRoot()
        func expected(_ r: Double, _ s: Double) -> Int {
            let b = Int((log2(r / (2 * 3.0.squareRoot() * s))).rounded(.up))
            let c = min(8, max(1, b))
            return [5, 6, 7].contains(c) ? 8 : c
        }
        #expect(policy.valueBits(ctx) == expected(3, sigmaV))
        #expect(policy.keyBits(ctx) == expected(6, sigmaK))
        // Unknown statistics: the top width.
        var unknown = ctx
        unknown.recentMaxAttention = 0
        unknown.queryNormSquared = 0
        #expect(policy.valueBits(unknown) == 8 && policy.keyBits(unknown) == 8)
    }

    @Test("channel key blocks take the most bits any token needs, rounded up to a stored width")
    func channelBlockBits() {
        let policy = QAQPolicy(sigmaS: 0.01, minBits: 1, maxBits: 8, keyScheme: .channel(blockTokens: 32))
        var seen = Set<Int>()
        for range in stride(from: Float(0.5), through: 200, by: 0.5) {
            let ctx = TokenContext(position: 40, contextLength: 100, keyRange: range, valueRange: 1, recentMaxAttention: 0.1,
                                   queryNormSquared: 2, dim: 64)
            let b = policy.keyBlockBits([ctx, ctx])
            #expect([2, 4, 8].contains(b))
            #expect(b >= policy.keyBits(ctx))
            seen.insert(policy.keyBits(ctx))
        }
        #expect(seen.contains(3))   // the case that used to reach the codec unsupported
    }

    @Test("lowering by refresh equals quantizing the original at the lower width")
    func loweringIsExact() throws {
        let d = SyntheticKV(tokens: 40, kvHeads: 1, queryHeadsPerKVHead: 1, dim: 64, seed: 5)
        // A policy that stores at 8 bits first, then asks for 3 bits at refresh.
        struct Drop: CachePolicy {
            var hotWindow: Int { 0 }
            var keyScheme: KeyScheme { .token }
            func storage(for token: TokenContext) -> (key: StorageFormat, value: StorageFormat) {
                (.affine(bits: 8, group: 32, outliers: 1), .affine(bits: 8, group: 32, outliers: 1))
            }
            func lowered(for token: TokenContext, key: StorageFormat, value: StorageFormat) -> (key: StorageFormat, value: StorageFormat)? {
                (.affine(bits: 3, group: 32, outliers: 1), .affine(bits: 3, group: 32, outliers: 1))
            }
            var description: String { "drop" }
        }
        let cache = try KVCache(KVCacheConfiguration(layers: 1, kvHeads: 1, queryHeadsPerKVHead: 1, headDim: 64, policy: Drop()))
        for t in 0..<d.tokens {
            let (k, v) = d.token(t)
            try cache.append(layer: 0, keys: Array(k), values: Array(v))
        }
        try cache.refresh(layer: 0)
        let rows = try cache.storedRows(layer: 0, head: 0, keys: true)
        let layout3 = try PackedLayout(dim: 64, groupSize: 32, bits: 3, outlierCount: 1)
        for t in 0..<d.tokens {
            let direct = try PackedVectors.quantizing(Array(d.token(t).keys), layout: layout3).dequantized()
            #expect(Array(rows[(t * 64)..<((t + 1) * 64)]) == direct, "token \(t)")
        }
        #expect(try cache.storedFormats(layer: 0, head: 0).allSatisfy { $0.key.bits == 3 && $0.value.bits == 3 })
    }

    @Test("lowering across code maps (rotated Lloyd-Max 4 → 3 → 2 bits, re-encoded from the stored values) stays within ‖Q_low(x) − x‖ + 2‖x̂ − x‖")
    func loweringAcrossCodeMaps() throws {
        // Lloyd-Max codes do not nest by shift, so a lowered token is re-encoded from its
        // current levels x̂: L(x) = Q_low(x̂). Were Q_low the exact projection onto its code
        // set, ‖Q_low(x̂) − x̂‖ ≤ ‖Q_low(x) − x̂‖, hence ‖L(x) − x‖ ≤ ‖Q_low(x) − x‖ + 2‖x̂ − x‖.
        // The quantizer (nearest levels at the RMS scale, then the least-squares scale) is not
        // the exact projection; the bound is asserted per vector with 5 % slack for that, and
        // exactly on the sum over vectors.
        final class Drop: CachePolicy, @unchecked Sendable {
            var target: Int
            init(target: Int) { self.target = target }
            var hotWindow: Int { 0 }
            var keyScheme: KeyScheme { .token }
            func storage(for token: TokenContext) -> (key: StorageFormat, value: StorageFormat) {
                (.codebook(bits: 4, scale: .f16, rotated: true), .codebook(bits: 4, scale: .f16, rotated: true))
            }
            func lowered(for token: TokenContext, key: StorageFormat, value: StorageFormat) -> (key: StorageFormat, value: StorageFormat)? {
                (.codebook(bits: target, scale: .f16, rotated: true), .codebook(bits: target, scale: .f16, rotated: true))
            }
            var description: String { "drop" }
        }
        let dim = 64, n = 48
        let data = SyntheticKV(tokens: n, kvHeads: 1, queryHeadsPerKVHead: 1, dim: dim, seed: 9)
        let policy = Drop(target: 3)
        let cache = try KVCache(KVCacheConfiguration(layers: 1, kvHeads: 1, queryHeadsPerKVHead: 1, headDim: dim, policy: policy))
        for t in 0..<n {
            let (k, v) = data.token(t)
            try cache.append(layer: 0, keys: Array(k), values: Array(v))
        }
        func direct(_ x: [Float], bits: Int) throws -> [Float] {
            let codec = try RotatedCodebookCodec(dim: dim, bits: bits, scale: .vectorF16, rotation: .defaultHadamard)
            var bytes = [UInt8](repeating: 0, count: codec.bytesPerVector)
            var out = [Float](repeating: 0, count: dim)
            try x.withUnsafeBufferPointer { src in try bytes.withUnsafeMutableBytes { try codec.encode(src.baseAddress!, count: 1, into: $0.baseAddress!) } }
            bytes.withUnsafeBytes { src in out.withUnsafeMutableBufferPointer { codec.decode(src.baseAddress!, count: 1, into: $0.baseAddress!) } }
            return out
        }
        func distance(_ a: [Float], _ b: [Float]) -> Double {
            zip(a, b).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }.squareRoot()
        }
        var previous = try cache.storedRows(layer: 0, head: 0, keys: true)
        for (step, target) in [3, 2].enumerated() {
            policy.target = target
            try cache.refresh(layer: 0)
            #expect(try cache.storedFormats(layer: 0, head: 0).allSatisfy { $0.key.bits == target && $0.value.bits == target })
            let lowered = try cache.storedRows(layer: 0, head: 0, keys: true)
            var sumLowered = 0.0, sumBound = 0.0
            for t in 0..<n {
                let x = Array(data.token(t).keys)
                let before = Array(previous[(t * dim)..<((t + 1) * dim)]), after = Array(lowered[(t * dim)..<((t + 1) * dim)])
                // Re-encoding from the stored values is exactly Q_low(x̂).
                #expect(after == (try direct(before, bits: target)), "step \(step) token \(t): lowered = Q_low(x̂)")
                let e = distance(after, x), bound = distance(try direct(x, bits: target), x) + 2 * distance(before, x)
                #expect(e <= 1.05 * bound, "step \(step) token \(t): ‖L(x) − x‖ = \(e) > bound \(bound)")
                sumLowered += e
                sumBound += bound
            }
            #expect(sumLowered <= sumBound, "step \(step): Σ‖L(x) − x‖ = \(sumLowered) > Σ bound \(sumBound)")
            previous = lowered
        }
    }

    @Test("bad input: typed errors, cache unchanged")
    func badInput() throws {
        let d = Self.data
        let cache = try streamCache(QAQPolicy(hotWindow: 4), SyntheticKV(tokens: 12, kvHeads: 2, queryHeadsPerKVHead: 3, dim: 64, seed: 3))
        let before = cache.memory
        let count = try cache.tokenCount(layer: 0)
        var k = Array(d.token(0).keys), v = Array(d.token(0).values)
        k[70] = .nan
        #expect(throws: CacheError.nonFinite(layer: 0, token: 0)) { try cache.append(layer: 0, keys: k, values: v) }
        k[70] = 1
        v[3] = .infinity
        #expect(throws: CacheError.nonFinite(layer: 1, token: 0)) { try cache.append(layer: 1, keys: k, values: v) }
        v[3] = 70000
        #expect(throws: CacheError.outOfRange(layer: 1, token: 0)) { try cache.append(layer: 1, keys: k, values: v) }
        v[3] = 0
        #expect(throws: CacheError.layerOutOfRange(layer: 2, layers: 2)) { try cache.append(layer: 2, keys: k, values: v) }
        #expect(throws: CacheError.self) { try cache.append(layer: 0, keys: Array(k.dropLast()), values: Array(v.dropLast())) }
        #expect(throws: CacheError.self) { try cache.attention(layer: 0, queries: [Float](repeating: 0, count: 5)) }
        var p = [Float](repeating: 0, count: 6 * count)
        p[3] = -0.1
        #expect(throws: CacheError.invalidProbability(layer: 0, head: 0, token: 3, value: -0.1)) { try cache.recordAttention(layer: 0, probabilities: p) }
        p[3] = 1.5
        #expect(throws: CacheError.invalidProbability(layer: 0, head: 0, token: 3, value: 1.5)) { try cache.recordAttention(layer: 0, probabilities: p) }
        p[3] = .nan
        #expect(throws: CacheError.self) { try cache.recordAttention(layer: 0, probabilities: p) }
        #expect(cache.memory == before)
        #expect(try cache.tokenCount(layer: 0) == count)
        let limited = try KVCache(KVCacheConfiguration(layers: 1, kvHeads: 2, queryHeadsPerKVHead: 3, headDim: 64,
                                                       policy: FixedPolicy.fp16, maxTokens: 1))
        try limited.append(layer: 0, keys: Array(d.token(0).keys), values: Array(d.token(0).values))
        #expect(throws: CacheError.contextFull(layer: 0, tokens: 1, appending: 1, limit: 1)) {
            try limited.append(layer: 0, keys: Array(d.token(1).keys), values: Array(d.token(1).values))
        }
        #expect(throws: CacheError.invalidConfiguration("head dimension 72 is not supported: a multiple of 16 up to 256")) {
            try KVCache(KVCacheConfiguration(layers: 1, kvHeads: 1, queryHeadsPerKVHead: 1, headDim: 72, policy: FixedPolicy.fp16))
        }
    }

    @Test("truncate: the cache equals one that never saw the dropped tokens", arguments: ["fp16", "uniform:4:32", "kivi:4", "qaq:window=8"])
    func truncate(spec: String) throws {
        let d = Self.data
        let policy = try PolicySpec.parse(spec)
        let full = try streamCache(policy, d)
        try full.truncate(to: 50)
        #expect(try full.tokenCount(layer: 1) == 50)
        let q = Array(d.query(49))
        let a = try full.attention(layer: 0, queries: q)
        let finite = a.allSatisfy { $0.isFinite }
        #expect(finite)
        // Appending again continues from position 50.
        let (k, v) = d.token(50)
        try full.append(layer: 0, keys: Array(k), values: Array(v))
        #expect(try full.tokenCount(layer: 0) == 51)
        #expect(throws: CacheError.truncateBeyondEnd(requested: 60, tokens: 51)) { try full.truncate(to: 60) }
        if spec == "fp16" {
            // Fixed formats: bit-identical to a cache that only ever saw 50 tokens.
            let short = try streamPrefix(policy, SyntheticKV(tokens: 90, kvHeads: 2, queryHeadsPerKVHead: 3, dim: 64, seed: 7), truncateAt: 50)
            let b = try short.attention(layer: 0, queries: q)
            #expect(a == b)
        }
        full.reset()
        #expect(try full.tokenCount(layer: 0) == 0)
        #expect(full.memory.total == 0)
    }

    @Test("sinks stay fp16, staged tokens get their final storage after W2 more tokens, centered keys read back exactly")
    func sinksStagingCentering() throws {
        struct Tiered: CachePolicy {
            var hotWindow: Int { 4 }
            var keyScheme: KeyScheme { .token }
            var sinkTokens: Int { 2 }
            var staging: (format: StorageFormat, tokens: Int)? { (.affine(bits: 8, group: 32, outliers: 0), 6) }
            var centersKeys: Bool { true }
            let final: StorageFormat
            func storage(for token: TokenContext) -> (key: StorageFormat, value: StorageFormat) { (final, final) }
            var description: String { "tiered" }
        }
        let d = Self.data
        let final = StorageFormat.affine(bits: 3, group: 32, outliers: 0)
        let cache = try KVCache(KVCacheConfiguration(layers: 1, kvHeads: 2, queryHeadsPerKVHead: 3, headDim: 64, policy: Tiered(final: final)))
        for t in 0..<40 {
            let (k, v) = d.token(t)
            try cache.append(layer: 0, keys: Array(k), values: Array(v))
            _ = try cache.attention(layer: 0, queries: Array(d.query(t)))
            let formats = try cache.storedFormats(layer: 0, head: 1)
            #expect(formats.count == max(0, t + 1 - 4))
            for f in formats {
                let expected: StorageFormat
                if f.position < 2 { expected = .fp16 }
                else if f.position >= t + 1 - 4 - 6 { expected = .affine(bits: 8, group: 32, outliers: 0) }
                else { expected = final }
                #expect(f.key == expected && f.value == expected, "t=\(t) position \(f.position): \(f.key)")
            }
        }
        // Centering: the mean of the fp16 window keys 2..<6 (the W keys after the sinks) was
        // subtracted before quantizing and is added back exactly when reading. Promoted keys
        // are the 8-bit codes lowered to 3 bits, i.e. (nesting) 3-bit quantization of k − mean.
        let rows = try cache.storedRows(layer: 0, head: 0, keys: true)
        let k16 = { (p: Int) in d.token(p).keys[d.token(p).keys.startIndex..<(d.token(p).keys.startIndex + 64)].map { Float(Float16($0)) } }
        var mean = [Float](repeating: 0, count: 64)
        for p in 2..<6 { for i in 0..<64 { mean[i] += k16(p)[i] } }
        for i in 0..<64 { mean[i] /= 4 }
        let layout3 = try PackedLayout(dim: 64, groupSize: 32, bits: 3)
        for p in 2..<26 {
            let centered = zip(k16(p), mean).map { $0 - $1 }
            let expected = zip(try PackedVectors.quantizing(centered, layout: layout3).dequantized(), mean).map { $0 + $1 }
            for i in 0..<64 { #expect(abs(rows[p * 64 + i] - expected[i]) <= 1e-5 * max(1, abs(expected[i])), "p=\(p) i=\(i)") }
        }
        // Sinks are fp16, uncentered.
        for i in 0..<64 { #expect(rows[i] == k16(0)[i]) }
    }

    @Test("fp16 input appends exactly like its fp32 widening")
    func float16Append() throws {
        let d = Self.data
        let a = try KVCache(KVCacheConfiguration(layers: 1, kvHeads: 2, queryHeadsPerKVHead: 3, headDim: 64, policy: QAQPolicy(hotWindow: 4)))
        let b = try KVCache(KVCacheConfiguration(layers: 1, kvHeads: 2, queryHeadsPerKVHead: 3, headDim: 64, policy: QAQPolicy(hotWindow: 4)))
        for t in 0..<20 {
            let k16 = d.token(t).keys.map { Float16($0) }, v16 = d.token(t).values.map { Float16($0) }
            try k16.withUnsafeBufferPointer { kb in
                try v16.withUnsafeBufferPointer { vb in try a.append(layer: 0, keys: kb, values: vb) }
            }
            try b.append(layer: 0, keys: k16.map(Float.init), values: v16.map(Float.init))
            let q = Array(d.query(t))
            #expect(try a.attention(layer: 0, queries: q) == b.attention(layer: 0, queries: q))
        }
        #expect(a.memory == b.memory)
    }

    @Test("rotated keys leave attention unchanged (fp16 storage)")
    func rotatedKeys() throws {
        struct Rotated: CachePolicy {
            var hotWindow: Int { 0 }
            var keyScheme: KeyScheme { .rotated }
            func storage(for token: TokenContext) -> (key: StorageFormat, value: StorageFormat) { (.fp32, .fp32) }
            var description: String { "rotated fp32" }
        }
        let d = Self.data
        let cache = try KVCache(KVCacheConfiguration(layers: 1, kvHeads: 2, queryHeadsPerKVHead: 3, headDim: 64, policy: Rotated()))
        for t in 0..<40 {
            let (k, v) = d.token(t)
            try cache.append(layer: 0, keys: Array(k), values: Array(v))
            let out = try cache.attention(layer: 0, queries: Array(d.query(t)))
            let exact = d.exactAttention(step: t)
            // The window holds fp16: keys are rounded after rotation.
            for i in 0..<out.count { #expect(abs(Double(out[i]) - exact[i]) <= 2e-3 * max(1, abs(exact[i]))) }
        }
    }

    @Test("quality ordering on synthetic data: more bits, less error")
    func qualityOrdering() throws {
        let d = SyntheticKV(tokens: 96, kvHeads: 1, queryHeadsPerKVHead: 3, dim: 64, seed: 2)
        let e8 = try QualityBench.run(policy: FixedPolicy.uniform(bits: 8, group: 32), data: d).attentionRelError
        let e4 = try QualityBench.run(policy: FixedPolicy.uniform(bits: 4, group: 32), data: d).attentionRelError
        let e2 = try QualityBench.run(policy: FixedPolicy.uniform(bits: 2, group: 32), data: d).attentionRelError
        let f16 = try QualityBench.run(policy: FixedPolicy.fp16, data: d).attentionRelError
        #expect(f16 < e8 && e8 < e4 && e4 < e2)
        #expect(f16 < 1e-3)
    }
}

extension KVCacheTests {
    /// The same stream, stopped at `truncateAt` tokens.
    func streamPrefix(_ policy: any CachePolicy, _ data: SyntheticKV, truncateAt: Int) throws -> KVCache {
        let cache = try KVCache(KVCacheConfiguration(layers: 2, kvHeads: data.kvHeads, queryHeadsPerKVHead: data.queryHeadsPerKVHead,
                                                     headDim: data.dim, policy: policy, pageTokens: 16))
        for t in 0..<truncateAt {
            let (k, v) = data.token(t)
            for layer in 0..<2 {
                try cache.append(layer: layer, keys: Array(k), values: Array(v))
                _ = try cache.attention(layer: layer, queries: Array(data.query(t)))
            }
        }
        return cache
    }
}

#if canImport(Glibc)
import Glibc
#endif

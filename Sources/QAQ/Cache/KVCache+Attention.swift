#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension KVCache {
    /// Decode attention of one query token per q head over everything stored for `layer`:
    /// `softmax(q·Kᵀ/√D)·V` per q head (`queries` and the result are `[queryHeads][headDim]`,
    /// q head h reads KV head h / group). Records the probabilities when the policy uses them.
    ///
    /// Per KV head the keys are read once for all q heads of its GQA group and scored
    /// directly over the packed pages (affine codes decoded in registers; other formats and
    /// channel key blocks one page-sized tile at a time — never the whole cache); the softmax
    /// is exact (max-subtracted, fp32 scores, fp64 sums); values are then read once and
    /// accumulated for the whole group with the probabilities gathered by position.
    public func attention(layer: Int, queries: [Float]) throws(CacheError) -> [Float] {
        try attentionWithProbabilities(layer: layer, queries: queries).output
    }

    /// ``attention(layer:queries:)`` that also returns this step's attention probabilities,
    /// `[queryHeads][tokens]` (for quality measurements).
    public func attentionWithProbabilities(layer: Int, queries: [Float]) throws(CacheError) -> (output: [Float], probabilities: [Float]) {
        let s = try state(layer)
        let d = configuration.headDim, g = configuration.queryHeadsPerKVHead
        guard queries.count == configuration.queryHeads * d else {
            throw .shapeMismatch(expected: "\(configuration.queryHeads) q heads × \(d)", got: "\(queries.count) elements")
        }
        guard queries.allSatisfy({ $0.isFinite }) else { throw .nonFinite(layer: layer, token: 0) }
        let t = s.count
        var output = [Float](repeating: 0, count: queries.count)
        var probabilities = [Float](repeating: 0, count: configuration.queryHeads * t)
        guard t > 0 else { return (output, probabilities) }
        let kernels = attentionKernels
        let scale = 1 / Float(d).squareRoot()
        let sinks = configuration.policy.sinkTokens
        for h in 0..<configuration.kvHeads {
            // The group's queries, rotated like the keys, scaled by 1/√D.
            var q = Array(queries[(h * g * d)..<((h + 1) * g * d)])
            for j in 0..<g {
                var n2 = 0.0
                for i in 0..<d { n2 += Double(q[j * d + i]) * Double(q[j * d + i]) }
                s.heads[h].queryNorms.observe(n2 / Double(d))
                if let rotation { q.withUnsafeMutableBufferPointer { rotation.forward($0.baseAddress! + j * d) } }
            }
            for i in 0..<q.count { q[i] *= scale }
            var scores = [Float](repeating: 0, count: g * t)
            try scoreKeys(s, head: h, queries: q, heads: g, tokens: t, kernels: kernels, into: &scores)
            // Centered keys: add q·mean back to the scores of stored tokens past the sinks.
            if let mean = s.heads[h].keyMean {
                for j in 0..<g {
                    var qm: Float = 0
                    for i in 0..<d { qm += q[j * d + i] * mean[i] }
                    for p in sinks..<s.heads[h].windowStart { scores[j * t + p] += qm }
                }
            }
            // Softmax per q head.
            for j in 0..<g {
                var m = -Float.infinity
                for p in 0..<t where scores[j * t + p] > m { m = scores[j * t + p] }
                var sum = 0.0
                for p in 0..<t {
                    let e = expf(scores[j * t + p] - m)
                    scores[j * t + p] = e
                    sum += Double(e)
                }
                let inv = Float(1 / sum)
                for p in 0..<t { scores[j * t + p] *= inv }
            }
            for i in 0..<(g * t) { probabilities[h * g * t + i] = scores[i] }
            var out = [Float](repeating: 0, count: g * d)
            accumulateValues(s, head: h, weights: scores, heads: g, tokens: t, kernels: kernels, into: &out)
            for i in 0..<(g * d) { output[h * g * d + i] = out[i] }
        }
        if configuration.policy.usesAttention {
            try recordAttention(layer: layer, probabilities: probabilities)
        }
        return (output, probabilities)
    }

    /// Scores of every token of head `h` into `scores[j·T + position]`.
    private func scoreKeys(_ s: LayerState, head h: Int, queries q: [Float], heads g: Int, tokens t: Int,
                           kernels: AttentionKernels, into scores: inout [Float]) throws(CacheError) {
        let d = configuration.headDim
        let pageTokens = configuration.pageTokens
        var blockTokens = 0
        if case .channel(let b) = configuration.policy.keyScheme { blockTokens = b }
        let rows = max(pageTokens, blockTokens, s.heads[h].windowCount)
        var tmp = [Float](repeating: 0, count: g * rows)
        var tile = [Float](repeating: 0, count: d * rows)
        q.withUnsafeBufferPointer { qb in
            tmp.withUnsafeMutableBufferPointer { tb in
                tile.withUnsafeMutableBufferPointer { tl in
                    for page in s.heads[h].keys.pages where page.count > 0 {
                        if let affine = page.codec as? AffineCodec {
                            kernels.scores(qb.baseAddress!, g, page.bytes, page.count, affine.layout, tb.baseAddress!, page.count)
                        } else {
                            page.codec.decode(page.bytes, count: page.count, into: tl.baseAddress!)
                            kernels.scoresF32(qb.baseAddress!, g, d, tl.baseAddress!, page.count, tb.baseAddress!, page.count)
                        }
                        for j in 0..<g {
                            for (i, p) in page.positions.enumerated() { scores[j * t + Int(p)] = tb[j * page.count + i] }
                        }
                    }
                    for block in s.heads[h].keyBlocks {
                        block.bytes.withUnsafeBytes { block.codec.decode($0.baseAddress!, into: tl.baseAddress!) }
                        kernels.scoresF32(qb.baseAddress!, g, d, tl.baseAddress!, block.tokens, tb.baseAddress!, block.tokens)
                        for j in 0..<g {
                            for i in 0..<block.tokens { scores[j * t + block.firstPosition + i] = tb[j * block.tokens + i] }
                        }
                    }
                    let n = s.heads[h].windowCount
                    if n > 0 {
                        s.heads[h].windowTile(keys: true, into: tl.baseAddress!)
                        kernels.scoresF32(qb.baseAddress!, g, d, tl.baseAddress!, n, tb.baseAddress!, n)
                        let start = s.heads[h].windowStart
                        for j in 0..<g { for i in 0..<n { scores[j * t + start + i] = tb[j * n + i] } }
                    }
                }
            }
        }
    }

    /// `out[j·D + i] = Σ_p w[j·T + p]·v_p[i]` over every value of head `h`.
    private func accumulateValues(_ s: LayerState, head h: Int, weights w: [Float], heads g: Int, tokens t: Int,
                                  kernels: AttentionKernels, into out: inout [Float]) {
        let d = configuration.headDim
        let pageTokens = configuration.pageTokens
        var gathered = [Float](repeating: 0, count: g * max(pageTokens, s.heads[h].windowCount))
        var tile = [Float](repeating: 0, count: d * max(pageTokens, s.heads[h].windowCount))
        out.withUnsafeMutableBufferPointer { ob in
            gathered.withUnsafeMutableBufferPointer { gb in
                tile.withUnsafeMutableBufferPointer { tl in
                    for page in s.heads[h].values.pages where page.count > 0 {
                        for j in 0..<g {
                            for (i, p) in page.positions.enumerated() { gb[j * page.count + i] = w[j * t + Int(p)] }
                        }
                        if let affine = page.codec as? AffineCodec {
                            kernels.accumulate(gb.baseAddress!, page.count, g, page.bytes, page.count, affine.layout, ob.baseAddress!)
                        } else {
                            page.codec.decode(page.bytes, count: page.count, into: tl.baseAddress!)
                            kernels.accumulateF32(gb.baseAddress!, page.count, g, d, tl.baseAddress!, page.count, ob.baseAddress!)
                        }
                    }
                    let n = s.heads[h].windowCount
                    if n > 0 {
                        let start = s.heads[h].windowStart
                        for j in 0..<g { for i in 0..<n { gb[j * n + i] = w[j * t + start + i] } }
                        s.heads[h].windowTile(keys: false, into: tl.baseAddress!)
                        kernels.accumulateF32(gb.baseAddress!, n, g, d, tl.baseAddress!, n, ob.baseAddress!)
                    }
                }
            }
        }
    }
}

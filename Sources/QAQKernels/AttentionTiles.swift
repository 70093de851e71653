import QAQLayout
import _QAQSIMDShims

// The shared skeleton of the decode-attention kernels: how scores of a GQA group of queries
// are formed over a run of tokens, and how weighted values are summed, whatever the stored
// format. Each format only says how to decode one token into 16-lane slots.
//
// Scores: per token, one 16-lane accumulator per q head (the decoded slot is loaded once
// and multiplied into every head's accumulator). The accumulators of a tile of tokens —
// 16 / heads tokens — are parked in a small buffer and reduced together by a transposing
// tree of pairwise sums: 15 shuffle-add steps give 16 scores at once, instead of one
// 4-step horizontal sum per score.
//
// Values: a tile of up to 16 tokens is decoded into an fp32 buffer of 16 × D floats (L1),
// then, slot by slot, each head's accumulator takes Σₖ w[h][k]·x[k] in a register (the weight
// is a broadcast memory operand) and is added to the output once per tile — no
// read-modify-write of the output per token.

/// Heads one pass of the kernels handles (larger groups are done in blocks of 4).
let headsPerPass = 4
/// Tokens per values tile.
let valueTileTokens = 16

/// Pairwise sums of adjacent lanes of `a` (lanes 0…7) and of `b` (lanes 8…15): even + odd
/// lane, as two constant two-source shuffles (the C shim's `qaq_pair_sums`).
@inline(__always)
func pairSums(_ a: F32x16, _ b: F32x16) -> F32x16 { qaq_pair_sums(a, b) }

/// Lane k of the result is the sum of the 16 lanes of `p[k]`.
@inline(__always)
func transposeSum16(_ p: UnsafePointer<F32x16>) -> F32x16 {
    let a0 = pairSums(p[0], p[1]), a1 = pairSums(p[2], p[3]), a2 = pairSums(p[4], p[5]), a3 = pairSums(p[6], p[7])
    let a4 = pairSums(p[8], p[9]), a5 = pairSums(p[10], p[11]), a6 = pairSums(p[12], p[13]), a7 = pairSums(p[14], p[15])
    let b0 = pairSums(a0, a1), b1 = pairSums(a2, a3), b2 = pairSums(a4, a5), b3 = pairSums(a6, a7)
    let c0 = pairSums(b0, b1), c1 = pairSums(b2, b3)
    return pairSums(c0, c1)
}

@inline(__always)
func fma16(_ acc: inout F32x16, _ a: F32x16, _ b: F32x16) {
    #if HAS_FMA
    acc.addProduct(a, b)
    #else
    acc += a * b
    #endif
}

// A format's decoder, as the attention kernels see it (plain variables of the kernel, driven
// through three small closures so that everything inlines into the kernels' loops; no
// protocol, so no type metadata or value witnesses are emitted in the variant modules):
// `start(t)` positions it at token t, `next(s)` returns slot s of that token as 16 decoded
// fp32 values (slots are asked for in order, so a decoder may keep its own cursor instead), `correction(t, q)` is what exact outliers add to token t's score
// for query q.

/// Scores of `g` (1…4, a compile-time constant after inlining) queries against `count`
/// tokens: `out[h·outStride + t] = Σᵢ q[h·D + i]·x̂ₜ[i] + correction`, or, when `scaled`,
/// `tokenScale(t)·Σᵢ q[h·D + i]·x̂ₜ[i] + correction` (a per-token factor of the decoded values,
/// such as a code map's vector scale, applied once to the reduced score instead of to every
/// slot).
@inline(__always)
func tiledScores(
    _ q: UnsafePointer<Float>, _ g: Int, dim d: Int, count: Int,
    _ out: UnsafeMutablePointer<Float>, _ outStride: Int, parts: UnsafeMutablePointer<F32x16>,
    corrections: Bool, start: (Int) -> Void, next: (Int) -> F32x16, correction: (Int, UnsafePointer<Float>) -> Float,
    scaled: Bool, tokenScale: (Int) -> Float
) {
    let slots = d / 16
    let qr = UnsafeRawPointer(q)
    let lanesPerToken = g == 3 ? 4 : g
    let tile = 16 / lanesPerToken
    var t = 0
    while t < count {
        let n = count - t < tile ? count - t : tile  // (no Swift.min: its Int specialization is a shared weak symbol)
        for k in 0..<n {
            var a0 = F32x16(), a1 = F32x16(), a2 = F32x16(), a3 = F32x16()
            start(t + k)
            for s in 0..<slots {
                let x = next(s)
                fma16(&a0, qr.loadUnaligned(fromByteOffset: 64 * s, as: F32x16.self), x)
                if g > 1 { fma16(&a1, qr.loadUnaligned(fromByteOffset: 4 * d + 64 * s, as: F32x16.self), x) }
                if g > 2 { fma16(&a2, qr.loadUnaligned(fromByteOffset: 8 * d + 64 * s, as: F32x16.self), x) }
                if g > 3 { fma16(&a3, qr.loadUnaligned(fromByteOffset: 12 * d + 64 * s, as: F32x16.self), x) }
            }
            let base = k * lanesPerToken
            parts[base] = a0
            if g > 1 { parts[base + 1] = a1 }
            if g > 2 { parts[base + 2] = a2 }
            if g > 3 { parts[base + 3] = a3 }
        }
        // Lanes of parts not written in a short last tile hold earlier (finite) values;
        // their sums land in lanes that are not stored.
        let r = unsafeBitCast(transposeSum16(parts), to: InlineArray<16, Float>.self)
        for k in 0..<n {
            let factor: Float = scaled ? tokenScale(t + k) : 1
            for h in 0..<g {
                var v = r[k * lanesPerToken + h]
                if scaled { v *= factor }
                if corrections { v += correction(t + k, q + h * d) }
                out[h * outStride + t + k] = v
            }
        }
        t += n
    }
}

/// `out[h·D + i] += Σₜ w[h·wStride + t]·x̂ₜ[i]` for `g` (1…4) heads over `count` tokens:
/// 16 tokens at a time decoded into `tile`, then summed by ``accumulateRows``.
@inline(__always)
func tiledAccumulate(
    _ w: UnsafePointer<Float>, _ wStride: Int, _ g: Int, dim d: Int, count: Int,
    _ out: UnsafeMutablePointer<Float>, tile: UnsafeMutablePointer<Float>, start: (Int) -> Void, next: (Int) -> F32x16
) {
    let slots = d / 16
    let tr = UnsafeMutableRawPointer(tile)
    var t = 0
    while t < count {
        let n = count - t < valueTileTokens ? count - t : valueTileTokens
        for k in 0..<n {
            start(t + k)
            for s in 0..<slots { tr.storeBytes(of: next(s), toByteOffset: 4 * (k * d + 16 * s), as: F32x16.self) }
        }
        accumulateRows(w + t, wStride, g, dim: d, count: n, UnsafePointer(tile), rowStride: d, out)
        t += n
    }
}

/// `out[h·D + i] += Σₖ w[h·wStride + k]·rows[k·rowStride + i]` for `g` (1…4) heads: per slot,
/// one register accumulator per head over all `count` rows, added to `out` once.
@inline(__always)
func accumulateRows(
    _ w: UnsafePointer<Float>, _ wStride: Int, _ g: Int, dim d: Int, count: Int,
    _ rows: UnsafePointer<Float>, rowStride: Int, _ out: UnsafeMutablePointer<Float>
) {
    let r = UnsafeRawPointer(rows), o = UnsafeMutableRawPointer(out)
    var s = 0
    while s < d {
        var a0 = F32x16(), a1 = F32x16(), a2 = F32x16(), a3 = F32x16()
        for k in 0..<count {
            let x = r.loadUnaligned(fromByteOffset: 4 * (k * rowStride + s), as: F32x16.self)
            fma16(&a0, F32x16(repeating: w[k]), x)
            if g > 1 { fma16(&a1, F32x16(repeating: w[wStride + k]), x) }
            if g > 2 { fma16(&a2, F32x16(repeating: w[2 * wStride + k]), x) }
            if g > 3 { fma16(&a3, F32x16(repeating: w[3 * wStride + k]), x) }
        }
        o.storeBytes(of: o.loadUnaligned(fromByteOffset: 4 * s, as: F32x16.self) + a0, toByteOffset: 4 * s, as: F32x16.self)
        if g > 1 { o.storeBytes(of: o.loadUnaligned(fromByteOffset: 4 * (d + s), as: F32x16.self) + a1, toByteOffset: 4 * (d + s), as: F32x16.self) }
        if g > 2 { o.storeBytes(of: o.loadUnaligned(fromByteOffset: 4 * (2 * d + s), as: F32x16.self) + a2, toByteOffset: 4 * (2 * d + s), as: F32x16.self) }
        if g > 3 { o.storeBytes(of: o.loadUnaligned(fromByteOffset: 4 * (3 * d + s), as: F32x16.self) + a3, toByteOffset: 4 * (3 * d + s), as: F32x16.self) }
        s += 16
    }
}

/// ``tiledScores`` for any number of heads, in blocks of at most 4 (each block a
/// specialization on its literal head count).
@inline(__always)
func scoresAllHeads(
    _ q: UnsafePointer<Float>, _ heads: Int, dim d: Int, count: Int,
    _ out: UnsafeMutablePointer<Float>, _ outStride: Int, parts: UnsafeMutablePointer<F32x16>, corrections: Bool,
    start: (Int) -> Void, next: (Int) -> F32x16, correction: (Int, UnsafePointer<Float>) -> Float,
    scaled: Bool = false, tokenScale: (Int) -> Float = { _ in 1 }
) {
    var h0 = 0
    while h0 < heads {
        switch heads - h0 {
        case 1: tiledScores(q + h0 * d, 1, dim: d, count: count, out + h0 * outStride, outStride, parts: parts, corrections: corrections, start: start, next: next, correction: correction, scaled: scaled, tokenScale: tokenScale); h0 += 1
        case 2: tiledScores(q + h0 * d, 2, dim: d, count: count, out + h0 * outStride, outStride, parts: parts, corrections: corrections, start: start, next: next, correction: correction, scaled: scaled, tokenScale: tokenScale); h0 += 2
        case 3: tiledScores(q + h0 * d, 3, dim: d, count: count, out + h0 * outStride, outStride, parts: parts, corrections: corrections, start: start, next: next, correction: correction, scaled: scaled, tokenScale: tokenScale); h0 += 3
        default: tiledScores(q + h0 * d, 4, dim: d, count: count, out + h0 * outStride, outStride, parts: parts, corrections: corrections, start: start, next: next, correction: correction, scaled: scaled, tokenScale: tokenScale); h0 += 4
        }
    }
}

/// ``tiledAccumulate`` for any number of heads, in blocks of at most 4.
@inline(__always)
func accumulateAllHeads(
    _ w: UnsafePointer<Float>, _ wStride: Int, _ heads: Int, dim d: Int, count: Int,
    _ out: UnsafeMutablePointer<Float>, tile: UnsafeMutablePointer<Float>, start: (Int) -> Void, next: (Int) -> F32x16
) {
    var h0 = 0
    while h0 < heads {
        switch heads - h0 {
        case 1: tiledAccumulate(w + h0 * wStride, wStride, 1, dim: d, count: count, out + h0 * d, tile: tile, start: start, next: next); h0 += 1
        case 2: tiledAccumulate(w + h0 * wStride, wStride, 2, dim: d, count: count, out + h0 * d, tile: tile, start: start, next: next); h0 += 2
        case 3: tiledAccumulate(w + h0 * wStride, wStride, 3, dim: d, count: count, out + h0 * d, tile: tile, start: start, next: next); h0 += 3
        default: tiledAccumulate(w + h0 * wStride, wStride, 4, dim: d, count: count, out + h0 * d, tile: tile, start: start, next: next); h0 += 4
        }
    }
}

extension AttentionScratch {
    /// The 16 score accumulators.
    @inline(__always) var parts: UnsafeMutablePointer<F32x16> { base.assumingMemoryBound(to: F32x16.self) }
    /// The values tile, 16 × D floats.
    @inline(__always) var tile: UnsafeMutablePointer<Float> { (base + AttentionScratch.tileOffset).assumingMemoryBound(to: Float.self) }
}

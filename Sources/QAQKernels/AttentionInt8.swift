import QAQLayout
import _QAQSIMDShims

// Decode-attention scores by integer dot products (DESIGN §5) for keys of D = 128 and D = 64:
// 4-bit affine records (no outliers, G ≥ 32) and 2-, 3- and 4-bit code-map records with one
// scale per vector (2- and 3-bit codes decoded to bytes as AttentionInt8Codebook.swift states). Each query is quantized to int8 once per work item and head, qᵢ ≈ s_q·q8ᵢ with
// s_q = max|q|/127 (round to nearest even); the codes are multiplied in 32-bit integers by
// `vpdpbusd` (64 byte products per instruction) and the record's fp parameters are applied
// once per group:
//
//   affine:   score = s_q·Σ_g stepᵍ·Σ_{i∈g} q8ᵢ·cᵢ + Σ_g (loᵍ + ½stepᵍ)·Σ_{i∈g} qᵢ
//             (the lo term with the exact fp32 query);
//   code map: score = s_q·s_l·scale·Σᵢ q8ᵢ·l8[cᵢ], the table's levels as int8,
//             l8[c] = round(levels[c]/s_l), s_l = max|levels|/127.
//
// The error against the fp32 kernels is that of the int8 query (and of the int8 levels):
// |Δ| ≤ ½s_q·Σᵢ stepᵍ⁽ⁱ⁾·cᵢ for affine records and
// |Δ| ≤ scale·Σᵢ (½s_q·(|levels[cᵢ]| + ½s_l) + ½s_l·|qᵢ|) for code maps, plus fp32 rounding;
// ``Reference/affineScoresInt8(queries:heads:_:count:layout:out:outStride:)`` computes the
// same quantities in scalar code.
//
// Layout: a record's 64 code bytes hold, in lane word j (bytes 4j…4j+3), the codes of
// elements j + 16s for slots s = 0…7 (4 bits each, slot s at bit 4s). Masking the low
// nibbles gives byte k of lane j = code of element 32k + j (slot 2k), the high nibbles slot
// 2k + 1: byte k is group k at G = 32. `vpdpbusd` sums the 4 bytes of a lane, so for affine
// records the bytes are first transposed 4 × 4 within each 128-bit lane (one `vpshufb`):
// lane 4L + m then holds the 4 bytes m of lanes 4L…4L+3, all of group m (quarter m of the
// vector at any G ≥ 32), and the group's step multiplies the lane. The query bytes are laid
// out the same way when they are quantized.
//
// D = 64: the 32 code bytes are one 16-bit-lane word (lane j: elements j, j + 16, j + 32,
// j + 48 at bits 0, 4, 8, 12), lane j in bits 16(j >> 3)… of 32-bit unit j mod 8. Loaded into
// both halves of one 512-bit vector, the low half's low nibbles and the high half's high
// nibbles are all 64 codes, byte 4k + r of 32-bit lane k holding element
// (k mod 8) + 8(r >> 1) + 32(r & 1) + 16(k >> 3): one `vpdpbusd` per head and token. For affine records the bytes are deinterleaved within each 128-bit lane (even bytes
// to lanes 4L, 4L + 1, odd bytes to 4L + 2, 4L + 3), so lane 4L + m holds elements of group
// m >> 1 at G = 32 (elements < 32 or ≥ 32) — the quarter-to-group map of D = 128 at G = 64,
// and the same ``PairLanes/quarters(_:)``.
//
// Integer accumulators cannot overflow: at most 8 products of |c| ≤ 255 by |q8| ≤ 127 per
// lane and dot.

/// The same byte permutation in every 128-bit lane of `v`: the four index words `w`.
@inline(__always)
private func laneShuffle(_ v: U32x16, _ w: SIMD4<UInt32>) -> U32x16 {
    qaq_shuffle_bytes(v, U32x16(w[0], w[1], w[2], w[3], w[0], w[1], w[2], w[3], w[0], w[1], w[2], w[3], w[0], w[1], w[2], w[3]))
}

/// Per 128-bit lane, byte 4m + r of the result is byte 4r + m of `v`.
@inline(__always)
private func transposeBytes(_ v: U32x16) -> U32x16 { laneShuffle(v, SIMD4(0x0C08_0400, 0x0D09_0501, 0x0E0A_0602, 0x0F0B_0703)) }

/// D = 64 affine: per 128-bit lane, bytes 0…7 of the result are the even bytes of `v`, bytes
/// 8…15 the odd ones.
@inline(__always)
private func deinterleaveBytes(_ v: U32x16) -> U32x16 { laneShuffle(v, SIMD4(0x0604_0200, 0x0E0C_0A08, 0x0705_0301, 0x0F0D_0B09)) }

/// The 64 codes of a D = 64 record (4-bit) as one byte each, in the order stated at the top.
@inline(__always)
func codes64(_ record: UnsafeRawPointer) -> U32x16 {
    (qaq_load_32_twice(record) &>> U32x16(0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4)) & U32x16(repeating: 0x0F0F_0F0F)
}

/// The element whose code is byte `p` (0…63) of ``codes64(_:)``; `deinterleaved`: of
/// ``deinterleaveBytes(_:)`` applied to it.
@inline(__always)
private func element64(_ p: Int, deinterleaved: Bool) -> Int {
    let s = deinterleaved ? (p & ~15) | (2 &* (p & 7) &+ ((p &>> 3) & 1)) : p
    let k = s &>> 2, r = s & 3
    return (k & 7) &+ 8 &* (r &>> 1) &+ 32 &* (r & 1) &+ 16 &* (k &>> 3)
}

/// 1.5·2²³: for |x| < 2²², x + magic rounds x to an integer (nearest, ties to even), held in
/// the low mantissa bits.
@inline(__always)
private func roundingMagic() -> F32x16 { F32x16(repeating: 12_582_912) }

/// The largest of 16 non-negative floats given as bit patterns (they order as integers).
@inline(__always)
private func maxBits(_ v: U32x16) -> UInt32 {
    let a = v.lowHalf.replacing(with: v.highHalf, where: v.highHalf .> v.lowHalf)
    let b = a.lowHalf.replacing(with: a.highHalf, where: a.highHalf .> a.lowHalf)
    let c = b.lowHalf.replacing(with: b.highHalf, where: b.highHalf .> b.lowHalf)
    return c[1] > c[0] ? c[1] : c[0]
}

// The int8 query area (``AttentionScratch/int8Queries``), 448 bytes per query head: the q8
// bytes of the even slots (`qA`) and odd slots (`qB`) in the affine kernel's transposed order
// (at 0 and 64), the affine lo weights (`loW`, at 128: lane 4L + m = Σ_{quarter m} qᵢ/(4·s_q)),
// the q8 bytes of the code-map query in plain lane order (at 192 and 256), the code maps'
// zero-point correction (`corr`, at 320: −128·Σ q8 of the lane's bytes), then s_q of the affine
// query (at 384) and of the code-map query (at 388).
private let headStride = 448

/// Stores s_q = max|q|/127 at the affine (384) or code-map (388) offset of `base` and returns
/// 127/max|q|; below max|q| = 1e-30 the query is taken as zero (its scores are below
/// 1e-27·|k|): both 0.
@inline(__always)
private func storeQueryScale(_ amax: Float, _ base: UnsafeMutableRawPointer, affine: Bool) -> Float {
    let usable = amax >= 1e-30
    base.storeBytes(of: usable ? amax / 127 : 0, toByteOffset: affine ? 384 : 388, as: Float.self)
    return usable ? 127 / amax : 0
}

/// Writes the int8 forms of one query (D = 128) at `base`: transposed bytes, lo weights and
/// s_q when `affine`, else plain bytes, correction and s_q at the code-map offsets. The
/// quarter sums go to `quarters` (4 vectors) for the caller's transposed reduction.
@inline(__always)
private func int8Query(_ qr: UnsafeRawPointer, _ base: UnsafeMutableRawPointer, affine: Bool,
                       quarters: UnsafeMutablePointer<F32x16>) -> Float {
    let magic = roundingMagic()
    var m = U32x16()
    for s in 0..<8 {
        let b = unsafeBitCast(qr.loadUnaligned(fromByteOffset: 64 * s, as: F32x16.self), to: U32x16.self) & U32x16(repeating: 0x7FFF_FFFF)
        m = m.replacing(with: b, where: b .> m)
    }
    let inv = storeQueryScale(Float(bitPattern: maxBits(m)), base, affine: affine)
    var a = U32x16(), b = U32x16(), rounded = F32x16()
    var q0 = F32x16(), q1 = F32x16(), q2 = F32x16(), q3 = F32x16()
    for s in 0..<8 {
        let x = qr.loadUnaligned(fromByteOffset: 64 * s, as: F32x16.self)
        let t = x * F32x16(repeating: inv) + magic
        rounded += t - magic
        let byte = (unsafeBitCast(t, to: U32x16.self) & U32x16(repeating: 0xFF)) &<< U32x16(repeating: UInt32(truncatingIfNeeded: 8 * (s &>> 1)))
        if s & 1 == 0 { a |= byte } else { b |= byte }
        switch s &>> 1 {
        case 0: q0 += x
        case 1: q1 += x
        case 2: q2 += x
        default: q3 += x
        }
    }
    if affine {
        base.storeBytes(of: transposeBytes(a), as: U32x16.self)
        base.storeBytes(of: transposeBytes(b), toByteOffset: 64, as: U32x16.self)
        quarters[0] = q0
        quarters[1] = q1
        quarters[2] = q2
        quarters[3] = q3
    } else {
        base.storeBytes(of: a, toByteOffset: 192, as: U32x16.self)
        base.storeBytes(of: b, toByteOffset: 256, as: U32x16.self)
        // −128·Σ q8 (|·| ≤ 130048 < 2²²) as integers, through the same rounding trick.
        let corr = unsafeBitCast(rounded * F32x16(repeating: -128) + magic, to: U32x16.self) &- unsafeBitCast(magic, to: U32x16.self)
        base.storeBytes(of: corr, toByteOffset: 320, as: U32x16.self)
    }
    return inv
}

/// The int8 forms of one D = 64 query at `base`, at the offsets of D = 128: affine bytes
/// (deinterleaved order, one vector at 0), lo weights (lane 4L + m = Σ of group m >> 1's qᵢ
/// over 8·s_q) and s_q; or code-map bytes (at 192), correction (at 320) and s_q. Scalar: once
/// per item and head.
@inline(__always)
private func int8Query64(_ q: UnsafePointer<Float>, _ base: UnsafeMutableRawPointer, affine: Bool) {
    var amax: Float = 0
    for i in 0..<64 { let a = q[i] < 0 ? -q[i] : q[i]; if a > amax { amax = a } }
    let inv = storeQueryScale(amax, base, affine: affine)
    let bytes = base + (affine ? 0 : 192)
    var corr = U32x16()
    for p in 0..<64 {
        let e = element64(p, deinterleaved: affine)
        let q8 = Int32((q[e] * inv + 12_582_912) - 12_582_912)
        bytes.storeBytes(of: UInt8(truncatingIfNeeded: q8), toByteOffset: p, as: UInt8.self)
        corr[p &>> 2] = corr[p &>> 2] &+ UInt32(bitPattern: -128 &* q8)
    }
    if affine {
        var s0: Float = 0, s1: Float = 0
        for i in 0..<32 { s0 += q[i]; s1 += q[32 + i] }
        let f = 0.125 * inv, w0 = s0 * f, w1 = s1 * f
        base.storeBytes(of: F32x16(w0, w0, w1, w1, w0, w0, w1, w1, w0, w0, w1, w1, w0, w0, w1, w1), toByteOffset: 128, as: F32x16.self)
    } else {
        base.storeBytes(of: corr, toByteOffset: 320, as: U32x16.self)
    }
}

@inline(never)
private func prepareInt8Dim64(_ qAffine: UnsafePointer<Float>, _ qCodebook: UnsafePointer<Float>, _ heads: Int, _ scratch: AttentionScratch) {
    for h in 0..<heads {
        let base = scratch.int8Queries + headStride * h
        int8Query64(qAffine + 64 * h, base, affine: true)
        int8Query64(qCodebook + 64 * h, base, affine: false)
    }
}

@inline(never)
private func prepareInt8(_ qAffine: UnsafePointer<Float>, _ qCodebook: UnsafePointer<Float>, _ heads: Int, _ scratch: AttentionScratch) {
    let area = scratch.int8Queries, parts = scratch.parts
    var h0 = 0
    while h0 < heads {
        let n = heads - h0 < 4 ? heads - h0 : 4
        var inverses = SIMD4<Float>()
        for j in 0..<n {
            let h = h0 + j, base = area + headStride * h
            inverses[j] = int8Query(UnsafeRawPointer(qAffine + 128 * h), base, affine: true, quarters: parts + 4 * j)
            _ = int8Query(UnsafeRawPointer(qCodebook + 128 * h), base, affine: false, quarters: parts + 4 * j)
        }
        // Lane 4j + m of the transposed sum is Σ of quarter m of query h0 + j.
        let r = unsafeBitCast(transposeSum16(UnsafePointer(parts)), to: InlineArray<16, Float>.self)
        for j in 0..<n {
            let f = 0.25 * inverses[j]
            let w0 = r[4 * j] * f, w1 = r[4 * j + 1] * f, w2 = r[4 * j + 2] * f, w3 = r[4 * j + 3] * f
            (area + headStride * (h0 + j)).storeBytes(of: F32x16(w0, w1, w2, w3, w0, w1, w2, w3, w0, w1, w2, w3, w0, w1, w2, w3),
                                                      toByteOffset: 128, as: F32x16.self)
        }
        h0 += n
    }
}

/// Which fp16 (lo, step) pair of a record each of 16 lanes takes: lane i reads value `lo[i]`
/// (an even index) and `step[i]` = `lo[i]` + 1 of the converted pairs. Built once per kernel
/// call, outside the token loops (a selection between constants inside them was rebuilt every
/// token).
struct PairLanes {
    let lo: U32x16
    let step: U32x16

    @inline(__always)
    init(lo: U32x16) {
        self.lo = lo
        self.step = lo | U32x16(repeating: 1)
    }

    /// Lane 4L + m: the group of quarter m of a D = 128 record (`groups` = 1, 2 or 4).
    @inline(__always)
    static func quarters(_ groups: Int) -> PairLanes {
        PairLanes(lo: groups == 4 ? U32x16(0, 2, 4, 6, 0, 2, 4, 6, 0, 2, 4, 6, 0, 2, 4, 6)
            : groups == 2 ? U32x16(0, 0, 2, 2, 0, 0, 2, 2, 0, 0, 2, 2, 0, 0, 2, 2) : U32x16())
    }
}

/// (step, lo + ½·step) by lane — the step and the value of code 0's interval midpoint — from
/// the `groups` fp16 (lo, step) pairs at `meta`: one F16C conversion of all the pairs, two
/// lane permutes. (The int8 kernels run only with VNNI, so F16C is always there; elsewhere
/// this compiles to placeholders.)
@inline(__always)
func pairStepMid(_ meta: UnsafeRawPointer, _ groups: Int, _ lanes: PairLanes) -> (step: F32x16, mid: F32x16) {
    stepMid(qaq_f16_load(meta, Int32(truncatingIfNeeded: 2 &* groups)), lanes)
}

/// (step, lo + ½·step) by lane from converted (lo, step) pairs (``qaq_f16_load``,
/// ``qaq_f16_load_two`` with `lanes.lo` + 8 for the second token).
@inline(__always)
func stepMid(_ pairs: F32x16, _ lanes: PairLanes) -> (step: F32x16, mid: F32x16) {
    let step = qaq_permute16(pairs, lanes.step)
    var mid = qaq_permute16(pairs, lanes.lo)
    fma16(&mid, step, F32x16(repeating: 0.5))
    return (step, mid)
}

/// Writes the 16 lanes of a finished tile: `out[h·outStride + t + k] = r[k·lanes + h]·s_q(h)`.
@inline(__always)
private func storeTile(_ parts: UnsafeMutablePointer<F32x16>, _ factors: F32x16, _ g: Int, _ n: Int, _ t: Int,
                       _ out: UnsafeMutablePointer<Float>, _ outStride: Int) {
    let lanes = g == 3 ? 4 : g
    let r = unsafeBitCast(transposeSum16(UnsafePointer(parts)) * factors, to: InlineArray<16, Float>.self)
    for k in 0..<n {
        for h in 0..<g { out[h * outStride + t + k] = r[k * lanes + h] }
    }
}

/// The per-lane factors of a tile: lane k·lanes + h = s_q(h)·`extra` (s_q at byte `offset` of
/// each head's block).
@inline(__always)
private func tileFactors(_ area: UnsafeRawPointer, _ offset: Int, _ g: Int, _ extra: Float) -> F32x16 {
    let lanes = g == 3 ? 4 : g
    var f = F32x16()
    for i in 0..<16 where i % lanes < g { f[i] = area.load(fromByteOffset: headStride * (i % lanes) + offset, as: Float.self) * extra }
    return f
}

/// 64 bytes at `offset` of head j's block, or zeros for j ≥ g.
@inline(__always)
private func headVector(_ a: UnsafeRawPointer, _ g: Int, _ j: Int, _ offset: Int) -> U32x16 {
    j < g ? a.load(fromByteOffset: headStride * j + offset, as: U32x16.self) : U32x16()
}

/// The tile loop of the int8 kernels: `token(t, base)` writes the g partial vectors of token t
/// at parts[base…]; every 16/lanes tokens the tile is reduced and stored (``storeTile``).
@inline(__always)
private func int8Tiles(_ g: Int, _ count: Int, _ parts: UnsafeMutablePointer<F32x16>, _ factors: F32x16,
                       _ out: UnsafeMutablePointer<Float>, _ outStride: Int, token: (Int, Int) -> Void) {
    let lanes = g == 3 ? 4 : g, tile = 16 / lanes
    var t = 0
    while t < count {
        let n = count - t < tile ? count - t : tile
        for k in 0..<n { token(t + k, k * lanes) }
        storeTile(parts, factors, g, n, t, out, outStride)
        t += n
    }
}

/// A record's 4-bit codes as bytes for `vpdpbusd`: at D = 128 the low and high nibbles of its
/// 64 code bytes (two vectors); at D = 64 all 64 codes in `first` (``codes64(_:)``).
@inline(__always)
private func codeBytes(_ record: UnsafeRawPointer, dim64: Bool) -> (first: U32x16, second: U32x16) {
    if dim64 { return (codes64(record), U32x16()) }
    let w = record.loadUnaligned(as: U32x16.self), nibbles = U32x16(repeating: 0x0F0F_0F0F)
    return (w & nibbles, (w &>> U32x16(repeating: 4)) & nibbles)
}

/// `acc` plus the byte dots of the code vectors with the query bytes (`qb` unused at D = 64).
@inline(__always)
private func byteDots(_ acc: U32x16, _ c: (first: U32x16, second: U32x16), _ qa: U32x16, _ qb: U32x16, dim64: Bool) -> U32x16 {
    let d = qaq_dpbusd(acc, c.first, qa)
    return dim64 ? d : qaq_dpbusd(d, c.second, qb)
}

/// The affine query bytes of heads 0…3 at `a` (zeros for heads ≥ g): the first vector of each,
/// and the second (D = 128 only; zeros at D = 64).
@inline(__always)
private func affineQueryBytes(_ a: UnsafeRawPointer, _ g: Int, _ dim64: Bool)
    -> (first: (U32x16, U32x16, U32x16, U32x16), second: (U32x16, U32x16, U32x16, U32x16)) {
    @inline(__always) func qb(_ j: Int) -> U32x16 { dim64 ? U32x16() : headVector(a, g, j, 64) }
    return ((headVector(a, g, 0, 0), headVector(a, g, 1, 0), headVector(a, g, 2, 0), headVector(a, g, 3, 0)),
            (qb(0), qb(1), qb(2), qb(3)))
}

/// The affine lo weights of heads 0…3 at `a` (zeros for heads ≥ g): lane 4L + m is quarter m's
/// Σq over (its lanes · s_q).
@inline(__always)
private func affineLoWeights(_ a: UnsafeRawPointer, _ g: Int) -> (F32x16, F32x16, F32x16, F32x16) {
    @inline(__always) func w(_ j: Int) -> F32x16 { unsafeBitCast(headVector(a, g, j, 128), to: F32x16.self) }
    return (w(0), w(1), w(2), w(3))
}

/// A record's code bytes with the bytes of one group in the lanes of their quarter (see the
/// top of the file).
@inline(__always)
private func groupedCodes(_ record: UnsafeRawPointer, dim64: Bool) -> (first: U32x16, second: U32x16) {
    let raw = codeBytes(record, dim64: dim64)
    return dim64 ? (deinterleaveBytes(raw.first), raw.second) : (transposeBytes(raw.first), transposeBytes(raw.second))
}

/// Affine int8 scores of `g` (1…4) prepared queries at `area`, over records of D = 64 or 128
/// (`dim64`; both literals after inlining).
@inline(__always)
private func affineInt8Pass(_ a: UnsafeRawPointer, _ g: Int, _ dim64: Bool, _ src: UnsafeRawPointer, _ count: Int, _ groups: Int,
                            _ out: UnsafeMutablePointer<Float>, _ outStride: Int, _ parts: UnsafeMutablePointer<F32x16>) {
    let ((qa0, qa1, qa2, qa3), (qb0, qb1, qb2, qb3)) = affineQueryBytes(a, g, dim64)
    let (w0, w1, w2, w3) = affineLoWeights(a, g)
    let codeBytesPerRecord = dim64 ? 32 : 64, rb = codeBytesPerRecord + 4 * groups, lanes = PairLanes.quarters(groups)
    /// Head j's partial vector: (lo + ½step)·w + step·(q8 · codes), lane 4L + m in quarter m's
    /// group; w is that group's Σq over (its lanes · s_q), so the lanes sum to (lo + ½step)·Σq / s_q.
    @inline(__always) func part(_ mid: F32x16, _ w: F32x16, _ step: F32x16, _ c: (first: U32x16, second: U32x16), _ qa: U32x16, _ qb: U32x16) -> F32x16 {
        var p = mid * w
        fma16(&p, qaq_i32_to_f32(byteDots(U32x16(), c, qa, qb, dim64: dim64)), step)
        return p
    }
    int8Tiles(g, count, parts, tileFactors(a, 384, g, 1), out, outStride) { t, base in
        let record = src + t * rb
        let c = groupedCodes(record, dim64: dim64)
        let (step, mid) = pairStepMid(record + codeBytesPerRecord, groups, lanes)
        parts[base] = part(mid, w0, step, c, qa0, qb0)
        if g > 1 { parts[base + 1] = part(mid, w1, step, c, qa1, qb1) }
        if g > 2 { parts[base + 2] = part(mid, w2, step, c, qa2, qb2) }
        if g > 3 { parts[base + 3] = part(mid, w3, step, c, qa3, qb3) }
    }
}

/// Stores four tokens' scores of `g` (3 or 4) heads: lanes 4j…4j+3 of `f` at row j of `out`.
@inline(__always)
private func storeHeadQuads(_ f: F32x16, _ g: Int, _ out: UnsafeMutablePointer<Float>, _ outStride: Int) {
    UnsafeMutableRawPointer(out).storeBytes(of: f.lowHalf.lowHalf, as: SIMD4<Float>.self)
    UnsafeMutableRawPointer(out + outStride).storeBytes(of: f.lowHalf.highHalf, as: SIMD4<Float>.self)
    UnsafeMutableRawPointer(out + 2 * outStride).storeBytes(of: f.highHalf.lowHalf, as: SIMD4<Float>.self)
    if g > 3 { UnsafeMutableRawPointer(out + 3 * outStride).storeBytes(of: f.highHalf.highHalf, as: SIMD4<Float>.self) }
}

/// Affine int8 scores of `g` (3 or 4) prepared queries, the heads reduced together: per token
/// the four heads' int32 dot lanes are summed block-wise into one vector (block j = head j,
/// lane m = quarter m; ``qaq_sum_head_blocks``), converted once, scaled by the quarters'
/// steps and offset by their lo terms; four tokens' vectors are then summed by quarters into
/// one (lane 4j + t = head j, token t; ``qaq_sum_quads4``), stored as four tokens of each
/// head's row.
@inline(__always)
private func affineInt8Quad(_ a: UnsafeRawPointer, _ g: Int, _ dim64: Bool, _ src: UnsafeRawPointer, _ count: Int, _ groups: Int,
                            _ out: UnsafeMutablePointer<Float>, _ outStride: Int, _ parts: UnsafeMutablePointer<F32x16>) {
    let ((qa0, qa1, qa2, qa3), (qb0, qb1, qb2, qb3)) = affineQueryBytes(a, g, dim64)
    // Lane 4j + m: head j's lo weight of quarter m, for one lane per quarter (4 × the
    // per-lane weight of the query area, whose four blocks each carry a quarter's share).
    let (w0, w1, w2, w3) = affineLoWeights(a, g)
    let w = qaq_block_column(w0, w1, w2, w3, 0) * F32x16(repeating: 4)
    var factors = F32x16()   // lane 4j + k: s_q of head j
    for i in 0..<16 where i &>> 2 < g { factors[i] = a.load(fromByteOffset: headStride * (i &>> 2) + 384, as: Float.self) }
    let codeBytesPerRecord = dim64 ? 32 : 64, rb = codeBytesPerRecord + 4 * groups, lanes = PairLanes.quarters(groups)
    // Token t + 1's lanes of a two-token parameter vector (``qaq_f16_load_two``).
    let nextLanes = PairLanes(lo: lanes.lo | U32x16(repeating: 8))
    /// Token t's vector: lane 4j + m = (step·Σ_{quarter m} q8·c + (lo + ½step)·Σ_{quarter m} q / s_q) of head j;
    /// its (lo, step) pairs are those of `pairs` that `which` picks.
    @inline(__always) func token(_ t: Int, _ pairs: F32x16, _ which: PairLanes) -> F32x16 {
        let c = groupedCodes(src + t * rb, dim64: dim64)
        let z = qaq_sum_head_blocks(byteDots(U32x16(), c, qa0, qb0, dim64: dim64), byteDots(U32x16(), c, qa1, qb1, dim64: dim64),
                                    byteDots(U32x16(), c, qa2, qb2, dim64: dim64), g > 3 ? byteDots(U32x16(), c, qa3, qb3, dim64: dim64) : U32x16())
        let (step, mid) = stepMid(pairs, which)
        var r = mid * w
        fma16(&r, qaq_i32_to_f32(z), step)
        // Opaque, so that LLVM keeps this one 16-lane computation (it otherwise splits it
        // into 4-lane pieces, one per head row stored below).
        return qaq_opaque_f32x16(r)
    }
    let meta = src + codeBytesPerRecord, n = Int32(truncatingIfNeeded: 2 &* groups)
    var t = 0
    while t + 4 <= count {
        // Two tokens' parameters per convert.
        let p01 = qaq_f16_load_two(meta + t * rb, meta + (t + 1) * rb, n)
        let p23 = qaq_f16_load_two(meta + (t + 2) * rb, meta + (t + 3) * rb, n)
        // Lane 4j + k: the score of head j, token t + k.
        let quads = qaq_sum_quads4(token(t, p01, lanes), token(t + 1, p01, nextLanes), token(t + 2, p23, lanes), token(t + 3, p23, nextLanes))
        storeHeadQuads(qaq_opaque_f32x16(quads * factors), g, out + t, outStride)
        t += 4
    }
    // The last count mod 4 tokens: one head at a time (the tile loop).
    if t < count { affineInt8Pass(a, g, dim64, src + t * rb, count - t, groups, out + t, outStride, parts) }
}

/// Code-map int8 scores of `g` (1…4) prepared queries at `area` (one scale per vector), one
/// head at a time through the tile loop: `levels(t)` gives token t's level bytes (l8 + 128)
/// in the order the query bytes take when `swapped` (see ``codebookQueryBytes``), `scale(t)`
/// its scale.
@inline(__always)
private func codebookTileLoop(_ a: UnsafeRawPointer, _ g: Int, _ dim64: Bool, _ count: Int, _ levelScale: Float, swapped: Bool,
                              _ out: UnsafeMutablePointer<Float>, _ outStride: Int, _ parts: UnsafeMutablePointer<F32x16>,
                              levels: (Int) -> (first: U32x16, second: U32x16), scale: (Int) -> Float) {
    let ((qa0, qa1, qa2, qa3), (qb0, qb1, qb2, qb3), (c0, c1, c2, c3)) = codebookQueryBytes(a, g, dim64, swapped: swapped)
    int8Tiles(g, count, parts, tileFactors(a, 388, g, levelScale), out, outStride) { t, base in
        let l = levels(t)
        let s = F32x16(repeating: scale(t))
        parts[base] = qaq_i32_to_f32(byteDots(c0, l, qa0, qb0, dim64: dim64)) * s
        if g > 1 { parts[base + 1] = qaq_i32_to_f32(byteDots(c1, l, qa1, qb1, dim64: dim64)) * s }
        if g > 2 { parts[base + 2] = qaq_i32_to_f32(byteDots(c2, l, qa2, qb2, dim64: dim64)) * s }
        if g > 3 { parts[base + 3] = qaq_i32_to_f32(byteDots(c3, l, qa3, qb3, dim64: dim64)) * s }
    }
}

/// The level bytes (l8 + 128) of a 4-bit code-map record: one `vpshufb` of `table` per code vector.
@inline(__always)
private func recordLevels(_ record: UnsafeRawPointer, _ table: U32x16, dim64: Bool) -> (first: U32x16, second: U32x16) {
    let raw = codeBytes(record, dim64: dim64)
    return (qaq_shuffle_bytes(table, raw.first), dim64 ? raw.second : qaq_shuffle_bytes(table, raw.second))
}

/// Code-map int8 scores of `g` (1…4) prepared queries over 4-bit records of D = 64 or 128
/// (`dim64`), one head at a time.
@inline(__always)
private func codebookInt8Pass(_ a: UnsafeRawPointer, _ g: Int, _ dim64: Bool, _ src: UnsafeRawPointer, _ count: Int,
                              _ layout: CodebookLayout, _ table: U32x16, _ levelScale: Float,
                              _ out: UnsafeMutablePointer<Float>, _ outStride: Int, _ parts: UnsafeMutablePointer<F32x16>) {
    let rb = layout.recordBytes
    codebookTileLoop(a, g, dim64, count, levelScale, swapped: false, out, outStride, parts,
                     levels: { t in recordLevels(src + t * rb, table, dim64: dim64) },
                     scale: { t in loadCodebookScale(src + t * rb, layout, 0) })
}

/// The code-map query vectors of heads 0…3 at `a` (zeros for heads ≥ g): the first and
/// second byte vectors (the second zero at D = 64), in the decoded 2- and 3-bit order when
/// `swapped`, and the zero-point corrections.
@inline(__always)
private func codebookQueryBytes(_ a: UnsafeRawPointer, _ g: Int, _ dim64: Bool, swapped: Bool)
    -> (first: (U32x16, U32x16, U32x16, U32x16), second: (U32x16, U32x16, U32x16, U32x16), corr: (U32x16, U32x16, U32x16, U32x16)) {
    @inline(__always) func qa(_ j: Int) -> U32x16 { swapped ? swapMiddleBytes(headVector(a, g, j, 192)) : headVector(a, g, j, 192) }
    @inline(__always) func qb(_ j: Int) -> U32x16 { dim64 ? U32x16() : swapped ? swapMiddleBytes(headVector(a, g, j, 256)) : headVector(a, g, j, 256) }
    @inline(__always) func c(_ j: Int) -> U32x16 { headVector(a, g, j, 320) }
    return ((qa(0), qa(1), qa(2), qa(3)), (qb(0), qb(1), qb(2), qb(3)), (c(0), c(1), c(2), c(3)))
}

/// Code-map int8 scores of `g` (3 or 4) prepared queries with the heads reduced together, as
/// ``affineInt8Quad`` does: per token the heads' int32 dot lanes are summed block-wise
/// (``qaq_sum_head_blocks``: lane 4j + m), converted and multiplied by the token's scale;
/// four tokens are then summed by quarters (``qaq_sum_quads4``: lane 4j + k = head j, token
/// t + k), multiplied by s_q(j)·s_l and stored as four tokens of each head's row. `levels(t)`
/// gives token t's level bytes (l8 + 128), `scale(t)` its scale. Returns the tokens done: a
/// multiple of 4, the rest left to the caller.
@inline(__always)
private func codebookQuadLoop(_ a: UnsafeRawPointer, _ g: Int, _ dim64: Bool, _ count: Int, _ levelScale: Float, swapped: Bool,
                              _ out: UnsafeMutablePointer<Float>, _ outStride: Int,
                              levels: (Int) -> (first: U32x16, second: U32x16), scale: (Int) -> Float) -> Int {
    let ((qa0, qa1, qa2, qa3), (qb0, qb1, qb2, qb3), (c0, c1, c2, c3)) = codebookQueryBytes(a, g, dim64, swapped: swapped)
    var factors = F32x16()   // lane 4j + k: s_q of head j times s_l
    for i in 0..<16 where i &>> 2 < g { factors[i] = a.load(fromByteOffset: headStride * (i &>> 2) + 388, as: Float.self) * levelScale }
    /// Token t's vector: lane 4j + m = scale·Σ over lanes 4L + m of head j's integer dot.
    @inline(__always) func token(_ t: Int) -> F32x16 {
        let l = levels(t)
        let z = qaq_sum_head_blocks(byteDots(c0, l, qa0, qb0, dim64: dim64), byteDots(c1, l, qa1, qb1, dim64: dim64),
                                    byteDots(c2, l, qa2, qb2, dim64: dim64), g > 3 ? byteDots(c3, l, qa3, qb3, dim64: dim64) : U32x16())
        // Opaque: one 16-lane computation (see affineInt8Quad).
        return qaq_opaque_f32x16(qaq_i32_to_f32(z) * F32x16(repeating: scale(t)))
    }
    var t = 0
    while t + 4 <= count {
        storeHeadQuads(qaq_opaque_f32x16(qaq_sum_quads4(token(t), token(t + 1), token(t + 2), token(t + 3)) * factors), g, out + t, outStride)
        t += 4
    }
    return t
}

/// ``codebookInt8Pass`` for g = 3 or 4 with the heads reduced together (``codebookQuadLoop``);
/// the last count mod 4 tokens by the tile loop.
@inline(__always)
private func codebookInt8Quad(_ a: UnsafeRawPointer, _ g: Int, _ dim64: Bool, _ src: UnsafeRawPointer, _ count: Int,
                              _ layout: CodebookLayout, _ table: U32x16, _ levelScale: Float,
                              _ out: UnsafeMutablePointer<Float>, _ outStride: Int, _ parts: UnsafeMutablePointer<F32x16>) {
    let rb = layout.recordBytes
    let done = codebookQuadLoop(a, g, dim64, count, levelScale, swapped: false, out, outStride,
                                levels: { t in recordLevels(src + t * rb, table, dim64: dim64) },
                                scale: { t in loadCodebookScale(src + t * rb, layout, 0) })
    if done < count { codebookInt8Pass(a, g, dim64, src + done * rb, count - done, layout, table, levelScale, out + done, outStride, parts) }
}

/// Per 128-bit lane, bytes 4j…4j+3 of the result are bytes 4j, 4j + 2, 4j + 1, 4j + 3 of `v`:
/// the plain-order query bytes in the order of the 2- and 3-bit code bytes at D = 128
/// (``decodeCodeMapLevels``: byte k of a lane is slot (0, 4, 2, 6)[k], or (1, 5, 3, 7)[k]).
@inline(__always)
private func swapMiddleBytes(_ v: U32x16) -> U32x16 { laneShuffle(v, SIMD4(0x0301_0200, 0x0705_0604, 0x0B09_0A08, 0x0F0D_0E0C)) }

/// Code-map int8 scores of `g` (1…4) prepared queries over 2- or 3-bit records (`bits` at run
/// time: it only picks the decode function): per block of 64 tokens the codes are first
/// looked up as bytes l8 + 128 into the scratch tile (``decodeCodeMapLevels``), then summed
/// by the quad loop (3–4 heads) and the tile loop, the query bytes put in the decoded order.
@inline(__always)
private func codebookInt8PassDecoded(_ a: UnsafeRawPointer, _ g: Int, _ dim64: Bool, _ bits: Int, _ src: UnsafeRawPointer, _ count: Int,
                                     _ layout: CodebookLayout, _ table: U32x16, _ levelScale: Float,
                                     _ out: UnsafeMutablePointer<Float>, _ outStride: Int, _ parts: UnsafeMutablePointer<F32x16>,
                                     _ tile: UnsafeMutableRawPointer) {
    let rb = layout.recordBytes
    @inline(__always) func levels(_ t: Int) -> (first: U32x16, second: U32x16) {
        (tile.load(fromByteOffset: 128 * t, as: U32x16.self), dim64 ? U32x16() : tile.load(fromByteOffset: 128 * t + 64, as: U32x16.self))
    }
    var b0 = 0
    while b0 < count {
        let nb = count - b0 < 64 ? count - b0 : 64
        let block = src + b0 * rb
        decodeCodeMapLevels(block, rb, nb, table, bits: bits, dim64: dim64, tile)
        // Heads 3 and 4: four tokens at a time with the heads reduced together; the rest (all
        // tokens for g < 3) by the tile loop.
        let done = g < 3 ? 0 : codebookQuadLoop(a, g, dim64, nb, levelScale, swapped: !dim64, out + b0, outStride,
                                                levels: levels, scale: { t in loadCodebookScale(block + t * rb, layout, 0) })
        if done < nb {
            codebookTileLoop(a, g, dim64, nb - done, levelScale, swapped: !dim64, out + b0 + done, outStride, parts,
                             levels: { t in levels(done + t) }, scale: { t in loadCodebookScale(block + (done + t) * rb, layout, 0) })
        }
        b0 += nb
    }
}

// One function per head count (a literal g inside), as the fp32 kernels do per shape.
@inline(never) private func affineInt8Pass1(_ a: UnsafeRawPointer, _ src: UnsafeRawPointer, _ n: Int, _ gr: Int, _ o: UnsafeMutablePointer<Float>, _ os: Int, _ p: UnsafeMutablePointer<F32x16>) { affineInt8Pass(a, 1, false, src, n, gr, o, os, p) }
@inline(never) private func affineInt8Pass2(_ a: UnsafeRawPointer, _ src: UnsafeRawPointer, _ n: Int, _ gr: Int, _ o: UnsafeMutablePointer<Float>, _ os: Int, _ p: UnsafeMutablePointer<F32x16>) { affineInt8Pass(a, 2, false, src, n, gr, o, os, p) }
@inline(never) private func affineInt8Pass3(_ a: UnsafeRawPointer, _ src: UnsafeRawPointer, _ n: Int, _ gr: Int, _ o: UnsafeMutablePointer<Float>, _ os: Int, _ p: UnsafeMutablePointer<F32x16>) { affineInt8Quad(a, 3, false, src, n, gr, o, os, p) }
@inline(never) private func affineInt8Pass4(_ a: UnsafeRawPointer, _ src: UnsafeRawPointer, _ n: Int, _ gr: Int, _ o: UnsafeMutablePointer<Float>, _ os: Int, _ p: UnsafeMutablePointer<F32x16>) { affineInt8Quad(a, 4, false, src, n, gr, o, os, p) }

@inline(never) private func codebookInt8Pass1(_ a: UnsafeRawPointer, _ src: UnsafeRawPointer, _ n: Int, _ l: CodebookLayout, _ t: U32x16, _ ls: Float, _ o: UnsafeMutablePointer<Float>, _ os: Int, _ p: UnsafeMutablePointer<F32x16>) { codebookInt8Pass(a, 1, false, src, n, l, t, ls, o, os, p) }
@inline(never) private func codebookInt8Pass2(_ a: UnsafeRawPointer, _ src: UnsafeRawPointer, _ n: Int, _ l: CodebookLayout, _ t: U32x16, _ ls: Float, _ o: UnsafeMutablePointer<Float>, _ os: Int, _ p: UnsafeMutablePointer<F32x16>) { codebookInt8Pass(a, 2, false, src, n, l, t, ls, o, os, p) }
@inline(never) private func codebookInt8Pass3(_ a: UnsafeRawPointer, _ src: UnsafeRawPointer, _ n: Int, _ l: CodebookLayout, _ t: U32x16, _ ls: Float, _ o: UnsafeMutablePointer<Float>, _ os: Int, _ p: UnsafeMutablePointer<F32x16>) { codebookInt8Quad(a, 3, false, src, n, l, t, ls, o, os, p) }
@inline(never) private func codebookInt8Pass4(_ a: UnsafeRawPointer, _ src: UnsafeRawPointer, _ n: Int, _ l: CodebookLayout, _ t: U32x16, _ ls: Float, _ o: UnsafeMutablePointer<Float>, _ os: Int, _ p: UnsafeMutablePointer<F32x16>) { codebookInt8Quad(a, 4, false, src, n, l, t, ls, o, os, p) }

@inline(never) private func affineInt8Pass64x1(_ a: UnsafeRawPointer, _ src: UnsafeRawPointer, _ n: Int, _ gr: Int, _ o: UnsafeMutablePointer<Float>, _ os: Int, _ p: UnsafeMutablePointer<F32x16>) { affineInt8Pass(a, 1, true, src, n, gr, o, os, p) }
@inline(never) private func affineInt8Pass64x2(_ a: UnsafeRawPointer, _ src: UnsafeRawPointer, _ n: Int, _ gr: Int, _ o: UnsafeMutablePointer<Float>, _ os: Int, _ p: UnsafeMutablePointer<F32x16>) { affineInt8Pass(a, 2, true, src, n, gr, o, os, p) }
@inline(never) private func affineInt8Pass64x3(_ a: UnsafeRawPointer, _ src: UnsafeRawPointer, _ n: Int, _ gr: Int, _ o: UnsafeMutablePointer<Float>, _ os: Int, _ p: UnsafeMutablePointer<F32x16>) { affineInt8Quad(a, 3, true, src, n, gr, o, os, p) }
@inline(never) private func affineInt8Pass64x4(_ a: UnsafeRawPointer, _ src: UnsafeRawPointer, _ n: Int, _ gr: Int, _ o: UnsafeMutablePointer<Float>, _ os: Int, _ p: UnsafeMutablePointer<F32x16>) { affineInt8Quad(a, 4, true, src, n, gr, o, os, p) }

@inline(never) private func codebookInt8Pass64x1(_ a: UnsafeRawPointer, _ src: UnsafeRawPointer, _ n: Int, _ l: CodebookLayout, _ t: U32x16, _ ls: Float, _ o: UnsafeMutablePointer<Float>, _ os: Int, _ p: UnsafeMutablePointer<F32x16>) { codebookInt8Pass(a, 1, true, src, n, l, t, ls, o, os, p) }
@inline(never) private func codebookInt8Pass64x2(_ a: UnsafeRawPointer, _ src: UnsafeRawPointer, _ n: Int, _ l: CodebookLayout, _ t: U32x16, _ ls: Float, _ o: UnsafeMutablePointer<Float>, _ os: Int, _ p: UnsafeMutablePointer<F32x16>) { codebookInt8Pass(a, 2, true, src, n, l, t, ls, o, os, p) }
@inline(never) private func codebookInt8Pass64x3(_ a: UnsafeRawPointer, _ src: UnsafeRawPointer, _ n: Int, _ l: CodebookLayout, _ t: U32x16, _ ls: Float, _ o: UnsafeMutablePointer<Float>, _ os: Int, _ p: UnsafeMutablePointer<F32x16>) { codebookInt8Quad(a, 3, true, src, n, l, t, ls, o, os, p) }
@inline(never) private func codebookInt8Pass64x4(_ a: UnsafeRawPointer, _ src: UnsafeRawPointer, _ n: Int, _ l: CodebookLayout, _ t: U32x16, _ ls: Float, _ o: UnsafeMutablePointer<Float>, _ os: Int, _ p: UnsafeMutablePointer<F32x16>) { codebookInt8Quad(a, 4, true, src, n, l, t, ls, o, os, p) }

@inline(never) private func codebookInt8Low1(_ a: UnsafeRawPointer, _ b: Int, _ src: UnsafeRawPointer, _ n: Int, _ l: CodebookLayout, _ t: U32x16, _ ls: Float, _ o: UnsafeMutablePointer<Float>, _ os: Int, _ p: UnsafeMutablePointer<F32x16>, _ tile: UnsafeMutableRawPointer) { codebookInt8PassDecoded(a, 1, false, b, src, n, l, t, ls, o, os, p, tile) }
@inline(never) private func codebookInt8Low2(_ a: UnsafeRawPointer, _ b: Int, _ src: UnsafeRawPointer, _ n: Int, _ l: CodebookLayout, _ t: U32x16, _ ls: Float, _ o: UnsafeMutablePointer<Float>, _ os: Int, _ p: UnsafeMutablePointer<F32x16>, _ tile: UnsafeMutableRawPointer) { codebookInt8PassDecoded(a, 2, false, b, src, n, l, t, ls, o, os, p, tile) }
@inline(never) private func codebookInt8Low3(_ a: UnsafeRawPointer, _ b: Int, _ src: UnsafeRawPointer, _ n: Int, _ l: CodebookLayout, _ t: U32x16, _ ls: Float, _ o: UnsafeMutablePointer<Float>, _ os: Int, _ p: UnsafeMutablePointer<F32x16>, _ tile: UnsafeMutableRawPointer) { codebookInt8PassDecoded(a, 3, false, b, src, n, l, t, ls, o, os, p, tile) }
@inline(never) private func codebookInt8Low4(_ a: UnsafeRawPointer, _ b: Int, _ src: UnsafeRawPointer, _ n: Int, _ l: CodebookLayout, _ t: U32x16, _ ls: Float, _ o: UnsafeMutablePointer<Float>, _ os: Int, _ p: UnsafeMutablePointer<F32x16>, _ tile: UnsafeMutableRawPointer) { codebookInt8PassDecoded(a, 4, false, b, src, n, l, t, ls, o, os, p, tile) }
@inline(never) private func codebookInt8Low64x1(_ a: UnsafeRawPointer, _ b: Int, _ src: UnsafeRawPointer, _ n: Int, _ l: CodebookLayout, _ t: U32x16, _ ls: Float, _ o: UnsafeMutablePointer<Float>, _ os: Int, _ p: UnsafeMutablePointer<F32x16>, _ tile: UnsafeMutableRawPointer) { codebookInt8PassDecoded(a, 1, true, b, src, n, l, t, ls, o, os, p, tile) }
@inline(never) private func codebookInt8Low64x2(_ a: UnsafeRawPointer, _ b: Int, _ src: UnsafeRawPointer, _ n: Int, _ l: CodebookLayout, _ t: U32x16, _ ls: Float, _ o: UnsafeMutablePointer<Float>, _ os: Int, _ p: UnsafeMutablePointer<F32x16>, _ tile: UnsafeMutableRawPointer) { codebookInt8PassDecoded(a, 2, true, b, src, n, l, t, ls, o, os, p, tile) }
@inline(never) private func codebookInt8Low64x3(_ a: UnsafeRawPointer, _ b: Int, _ src: UnsafeRawPointer, _ n: Int, _ l: CodebookLayout, _ t: U32x16, _ ls: Float, _ o: UnsafeMutablePointer<Float>, _ os: Int, _ p: UnsafeMutablePointer<F32x16>, _ tile: UnsafeMutableRawPointer) { codebookInt8PassDecoded(a, 3, true, b, src, n, l, t, ls, o, os, p, tile) }
@inline(never) private func codebookInt8Low64x4(_ a: UnsafeRawPointer, _ b: Int, _ src: UnsafeRawPointer, _ n: Int, _ l: CodebookLayout, _ t: U32x16, _ ls: Float, _ o: UnsafeMutablePointer<Float>, _ os: Int, _ p: UnsafeMutablePointer<F32x16>, _ tile: UnsafeMutableRawPointer) { codebookInt8PassDecoded(a, 4, true, b, src, n, l, t, ls, o, os, p, tile) }

private func affineInt8Scores(_ heads: Int, _ src: UnsafeRawPointer, _ count: Int, _ dim64: Bool, _ groups: Int,
                              _ out: UnsafeMutablePointer<Float>, _ outStride: Int, _ scratch: AttentionScratch) {
    let area = UnsafeRawPointer(scratch.int8Queries), parts = scratch.parts
    var h0 = 0
    while h0 < heads {
        let o = out + h0 * outStride, a = area + headStride * h0
        switch (heads - h0, dim64) {
        case (1, false): affineInt8Pass1(a, src, count, groups, o, outStride, parts); h0 += 1
        case (2, false): affineInt8Pass2(a, src, count, groups, o, outStride, parts); h0 += 2
        case (3, false): affineInt8Pass3(a, src, count, groups, o, outStride, parts); h0 += 3
        case (_, false): affineInt8Pass4(a, src, count, groups, o, outStride, parts); h0 += 4
        case (1, true): affineInt8Pass64x1(a, src, count, groups, o, outStride, parts); h0 += 1
        case (2, true): affineInt8Pass64x2(a, src, count, groups, o, outStride, parts); h0 += 2
        case (3, true): affineInt8Pass64x3(a, src, count, groups, o, outStride, parts); h0 += 3
        case (_, true): affineInt8Pass64x4(a, src, count, groups, o, outStride, parts); h0 += 4
        }
    }
}

private func codebookInt8Scores(_ heads: Int, _ src: UnsafeRawPointer, _ count: Int, _ layout: CodebookLayout,
                                _ table: U32x16, _ levelScale: Float,
                                _ out: UnsafeMutablePointer<Float>, _ outStride: Int, _ scratch: AttentionScratch) {
    let area = UnsafeRawPointer(scratch.int8Queries), parts = scratch.parts
    let dim64 = layout.dim == 64
    var h0 = 0
    if layout.bits < 4 {
        let b = layout.bits, tile = UnsafeMutableRawPointer(scratch.tile)
        while h0 < heads {
            let o = out + h0 * outStride, a = area + headStride * h0
            switch (heads - h0, dim64) {
            case (1, false): codebookInt8Low1(a, b, src, count, layout, table, levelScale, o, outStride, parts, tile); h0 += 1
            case (2, false): codebookInt8Low2(a, b, src, count, layout, table, levelScale, o, outStride, parts, tile); h0 += 2
            case (3, false): codebookInt8Low3(a, b, src, count, layout, table, levelScale, o, outStride, parts, tile); h0 += 3
            case (_, false): codebookInt8Low4(a, b, src, count, layout, table, levelScale, o, outStride, parts, tile); h0 += 4
            case (1, true): codebookInt8Low64x1(a, b, src, count, layout, table, levelScale, o, outStride, parts, tile); h0 += 1
            case (2, true): codebookInt8Low64x2(a, b, src, count, layout, table, levelScale, o, outStride, parts, tile); h0 += 2
            case (3, true): codebookInt8Low64x3(a, b, src, count, layout, table, levelScale, o, outStride, parts, tile); h0 += 3
            case (_, true): codebookInt8Low64x4(a, b, src, count, layout, table, levelScale, o, outStride, parts, tile); h0 += 4
            }
        }
        return
    }
    while h0 < heads {
        let o = out + h0 * outStride, a = area + headStride * h0
        switch (heads - h0, dim64) {
        case (1, false): codebookInt8Pass1(a, src, count, layout, table, levelScale, o, outStride, parts); h0 += 1
        case (2, false): codebookInt8Pass2(a, src, count, layout, table, levelScale, o, outStride, parts); h0 += 2
        case (3, false): codebookInt8Pass3(a, src, count, layout, table, levelScale, o, outStride, parts); h0 += 3
        case (_, false): codebookInt8Pass4(a, src, count, layout, table, levelScale, o, outStride, parts); h0 += 4
        case (1, true): codebookInt8Pass64x1(a, src, count, layout, table, levelScale, o, outStride, parts); h0 += 1
        case (2, true): codebookInt8Pass64x2(a, src, count, layout, table, levelScale, o, outStride, parts); h0 += 2
        case (3, true): codebookInt8Pass64x3(a, src, count, layout, table, levelScale, o, outStride, parts); h0 += 3
        case (_, true): codebookInt8Pass64x4(a, src, count, layout, table, levelScale, o, outStride, parts); h0 += 4
        }
    }
}

/// The int8 level table of an n-entry (≤ 16) code map: s_l = max|levels|/127 and the bytes
/// l8[c] + `offset` in every 128-bit lane (for `vpshufb`), l8[c] = round(levels[c]·(127/max))
/// (fp32 product, ties to even); entries past n, and every entry of an all-zero table, are
/// level 0. The scores take offset 128 (unsigned bytes 1…255, a zero-point correction), the
/// value sums offset 0 (signed bytes).
@inline(__always)
func int8LevelTable(_ levels: UnsafePointer<Float>, _ n: Int, offset: Int32) -> (table: U32x16, scale: Float) {
    let zero = UInt32(truncatingIfNeeded: offset) & 0xFF, zeros = zero &* 0x0101_0101
    var amax: Float = 0
    for c in 0..<n { let a = levels[c] < 0 ? -levels[c] : levels[c]; if a > amax { amax = a } }
    if amax == 0 { return (U32x16(repeating: zeros), 0) }
    let inv = 127 / amax
    var words = SIMD4<UInt32>(repeating: zeros)
    for c in 0..<n {
        // Round to nearest, ties to even, through 1.5·2²³ (|x| ≤ 127).
        let r = (levels[c] * inv + 12_582_912) - 12_582_912
        let byte = UInt32(truncatingIfNeeded: Int32(r) &+ offset) & 0xFF, shift = UInt32(truncatingIfNeeded: 8 * (c & 3))
        words[c &>> 2] = (words[c &>> 2] & ~(0xFF &<< shift)) | (byte &<< shift)
    }
    return (U32x16(words[0], words[1], words[2], words[3], words[0], words[1], words[2], words[3],
                   words[0], words[1], words[2], words[3], words[0], words[1], words[2], words[3]), amax / 127)
}

extension Kernels {
    /// Whether this ISA level has the integer-dot scores (AVX-512 VNNI).
    public static var hasInt8Scores: Bool { qaq_dpbusd_native() != 0 }

    /// Quantizes `heads` queries of D = `dim` to int8 into the scratch's int8 query area, for
    /// the integer-dot scores that follow on the same scratch: `affine` (scored against
    /// affine records) and `codebook` (against code-map records: the queries rotated into the
    /// code maps' domain, or the same pointer). Once per call and KV head, not per page.
    /// Returns false (nothing written) where this level has no integer dot, D is neither 64
    /// nor 128, or the scratch serves fewer query heads.
    public static func prepareInt8Queries(
        affine: UnsafePointer<Float>, codebook: UnsafePointer<Float>, heads: Int, dim: Int, scratch: AttentionScratch
    ) -> Bool {
        guard hasInt8Scores, dim == 128 || dim == 64, heads >= 1, heads <= scratch.queryHeads else { return false }
        if dim == 64 { prepareInt8Dim64(affine, codebook, heads, scratch) } else { prepareInt8(affine, codebook, heads, scratch) }
        return true
    }

    /// ``scores(queries:heads:_:count:layout:out:outStride:scratch:)`` by int8 dot products
    /// (the contract at the top of AttentionInt8.swift) for the queries of the last
    /// ``prepareInt8Queries(affine:codebook:heads:dim:scratch:)`` on `scratch`, over affine
    /// records of D = 128 or 64, b = 4, G ≥ 32, no outliers. The prepared queries must be of
    /// the same D. Returns false (nothing written) for any other layout, or where this level
    /// has no integer dot product.
    public static func scoresInt8(
        heads: Int, _ src: UnsafeRawPointer, count: Int, layout: PackedLayout,
        out: UnsafeMutablePointer<Float>, outStride: Int, scratch: AttentionScratch
    ) -> Bool {
        guard hasInt8Scores, layout.dim == 128 || layout.dim == 64, layout.bits == 4, layout.outlierCount == 0,
              layout.groupSize >= 32, heads <= scratch.queryHeads else { return false }
        affineInt8Scores(heads, src, count, layout.dim == 64, layout.dim / layout.groupSize, out, outStride, scratch)
        return true
    }

    /// ``codebookScores(queries:heads:_:count:layout:levels:out:outStride:scratch:)`` by int8
    /// dot products for the prepared code-map queries, over records of D = 128 or 64, b = 2, 3
    /// or 4, one scale per vector; false (nothing written) otherwise. 2- and 3-bit codes are
    /// looked up 64 tokens at a time into the scratch's tile area (``decodeCodeMapLevels``).
    public static func codebookScoresInt8(
        heads: Int, _ src: UnsafeRawPointer, count: Int, layout: CodebookLayout, levels: UnsafePointer<Float>,
        out: UnsafeMutablePointer<Float>, outStride: Int, scratch: AttentionScratch
    ) -> Bool {
        guard hasInt8Scores, layout.dim == 128 || layout.dim == 64, layout.bits >= 2, layout.bits <= 4, layout.groupCount == 1,
              heads <= scratch.queryHeads,
              layout.bits == 4 || AttentionScratch.tileBytes(dim: scratch.dim, tileRows: scratch.tileRows) >= AttentionScratch.int8ValueBytes
        else { return false }
        let (table, levelScale) = int8LevelTable(levels, layout.levelCount, offset: 128)
        codebookInt8Scores(heads, src, count, layout, table, levelScale, out, outStride, scratch)
        return true
    }
}

extension Reference {
    /// The int8 query scale of the integer-dot kernels for one query: (127/max|q|, max|q|/127),
    /// both 0 below max|q| = 1e-30; q8ᵢ = round(qᵢ·inverse) (fp32 product, ties to even).
    public static func int8QueryScale(_ q: UnsafePointer<Float>, dim: Int) -> (inverse: Float, scale: Float) {
        var amax: Float = 0
        for i in 0..<dim { let a = q[i] < 0 ? -q[i] : q[i]; if a > amax { amax = a } }
        return amax >= 1e-30 ? (127 / amax, amax / 127) : (0, 0)
    }

    /// Scalar reference of ``Kernels/scoresInt8(heads:_:count:layout:out:outStride:scratch:)``:
    /// s_q·Σ_g stepᵍ·Σ_{i∈g} q8ᵢ·cᵢ + Σ_g (loᵍ + ½stepᵍ)·Σ_{i∈g} qᵢ, integer dots exact, fp64 sums.
    public static func affineScoresInt8(
        queries q: UnsafePointer<Float>, heads: Int, _ src: UnsafeRawPointer, count: Int, layout: PackedLayout,
        out: UnsafeMutablePointer<Float>, outStride: Int
    ) {
        let d = layout.dim, gs = layout.groupSize
        for h in 0..<heads {
            let qh = q + h * d
            let (inv, sq) = int8QueryScale(qh, dim: d)
            for t in 0..<count {
                let record = src + t * layout.recordBytes
                var total = 0.0
                for g in 0..<(d / gs) {
                    let (lo, step) = metadata(record, layout, group: g)
                    var dot: Int64 = 0, qsum = 0.0
                    for i in (g * gs)..<((g + 1) * gs) {
                        dot += Int64((qh[i] * inv).rounded(.toNearestOrEven)) * Int64(code(record, layout, element: i))
                        qsum += Double(qh[i])
                    }
                    total += Double(sq) * Double(step) * Double(dot) + (Double(lo) + 0.5 * Double(step)) * qsum
                }
                out[h * outStride + t] = Float(total)
            }
        }
    }

    /// Scalar reference of ``Kernels/codebookScoresInt8(heads:_:count:layout:levels:out:outStride:scratch:)``:
    /// s_q·s_l·scale·Σᵢ q8ᵢ·l8[cᵢ] with l8[c] = round(levels[c]·(127/max|levels|)), s_l = max|levels|/127; fp64.
    public static func codebookScoresInt8(
        queries q: UnsafePointer<Float>, heads: Int, _ src: UnsafeRawPointer, count: Int,
        layout: CodebookLayout, levels: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, outStride: Int
    ) {
        let d = layout.dim, n = layout.levelCount, sl = int8LevelScale(levels, count: n)
        for h in 0..<heads {
            let qh = q + h * d
            let (inv, sq) = int8QueryScale(qh, dim: d)
            for t in 0..<count {
                let record = src + t * layout.recordBytes
                var dot: Int64 = 0
                for i in 0..<d {
                    let c = Int(codebookCode(record, layout, element: i))
                    dot += Int64((qh[i] * inv).rounded(.toNearestOrEven)) * Int64(int8Level(levels, count: n, code: c))
                }
                out[h * outStride + t] = Float(Double(sq) * Double(sl) * Double(codebookScale(record, layout, group: 0)) * Double(dot))
            }
        }
    }
}

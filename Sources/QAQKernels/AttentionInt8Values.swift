import QAQLayout
import _QAQSIMDShims

// Decode-attention values by integer dot products (DESIGN §5) for 4-bit affine records of
// D = 128 or 64 (no outliers, G ≥ 32): out[h][i] += Σₜ wₜ·x̂ₜ[i] with x̂ = lo + ½step + c·step.
//
// Per head h, quarter k of the vector (elements 32k…32k+31, inside one group at G ≥ 32) and
// block of ``int8ValueBlock`` tokens, the weight of a code is uₜ = wₜ·stepₜ (fp32). It is
// quantized to 8 unsigned bits against the block's largest, s = max uₜ/255 (fp32),
// u8ₜ = round(uₜ·(255/max)) (fp32 product, ties to even), and, with the codes centred on 8,
//
//   out[h][i] += s·Σₜ u8ₜ·cₜ[i] − 8·s·Σₜ u8ₜ + Σₜ wₜ·(loₜ + 8.5·stepₜ)
//
// — the first sum exact in 32-bit integers (`vpdpbusd`: four tokens per 32-bit lane), the
// rest fp32 once per (head, quarter). Against the fp32 kernels the error is that of the 8-bit
// weights only: |Δ[i]| ≤ Σ_blocks ½·s·Σₜ |cₜ[i] − 8|, plus fp32 rounding;
// ``Reference/affineAccumulateInt8(weights:wStride:heads:_:count:layout:out:)`` computes the
// same quantities in scalar code. The weights must be finite and ≥ 0 (softmax numerators);
// the kernel refuses others.
//
// Layout: a record's 64 code bytes hold in lane j the codes of elements j + 16s, slot s at
// bit 4s; the low nibbles of byte k are element 32k + j, the high nibbles 32k + 16 + j. Four
// tokens' code bytes are byte-transposed (``qaq_bytes_4x4``), then split into nibbles, so
// that lane 4b + k of output j holds the four tokens' codes of element 32k + 16n + 4b + j
// (n: low or high nibbles) — quarter k, so the weight bytes for that lane are those of
// quarter k: one 128-bit block of four tokens × four quarters, the same in every block.
// After a block of tokens the integer lanes are scaled by s and transposed back
// (``qaq_add_transposed4``).
// The weights are prepared quarter-major (lane 4k + h: a token's four head weights are one
// broadcast, no permute) and the packed bytes and s moved to head blocks (lane 4h + k) by one
// 4 × 4 word transpose per four tokens.
//
// D = 64: the 64 codes of a record are one byte vector (``codes64(_:)``: byte k of lane K is
// element (K mod 8) + 8(k >> 1) + 32(k & 1) + 16(K >> 3)), so one transpose per four tokens;
// lane 4b + k then holds half k & 1 of the vector, and its weights are those of that half's
// group (lanes k = 2, 3 repeat k = 0, 1). With two groups at most, the weights are prepared
// two tokens per vector (lane 4h + 2p + k: token parity p, half k), so that no lane is wasted;
// the parities' largest, integer sums and fp32 parts are combined per head and half.
//
// Integer accumulators cannot overflow: ≤ 64 tokens × 255 × 15 per lane.

/// Tokens per weight-scale block.
let int8ValueBlock = 64

/// Byte offsets in the scratch's tile area: u (64 tokens × 16 lanes fp32), the weight bytes
/// (16 chunks of four tokens × 64 bytes), s (16 lanes), padded weight rows (4 × 16 fp32; then
/// the same 16 tokens' weights token-major):
/// 5440 bytes, within what ``AttentionScratch/int8ValueBytes`` reserves.
private let uOffset = 0, bytesOffset = 4096, scaleOffset = 5120, padOffset = 5184

/// Rows h < g of the weights for tokens t…t+n−1 (n ≤ 16) as 16-lane vectors, zero beyond n
/// and for h ≥ g (copied through `pad` when n < 16, so nothing past the row is read).
@inline(__always)
func weightRows(_ w: UnsafePointer<Float>, _ wStride: Int, _ g: Int, _ t: Int, _ n: Int,
                        _ pad: UnsafeMutableRawPointer) -> (F32x16, F32x16, F32x16, F32x16) {
    if n == 16 {
        let r = UnsafeRawPointer(w + t)
        return (r.loadUnaligned(as: F32x16.self),
                g > 1 ? r.loadUnaligned(fromByteOffset: 4 * wStride, as: F32x16.self) : F32x16(),
                g > 2 ? r.loadUnaligned(fromByteOffset: 8 * wStride, as: F32x16.self) : F32x16(),
                g > 3 ? r.loadUnaligned(fromByteOffset: 12 * wStride, as: F32x16.self) : F32x16())
    }
    let p = pad.assumingMemoryBound(to: Float.self)
    for h in 0..<4 {
        for k in 0..<16 { p[16 * h + k] = h < g && k < n ? w[h * wStride + t + k] : 0 }
    }
    return (pad.load(as: F32x16.self), pad.load(fromByteOffset: 64, as: F32x16.self),
            pad.load(fromByteOffset: 128, as: F32x16.self), pad.load(fromByteOffset: 192, as: F32x16.self))
}

/// The 16 bytes at `p` in every 128-bit block.
@inline(__always)
func block128(_ p: UnsafeRawPointer) -> U32x16 {
    let w = p.loadUnaligned(as: SIMD4<UInt32>.self)
    return U32x16(w[0], w[1], w[2], w[3], w[0], w[1], w[2], w[3], w[0], w[1], w[2], w[3], w[0], w[1], w[2], w[3])
}

/// D = 64: token t + r's 64 codes as bytes (``codes64(_:)``; zeros when r ≥ `left`).
@inline(__always)
private func codes64(_ src: UnsafeRawPointer, _ rb: Int, _ t: Int, _ r: Int, _ left: Int) -> U32x16 {
    r < left ? codes64(src + (t + r) * rb) : U32x16()
}

/// u8 = round(u·inv) of token `t` of the block (u at its slot of `area`), added to `sum`;
/// zeros for t ≥ `nb`.
@inline(__always)
private func weightBytes(_ area: UnsafeRawPointer, _ t: Int, _ nb: Int, _ inv: F32x16, _ sum: inout U32x16) -> U32x16 {
    guard t < nb else { return U32x16() }
    let q = qaq_f32_round_u32(area.load(fromByteOffset: uOffset + 64 * t, as: F32x16.self) * inv)
    sum &+= q
    return q
}

/// D = 128: u = w·step of token `t` of the block (its weights, heads 0…3, are the four
/// floats at `heads`), lane 4k + h (quarter k, head h: the four weights broadcast, no
/// permute), stored at its slot of `area`; `exact` += w·(lo + 8.5·step). Its (lo, step)
/// pairs are those of the converted `pairs` that `which` picks.
@inline(__always)
private func valueWeight(_ pairs: F32x16, _ which: PairLanes, _ t: Int,
                         _ heads: UnsafeRawPointer, _ area: UnsafeMutableRawPointer, _ exact: inout F32x16) -> F32x16 {
    storeWeights(unsafeBitCast(block128(heads), to: F32x16.self), qaq_permute16(pairs, which.step), qaq_permute16(pairs, which.lo),
                 area, t, &exact)
}

/// Lane 4h + k of the result is lane 4k + h of `v`: a 4 × 4 transpose of 32-bit lanes, from
/// the weights' quarter-major order (D = 128) to the head blocks the integer pass reads.
@inline(__always)
private func headBlocks(_ v: U32x16) -> U32x16 {
    unsafeBitCast(qaq_permute16(unsafeBitCast(v, to: F32x16.self), U32x16(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15)), to: U32x16.self)
}

/// u = wt·step, stored as row `row` of `area`'s u rows; `exact` += wt·(lo + 8.5·step).
@inline(__always)
private func storeWeights(_ wt: F32x16, _ step: F32x16, _ lo: F32x16, _ area: UnsafeMutableRawPointer, _ row: Int,
                          _ exact: inout F32x16) -> F32x16 {
    let u = wt * step
    var x = lo
    fma16(&x, step, F32x16(repeating: 8.5))
    fma16(&exact, wt, x)
    area.storeBytes(of: u, toByteOffset: uOffset + 64 * row, as: F32x16.self)
    return u
}

/// D = 64: u = w·step of tokens t (lanes 4h + k, k < 2) and t + 1 (lanes 4h + 2 + k) in one
/// vector — lane 4h + 2p + k is head h, token t + p, half k's group — stored as row `row` of
/// `area`; `exact` += w·(lo + 8.5·step). The weights are the eight floats at `heads` (token
/// t's four, then t + 1's; the load reads 64 bytes, all inside the scratch). `second` false:
/// there is no token t + 1 (its weights are zero), token t's parameters are read twice.
@inline(__always)
private func valueWeightPair(_ block: UnsafeRawPointer, _ rb: Int, _ groups: Int, _ lanes: PairLanes, _ t: Int, _ second: Bool,
                             _ heads: UnsafeRawPointer, _ area: UnsafeMutableRawPointer, _ row: Int, _ exact: inout F32x16) -> F32x16 {
    let meta = block + t * rb + 32
    let pairs = qaq_f16_load_pair(meta, second ? meta + rb : meta, Int32(truncatingIfNeeded: 2 &* groups))
    let step = qaq_permute16(pairs, lanes.step), lo = qaq_permute16(pairs, lanes.lo)
    let wt = qaq_permute16(heads.loadUnaligned(as: F32x16.self), U32x16(0, 0, 4, 4, 1, 1, 5, 5, 2, 2, 6, 6, 3, 3, 7, 7))
    return storeWeights(wt, step, lo, area, row, &exact)
}

/// Lanes 4h + k and 4h + k ± 2 exchanged (the two token parities of the D = 64 pairs).
@inline(__always)
private func swapParity(_ v: F32x16) -> F32x16 { qaq_permute16(v, U32x16(2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13)) }

/// The integer value sums of up to four heads over four byte vectors: `h<j>.x` is head j's
/// `vpdpbusd` sum with byte vector x (the vectors of one block of tokens: transposed codes
/// or levels, four tokens per 32-bit lane).
struct ValueSums {
    typealias Four = (U32x16, U32x16, U32x16, U32x16)
    var h0: Four = (U32x16(), U32x16(), U32x16(), U32x16())
    var h1: Four = (U32x16(), U32x16(), U32x16(), U32x16())
    var h2: Four = (U32x16(), U32x16(), U32x16(), U32x16())
    var h3: Four = (U32x16(), U32x16(), U32x16(), U32x16())
}

/// `sums` plus, for each head j < `g` (a literal after inlining), the byte dots of its weight
/// bytes `w.j` with the four vectors `v`.
@inline(__always)
func accumulate(_ sums: inout ValueSums, _ g: Int, _ w: ValueSums.Four, _ v: ValueSums.Four) {
    @inline(__always) func dots(_ a: ValueSums.Four, _ wj: U32x16) -> ValueSums.Four {
        (qaq_dpbusd(a.0, wj, v.0), qaq_dpbusd(a.1, wj, v.1), qaq_dpbusd(a.2, wj, v.2), qaq_dpbusd(a.3, wj, v.3))
    }
    sums.h0 = dots(sums.h0, w.0)
    if g > 1 { sums.h1 = dots(sums.h1, w.1) }
    if g > 2 { sums.h2 = dots(sums.h2, w.2) }
    if g > 3 { sums.h3 = dots(sums.h3, w.3) }
}

/// The weight bytes of heads 0…3 for chunk `c` (four tokens), each head's 16 bytes in every
/// 128-bit block.
@inline(__always)
private func chunkWeights(_ area: UnsafeRawPointer, _ c: Int) -> ValueSums.Four {
    let wb = area + bytesOffset + 64 * c
    return (block128(wb), block128(wb + 16), block128(wb + 32), block128(wb + 48))
}

/// D = 64: the integer sums of a block of `nb` tokens at `src`, scaled by the block's s and
/// added to `out`.
@inline(__always)
private func int8ValueSums64(_ g: Int, _ src: UnsafeRawPointer, _ rb: Int, _ nb: Int,
                             _ area: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
    var sums = ValueSums()
    var c = 0
    while 4 * c < nb {
        let t = 4 * c, left = nb - t
        let n0 = codes64(src, rb, t, 0, left), n1 = codes64(src, rb, t, 1, left)
        let n2 = codes64(src, rb, t, 2, left), n3 = codes64(src, rb, t, 3, left)
        accumulate(&sums, g, chunkWeights(area, c), (qaq_bytes_4x4(n0, n1, n2, n3, 0), qaq_bytes_4x4(n0, n1, n2, n3, 1),
                                                    qaq_bytes_4x4(n0, n1, n2, n3, 2), qaq_bytes_4x4(n0, n1, n2, n3, 3)))
        c += 1
    }
    /// Head j's sums times its s, added at its 64 outputs.
    @inline(__always) func add(_ j: Int, _ a: ValueSums.Four) {
        let s = unsafeBitCast(block128(area + scaleOffset + 16 * j), to: F32x16.self)
        qaq_add_transposed4_split(out + 64 * j, qaq_i32_to_f32(a.0) * s, qaq_i32_to_f32(a.1) * s, qaq_i32_to_f32(a.2) * s, qaq_i32_to_f32(a.3) * s,
                                  0, 32, 8, 40)
    }
    add(0, sums.h0)
    if g > 1 { add(1, sums.h1) }
    if g > 2 { add(2, sums.h2) }
    if g > 3 { add(3, sums.h3) }
}

/// Token t + r's 64 code bytes as they are (zeros when r ≥ `left`).
@inline(__always)
private func rawCodes(_ src: UnsafeRawPointer, _ rb: Int, _ t: Int, _ r: Int, _ left: Int) -> U32x16 {
    r < left ? (src + (t + r) * rb).loadUnaligned(as: U32x16.self) : U32x16()
}

/// D = 128: the integer sums of a block of `nb` tokens at `src`, half `second` of the byte
/// transpose: the raw code bytes of four tokens are transposed once (``qaq_bytes_4x4``
/// outputs j = 2·second and 2·second + 1), and each output split into its low and high
/// nibbles — half the byte shuffles of transposing each nibble vector. The first half's
/// 4·g integer vectors are kept at `keep` (the u rows, consumed by then); the second half
/// adds both, scaled by s, to `out` (``qaq_add_transposed4``, low nibbles at 0, high at 16).
@inline(__always)
private func int8ValueSums128(_ g: Int, _ second: Bool, _ src: UnsafeRawPointer, _ rb: Int, _ nb: Int,
                              _ area: UnsafeMutableRawPointer, _ out: UnsafeMutablePointer<Float>) {
    // Per head: (low nibbles of output j, of j + 1, high nibbles of j, of j + 1), j = 2·second.
    var sums = ValueSums()
    let mask = U32x16(repeating: 0x0F0F_0F0F), j = second ? 2 : 0
    var c = 0
    while 4 * c < nb {
        let t = 4 * c, left = nb - t
        let r0 = rawCodes(src, rb, t, 0, left), r1 = rawCodes(src, rb, t, 1, left)
        let r2 = rawCodes(src, rb, t, 2, left), r3 = rawCodes(src, rb, t, 3, left)
        let x = qaq_bytes_4x4(r0, r1, r2, r3, Int32(truncatingIfNeeded: j)), y = qaq_bytes_4x4(r0, r1, r2, r3, Int32(truncatingIfNeeded: j + 1))
        let four = U32x16(repeating: 4)
        accumulate(&sums, g, chunkWeights(area, c), (x & mask, y & mask, (x &>> four) & mask, (y &>> four) & mask))
        c += 1
    }
    let keep = area + uOffset
    /// Head h's four vectors of this half: kept (first half), or added with the kept ones.
    @inline(__always) func finish(_ h: Int, _ a: ValueSums.Four) {
        let k = keep + 256 * h
        if !second {
            k.storeBytes(of: a.0, as: U32x16.self)
            k.storeBytes(of: a.1, toByteOffset: 64, as: U32x16.self)
            k.storeBytes(of: a.2, toByteOffset: 128, as: U32x16.self)
            k.storeBytes(of: a.3, toByteOffset: 192, as: U32x16.self)
            return
        }
        let sh = unsafeBitCast(block128(area + scaleOffset + 16 * h), to: F32x16.self)
        @inline(__always) func f(_ v: U32x16) -> F32x16 { qaq_i32_to_f32(v) * sh }
        @inline(__always) func kept(_ offset: Int) -> F32x16 { f(k.load(fromByteOffset: offset, as: U32x16.self)) }
        qaq_add_transposed4(out + 128 * h, kept(0), kept(64), f(a.0), f(a.1))
        qaq_add_transposed4(out + 128 * h + 16, kept(128), kept(192), f(a.2), f(a.3))
    }
    finish(0, sums.h0)
    if g > 1 { finish(1, sums.h1) }
    if g > 2 { finish(2, sums.h2) }
    if g > 3 { finish(3, sums.h3) }
}

@inline(never) private func int8ValueSums128x1(_ second: Bool, _ src: UnsafeRawPointer, _ rb: Int, _ nb: Int, _ a: UnsafeMutableRawPointer, _ o: UnsafeMutablePointer<Float>) { if second { int8ValueSums128(1, true, src, rb, nb, a, o) } else { int8ValueSums128(1, false, src, rb, nb, a, o) } }
@inline(never) private func int8ValueSums128x2(_ second: Bool, _ src: UnsafeRawPointer, _ rb: Int, _ nb: Int, _ a: UnsafeMutableRawPointer, _ o: UnsafeMutablePointer<Float>) { if second { int8ValueSums128(2, true, src, rb, nb, a, o) } else { int8ValueSums128(2, false, src, rb, nb, a, o) } }
@inline(never) private func int8ValueSums128x3(_ second: Bool, _ src: UnsafeRawPointer, _ rb: Int, _ nb: Int, _ a: UnsafeMutableRawPointer, _ o: UnsafeMutablePointer<Float>) { if second { int8ValueSums128(3, true, src, rb, nb, a, o) } else { int8ValueSums128(3, false, src, rb, nb, a, o) } }
@inline(never) private func int8ValueSums128x4(_ second: Bool, _ src: UnsafeRawPointer, _ rb: Int, _ nb: Int, _ a: UnsafeMutableRawPointer, _ o: UnsafeMutablePointer<Float>) { if second { int8ValueSums128(4, true, src, rb, nb, a, o) } else { int8ValueSums128(4, false, src, rb, nb, a, o) } }

/// The kernel for `g` (1…4, a literal after inlining) heads: the contract at the top.
@inline(__always)
private func affineInt8Values(_ w: UnsafePointer<Float>, _ wStride: Int, _ g: Int, _ dim64: Bool, _ src: UnsafeRawPointer, _ count: Int,
                              _ groups: Int, _ out: UnsafeMutablePointer<Float>, _ area: UnsafeMutableRawPointer) {
    let d = dim64 ? 64 : 128, rb = d / 2 + 4 * groups
    // (lo, step) pairs by lane 4k + h (D = 128; quarter k's group, head h); at D = 64 two
    // tokens per vector, lane 4h + 2p + k: token parity p's pairs at halves 4p…, half k's group.
    let lanes = dim64 ? PairLanes(lo: groups == 2 ? U32x16(0, 2, 4, 6, 0, 2, 4, 6, 0, 2, 4, 6, 0, 2, 4, 6)
                                                  : U32x16(0, 0, 4, 4, 0, 0, 4, 4, 0, 0, 4, 4, 0, 0, 4, 4))
                      : PairLanes(lo: groups == 4 ? U32x16(0, 0, 0, 0, 2, 2, 2, 2, 4, 4, 4, 4, 6, 6, 6, 6)
                                      : groups == 2 ? U32x16(0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2) : U32x16())
    // Token t + 1's lanes of a two-token parameter vector (``qaq_f16_load_two``), D = 128.
    let nextLanes = PairLanes(lo: lanes.lo | U32x16(repeating: 8)), pairCount = Int32(truncatingIfNeeded: 2 &* groups)
    // Σₜ wₜ·(loₜ + 8.5·stepₜ) − 8·s·Σₜ u8ₜ per lane (4k + h at D = 128, 4h + k at D = 64),
    // over all blocks.
    var exact = F32x16(), exactOdd = F32x16()
    var b0 = 0
    while b0 < count {
        let nb = count - b0 < int8ValueBlock ? count - b0 : int8ValueBlock
        let block = src + b0 * rb
        // u = w·step per lane (as `exact`), its largest, and the fp32 part.
        var m = F32x16(), mOdd = F32x16()
        var t = 0
        while t < nb {
            let n = nb - t < 16 ? nb - t : 16
            let (w0, w1, w2, w3) = weightRows(w, wStride, g, b0 + t, n, area + padOffset)
            // Token-major copy over the pad rows (already read): token k's four weights at 16k.
            qaq_store_columns4((area + padOffset).assumingMemoryBound(to: Float.self), w0, w1, w2, w3)
            if dim64 {
                // Two tokens a vector (n is even except at the end of the block; the pad
                // token's weights are zero).
                var k = 0
                while k < n {
                    let u = valueWeightPair(block, rb, groups, lanes, t + k, k + 1 < n, area + padOffset + 16 * k, area, (t + k) / 2, &exact)
                    m = m.replacing(with: u, where: u .> m)
                    k += 2
                }
            } else {
                // Two tokens a step, each with its own fp32 sum and largest (two dependency
                // chains instead of one), their parameters in one convert.
                var k = 0
                while k + 2 <= n {
                    let meta = block + (t + k) * rb + 64
                    let pairs = qaq_f16_load_two(meta, meta + rb, pairCount)
                    let u = valueWeight(pairs, lanes, t + k, area + padOffset + 16 * k, area, &exact)
                    let v = valueWeight(pairs, nextLanes, t + k + 1, area + padOffset + 16 * (k + 1), area, &exactOdd)
                    m = m.replacing(with: u, where: u .> m)
                    mOdd = mOdd.replacing(with: v, where: v .> mOdd)
                    k += 2
                }
                if k < n {
                    let u = valueWeight(qaq_f16_load(block + (t + k) * rb + 64, pairCount), lanes, t + k, area + padOffset + 16 * k, area, &exact)
                    m = m.replacing(with: u, where: u .> m)
                }
            }
            t += n
        }
        // D = 64: one largest for both token parities of a head and half.
        if dim64 { let other = swapParity(m); m = m.replacing(with: other, where: other .> m) }
        else { m = m.replacing(with: mOdd, where: mOdd .> m) }
        // The weight bytes, four tokens at a time.
        let inv = F32x16().replacing(with: F32x16(repeating: 255) / m, where: m .> F32x16())
        let s = m / F32x16(repeating: 255)
        var sum = U32x16()
        var c = 0
        if dim64 {
            // Rows 2c and 2c + 1 hold tokens 4c…4c+3; word k of head h's block: half k & 1's
            // bytes of the four tokens in order (``qaq_pack_bytes_4x4`` with `pairs`).
            let rows = (nb + 1) / 2
            while 4 * c < nb {
                let qa = weightBytes(area, 2 * c, rows, inv, &sum), qb = weightBytes(area, 2 * c + 1, rows, inv, &sum)
                let sa = unsafeBitCast(swapParity(unsafeBitCast(qa, to: F32x16.self)), to: U32x16.self)
                let sb = unsafeBitCast(swapParity(unsafeBitCast(qb, to: F32x16.self)), to: U32x16.self)
                area.storeBytes(of: qaq_pack_bytes_4x4(qa, sa, qb, sb, 1), toByteOffset: bytesOffset + 64 * c, as: U32x16.self)
                c += 1
            }
        } else {
            while 4 * c < nb {
                let q0 = weightBytes(area, 4 * c, nb, inv, &sum), q1 = weightBytes(area, 4 * c + 1, nb, inv, &sum)
                let q2 = weightBytes(area, 4 * c + 2, nb, inv, &sum), q3 = weightBytes(area, 4 * c + 3, nb, inv, &sum)
                area.storeBytes(of: headBlocks(qaq_pack_bytes_4x4(q0, q1, q2, q3, 0)), toByteOffset: bytesOffset + 64 * c, as: U32x16.self)
                c += 1
            }
        }
        fma16(&exact, s * F32x16(repeating: -8), qaq_i32_to_f32(sum))
        area.storeBytes(of: dim64 ? s : unsafeBitCast(headBlocks(unsafeBitCast(s, to: U32x16.self)), to: F32x16.self),
                        toByteOffset: scaleOffset, as: F32x16.self)
        if dim64 {
            int8ValueSums64(g, block, rb, nb, area, out)
        } else {
            for half in 0..<2 {
                let second = half == 1
                switch g {
                case 1: int8ValueSums128x1(second, block, rb, nb, area, out)
                case 2: int8ValueSums128x2(second, block, rb, nb, area, out)
                case 3: int8ValueSums128x3(second, block, rb, nb, area, out)
                default: int8ValueSums128x4(second, block, rb, nb, area, out)
                }
            }
        }
        b0 += nb
    }
    // D = 64: the two token parities of each head and half added.
    if dim64 { exact += swapParity(exact) } else { exact += exactOdd }
    let e = unsafeBitCast(exact, to: InlineArray<16, Float>.self)
    // Lane 4k + h is quarter k (D = 128); lane 4h + k, for k < 2, half k (D = 64).
    for h in 0..<g {
        for k in 0..<(d / 32) {
            let v = F32x16(repeating: e[dim64 ? 4 * h + k : 4 * k + h])
            let o = UnsafeMutableRawPointer(out + d * h + 32 * k)
            o.storeBytes(of: o.loadUnaligned(as: F32x16.self) + v, as: F32x16.self)
            o.storeBytes(of: o.loadUnaligned(fromByteOffset: 64, as: F32x16.self) + v, toByteOffset: 64, as: F32x16.self)
        }
    }
}

@inline(never) private func affineInt8Values1(_ w: UnsafePointer<Float>, _ ws: Int, _ src: UnsafeRawPointer, _ n: Int, _ gr: Int, _ o: UnsafeMutablePointer<Float>, _ a: UnsafeMutableRawPointer) { affineInt8Values(w, ws, 1, false, src, n, gr, o, a) }
@inline(never) private func affineInt8Values2(_ w: UnsafePointer<Float>, _ ws: Int, _ src: UnsafeRawPointer, _ n: Int, _ gr: Int, _ o: UnsafeMutablePointer<Float>, _ a: UnsafeMutableRawPointer) { affineInt8Values(w, ws, 2, false, src, n, gr, o, a) }
@inline(never) private func affineInt8Values3(_ w: UnsafePointer<Float>, _ ws: Int, _ src: UnsafeRawPointer, _ n: Int, _ gr: Int, _ o: UnsafeMutablePointer<Float>, _ a: UnsafeMutableRawPointer) { affineInt8Values(w, ws, 3, false, src, n, gr, o, a) }
@inline(never) private func affineInt8Values4(_ w: UnsafePointer<Float>, _ ws: Int, _ src: UnsafeRawPointer, _ n: Int, _ gr: Int, _ o: UnsafeMutablePointer<Float>, _ a: UnsafeMutableRawPointer) { affineInt8Values(w, ws, 4, false, src, n, gr, o, a) }
@inline(never) private func affineInt8Values64x1(_ w: UnsafePointer<Float>, _ ws: Int, _ src: UnsafeRawPointer, _ n: Int, _ gr: Int, _ o: UnsafeMutablePointer<Float>, _ a: UnsafeMutableRawPointer) { affineInt8Values(w, ws, 1, true, src, n, gr, o, a) }
@inline(never) private func affineInt8Values64x2(_ w: UnsafePointer<Float>, _ ws: Int, _ src: UnsafeRawPointer, _ n: Int, _ gr: Int, _ o: UnsafeMutablePointer<Float>, _ a: UnsafeMutableRawPointer) { affineInt8Values(w, ws, 2, true, src, n, gr, o, a) }
@inline(never) private func affineInt8Values64x3(_ w: UnsafePointer<Float>, _ ws: Int, _ src: UnsafeRawPointer, _ n: Int, _ gr: Int, _ o: UnsafeMutablePointer<Float>, _ a: UnsafeMutableRawPointer) { affineInt8Values(w, ws, 3, true, src, n, gr, o, a) }
@inline(never) private func affineInt8Values64x4(_ w: UnsafePointer<Float>, _ ws: Int, _ src: UnsafeRawPointer, _ n: Int, _ gr: Int, _ o: UnsafeMutablePointer<Float>, _ a: UnsafeMutableRawPointer) { affineInt8Values(w, ws, 4, true, src, n, gr, o, a) }

/// Whether the first `count` weights of each of `heads` rows are finite and ≥ 0 (as bit
/// patterns: below that of +∞, so −0 and NaN are refused too).
func usableWeights(_ w: UnsafePointer<Float>, _ wStride: Int, _ heads: Int, _ count: Int) -> Bool {
    let raw = UnsafeRawPointer(w)
    var m = U32x16()
    for h in 0..<heads {
        var t = 0
        while t + 16 <= count {
            let b = raw.loadUnaligned(fromByteOffset: 4 * (h * wStride + t), as: U32x16.self)
            m = m.replacing(with: b, where: b .> m)
            t += 16
        }
        while t < count {
            if w[h * wStride + t].bitPattern >= 0x7F80_0000 { return false }
            t += 1
        }
    }
    for i in 0..<16 where m[i] >= 0x7F80_0000 { return false }
    return true
}

extension Kernels {
    /// ``accumulateHeads(weights:wStride:heads:_:count:layout:out:scratch:)`` by int8 dot
    /// products (the contract at the top of AttentionInt8Values.swift) over affine records of
    /// D = 128 or 64, b = 4, G ≥ 32, no outliers. Returns false (nothing written) for any other
    /// layout, weights that are negative or not finite, a scratch tile smaller than the kernel
    /// needs, or where this level has no integer dot product.
    public static func accumulateHeadsInt8(
        weights w: UnsafePointer<Float>, wStride: Int, heads: Int, _ src: UnsafeRawPointer, count: Int,
        layout: PackedLayout, out: UnsafeMutablePointer<Float>, scratch: AttentionScratch
    ) -> Bool {
        guard hasInt8Scores, layout.dim == 128 || layout.dim == 64, layout.bits == 4, layout.outlierCount == 0, layout.groupSize >= 32,
              AttentionScratch.tileBytes(dim: scratch.dim, tileRows: scratch.tileRows) >= AttentionScratch.int8ValueBytes,
              usableWeights(w, wStride, heads, count) else { return false }
        let d = layout.dim, groups = d / layout.groupSize, area = UnsafeMutableRawPointer(scratch.tile)
        var h0 = 0
        while h0 < heads {
            let wh = w + h0 * wStride, o = out + d * h0
            switch (heads - h0, d == 64) {
            case (1, false): affineInt8Values1(wh, wStride, src, count, groups, o, area); h0 += 1
            case (2, false): affineInt8Values2(wh, wStride, src, count, groups, o, area); h0 += 2
            case (3, false): affineInt8Values3(wh, wStride, src, count, groups, o, area); h0 += 3
            case (_, false): affineInt8Values4(wh, wStride, src, count, groups, o, area); h0 += 4
            case (1, true): affineInt8Values64x1(wh, wStride, src, count, groups, o, area); h0 += 1
            case (2, true): affineInt8Values64x2(wh, wStride, src, count, groups, o, area); h0 += 2
            case (3, true): affineInt8Values64x3(wh, wStride, src, count, groups, o, area); h0 += 3
            case (_, true): affineInt8Values64x4(wh, wStride, src, count, groups, o, area); h0 += 4
            }
        }
        return true
    }
}

extension Reference {
    /// Scalar reference of ``Kernels/accumulateHeadsInt8(weights:wStride:heads:_:count:layout:out:scratch:)``:
    /// per head, group of the element's quarter and block of ``int8ValueBlock`` tokens,
    /// s·Σₜ u8ₜ·(cₜ − 8) with u8ₜ = round(wₜ·stepₜ·(255/max)) (fp32, ties to even), s = max/255,
    /// plus Σₜ wₜ·(loₜ + 8.5·stepₜ); integer sums exact, the rest fp64, added to `out`.
    public static func affineAccumulateInt8(
        weights w: UnsafePointer<Float>, wStride: Int, heads: Int, _ src: UnsafeRawPointer, count: Int,
        layout: PackedLayout, out: UnsafeMutablePointer<Float>
    ) {
        let d = layout.dim, gs = layout.groupSize
        for h in 0..<heads {
            for i in 0..<d {
                let group = i / gs
                var total = 0.0
                var b0 = 0
                while b0 < count {
                    let nb = count - b0 < int8ValueBlock ? count - b0 : int8ValueBlock
                    var m: Float = 0
                    for t in b0..<(b0 + nb) {
                        let (_, step) = metadata(src + t * layout.recordBytes, layout, group: group)
                        let u = w[h * wStride + t] * Float(step)
                        if u > m { m = u }
                    }
                    let inv: Float = m > 0 ? 255 / m : 0, s = m / 255
                    var dot: Int64 = 0
                    for t in b0..<(b0 + nb) {
                        let record = src + t * layout.recordBytes
                        let (lo, step) = metadata(record, layout, group: group)
                        let wt = w[h * wStride + t]
                        let u8 = Int64((wt * Float(step) * inv).rounded(.toNearestOrEven))
                        dot += u8 * (Int64(code(record, layout, element: i)) - 8)
                        total += Double(wt) * (Double(lo) + 8.5 * Double(step))
                    }
                    total += Double(s) * Double(dot)
                    b0 += nb
                }
                out[h * d + i] += Float(total)
            }
        }
    }
}

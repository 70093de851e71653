import QAQLayout
import _QAQSIMDShims

// Decode-attention values by integer dot products (DESIGN §5) for code-map records of
// b = 2, 3 or 4 bits, D = 128 or 64, one scale per vector (fp16 or log8):
// out[h][i] += Σₜ wₜ·scaleₜ·levels[cₜ[i]].
//
// The table is mapped to int8 once per call, l8[c] = round(levels[c]/s_l) with
// s_l = max|levels|/127 (fp32 product by 127/max, ties to even), as the code-map scores do.
// Per head h and block of ``int8ValueBlock`` tokens the weight of a token is uₜ = wₜ·scaleₜ
// (fp32), quantized to 8 unsigned bits against the block's largest: s = max uₜ/255 (fp32),
// u8ₜ = round(uₜ·(255/max)) (fp32 product, ties to even). Then
//
//   out[h][i] += s·s_l·Σₜ u8ₜ·l8[cₜ[i]]
//
// — the sum exact in 32-bit integers (`vpdpbusd`: weights unsigned, levels signed, four
// tokens per 32-bit lane), scaled once per (head, block) in fp32. The levels being symmetric
// there is no offset term. Against the fp32 kernel the error is that of the 8-bit weights and
// levels: |Δ[i]| ≤ Σₜ (½·s·|l8[cₜ[i]]|·s_l + ½·s_l·uₜ), plus fp32 rounding;
// ``Reference/codebookAccumulateInt8(weights:wStride:heads:_:count:layout:levels:out:)``
// computes the same quantities in scalar code. Weights must be finite and ≥ 0.
//
// Per block, a first pass decodes each token's codes to bytes in registers
// (``codeMapCodeBytes``), looks their int8 levels up with one `vpshufb` per 64 codes and
// keeps them in the scratch (128 bytes a token); the integer pass then byte-transposes four
// tokens at a time (``qaq_bytes_4x4``) exactly as the affine kernel of
// AttentionInt8Values.swift does, and the weights of four tokens are one broadcast 32-bit
// word per head (no per-group weights: one scale per vector).
//
// Code bytes, D = 128 (two vectors, "first" and "second"; lane j is stored lane j, elements
// j + 16s for slots s = 0…7):
// - b = 4: byte k of lane j of the first is slot 2k, of the second slot 2k + 1 (the low and
//   high nibbles of the record's 64 code bytes);
// - b = 2, 3, the scores' order (``codeMapCodeBytes``, which the query bytes follow with one
//   byte shuffle): byte k of the first is slot (0, 4, 2, 6)[k], of the second (1, 5, 3, 7)[k].
//   The lane's 16 bits of 2-bit codes x spread to (x | x << 12) & 0x0F0F0F0F give nibbles
//   0, 2, 1, 3 of x in bytes 0…3 (two slots each, two bits apart); 3-bit codes add their
//   top bits (stream 1: lane j's 8 bits t, slot s at bit s) at bit 2 of each byte, from
//   q = t | t << 14 as ((q << 2) | (q << 6)) and ((q << 1) | (q << 5)) masked to 0x04040404.
// - b = 2, 3, the value sums' order (``valueCodeBytes128``, cheaper: nothing has to match a
//   query): lane p of the first holds, with u = p mod 8 and s' = p ≥ 8 ? 1 : 0, bytes
//   (lane u slot s', lane u slot 4 + s', lane u + 8 slot s', lane u + 8 slot 4 + s') — the
//   32-bit unit u of stream 0 shifted right by 2s' and masked to 0x03030303 — and the second
//   the same with s' + 2. The sums go back through ``qaq_add_transposed4_split`` at offsets
//   (0, 64, 8, 72) and (32, 96, 40, 104).
// D = 64 (one vector): the byte order of ``codes64(_:)`` for every b — lane k, byte r holds
// slot (k >> 3) + 2·(r & 1) of stored lane (k & 7) + 8·(r >> 1). For b = 2, 3 the lane's
// byte of 2-bit codes (stream 0, 8 bits a lane) and its neighbour's are shifted so that the
// wanted slot is at bit 0, masked to 0x00330033, and spread by (z | z << 4) & 0x03030303; the
// 3-bit top bits (stream 1, 4 bits a lane) the same way at bit 2.
//
// Integer accumulators cannot overflow: ≤ 64 tokens × 255 × 128 per lane.

/// Byte offsets in the scratch's tile area: the int8 levels (64 tokens × 128 bytes), u
/// (4 heads × 64 tokens fp32), the weight bytes (4 heads × 64), 16 tokens' scales, padded
/// weight rows (4 × 16 fp32): 9792 bytes, which ``AttentionScratch/int8ValueBytes`` reserves.
private let levelsOffset = 0, uOffset = 8192, bytesOffset = 9216, scalesOffset = 9472, padOffset = 9536

/// A code-map record's codes as bytes, in the order stated at the top: (first, second) at
/// D = 128, (all 64, zero) at D = 64. `bits` and `dim64` are constants after inlining.
@inline(__always)
private func codeMapCodeBytes(_ record: UnsafeRawPointer, _ bits: Int, _ dim64: Bool) -> (first: U32x16, second: U32x16) {
    let twoBits = U32x16(repeating: 0x0303_0303), topBit = U32x16(repeating: 0x0404_0404)
    if bits == 4 {
        if dim64 { return (codes64(record), U32x16()) }
        let w = record.loadUnaligned(as: U32x16.self), nibbles = U32x16(repeating: 0x0F0F_0F0F)
        return (w & nibbles, (w &>> U32x16(repeating: 4)) & nibbles)
    }
    if dim64 {
        // Stream 0: lane l's byte is byte l >> 2 of 32-bit unit l & 3 (16 bytes); lane k
        // takes stored lanes k & 7 and (k & 7) + 8 (bytes 0 and 2 after the shift), slot k >> 3 at bit 0.
        let z = (block128(record) &>> U32x16(0, 0, 0, 0, 8, 8, 8, 8, 2, 2, 2, 2, 10, 10, 10, 10)) & U32x16(repeating: 0x0033_0033)
        var c = (z | (z &<< U32x16(repeating: 4))) & twoBits
        if bits == 3 {
            // Stream 1 at byte 16: lanes 0…7 in the low word, 8…15 in the high word, 4 bits each.
            let shift = U32x16(0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29)
            let lo = U32x16(repeating: record.loadUnaligned(fromByteOffset: 16, as: UInt32.self)) &>> shift
            let hi = U32x16(repeating: record.loadUnaligned(fromByteOffset: 20, as: UInt32.self)) &>> shift
            let v = (lo & U32x16(repeating: 5)) | ((hi &<< U32x16(repeating: 16)) & U32x16(repeating: 0x0005_0000))
            c |= ((v &<< U32x16(repeating: 2)) | (v &<< U32x16(repeating: 8))) & topBit
        }
        return (c, U32x16())
    }
    // Stream 0 (32 bytes): lane l < 8 the low 16 bits of 32-bit unit l, lane l ≥ 8 the high
    // 16 bits of unit l − 8.
    let x = (qaq_load_32_twice(record) &>> U32x16(0, 0, 0, 0, 0, 0, 0, 0, 16, 16, 16, 16, 16, 16, 16, 16)) & U32x16(repeating: 0xFFFF)
    let n4 = (x | (x &<< U32x16(repeating: 12))) & U32x16(repeating: 0x0F0F_0F0F)
    var a = n4 & twoBits, b = (n4 &>> U32x16(repeating: 2)) & twoBits
    if bits == 3 {
        // Stream 1 at byte 32 (16 bytes): lane l's 8 bits are byte l >> 2 of unit l & 3.
        let t = (block128(record + 32) &>> U32x16(0, 0, 0, 0, 8, 8, 8, 8, 16, 16, 16, 16, 24, 24, 24, 24)) & U32x16(repeating: 0xFF)
        let q = t | (t &<< U32x16(repeating: 14))
        a |= ((q &<< U32x16(repeating: 2)) | (q &<< U32x16(repeating: 6))) & topBit
        b |= ((q &<< U32x16(repeating: 1)) | (q &<< U32x16(repeating: 5))) & topBit
    }
    return (a, b)
}

/// The value sums' code bytes of a 2- or 3-bit record at D = 128 (`bits` a constant after
/// inlining), in the order stated at the top ("the value sums' order"): the 2-bit codes by
/// one shift and mask per vector; the 3-bit top bits by one `vpshufb` placing lanes u and
/// u + 8's stream-1 bytes, a nibble select and one `vpshufb` table per vector that moves the
/// slot's bit to bit 2.
@inline(__always)
private func valueCodeBytes128(_ record: UnsafeRawPointer, _ bits: Int) -> (first: U32x16, second: U32x16) {
    let x = qaq_load_32_twice(record), low2 = U32x16(repeating: 0x0303_0303)
    var a = (x &>> U32x16(0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2)) & low2
    var b = (x &>> U32x16(4, 4, 4, 4, 4, 4, 4, 4, 6, 6, 6, 6, 6, 6, 6, 6)) & low2
    if bits == 3 {
        // Bytes (T_u, T_u, T_{u+8}, T_{u+8}) for lane p, u = p mod 8 (T_L at byte 4(L mod 4) + L/4).
        let t = qaq_shuffle_bytes(block128(record + 32), U32x16(0x0202_0000, 0x0606_0404, 0x0A0A_0808, 0x0E0E_0C0C,
                                                                0x0303_0101, 0x0707_0505, 0x0B0B_0909, 0x0F0F_0D0D,
                                                                0x0202_0000, 0x0606_0404, 0x0A0A_0808, 0x0E0E_0C0C,
                                                                0x0303_0101, 0x0707_0505, 0x0B0B_0909, 0x0F0F_0D0D))
        // Bytes 0, 2: the low nibble (slots 0…3); bytes 1, 3: the high nibble (slots 4…7).
        let n = (t & U32x16(repeating: 0x000F_000F)) | ((t &>> U32x16(repeating: 4)) & U32x16(repeating: 0x0F00_0F00))
        // Bit s' of the nibble to bit 2: s' = 0, 1 (first; lanes p < 8, p ≥ 8), 2, 3 (second).
        a |= qaq_shuffle_bytes(U32x16(0x0400_0400, 0x0400_0400, 0x0400_0400, 0x0400_0400, 0x0400_0400, 0x0400_0400, 0x0400_0400, 0x0400_0400,
                                      0x0404_0000, 0x0404_0000, 0x0404_0000, 0x0404_0000, 0x0404_0000, 0x0404_0000, 0x0404_0000, 0x0404_0000), n)
        b |= qaq_shuffle_bytes(U32x16(0, 0x0404_0404, 0, 0x0404_0404, 0, 0x0404_0404, 0, 0x0404_0404,
                                      0, 0, 0x0404_0404, 0x0404_0404, 0, 0, 0x0404_0404, 0x0404_0404), n)
    }
    return (a, b)
}

/// The int8 levels of `n` records at `src` into the scratch, token r at 128·(t + r);
/// `values`: 2- and 3-bit records at D = 128 in the value sums' order (``valueCodeBytes128``).
@inline(__always)
private func decodeLevels(_ src: UnsafeRawPointer, _ rb: Int, _ n: Int, _ table: U32x16, _ bits: Int, _ dim64: Bool,
                          _ dst: UnsafeMutableRawPointer, values: Bool = false) {
    for r in 0..<n {
        let c = values && !dim64 && bits < 4 ? valueCodeBytes128(src + r * rb, bits) : codeMapCodeBytes(src + r * rb, bits, dim64)
        qaq_store_u32x16(dst + 128 * r, qaq_shuffle_bytes(table, c.first))
        if !dim64 { qaq_store_u32x16(dst + 128 * r + 64, qaq_shuffle_bytes(table, c.second)) }
    }
}

// One function per (bits, D): the decode pass has a single call site in each.
@inline(never) private func decodeLevels2(_ s: UnsafeRawPointer, _ rb: Int, _ n: Int, _ t: U32x16, _ d: UnsafeMutableRawPointer) { decodeLevels(s, rb, n, t, 2, false, d) }
@inline(never) private func decodeLevels3(_ s: UnsafeRawPointer, _ rb: Int, _ n: Int, _ t: U32x16, _ d: UnsafeMutableRawPointer) { decodeLevels(s, rb, n, t, 3, false, d) }
@inline(never) private func decodeLevels4(_ s: UnsafeRawPointer, _ rb: Int, _ n: Int, _ t: U32x16, _ d: UnsafeMutableRawPointer) { decodeLevels(s, rb, n, t, 4, false, d) }
@inline(never) private func decodeLevels2x64(_ s: UnsafeRawPointer, _ rb: Int, _ n: Int, _ t: U32x16, _ d: UnsafeMutableRawPointer) { decodeLevels(s, rb, n, t, 2, true, d) }
@inline(never) private func decodeLevels3x64(_ s: UnsafeRawPointer, _ rb: Int, _ n: Int, _ t: U32x16, _ d: UnsafeMutableRawPointer) { decodeLevels(s, rb, n, t, 3, true, d) }
@inline(never) private func decodeLevels4x64(_ s: UnsafeRawPointer, _ rb: Int, _ n: Int, _ t: U32x16, _ d: UnsafeMutableRawPointer) { decodeLevels(s, rb, n, t, 4, true, d) }
@inline(never) private func decodeValueLevels2(_ s: UnsafeRawPointer, _ rb: Int, _ n: Int, _ t: U32x16, _ d: UnsafeMutableRawPointer) { decodeLevels(s, rb, n, t, 2, false, d, values: true) }
@inline(never) private func decodeValueLevels3(_ s: UnsafeRawPointer, _ rb: Int, _ n: Int, _ t: U32x16, _ d: UnsafeMutableRawPointer) { decodeLevels(s, rb, n, t, 3, false, d, values: true) }

/// `vpshufb` of `table` by the codes of `n` code-map records (b = 2, 3, 4; D = 128 or 64) at
/// `src`, token r's bytes at `dst` + 128·r (at D = 128 the second vector at + 64), in the
/// byte order stated at the top: for 2- and 3-bit codes at D = 128 the scores' order, or
/// the value sums' when `values`. The scores of 2- and 3-bit keys take levels + 128, the
/// value sums int8 levels.
func decodeCodeMapLevels(_ src: UnsafeRawPointer, _ rb: Int, _ n: Int, _ table: U32x16, bits: Int, dim64: Bool,
                         values: Bool = false, _ dst: UnsafeMutableRawPointer) {
    switch (bits, dim64) {
    case (2, false): if values { decodeValueLevels2(src, rb, n, table, dst) } else { decodeLevels2(src, rb, n, table, dst) }
    case (3, false): if values { decodeValueLevels3(src, rb, n, table, dst) } else { decodeLevels3(src, rb, n, table, dst) }
    case (_, false): decodeLevels4(src, rb, n, table, dst)
    case (2, true): decodeLevels2x64(src, rb, n, table, dst)
    case (3, true): decodeLevels3x64(src, rb, n, table, dst)
    case (_, true): decodeLevels4x64(src, rb, n, table, dst)
    }
}

/// The integer sums of a block of `nb` tokens' levels in the scratch — at D = 128 of the
/// first or the `second` code vectors, at D = 64 of all — times each head's s·s_l
/// (`factors`, lane h), added to `out`.
@inline(__always)
private func codeMapInt8Pass(_ g: Int, _ dim64: Bool, _ second: Bool, _ split: Bool, _ nb: Int, _ area: UnsafeRawPointer,
                             _ factors: SIMD4<Float>, _ out: UnsafeMutablePointer<Float>) {
    var sums = ValueSums()
    let levels = area + levelsOffset + (second ? 64 : 0), wb = area + bytesOffset
    var c = 0
    while 4 * c < nb {
        let p = levels + 512 * c
        let n0 = p.load(as: U32x16.self), n1 = p.load(fromByteOffset: 128, as: U32x16.self)
        let n2 = p.load(fromByteOffset: 256, as: U32x16.self), n3 = p.load(fromByteOffset: 384, as: U32x16.self)
        // Head j's weight bytes of the four tokens: one 32-bit word at 64·j, broadcast.
        let wc = wb + 4 * c
        let weights = (U32x16(repeating: wc.load(as: UInt32.self)), U32x16(repeating: wc.load(fromByteOffset: 64, as: UInt32.self)),
                       U32x16(repeating: wc.load(fromByteOffset: 128, as: UInt32.self)), U32x16(repeating: wc.load(fromByteOffset: 192, as: UInt32.self)))
        accumulate(&sums, g, weights, (qaq_bytes_4x4(n0, n1, n2, n3, 0), qaq_bytes_4x4(n0, n1, n2, n3, 1),
                                       qaq_bytes_4x4(n0, n1, n2, n3, 2), qaq_bytes_4x4(n0, n1, n2, n3, 3)))
        c += 1
    }
    let d = dim64 ? 64 : 128
    @inline(__always) func add(_ h: Int, _ x: ValueSums.Four) {
        let s = F32x16(repeating: factors[h])
        let f0 = qaq_i32_to_f32(x.0) * s, f1 = qaq_i32_to_f32(x.1) * s, f2 = qaq_i32_to_f32(x.2) * s, f3 = qaq_i32_to_f32(x.3) * s
        let o = out + d * h
        if dim64 {
            qaq_add_transposed4_split(o, f0, f1, f2, f3, 0, 32, 8, 40)
        } else if split {
            // The value sums' order of 2- and 3-bit codes (see the top).
            let base: Int32 = second ? 32 : 0
            qaq_add_transposed4_split(o, f0, f1, f2, f3, base, base + 64, base + 8, base + 72)
        } else {
            qaq_add_transposed4(o + (second ? 16 : 0), f0, f1, f2, f3)
        }
    }
    add(0, sums.h0)
    if g > 1 { add(1, sums.h1) }
    if g > 2 { add(2, sums.h2) }
    if g > 3 { add(3, sums.h3) }
}

@inline(never) private func codeMapInt8Pass1(_ second: Bool, _ split: Bool, _ nb: Int, _ a: UnsafeRawPointer, _ f: SIMD4<Float>, _ o: UnsafeMutablePointer<Float>) { if second { codeMapInt8Pass(1, false, true, split, nb, a, f, o) } else { codeMapInt8Pass(1, false, false, split, nb, a, f, o) } }
@inline(never) private func codeMapInt8Pass2(_ second: Bool, _ split: Bool, _ nb: Int, _ a: UnsafeRawPointer, _ f: SIMD4<Float>, _ o: UnsafeMutablePointer<Float>) { if second { codeMapInt8Pass(2, false, true, split, nb, a, f, o) } else { codeMapInt8Pass(2, false, false, split, nb, a, f, o) } }
@inline(never) private func codeMapInt8Pass3(_ second: Bool, _ split: Bool, _ nb: Int, _ a: UnsafeRawPointer, _ f: SIMD4<Float>, _ o: UnsafeMutablePointer<Float>) { if second { codeMapInt8Pass(3, false, true, split, nb, a, f, o) } else { codeMapInt8Pass(3, false, false, split, nb, a, f, o) } }
@inline(never) private func codeMapInt8Pass4(_ second: Bool, _ split: Bool, _ nb: Int, _ a: UnsafeRawPointer, _ f: SIMD4<Float>, _ o: UnsafeMutablePointer<Float>) { if second { codeMapInt8Pass(4, false, true, split, nb, a, f, o) } else { codeMapInt8Pass(4, false, false, split, nb, a, f, o) } }
@inline(never) private func codeMapInt8Pass64x1(_ nb: Int, _ a: UnsafeRawPointer, _ f: SIMD4<Float>, _ o: UnsafeMutablePointer<Float>) { codeMapInt8Pass(1, true, false, false, nb, a, f, o) }
@inline(never) private func codeMapInt8Pass64x2(_ nb: Int, _ a: UnsafeRawPointer, _ f: SIMD4<Float>, _ o: UnsafeMutablePointer<Float>) { codeMapInt8Pass(2, true, false, false, nb, a, f, o) }
@inline(never) private func codeMapInt8Pass64x3(_ nb: Int, _ a: UnsafeRawPointer, _ f: SIMD4<Float>, _ o: UnsafeMutablePointer<Float>) { codeMapInt8Pass(3, true, false, false, nb, a, f, o) }
@inline(never) private func codeMapInt8Pass64x4(_ nb: Int, _ a: UnsafeRawPointer, _ f: SIMD4<Float>, _ o: UnsafeMutablePointer<Float>) { codeMapInt8Pass(4, true, false, false, nb, a, f, o) }

/// The kernel for `g` (1…4) heads, D = 64 or 128 (`dim64`, a literal after inlining): the
/// contract at the top.
@inline(__always)
private func codeMapInt8Values(_ w: UnsafePointer<Float>, _ wStride: Int, _ g: Int, _ dim64: Bool, _ src: UnsafeRawPointer, _ count: Int,
                               _ layout: CodebookLayout, _ table: U32x16, _ levelScale: Float,
                               _ out: UnsafeMutablePointer<Float>, _ area: UnsafeMutableRawPointer) {
    let rb = layout.recordBytes, bits = layout.bits
    let split = !dim64 && bits < 4
    let scales = (area + scalesOffset).assumingMemoryBound(to: Float.self)
    var b0 = 0
    while b0 < count {
        let nb = count - b0 < int8ValueBlock ? count - b0 : int8ValueBlock
        let block = src + b0 * rb
        // u = w·scale per head, 16 tokens a row, and the heads' largest; the levels.
        var m0 = F32x16(), m1 = F32x16(), m2 = F32x16(), m3 = F32x16()
        var t = 0
        while t < nb {
            let n = nb - t < 16 ? nb - t : 16
            for k in 0..<16 { scales[k] = k < n ? loadCodebookScale(block + (t + k) * rb, layout, 0) : 0 }
            let s = UnsafeRawPointer(scales).load(as: F32x16.self)
            let (w0, w1, w2, w3) = weightRows(w, wStride, g, b0 + t, n, area + padOffset)
            @inline(__always) func row(_ h: Int, _ wh: F32x16, _ m: inout F32x16) {
                let u = wh * s
                m = m.replacing(with: u, where: u .> m)
                (area + uOffset + 256 * h + 4 * t).storeBytes(of: u, as: F32x16.self)
            }
            row(0, w0, &m0)
            if g > 1 { row(1, w1, &m1) }
            if g > 2 { row(2, w2, &m2) }
            if g > 3 { row(3, w3, &m3) }
            decodeCodeMapLevels(block + t * rb, rb, n, table, bits: bits, dim64: dim64, values: true, area + levelsOffset + 128 * t)
            t += n
        }
        // The weight bytes: u8 = round(u·(255/max)) per head, 16 tokens at a time (the
        // tokens past nb in the last row are 0).
        var factors = SIMD4<Float>()
        @inline(__always) func bytes(_ h: Int, _ m: F32x16) {
            let mh = hmax(m)
            let inv = F32x16(repeating: mh > 0 ? 255 / mh : 0)
            factors[h] = mh / 255 * levelScale
            var r = 0
            while r < nb {
                let u = (area + uOffset + 256 * h + 4 * r).load(as: F32x16.self)
                let q = qaq_f32_round_u32(u * inv)
                qaq_store_low_bytes16(area + bytesOffset + 64 * h + r, q)
                r += 16
            }
        }
        bytes(0, m0)
        if g > 1 { bytes(1, m1) }
        if g > 2 { bytes(2, m2) }
        if g > 3 { bytes(3, m3) }
        // One specialized function per head count, D and half (a shared helper was outlined
        // with g, D and the half as run-time arguments).
        for half in 0..<(dim64 ? 1 : 2) {
            let second = half == 1
            switch (g, dim64) {
            case (1, false): codeMapInt8Pass1(second, split, nb, area, factors, out)
            case (2, false): codeMapInt8Pass2(second, split, nb, area, factors, out)
            case (3, false): codeMapInt8Pass3(second, split, nb, area, factors, out)
            case (_, false): codeMapInt8Pass4(second, split, nb, area, factors, out)
            case (1, true): codeMapInt8Pass64x1(nb, area, factors, out)
            case (2, true): codeMapInt8Pass64x2(nb, area, factors, out)
            case (3, true): codeMapInt8Pass64x3(nb, area, factors, out)
            case (_, true): codeMapInt8Pass64x4(nb, area, factors, out)
            }
        }
        b0 += nb
    }
}

@inline(never) private func codeMapInt8Values1(_ w: UnsafePointer<Float>, _ ws: Int, _ src: UnsafeRawPointer, _ n: Int, _ l: CodebookLayout, _ t: U32x16, _ ls: Float, _ o: UnsafeMutablePointer<Float>, _ a: UnsafeMutableRawPointer) { codeMapInt8Values(w, ws, 1, false, src, n, l, t, ls, o, a) }
@inline(never) private func codeMapInt8Values2(_ w: UnsafePointer<Float>, _ ws: Int, _ src: UnsafeRawPointer, _ n: Int, _ l: CodebookLayout, _ t: U32x16, _ ls: Float, _ o: UnsafeMutablePointer<Float>, _ a: UnsafeMutableRawPointer) { codeMapInt8Values(w, ws, 2, false, src, n, l, t, ls, o, a) }
@inline(never) private func codeMapInt8Values3(_ w: UnsafePointer<Float>, _ ws: Int, _ src: UnsafeRawPointer, _ n: Int, _ l: CodebookLayout, _ t: U32x16, _ ls: Float, _ o: UnsafeMutablePointer<Float>, _ a: UnsafeMutableRawPointer) { codeMapInt8Values(w, ws, 3, false, src, n, l, t, ls, o, a) }
@inline(never) private func codeMapInt8Values4(_ w: UnsafePointer<Float>, _ ws: Int, _ src: UnsafeRawPointer, _ n: Int, _ l: CodebookLayout, _ t: U32x16, _ ls: Float, _ o: UnsafeMutablePointer<Float>, _ a: UnsafeMutableRawPointer) { codeMapInt8Values(w, ws, 4, false, src, n, l, t, ls, o, a) }
@inline(never) private func codeMapInt8Values64x1(_ w: UnsafePointer<Float>, _ ws: Int, _ src: UnsafeRawPointer, _ n: Int, _ l: CodebookLayout, _ t: U32x16, _ ls: Float, _ o: UnsafeMutablePointer<Float>, _ a: UnsafeMutableRawPointer) { codeMapInt8Values(w, ws, 1, true, src, n, l, t, ls, o, a) }
@inline(never) private func codeMapInt8Values64x2(_ w: UnsafePointer<Float>, _ ws: Int, _ src: UnsafeRawPointer, _ n: Int, _ l: CodebookLayout, _ t: U32x16, _ ls: Float, _ o: UnsafeMutablePointer<Float>, _ a: UnsafeMutableRawPointer) { codeMapInt8Values(w, ws, 2, true, src, n, l, t, ls, o, a) }
@inline(never) private func codeMapInt8Values64x3(_ w: UnsafePointer<Float>, _ ws: Int, _ src: UnsafeRawPointer, _ n: Int, _ l: CodebookLayout, _ t: U32x16, _ ls: Float, _ o: UnsafeMutablePointer<Float>, _ a: UnsafeMutableRawPointer) { codeMapInt8Values(w, ws, 3, true, src, n, l, t, ls, o, a) }
@inline(never) private func codeMapInt8Values64x4(_ w: UnsafePointer<Float>, _ ws: Int, _ src: UnsafeRawPointer, _ n: Int, _ l: CodebookLayout, _ t: U32x16, _ ls: Float, _ o: UnsafeMutablePointer<Float>, _ a: UnsafeMutableRawPointer) { codeMapInt8Values(w, ws, 4, true, src, n, l, t, ls, o, a) }

extension Kernels {
    /// ``codebookAccumulateHeads(weights:wStride:heads:_:count:layout:levels:out:scratch:)``
    /// by int8 dot products (the contract at the top of AttentionInt8Codebook.swift) over
    /// code-map records of D = 128 or 64, b = 2, 3 or 4, one scale per vector. Returns false
    /// (nothing written) for any other layout, weights that are negative or not finite, a
    /// scratch tile smaller than the kernel needs, or where this level has no integer dot
    /// product.
    public static func codebookAccumulateHeadsInt8(
        weights w: UnsafePointer<Float>, wStride: Int, heads: Int, _ src: UnsafeRawPointer, count: Int,
        layout: CodebookLayout, levels: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, scratch: AttentionScratch
    ) -> Bool {
        guard hasInt8Scores, layout.dim == 128 || layout.dim == 64, layout.bits >= 2, layout.bits <= 4, layout.groupCount == 1,
              AttentionScratch.tileBytes(dim: scratch.dim, tileRows: scratch.tileRows) >= AttentionScratch.int8ValueBytes,
              usableWeights(w, wStride, heads, count) else { return false }
        let d = layout.dim, area = UnsafeMutableRawPointer(scratch.tile)
        let (table, levelScale) = int8LevelTable(levels, layout.levelCount, offset: 0)   // signed levels
        var h0 = 0
        while h0 < heads {
            let wh = w + h0 * wStride, o = out + d * h0
            switch (heads - h0, d == 64) {
            case (1, false): codeMapInt8Values1(wh, wStride, src, count, layout, table, levelScale, o, area); h0 += 1
            case (2, false): codeMapInt8Values2(wh, wStride, src, count, layout, table, levelScale, o, area); h0 += 2
            case (3, false): codeMapInt8Values3(wh, wStride, src, count, layout, table, levelScale, o, area); h0 += 3
            case (_, false): codeMapInt8Values4(wh, wStride, src, count, layout, table, levelScale, o, area); h0 += 4
            case (1, true): codeMapInt8Values64x1(wh, wStride, src, count, layout, table, levelScale, o, area); h0 += 1
            case (2, true): codeMapInt8Values64x2(wh, wStride, src, count, layout, table, levelScale, o, area); h0 += 2
            case (3, true): codeMapInt8Values64x3(wh, wStride, src, count, layout, table, levelScale, o, area); h0 += 3
            case (_, true): codeMapInt8Values64x4(wh, wStride, src, count, layout, table, levelScale, o, area); h0 += 4
            }
        }
        return true
    }
}

extension Reference {
    /// s_l = max|levels|/127 of the integer-dot code-map kernels, scores and value sums (0 for
    /// an all-zero table).
    public static func int8LevelScale(_ levels: UnsafePointer<Float>, count n: Int) -> Float {
        var amax: Float = 0
        for c in 0..<n { amax = max(amax, abs(levels[c])) }
        return amax / 127
    }

    /// l8[c] = round(levels[c]·(127/max|levels|)) (fp32 product, ties to even); 0 for an
    /// all-zero table.
    public static func int8Level(_ levels: UnsafePointer<Float>, count n: Int, code c: Int) -> Int {
        var amax: Float = 0
        for j in 0..<n { amax = max(amax, abs(levels[j])) }
        return amax > 0 ? Int((levels[c] * (127 / amax)).rounded(.toNearestOrEven)) : 0
    }

    /// Scalar reference of ``Kernels/codebookAccumulateHeadsInt8(weights:wStride:heads:_:count:layout:levels:out:scratch:)``:
    /// per head and block of ``int8ValueBlock`` tokens, s·s_l·Σₜ u8ₜ·l8[cₜ[i]] with
    /// u8ₜ = round(wₜ·scaleₜ·(255/max)) (fp32, ties to even), s = max/255; integer sums exact,
    /// the rest fp64, added to `out`.
    public static func codebookAccumulateInt8(
        weights w: UnsafePointer<Float>, wStride: Int, heads: Int, _ src: UnsafeRawPointer, count: Int,
        layout: CodebookLayout, levels: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>
    ) {
        let d = layout.dim, rb = layout.recordBytes, n = layout.levelCount
        let sl = int8LevelScale(levels, count: n)
        for h in 0..<heads {
            for i in 0..<d {
                var total = 0.0
                var b0 = 0
                while b0 < count {
                    let nb = min(int8ValueBlock, count - b0)
                    var m: Float = 0
                    for t in b0..<(b0 + nb) { m = max(m, w[h * wStride + t] * codebookScale(src + t * rb, layout, group: 0)) }
                    let inv: Float = m > 0 ? 255 / m : 0, s = m / 255
                    var dot: Int64 = 0
                    for t in b0..<(b0 + nb) {
                        let record = src + t * rb
                        let u8 = Int64((w[h * wStride + t] * codebookScale(record, layout, group: 0) * inv).rounded(.toNearestOrEven))
                        dot += u8 * Int64(int8Level(levels, count: n, code: Int(codebookCode(record, layout, element: i))))
                    }
                    total += Double(s) * Double(sl) * Double(dot)
                    b0 += nb
                }
                out[h * d + i] += Float(total)
            }
        }
    }
}

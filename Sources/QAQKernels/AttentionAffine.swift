import QAQLayout

// Decode attention over affine records of the common shapes — D = 64 or 128, b = 2, 3, 4
// or 8, no outliers (any group size) — with D and b compile-time constants: one copy of
// the tiled skeleton (AttentionTiles.swift) per shape, in which a token's code words are
// loaded once (`start`) and slot s is a constant shift and mask of them (`next(s)`), where
// the general decoder (`affineNext`) walks the slot table at run time. Same numbers as the
// general path: x̂ = (lo + ½·step) + c·step, one FMA per 16 elements where the ISA has it.
//
// Code words, as `SlotTable` lays them out for S = D/16 slots (offsets in bytes; the
// code-map kernels of AttentionCodebook.swift read them the same way):
//   b = 1: one S-bit lane word at 0.         b = 2: one 2S-bit lane word at 0.        b = 4: one 4S-bit lane word at 0.
//   b = 8: S = 4 one 32-bit word at 0; S = 8 two 32-bit words, at 0 (slots 0–3) and 64.
//   b = 3: the low 2 bits as a 2S-bit word at 0, the high bits as an S-bit word after it.

/// A slot-table entry written from constants (byte offset, log2 of the lane width).
@inline(__always)
func constantEntry(_ offset: Int, _ log2w: UInt32) -> UInt32 { UInt32(truncatingIfNeeded: offset) | (log2w << 12) }

/// The code words of one record (b = 1, 2, 3, 4 or 8, S = 4 or 8): `first` holds stream 0 (for b = 8 and S = 8, slots 0–3),
/// `second` the high bits of 3-bit codes or slots 4–7 of 8-bit codes.
/// (It stays one out-of-line copy, called once per token, in the 2-, 3-bit and code-map
/// kernels. Forcing it inline with `@_transparent` made rlm:4:3 attention at 4K ~18 % slower: the
/// optimizer then left the scores' slot loop rolled, with variable shifts.)
@inline(__always)
func affineWords(_ record: UnsafeRawPointer, _ bits: Int, _ slots: Int) -> (first: U32x16, second: U32x16) {
    let wide = slots == 8
    switch bits {
    case 8:
        return (loadLaneWord(record, constantEntry(0, 5)), wide ? loadLaneWord(record, constantEntry(64, 5)) : U32x16())
    case 4:
        return (loadLaneWord(record, constantEntry(0, wide ? 5 : 4)), U32x16())
    case 3:
        return (loadLaneWord(record, constantEntry(0, wide ? 4 : 3)), loadLaneWord(record, constantEntry(wide ? 32 : 16, wide ? 3 : 2)))
    case 1:
        return (loadLaneWord(record, constantEntry(0, wide ? 3 : 2)), U32x16())
    default:
        return (loadLaneWord(record, constantEntry(0, wide ? 4 : 3)), U32x16())
    }
}

/// The b-bit codes of slot `s` from the words of `affineWords`.
@inline(__always)
func affineCodes(_ first: U32x16, _ second: U32x16, _ s: Int, _ bits: Int) -> U32x16 {
    switch bits {
    case 8:
        return ((s < 4 ? first : second) &>> U32x16(repeating: UInt32(truncatingIfNeeded: 8 * (s & 3)))) & U32x16(repeating: 255)
    case 3:
        let low = (first &>> U32x16(repeating: UInt32(truncatingIfNeeded: 2 * s))) & U32x16(repeating: 3)
        let high = (second &>> U32x16(repeating: UInt32(truncatingIfNeeded: s))) & U32x16(repeating: 1)
        return low | (high &<< U32x16(repeating: 2))
    default:
        return (first &>> U32x16(repeating: UInt32(truncatingIfNeeded: bits * s))) & U32x16(repeating: (1 << UInt32(bits)) &- 1)
    }
}

/// A token's group parameters, once per token: `meta[j] = lo + ½·step` and
/// `meta[16 + j] = step` of group j (fp32, in a scratch area the skeleton does not use), so
/// that each slot takes two broadcasts. The fp16 pairs of all groups (1, 2 or 4 of them:
/// D ≤ 128, G ≥ 32) are converted as one vector load — a scalar fp16 load is a `vpinsrw`
/// into whatever register LLVM picks, and when that is a score accumulator every slot
/// waits for the previous slot's FMAs.
@inline(__always)
private func affineMetadata(_ record: UnsafeRawPointer, _ bits: Int, _ slots: Int, _ log2GroupSlots: Int,
                            _ meta: UnsafeMutablePointer<Float>) {
    let offset = 2 * bits * slots, groups = slots &>> log2GroupSlots
    let m = UnsafeMutableRawPointer(meta)
    if groups == 4 {
        let h = record.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float16>.self)
        let lo = SIMD4<Float>(Float(h[0]), Float(h[2]), Float(h[4]), Float(h[6]))
        let step = SIMD4<Float>(Float(h[1]), Float(h[3]), Float(h[5]), Float(h[7]))
        m.storeBytes(of: lo + 0.5 * step, as: SIMD4<Float>.self)
        m.storeBytes(of: step, toByteOffset: 64, as: SIMD4<Float>.self)
    } else if groups == 2 {
        let h = record.loadUnaligned(fromByteOffset: offset, as: SIMD4<Float16>.self)
        let lo = SIMD2<Float>(Float(h[0]), Float(h[2])), step = SIMD2<Float>(Float(h[1]), Float(h[3]))
        m.storeBytes(of: lo + 0.5 * step, as: SIMD2<Float>.self)
        m.storeBytes(of: step, toByteOffset: 64, as: SIMD2<Float>.self)
    } else {
        let h = record.loadUnaligned(fromByteOffset: offset, as: SIMD2<Float16>.self)
        let lo = Float(h[0]), step = Float(h[1])
        meta[0] = lo + 0.5 * step
        meta[16] = step
    }
}

/// Slot `s` of a record decoded: (lo + ½·step) + c·step of its group `s >> log2GroupSlots`.
@inline(__always)
private func affineSlot(_ first: U32x16, _ second: U32x16, _ s: Int, _ bits: Int, _ log2GroupSlots: Int,
                        _ meta: UnsafeMutablePointer<Float>) -> F32x16 {
    let j = s &>> log2GroupSlots
    var x = F32x16(repeating: meta[j])
    fma16(&x, codesToFloat(affineCodes(first, second, s, bits)), F32x16(repeating: meta[16 + j]))
    return x
}

/// ``Kernels/scores(queries:heads:_:count:layout:out:outStride:scratch:)`` for one shape
/// (`bits`, `slots` = D/16 constants after inlining; no outliers).
@inline(__always)
private func affineScores(_ q: UnsafePointer<Float>, _ heads: Int, _ src: UnsafeRawPointer, _ count: Int, _ log2GroupSlots: Int,
                          _ out: UnsafeMutablePointer<Float>, _ outStride: Int, _ scratch: AttentionScratch,
                          _ bits: Int, _ slots: Int) {
    let rb = 2 * bits * slots + 4 * (slots &>> log2GroupSlots), meta = scratch.tile
    var first = U32x16(), second = U32x16()
    scoresAllHeads(q, heads, dim: 16 * slots, count: count, out, outStride, parts: scratch.parts, corrections: false,
                   start: { t in
                       let record = src + t * rb
                       (first, second) = affineWords(record, bits, slots)
                       affineMetadata(record, bits, slots, log2GroupSlots, meta)
                   },
                   next: { s in affineSlot(first, second, s, bits, log2GroupSlots, meta) },
                   correction: { _, _ in 0 })
}

/// ``Kernels/accumulateHeads(weights:wStride:heads:_:count:layout:out:scratch:)`` for one
/// shape (no outliers).
@inline(__always)
private func affineAccumulate(_ w: UnsafePointer<Float>, _ wStride: Int, _ heads: Int, _ src: UnsafeRawPointer, _ count: Int,
                              _ log2GroupSlots: Int, _ out: UnsafeMutablePointer<Float>, _ scratch: AttentionScratch,
                              _ bits: Int, _ slots: Int) {
    let rb = 2 * bits * slots + 4 * (slots &>> log2GroupSlots)
    let meta = UnsafeMutableRawPointer(scratch.parts).assumingMemoryBound(to: Float.self)
    var first = U32x16(), second = U32x16()
    accumulateAllHeads(w, wStride, heads, dim: 16 * slots, count: count, out, tile: scratch.tile,
                       start: { t in
                           let record = src + t * rb
                           (first, second) = affineWords(record, bits, slots)
                           affineMetadata(record, bits, slots, log2GroupSlots, meta)
                       },
                       next: { s in affineSlot(first, second, s, bits, log2GroupSlots, meta) })
}

// One function per shape (a function holding several copies of the skeleton grows past
// the inliner's limits in test builds).

@inline(never) private func affineScores2D64(_ q: UnsafePointer<Float>, _ h: Int, _ src: UnsafeRawPointer, _ n: Int, _ lg: Int, _ out: UnsafeMutablePointer<Float>, _ os: Int, _ sc: AttentionScratch) { affineScores(q, h, src, n, lg, out, os, sc, 2, 4) }
@inline(never) private func affineScores3D64(_ q: UnsafePointer<Float>, _ h: Int, _ src: UnsafeRawPointer, _ n: Int, _ lg: Int, _ out: UnsafeMutablePointer<Float>, _ os: Int, _ sc: AttentionScratch) { affineScores(q, h, src, n, lg, out, os, sc, 3, 4) }
@inline(never) private func affineScores4D64(_ q: UnsafePointer<Float>, _ h: Int, _ src: UnsafeRawPointer, _ n: Int, _ lg: Int, _ out: UnsafeMutablePointer<Float>, _ os: Int, _ sc: AttentionScratch) { affineScores(q, h, src, n, lg, out, os, sc, 4, 4) }
@inline(never) private func affineScores8D64(_ q: UnsafePointer<Float>, _ h: Int, _ src: UnsafeRawPointer, _ n: Int, _ lg: Int, _ out: UnsafeMutablePointer<Float>, _ os: Int, _ sc: AttentionScratch) { affineScores(q, h, src, n, lg, out, os, sc, 8, 4) }
@inline(never) private func affineScores2D128(_ q: UnsafePointer<Float>, _ h: Int, _ src: UnsafeRawPointer, _ n: Int, _ lg: Int, _ out: UnsafeMutablePointer<Float>, _ os: Int, _ sc: AttentionScratch) { affineScores(q, h, src, n, lg, out, os, sc, 2, 8) }
@inline(never) private func affineScores3D128(_ q: UnsafePointer<Float>, _ h: Int, _ src: UnsafeRawPointer, _ n: Int, _ lg: Int, _ out: UnsafeMutablePointer<Float>, _ os: Int, _ sc: AttentionScratch) { affineScores(q, h, src, n, lg, out, os, sc, 3, 8) }
@inline(never) private func affineScores4D128(_ q: UnsafePointer<Float>, _ h: Int, _ src: UnsafeRawPointer, _ n: Int, _ lg: Int, _ out: UnsafeMutablePointer<Float>, _ os: Int, _ sc: AttentionScratch) { affineScores(q, h, src, n, lg, out, os, sc, 4, 8) }
@inline(never) private func affineScores8D128(_ q: UnsafePointer<Float>, _ h: Int, _ src: UnsafeRawPointer, _ n: Int, _ lg: Int, _ out: UnsafeMutablePointer<Float>, _ os: Int, _ sc: AttentionScratch) { affineScores(q, h, src, n, lg, out, os, sc, 8, 8) }

@inline(never) private func affineAccumulate2D64(_ w: UnsafePointer<Float>, _ ws: Int, _ h: Int, _ src: UnsafeRawPointer, _ n: Int, _ lg: Int, _ out: UnsafeMutablePointer<Float>, _ sc: AttentionScratch) { affineAccumulate(w, ws, h, src, n, lg, out, sc, 2, 4) }
@inline(never) private func affineAccumulate3D64(_ w: UnsafePointer<Float>, _ ws: Int, _ h: Int, _ src: UnsafeRawPointer, _ n: Int, _ lg: Int, _ out: UnsafeMutablePointer<Float>, _ sc: AttentionScratch) { affineAccumulate(w, ws, h, src, n, lg, out, sc, 3, 4) }
@inline(never) private func affineAccumulate4D64(_ w: UnsafePointer<Float>, _ ws: Int, _ h: Int, _ src: UnsafeRawPointer, _ n: Int, _ lg: Int, _ out: UnsafeMutablePointer<Float>, _ sc: AttentionScratch) { affineAccumulate(w, ws, h, src, n, lg, out, sc, 4, 4) }
@inline(never) private func affineAccumulate8D64(_ w: UnsafePointer<Float>, _ ws: Int, _ h: Int, _ src: UnsafeRawPointer, _ n: Int, _ lg: Int, _ out: UnsafeMutablePointer<Float>, _ sc: AttentionScratch) { affineAccumulate(w, ws, h, src, n, lg, out, sc, 8, 4) }
@inline(never) private func affineAccumulate2D128(_ w: UnsafePointer<Float>, _ ws: Int, _ h: Int, _ src: UnsafeRawPointer, _ n: Int, _ lg: Int, _ out: UnsafeMutablePointer<Float>, _ sc: AttentionScratch) { affineAccumulate(w, ws, h, src, n, lg, out, sc, 2, 8) }
@inline(never) private func affineAccumulate3D128(_ w: UnsafePointer<Float>, _ ws: Int, _ h: Int, _ src: UnsafeRawPointer, _ n: Int, _ lg: Int, _ out: UnsafeMutablePointer<Float>, _ sc: AttentionScratch) { affineAccumulate(w, ws, h, src, n, lg, out, sc, 3, 8) }
@inline(never) private func affineAccumulate4D128(_ w: UnsafePointer<Float>, _ ws: Int, _ h: Int, _ src: UnsafeRawPointer, _ n: Int, _ lg: Int, _ out: UnsafeMutablePointer<Float>, _ sc: AttentionScratch) { affineAccumulate(w, ws, h, src, n, lg, out, sc, 4, 8) }
@inline(never) private func affineAccumulate8D128(_ w: UnsafePointer<Float>, _ ws: Int, _ h: Int, _ src: UnsafeRawPointer, _ n: Int, _ lg: Int, _ out: UnsafeMutablePointer<Float>, _ sc: AttentionScratch) { affineAccumulate(w, ws, h, src, n, lg, out, sc, 8, 8) }

/// log2(G/16) when `layout` has one of the constant-shape kernels, else −1.
@inline(__always)
private func affineShape(_ layout: PackedLayout) -> Int {
    guard layout.outlierCount == 0, layout.dim == 64 || layout.dim == 128, layout.bits >= 2, layout.groupSize >= 32 else { return -1 }
    return layout.groupSize.trailingZeroBitCount &- 4
}

/// The constant-shape scores kernel for `layout`; false (nothing done) when it has none.
func affineScoresFast(_ q: UnsafePointer<Float>, _ heads: Int, _ src: UnsafeRawPointer, _ count: Int, _ layout: PackedLayout,
                      _ out: UnsafeMutablePointer<Float>, _ outStride: Int, _ scratch: AttentionScratch) -> Bool {
    let lg = affineShape(layout)
    if lg < 0 { return false }
    switch (layout.dim, layout.bits) {
    case (64, 2): affineScores2D64(q, heads, src, count, lg, out, outStride, scratch)
    case (64, 3): affineScores3D64(q, heads, src, count, lg, out, outStride, scratch)
    case (64, 4): affineScores4D64(q, heads, src, count, lg, out, outStride, scratch)
    case (64, 8): affineScores8D64(q, heads, src, count, lg, out, outStride, scratch)
    case (128, 2): affineScores2D128(q, heads, src, count, lg, out, outStride, scratch)
    case (128, 3): affineScores3D128(q, heads, src, count, lg, out, outStride, scratch)
    case (128, 4): affineScores4D128(q, heads, src, count, lg, out, outStride, scratch)
    case (128, 8): affineScores8D128(q, heads, src, count, lg, out, outStride, scratch)
    default: return false
    }
    return true
}

/// The constant-shape accumulate kernel for `layout`; false (nothing done) when it has none.
func affineAccumulateFast(_ w: UnsafePointer<Float>, _ wStride: Int, _ heads: Int, _ src: UnsafeRawPointer, _ count: Int,
                          _ layout: PackedLayout, _ out: UnsafeMutablePointer<Float>, _ scratch: AttentionScratch) -> Bool {
    let lg = affineShape(layout)
    if lg < 0 { return false }
    switch (layout.dim, layout.bits) {
    case (64, 2): affineAccumulate2D64(w, wStride, heads, src, count, lg, out, scratch)
    case (64, 3): affineAccumulate3D64(w, wStride, heads, src, count, lg, out, scratch)
    case (64, 4): affineAccumulate4D64(w, wStride, heads, src, count, lg, out, scratch)
    case (64, 8): affineAccumulate8D64(w, wStride, heads, src, count, lg, out, scratch)
    case (128, 2): affineAccumulate2D128(w, wStride, heads, src, count, lg, out, scratch)
    case (128, 3): affineAccumulate3D128(w, wStride, heads, src, count, lg, out, scratch)
    case (128, 4): affineAccumulate4D128(w, wStride, heads, src, count, lg, out, scratch)
    case (128, 8): affineAccumulate8D128(w, wStride, heads, src, count, lg, out, scratch)
    default: return false
    }
    return true
}

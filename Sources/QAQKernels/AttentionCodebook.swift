import QAQLayout
import _QAQSIMDShims

// Decode-attention kernels over code-map records (CodebookLayout): the keys scored and the
// values summed straight from the codes, each decoded in registers as `levels[c] · scale`.
// The level is one register permute of the table where that is native (v3, v4; see
// `levelTable` and `codeMapIndex`); at the base level the magnitude comes from the blend tree
// of CodebookDequantize.swift over the unscaled table and the sign is XORed in. The scale
// multiplies each decoded slot, except in the constant-shape scores, which apply it once to
// the reduced score. The skeleton (tiles, reductions) is shared with the affine kernels.

/// The h unscaled magnitudes of a symmetric table, broadcast.
@inline(__always)
func unscaledMagnitudes(_ levels: UnsafePointer<Float>, _ h: Int)
    -> (F32x16, F32x16, F32x16, F32x16, F32x16, F32x16, F32x16, F32x16) {
    scaledMagnitudes(levels, h, 1)
}

typealias Magnitudes = (F32x16, F32x16, F32x16, F32x16, F32x16, F32x16, F32x16, F32x16)

/// The `n` (2, 4, 8 or 16) levels repeated over the 16 lanes of one register (lane i holds
/// levels[i mod n]): the table `qaq_permute16` and `qaq_permute8` look codes up in (code c →
/// levels[c], the reference's definition). Being periodic, it gives the same level for any
/// index whose low log2(n) bits are the code, so callers on a native permute need not mask
/// the bits above a code (see `codeMapIndex`).
@inline(__always)
func levelTable(_ l: UnsafePointer<Float>, _ n: Int) -> F32x16 {
    if n == 16 { return UnsafeRawPointer(l).loadUnaligned(as: F32x16.self) }
    let a = l[0], b = l[1], c = n > 2 ? l[2] : a, d = n > 2 ? l[3] : b
    let e = n > 4 ? l[4] : a, f = n > 4 ? l[5] : b, g = n > 4 ? l[6] : c, h = n > 4 ? l[7] : d
    return F32x16(a, b, c, d, e, f, g, h, a, b, c, d, e, f, g, h)
}

/// Slot `s`'s codes of a code-map record (words from `affineWords`) as an index into the
/// periodic `levelTable`. Where the level permute is native (v3, v4) the bits above the code
/// are left as they are — the permutes read only the low 4 bits (3 for ≤ 8 levels at v3) and
/// the table repeats — so a slot costs one shift (3-bit codes: two shifts and one bit select,
/// `vpternlogd` at v4); elsewhere the exact codes of `affineCodes`.
@inline(__always)
func codeMapIndex(_ first: U32x16, _ second: U32x16, _ s: Int, _ bits: Int) -> U32x16 {
    guard qaq_permute16_native() != 0 else { return affineCodes(first, second, s, bits) }
    if bits == 3 {
        // Low 2 bits from stream 0; the top bit (bit s of `second`) moved to bit 2.
        let low = first &>> U32x16(repeating: UInt32(truncatingIfNeeded: 2 * s))
        let top = s >= 2 ? second &>> U32x16(repeating: UInt32(truncatingIfNeeded: s - 2))
                         : second &<< U32x16(repeating: UInt32(truncatingIfNeeded: 2 - s))
        let mask = U32x16(repeating: 3)
        return (low & mask) | (top & ~mask)
    }
    return first &>> U32x16(repeating: UInt32(truncatingIfNeeded: bits * s))
}

/// The next slot of a code-map record with h magnitudes: x̂ = levels[c]·scale (state in the
/// kernel's variables, see `affineNext`).
@inline(__always)
func codebookNext(
    _ record: UnsafeRawPointer, _ layout: CodebookLayout, _ h: Int, _ mags: Magnitudes, _ table: F32x16,
    _ lanes: inout U32x16, _ leftInWord: inout Int, _ slot: inout Int, _ group: inout Int, _ leftInGroup: inout Int,
    _ scale: inout F32x16
) -> F32x16 {
    let bits0 = layout.slots.bits0
    if leftInWord == 0 {
        let e = layout.slots.stream0[slot]
        lanes = loadLaneWord(record, e)
        leftInWord = SlotTable.width(e) / bits0
    }
    var c = lanes & U32x16(repeating: (1 << UInt32(bits0)) - 1)
    if layout.slots.bits1 != 0 {
        let e1 = layout.slots.stream1[slot]
        c |= ((loadLaneWord(record, e1) &>> U32x16(repeating: SlotTable.bitOffset(e1))) & U32x16(repeating: 1)) &<< U32x16(repeating: 2)
    }
    lanes &>>= U32x16(repeating: UInt32(bits0))
    leftInWord -= 1
    if leftInGroup == 0 {
        group += 1
        leftInGroup = layout.groupSize / 16
        scale = F32x16(repeating: loadCodebookScale(record, layout, group))
    }
    leftInGroup -= 1
    slot += 1
    return levelsOf(c, layout.bits, h, mags, table) * scale
}

/// The unscaled levels of 16 codes of `bits` bits (h = 2^(bits−1) magnitudes).
@inline(__always)
func levelsOf(_ c: U32x16, _ bits: Int, _ h: Int, _ mags: Magnitudes, _ table: F32x16) -> F32x16 {
    if qaq_permute16_native() != 0 {
        // The level table in one register: one vpermps (AVX-512); at AVX2 two 8-lane
        // permutes for ≤ 8 levels, four and two blends for 16.
        return bits <= 3 ? qaq_permute8(table, c) : qaq_permute16(table, c)
    }
    let neg = U32x16() &- ((c &>> U32x16(repeating: UInt32(bits - 1))) ^ U32x16(repeating: 1))
    let m = selectMagnitude((c ^ neg) & U32x16(repeating: UInt32(h - 1)), h, mags)
    return unsafeBitCast(unsafeBitCast(m, to: U32x16.self) ^ (neg & U32x16(repeating: 0x8000_0000)), to: F32x16.self)
}

extension Kernels {
    /// Scores of `heads` queries against `count` consecutive code-map records:
    /// `out[h·outStride + t] = Σᵢ q[h·D + i]·levels[cₜᵢ]·scale`. `levels` is the symmetric
    /// table of 2^b entries the records were quantized with.
    public static func codebookScores(
        queries q: UnsafePointer<Float>, heads: Int, _ src: UnsafeRawPointer, count: Int,
        layout: CodebookLayout, levels: UnsafePointer<Float>,
        out: UnsafeMutablePointer<Float>, outStride: Int, scratch: AttentionScratch
    ) {
        if codebookScoresFast(q, heads, src, count, layout, levels, out, outStride, scratch) { return }
        switch layout.bits {
        case 1: codebookScoresH(q, heads, src, count, layout, levels, out, outStride, scratch, 1)
        case 2: codebookScoresH(q, heads, src, count, layout, levels, out, outStride, scratch, 2)
        case 3: codebookScoresH(q, heads, src, count, layout, levels, out, outStride, scratch, 4)
        default: codebookScoresH(q, heads, src, count, layout, levels, out, outStride, scratch, 8)
        }
    }

    /// `out[h·D + i] += Σₜ w[h·wStride + t]·levels[cₜᵢ]·scale` over code-map records.
    public static func codebookAccumulateHeads(
        weights w: UnsafePointer<Float>, wStride: Int, heads: Int, _ src: UnsafeRawPointer, count: Int,
        layout: CodebookLayout, levels: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, scratch: AttentionScratch
    ) {
        if codebookAccumulateFast(w, wStride, heads, src, count, layout, levels, out, scratch) { return }
        switch layout.bits {
        case 1: codebookAccumulateH(w, wStride, heads, src, count, layout, levels, out, scratch, 1)
        case 2: codebookAccumulateH(w, wStride, heads, src, count, layout, levels, out, scratch, 2)
        case 3: codebookAccumulateH(w, wStride, heads, src, count, layout, levels, out, scratch, 4)
        default: codebookAccumulateH(w, wStride, heads, src, count, layout, levels, out, scratch, 8)
        }
    }
}

@inline(__always)
func codebookScoresH(
    _ q: UnsafePointer<Float>, _ heads: Int, _ src: UnsafeRawPointer, _ count: Int, _ layout: CodebookLayout,
    _ levels: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ outStride: Int, _ scratch: AttentionScratch, _ h: Int
) {
    let rb = layout.recordBytes, mags = unscaledMagnitudes(levels, h), table = levelTable(levels, 2 * h)
    var record = src, lanes = U32x16(), leftInWord = 0, slot = 0, group = 0, leftInGroup = 0, scale = F32x16()
    scoresAllHeads(q, heads, dim: layout.dim, count: count, out, outStride, parts: scratch.parts, corrections: false,
                   start: { t in record = src + t * rb; leftInWord = 0; slot = 0; group = -1; leftInGroup = 0 },
                   next: { _ in codebookNext(record, layout, h, mags, table, &lanes, &leftInWord, &slot, &group, &leftInGroup, &scale) },
                   correction: { _, _ in 0 })
}

@inline(__always)
func codebookAccumulateH(
    _ w: UnsafePointer<Float>, _ wStride: Int, _ heads: Int, _ src: UnsafeRawPointer, _ count: Int, _ layout: CodebookLayout,
    _ levels: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ scratch: AttentionScratch, _ h: Int
) {
    let rb = layout.recordBytes, mags = unscaledMagnitudes(levels, h), table = levelTable(levels, 2 * h)
    var record = src, lanes = U32x16(), leftInWord = 0, slot = 0, group = 0, leftInGroup = 0, scale = F32x16()
    accumulateAllHeads(w, wStride, heads, dim: layout.dim, count: count, out, tile: scratch.tile,
                       start: { t in record = src + t * rb; leftInWord = 0; slot = 0; group = -1; leftInGroup = 0 },
                       next: { _ in codebookNext(record, layout, h, mags, table, &lanes, &leftInWord, &slot, &group, &leftInGroup, &scale) })
}

// Constant shapes — D = 64 or 128, one scale per vector (fp16 or log8) — as the affine
// kernels of AttentionAffine.swift: a token's code words loaded once, slot s a constant
// shift of them (`codeMapIndex`) and one level permute. Scores take the vector's scale once,
// on the reduced score (tokenScale); values multiply it into each decoded slot.

@inline(__always)
private func codebookScoresConst(
    _ q: UnsafePointer<Float>, _ heads: Int, _ src: UnsafeRawPointer, _ count: Int, _ layout: CodebookLayout,
    _ levels: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ outStride: Int, _ scratch: AttentionScratch,
    _ bits: Int, _ slots: Int
) {
    let h = 1 << (bits - 1), rb = layout.recordBytes, mags = unscaledMagnitudes(levels, h), table = levelTable(levels, 2 * h)
    var first = U32x16(), second = U32x16()
    scoresAllHeads(q, heads, dim: 16 * slots, count: count, out, outStride, parts: scratch.parts, corrections: false,
                   start: { t in (first, second) = affineWords(src + t * rb, bits, slots) },
                   next: { s in levelsOf(codeMapIndex(first, second, s, bits), bits, h, mags, table) },
                   correction: { _, _ in 0 },
                   scaled: true, tokenScale: { t in loadCodebookScale(src + t * rb, layout, 0) })
}

@inline(__always)
private func codebookAccumulateConst(
    _ w: UnsafePointer<Float>, _ wStride: Int, _ heads: Int, _ src: UnsafeRawPointer, _ count: Int, _ layout: CodebookLayout,
    _ levels: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ scratch: AttentionScratch, _ bits: Int, _ slots: Int
) {
    let h = 1 << (bits - 1), rb = layout.recordBytes, mags = unscaledMagnitudes(levels, h), table = levelTable(levels, 2 * h)
    var first = U32x16(), second = U32x16(), scale = F32x16()
    accumulateAllHeads(w, wStride, heads, dim: 16 * slots, count: count, out, tile: scratch.tile,
                       start: { t in
                           let record = src + t * rb
                           (first, second) = affineWords(record, bits, slots)
                           scale = F32x16(repeating: loadCodebookScale(record, layout, 0))
                       },
                       next: { s in levelsOf(codeMapIndex(first, second, s, bits), bits, h, mags, table) * scale })
}

@inline(never) private func codebookScores1D64(_ q: UnsafePointer<Float>, _ hd: Int, _ src: UnsafeRawPointer, _ n: Int, _ l: CodebookLayout, _ lv: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ os: Int, _ sc: AttentionScratch) { codebookScoresConst(q, hd, src, n, l, lv, out, os, sc, 1, 4) }
@inline(never) private func codebookScores2D64(_ q: UnsafePointer<Float>, _ hd: Int, _ src: UnsafeRawPointer, _ n: Int, _ l: CodebookLayout, _ lv: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ os: Int, _ sc: AttentionScratch) { codebookScoresConst(q, hd, src, n, l, lv, out, os, sc, 2, 4) }
@inline(never) private func codebookScores3D64(_ q: UnsafePointer<Float>, _ hd: Int, _ src: UnsafeRawPointer, _ n: Int, _ l: CodebookLayout, _ lv: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ os: Int, _ sc: AttentionScratch) { codebookScoresConst(q, hd, src, n, l, lv, out, os, sc, 3, 4) }
@inline(never) private func codebookScores4D64(_ q: UnsafePointer<Float>, _ hd: Int, _ src: UnsafeRawPointer, _ n: Int, _ l: CodebookLayout, _ lv: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ os: Int, _ sc: AttentionScratch) { codebookScoresConst(q, hd, src, n, l, lv, out, os, sc, 4, 4) }
@inline(never) private func codebookScores1D128(_ q: UnsafePointer<Float>, _ hd: Int, _ src: UnsafeRawPointer, _ n: Int, _ l: CodebookLayout, _ lv: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ os: Int, _ sc: AttentionScratch) { codebookScoresConst(q, hd, src, n, l, lv, out, os, sc, 1, 8) }
@inline(never) private func codebookScores2D128(_ q: UnsafePointer<Float>, _ hd: Int, _ src: UnsafeRawPointer, _ n: Int, _ l: CodebookLayout, _ lv: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ os: Int, _ sc: AttentionScratch) { codebookScoresConst(q, hd, src, n, l, lv, out, os, sc, 2, 8) }
@inline(never) private func codebookScores3D128(_ q: UnsafePointer<Float>, _ hd: Int, _ src: UnsafeRawPointer, _ n: Int, _ l: CodebookLayout, _ lv: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ os: Int, _ sc: AttentionScratch) { codebookScoresConst(q, hd, src, n, l, lv, out, os, sc, 3, 8) }
@inline(never) private func codebookScores4D128(_ q: UnsafePointer<Float>, _ hd: Int, _ src: UnsafeRawPointer, _ n: Int, _ l: CodebookLayout, _ lv: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ os: Int, _ sc: AttentionScratch) { codebookScoresConst(q, hd, src, n, l, lv, out, os, sc, 4, 8) }

@inline(never) private func codebookAccumulate1D64(_ w: UnsafePointer<Float>, _ ws: Int, _ hd: Int, _ src: UnsafeRawPointer, _ n: Int, _ l: CodebookLayout, _ lv: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ sc: AttentionScratch) { codebookAccumulateConst(w, ws, hd, src, n, l, lv, out, sc, 1, 4) }
@inline(never) private func codebookAccumulate2D64(_ w: UnsafePointer<Float>, _ ws: Int, _ hd: Int, _ src: UnsafeRawPointer, _ n: Int, _ l: CodebookLayout, _ lv: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ sc: AttentionScratch) { codebookAccumulateConst(w, ws, hd, src, n, l, lv, out, sc, 2, 4) }
@inline(never) private func codebookAccumulate3D64(_ w: UnsafePointer<Float>, _ ws: Int, _ hd: Int, _ src: UnsafeRawPointer, _ n: Int, _ l: CodebookLayout, _ lv: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ sc: AttentionScratch) { codebookAccumulateConst(w, ws, hd, src, n, l, lv, out, sc, 3, 4) }
@inline(never) private func codebookAccumulate4D64(_ w: UnsafePointer<Float>, _ ws: Int, _ hd: Int, _ src: UnsafeRawPointer, _ n: Int, _ l: CodebookLayout, _ lv: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ sc: AttentionScratch) { codebookAccumulateConst(w, ws, hd, src, n, l, lv, out, sc, 4, 4) }
@inline(never) private func codebookAccumulate1D128(_ w: UnsafePointer<Float>, _ ws: Int, _ hd: Int, _ src: UnsafeRawPointer, _ n: Int, _ l: CodebookLayout, _ lv: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ sc: AttentionScratch) { codebookAccumulateConst(w, ws, hd, src, n, l, lv, out, sc, 1, 8) }
@inline(never) private func codebookAccumulate2D128(_ w: UnsafePointer<Float>, _ ws: Int, _ hd: Int, _ src: UnsafeRawPointer, _ n: Int, _ l: CodebookLayout, _ lv: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ sc: AttentionScratch) { codebookAccumulateConst(w, ws, hd, src, n, l, lv, out, sc, 2, 8) }
@inline(never) private func codebookAccumulate3D128(_ w: UnsafePointer<Float>, _ ws: Int, _ hd: Int, _ src: UnsafeRawPointer, _ n: Int, _ l: CodebookLayout, _ lv: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ sc: AttentionScratch) { codebookAccumulateConst(w, ws, hd, src, n, l, lv, out, sc, 3, 8) }
@inline(never) private func codebookAccumulate4D128(_ w: UnsafePointer<Float>, _ ws: Int, _ hd: Int, _ src: UnsafeRawPointer, _ n: Int, _ l: CodebookLayout, _ lv: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ sc: AttentionScratch) { codebookAccumulateConst(w, ws, hd, src, n, l, lv, out, sc, 4, 8) }

/// The constant-shape scores kernel for `layout`; false (nothing done) when it has none.
private func codebookScoresFast(
    _ q: UnsafePointer<Float>, _ heads: Int, _ src: UnsafeRawPointer, _ count: Int, _ layout: CodebookLayout,
    _ levels: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ outStride: Int, _ scratch: AttentionScratch
) -> Bool {
    guard layout.groupCount == 1 else { return false }
    switch (layout.dim, layout.bits) {
    case (64, 1): codebookScores1D64(q, heads, src, count, layout, levels, out, outStride, scratch)
    case (64, 2): codebookScores2D64(q, heads, src, count, layout, levels, out, outStride, scratch)
    case (64, 3): codebookScores3D64(q, heads, src, count, layout, levels, out, outStride, scratch)
    case (64, 4): codebookScores4D64(q, heads, src, count, layout, levels, out, outStride, scratch)
    case (128, 1): codebookScores1D128(q, heads, src, count, layout, levels, out, outStride, scratch)
    case (128, 2): codebookScores2D128(q, heads, src, count, layout, levels, out, outStride, scratch)
    case (128, 3): codebookScores3D128(q, heads, src, count, layout, levels, out, outStride, scratch)
    case (128, 4): codebookScores4D128(q, heads, src, count, layout, levels, out, outStride, scratch)
    default: return false
    }
    return true
}

/// The constant-shape accumulate kernel for `layout`; false (nothing done) when it has none.
private func codebookAccumulateFast(
    _ w: UnsafePointer<Float>, _ wStride: Int, _ heads: Int, _ src: UnsafeRawPointer, _ count: Int, _ layout: CodebookLayout,
    _ levels: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ scratch: AttentionScratch
) -> Bool {
    guard layout.groupCount == 1 else { return false }
    switch (layout.dim, layout.bits) {
    case (64, 1): codebookAccumulate1D64(w, wStride, heads, src, count, layout, levels, out, scratch)
    case (64, 2): codebookAccumulate2D64(w, wStride, heads, src, count, layout, levels, out, scratch)
    case (64, 3): codebookAccumulate3D64(w, wStride, heads, src, count, layout, levels, out, scratch)
    case (64, 4): codebookAccumulate4D64(w, wStride, heads, src, count, layout, levels, out, scratch)
    case (128, 1): codebookAccumulate1D128(w, wStride, heads, src, count, layout, levels, out, scratch)
    case (128, 2): codebookAccumulate2D128(w, wStride, heads, src, count, layout, levels, out, scratch)
    case (128, 3): codebookAccumulate3D128(w, wStride, heads, src, count, layout, levels, out, scratch)
    case (128, 4): codebookAccumulate4D128(w, wStride, heads, src, count, layout, levels, out, scratch)
    default: return false
    }
    return true
}

extension Reference {
    /// Scalar reference of ``Kernels/codebookScores(queries:heads:_:count:layout:levels:out:outStride:scratch:)`` (fp64 sums).
    public static func codebookScores(
        queries q: UnsafePointer<Float>, heads: Int, _ src: UnsafeRawPointer, count: Int,
        layout: CodebookLayout, levels: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, outStride: Int
    ) {
        for t in 0..<count {
            for h in 0..<heads {
                var acc = 0.0
                for i in 0..<layout.dim {
                    acc += Double(q[h * layout.dim + i]) * Double(codebookValue(src + t * layout.recordBytes, layout, levels: levels, element: i))
                }
                out[h * outStride + t] = Float(acc)
            }
        }
    }

    /// Scalar reference of ``Kernels/codebookAccumulateHeads(weights:wStride:heads:_:count:layout:levels:out:scratch:)``.
    public static func codebookAccumulateHeads(
        weights w: UnsafePointer<Float>, wStride: Int, heads: Int, _ src: UnsafeRawPointer, count: Int,
        layout: CodebookLayout, levels: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>
    ) {
        for h in 0..<heads {
            for i in 0..<layout.dim {
                var acc = Double(out[h * layout.dim + i])
                for t in 0..<count {
                    acc += Double(w[h * wStride + t]) * Double(codebookValue(src + t * layout.recordBytes, layout, levels: levels, element: i))
                }
                out[h * layout.dim + i] = Float(acc)
            }
        }
    }
}

import QAQLayout

// Decode-attention kernels over affine records and fp32/fp16 rows (the skeleton is in
// AttentionTiles.swift; the common shapes without outliers take the constant-shape copies of
// AttentionAffine.swift, everything else the general decoder below). Values are decoded in
// registers as `(lo + ½·step) + c·step`
// (one FMA per 16 elements where the ISA has it); outliers are applied exactly as a
// correction `value − (lo + ½·step)` on top of the code-0 decode the kernel used.

/// The next slot of an affine record (the decoder's state is plain variables of the
/// kernel, not a struct: a struct in a variant module gets value witnesses whose weak
/// symbols the linker would share across ISA levels). x̂ = (lo + ½·step) + c·step.
@inline(__always)
func affineNext(
    _ record: UnsafeRawPointer, _ layout: PackedLayout, _ lanes: inout U32x16, _ leftInWord: inout Int, _ slot: inout Int,
    _ group: inout Int, _ leftInGroup: inout Int, _ stepV: inout F32x16, _ baseV: inout F32x16
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
        let (lo, step) = groupMetadata(record, layout, group)
        stepV = F32x16(repeating: step)
        baseV = F32x16(repeating: lo + 0.5 * step)
    }
    leftInGroup -= 1
    slot += 1
    var x = baseV
    fma16(&x, codesToFloat(c), stepV)
    return x
}

/// `Σ over outliers of q[idx]·(value − (lo + ½·step))` of one record for query `q`.
@inline(__always)
func outlierCorrection(_ record: UnsafeRawPointer, _ layout: PackedLayout, _ q: UnsafePointer<Float>) -> Float {
    var c: Float = 0
    for j in 0..<layout.outlierCount {
        let o = outlier(record, layout, j)
        let (lo, step) = groupMetadata(record, layout, o.index / layout.groupSize)
        c += q[o.index] * (o.value - (lo + 0.5 * step))
    }
    return c
}

extension Kernels {
    /// Scores of a group of `heads` queries against `count` consecutive affine records —
    /// the keys of one KV head read once for every q head of its GQA group:
    /// `out[h·outStride + t] = Σᵢ q[h·D + i]·k̂ₜ[i]` (queries already scaled by 1/√D).
    /// Matches ``Reference/scores(queries:heads:_:count:layout:out:outStride:)`` to fp32
    /// rounding (different order of summation; decode by FMA).
    public static func scores(
        queries q: UnsafePointer<Float>, heads: Int, _ src: UnsafeRawPointer, count: Int,
        layout: PackedLayout, out: UnsafeMutablePointer<Float>, outStride: Int, scratch: AttentionScratch
    ) {
        if affineScoresFast(q, heads, src, count, layout, out, outStride, scratch) { return }
        let rb = layout.recordBytes
        var record = src, lanes = U32x16(), leftInWord = 0, slot = 0, group = 0, leftInGroup = 0
        var stepV = F32x16(), baseV = F32x16()
        scoresAllHeads(q, heads, dim: layout.dim, count: count, out, outStride, parts: scratch.parts, corrections: layout.outlierCount > 0,
                       start: { t in record = src + t * rb; leftInWord = 0; slot = 0; group = -1; leftInGroup = 0 },
                       next: { _ in affineNext(record, layout, &lanes, &leftInWord, &slot, &group, &leftInGroup, &stepV, &baseV) },
                       correction: { t, qh in outlierCorrection(src + t * rb, layout, qh) })
    }

    /// Weighted accumulation of `count` consecutive affine records into `heads` outputs:
    /// `out[h·D + i] += Σₜ w[h·wStride + t]·v̂ₜ[i]` — the values of one KV head read once for
    /// every q head of its group.
    public static func accumulateHeads(
        weights w: UnsafePointer<Float>, wStride: Int, heads: Int, _ src: UnsafeRawPointer, count: Int,
        layout: PackedLayout, out: UnsafeMutablePointer<Float>, scratch: AttentionScratch
    ) {
        if affineAccumulateFast(w, wStride, heads, src, count, layout, out, scratch) { return }
        let d = layout.dim, rb = layout.recordBytes
        var record = src, lanes = U32x16(), leftInWord = 0, slot = 0, group = 0, leftInGroup = 0
        var stepV = F32x16(), baseV = F32x16()
        accumulateAllHeads(w, wStride, heads, dim: d, count: count, out, tile: scratch.tile,
                           start: { t in record = src + t * rb; leftInWord = 0; slot = 0; group = -1; leftInGroup = 0 },
                           next: { _ in affineNext(record, layout, &lanes, &leftInWord, &slot, &group, &leftInGroup, &stepV, &baseV) })
        if layout.outlierCount > 0 {
            for t in 0..<count {
                let record = src + t * rb
                for j in 0..<layout.outlierCount {
                    let ol = outlier(record, layout, j)
                    let (lo, step) = groupMetadata(record, layout, ol.index / layout.groupSize)
                    let delta = ol.value - (lo + 0.5 * step)
                    for h in 0..<heads { out[h * d + ol.index] += w[h * wStride + t] * delta }
                }
            }
        }
    }

    /// Scores of `heads` queries against `count` fp32 rows (`rows[t·rowStride + i]`).
    public static func scoresF32(
        queries q: UnsafePointer<Float>, heads: Int, dim d: Int, _ rows: UnsafePointer<Float>, rowStride: Int, count: Int,
        out: UnsafeMutablePointer<Float>, outStride: Int, scratch: AttentionScratch
    ) {
        let r = UnsafeRawPointer(rows)
        var element = 0
        scoresAllHeads(q, heads, dim: d, count: count, out, outStride, parts: scratch.parts, corrections: false,
                       start: { t in element = t * rowStride },
                       next: { _ in let x = loadElements(r, false, element); element += 16; return x },
                       correction: { _, _ in 0 })
    }

    /// `out[h·D + i] += Σₜ w[h·wStride + t]·rows[t·rowStride + i]` over fp32 rows.
    public static func accumulateHeadsF32(
        weights w: UnsafePointer<Float>, wStride: Int, heads: Int, dim d: Int, _ rows: UnsafePointer<Float>, rowStride: Int,
        count: Int, out: UnsafeMutablePointer<Float>, scratch: AttentionScratch
    ) {
        var h0 = 0
        while h0 < heads {
            switch heads - h0 {
            case 1: accumulateRows(w + h0 * wStride, wStride, 1, dim: d, count: count, rows, rowStride: rowStride, out + h0 * d); h0 += 1
            case 2: accumulateRows(w + h0 * wStride, wStride, 2, dim: d, count: count, rows, rowStride: rowStride, out + h0 * d); h0 += 2
            case 3: accumulateRows(w + h0 * wStride, wStride, 3, dim: d, count: count, rows, rowStride: rowStride, out + h0 * d); h0 += 3
            default: accumulateRows(w + h0 * wStride, wStride, 4, dim: d, count: count, rows, rowStride: rowStride, out + h0 * d); h0 += 4
            }
        }
    }

    /// Scores of `heads` queries against `count` fp16 rows (`rows[t·rowStride + i]`).
    public static func scoresF16(
        queries q: UnsafePointer<Float>, heads: Int, dim d: Int, _ rows: UnsafePointer<Float16>, rowStride: Int, count: Int,
        out: UnsafeMutablePointer<Float>, outStride: Int, scratch: AttentionScratch
    ) {
        let r = UnsafeRawPointer(rows)
        var element = 0
        scoresAllHeads(q, heads, dim: d, count: count, out, outStride, parts: scratch.parts, corrections: false,
                       start: { t in element = t * rowStride },
                       next: { _ in let x = loadElements(r, true, element); element += 16; return x },
                       correction: { _, _ in 0 })
    }

    /// `out[h·D + i] += Σₜ w[h·wStride + t]·rows[t·rowStride + i]` over fp16 rows.
    public static func accumulateHeadsF16(
        weights w: UnsafePointer<Float>, wStride: Int, heads: Int, dim d: Int, _ rows: UnsafePointer<Float16>, rowStride: Int,
        count: Int, out: UnsafeMutablePointer<Float>, scratch: AttentionScratch
    ) {
        let r = UnsafeRawPointer(rows)
        var element = 0
        accumulateAllHeads(w, wStride, heads, dim: d, count: count, out, tile: scratch.tile,
                           start: { t in element = t * rowStride },
                           next: { _ in let x = loadElements(r, true, element); element += 16; return x })
    }
}

extension Reference {
    /// Scalar reference of ``Kernels/scores(queries:heads:_:count:layout:out:outStride:)``
    /// (fp64 sums over ``value(_:_:element:)``).
    public static func scores(
        queries q: UnsafePointer<Float>, heads: Int, _ src: UnsafeRawPointer, count: Int,
        layout: PackedLayout, out: UnsafeMutablePointer<Float>, outStride: Int
    ) {
        for t in 0..<count {
            for h in 0..<heads {
                var acc = 0.0
                for i in 0..<layout.dim {
                    acc += Double(q[h * layout.dim + i]) * Double(value(src + t * layout.recordBytes, layout, element: i))
                }
                out[h * outStride + t] = Float(acc)
            }
        }
    }

    /// Scalar reference of ``Kernels/accumulateHeads(weights:wStride:heads:_:count:layout:out:)``.
    public static func accumulateHeads(
        weights w: UnsafePointer<Float>, wStride: Int, heads: Int, _ src: UnsafeRawPointer, count: Int,
        layout: PackedLayout, out: UnsafeMutablePointer<Float>
    ) {
        for h in 0..<heads {
            for i in 0..<layout.dim {
                var acc = Double(out[h * layout.dim + i])
                for t in 0..<count {
                    acc += Double(w[h * wStride + t]) * Double(value(src + t * layout.recordBytes, layout, element: i))
                }
                out[h * layout.dim + i] = Float(acc)
            }
        }
    }
}

import QAQLayout

// Decoding code-map records (see `CodebookLayout` and CodebookQuantize.swift):
// x̂ = levels[code] · scale in fp32, and +0 wherever the scale is 0.
//
// The level lookup runs in registers, without a gather. Because the table is symmetric,
// code c is a sign (c < h means negative) and a magnitude index n = (c ^ (c < h ? h − 1 : 0))
// mod h; the h magnitudes, pre-multiplied by the group's scale, are broadcast once per group
// and n selects among them with a binary tree of blends on its bits (h − 1 blends and
// log₂h bit tests per 16 elements: 7 + 3 for 4-bit codes), then the sign is XORed in.
// Pre-scaling is exact: ±(Mₙ·s) = (±Mₙ)·s in IEEE arithmetic, so the values are bit-exact
// with the plain `levels[code] * scale` of the reference.

extension Kernels {
    /// Decodes `count` consecutive code-map records into fp32 rows of `dstStride` elements.
    /// `levels` is the table the records were quantized with (2^b entries, symmetric).
    /// Values are bit-exact with ``Reference/codebookDequantize(_:count:layout:levels:dst:dstStride:)``.
    public static func codebookDequantize(
        _ src: UnsafeRawPointer, count: Int, layout: CodebookLayout, levels: UnsafePointer<Float>,
        dst: UnsafeMutablePointer<Float>, dstStride: Int
    ) {
        switch layout.bits {
        case 1: codebookDequantizeH(src, count, layout, levels, dst, dstStride, 1)
        case 2: codebookDequantizeH(src, count, layout, levels, dst, dstStride, 2)
        case 3: codebookDequantizeH(src, count, layout, levels, dst, dstStride, 4)
        default: codebookDequantizeH(src, count, layout, levels, dst, dstStride, 8)
        }
    }
}

/// The h scaled magnitudes of one group, broadcast (unused ones are copies of the first).
@inline(__always)
func scaledMagnitudes(_ levels: UnsafePointer<Float>, _ h: Int, _ s: Float)
    -> (F32x16, F32x16, F32x16, F32x16, F32x16, F32x16, F32x16, F32x16) {
    let m0 = F32x16(repeating: levels[h] * s)
    if h == 1 { return (m0, m0, m0, m0, m0, m0, m0, m0) }
    let m1 = F32x16(repeating: levels[h + 1] * s)
    if h == 2 { return (m0, m1, m0, m0, m0, m0, m0, m0) }
    let m2 = F32x16(repeating: levels[h + 2] * s), m3 = F32x16(repeating: levels[h + 3] * s)
    if h == 4 { return (m0, m1, m2, m3, m0, m0, m0, m0) }
    return (m0, m1, m2, m3,
            F32x16(repeating: levels[h + 4] * s), F32x16(repeating: levels[h + 5] * s),
            F32x16(repeating: levels[h + 6] * s), F32x16(repeating: levels[h + 7] * s))
}

/// Selects magnitude n (0 ≤ n < h) of `m` per lane by a tree of blends on the bits of n.
@inline(__always)
func selectMagnitude(_ n: U32x16, _ h: Int,
                     _ m: (F32x16, F32x16, F32x16, F32x16, F32x16, F32x16, F32x16, F32x16)) -> F32x16 {
    if h == 1 { return m.0 }
    let zero = U32x16()
    let bit0 = (n & U32x16(repeating: 1)) .!= zero
    let a01 = m.0.replacing(with: m.1, where: bit0)
    if h == 2 { return a01 }
    let bit1 = (n & U32x16(repeating: 2)) .!= zero
    let a23 = m.2.replacing(with: m.3, where: bit0)
    let a03 = a01.replacing(with: a23, where: bit1)
    if h == 4 { return a03 }
    let bit2 = (n & U32x16(repeating: 4)) .!= zero
    let a45 = m.4.replacing(with: m.5, where: bit0)
    let a67 = m.6.replacing(with: m.7, where: bit0)
    let a47 = a45.replacing(with: a67, where: bit1)
    return a03.replacing(with: a47, where: bit2)
}

@inline(__always)
func codebookDequantizeH(
    _ src: UnsafeRawPointer, _ count: Int, _ layout: CodebookLayout, _ levels: UnsafePointer<Float>,
    _ dst: UnsafeMutablePointer<Float>, _ dstStride: Int, _ h: Int
) {
    let slotsPerGroup = layout.groupSize / 16
    let topShift = U32x16(repeating: UInt32(layout.bits - 1))
    let low = U32x16(repeating: UInt32(h - 1))
    let one = U32x16(repeating: 1)
    for v in 0..<count {
        let record = src + v * layout.recordBytes
        let out = UnsafeMutableRawPointer(dst + v * dstStride)
        var g = 0, left = slotsPerGroup
        var scale = loadCodebookScale(record, layout, 0)
        var mags = scaledMagnitudes(levels, h, scale)
        // The sign is applied only where the scale is nonzero (scale 0 decodes to +0).
        var signs = U32x16(repeating: scale == 0 ? 0 : 0x8000_0000)
        forEachSlot(record, layout.slots, slotCount: layout.slotCount) { s, c in
            if left == 0 {
                g += 1
                left = slotsPerGroup
                scale = loadCodebookScale(record, layout, g)
                mags = scaledMagnitudes(levels, h, scale)
                signs = U32x16(repeating: scale == 0 ? 0 : 0x8000_0000)
            }
            left -= 1
            // neg: all ones for codes below h (negative levels).
            let neg = U32x16() &- ((c &>> topShift) ^ one)
            let n = (c ^ neg) & low
            let m = selectMagnitude(n, h, mags)
            let x = unsafeBitCast(unsafeBitCast(m, to: U32x16.self) ^ (neg & signs), to: F32x16.self)
            out.storeBytes(of: x, toByteOffset: 64 * s, as: F32x16.self)
        }
    }
}

extension Reference {
    /// Scalar reference of ``Kernels/codebookDequantize(_:count:layout:levels:dst:dstStride:)``.
    public static func codebookDequantize(
        _ src: UnsafeRawPointer, count: Int, layout: CodebookLayout, levels: UnsafePointer<Float>,
        dst: UnsafeMutablePointer<Float>, dstStride: Int
    ) {
        for v in 0..<count {
            for i in 0..<layout.dim {
                dst[v * dstStride + i] = codebookValue(src + v * layout.recordBytes, layout, levels: levels, element: i)
            }
        }
    }

    /// The decoded value of element `i`: `levels[code] · scale` in fp32, +0 when the scale is 0.
    public static func codebookValue(_ record: UnsafeRawPointer, _ layout: CodebookLayout,
                                     levels: UnsafePointer<Float>, element i: Int) -> Float {
        let s = codebookScale(record, layout, group: i / layout.groupSize)
        return s == 0 ? 0 : levels[Int(codebookCode(record, layout, element: i))] * s
    }
}

import QAQLayout

// Quantization to a code map (a table of 2^b levels, e.g. Lloyd-Max for N(0,1)) with a
// least-squares scale per vector or group. See `CodebookLayout` for the bytes.
//
// ## The contract (shared by the SIMD kernel and `Reference.codebookQuantize`)
// Let h = 2^(b−1). The level table must be symmetric — `levels[h + j] = −levels[h − 1 − j]
// > 0` and `thresholds[h − 1 + j] = −thresholds[h − 1 − j]` (so the middle threshold is 0) —
// and increasing; the kernels read only the upper halves: magnitudes Mⱼ = levels[h + j]
// (j = 0…h−1) and positive thresholds Pⱼ = thresholds[h − 1 + j] (j = 1…h−1). Per group
// (the whole vector for the vector scale modes), in fp32 without FMA:
//  1. sumsq = Σ x² with one partial sum per lane (element i → lane i mod 16, summed in
//     element order), folded by halves (lanes l and l + 8, then l + 4, l + 2, l + 1);
//     s₀ = √(sumsq / G), the group's RMS.
//  2. Each element: a = |x|, n = #{ j ∈ 1…h−1 : Pⱼ·s₀ < a } (strictly below), and
//     code = h + n when the sign bit of x is clear, h − 1 − n when it is set; c = levels[code].
//     This is "the number of thresholds below x/s₀", made symmetric: a value exactly on a
//     threshold goes to the smaller magnitude, and ±0 to ±M₀. If s₀ = 0 (an all-zero group,
//     or one so small that the fp32 sum of squares underflows) every code is 0 and c = 0.
//  3. Refit: s = ⟨x, c⟩ / ⟨c, c⟩ (both summed like sumsq), or 0 when ⟨c, c⟩ = 0; ⟨x, c⟩ ≥ 0
//     because c has the sign of x, so s ≥ 0.
//  4. Stored: fp16 (round to nearest even) or the nearest log8 byte (see `nearestLog8`).
// Errors: a NaN/±Inf element → `.nonFinite`; sumsq = +Inf, an fp16 scale that overflows,
// or a log8 scale above 2^(127/16) → `.outOfFloat16Range`.
//
// The SIMD kernel counts n with h − 1 full-width compares of |x| against broadcast scaled
// thresholds, selecting the magnitude with the same masks (compare, masked add, blend per
// threshold: half the work of comparing x against all 2^b − 1 thresholds), then ORs in
// the sign of x. Codes are packed into the lane words as they are produced (one store per
// word, see `storeLaneWord`).

extension Kernels {
    /// Quantizes `count` contiguous fp32 vectors of `layout.dim` elements (already rotated,
    /// if the format rotates) into consecutive records of `layout.recordBytes` bytes.
    ///
    /// - Parameters:
    ///   - levels: the 2^b levels, ascending and symmetric (see the file's contract).
    ///   - thresholds: the 2^b − 1 decision thresholds, ascending and symmetric.
    ///   - dst: `count × layout.recordBytes` bytes.
    /// - Returns: `.ok`, or the first failing vector; records before it are written, the
    ///   failing record may be partly written, later ones are not touched.
    ///
    /// Bit-exact with ``Reference/codebookQuantize(_:count:layout:levels:thresholds:dst:)``.
    public static func codebookQuantize(
        _ src: UnsafePointer<Float>, count: Int, layout: CodebookLayout,
        levels: UnsafePointer<Float>, thresholds: UnsafePointer<Float>, dst: UnsafeMutableRawPointer
    ) -> KernelStatus {
        // One copy of the loop per code width, with the threshold loop fully unrolled.
        switch layout.bits {
        case 1: return codebookQuantizeH(src, count, layout, levels, thresholds, dst, 1)
        case 2: return codebookQuantizeH(src, count, layout, levels, thresholds, dst, 2)
        case 3: return codebookQuantizeH(src, count, layout, levels, thresholds, dst, 4)
        default: return codebookQuantizeH(src, count, layout, levels, thresholds, dst, 8)
        }
    }
}

/// The kernel for h = 2^(b−1) levels per sign (a constant after inlining).
@inline(__always)
func codebookQuantizeH(
    _ src: UnsafePointer<Float>, _ count: Int, _ layout: CodebookLayout,
    _ levels: UnsafePointer<Float>, _ thresholds: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer,
    _ h: Int
) -> KernelStatus {
    // Upper halves of the tables, as scalars (broadcast where used).
    var mag = InlineArray<8, Float>(repeating: 0), thr = InlineArray<8, Float>(repeating: 0)
    for j in 0..<h { mag[j] = levels[h + j] }
    for j in 1..<h { thr[j] = thresholds[h - 1 + j] }
    let table = layout.slots
    let slotsPerGroup = layout.groupSize / 16
    let groups = layout.groupCount
    let gSize = Float(layout.groupSize)
    let b0 = UInt32(table.bits0)
    let mask0 = U32x16(repeating: (1 << b0) - 1)
    let split = table.bits1 != 0
    let signBit = U32x16(repeating: 0x8000_0000)
    let absMask = U32x16(repeating: 0x7FFF_FFFF)
    let hv = U32x16(repeating: UInt32(h))
    for v in 0..<count {
        let x0 = UnsafeRawPointer(src + v * layout.dim)
        let record = dst + v * layout.recordBytes
        // Pass 1: every group's RMS (and the NaN/Inf probe) before anything is written.
        var rms = InlineArray<16, Float>(repeating: 0)
        var probe = F32x16()
        var overflow = false
        var s = 0
        for g in 0..<groups {
            var ss = F32x16()
            for _ in 0..<slotsPerGroup {
                let x = x0.loadUnaligned(fromByteOffset: 64 * s, as: F32x16.self)
                probe += x * F32x16()
                ss += x * x
                s += 1
            }
            let sumsq = hsum(ss)
            overflow = overflow || sumsq == .infinity
            rms[g] = (sumsq / gSize).squareRoot()
        }
        if hsum(probe) != 0 { return KernelStatus(code: .nonFinite, vector: v) }  // NaN != 0 too
        if overflow { return KernelStatus(code: .outOfFloat16Range, vector: v) }
        // Pass 2: codes (packed word by word), the refit, the scale.
        var acc0 = U32x16(), acc1 = U32x16()
        var fits = true
        s = 0
        for g in 0..<groups {
            let s0 = rms[g]
            let keep = U32x16(repeating: s0 > 0 ? ~0 : 0)
            var sthr = InlineArray<8, Float>(repeating: 0)
            for j in 1..<h { sthr[j] = thr[j] * s0 }
            var xc = F32x16(), cc = F32x16()
            for _ in 0..<slotsPerGroup {
                let x = x0.loadUnaligned(fromByteOffset: 64 * s, as: F32x16.self)
                let xb = unsafeBitCast(x, to: U32x16.self)
                let a = unsafeBitCast(xb & absMask, to: F32x16.self)
                var n = U32x16()
                var m = F32x16(repeating: mag[0])
                for j in 1..<h {
                    let above = F32x16(repeating: sthr[j]) .< a
                    n &+= U32x16(repeating: 1).replacing(with: 0, where: .!above)
                    m = m.replacing(with: F32x16(repeating: mag[j]), where: above)
                }
                // code = n ^ (h − sign): h + n for x ≥ +0, h − 1 − n for x ≤ −0.
                let code = (n ^ (hv &- (xb &>> U32x16(repeating: 31)))) & keep
                let c = unsafeBitCast((unsafeBitCast(m, to: U32x16.self) | (xb & signBit)) & keep, to: F32x16.self)
                xc += x * c
                cc += c * c
                // Pack: OR into the current word of each stream; store a word when full.
                let e0 = table.stream0[s]
                let o0 = SlotTable.bitOffset(e0)
                acc0 |= (code & mask0) &<< U32x16(repeating: o0)
                if o0 + b0 == UInt32(SlotTable.width(e0)) {
                    storeLaneWord(record, e0, acc0)
                    acc0 = U32x16()
                }
                if split {
                    let e1 = table.stream1[s]
                    let o1 = SlotTable.bitOffset(e1)
                    acc1 |= (code &>> U32x16(repeating: 2)) &<< U32x16(repeating: o1)
                    if o1 + 1 == UInt32(SlotTable.width(e1)) {
                        storeLaneWord(record, e1, acc1)
                        acc1 = U32x16()
                    }
                }
                s += 1
            }
            let dxc = hsum(xc), dcc = hsum(cc)
            let q = dxc / dcc
            fits = storeCodebookScale(record, layout, g, dcc > 0 ? q : 0) && fits
        }
        if !fits { return KernelStatus(code: .outOfFloat16Range, vector: v) }
    }
    return .ok
}

extension Reference {
    /// Scalar reference of ``Kernels/codebookQuantize(_:count:layout:levels:thresholds:dst:)``,
    /// element by element from the contract (full tables, codes written bit by bit).
    public static func codebookQuantize(
        _ src: UnsafePointer<Float>, count: Int, layout: CodebookLayout,
        levels: UnsafePointer<Float>, thresholds: UnsafePointer<Float>, dst: UnsafeMutableRawPointer
    ) -> KernelStatus {
        let d = layout.dim
        for v in 0..<count {
            let x = src + v * d
            let record = dst + v * layout.recordBytes
            for i in 0..<d where !x[i].isFinite { return KernelStatus(code: .nonFinite, vector: v) }
            for g in 0..<layout.groupCount
            where laneTreeSum(x, g * layout.groupSize, layout.groupSize, times: x) == .infinity {
                return KernelStatus(code: .outOfFloat16Range, vector: v)
            }
            for i in 0..<layout.codeBytes { record.storeBytes(of: 0, toByteOffset: i, as: UInt8.self) }
            var fits = true
            for g in 0..<layout.groupCount {
                let s = codebookGroup(x, layout: layout, group: g, levels: levels, thresholds: thresholds) { i, code in
                    setCodebookCode(record, layout, element: i, code: code)
                }
                if !storeCodebookScale(record, layout, g, s) { fits = false }
            }
            if !fits { return KernelStatus(code: .outOfFloat16Range, vector: v) }
        }
        return .ok
    }

    /// The least-squares scale of group `g` of one finite vector `x`, before it is rounded
    /// to storage, exactly as the quantize kernels compute it (for tests of the refit).
    public static func codebookUnroundedScale(
        _ x: UnsafePointer<Float>, layout: CodebookLayout, group g: Int,
        levels: UnsafePointer<Float>, thresholds: UnsafePointer<Float>
    ) -> Float {
        codebookGroup(x, layout: layout, group: g, levels: levels, thresholds: thresholds) { _, _ in }
    }

    /// Codes of group `g` (reported through `emit`) and its refit scale, from the contract.
    static func codebookGroup(
        _ x: UnsafePointer<Float>, layout: CodebookLayout, group g: Int, levels: UnsafePointer<Float>,
        thresholds: UnsafePointer<Float>, emit: (Int, UInt32) -> Void
    ) -> Float {
        let h = layout.levelCount / 2
        let start = g * layout.groupSize, count = layout.groupSize
        let s0 = (laneTreeSum(x, start, count, times: x) / Float(count)).squareRoot()
        var c = InlineArray<256, Float>(repeating: 0)
        for i in start..<(start + count) {
            var code: UInt32 = 0
            if s0 > 0 {
                let a = x[i].magnitude
                var n = 0
                for j in 1..<h where thresholds[h - 1 + j] * s0 < a { n += 1 }
                code = UInt32(x[i].sign == .minus ? h - 1 - n : h + n)
                c[i] = levels[Int(code)]
            }
            emit(i, code)
        }
        var xcLanes = InlineArray<16, Float>(repeating: 0), ccLanes = InlineArray<16, Float>(repeating: 0)
        for i in start..<(start + count) {
            xcLanes[i & 15] += x[i] * c[i]
            ccLanes[i & 15] += c[i] * c[i]
        }
        let xc = foldLanes(xcLanes), cc = foldLanes(ccLanes)
        return cc > 0 ? xc / cc : 0
    }

    /// Σ x[i]·y[i] over `count` elements from `start`, one partial sum per lane (i mod 16,
    /// in element order), folded by halves — the kernels' summation order, in scalar code.
    static func laneTreeSum(_ x: UnsafePointer<Float>, _ start: Int, _ count: Int, times y: UnsafePointer<Float>) -> Float {
        var lanes = InlineArray<16, Float>(repeating: 0)
        for i in start..<(start + count) { lanes[i & 15] += x[i] * y[i] }
        return foldLanes(lanes)
    }

    /// Lanes l and l + 8 added, then l + 4, l + 2, l + 1 (as `hsum`).
    static func foldLanes(_ l: InlineArray<16, Float>) -> Float {
        var a = l
        var width = 8
        while width >= 1 {
            for i in 0..<width { a[i] = a[i] + a[i + width] }
            width /= 2
        }
        return a[0]
    }

    /// The code of element `i` of a code-map record, bit by bit from the lane-slice definition.
    public static func codebookCode(_ record: UnsafeRawPointer, _ layout: CodebookLayout, element i: Int) -> UInt32 {
        let (s, l) = (i / 16, i % 16)
        let t = layout.slots
        var c = laneBits(record, t.stream0[s], lane: l, count: t.bits0)
        if t.bits1 != 0 { c |= laneBits(record, t.stream1[s], lane: l, count: 1) << 2 }
        return c
    }

    /// Writes the code of element `i` bit by bit (the bits must be zero before).
    static func setCodebookCode(_ record: UnsafeMutableRawPointer, _ layout: CodebookLayout, element i: Int, code: UInt32) {
        let (s, l) = (i / 16, i % 16)
        let t = layout.slots
        if t.bits1 != 0 {
            setLaneBits(record, t.stream0[s], lane: l, count: 2, value: code & 3)
            setLaneBits(record, t.stream1[s], lane: l, count: 1, value: code >> 2)
        } else {
            setLaneBits(record, t.stream0[s], lane: l, count: t.bits0, value: code)
        }
    }
}

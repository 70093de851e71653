import QAQLayout
import _QAQSIMDShims

// Quantization to a code map (a table of 2^b levels, e.g. Lloyd-Max for N(0,1)) with a
// least-squares scale per vector or group. See `CodebookLayout` for the bytes.
//
// ## The contract (shared by the SIMD kernel and `Reference.codebookQuantize`)
// Let h = 2^(b−1). The level table must be symmetric — `levels[h + j] = −levels[h − 1 − j]
// > 0` and `thresholds[h − 1 + j] = −thresholds[h − 1 − j]` (so the middle threshold is 0) —
// and increasing; the kernels read only the upper halves: magnitudes Mⱼ = levels[h + j]
// (j = 0…h−1) and positive thresholds Pⱼ = thresholds[h − 1 + j] (j = 1…h−1). Per group
// (the whole vector for the vector scale modes), in fp32 without FMA:
//  1. sumsq = Σ x² with one partial sum per element index mod 32 within the group (two
//     16-lane accumulators, even and odd slots, each summed in slot order), the two added
//     lane-wise, then folded by halves (lanes l and l + 8, then l + 4, l + 2, l + 1);
//     r = √(G / sumsq), the reciprocal of the group's RMS s₀.
//  2. Each element: u = |x|·r, n = #{ j ∈ 1…h−1 : Pⱼ < u } (strictly below), and
//     code = h + n when the sign bit of x is clear, h − 1 − n when it is set; c = levels[code].
//     This is "the number of thresholds below x/s₀", made symmetric: a value exactly on a
//     threshold goes to the smaller magnitude, and ±0 to ±M₀. If sumsq = 0 (an all-zero
//     group, or one so small that the fp32 sum of squares underflows) every code is 0 and c = 0.
//  3. Refit: s = ⟨x, c⟩ / ⟨c, c⟩ (both summed like sumsq), or 0 when ⟨c, c⟩ = 0; ⟨x, c⟩ ≥ 0
//     because c has the sign of x, so s ≥ 0.
//  4. Stored: fp16 (round to nearest even) or the nearest log8 byte (see `nearestLog8`).
// Errors: a NaN/±Inf element anywhere in the vector → `.nonFinite`; otherwise a group whose
// sumsq overflows to +Inf, an fp16 scale that overflows, or a log8 scale above 2^(127/16)
// → `.outOfFloat16Range`. (The SIMD kernel notices non-finite input through sumsq and
// then scans the vector, so it reports the same status as the reference.)
//
// The SIMD kernel compares u against the h − 1 positive thresholds only (half the work of
// comparing x against all 2^b − 1), then takes c = levels[code] by one register permute where
// that is native (v3, v4), elsewhere selects the magnitude with the same masks and ORs in the
// sign of x (the same value, the table being symmetric); see `codebookQuantizeH`.

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
        // b = 1, 2, 4 with a whole vector's codes in one word per lane: the fast path,
        // CodebookQuantizeOneWord.swift. (The 3-bit codes stay here: two streams, and the
        // fast path's form measured 2–3 % slower for them.)
        if layout.bits != 3 && layout.slotCount * layout.bits <= 32 {
            // 4 bits where a 16-lane permute is one instruction: the search by bins.
            if layout.bits == 4, qaq_permute16_native() == 2, count >= codebookBinnedMinimumVectors,
               layout.groupSize == 64 || layout.groupSize == 128, let bins = ThresholdBins(thresholds + 8, count: 7) {
                return layout.groupSize == 64 ? codebookQuantizeBins4x4(src, count, layout, levels, thresholds, dst, bins)
                    : codebookQuantizeBins4x8(src, count, layout, levels, thresholds, dst, bins)
            }
            switch (layout.bits, layout.groupSize) {
            case (1, 64): return codebookQuantizeWord1x4(src, count, layout, levels, thresholds, dst)
            case (1, 128): return codebookQuantizeWord1x8(src, count, layout, levels, thresholds, dst)
            case (2, 64): return codebookQuantizeWord2x4(src, count, layout, levels, thresholds, dst)
            case (2, 128): return codebookQuantizeWord2x8(src, count, layout, levels, thresholds, dst)
            case (4, 64): return codebookQuantizeWord4x4(src, count, layout, levels, thresholds, dst)
            case (4, 128): return codebookQuantizeWord4x8(src, count, layout, levels, thresholds, dst)
            default: break
            }
        }
        switch (layout.bits, layout.groupSize) {
        case (1, 64): return codebookQuantize1x4(src, count, layout, levels, thresholds, dst)
        case (1, 128): return codebookQuantize1x8(src, count, layout, levels, thresholds, dst)
        case (1, _): return codebookQuantize1xN(src, count, layout, levels, thresholds, dst)
        case (2, 64): return codebookQuantize2x4(src, count, layout, levels, thresholds, dst)
        case (2, 128): return codebookQuantize2x8(src, count, layout, levels, thresholds, dst)
        case (2, _): return codebookQuantize2xN(src, count, layout, levels, thresholds, dst)
        case (3, 64): return codebookQuantize3x4(src, count, layout, levels, thresholds, dst)
        case (3, 128): return codebookQuantize3x8(src, count, layout, levels, thresholds, dst)
        case (3, _): return codebookQuantize3xN(src, count, layout, levels, thresholds, dst)
        case (_, 64): return codebookQuantize4x4(src, count, layout, levels, thresholds, dst)
        case (_, 128): return codebookQuantize4x8(src, count, layout, levels, thresholds, dst)
        default: return codebookQuantize4xN(src, count, layout, levels, thresholds, dst)
        }
    }
}

// One copy of the loop per code width, with the threshold loop unrolled, and per slot count
// of a group (4 and 8 slots, D or G = 64 and 128, get constant loops). Each copy is its own
// non-inlined function with a single call of `codebookQuantizeH`: with several calls in one
// function the optimizer kept one out-of-line, unspecialized copy (h tested at run time in
// the inner loop), which ran at a third of the speed.
@inline(never) func codebookQuantize1x4(_ x: UnsafePointer<Float>, _ n: Int, _ l: CodebookLayout, _ lv: UnsafePointer<Float>, _ th: UnsafePointer<Float>, _ d: UnsafeMutableRawPointer) -> KernelStatus { codebookQuantizeH(x, n, l, lv, th, d, 1, 4) }
@inline(never) func codebookQuantize1x8(_ x: UnsafePointer<Float>, _ n: Int, _ l: CodebookLayout, _ lv: UnsafePointer<Float>, _ th: UnsafePointer<Float>, _ d: UnsafeMutableRawPointer) -> KernelStatus { codebookQuantizeH(x, n, l, lv, th, d, 1, 8) }
@inline(never) func codebookQuantize1xN(_ x: UnsafePointer<Float>, _ n: Int, _ l: CodebookLayout, _ lv: UnsafePointer<Float>, _ th: UnsafePointer<Float>, _ d: UnsafeMutableRawPointer) -> KernelStatus { codebookQuantizeH(x, n, l, lv, th, d, 1, 0) }
@inline(never) func codebookQuantize2x4(_ x: UnsafePointer<Float>, _ n: Int, _ l: CodebookLayout, _ lv: UnsafePointer<Float>, _ th: UnsafePointer<Float>, _ d: UnsafeMutableRawPointer) -> KernelStatus { codebookQuantizeH(x, n, l, lv, th, d, 2, 4) }
@inline(never) func codebookQuantize2x8(_ x: UnsafePointer<Float>, _ n: Int, _ l: CodebookLayout, _ lv: UnsafePointer<Float>, _ th: UnsafePointer<Float>, _ d: UnsafeMutableRawPointer) -> KernelStatus { codebookQuantizeH(x, n, l, lv, th, d, 2, 8) }
@inline(never) func codebookQuantize2xN(_ x: UnsafePointer<Float>, _ n: Int, _ l: CodebookLayout, _ lv: UnsafePointer<Float>, _ th: UnsafePointer<Float>, _ d: UnsafeMutableRawPointer) -> KernelStatus { codebookQuantizeH(x, n, l, lv, th, d, 2, 0) }
@inline(never) func codebookQuantize3x4(_ x: UnsafePointer<Float>, _ n: Int, _ l: CodebookLayout, _ lv: UnsafePointer<Float>, _ th: UnsafePointer<Float>, _ d: UnsafeMutableRawPointer) -> KernelStatus { codebookQuantizeH(x, n, l, lv, th, d, 4, 4) }
@inline(never) func codebookQuantize3x8(_ x: UnsafePointer<Float>, _ n: Int, _ l: CodebookLayout, _ lv: UnsafePointer<Float>, _ th: UnsafePointer<Float>, _ d: UnsafeMutableRawPointer) -> KernelStatus { codebookQuantizeH(x, n, l, lv, th, d, 4, 8) }
@inline(never) func codebookQuantize3xN(_ x: UnsafePointer<Float>, _ n: Int, _ l: CodebookLayout, _ lv: UnsafePointer<Float>, _ th: UnsafePointer<Float>, _ d: UnsafeMutableRawPointer) -> KernelStatus { codebookQuantizeH(x, n, l, lv, th, d, 4, 0) }
@inline(never) func codebookQuantize4x4(_ x: UnsafePointer<Float>, _ n: Int, _ l: CodebookLayout, _ lv: UnsafePointer<Float>, _ th: UnsafePointer<Float>, _ d: UnsafeMutableRawPointer) -> KernelStatus { codebookQuantizeH(x, n, l, lv, th, d, 8, 4) }
@inline(never) func codebookQuantize4x8(_ x: UnsafePointer<Float>, _ n: Int, _ l: CodebookLayout, _ lv: UnsafePointer<Float>, _ th: UnsafePointer<Float>, _ d: UnsafeMutableRawPointer) -> KernelStatus { codebookQuantizeH(x, n, l, lv, th, d, 8, 8) }
@inline(never) func codebookQuantize4xN(_ x: UnsafePointer<Float>, _ n: Int, _ l: CodebookLayout, _ lv: UnsafePointer<Float>, _ th: UnsafePointer<Float>, _ d: UnsafeMutableRawPointer) -> KernelStatus { codebookQuantizeH(x, n, l, lv, th, d, 8, 0) }

/// Whether any of the `n` elements is NaN or ±Inf (the slow path after a non-finite sumsq).
@inline(__always)
func anyNonFinite(_ x: UnsafePointer<Float>, _ n: Int) -> Bool {
    var bad = false
    for i in 0..<n where !x[i].isFinite { bad = true }
    return bad
}

/// The kernel for h = 2^(b−1) levels per sign (a constant after inlining, so that unused
/// thresholds and magnitudes vanish); `fixedSlotsPerGroup` is G/16 as a constant, or 0.
///
/// Per slot: compares of |x| against the broadcast scaled thresholds — h − 1 of them for
/// h ≤ 4, each mask blending both the magnitude Mⱼ and the count j in (the thresholds are
/// sorted, so the last true compare is n); for h = 8 a branch-free binary search (three
/// compares, the next threshold chosen by blends) and a blend tree for Mₙ. Codes collect
/// in registers (slot s at bits [s·b₀, s·b₀ + b₀) of every lane, the 3-bit codes' top bits
/// at bit s) and are cut into the lane words once per vector.
///
/// `oneWord` and `binned` (constants) select the fast path of CodebookQuantizeOneWord.swift:
/// `oneWord` for b = 1, 2, 4 when a vector's codes fit one word per lane (slotCount · b ≤ 32;
/// each code is OR-ed in at its bit offset, no accumulator bookkeeping; not for the two
/// streams of 3-bit codes), `binned` for the 4-bit search by bins with the tables `bins`
/// (non-nil then).
@inline(__always)
func codebookQuantizeH(
    _ src: UnsafePointer<Float>, _ count: Int, _ layout: CodebookLayout,
    _ levels: UnsafePointer<Float>, _ thresholds: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer,
    _ h: Int, _ fixedSlotsPerGroup: Int, oneWord: Bool = false, bins: ThresholdBins? = nil, binned: Bool = false
) -> KernelStatus {
    // Upper halves of the tables, broadcast once.
    let m0 = F32x16(repeating: levels[h])
    let m1 = h > 1 ? F32x16(repeating: levels[h + 1]) : m0
    let m2 = h > 2 ? F32x16(repeating: levels[h + 2]) : m0, m3 = h > 2 ? F32x16(repeating: levels[h + 3]) : m0
    let m4 = h > 4 ? F32x16(repeating: levels[h + 4]) : m0, m5 = h > 4 ? F32x16(repeating: levels[h + 5]) : m0
    let m6 = h > 4 ? F32x16(repeating: levels[h + 6]) : m0, m7 = h > 4 ? F32x16(repeating: levels[h + 7]) : m0
    let t1 = h > 1 ? F32x16(repeating: thresholds[h]) : m0
    let t2 = h > 2 ? F32x16(repeating: thresholds[h + 1]) : m0, t3 = h > 2 ? F32x16(repeating: thresholds[h + 2]) : m0
    let t4 = h > 4 ? F32x16(repeating: thresholds[h + 3]) : m0, t5 = h > 4 ? F32x16(repeating: thresholds[h + 4]) : m0
    let t6 = h > 4 ? F32x16(repeating: thresholds[h + 5]) : m0, t7 = h > 4 ? F32x16(repeating: thresholds[h + 6]) : m0
    let table = layout.slots
    // The 2h levels in one register (`levelTable`, as the attention kernels hold them): where
    // the level permute is native (v3, v4) c is levels[code], one permute instead of the
    // magnitude blends and the sign (the same value: the table is symmetric,
    // levels[h − 1 − j] = −levels[h + j]).
    let permuted = qaq_permute16_native() != 0
    let table2h = levelTable(levels, 2 * h)
    // The bins' counts plus h (h + base[bin]) and their thresholds: a code is h + n, flipped
    // in all b bits for x ≤ −0 (h − 1 − n = (h + n) ^ (2h − 1)).
    let binBaseH = unsafeBitCast(unsafeBitCast(bins?.base ?? F32x16(), to: U32x16.self) &+ U32x16(repeating: UInt32(h)),
                                 to: F32x16.self)
    let binThresholds = bins?.thresholds ?? F32x16()
    let binScale = bins?.scale ?? 1
    let slotsPerGroup = fixedSlotsPerGroup > 0 ? fixedSlotsPerGroup : layout.groupSize / 16
    let groups = layout.groupCount
    let gSize = Float(layout.groupSize)
    // Stream 0 bits per code (3-bit codes: the low 2), a constant after inlining.
    let b0 = h == 8 ? 4 : (h == 1 ? 1 : 2)
    let split = h == 4
    let codesPerWord = 32 / b0
    let signBit = U32x16(repeating: 0x8000_0000)
    let absMask = U32x16(repeating: 0x7FFF_FFFF)
    let hv = U32x16(repeating: UInt32(h))
    var nextSumsq = count > 0 ? groupSumOfSquares(UnsafeRawPointer(src), 0, slotsPerGroup) : 0
    for v in 0..<count {
        let xv = src + v * layout.dim
        let x0 = UnsafeRawPointer(xv)
        let record = dst + v * layout.recordBytes
        // Codes collect in `acc`, shifted down by b₀ per slot with the new code entering at
        // the top (constant shifts, no loop-carried variable shift); every 32/b₀ slots it
        // moves to `low`, then `high`: slot s ends at bits [s·b₀, s·b₀ + b₀) of low ‖ high.
        // The 3-bit codes' top bits collect the same way in `top` (one bit per slot).
        var acc = U32x16(), low = U32x16(), high = U32x16(), top = U32x16()
        var left = codesPerWord
        var fits = true
        var s = 0
        for g in 0..<groups {
            // Pass 1 runs one group ahead (software pipelining): the sum of squares of the
            // next group — of this vector or the next — is computed before this group's
            // codes, so its reduction overlaps them instead of stalling the next group.
            let sumsq = nextSumsq
            if g + 1 < groups {
                nextSumsq = groupSumOfSquares(x0, s + slotsPerGroup, slotsPerGroup)
            } else if v + 1 < count {
                nextSumsq = groupSumOfSquares(UnsafeRawPointer(xv + layout.dim), 0, slotsPerGroup)
            }
            // NaN/±Inf make sumsq NaN or +Inf (so does overflow).
            if !(sumsq < .infinity) {
                if anyNonFinite(xv, layout.dim) { return KernelStatus(code: .nonFinite, vector: v) }
                return KernelStatus(code: .outOfFloat16Range, vector: v)
            }
            guard sumsq > 0 else {
                // All codes 0, scale 0 (one word: nothing to OR in).
                if oneWord {
                    s += slotsPerGroup
                    if !storeCodebookScale(record, layout, g, 0) { fits = false }
                    continue
                }
                for _ in 0..<slotsPerGroup {
                    acc &>>= U32x16(repeating: UInt32(b0))
                    if split { top &>>= U32x16(repeating: 1) }
                    left -= 1
                    if left == 0 {
                        if s < codesPerWord { low = acc } else { high = acc }
                        left = codesPerWord
                    }
                    s += 1
                }
                if !storeCodebookScale(record, layout, g, 0) { fits = false }
                continue
            }
            let rs = (gSize / sumsq).squareRoot()
            let r = F32x16(repeating: rs), rb = F32x16(repeating: rs * binScale)
            // Pass 2: codes and the refit sums.
            var xc0 = F32x16(), cc0 = F32x16(), xc1 = F32x16(), cc1 = F32x16()
            for _ in 0..<slotsPerGroup {
                let x = x0.loadUnaligned(fromByteOffset: 64 * s, as: F32x16.self)
                let xb = unsafeBitCast(x, to: U32x16.self)
                let ax = unsafeBitCast(xb & absMask, to: F32x16.self)
                let u = ax * r
                // code = n ^ (h − sign) (h + n for x ≥ +0, h − 1 − n for x ≤ −0) and m = Mₙ.
                // The compares are monotone in j (thresholds ascending): for h ≤ 4 each true
                // one moves n from j − 1 to j (code ^= j ^ (j − 1)) and m to Mⱼ; for h = 8 a
                // binary search finds n's bits with three compares and m follows by a tree,
                // or (`binned`) h + n = (h + base[bin]) + (t[bin] < u) at the bins' scale, flipped
                // by `qaq_binned_code` for x ≤ −0.
                let hs = hv &- (xb &>> U32x16(repeating: 31))
                var code = hs
                var m = m0
                if binned {
                    let ub = ax * rb
                    let bin = qaq_f32_to_u32_clamped(ub, 15)
                    let n0 = unsafeBitCast(qaq_permute16(binBaseH, bin), to: U32x16.self)
                    code = qaq_binned_code(n0, qaq_permute16(binThresholds, bin), ub, x, UInt32(2 * h - 1))
                } else if permuted && (h == 2 || h == 4) {
                    // The level comes from the code by the permute: count the thresholds below u.
                    code = qaq_counted_code(u, t1, t2, t3, Int32(h - 1), x, UInt32(h), UInt32(2 * h - 1))
                } else if h == 2 {
                    let a1 = t1 .< u
                    code = code.replacing(with: code ^ U32x16(repeating: 1), where: a1)
                    m = m.replacing(with: m1, where: a1)
                } else if h == 4 {
                    let a1 = t1 .< u, a2 = t2 .< u, a3 = t3 .< u
                    code = code.replacing(with: code ^ U32x16(repeating: 1), where: a1)
                    code = code.replacing(with: code ^ U32x16(repeating: 3), where: a2)
                    code = code.replacing(with: code ^ U32x16(repeating: 1), where: a3)
                    m = m.replacing(with: m1, where: a1).replacing(with: m2, where: a2).replacing(with: m3, where: a3)
                } else if h == 8 {
                    let bit2 = t4 .< u                                           // n ≥ 4
                    let bit1 = t2.replacing(with: t6, where: bit2) .< u             // n ≥ 4·bit2 + 2
                    let tLow = t1.replacing(with: t5, where: bit2), tHigh = t3.replacing(with: t7, where: bit2)
                    let bit0 = tLow.replacing(with: tHigh, where: bit1) .< u        // n ≥ 4·bit2 + 2·bit1 + 1
                    code = code.replacing(with: code ^ U32x16(repeating: 4), where: bit2)
                    code = code.replacing(with: code ^ U32x16(repeating: 2), where: bit1)
                    code = code.replacing(with: code ^ U32x16(repeating: 1), where: bit0)
                    if !permuted {
                        let q01 = m0.replacing(with: m1, where: bit0), q23 = m2.replacing(with: m3, where: bit0)
                        let q45 = m4.replacing(with: m5, where: bit0), q67 = m6.replacing(with: m7, where: bit0)
                        m = q01.replacing(with: q23, where: bit1).replacing(with: q45.replacing(with: q67, where: bit1), where: bit2)
                    }
                }
                let c = permuted && h > 1 ? qaq_permute16(table2h, code)
                    : unsafeBitCast(unsafeBitCast(m, to: U32x16.self) | (xb & signBit), to: F32x16.self)
                // Even slots into (xc0, cc0), odd ones into (xc1, cc1): add, then swap.
                xc0 += x * c
                cc0 += c * c
                swap(&xc0, &xc1)
                swap(&cc0, &cc1)
                // Collect the codes (3-bit: low 2 bits in stream 0, the top bit in stream 1).
                if oneWord {
                    low |= code &<< U32x16(repeating: UInt32(b0 * s))
                    s += 1
                    continue
                }
                // (`code << (32 − b₀)` drops a 3-bit code's top bit: it goes to `top`.)
                acc = (acc &>> U32x16(repeating: UInt32(b0))) | (code &<< U32x16(repeating: UInt32(32 - b0)))
                if split {
                    // The top bit of a 3-bit code (h = 4) is set exactly when x's sign bit is
                    // clear (codes h + n ≥ 4, h − 1 − n ≤ 3): taken from x, one op fewer.
                    top = (top &>> U32x16(repeating: 1)) | (~xb & signBit)
                }
                left -= 1
                if left == 0 {
                    if s < codesPerWord { low = acc } else { high = acc }
                    left = codesPerWord
                }
                s += 1
            }
            // After an odd number of slots the even sums sit in (xc1, cc1); addition order
            // (even + odd) is kept either way.
            let odd = slotsPerGroup & 1 == 1
            let (xc, cc) = odd ? hsum2(xc1 + xc0, cc1 + cc0) : hsum2(xc0 + xc1, cc0 + cc1)
            let q = xc / cc
            if !storeCodebookScale(record, layout, g, cc > 0 ? q : 0) { fits = false }
        }
        // Align the partly filled accumulators, then cut the codes into the lane words.
        let rest = codesPerWord - left
        if !oneWord && rest > 0 {
            let aligned = acc &>> U32x16(repeating: UInt32(32 - rest * b0))
            if s <= codesPerWord { low = aligned } else { high = aligned }
        }
        if split { top &>>= U32x16(repeating: UInt32(32 - layout.slotCount)) }
        storeStream(record, table.stream0, layout.slotCount, b0, low, high)
        if split { storeStream(record, table.stream1, layout.slotCount, 1, top, U32x16()) }
        if !fits { return KernelStatus(code: .outOfFloat16Range, vector: v) }
    }
    return .ok
}

/// Σ x² over the `n` slots from slot `s`: even slots and odd slots in two accumulators,
/// added, then folded by halves.
@inline(__always)
func groupSumOfSquares(_ x: UnsafeRawPointer, _ s: Int, _ n: Int) -> Float {
    var ss0 = F32x16(), ss1 = F32x16()
    var k = 0
    while k + 2 <= n {
        let a = x.loadUnaligned(fromByteOffset: 64 * (s + k), as: F32x16.self)
        let b = x.loadUnaligned(fromByteOffset: 64 * (s + k + 1), as: F32x16.self)
        ss0 += a * a
        ss1 += b * b
        k += 2
    }
    if k < n {
        let a = x.loadUnaligned(fromByteOffset: 64 * (s + k), as: F32x16.self)
        ss0 += a * a
    }
    return foldSum(ss0 + ss1)
}

/// `hsum` with full-width shuffles (the same sums in the same order: lanes l and l + 8,
/// then l + 4, l + 2, l + 1): four permutes and four adds.
@inline(__always)
func foldSum(_ v: F32x16) -> Float {
    var u = unsafeBitCast(v, to: U64x8.self)
    let a = v + unsafeBitCast(U64x8(u[4], u[5], u[6], u[7], u[0], u[1], u[2], u[3]), to: F32x16.self)
    u = unsafeBitCast(a, to: U64x8.self)
    let b = a + unsafeBitCast(U64x8(u[2], u[3], u[0], u[1], u[6], u[7], u[4], u[5]), to: F32x16.self)
    u = unsafeBitCast(b, to: U64x8.self)
    // (Opaque: with only two lanes read LLVM narrowed the folds into 256- and 128-bit
    // pieces, twice the instructions.)
    let c = qaq_opaque_f32x16(b + unsafeBitCast(U64x8(u[1], u[0], u[3], u[2], u[5], u[4], u[7], u[6]), to: F32x16.self))
    return c[0] + c[1]
}

/// Stores one code stream whose slot s sits at bits [s·b, s·b + b) of each lane of
/// `low` (bits 0…31) and `high` (bits 32…63): every lane word takes its slots' bit range,
/// which never straddles bit 32 (words are aligned to their width).
@inline(__always)
func storeStream(_ record: UnsafeMutableRawPointer, _ stream: SIMD16<UInt32>, _ slotCount: Int, _ b: Int,
                 _ low: U32x16, _ high: U32x16) {
    var s = 0
    while s < slotCount {
        let e = stream[s]
        let w = SlotTable.width(e)
        let shift = s &* b
        var bits = shift < 32 ? low &>> U32x16(repeating: UInt32(shift)) : high &>> U32x16(repeating: UInt32(shift &- 32))
        if w < 32 { bits &= U32x16(repeating: (1 << UInt32(w)) &- 1) }
        storeLaneWord(record, e, bits)
        s &+= w / b
    }
}

/// The horizontal sums of two vectors, each folded exactly like `hsum` (lanes l and l + 8,
/// then l + 4, l + 2, l + 1), sharing the shuffles.
@inline(__always)
func hsum2(_ a: F32x16, _ b: F32x16) -> (Float, Float) {
    // [a₀…₇ + a₈…₁₅ | b₀…₇ + b₈…₁₅]
    let v = pick(a, b, (0, 1, 2, 3), (0, 1, 2, 3)) + pick(a, b, (4, 5, 6, 7), (4, 5, 6, 7))
    var u = unsafeBitCast(v, to: U64x8.self)
    let w = v + unsafeBitCast(U64x8(u[2], u[3], u[0], u[1], u[6], u[7], u[4], u[5]), to: F32x16.self)
    u = unsafeBitCast(w, to: U64x8.self)
    let x = qaq_opaque_f32x16(w + unsafeBitCast(U64x8(u[1], u[0], u[3], u[2], u[5], u[4], u[7], u[6]), to: F32x16.self))
    return (x[0] + x[1], x[8] + x[9])
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
            // (A group whose sumsq overflows fails before any of its codes are written; the
            // kernel may have written earlier groups, so the failing record's bytes are
            // unspecified either way.)
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
        let sumsq = laneTreeSum(x, start, count, times: x)
        let r = (Float(count) / sumsq).squareRoot()
        // Element i's code and level c (0 and 0 when sumsq = 0).
        func code(_ i: Int) -> (code: UInt32, c: Float) {
            guard sumsq > 0 else { return (0, 0) }
            let u = x[i].magnitude * r
            var n = 0
            for j in 1..<h where thresholds[h - 1 + j] < u { n += 1 }
            let k = x[i].sign == .minus ? h - 1 - n : h + n
            return (UInt32(k), levels[k])
        }
        var xcEven = F32x16(), xcOdd = F32x16(), ccEven = F32x16(), ccOdd = F32x16()
        for i in start..<(start + count) {
            let (k, c) = code(i)
            emit(i, k)
            let j = i - start
            if j & 16 == 0 {
                xcEven[j & 15] += x[i] * c
                ccEven[j & 15] += c * c
            } else {
                xcOdd[j & 15] += x[i] * c
                ccOdd[j & 15] += c * c
            }
        }
        let xc = hsum(xcEven + xcOdd), cc = hsum(ccEven + ccOdd)
        return cc > 0 ? xc / cc : 0
    }

    /// Σ x[i]·y[i] over `count` elements from `start` (a multiple of 16), summed as the
    /// kernels do: one partial sum per index (i − start) mod 32, in element order (even and
    /// odd slots), the halves added lane-wise, then folded by halves (`hsum`).
    static func laneTreeSum(_ x: UnsafePointer<Float>, _ start: Int, _ count: Int, times y: UnsafePointer<Float>) -> Float {
        var even = F32x16(), odd = F32x16()
        for i in start..<(start + count) {
            let j = i - start
            if j & 16 == 0 { even[j & 15] += x[i] * y[i] } else { odd[j & 15] += x[i] * y[i] }
        }
        return hsum(even + odd)
    }

    /// The code of element `i` of a code-map record, bit by bit from the lane-slice definition.
    public static func codebookCode(_ record: UnsafeRawPointer, _ layout: CodebookLayout, element i: Int) -> UInt32 {
        code(record, slots: layout.slots, element: i)
    }

    /// Writes the code of element `i` bit by bit (the bits must be zero before).
    static func setCodebookCode(_ record: UnsafeMutableRawPointer, _ layout: CodebookLayout, element i: Int, code: UInt32) {
        setCode(record, slots: layout.slots, element: i, code: code)
    }
}

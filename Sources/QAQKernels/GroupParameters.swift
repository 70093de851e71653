import QAQLayout
import _QAQSIMDShims

/// The midpoint quantizer's fp16 parameters for one group whose (non-outlier) values lie
/// in `[mn, mx]`, at `bits` bits.
///
/// Contract (the format's definition; the SIMD kernels and the references share it):
/// - `lo` is `mn` rounded *down* to fp16, so no value lies below it;
/// - `step₈` is `(mx − lo)/256` rounded *up* to fp16, raised by fp16 ulps until
///   `lo + 256·step₈ ≥ mx` in fp32, so no value lies above `lo + 2^b·step`;
/// - `step = step₈ · 2^(8−b)` (exact in fp16). Defining every width from the 8-bit step
///   makes the nesting property exact: lowering b by k (code >> k, step · 2^k) yields the
///   same bytes as quantizing the original at b − k bits.
/// - A zero range gives `step = 0` and every value reconstructs as `lo` (exact when the
///   value is representable in fp16); an empty group (all outliers) gives `lo = step = 0`.
/// Returns `nil` if `lo` or `step` does not fit fp16.
@inline(__always)
func groupParameters(min mn: Float, max mx: Float, bits: Int) -> (lo: Float16, step: Float16)? {
    if mn > mx { return (0, 0) }
    guard mn >= -65504, mx <= 65504 else { return nil }
    // Written with selects instead of branches: which way fp16 rounding went is random,
    // and a mispredicted branch per group costs more than the whole group's codes.
    let nearest = Float16(mn)
    let b = nearest.bitPattern
    // nextDown on fp16 bits: +0 → −min subnormal, negative → magnitude + 1, else − 1.
    let down: UInt16 = b == 0 ? 0x8001 : ((b & 0x8000) != 0 ? b &+ 1 : b &- 1)
    let lo = Float16(bitPattern: Float(nearest) > mn ? down : b)
    let lof = Float(lo)
    let q = (mx - lof) * (1.0 / 256.0)
    var s8 = Float16(q).bitPattern                       // q ≥ 0: nextUp is + 1
    s8 = Float(Float16(bitPattern: s8)) < q ? s8 &+ 1 : s8
    s8 = lof + 256 * Float(Float16(bitPattern: s8)) < mx ? s8 &+ 1 : s8
    while lof + 256 * Float(Float16(bitPattern: s8)) < mx { s8 &+= 1 }   // not seen taken
    let step = Float16(Float(Float16(bitPattern: s8)) * Float(1 << (8 - bits)))
    guard step.isFinite else { return nil }
    return (lo, step)
}

/// `1/step` in fp32, or 0 for a zero step (every code is then 0).
@inline(__always)
func reciprocal(_ step: Float16) -> Float {
    let f = Float(step)
    let inv = 1 / f
    return f > 0 ? inv : 0
}

/// Picks `k` outliers of a vector greedily: at each step the remaining maximum or the
/// remaining minimum, whichever lies farther from the vector's mean (ties: the maximum).
/// So both tails are served, in proportion to how far they reach. Returns the selection
/// as a bit mask: lane `s` holds the 16 bits of slot `s`.
@inline(__always)
func selectOutliers(_ src: UnsafeRawPointer, _ isF16: Bool, dim: Int, count k: Int) -> SIMD16<UInt32> {
    var mask = SIMD16<UInt32>()
    if k == 0 { return mask }
    var sum: Float = 0
    for i in 0..<dim { sum += loadElement(src, isF16, i) }
    let mean = sum / Float(dim)
    for _ in 0..<k {
        var maxI = -1, minI = -1
        var maxV = -Float.infinity, minV = Float.infinity
        for i in 0..<dim where (mask[i >> 4] >> UInt32(i & 15)) & 1 == 0 {
            let x = loadElement(src, isF16, i)
            if x > maxV || maxI < 0 { maxV = x; maxI = i }
            if x < minV || minI < 0 { minV = x; minI = i }
        }
        let pick = (maxV - mean) >= (mean - minV) ? maxI : minI
        mask[pick >> 4] |= 1 << UInt32(pick & 15)
    }
    return mask
}

/// Whether a selected outlier's magnitude exceeds the fp16 range (it could not be stored).
@inline(__always)
func outliersBeyondFloat16(_ src: UnsafeRawPointer, _ isF16: Bool, _ mask: SIMD16<UInt32>, _ slotCount: Int) -> Bool {
    var beyond = false
    for s in 0..<slotCount {
        var m = mask[s]
        while m != 0 {
            let l = m.trailingZeroBitCount
            m &= m - 1
            if loadElement(src, isF16, 16 * s + l).magnitude > 65504 { beyond = true }
        }
    }
    return beyond
}

/// Writes the selected outliers (ascending index) of a vector into its record.
@inline(__always)
func storeOutliers(_ src: UnsafeRawPointer, _ isF16: Bool, _ mask: SIMD16<UInt32>, _ layout: PackedLayout, _ record: UnsafeMutableRawPointer) {
    var j = 0
    for s in 0..<layout.slotCount {
        var m = mask[s]
        while m != 0 {
            let l = m.trailingZeroBitCount
            m &= m - 1
            let i = 16 * s + l
            record.storeBytes(of: UInt8(i), toByteOffset: layout.outlierIndexOffset + j, as: UInt8.self)
            record.storeBytes(of: Float16(loadElement(src, isF16, i)), toByteOffset: layout.outlierValueOffset + 2 * j, as: Float16.self)
            j += 1
        }
    }
}

// MARK: - The same parameters for up to 16 groups at once

/// fp16 bits (in the low 16 bits of each lane) → fp32, exact, without conversions:
/// the magnitude shifted into an fp32 exponent/mantissa, rescaled by 2^112.
@inline(__always)
func decodeHalf(_ h: U32x16) -> F32x16 {
    let mag = unsafeBitCast((h & U32x16(repeating: 0x7FFF)) &<< 13, to: F32x16.self) * F32x16(repeating: 0x1p112)
    return unsafeBitCast(unsafeBitCast(mag, to: U32x16.self) | ((h & U32x16(repeating: 0x8000)) &<< 16), to: F32x16.self)
}

/// Magnitude bits of the fp16 grid point at or below |x| (|x| ≤ 65504; exact for values
/// on the fp16 grid). The product rounds to fp32's subnormal grid for tiny |x|, which can
/// land on the grid point just above; callers compare against the decoded value.
@inline(__always)
func truncatedHalfMagnitude(_ a: F32x16) -> U32x16 {
    unsafeBitCast(a * F32x16(repeating: 0x1p-112), to: U32x16.self) &>> 13
}

/// 1 where `a < b`, else 0 (IEEE compare via the sign of a − b; a − b is never −0 here).
@inline(__always)
func lessThan(_ a: F32x16, _ b: F32x16) -> U32x16 {
    unsafeBitCast(a - b, to: U32x16.self) &>> 31
}

/// ``groupParameters(min:max:bits:)`` for 16 lanes at once: bit-identical results for
/// every lane whose range is non-empty and within ±65504, computed with integer and
/// float arithmetic only (no fp16 conversions, no branches, no masks) — or, where F16C is
/// native (x86-64-v3 and v4), with its conversions (`groupParameters16F16C`).
///
/// Returns fp16 bits of lo and step, lo and 1/step in fp32 (1/0 → 0), and `bad`: lanes
/// whose step overflowed fp16 or did not cover the range after one correction (they must
/// take the scalar path).
@inline(__always)
func groupParameters16(min mn: F32x16, max mx: F32x16, bits: Int)
    -> (loBits: U32x16, stepBits: U32x16, lo: F32x16, inv: F32x16, bad: U32x16) {
    if qaq_f16c() != 0 { return groupParameters16F16C(min: mn, max: mx, bits: bits) }
    let one = U32x16(repeating: 1)
    // lo: the largest fp16 value ≤ mn.
    let neg = unsafeBitCast(mn, to: U32x16.self) &>> 31
    let a = unsafeBitCast(unsafeBitCast(mn, to: U32x16.self) & U32x16(repeating: 0x7FFF_FFFF), to: F32x16.self)
    let hm = truncatedHalfMagnitude(a)
    let dm = decodeHalf(hm)
    // Negative: round the magnitude up; positive: down (when the product rounded up).
    let loMag = hm &+ neg & lessThan(dm, a) &- (one &- neg) & lessThan(a, dm)
    let loBits = (neg &<< 15) | loMag
    let lo = decodeHalf(loBits)
    // step₈: the smallest fp16 value ≥ (mx − lo)/256, raised once more if lo + 256·step₈ < mx.
    let q = (mx - lo) * F32x16(repeating: 1.0 / 256.0)
    let sq = truncatedHalfMagnitude(q)
    var s8 = sq &+ lessThan(decodeHalf(sq), q)
    s8 &+= lessThan(lo + F32x16(repeating: 256) * decodeHalf(s8), mx)
    let stillShort = lessThan(lo + F32x16(repeating: 256) * decodeHalf(s8), mx)
    let step = decodeHalf(s8) * F32x16(repeating: Float(1 << (8 - bits)))
    let stepBits = truncatedHalfMagnitude(step)
    let overflow = (stepBits &+ U32x16(repeating: 0x8400)) &>> 16      // ≥ 0x7C00
    let inv = F32x16(repeating: 1) / step
    // 1/0 = inf → 0: keep inv only where step > 0.
    let keep = U32x16(repeating: 0) &- lessThan(F32x16(), step)
    let invSafe = unsafeBitCast(unsafeBitCast(inv, to: U32x16.self) & keep, to: F32x16.self)
    return (loBits, stepBits, lo, invSafe, overflow | stillShort)
}

/// ``groupParameters16(min:max:bits:)`` with F16C conversions (x86-64-v3 and up): fp16
/// rounding down (lo) and up (step₈) are one `vcvtps2ph` each, with the rounding in its
/// immediate; checked equal to the scalar definition for every fp32 value in ±65504.
@inline(__always)
func groupParameters16F16C(min mn: F32x16, max mx: F32x16, bits: Int)
    -> (loBits: U32x16, stepBits: U32x16, lo: F32x16, inv: F32x16, bad: U32x16) {
    let loBits = qaq_f16_bits_down(mn)
    let lo = qaq_f16_decode(loBits)
    let q = (mx - lo) * F32x16(repeating: 1.0 / 256.0)
    var s8 = qaq_f16_bits_up(q)
    s8 &+= lessThan(lo + F32x16(repeating: 256) * qaq_f16_decode(s8), mx)
    let s8f = qaq_f16_decode(s8)
    let stillShort = lessThan(lo + F32x16(repeating: 256) * s8f, mx)
    let step = s8f * F32x16(repeating: Float(1 << (8 - bits)))
    let stepBits = qaq_f16_bits_nearest(step)
    let overflow = (stepBits &+ U32x16(repeating: 0x8400)) &>> 16      // ≥ 0x7C00
    let inv = F32x16(repeating: 1) / step
    let keep = U32x16(repeating: 0) &- lessThan(F32x16(), step)
    let invSafe = unsafeBitCast(unsafeBitCast(inv, to: U32x16.self) & keep, to: F32x16.self)
    return (loBits, stepBits, lo, invSafe, overflow | stillShort)
}

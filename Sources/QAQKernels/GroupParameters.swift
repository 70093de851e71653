import QAQLayout

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
    var lo = Float16(mn)
    if Float(lo) > mn { lo = lo.nextDown }
    let lof = Float(lo)
    let r = mx - lof
    if r == 0 { return (lo, 0) }
    var s8 = Float16(r * (1.0 / 256.0))
    if Float(s8) < r * (1.0 / 256.0) { s8 = s8.nextUp }
    while lof + 256 * Float(s8) < mx { s8 = s8.nextUp }
    let step = s8 * Float16(Float(1 << (8 - bits)))
    guard step.isFinite else { return nil }
    return (lo, step)
}

/// `1/step` in fp32, or 0 for a zero step (every code is then 0).
@inline(__always)
func reciprocal(_ step: Float16) -> Float {
    step == 0 ? 0 : 1 / Float(step)
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

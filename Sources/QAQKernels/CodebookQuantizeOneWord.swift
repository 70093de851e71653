import QAQLayout
import _QAQSIMDShims

// The code-map quantizer's fast path for 1-, 2- and 4-bit codes in the common shapes (D = 64
// and 128 with one scale per vector, or groups of 64 or 128): the codes of a whole vector fit
// one 32-bit word per lane (slot count × b ≤ 32), so each slot's code is OR-ed in at its own
// bit offset, with no accumulator bookkeeping. It is `codebookQuantizeH` (CodebookQuantize.swift,
// same contract, bit-exact) with the constants `oneWord` and `binned`; this file holds its
// entry points and the bins. (The 3-bit codes keep the accumulator form: the one-word form
// measured 2–3 % slower for their two streams.) The bins are built per call (a few dozen
// scalar steps), so they are used only from ``codebookBinnedMinimumVectors`` vectors on: a
// single token's append takes the one-word search.
//
// ## The 4-bit code search by bins (v4 only)
// Where a 16-lane permute is one instruction, the h − 1 = 7 positive thresholds are found by
// a table lookup instead of a three-step binary search: the half-line u ≥ 0 is cut into 16
// bins of width w = 2^e (bin j = [j·w, (j + 1)·w) for j < 15, bin 15 = [15·w, ∞)), with e
// chosen so that no bin holds more than one threshold. For u in bin j, every threshold of an
// earlier bin is below u and every threshold of a later bin above it, so
// n = base[j] + (t[j] < u), where base[j] counts the thresholds of the earlier bins and t[j]
// is the threshold in bin j (+∞ if none): two permutes, one compare, one masked add.
// Exactness: the bin index is ⌊u·2^−e⌋ clamped to 15, computed as ⌊|x|·(r·2^−e)⌋, and the
// compare is t[j]·2^−e < |x|·(r·2^−e). Scaling by a power of two is exact in fp32 away from
// overflow and the subnormal range, so where u is normal this is exactly Pⱼ < u; where u is
// subnormal or zero both sides find n = 0, because the bins are only used when every
// threshold is ≥ 2^−20 (see `ThresholdBins`).

/// Vectors per call from which the 4-bit quantizer builds and uses the bins: below it their
/// set-up outweighed the saving (one vector: 100 ns without bins, 230 ns with them as first
/// built, 4 vectors 250 vs 290 ns; 32 vectors 1.67 vs 1.59 µs; v4, D = 128).
let codebookBinnedMinimumVectors = 16

/// The bin tables of the 4-bit code search (see the file's comment), or `nil` when the
/// thresholds do not allow it (two in one bin for every tried width, a threshold or a gap
/// below 2^−20, not finite or not increasing).
struct ThresholdBins {
    /// 2^−e: multiplies the reciprocal RMS r.
    var scale: Float
    /// base[j] as UInt32 bit patterns in fp32 lanes (for the float permute).
    var base: F32x16
    /// t[j]·2^−e, +∞ in bins without a threshold.
    var thresholds: F32x16

    /// From the positive thresholds P₁ < … < P_{count} (`positive[0..<count]`), count ≤ 15.
    init?(_ positive: UnsafePointer<Float>, count: Int) {
        guard count > 0, count <= 15 else { return nil }
        for j in 0..<count {
            guard positive[j].isFinite, positive[j] >= 0x1p-20, j == 0 || positive[j - 1] < positive[j] else { return nil }
        }
        // The widest power of two not above the smallest gap (from 0 too) keeps every two
        // thresholds apart below bin 15; wider ones (up to 2^8) are tried while bin 15 — the
        // rest of the half-line — would hold more than one.
        var gap = positive[0]
        for j in 1..<count { gap = min(gap, positive[j] - positive[j - 1]) }
        guard gap >= 0x1p-20 else { return nil }
        for e in min(gap.exponent, 8)...8 {
            let s = Float(sign: .plus, exponent: -e, significand: 1)
            var t = F32x16(repeating: .infinity)
            var previous = -1
            var separated = true
            for j in 0..<count {
                let scaled = positive[j] * s
                let bin = scaled >= 15 ? 15 : Int(scaled)          // ⌊·⌋ for scaled ≥ 0
                if bin == previous { separated = false; break }
                previous = bin
                t[bin] = scaled
            }
            guard separated else { continue }
            // base[b]: the thresholds of the bins before b (each bin holds at most one).
            var base = SIMD16<UInt32>()
            var n: UInt32 = 0
            for b in 0..<16 {
                base[b] = n
                if t[b] != .infinity { n += 1 }
            }
            self.scale = s
            self.base = unsafeBitCast(base, to: F32x16.self)
            self.thresholds = t
            return
        }
        return nil
    }
}

// One non-inlined copy per code width and slots per group, each with a single call (see the
// note above `codebookQuantize1x4`: a shared call site leaves one unspecialized copy).
@inline(never) func codebookQuantizeWord1x4(_ x: UnsafePointer<Float>, _ n: Int, _ l: CodebookLayout, _ lv: UnsafePointer<Float>, _ th: UnsafePointer<Float>, _ d: UnsafeMutableRawPointer) -> KernelStatus { codebookQuantizeH(x, n, l, lv, th, d, 1, 4, oneWord: true) }
@inline(never) func codebookQuantizeWord1x8(_ x: UnsafePointer<Float>, _ n: Int, _ l: CodebookLayout, _ lv: UnsafePointer<Float>, _ th: UnsafePointer<Float>, _ d: UnsafeMutableRawPointer) -> KernelStatus { codebookQuantizeH(x, n, l, lv, th, d, 1, 8, oneWord: true) }
@inline(never) func codebookQuantizeWord2x4(_ x: UnsafePointer<Float>, _ n: Int, _ l: CodebookLayout, _ lv: UnsafePointer<Float>, _ th: UnsafePointer<Float>, _ d: UnsafeMutableRawPointer) -> KernelStatus { codebookQuantizeH(x, n, l, lv, th, d, 2, 4, oneWord: true) }
@inline(never) func codebookQuantizeWord2x8(_ x: UnsafePointer<Float>, _ n: Int, _ l: CodebookLayout, _ lv: UnsafePointer<Float>, _ th: UnsafePointer<Float>, _ d: UnsafeMutableRawPointer) -> KernelStatus { codebookQuantizeH(x, n, l, lv, th, d, 2, 8, oneWord: true) }
@inline(never) func codebookQuantizeWord4x4(_ x: UnsafePointer<Float>, _ n: Int, _ l: CodebookLayout, _ lv: UnsafePointer<Float>, _ th: UnsafePointer<Float>, _ d: UnsafeMutableRawPointer) -> KernelStatus { codebookQuantizeH(x, n, l, lv, th, d, 8, 4, oneWord: true) }
@inline(never) func codebookQuantizeWord4x8(_ x: UnsafePointer<Float>, _ n: Int, _ l: CodebookLayout, _ lv: UnsafePointer<Float>, _ th: UnsafePointer<Float>, _ d: UnsafeMutableRawPointer) -> KernelStatus { codebookQuantizeH(x, n, l, lv, th, d, 8, 8, oneWord: true) }
@inline(never) func codebookQuantizeBins4x4(_ x: UnsafePointer<Float>, _ n: Int, _ l: CodebookLayout, _ lv: UnsafePointer<Float>, _ th: UnsafePointer<Float>, _ d: UnsafeMutableRawPointer, _ b: ThresholdBins) -> KernelStatus { codebookQuantizeH(x, n, l, lv, th, d, 8, 4, oneWord: true, bins: b, binned: true) }
@inline(never) func codebookQuantizeBins4x8(_ x: UnsafePointer<Float>, _ n: Int, _ l: CodebookLayout, _ lv: UnsafePointer<Float>, _ th: UnsafePointer<Float>, _ d: UnsafeMutableRawPointer, _ b: ThresholdBins) -> KernelStatus { codebookQuantizeH(x, n, l, lv, th, d, 8, 8, oneWord: true, bins: b, binned: true) }

import Foundation

/// Which closed form turns a tolerated error standard deviation into a bit width.
///
/// Both start from the error of a uniform (midpoint) quantizer: with `b` bits over a range `R` the step is
/// `Δ = R / 2^b` and the error is uniform on `[−Δ/2, Δ/2]`, so its standard deviation is `Δ / √12 = R / (2^b · 2√3)`.
public enum BitsFormula: Sendable, Hashable, CaseIterable {
    /// The paper's rule (arXiv 2403.04643, and DESIGN §6): `b = ⌈log2(R / (2√3 · σ))⌉` — the fewest bits whose
    /// quantization error std `R / (2^b · 2√3)` does not exceed `σ`.
    case paper
    /// The variant found in the authors' released code: `b = ⌈log2(R / (2 · 2√3 · σ) + 1)⌉`. It halves the
    /// ratio and adds one level before the logarithm, so it never asks for more bits than `.paper`, and usually
    /// one fewer. Offered as an option, documented as the code's behaviour, not the paper's.
    case authorsCode
}

/// The QAQ formulas (arXiv 2403.04643, DESIGN §6) as pure, allocation-free functions.
///
/// Notation, per (layer, KV head): query `q` (D elements), keys `K` and values `V` of `T` tokens,
/// attention `S = softmax(q·Kᵀ/√D)`, output `X = S·V`.
public enum QAQBits {
    /// The bit widths the packed format supports (DESIGN §3). Widths 5, 6 and 7 do not exist; a formula that
    /// asks for one of them gets 8.
    public static let supportedBits: [Int] = [1, 2, 3, 4, 8]

    /// Whether `bits` is one of `supportedBits`.
    @inlinable
    public static func isSupported(_ bits: Int) -> Bool {
        switch bits {
        case 1, 2, 3, 4, 8: return true
        default: return false
        }
    }

    /// The smallest supported width `≥ bits` (5, 6, 7 → 8; values below 1 → 1), or `nil` above 8.
    @inlinable
    public static func snapUp(_ bits: Int) -> Int? {
        switch bits {
        case ...1: return 1
        case 2, 3, 4: return bits
        case 5...8: return 8
        default: return nil
        }
    }

    // MARK: Value rule

    /// Tolerated value-error standard deviation of token `t` (the attention-aware value rule):
    ///
    ///     σ_V,t = σ_X / (√T · Ŝ_t)
    ///
    /// where `σ_X` is the tolerated std of the attention output `X`, `T` the context length and `Ŝ_t` the
    /// predicted attention of token `t` (the max of its last `n` attention probabilities, and with GQA the max
    /// over the q heads sharing the KV head; see `AttentionHistory`).
    ///
    /// Why: with independent value errors of std `σ_t` the output error has variance `Σ_t S_t² σ_t²`
    /// (`outputVariance`); giving every token `σ_t = σ_X / (√T · S_t)` makes each of the `T` terms `σ_X² / T`,
    /// so the sum is `σ_X²`. Using `Ŝ_t ≥ S_t` keeps it below.
    ///
    /// - Returns: `+∞` (no constraint: the token can take the fewest bits) when `Ŝ ≤ 0` or `T ≤ 0`.
    ///   A NaN `Ŝ` or `σ_X` yields NaN, which `bits` maps to the most bits.
    @inlinable
    public static func valueSigma(sigmaX: Double, contextLength T: Int, maxAttention sHat: Double) -> Double {
        if sHat <= 0 || T <= 0 { return .infinity }
        return sigmaX / (Double(T).squareRoot() * sHat)
    }

    // MARK: Key rule

    /// Tolerated key-error standard deviation (per key element):
    ///
    ///     σ_K = sqrt( ln( T³/(T−1) · σ_S² + 1 ) / ‖q̃‖² ),   q̃ = q / √D
    ///
    /// `queryNormSquared` is `‖q/√D‖²` — the caller scales `q` by `1/√D` (the paper drops that factor; we keep
    /// it, DESIGN §6) — typically a high quantile of observed values (`OnlineQuantile`).
    ///
    /// Where it comes from: key noise `ε_t ~ N(0, σ_K² I)` shifts score `t` by `δ_t = q̃·ε_t ~ N(0, ‖q̃‖² σ_K²)`,
    /// independently per token, i.e. multiplies the unnormalized weight by the log-normal `e^{δ_t}`. Softmax
    /// ignores a common factor, so take the mean-one weights `w_t = e^{δ_t − v/2}`, `v = ‖q̃‖² σ_K²`, with
    /// `Var w = e^v − 1`. For uniform attention (`S_t = 1/T`), to first order in `w − 1`,
    /// `ΔS_t = ((w_t − 1) − mean_j(w_j − 1)) / T`, whose variance is `(T−1)/T³ · (e^v − 1)`. Setting that equal
    /// to `σ_S²` and solving for `σ_K` gives the formula. It is therefore the first-order std of each attention
    /// probability under *uniform* attention. For general attention the same expansion gives
    /// `Var ΔS_t = (e^v − 1) · S_t² (1 − 2S_t + Σ_j S_j²)`.
    ///
    /// Measured (QAQBitsTests, D = 64, keys perturbed element-wise, v ≤ 0.5): uniform attention matches `σ_S`
    /// within 15 % for T ≥ 8 (worst 0.90 at T = 8); T = 2, 4 at v = 0.5 measure 0.73 / 0.82 of `σ_S`
    /// (conservative). Under non-uniform attention `σ_S` is *not* an upper bound (random keys with
    /// `‖q̃‖² = 1`: 1.44× `σ_S`); the general form holds within 15 % while attention is spread, but a dominant
    /// token (S_max ≥ 0.85) makes the measured std exceed even the general first-order form (1.23× at 0.85,
    /// 1.48× at 0.95, v = 0.5).
    ///
    /// - Returns: `+∞` when `T ≤ 1` (one token always gets probability 1) or `‖q̃‖² ≤ 0`.
    @inlinable
    public static func keySigma(sigmaS: Double, contextLength T: Int, queryNormSquared q2: Double) -> Double {
        if T <= 1 || q2 <= 0 { return .infinity }
        let t = Double(T)
        let x = t * t * t / (t - 1) * sigmaS * sigmaS
        return (Foundation.log1p(x) / q2).squareRoot()
    }

    /// The inverse of `keySigma`: the first-order std of each attention probability under uniform attention,
    /// `σ_S = sqrt( (T−1)/T³ · (e^{‖q̃‖² σ_K²} − 1) )`. Returns 0 for `T ≤ 1`.
    @inlinable
    public static func attentionSigma(keySigma sigmaK: Double, contextLength T: Int,
                                      queryNormSquared q2: Double) -> Double {
        if T <= 1 { return 0 }
        let t = Double(T)
        return ((t - 1) / (t * t * t) * Foundation.expm1(q2 * sigmaK * sigmaK)).squareRoot()
    }

    // MARK: Bits

    /// Bits for a vector (or group) with value range `range = hi − lo` whose quantization error std may be at
    /// most `sigma`:
    ///
    /// - `.paper`:       `b = ⌈log2(range / (2√3 · σ))⌉`
    /// - `.authorsCode`: `b = ⌈log2(range / (2 · 2√3 · σ) + 1)⌉`
    ///
    /// then clamped to `[min, max]` and snapped **up** to a supported width (5, 6, 7 → 8), so the result never
    /// has fewer bits than the formula asks for unless `max` caps it. Computed without `log2`: the result is the
    /// smallest supported width `w` in `[min, max]` with `2^w ≥ range / (2√3σ)` (paper) or
    /// `2^w ≥ range / (2·2√3σ) + 1` (authors' code), else `max` — the same number, free of rounding at powers of
    /// two.
    ///
    /// Special cases: `range == 0` → `min` (a constant vector costs only metadata); `σ = +∞` → `min`;
    /// `σ ≤ 0` → `max`; a NaN `range` or `σ`, or an infinite `range`, → `max`; a negative `range` → `min`.
    ///
    /// - Precondition: `min` and `max` are supported widths (1, 2, 3, 4, 8) and `min ≤ max`.
    @inlinable
    public static func bits(range: Double, sigma: Double, formula: BitsFormula = .paper,
                            min: Int, max: Int) -> Int {
        precondition(isSupported(min) && isSupported(max) && min <= max,
                     "bit bounds must be supported widths (1, 2, 3, 4, 8) with min ≤ max, got [\(min), \(max)]")
        if range.isNaN || sigma.isNaN { return max }
        if range <= 0 { return min }
        if sigma == .infinity { return min }
        if sigma <= 0 || range == .infinity { return max }
        let ratio = range / (2 * 3.0.squareRoot() * sigma)
        let need: Double
        switch formula {
        case .paper: need = ratio
        case .authorsCode: need = ratio / 2 + 1
        }
        var w = min
        while true {
            if Double(sign: .plus, exponent: w, significand: 1) >= need { return w }
            if w >= max { return max }
            w = snapUp(w + 1) ?? max
        }
    }

    // MARK: Variance model

    /// The output-error variance behind the value rule: with independent value errors of variance `σ_t²` per
    /// token (`valueVariances`), the error of one output element `X = Σ_t S_t V_t` has variance
    ///
    ///     σ²(X) = Σ_t S_t² σ_t².
    ///
    /// - Precondition: both buffers have the same count.
    @inlinable
    public static func outputVariance(probabilities: UnsafeBufferPointer<Double>,
                                      valueVariances: UnsafeBufferPointer<Double>) -> Double {
        precondition(probabilities.count == valueVariances.count,
                     "outputVariance: \(probabilities.count) probabilities but \(valueVariances.count) variances")
        var sum = 0.0
        for t in 0..<probabilities.count {
            let s = probabilities[t]
            sum += s * s * valueVariances[t]
        }
        return sum
    }
}

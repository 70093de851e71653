/// A streaming estimate of the `p`-quantile of the values observed so far — the P² algorithm of Jain and
/// Chlamtac ("The P² algorithm for dynamic calculation of quantiles and histograms without storing
/// observations", CACM 28(10), 1985).
///
/// QAQ uses it per (layer, KV head) for `‖q/√D‖²` at `p = 0.9`, the query norm the key rule is written for
/// (`QAQBits.keySigma`).
///
/// Memory is O(1): five markers (heights `h₀ … h₄`, integer positions `n₀ … n₄` and desired positions
/// `n′₀ … n′₄`, each kept in a `SIMD8<Double>`), 272 bytes inline, no heap. Deterministic: the same sequence
/// gives the same estimate.
///
/// Update per observation `x` (after the first five, which are kept sorted as the initial markers):
/// 1. find the cell `k` with `h_k ≤ x < h_{k+1}` (extending `h₀` or `h₄` when `x` lies outside), and add one
///    to the positions `n_{k+1} … n₄`;
/// 2. add `dn′ = (0, p/2, p, (1+p)/2, 1)` to the desired positions;
/// 3. for each middle marker `i = 1, 2, 3` with `d = n′_i − n_i`: if `d ≥ 1` and `n_{i+1} − n_i > 1`, or
///    `d ≤ −1` and `n_{i−1} − n_i < −1`, move it by `s = sign(d)`: its height becomes the piecewise-parabolic
///    (P²) prediction
///    `h_i + s/(n_{i+1} − n_{i−1}) · [(n_i − n_{i−1} + s)(h_{i+1} − h_i)/(n_{i+1} − n_i)
///                                + (n_{i+1} − n_i − s)(h_i − h_{i−1})/(n_i − n_{i−1})]`
///    if that stays strictly between its neighbours, else the linear one
///    `h_i + s · (h_{i+s} − h_i)/(n_{i+s} − n_i)`; and `n_i += s`.
///
/// The estimate is the middle marker `h₂`. With fewer than five observations it is the exact sample quantile
/// with linear interpolation at rank `p·(count − 1)` (0-based, of the sorted values), and NaN when empty — NaN
/// fed to `QAQBits.keySigma`/`bits` yields the most bits, the conservative choice.
///
/// Non-finite observations (NaN, ±∞) are ignored and not counted: one would poison every later estimate.
public struct OnlineQuantile: Sendable, Equatable {
    /// The quantile tracked, in (0, 1).
    public let p: Double
    /// Finite observations seen.
    public private(set) var count: Int = 0
    /// Marker heights (lanes 0…4 used).
    private var h = SIMD8<Double>()
    /// Actual marker positions, 0-based (lanes 0…4 used).
    private var n = SIMD8<Double>()
    /// Desired marker positions (lanes 0…4 used).
    private var want = SIMD8<Double>()
    /// Increments of the desired positions per observation.
    private var step = SIMD8<Double>()

    /// - Precondition: `0 < p < 1`.
    public init(p: Double = 0.9) {
        precondition(p > 0 && p < 1, "OnlineQuantile: p must lie in (0, 1), got \(p)")
        self.p = p
        want = SIMD8(0, 2 * p, 4 * p, 2 + 2 * p, 4, 0, 0, 0)
        step = SIMD8(0, p / 2, p, (1 + p) / 2, 1, 0, 0, 0)
        n = SIMD8(0, 1, 2, 3, 4, 0, 0, 0)
    }

    /// Adds one observation. O(1), no allocation.
    public mutating func observe(_ x: Double) {
        guard x.isFinite else { return }
        if count < 5 {
            // Insertion into the sorted first values.
            var i = count
            while i > 0 && h[i - 1] > x {
                h[i] = h[i - 1]
                i -= 1
            }
            h[i] = x
            count += 1
            return
        }
        count += 1
        // 1. Cell and positions.
        let k: Int
        if x < h[0] {
            h[0] = x
            k = 0
        } else if x >= h[4] {
            h[4] = x
            k = 3
        } else {
            var j = 1
            while x >= h[j] { j += 1 }
            k = j - 1
        }
        for i in (k + 1)..<5 { n[i] += 1 }
        // 2. Desired positions.
        want += step
        // 3. Adjust the middle markers.
        for i in 1...3 {
            let d = want[i] - n[i]
            guard (d >= 1 && n[i + 1] - n[i] > 1) || (d <= -1 && n[i - 1] - n[i] < -1) else { continue }
            let s: Double = d > 0 ? 1 : -1
            let parabolic = h[i] + s / (n[i + 1] - n[i - 1])
                * ((n[i] - n[i - 1] + s) * (h[i + 1] - h[i]) / (n[i + 1] - n[i])
                   + (n[i + 1] - n[i] - s) * (h[i] - h[i - 1]) / (n[i] - n[i - 1]))
            if h[i - 1] < parabolic && parabolic < h[i + 1] {
                h[i] = parabolic
            } else {
                let j = s > 0 ? i + 1 : i - 1
                h[i] += s * (h[j] - h[i]) / (n[j] - n[i])
            }
            n[i] += s
        }
    }

    /// The current estimate of the `p`-quantile (NaN before the first observation).
    public var value: Double {
        switch count {
        case 0:
            return .nan
        case 1..<5:
            let rank = p * Double(count - 1)
            let lo = Int(rank)
            let hi = Swift.min(lo + 1, count - 1)
            let f = rank - Double(lo)
            return h[lo] + f * (h[hi] - h[lo])
        default:
            return h[2]
        }
    }
}

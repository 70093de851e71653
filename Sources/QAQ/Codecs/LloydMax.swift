#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Lloyd-Max (MSE-optimal scalar) quantizers for the standard normal distribution N(0, 1),
/// b ∈ {1, 2, 3, 4} bits: 2^b levels, symmetric about 0, and the 2^b − 1 decision thresholds
/// (midpoints of neighbouring levels).
///
/// Computed once per width by Lloyd's iteration on the exact Gaussian conditions, over the
/// positive half (by symmetry the middle threshold is 0): thresholds are the midpoints of
/// the current levels, and each level becomes the centroid of its cell [a, b),
/// E[X | a ≤ X < b] = (φ(a) − φ(b)) / (Φ(b) − Φ(a)). The cell probability is evaluated as
/// Q(a) − Q(b) with the upper tail Q(x) = erfc(x/√2)/2 (no cancellation in the tail). The
/// iteration stops when no level moves by 1e-12 or more (4-bit: a few hundred steps).
public enum LloydMax {
    /// Supported code widths.
    public static let supportedBits: ClosedRange<Int> = 1...4

    /// The 2^b levels, ascending: `levels[2^(b−1) + j] = −levels[2^(b−1) − 1 − j]`.
    public static func levels(bits: Int) -> [Double] {
        precondition(supportedBits.contains(bits), "Lloyd-Max levels exist here for 1…4 bits, not \(bits)")
        return tables[bits - 1].levels
    }

    /// The 2^b − 1 thresholds, ascending: midpoints of neighbouring levels (the middle one is 0).
    public static func thresholds(bits: Int) -> [Double] {
        let l = levels(bits: bits)
        return (0..<(l.count - 1)).map { i in (l[i] + l[i + 1]) / 2 }
    }

    /// The quantizer's mean squared error on N(0, 1): 1 − Σ pᵢ·levelᵢ² (exact for centroid
    /// levels), ≈ 0.3634, 0.1175, 0.03455, 0.009501 for b = 1…4.
    public static func meanSquaredError(bits: Int) -> Double {
        precondition(supportedBits.contains(bits), "Lloyd-Max levels exist here for 1…4 bits, not \(bits)")
        return tables[bits - 1].mse
    }

    /// Lloyd steps the iteration took to converge (for diagnostics).
    public static func iterations(bits: Int) -> Int {
        precondition(supportedBits.contains(bits), "Lloyd-Max levels exist here for 1…4 bits, not \(bits)")
        return tables[bits - 1].iterations
    }

    /// Computed once, on first use (a `static let` is initialized exactly once, thread-safely).
    private static let tables: [(levels: [Double], mse: Double, iterations: Int)] = (1...4).map(solve)

    private static func phi(_ x: Double) -> Double {
        x.isInfinite ? 0 : exp(-0.5 * x * x) / (2 * Double.pi).squareRoot()
    }

    /// Upper tail P(X ≥ x).
    private static func upperTail(_ x: Double) -> Double {
        x.isInfinite ? 0 : 0.5 * erfc(x / 2.0.squareRoot())
    }

    private static func solve(_ bits: Int) -> (levels: [Double], mse: Double, iterations: Int) {
        let h = 1 << (bits - 1)
        // Positive levels, started uniformly over (0, 3).
        var pos = (0..<h).map { (Double($0) + 0.5) * 3 / Double(h) }
        var edges = [Double](repeating: 0, count: h + 1)
        var steps = 0
        while true {
            steps += 1
            edges[0] = 0
            for i in 1..<h { edges[i] = (pos[i - 1] + pos[i]) / 2 }
            edges[h] = .infinity
            var change = 0.0
            for i in 0..<h {
                let (a, b) = (edges[i], edges[i + 1])
                let c = (phi(a) - phi(b)) / (upperTail(a) - upperTail(b))
                change = max(change, abs(c - pos[i]))
                pos[i] = c
            }
            if change < 1e-12 || steps >= 1_000_000 { break }
        }
        for i in 1..<h { edges[i] = (pos[i - 1] + pos[i]) / 2 }
        var captured = 0.0
        for i in 0..<h { captured += 2 * (upperTail(edges[i]) - upperTail(edges[i + 1])) * pos[i] * pos[i] }
        let levels = pos.reversed().map { -$0 } + pos
        return (levels, 1 - captured, steps)
    }
}

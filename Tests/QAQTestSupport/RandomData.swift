import Foundation
import QAQ

/// A small deterministic generator (SplitMix64) so every test sees the same data.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    public mutating func uniform() -> Double { Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0) }
    /// Standard normal (Box–Muller).
    public mutating func gaussian() -> Double {
        let u1 = max(uniform(), 1e-300), u2 = uniform()
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }
}

/// Test data shaped like real K/V rows: Gaussian entries, a few channels scaled up
/// (the outlier channels of keys), and an occasional spike inside a row.
public enum DataMaker {
    /// `count × dim` fp32 values.
    public static func rows(count: Int, dim: Int, seed: UInt64, scale: Float = 1,
                            outlierChannels: Int = 2, spikes: Bool = true) -> [Float] {
        var rng = SplitMix64(seed: seed)
        var channelScale = [Float](repeating: 1, count: dim)
        for _ in 0..<outlierChannels { channelScale[Int(rng.next() % UInt64(dim))] = 8 }
        var out = [Float](repeating: 0, count: count * dim)
        for t in 0..<count {
            for i in 0..<dim {
                out[t * dim + i] = Float(rng.gaussian()) * channelScale[i] * scale
            }
            if spikes && t % 3 == 0 {
                out[t * dim + Int(rng.next() % UInt64(dim))] = (rng.uniform() < 0.5 ? -1 : 1) * 30 * scale
            }
        }
        return out
    }
}


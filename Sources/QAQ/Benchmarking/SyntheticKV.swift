#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Synthetic attention inputs shaped like a real model's: keys with a few large outlier
/// channels and a shared offset (so scores have structure), an attention-sink first token,
/// heavy-tailed values (Student-t, 3 degrees of freedom) and queries that resemble recent
/// keys. Deterministic for a seed. Layout: `[tokens][kvHeads][dim]` for keys and values,
/// `[tokens][queryHeads][dim]` for queries.
public struct SyntheticKV: Sendable {
    public let tokens: Int
    public let kvHeads: Int
    public let queryHeadsPerKVHead: Int
    public let dim: Int
    public let keys: [Float]
    public let values: [Float]
    public let queries: [Float]

    public init(tokens: Int, kvHeads: Int = 2, queryHeadsPerKVHead: Int = 3, dim: Int = 64, seed: UInt64 = 1) {
        self.tokens = tokens
        self.kvHeads = kvHeads
        self.queryHeadsPerKVHead = queryHeadsPerKVHead
        self.dim = dim
        var rng = Generator(seed: seed)
        var keys = [Float](repeating: 0, count: tokens * kvHeads * dim)
        var values = keys
        var queries = [Float](repeating: 0, count: tokens * kvHeads * queryHeadsPerKVHead * dim)
        for h in 0..<kvHeads {
            // Per head: outlier channels (×8…×15), a channel offset, a value scale.
            var channelScale = [Float](repeating: 1, count: dim)
            for _ in 0..<max(1, dim / 32) { channelScale[rng.int(dim)] = Float(8 + rng.int(8)) }
            let offset = (0..<dim).map { _ in Float(rng.gaussian()) * 0.5 }
            let direction = (0..<dim).map { _ in Float(rng.gaussian()) }
            for t in 0..<tokens {
                let base = (t * kvHeads + h) * dim
                for i in 0..<dim {
                    var k = (Float(rng.gaussian()) + offset[i]) * channelScale[i]
                    if t == 0 { k = direction[i] * 2 * channelScale[i] }      // the sink aligns with queries
                    keys[base + i] = k
                    values[base + i] = Float(rng.studentT3()) * (t == 0 ? 0.1 : 1)
                }
                for j in 0..<queryHeadsPerKVHead {
                    let qBase = ((t * kvHeads + h) * queryHeadsPerKVHead + j) * dim
                    // Queries: the sink direction plus noise plus a pull toward a recent key.
                    let recent = max(0, t - 1 - rng.int(8))
                    for i in 0..<dim {
                        let pull = keys[(recent * kvHeads + h) * dim + i] / channelScale[i]
                        queries[qBase + i] = (direction[i] * 0.8 + Float(rng.gaussian()) + 0.7 * pull) / channelScale[i].squareRoot()
                    }
                }
            }
        }
        self.keys = keys
        self.values = values
        self.queries = queries
    }

    /// Keys and values of token `t`: `[kvHeads][dim]` each.
    public func token(_ t: Int) -> (keys: ArraySlice<Float>, values: ArraySlice<Float>) {
        let n = kvHeads * dim
        return (keys[(t * n)..<((t + 1) * n)], values[(t * n)..<((t + 1) * n)])
    }

    /// Queries of step `t`: `[queryHeads][dim]`.
    public func query(_ t: Int) -> ArraySlice<Float> {
        let n = kvHeads * queryHeadsPerKVHead * dim
        return queries[(t * n)..<((t + 1) * n)]
    }

    /// Exact causal attention in fp64 for the query of step `t` over tokens `0...t`:
    /// `[queryHeads][dim]`.
    public func exactAttention(step t: Int) -> [Double] {
        let g = queryHeadsPerKVHead
        var out = [Double](repeating: 0, count: kvHeads * g * dim)
        for h in 0..<kvHeads {
            for j in 0..<g {
                let qBase = ((t * kvHeads + h) * g + j) * dim
                var scores = [Double](repeating: 0, count: t + 1)
                var m = -Double.infinity
                for s in 0...t {
                    var acc = 0.0
                    for i in 0..<dim { acc += Double(queries[qBase + i]) * Double(keys[(s * kvHeads + h) * dim + i]) }
                    scores[s] = acc / Double(dim).squareRoot()
                    m = max(m, scores[s])
                }
                var sum = 0.0
                for s in 0...t { scores[s] = exp(scores[s] - m); sum += scores[s] }
                for i in 0..<dim {
                    var acc = 0.0
                    for s in 0...t { acc += scores[s] / sum * Double(values[(s * kvHeads + h) * dim + i]) }
                    out[(h * g + j) * dim + i] = acc
                }
            }
        }
        return out
    }

    /// SplitMix64 with Gaussian and Student-t draws.
    struct Generator {
        var state: UInt64
        init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 &+ 1 }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func uniform() -> Double { Double(next() >> 11) * 0x1p-53 }
        mutating func int(_ n: Int) -> Int { Int(next() % UInt64(n)) }
        mutating func gaussian() -> Double {
            let u1 = max(uniform(), 1e-300), u2 = uniform()
            return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
        }
        /// Student-t with 3 degrees of freedom, scaled to unit variance.
        mutating func studentT3() -> Double {
            let z = gaussian()
            let a = gaussian(), b = gaussian(), c = gaussian()
            let chi = max(a * a + b * b + c * c, 1e-12)
            return z / (chi / 3).squareRoot() / 3.0.squareRoot()
        }
    }
}

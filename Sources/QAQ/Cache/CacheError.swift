/// Why a cache operation was refused. The cache is unchanged when one is thrown.
public enum CacheError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidConfiguration(String)
    case unsupportedFormat(String)
    case layerOutOfRange(layer: Int, layers: Int)
    case shapeMismatch(expected: String, got: String)
    /// Key or value `token` (index within the call) of `layer` holds NaN or ±Inf.
    case nonFinite(layer: Int, token: Int)
    /// A value beyond what the storage format can hold (fp16: |x| > 65504).
    case outOfRange(layer: Int, token: Int)
    /// An attention probability that is NaN, negative or above 1.
    case invalidProbability(layer: Int, head: Int, token: Int, value: Float)
    case truncateBeyondEnd(requested: Int, tokens: Int)
    /// Appending would exceed the configured context limit.
    case contextFull(layer: Int, tokens: Int, appending: Int, limit: Int)
    /// Block attention for `count` queries needs 1 ≤ count ≤ the tokens held.
    case queryBlockOutOfRange(layer: Int, count: Int, tokens: Int)

    public var description: String {
        switch self {
        case .invalidConfiguration(let s): return "invalid cache configuration: \(s)"
        case .unsupportedFormat(let s): return "unsupported storage format: \(s)"
        case .layerOutOfRange(let l, let n): return "layer \(l) out of range 0..<\(n)"
        case .shapeMismatch(let e, let g): return "shape mismatch: expected \(e), got \(g)"
        case .nonFinite(let l, let t): return "layer \(l), token \(t) of the call: NaN or Inf in keys or values"
        case .outOfRange(let l, let t): return "layer \(l), token \(t) of the call: value beyond the fp16 range"
        case .invalidProbability(let l, let h, let t, let v): return "layer \(l), q head \(h), token \(t): attention probability \(v) is not in [0, 1]"
        case .truncateBeyondEnd(let r, let n): return "cannot truncate to \(r) tokens: the cache holds \(n)"
        case .contextFull(let l, let n, let a, let m): return "layer \(l): appending \(a) tokens to \(n) exceeds the context limit of \(m)"
        case .queryBlockOutOfRange(let l, let c, let n): return "layer \(l): a block of \(c) queries needs 1 ≤ count ≤ \(n), the tokens held"
        }
    }
}

extension CacheError {
    /// A codec's error while storing token `token` (absolute position) of `layer`.
    init(_ error: any Error, layer: Int, token: Int) {
        switch error as? QuantizationError {
        case .nonFinite?: self = .nonFinite(layer: layer, token: token)
        case .outOfFloat16Range?: self = .outOfRange(layer: layer, token: token)
        default: self = .unsupportedFormat("\(error)")
        }
    }
}

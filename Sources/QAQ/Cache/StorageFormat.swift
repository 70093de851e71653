/// How one stored key or value vector is encoded. Plain data; the cache makes the codec.
public enum StorageFormat: Hashable, Sendable, Codable, CustomStringConvertible {
    /// Unchanged fp32.
    case fp32
    /// IEEE fp16.
    case fp16
    /// QAQ's midpoint quantizer: `bits` per element, groups of `group`, `outliers` exact per vector.
    case affine(bits: Int, group: Int, outliers: Int)
    /// llama.cpp's block_q8_0 (32-value blocks, fp16 scale).
    case q8_0
    /// llama.cpp's block_q4_0 (32-value blocks, fp16 scale).
    case q4_0

    public var description: String {
        switch self {
        case .fp32: return "fp32"
        case .fp16: return "fp16"
        case .affine(let b, let g, let k): return k == 0 ? "affine\(b)g\(g)" : "affine\(b)g\(g)k\(k)"
        case .q8_0: return "q8_0"
        case .q4_0: return "q4_0"
        }
    }

    /// Bits per code (16/32 for the float formats).
    public var bits: Int {
        switch self {
        case .fp32: return 32
        case .fp16: return 16
        case .affine(let b, _, _): return b
        case .q8_0: return 8
        case .q4_0: return 4
        }
    }

    /// The codec for vectors of `dim` elements.
    public func codec(dim: Int, kernels: KernelSet) throws(CacheError) -> any VectorCodec {
        switch self {
        case .fp32: return Float32Codec(dim: dim)
        case .fp16: return Float16Codec(dim: dim)
        case .affine(let b, let g, let k):
            do { return try AffineCodec(dim: dim, bits: b, groupSize: min(g, dim), outliers: k, kernels: kernels) } catch {
                throw .unsupportedFormat("\(self) for D = \(dim): \(error)")
            }
        case .q8_0:
            guard dim % 32 == 0 else { throw .unsupportedFormat("q8_0 needs D a multiple of 32, got \(dim)") }
            return Q8_0Codec(dim: dim)
        case .q4_0:
            guard dim % 32 == 0 else { throw .unsupportedFormat("q4_0 needs D a multiple of 32, got \(dim)") }
            return Q4_0Codec(dim: dim)
        }
    }
}

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
    /// Lloyd-Max levels for N(0, 1) at `bits` ∈ {1, 2, 3, 4} after a fixed random-sign
    /// Hadamard rotation (when `rotated`), with the given scale storage.
    case codebook(bits: Int, scale: CodebookScale, rotated: Bool)

    public var description: String {
        switch self {
        case .fp32: return "fp32"
        case .fp16: return "fp16"
        case .affine(let b, let g, let k): return k == 0 ? "affine\(b)g\(g)" : "affine\(b)g\(g)k\(k)"
        case .q8_0: return "q8_0"
        case .q4_0: return "q4_0"
        case .codebook(let b, let scale, let rotated): return "\(rotated ? "rlm" : "lm")\(b)(\(scale))"
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
        case .codebook(let b, _, _): return b
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
        case .codebook(let b, let scale, let rotated):
            do {
                return try RotatedCodebookCodec(dim: dim, bits: b, scale: scale.mode, rotation: rotated ? .defaultHadamard : .none, kernels: kernels)
            } catch { throw .unsupportedFormat("\(self) for D = \(dim): \(error)") }
        }
    }
}

/// How a codebook format stores its scale (see `CodebookLayout.ScaleMode`).
public enum CodebookScale: Hashable, Sendable, Codable, CustomStringConvertible {
    /// One fp16 scale per vector.
    case f16
    /// One 8-bit log2 scale per vector, value 2^((k − 128)/16).
    case log8
    /// One fp16 scale per group of `n` elements.
    case group(Int)

    public var mode: CodebookLayout.ScaleMode {
        switch self {
        case .f16: return .vectorF16
        case .log8: return .vectorLog8
        case .group(let n): return .groupF16(n)
        }
    }

    public var description: String {
        switch self {
        case .f16: return "f16"
        case .log8: return "log8"
        case .group(let n): return "g\(n)"
        }
    }
}

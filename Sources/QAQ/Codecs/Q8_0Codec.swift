/// llama.cpp's `block_q8_0`, byte for byte: each block of 32 values is stored as
///
///     offset 0: d   — IEEE fp16, little-endian (2 bytes)
///     offset 2: qs  — 32 × int8 (32 bytes)
///
/// 34 bytes per 32 values (8.5 bits per element); a vector of `dim` values is `dim / 32`
/// consecutive blocks. Quantization follows ggml's scalar reference `quantize_row_q8_0_ref`
/// in its exact order of operations:
///
///     amax = max |x|              (fp32)
///     d    = amax / 127           (fp32)
///     id   = d != 0 ? 1 / d : 0   (fp32, from the fp32 d — not from the fp16 one)
///     stored d = fp16(d)          (round to nearest even, like GGML_FP32_TO_FP16)
///     q    = roundf(x · id)       (ties away from zero)
///
/// and dequantization is `x̂ = Float(q) · Float(fp16 d)`.
///
/// Note: ggml's AVX quantizer (`quantize_row_q8_0`, used by `ggml_cpy` into a q8_0 KV cache)
/// differs from the reference in the last bit on rare inputs (it uses `id = 127 / amax` and
/// rounds ties to even); this codec reproduces the reference.
///
/// `dim` must be a positive multiple of 32: ``encode(_:count:into:)`` throws
/// ``QuantizationError/shapeMismatch(expected:got:)`` otherwise (use
/// ``init(validatingDim:)`` to fail at construction instead). Encode fails with
/// ``QuantizationError/nonFinite(vector:)`` on NaN/Inf and with
/// ``QuantizationError/outOfFloat16Range(vector:)`` when a block's `d` does not fit fp16
/// (amax ≥ 127 · 65520); in both cases nothing is written.
public struct Q8_0Codec: VectorCodec {
    /// Values per block.
    public static let blockValues = 32
    /// Bytes per block (fp16 d + 32 int8).
    public static let blockBytes = 34

    public let dim: Int

    /// A codec for vectors of `dim` values. `dim` should be a positive multiple of 32;
    /// otherwise every ``encode(_:count:into:)`` throws.
    public init(dim: Int) { self.dim = dim }

    /// A codec for vectors of `dim` values, or a typed error when `dim` is not a positive
    /// multiple of 32.
    public init(validatingDim dim: Int) throws(QuantizationError) {
        guard dim > 0, dim % Self.blockValues == 0 else { throw Self.dimError(dim) }
        self.dim = dim
    }

    private var blocks: Int { dim / Self.blockValues }
    public var bytesPerVector: Int { blocks * Self.blockBytes }
    public var breakdown: ByteBreakdown { ByteBreakdown(codes: blocks * 32, metadata: blocks * 2, outliers: 0) }
    public var description: String { "q8_0" }

    static func dimError(_ dim: Int) -> QuantizationError {
        .shapeMismatch(expected: "dim a positive multiple of 32 (q8_0 blocks)", got: "dim \(dim)")
    }

    public func encode(_ src: UnsafePointer<Float>, count: Int, into dst: UnsafeMutableRawPointer) throws(QuantizationError) {
        guard dim > 0, dim % Self.blockValues == 0 else { throw Self.dimError(dim) }
        guard count > 0 else { return }
        // Validate everything first: nothing is written when we throw.
        for v in 0..<count {
            for b in 0..<blocks {
                let x = src + v * dim + b * Self.blockValues
                var amax: Float = 0
                for j in 0..<Self.blockValues {
                    guard x[j].isFinite else { throw .nonFinite(vector: v) }
                    amax = Swift.max(amax, x[j].magnitude)
                }
                guard Float16(amax / 127).isFinite else { throw .outOfFloat16Range(vector: v) }
            }
        }
        for blk in 0..<(count * blocks) {
            Self.quantizeBlock(src + blk * Self.blockValues, dst + blk * Self.blockBytes)
        }
    }

    public func decode(_ src: UnsafeRawPointer, count: Int, into dst: UnsafeMutablePointer<Float>) {
        guard dim > 0, dim % Self.blockValues == 0 else { return }
        for blk in 0..<(count * blocks) {
            let rec = src + blk * Self.blockBytes
            let d = Float(Float16(bitPattern: UInt16(littleEndian: rec.loadUnaligned(as: UInt16.self))))
            let out = dst + blk * Self.blockValues
            for j in 0..<Self.blockValues {
                out[j] = Float(rec.load(fromByteOffset: 2 + j, as: Int8.self)) * d
            }
        }
    }

    /// `quantize_row_q8_0_ref` for one block of 32 finite values.
    @inline(__always)
    static func quantizeBlock(_ x: UnsafePointer<Float>, _ out: UnsafeMutableRawPointer) {
        var amax: Float = 0
        for j in 0..<blockValues {
            let a = x[j].magnitude
            amax = amax > a ? amax : a  // ggml's MAX(amax, fabsf(v))
        }
        let d = amax / 127
        let id: Float = d != 0 ? 1 / d : 0
        out.storeBytes(of: Float16(d).bitPattern.littleEndian, as: UInt16.self)
        for j in 0..<blockValues {
            // |x·id| ≤ 127 up to a few ulps, so the conversion cannot trap.
            let q = Int8((x[j] * id).rounded(.toNearestOrAwayFromZero))  // C roundf
            out.storeBytes(of: q, toByteOffset: 2 + j, as: Int8.self)
        }
    }
}

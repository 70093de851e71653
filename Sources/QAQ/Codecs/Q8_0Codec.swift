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
public enum Q8_0Block: LlamaBlock {
    public static let name = "q8_0"
    public static let blockBytes = 34
    public static let scaleDivisor: Float = 127

    /// `quantize_row_q8_0_ref` for one block of 32 finite values.
    @inline(__always)
    public static func quantizeBlock(_ x: UnsafePointer<Float>, _ out: UnsafeMutableRawPointer) {
        var amax: Float = 0
        for j in 0..<32 {
            let a = x[j].magnitude
            amax = amax > a ? amax : a  // ggml's MAX(amax, fabsf(v))
        }
        let d = amax / 127
        let id: Float = d != 0 ? 1 / d : 0
        out.storeBytes(of: Float16(d).bitPattern.littleEndian, as: UInt16.self)
        for j in 0..<32 {
            // |x·id| ≤ 127 up to a few ulps, so the conversion cannot trap.
            let q = Int8((x[j] * id).rounded(.toNearestOrAwayFromZero))  // C roundf
            out.storeBytes(of: q, toByteOffset: 2 + j, as: Int8.self)
        }
    }

    /// Dequantizes one block: `x̂ = q·d`.
    @inline(__always)
    public static func decodeBlock(_ rec: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
        let d = Float(Float16(bitPattern: UInt16(littleEndian: rec.loadUnaligned(as: UInt16.self))))
        for j in 0..<32 {
            out[j] = Float(rec.load(fromByteOffset: 2 + j, as: Int8.self)) * d
        }
    }
}

/// llama.cpp's `block_q8_0` as a ``VectorCodec``.
public typealias Q8_0Codec = LlamaBlockCodec<Q8_0Block>

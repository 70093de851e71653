/// llama.cpp's `block_q4_0`, byte for byte: each block of 32 values is stored as
///
///     offset 0: d   — IEEE fp16, little-endian (2 bytes)
///     offset 2: qs  — 16 bytes; byte j holds element j in its low nibble and
///                     element 16 + j in its high nibble
///
/// 18 bytes per 32 values (4.5 bits per element); a vector of `dim` values is `dim / 32`
/// consecutive blocks. Quantization follows ggml's scalar reference `quantize_row_q4_0_ref`
/// in its exact order of operations:
///
///     max  = the value of largest magnitude (the first one on ties), with its sign
///     d    = max / -8             (fp32)
///     id   = d != 0 ? 1 / d : 0   (fp32, from the fp32 d)
///     stored d = fp16(d)          (round to nearest even, like GGML_FP32_TO_FP16)
///     nibble = min(15, (int8_t)(x · id + 8.5))   (conversion truncates toward zero)
///
/// and dequantization is `x̂ = Float(nibble − 8) · Float(fp16 d)`. The value `max` itself maps
/// to nibble 0 (−8·d = max); values of the opposite sign reach at most 7·|d| (nibble 15).
///
/// `dim` must be a positive multiple of 32: ``encode(_:count:into:)`` throws
/// ``QuantizationError/shapeMismatch(expected:got:)`` otherwise (use
/// ``init(validatingDim:)`` to fail at construction instead). Encode fails with
/// ``QuantizationError/nonFinite(vector:)`` on NaN/Inf and with
/// ``QuantizationError/outOfFloat16Range(vector:)`` when a block's `d` does not fit fp16
/// (|max| ≥ 8 · 65520); in both cases nothing is written.
public enum Q4_0Block: LlamaBlock {
    public static let name = "q4_0"
    public static let blockBytes = 18
    public static let scaleDivisor: Float = 8

    /// `quantize_row_q4_0_ref` for one block of 32 finite values.
    @inline(__always)
    public static func quantizeBlock(_ x: UnsafePointer<Float>, _ out: UnsafeMutableRawPointer) {
        var amax: Float = 0
        var max: Float = 0
        for j in 0..<32 {
            let v = x[j]
            if amax < v.magnitude {
                amax = v.magnitude
                max = v
            }
        }
        let d = max / -8
        let id: Float = d != 0 ? 1 / d : 0
        out.storeBytes(of: Float16(d).bitPattern.littleEndian, as: UInt16.self)
        for j in 0..<16 {
            let x0 = x[j] * id
            let x1 = x[16 + j] * id
            // x·id ∈ [−8, 8] up to rounding, so x·id + 8.5 ∈ (0, 16.5]: the truncating
            // conversion (C's (int8_t)) cannot trap.
            let xi0 = Swift.min(15, Int8(x0 + 8.5))
            let xi1 = Swift.min(15, Int8(x1 + 8.5))
            out.storeBytes(of: UInt8(xi0) | (UInt8(xi1) << 4), toByteOffset: 2 + j, as: UInt8.self)
        }
    }

    /// Dequantizes one block: `x̂ = q·d`.
    @inline(__always)
    public static func decodeBlock(_ rec: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
        let d = Float(Float16(bitPattern: UInt16(littleEndian: rec.loadUnaligned(as: UInt16.self))))
        for j in 0..<16 {
            let byte = rec.load(fromByteOffset: 2 + j, as: UInt8.self)
            out[j] = Float(Int32(byte & 0x0F) - 8) * d
            out[16 + j] = Float(Int32(byte >> 4) - 8) * d
        }
    }
}

/// llama.cpp's `block_q4_0` as a ``VectorCodec``.
public typealias Q4_0Codec = LlamaBlockCodec<Q4_0Block>

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
public struct Q4_0Codec: VectorCodec {
    /// Values per block.
    public static let blockValues = 32
    /// Bytes per block (fp16 d + 16 bytes of nibbles).
    public static let blockBytes = 18

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
    public var breakdown: ByteBreakdown { ByteBreakdown(codes: blocks * 16, metadata: blocks * 2, outliers: 0) }
    public var description: String { "q4_0" }

    static func dimError(_ dim: Int) -> QuantizationError {
        .shapeMismatch(expected: "dim a positive multiple of 32 (q4_0 blocks)", got: "dim \(dim)")
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
                guard Float16(amax / 8).isFinite else { throw .outOfFloat16Range(vector: v) }
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
            for j in 0..<16 {
                let byte = rec.load(fromByteOffset: 2 + j, as: UInt8.self)
                out[j] = Float(Int32(byte & 0x0F) - 8) * d
                out[16 + j] = Float(Int32(byte >> 4) - 8) * d
            }
        }
    }

    /// `quantize_row_q4_0_ref` for one block of 32 finite values.
    @inline(__always)
    static func quantizeBlock(_ x: UnsafePointer<Float>, _ out: UnsafeMutableRawPointer) {
        var amax: Float = 0
        var max: Float = 0
        for j in 0..<blockValues {
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
}

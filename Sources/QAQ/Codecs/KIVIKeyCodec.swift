/// KIVI's per-channel key quantization (Liu et al., 2024): a block of `blockTokens` (T)
/// consecutive key vectors of `dim` (D) channels is quantized channel by channel — each
/// channel's T values share one asymmetric b-bit quantizer:
///
///     min_c = min over the T tokens, max_c = max over the T tokens       (fp32)
///     scale_c = (max_c − min_c) / (2^b − 1)                               (fp32)
///     stored: s_c = fp16(scale_c), m_c = fp16(min_c)                       (round to nearest even)
///     q = clamp(round((x − m_c) / s_c), 0, 2^b − 1)   with the fp16-rounded s_c, m_c;
///         round = ties to even (PyTorch's `round_`, as in KIVI's code); q = 0 when s_c = 0
///     x̂ = m_c + q · s_c                                                    (fp32)
///
/// so |x − x̂| ≤ s_c / 2, up to the fp16 rounding of m_c and s_c (see the tests for the
/// exact bound). A constant channel stores s_c = 0 and decodes to fp16(min_c) exactly.
/// KIVI quantizes values per token, which is ``AffineCodec``'s job; this type only does keys.
///
/// Block layout (``bytesPerBlock`` = 4·D + T·D·b/8 bytes, all little-endian):
///
///     [0, 2D)            D × fp16 scale s_c, channel order
///     [2D, 4D)           D × fp16 min m_c, channel order
///     [4D, 4D + T·D·b/8) codes, b bits each, token-major: code (t, c) is element i = t·D + c
///                        and occupies bits [(i·b) mod 8, (i·b) mod 8 + b) of code byte
///                        (i·b) / 8 — i.e. for b = 4 element 2k is the low nibble of byte k,
///                        for b = 2 element 4k + j sits at bits 2j..2j+1 of byte k.
///
/// b ∈ {2, 4, 8}; codes never straddle a byte. T·D·b must be a multiple of 8.
public struct KIVIKeyCodec: Sendable, CustomStringConvertible {
    /// Channels per key vector (D).
    public let dim: Int
    /// Bits per code (b).
    public let bits: Int
    /// Tokens per block (T).
    public let blockTokens: Int

    /// Supported code widths.
    public static let supportedBits = [2, 4, 8]

    public init(dim: Int, bits: Int, blockTokens: Int = 32) throws(QuantizationError) {
        guard Self.supportedBits.contains(bits) else {
            throw .shapeMismatch(expected: "KIVI key bits in \(Self.supportedBits)", got: "\(bits) bits")
        }
        guard dim > 0, blockTokens > 0, (dim * blockTokens * bits) % 8 == 0 else {
            throw .shapeMismatch(expected: "D > 0, T > 0 and T·D·b a multiple of 8",
                                 got: "D = \(dim), T = \(blockTokens), b = \(bits)")
        }
        self.dim = dim
        self.bits = bits
        self.blockTokens = blockTokens
    }

    /// Code bytes of one block (T·D·b/8).
    public var codeBytes: Int { dim * blockTokens * bits / 8 }
    /// Metadata bytes of one block (fp16 scale + fp16 min per channel).
    public var metadataBytes: Int { 4 * dim }
    /// Bytes of one block, all overheads included.
    public var bytesPerBlock: Int { codeBytes + metadataBytes }
    /// ``bytesPerBlock`` split into codes and metadata.
    public var breakdown: ByteBreakdown { ByteBreakdown(codes: codeBytes, metadata: metadataBytes, outliers: 0) }
    /// Bits per key element, all overheads included.
    public var bitsPerElement: Double { Double(bytesPerBlock * 8) / Double(dim * blockTokens) }
    public var description: String { "kivi-key(b=\(bits), T=\(blockTokens))" }

    /// Encodes one block: `src` holds T × D floats, row-major (token t's key at `src + t·D`),
    /// into ``bytesPerBlock`` bytes at `dst`.
    ///
    /// Throws ``QuantizationError/nonFinite(vector:)`` on NaN/Inf and
    /// ``QuantizationError/outOfFloat16Range(vector:)`` on |x| > 65504, naming the token;
    /// nothing is written then.
    public func encode(_ src: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer) throws(QuantizationError) {
        let d = dim, t = blockTokens
        for tok in 0..<t {
            for c in 0..<d {
                let x = src[tok * d + c]
                guard x.isFinite else { throw .nonFinite(vector: tok) }
                guard x.magnitude <= 65504 else { throw .outOfFloat16Range(vector: tok) }
            }
        }
        let levels = Float((1 << bits) - 1)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * d) { params in
            // Per channel: fp32 min/max and scale, rounded to fp16; keep the fp16 values as fp32.
            for c in 0..<d {
                var lo = src[c], hi = src[c]
                for tok in 1..<t {
                    let x = src[tok * d + c]
                    lo = Swift.min(lo, x)
                    hi = Swift.max(hi, x)
                }
                let s16 = Float16((hi - lo) / levels)
                let m16 = Float16(lo)
                dst.storeBytes(of: s16.bitPattern.littleEndian, toByteOffset: 2 * c, as: UInt16.self)
                dst.storeBytes(of: m16.bitPattern.littleEndian, toByteOffset: 2 * (d + c), as: UInt16.self)
                params[c] = Float(s16)
                params[d + c] = Float(m16)
            }
            let codes = dst + metadataBytes
            let perByte = 8 / bits
            let total = t * d
            var i = 0, byteIndex = 0
            while i < total {
                var byte: UInt8 = 0
                for k in 0..<perByte {
                    let c = (i + k) % d
                    let q = Self.code(src[i + k], scale: params[c], min: params[d + c], levels: levels)
                    byte |= q << UInt8(k * bits)
                }
                codes.storeBytes(of: byte, toByteOffset: byteIndex, as: UInt8.self)
                i += perByte
                byteIndex += 1
            }
        }
    }

    /// Decodes one block of ``bytesPerBlock`` bytes into T × D floats, row-major.
    public func decode(_ src: UnsafeRawPointer, into dst: UnsafeMutablePointer<Float>) {
        let d = dim
        let codes = src + metadataBytes
        let perByte = 8 / bits
        let mask = UInt8(truncatingIfNeeded: (1 << bits) - 1)
        let total = blockTokens * d
        var i = 0, byteIndex = 0
        while i < total {
            let byte = codes.load(fromByteOffset: byteIndex, as: UInt8.self)
            for k in 0..<perByte {
                let c = (i + k) % d
                let s = Float(Float16(bitPattern: UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * c, as: UInt16.self))))
                let m = Float(Float16(bitPattern: UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * (d + c), as: UInt16.self))))
                let q = (byte >> UInt8(k * bits)) & mask
                dst[i + k] = m + Float(q) * s
            }
            i += perByte
            byteIndex += 1
        }
    }

    /// The b-bit code of `x` under an fp16-rounded (scale, min), as a byte.
    @inline(__always)
    static func code(_ x: Float, scale: Float, min: Float, levels: Float) -> UInt8 {
        guard scale != 0 else { return 0 }
        let q = ((x - min) / scale).rounded(.toNearestOrEven)
        return UInt8(q < 0 ? 0 : (q > levels ? levels : q))
    }
}

/// The byte layout of one vector stored with a *code map*: D elements, each a b-bit code
/// that indexes a table of 2^b levels (for example the Lloyd-Max levels of N(0,1)), times a
/// scale per vector or per group. Plain data, shared by every ISA variant of the kernels
/// and by the library.
///
/// ## Record
///
/// | offset | bytes | content |
/// |---|---|---|
/// | 0 | ``codeBytes`` = D·b/8 | the b-bit codes, lane-sliced exactly as in ``PackedLayout`` (same ``SlotTable``) |
/// | ``scaleOffset`` | ``scaleBytes`` | the scale(s), see ``ScaleMode`` |
///
/// Element i decodes to `levels[code(i)] · scale(group of i)` in fp32. Nothing else is
/// stored: ``recordBytes`` = D·b/8 + ``scaleBytes`` exactly (no padding, no alignment).
public struct CodebookLayout: Hashable, Sendable, CustomStringConvertible {
    /// How the scales are stored.
    public enum ScaleMode: Hashable, Sendable, CustomStringConvertible {
        /// One fp16 scale per vector (2 bytes).
        case vectorF16
        /// One fp16 scale per group of G consecutive elements (2·D/G bytes); G is a multiple
        /// of 16 that divides D.
        case groupF16(Int)
        /// One byte k per vector: scale = 2^((k − 128)/16) for k = 1…255, and k = 0 is the
        /// scale 0. The range is 2^(−127/16) ≈ 0.00409 … 2^(127/16) ≈ 244.5, in steps of
        /// 2^(1/16) (≈ 4.4 %). The quantizer stores the representable value nearest to the
        /// least-squares scale (nearest in value, not in log2: ‖x − s·c‖² is a parabola in s,
        /// so that is also the least-squares best byte; ties go up); below half the smallest
        /// scale it stores 0, above the range it fails. See ``CodebookLayout/log8Offset``.
        case vectorLog8

        public var description: String {
            switch self {
            case .vectorF16: return "f16"
            case .groupF16(let g): return "f16/g\(g)"
            case .vectorLog8: return "log8"
            }
        }
    }

    /// Elements per vector (head dimension D): a multiple of 16, at most 256.
    public let dim: Int
    /// Bits per code (b ∈ {1, 2, 3, 4}); the level table has 2^b entries.
    public let bits: Int
    /// How scales are stored.
    public let scaleMode: ScaleMode
    /// Elements per scale: G for ``ScaleMode/groupF16(_:)``, else D.
    public let groupSize: Int
    /// Scales per vector: D / ``groupSize``.
    public let groupCount: Int
    /// Whether the scale is the one-byte log2 form.
    public let isLog8: Bool
    /// Number of 16-element slots (D / 16).
    public let slotCount: Int
    /// Bytes of codes per vector: exactly D·b/8.
    public let codeBytes: Int
    /// Where each slot's codes live (the same lane-slice layout as ``PackedLayout``).
    public let slots: SlotTable

    /// Largest supported head dimension.
    public static let maxDim = 256
    /// Supported code widths.
    public static let supportedBits: [Int] = [1, 2, 3, 4]
    /// The log8 scale is 2^((k − log8Offset)/16): k = 128 is the scale 1.
    public static let log8Offset = 128

    /// Creates a layout, or throws a ``LayoutError`` naming what is unsupported.
    public init(dim: Int, bits: Int, scale: ScaleMode = .vectorF16) throws(LayoutError) {
        guard dim > 0, dim % 16 == 0, dim <= CodebookLayout.maxDim else {
            throw .unsupportedDimension(dim)
        }
        guard CodebookLayout.supportedBits.contains(bits) else { throw .unsupportedBits(bits) }
        var g = dim
        if case .groupF16(let gs) = scale {
            guard gs > 0, gs % 16 == 0, dim % gs == 0 else { throw .unsupportedGroupSize(gs, dim: dim) }
            g = gs
        }
        self.dim = dim
        self.bits = bits
        self.scaleMode = scale
        self.groupSize = g
        self.groupCount = dim / g
        self.isLog8 = scale == .vectorLog8
        self.slotCount = dim / 16
        self.slots = SlotTable(slotCount: dim / 16, bits: bits)
        self.codeBytes = dim * bits / 8
        precondition(slots.totalBytes == codeBytes, "lane-slice layout must be exact")
    }

    /// Number of levels, 2^b.
    @inlinable public var levelCount: Int { 1 << bits }
    /// Byte offset of the scale(s).
    @inlinable public var scaleOffset: Int { codeBytes }
    /// Bytes of scales: 1 (log8) or 2 per group (fp16).
    @inlinable public var scaleBytes: Int { isLog8 ? 1 : 2 * groupCount }
    /// Bytes of one vector, everything included.
    @inlinable public var recordBytes: Int { codeBytes + scaleBytes }
    /// Bits per element, everything included.
    public var bitsPerElement: Double { Double(recordBytes * 8) / Double(dim) }
    /// fp16 bytes ÷ stored bytes.
    public var compressionRatio: Double { Double(2 * dim) / Double(recordBytes) }

    public var description: String {
        "CodebookLayout(D=\(dim), b=\(bits), scale=\(scaleMode), \(recordBytes) B/vector)"
    }
}

/// The byte layout of one packed vector: D elements quantized in groups of G at b bits,
/// with k exact outliers. Plain data, shared by every ISA variant of the kernels and
/// by the library, so that all of them agree on every byte.
///
/// ## Record
/// One vector (one layer, KV head and token) is a record of ``recordBytes`` bytes:
///
/// | offset | bytes | content |
/// |---|---|---|
/// | 0 | ``codeBytes`` | the b-bit codes, bit-sliced in 16 lanes (below) |
/// | ``metadataOffset`` | 4 × groups | per group: fp16 `lo`, fp16 `step` (little-endian) |
/// | ``outlierIndexOffset`` | k | outlier element indices (UInt8, ascending) |
/// | ``outlierValueOffset`` | 2 × k | outlier values, fp16 |
///
/// ## Codes: lane slices
/// The D elements are cut into n = D/16 *slots* of 16; element `e = 16·s + l` sits in
/// lane `l` of slot `s`. Each lane holds a bit string of n·b bits: slot `s` at bits
/// `[s·b, s·b + b)`. The 16 lane strings are stored as a sequence of *lane words*, each
/// 16 lanes × w bits (w ∈ {32, 16, 8, 4, 2, 1}): first as many 32-bit words as fit, then the
/// binary decomposition of the remaining bits, widest first. Because b ∈ {1, 2, 4, 8} is a
/// power of two, no slot straddles two words and nothing is wasted: `codeBytes = D·b/8`
/// exactly. 3-bit codes are stored as two such streams: the low 2 bits, then the high bit
/// (again exactly `D·3/8` bytes).
///
/// Unpacking slot `s` is one load, one shift and one mask per 16 elements, and the code
/// becomes a float without an int→float conversion (`(c | 0x4B000000)` as Float − 2²³).
public struct PackedLayout: Hashable, Sendable, CustomStringConvertible {
    /// Elements per vector (head dimension D).
    public let dim: Int
    /// Elements per quantization group (G). Divides `dim`; a multiple of 16.
    public let groupSize: Int
    /// Bits per code (b ∈ {1, 2, 3, 4, 8}).
    public let bits: Int
    /// Exact outliers per vector (k), stored as (UInt8 index, fp16 value).
    public let outlierCount: Int

    /// Number of 16-element slots (D / 16).
    public let slotCount: Int
    /// Number of groups (D / G).
    public let groupCount: Int
    /// Bytes of codes per vector: exactly D·b/8.
    public let codeBytes: Int
    /// Where each slot's codes live: see ``SlotTable``.
    public let slots: SlotTable

    /// Largest supported head dimension (outlier indices are one byte).
    public static let maxDim = 256
    /// Supported code widths.
    public static let supportedBits: [Int] = [1, 2, 3, 4, 8]

    /// Creates a layout, or throws a ``LayoutError`` naming what is unsupported.
    public init(dim: Int, groupSize: Int, bits: Int, outlierCount: Int = 0) throws(LayoutError) {
        guard dim > 0, dim % 16 == 0, dim <= PackedLayout.maxDim else {
            throw .unsupportedDimension(dim)
        }
        guard PackedLayout.supportedBits.contains(bits) else { throw .unsupportedBits(bits) }
        guard groupSize > 0, groupSize % 16 == 0, dim % groupSize == 0 else {
            throw .unsupportedGroupSize(groupSize, dim: dim)
        }
        guard outlierCount >= 0, outlierCount < dim else {
            throw .unsupportedOutlierCount(outlierCount, dim: dim)
        }
        self.dim = dim
        self.groupSize = groupSize
        self.bits = bits
        self.outlierCount = outlierCount
        self.slotCount = dim / 16
        self.groupCount = dim / groupSize
        self.slots = SlotTable(slotCount: dim / 16, bits: bits)
        self.codeBytes = dim * bits / 8
        precondition(slots.totalBytes == codeBytes, "lane-slice layout must be exact")
    }

    /// Byte offset of the per-group (lo, step) fp16 pairs.
    @inlinable public var metadataOffset: Int { codeBytes }
    /// Bytes of per-group metadata (fp16 lo + fp16 step per group).
    @inlinable public var metadataBytes: Int { 4 * groupCount }
    /// Byte offset of the outlier indices.
    @inlinable public var outlierIndexOffset: Int { codeBytes + metadataBytes }
    /// Byte offset of the outlier values (fp16).
    @inlinable public var outlierValueOffset: Int { outlierIndexOffset + outlierCount }
    /// Bytes of outliers, indices included (3 per outlier).
    @inlinable public var outlierBytes: Int { 3 * outlierCount }
    /// Bytes of one packed vector, everything included.
    @inlinable public var recordBytes: Int { codeBytes + metadataBytes + outlierBytes }
    /// Bits per element, everything included (codes, metadata, outliers).
    public var bitsPerElement: Double { Double(recordBytes * 8) / Double(dim) }
    /// fp16 bytes ÷ packed bytes.
    public var compressionRatio: Double { Double(2 * dim) / Double(recordBytes) }
    /// Largest code value, 2^b − 1.
    @inlinable public var maxCode: UInt32 { (1 << UInt32(bits)) - 1 }

    /// The layout of the same vectors with `bits − by` bits (same groups and outliers).
    public func lowered(by k: Int) throws(LayoutError) -> PackedLayout {
        guard k >= 0, bits - k >= 1 else { throw .unsupportedBits(bits - k) }
        return try PackedLayout(dim: dim, groupSize: groupSize, bits: bits - k, outlierCount: outlierCount)
    }

    public var description: String {
        "PackedLayout(D=\(dim), G=\(groupSize), b=\(bits), k=\(outlierCount), \(recordBytes) B/vector)"
    }
}

/// Why a ``PackedLayout`` cannot be made.
public enum LayoutError: Error, Equatable, Sendable, CustomStringConvertible {
    case unsupportedDimension(Int)
    case unsupportedBits(Int)
    case unsupportedGroupSize(Int, dim: Int)
    case unsupportedOutlierCount(Int, dim: Int)

    public var description: String {
        switch self {
        case .unsupportedDimension(let d):
            return "head dimension \(d) is not supported: it must be a multiple of 16 in 16...\(PackedLayout.maxDim) (e.g. 64, 80, 96, 128, 256)"
        case .unsupportedBits(let b):
            return "\(b)-bit codes are not supported: use one of \(PackedLayout.supportedBits)"
        case .unsupportedGroupSize(let g, let d):
            return "group size \(g) does not fit head dimension \(d): it must be a multiple of 16 that divides D (32, 64, 128 or D)"
        case .unsupportedOutlierCount(let k, let d):
            return "\(k) outliers per vector is not possible with D = \(d)"
        }
    }
}

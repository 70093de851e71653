/// Working memory of the decode-attention kernels for one thread: 16 score accumulators of
/// 64 bytes, then a tile of ``tileRows`` (≥ 16) rows × D fp32 (values being summed, or rows of
/// a format decoded a tile at a time; at least ``int8ValueBytes``), then the int8 queries of the integer-dot scores
/// (``int8QueryBytesPerHead`` per query head, ``queryHeads`` of them).
/// Allocated once by the caller (64-byte aligned), reused by every call: the kernels never
/// allocate.
public struct AttentionScratch: @unchecked Sendable {
    public let base: UnsafeMutableRawPointer
    /// Largest head dimension the scratch serves.
    public let dim: Int
    /// Rows of the tile.
    public let tileRows: Int
    /// Query heads the int8 query area serves.
    public let queryHeads: Int

    /// Byte offset of the values tile.
    public static let tileOffset = 64 * 16

    /// Bytes of one query head's int8 forms (D = 128): 7 × 64.
    public static let int8QueryBytesPerHead = 448

    /// Bytes the integer-dot values kernels need in the tile area, whatever the tile's shape:
    /// the code-map kernel's 9792 (64 tokens × 128 bytes of int8 levels, 4 heads × 64 weights
    /// and their bytes, 16 scales, a padded weight row block); the affine kernel uses 5440 of them.
    public static let int8ValueBytes = 9792

    /// Bytes of the tile area: `tileRows` × `dim` floats, at least ``int8ValueBytes``.
    public static func tileBytes(dim: Int, tileRows: Int) -> Int { max(4 * max(tileRows, 16) * max(dim, 16), int8ValueBytes) }

    /// Bytes for head dimension `dim`.
    public static func byteCount(dim: Int, tileRows: Int = 16, queryHeads: Int = 4) -> Int {
        tileOffset + tileBytes(dim: dim, tileRows: tileRows) + int8QueryBytesPerHead * max(queryHeads, 1)
    }

    public init(dim: Int, tileRows: Int = 16, queryHeads: Int = 4) {
        self.dim = dim
        self.tileRows = max(tileRows, 16)
        self.queryHeads = max(queryHeads, 1)
        let bytes = AttentionScratch.byteCount(dim: dim, tileRows: tileRows, queryHeads: queryHeads)
        self.base = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
    }

    /// The tile: ``tileRows`` × ``dim`` floats.
    public var tileRowsPointer: UnsafeMutablePointer<Float> { (base + AttentionScratch.tileOffset).assumingMemoryBound(to: Float.self) }

    /// The int8 query area (64-byte aligned).
    public var int8Queries: UnsafeMutableRawPointer { base + AttentionScratch.tileOffset + AttentionScratch.tileBytes(dim: dim, tileRows: tileRows) }

    /// Frees the memory; the scratch must not be used afterwards.
    public func deallocate() { base.deallocate() }
}

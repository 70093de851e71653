/// Working memory of the decode-attention kernels for one thread: 16 score accumulators of
/// 64 bytes, then a tile of ``tileRows`` (≥ 16) rows × D fp32 (values being summed, or rows of
/// a format decoded a tile at a time).
/// Allocated once by the caller (64-byte aligned), reused by every call: the kernels never
/// allocate.
public struct AttentionScratch: @unchecked Sendable {
    public let base: UnsafeMutableRawPointer
    /// Largest head dimension the scratch serves.
    public let dim: Int
    /// Rows of the tile.
    public let tileRows: Int

    /// Byte offset of the values tile.
    public static let tileOffset = 64 * 16

    /// Bytes for head dimension `dim`.
    public static func byteCount(dim: Int, tileRows: Int = 16) -> Int { tileOffset + 4 * max(tileRows, 16) * max(dim, 16) }

    public init(dim: Int, tileRows: Int = 16) {
        self.dim = dim
        self.tileRows = max(tileRows, 16)
        let bytes = AttentionScratch.byteCount(dim: dim, tileRows: tileRows)
        self.base = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
    }

    /// The tile: ``tileRows`` × ``dim`` floats.
    public var tileRowsPointer: UnsafeMutablePointer<Float> { (base + AttentionScratch.tileOffset).assumingMemoryBound(to: Float.self) }

    /// Frees the memory; the scratch must not be used afterwards.
    public func deallocate() { base.deallocate() }
}

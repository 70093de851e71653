/// Where the codes of each 16-element slot live inside a packed vector's code bytes.
///
/// One entry per slot and stream, packed in a `UInt32`:
/// bits 0–11 the byte offset of the lane word, bits 12–14 log2 of its lane width w
/// (0…5 for 1…32 bits), bits 16–20 the bit offset of the slot inside each lane.
/// Stream 0 holds the codes (for 3-bit codes, their low 2 bits); stream 1 exists only
/// for 3-bit codes and holds the high bit.
///
/// Lane word of width w: 16 lanes × w bits = 2·w bytes. For w ≥ 8 the word is u = w/2
/// little-endian 32-bit units and lane `l` is bits `[w·(l / u), w·(l / u) + w)` of unit
/// `l % u` (so w = 32 is plain lane order, and widening 16- or 8-bit lanes to 32 bits is
/// shifts and masks, no shuffles); for w < 8, lane `l` is bits `[l·w, l·w + w)` of the
/// word read as one little-endian integer.
public struct SlotTable: Hashable, Sendable {
    /// Entries of stream 0 (slot s in lane s).
    public let stream0: SIMD16<UInt32>
    /// Entries of stream 1 (3-bit codes only, else all zero).
    public let stream1: SIMD16<UInt32>
    /// Bits per code in stream 0 (2 for 3-bit codes).
    public let bits0: Int
    /// Bits per code in stream 1 (1 for 3-bit codes, 0 otherwise).
    public let bits1: Int
    /// Total bytes of both streams.
    public let totalBytes: Int

    init(slotCount n: Int, bits: Int) {
        precondition(n >= 1 && n <= 16)
        let (b0, b1) = bits == 3 ? (2, 1) : (bits, 0)
        var offset = 0
        let s0 = SlotTable.stream(slotCount: n, bits: b0, offset: &offset)
        let s1 = b1 > 0 ? SlotTable.stream(slotCount: n, bits: b1, offset: &offset) : SIMD16<UInt32>()
        self.stream0 = s0
        self.stream1 = s1
        self.bits0 = b0
        self.bits1 = b1
        self.totalBytes = offset
    }

    /// Lays out one stream of `n` slots of `b` bits each, starting at byte `offset`.
    private static func stream(slotCount n: Int, bits b: Int, offset: inout Int) -> SIMD16<UInt32> {
        var entries = SIMD16<UInt32>()
        var slot = 0
        var remainingBits = n * b
        var width = 32
        while remainingBits > 0 {
            while width > remainingBits { width /= 2 }
            // One lane word of `width` bits holds width / b slots.
            let slotsInWord = width / b
            for j in 0..<slotsInWord {
                entries[slot] = SlotTable.entry(byteOffset: offset, width: width, bitOffset: j * b)
                slot += 1
            }
            offset += 2 * width
            remainingBits -= width
        }
        precondition(slot == n)
        return entries
    }

    /// Packs one entry.
    public static func entry(byteOffset: Int, width: Int, bitOffset: Int) -> UInt32 {
        let log2w = UInt32(width.trailingZeroBitCount)
        return UInt32(byteOffset) | (log2w << 12) | (UInt32(bitOffset) << 16)
    }

    /// Byte offset of an entry's lane word.
    @inlinable @inline(__always)
    public static func byteOffset(_ e: UInt32) -> Int { Int(e & 0xFFF) }
    /// Lane width of an entry's word, in bits.
    @inlinable @inline(__always)
    public static func width(_ e: UInt32) -> Int { 1 << Int((e >> 12) & 7) }
    /// Bit offset of the slot inside each lane.
    @inlinable @inline(__always)
    public static func bitOffset(_ e: UInt32) -> UInt32 { (e >> 16) & 31 }
}

import QAQLayout

/// Group `g`'s (lo, step) of a record in fp32. (Kept out of SIMD lanes: inserting a lane
/// at a dynamic index spills the whole vector and stalls store forwarding.)
@inline(__always)
func groupMetadata(_ record: UnsafeRawPointer, _ layout: PackedLayout, _ g: Int) -> (lo: Float, step: Float) {
    (Float(record.loadUnaligned(fromByteOffset: layout.metadataOffset + 4 * g, as: Float16.self)),
     Float(record.loadUnaligned(fromByteOffset: layout.metadataOffset + 4 * g + 2, as: Float16.self)))
}

/// Calls `body(s, x̂)` for every slot of an affine record in order, with the 16 values
/// decoded in registers: `lo + (c + ½)·step` of the slot's group (a multiply then an add,
/// as ``Reference/value(_:_:element:)``); outliers are not applied.
@inline(__always)
func forEachDecodedSlot(_ record: UnsafeRawPointer, _ layout: PackedLayout, _ body: (Int, F32x16) -> Void) {
    let slotsPerGroup = layout.groupSize / 16
    let half = F32x16(repeating: 0.5)
    var g = 0, left = slotsPerGroup           // group counter: no division in the loop
    var (lo, step) = groupMetadata(record, layout, 0)
    forEachSlot(record, layout.slots, slotCount: layout.slotCount) { s, c in
        if left == 0 {
            g += 1
            left = slotsPerGroup
            (lo, step) = groupMetadata(record, layout, g)
        }
        left -= 1
        body(s, F32x16(repeating: lo) + (codesToFloat(c) + half) * F32x16(repeating: step))
    }
}

/// Outlier `j` of a record: (element index, value).
@inline(__always)
func outlier(_ record: UnsafeRawPointer, _ layout: PackedLayout, _ j: Int) -> (index: Int, value: Float) {
    let i = Int(record.load(fromByteOffset: layout.outlierIndexOffset + j, as: UInt8.self))
    let v = Float(record.loadUnaligned(fromByteOffset: layout.outlierValueOffset + 2 * j, as: Float16.self))
    return (i, v)
}

extension Reference {
    /// Group `g`'s (lo, step) of a record, as stored.
    public static func metadata(_ record: UnsafeRawPointer, _ layout: PackedLayout, group g: Int) -> (lo: Float16, step: Float16) {
        (record.loadUnaligned(fromByteOffset: layout.metadataOffset + 4 * g, as: Float16.self),
         record.loadUnaligned(fromByteOffset: layout.metadataOffset + 4 * g + 2, as: Float16.self))
    }

    /// The dequantized value of element `i`: `lo + (c + 0.5)·step` in fp32 (a multiply
    /// then an add, no FMA), or the stored outlier value.
    public static func value(_ record: UnsafeRawPointer, _ layout: PackedLayout, element i: Int) -> Float {
        for j in 0..<layout.outlierCount {
            let o = outlier(record, layout, j)
            if o.index == i { return o.value }
        }
        let (lo, step) = metadata(record, layout, group: i / layout.groupSize)
        return Float(lo) + (Float(code(record, layout, element: i)) + 0.5) * Float(step)
    }
}

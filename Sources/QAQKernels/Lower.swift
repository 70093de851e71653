import QAQLayout

extension Kernels {
    /// Lowers `count` records from `from.bits` to `to.bits` bits (same D, G, outliers):
    /// every code becomes `code >> k` and every step `step · 2^k` (exact in fp16), k =
    /// from.bits − to.bits. By the nesting property the result equals quantizing the
    /// original at `to.bits`, so lowering adds no error of its own. `src` and `dst` may
    /// not overlap.
    public static func lower(
        _ src: UnsafeRawPointer, count: Int, from: PackedLayout, to: PackedLayout,
        dst: UnsafeMutableRawPointer
    ) {
        let k = UInt32(from.bits - to.bits)
        let scale = Float16(Float(1 << k))
        for t in 0..<count {
            let a = src + t * from.recordBytes
            let b = dst + t * to.recordBytes
            zeroBytes(b, to.codeBytes)
            for s in 0..<from.slotCount {
                packSlot(b, to.slots, s, unpackSlot(a, from.slots, s) &>> U32x16(repeating: k))
            }
            for g in 0..<from.groupCount {
                let lo = a.loadUnaligned(fromByteOffset: from.metadataOffset + 4 * g, as: Float16.self)
                let step = a.loadUnaligned(fromByteOffset: from.metadataOffset + 4 * g + 2, as: Float16.self)
                b.storeBytes(of: lo, toByteOffset: to.metadataOffset + 4 * g, as: Float16.self)
                b.storeBytes(of: step * scale, toByteOffset: to.metadataOffset + 4 * g + 2, as: Float16.self)
            }
            (b + to.outlierIndexOffset).copyMemory(from: a + from.outlierIndexOffset, byteCount: from.outlierBytes)
        }
    }
}

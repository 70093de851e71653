import QAQLayout

extension Kernels {
    /// Dequantizes `count` consecutive records into fp32 rows of `dstStride` elements.
    /// Element values are bit-exact with ``Reference/value(_:_:element:)``.
    public static func dequantize(
        _ src: UnsafeRawPointer, count: Int, layout: PackedLayout,
        dst: UnsafeMutablePointer<Float>, dstStride: Int
    ) {
        for v in 0..<count {
            let record = src + v * layout.recordBytes
            let out = UnsafeMutableRawPointer(dst + v * dstStride)
            forEachDecodedSlot(record, layout) { s, x in
                out.storeBytes(of: x, toByteOffset: 64 * s, as: F32x16.self)
            }
            for j in 0..<layout.outlierCount {
                let o = outlier(record, layout, j)
                dst[v * dstStride + o.index] = o.value
            }
        }
    }
}

extension Reference {
    /// Scalar reference of ``Kernels/dequantize(_:count:layout:dst:dstStride:)``.
    public static func dequantize(
        _ src: UnsafeRawPointer, count: Int, layout: PackedLayout,
        dst: UnsafeMutablePointer<Float>, dstStride: Int
    ) {
        for v in 0..<count {
            for i in 0..<layout.dim {
                dst[v * dstStride + i] = value(src + v * layout.recordBytes, layout, element: i)
            }
        }
    }
}

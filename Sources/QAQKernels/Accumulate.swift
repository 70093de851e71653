import QAQLayout

extension Kernels {
    /// Weighted accumulation of `count` consecutive records into an fp32 vector:
    /// `acc[i] += Σₜ w[t]·x̂ₜ[i]`, values decoded in registers as ``dequantize`` does.
    public static func accumulate(
        weights w: UnsafePointer<Float>, _ src: UnsafeRawPointer, count: Int,
        layout: PackedLayout, into acc: UnsafeMutablePointer<Float>
    ) {
        let out = UnsafeMutableRawPointer(acc)
        for t in 0..<count {
            let record = src + t * layout.recordBytes
            let wt = w[t]
            let wv = F32x16(repeating: wt)
            forEachDecodedSlot(record, layout) { s, x in
                var a = out.loadUnaligned(fromByteOffset: 64 * s, as: F32x16.self)
                #if HAS_FMA
                a.addProduct(wv, x)
                #else
                a += wv * x
                #endif
                out.storeBytes(of: a, toByteOffset: 64 * s, as: F32x16.self)
            }
            for j in 0..<layout.outlierCount {
                let o = outlier(record, layout, j)
                let (lo, step) = groupMetadata(record, layout, o.index / layout.groupSize)
                acc[o.index] += wt * (o.value - (lo + 0.5 * step))
            }
        }
    }
}

extension Reference {
    /// Scalar reference of ``Kernels/accumulate(weights:_:count:layout:into:)`` in fp64.
    public static func accumulate(
        weights w: UnsafePointer<Float>, _ src: UnsafeRawPointer, count: Int,
        layout: PackedLayout, into acc: UnsafeMutablePointer<Float>
    ) {
        for i in 0..<layout.dim {
            var a = Double(acc[i])
            for t in 0..<count {
                a += Double(w[t]) * Double(value(src + t * layout.recordBytes, layout, element: i))
            }
            acc[i] = Float(a)
        }
    }
}

import QAQLayout

extension Kernels {
    /// Weighted accumulation of `count` consecutive records into an fp32 vector:
    /// `acc[i] += Σₜ w[t]·x̂ₜ[i]`, values decoded in registers (`w·lo + (w·step)·(c + ½)`).
    public static func accumulate(
        weights w: UnsafePointer<Float>, _ src: UnsafeRawPointer, count: Int,
        layout: PackedLayout, into acc: UnsafeMutablePointer<Float>
    ) {
        let slotsPerGroup = layout.groupSize / 16
        let half = F32x16(repeating: 0.5)
        let out = UnsafeMutableRawPointer(acc)
        for t in 0..<count {
            let record = src + t * layout.recordBytes
            let (lo, step) = loadMetadata(record, layout)
            let wt = w[t]
            let wlo = lo * F32x16(repeating: wt)
            let wstep = step * F32x16(repeating: wt)
            for s in 0..<layout.slotCount {
                let g = s / slotsPerGroup
                let c = codesToFloat(unpackSlot(record, layout.slots, s)) + half
                var a = out.loadUnaligned(fromByteOffset: 64 * s, as: F32x16.self)
                #if HAS_FMA
                a.addProduct(c, F32x16(repeating: wstep[g]))
                a += F32x16(repeating: wlo[g])
                #else
                a += c * F32x16(repeating: wstep[g]) + F32x16(repeating: wlo[g])
                #endif
                out.storeBytes(of: a, toByteOffset: 64 * s, as: F32x16.self)
            }
            for j in 0..<layout.outlierCount {
                let o = outlier(record, layout, j)
                let g = o.index / layout.groupSize
                acc[o.index] += wt * (o.value - (lo[g] + 0.5 * step[g]))
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

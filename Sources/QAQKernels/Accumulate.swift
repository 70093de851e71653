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
            let wt = w[t]
            var g = 0, left = slotsPerGroup
            var (lo, step) = groupMetadata(record, layout, 0)
            var ws = F32x16(repeating: wt * step), wl = F32x16(repeating: wt * lo)
            forEachSlot(record, layout.slots, slotCount: layout.slotCount) { s, c in
                if left == 0 {
                    g += 1
                    left = slotsPerGroup
                    (lo, step) = groupMetadata(record, layout, g)
                    ws = F32x16(repeating: wt * step)
                    wl = F32x16(repeating: wt * lo)
                }
                left -= 1
                let cf = codesToFloat(c) + half
                var a = out.loadUnaligned(fromByteOffset: 64 * s, as: F32x16.self)
                #if HAS_FMA
                a.addProduct(cf, ws)
                a += wl
                #else
                a += cf * ws + wl
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

import QAQLayout

extension Kernels {
    /// Scores of an fp32 query against `count` consecutive records:
    /// `out[t] = Σᵢ q[i]·x̂ₜ[i]` over the dequantized values (outliers exact).
    ///
    /// Computed per group as `(lo + step/2)·Σq + step·Σ q·c` plus outlier corrections, so
    /// the result equals the reference to fp32 rounding of a different summation order.
    public static func dot(
        query q: UnsafePointer<Float>, _ src: UnsafeRawPointer, count: Int,
        layout: PackedLayout, out: UnsafeMutablePointer<Float>
    ) {
        let slotsPerGroup = layout.groupSize / 16
        let qraw = UnsafeRawPointer(q)
        // Σq per group, once per call.
        var qsum = F32x16()
        for g in 0..<layout.groupCount {
            var acc = F32x16()
            for s in (g * slotsPerGroup)..<((g + 1) * slotsPerGroup) {
                acc += qraw.loadUnaligned(fromByteOffset: 64 * s, as: F32x16.self)
            }
            qsum[g] = hsum(acc)
        }
        for t in 0..<count {
            let record = src + t * layout.recordBytes
            let (lo, step) = loadMetadata(record, layout)
            var perGroup = F32x16()
            for g in 0..<layout.groupCount {
                var acc = F32x16()
                for s in (g * slotsPerGroup)..<((g + 1) * slotsPerGroup) {
                    let c = codesToFloat(unpackSlot(record, layout.slots, s))
                    let qs = qraw.loadUnaligned(fromByteOffset: 64 * s, as: F32x16.self)
                    #if HAS_FMA
                    acc.addProduct(qs, c)
                    #else
                    acc += qs * c
                    #endif
                }
                perGroup[g] = hsum(acc)
            }
            var score = hsum((lo + step * F32x16(repeating: 0.5)) * qsum + step * perGroup)
            for j in 0..<layout.outlierCount {
                let o = outlier(record, layout, j)
                let g = o.index / layout.groupSize
                score += q[o.index] * (o.value - (lo[g] + 0.5 * step[g]))
            }
            out[t] = score
        }
    }
}

extension Reference {
    /// Scalar reference of ``Kernels/dot(query:_:count:layout:out:)``: Σ q·x̂ in fp64
    /// over ``value(_:_:element:)``, rounded to fp32 once.
    public static func dot(
        query q: UnsafePointer<Float>, _ src: UnsafeRawPointer, count: Int,
        layout: PackedLayout, out: UnsafeMutablePointer<Float>
    ) {
        for t in 0..<count {
            var acc: Double = 0
            for i in 0..<layout.dim {
                acc += Double(q[i]) * Double(value(src + t * layout.recordBytes, layout, element: i))
            }
            out[t] = Float(acc)
        }
    }
}

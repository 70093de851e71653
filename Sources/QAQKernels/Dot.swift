import QAQLayout

extension Kernels {
    /// Scores of an fp32 query against `count` consecutive records:
    /// `out[t] = Σᵢ q[i]·x̂ₜ[i]` over the dequantized values (outliers exact).
    ///
    /// Values are decoded in registers (`lo + (c + ½)·step`, as ``dequantize``) and
    /// multiplied into one fp32 accumulator per vector, so the result equals the reference
    /// to fp32 rounding of a different summation order.
    public static func dot(
        query q: UnsafePointer<Float>, _ src: UnsafeRawPointer, count: Int,
        layout: PackedLayout, out: UnsafeMutablePointer<Float>
    ) {
        let qraw = UnsafeRawPointer(q)
        for t in 0..<count {
            let record = src + t * layout.recordBytes
            var acc0 = F32x16(), acc1 = F32x16()
            forEachDecodedSlot(record, layout) { s, x in
                let qs = qraw.loadUnaligned(fromByteOffset: 64 * s, as: F32x16.self)
                // Two accumulators, alternating, to halve the dependency chain.
                #if HAS_FMA
                if s & 1 == 0 { acc0.addProduct(qs, x) } else { acc1.addProduct(qs, x) }
                #else
                if s & 1 == 0 { acc0 += qs * x } else { acc1 += qs * x }
                #endif
            }
            var score = hsum(acc0 + acc1)
            for j in 0..<layout.outlierCount {
                let o = outlier(record, layout, j)
                let (lo, step) = groupMetadata(record, layout, o.index / layout.groupSize)
                score += q[o.index] * (o.value - (lo + 0.5 * step))
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

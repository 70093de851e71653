import QAQLayout

extension Kernels {
    /// Scores of a group of `heads` queries against `count` consecutive affine records —
    /// the keys of one KV head read once for every q head of its GQA group:
    /// `out[h·outStride + t] = Σᵢ q[h·D + i]·k̂ₜ[i]` (queries already scaled by 1/√D).
    /// Values are decoded in registers exactly as ``dequantize`` does; outliers exact.
    /// `heads` ≤ 8.
    public static func scores(
        queries q: UnsafePointer<Float>, heads: Int, _ src: UnsafeRawPointer, count: Int,
        layout: PackedLayout, out: UnsafeMutablePointer<Float>, outStride: Int
    ) {
        let d = layout.dim
        let qraw = UnsafeRawPointer(q)
        for t in 0..<count {
            let record = src + t * layout.recordBytes
            var acc: InlineArray<8, F32x16> = [F32x16(), F32x16(), F32x16(), F32x16(), F32x16(), F32x16(), F32x16(), F32x16()]
            forEachDecodedSlot(record, layout) { s, x in
                for h in 0..<heads {
                    let qs = qraw.loadUnaligned(fromByteOffset: 4 * (h * d + 16 * s), as: F32x16.self)
                    #if HAS_FMA
                    acc[h].addProduct(qs, x)
                    #else
                    acc[h] += qs * x
                    #endif
                }
            }
            for h in 0..<heads {
                var score = hsum(acc[h])
                for j in 0..<layout.outlierCount {
                    let o = outlier(record, layout, j)
                    let (lo, step) = groupMetadata(record, layout, o.index / layout.groupSize)
                    score += q[h * d + o.index] * (o.value - (lo + 0.5 * step))
                }
                out[h * outStride + t] = score
            }
        }
    }

    /// Weighted accumulation of `count` consecutive affine records into `heads` outputs:
    /// `out[h·D + i] += Σₜ w[h·wStride + t]·v̂ₜ[i]` — the values of one KV head read once for
    /// every q head of its group. `heads` ≤ 8.
    public static func accumulateHeads(
        weights w: UnsafePointer<Float>, wStride: Int, heads: Int, _ src: UnsafeRawPointer, count: Int,
        layout: PackedLayout, out: UnsafeMutablePointer<Float>
    ) {
        let d = layout.dim
        let o = UnsafeMutableRawPointer(out)
        for t in 0..<count {
            let record = src + t * layout.recordBytes
            forEachDecodedSlot(record, layout) { s, x in
                for h in 0..<heads {
                    let off = 4 * (h * d + 16 * s)
                    var a = o.loadUnaligned(fromByteOffset: off, as: F32x16.self)
                    #if HAS_FMA
                    a.addProduct(F32x16(repeating: w[h * wStride + t]), x)
                    #else
                    a += F32x16(repeating: w[h * wStride + t]) * x
                    #endif
                    o.storeBytes(of: a, toByteOffset: off, as: F32x16.self)
                }
            }
            for j in 0..<layout.outlierCount {
                let ol = outlier(record, layout, j)
                let (lo, step) = groupMetadata(record, layout, ol.index / layout.groupSize)
                for h in 0..<heads { out[h * d + ol.index] += w[h * wStride + t] * (ol.value - (lo + 0.5 * step)) }
            }
        }
    }

    /// Scores of `heads` queries against `count` fp32 rows (`[count][D]`), for decoded tiles
    /// and windows.
    public static func scoresF32(
        queries q: UnsafePointer<Float>, heads: Int, dim d: Int, _ rows: UnsafePointer<Float>, count: Int,
        out: UnsafeMutablePointer<Float>, outStride: Int
    ) {
        let qraw = UnsafeRawPointer(q), r = UnsafeRawPointer(rows)
        for t in 0..<count {
            for h in 0..<heads {
                var acc = F32x16()
                var s = 0
                while s < d {
                    let x = r.loadUnaligned(fromByteOffset: 4 * (t * d + s), as: F32x16.self)
                    let qs = qraw.loadUnaligned(fromByteOffset: 4 * (h * d + s), as: F32x16.self)
                    #if HAS_FMA
                    acc.addProduct(qs, x)
                    #else
                    acc += qs * x
                    #endif
                    s += 16
                }
                out[h * outStride + t] = hsum(acc)
            }
        }
    }

    /// `out[h·D + i] += Σₜ w[h·wStride + t]·rows[t·D + i]` over fp32 rows.
    public static func accumulateHeadsF32(
        weights w: UnsafePointer<Float>, wStride: Int, heads: Int, dim d: Int, _ rows: UnsafePointer<Float>, count: Int,
        out: UnsafeMutablePointer<Float>
    ) {
        let o = UnsafeMutableRawPointer(out), r = UnsafeRawPointer(rows)
        for t in 0..<count {
            var s = 0
            while s < d {
                let x = r.loadUnaligned(fromByteOffset: 4 * (t * d + s), as: F32x16.self)
                for h in 0..<heads {
                    let off = 4 * (h * d + s)
                    var a = o.loadUnaligned(fromByteOffset: off, as: F32x16.self)
                    #if HAS_FMA
                    a.addProduct(F32x16(repeating: w[h * wStride + t]), x)
                    #else
                    a += F32x16(repeating: w[h * wStride + t]) * x
                    #endif
                    o.storeBytes(of: a, toByteOffset: off, as: F32x16.self)
                }
                s += 16
            }
        }
    }
}

extension Reference {
    /// Scalar reference of ``Kernels/scores(queries:heads:_:count:layout:out:outStride:)``
    /// (fp64 sums over ``value(_:_:element:)``).
    public static func scores(
        queries q: UnsafePointer<Float>, heads: Int, _ src: UnsafeRawPointer, count: Int,
        layout: PackedLayout, out: UnsafeMutablePointer<Float>, outStride: Int
    ) {
        for t in 0..<count {
            for h in 0..<heads {
                var acc = 0.0
                for i in 0..<layout.dim {
                    acc += Double(q[h * layout.dim + i]) * Double(value(src + t * layout.recordBytes, layout, element: i))
                }
                out[h * outStride + t] = Float(acc)
            }
        }
    }

    /// Scalar reference of ``Kernels/accumulateHeads(weights:wStride:heads:_:count:layout:out:)``.
    public static func accumulateHeads(
        weights w: UnsafePointer<Float>, wStride: Int, heads: Int, _ src: UnsafeRawPointer, count: Int,
        layout: PackedLayout, out: UnsafeMutablePointer<Float>
    ) {
        for h in 0..<heads {
            for i in 0..<layout.dim {
                var acc = Double(out[h * layout.dim + i])
                for t in 0..<count {
                    acc += Double(w[h * wStride + t]) * Double(value(src + t * layout.recordBytes, layout, element: i))
                }
                out[h * layout.dim + i] = Float(acc)
            }
        }
    }
}

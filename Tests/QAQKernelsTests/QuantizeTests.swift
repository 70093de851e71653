import QAQ
import QAQKernelsBase
import QAQTestSupport
import Testing

@Suite("Quantize / dequantize kernels vs the scalar reference")
struct QuantizeTests {
    static let layouts = sweepLayouts()

    @Test("codes bit-exact and values exact at every ISA level", arguments: ISALevel.available)
    func bitExact(isa: ISALevel) throws {
        let kernels = KernelSet.forLevel(isa)
        for (n, layout) in Self.layouts.enumerated() {
            let x = DataMaker.rows(count: 7, dim: layout.dim, seed: UInt64(n + 1))
            let simd = pack(x, layout: layout, kernels: kernels)
            let ref = pack(x, layout: layout, kernels: .reference)
            #expect(simd.status == .ok && ref.status == .ok)
            #expect(simd.bytes == ref.bytes, "\(isa) \(layout): packed bytes differ from the reference")
            let a = unpack(simd.bytes, layout: layout, kernels: kernels)
            let b = unpack(ref.bytes, layout: layout, kernels: .reference)
            #expect(a.map(\.bitPattern) == b.map(\.bitPattern), "\(isa) \(layout): dequantized values differ")
        }
    }

    @Test("|x − x̂| ≤ step/2 for non-outliers; outliers exact; outliers excluded from lo/hi")
    func errorBound() throws {
        for (n, layout) in Self.layouts.enumerated() {
            let x = DataMaker.rows(count: 5, dim: layout.dim, seed: UInt64(100 + n))
            let packed = pack(x, layout: layout, kernels: .active)
            #expect(packed.status == .ok)
            let xhat = unpack(packed.bytes, layout: layout, kernels: .active)
            packed.bytes.withUnsafeBytes { raw in
                for t in 0..<5 {
                    let record = raw.baseAddress! + t * layout.recordBytes
                    var outlierIdx = Set<Int>()
                    for j in 0..<layout.outlierCount {
                        let i = Int(record.load(fromByteOffset: layout.outlierIndexOffset + j, as: UInt8.self))
                        outlierIdx.insert(i)
                        #expect(xhat[t * layout.dim + i] == Float(Float16(x[t * layout.dim + i])))
                    }
                    #expect(outlierIdx.count == layout.outlierCount)
                    // The outliers are the most extreme values (no non-outlier beyond them on its side).
                    for g in 0..<layout.groupCount {
                        let (lo, step) = Reference.metadata(record, layout, group: g)
                        var mn = Float.infinity, mx = -Float.infinity
                        for i in (g * layout.groupSize)..<((g + 1) * layout.groupSize) where !outlierIdx.contains(i) {
                            let v = x[t * layout.dim + i]
                            mn = min(mn, v); mx = max(mx, v)
                            let err = abs(v - xhat[t * layout.dim + i])
                            let bound = Float(step) / 2 * (1 + 1e-5) + 4 * Float.ulpOfOne * max(abs(v), abs(Float(lo)))
                            #expect(err <= bound, "\(layout) t=\(t) i=\(i): |\(v) − \(xhat[t * layout.dim + i])| = \(err) > \(bound)")
                        }
                        if mn <= mx {
                            // lo/step cover exactly the non-outlier range, tightly (within fp16 rounding).
                            #expect(Float(lo) <= mn)
                            #expect(Float(lo) + Float(1 << layout.bits) * Float(step) >= mx)
                            let span = Float(1 << layout.bits) * Float(step)
                            #expect(span <= (mx - Float(lo)) * 1.002 + 1e-6, "\(layout): range not tight")
                        }
                    }
                }
            }
        }
    }

    @Test("fp16 input quantizes exactly like its fp32 widening", arguments: ISALevel.available)
    func float16Input(isa: ISALevel) throws {
        let kernels = KernelSet.forLevel(isa)
        for (n, layout) in Self.layouts.enumerated() where n % 3 == 0 {
            let x = DataMaker.rows(count: 4, dim: layout.dim, seed: UInt64(200 + n)).map { Float(Float16($0)) }
            let a = pack(x, layout: layout, kernels: kernels, elementType: .float16)
            let b = pack(x, layout: layout, kernels: kernels, elementType: .float32)
            #expect(a.status == .ok)
            #expect(a.bytes == b.bytes, "\(isa) \(layout)")
        }
    }

    @Test("nesting: lowering b by k equals quantizing at b − k", arguments: ISALevel.available)
    func nesting(isa: ISALevel) throws {
        let kernels = KernelSet.forLevel(isa)
        for d in [64, 96, 128] {
            for k in [0, 2] {
                let x = DataMaker.rows(count: 6, dim: d, seed: UInt64(300 + d + k))
                for (from, to) in [(8, 4), (8, 3), (8, 2), (8, 1), (4, 3), (4, 2), (4, 1), (3, 2), (3, 1), (2, 1), (4, 4)] {
                    let lf = try PackedLayout(dim: d, groupSize: 32, bits: from, outlierCount: k)
                    let lt = try PackedLayout(dim: d, groupSize: 32, bits: to, outlierCount: k)
                    let v = try PackedVectors.quantizing(x, layout: lf, kernels: kernels)
                    let lowered = try v.lower(bits: to)
                    let direct = try PackedVectors.quantizing(x, layout: lt, kernels: kernels)
                    #expect(lowered.layout == lt)
                    #expect(Array(UnsafeRawBufferPointer(start: lowered.bytes, count: lowered.byteCount))
                            == Array(UnsafeRawBufferPointer(start: direct.bytes, count: direct.byteCount)),
                            "\(isa) D=\(d) k=\(k) \(from)→\(to)")
                }
                let v4 = try PackedVectors.quantizing(x, layout: try PackedLayout(dim: d, groupSize: 32, bits: 4), kernels: kernels)
                #expect(throws: QuantizationError.cannotLower(from: 4, to: 8)) { try v4.lower(bits: 8) }
                #expect(throws: QuantizationError.cannotLower(from: 4, to: 0)) { try v4.lower(bits: 0) }
            }
        }
    }

    @Test("zero-range groups cost nothing in error: step 0, values exact", arguments: ISALevel.available)
    func zeroRange(isa: ISALevel) throws {
        let kernels = KernelSet.forLevel(isa)
        let layout = try PackedLayout(dim: 64, groupSize: 32, bits: 4)
        var x = [Float](repeating: 0, count: 64 * 3)
        for i in 0..<64 { x[64 + i] = 1.5 }                      // a constant token
        for i in 0..<32 { x[128 + i] = -0.25 }                    // one constant group…
        for i in 32..<64 { x[128 + i] = Float(i) / 8 }            // …beside a varying one
        let packed = pack(x, layout: layout, kernels: kernels)
        #expect(packed.status == .ok)
        let xhat = unpack(packed.bytes, layout: layout, kernels: kernels)
        #expect(Array(xhat[0..<160]) == Array(x[0..<160]))
        packed.bytes.withUnsafeBytes { raw in
            #expect(Reference.metadata(raw.baseAddress!, layout, group: 0).step == 0)
            #expect(Reference.metadata(raw.baseAddress! + 2 * layout.recordBytes, layout, group: 0).step == 0)
        }
    }

    @Test("NaN, Inf and out-of-range input: typed status naming the vector", arguments: ISALevel.available)
    func badInput(isa: ISALevel) throws {
        let kernels = KernelSet.forLevel(isa)
        let layout = try PackedLayout(dim: 128, groupSize: 32, bits: 4, outlierCount: 1)
        for (bad, code) in [(Float.nan, KernelStatus.Code.nonFinite), (.infinity, .nonFinite),
                            (-.infinity, .nonFinite), (70000, .outOfFloat16Range), (-1e6, .outOfFloat16Range)] {
            var x = DataMaker.rows(count: 4, dim: 128, seed: 7)
            x[2 * 128 + 77] = bad
            let r = pack(x, layout: layout, kernels: kernels)
            #expect(r.status == KernelStatus(code: code, vector: 2), "\(isa) \(bad)")
            let expected: QuantizationError = code == .nonFinite ? .nonFinite(vector: 2) : .outOfFloat16Range(vector: 2)
            #expect(throws: expected) { try PackedVectors.quantizing(x, layout: layout, kernels: kernels) }
        }
        #expect(throws: QuantizationError.shapeMismatch(expected: "a multiple of D = 128 elements", got: "100 elements")) {
            try PackedVectors.quantizing([Float](repeating: 0, count: 100), layout: layout)
        }
    }

    // The kernel runs copies specialized per width (and for fp32 rows of D = 64 and 128 with
    // G = 32) when a layout has no outliers; the tests below reach each of them.

    @Test("no outliers: every width × group (16 included) × D, fp32 and fp16, bit-exact", arguments: ISALevel.available)
    func specializedCopies(isa: ISALevel) throws {
        let kernels = KernelSet.forLevel(isa)
        var layouts = sweepLayouts(outliers: [0])
        for d in [32, 64, 128, 256] {
            for b in PackedLayout.supportedBits { layouts.append(try PackedLayout(dim: d, groupSize: 16, bits: b)) }
        }
        for (n, layout) in layouts.enumerated() {
            // Spread scales: one tiny group, one large one, zero and constant groups.
            var x = DataMaker.rows(count: 9, dim: layout.dim, seed: UInt64(500 + n))
            for i in 0..<layout.dim { x[3 * layout.dim + i] *= 1e-6 }
            for i in 0..<layout.dim { x[4 * layout.dim + i] *= 1000 }
            for i in 0..<layout.dim { x[5 * layout.dim + i] = 0 }
            for i in 0..<layout.groupSize { x[6 * layout.dim + i] = -2.75 }
            for type in [ElementType.float32, .float16] {
                let xs = type == .float16 ? x.map { Float(Float16($0)) } : x
                let simd = pack(xs, layout: layout, kernels: kernels, elementType: type)
                let ref = pack(xs, layout: layout, kernels: .reference, elementType: type)
                #expect(simd.status == .ok && ref.status == .ok, "\(isa) \(layout) \(type)")
                #expect(simd.bytes == ref.bytes, "\(isa) \(layout) \(type): packed bytes differ from the reference")
            }
        }
    }

    @Test("no outliers: NaN, ±Inf, |x| > 65504 and fp16 step overflow give the reference's status", arguments: ISALevel.available)
    func specializedBadInput(isa: ISALevel) throws {
        let kernels = KernelSet.forLevel(isa)
        for (d, g) in [(128, 32), (64, 32), (256, 64), (96, 32)] {
            for b in PackedLayout.supportedBits {
                let layout = try PackedLayout(dim: d, groupSize: g, bits: b)
                for (k, bad) in [Float.nan, .infinity, -.infinity, 70000, -1e6, -.nan].enumerated() {
                    for position in [0, d / 2 + 3, d - 1] {
                        // 11 vectors, the bad one 5th: inside a 16-group block (D = 64 and
                        // 128 with G = 32 go 8 and 4 vectors at a time), not its first.
                        var x = DataMaker.rows(count: 11, dim: d, seed: UInt64(b * 10 + k))
                        x[5 * d + position] = bad
                        for type in [ElementType.float32, .float16] where type == .float32 || bad.isNaN || bad.isInfinite {
                            let r = pack(x, layout: layout, kernels: kernels, elementType: type)
                            let ref = pack(x, layout: layout, kernels: .reference, elementType: type)
                            #expect(r.status == ref.status && r.status.vector == 5, "\(isa) \(layout) \(type) \(bad) at \(position)")
                            // Records before the failing vector are written, identically.
                            #expect(Array(r.bytes[..<(5 * layout.recordBytes)]) == Array(ref.bytes[..<(5 * layout.recordBytes)]))
                        }
                    }
                }
                // A range of 2·65504: the 1-bit step overflows fp16 (wider codes fit).
                var x = DataMaker.rows(count: 3, dim: d, seed: 99)
                x[d + 1] = -65504
                x[d + 2] = 65504
                let r = pack(x, layout: layout, kernels: kernels)
                let ref = pack(x, layout: layout, kernels: .reference)
                #expect(r.status == ref.status, "\(isa) \(layout): \(r.status) vs \(ref.status)")
                if ref.status == .ok { #expect(r.bytes == ref.bytes, "\(isa) \(layout)") }
            }
        }
    }

    @Test("no outliers: strided source rows", arguments: ISALevel.available)
    func specializedStride(isa: ISALevel) throws {
        let kernels = KernelSet.forLevel(isa)
        for (d, g, b) in [(128, 32, 4), (64, 32, 3), (128, 64, 8)] {
            let layout = try PackedLayout(dim: d, groupSize: g, bits: b)
            let stride = d + 16
            let x = DataMaker.rows(count: 5, dim: stride, seed: 31)
            var a = [UInt8](repeating: 0, count: 5 * layout.recordBytes), r = a
            let sa = x.withUnsafeBytes { src in a.withUnsafeMutableBytes { kernels.quantize(src.baseAddress!, .float32, 5, stride, layout, $0.baseAddress!) } }
            let sr = x.withUnsafeBytes { src in r.withUnsafeMutableBytes { KernelSet.reference.quantize(src.baseAddress!, .float32, 5, stride, layout, $0.baseAddress!) } }
            #expect(sa == .ok && sr == .ok)
            #expect(a == r, "\(isa) \(layout)")
        }
    }
}

import Foundation
import QAQ
import QAQKernelsBase
import QAQTestSupport
import Testing

/// Every code width × scale mode × D the code-map kernels are tested on.
private func codebookLayouts(dims: [Int] = [64, 80, 96, 128]) -> [CodebookLayout] {
    var result: [CodebookLayout] = []
    for d in dims {
        var modes: [CodebookLayout.ScaleMode] = [.vectorF16, .vectorLog8]
        for g in [16, 32, 64] where d % g == 0 && g < d { modes.append(.groupF16(g)) }
        for b in CodebookLayout.supportedBits {
            for m in modes { result.append(try! CodebookLayout(dim: d, bits: b, scale: m)) }
        }
    }
    return result
}

/// Lloyd-Max tables in fp32, as the codec builds them.
private struct Tables {
    let levels: [Float]
    let thresholds: [Float]
    init(bits: Int) {
        let l = LloydMax.levels(bits: bits)
        levels = l.map { Float($0) }
        thresholds = (0..<(l.count - 1)).map { Float((l[$0] + l[$0 + 1]) / 2) }
    }
}

private func quantize(_ x: [Float], _ layout: CodebookLayout, _ k: KernelSet) -> (bytes: [UInt8], status: KernelStatus) {
    let t = Tables(bits: layout.bits)
    let count = x.count / layout.dim
    var out = [UInt8](repeating: 0xAB, count: count * layout.recordBytes)
    let status = x.withUnsafeBufferPointer { src in
        t.levels.withUnsafeBufferPointer { lv in
            t.thresholds.withUnsafeBufferPointer { th in
                out.withUnsafeMutableBytes { dst in
                    k.codebookQuantize(src.baseAddress!, count, layout, lv.baseAddress!, th.baseAddress!, dst.baseAddress!)
                }
            }
        }
    }
    return (out, status)
}

private func dequantize(_ bytes: [UInt8], _ layout: CodebookLayout, _ k: KernelSet, stride: Int? = nil) -> [Float] {
    let levels = Tables(bits: layout.bits).levels
    let count = bytes.count / layout.recordBytes
    let s = stride ?? layout.dim
    var out = [Float](repeating: .nan, count: count * s)
    bytes.withUnsafeBytes { src in
        levels.withUnsafeBufferPointer { lv in
            out.withUnsafeMutableBufferPointer { dst in
                k.codebookDequantize(src.baseAddress!, count, layout, lv.baseAddress!, dst.baseAddress!, s)
            }
        }
    }
    return out
}

/// Test rows: K/V-like Gaussian rows (outlier channels, spikes) at three magnitudes (the
/// largest kept inside the log8 range, 2^(±127/16), for log8 layouts), an all-zero row,
/// a row with one zero 16-element block, and a row with exact zeros of both signs and
/// values ±1.
private func testRows(dim d: Int, seed: UInt64, log8: Bool) -> [Float] {
    var x = DataMaker.rows(count: 3, dim: d, seed: seed)
    x += DataMaker.rows(count: 2, dim: d, seed: seed + 1, scale: 0.02)
    x += DataMaker.rows(count: 2, dim: d, seed: seed + 2, scale: log8 ? 5 : 40)
    x += [Float](repeating: 0, count: d)
    var partial = DataMaker.rows(count: 1, dim: d, seed: seed + 3)
    let z = d > 16 ? 16 : 0
    for i in z..<(z + 16) { partial[i] = 0 }
    x += partial
    var signed = DataMaker.rows(count: 1, dim: d, seed: seed + 4, outlierChannels: 0, spikes: false)
    signed[0] = 0
    signed[1] = -0.0
    signed[2] = 1
    signed[3] = -1
    x += signed
    return x
}

@Suite("Code-map (Lloyd-Max) quantize / dequantize kernels")
struct CodebookTests {
    static let layouts = codebookLayouts()
    /// The D the brief asks for plus the edges: one slot, an odd slot count, two code words.
    static let wideLayouts = codebookLayouts(dims: [16, 48, 64, 80, 96, 128, 256])

    @Test("layout bytes are exact: D·b/8 codes + 2 bytes per fp16 scale, or 1 log8 byte")
    func layoutBytes() throws {
        for d in [64, 80, 96, 128, 256] {
            for b in 1...4 {
                let v = try CodebookLayout(dim: d, bits: b)
                #expect(v.codeBytes == d * b / 8 && v.recordBytes == d * b / 8 + 2)
                let l = try CodebookLayout(dim: d, bits: b, scale: .vectorLog8)
                #expect(l.recordBytes == d * b / 8 + 1 && l.scaleBytes == 1)
                let g = try CodebookLayout(dim: d, bits: b, scale: .groupF16(16))
                #expect(g.recordBytes == d * b / 8 + 2 * (d / 16) && g.groupCount == d / 16)
                #expect(v.slots == (try PackedLayout(dim: d, groupSize: d, bits: b)).slots)
            }
        }
        #expect(try CodebookLayout(dim: 128, bits: 4, scale: .vectorLog8).bitsPerElement == 4.0625)
        #expect(throws: LayoutError.unsupportedBits(8)) { try CodebookLayout(dim: 64, bits: 8) }
        #expect(throws: LayoutError.unsupportedBits(0)) { try CodebookLayout(dim: 64, bits: 0) }
        #expect(throws: LayoutError.unsupportedDimension(72)) { try CodebookLayout(dim: 72, bits: 4) }
        #expect(throws: LayoutError.unsupportedDimension(272)) { try CodebookLayout(dim: 272, bits: 4) }
        #expect(throws: LayoutError.unsupportedGroupSize(32, dim: 80)) {
            try CodebookLayout(dim: 80, bits: 4, scale: .groupF16(32))
        }
    }

    @Test("codes bit-exact and values exact vs the scalar reference at every ISA level", arguments: ISALevel.available)
    func bitExact(isa: ISALevel) throws {
        let kernels = KernelSet.forLevel(isa)
        for (n, layout) in Self.wideLayouts.enumerated() {
            // 18 vectors: the v4 4-bit kernel searches by bins only from 16 vectors per call.
            let x = testRows(dim: layout.dim, seed: UInt64(1000 + n), log8: layout.isLog8)
                + DataMaker.rows(count: 8, dim: layout.dim, seed: UInt64(5000 + n))
            let simd = quantize(x, layout, kernels)
            let ref = quantize(x, layout, .reference)
            #expect(simd.status == .ok && ref.status == .ok, "\(isa) \(layout): \(simd.status) \(ref.status)")
            #expect(simd.bytes == ref.bytes, "\(isa) \(layout): records differ from the reference")
            let a = dequantize(simd.bytes, layout, kernels)
            let b = dequantize(ref.bytes, layout, .reference)
            #expect(a.map(\.bitPattern) == b.map(\.bitPattern), "\(isa) \(layout): decoded values differ")
        }
    }

    @Test("dequantize honours the destination stride", arguments: ISALevel.available)
    func stride(isa: ISALevel) throws {
        let kernels = KernelSet.forLevel(isa)
        for layout in Self.layouts where layout.dim == 96 {
            let x = DataMaker.rows(count: 3, dim: 96, seed: 5)
            let q = quantize(x, layout, kernels)
            let dense = dequantize(q.bytes, layout, kernels)
            let strided = dequantize(q.bytes, layout, kernels, stride: 100)
            for t in 0..<3 {
                #expect(Array(strided[(100 * t)..<(100 * t + 96)]) == Array(dense[(96 * t)..<(96 * t + 96)]))
                #expect(strided[(100 * t + 96)..<(100 * t + 100)].allSatisfy { $0.isNaN }, "wrote past the row")
            }
        }
    }

    @Test("codes: the group's RMS picks them; the stored scale is the least-squares refit")
    func refit() throws {
        for (n, layout) in Self.layouts.enumerated() {
            let t = Tables(bits: layout.bits)
            let x = DataMaker.rows(count: 4, dim: layout.dim, seed: UInt64(2000 + n))
            let q = quantize(x, layout, .active)
            #expect(q.status == .ok)
            let decoded = dequantize(q.bytes, layout, .active)
            for v in 0..<4 {
                q.bytes.withUnsafeBytes { raw in
                    let record = raw.baseAddress! + v * layout.recordBytes
                    for g in 0..<layout.groupCount {
                        let range = (v * layout.dim + g * layout.groupSize)..<(v * layout.dim + (g + 1) * layout.groupSize)
                        let xs = Array(x[range])
                        let cs = (0..<layout.groupSize).map { i in
                            t.levels[Int(Reference.codebookCode(record, layout, element: g * layout.groupSize + i))]
                        }
                        // Each code is the level nearest to x/RMS: its cell holds x/RMS.
                        let rms = (xs.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(xs.count)).squareRoot()
                        for (xi, ci) in zip(xs, cs) {
                            let u = Double(xi) / rms
                            let nearest = t.levels.min { abs(Double($0) - u) < abs(Double($1) - u) }!
                            #expect(abs(Double(ci) - u) <= abs(Double(nearest) - u) + 1e-5, "\(layout): \(u) coded as \(ci)")
                        }
                        // The kernel's unrounded fp32 scale vs the closed form ⟨x, c⟩/⟨c, c⟩ in fp64.
                        let xc = zip(xs, cs).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                        let cc = cs.reduce(0.0) { $0 + Double($1) * Double($1) }
                        let closed = xc / cc
                        let unrounded = x.withUnsafeBufferPointer { xp in
                            t.levels.withUnsafeBufferPointer { lv in
                                t.thresholds.withUnsafeBufferPointer { th in
                                    Reference.codebookUnroundedScale(xp.baseAddress! + v * layout.dim, layout: layout, group: g,
                                                                     levels: lv.baseAddress!, thresholds: th.baseAddress!)
                                }
                            }
                        }
                        #expect(abs(Double(unrounded) - closed) <= 1e-5 * closed, "\(layout): \(unrounded) vs \(closed)")
                        func err(_ s: Double) -> Double {
                            zip(xs, cs).reduce(0.0) { $0 + (Double($1.0) - s * Double($1.1)) * (Double($1.0) - s * Double($1.1)) }
                        }
                        // Perturbing the scale by ±1 % never lowers the error.
                        let s = Double(unrounded)
                        #expect(err(s * 1.01) > err(s) && err(s * 0.99) > err(s), "\(layout): refit not optimal")
                        // Stored: the unrounded scale rounded to the storage.
                        let stored = Reference.codebookScale(record, layout, group: g)
                        if layout.isLog8 {
                            let k = Reference.log8Code(unrounded)
                            #expect(k > 1 && stored == Reference.log8Scale(UInt8(k)))
                            // The nearest representable scale is the least-squares best one.
                            #expect(err(Double(stored)) <= err(Double(Reference.log8Scale(UInt8(k - 1)))))
                            if k < 255 { #expect(err(Double(stored)) <= err(Double(Reference.log8Scale(UInt8(k + 1))))) }
                            #expect(abs(Double(stored) / closed - 1) <= 0.0222)
                        } else {
                            #expect(stored == Float(Float16(unrounded)))
                            #expect(abs(Double(stored) / closed - 1) <= 0.0005)
                        }
                        for i in 0..<layout.groupSize {
                            #expect(decoded[range.lowerBound + i] == cs[i] * stored)
                        }
                    }
                }
            }
        }
    }

    @Test("the quantizer is odd: Q(−x) = −Q(x), bit for bit", arguments: ISALevel.available)
    func symmetric(isa: ISALevel) throws {
        let kernels = KernelSet.forLevel(isa)
        for layout in Self.layouts where layout.dim == 128 {
            let x = DataMaker.rows(count: 5, dim: 128, seed: 77)
            let a = dequantize(quantize(x, layout, kernels).bytes, layout, kernels)
            let b = dequantize(quantize(x.map { -$0 }, layout, kernels).bytes, layout, kernels)
            #expect(a.map(\.bitPattern) == b.map { (-$0).bitPattern }, "\(isa) \(layout)")
        }
    }

    @Test("elements exactly on a threshold (and on the 4-bit search's bin edges) take the smaller magnitude",
          arguments: ISALevel.available)
    func ties(isa: ISALevel) throws {
        let kernels = KernelSet.forLevel(isa)
        // A uniform table with binary thresholds: levels ±(¼ + ½j), thresholds ±½j. The rows
        // repeat 8 values whose squares sum to 8, so each group of G has Σx² = G exactly, the
        // reciprocal RMS is exactly 1, and |x| = ½, 1, 3/2 sit exactly on thresholds (and, for
        // the 4-bit bins of width ½, exactly on bin edges).
        let pattern: [Float] = [0.5, -1, 1.5, -0.5, 1, 0, -1.5, 1]
        for b in 2...4 {
            let h = 1 << (b - 1)
            let levels = (0..<(2 * h)).map { Float($0 - h) * 0.5 + 0.25 }
            let thresholds = (1..<(2 * h)).map { Float($0 - h) * 0.5 }
            for d in [64, 128] {
                let modes: [CodebookLayout.ScaleMode] = [.vectorF16, .vectorLog8, .groupF16(32)] + (d > 64 ? [.groupF16(64)] : [])
                for mode in modes {
                    let layout = try CodebookLayout(dim: d, bits: b, scale: mode)
                    // 16 vectors: the v4 4-bit kernel searches by bins only from 16 per call.
                    let vectors = 16
                    let x = (0..<(vectors * d)).map { pattern[$0 % 8] }
                    var out = [UInt8](repeating: 0xAB, count: vectors * layout.recordBytes)
                    var ref = out
                    let status = x.withUnsafeBufferPointer { src in
                        out.withUnsafeMutableBytes { dst in
                            kernels.codebookQuantize(src.baseAddress!, vectors, layout, levels, thresholds, dst.baseAddress!)
                        }
                    }
                    let refStatus = x.withUnsafeBufferPointer { src in
                        ref.withUnsafeMutableBytes { dst in
                            KernelSet.reference.codebookQuantize(src.baseAddress!, vectors, layout, levels, thresholds, dst.baseAddress!)
                        }
                    }
                    #expect(status == .ok && refStatus == .ok)
                    #expect(out == ref, "\(isa) \(layout): records differ from the reference")
                    // Closed form: code = h + #{thresholds > 0 strictly below |x|}, mirrored for x < 0.
                    out.withUnsafeBytes { raw in
                        for v in 0..<vectors {
                            let record = raw.baseAddress! + v * layout.recordBytes
                            for i in 0..<d {
                                let xi = x[v * d + i]
                                let n = thresholds[h...].filter { $0 > 0 && $0 < abs(xi) }.count
                                let expected = xi.sign == .minus ? h - 1 - n : h + n
                                #expect(Reference.codebookCode(record, layout, element: i) == UInt32(expected),
                                        "\(isa) \(layout): x = \(xi)")
                            }
                        }
                    }
                }
            }
        }
    }

    @Test("all-zero vectors and groups: scale 0, codes 0, decoded +0", arguments: ISALevel.available)
    func zeros(isa: ISALevel) throws {
        let kernels = KernelSet.forLevel(isa)
        for layout in Self.layouts {
            var x = [Float](repeating: 0, count: 2 * layout.dim)
            for i in 0..<layout.dim { x[layout.dim + i] = -0.0 }
            let q = quantize(x, layout, kernels)
            #expect(q.status == .ok)
            for v in 0..<2 {
                let r = q.bytes[(v * layout.recordBytes)..<((v + 1) * layout.recordBytes)]
                #expect(r.allSatisfy { $0 == 0 }, "\(isa) \(layout): a zero vector's record is not all zero bytes")
            }
            #expect(dequantize(q.bytes, layout, kernels).allSatisfy { $0.bitPattern == 0 })
            // One zero group among nonzero ones decodes to exact zeros too.
            if layout.groupCount > 1 {
                var y = DataMaker.rows(count: 1, dim: layout.dim, seed: 9)
                for i in 0..<layout.groupSize { y[layout.groupSize + i] = 0 }
                let p = quantize(y, layout, kernels)
                let yhat = dequantize(p.bytes, layout, kernels)
                #expect(yhat[layout.groupSize..<(2 * layout.groupSize)].allSatisfy { $0.bitPattern == 0 })
                #expect(p.bytes.withUnsafeBytes { Reference.codebookScale($0.baseAddress!, layout, group: 1) } == 0)
            }
        }
    }

    @Test("NaN, Inf and scales beyond the storage: typed status naming the vector", arguments: ISALevel.available)
    func badInput(isa: ISALevel) throws {
        let kernels = KernelSet.forLevel(isa)
        for layout in Self.layouts where layout.dim == 80 || layout.dim == 128 {
            for (bad, code) in [(Float.nan, KernelStatus.Code.nonFinite), (.infinity, .nonFinite),
                                (-.infinity, .nonFinite), (1e20, .outOfFloat16Range), (-3e38, .outOfFloat16Range)] {
                var x = DataMaker.rows(count: 4, dim: layout.dim, seed: 7)
                x[2 * layout.dim + 37] = bad
                #expect(quantize(x, layout, kernels).status == KernelStatus(code: code, vector: 2), "\(isa) \(layout) \(bad)")
                #expect(quantize(x, layout, .reference).status == KernelStatus(code: code, vector: 2))
            }
            // NaN after an overflowing group is still reported as NaN (as by the reference).
            var y = DataMaker.rows(count: 1, dim: layout.dim, seed: 7)
            y[0] = 1e20
            y[layout.dim - 1] = .nan
            #expect(quantize(y, layout, kernels).status == KernelStatus(code: .nonFinite, vector: 0))
            // A scale just beyond the storage: fp16 above 65504; log8 above 2^(127/16) ≈ 244.5.
            let big: Float = layout.isLog8 ? 300 : 1e5
            var x = DataMaker.rows(count: 3, dim: layout.dim, seed: 8)
            for i in 0..<layout.dim { x[layout.dim + i] *= big }
            #expect(quantize(x, layout, kernels).status == KernelStatus(code: .outOfFloat16Range, vector: 1), "\(isa) \(layout)")
            #expect(quantize(x, layout, .reference).status == KernelStatus(code: .outOfFloat16Range, vector: 1))
        }
    }

    @Test("log8 scale: 2^((k − 128)/16), nearest representable value, range ends")
    func log8() throws {
        #expect(Reference.log8Scale(0) == 0)
        #expect(Reference.log8Scale(128) == 1)
        #expect(Reference.log8Scale(144) == 2)
        #expect(Reference.log8Scale(112) == 0.5)
        for k in 1...255 {
            let s = Reference.log8Scale(UInt8(k))
            #expect(abs(Double(s) - exp2(Double(k - 128) / 16)) <= 1e-7 * Double(s))
            #expect(Reference.log8Code(s) == k)
            if k < 255 {
                let next = Reference.log8Scale(UInt8(k + 1))
                #expect(Reference.log8Code(s + 0.49 * (next - s)) == k)
                #expect(Reference.log8Code(s + 0.51 * (next - s)) == k + 1)
            }
        }
        let smin = Reference.log8Scale(1), smax = Reference.log8Scale(255)
        #expect(Reference.log8Code(0) == 0)
        #expect(Reference.log8Code(0.49 * smin) == 0)
        #expect(Reference.log8Code(0.51 * smin) == 1)
        #expect(Reference.log8Code(smax * 1.01) == 255)
        #expect(Reference.log8Code(smax * 1.03) == -1)
    }

    @Test("Hadamard rotation kernel: bit-exact with its reference, forward then inverse ≈ identity",
          arguments: ISALevel.available)
    func rotation(isa: ISALevel) throws {
        let kernels = KernelSet.forLevel(isa)
        for d in [16, 48, 64, 80, 96, 128, 176, 256] {
            var rng = SplitMix64(seed: UInt64(d))
            // Any per-element factors will do here (the codec tests use RandomizedHadamard's).
            let signs = (0..<d).map { _ in rng.next() & 1 == 0 ? Float(0.25) : -0.25 }
            let x = DataMaker.rows(count: 3, dim: d, seed: UInt64(d + 1))
            for inverse in [false, true] {
                var a = [Float](repeating: .nan, count: x.count), b = a
                x.withUnsafeBufferPointer { s in
                    signs.withUnsafeBufferPointer { g in
                        a.withUnsafeMutableBufferPointer { kernels.hadamardRotate(s.baseAddress!, $0.baseAddress!, 3, d, g.baseAddress!, inverse) }
                        b.withUnsafeMutableBufferPointer { KernelSet.reference.hadamardRotate(s.baseAddress!, $0.baseAddress!, 3, d, g.baseAddress!, inverse) }
                    }
                }
                #expect(a.map(\.bitPattern) == b.map(\.bitPattern), "\(isa) D=\(d) inverse=\(inverse)")
                // In place gives the same.
                var c = x
                signs.withUnsafeBufferPointer { g in
                    c.withUnsafeMutableBufferPointer { kernels.hadamardRotate($0.baseAddress!, $0.baseAddress!, 3, d, g.baseAddress!, inverse) }
                }
                #expect(c.map(\.bitPattern) == a.map(\.bitPattern), "\(isa) D=\(d) in place")
            }
        }
    }
}

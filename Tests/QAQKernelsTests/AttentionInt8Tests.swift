import Foundation
import QAQ
import QAQKernelsBase
import QAQTestSupport
import Testing

/// Σ terms of an fp32 computation of n terms whose absolute values sum to `bound`.
private func fp32Tolerance(_ n: Int, _ bound: Double) -> Double { Double(n + 8) * Double(Float.ulpOfOne) * bound * 2 + 1e-30 }

/// Query rows for the int8 tests: Gaussian heads, one all-zero head, one with a single large
/// channel (the int8 scale then coarse for every other channel).
private func int8Queries(heads: Int, dim d: Int, seed: UInt64) -> [Float] {
    var q = DataMaker.rows(count: heads, dim: d, seed: seed, outlierChannels: 0, spikes: false)
    if heads > 2 { for i in 0..<d { q[d + i] = 0 } }
    if heads > 3 { q[3 * d + 17] = 40 }
    return q
}

/// Weight rows for the int8 value tests (`heads` rows of `stride`, `count` used): softmax-like
/// rows, one with a single dominant token, one all zero.
private func int8ValueWeights(heads: Int, count: Int, stride: Int, seed: UInt64) -> [Float] {
    var rng = SplitMix64(seed: seed)
    var w = [Float](repeating: 0, count: heads * stride)
    for h in 0..<heads {
        for t in 0..<count {
            switch h % 3 {
            case 0: w[h * stride + t] = Float(Foundation.exp(2 * rng.gaussian()))
            case 1: w[h * stride + t] = t == count / 2 ? 1 : Float(rng.uniform()) * 1e-3
            default: w[h * stride + t] = h == 2 ? 0 : Float(rng.uniform())
            }
        }
    }
    return w
}

@Suite("Integer-dot (int8) attention scores")
struct AttentionInt8Tests {
    static let headCounts = [1, 2, 3, 4, 5, 8]
    static let counts = [1, 3, 16, 17, 40]

    @Test("affine 4-bit D = 128 and 64: the scalar int8 reference to fp32 rounding, fp64 within the int8 query's bound; false elsewhere",
          arguments: ISALevel.available)
    func affine(isa: ISALevel) throws {
        let k = AttentionKernels.forLevel(isa)
        let native = isa == .v4
        let scratch = AttentionScratch(dim: 256, queryHeads: 8)
        defer { scratch.deallocate() }
        var n = 0
        for (d, g) in [(128, 32), (128, 64), (128, 128), (64, 32), (64, 64)] {
            for heads in Self.headCounts {
                n += 1
                let count = Self.counts[n % Self.counts.count]
                let layout = try PackedLayout(dim: d, groupSize: g, bits: 4, outlierCount: 0)
                var x = DataMaker.rows(count: count, dim: d, seed: UInt64(100 + n))
                if count > 2 { for i in 0..<d { x[d + i] = 0.25 } }   // a zero-range token
                let bytes = pack(x, layout: layout, kernels: .reference).bytes
                let xhat = unpack(bytes, layout: layout, kernels: .reference)
                let q = int8Queries(heads: heads, dim: d, seed: UInt64(200 + n))
                let stride = count + 2
                var out = [Float](repeating: .nan, count: heads * stride), ref = out
                let ran = bytes.withUnsafeBytes { src in
                    q.withUnsafeBufferPointer { qb in
                        out.withUnsafeMutableBufferPointer {
                            k.prepareInt8(qb.baseAddress!, qb.baseAddress!, heads, d, scratch)
                                && k.scoresInt8(heads, src.baseAddress!, count, layout, $0.baseAddress!, stride, scratch)
                        }
                    }
                }
                #expect(ran == native, "\(isa): int8 kernel present only at v4 (VNNI)")
                guard ran else {
                    #expect(out.allSatisfy { $0.isNaN }, "\(isa): nothing written when there is no int8 kernel")
                    continue
                }
                bytes.withUnsafeBytes { src in
                    q.withUnsafeBufferPointer { qb in
                        ref.withUnsafeMutableBufferPointer {
                            QAQKernelsBase.Reference.affineScoresInt8(queries: qb.baseAddress!, heads: heads, src.baseAddress!, count: count,
                                                                      layout: layout, out: $0.baseAddress!, outStride: stride)
                        }
                    }
                }
                for h in 0..<heads {
                    let qh = Array(q[(h * d)..<((h + 1) * d)])
                    let sq = Double(qh.map { abs($0) }.max()!) / 127
                    for t in 0..<count {
                        var exact = 0.0, magnitude = 0.0, codeSteps = 0.0
                        let maxX = xhat[(t * d)..<((t + 1) * d)].map { abs(Double($0)) }.max()!
                        bytes.withUnsafeBytes { src in
                            let record = src.baseAddress! + t * layout.recordBytes
                            for i in 0..<d {
                                let (lo, step) = QAQKernelsBase.Reference.metadata(record, layout, group: i / g)
                                let c = Double(QAQKernelsBase.Reference.code(record, layout, element: i))
                                exact += Double(qh[i]) * Double(xhat[t * d + i])
                                codeSteps += c * Double(step)
                                magnitude += abs(Double(qh[i])) * (abs(Double(xhat[t * d + i])) + 2 * maxX + abs(Double(lo)))
                            }
                        }
                        let got = Double(out[h * stride + t]), r = Double(ref[h * stride + t])
                        #expect(abs(got - r) <= fp32Tolerance(d, magnitude), "\(isa) D \(d) G \(g) heads \(heads) h \(h) t \(t): kernel \(got) vs int8 reference \(r)")
                        // The stated bound: ½·s_q·Σ step·c, plus fp32 rounding of the fp64 side.
                        let bound = 0.5 * sq * codeSteps + fp32Tolerance(d, magnitude)
                        #expect(abs(r - exact) <= bound, "\(isa) D \(d) G \(g) h \(h) t \(t): int8 \(r) vs exact \(exact), bound \(bound)")
                    }
                }
            }
        }
        // Layouts without an integer kernel: nothing written, false.
        for layout in [try PackedLayout(dim: 128, groupSize: 32, bits: 3, outlierCount: 0),
                       try PackedLayout(dim: 128, groupSize: 32, bits: 4, outlierCount: 2),
                       try PackedLayout(dim: 96, groupSize: 32, bits: 4, outlierCount: 0)] {
            let x = DataMaker.rows(count: 3, dim: layout.dim, seed: 9)
            let bytes = pack(x, layout: layout, kernels: .reference).bytes
            let q = DataMaker.rows(count: 1, dim: layout.dim, seed: 10, outlierChannels: 0, spikes: false)
            var out = [Float](repeating: .nan, count: 3)
            let ran = bytes.withUnsafeBytes { src in
                q.withUnsafeBufferPointer { qb in
                    out.withUnsafeMutableBufferPointer {
                        k.prepareInt8(qb.baseAddress!, qb.baseAddress!, 1, layout.dim, scratch) && k.scoresInt8(1, src.baseAddress!, 3, layout, $0.baseAddress!, 3, scratch)
                    }
                }
            }
            #expect(!ran && out.allSatisfy { $0.isNaN }, "\(isa) \(layout)")
        }
    }

    @Test("code-map 2-, 3- and 4-bit D = 128 and 64: the scalar int8 reference to fp32 rounding, fp64 within the int8 query's and levels' bound",
          arguments: ISALevel.available)
    func codebook(isa: ISALevel) throws {
        let k = AttentionKernels.forLevel(isa)
        let native = isa == .v4
        let scratch = AttentionScratch(dim: 256, queryHeads: 8)
        defer { scratch.deallocate() }
        var n = 0
        for (d, scale) in [(128, CodebookLayout.ScaleMode.vectorF16), (128, .vectorLog8), (64, .vectorF16), (64, .vectorLog8)] {
            for bits in [2, 3, 4] {
            for heads in Self.headCounts {
                n += 1
                // 2- and 3-bit codes go through the scratch 64 tokens at a time: also 64 and 150.
                let count = bits == 4 ? Self.counts[n % Self.counts.count] : [1, 3, 17, 64, 65, 150][(n + n / 6) % 6]
                let codec = try RotatedCodebookCodec(dim: d, bits: bits, scale: scale, rotation: .none, kernels: .forLevel(isa))
                var x = DataMaker.rows(count: count, dim: d, seed: UInt64(300 + n))
                if count > 2 { for i in 0..<d { x[d + i] = 0 } }   // an all-zero token: scale 0
                var bytes = [UInt8](repeating: 0, count: count * codec.bytesPerVector)
                try x.withUnsafeBufferPointer { src in try bytes.withUnsafeMutableBytes { try codec.encode(src.baseAddress!, count: count, into: $0.baseAddress!) } }
                var xhat = [Float](repeating: 0, count: count * d)
                bytes.withUnsafeBytes { src in xhat.withUnsafeMutableBufferPointer { codec.decode(src.baseAddress!, count: count, into: $0.baseAddress!) } }
                let q = int8Queries(heads: heads, dim: d, seed: UInt64(400 + n)), decoy = q.map { -3 * $0 + 1 }
                var out = [Float](repeating: .nan, count: heads * count), ref = out
                let ran = bytes.withUnsafeBytes { src in
                    codec.levels.withUnsafeBufferPointer { lv in
                        q.withUnsafeBufferPointer { qb in
                            decoy.withUnsafeBufferPointer { db in
                                out.withUnsafeMutableBufferPointer {
                                    // The affine side gets other queries: the code-map side must not read them.
                                    k.prepareInt8(db.baseAddress!, qb.baseAddress!, heads, d, scratch)
                                        && k.codebookScoresInt8(heads, src.baseAddress!, count, codec.layout, lv.baseAddress!, $0.baseAddress!, count, scratch)
                                }
                            }
                        }
                    }
                }
                #expect(ran == native, "\(isa): int8 kernel present only at v4 (VNNI)")
                guard ran else { #expect(out.allSatisfy { $0.isNaN }); continue }
                bytes.withUnsafeBytes { src in
                    codec.levels.withUnsafeBufferPointer { lv in
                        q.withUnsafeBufferPointer { qb in
                            ref.withUnsafeMutableBufferPointer {
                                QAQKernelsBase.Reference.codebookScoresInt8(queries: qb.baseAddress!, heads: heads, src.baseAddress!, count: count,
                                                                            layout: codec.layout, levels: lv.baseAddress!, out: $0.baseAddress!, outStride: count)
                            }
                        }
                    }
                }
                let levelMax = Double(codec.levels.map { abs($0) }.max()!), sl = levelMax / 127
                for h in 0..<heads {
                    let qh = Array(q[(h * d)..<((h + 1) * d)])
                    let sq = Double(qh.map { abs($0) }.max()!) / 127
                    for t in 0..<count {
                        var exact = 0.0, magnitude = 0.0, bound = 0.0
                        let s = bytes.withUnsafeBytes { QAQKernelsBase.Reference.codebookScale($0.baseAddress! + t * codec.layout.recordBytes, codec.layout, group: 0) }
                        for i in 0..<d {
                            let xv = Double(xhat[t * d + i])
                            exact += Double(qh[i]) * xv
                            magnitude += abs(Double(qh[i])) * (abs(xv) + Double(s) * sl)
                            // |x̂| = |level|·scale: ½s_q·(|level| + ½s_l)·scale + ½s_l·scale·|q|.
                            bound += 0.5 * sq * (abs(xv) + 0.5 * sl * Double(s)) + 0.5 * sl * Double(s) * abs(Double(qh[i]))
                        }
                        let got = Double(out[h * count + t]), r = Double(ref[h * count + t])
                        #expect(abs(got - r) <= fp32Tolerance(d, magnitude), "\(isa) D \(d) b \(bits) \(scale) heads \(heads) h \(h) t \(t): kernel \(got) vs int8 reference \(r)")
                        #expect(abs(r - exact) <= bound + fp32Tolerance(d, magnitude), "\(isa) D \(d) b \(bits) \(scale) h \(h) t \(t): int8 \(r) vs exact \(exact), bound \(bound)")
                    }
                }
            }
            }
        }
        for (bits, scale, d) in [(1, CodebookLayout.ScaleMode.vectorF16, 128), (4, .groupF16(32), 128), (4, .vectorF16, 96)] {
            let codec = try RotatedCodebookCodec(dim: d, bits: bits, scale: scale, rotation: .none, kernels: .forLevel(isa))
            let bytes = [UInt8](repeating: 0, count: 2 * codec.bytesPerVector)
            let q = [Float](repeating: 1, count: d)
            var out = [Float](repeating: .nan, count: 2)
            let ran = bytes.withUnsafeBytes { src in
                codec.levels.withUnsafeBufferPointer { lv in
                    q.withUnsafeBufferPointer { qb in
                        out.withUnsafeMutableBufferPointer {
                            k.prepareInt8(qb.baseAddress!, qb.baseAddress!, 1, d, scratch)
                                && k.codebookScoresInt8(1, src.baseAddress!, 2, codec.layout, lv.baseAddress!, $0.baseAddress!, 2, scratch)
                        }
                    }
                }
            }
            #expect(!ran && out.allSatisfy { $0.isNaN }, "\(isa) b \(bits) \(scale) D \(d)")
        }
    }

    @Test("affine 4-bit D = 128 and 64 values: the scalar int8 reference to fp32 rounding, fp64 within the 8-bit weights' bound; false and nothing written elsewhere",
          arguments: ISALevel.available)
    func values(isa: ISALevel) throws {
        let k = AttentionKernels.forLevel(isa)
        let native = isa == .v4
        // D = 64's scratch: the tile area is still large enough (AttentionScratch.int8ValueBytes).
        let scratch128 = AttentionScratch(dim: 128, queryHeads: 8), scratch64 = AttentionScratch(dim: 64, queryHeads: 8)
        defer { scratch128.deallocate(); scratch64.deallocate() }
        var n = 0
        for (d, g) in [(128, 32), (128, 64), (128, 128), (64, 32), (64, 64)] {
            let scratch = d == 64 ? scratch64 : scratch128
            for heads in Self.headCounts {
                n += 1
                // Across the 4-token chunks, the 16-token weight rows and the 64-token blocks.
                let count = [1, 3, 17, 64, 65, 150][(n + n / 6) % 6]
                let layout = try PackedLayout(dim: d, groupSize: g, bits: 4, outlierCount: 0)
                var x = DataMaker.rows(count: count, dim: d, seed: UInt64(500 + n))
                if count > 2 { for i in 0..<d { x[d + i] = 0.25 } }   // a zero-range token
                let bytes = pack(x, layout: layout, kernels: .reference).bytes
                let xhat = unpack(bytes, layout: layout, kernels: .reference)
                let stride = count + 3
                let w = int8ValueWeights(heads: heads, count: count, stride: stride, seed: UInt64(600 + n))
                let initial = (0..<(heads * d)).map { Float(Foundation.sin(Double($0))) }
                var out = initial, ref = initial
                let ran = bytes.withUnsafeBytes { src in
                    w.withUnsafeBufferPointer { wb in
                        out.withUnsafeMutableBufferPointer { k.accumulateInt8(wb.baseAddress!, stride, heads, src.baseAddress!, count, layout, $0.baseAddress!, scratch) }
                    }
                }
                #expect(ran == native, "\(isa): int8 values only at v4 (VNNI)")
                guard ran else {
                    #expect(out == initial, "\(isa): nothing written when there is no int8 kernel")
                    continue
                }
                bytes.withUnsafeBytes { src in
                    w.withUnsafeBufferPointer { wb in
                        ref.withUnsafeMutableBufferPointer {
                            QAQKernelsBase.Reference.affineAccumulateInt8(weights: wb.baseAddress!, wStride: stride, heads: heads, src.baseAddress!,
                                                                          count: count, layout: layout, out: $0.baseAddress!)
                        }
                    }
                }
                bytes.withUnsafeBytes { raw in
                    let src = raw.baseAddress!
                    for h in 0..<heads {
                        for i in 0..<d {
                            var exact = Double(initial[h * d + i]), magnitude = abs(exact), bound = 0.0
                            var b0 = 0
                            while b0 < count {
                                let end = min(count, b0 + 64)
                                var s = 0.0, codeSum = 0.0
                                for t in b0..<end {
                                    let record = src + t * layout.recordBytes
                                    let (lo, step) = QAQKernelsBase.Reference.metadata(record, layout, group: i / g)
                                    let wt = Double(w[h * stride + t]), c = Double(QAQKernelsBase.Reference.code(record, layout, element: i))
                                    s = max(s, wt * Double(step) / 255)
                                    codeSum += abs(c - 8)
                                    exact += wt * Double(xhat[t * d + i])
                                    magnitude += wt * (abs(Double(lo)) + 17 * Double(step))
                                }
                                bound += 0.5 * 1.0001 * s * codeSum
                                b0 = end
                            }
                            let got = Double(out[h * d + i]), r = Double(ref[h * d + i])
                            #expect(abs(got - r) <= fp32Tolerance(count, magnitude),
                                    "\(isa) D \(d) G \(g) heads \(heads) count \(count) h \(h) i \(i): kernel \(got) vs int8 reference \(r)")
                            #expect(abs(r - exact) <= bound + fp32Tolerance(count, magnitude),
                                    "\(isa) D \(d) G \(g) h \(h) i \(i): int8 \(r) vs exact \(exact), bound \(bound)")
                        }
                    }
                }
            }
        }
        // Layouts without the kernel, and weights it refuses (negative, NaN, +∞): false, nothing written.
        let plain = try PackedLayout(dim: 128, groupSize: 32, bits: 4, outlierCount: 0)
        let cases: [(PackedLayout, Float)] = [(try PackedLayout(dim: 128, groupSize: 32, bits: 3, outlierCount: 0), 0.5),
                                              (try PackedLayout(dim: 128, groupSize: 32, bits: 4, outlierCount: 2), 0.5),
                                              (try PackedLayout(dim: 96, groupSize: 32, bits: 4, outlierCount: 0), 0.5),
                                              (plain, -0.5), (plain, .nan), (plain, .infinity)]
        for (layout, bad) in cases {
            let x = DataMaker.rows(count: 20, dim: layout.dim, seed: 11)
            let bytes = pack(x, layout: layout, kernels: .reference).bytes
            var w = [Float](repeating: 0.25, count: 20)
            w[19] = bad
            var out = [Float](repeating: 7, count: layout.dim)
            let ran = bytes.withUnsafeBytes { src in
                w.withUnsafeBufferPointer { wb in
                    out.withUnsafeMutableBufferPointer { k.accumulateInt8(wb.baseAddress!, 20, 1, src.baseAddress!, 20, layout, $0.baseAddress!, scratch128) }
                }
            }
            #expect(!ran && out.allSatisfy { $0 == 7 }, "\(isa) \(layout) weight \(bad)")
        }
    }

    @Test("code-map 2-, 3- and 4-bit D = 128 and 64 values: the scalar int8 reference to fp32 rounding, fp64 within the 8-bit weights' and levels' bound; false and nothing written elsewhere",
          arguments: ISALevel.available)
    func codebookValues(isa: ISALevel) throws {
        let k = AttentionKernels.forLevel(isa)
        let native = isa == .v4
        let scratch128 = AttentionScratch(dim: 128, queryHeads: 8), scratch64 = AttentionScratch(dim: 64, queryHeads: 8)
        defer { scratch128.deallocate(); scratch64.deallocate() }
        var n = 0
        for d in [128, 64] {
            for bits in [2, 3, 4] {
                for scale in [CodebookLayout.ScaleMode.vectorF16, .vectorLog8] {
                    let scratch = d == 64 ? scratch64 : scratch128
                    for heads in [1, 2, 3, 4, 5, 8] {
                        n += 1
                        // Across the 4-token chunks, the 16-token rows and the 64-token blocks.
                        let count = [1, 3, 17, 64, 65, 150][(n + n / 6) % 6]
                        let codec = try RotatedCodebookCodec(dim: d, bits: bits, scale: scale, rotation: .none, kernels: .forLevel(isa))
                        var x = DataMaker.rows(count: count, dim: d, seed: UInt64(700 + n))
                        if count > 2 { for i in 0..<d { x[d + i] = 0 } }   // an all-zero token: scale 0
                        var bytes = [UInt8](repeating: 0, count: count * codec.bytesPerVector)
                        try x.withUnsafeBufferPointer { src in try bytes.withUnsafeMutableBytes { try codec.encode(src.baseAddress!, count: count, into: $0.baseAddress!) } }
                        var xhat = [Float](repeating: 0, count: count * d)
                        bytes.withUnsafeBytes { src in xhat.withUnsafeMutableBufferPointer { codec.decode(src.baseAddress!, count: count, into: $0.baseAddress!) } }
                        let stride = count + 3
                        let w = int8ValueWeights(heads: heads, count: count, stride: stride, seed: UInt64(800 + n))
                        let initial = (0..<(heads * d)).map { Float(Foundation.sin(Double($0))) }
                        var out = initial, ref = initial
                        let ran = bytes.withUnsafeBytes { src in
                            codec.levels.withUnsafeBufferPointer { lv in
                                w.withUnsafeBufferPointer { wb in
                                    out.withUnsafeMutableBufferPointer {
                                        k.codebookAccumulateInt8(wb.baseAddress!, stride, heads, src.baseAddress!, count, codec.layout, lv.baseAddress!, $0.baseAddress!, scratch)
                                    }
                                }
                            }
                        }
                        #expect(ran == native, "\(isa): int8 values only at v4 (VNNI)")
                        guard ran else {
                            #expect(out == initial, "\(isa): nothing written when there is no int8 kernel")
                            continue
                        }
                        bytes.withUnsafeBytes { src in
                            codec.levels.withUnsafeBufferPointer { lv in
                                w.withUnsafeBufferPointer { wb in
                                    ref.withUnsafeMutableBufferPointer {
                                        QAQKernelsBase.Reference.codebookAccumulateInt8(weights: wb.baseAddress!, wStride: stride, heads: heads, src.baseAddress!,
                                                                                        count: count, layout: codec.layout, levels: lv.baseAddress!, out: $0.baseAddress!)
                                    }
                                }
                            }
                        }
                        let levelMax = Double(codec.levels.map { abs($0) }.max()!), sl = levelMax / 127
                        bytes.withUnsafeBytes { raw in
                            let src = raw.baseAddress!
                            let scales = (0..<count).map { Double(QAQKernelsBase.Reference.codebookScale(src + $0 * codec.layout.recordBytes, codec.layout, group: 0)) }
                            for h in 0..<heads {
                                for i in 0..<d {
                                    var exact = Double(initial[h * d + i]), magnitude = abs(exact), bound = 0.0
                                    var b0 = 0
                                    while b0 < count {
                                        let end = min(count, b0 + 64)
                                        let s = (b0..<end).map { Double(w[h * stride + $0]) * scales[$0] }.max()! / 255
                                        for t in b0..<end {
                                            let wt = Double(w[h * stride + t]), xv = Double(xhat[t * d + i])
                                            exact += wt * xv
                                            magnitude += wt * (abs(xv) + sl * scales[t])
                                            // ½·s·|l8|·s_l (the weight's rounding) + ½·s_l·u (the level's), |l8|·s_l ≤ |level| + ½s_l.
                                            let level = scales[t] > 0 ? abs(xv) / scales[t] : 0
                                            bound += 0.5 * 1.0001 * s * (level + 0.5 * sl) + 0.5 * 1.0001 * sl * wt * scales[t]
                                        }
                                        b0 = end
                                    }
                                    let got = Double(out[h * d + i]), r = Double(ref[h * d + i])
                                    #expect(abs(got - r) <= fp32Tolerance(count, magnitude),
                                            "\(isa) D \(d) b \(bits) \(scale) heads \(heads) count \(count) h \(h) i \(i): kernel \(got) vs int8 reference \(r)")
                                    #expect(abs(r - exact) <= bound + fp32Tolerance(count, magnitude),
                                            "\(isa) D \(d) b \(bits) h \(h) i \(i): int8 \(r) vs exact \(exact), bound \(bound)")
                                }
                            }
                        }
                    }
                }
            }
        }
        // Layouts without the kernel (1-bit, group scales, D = 96) and weights it refuses: false, nothing written.
        let plain = try RotatedCodebookCodec(dim: 128, bits: 3, scale: .vectorF16, rotation: .none, kernels: .forLevel(isa))
        let cases: [(RotatedCodebookCodec, Float)] = [
            (try RotatedCodebookCodec(dim: 128, bits: 1, scale: .vectorF16, rotation: .none, kernels: .forLevel(isa)), 0.5),
            (try RotatedCodebookCodec(dim: 128, bits: 4, scale: .groupF16(32), rotation: .none, kernels: .forLevel(isa)), 0.5),
            (try RotatedCodebookCodec(dim: 96, bits: 4, scale: .vectorF16, rotation: .none, kernels: .forLevel(isa)), 0.5),
            (plain, -0.5), (plain, .nan), (plain, .infinity)]
        for (codec, bad) in cases {
            let d = codec.layout.dim
            let x = DataMaker.rows(count: 20, dim: d, seed: 11)
            var bytes = [UInt8](repeating: 0, count: 20 * codec.bytesPerVector)
            try x.withUnsafeBufferPointer { src in try bytes.withUnsafeMutableBytes { try codec.encode(src.baseAddress!, count: 20, into: $0.baseAddress!) } }
            var w = [Float](repeating: 0.25, count: 20)
            w[19] = bad
            var out = [Float](repeating: 7, count: d)
            let ran = bytes.withUnsafeBytes { src in
                codec.levels.withUnsafeBufferPointer { lv in
                    w.withUnsafeBufferPointer { wb in
                        out.withUnsafeMutableBufferPointer {
                            k.codebookAccumulateInt8(wb.baseAddress!, 20, 1, src.baseAddress!, 20, codec.layout, lv.baseAddress!, $0.baseAddress!, scratch128)
                        }
                    }
                }
            }
            #expect(!ran && out.allSatisfy { $0 == 7 }, "\(isa) \(codec.layout) weight \(bad)")
        }
    }

    @Test("the cache with integerDot at v4: adds at most a quarter (D = 128) or 60 % (D = 64) of the output error the 4-bit storage already has; elsewhere identical to fp32",
          arguments: [("uniform:4:32", 128), ("uniform:4:128", 128), ("rlm:4:3:window=4", 128), ("rlm:4:4:scale=log8:window=4", 128),
                      ("rlm:3:2:window=4", 128), ("uniform:4:32", 64), ("uniform:4:64", 64), ("rlm:4:3:window=4", 64), ("rlm:3:2:window=4", 64)])
    func cache(spec: String, d: Int) throws {
        let kvHeads = 2, g = 4, n = 90
        let data = SyntheticKV(tokens: n, kvHeads: kvHeads, queryHeadsPerKVHead: g, dim: d, seed: 5)
        /// Attention over the unquantized keys and values (fp64): what the cache approximates.
        func exact(_ q: [Float], tokens: Int) -> [Double] {
            var out = [Double](repeating: 0, count: q.count)
            for h in 0..<(kvHeads * g) {
                let kv = h / g
                var s = (0..<tokens).map { t -> Double in
                    let k = Array(data.token(t).keys)
                    var acc = 0.0
                    for i in 0..<d { acc += Double(q[h * d + i]) * Double(k[kv * d + i]) }
                    return acc / Double(d).squareRoot()
                }
                let m = s.max()!
                s = s.map { Foundation.exp($0 - m) }
                let total = s.reduce(0, +)
                for t in 0..<tokens {
                    let v = Array(data.token(t).values)
                    for i in 0..<d { out[h * d + i] += s[t] / total * Double(v[kv * d + i]) }
                }
            }
            return out
        }
        func distance(_ a: [Float], _ b: [Double]) -> Double { zip(a, b).reduce(0.0) { $0 + (Double($1.0) - $1.1) * (Double($1.0) - $1.1) }.squareRoot() }
        for isa in ISALevel.available {
            let cache = try KVCache(KVCacheConfiguration(layers: 1, kvHeads: kvHeads, queryHeadsPerKVHead: g, headDim: d,
                                                         policy: try PolicySpec.parse(spec), pageTokens: 16, kernels: .forLevel(isa)))
            for t in 0..<n {
                let (k, v) = data.token(t)
                try cache.append(layer: 0, keys: Array(k), values: Array(v))
                guard [20, 57, 89].contains(t) else { continue }
                let q = Array(data.query(t))
                let truth = exact(q, tokens: t + 1)
                for threads in [1, 2] {
                    cache.attentionPlan = AttentionPlan(threads: threads, split: .tokens, chunkTokens: 32)
                    let fp32 = try cache.attention(layer: 0, queries: q)
                    cache.attentionPlan.integerDot = true
                    let int8 = try cache.attention(layer: 0, queries: q)
                    if isa == .v4 {
                        let storage = distance(fp32, truth), added = distance(int8, fp32.map(Double.init))
                        // Measured: D = 128 adds 0.4–8.6 % of the storage error; D = 64 up to 48 %
                        // (t = 20, uniform:4:32, where the 4-bit storage error is smallest).
                        let share = d == 128 ? 0.25 : 0.6
                        #expect(added > 0, "\(spec) D \(d): the int8 path ran")
                        #expect(added <= share * storage, "\(spec) D \(d) t \(t) threads \(threads): int8 adds \(added), the 4-bit storage's error is \(storage)")
                    } else {
                        #expect(int8 == fp32, "\(spec) \(isa): no int8 kernel, the fp32 one")
                    }
                }
            }
        }
    }
}

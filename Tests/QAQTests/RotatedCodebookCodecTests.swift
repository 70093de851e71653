import QAQ
import QAQTestSupport
import Testing

private func encode(_ codec: RotatedCodebookCodec, _ x: [Float]) throws -> [UInt8] {
    let count = x.count / codec.dim
    var bytes = [UInt8](repeating: 0, count: count * codec.bytesPerVector)
    try x.withUnsafeBufferPointer { src in
        try bytes.withUnsafeMutableBytes { dst in
            try codec.encode(src.baseAddress!, count: count, into: dst.baseAddress!)
        }
    }
    return bytes
}

private func decode(_ codec: RotatedCodebookCodec, _ bytes: [UInt8]) -> [Float] {
    let count = bytes.count / codec.bytesPerVector
    var out = [Float](repeating: .nan, count: count * codec.dim)
    bytes.withUnsafeBytes { src in
        out.withUnsafeMutableBufferPointer { dst in codec.decode(src.baseAddress!, count: count, into: dst.baseAddress!) }
    }
    return out
}

private func gaussianRows(count: Int, dim: Int, seed: UInt64) -> [Float] {
    var rng = SplitMix64(seed: seed)
    return (0..<(count * dim)).map { _ in Float(rng.gaussian()) }
}

/// Σ‖x − x̂‖² / Σ‖x‖² in fp64.
private func relativeMSE(_ x: [Float], _ y: [Float]) -> Double {
    var e = 0.0, n = 0.0
    for (a, b) in zip(x, y) {
        e += (Double(a) - Double(b)) * (Double(a) - Double(b))
        n += Double(a) * Double(a)
    }
    return e / n
}

@Suite("Lloyd-Max levels and the rotated code-map codec")
struct RotatedCodebookCodecTests {
    @Test("Lloyd-Max levels for N(0,1) match the published tables to 1e-3")
    func levels() {
        let published: [Int: [Double]] = [
            1: [0.7979],
            2: [0.4528, 1.5104],
            3: [0.2451, 0.7560, 1.3439, 2.1519],
            4: [0.1284, 0.3880, 0.6568, 0.9423, 1.2562, 1.6180, 2.0690, 2.7326],
        ]
        for b in 1...4 {
            let l = LloydMax.levels(bits: b)
            let half = published[b]!
            #expect(l.count == 1 << b)
            for (j, p) in half.enumerated() {
                #expect(abs(l[half.count + j] - p) < 1e-3, "\(b)-bit level \(j): \(l[half.count + j]) vs \(p)")
                #expect(l[half.count - 1 - j] == -l[half.count + j])
            }
            let t = LloydMax.thresholds(bits: b)
            #expect(t.count == (1 << b) - 1 && t[t.count / 2] == 0)
            for i in 0..<t.count { #expect(l[i] < t[i] && t[i] < l[i + 1]) }
            #expect(LloydMax.iterations(bits: b) < 1_000_000)
        }
        // The quantizers' MSE on N(0,1).
        for (b, mse) in [(1, 0.3634), (2, 0.1175), (3, 0.03455), (4, 0.009497)] {
            #expect(abs(LloydMax.meanSquaredError(bits: b) / mse - 1) < 1e-3, "\(b)-bit MSE \(LloydMax.meanSquaredError(bits: b))")
        }
    }

    @Test("round trip on Gaussian data: relative MSE within 10 % of the Lloyd-Max MSE (per-vector scales)", arguments: [64, 128])
    func gaussianError(dim: Int) throws {
        let x = gaussianRows(count: 512, dim: dim, seed: 42)
        for b in 1...4 {
            for scale in [CodebookLayout.ScaleMode.vectorF16, .vectorLog8, .groupF16(32)] {
                let codec = try RotatedCodebookCodec(dim: dim, bits: b, scale: scale)
                let mse = relativeMSE(x, decode(codec, try encode(codec, x)))
                let target = LloydMax.meanSquaredError(bits: b)
                if case .groupF16 = scale {
                    // A scale per 32 elements adapts to each group: never worse than one per vector.
                    #expect(mse < 1.02 * target, "D=\(dim) \(b)-bit \(scale): relative MSE \(mse) vs \(target)")
                } else {
                    #expect(abs(mse / target - 1) < 0.10, "D=\(dim) \(b)-bit \(scale): relative MSE \(mse) vs \(target)")
                }
            }
        }
    }

    @Test("the rotation kernel is RandomizedHadamard, bit for bit, at every ISA level")
    func rotationKernel() throws {
        for d in [64, 80, 96, 128, 256] {
            let x = gaussianRows(count: 4, dim: d, seed: UInt64(d))
            let h = RandomizedHadamard(dim: d, seed: 0x51A7)
            var forward = x, back = x
            for t in 0..<4 {
                forward.withUnsafeMutableBufferPointer { h.forward($0.baseAddress! + t * d) }
                back.withUnsafeMutableBufferPointer { h.inverse($0.baseAddress! + t * d) }
            }
            for isa in ISALevel.available {
                let codec = try RotatedCodebookCodec(dim: d, bits: 4, kernels: .forLevel(isa))
                var a = x, b = x
                codec.scaledSigns.withUnsafeBufferPointer { s in
                    a.withUnsafeMutableBufferPointer { codec.kernels.hadamardRotate($0.baseAddress!, $0.baseAddress!, 4, d, s.baseAddress!, false) }
                    b.withUnsafeMutableBufferPointer { codec.kernels.hadamardRotate($0.baseAddress!, $0.baseAddress!, 4, d, s.baseAddress!, true) }
                }
                #expect(a.map(\.bitPattern) == forward.map(\.bitPattern), "\(isa) D=\(d) forward")
                #expect(b.map(\.bitPattern) == back.map(\.bitPattern), "\(isa) D=\(d) inverse")
            }
        }
    }

    @Test("rotation spreads outlier channels: lower error than without; decode returns the original domain")
    func rotationHelps() throws {
        let x = DataMaker.rows(count: 64, dim: 128, seed: 3, outlierChannels: 4)
        for b in 2...4 {
            let rotated = try RotatedCodebookCodec(dim: 128, bits: b)
            let plain = try RotatedCodebookCodec(dim: 128, bits: b, rotation: .none)
            let er = relativeMSE(x, decode(rotated, try encode(rotated, x)))
            let ep = relativeMSE(x, decode(plain, try encode(plain, x)))
            #expect(er < ep, "\(b)-bit: rotated \(er) vs plain \(ep)")
            #expect(er < 2 * LloydMax.meanSquaredError(bits: b))
        }
    }

    @Test("every ISA level and the scalar reference write the same bytes and decode the same values")
    func isaLevels() throws {
        let x = DataMaker.rows(count: 9, dim: 96, seed: 11)
        for scale in [CodebookLayout.ScaleMode.vectorF16, .groupF16(32), .vectorLog8] {
            let ref = try RotatedCodebookCodec(dim: 96, bits: 3, scale: scale, kernels: .reference)
            let bytes = try encode(ref, x)
            let values = decode(ref, bytes)
            for isa in ISALevel.available {
                let codec = try RotatedCodebookCodec(dim: 96, bits: 3, scale: scale, kernels: .forLevel(isa))
                #expect(try encode(codec, x) == bytes, "\(isa) \(scale)")
                #expect(decode(codec, bytes).map(\.bitPattern) == values.map(\.bitPattern), "\(isa) \(scale)")
            }
        }
    }

    @Test("bytes per vector are exact; scales count as metadata")
    func bytes() throws {
        for (d, b, scale, codes, meta) in [(128, 4, CodebookLayout.ScaleMode.vectorF16, 64, 2), (128, 3, .vectorLog8, 48, 1),
                                           (64, 2, .groupF16(32), 16, 4), (80, 1, .vectorF16, 10, 2)] {
            let c = try RotatedCodebookCodec(dim: d, bits: b, scale: scale)
            #expect(c.breakdown == ByteBreakdown(codes: codes, metadata: meta, outliers: 0))
            #expect(c.bytesPerVector == codes + meta && c.layout.recordBytes == codes + meta)
            #expect(c.bitsPerElement == Double(8 * (codes + meta)) / Double(d))
        }
        #expect(throws: QuantizationError.layout(.unsupportedBits(5))) { try RotatedCodebookCodec(dim: 64, bits: 5) }
    }

    @Test("NaN/Inf and out-of-range input throw typed errors; zero vectors decode to exact zeros")
    func badInputAndZeros() throws {
        for rotation in [RotatedCodebookCodec.Rotation.none, .defaultHadamard] {
            let codec = try RotatedCodebookCodec(dim: 64, bits: 4, rotation: rotation)
            for (bad, error) in [(Float.nan, QuantizationError.nonFinite(vector: 1)), (.infinity, .nonFinite(vector: 1)),
                                 (2e38, .outOfFloat16Range(vector: 1)), (1e6, .outOfFloat16Range(vector: 1))] {
                var x = gaussianRows(count: 3, dim: 64, seed: 5)
                x[64 + 10] = bad
                if bad == 2e38 { x[64 + 11] = bad }     // their rotation overflows fp32
                #expect(throws: error, "\(rotation) \(bad)") { try encode(codec, x) }
            }
            var x = gaussianRows(count: 3, dim: 64, seed: 6)
            for i in 64..<128 { x[i] = 0 }
            let y = decode(codec, try encode(codec, x))
            #expect(y[64..<128].allSatisfy { $0 == 0 }, "\(rotation)")
        }
    }

    @Test("many vectors (more than one scratch chunk) encode like one at a time; an error in a later chunk names its vector")
    func chunks() throws {
        // A chunk is 4096 floats: 64 vectors at D = 64, so 150 vectors take three chunks.
        let codec = try RotatedCodebookCodec(dim: 64, bits: 2, scale: .vectorLog8)
        let count = 150
        var x = gaussianRows(count: count, dim: 64, seed: 8)
        let all = try encode(codec, x)
        var one: [UInt8] = []
        for t in 0..<count { one += try encode(codec, Array(x[(64 * t)..<(64 * t + 64)])) }
        #expect(all == one)
        x[64 * 141 + 3] = .nan
        #expect(throws: QuantizationError.nonFinite(vector: 141)) { try encode(codec, x) }
    }
}

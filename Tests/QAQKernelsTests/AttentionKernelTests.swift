import QAQ
import QAQTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// fp64 scores and weighted sums over decoded rows: the independent reference.
private func exactScores(_ q: [Float], heads: Int, rows x: [Float], count: Int, dim d: Int) -> (value: [Double], bound: [Double]) {
    var v = [Double](repeating: 0, count: heads * count), b = v
    for h in 0..<heads {
        for t in 0..<count {
            for i in 0..<d {
                let p = Double(q[h * d + i]) * Double(x[t * d + i])
                v[h * count + t] += p
                b[h * count + t] += abs(p)
            }
        }
    }
    return (v, b)
}

private func exactSums(_ w: [Float], heads: Int, rows x: [Float], count: Int, dim d: Int, initial: [Float]) -> (value: [Double], bound: [Double]) {
    var v = initial.map(Double.init), b = initial.map { abs(Double($0)) }
    for h in 0..<heads {
        for i in 0..<d {
            for t in 0..<count {
                let p = Double(w[h * count + t]) * Double(x[t * d + i])
                v[h * d + i] += p
                b[h * d + i] += abs(p)
            }
        }
    }
    return (v, b)
}

/// Tolerance of an fp32 computation of n terms whose absolute values sum to `bound`.
private func tolerance(_ n: Int, _ bound: Double) -> Double { Double(n + 4) * Double(Float.ulpOfOne) * bound * 2 + 1e-30 }

@Suite("Decode-attention kernels")
struct AttentionKernelTests {
    static let headCounts = [1, 2, 3, 4, 5, 8]
    static let counts = [1, 3, 16, 17, 40]

    @Test("affine scores and weighted sums match fp64 over the dequantized records", arguments: ISALevel.available)
    func affine(isa: ISALevel) throws {
        let k = AttentionKernels.forLevel(isa)
        let scratch = AttentionScratch(dim: 256)
        defer { scratch.deallocate() }
        for (n, layout) in sweepLayouts(dims: [64, 80, 128, 256]).enumerated() {
            let heads = Self.headCounts[n % Self.headCounts.count], count = Self.counts[n % Self.counts.count]
            let d = layout.dim
            let x = DataMaker.rows(count: count, dim: d, seed: UInt64(1000 + n))
            let bytes = pack(x, layout: layout, kernels: .reference).bytes
            let xhat = unpack(bytes, layout: layout, kernels: .reference)
            let q = DataMaker.rows(count: heads, dim: d, seed: UInt64(2000 + n), outlierChannels: 0, spikes: false)
            var w = DataMaker.rows(count: heads, dim: count, seed: UInt64(3000 + n), outlierChannels: 0, spikes: false)
            w = w.map { abs($0) }
            let stride = count + 3
            var out = [Float](repeating: .nan, count: heads * stride)
            bytes.withUnsafeBytes { src in
                q.withUnsafeBufferPointer { qb in
                    out.withUnsafeMutableBufferPointer { k.scores(qb.baseAddress!, heads, src.baseAddress!, count, layout, $0.baseAddress!, stride, scratch) }
                }
            }
            let (exact, bound) = exactScores(q, heads: heads, rows: xhat, count: count, dim: d)
            for h in 0..<heads {
                for t in 0..<count {
                    let e = exact[h * count + t]
                    #expect(abs(Double(out[h * stride + t]) - e) <= tolerance(d, bound[h * count + t]), "\(isa) \(layout) heads \(heads) h \(h) t \(t)")
                }
            }
            let initial = DataMaker.rows(count: heads, dim: d, seed: UInt64(4000 + n), outlierChannels: 0, spikes: false)
            var acc = initial
            bytes.withUnsafeBytes { src in
                w.withUnsafeBufferPointer { wb in
                    acc.withUnsafeMutableBufferPointer { k.accumulate(wb.baseAddress!, count, heads, src.baseAddress!, count, layout, $0.baseAddress!, scratch) }
                }
            }
            let (sums, sb) = exactSums(w, heads: heads, rows: xhat, count: count, dim: d, initial: initial)
            for i in 0..<(heads * d) {
                #expect(abs(Double(acc[i]) - sums[i]) <= tolerance(count, sb[i]), "\(isa) \(layout) heads \(heads) element \(i)")
            }
        }
    }

    @Test("code-map scores and weighted sums match fp64 over the decoded records", arguments: ISALevel.available)
    func codebook(isa: ISALevel) throws {
        let k = AttentionKernels.forLevel(isa)
        let scratch = AttentionScratch(dim: 256)
        defer { scratch.deallocate() }
        var n = 0
        for d in [64, 96, 128] {
            for bits in 1...4 {
                for scale in [CodebookLayout.ScaleMode.vectorF16, .groupF16(32), .vectorLog8] {
                    n += 1
                    let codec = try RotatedCodebookCodec(dim: d, bits: bits, scale: scale, rotation: .none, kernels: .forLevel(isa))
                    let heads = Self.headCounts[n % Self.headCounts.count], count = Self.counts[n % Self.counts.count]
                    let x = DataMaker.rows(count: count, dim: d, seed: UInt64(5000 + n))
                    var bytes = [UInt8](repeating: 0, count: count * codec.bytesPerVector)
                    try x.withUnsafeBufferPointer { src in try bytes.withUnsafeMutableBytes { try codec.encode(src.baseAddress!, count: count, into: $0.baseAddress!) } }
                    var xhat = [Float](repeating: 0, count: count * d)
                    bytes.withUnsafeBytes { src in xhat.withUnsafeMutableBufferPointer { codec.decode(src.baseAddress!, count: count, into: $0.baseAddress!) } }
                    let q = DataMaker.rows(count: heads, dim: d, seed: UInt64(6000 + n), outlierChannels: 0, spikes: false)
                    let w = DataMaker.rows(count: heads, dim: count, seed: UInt64(7000 + n), outlierChannels: 0, spikes: false).map { abs($0) }
                    var out = [Float](repeating: .nan, count: heads * count)
                    var acc = [Float](repeating: 0, count: heads * d)
                    bytes.withUnsafeBytes { src in
                        codec.levels.withUnsafeBufferPointer { lv in
                            q.withUnsafeBufferPointer { qb in
                                out.withUnsafeMutableBufferPointer {
                                    k.codebookScores(qb.baseAddress!, heads, src.baseAddress!, count, codec.layout, lv.baseAddress!, $0.baseAddress!, count, scratch)
                                }
                            }
                            w.withUnsafeBufferPointer { wb in
                                acc.withUnsafeMutableBufferPointer {
                                    k.codebookAccumulate(wb.baseAddress!, count, heads, src.baseAddress!, count, codec.layout, lv.baseAddress!, $0.baseAddress!, scratch)
                                }
                            }
                        }
                    }
                    let (exact, bound) = exactScores(q, heads: heads, rows: xhat, count: count, dim: d)
                    for i in 0..<(heads * count) {
                        #expect(abs(Double(out[i]) - exact[i]) <= tolerance(d, bound[i]), "\(isa) D \(d) b \(bits) \(scale) score \(i)")
                    }
                    let (sums, sb) = exactSums(w, heads: heads, rows: xhat, count: count, dim: d, initial: [Float](repeating: 0, count: heads * d))
                    for i in 0..<(heads * d) {
                        #expect(abs(Double(acc[i]) - sums[i]) <= tolerance(count, sb[i]), "\(isa) D \(d) b \(bits) \(scale) sum \(i)")
                    }
                }
            }
        }
    }

    @Test("fp32 and fp16 rows with a row stride", arguments: ISALevel.available)
    func rows(isa: ISALevel) {
        let k = AttentionKernels.forLevel(isa)
        let scratch = AttentionScratch(dim: 256)
        defer { scratch.deallocate() }
        for (n, d) in [16, 64, 80, 128, 256].enumerated() {
            let heads = Self.headCounts[n % Self.headCounts.count], count = Self.counts[(n + 2) % Self.counts.count]
            let rowStride = d + 16
            let x = DataMaker.rows(count: count, dim: rowStride, seed: UInt64(8000 + n)).map { Float(Float16($0)) }
            let xh = x.map { Float16($0) }
            var dense = [Float](repeating: 0, count: count * d)
            for t in 0..<count { for i in 0..<d { dense[t * d + i] = x[t * rowStride + i] } }
            let q = DataMaker.rows(count: heads, dim: d, seed: UInt64(8100 + n), outlierChannels: 0, spikes: false)
            let w = DataMaker.rows(count: heads, dim: count, seed: UInt64(8200 + n), outlierChannels: 0, spikes: false).map { abs($0) }
            let (exact, bound) = exactScores(q, heads: heads, rows: dense, count: count, dim: d)
            let (sums, sb) = exactSums(w, heads: heads, rows: dense, count: count, dim: d, initial: [Float](repeating: 0, count: heads * d))
            for half in [false, true] {
                var out = [Float](repeating: .nan, count: heads * count)
                var acc = [Float](repeating: 0, count: heads * d)
                q.withUnsafeBufferPointer { qb in
                    w.withUnsafeBufferPointer { wb in
                        out.withUnsafeMutableBufferPointer { o in
                            acc.withUnsafeMutableBufferPointer { a in
                                if half {
                                    xh.withUnsafeBufferPointer { r in
                                        k.scoresF16(qb.baseAddress!, heads, d, r.baseAddress!, rowStride, count, o.baseAddress!, count, scratch)
                                        k.accumulateF16(wb.baseAddress!, count, heads, d, r.baseAddress!, rowStride, count, a.baseAddress!, scratch)
                                    }
                                } else {
                                    x.withUnsafeBufferPointer { r in
                                        k.scoresF32(qb.baseAddress!, heads, d, r.baseAddress!, rowStride, count, o.baseAddress!, count, scratch)
                                        k.accumulateF32(wb.baseAddress!, count, heads, d, r.baseAddress!, rowStride, count, a.baseAddress!, scratch)
                                    }
                                }
                            }
                        }
                    }
                }
                for i in 0..<(heads * count) { #expect(abs(Double(out[i]) - exact[i]) <= tolerance(d, bound[i]), "\(isa) fp16 \(half) D \(d) score \(i)") }
                for i in 0..<(heads * d) { #expect(abs(Double(acc[i]) - sums[i]) <= tolerance(count, sb[i]), "\(isa) fp16 \(half) D \(d) sum \(i)") }
            }
        }
    }

    @Test("softmax pieces: maximum, vectorized exp within 2 ulp of expf, sum, scale", arguments: ISALevel.available)
    func softmax(isa: ISALevel) {
        let k = AttentionKernels.forLevel(isa)
        for count in [1, 7, 16, 33, 1000] {
            var rng = SplitMix64(seed: UInt64(count))
            let x = (0..<count).map { _ in Float(rng.uniform() * 120 - 100) }
            let m = x.max()!
            #expect(x.withUnsafeBufferPointer { k.maximum($0.baseAddress!, count) } == m)
            var e = x
            let sum = e.withUnsafeMutableBufferPointer { k.expShifted($0.baseAddress!, count, m) }
            var exactSum = 0.0
            for i in 0..<count {
                let ref = expf(max(x[i] - m, -87))
                exactSum += Double(ref)
                #expect(abs(e[i] - ref) <= 2 * ref.ulp, "\(isa) exp(\(x[i] - m)) = \(e[i]) vs \(ref)")
            }
            #expect(abs(Double(sum) - exactSum) <= Double(count) * 4e-7 * exactSum)
            e.withUnsafeMutableBufferPointer { k.scale($0.baseAddress!, count, 0.5) }
            for i in 0..<count { #expect(e[i] == Float(expf(max(x[i] - m, -87))) * 0.5 || abs(e[i] - expf(max(x[i] - m, -87)) * 0.5) <= 2 * e[i].ulp) }
        }
    }
}

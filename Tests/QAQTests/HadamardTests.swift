import QAQ
import QAQTestSupport
import Testing

private let hadamardDims = [64, 80, 96, 128, 256]

private func forward(_ h: RandomizedHadamard, _ x: [Float]) -> [Float] {
    var y = x
    y.withUnsafeMutableBufferPointer { h.forward($0.baseAddress!) }
    return y
}

private func inverse(_ h: RandomizedHadamard, _ y: [Float]) -> [Float] {
    var x = y
    x.withUnsafeMutableBufferPointer { h.inverse($0.baseAddress!) }
    return x
}

private func dot(_ a: [Float], _ b: [Float]) -> Double {
    zip(a, b).reduce(0) { $0 + Double($1.0) * Double($1.1) }
}

private func norm(_ a: [Float]) -> Double { dot(a, a).squareRoot() }

private func gaussian(_ dim: Int, seed: UInt64) -> [Float] {
    var rng = SplitMix64(seed: seed)
    return (0..<dim).map { _ in Float(rng.gaussian()) }
}

/// The matrix of the transform: column j = forward(e_j).
private func matrix(_ h: RandomizedHadamard) -> [[Float]] {
    (0..<h.dim).map { j in
        var e = [Float](repeating: 0, count: h.dim)
        e[j] = 1
        return forward(h, e)
    }
}

@Suite("Randomized Hadamard rotation")
struct HadamardTests {
    @Test("blocks are the binary decomposition of D, largest first")
    func blocks() {
        #expect(RandomizedHadamard(dim: 64).blockSizes == [64])
        #expect(RandomizedHadamard(dim: 80).blockSizes == [64, 16])
        #expect(RandomizedHadamard(dim: 96).blockSizes == [64, 32])
        #expect(RandomizedHadamard(dim: 128).blockSizes == [128])
        #expect(RandomizedHadamard(dim: 256).blockSizes == [256])
        #expect(RandomizedHadamard(dim: 7).blockSizes == [4, 2, 1])
    }

    @Test("HᵀH = I to 1e-5", arguments: hadamardDims)
    func orthonormalMatrix(dim: Int) {
        let h = RandomizedHadamard(dim: dim)
        let columns = matrix(h)
        var worst: Double = 0
        for i in 0..<dim {
            for j in i..<dim {
                let g = dot(columns[i], columns[j])
                worst = max(worst, abs(g - (i == j ? 1 : 0)))
            }
        }
        #expect(worst <= 1e-5, "max |HᵀH − I| = \(worst)")
    }

    @Test("matches the dense definition: block-diagonal Sylvester Hadamard times random signs", arguments: hadamardDims + [7, 100])
    func denseDefinition(dim: Int) {
        let h = RandomizedHadamard(dim: dim)
        let columns = matrix(h)
        var offset = 0
        var blockOf = [Int](repeating: 0, count: dim), startOf = [Int](repeating: 0, count: dim)
        for (b, n) in h.blockSizes.enumerated() {
            for i in offset..<(offset + n) { blockOf[i] = b; startOf[i] = offset }
            offset += n
        }
        #expect(offset == dim)
        var worst: Float = 0
        for col in 0..<dim {
            for row in 0..<dim {
                var expected: Float = 0
                if blockOf[row] == blockOf[col] {
                    let n = Float(h.blockSizes[blockOf[row]])
                    let a = row - startOf[row], b = col - startOf[col]
                    let parity: Float = (a & b).nonzeroBitCount % 2 == 0 ? 1 : -1
                    expected = parity * h.sign(col) / n.squareRoot()
                }
                worst = max(worst, abs(columns[col][row] - expected))
            }
        }
        #expect(worst <= 1e-6)
        // The signs are really mixed, and fixed by the seed.
        let signs = (0..<dim).map { h.sign($0) }
        #expect(signs.contains(1) && signs.contains(-1) || dim < 8)
        #expect((0..<dim).map { RandomizedHadamard(dim: dim).sign($0) } == signs)
        #expect((0..<dim).map { RandomizedHadamard(dim: dim, seed: 12345).sign($0) } != signs || dim < 8)
    }

    @Test("‖Hx‖ = ‖x‖ to fp32 rounding", arguments: hadamardDims)
    func normPreserved(dim: Int) {
        let h = RandomizedHadamard(dim: dim)
        for seed in 0..<20 as Range<UInt64> {
            let x = seed == 0 ? DataMaker.rows(count: 1, dim: dim, seed: 3) : gaussian(dim, seed: seed)
            let y = forward(h, x)
            // log2(D) ≤ 8 butterfly stages, each adding ≤ 2^-24 relative error per element: ≤ 1e-6.
            #expect(abs(norm(y) - norm(x)) <= 1e-6 * norm(x), "seed \(seed)")
        }
    }

    @Test("inverse(forward(x)) = x to 1e-6 relative", arguments: hadamardDims)
    func roundTrip(dim: Int) {
        let h = RandomizedHadamard(dim: dim)
        for seed in 0..<20 as Range<UInt64> {
            let x = gaussian(dim, seed: 100 + seed).map { $0 * Float(seed + 1) }
            let back = inverse(h, forward(h, x))
            let err = norm(zip(back, x).map { $0 - $1 })
            #expect(err <= 1e-6 * norm(x), "seed \(seed): ‖x − H⁻¹Hx‖/‖x‖ = \(err / norm(x))")
            // Also forward(inverse(y)) = y.
            let again = forward(h, inverse(h, x))
            #expect(norm(zip(again, x).map { $0 - $1 }) <= 1e-6 * norm(x))
        }
    }

    @Test("dot products (attention scores q·k) are preserved", arguments: hadamardDims)
    func dotPreserved(dim: Int) {
        let h = RandomizedHadamard(dim: dim)
        let keys = DataMaker.rows(count: 16, dim: dim, seed: 21)  // outlier channels and spikes
        for seed in 0..<4 as Range<UInt64> {
            let q = gaussian(dim, seed: 200 + seed)
            let hq = forward(h, q)
            for t in 0..<16 {
                let k = Array(keys[(t * dim)..<((t + 1) * dim)])
                let exact = dot(q, k), rotated = dot(hq, forward(h, k))
                #expect(abs(exact - rotated) <= 2e-6 * norm(q) * norm(k), "t \(t): \(exact) vs \(rotated)")
            }
        }
    }

    @Test("rotation spreads an outlier over its block")
    func spreadsOutliers() {
        let h = RandomizedHadamard(dim: 128)
        var x = [Float](repeating: 0, count: 128)
        x[17] = 100
        let y = forward(h, x)
        #expect(y.allSatisfy { abs(abs($0) - 100 / Float(128).squareRoot()) <= 1e-4 })
    }
}

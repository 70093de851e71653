import QAQ
import QAQTestSupport
import Testing

@Suite("Dot and weighted accumulation over packed vectors")
struct DotAccumulateTests {
    @Test("dot matches the fp64 reference over dequantized values", arguments: ISALevel.available)
    func dot(isa: ISALevel) throws {
        let kernels = KernelSet.forLevel(isa)
        for (n, layout) in sweepLayouts().enumerated() {
            let x = DataMaker.rows(count: 9, dim: layout.dim, seed: UInt64(400 + n))
            let q = DataMaker.rows(count: 1, dim: layout.dim, seed: UInt64(500 + n), outlierChannels: 0, spikes: false)
            let v = try PackedVectors.quantizing(x, layout: layout, kernels: kernels)
            let got = try v.dot(q)
            let xhat = v.dequantized()
            for t in 0..<9 {
                let row = xhat[(t * layout.dim)..<((t + 1) * layout.dim)]
                let rowMax = Double(row.map { abs($0) }.max()!)
                var exact = 0.0, mag = 0.0
                for i in 0..<layout.dim {
                    exact += Double(q[i]) * Double(xhat[t * layout.dim + i])
                    mag += abs(Double(q[i])) * 3 * rowMax
                }
                // fp32 sums of D terms regrouped as (lo + step/2)·Σq + step·Σq·c per group;
                // |lo| and 2^b·step are ≤ 2·max|x̂|, so the error is ≤ D·ε·Σ|q|·3·max|x̂|.
                let tol = Double(layout.dim) * Double(Float.ulpOfOne) * mag + 1e-6
                #expect(abs(Double(got[t]) - exact) <= tol, "\(isa) \(layout) t=\(t): \(got[t]) vs \(exact)")
            }
        }
    }

    @Test("weighted sum matches the fp64 reference", arguments: ISALevel.available)
    func accumulate(isa: ISALevel) throws {
        let kernels = KernelSet.forLevel(isa)
        for (n, layout) in sweepLayouts().enumerated() {
            let count = 11
            let x = DataMaker.rows(count: count, dim: layout.dim, seed: UInt64(600 + n))
            var rng = SplitMix64(seed: UInt64(700 + n))
            let w = (0..<count).map { _ in Float(rng.uniform()) }
            let v = try PackedVectors.quantizing(x, layout: layout, kernels: kernels)
            let got = try v.weightedSum(w)
            let xhat = v.dequantized()
            let rowMax = (0..<count).map { t in Double(xhat[(t * layout.dim)..<((t + 1) * layout.dim)].map { abs($0) }.max()!) }
            for i in 0..<layout.dim {
                var exact = 0.0, mag = 0.0
                for t in 0..<count {
                    exact += Double(w[t]) * Double(xhat[t * layout.dim + i])
                    // w·lo and (w·step)·(c + ½) are summed apart: |lo|, 2^b·step ≤ 2·max|x̂|.
                    mag += abs(Double(w[t])) * 3 * rowMax[t]
                }
                let tol = Double(4 * count) * Double(Float.ulpOfOne) * mag + 1e-5
                #expect(abs(Double(got[i]) - exact) <= tol, "\(isa) \(layout) i=\(i): \(got[i]) vs \(exact)")
            }
        }
    }

    @Test("shape errors are typed")
    func shapes() throws {
        let v = try PackedVectors.quantizing([Float](repeating: 1, count: 128), layout: PackedLayout(dim: 64, groupSize: 64, bits: 4))
        #expect(throws: QuantizationError.shapeMismatch(expected: "query of 64 elements", got: "63")) { try v.dot([Float](repeating: 0, count: 63)) }
        #expect(throws: QuantizationError.shapeMismatch(expected: "2 weights", got: "3")) { try v.weightedSum([1, 2, 3]) }
    }
}

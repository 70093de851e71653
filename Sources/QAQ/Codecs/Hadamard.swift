/// A fast orthonormal Walsh–Hadamard rotation with fixed random signs:
///
///     forward:  y = H · diag(s) · x
///     inverse:  x = diag(s) · H · y        (H is symmetric and orthonormal, so H⁻¹ = Hᵀ = H)
///
/// with s ∈ {−1, +1}^D drawn once at `init` from `seed` (SplitMix64; bit 63 of each draw
/// decides one sign), so every instance built with the same (dim, seed) is the same rotation.
///
/// **Block structure.** H is block-diagonal over the binary decomposition of D, largest block
/// first: D = 2^k₁ + 2^k₂ + … with k₁ > k₂ > … (one block per set bit of D). Block j covers
/// elements [offset_j, offset_j + n_j) and applies the Sylvester Hadamard matrix of order n_j
/// scaled by 1/√n_j: entry (a, b) = (−1)^popcount(a & b) / √n_j. Examples: 64 and 128 are one
/// block; 96 = 64 + 32; 80 = 64 + 16; an odd D ends in a block of 1 (a sign flip only).
/// Mixing is therefore only within blocks — rotations of non-power-of-two dimensions spread
/// an outlier over its own block, not the whole vector.
///
/// Each block costs n·log₂n additions (in-place butterflies; strides ≥ 16 run on SIMD16).
/// The 1/√n scale and the signs are folded into one stored vector, applied before the
/// butterflies in `forward` and after them in `inverse`. Neither allocates.
///
/// Orthonormality means dot products are preserved: (Hs·q) · (Hs·k) = q · k, so attention
/// scores are unchanged when both q and k are rotated.
public struct RandomizedHadamard: Sendable {
    /// Elements per vector (D).
    public let dim: Int
    /// The seed the signs were drawn from.
    public let seed: UInt64
    /// Block sizes, largest first (powers of two summing to `dim`).
    public let blockSizes: [Int]
    /// sᵢ / √n(block of i), one per element.
    private let scaledSigns: [Float]

    public init(dim: Int, seed: UInt64 = 0x51A7) {
        precondition(dim > 0, "RandomizedHadamard needs dim > 0, got \(dim)")
        self.dim = dim
        self.seed = seed
        var sizes: [Int] = []
        var bit = Int.bitWidth - 1 - dim.leadingZeroBitCount
        while bit >= 0 {
            if dim & (1 << bit) != 0 { sizes.append(1 << bit) }
            bit -= 1
        }
        self.blockSizes = sizes
        var state = seed
        var scaled = [Float](repeating: 0, count: dim)
        var offset = 0
        for n in sizes {
            let norm = 1 / Float(n).squareRoot()
            for i in offset..<(offset + n) {
                // SplitMix64
                state &+= 0x9E37_79B9_7F4A_7C15
                var z = state
                z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                z ^= z >> 31
                scaled[i] = (z >> 63) == 0 ? norm : -norm
            }
            offset += n
        }
        self.scaledSigns = scaled
    }

    /// The random sign of element `i` (±1).
    public func sign(_ i: Int) -> Float { scaledSigns[i] < 0 ? -1 : 1 }

    /// In place: `x ← H · diag(s) · x` over `dim` floats.
    public func forward(_ x: UnsafeMutablePointer<Float>) {
        scaledSigns.withUnsafeBufferPointer { s in
            for i in 0..<dim { x[i] *= s[i] }
        }
        butterflies(x)
    }

    /// In place: `y ← diag(s) · H · y` over `dim` floats (the inverse of ``forward(_:)``).
    public func inverse(_ y: UnsafeMutablePointer<Float>) {
        butterflies(y)
        scaledSigns.withUnsafeBufferPointer { s in
            for i in 0..<dim { y[i] *= s[i] }
        }
    }

    /// Unnormalized Walsh–Hadamard butterflies on every block.
    private func butterflies(_ x: UnsafeMutablePointer<Float>) {
        var offset = 0
        for n in blockSizes {
            Self.fwht(x + offset, n)
            offset += n
        }
    }

    /// In-place unnormalized fast Walsh–Hadamard transform of `n` (a power of two) floats.
    @inline(__always)
    private static func fwht(_ p: UnsafeMutablePointer<Float>, _ n: Int) {
        var h = 1
        // Strides below 16: scalar butterflies.
        while h < n && h < 16 {
            var i = 0
            while i < n {
                for j in i..<(i + h) {
                    let a = p[j], b = p[j + h]
                    p[j] = a + b
                    p[j + h] = a - b
                }
                i += 2 * h
            }
            h *= 2
        }
        // Strides of 16 and more: 16 butterflies at a time.
        let raw = UnsafeMutableRawPointer(p)
        while h < n {
            var i = 0
            while i < n {
                var j = i
                while j < i + h {
                    let a = raw.loadUnaligned(fromByteOffset: 4 * j, as: SIMD16<Float>.self)
                    let b = raw.loadUnaligned(fromByteOffset: 4 * (j + h), as: SIMD16<Float>.self)
                    raw.storeBytes(of: a + b, toByteOffset: 4 * j, as: SIMD16<Float>.self)
                    raw.storeBytes(of: a - b, toByteOffset: 4 * (j + h), as: SIMD16<Float>.self)
                    j += 16
                }
                i += 2 * h
            }
            h *= 2
        }
    }
}

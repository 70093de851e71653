/// A code-map format (``CodebookLayout``): each vector is optionally rotated by a fixed
/// random-sign Hadamard matrix (``RandomizedHadamard``), which makes its coordinates close
/// to Gaussian, then every element is coded against a table of 2^b levels — by default the
/// Lloyd-Max levels of N(0, 1) (``LloydMax``) — at the group's RMS, and the stored scale is
/// the least-squares refit ⟨x, c⟩/⟨c, c⟩.
///
/// `decode` returns vectors in the original domain (it applies the inverse rotation), so
/// `decode(encode(x))` is the reconstruction x̂ of x itself. Attention kernels that work in
/// the rotated domain (rotating q once instead) read the same records.
public struct RotatedCodebookCodec: VectorCodec {
    /// The rotation applied before coding.
    public enum Rotation: Hashable, Sendable, CustomStringConvertible {
        /// No rotation: codes are taken of the vector as it is.
        case none
        /// `RandomizedHadamard(dim: D, seed: seed)`.
        case hadamard(seed: UInt64)

        /// The rotation of the formats, with the library's default seed.
        public static let defaultHadamard = Rotation.hadamard(seed: 0x51A7)

        public var description: String {
            switch self {
            case .none: return "none"
            case .hadamard(let seed): return "hadamard(seed: \(seed))"
            }
        }
    }

    public let layout: CodebookLayout
    public let rotation: Rotation
    /// The rotation's transform (nil for ``Rotation/none``), e.g. to rotate queries.
    public let hadamard: RandomizedHadamard?
    /// sᵢ/√n(block of i) of ``hadamard``, for the rotation kernel (empty without rotation).
    public let scaledSigns: [Float]
    /// The 2^b levels in fp32, ascending and symmetric.
    public let levels: [Float]
    /// The 2^b − 1 thresholds in fp32 (midpoints of the levels, rounded from fp64).
    public let thresholds: [Float]
    public let kernels: KernelSet

    /// A format with the Lloyd-Max levels of N(0, 1) at `bits` bits.
    public init(dim: Int, bits: Int, scale: CodebookLayout.ScaleMode = .vectorF16,
                rotation: Rotation = .defaultHadamard, kernels: KernelSet = .active) throws(QuantizationError) {
        let layout: CodebookLayout
        do {
            layout = try CodebookLayout(dim: dim, bits: bits, scale: scale)
        } catch { throw .layout(error) }
        self.init(layout: layout, rotation: rotation, levels: LloydMax.levels(bits: bits), kernels: kernels)
    }

    /// A format with a custom level table (2^b values, strictly ascending, symmetric about
    /// 0: `levels[h + j] = −levels[h − 1 − j]`, h = 2^(b−1)); thresholds are the midpoints.
    public init(layout: CodebookLayout, rotation: Rotation = .defaultHadamard, levels: [Double],
                kernels: KernelSet = .active) {
        let n = layout.levelCount
        precondition(levels.count == n, "a \(layout.bits)-bit code map needs \(n) levels, got \(levels.count)")
        for j in 0..<(n / 2) {
            precondition(levels[n / 2 + j] > 0 && levels[n / 2 + j] == -levels[n / 2 - 1 - j],
                         "code-map levels must be symmetric about 0 (the kernels read the upper half)")
        }
        for i in 1..<n { precondition(levels[i] > levels[i - 1], "code-map levels must be strictly ascending") }
        self.layout = layout
        self.rotation = rotation
        switch rotation {
        case .none:
            self.hadamard = nil
            self.scaledSigns = []
        case .hadamard(let seed):
            let h = RandomizedHadamard(dim: layout.dim, seed: seed)
            self.hadamard = h
            // The same fp32 values as inside `RandomizedHadamard` (its kernel twin is bit-exact).
            var scaled: [Float] = []
            for n in h.blockSizes {
                let norm = 1 / Float(n).squareRoot()
                for i in scaled.count..<(scaled.count + n) { scaled.append(h.sign(i) < 0 ? -norm : norm) }
            }
            self.scaledSigns = scaled
        }
        self.levels = levels.map { Float($0) }
        self.thresholds = (0..<(n - 1)).map { Float((levels[$0] + levels[$0 + 1]) / 2) }
        self.kernels = kernels
    }

    public var dim: Int { layout.dim }
    public var bytesPerVector: Int { layout.recordBytes }
    /// Codes, and the scales as metadata; no outliers.
    public var breakdown: ByteBreakdown {
        ByteBreakdown(codes: layout.codeBytes, metadata: layout.scaleBytes, outliers: 0)
    }
    public var description: String {
        "codebook(b=\(layout.bits), scale=\(layout.scaleMode), rotation=\(rotation))"
    }

    /// Vectors rotated per chunk, in stack scratch (≤ 32 KiB): the two kernel calls per chunk,
    /// their dispatch and the quantizer's per-call set-up (the 4-bit bins) are spread over
    /// 64 vectors at D = 128. Measured, v4, 4-bit, 4096 vectors: 64 per chunk ran 1–2 % faster
    /// than 32 (1.96 → 2.00 Gvalues/s with the kernel of that time, 2.03–2.07 → 2.06–2.10 with
    /// the next), 128 no faster than 64.
    private var chunkVectors: Int { max(1, 8192 / layout.dim) }

    public func encode(_ src: UnsafePointer<Float>, count: Int, into dst: UnsafeMutableRawPointer) throws(QuantizationError) {
        guard count > 0 else { return }
        let status = encodeStatus(src, count: count, into: dst)
        guard status.code != .ok else { return }
        if status.code == .nonFinite, hadamard != nil,
           firstNonFinite(src + status.vector * dim, count: 1, dim: dim) == nil {
            // The input was finite: its rotation overflowed fp32, so its magnitude is far
            // beyond what fp16 scales hold.
            throw .outOfFloat16Range(vector: status.vector)
        }
        throw QuantizationError(status)
    }

    /// Rotates chunks of vectors into stack scratch and quantizes them; no heap allocation.
    private func encodeStatus(_ src: UnsafePointer<Float>, count: Int, into dst: UnsafeMutableRawPointer) -> KernelStatus {
        let d = dim
        return levels.withUnsafeBufferPointer { lv in
            thresholds.withUnsafeBufferPointer { th in
                guard hadamard != nil else {
                    return kernels.codebookQuantize(src, count, layout, lv.baseAddress!, th.baseAddress!, dst)
                }
                let chunk = chunkVectors
                return scaledSigns.withUnsafeBufferPointer { sg in
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: chunk * d) { scratch in
                        let buf = scratch.baseAddress!
                        var v = 0
                        while v < count {
                            let n = min(chunk, count - v)
                            kernels.hadamardRotate(src + v * d, buf, n, d, sg.baseAddress!, false)
                            var status = kernels.codebookQuantize(buf, n, layout, lv.baseAddress!, th.baseAddress!,
                                                                  dst + v * layout.recordBytes)
                            if status.code != .ok {
                                status.vector += v
                                return status
                            }
                            v += n
                        }
                        return .ok
                    }
                }
            }
        }
    }

    public func decode(_ src: UnsafeRawPointer, count: Int, into dst: UnsafeMutablePointer<Float>) {
        guard count > 0 else { return }
        levels.withUnsafeBufferPointer { lv in
            kernels.codebookDequantize(src, count, layout, lv.baseAddress!, dst, layout.dim)
        }
        if hadamard != nil {
            scaledSigns.withUnsafeBufferPointer { sg in
                kernels.hadamardRotate(dst, dst, count, dim, sg.baseAddress!, true)
            }
        }
    }
}

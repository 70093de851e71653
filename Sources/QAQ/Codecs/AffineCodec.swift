/// The paper's midpoint quantizer in QAQ's packed layout (``PackedLayout``), through the SIMD
/// kernels of a ``KernelSet``.
public struct AffineCodec: VectorCodec {
    public let layout: PackedLayout
    public let kernels: KernelSet

    public init(layout: PackedLayout, kernels: KernelSet = .active) {
        self.layout = layout
        self.kernels = kernels
    }

    public init(dim: Int, bits: Int, groupSize: Int, outliers: Int = 0, kernels: KernelSet = .active) throws(QuantizationError) {
        do {
            self.layout = try PackedLayout(dim: dim, groupSize: groupSize, bits: bits, outlierCount: outliers)
        } catch { throw .layout(error) }
        self.kernels = kernels
    }

    public var dim: Int { layout.dim }
    public var bytesPerVector: Int { layout.recordBytes }
    public var breakdown: ByteBreakdown {
        ByteBreakdown(codes: layout.codeBytes, metadata: layout.metadataBytes, outliers: layout.outlierBytes)
    }
    public var description: String { "affine(b=\(layout.bits), G=\(layout.groupSize), k=\(layout.outlierCount))" }

    public func encode(_ src: UnsafePointer<Float>, count: Int, into dst: UnsafeMutableRawPointer) throws(QuantizationError) {
        guard count > 0 else { return }
        let status = kernels.quantize(src, .float32, count, layout.dim, layout, dst)
        if status.code != .ok { throw QuantizationError(status) }
    }

    public func decode(_ src: UnsafeRawPointer, count: Int, into dst: UnsafeMutablePointer<Float>) {
        guard count > 0 else { return }
        kernels.dequantize(src, count, layout, dst, layout.dim)
    }
}

/// Vectors stored as fp32, unchanged (the exact baseline).
public struct Float32Codec: VectorCodec {
    public let dim: Int
    public init(dim: Int) { self.dim = dim }
    public var bytesPerVector: Int { 4 * dim }
    public var breakdown: ByteBreakdown { ByteBreakdown(codes: 4 * dim, metadata: 0, outliers: 0) }
    public var description: String { "fp32" }

    public func encode(_ src: UnsafePointer<Float>, count: Int, into dst: UnsafeMutableRawPointer) throws {
        if let v = firstNonFinite(src, count: count, dim: dim) { throw QuantizationError.nonFinite(vector: v) }
        copyBytes(dst, src, 4 * dim * count)   // not copyMemory: see copyBytes
    }

    public func decode(_ src: UnsafeRawPointer, count: Int, into dst: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: 4 * dim * count)
    }
}

/// Vectors stored as IEEE fp16 (round to nearest even).
public struct Float16Codec: VectorCodec {
    public let dim: Int
    public init(dim: Int) { self.dim = dim }
    public var bytesPerVector: Int { 2 * dim }
    public var breakdown: ByteBreakdown { ByteBreakdown(codes: 2 * dim, metadata: 0, outliers: 0) }
    public var description: String { "fp16" }

    public func encode(_ src: UnsafePointer<Float>, count: Int, into dst: UnsafeMutableRawPointer) throws {
        if let v = firstNonFinite(src, count: count, dim: dim) { throw QuantizationError.nonFinite(vector: v) }
        for v in 0..<count {
            for i in 0..<dim where src[v * dim + i].magnitude > 65504 { throw QuantizationError.outOfFloat16Range(vector: v) }
        }
        let out = dst.bindMemory(to: Float16.self, capacity: count * dim)
        for i in 0..<(count * dim) { out[i] = Float16(src[i]) }
    }

    public func decode(_ src: UnsafeRawPointer, count: Int, into dst: UnsafeMutablePointer<Float>) {
        for i in 0..<(count * dim) { dst[i] = Float(src.loadUnaligned(fromByteOffset: 2 * i, as: Float16.self)) }
    }
}

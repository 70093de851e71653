/// Bytes of one stored vector (or block), split the way memory reports need them.
public struct ByteBreakdown: Equatable, Sendable, Codable {
    /// Quantized codes (or raw fp16/fp32 values for unquantized formats).
    public var codes: Int
    /// Scales, zero points, lo/step pairs.
    public var metadata: Int
    /// Outlier indices and values.
    public var outliers: Int

    public init(codes: Int, metadata: Int, outliers: Int) {
        self.codes = codes
        self.metadata = metadata
        self.outliers = outliers
    }

    public var total: Int { codes + metadata + outliers }

    public static func + (a: ByteBreakdown, b: ByteBreakdown) -> ByteBreakdown {
        ByteBreakdown(codes: a.codes + b.codes, metadata: a.metadata + b.metadata, outliers: a.outliers + b.outliers)
    }

    public static func * (a: ByteBreakdown, n: Int) -> ByteBreakdown {
        ByteBreakdown(codes: a.codes * n, metadata: a.metadata * n, outliers: a.outliers * n)
    }

    public static let zero = ByteBreakdown(codes: 0, metadata: 0, outliers: 0)
}

/// A storage format for vectors of `dim` fp32 elements, one vector at a time (token-wise):
/// every vector takes exactly ``bytesPerVector`` bytes.
///
/// Contract: `decode(encode(x))` is the format's reconstruction x̂; encode fails with a typed
/// error (and writes nothing it promises) on NaN/Inf or values the format cannot hold.
public protocol VectorCodec: Sendable, CustomStringConvertible {
    /// Elements per vector.
    var dim: Int { get }
    /// Bytes per vector, exactly, all overheads included.
    var bytesPerVector: Int { get }
    /// ``bytesPerVector`` split into codes, metadata and outliers.
    var breakdown: ByteBreakdown { get }
    /// Encodes `count` contiguous vectors (`count × dim` floats) into `count × bytesPerVector` bytes.
    func encode(_ src: UnsafePointer<Float>, count: Int, into dst: UnsafeMutableRawPointer) throws
    /// Decodes `count` contiguous records into `count × dim` floats.
    func decode(_ src: UnsafeRawPointer, count: Int, into dst: UnsafeMutablePointer<Float>)
}

extension VectorCodec {
    /// Bits per element, all overheads included.
    public var bitsPerElement: Double { Double(bytesPerVector * 8) / Double(dim) }
}

/// Checks fp32 input for NaN/Inf (vector index of the first bad one).
@inline(__always)
func firstNonFinite(_ src: UnsafePointer<Float>, count: Int, dim: Int) -> Int? {
    for v in 0..<count {
        for i in 0..<dim where !src[v * dim + i].isFinite { return v }
    }
    return nil
}

/// `memcpy` behind a call boundary. Swift 6.3.1's LLVM may turn a `memcpy`/`memmove`/`memset`
/// at the end of a *throwing* function into a tail call that skips restoring the error
/// register, so the caller sees a phantom error (swiftlang/swift#90477, fixed upstream in
/// llvm-project#214590). Throwing functions in this package copy through this non-throwing,
/// non-inlined helper instead.
@inline(never)
func copyBytes(_ dst: UnsafeMutableRawPointer, _ src: UnsafeRawPointer, _ count: Int) {
    dst.copyMemory(from: src, byteCount: count)
}

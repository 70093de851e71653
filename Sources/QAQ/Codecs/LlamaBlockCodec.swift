/// One of llama.cpp's 32-value block formats with an fp16 scale `d` first (`block_q8_0`,
/// `block_q4_0`): how one block is quantized and dequantized, byte for byte.
public protocol LlamaBlock {
    /// The format's name (`q8_0`, `q4_0`).
    static var name: String { get }
    /// Bytes per block, scale included.
    static var blockBytes: Int { get }
    /// `d = amax / scaleDivisor` (in magnitude): the fp16-fit check uses it.
    static var scaleDivisor: Float { get }
    /// Quantizes 32 finite values into one block.
    static func quantizeBlock(_ x: UnsafePointer<Float>, _ out: UnsafeMutableRawPointer)
    /// Dequantizes one block into 32 values.
    static func decodeBlock(_ rec: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>)
}

/// Vectors of `dim` values as `dim / 32` consecutive llama.cpp blocks.
///
/// `dim` must be a positive multiple of 32: ``encode(_:count:into:)`` throws
/// ``QuantizationError/shapeMismatch(expected:got:)`` otherwise (``init(validatingDim:)``
/// fails at construction instead). Encode fails with ``QuantizationError/nonFinite(vector:)``
/// on NaN/Inf and with ``QuantizationError/outOfFloat16Range(vector:)`` when a block's `d`
/// does not fit fp16; in both cases nothing is written.
public struct LlamaBlockCodec<Block: LlamaBlock>: VectorCodec {
    /// Values per block.
    public static var blockValues: Int { 32 }
    /// Bytes per block (fp16 d + codes).
    public static var blockBytes: Int { Block.blockBytes }

    public let dim: Int

    /// A codec for vectors of `dim` values (a positive multiple of 32, else every encode throws).
    public init(dim: Int) { self.dim = dim }

    /// A codec for vectors of `dim` values, or a typed error when `dim` is not a positive
    /// multiple of 32.
    public init(validatingDim dim: Int) throws(QuantizationError) {
        guard dim > 0, dim % Self.blockValues == 0 else { throw Self.dimError(dim) }
        self.dim = dim
    }

    private var blocks: Int { dim / Self.blockValues }
    public var bytesPerVector: Int { blocks * Self.blockBytes }
    public var breakdown: ByteBreakdown { ByteBreakdown(codes: blocks * (Self.blockBytes - 2), metadata: blocks * 2, outliers: 0) }
    public var description: String { Block.name }

    static func dimError(_ dim: Int) -> QuantizationError {
        .shapeMismatch(expected: "dim a positive multiple of 32 (\(Block.name) blocks)", got: "dim \(dim)")
    }

    public func encode(_ src: UnsafePointer<Float>, count: Int, into dst: UnsafeMutableRawPointer) throws(QuantizationError) {
        guard dim > 0, dim % Self.blockValues == 0 else { throw Self.dimError(dim) }
        guard count > 0 else { return }
        // Validate everything first: nothing is written when we throw.
        for v in 0..<count {
            for b in 0..<blocks {
                let x = src + v * dim + b * Self.blockValues
                var amax: Float = 0
                for j in 0..<Self.blockValues {
                    guard x[j].isFinite else { throw .nonFinite(vector: v) }
                    amax = Swift.max(amax, x[j].magnitude)
                }
                guard Float16(amax / Block.scaleDivisor).isFinite else { throw .outOfFloat16Range(vector: v) }
            }
        }
        for blk in 0..<(count * blocks) {
            Block.quantizeBlock(src + blk * Self.blockValues, dst + blk * Self.blockBytes)
        }
    }

    public func decode(_ src: UnsafeRawPointer, count: Int, into dst: UnsafeMutablePointer<Float>) {
        guard dim > 0, dim % Self.blockValues == 0 else { return }
        for blk in 0..<(count * blocks) {
            Block.decodeBlock(src + blk * Self.blockBytes, dst + blk * Self.blockValues)
        }
    }
}

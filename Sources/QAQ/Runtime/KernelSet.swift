#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import QAQKernelsBase
#if arch(x86_64)
import QAQKernelsV3
import QAQKernelsV4
#endif

/// The kernels of one ISA level, as a table of functions. The library calls kernels only
/// through a `KernelSet`, chosen once (``KernelSet/active``) or explicitly per level.
public struct KernelSet: Sendable {
    public typealias Quantize = @Sendable (
        UnsafeRawPointer, ElementType, Int, Int, PackedLayout, UnsafeMutableRawPointer) -> KernelStatus
    public typealias Dequantize = @Sendable (
        UnsafeRawPointer, Int, PackedLayout, UnsafeMutablePointer<Float>, Int) -> Void
    public typealias Dot = @Sendable (
        UnsafePointer<Float>, UnsafeRawPointer, Int, PackedLayout, UnsafeMutablePointer<Float>) -> Void
    public typealias Accumulate = @Sendable (
        UnsafePointer<Float>, UnsafeRawPointer, Int, PackedLayout, UnsafeMutablePointer<Float>) -> Void
    public typealias Lower = @Sendable (
        UnsafeRawPointer, Int, PackedLayout, PackedLayout, UnsafeMutableRawPointer) -> Void
    public typealias ReadSum = @Sendable (UnsafeRawPointer, Int) -> Float
    public typealias CodebookQuantize = @Sendable (
        UnsafePointer<Float>, Int, CodebookLayout, UnsafePointer<Float>, UnsafePointer<Float>,
        UnsafeMutableRawPointer) -> KernelStatus
    public typealias CodebookDequantize = @Sendable (
        UnsafeRawPointer, Int, CodebookLayout, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void
    public typealias HadamardRotate = @Sendable (
        UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int, Int, UnsafePointer<Float>, Bool) -> Void

    public let isa: ISALevel
    /// (src, element type, count, src stride in elements, layout, dst records) → status.
    public let quantize: Quantize
    /// (records, count, layout, dst, dst stride in elements).
    public let dequantize: Dequantize
    /// (query, records, count, layout, out scores).
    public let dot: Dot
    /// (weights, records, count, layout, accumulator).
    public let accumulate: Accumulate
    /// (records, count, from layout, to layout, dst records).
    public let lower: Lower
    /// (bytes, byte count) → sum; the read-roof probe.
    public let readSum: ReadSum
    /// (src fp32, already rotated; count; layout; levels (2^b); thresholds (2^b − 1);
    /// dst records) → status. Code-map formats (see ``CodebookLayout``).
    public let codebookQuantize: CodebookQuantize
    /// (records, count, layout, levels, dst, dst stride in elements).
    public let codebookDequantize: CodebookDequantize
    /// (src, dst (may equal src), count, dim (a multiple of 16), scaled signs sᵢ/√n, inverse):
    /// the ``RandomizedHadamard`` rotation, bit-exact with it.
    public let hadamardRotate: HadamardRotate

    /// The kernels of `isa` (which must be compiled in; see ``ISALevel/compiled``).
    public static func forLevel(_ isa: ISALevel) -> KernelSet {
        switch isa {
        #if arch(x86_64)
        case .v4:
            return KernelSet(
                isa: .v4,
                quantize: { QAQKernelsV4.Kernels.quantize($0, elementType: $1, count: $2, srcStride: $3, layout: $4, dst: $5) },
                dequantize: { QAQKernelsV4.Kernels.dequantize($0, count: $1, layout: $2, dst: $3, dstStride: $4) },
                dot: { QAQKernelsV4.Kernels.dot(query: $0, $1, count: $2, layout: $3, out: $4) },
                accumulate: { QAQKernelsV4.Kernels.accumulate(weights: $0, $1, count: $2, layout: $3, into: $4) },
                lower: { QAQKernelsV4.Kernels.lower($0, count: $1, from: $2, to: $3, dst: $4) },
                readSum: { QAQKernelsV4.Kernels.readSum($0, byteCount: $1) },
                codebookQuantize: { QAQKernelsV4.Kernels.codebookQuantize($0, count: $1, layout: $2, levels: $3, thresholds: $4, dst: $5) },
                codebookDequantize: { QAQKernelsV4.Kernels.codebookDequantize($0, count: $1, layout: $2, levels: $3, dst: $4, dstStride: $5) },
                hadamardRotate: { QAQKernelsV4.Kernels.hadamardRotate($0, $1, count: $2, dim: $3, scaledSigns: $4, inverse: $5) })
        case .v3:
            return KernelSet(
                isa: .v3,
                quantize: { QAQKernelsV3.Kernels.quantize($0, elementType: $1, count: $2, srcStride: $3, layout: $4, dst: $5) },
                dequantize: { QAQKernelsV3.Kernels.dequantize($0, count: $1, layout: $2, dst: $3, dstStride: $4) },
                dot: { QAQKernelsV3.Kernels.dot(query: $0, $1, count: $2, layout: $3, out: $4) },
                accumulate: { QAQKernelsV3.Kernels.accumulate(weights: $0, $1, count: $2, layout: $3, into: $4) },
                lower: { QAQKernelsV3.Kernels.lower($0, count: $1, from: $2, to: $3, dst: $4) },
                readSum: { QAQKernelsV3.Kernels.readSum($0, byteCount: $1) },
                codebookQuantize: { QAQKernelsV3.Kernels.codebookQuantize($0, count: $1, layout: $2, levels: $3, thresholds: $4, dst: $5) },
                codebookDequantize: { QAQKernelsV3.Kernels.codebookDequantize($0, count: $1, layout: $2, levels: $3, dst: $4, dstStride: $5) },
                hadamardRotate: { QAQKernelsV3.Kernels.hadamardRotate($0, $1, count: $2, dim: $3, scaledSigns: $4, inverse: $5) })
        #endif
        default:
            return KernelSet(
                isa: .base,
                quantize: { QAQKernelsBase.Kernels.quantize($0, elementType: $1, count: $2, srcStride: $3, layout: $4, dst: $5) },
                dequantize: { QAQKernelsBase.Kernels.dequantize($0, count: $1, layout: $2, dst: $3, dstStride: $4) },
                dot: { QAQKernelsBase.Kernels.dot(query: $0, $1, count: $2, layout: $3, out: $4) },
                accumulate: { QAQKernelsBase.Kernels.accumulate(weights: $0, $1, count: $2, layout: $3, into: $4) },
                lower: { QAQKernelsBase.Kernels.lower($0, count: $1, from: $2, to: $3, dst: $4) },
                readSum: { QAQKernelsBase.Kernels.readSum($0, byteCount: $1) },
                codebookQuantize: { QAQKernelsBase.Kernels.codebookQuantize($0, count: $1, layout: $2, levels: $3, thresholds: $4, dst: $5) },
                codebookDequantize: { QAQKernelsBase.Kernels.codebookDequantize($0, count: $1, layout: $2, levels: $3, dst: $4, dstStride: $5) },
                hadamardRotate: { QAQKernelsBase.Kernels.hadamardRotate($0, $1, count: $2, dim: $3, scaledSigns: $4, inverse: $5) })
        }
    }

    /// The scalar references, as a kernel set (for tests and "× vs scalar" figures).
    public static let reference = KernelSet(
        isa: .base,
        quantize: { QAQKernelsBase.Reference.quantize($0, elementType: $1, count: $2, srcStride: $3, layout: $4, dst: $5) },
        dequantize: { QAQKernelsBase.Reference.dequantize($0, count: $1, layout: $2, dst: $3, dstStride: $4) },
        dot: { QAQKernelsBase.Reference.dot(query: $0, $1, count: $2, layout: $3, out: $4) },
        accumulate: { QAQKernelsBase.Reference.accumulate(weights: $0, $1, count: $2, layout: $3, into: $4) },
        lower: { QAQKernelsBase.Kernels.lower($0, count: $1, from: $2, to: $3, dst: $4) },
        readSum: { QAQKernelsBase.Kernels.readSum($0, byteCount: $1) },
        codebookQuantize: { QAQKernelsBase.Reference.codebookQuantize($0, count: $1, layout: $2, levels: $3, thresholds: $4, dst: $5) },
        codebookDequantize: { QAQKernelsBase.Reference.codebookDequantize($0, count: $1, layout: $2, levels: $3, dst: $4, dstStride: $5) },
        hadamardRotate: { QAQKernelsBase.Reference.hadamardRotate($0, $1, count: $2, dim: $3, scaledSigns: $4, inverse: $5) })

    /// The kernels of ``ISALevel/selected(environment:)`` — `QAQ_ISA` or the CPU's best.
    /// If `QAQ_ISA` names an unusable level, this warns once on standard error and uses
    /// the detected level; the command-line tools check ``ISALevel/selected(environment:)``
    /// first and refuse to run instead.
    public static let active: KernelSet = {
        do {
            return forLevel(try ISALevel.selected())
        } catch {
            FileHandleStandardError.write("QAQ warning: \(error); using \(ISALevel.detected)\n")
            return forLevel(ISALevel.detected)
        }
    }()
}

enum FileHandleStandardError {
    static func write(_ s: String) {
        var s = s
        s.withUTF8 { buf in _ = Glibc.write(2, buf.baseAddress, buf.count) }
    }
}

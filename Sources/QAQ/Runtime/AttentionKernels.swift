import QAQKernelsBase
#if arch(x86_64)
import QAQKernelsV3
import QAQKernelsV4
#endif

/// The decode-attention kernels of one ISA level: scores of a GQA group of queries and
/// weighted sums of values, over packed affine records or fp32 tiles.
public struct AttentionKernels: Sendable {
    public typealias Scores = @Sendable (UnsafePointer<Float>, Int, UnsafeRawPointer, Int, PackedLayout, UnsafeMutablePointer<Float>, Int) -> Void
    public typealias Accumulate = @Sendable (UnsafePointer<Float>, Int, Int, UnsafeRawPointer, Int, PackedLayout, UnsafeMutablePointer<Float>) -> Void
    public typealias ScoresF32 = @Sendable (UnsafePointer<Float>, Int, Int, UnsafePointer<Float>, Int, UnsafeMutablePointer<Float>, Int) -> Void
    public typealias AccumulateF32 = @Sendable (UnsafePointer<Float>, Int, Int, Int, UnsafePointer<Float>, Int, UnsafeMutablePointer<Float>) -> Void

    public let isa: ISALevel
    /// (queries [heads][D], heads, records, count, layout, out [heads][outStride], outStride).
    public let scores: Scores
    /// (weights [heads][wStride], wStride, heads, records, count, layout, out [heads][D]).
    public let accumulate: Accumulate
    /// (queries, heads, D, rows [count][D], count, out, outStride).
    public let scoresF32: ScoresF32
    /// (weights, wStride, heads, D, rows, count, out).
    public let accumulateF32: AccumulateF32

    public static func forLevel(_ isa: ISALevel) -> AttentionKernels {
        switch isa {
        #if arch(x86_64)
        case .v4:
            return AttentionKernels(
                isa: .v4,
                scores: { QAQKernelsV4.Kernels.scores(queries: $0, heads: $1, $2, count: $3, layout: $4, out: $5, outStride: $6) },
                accumulate: { QAQKernelsV4.Kernels.accumulateHeads(weights: $0, wStride: $1, heads: $2, $3, count: $4, layout: $5, out: $6) },
                scoresF32: { QAQKernelsV4.Kernels.scoresF32(queries: $0, heads: $1, dim: $2, $3, count: $4, out: $5, outStride: $6) },
                accumulateF32: { QAQKernelsV4.Kernels.accumulateHeadsF32(weights: $0, wStride: $1, heads: $2, dim: $3, $4, count: $5, out: $6) })
        case .v3:
            return AttentionKernels(
                isa: .v3,
                scores: { QAQKernelsV3.Kernels.scores(queries: $0, heads: $1, $2, count: $3, layout: $4, out: $5, outStride: $6) },
                accumulate: { QAQKernelsV3.Kernels.accumulateHeads(weights: $0, wStride: $1, heads: $2, $3, count: $4, layout: $5, out: $6) },
                scoresF32: { QAQKernelsV3.Kernels.scoresF32(queries: $0, heads: $1, dim: $2, $3, count: $4, out: $5, outStride: $6) },
                accumulateF32: { QAQKernelsV3.Kernels.accumulateHeadsF32(weights: $0, wStride: $1, heads: $2, dim: $3, $4, count: $5, out: $6) })
        #endif
        default:
            return AttentionKernels(
                isa: .base,
                scores: { QAQKernelsBase.Kernels.scores(queries: $0, heads: $1, $2, count: $3, layout: $4, out: $5, outStride: $6) },
                accumulate: { QAQKernelsBase.Kernels.accumulateHeads(weights: $0, wStride: $1, heads: $2, $3, count: $4, layout: $5, out: $6) },
                scoresF32: { QAQKernelsBase.Kernels.scoresF32(queries: $0, heads: $1, dim: $2, $3, count: $4, out: $5, outStride: $6) },
                accumulateF32: { QAQKernelsBase.Kernels.accumulateHeadsF32(weights: $0, wStride: $1, heads: $2, dim: $3, $4, count: $5, out: $6) })
        }
    }

    /// The scalar references (affine paths; the fp32 paths are the base kernels).
    public static let reference = AttentionKernels(
        isa: .base,
        scores: { QAQKernelsBase.Reference.scores(queries: $0, heads: $1, $2, count: $3, layout: $4, out: $5, outStride: $6) },
        accumulate: { QAQKernelsBase.Reference.accumulateHeads(weights: $0, wStride: $1, heads: $2, $3, count: $4, layout: $5, out: $6) },
        scoresF32: { QAQKernelsBase.Kernels.scoresF32(queries: $0, heads: $1, dim: $2, $3, count: $4, out: $5, outStride: $6) },
        accumulateF32: { QAQKernelsBase.Kernels.accumulateHeadsF32(weights: $0, wStride: $1, heads: $2, dim: $3, $4, count: $5, out: $6) })
}

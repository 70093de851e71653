import QAQKernelsBase
import QAQLayout
#if arch(x86_64)
import QAQKernelsV3
import QAQKernelsV4
#endif

/// The decode-attention kernels of one ISA level: scores of a GQA group of queries and
/// weighted sums of values over packed affine records, code-map records, fp32 or fp16 rows,
/// and the softmax pieces. Every kernel takes the caller's ``AttentionScratch`` and never
/// allocates.
public struct AttentionKernels: Sendable {
    /// (queries [heads][D], heads, records, count, layout, out [heads][outStride], outStride, scratch).
    public typealias Scores = @Sendable (UnsafePointer<Float>, Int, UnsafeRawPointer, Int, PackedLayout, UnsafeMutablePointer<Float>, Int, AttentionScratch) -> Void
    /// (weights [heads][wStride], wStride, heads, records, count, layout, out [heads][D], scratch).
    public typealias Accumulate = @Sendable (UnsafePointer<Float>, Int, Int, UnsafeRawPointer, Int, PackedLayout, UnsafeMutablePointer<Float>, AttentionScratch) -> Void
    /// (queries, heads, records, count, layout, levels, out, outStride, scratch).
    public typealias CodebookScores = @Sendable (UnsafePointer<Float>, Int, UnsafeRawPointer, Int, CodebookLayout, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int, AttentionScratch) -> Void
    /// (weights, wStride, heads, records, count, layout, levels, out, scratch).
    public typealias CodebookAccumulate = @Sendable (UnsafePointer<Float>, Int, Int, UnsafeRawPointer, Int, CodebookLayout, UnsafePointer<Float>, UnsafeMutablePointer<Float>, AttentionScratch) -> Void
    /// (queries, heads, D, rows, rowStride, count, out, outStride, scratch).
    public typealias ScoresRows<E> = @Sendable (UnsafePointer<Float>, Int, Int, UnsafePointer<E>, Int, Int, UnsafeMutablePointer<Float>, Int, AttentionScratch) -> Void
    /// (weights, wStride, heads, D, rows, rowStride, count, out, scratch).
    public typealias AccumulateRows<E> = @Sendable (UnsafePointer<Float>, Int, Int, Int, UnsafePointer<E>, Int, Int, UnsafeMutablePointer<Float>, AttentionScratch) -> Void

    /// (affine-side queries, code-map-side queries, heads, D, scratch) → whether the int8
    /// queries were written (false where the level has no integer dot or D ≠ 128).
    public typealias PrepareInt8 = @Sendable (UnsafePointer<Float>, UnsafePointer<Float>, Int, Int, AttentionScratch) -> Bool
    /// (heads, records, count, layout, out, outStride, scratch): ``Scores`` by int8 dot products
    /// for the prepared queries; false (nothing written) where the layout has no integer kernel.
    public typealias ScoresInt8 = @Sendable (Int, UnsafeRawPointer, Int, PackedLayout, UnsafeMutablePointer<Float>, Int, AttentionScratch) -> Bool
    /// (heads, records, count, layout, levels, out, outStride, scratch): ``CodebookScores`` by
    /// int8 dot products for the prepared queries; false where there is none.
    public typealias CodebookScoresInt8 = @Sendable (Int, UnsafeRawPointer, Int, CodebookLayout, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int, AttentionScratch) -> Bool

    /// (weights, wStride, heads, records, count, layout, out, scratch): ``Accumulate`` by int8
    /// dot products; false (nothing written) where the layout, the weights or the level have none.
    public typealias AccumulateInt8 = @Sendable (UnsafePointer<Float>, Int, Int, UnsafeRawPointer, Int, PackedLayout, UnsafeMutablePointer<Float>, AttentionScratch) -> Bool

    /// (weights, wStride, heads, records, count, layout, levels, out, scratch): ``CodebookAccumulate``
    /// by int8 dot products; false (nothing written) where the layout, the weights or the level have none.
    public typealias CodebookAccumulateInt8 = @Sendable (UnsafePointer<Float>, Int, Int, UnsafeRawPointer, Int, CodebookLayout, UnsafePointer<Float>, UnsafeMutablePointer<Float>, AttentionScratch) -> Bool

    public let isa: ISALevel
    public let scores: Scores
    /// The queries quantized to int8 once per call and KV head, for the integer-dot scores.
    public let prepareInt8: PrepareInt8
    /// Integer-dot scores of 4-bit affine keys, D = 128 (AVX-512 VNNI): the query quantized to
    /// int8, error bounded as AttentionInt8.swift states.
    public let scoresInt8: ScoresInt8
    /// Integer-dot scores of 2-, 3- and 4-bit code-map keys, D = 128 or 64, one scale per vector.
    public let codebookScoresInt8: CodebookScoresInt8
    public let accumulate: Accumulate
    /// Weighted values of 4-bit affine records, D = 128 or 64, by int8 dot products (AVX-512 VNNI):
    /// the weights quantized to 8 bits per head, quarter and block of 64 tokens, error bounded
    /// as AttentionInt8Values.swift states; false (nothing written) where there is no such kernel.
    public let accumulateInt8: AccumulateInt8
    public let codebookScores: CodebookScores
    public let codebookAccumulate: CodebookAccumulate
    /// Weighted values of 2-, 3- and 4-bit code-map records, D = 128 or 64, one scale per
    /// vector, by int8 dot products (AVX-512 VNNI): weights × scales quantized to 8 bits per
    /// head and block of 64 tokens, levels to int8, error bounded as
    /// AttentionInt8Codebook.swift states; false (nothing written) where there is no such kernel.
    public let codebookAccumulateInt8: CodebookAccumulateInt8
    public let scoresF32: ScoresRows<Float>
    public let accumulateF32: AccumulateRows<Float>
    public let scoresF16: ScoresRows<Float16>
    public let accumulateF16: AccumulateRows<Float16>
    /// (values, count) → the largest.
    public let maximum: @Sendable (UnsafePointer<Float>, Int) -> Float
    /// (values, count, shift) → Σ e^(x − shift), the exponentials written in place.
    public let expShifted: @Sendable (UnsafeMutablePointer<Float>, Int, Float) -> Float
    /// (values, count, factor): in-place multiply.
    public let scale: @Sendable (UnsafeMutablePointer<Float>, Int, Float) -> Void

    public static func forLevel(_ isa: ISALevel) -> AttentionKernels {
        switch isa {
        #if arch(x86_64)
        case .v4:
            return AttentionKernels(
                isa: .v4,
                scores: { QAQKernelsV4.Kernels.scores(queries: $0, heads: $1, $2, count: $3, layout: $4, out: $5, outStride: $6, scratch: $7) },
                prepareInt8: { QAQKernelsV4.Kernels.prepareInt8Queries(affine: $0, codebook: $1, heads: $2, dim: $3, scratch: $4) },
                scoresInt8: { QAQKernelsV4.Kernels.scoresInt8(heads: $0, $1, count: $2, layout: $3, out: $4, outStride: $5, scratch: $6) },
                codebookScoresInt8: { QAQKernelsV4.Kernels.codebookScoresInt8(heads: $0, $1, count: $2, layout: $3, levels: $4, out: $5, outStride: $6, scratch: $7) },
                accumulate: { QAQKernelsV4.Kernels.accumulateHeads(weights: $0, wStride: $1, heads: $2, $3, count: $4, layout: $5, out: $6, scratch: $7) },
                accumulateInt8: { QAQKernelsV4.Kernels.accumulateHeadsInt8(weights: $0, wStride: $1, heads: $2, $3, count: $4, layout: $5, out: $6, scratch: $7) },
                codebookScores: { QAQKernelsV4.Kernels.codebookScores(queries: $0, heads: $1, $2, count: $3, layout: $4, levels: $5, out: $6, outStride: $7, scratch: $8) },
                codebookAccumulate: { QAQKernelsV4.Kernels.codebookAccumulateHeads(weights: $0, wStride: $1, heads: $2, $3, count: $4, layout: $5, levels: $6, out: $7, scratch: $8) },
                codebookAccumulateInt8: { QAQKernelsV4.Kernels.codebookAccumulateHeadsInt8(weights: $0, wStride: $1, heads: $2, $3, count: $4, layout: $5, levels: $6, out: $7, scratch: $8) },
                scoresF32: { QAQKernelsV4.Kernels.scoresF32(queries: $0, heads: $1, dim: $2, $3, rowStride: $4, count: $5, out: $6, outStride: $7, scratch: $8) },
                accumulateF32: { QAQKernelsV4.Kernels.accumulateHeadsF32(weights: $0, wStride: $1, heads: $2, dim: $3, $4, rowStride: $5, count: $6, out: $7, scratch: $8) },
                scoresF16: { QAQKernelsV4.Kernels.scoresF16(queries: $0, heads: $1, dim: $2, $3, rowStride: $4, count: $5, out: $6, outStride: $7, scratch: $8) },
                accumulateF16: { QAQKernelsV4.Kernels.accumulateHeadsF16(weights: $0, wStride: $1, heads: $2, dim: $3, $4, rowStride: $5, count: $6, out: $7, scratch: $8) },
                maximum: { QAQKernelsV4.Kernels.maximum($0, count: $1) },
                expShifted: { QAQKernelsV4.Kernels.expShifted($0, count: $1, shift: $2) },
                scale: { QAQKernelsV4.Kernels.scale($0, count: $1, by: $2) })
        case .v3:
            return AttentionKernels(
                isa: .v3,
                scores: { QAQKernelsV3.Kernels.scores(queries: $0, heads: $1, $2, count: $3, layout: $4, out: $5, outStride: $6, scratch: $7) },
                prepareInt8: { QAQKernelsV3.Kernels.prepareInt8Queries(affine: $0, codebook: $1, heads: $2, dim: $3, scratch: $4) },
                scoresInt8: { QAQKernelsV3.Kernels.scoresInt8(heads: $0, $1, count: $2, layout: $3, out: $4, outStride: $5, scratch: $6) },
                codebookScoresInt8: { QAQKernelsV3.Kernels.codebookScoresInt8(heads: $0, $1, count: $2, layout: $3, levels: $4, out: $5, outStride: $6, scratch: $7) },
                accumulate: { QAQKernelsV3.Kernels.accumulateHeads(weights: $0, wStride: $1, heads: $2, $3, count: $4, layout: $5, out: $6, scratch: $7) },
                accumulateInt8: { QAQKernelsV3.Kernels.accumulateHeadsInt8(weights: $0, wStride: $1, heads: $2, $3, count: $4, layout: $5, out: $6, scratch: $7) },
                codebookScores: { QAQKernelsV3.Kernels.codebookScores(queries: $0, heads: $1, $2, count: $3, layout: $4, levels: $5, out: $6, outStride: $7, scratch: $8) },
                codebookAccumulate: { QAQKernelsV3.Kernels.codebookAccumulateHeads(weights: $0, wStride: $1, heads: $2, $3, count: $4, layout: $5, levels: $6, out: $7, scratch: $8) },
                codebookAccumulateInt8: { QAQKernelsV3.Kernels.codebookAccumulateHeadsInt8(weights: $0, wStride: $1, heads: $2, $3, count: $4, layout: $5, levels: $6, out: $7, scratch: $8) },
                scoresF32: { QAQKernelsV3.Kernels.scoresF32(queries: $0, heads: $1, dim: $2, $3, rowStride: $4, count: $5, out: $6, outStride: $7, scratch: $8) },
                accumulateF32: { QAQKernelsV3.Kernels.accumulateHeadsF32(weights: $0, wStride: $1, heads: $2, dim: $3, $4, rowStride: $5, count: $6, out: $7, scratch: $8) },
                scoresF16: { QAQKernelsV3.Kernels.scoresF16(queries: $0, heads: $1, dim: $2, $3, rowStride: $4, count: $5, out: $6, outStride: $7, scratch: $8) },
                accumulateF16: { QAQKernelsV3.Kernels.accumulateHeadsF16(weights: $0, wStride: $1, heads: $2, dim: $3, $4, rowStride: $5, count: $6, out: $7, scratch: $8) },
                maximum: { QAQKernelsV3.Kernels.maximum($0, count: $1) },
                expShifted: { QAQKernelsV3.Kernels.expShifted($0, count: $1, shift: $2) },
                scale: { QAQKernelsV3.Kernels.scale($0, count: $1, by: $2) })
        #endif
        default:
            return AttentionKernels(
                isa: .base,
                scores: { QAQKernelsBase.Kernels.scores(queries: $0, heads: $1, $2, count: $3, layout: $4, out: $5, outStride: $6, scratch: $7) },
                prepareInt8: { QAQKernelsBase.Kernels.prepareInt8Queries(affine: $0, codebook: $1, heads: $2, dim: $3, scratch: $4) },
                scoresInt8: { QAQKernelsBase.Kernels.scoresInt8(heads: $0, $1, count: $2, layout: $3, out: $4, outStride: $5, scratch: $6) },
                codebookScoresInt8: { QAQKernelsBase.Kernels.codebookScoresInt8(heads: $0, $1, count: $2, layout: $3, levels: $4, out: $5, outStride: $6, scratch: $7) },
                accumulate: { QAQKernelsBase.Kernels.accumulateHeads(weights: $0, wStride: $1, heads: $2, $3, count: $4, layout: $5, out: $6, scratch: $7) },
                accumulateInt8: { QAQKernelsBase.Kernels.accumulateHeadsInt8(weights: $0, wStride: $1, heads: $2, $3, count: $4, layout: $5, out: $6, scratch: $7) },
                codebookScores: { QAQKernelsBase.Kernels.codebookScores(queries: $0, heads: $1, $2, count: $3, layout: $4, levels: $5, out: $6, outStride: $7, scratch: $8) },
                codebookAccumulate: { QAQKernelsBase.Kernels.codebookAccumulateHeads(weights: $0, wStride: $1, heads: $2, $3, count: $4, layout: $5, levels: $6, out: $7, scratch: $8) },
                codebookAccumulateInt8: { QAQKernelsBase.Kernels.codebookAccumulateHeadsInt8(weights: $0, wStride: $1, heads: $2, $3, count: $4, layout: $5, levels: $6, out: $7, scratch: $8) },
                scoresF32: { QAQKernelsBase.Kernels.scoresF32(queries: $0, heads: $1, dim: $2, $3, rowStride: $4, count: $5, out: $6, outStride: $7, scratch: $8) },
                accumulateF32: { QAQKernelsBase.Kernels.accumulateHeadsF32(weights: $0, wStride: $1, heads: $2, dim: $3, $4, rowStride: $5, count: $6, out: $7, scratch: $8) },
                scoresF16: { QAQKernelsBase.Kernels.scoresF16(queries: $0, heads: $1, dim: $2, $3, rowStride: $4, count: $5, out: $6, outStride: $7, scratch: $8) },
                accumulateF16: { QAQKernelsBase.Kernels.accumulateHeadsF16(weights: $0, wStride: $1, heads: $2, dim: $3, $4, rowStride: $5, count: $6, out: $7, scratch: $8) },
                maximum: { QAQKernelsBase.Kernels.maximum($0, count: $1) },
                expShifted: { QAQKernelsBase.Kernels.expShifted($0, count: $1, shift: $2) },
                scale: { QAQKernelsBase.Kernels.scale($0, count: $1, by: $2) })
        }
    }
}

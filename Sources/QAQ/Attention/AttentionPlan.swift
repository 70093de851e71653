/// How one decode-attention call is executed: threads, how the work is divided among them,
/// and where the workers run. Plain data; the planner (`QAQTuning`) chooses it per problem,
/// the cache only follows it. Every plan computes the same result (up to fp32 rounding of
/// the order of summation).
public struct AttentionPlan: Sendable, Hashable, CustomStringConvertible {
    /// How the work of one call is divided.
    public enum Split: String, Sendable, Hashable, CaseIterable {
        /// Each worker takes whole KV heads.
        case head
        /// Each worker takes a token range (whole pages) of every KV head; partial results
        /// are merged (global softmax over the scores, then summed partial outputs).
        case tokens
        /// Work items are (KV head, token range) pairs: heads first, token ranges to balance.
        case both
    }

    /// Threads taking part, the calling thread included (1 = run on the caller).
    public var threads: Int
    public var split: Split
    /// Logical CPUs for the pool's workers: worker i (1 ≤ i < threads) is pinned to
    /// `cpus[i % cpus.count]`; empty = not pinned (the OS schedules them). The calling thread
    /// (worker 0) is never re-pinned. The planner derives the list from the topology
    /// (one PU per physical core first, or every PU); the cache knows nothing of topology.
    public var cpus: [Int]
    /// Tokens per work item when splitting by tokens (rounded up to whole pages).
    public var chunkTokens: Int
    /// Integer dot products (`vpdpbusd`, DESIGN §5) for pages of D = 128 and 64:
    /// - scores of 4-bit affine keys (G ≥ 32, no outliers) and 2-, 3- and 4-bit code-map keys
    ///   (one scale per vector):
    ///   each query quantized to int8 per head (scale max|q|/127), the codes (affine) or the
    ///   table's levels mapped to int8 (code maps) multiplied in 32-bit integers, the groups'
    ///   lo/step (or the vector's scale) applied once per group in fp32;
    /// - weighted sums of affine values (G ≥ 32, no outliers): the weights times the groups'
    ///   steps quantized to 8 unsigned bits per head, quarter of the vector and block of 64
    ///   tokens, multiplied with the codes in 32-bit integers, the rest in fp32;
    /// - weighted sums of 2-, 3- and 4-bit code-map values (one scale per vector): the weights
    ///   times the scales quantized to 8 unsigned bits per head and block of 64 tokens, the
    ///   levels to int8, multiplied in 32-bit integers.
    /// Adds the error of the int8 query (and int8 levels) and of the 8-bit weights, bounded as
    /// ``AttentionKernels/scoresInt8``, ``AttentionKernels/accumulateInt8`` and
    /// ``AttentionKernels/codebookAccumulateInt8`` state; where a
    /// page's format or the ISA level has no integer kernel (everything but AVX-512 VNNI),
    /// those pages take the fp32 kernels.
    public var integerDot: Bool

    public init(threads: Int = 1, split: Split = .head, cpus: [Int] = [], chunkTokens: Int = 1024, integerDot: Bool = false) {
        self.threads = max(1, threads)
        self.split = split
        self.cpus = cpus
        self.chunkTokens = max(1, chunkTokens)
        self.integerDot = integerDot
    }

    /// One thread, the caller's.
    public static let serial = AttentionPlan()

    public var description: String {
        (threads == 1 ? "1 thread" : "\(threads) threads, split \(split.rawValue), \(cpus.isEmpty ? "unpinned" : "pinned to \(cpus)"), chunk \(chunkTokens)")
            + (integerDot ? ", int8 dots" : "")
    }
}

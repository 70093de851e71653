/// A buffer of floats that grows on demand and is never shrunk (no allocation once warm).
final class FloatBuffer {
    private(set) var pointer: UnsafeMutablePointer<Float>
    private(set) var capacity: Int

    init(_ capacity: Int = 64) {
        self.capacity = max(capacity, 16)
        pointer = UnsafeMutableRawPointer.allocate(byteCount: 4 * self.capacity, alignment: 64).bindMemory(to: Float.self, capacity: self.capacity)
    }

    deinit { pointer.deallocate() }

    /// Makes room for `n` floats (contents are not kept) and returns the pointer.
    @discardableResult
    func reserve(_ n: Int) -> UnsafeMutablePointer<Float> {
        if n > capacity {
            pointer.deallocate()
            capacity = max(n, capacity * 2)
            pointer = UnsafeMutableRawPointer.allocate(byteCount: 4 * capacity, alignment: 64).bindMemory(to: Float.self, capacity: capacity)
        }
        return pointer
    }
}

/// One unit of decode-attention work: a token range of one KV head.
struct AttentionItem {
    var head: Int
    /// Key pages `firstPage ..< endPage` (and, when aligned, the same value pages).
    var firstPage: Int
    var endPage: Int
    /// Whether the item also takes the hot window (the last item of its head).
    var window: Bool
    /// Offset of the item's first token in the head's key order.
    var offset: Int
    var tokens: Int
    /// Key and value pages hold different token orders (mixed formats, channel key blocks):
    /// the item takes the whole head and gathers weights by position.
    var general: Bool
}

/// Buffers of decode attention owned by one cache, reused by every call.
final class AttentionWorkspace {
    var scratch: [AttentionScratch] = []
    /// Per worker: scores of one item, `[g][chunk]`.
    var itemScores: [FloatBuffer] = []
    /// Per worker: weights gathered for one value page, `[g][pageTokens]`.
    var gathered: [FloatBuffer] = []
    /// `[kvHeads][g][D]` scaled queries, and the same rotated into the code maps' domain.
    let queries = FloatBuffer()
    let codebookQueries = FloatBuffer()
    /// `[kvHeads][g]` q·mean for centered keys.
    let queryMean = FloatBuffer()
    /// `[kvHeads][g][T]` scores / exponentials in key order (kept when probabilities are needed).
    let scores = FloatBuffer()
    /// `[kvHeads][g][T]` weights in position order (general items).
    let byPosition = FloatBuffer()
    /// `[items][g][D]` partial outputs, and the partial outputs in the code maps' rotated domain.
    let partial = FloatBuffer()
    let partialRotated = FloatBuffer()
    /// `[items][g][2]`: running max and sum of exponentials.
    let stats = FloatBuffer()
    /// `[queryHeads][T]` probabilities for the policy's statistics.
    let probabilities = FloatBuffer()
    var items: [AttentionItem] = []
    var pool: WorkerPool?

    deinit { for s in scratch { s.deallocate() } }

    /// Scratch for `workers` workers of head dimension `dim` with tiles of `tileRows` rows.
    /// `queryHeads`: q heads per KV head (the int8 query area).
    func prepare(workers: Int, dim: Int, tileRows: Int, gatherFloats: Int, itemFloats: Int, queryHeads: Int = 4) {
        if scratch.count < workers || scratch.first.map({ $0.dim < dim || $0.tileRows < tileRows || $0.queryHeads < queryHeads }) == true {
            for s in scratch { s.deallocate() }
            scratch = (0..<workers).map { _ in AttentionScratch(dim: dim, tileRows: tileRows, queryHeads: queryHeads) }
        }
        while itemScores.count < workers { itemScores.append(FloatBuffer()) }
        while gathered.count < workers { gathered.append(FloatBuffer()) }
        for w in 0..<workers {
            itemScores[w].reserve(itemFloats)
            gathered[w].reserve(gatherFloats)
        }
    }

    /// The pool for a plan (made or remade when the thread count or pinning changes).
    func pool(for plan: AttentionPlan) -> WorkerPool? {
        guard plan.threads > 1 else { return nil }
        if let pool, pool.threads == plan.threads, pool.cpus == plan.cpus { return pool }
        pool = WorkerPool(threads: plan.threads, cpus: plan.cpus)
        return pool
    }
}

/// Keys of a block of consecutive tokens quantized per channel (the `.channel` key scheme).
final class KeyBlock {
    let firstPosition: Int
    let codec: KIVIKeyCodec
    var bytes: [UInt8]

    init(firstPosition: Int, codec: KIVIKeyCodec) {
        self.firstPosition = firstPosition
        self.codec = codec
        self.bytes = [UInt8](repeating: 0, count: codec.bytesPerBlock)
    }

    var tokens: Int { codec.blockTokens }
    var bits: Int { codec.bits }
}

/// Everything one layer holds.
final class LayerState {
    var heads: [HeadState]
    var count = 0
    /// Buffers of decode attention for this layer (layers may run concurrently).
    let workspace = AttentionWorkspace()
    /// Buffers of block (prefill) attention, made on first use.
    lazy var blockWorkspace = BlockAttentionWorkspace()

    init(heads: Int, pageTokens: Int, dim: Int, tracksStatistics: Bool, attentionWindow: Int) {
        self.heads = (0..<heads).map { _ in
            HeadState(pageTokens: pageTokens, dim: dim, tracksStatistics: tracksStatistics, attentionWindow: attentionWindow)
        }
    }
}

/// One KV head of one layer: the fp16 window, the stored keys and values, and the per-token
/// statistics the policy reads.
struct HeadState {
    let dim: Int
    /// fp16 rows of the window, keys and values, for positions `windowStart ..< windowStart + windowCount`.
    private var windowKeys: [Float16] = []
    private var windowValues: [Float16] = []
    private(set) var windowStart = 0
    var keys: TokenPages
    var values: TokenPages
    var keyBlocks: [KeyBlock] = []
    /// Per position: the last n steps' attention probabilities (max over the group's q heads).
    var history: AttentionHistory
    /// Per position: (key range, value range) in fp16, kept for later refreshes.
    private var ranges: [Float16] = []
    /// The mean key subtracted before storing keys (key centering), once estimated.
    private(set) var keyMean: [Float]?
    /// First position still in the staging tier (positions before it have their final storage).
    var stagedFrom = 0
    /// High quantile of ‖q/√D‖² seen by this head.
    var queryNorms = OnlineQuantile(p: 0.9)
    /// Codecs by format, made once per head (each head's own: a batched append stores the
    /// heads concurrently, with no state shared between them).
    private var codecs: [StorageFormat: any VectorCodec] = [:]

    mutating func codec(_ format: StorageFormat, kernels: KernelSet) throws(CacheError) -> any VectorCodec {
        if let c = codecs[format] { return c }
        let c = try format.codec(dim: dim, kernels: kernels)
        codecs[format] = c
        return c
    }

    /// Whether per-token statistics are kept (attention history and ranges): only for
    /// policies that read them, so fixed formats pay no bookkeeping for them.
    let tracksStatistics: Bool

    init(pageTokens: Int, dim: Int, tracksStatistics: Bool, attentionWindow: Int) {
        self.dim = dim
        self.tracksStatistics = tracksStatistics
        self.history = AttentionHistory(window: attentionWindow)
        self.keys = TokenPages(pageTokens: pageTokens)
        self.values = TokenPages(pageTokens: pageTokens)
    }

    var windowCount: Int { windowKeys.count / dim }

    /// fp32 rows of the tokens appended by the current `append` call (from `pendingFrom`):
    /// tokens that leave the window within the same call are stored from their original
    /// precision (with no hot window, every token does).
    private var pendingKeys: [Float] = []
    private var pendingValues: [Float] = []
    private var pendingFrom = 0

    /// Starts an `append` call at position `position`.
    mutating func beginAppend(at position: Int) {
        pendingKeys.removeAll(keepingCapacity: true)
        pendingValues.removeAll(keepingCapacity: true)
        pendingFrom = position
    }

    /// Appends one token (rotating the key when a rotation is given) to the window.
    mutating func pushWindow(_ k: UnsafePointer<Float>, _ v: UnsafePointer<Float>, rotation: RandomizedHadamard?) {
        var key = Array(UnsafeBufferPointer(start: k, count: dim))
        if let rotation { key.withUnsafeMutableBufferPointer { rotation.forward($0.baseAddress!) } }
        let value = Array(UnsafeBufferPointer(start: v, count: dim))
        pendingKeys.append(contentsOf: key)
        pendingValues.append(contentsOf: value)
        windowKeys.append(contentsOf: key.map { Float16($0) })
        windowValues.append(contentsOf: value.map { Float16($0) })
        if tracksStatistics {
            ranges.append(Float16(range(key)))
            ranges.append(Float16(range(value)))
            history.appendTokens(1)
        }
    }

    /// Estimates the mean key from the `count` oldest keys of the window.
    mutating func computeKeyMean(count: Int) {
        let rows = windowRows(keys: true, from: windowStart, count: count)
        var mean = [Float](repeating: 0, count: dim)
        for t in 0..<count { for i in 0..<dim { mean[i] += rows[t * dim + i] } }
        for i in 0..<dim { mean[i] /= Float(count) }
        keyMean = mean
    }

    /// Drops the oldest `n` tokens of the window (after they were stored elsewhere).
    mutating func dropWindow(_ n: Int) {
        windowKeys.removeFirst(n * dim)
        windowValues.removeFirst(n * dim)
        windowStart += n
    }

    /// fp32 rows of window tokens `from ..< from + count` (the original fp32 rows for tokens
    /// appended by the current call, else the window's fp16).
    func windowRows(keys: Bool, from: Int, count: Int) -> [Float] {
        if from >= pendingFrom {
            let p = keys ? pendingKeys : pendingValues
            let start = (from - pendingFrom) * dim
            if start + count * dim <= p.count { return Array(p[start..<(start + count * dim)]) }
        }
        let src = keys ? windowKeys : windowValues
        let start = (from - windowStart) * dim
        return src[start..<(start + count * dim)].map { Float($0) }
    }

    /// Calls `body` with the window's fp16 rows (keys or values), `windowCount × dim`.
    func withWindow<R>(keys: Bool, _ body: (UnsafePointer<Float16>) -> R) -> R {
        (keys ? windowKeys : windowValues).withUnsafeBufferPointer { body($0.baseAddress ?? UnsafePointer(bitPattern: 2)!) }
    }

    /// The window's rows (keys or values) as fp32 into `dst` (`windowCount × dim` floats).
    func windowTile(keys: Bool, into dst: UnsafeMutablePointer<Float>) {
        let src = keys ? windowKeys : windowValues
        for i in 0..<src.count { dst[i] = Float(src[i]) }
    }

    /// Every token's key or value row, dequantized, in position order: `[count][dim]`.
    /// (The reference attention path; the fused kernels read the pages directly.)
    func allRows(keys: Bool, count: Int, sinkTokens: Int = 0) -> [Float] {
        var out = [Float](repeating: 0, count: count * dim)
        out.withUnsafeMutableBufferPointer { dst in
            let pages = keys ? self.keys.pages : self.values.pages
            var tile = [Float](repeating: 0, count: dim)
            for page in pages {
                for slot in 0..<page.count {
                    tile.withUnsafeMutableBufferPointer { page.codec.decode(page.record(slot), count: 1, into: $0.baseAddress!) }
                    let p = Int(page.positions[slot])
                    for i in 0..<dim { dst[p * dim + i] = tile[i] }
                }
            }
            if keys {
                for block in keyBlocks {
                    let codec = block.codec
                    var rows = [Float](repeating: 0, count: block.tokens * dim)
                    block.bytes.withUnsafeBytes { src in
                        rows.withUnsafeMutableBufferPointer { codec.decode(src.baseAddress!, into: $0.baseAddress!) }
                    }
                    for i in 0..<(block.tokens * dim) { dst[block.firstPosition * dim + i] = rows[i] }
                }
            }
            if keys, let mean = keyMean {
                // Stored keys past the sinks were centered: add the mean back.
                for p in sinkTokens..<windowStart { for i in 0..<dim { dst[p * dim + i] += mean[i] } }
            }
            let window = keys ? windowKeys : windowValues
            for i in 0..<window.count { dst[windowStart * dim + i] = Float(window[i]) }
        }
        return out
    }

    func recentMax(_ p: Int) -> Float { tracksStatistics ? history.maxRecent(token: p) : 0 }
    func keyRange(_ p: Int) -> Float { tracksStatistics ? Float(ranges[2 * p]) : 0 }
    func valueRange(_ p: Int) -> Float { tracksStatistics ? Float(ranges[2 * p + 1]) : 0 }

    /// Bytes of per-token statistics (attention history, ranges).
    var bookkeepingBytes: Int { history.tokenCount * history.bytesPerToken + ranges.count * 2 }

    /// Keeps the first `n` positions. A channel key block that straddles `n` is dissolved:
    /// its surviving tokens return to the window (keys as stored, dequantized; values taken
    /// back from their pages), so the window stays contiguous.
    mutating func truncate(to n: Int) {
        var returning: (first: Int, keys: [Float], values: [Float])?
        if let block = keyBlocks.first(where: { $0.firstPosition < n && $0.firstPosition + $0.tokens > n }) {
            let codec = block.codec
            var rows = [Float](repeating: 0, count: block.tokens * dim)
            block.bytes.withUnsafeBytes { src in rows.withUnsafeMutableBufferPointer { codec.decode(src.baseAddress!, into: $0.baseAddress!) } }
            let survivors = n - block.firstPosition
            var vals = [Float](repeating: 0, count: survivors * dim)
            var tile = [Float](repeating: 0, count: dim)
            for page in values.pages {
                for slot in 0..<page.count {
                    let p = Int(page.positions[slot])
                    guard p >= block.firstPosition, p < n else { continue }
                    tile.withUnsafeMutableBufferPointer { page.codec.decode(page.record(slot), count: 1, into: $0.baseAddress!) }
                    for i in 0..<dim { vals[(p - block.firstPosition) * dim + i] = tile[i] }
                }
            }
            returning = (block.firstPosition, Array(rows[0..<(survivors * dim)]), vals)
        }
        let storedFrom = returning?.first ?? n
        keys.truncate(from: n)
        values.truncate(from: storedFrom)
        keyBlocks.removeAll { $0.firstPosition + $0.tokens > storedFrom }
        if let returning {
            windowKeys = returning.keys.map { Float16($0) }
            windowValues = returning.values.map { Float16($0) }
            windowStart = returning.first
        } else if n < windowStart {
            windowKeys.removeAll()
            windowValues.removeAll()
            windowStart = n
        } else {
            let keep = (n - windowStart) * dim
            windowKeys.removeLast(windowKeys.count - keep)
            windowValues.removeLast(windowValues.count - keep)
        }
        // The key mean stays (any fixed mean is exact: it is added back); it goes with an empty cache.
        stagedFrom = min(stagedFrom, n)
        if n == 0 { keyMean = nil }
        if tracksStatistics {
            history.truncate(to: n)
            ranges.removeLast(ranges.count - 2 * n)
        }
    }
}

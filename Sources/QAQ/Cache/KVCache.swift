/// The compressed KV cache: per layer and KV head, an fp16 hot window of the newest tokens,
/// then pages of stored vectors grouped by format (and, with channel keys, blocks of keys
/// quantized per channel), each token's key and value stored separately as its policy decides.
///
/// ## Engine API
/// - ``append(layer:keys:values:)`` one token or a batch (prefill). Keys and values are
///   row-major `[tokens][kvHeads][headDim]`, fp32 or fp16. A batch runs its KV heads
///   concurrently on ``attentionPlan``'s threads (the same bytes as one thread).
/// - ``attention(layer:queries:count:into:)`` causal attention for the queries of the last
///   `count` tokens appended (prefill blocks).
/// - ``attention(layer:queries:)`` decode attention for one new query token per q head
///   (`[queryHeads][headDim]`, q head h reads KV head h / group), over everything stored,
///   recording the attention probabilities when the policy uses them.
/// - ``recordAttention(layer:probabilities:)`` for engines that compute attention elsewhere.
/// - ``refresh(layer:)`` re-applies the policy to stored tokens (bits only go down).
/// - ``truncate(to:)`` and ``reset()`` for context shifts.
///
/// ## Thread safety
/// One writer per layer: calls for one layer must not overlap; calls for different layers may
/// run concurrently (each layer's state is separate and never shared). ``memory`` reads every
/// layer and must not overlap writers.
public final class KVCache: @unchecked Sendable {
    public let configuration: KVCacheConfiguration
    let layerStates: [LayerState]
    let rotation: RandomizedHadamard?
    /// Decode-attention kernels of the configured ISA level.
    let attentionKernels: AttentionKernels
    /// How ``attention(layer:queries:)`` runs (initially the configuration's). May be changed
    /// between calls, not during one.
    public var attentionPlan: AttentionPlan

    public init(_ configuration: KVCacheConfiguration) throws(CacheError) {
        try configuration.validate()
        self.configuration = configuration
        if case .rotated = configuration.policy.keyScheme {
            self.rotation = RandomizedHadamard(dim: configuration.headDim)
        } else {
            self.rotation = nil
        }
        self.attentionKernels = AttentionKernels.forLevel(configuration.kernels.isa)
        self.attentionPlan = configuration.attentionPlan
        self.layerStates = (0..<configuration.layers).map { _ in
            LayerState(heads: configuration.kvHeads, pageTokens: configuration.pageTokens, dim: configuration.headDim,
                       tracksStatistics: configuration.policy.usesAttention,
                       attentionWindow: configuration.policy.attentionWindow)
        }
    }

    /// Tokens held for `layer`.
    public func tokenCount(layer: Int) throws(CacheError) -> Int { try state(layer).count }

    // MARK: Append

    /// Appends `tokens` tokens to `layer`. Validates everything first: on error nothing changes.
    /// With more than one token and an ``attentionPlan`` of more than one thread, the KV heads
    /// are stored concurrently on the layer's worker pool; the result is byte-identical to the
    /// serial path. One token always runs on the caller.
    public func append(layer: Int, keys: UnsafeBufferPointer<Float>, values: UnsafeBufferPointer<Float>) throws(CacheError) {
        let s = try state(layer)
        let row = configuration.kvHeads * configuration.headDim
        guard keys.count == values.count, keys.count % row == 0 else {
            throw .shapeMismatch(expected: "keys and values of tokens × \(configuration.kvHeads) KV heads × \(configuration.headDim)",
                                 got: "\(keys.count) keys, \(values.count) values")
        }
        let tokens = keys.count / row
        if let limit = configuration.maxTokens, s.count + tokens > limit {
            throw .contextFull(layer: layer, tokens: s.count, appending: tokens, limit: limit)
        }
        for t in 0..<tokens {
            for i in 0..<row {
                let k = keys[t * row + i], v = values[t * row + i]
                guard k.isFinite, v.isFinite else { throw .nonFinite(layer: layer, token: t) }
                guard k.magnitude <= 65504, v.magnitude <= 65504 else { throw .outOfRange(layer: layer, token: t) }
            }
        }
        if tokens > 1, configuration.kvHeads > 1, let pool = s.workspace.pool(for: attentionPlan) {
            try appendConcurrently(s, layer: layer, keys: keys.baseAddress!, values: values.baseAddress!, tokens: tokens, pool: pool)
            return
        }
        for h in 0..<configuration.kvHeads { s.heads[h].beginAppend(at: s.count) }
        for t in 0..<tokens {
            for h in 0..<configuration.kvHeads {
                let base = t * row + h * configuration.headDim
                s.heads[h].pushWindow(keys.baseAddress! + base, values.baseAddress! + base, rotation: rotation)
            }
            s.count += 1
            for h in 0..<configuration.kvHeads { try release(&s.heads[h], layer: layer, count: s.count) }
        }
    }

    /// The batched append on the layer's worker pool: each KV head's tokens go through its
    /// window and its releases (quantization, outliers, staging) in the same order as the
    /// serial path, heads concurrently. A head's work reads and writes only its own state
    /// (its codec table included); the token count it would see after each token is
    /// passed in, and the layer's count is set once at the end. The result is byte-identical
    /// to the serial path.
    ///
    /// After validation the only failures left are a codec refusing a format (a
    /// configuration error): each head then stops at its failing token, every head is cut back
    /// to the tokens all heads reached (so the layer stays consistent), and the error of the
    /// lowest failing head is thrown.
    private func appendConcurrently(_ s: LayerState, layer: Int, keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
                                    tokens: Int, pool: WorkerPool) throws(CacheError) {
        let kvHeads = configuration.kvHeads, d = configuration.headDim, row = kvHeads * d
        let start = s.count
        let failures = UnsafeMutableBufferPointer<CacheError?>.allocate(capacity: kvHeads)
        failures.initialize(repeating: nil)
        let reached = UnsafeMutableBufferPointer<Int>.allocate(capacity: kvHeads)
        reached.initialize(repeating: 0)
        defer {
            failures.deinitialize()
            failures.deallocate()
            reached.deallocate()
        }
        s.heads.withUnsafeMutableBufferPointer { heads in
            pool.run(items: kvHeads) { _, h in
                heads[h].beginAppend(at: start)
                for t in 0..<tokens {
                    heads[h].pushWindow(keys + t * row + h * d, values + t * row + h * d, rotation: rotation)
                    reached[h] = t + 1
                    do throws(CacheError) { try release(&heads[h], layer: layer, count: start + t + 1) } catch {
                        failures[h] = error
                        return
                    }
                }
            }
        }
        let done = reached.min() ?? tokens
        if done < tokens {
            for h in 0..<kvHeads where reached[h] > done { s.heads[h].truncate(to: start + done) }
        }
        s.count = start + done
        if let failure = failures.lazy.compactMap({ $0 }).first { throw failure }
    }

    /// Appends fp16 keys and values (same layout as the fp32 overload).
    public func append(layer: Int, keys: UnsafeBufferPointer<Float16>, values: UnsafeBufferPointer<Float16>) throws(CacheError) {
        let k = keys.map(Float.init), v = values.map(Float.init)
        try k.withUnsafeBufferPointer { kb throws(CacheError) in
            try v.withUnsafeBufferPointer { vb throws(CacheError) in try append(layer: layer, keys: kb, values: vb) }
        }
    }

    /// Appends fp32 arrays (same layout).
    public func append(layer: Int, keys: [Float], values: [Float]) throws(CacheError) {
        try keys.withUnsafeBufferPointer { kb throws(CacheError) in
            try values.withUnsafeBufferPointer { vb throws(CacheError) in try append(layer: layer, keys: kb, values: vb) }
        }
    }

    /// Moves tokens of head `hs` out of the hot window while it is over its size; `count` is the
    /// layer's token count once the token just pushed is counted (the policy's context length).
    /// Touches no state but the head's (safe for different heads at once).
    private func release(_ hs: inout HeadState, layer: Int, count: Int) throws(CacheError) {
        let policy = configuration.policy
        let d = configuration.headDim
        switch policy.keyScheme {
        case .channel(let blockTokens):
            while hs.windowCount >= policy.hotWindow + blockTokens {
                let first = hs.windowStart
                var contexts: [TokenContext] = []
                for p in first..<(first + blockTokens) { contexts.append(context(hs, position: p, count: count)) }
                let bits = policy.keyBlockBits(contexts)
                let codec: KIVIKeyCodec
                do { codec = try KIVIKeyCodec(dim: d, bits: bits, blockTokens: blockTokens) } catch {
                    throw .unsupportedFormat("channel keys at \(bits) bits: \(error)")
                }
                let keysF32 = hs.windowRows(keys: true, from: first, count: blockTokens)
                let block = KeyBlock(firstPosition: first, codec: codec)
                do {
                    try keysF32.withUnsafeBufferPointer { src in
                        try block.bytes.withUnsafeMutableBytes { dst in try codec.encode(src.baseAddress!, into: dst.baseAddress!) }
                    }
                } catch { throw CacheError(error, layer: layer, token: first) }
                for (i, p) in (first..<(first + blockTokens)).enumerated() {
                    let (_, value) = policy.storage(for: contexts[i])
                    try storeValue(&hs, position: p, format: value, layer: layer)
                }
                hs.keyBlocks.append(block)
                hs.dropWindow(blockTokens)
            }
        case .token, .rotated:
            while hs.windowCount > policy.hotWindow {
                let p = hs.windowStart
                if policy.centersKeys, hs.keyMean == nil, p >= policy.sinkTokens {
                    hs.computeKeyMean(count: max(1, min(policy.hotWindow, hs.windowCount)))
                }
                let formats: (key: StorageFormat, value: StorageFormat)
                if p < policy.sinkTokens {
                    formats = (.fp16, .fp16)
                } else if let staging = policy.staging {
                    formats = (staging.format, staging.format)
                } else {
                    formats = policy.storage(for: context(hs, position: p, count: count))
                }
                try storeKey(&hs, position: p, format: formats.key, layer: layer)
                try storeValue(&hs, position: p, format: formats.value, layer: layer)
                hs.dropWindow(1)
            }
            if let staging = policy.staging {
                try promoteStaged(&hs, layer: layer, format: staging.format, upTo: count - policy.hotWindow - staging.tokens, count: count)
            }
        }
    }

    /// Gives staged tokens before `limit` their final storage (re-encoded from the staged
    /// values: bits never rise, and the final format is the policy's for the token now).
    private func promoteStaged(_ hs: inout HeadState, layer: Int, format staged: StorageFormat, upTo limit: Int,
                               count: Int) throws(CacheError) {
        while hs.stagedFrom < min(limit, hs.windowStart) {
            let p = hs.stagedFrom
            if p >= configuration.policy.sinkTokens {
                let ctx = storedContext(hs, position: p, count: count)
                let final = configuration.policy.storage(for: ctx)
                for keys in [true, false] {
                    let target = keys ? final.key : final.value
                    guard target != staged, target.bits <= staged.bits else { continue }
                    let codec = try hs.codec(target, kernels: configuration.kernels)
                    try move(&hs, keys: keys, position: p, from: staged, to: target, codec: codec, layer: layer)
                }
            }
            hs.stagedFrom += 1
        }
    }

    /// Re-encodes a stored token from `from` to `to` (affine → affine of the same groups by
    /// exact code shifts, anything else through the decoded values).
    private func move(_ hs: inout HeadState, keys: Bool, position p: Int, from: StorageFormat, to: StorageFormat,
                      codec: any VectorCodec, layer: Int) throws(CacheError) {
        guard let (pageIndex, slot) = (keys ? hs.keys : hs.values).find(position: p, format: from) else { return }
        let page = (keys ? hs.keys : hs.values).pages[pageIndex]
        var record = [UInt8](repeating: 0, count: codec.bytesPerVector)
        if case .affine(_, let g0, let k0) = from, case .affine(_, let g1, let k1) = to, g0 == g1, k0 == k1,
           let fromLayout = (page.codec as? AffineCodec)?.layout, let toLayout = (codec as? AffineCodec)?.layout {
            record.withUnsafeMutableBytes { configuration.kernels.lower(page.record(slot), 1, fromLayout, toLayout, $0.baseAddress!) }
        } else {
            var row = [Float](repeating: 0, count: configuration.headDim)
            row.withUnsafeMutableBufferPointer { page.codec.decode(page.record(slot), count: 1, into: $0.baseAddress!) }
            do {
                try row.withUnsafeBufferPointer { src in
                    try record.withUnsafeMutableBytes { dst in try codec.encode(src.baseAddress!, count: 1, into: dst.baseAddress!) }
                }
            } catch { throw CacheError(error, layer: layer, token: p) }
        }
        record.withUnsafeBytes { raw in
            if keys {
                hs.keys.remove(page: pageIndex, slot: slot)
                hs.keys.insert(position: p, format: to, codec: codec, record: raw.baseAddress!)
            } else {
                hs.values.remove(page: pageIndex, slot: slot)
                hs.values.insert(position: p, format: to, codec: codec, record: raw.baseAddress!)
            }
        }
    }

    private func storeKey(_ hs: inout HeadState, position p: Int, format: StorageFormat, layer: Int) throws(CacheError) {
        let codec = try hs.codec(format, kernels: configuration.kernels)
        var row = hs.windowRows(keys: true, from: p, count: 1)
        if let mean = hs.keyMean, p >= configuration.policy.sinkTokens {
            for i in 0..<row.count { row[i] -= mean[i] }
        }
        try encodeInto(codec: codec, row: row, layer: layer, position: p) { scratch in
            hs.keys.insert(position: p, format: format, codec: codec, record: scratch)
        }
    }

    private func storeValue(_ hs: inout HeadState, position p: Int, format: StorageFormat, layer: Int) throws(CacheError) {
        let codec = try hs.codec(format, kernels: configuration.kernels)
        let row = hs.windowRows(keys: false, from: p, count: 1)
        try encodeInto(codec: codec, row: row, layer: layer, position: p) { scratch in
            hs.values.insert(position: p, format: format, codec: codec, record: scratch)
        }
    }

    private func encodeInto(codec: any VectorCodec, row: [Float], layer: Int, position: Int,
                            _ store: (UnsafeRawPointer) -> Void) throws(CacheError) {
        var scratch = [UInt8](repeating: 0, count: codec.bytesPerVector)
        do {
            try row.withUnsafeBufferPointer { src in
                try scratch.withUnsafeMutableBytes { dst in try codec.encode(src.baseAddress!, count: 1, into: dst.baseAddress!) }
            }
        } catch { throw CacheError(error, layer: layer, token: position) }
        scratch.withUnsafeBytes { store($0.baseAddress!) }
    }

    /// The policy's view of a token already out of the window (ranges from the statistics),
    /// in a layer of `count` tokens.
    private func storedContext(_ hs: HeadState, position p: Int, count: Int) -> TokenContext {
        TokenContext(position: p, contextLength: count, keyRange: hs.keyRange(p),
                     valueRange: hs.valueRange(p), recentMaxAttention: hs.recentMax(p),
                     queryNormSquared: hs.queryNorms.value, dim: configuration.headDim)
    }

    private func context(_ hs: HeadState, position p: Int, count: Int) -> TokenContext {
        let k = hs.windowRows(keys: true, from: p, count: 1)
        let v = hs.windowRows(keys: false, from: p, count: 1)
        return TokenContext(position: p, contextLength: count, keyRange: range(k), valueRange: range(v),
                            recentMaxAttention: hs.recentMax(p), queryNormSquared: hs.queryNorms.value,
                            dim: configuration.headDim)
    }

    // MARK: Attention

    /// The reference decode attention: `softmax(q·Kᵀ/√D)·V` per q head in fp64 over every
    /// stored key and value, dequantized (the scalar oracle of the fused path, for tests and
    /// quality checks). Pure: it records nothing and observes no query statistics.
    /// `context`: attend to positions `0 ..< context` only (default: every token held); the
    /// probabilities are then `[queryHeads][context]`.
    public func referenceAttention(layer: Int, queries: [Float], context: Int? = nil) throws(CacheError) -> (output: [Float], probabilities: [Float]) {
        let s = try state(layer)
        let d = configuration.headDim, g = configuration.queryHeadsPerKVHead
        guard queries.count == configuration.queryHeads * d else {
            throw .shapeMismatch(expected: "\(configuration.queryHeads) q heads × \(d)", got: "\(queries.count) elements")
        }
        let n = context ?? s.count
        guard n >= 0, n <= s.count else { throw .shapeMismatch(expected: "a context of 0…\(s.count) tokens", got: "\(n)") }
        guard queries.allSatisfy(\.isFinite) else { throw .nonFinite(layer: layer, token: 0) }
        var output = [Float](repeating: 0, count: queries.count)
        var probabilities = [Float](repeating: 0, count: configuration.queryHeads * n)
        guard n > 0 else { return (output, probabilities) }
        for h in 0..<configuration.kvHeads {
            let keys = s.heads[h].allRows(keys: true, count: s.count, sinkTokens: configuration.policy.sinkTokens)
            let values = s.heads[h].allRows(keys: false, count: s.count, sinkTokens: configuration.policy.sinkTokens)
            for j in 0..<g {
                let qh = h * g + j
                var q = Array(queries[(qh * d)..<((qh + 1) * d)])
                if let rotation { q.withUnsafeMutableBufferPointer { rotation.forward($0.baseAddress!) } }
                let scale = 1 / Double(d).squareRoot()
                var scores = [Double](repeating: 0, count: n)
                var m = -Double.infinity
                for t in 0..<n {
                    var acc = 0.0
                    for i in 0..<d { acc += Double(q[i]) * Double(keys[t * d + i]) }
                    scores[t] = acc * scale
                    m = max(m, scores[t])
                }
                var sum = 0.0
                for t in 0..<n { scores[t] = _exp(scores[t] - m); sum += scores[t] }
                for t in 0..<n {
                    let p = scores[t] / sum
                    probabilities[qh * n + t] = Float(p)
                }
                for i in 0..<d {
                    var acc = 0.0
                    for t in 0..<n { acc += scores[t] / sum * Double(values[t * d + i]) }
                    output[qh * d + i] = Float(acc)
                }
            }
        }
        return (output, probabilities)
    }

    /// Records one step's attention probabilities for `layer`: `[queryHeads][tokens]`, each in
    /// [0, 1]. With GQA, a token's statistic is the max over the q heads of its KV head.
    /// Policies that do not use attention keep no history: the call only validates.
    public func recordAttention(layer: Int, probabilities: [Float]) throws(CacheError) {
        let s = try state(layer)
        let g = configuration.queryHeadsPerKVHead
        guard probabilities.count == configuration.queryHeads * s.count else {
            throw .shapeMismatch(expected: "\(configuration.queryHeads) q heads × \(s.count) tokens", got: "\(probabilities.count)")
        }
        // One vectorizable pass; the element-wise scan only to name the first offender.
        if probabilities.withUnsafeBufferPointer({ AttentionHistory.anyOutOfRange($0) }) {
            for (i, p) in probabilities.enumerated() where !AttentionHistory.isProbability(p) {
                throw .invalidProbability(layer: layer, head: i / s.count, token: i % s.count, value: p)
            }
        }
        guard configuration.policy.usesAttention else { return }
        probabilities.withUnsafeBufferPointer { all in
            for h in 0..<configuration.kvHeads {
                // Validated above, shape included (the history holds s.count tokens).
                s.heads[h].history.recordValidated(heads: UnsafeBufferPointer(rebasing: all[(h * g * s.count)..<((h + 1) * g * s.count)]),
                                                   headCount: g)
            }
        }
    }

    // MARK: Refresh, truncate, reset

    /// Re-applies the policy to every stored token of `layer`: a token whose policy now asks
    /// for fewer bits moves to the lower format (affine codes by exact shifts; other formats
    /// re-encoded from the stored values). Bits never rise.
    public func refresh(layer: Int) throws(CacheError) {
        let s = try state(layer)
        for h in 0..<configuration.kvHeads {
            try lowerStream(&s.heads[h], keys: true, layer: layer, count: s.count)
            try lowerStream(&s.heads[h], keys: false, layer: layer, count: s.count)
        }
    }

    private func lowerStream(_ hs: inout HeadState, keys: Bool, layer: Int, count: Int) throws(CacheError) {
        let policy = configuration.policy
        let stream = keys ? hs.keys : hs.values
        var moves: [(page: Int, slot: Int, to: StorageFormat)] = []
        for (pi, page) in stream.pages.enumerated() {
            for slot in 0..<page.count {
                let p = Int(page.positions[slot])
                // Sinks keep fp16; staged tokens get their storage when promoted.
                if p < policy.sinkTokens || p >= hs.stagedFrom && policy.staging != nil { continue }
                let ctx = storedContext(hs, position: p, count: count)
                let current = page.format
                guard let lowered = policy.lowered(for: ctx, key: keys ? current : .fp16, value: keys ? .fp16 : current) else { continue }
                let target = keys ? lowered.key : lowered.value
                if target != current && target.bits < current.bits { moves.append((pi, slot, target)) }
            }
        }
        // Apply from the highest slot down so swap-removes do not disturb pending moves.
        for m in moves.sorted(by: { ($0.page, $0.slot) > ($1.page, $1.slot) }) {
            let page = (keys ? hs.keys : hs.values).pages[m.page]
            let codec = try hs.codec(m.to, kernels: configuration.kernels)
            try move(&hs, keys: keys, position: Int(page.positions[m.slot]), from: page.format, to: m.to, codec: codec, layer: layer)
        }
        if keys { hs.keys.compact() } else { hs.values.compact() }
    }

    /// Keeps the first `tokens` tokens of every layer (a context shift drops the rest).
    public func truncate(to tokens: Int) throws(CacheError) {
        for s in layerStates where tokens > s.count { throw .truncateBeyondEnd(requested: tokens, tokens: s.count) }
        guard tokens >= 0 else { throw .truncateBeyondEnd(requested: tokens, tokens: 0) }
        for s in layerStates {
            for h in 0..<configuration.kvHeads { s.heads[h].truncate(to: tokens) }
            s.count = tokens
        }
    }

    /// Empties the cache.
    public func reset() {
        for s in layerStates {
            for h in 0..<configuration.kvHeads { s.heads[h].truncate(to: 0) }
            s.count = 0
        }
    }

    // MARK: Memory

    /// Exact bytes held, split by purpose.
    public var memory: CacheMemory {
        var m = CacheMemory(tokens: layerStates.first?.count ?? 0, codes: 0, metadata: 0, outliers: 0, window: 0, bookkeeping: 0, elements: 0)
        let d = configuration.headDim
        for s in layerStates {
            for h in 0..<configuration.kvHeads {
                let head = s.heads[h]
                let stored = head.keys.storedBytes + head.values.storedBytes
                m.codes += stored.codes
                m.metadata += stored.metadata
                m.outliers += stored.outliers
                for block in head.keyBlocks {
                    let b = block.codec.breakdown
                    m.codes += b.codes
                    m.metadata += b.metadata
                    m.outliers += b.outliers
                }
                m.window += head.windowCount * d * 2 * 2
                m.bookkeeping += head.keys.bookkeepingBytes + head.values.bookkeepingBytes + head.bookkeepingBytes
                m.elements += s.count * d * 2
            }
        }
        return m
    }

    // MARK: Inspection

    /// How each token outside the hot window of (`layer`, `head`) is stored, by position.
    /// Keys in channel blocks report `.affine(bits:group:outliers:)` with the block's bits,
    /// the block's token count as `group` and no outliers.
    public func storedFormats(layer: Int, head: Int) throws(CacheError) -> [(position: Int, key: StorageFormat, value: StorageFormat)] {
        let s = try state(layer)
        guard head >= 0, head < configuration.kvHeads else { throw .shapeMismatch(expected: "KV head in 0..<\(configuration.kvHeads)", got: "\(head)") }
        var keys = [StorageFormat?](repeating: nil, count: s.count), values = keys
        for page in s.heads[head].keys.pages { for p in page.positions { keys[Int(p)] = page.format } }
        for page in s.heads[head].values.pages { for p in page.positions { values[Int(p)] = page.format } }
        for block in s.heads[head].keyBlocks {
            for p in block.firstPosition..<(block.firstPosition + block.tokens) {
                keys[p] = .affine(bits: block.bits, group: block.tokens, outliers: 0)
            }
        }
        return (0..<s.count).compactMap { p in
            guard let k = keys[p], let v = values[p] else { return nil }
            return (p, k, v)
        }
    }

    /// Every key (or value) row of (`layer`, `head`) as stored, dequantized: `[tokens][headDim]`
    /// (keys after rotation when the policy rotates them).
    public func storedRows(layer: Int, head: Int, keys: Bool) throws(CacheError) -> [Float] {
        let s = try state(layer)
        guard head >= 0, head < configuration.kvHeads else { throw .shapeMismatch(expected: "KV head in 0..<\(configuration.kvHeads)", got: "\(head)") }
        return s.heads[head].allRows(keys: keys, count: s.count, sinkTokens: configuration.policy.sinkTokens)
    }

    // MARK: Helpers

    func state(_ layer: Int) throws(CacheError) -> LayerState {
        guard layer >= 0, layer < layerStates.count else { throw .layerOutOfRange(layer: layer, layers: layerStates.count) }
        return layerStates[layer]
    }
}

/// max − min of a vector.
@inline(__always)
func range(_ x: [Float]) -> Float {
    var lo = Float.infinity, hi = -Float.infinity
    for v in x {
        if v < lo { lo = v }
        if v > hi { hi = v }
    }
    return x.isEmpty ? 0 : hi - lo
}

#if canImport(Glibc)
import Glibc
@inline(__always) func _exp(_ x: Double) -> Double { Glibc.exp(x) }
#elseif canImport(Darwin)
import Darwin
@inline(__always) func _exp(_ x: Double) -> Double { Darwin.exp(x) }
#endif

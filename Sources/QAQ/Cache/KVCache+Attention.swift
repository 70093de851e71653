import CQAQSupport

extension KVCache {
    /// Decode attention of one query token per q head over everything stored for `layer`:
    /// `softmax(q·Kᵀ/√D)·V` per q head (`queries` and the result are `[queryHeads][headDim]`,
    /// q head h reads KV head h / group). Records the probabilities when the policy uses them.
    ///
    /// Per KV head the keys are read once for all q heads of its GQA group, scored straight
    /// from the packed pages (affine and code-map records decoded in registers, fp32/fp16 rows
    /// as they are, other formats one 16-token tile at a time — never the whole cache), then
    /// the values of the same tokens are summed with the exponentials (flash-decoding: each
    /// work item keeps its running max and sum; items are merged with their log-sum-exp).
    /// Work items are token ranges of KV heads spread over ``attentionPlan``'s threads.
    public func attention(layer: Int, queries: [Float]) throws(CacheError) -> [Float] {
        var output = [Float](repeating: 0, count: queries.count)
        try queries.withUnsafeBufferPointer { q throws(CacheError) in
            try output.withUnsafeMutableBufferPointer { o throws(CacheError) in
                try attention(layer: layer, queries: q, into: o)
            }
        }
        return output
    }

    /// ``attention(layer:queries:)`` into caller-owned memory: no allocation once the cache's
    /// buffers have grown to the context (fp32 queries, `[queryHeads][headDim]`).
    public func attention(layer: Int, queries: UnsafeBufferPointer<Float>, into output: UnsafeMutableBufferPointer<Float>) throws(CacheError) {
        try runAttention(layer: layer, queries: queries, output: output, probabilities: nil)
    }

    /// fp16 queries.
    public func attention(layer: Int, queries: UnsafeBufferPointer<Float16>, into output: UnsafeMutableBufferPointer<Float>) throws(CacheError) {
        let q = queries.map(Float.init)
        try q.withUnsafeBufferPointer { qb throws(CacheError) in try attention(layer: layer, queries: qb, into: output) }
    }

    /// ``attention(layer:queries:)`` that also returns this step's attention probabilities,
    /// `[queryHeads][tokens]` (for quality measurements).
    public func attentionWithProbabilities(layer: Int, queries: [Float]) throws(CacheError) -> (output: [Float], probabilities: [Float]) {
        let t = try state(layer).count
        var output = [Float](repeating: 0, count: queries.count)
        var probabilities = [Float](repeating: 0, count: configuration.queryHeads * t)
        try queries.withUnsafeBufferPointer { q throws(CacheError) in
            try output.withUnsafeMutableBufferPointer { o throws(CacheError) in
                try probabilities.withUnsafeMutableBufferPointer { p throws(CacheError) in
                    try runAttention(layer: layer, queries: q, output: o, probabilities: p)
                }
            }
        }
        return (output, probabilities)
    }

    private func runAttention(layer: Int, queries: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                              probabilities callerProbabilities: UnsafeMutableBufferPointer<Float>?) throws(CacheError) {
        let s = try state(layer)
        let d = configuration.headDim, g = configuration.queryHeadsPerKVHead, kvHeads = configuration.kvHeads
        guard queries.count == configuration.queryHeads * d, output.count == queries.count else {
            throw .shapeMismatch(expected: "\(configuration.queryHeads) q heads × \(d) queries and output",
                                 got: "\(queries.count) queries, \(output.count) outputs")
        }
        for x in queries where !x.isFinite { throw .nonFinite(layer: layer, token: 0) }
        for i in 0..<output.count { output[i] = 0 }
        let t = s.count
        guard t > 0 else { return }
        let policy = configuration.policy
        let record = policy.usesAttention
        let plan = attentionPlan
        let ws = s.workspace

        // The items: token ranges of whole pages per KV head (one item per head for heads whose
        // key and value pages are not in the same token order).
        ws.items.removeAll(keepingCapacity: true)
        let chunk: Int
        switch plan.split {
        case .head: chunk = Int.max
        case .tokens: chunk = plan.chunkTokens
        case .both: chunk = kvHeads % plan.threads == 0 ? Int.max : plan.chunkTokens
        }
        var maxItemTokens = 0, maxPage = 0, blockRows = 16
        for h in 0..<kvHeads {
            let hs = s.heads[h]
            let kp = hs.keys.pages, vp = hs.values.pages
            for p in kp { maxPage = max(maxPage, p.count) }
            for p in vp { maxPage = max(maxPage, p.count) }
            for b in hs.keyBlocks { blockRows = max(blockRows, b.tokens) }
            var aligned = hs.keyBlocks.isEmpty && kp.count == vp.count
            if aligned {
                for i in 0..<kp.count where !samePositions(kp[i].positions, vp[i].positions) { aligned = false; break }
            }
            let headChunk = (plan.split == .both && h < kvHeads - kvHeads % plan.threads) ? Int.max : chunk
            if !aligned {
                ws.items.append(AttentionItem(head: h, firstPage: 0, endPage: kp.count, window: true, offset: 0, tokens: t, general: true))
                maxItemTokens = max(maxItemTokens, t)
                continue
            }
            var first = 0, offset = 0, n = 0
            for i in 0..<kp.count {
                n += kp[i].count
                if n >= headChunk {
                    ws.items.append(AttentionItem(head: h, firstPage: first, endPage: i + 1, window: false, offset: offset, tokens: n, general: false))
                    maxItemTokens = max(maxItemTokens, n)
                    first = i + 1
                    offset += n
                    n = 0
                }
            }
            n += hs.windowCount
            if n > 0 || first == kp.count {
                ws.items.append(AttentionItem(head: h, firstPage: first, endPage: kp.count, window: true, offset: offset, tokens: n, general: false))
                maxItemTokens = max(maxItemTokens, n)
            }
        }
        let workers = plan.threads
        let keepScores = record || callerProbabilities != nil
        ws.prepare(workers: workers, dim: d, tileRows: blockRows, gatherFloats: g * max(maxPage, 1), itemFloats: g * max(maxItemTokens, 1), queryHeads: g)
        let itemCount = ws.items.count

        // Queries: rotated like the keys, scaled by 1/√D; q·mean for centered keys; the code
        // maps' rotation applied once more for pages stored in a rotated domain.
        let scale = 1 / Float(d).squareRoot()
        let qs = ws.queries.reserve(kvHeads * g * d)
        for h in 0..<kvHeads {
            for j in 0..<g {
                let src = queries.baseAddress! + (h * g + j) * d, dst = qs + (h * g + j) * d
                var n2 = 0.0
                for i in 0..<d { n2 += Double(src[i]) * Double(src[i]); dst[i] = src[i] }
                s.heads[h].queryNorms.observe(n2 / Double(d))
                rotation?.forward(dst)
                for i in 0..<d { dst[i] *= scale }
            }
        }
        let qm = ws.queryMean.reserve(kvHeads * g)
        for h in 0..<kvHeads {
            for j in 0..<g {
                var acc: Float = 0
                if let mean = s.heads[h].keyMean { for i in 0..<d { acc += qs[(h * g + j) * d + i] * mean[i] } }
                qm[h * g + j] = acc
            }
        }
        let codebookRotation = s.codebookRotation
        let qcb = ws.codebookQueries.reserve(kvHeads * g * d)
        if let codebookRotation { rotateQueries(qs, into: qcb, rows: kvHeads * g, dim: d, rotation: codebookRotation) }

        let partial = ws.partial.reserve(itemCount * g * d)
        let partialRotated = ws.partialRotated.reserve(itemCount * g * d)
        let stats = ws.stats.reserve(itemCount * g * 2)
        let scoresAll = keepScores ? ws.scores.reserve(kvHeads * g * t) : ws.scores.pointer
        let byPosition = ws.byPosition.reserve(kvHeads * g * t)
        let context = AttentionContext(
            cache: self, state: s, kernels: attentionKernels, integerDot: plan.integerDot, dim: d, g: g, tokens: t, sinks: policy.sinkTokens,
            queries: qs, codebookQueries: qcb, codebookRotation: codebookRotation, queryMean: qm,
            partial: partial, partialRotated: partialRotated, stats: stats,
            scores: keepScores ? scoresAll : nil, byPosition: byPosition)
        if let pool = ws.pool(for: plan) {
            // A C-convention job over a pointer to (context, workspace): no closure context to box.
            var job = AttentionJob(context: context, workspace: ws)
            withUnsafePointer(to: &job) { p in
                pool.run(items: itemCount, context: UnsafeRawPointer(p)) { raw, worker, i in
                    let job = raw!.assumingMemoryBound(to: AttentionJob.self)
                    let ws = job.pointee.workspace
                    job.pointee.context.process(ws.items[i], index: i, scratch: ws.scratch[worker], itemScores: ws.itemScores[worker].pointer,
                                                gathered: ws.gathered[worker].pointer)
                }
            }
        } else {
            for i in 0..<itemCount {
                context.process(ws.items[i], index: i, scratch: ws.scratch[0], itemScores: ws.itemScores[0].pointer,
                                gathered: ws.gathered[0].pointer)
            }
        }

        // Merge the items of each head by their log-sum-exp; undo the code maps' rotation.
        let probs = callerProbabilities?.baseAddress ?? (record ? ws.probabilities.reserve(configuration.queryHeads * t) : nil)
        var i = 0
        while i < itemCount {
            let h = ws.items[i].head
            var end = i + 1
            while end < itemCount && ws.items[end].head == h { end += 1 }
            for j in 0..<g {
                var m = -Float.infinity
                for k in i..<end { m = max(m, stats[(k * g + j) * 2]) }
                var total: Float = 0
                for k in i..<end { total += stats[(k * g + j) * 2 + 1] * expf(stats[(k * g + j) * 2] - m) }
                let out = output.baseAddress! + (h * g + j) * d
                let outRot = partialRotated + (i * g + j) * d   // merged in place into the first item's slot
                for k in i..<end {
                    let f = expf(stats[(k * g + j) * 2] - m) / total
                    let src = partial + (k * g + j) * d, srcRot = partialRotated + (k * g + j) * d
                    for e in 0..<d { out[e] += f * src[e] }
                    if codebookRotation != nil {
                        if k == i { for e in 0..<d { outRot[e] = f * srcRot[e] } } else { for e in 0..<d { outRot[e] += f * srcRot[e] } }
                    }
                    if let probs, !ws.items[k].general {
                        context.scatterProbabilities(ws.items[k], j: j, factor: f, into: probs + (h * g + j) * t)
                    }
                }
                if let probs, ws.items[i].general {
                    let src = byPosition + (h * g + j) * t, dst = probs + (h * g + j) * t
                    for p in 0..<t { dst[p] = src[p] }
                }
                if let codebookRotation {
                    codebookRotation.inverse(outRot)
                    for e in 0..<d { out[e] += outRot[e] }
                }
            }
            i = end
        }
        if record, let probs {
            try recordAttention(layer: layer, probabilities: Array(UnsafeBufferPointer(start: probs, count: configuration.queryHeads * t)))
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension LayerState {
    /// The rotation of the layer's rotated code-map pages (keys or values; one seed per
    /// cache), or nil when none was stored yet: from each stream's record of it, so no page is
    /// visited (scanning every page's kind per call had cost about 5 % of a 64K step).
    var codebookRotation: RandomizedHadamard? {
        for h in heads { if let r = h.keys.rotation ?? h.values.rotation { return r } }
        return nil
    }
}

/// Prefetches the object of `pages[i]` (its count, kind and bytes pointer), so that the loop
/// over pages does not wait on it at long contexts.
@inline(__always)
func prefetchPage(_ pages: [TokenPages.Page], _ i: Int) {
    qaq_prefetch_object(Unmanaged.passUnretained(pages[i]).toOpaque())
}

/// Whether two pages hold the same positions in the same order: one `memcmp` of the two
/// buffers (Array's `==` compared them element by element, every call and page).
func samePositions(_ a: [Int32], _ b: [Int32]) -> Bool {
    guard a.count == b.count else { return false }
    return a.withUnsafeBytes { x in b.withUnsafeBytes { y in x.count == 0 || memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0 } }
}

/// `rows` queries of `d` floats copied from `src` into `dst` and rotated there into the code
/// maps' domain (once per call and head).
func rotateQueries(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, rows: Int, dim d: Int,
                   rotation: RandomizedHadamard) {
    for i in 0..<(rows * d) { dst[i] = src[i] }
    for r in 0..<rows { rotation.forward(dst + r * d) }
}

/// What the workers of one decode call read: the context and the workspace.
struct AttentionJob {
    let context: AttentionContext
    let workspace: AttentionWorkspace
}

/// Everything a work item reads, shared by the workers of one call (read-only, except the
/// disjoint slices each item writes).
struct AttentionContext: @unchecked Sendable {
    let cache: KVCache
    let state: LayerState
    let kernels: AttentionKernels
    /// Score keys and sum values by int8 dot products where a kernel exists (4-bit affine,
    /// 2- to 4-bit code maps; ``AttentionPlan/integerDot``).
    let integerDot: Bool
    let dim: Int
    let g: Int
    let tokens: Int
    let sinks: Int
    let queries: UnsafeMutablePointer<Float>
    let codebookQueries: UnsafeMutablePointer<Float>
    let codebookRotation: RandomizedHadamard?
    let queryMean: UnsafeMutablePointer<Float>
    let partial: UnsafeMutablePointer<Float>
    let partialRotated: UnsafeMutablePointer<Float>
    let stats: UnsafeMutablePointer<Float>
    /// `[kvHeads][g][T]` in key order when probabilities are needed, else nil.
    let scores: UnsafeMutablePointer<Float>?
    let byPosition: UnsafeMutablePointer<Float>

    /// Computes one item: its scores, local softmax statistics and partial outputs.
    func process(_ item: AttentionItem, index: Int, scratch: AttentionScratch,
                 itemScores: UnsafeMutablePointer<Float>, gathered: UnsafeMutablePointer<Float>) {
        let h = item.head, d = dim
        let hs = state.heads[h]
        let q = queries + h * g * d, qcb = codebookQueries + h * g * d
        let o = partial + index * g * d, oRot = partialRotated + index * g * d
        for e in 0..<(g * d) { o[e] = 0; oRot[e] = 0 }
        let st = stats + index * g * 2
        // Where this item's scores go: [g][stride].
        let (buf, stride): (UnsafeMutablePointer<Float>, Int) =
            item.general ? (scores.map { $0 + h * g * tokens } ?? itemScores, tokens)
                         : (scores.map { ($0 + h * g * tokens + item.offset, tokens) } ?? (itemScores, item.tokens))
        let keyPages = hs.keys.pages
        // int8 queries once per item (the code-map side from the rotated queries when the
        // layer's code maps are rotated).
        let int8 = integerDot && kernels.prepareInt8(q, codebookRotation == nil ? q : qcb, g, d, scratch)
        var off = 0
        for p in item.firstPage..<item.endPage {
            let page = keyPages[p]
            if p + 1 < item.endPage { prefetchPage(keyPages, p + 1) }
            scorePage(page, heads: g, q: q, qcb: qcb, out: buf + off, stride: stride, scratch: scratch, int8: int8)
            addQueryMean(h: h, positions: page.positions, out: buf + off, stride: stride)
            off += page.count
        }
        if item.general {
            for block in hs.keyBlocks {
                let tile = scratch.tileRowsPointer
                block.bytes.withUnsafeBytes { block.codec.decode($0.baseAddress!, into: tile) }
                kernels.scoresF32(q, g, d, tile, d, block.tokens, buf + off, stride, scratch)
                let qmh = queryMean + h * g
                if hs.keyMean != nil, block.firstPosition >= sinks {
                    for j in 0..<g { for i in 0..<block.tokens { buf[j * stride + off + i] += qmh[j] } }
                }
                off += block.tokens
            }
        }
        let n = hs.windowCount
        if item.window && n > 0 {
            hs.withWindow(keys: true) { kernels.scoresF16(q, g, d, $0, d, n, buf + off, stride, scratch) }
            off += n
        }
        // Local softmax statistics; exponentials in place.
        for j in 0..<g {
            let row = buf + j * stride
            let m = kernels.maximum(row, off)
            st[2 * j] = m
            st[2 * j + 1] = kernels.expShifted(row, off, m)
        }
        if item.general {
            accumulateGeneral(item, hs: hs, buf: buf, stride: stride, o: o, oRot: oRot, st: st, scratch: scratch, gathered: gathered)
            return
        }
        let valuePages = hs.values.pages
        off = 0
        for p in item.firstPage..<item.endPage {
            let page = valuePages[p]
            if p + 1 < item.endPage { prefetchPage(valuePages, p + 1) }
            accumulatePage(page, heads: g, weights: buf + off, wStride: stride, o: o, oRot: oRot, scratch: scratch)
            off += page.count
        }
        if item.window && n > 0 {
            hs.withWindow(keys: false) { kernels.accumulateF16(buf + off, stride, g, d, $0, d, n, o, scratch) }
        }
    }

    /// A head whose keys and values are in different orders: normalized weights by position,
    /// then gathered per value page.
    private func accumulateGeneral(_ item: AttentionItem, hs: HeadState, buf: UnsafeMutablePointer<Float>, stride: Int,
                                   o: UnsafeMutablePointer<Float>, oRot: UnsafeMutablePointer<Float>, st: UnsafeMutablePointer<Float>,
                                   scratch: AttentionScratch, gathered: UnsafeMutablePointer<Float>) {
        let h = item.head, d = dim
        let w = byPosition + h * g * tokens
        for j in 0..<g {
            let inv = 1 / st[2 * j + 1]
            var off = 0
            let row = buf + j * stride, dst = w + j * tokens
            for page in hs.keys.pages {
                for (i, p) in page.positions.enumerated() { dst[Int(p)] = row[off + i] * inv }
                off += page.count
            }
            for block in hs.keyBlocks {
                for i in 0..<block.tokens { dst[block.firstPosition + i] = row[off + i] * inv }
                off += block.tokens
            }
            for i in 0..<hs.windowCount { dst[hs.windowStart + i] = row[off + i] * inv }
            st[2 * j] = 0
            st[2 * j + 1] = 1
        }
        for page in hs.values.pages {
            let c = page.count
            for j in 0..<g {
                let src = w + j * tokens
                for (i, p) in page.positions.enumerated() { gathered[j * c + i] = src[Int(p)] }
            }
            accumulatePage(page, heads: g, weights: gathered, wStride: c, o: o, oRot: oRot, scratch: scratch)
        }
        let n = hs.windowCount
        if n > 0 {
            hs.withWindow(keys: false) { kernels.accumulateF16(w + hs.windowStart, tokens, g, d, $0, d, n, o, scratch) }
        }
    }

    /// Scores of `g` queries (`q`, and `qcb` rotated into the code maps' domain) against the
    /// keys of one page: `out[h·stride + slot]`.
    /// `int8`: the scratch holds this item's int8 queries (``AttentionKernels/prepareInt8``).
    func scorePage(_ page: TokenPages.Page, heads g: Int, q: UnsafePointer<Float>, qcb: UnsafePointer<Float>,
                   out: UnsafeMutablePointer<Float>, stride: Int, scratch: AttentionScratch, int8: Bool = false) {
        let d = dim, n = page.count
        switch page.kind {
        case .affine(let a):
            if int8 && kernels.scoresInt8(g, page.bytes, n, a.layout, out, stride, scratch) { return }
            kernels.scores(q, g, page.bytes, n, a.layout, out, stride, scratch)
        case .codebook(let c) where c.rotationSeed == nil || c.rotationSeed == codebookRotation?.seed:
            // The prepared code-map queries are rotated iff the layer's code maps are.
            if int8 && (c.rotationSeed == nil) == (codebookRotation == nil)
                && kernels.codebookScoresInt8(g, page.bytes, n, c.layout, c.levels, out, stride, scratch) { return }
            kernels.codebookScores(c.rotationSeed == nil ? q : qcb, g, page.bytes, n, c.layout, c.levels, out, stride, scratch)
        case .f32:
            kernels.scoresF32(q, g, d, page.bytes.assumingMemoryBound(to: Float.self), d, n, out, stride, scratch)
        case .f16:
            kernels.scoresF16(q, g, d, page.bytes.assumingMemoryBound(to: Float16.self), d, n, out, stride, scratch)
        default:
            let tile = scratch.tileRowsPointer, bpv = page.codec.bytesPerVector
            var k = 0
            while k < n {
                let m = min(scratch.tileRows, n - k)
                page.codec.decode(page.bytes + k * bpv, count: m, into: tile)
                kernels.scoresF32(q, g, d, tile, d, m, out + k, stride, scratch)
                k += m
            }
        }
    }

    /// `o[h·D + i] += Σ_slot w[h·wStride + slot]·v̂_slot[i]` for `g` heads over the values of one
    /// page (records stored in the code maps' rotated domain into `oRot`).
    func accumulatePage(_ page: TokenPages.Page, heads g: Int, weights w: UnsafePointer<Float>, wStride: Int,
                        o: UnsafeMutablePointer<Float>, oRot: UnsafeMutablePointer<Float>, scratch: AttentionScratch) {
        let d = dim, n = page.count
        switch page.kind {
        case .affine(let a):
            if integerDot && kernels.accumulateInt8(w, wStride, g, page.bytes, n, a.layout, o, scratch) { return }
            kernels.accumulate(w, wStride, g, page.bytes, n, a.layout, o, scratch)
        case .codebook(let c) where c.rotationSeed == nil || c.rotationSeed == codebookRotation?.seed:
            let dst = c.rotationSeed == nil ? o : oRot
            if integerDot && kernels.codebookAccumulateInt8(w, wStride, g, page.bytes, n, c.layout, c.levels, dst, scratch) { return }
            kernels.codebookAccumulate(w, wStride, g, page.bytes, n, c.layout, c.levels, dst, scratch)
        case .f32:
            kernels.accumulateF32(w, wStride, g, d, page.bytes.assumingMemoryBound(to: Float.self), d, n, o, scratch)
        case .f16:
            kernels.accumulateF16(w, wStride, g, d, page.bytes.assumingMemoryBound(to: Float16.self), d, n, o, scratch)
        default:
            // Decoded a tile at a time, then summed as fp32 rows (the tile's rows are overwritten
            // only after they were summed).
            let tile = scratch.tileRowsPointer, bpv = page.codec.bytesPerVector
            var k = 0
            while k < n {
                let m = min(scratch.tileRows, n - k)
                page.codec.decode(page.bytes + k * bpv, count: m, into: tile)
                kernels.accumulateF32(w + k, wStride, g, d, tile, d, m, o, scratch)
                k += m
            }
        }
    }

    /// Centered keys: adds q·mean back to the scores of stored tokens past the sinks.
    private func addQueryMean(h: Int, positions: [Int32], out: UnsafeMutablePointer<Float>, stride: Int) {
        guard state.heads[h].keyMean != nil else { return }
        for j in 0..<g {
            let v = queryMean[h * g + j]
            for (i, p) in positions.enumerated() where Int(p) >= sinks { out[j * stride + i] += v }
        }
    }

    /// Writes the probabilities of an aligned item's tokens (exponentials × factor, where
    /// factor = e^(m − M)/L) by position.
    func scatterProbabilities(_ item: AttentionItem, j: Int, factor: Float, into dst: UnsafeMutablePointer<Float>) {
        guard let scores else { return }
        let h = item.head
        let hs = state.heads[h]
        let row = scores + (h * g + j) * tokens + item.offset
        var off = 0
        let pages = hs.keys.pages
        for p in item.firstPage..<item.endPage {
            for (i, pos) in pages[p].positions.enumerated() { dst[Int(pos)] = row[off + i] * factor }
            off += pages[p].count
        }
        if item.window {
            for i in 0..<hs.windowCount { dst[hs.windowStart + i] = row[off + i] * factor }
        }
    }
}

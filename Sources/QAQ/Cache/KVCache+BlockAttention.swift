extension KVCache {
    /// Causal attention for a block of queries (prefill): the queries of the **last** `count`
    /// tokens already appended to `layer` — append the block's keys and values first, then
    /// attend. `queries` and the result are `[count][queryHeads][headDim]` (q head h reads KV
    /// head h / group); query i of the block (0-based) sees positions `0 ..< n − count + i + 1`,
    /// n the tokens held, i.e. itself and everything before it.
    ///
    /// Runs the decode kernels with the block's queries as extra "heads": per KV head and
    /// chunk of queries the keys of every page that holds a visible position are scored once
    /// for all queries of the chunk and all q heads of the GQA group (affine and code-map pages
    /// decoded once per chunk into fp32 rows, other formats as decode attention reads them),
    /// positions past a query's limit are masked, and the values are summed with the
    /// exponentials. Work items (KV head, chunk of queries) run on
    /// ``attentionPlan``'s threads.
    ///
    /// Observes the queries' norms (the policy's key statistics) like decode attention, but
    /// records **no attention probabilities**: policies that read attention learn them from
    /// the decode steps that follow.
    public func attention(layer: Int, queries: UnsafeBufferPointer<Float>, count: Int,
                          into output: UnsafeMutableBufferPointer<Float>) throws(CacheError) {
        let s = try state(layer)
        let d = configuration.headDim, g = configuration.queryHeadsPerKVHead, kvHeads = configuration.kvHeads
        let qHeads = configuration.queryHeads
        let n = s.count
        guard count >= 1, count <= n else { throw .queryBlockOutOfRange(layer: layer, count: count, tokens: n) }
        guard queries.count == count * qHeads * d, output.count == queries.count else {
            throw .shapeMismatch(expected: "\(count) queries × \(qHeads) q heads × \(d), queries and output",
                                 got: "\(queries.count) queries, \(output.count) outputs")
        }
        for (i, x) in queries.enumerated() where !x.isFinite { throw .nonFinite(layer: layer, token: i / (qHeads * d)) }
        let policy = configuration.policy
        let plan = attentionPlan
        let ws = s.workspace, bw = s.blockWorkspace

        // Queries by KV head, `[kvHeads][count][g][D]`: rotated like the keys, scaled by 1/√D;
        // q·mean for centered keys; the code maps' rotation applied for their pages.
        let scale = 1 / Float(d).squareRoot()
        let rows = count * g
        let qs = bw.queries.reserve(kvHeads * rows * d)
        for h in 0..<kvHeads {
            for i in 0..<count {
                for j in 0..<g {
                    let src = queries.baseAddress! + (i * qHeads + h * g + j) * d, dst = qs + ((h * count + i) * g + j) * d
                    var n2 = 0.0
                    for e in 0..<d { n2 += Double(src[e]) * Double(src[e]); dst[e] = src[e] }
                    s.heads[h].queryNorms.observe(n2 / Double(d))
                    rotation?.forward(dst)
                    for e in 0..<d { dst[e] *= scale }
                }
            }
        }
        let qm = bw.queryMean.reserve(kvHeads * rows)
        for h in 0..<kvHeads {
            let mean = s.heads[h].keyMean
            for r in 0..<rows {
                var acc: Float = 0
                if let mean { for e in 0..<d { acc += qs[(h * rows + r) * d + e] * mean[e] } }
                qm[h * rows + r] = acc
            }
        }
        let codebookRotation = s.codebookRotation
        let qcb = bw.codebookQueries.reserve(kvHeads * rows * d)
        if let codebookRotation { rotateQueries(qs, into: qcb, rows: kvHeads * rows, dim: d, rotation: codebookRotation) }

        // Per head: whether keys and values share their token order, and each page's lowest
        // and highest position (pages holding no visible position are skipped; pages reaching
        // into the block are masked).
        bw.heads.removeAll(keepingCapacity: true)
        bw.pageBounds.removeAll(keepingCapacity: true)
        var maxPage = 1, blockRows = 16
        for h in 0..<kvHeads {
            let hs = s.heads[h]
            let kp = hs.keys.pages, vp = hs.values.pages
            var aligned = hs.keyBlocks.isEmpty && kp.count == vp.count
            if aligned {
                for i in 0..<kp.count where kp[i].positions != vp[i].positions { aligned = false; break }
            }
            for b in hs.keyBlocks { blockRows = max(blockRows, b.tokens) }
            let keyBounds = bw.pageBounds.count
            for page in kp { bw.pageBounds.append(bounds(page.positions)); maxPage = max(maxPage, page.count) }
            let valueBounds = bw.pageBounds.count
            if !aligned {
                for page in vp { bw.pageBounds.append(bounds(page.positions)); maxPage = max(maxPage, page.count) }
            }
            bw.heads.append(BlockHead(aligned: aligned, keyBounds: keyBounds, valueBounds: aligned ? keyBounds : valueBounds))
        }

        // Items: (KV head, chunk of queries), the chunks seeing the most tokens first. A chunk's
        // scores take rows × visible tokens floats per worker: at most ~4 MiB.
        let chunk = max(1, min(16, (1 << 20) / max(1, g * n)))
        bw.items.removeAll(keepingCapacity: true)
        var c0 = ((count - 1) / chunk) * chunk
        while c0 >= 0 {
            for h in 0..<kvHeads { bw.items.append(BlockItem(head: h, first: c0, end: min(count, c0 + chunk))) }
            c0 -= chunk
        }
        let workers = plan.threads
        ws.prepare(workers: workers, dim: d, tileRows: blockRows, gatherFloats: 0, itemFloats: 0)
        bw.prepare(workers: workers, scores: chunk * g * n, byPosition: chunk * g * n, gathered: chunk * g * maxPage,
                   partial: chunk * g * d, tile: maxPage * d)
        for i in 0..<(count * qHeads * d) { output[i] = 0 }

        let context = AttentionContext(
            // Block attention stays fp32 (no int8 queries are prepared for it, and the values of
            // a block are summed in fp32 too).
            cache: self, state: s, kernels: attentionKernels, integerDot: false, dim: d, g: g, tokens: n, sinks: policy.sinkTokens,
            queries: qs, codebookQueries: qcb, codebookRotation: codebookRotation, queryMean: qm,
            partial: bw.partial[0].pointer, partialRotated: bw.partialRotated[0].pointer, stats: bw.sums[0].pointer,
            scores: nil, byPosition: bw.byPosition[0].pointer)
        let block = BlockAttentionContext(base: context, count: count, qHeads: qHeads, output: output.baseAddress!,
                                          heads: bw.heads, pageBounds: bw.pageBounds)
        let run: (Int, Int) -> Void = { worker, i in
            block.process(bw.items[i], scratch: ws.scratch[worker], scores: bw.scores[worker].pointer,
                          byPosition: bw.byPosition[worker].pointer, gathered: bw.gathered[worker].pointer,
                          partial: bw.partial[worker].pointer, partialRotated: bw.partialRotated[worker].pointer,
                          sums: bw.sums[worker].pointer, tile: bw.tiles[worker].pointer)
        }
        if let pool = ws.pool(for: plan) { pool.run(items: bw.items.count, run) } else { for i in 0..<bw.items.count { run(0, i) } }
    }

    /// ``attention(layer:queries:count:into:)`` over arrays: `[count][queryHeads][headDim]`.
    public func attention(layer: Int, queries: [Float], count: Int) throws(CacheError) -> [Float] {
        var output = [Float](repeating: 0, count: queries.count)
        try queries.withUnsafeBufferPointer { q throws(CacheError) in
            try output.withUnsafeMutableBufferPointer { o throws(CacheError) in
                try attention(layer: layer, queries: q, count: count, into: o)
            }
        }
        return output
    }
}

/// (lowest, highest) position of a page.
private func bounds(_ positions: [Int32]) -> PageBounds {
    var lo = Int32.max, hi = Int32.min
    for p in positions {
        if p < lo { lo = p }
        if p > hi { hi = p }
    }
    return PageBounds(lowest: Int(lo), highest: Int(hi))
}

struct PageBounds {
    var lowest: Int
    var highest: Int
}

/// One KV head's layout for block attention.
struct BlockHead {
    /// Key and value pages hold the same token order (no channel key blocks).
    var aligned: Bool
    /// Index of the head's first key page (value page) in the bounds list.
    var keyBounds: Int
    var valueBounds: Int
}

/// One unit of block-attention work: queries `first ..< end` of the block on one KV head.
struct BlockItem {
    var head: Int
    var first: Int
    var end: Int
}

/// Buffers of block attention owned by one layer, reused by every call.
final class BlockAttentionWorkspace {
    /// `[kvHeads][count][g][D]` scaled queries, and the same rotated into the code maps' domain.
    let queries = FloatBuffer()
    let codebookQueries = FloatBuffer()
    /// `[kvHeads][count·g]` q·mean for centered keys.
    let queryMean = FloatBuffer()
    /// Per worker: scores `[rows][tokens]` in key order; normalized weights by position
    /// `[rows][tokens]` (heads whose keys and values differ in order); weights gathered for one
    /// value page; partial outputs `[rows][D]` (and in the code maps' rotated domain); sums.
    var scores: [FloatBuffer] = []
    var byPosition: [FloatBuffer] = []
    var gathered: [FloatBuffer] = []
    var partial: [FloatBuffer] = []
    var partialRotated: [FloatBuffer] = []
    var sums: [FloatBuffer] = []
    /// Per worker: one page's records decoded to fp32 rows.
    var tiles: [FloatBuffer] = []
    var items: [BlockItem] = []
    var heads: [BlockHead] = []
    var pageBounds: [PageBounds] = []

    func prepare(workers: Int, scores s: Int, byPosition b: Int, gathered gt: Int, partial p: Int, tile: Int) {
        while scores.count < workers {
            scores.append(FloatBuffer())
            byPosition.append(FloatBuffer())
            gathered.append(FloatBuffer())
            partial.append(FloatBuffer())
            partialRotated.append(FloatBuffer())
            sums.append(FloatBuffer())
            tiles.append(FloatBuffer())
        }
        for w in 0..<workers {
            scores[w].reserve(s)
            byPosition[w].reserve(b)
            gathered[w].reserve(gt)
            partial[w].reserve(p)
            partialRotated[w].reserve(p)
            sums[w].reserve(p)
            tiles[w].reserve(tile)
        }
    }
}

/// Everything a block-attention item reads, shared by the workers of one call (read-only,
/// except the disjoint output rows each item writes).
struct BlockAttentionContext: @unchecked Sendable {
    let base: AttentionContext
    /// Queries in the block.
    let count: Int
    let qHeads: Int
    let output: UnsafeMutablePointer<Float>
    let heads: [BlockHead]
    let pageBounds: [PageBounds]

    /// Computes one item: scores of its queries (all q heads of the group) against every key
    /// they may see, the causal mask, softmax, the weighted values, and its output rows.
    func process(_ item: BlockItem, scratch: AttentionScratch, scores buf: UnsafeMutablePointer<Float>,
                 byPosition: UnsafeMutablePointer<Float>, gathered: UnsafeMutablePointer<Float>,
                 partial o: UnsafeMutablePointer<Float>, partialRotated oRot: UnsafeMutablePointer<Float>,
                 sums: UnsafeMutablePointer<Float>, tile: UnsafeMutablePointer<Float>) {
        let h = item.head, d = base.dim, g = base.g, n = base.tokens
        let kernels = base.kernels
        let hs = base.state.heads[h]
        let layout = heads[h]
        let rows = (item.end - item.first) * g
        // Position p is visible to query i iff p < start + i + 1 (start = n − count).
        let start = n - count
        let allSee = start + item.first + 1   // positions below: visible to every query of the item
        let someSee = start + item.end        // positions from here on: visible to none
        let qOffset = (h * count + item.first) * g
        let q = base.queries + qOffset * d, qcb = base.codebookQueries + qOffset * d
        let qm = base.queryMean + h * count * g + item.first * g

        // The item's tokens in key order: selected pages, channel key blocks, the window's visible part.
        let keyPages = hs.keys.pages
        var stride = 0
        for p in 0..<keyPages.count where pageBounds[layout.keyBounds + p].lowest < someSee { stride += keyPages[p].count }
        for block in hs.keyBlocks where block.firstPosition < someSee { stride += block.tokens }
        let windowVisible = max(0, min(hs.windowCount, someSee - hs.windowStart))
        stride += windowVisible

        // Scores.
        var off = 0
        for p in 0..<keyPages.count where pageBounds[layout.keyBounds + p].lowest < someSee {
            let page = keyPages[p]
            if decodesOnce(page, rows: rows) {
                page.codec.decode(page.bytes, count: page.count, into: tile)
                kernels.scoresF32(q, rows, d, tile, d, page.count, buf + off, stride, scratch)
            } else {
                base.scorePage(page, heads: rows, q: q, qcb: qcb, out: buf + off, stride: stride, scratch: scratch)
            }
            if hs.keyMean != nil {
                for r in 0..<rows {
                    let v = qm[r]
                    for (i, pos) in page.positions.enumerated() where Int(pos) >= base.sinks { buf[r * stride + off + i] += v }
                }
            }
            off += page.count
        }
        for block in hs.keyBlocks where block.firstPosition < someSee {
            let blockRows = scratch.tileRowsPointer
            block.bytes.withUnsafeBytes { block.codec.decode($0.baseAddress!, into: blockRows) }
            kernels.scoresF32(q, rows, d, blockRows, d, block.tokens, buf + off, stride, scratch)
            if hs.keyMean != nil, block.firstPosition >= base.sinks {
                for r in 0..<rows { for i in 0..<block.tokens { buf[r * stride + off + i] += qm[r] } }
            }
            off += block.tokens
        }
        if windowVisible > 0 {
            hs.withWindow(keys: true) { kernels.scoresF16(q, rows, d, $0, d, windowVisible, buf + off, stride, scratch) }
        }

        // Causal mask (−∞ before the softmax, exact zeros after it), softmax per row.
        mask(item, hs: hs, layout: layout, buf: buf, stride: stride, allSee: allSee, someSee: someSee,
             windowVisible: windowVisible, value: -.infinity)
        for r in 0..<rows {
            let row = buf + r * stride
            let m = kernels.maximum(row, stride)
            sums[r] = kernels.expShifted(row, stride, m)
        }
        mask(item, hs: hs, layout: layout, buf: buf, stride: stride, allSee: allSee, someSee: someSee,
             windowVisible: windowVisible, value: 0)

        // Values.
        for e in 0..<(rows * d) { o[e] = 0; oRot[e] = 0 }
        let valuePages = hs.values.pages
        if layout.aligned {
            off = 0
            for p in 0..<valuePages.count where pageBounds[layout.keyBounds + p].lowest < someSee {
                accumulate(valuePages[p], rows: rows, weights: buf + off, wStride: stride, o: o, oRot: oRot, scratch: scratch, tile: tile)
                off += valuePages[p].count
            }
            if windowVisible > 0 {
                hs.withWindow(keys: false) { kernels.accumulateF16(buf + off, stride, rows, d, $0, d, windowVisible, o, scratch) }
            }
        } else {
            // Weights by position (every position below `someSee` is in a selected key page,
            // a selected key block or the window), then gathered per value page.
            let w = byPosition, wStride = someSee
            for r in 0..<rows {
                let src = buf + r * stride, dst = w + r * wStride
                var off = 0
                for p in 0..<keyPages.count where pageBounds[layout.keyBounds + p].lowest < someSee {
                    for (i, pos) in keyPages[p].positions.enumerated() where Int(pos) < someSee { dst[Int(pos)] = src[off + i] }
                    off += keyPages[p].count
                }
                for block in hs.keyBlocks where block.firstPosition < someSee {
                    for i in 0..<min(block.tokens, someSee - block.firstPosition) { dst[block.firstPosition + i] = src[off + i] }
                    off += block.tokens
                }
                for i in 0..<windowVisible { dst[hs.windowStart + i] = src[off + i] }
            }
            for p in 0..<valuePages.count where pageBounds[layout.valueBounds + p].lowest < someSee {
                let page = valuePages[p], c = page.count
                for r in 0..<rows {
                    let src = w + r * wStride, dst = gathered + r * c
                    for (i, pos) in page.positions.enumerated() { dst[i] = Int(pos) < someSee ? src[Int(pos)] : 0 }
                }
                accumulate(page, rows: rows, weights: gathered, wStride: c, o: o, oRot: oRot, scratch: scratch, tile: tile)
            }
            if windowVisible > 0 {
                hs.withWindow(keys: false) { kernels.accumulateF16(w + hs.windowStart, wStride, rows, d, $0, d, windowVisible, o, scratch) }
            }
        }

        // Output rows: normalized, the code maps' rotated part rotated back and added.
        for r in 0..<rows {
            let i = item.first + r / g, j = r % g
            let dst = output + (i * qHeads + h * g + j) * d, src = o + r * d
            let inv = 1 / sums[r]
            for e in 0..<d { dst[e] = src[e] * inv }
            if let rotation = base.codebookRotation {
                let rot = oRot + r * d
                rotation.inverse(rot)
                for e in 0..<d { dst[e] += rot[e] * inv }
            }
        }
    }

    /// Whether a page's records are decoded once into fp32 rows for the item: those the
    /// kernels decode in registers would otherwise be decoded again for every 4 rows.
    private func decodesOnce(_ page: TokenPages.Page, rows: Int) -> Bool {
        guard rows > 4 else { return false }
        switch page.kind {
        case .affine, .codebook: return true
        case .f32, .f16, .decoded: return false
        }
    }

    private func accumulate(_ page: TokenPages.Page, rows: Int, weights: UnsafePointer<Float>, wStride: Int,
                            o: UnsafeMutablePointer<Float>, oRot: UnsafeMutablePointer<Float>, scratch: AttentionScratch,
                            tile: UnsafeMutablePointer<Float>) {
        if decodesOnce(page, rows: rows) {
            page.codec.decode(page.bytes, count: page.count, into: tile)
            base.kernels.accumulateF32(weights, wStride, rows, base.dim, tile, base.dim, page.count, o, scratch)
        } else {
            base.accumulatePage(page, heads: rows, weights: weights, wStride: wStride, o: o, oRot: oRot, scratch: scratch)
        }
    }

    /// Writes `value` over the scores of positions a query of the item may not see (only
    /// positions ≥ `allSee` can be masked; pages entirely below it are skipped).
    private func mask(_ item: BlockItem, hs: HeadState, layout: BlockHead, buf: UnsafeMutablePointer<Float>, stride: Int,
                      allSee: Int, someSee: Int, windowVisible: Int, value: Float) {
        let g = base.g, start = base.tokens - count
        // Queries i of the item with i < pos − start may not see pos.
        @inline(__always) func maskToken(_ pos: Int, at column: Int) {
            let last = min(item.end, pos - start)
            guard last > item.first else { return }
            for r in 0..<((last - item.first) * g) { buf[r * stride + column] = value }
        }
        var off = 0
        let keyPages = hs.keys.pages
        for p in 0..<keyPages.count where pageBounds[layout.keyBounds + p].lowest < someSee {
            if pageBounds[layout.keyBounds + p].highest >= allSee {
                for (i, pos) in keyPages[p].positions.enumerated() where Int(pos) >= allSee { maskToken(Int(pos), at: off + i) }
            }
            off += keyPages[p].count
        }
        for block in hs.keyBlocks where block.firstPosition < someSee {
            for i in 0..<block.tokens where block.firstPosition + i >= allSee { maskToken(block.firstPosition + i, at: off + i) }
            off += block.tokens
        }
        for i in 0..<windowVisible where hs.windowStart + i >= allSee { maskToken(hs.windowStart + i, at: off + i) }
    }
}

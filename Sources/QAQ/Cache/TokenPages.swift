/// Stored vectors of one stream (the keys or the values of one layer and KV head), grouped
/// in pages by storage format: every page holds up to `pageTokens` records of one format,
/// so a kernel runs per format without per-token branching. Attention is invariant to the
/// order of tokens, so a token moving to another format is a swap-remove here and an append
/// there.
struct TokenPages {
    final class Page {
        let format: StorageFormat
        let codec: any VectorCodec
        let capacity: Int
        let bytes: UnsafeMutableRawPointer
        /// Absolute position of each record, by slot (changed only by ``TokenPages``).
        fileprivate(set) var positions: [Int32]
        /// Records stored (`positions.count`, kept in the page object itself: the decode loop
        /// reads it for every page, and through the array it was a second dependent cache
        /// miss per page at long contexts).
        fileprivate(set) var count = 0
        /// How attention reads this page, decided once from the codec.
        let kind: PageKind

        init(format: StorageFormat, codec: any VectorCodec, capacity: Int) {
            self.format = format
            self.codec = codec
            self.kind = PageKind(codec)
            self.capacity = capacity
            self.bytes = UnsafeMutableRawPointer.allocate(byteCount: max(1, capacity * codec.bytesPerVector), alignment: 64)
            self.positions = []
            positions.reserveCapacity(capacity)
        }

        deinit { bytes.deallocate() }

        func record(_ slot: Int) -> UnsafeMutableRawPointer { bytes + slot * codec.bytesPerVector }
    }

    /// How the attention kernels read a page's records.
    enum PageKind {
        /// Affine records, decoded in registers.
        case affine(AffinePage)
        /// Code-map records, decoded in registers (stored in a rotated domain when the code
        /// map's `hadamard` is set).
        case codebook(CodeMapPage)
        /// fp32 rows.
        case f32
        /// fp16 rows.
        case f16
        /// Anything else: decoded by the codec a tile at a time.
        case decoded

        init(_ codec: any VectorCodec) {
            if let a = codec as? AffineCodec { self = .affine(AffinePage(layout: a.layout)) }
            else if let c = codec as? RotatedCodebookCodec { self = .codebook(CodeMapPage(c)) }
            else if codec is Float32Codec { self = .f32 }
            else if codec is Float16Codec { self = .f16 }
            else { self = .decoded }
        }
    }

    /// An affine page's layout, behind one reference (as ``CodeMapPage``: as a payload the
    /// layout, slot tables included, was copied by `memmove` at every page switch).
    final class AffinePage {
        let layout: PackedLayout
        init(layout: PackedLayout) { self.layout = layout }
    }

    /// What the attention kernels read of a code-map page, behind one reference: the decode
    /// loop switches on every page's kind, and with the codec itself as the payload (three
    /// arrays, an optional rotation with two more, a 100-byte layout) each switch copied it,
    /// with a retain and a release per array, twice per page and KV head.
    final class CodeMapPage {
        let layout: CodebookLayout
        /// The 2^b levels (owned; the codec's `levels`).
        let levels: UnsafeMutablePointer<Float>
        /// The rotation the records are stored in, if any, and its seed (kept apart: the
        /// decode loop compares it for every page, without touching the rotation's arrays).
        let hadamard: RandomizedHadamard?
        let rotationSeed: UInt64?

        init(_ codec: RotatedCodebookCodec) {
            layout = codec.layout
            levels = .allocate(capacity: codec.levels.count)
            levels.initialize(from: codec.levels, count: codec.levels.count)
            hadamard = codec.hadamard
            rotationSeed = codec.hadamard?.seed
        }

        deinit { levels.deallocate() }
    }

    let pageTokens: Int
    private(set) var pages: [Page] = []
    /// Page indices by format, the last one being the one being filled.
    private var byFormat: [StorageFormat: [Int]] = [:]
    /// Number of tokens stored.
    private(set) var count = 0
    /// The rotation of the first rotated code-map page this stream allocated (one seed per
    /// cache), kept when pages are released; nil if it never held one.
    private(set) var rotation: RandomizedHadamard?

    init(pageTokens: Int) { self.pageTokens = pageTokens }

    /// Stores an already encoded record.
    mutating func insert(position: Int, format: StorageFormat, codec: any VectorCodec, record: UnsafeRawPointer) {
        let p = pages[openPage(format: format, codec: codec)]
        p.record(p.count).copyMemory(from: record, byteCount: codec.bytesPerVector)
        p.positions.append(Int32(position))
        p.count += 1
        count += 1
    }

    /// Removes record `slot` of page `page` (the page's last record takes its slot).
    mutating func remove(page: Int, slot: Int) {
        let p = pages[page]
        let last = p.count - 1
        if slot != last {
            p.record(slot).copyMemory(from: p.record(last), byteCount: p.codec.bytesPerVector)
            p.positions[slot] = p.positions[last]
        }
        p.positions.removeLast()
        p.count -= 1
        count -= 1
    }

    /// (page, slot) of `position` among the pages of `format`, if stored there.
    func find(position: Int, format: StorageFormat) -> (page: Int, slot: Int)? {
        for i in byFormat[format] ?? [] {
            if let slot = pages[i].positions.firstIndex(of: Int32(position)) { return (i, slot) }
        }
        return nil
    }

    /// Drops every token at or after `position`.
    mutating func truncate(from position: Int) {
        for (i, p) in pages.enumerated() {
            var slot = p.count - 1
            while slot >= 0 {
                if Int(p.positions[slot]) >= position { remove(page: i, slot: slot) }
                slot -= 1
            }
        }
        compact()
    }

    /// Releases empty pages.
    mutating func compact() {
        guard pages.contains(where: { $0.count == 0 }) else { return }
        pages = pages.filter { $0.count > 0 }
        byFormat = [:]
        for (i, p) in pages.enumerated() { byFormat[p.format, default: []].append(i) }
    }

    private mutating func openPage(format: StorageFormat, codec: any VectorCodec) -> Int {
        if let last = byFormat[format]?.last, pages[last].count < pages[last].capacity { return last }
        // Reuse a page of this format with room (after removals) before allocating.
        if let free = byFormat[format]?.first(where: { pages[$0].count < pages[$0].capacity }) { return free }
        let page = Page(format: format, codec: codec, capacity: pageTokens)
        if rotation == nil, case .codebook(let c) = page.kind { rotation = c.hadamard }
        pages.append(page)
        byFormat[format, default: []].append(pages.count - 1)
        return pages.count - 1
    }

    /// Bytes held by records (allocated page capacity is reported separately).
    var storedBytes: ByteBreakdown {
        pages.reduce(.zero) { $0 + $1.codec.breakdown * $1.count }
    }

    /// Bytes allocated for pages, used or not.
    var allocatedBytes: Int { pages.reduce(0) { $0 + $1.capacity * $1.codec.bytesPerVector } }

    /// Bytes of bookkeeping: the position of each record.
    var bookkeepingBytes: Int { count * 4 }
}

import QAQ

/// The kernel variants a problem may run, as axes (FFTW's "solvers" of the problem): each axis
/// lists the values one knob can take. Only knobs that exist in the engine are here: ISA level,
/// page size, group size (under the quality budget), threads, split, chunk tokens, pinning and
/// the scores' arithmetic (fp32 or int8, under the quality budget).
/// `layout` (`bitplane`) and `tile` (the ISA's float lanes) are fixed by the kernels and carried
/// as descriptive fields.
public struct Catalogue: Sendable, Equatable {
    public var isas: [ISALevel]
    public var pageTokens: [Int]
    /// Group sizes the quality budget admitted.
    public var groupSizes: [Int]
    public var threads: [Int]
    public var splits: [Split]
    public var chunkTokens: [Int]
    public var pinnings: [Pinning]
    /// Dot-product arithmetic of scores and value sums: `[.fp32]`, or `[.fp32, .int8]` where
    /// the host has integer kernels and the quality gate admitted int8.
    public var dots: [Dot]
    /// Group sizes at which int8 is admitted: an `int8` variant lies inside the
    /// catalogue only at these (and only when `dots` holds `int8`).
    public var int8GroupSizes: [Int]

    public init(isas: [ISALevel], pageTokens: [Int], groupSizes: [Int], threads: [Int], splits: [Split],
                chunkTokens: [Int], pinnings: [Pinning], dots: [Dot] = [.fp32], int8GroupSizes: [Int] = []) {
        self.isas = isas
        self.pageTokens = pageTokens
        self.groupSizes = groupSizes
        self.threads = threads
        self.splits = splits
        self.chunkTokens = chunkTokens
        self.pinnings = pinnings
        self.dots = dots
        self.int8GroupSizes = int8GroupSizes
    }

    /// Head dimensions whose 4-bit affine pages have integer-dot (int8) score and value kernels; other
    /// pages take fp32 even under `AttentionPlan.integerDot`, so the planner offers int8 only
    /// for these.
    public static let integerDotHeadDims: Set<Int> = [64, 128]

    /// Whether int8 dot products can differ from fp32 for a problem on a host: an AVX-512 VNNI CPU at
    /// ISA level v4 (the topology's level and features, i.e. ``QAQ/ISALevel/featureNames``) and
    /// a head dimension with integer kernels.
    public static func integerDotAvailable(headDim: Int, topology t: Topology) -> Bool {
        t.isa == .v4 && t.features.contains("avx512vnni") && integerDotHeadDims.contains(headDim)
    }

    /// Group sizes a head dimension allows: multiples of 16 dividing D among 32, 64, 128, 256
    /// and D itself, ascending.
    public static func groupSizes(headDim d: Int) -> [Int] {
        var out = [32, 64, 128, 256].filter { $0 <= d && d % $0 == 0 }
        if d % 16 == 0, !out.contains(d) { out.append(d) }
        return out.sorted()
    }

    /// The catalogue of a problem for an effort. `start` (the estimate-level default) is
    /// always inside it. `measure`: the host ISA, page sizes ½×, 1×, 2×, 8× the default, chunk
    /// tokens 256/1024/4096; `patient`: every ISA the host runs, pages 16…1024, chunks
    /// 128…16384. Threads 1…min(allowed, usable PUs); pinning `pus` only where it differs from
    /// `cores` (SMT). Scores: `measure` and `patient` add `int8` to `fp32` when
    /// ``integerDotAvailable(headDim:topology:)`` and the quality gate admitted int8 at some of
    /// the catalogue's group sizes (`int8GroupSizes`); `estimate` is always fp32 — the estimate
    /// never trades accuracy for speed without a measurement, and the estimate-level default
    /// (the search's start) stays fp32 at every effort.
    ///
    /// `storageHints`: when given, the storage knobs (ISA, page size, group size) are limited
    /// to the start's and the hints' values — `measure` does this at large contexts, where a new
    /// cache costs more to fill than the knob is likely to gain, and reuses the storage the
    /// smaller contexts chose.
    public static func forProblem(_ problem: Problem, effort: Effort, start: KernelVariant, topology t: Topology,
                                  groupSizes admitted: [Int], int8GroupSizes: [Int] = [],
                                  storageHints: [KernelVariant]? = nil) -> Catalogue {
        let maxThreads = max(1, min(problem.threads, t.usablePUs))
        var pages: [Int]
        var chunks: [Int]
        var isas: [ISALevel] = [start.isa]
        switch effort {
        case .estimate:
            pages = [start.pageTokens]
            chunks = [start.chunkTokens]
        case .measure:
            // 8×: the estimate's page fits half the L1d, but decode attention streams its pages
            // once, and each page costs a DRAM stream restart at long contexts (64K cold, D = 128,
            // int8: 17.4 ms at 64 tokens, 12.4 at 256, 10.8 at 1024), so a large page is timed too.
            pages = [start.pageTokens / 2, start.pageTokens, start.pageTokens * 2, start.pageTokens * 8]
            chunks = [256, 1024, 4096]
        case .patient:
            pages = [16, 32, 64, 128, 256, 512, 1024]
            chunks = [128, 256, 512, 1024, 2048, 4096, 8192, 16384]
            isas = ISALevel.allCases.filter { $0 <= start.isa }
        }
        pages = uniqueSorted(pages.filter { $0 >= 8 && $0 <= 4096 } + [start.pageTokens])
        chunks = uniqueSorted(chunks.filter { $0 >= 1 && $0 <= max(problem.contextBucket, 1) } + [start.chunkTokens])
        let threads = effort == .estimate ? [start.threads] : Array(1...maxThreads)
        let smt = t.cores.contains { $0.count > 1 }
        var groups = admitted.isEmpty ? [start.groupSize] : admitted
        if !groups.contains(start.groupSize) && admitted.isEmpty { groups.append(start.groupSize) }
        if let hints = storageHints {
            pages = uniqueSorted([start.pageTokens] + hints.map(\.pageTokens))
            isas = [start.isa] + hints.map(\.isa)
            groups = groups.filter { $0 == start.groupSize || hints.map(\.groupSize).contains($0) }
            if groups.isEmpty { groups = [start.groupSize] }
        }
        groups = uniqueSorted(groups)
        var int8Groups: [Int] = []
        if effort != .estimate && start.isa == .v4 && integerDotAvailable(headDim: problem.headDim, topology: t) {
            int8Groups = uniqueSorted(int8GroupSizes.filter { groups.contains($0) })
        }
        return Catalogue(isas: uniqueSorted(isas), pageTokens: pages, groupSizes: groups, threads: threads,
                         splits: Split.allCases, chunkTokens: chunks,
                         pinnings: smt ? [.none, .cores, .pus] : [.none, .cores],
                         dots: int8Groups.isEmpty ? [.fp32] : [.fp32, .int8], int8GroupSizes: int8Groups)
    }

    /// The canonical form of a variant: one thread → split `head`, no pinning, default chunk;
    /// split `head` → default chunk (unused); an ISA level below v4 → fp32 scores (no integer
    /// kernels there). Variants equal after this run identically.
    public static func canonical(_ v: KernelVariant) -> KernelVariant {
        var v = v
        if v.threads <= 1 {
            v.threads = 1
            v.split = .head
            v.pinning = .none
            v.chunkTokens = KernelVariant.defaultChunkTokens
        } else if v.split == .head {
            v.chunkTokens = KernelVariant.defaultChunkTokens
        }
        if v.isa != .v4 { v.dot = .fp32 }
        v.tile = Estimate.lanes(v.isa)
        v.tile = min(v.tile, v.pageTokens)
        return v
    }

    /// The axes of coordinate descent, in the order they are swept: threads first (the
    /// biggest lever), then the scores' arithmetic (int8 cuts the compute of every score), then
    /// how threads divide the work, then page and group size, then ISA. A move to a group size
    /// at which int8 is not admitted takes fp32 scores with it.
    public var axes: [Axis] {
        let int8Groups = int8GroupSizes
        let offersInt8 = dots.contains(.int8)
        @Sendable func admitted(_ v: KernelVariant) -> KernelVariant {
            var w = v
            if w.dot == .int8 && !(offersInt8 && int8Groups.contains(w.groupSize)) { w.dot = .fp32 }
            return w
        }
        return [
            Axis(name: "threads", values: threads) { v, n in
                var w = v
                if w.threads != n {
                    w.threads = n
                    // Moving to more threads: start from a split that can balance them.
                    if n > 1 && v.threads <= 1 { w.split = .both; w.pinning = .cores }
                }
                return w
            },
            Axis(name: "dot", values: dots) { v, d in var w = v; w.dot = d; return admitted(w) },
            Axis(name: "split", values: splits) { v, s in var w = v; if w.threads > 1 { w.split = s }; return w },
            Axis(name: "chunkTokens", values: chunkTokens) { v, c in var w = v; if w.threads > 1 && w.split != .head { w.chunkTokens = c }; return w },
            Axis(name: "pinning", values: pinnings) { v, p in var w = v; if w.threads > 1 { w.pinning = p }; return w },
            Axis(name: "pageTokens", values: pageTokens) { v, p in var w = v; w.pageTokens = p; return w },
            Axis(name: "groupSize", values: groupSizes) { v, g in var w = v; w.groupSize = g; return admitted(w) },
            Axis(name: "isa", values: isas) { v, i in var w = v; w.isa = i; return w },
        ]
    }

    /// Every canonical variant of the catalogue (the cross product, deduplicated).
    public var allVariants: [KernelVariant] {
        var out: [KernelVariant] = []
        var seen = Set<KernelVariant>()
        for isa in isas {
            for p in pageTokens {
                for g in groupSizes {
                    // int8 only at the group sizes that admitted it.
                    for dot in (int8GroupSizes.contains(g) ? dots : [.fp32]) {
                        for n in threads {
                            for s in (n > 1 ? splits : [.head]) {
                                for c in (n > 1 && s != .head ? chunkTokens : [KernelVariant.defaultChunkTokens]) {
                                    for pin in (n > 1 ? pinnings : [.none]) {
                                        let v = Catalogue.canonical(KernelVariant(isa: isa, layout: Estimate.layout, pageTokens: p, groupSize: g,
                                                                                  tile: 1, threads: n, split: s, pinning: pin, chunkTokens: c,
                                                                                  dot: dot))
                                        if seen.insert(v).inserted { out.append(v) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// Whether a variant lies inside the catalogue.
    public func contains(_ v: KernelVariant) -> Bool {
        let c = Catalogue.canonical(v)
        return isas.contains(c.isa) && pageTokens.contains(c.pageTokens) && groupSizes.contains(c.groupSize)
            && dots.contains(c.dot) && (c.dot == .fp32 || int8GroupSizes.contains(c.groupSize))
            && threads.contains(c.threads) && (c.threads == 1 || (splits.contains(c.split) && pinnings.contains(c.pinning)
                && (c.split == .head || chunkTokens.contains(c.chunkTokens))))
    }
}

/// One knob of the catalogue: its values and how setting one changes a variant.
public struct Axis: Sendable {
    public var name: String
    public var candidates: [@Sendable (KernelVariant) -> KernelVariant]

    public init<T: Sendable>(name: String, values: [T], apply: @escaping @Sendable (KernelVariant, T) -> KernelVariant) {
        self.name = name
        self.candidates = values.map { value in { v in apply(v, value) } }
    }

    /// The distinct canonical variants along this axis through `v` (v itself included).
    public func neighbours(of v: KernelVariant) -> [KernelVariant] {
        var out: [KernelVariant] = []
        for f in candidates {
            let w = Catalogue.canonical(f(v))
            if !out.contains(w) { out.append(w) }
        }
        return out
    }
}

func uniqueSorted<T: Comparable & Hashable>(_ xs: [T]) -> [T] { Array(Set(xs)).sorted() }

extension KernelVariant {
    /// The logical CPUs the attention pool's workers are pinned to: `cores` → the first PU of
    /// each physical core, `pus` → every PU (cores' PUs in order), `none` → unpinned.
    public func cpus(topology t: Topology) -> [Int] {
        guard threads > 1 else { return [] }
        switch pinning {
        case .none: return []
        case .cores: return t.cores.compactMap(\.first)
        case .pus: return t.cores.flatMap { $0 }
        }
    }

    /// The engine's plan for this variant on a topology (`int8` → `integerDot`).
    public func attentionPlan(topology t: Topology) -> AttentionPlan {
        let s: AttentionPlan.Split
        switch split {
        case .head: s = .head
        case .tokens: s = .tokens
        case .both: s = .both
        }
        return AttentionPlan(threads: threads, split: s, cpus: cpus(topology: t), chunkTokens: chunkTokens, integerDot: dot == .int8)
    }
}

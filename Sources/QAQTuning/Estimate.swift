import QAQ

/// Estimate-level defaults: no timing, every choice a pure function of a ``Topology`` value and
/// the ``Problem`` (BLIS-style: block sizes from cache sizes, threads from cores). These are
/// what an engine runs with when it has no usable profile, and the baseline a measured profile
/// is compared against.
///
/// Rules (documented in profiles/README.md too):
/// - **Bytes per token·KV-head** (K + V, 4 bits, fp16 `lo` and `step` per group):
///   `2·D·4/8 + 2·⌈D/G⌉·4`. D = 128, G = 32: 160 B; D = 64: 80 B.
/// - **Page budget**: half the L1d share of one PU (`L1d ÷ PUs sharing it ÷ 2`); without a known
///   L1d, an eighth of the L2 share; without either, 16 KiB.
/// - **Page tokens**: the largest power of two in [8, 256] whose page fits the budget
///   (8 if none does).
/// - **Group size**: 32 when D is a multiple of 32, else D (quality first; the planner chooses
///   under a quality budget later).
/// - **Tile**: the ISA's float lanes (v4 16, v3 8, base 4), at most the page.
/// - **Threads**: the physical cores this process may use (cores capped by the affinity mask),
///   at most the problem's allowed threads, and at most one per 128 KiB of K+V the step reads
///   (forking costs ≥ 0.1 µs; 128 KiB is ≈ 3 µs at DRAM speed).
/// - **Split**: 1 thread → `head`; KV heads a multiple of threads → `head`; more heads than
///   threads but not a multiple → `both` (heads, then token ranges for the remainder);
///   fewer heads than threads → `tokens`.
/// - **Pinning**: `cores` when more than one thread, else `none`.
/// - **Layout**: `bitplane` (DESIGN §3); **ISA**: the topology's level.
public enum Estimate {
    /// Layout name used by estimate-level variants.
    public static let layout = "bitplane"
    /// Page-token bounds.
    public static let minPageTokens = 8
    public static let maxPageTokens = 256
    /// K+V bytes one extra thread must have to read to be worth forking.
    public static let bytesPerThread = 128 << 10
    /// Fallback page budget when no cache size is known.
    public static let fallbackPageBudget = 16 << 10

    /// Default group size for a head dimension.
    public static func groupSize(headDim: Int) -> Int { headDim % 32 == 0 ? 32 : max(headDim, 1) }

    /// K+V bytes of one token·KV-head at `bits` bits with `groupSize` groups.
    public static func bytesPerToken(headDim: Int, groupSize: Int, bits: Int = 4) -> Int {
        let d = min(max(headDim, 1), Profile.limits.headDim), g = min(max(groupSize, 1), d)
        let groups = (d + g - 1) / g
        return 2 * ((d * min(max(bits, 1), 32) + 7) / 8) + 2 * groups * 4
    }

    /// Bytes a page of K+V may take.
    public static func pageBudget(_ t: Topology) -> Int {
        if let l1 = t.dataCacheSizePerPU(level: 1) { return max(l1 / 2, 1) }
        if let l2 = t.dataCacheSizePerPU(level: 2) { return max(l2 / 8, 1) }
        return fallbackPageBudget
    }

    /// Tokens per page for a head dimension on a topology.
    public static func pageTokens(headDim: Int, groupSize: Int, topology t: Topology) -> Int {
        let perToken = bytesPerToken(headDim: headDim, groupSize: groupSize)
        let budget = pageBudget(t)
        var p = maxPageTokens
        while p > minPageTokens && p * perToken > budget { p /= 2 }
        return p
    }

    /// Float lanes of the ISA's widest vector.
    public static func lanes(_ isa: ISALevel) -> Int {
        switch isa {
        case .v4: return 16
        case .v3: return 8
        case .base: return 4
        }
    }

    /// Threads for a problem.
    public static func threads(for problem: Problem, topology t: Topology) -> Int {
        let g = groupSize(headDim: problem.headDim)
        let tokens = min(max(problem.contextBucket, 1), Profile.limits.tokens)
        let heads = min(max(problem.kvHeads, 1), Profile.limits.heads)
        let (perHead, o1) = tokens.multipliedReportingOverflow(by: bytesPerToken(headDim: problem.headDim, groupSize: g))
        let (total, o2) = perHead.multipliedReportingOverflow(by: heads)
        let byWork = o1 || o2 ? Int.max : max(1, total / bytesPerThread)
        return max(1, min(t.usableCores, max(problem.threads, 1), byWork))
    }

    /// How `threads` threads divide `kvHeads` heads.
    public static func split(kvHeads: Int, threads: Int) -> Split {
        if threads <= 1 || kvHeads % threads == 0 { return .head }
        return kvHeads > threads ? .both : .tokens
    }

    /// The estimate-level variant for a problem on a topology.
    public static func variant(for problem: Problem, topology t: Topology) -> KernelVariant {
        let g = groupSize(headDim: problem.headDim)
        let pages = pageTokens(headDim: problem.headDim, groupSize: g, topology: t)
        let n = threads(for: problem, topology: t)
        return KernelVariant(isa: t.isa, layout: layout, pageTokens: pages, groupSize: g,
                             tile: min(lanes(t.isa), pages), threads: n,
                             split: split(kvHeads: problem.kvHeads, threads: n),
                             pinning: n > 1 ? .cores : .none)
    }

    /// An `estimate` profile: the host's fingerprint and the estimate-level plan of each problem
    /// (nothing timed, so no speeds and no runners-up).
    public static func profile(for problems: [Problem], topology t: Topology, roofs: [RoofRecord] = []) -> Profile {
        var unique: [Problem] = []
        for p in problems where !unique.contains(p) { unique.append(p) }
        return Profile(effort: .estimate, host: HostFingerprint(t), roofs: roofs,
                       plans: unique.map { PlanRecord(problem: $0, chosen: MeasuredVariant(variant: variant(for: $0, topology: t))) })
    }
}

/// Read-roof working sets derived from the topology, and their measurement.
public enum RoofProbe {
    /// Buffer bytes per level (rules: L1 = L1d/2; L2 = L2/2 but ≥ 4·L1d; L3 = min(L3/2, max(4·L2,
    /// 8 MiB)) when that exceeds 2·L2; DRAM = max(4 × all L3, 256 MiB) capped at 1 GiB and at
    /// memory/8). Levels the topology lacks are left out (DRAM always present).
    public static func sizes(for t: Topology) -> [(level: MemoryLevel, bytes: Int)] {
        var out: [(MemoryLevel, Int)] = []
        let l1 = t.dataCacheSize(level: 1)
        let l2 = t.dataCacheSize(level: 2)
        let l3 = t.dataCacheSize(level: 3)
        out.append((.L1, (l1 ?? 32 << 10) / 2))
        if let l2 {
            out.append((.L2, max(l2 / 2, 4 * (l1 ?? 0))))
        }
        if let l3 {
            let b = min(l3 / 2, max(4 * (l2 ?? 0), 8 << 20))
            if b > 2 * (l2 ?? 0) { out.append((.L3, b)) }
        }
        let allL3 = t.caches.filter { $0.level == t.deepestCacheLevel && $0.holdsData }.reduce(0) { $0 + $1.size }
        var dram = min(max(4 * allL3, 256 << 20), 1 << 30)
        if t.memoryBytes > 0 { dram = min(dram, max(t.memoryBytes / 8, 64 << 20)) }
        out.append((.DRAM, dram))
        return out
    }

    /// Measures the 1-thread read roof at each level (``ReadRoof/measure``). Takes about
    /// `levels × repetitions × minSeconds` plus filling the buffers.
    public static func measure(topology t: Topology, kernels: KernelSet = .active, levels: Set<MemoryLevel> = Set(MemoryLevel.allCases),
                               repetitions: Int = 5, minSeconds: Double = 0.05) -> [RoofRecord] {
        sizes(for: t).filter { levels.contains($0.level) }.map { level, bytes in
            let r = ReadRoof.measure(bytes: bytes, repetitions: repetitions, minSeconds: minSeconds, kernels: kernels)
            return RoofRecord(level: level, threads: 1, bytes: r.bytes, gbps: r.gbps, medianGBps: r.medianGBps, isa: r.isa)
        }
    }
}

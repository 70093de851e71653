import QAQ
#if canImport(Glibc)
import Glibc
#endif

/// FFTW-style planning effort.
public enum Effort: String, Sendable, Codable, CaseIterable, Equatable {
    /// No timing: defaults derived from the topology (see ``Estimate``).
    case estimate
    /// Timed search over the standard catalogue (default; ≤ 60 s).
    case measure
    /// Wider timed search (minutes).
    case patient
}

/// A level of the memory hierarchy, for read roofs.
public enum MemoryLevel: String, Sendable, Codable, CaseIterable, Equatable {
    case L1, L2, L3, DRAM
}

/// A measured read roof: one thread count at one working-set level.
public struct RoofRecord: Sendable, Codable, Equatable {
    public var level: MemoryLevel
    public var threads: Int
    /// Working-set bytes probed.
    public var bytes: Int
    /// Best of the repetitions, GB/s (10⁹ B/s).
    public var gbps: Double
    /// Median of the repetitions, GB/s.
    public var medianGBps: Double
    /// ISA level of the probe.
    public var isa: ISALevel

    public init(level: MemoryLevel, threads: Int, bytes: Int, gbps: Double, medianGBps: Double, isa: ISALevel) {
        self.level = level
        self.threads = threads
        self.bytes = bytes
        self.gbps = gbps
        self.medianGBps = medianGBps
        self.isa = isa
    }
}

/// One workload shape (DESIGN §2): what the planner plans for.
public struct Problem: Sendable, Codable, Hashable {
    /// Head dimension D.
    public var headDim: Int
    /// KV heads per layer.
    public var kvHeads: Int
    /// Query heads per KV head.
    public var gqa: Int
    /// Context length bucket: the largest token count this plan is for.
    public var contextBucket: Int
    /// Bits of the stored tokens, e.g. `k4v4`, `k4v3`, `mixed`; the planner's naming.
    public var bitMix: String
    /// Element type of q.
    public var elementType: ElementType
    /// Threads the caller allows.
    public var threads: Int

    public init(headDim: Int, kvHeads: Int, gqa: Int, contextBucket: Int, bitMix: String = "k4v4",
                elementType: ElementType = .float32, threads: Int) {
        self.headDim = headDim
        self.kvHeads = kvHeads
        self.gqa = gqa
        self.contextBucket = contextBucket
        self.bitMix = bitMix
        self.elementType = elementType
        self.threads = threads
    }
}

/// How a multi-threaded kernel divides the work.
public enum Split: String, Sendable, Codable, CaseIterable, Equatable {
    /// Each thread takes whole KV heads.
    case head
    /// Each thread takes a token range of every head; partial softmax states are merged.
    case tokens
    /// Heads first, then token ranges to balance the remainder.
    case both
}

/// Where worker threads run.
public enum Pinning: String, Sendable, Codable, CaseIterable, Equatable {
    /// The OS schedules them.
    case none
    /// Worker i on the first usable PU of the i-th physical core.
    case cores
    /// Worker i on the i-th usable PU (SMT siblings may share a core).
    case pus
}

/// The arithmetic of decode attention's scores (q·k) over 4-bit keys.
public enum Dot: String, Sendable, Codable, CaseIterable, Equatable {
    /// Keys dequantized to fp32, fp32 dot products (every ISA level, every page format).
    case fp32
    /// int8 dot products (`vpdpbusd`, AVX-512 VNNI): the query quantized to int8 per head,
    /// the group's scale applied once per group (`AttentionPlan.integerDot`). Adds the int8
    /// query's error; where a page or the ISA level has no integer kernel, the engine takes
    /// fp32 for those pages.
    case int8
}

/// A way to compute a problem (DESIGN §2): the planner chooses among these.
public struct KernelVariant: Sendable, Codable, Hashable {
    public var isa: ISALevel
    /// Storage layout name, e.g. `bitplane`; the attention kernels define the set.
    public var layout: String
    /// Tokens per page.
    public var pageTokens: Int
    /// Quantization group size (elements).
    public var groupSize: Int
    /// Elements per SIMD step of the kernels (the ISA's float lanes). Descriptive, not a knob:
    /// the attention kernels' token tile is fixed, so the planner never varies it.
    public var tile: Int
    public var threads: Int
    public var split: Split
    public var pinning: Pinning
    /// Tokens per work item when splitting by tokens (`tokens`, `both`); rounded up to whole
    /// pages by the cache. Schema 2; a schema-1 profile reads as ``defaultChunkTokens``.
    public var chunkTokens: Int
    /// Score arithmetic (`AttentionPlan.integerDot` when `int8`). Schema 3; a variant without
    /// the field (schemas 1 and 2) reads as `fp32`.
    public var dot: Dot

    /// `AttentionPlan`'s default chunk, and what schema-1 variants mean.
    public static let defaultChunkTokens = 1024

    public init(isa: ISALevel, layout: String, pageTokens: Int, groupSize: Int, tile: Int, threads: Int,
                split: Split, pinning: Pinning, chunkTokens: Int = KernelVariant.defaultChunkTokens, dot: Dot = .fp32) {
        self.isa = isa
        self.layout = layout
        self.pageTokens = pageTokens
        self.groupSize = groupSize
        self.tile = tile
        self.threads = threads
        self.split = split
        self.pinning = pinning
        self.chunkTokens = chunkTokens
        self.dot = dot
    }

    private enum CodingKeys: String, CodingKey {
        case isa, layout, pageTokens, groupSize, tile, threads, split, pinning, chunkTokens, dot
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        isa = try c.decode(ISALevel.self, forKey: .isa)
        layout = try c.decode(String.self, forKey: .layout)
        pageTokens = try c.decode(Int.self, forKey: .pageTokens)
        groupSize = try c.decode(Int.self, forKey: .groupSize)
        tile = try c.decode(Int.self, forKey: .tile)
        threads = try c.decode(Int.self, forKey: .threads)
        split = try c.decode(Split.self, forKey: .split)
        pinning = try c.decode(Pinning.self, forKey: .pinning)
        chunkTokens = try c.decodeIfPresent(Int.self, forKey: .chunkTokens) ?? KernelVariant.defaultChunkTokens
        dot = try c.decodeIfPresent(Dot.self, forKey: .dot) ?? .fp32
    }

    /// A short human name: `v4 p256 G32 2t both/1024 cores`, with ` int8` appended when the
    /// scores take int8 dot products.
    public var shortDescription: String {
        var s = "\(isa.rawValue) p\(pageTokens) G\(groupSize) \(threads)t"
        if threads > 1 {
            s += " \(split.rawValue)"
            if split != .head { s += "/\(chunkTokens)" }
            s += " \(pinning.rawValue)"
        }
        if dot == .int8 { s += " int8" }
        return s
    }
}

/// A variant with its measured speed (absent for `estimate` profiles: nothing was timed).
public struct MeasuredVariant: Sendable, Codable, Equatable {
    public var variant: KernelVariant
    /// Nanoseconds per token·KV-head (all q heads of the GQA group included): the median of
    /// the clean samples.
    public var nsPerTokenKVHead: Double?
    /// Cache bytes read per second at that median, GB/s.
    public var gbps: Double?
    /// The fastest sample, ns per token·KV-head (schema 2).
    public var minNsPerTokenKVHead: Double?
    /// Timed samples kept (schema 2).
    public var samples: Int?
    /// Samples the foreign-CPU guard rejected and re-took (schema 2).
    public var rejectedSamples: Int?
    /// True when other processes used a significant share of the CPUs this variant needs
    /// during the measurement even after re-measuring: the figure is less trustworthy (schema 2).
    public var noisy: Bool?
    /// Share of the variant's CPUs that other processes took during the measurement, 0…1
    /// (schema 2).
    public var foreignShare: Double?

    public init(variant: KernelVariant, nsPerTokenKVHead: Double? = nil, gbps: Double? = nil,
                minNsPerTokenKVHead: Double? = nil, samples: Int? = nil, rejectedSamples: Int? = nil,
                noisy: Bool? = nil, foreignShare: Double? = nil) {
        self.variant = variant
        self.nsPerTokenKVHead = nsPerTokenKVHead
        self.gbps = gbps
        self.minNsPerTokenKVHead = minNsPerTokenKVHead
        self.samples = samples
        self.rejectedSamples = rejectedSamples
        self.noisy = noisy
        self.foreignShare = foreignShare
    }
}

/// The attention error of one group size on the synthetic generator, and whether the quality
/// budget admitted it (schema 2); with int8 dot products as well where the gate judged them (schema 3).
public struct GroupQuality: Sendable, Codable, Equatable {
    public var groupSize: Int
    /// Mean relative attention-output error (``QAQ/QualityBench``), 4-bit keys and values,
    /// fp32 scores.
    public var attentionRelError: Double
    public var admitted: Bool
    /// The same error with int8 dot products (`AttentionPlan.integerDot`); absent where the gate did
    /// not judge them (no AVX-512 VNNI, a head dimension without integer kernels, schema ≤ 2).
    public var int8AttentionRelError: Double?
    /// Whether int8 is admitted at this group size (``QualityGate``'s rule); absent
    /// where they were not judged.
    public var int8Admitted: Bool?

    public init(groupSize: Int, attentionRelError: Double, admitted: Bool, int8AttentionRelError: Double? = nil,
                int8Admitted: Bool? = nil) {
        self.groupSize = groupSize
        self.attentionRelError = attentionRelError
        self.admitted = admitted
        self.int8AttentionRelError = int8AttentionRelError
        self.int8Admitted = int8Admitted
    }
}

/// A problem and its plan: the chosen variant and the runners-up, fastest first.
public struct PlanRecord: Sendable, Codable, Equatable {
    public var problem: Problem
    public var chosen: MeasuredVariant
    public var runnersUp: [MeasuredVariant]
    /// The estimate-level default for this problem, timed the same way (schema 2; absent in
    /// `estimate` profiles).
    public var estimateDefault: MeasuredVariant?
    /// Estimate default's median ÷ the chosen variant's median (schema 2).
    public var speedup: Double?
    /// Group sizes considered and their attention error (schema 2).
    public var quality: [GroupQuality]?

    public init(problem: Problem, chosen: MeasuredVariant, runnersUp: [MeasuredVariant] = [],
                estimateDefault: MeasuredVariant? = nil, speedup: Double? = nil, quality: [GroupQuality]? = nil) {
        self.problem = problem
        self.chosen = chosen
        self.runnersUp = runnersUp
        self.estimateDefault = estimateDefault
        self.speedup = speedup
        self.quality = quality
    }
}

/// A per-host profile ("wisdom"): plain data, saved as `profiles/<host.id>.json`.
public struct Profile: Sendable, Codable, Equatable {
    /// The schema this library writes; it reads every version from 1 up to it.
    /// Version 2 added `variant.chunkTokens`, the measurement fields of ``MeasuredVariant``,
    /// `plans[].estimateDefault`, `speedup`, `quality` and the profile's `qualityBudget`,
    /// `measureSeconds`; a version-1 file reads with those absent (`chunkTokens` = 1024).
    /// Version 3 added `variant.dot` and `quality[].int8AttentionRelError`, `int8Admitted`; an
    /// older file reads with the variants' `dot` = `fp32` and those absent.
    public static let currentSchemaVersion = 3

    public var schemaVersion: Int
    /// ``QAQ/version`` of the library that wrote it.
    public var libraryVersion: String
    /// ISO-8601 UTC time of writing, e.g. `2025-06-01T12:00:00Z`.
    public var createdAt: String
    public var effort: Effort
    public var host: HostFingerprint
    /// Measured read roofs per memory level and thread count (may be empty).
    public var roofs: [RoofRecord]
    public var plans: [PlanRecord]
    /// Largest mean relative attention error a group size may have (schema 2; timed efforts).
    public var qualityBudget: Double?
    /// Wall seconds the planner took (schema 2; timed efforts).
    public var measureSeconds: Double?

    public init(schemaVersion: Int = Profile.currentSchemaVersion, libraryVersion: String = QAQ.version,
                createdAt: String = isoTimestamp(), effort: Effort, host: HostFingerprint,
                roofs: [RoofRecord] = [], plans: [PlanRecord] = [], qualityBudget: Double? = nil,
                measureSeconds: Double? = nil) {
        self.qualityBudget = qualityBudget
        self.measureSeconds = measureSeconds
        self.schemaVersion = schemaVersion
        self.libraryVersion = libraryVersion
        self.createdAt = createdAt
        self.effort = effort
        self.host = host
        self.roofs = roofs
        self.plans = plans
    }

    /// The file name for a host: `<id>.json`.
    public static func fileName(for host: HostFingerprint) -> String { "\(host.id).json" }

    /// The plan recorded for exactly this problem, if any.
    public func plan(for problem: Problem) -> PlanRecord? { plans.first { $0.problem == problem } }
}

/// Now (or `seconds` since the epoch) as `YYYY-MM-DDTHH:MM:SSZ`.
public func isoTimestamp(secondsSinceEpoch seconds: Int? = nil) -> String {
    var t = time_t(seconds ?? Int(time(nil)))
    var parts = tm()
    gmtime_r(&t, &parts)
    func pad(_ v: Int32, _ n: Int) -> String {
        let s = String(v)
        return String(repeating: "0", count: max(0, n - s.count)) + s
    }
    return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
        + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))Z"
}

/// Whether `s` is an ISO-8601 date-time: `YYYY-MM-DDTHH:MM:SS`, optional fraction, then `Z`
/// or `±HH:MM`.
func isISO8601(_ s: String) -> Bool {
    let b = Array(s.utf8)
    func isDigit(_ i: Int) -> Bool { i < b.count && b[i] >= 48 && b[i] <= 57 }
    func digits(_ r: Range<Int>) -> Bool { r.allSatisfy(isDigit) }
    func at(_ i: Int, _ c: UInt8) -> Bool { i < b.count && b[i] == c }
    guard b.count >= 20, digits(0..<4), at(4, 0x2D), digits(5..<7), at(7, 0x2D), digits(8..<10),
          at(10, 0x54) || at(10, 0x74), digits(11..<13), at(13, 0x3A), digits(14..<16), at(16, 0x3A), digits(17..<19) else {
        return false
    }
    var i = 19
    if at(i, 0x2E) {  // .
        i += 1
        let start = i
        while isDigit(i) { i += 1 }
        if i == start { return false }
    }
    if at(i, 0x5A) || at(i, 0x7A) { return i + 1 == b.count }  // Z
    if at(i, 0x2B) || at(i, 0x2D) {  // + -
        return i + 6 == b.count && digits(i + 1..<i + 3) && at(i + 3, 0x3A) && digits(i + 4..<i + 6)
    }
    return false
}

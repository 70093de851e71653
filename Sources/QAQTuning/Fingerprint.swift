import QAQ

/// FNV-1a, 64 bits, over bytes.
public func fnv1a64<S: Sequence>(_ bytes: S) -> UInt64 where S.Element == UInt8 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in bytes {
        h ^= UInt64(b)
        h = h &* 0x0000_0100_0000_01b3
    }
    return h
}

/// One data-holding cache level as the fingerprint sees it: size, line size and how many PUs
/// share one instance (instances of different shapes, e.g. hybrid cores, are separate entries).
public struct CacheLevelSummary: Sendable, Codable, Equatable, Comparable {
    public var level: Int
    public var kind: CacheInfo.Kind
    /// Bytes per instance.
    public var size: Int
    public var lineSize: Int
    /// PUs sharing one instance.
    public var pusPerInstance: Int
    public var instances: Int
    /// Where the size came from (`hwloc`, `sysfs`, …). Recorded, not hashed.
    public var source: FigureSource

    public init(level: Int, kind: CacheInfo.Kind, size: Int, lineSize: Int, pusPerInstance: Int, instances: Int,
                source: FigureSource) {
        self.level = level
        self.kind = kind
        self.size = size
        self.lineSize = lineSize
        self.pusPerInstance = pusPerInstance
        self.instances = instances
        self.source = source
    }

    public var name: String { kind == .data ? "L\(level)d" : "L\(level)" }

    /// The hashed part: `L1d=49152/64/1x2` (size/line/PUs-per-instance x instances).
    public var canonical: String { "\(name)=\(size)/\(lineSize)/\(pusPerInstance)x\(instances)" }

    public static func < (a: CacheLevelSummary, b: CacheLevelSummary) -> Bool {
        (a.level, a.kind.rawValue, a.size, a.pusPerInstance, a.lineSize, a.instances)
            < (b.level, b.kind.rawValue, b.size, b.pusPerInstance, b.lineSize, b.instances)
    }
}

/// How a profile's host relates to this host.
public enum FingerprintMatch: Sendable, Equatable {
    /// Every hashed field is equal.
    case exact
    /// Only the CPU model string differs (same ISA level and features, caches and counts).
    /// The differences are listed for the note.
    case compatible(differences: [String])
    /// Something that shapes the plans differs.
    case mismatch(differences: [String])
}

/// A stable description of a host for matching profiles to machines. Hashed (in this order):
/// CPU model string, ISA level, kernel-relevant CPU features, every data/unified cache level
/// (size, line size, PUs per instance, instance count), and the package, NUMA node, core and PU
/// counts. Not hashed, only recorded: where each figure came from, the OS and kernel, memory,
/// and the process's affinity mask — so the id does not change with load, time, kernel
/// upgrades, or `taskset`.
public struct HostFingerprint: Sendable, Codable, Equatable {
    /// Version of the canonical string's format; part of the hash.
    public static let canonicalVersion = 1

    /// 16 hex digits: FNV-1a 64 of ``canonical``. Profiles are named `profiles/<id>.json`.
    public var id: String
    public var cpuModel: String
    public var isa: ISALevel
    public var features: [String]
    public var caches: [CacheLevelSummary]
    public var packages: Int
    public var numaNodes: Int
    public var cores: Int
    public var pus: Int
    /// Recorded, not hashed.
    public var os: OSInfo
    /// Source of the counts. Recorded, not hashed.
    public var countsSource: FigureSource

    /// The fingerprint of a topology.
    public init(_ t: Topology) {
        cpuModel = t.cpuModel
        isa = t.isa
        features = t.features.sorted()
        caches = HostFingerprint.summarize(t.caches)
        packages = t.packages
        numaNodes = t.numaNodes
        cores = t.coreCount
        pus = t.puCount
        os = t.os
        countsSource = t.countsSource
        id = ""
        id = computedID
    }

    /// This host's fingerprint.
    public static let current = HostFingerprint(Topology.current)

    /// Groups data/unified cache instances by level and shape.
    public static func summarize(_ caches: [CacheInfo]) -> [CacheLevelSummary] {
        var groups: [String: CacheLevelSummary] = [:]
        for c in caches where c.holdsData {
            let s = CacheLevelSummary(level: c.level, kind: c.kind, size: c.size, lineSize: c.lineSize,
                                      pusPerInstance: c.sharedPUs.count, instances: 1, source: c.sizeSource)
            let key = "\(s.level)/\(s.kind)/\(s.size)/\(s.lineSize)/\(s.pusPerInstance)"
            if var g = groups[key] {
                g.instances += 1
                if g.source == .hwloc && c.sizeSource != .hwloc { g.source = c.sizeSource }
                groups[key] = g
            } else {
                groups[key] = s
            }
        }
        return groups.values.sorted()
    }

    /// The exact string hashed into ``id``.
    public var canonical: String {
        var parts = ["qaq-host-v\(HostFingerprint.canonicalVersion)",
                     "model=\(cpuModel)", "isa=\(isa.rawValue)", "features=\(features.sorted().joined(separator: ","))"]
        parts += caches.sorted().map(\.canonical)
        parts += ["packages=\(packages)", "numa=\(numaNodes)", "cores=\(cores)", "pus=\(pus)"]
        return parts.joined(separator: "|")
    }

    /// FNV-1a 64 of ``canonical`` as 16 lowercase hex digits.
    public var computedID: String {
        let hex = String(fnv1a64(canonical.utf8), radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// Compares a profile's recorded host (`self`) with `host` (usually this machine).
    public func match(_ host: HostFingerprint) -> FingerprintMatch {
        var differences: [String] = []
        func diff(_ name: String, _ a: String, _ b: String) {
            if a != b { differences.append("\(name): profile \(a.isEmpty ? "unknown" : a), this host \(b.isEmpty ? "unknown" : b)") }
        }
        diff("ISA level", isa.rawValue, host.isa.rawValue)
        diff("CPU features", features.sorted().joined(separator: " "), host.features.sorted().joined(separator: " "))
        diff("caches", caches.sorted().map(\.canonical).joined(separator: " "), host.caches.sorted().map(\.canonical).joined(separator: " "))
        diff("packages", "\(packages)", "\(host.packages)")
        diff("NUMA nodes", "\(numaNodes)", "\(host.numaNodes)")
        diff("cores", "\(cores)", "\(host.cores)")
        diff("PUs", "\(pus)", "\(host.pus)")
        let modelDiffers = cpuModel != host.cpuModel
        if !differences.isEmpty {
            if modelDiffers { differences.insert("CPU model: profile \"\(cpuModel)\", this host \"\(host.cpuModel)\"", at: 0) }
            return .mismatch(differences: differences)
        }
        if modelDiffers { return .compatible(differences: ["CPU model: profile \"\(cpuModel)\", this host \"\(host.cpuModel)\""]) }
        return .exact
    }
}

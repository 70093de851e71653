import CHwloc
import CQAQSupport
import QAQ
#if canImport(Glibc)
import Glibc
#endif

/// Where a figure of the topology came from.
public enum FigureSource: String, Sendable, Codable, Equatable, CaseIterable, CustomStringConvertible {
    /// hwloc's C API.
    case hwloc
    /// Linux sysfs (`/sys/devices/system/cpu`, `/sys/devices/system/node`), used where hwloc
    /// reported nothing or zero (containers, VMs) or could not load.
    case sysfs
    /// Constructed by a caller (tests, what-if estimates).
    case synthetic
    /// Nobody reported it; the figure is 0.
    case unknown

    public var description: String { rawValue }
}

/// Operating system and kernel, from `uname`. Recorded in profiles, not part of the fingerprint.
public struct OSInfo: Sendable, Codable, Equatable {
    public var sysname: String
    public var release: String
    public var version: String
    public var machine: String

    public init(sysname: String, release: String, version: String, machine: String) {
        self.sysname = sysname
        self.release = release
        self.version = version
        self.machine = machine
    }

    /// This machine's `uname`.
    public static let current: OSInfo = {
        var u = utsname()
        guard uname(&u) == 0 else { return OSInfo(sysname: "", release: "", version: "", machine: "") }
        func field<T>(_ value: T) -> String {
            withUnsafeBytes(of: value) { raw in String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) }
        }
        return OSInfo(sysname: field(u.sysname), release: field(u.release), version: field(u.version), machine: field(u.machine))
    }()
}

/// One cache instance: which level and kind, how big, and which PUs share it.
public struct CacheInfo: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable, Equatable, CaseIterable {
        case data, instruction, unified
    }

    /// 1, 2, 3 (4 where present).
    public var level: Int
    public var kind: Kind
    /// Bytes (0 if unknown).
    public var size: Int
    /// Cache-line bytes (0 if unknown).
    public var lineSize: Int
    /// OS indexes of the PUs (logical CPUs) that share this instance, ascending.
    public var sharedPUs: [Int]
    public var sizeSource: FigureSource
    public var lineSizeSource: FigureSource
    public var sharingSource: FigureSource

    public init(level: Int, kind: Kind, size: Int, lineSize: Int, sharedPUs: [Int],
                sizeSource: FigureSource, lineSizeSource: FigureSource? = nil, sharingSource: FigureSource? = nil) {
        self.level = level
        self.kind = kind
        self.size = size
        self.lineSize = lineSize
        self.sharedPUs = sharedPUs.sorted()
        self.sizeSource = sizeSource
        self.lineSizeSource = lineSizeSource ?? sizeSource
        self.sharingSource = sharingSource ?? sizeSource
    }

    /// `L1d`, `L1i`, `L2`, `L3`.
    public var name: String {
        switch kind {
        case .data: return "L\(level)d"
        case .instruction: return "L\(level)i"
        case .unified: return "L\(level)"
        }
    }

    /// Holds data (data or unified).
    public var holdsData: Bool { kind != .instruction }
}

/// The machine as the kernels see it: packages, NUMA nodes, cores and their PUs, every cache
/// instance, the CPU model and ISA level, and the OS. A plain value: ``current`` reads this
/// host (hwloc, filled from sysfs where hwloc reports less); tests construct their own.
public struct Topology: Sendable, Codable, Equatable {
    public var cpuModel: String
    /// The highest ISA level this CPU runs and this binary carries (``ISALevel/detected``).
    public var isa: ISALevel
    /// Kernel-relevant CPU features (``ISALevel/featureNames``).
    public var features: [String]
    public var packages: Int
    public var numaNodes: Int
    /// OS indexes of the PUs of each physical core.
    public var cores: [[Int]]
    /// Every cache instance (data, instruction and unified).
    public var caches: [CacheInfo]
    /// Memory in bytes: the larger of hwloc's NUMA total and `sysconf` (0 if unknown).
    public var memoryBytes: Int
    /// Logical CPUs in this process's affinity mask (``qaq_affinity_cpu_count``); 0 if unknown.
    /// Not part of the fingerprint: it describes the process, not the host.
    public var affinityPUs: Int
    public var os: OSInfo
    /// Source of the package, NUMA, core and PU counts.
    public var countsSource: FigureSource

    public init(cpuModel: String, isa: ISALevel, features: [String], packages: Int, numaNodes: Int,
                cores: [[Int]], caches: [CacheInfo], memoryBytes: Int = 0, affinityPUs: Int = 0,
                os: OSInfo = OSInfo(sysname: "", release: "", version: "", machine: ""),
                countsSource: FigureSource = .synthetic) {
        self.cpuModel = cpuModel
        self.isa = isa
        self.features = features
        self.packages = packages
        self.numaNodes = numaNodes
        self.cores = cores
        self.caches = caches
        self.memoryBytes = memoryBytes
        self.affinityPUs = affinityPUs
        self.os = os
        self.countsSource = countsSource
    }

    /// Number of physical cores.
    public var coreCount: Int { cores.count }
    /// Number of PUs (logical CPUs, hardware threads).
    public var puCount: Int { cores.reduce(0) { $0 + $1.count } }

    /// PUs this process may use: the affinity mask's count when known, else all PUs.
    public var usablePUs: Int { affinityPUs > 0 ? min(affinityPUs, max(puCount, 1)) : max(puCount, 1) }

    /// Physical cores this process may use: cores, capped by the affinity mask.
    public var usableCores: Int { max(1, min(max(coreCount, 1), usablePUs)) }

    /// The smallest known size of a data-holding cache instance at `level` (conservative where
    /// instances differ, e.g. hybrid cores); nil if unknown.
    public func dataCacheSize(level: Int) -> Int? {
        caches.filter { $0.level == level && $0.holdsData && $0.size > 0 }.map(\.size).min()
    }

    /// Bytes of the data cache at `level` per PU sharing it (size ÷ sharing PUs, smallest instance).
    public func dataCacheSizePerPU(level: Int) -> Int? {
        caches.filter { $0.level == level && $0.holdsData && $0.size > 0 }
            .map { $0.size / max($0.sharedPUs.count, 1) }.min()
    }

    /// The largest cache level present.
    public var deepestCacheLevel: Int { caches.filter(\.holdsData).map(\.level).max() ?? 0 }

    /// A human description, one item per line (what `qaqtune` prints).
    public var summary: String {
        var lines: [String] = []
        lines.append("CPU:      \(cpuModel.isEmpty ? "unknown" : cpuModel)")
        lines.append("ISA:      \(isa) (\(features.joined(separator: " ")))")
        lines.append("counts:   \(packages) package(s), \(numaNodes) NUMA node(s), \(coreCount) core(s), \(puCount) PU(s) [\(countsSource)]; affinity mask \(affinityPUs) PU(s)")
        if memoryBytes > 0 {
            let tenths = (memoryBytes * 10 + (1 << 29)) >> 30
            lines.append("memory:   \(tenths / 10).\(tenths % 10) GiB")
        }
        lines.append("OS:       \(os.sysname) \(os.release) \(os.machine)")
        for c in caches {
            let name = c.name + String(repeating: " ", count: max(0, 9 - c.name.count))
            lines.append("\(name) \(formatBytes(c.size)) [\(c.sizeSource)], line \(c.lineSize) B [\(c.lineSizeSource)], PUs \(formatCPUList(c.sharedPUs)) [\(c.sharingSource)]")
        }
        return lines.joined(separator: "\n")
    }
}

/// `48 KiB`, `2 MiB`, `260 MiB`.
func formatBytes(_ n: Int) -> String {
    if n >= 1 << 30 && n % (1 << 30) == 0 { return "\(n >> 30) GiB" }
    if n >= 1 << 20 && n % (1 << 20) == 0 { return "\(n >> 20) MiB" }
    if n >= 1 << 10 && n % (1 << 10) == 0 { return "\(n >> 10) KiB" }
    return "\(n) B"
}

/// `0-3,8,10-11`.
func formatCPUList(_ cpus: [Int]) -> String {
    let s = cpus.sorted()
    var parts: [String] = []
    var i = 0
    while i < s.count {
        var j = i
        while j + 1 < s.count && s[j + 1] == s[j] + 1 { j += 1 }
        parts.append(i == j ? "\(s[i])" : "\(s[i])-\(s[j])")
        i = j + 1
    }
    return parts.joined(separator: ",")
}

/// Cache order: level, then kind, then first PU.
func cacheOrder(_ a: CacheInfo, _ b: CacheInfo) -> Bool {
    (a.level, a.kind.rawValue, a.sharedPUs.first ?? -1) < (b.level, b.kind.rawValue, b.sharedPUs.first ?? -1)
}

// MARK: - Detection

extension Topology {
    /// This host, read once (hwloc, filled from sysfs where hwloc reports less).
    public static let current: Topology = detect()

    /// Reads this host. `useHwloc: false` reads sysfs only; `sysfs` may point elsewhere (tests).
    public static func detect(useHwloc: Bool = true, sysfs: SysfsReader = SysfsReader()) -> Topology {
        let fromSysfs = sysfs.read()
        var t: Topology
        if useHwloc, let h = HwlocReader.read() {
            t = h
        } else {
            t = Topology(cpuModel: "", isa: .base, features: [], packages: 0, numaNodes: 0, cores: [], caches: [],
                         countsSource: .unknown)
        }
        t = Topology.fill(t, fromSysfs: fromSysfs)
        t.cpuModel = ISALevel.cpuModel
        t.isa = ISALevel.detected
        t.features = ISALevel.featureNames
        t.affinityPUs = Int(qaq_affinity_cpu_count())
        t.os = OSInfo.current
        // hwloc's NUMA total can be below what the kernel manages (memory hot-plugged into a
        // VM outside any node's meminfo): take the larger of it and sysconf's.
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), pageSize = sysconf(Int32(_SC_PAGESIZE))
        if pages > 0 && pageSize > 0 { t.memoryBytes = max(t.memoryBytes, pages * pageSize) }
        return t
    }

    /// Completes a topology with what the kernel reports: zero or missing cache sizes, line
    /// sizes and sharing are taken from sysfs (and marked `sysfs`); cache instances hwloc did
    /// not report at all are added from sysfs; counts are taken from sysfs where hwloc had none.
    /// Figures hwloc did report are kept. Pure: tests feed it synthetic readings.
    public static func fill(_ topology: Topology, fromSysfs s: SysfsReading) -> Topology {
        var t = topology
        if t.cores.isEmpty && !s.cores.isEmpty {
            t.cores = s.cores
            t.countsSource = .sysfs
        }
        if t.packages == 0 && s.packages > 0 { t.packages = s.packages }
        if t.numaNodes == 0 && s.numaNodes > 0 { t.numaNodes = s.numaNodes }

        func overlaps(_ a: CacheInfo, _ b: CacheInfo) -> Bool {
            a.level == b.level && a.kind == b.kind && !a.sharedPUs.isEmpty && !Set(a.sharedPUs).isDisjoint(with: b.sharedPUs)
        }
        // Fill missing figures of the caches hwloc reported.
        for i in t.caches.indices {
            var c = t.caches[i]
            guard let k = s.caches.first(where: { overlaps(c, $0) }) ?? s.caches.first(where: { $0.level == c.level && $0.kind == c.kind })
            else { continue }
            if c.size <= 0 && k.size > 0 { c.size = k.size; c.sizeSource = .sysfs }
            if c.lineSize <= 0 && k.lineSize > 0 { c.lineSize = k.lineSize; c.lineSizeSource = .sysfs }
            if c.sharedPUs.isEmpty && !k.sharedPUs.isEmpty { c.sharedPUs = k.sharedPUs; c.sharingSource = .sysfs }
            t.caches[i] = c
        }
        // Add cache instances hwloc did not report (no reported instance of that level and
        // kind covers any of their PUs).
        let reported = t.caches
        for k in s.caches where !reported.contains(where: { overlaps($0, k) }) {
            t.caches.append(k)
        }
        t.caches.sort(by: cacheOrder)
        return t
    }
}

// MARK: - hwloc

/// Reads packages, NUMA nodes, cores, PUs and caches through hwloc's C API.
enum HwlocReader {
    static func read() -> Topology? {
        var handle: hwloc_topology_t?
        guard hwloc_topology_init(&handle) == 0, let topo = handle else { return nil }
        defer { hwloc_topology_destroy(topo) }
        // Instruction caches are filtered out by default; keep them (reported, not used).
        _ = hwloc_topology_set_icache_types_filter(topo, HWLOC_TYPE_FILTER_KEEP_ALL)
        guard hwloc_topology_load(topo) == 0 else { return nil }

        /// Every object of `type` (scanning all depths if hwloc says they live at several).
        func objects(_ type: hwloc_obj_type_t) -> [hwloc_obj_t] {
            let depth = hwloc_get_type_depth(topo, type)
            var depths: [Int32] = []
            if depth == -2 {  // HWLOC_TYPE_DEPTH_MULTIPLE
                depths = (0..<hwloc_topology_get_depth(topo)).filter { hwloc_get_depth_type(topo, $0) == type }
            } else if depth != -1 {  // HWLOC_TYPE_DEPTH_UNKNOWN
                depths = [depth]
            }
            var out: [hwloc_obj_t] = []
            for d in depths {
                let n = hwloc_get_nbobjs_by_depth(topo, d)
                for i in 0..<n {
                    if let o = hwloc_get_obj_by_depth(topo, d, i) { out.append(o) }
                }
            }
            return out
        }

        func pus(of obj: hwloc_obj_t) -> [Int] {
            guard let set = obj.pointee.cpuset else { return [] }
            var out: [Int] = []
            var i = hwloc_bitmap_first(set)
            while i >= 0 && out.count < 1 << 16 {
                out.append(Int(i))
                i = hwloc_bitmap_next(set, i)
            }
            return out
        }

        let packages = objects(HWLOC_OBJ_PACKAGE).count
        let numa = objects(HWLOC_OBJ_NUMANODE)
        var memory = 0
        for n in numa {
            if let attr = n.pointee.attr { memory += Int(clamping: attr.pointee.numanode.local_memory) }
        }
        var cores = objects(HWLOC_OBJ_CORE).map(pus(of:)).filter { !$0.isEmpty }
        if cores.isEmpty {
            // No core objects (some VMs): one core per PU.
            cores = objects(HWLOC_OBJ_PU).map { [Int($0.pointee.os_index)] }
        }
        cores.sort { ($0.first ?? 0) < ($1.first ?? 0) }

        let cacheTypes: [(hwloc_obj_type_t, Int)] = [
            (HWLOC_OBJ_L1CACHE, 1), (HWLOC_OBJ_L2CACHE, 2), (HWLOC_OBJ_L3CACHE, 3), (HWLOC_OBJ_L4CACHE, 4),
            (HWLOC_OBJ_L1ICACHE, 1), (HWLOC_OBJ_L2ICACHE, 2), (HWLOC_OBJ_L3ICACHE, 3),
        ]
        var caches: [CacheInfo] = []
        for (type, level) in cacheTypes {
            for o in objects(type) {
                guard let attr = o.pointee.attr else { continue }
                let a = attr.pointee.cache
                let kind: CacheInfo.Kind
                switch a.type {
                case HWLOC_OBJ_CACHE_DATA: kind = .data
                case HWLOC_OBJ_CACHE_INSTRUCTION: kind = .instruction
                default: kind = .unified
                }
                let shared = pus(of: o)
                caches.append(CacheInfo(level: level, kind: kind, size: Int(clamping: a.size), lineSize: Int(a.linesize),
                                        sharedPUs: shared,
                                        sizeSource: a.size > 0 ? .hwloc : .unknown,
                                        lineSizeSource: a.linesize > 0 ? .hwloc : .unknown,
                                        sharingSource: shared.isEmpty ? .unknown : .hwloc))
            }
        }
        caches.sort(by: cacheOrder)
        return Topology(cpuModel: "", isa: .base, features: [], packages: packages, numaNodes: numa.count,
                        cores: cores, caches: caches, memoryBytes: memory,
                        countsSource: cores.isEmpty ? .unknown : .hwloc)
    }
}

// MARK: - sysfs

/// What Linux sysfs says about caches and counts.
public struct SysfsReading: Sendable, Equatable {
    public var caches: [CacheInfo]
    public var cores: [[Int]]
    public var packages: Int
    public var numaNodes: Int

    public init(caches: [CacheInfo] = [], cores: [[Int]] = [], packages: Int = 0, numaNodes: Int = 0) {
        self.caches = caches
        self.cores = cores
        self.packages = packages
        self.numaNodes = numaNodes
    }
}

/// Reads `cpu*/cache/index*/{level,type,size,coherency_line_size,shared_cpu_list}` and
/// `cpu*/topology/{core_id,physical_package_id}` under `/sys/devices/system/cpu`, and
/// `node*` under `/sys/devices/system/node`. Offline CPUs (per `cpu/online`) are skipped.
public struct SysfsReader: Sendable {
    public var cpuRoot: String
    public var nodeRoot: String

    public init(cpuRoot: String = "/sys/devices/system/cpu", nodeRoot: String = "/sys/devices/system/node") {
        self.cpuRoot = cpuRoot
        self.nodeRoot = nodeRoot
    }

    public func read() -> SysfsReading {
        let cpus = listDirectory(cpuRoot).compactMap { name -> Int? in
            guard name.hasPrefix("cpu"), let n = Int(name.dropFirst(3)) else { return nil }
            return n
        }.sorted()
        let online = readFile("\(cpuRoot)/online").map(parseCPUList).map(Set.init)
        var caches: [CacheInfo] = []
        var seen = Set<String>()
        var coreKeys: [String: [Int]] = [:]
        var packageIDs = Set<String>()
        for cpu in cpus {
            if let online, !online.contains(cpu) { continue }
            let dir = "\(cpuRoot)/cpu\(cpu)"
            let pkg = readFile("\(dir)/topology/physical_package_id") ?? "0"
            let core = readFile("\(dir)/topology/core_id") ?? "cpu\(cpu)"
            packageIDs.insert(pkg)
            coreKeys["\(pkg)/\(core)", default: []].append(cpu)
            for index in listDirectory("\(dir)/cache").sorted() where index.hasPrefix("index") {
                let c = "\(dir)/cache/\(index)"
                guard let levelText = readFile("\(c)/level"), let level = Int(levelText) else { continue }
                let kind: CacheInfo.Kind
                switch readFile("\(c)/type")?.lowercased() {
                case "data": kind = .data
                case "instruction": kind = .instruction
                default: kind = .unified
                }
                let shared = readFile("\(c)/shared_cpu_list").map(parseCPUList) ?? [cpu]
                guard seen.insert("\(level)/\(kind)/\(shared)").inserted else { continue }
                caches.append(CacheInfo(level: level, kind: kind,
                                        size: readFile("\(c)/size").flatMap(parseSize) ?? 0,
                                        lineSize: readFile("\(c)/coherency_line_size").flatMap { Int($0) } ?? 0,
                                        sharedPUs: shared, sizeSource: .sysfs))
            }
        }
        let cores = coreKeys.values.map { $0.sorted() }.sorted { $0[0] < $1[0] }
        let nodes = listDirectory(nodeRoot).filter { $0.hasPrefix("node") && Int($0.dropFirst(4)) != nil }.count
        return SysfsReading(caches: caches.sorted(by: cacheOrder), cores: cores, packages: packageIDs.count, numaNodes: nodes)
    }
}

/// `48K` → 49152; also `2048K`, `1M`, `1G`, `512` (bytes). Nil if malformed.
public func parseSize(_ text: String) -> Int? {
    let t = trimmed(text)
    guard let last = t.last else { return nil }
    var digits = Substring(t)
    var mult = 1
    switch last {
    case "K", "k": mult = 1 << 10; digits = digits.dropLast()
    case "M", "m": mult = 1 << 20; digits = digits.dropLast()
    case "G", "g": mult = 1 << 30; digits = digits.dropLast()
    default: break
    }
    guard let n = Int(digits), n >= 0 else { return nil }
    let (r, overflow) = n.multipliedReportingOverflow(by: mult)
    return overflow ? nil : r
}

/// `0-3,8,10-11` → [0, 1, 2, 3, 8, 10, 11]. Malformed parts are skipped.
public func parseCPUList(_ text: String) -> [Int] {
    var out = Set<Int>()
    for part in trimmed(text).split(separator: ",") {
        let bounds = part.split(separator: "-", maxSplits: 1)
        if bounds.count == 2, let a = Int(bounds[0]), let b = Int(bounds[1]), a >= 0, a <= b, b - a < 1 << 16 {
            out.formUnion(a...b)
        } else if bounds.count == 1, let a = Int(bounds[0]), a >= 0 {
            out.insert(a)
        }
    }
    return out.sorted()
}

/// Without leading and trailing spaces, tabs and newlines.
func trimmed(_ s: String) -> String {
    let ws: Set<Character> = [" ", "\n", "\t", "\r"]
    var sub = Substring(s)
    while let f = sub.first, ws.contains(f) { sub = sub.dropFirst() }
    while let l = sub.last, ws.contains(l) { sub = sub.dropLast() }
    return String(sub)
}

/// Contents of a small text file, trimmed; nil if unreadable.
func readFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    while out.count < 1 << 20 {
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { break }
        out.append(contentsOf: buf[0..<n])
    }
    return trimmed(String(decoding: out, as: UTF8.self))
}

/// Entry names of a directory (without `.` and `..`); empty if unreadable.
func listDirectory(_ path: String) -> [String] {
    guard let d = opendir(path) else { return [] }
    defer { closedir(d) }
    var names: [String] = []
    while let e = readdir(d) {
        let name = withUnsafeBytes(of: e.pointee.d_name) { raw in String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) }
        if name != "." && name != ".." { names.append(name) }
    }
    return names
}

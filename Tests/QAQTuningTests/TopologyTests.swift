import Foundation
import QAQ
import QAQTuning
import Testing

@Suite("Topology")
struct TopologyTests {
    @Test("this host: hwloc reports cores, PUs and data caches; summary printed")
    func thisHost() {
        let t = Topology.current
        print("--- Topology.current ---\n\(t.summary)")
        print("fingerprint \(HostFingerprint.current.id): \(HostFingerprint.current.canonical)")
        #expect(t.coreCount >= 1)
        #expect(t.puCount >= t.coreCount)
        #expect(t.packages >= 1)
        #expect(t.numaNodes >= 1)
        #expect(t.isa == ISALevel.detected)
        #expect(t.cpuModel == ISALevel.cpuModel)
        #expect(t.usableCores >= 1 && t.usableCores <= t.coreCount)
        #if os(Linux)
        #expect(t.os.sysname == "Linux")
        #expect(t.countsSource == .hwloc)
        #expect(t.dataCacheSize(level: 1) ?? 0 > 0, "an L1 data cache size from hwloc or sysfs")
        for c in t.caches {
            #expect(c.size > 0, "\(c.name) size")
            #expect(!c.sharedPUs.isEmpty, "\(c.name) sharing")
            #expect(c.sizeSource == .hwloc || c.sizeSource == .sysfs)
        }
        #endif
    }

    @Test("sysfs-only reading agrees with hwloc on this host's cache sizes and counts")
    func sysfsAgreesWithHwloc() {
        #if os(Linux)
        let withHwloc = Topology.detect()
        let sysfsOnly = Topology.detect(useHwloc: false)
        guard !sysfsOnly.caches.isEmpty else { return }  // no /sys (unusual containers)
        #expect(sysfsOnly.countsSource == .sysfs)
        #expect(sysfsOnly.caches.allSatisfy { $0.sizeSource == .sysfs })
        func shape(_ t: Topology) -> [String] { t.caches.filter(\.holdsData).map { "\($0.name) \($0.size) \($0.sharedPUs)" } }
        #expect(shape(sysfsOnly) == shape(withHwloc))
        #expect(sysfsOnly.cores == withHwloc.cores)
        #endif
    }

    @Test("sizes and CPU lists as sysfs writes them")
    func parsers() {
        #expect(parseSize("48K") == 48 << 10)
        #expect(parseSize("266240K\n") == 266_240 << 10)
        #expect(parseSize("2M") == 2 << 20)
        #expect(parseSize("1G") == 1 << 30)
        #expect(parseSize("512") == 512)
        #expect(parseSize("") == nil)
        #expect(parseSize("K") == nil)
        #expect(parseSize("-4K") == nil)
        #expect(parseSize("99999999999999999999K") == nil)
        #expect(parseCPUList("0-3,8,10-11\n") == [0, 1, 2, 3, 8, 10, 11])
        #expect(parseCPUList("1") == [1])
        #expect(parseCPUList("") == [])
        #expect(parseCPUList("3-1,x,5") == [5])
    }

    @Test("a fake sysfs tree: caches deduplicated by sharing, cores by package/core id, offline CPUs skipped")
    func fakeSysfs() throws {
        let root = try makeTempDirectory("sysfs")
        defer { removeTree(root) }
        let cpu = root + "/cpu", node = root + "/node"
        let fm = FileManager.default
        // 4 PUs: 2 cores × 2 SMT; cpu3 offline.
        try fm.createDirectory(atPath: node + "/node0", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: cpu, withIntermediateDirectories: true)
        try writeText("0-2\n", to: cpu + "/online")
        for c in 0..<4 {
            let dir = cpu + "/cpu\(c)"
            try fm.createDirectory(atPath: dir + "/topology", withIntermediateDirectories: true)
            try writeText("0\n", to: dir + "/topology/physical_package_id")
            try writeText("\(c / 2)\n", to: dir + "/topology/core_id")
            let entries: [(String, String, String, String)] = [
                ("1", "Data", "32K", "\(c / 2 * 2)-\(c / 2 * 2 + 1)"),
                ("1", "Instruction", "32K", "\(c / 2 * 2)-\(c / 2 * 2 + 1)"),
                ("2", "Unified", "1024K", "\(c / 2 * 2)-\(c / 2 * 2 + 1)"),
                ("3", "Unified", "16M", "0-3"),
            ]
            for (i, e) in entries.enumerated() {
                let d = dir + "/cache/index\(i)"
                try fm.createDirectory(atPath: d, withIntermediateDirectories: true)
                try writeText(e.0 + "\n", to: d + "/level")
                try writeText(e.1 + "\n", to: d + "/type")
                try writeText(e.2 + "\n", to: d + "/size")
                try writeText("64\n", to: d + "/coherency_line_size")
                try writeText(e.3 + "\n", to: d + "/shared_cpu_list")
            }
        }
        let r = SysfsReader(cpuRoot: cpu, nodeRoot: node).read()
        #expect(r.cores == [[0, 1], [2]])
        #expect(r.packages == 1)
        #expect(r.numaNodes == 1)
        #expect(r.caches.filter { $0.level == 1 && $0.kind == .data }.map(\.sharedPUs) == [[0, 1], [2, 3]])
        #expect(r.caches.filter { $0.level == 2 }.allSatisfy { $0.size == 1 << 20 && $0.lineSize == 64 })
        #expect(r.caches.filter { $0.level == 3 }.map(\.size) == [16 << 20])
        #expect(r.caches.allSatisfy { $0.sizeSource == .sysfs && $0.sharingSource == .sysfs })

        // The same tree with hwloc switched off gives a full topology.
        let t = Topology.detect(useHwloc: false, sysfs: SysfsReader(cpuRoot: cpu, nodeRoot: node))
        #expect(t.coreCount == 2 && t.puCount == 3 && t.countsSource == .sysfs)
        #expect(t.dataCacheSize(level: 2) == 1 << 20)
    }

    @Test("fill: figures hwloc left at zero come from sysfs and say so; hwloc figures are kept")
    func fillFromSysfs() {
        // hwloc (as in some VMs): L1d size known, L2 size 0 and line size 0, no L3 object at all.
        let hwloc = Topology(cpuModel: "", isa: .base, features: [], packages: 1, numaNodes: 1, cores: [[0], [1]],
                             caches: [
                                 CacheInfo(level: 1, kind: .data, size: 48 << 10, lineSize: 64, sharedPUs: [0], sizeSource: .hwloc),
                                 CacheInfo(level: 1, kind: .data, size: 48 << 10, lineSize: 64, sharedPUs: [1], sizeSource: .hwloc),
                                 CacheInfo(level: 2, kind: .unified, size: 0, lineSize: 0, sharedPUs: [0], sizeSource: .unknown, sharingSource: .hwloc),
                                 CacheInfo(level: 2, kind: .unified, size: 0, lineSize: 0, sharedPUs: [1], sizeSource: .unknown, sharingSource: .hwloc),
                             ], countsSource: .hwloc)
        let sysfs = SysfsReading(caches: [
            CacheInfo(level: 1, kind: .data, size: 32 << 10, lineSize: 64, sharedPUs: [0], sizeSource: .sysfs),
            CacheInfo(level: 2, kind: .unified, size: 2 << 20, lineSize: 64, sharedPUs: [0], sizeSource: .sysfs),
            CacheInfo(level: 2, kind: .unified, size: 2 << 20, lineSize: 64, sharedPUs: [1], sizeSource: .sysfs),
            CacheInfo(level: 3, kind: .unified, size: 260 << 20, lineSize: 64, sharedPUs: [0, 1], sizeSource: .sysfs),
        ], cores: [[0], [1]], packages: 1, numaNodes: 1)
        let t = Topology.fill(hwloc, fromSysfs: sysfs)
        let l1 = t.caches.filter { $0.level == 1 }
        #expect(l1.count == 2 && l1.allSatisfy { $0.size == 48 << 10 && $0.sizeSource == .hwloc }, "hwloc's figure wins")
        let l2 = t.caches.filter { $0.level == 2 }
        #expect(l2.count == 2)
        #expect(l2.allSatisfy { $0.size == 2 << 20 && $0.sizeSource == .sysfs && $0.lineSize == 64 && $0.lineSizeSource == .sysfs })
        #expect(l2.allSatisfy { $0.sharingSource == .hwloc })
        let l3 = t.caches.filter { $0.level == 3 }
        #expect(l3.count == 1 && l3[0].size == 260 << 20 && l3[0].sizeSource == .sysfs && l3[0].sharedPUs == [0, 1])
        #expect(t.countsSource == .hwloc)

        // No counts from hwloc: sysfs supplies them.
        let empty = Topology(cpuModel: "", isa: .base, features: [], packages: 0, numaNodes: 0, cores: [], caches: [],
                             countsSource: .unknown)
        let filled = Topology.fill(empty, fromSysfs: sysfs)
        #expect(filled.cores == [[0], [1]] && filled.countsSource == .sysfs && filled.packages == 1 && filled.numaNodes == 1)
        #expect(filled.caches.count == 4)
    }

    @Test("Topology is a Codable value")
    func codable() throws {
        let t = syntheticTopology(cores: 4, smt: 2)
        let data = try JSONEncoder().encode(t)
        #expect(try JSONDecoder().decode(Topology.self, from: data) == t)
        #expect(t.coreCount == 4 && t.puCount == 8)
    }
}

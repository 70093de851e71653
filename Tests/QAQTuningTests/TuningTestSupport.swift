import Foundation
import QAQ
import QAQTuning
import Testing

/// A synthetic machine: `cores` cores of `smt` PUs each, private L1d/L2 per core, one L3 shared
/// by all PUs of a package.
func syntheticTopology(model: String = "Synthetic CPU 9000", isa: ISALevel = .v4, l1: Int = 48 << 10, l2: Int = 2 << 20,
                       l3: Int = 32 << 20, cores: Int = 2, smt: Int = 1, affinity: Int = 0,
                       l1Shared: Int = 1) -> Topology {
    let corePUs = (0..<cores).map { c in (0..<smt).map { c * smt + $0 } }
    var caches: [CacheInfo] = []
    for (i, pus) in corePUs.enumerated() {
        if i % l1Shared == 0 {
            let shared = corePUs[i..<min(i + l1Shared, corePUs.count)].flatMap { $0 }
            caches.append(CacheInfo(level: 1, kind: .data, size: l1, lineSize: 64, sharedPUs: shared, sizeSource: .synthetic))
        }
        caches.append(CacheInfo(level: 1, kind: .instruction, size: 32 << 10, lineSize: 64, sharedPUs: pus, sizeSource: .synthetic))
        caches.append(CacheInfo(level: 2, kind: .unified, size: l2, lineSize: 64, sharedPUs: pus, sizeSource: .synthetic))
    }
    if l3 > 0 {
        caches.append(CacheInfo(level: 3, kind: .unified, size: l3, lineSize: 64, sharedPUs: corePUs.flatMap { $0 }, sizeSource: .synthetic))
    }
    return Topology(cpuModel: model, isa: isa, features: ["avx2", "avx512f", "fma"], packages: 1, numaNodes: 1,
                    cores: corePUs, caches: caches, memoryBytes: 16 << 30, affinityPUs: affinity,
                    os: OSInfo(sysname: "Linux", release: "6.0-test", version: "#1", machine: "x86_64"))
}

/// `measure` settings that let a cost-model search run to its optimum: a budget of
/// `budgetSeconds` of model time, 200 evaluations and 4 passes per problem, no margin, no
/// storage search.
func exhaustiveSettings(budgetSeconds: Double) -> PlannerSettings {
    var s = PlannerSettings.forEffort(.measure)
    s.budgetSeconds = budgetSeconds
    s.maxEvaluationsPerProblem = 200
    s.maxPasses = 4
    s.margin = 0
    s.storageSearchMaxContext = nil
    return s
}

/// A fresh empty directory under the system temporary directory.
func makeTempDirectory(_ label: String = "qaqtuning") throws -> String {
    var base = NSTemporaryDirectory()
    while base.hasSuffix("/") && base.count > 1 { base.removeLast() }
    let path = base + "/\(label)-\(getpid())-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func removeTree(_ path: String) { try? FileManager.default.removeItem(atPath: path) }

func writeText(_ text: String, to path: String) throws {
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
}

func writeBytes(_ bytes: [UInt8], to path: String) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

/// The file's bytes (POSIX read: Foundation's `FileManager.contents(atPath:)` leaks a 4 KiB
/// buffer on empty files, which AddressSanitizer's leak check reports).
func readBytes(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n < 0 { return nil }
        if n == 0 { return out }
        out.append(contentsOf: buf[0..<n])
    }
}

func directoryEntries(_ path: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
}

/// A profile with unique sentinel values, so tests can edit its JSON text by string replacement.
func sampleProfile(topology: Topology = syntheticTopology()) -> Profile {
    let host = HostFingerprint(topology)
    let problem0 = Problem(headDim: 96, kvHeads: 5, gqa: 4, contextBucket: 4096, bitMix: "k4v3", elementType: .float32, threads: 2)
    let problem1 = Problem(headDim: 64, kvHeads: 3, gqa: 3, contextBucket: 1024, bitMix: "k4v4", elementType: .float16, threads: 1)
    let v0 = KernelVariant(isa: .v4, layout: "bitplane", pageTokens: 112, groupSize: 48, tile: 13, threads: 2, split: .both, pinning: .cores)
    let r0 = KernelVariant(isa: .v3, layout: "tokens-in-lanes", pageTokens: 64, groupSize: 32, tile: 11, threads: 2, split: .tokens,
                           pinning: .pus, dot: .int8)
    let v1 = KernelVariant(isa: .v4, layout: "bitplane", pageTokens: 256, groupSize: 64, tile: 7, threads: 1, split: .head, pinning: .none)
    return Profile(
        createdAt: "2026-01-02T03:04:05Z", effort: .measure, host: host,
        roofs: [
            RoofRecord(level: .L1, threads: 1, bytes: 24576, gbps: 489.25, medianGBps: 470.5, isa: .v4),
            RoofRecord(level: .DRAM, threads: 1, bytes: 268_435_456, gbps: 40.125, medianGBps: 39.0625, isa: .v4),
        ],
        plans: [
            PlanRecord(problem: problem0, chosen: MeasuredVariant(variant: v0, nsPerTokenKVHead: 3.75, gbps: 41.5),
                       runnersUp: [MeasuredVariant(variant: r0, nsPerTokenKVHead: 4.125, gbps: 37.75)]),
            PlanRecord(problem: problem1, chosen: MeasuredVariant(variant: v1)),
        ])
}

/// `text` with the single occurrence of `old` replaced, and the line (from 1) where it was.
func replacingOnce(_ text: String, _ old: String, with new: String,
                   sourceLocation: SourceLocation = #_sourceLocation) -> (text: String, line: Int) {
    let parts = text.components(separatedBy: old)
    #expect(parts.count == 2, "\(old) must occur exactly once", sourceLocation: sourceLocation)
    let line = parts[0].filter { $0 == "\n" }.count + 1
    return (parts.joined(separator: new), line)
}

/// The line (from 1) of the single occurrence of `needle`.
func lineOf(_ needle: String, in text: String, sourceLocation: SourceLocation = #_sourceLocation) -> Int {
    let parts = text.components(separatedBy: needle)
    #expect(parts.count >= 2, "\(needle) must occur", sourceLocation: sourceLocation)
    return parts[0].filter { $0 == "\n" }.count + 1
}

import QAQ
import QAQTuning
import Testing

@Suite("QAQTuning host fingerprint")
struct FingerprintTests {
    @Test("FNV-1a 64 matches the reference vectors")
    func fnvVectors() {
        #expect(fnv1a64("".utf8) == 0xcbf2_9ce4_8422_2325)
        #expect(fnv1a64("a".utf8) == 0xaf63_dc4c_8601_ec8c)
        #expect(fnv1a64("foobar".utf8) == 0x8594_4171_f739_67e8)
    }

    @Test("this host's fingerprint is stable across detections and is 16 hex digits")
    func stableOnThisHost() {
        let a = HostFingerprint(Topology.detect())
        let b = HostFingerprint(Topology.detect())
        #expect(a == b)
        #expect(a.id == HostFingerprint.current.id)
        #expect(a.id.count == 16 && a.id.allSatisfy { "0123456789abcdef".contains($0) })
        #expect(a.id == a.computedID)
        #expect(Profile.fileName(for: a) == "\(a.id).json")
    }

    @Test("the id ignores what describes the process or the moment, not the host")
    func ignoresNonHostFields() {
        let t = syntheticTopology()
        let id = HostFingerprint(t).id
        var u = t
        u.affinityPUs = 1
        u.memoryBytes = 3 << 30
        u.os = OSInfo(sysname: "Linux", release: "7.1-other", version: "#9", machine: "x86_64")
        u.countsSource = .sysfs
        u.caches = u.caches.reversed().map { c in
            var c = c
            c.sizeSource = .sysfs
            return c
        }
        u.features = t.features.reversed()
        #expect(HostFingerprint(u).id == id)
    }

    @Test("the id changes with the CPU model, ISA level, features, any cache size, and the counts")
    func changesWithHostFields() {
        let t = syntheticTopology()
        let id = HostFingerprint(t).id
        var changes: [Topology] = []
        var u = t; u.cpuModel += " v2"; changes.append(u)
        u = t; u.isa = .v3; changes.append(u)
        u = t; u.features.append("avx512vnni"); changes.append(u)
        changes.append(syntheticTopology(l1: 32 << 10))
        changes.append(syntheticTopology(l2: 1 << 20))
        changes.append(syntheticTopology(l3: 16 << 20))
        changes.append(syntheticTopology(l3: 0))
        changes.append(syntheticTopology(cores: 4))
        changes.append(syntheticTopology(cores: 1, smt: 2))
        u = t; u.packages = 2; changes.append(u)
        u = t; u.numaNodes = 2; changes.append(u)
        let ids = changes.map { HostFingerprint($0).id }
        #expect(!ids.contains(id))
        #expect(Set(ids).count == ids.count)
    }

    @Test("matching: exact, compatible (model string only), mismatch (caches, ISA, counts)")
    func matching() {
        let t = syntheticTopology()
        let f = HostFingerprint(t)
        #expect(f.match(HostFingerprint(t)) == .exact)

        var renamed = t
        renamed.cpuModel = "Synthetic CPU 9000 (KVM)"
        guard case .compatible(let d) = f.match(HostFingerprint(renamed)) else {
            Issue.record("a different model string with equal ISA, caches and counts is compatible")
            return
        }
        #expect(d.count == 1 && d[0].contains("CPU model"))

        for other in [syntheticTopology(l2: 1 << 20), syntheticTopology(isa: .v3), syntheticTopology(cores: 4),
                      syntheticTopology(model: "Other", l1: 32 << 10)] {
            guard case .mismatch(let d) = f.match(HostFingerprint(other)) else {
                Issue.record("\(other.cpuModel) should not match")
                continue
            }
            #expect(!d.isEmpty)
        }
        if case .mismatch(let d) = f.match(HostFingerprint(syntheticTopology(l2: 1 << 20))) {
            #expect(d == ["caches: profile L1d=49152/64/1x2 L2=2097152/64/1x2 L3=33554432/64/2x1, this host L1d=49152/64/1x2 L2=1048576/64/1x2 L3=33554432/64/2x1"])
        }
    }

    @Test("the canonical string lists the hashed fields")
    func canonical() {
        let f = HostFingerprint(syntheticTopology())
        #expect(f.canonical == "qaq-host-v1|model=Synthetic CPU 9000|isa=v4|features=avx2,avx512f,fma|L1d=49152/64/1x2|L2=2097152/64/1x2|L3=33554432/64/2x1|packages=1|numa=1|cores=2|pus=2")
        #expect(f.caches.map(\.source) == [.synthetic, .synthetic, .synthetic])
    }
}

import QAQ
import QAQTuning
import Testing

@Suite("QAQTuning runtime: engines load a profile once")
struct RuntimeTests {
    static let problem0 = sampleProfile().plans[0].problem

    func written(_ profile: Profile, _ body: (String) throws -> Void) throws {
        let dir = try makeTempDirectory("runtime")
        defer { removeTree(dir) }
        let path = dir + "/" + Profile.fileName(for: profile.host)
        try profile.write(to: path)
        let before = readBytes(path)
        try body(path)
        #expect(readBytes(path) == before, "loading never rewrites the profile")
    }

    @Test("exact host: the profile's plans are used, no note, no warning")
    func exact() throws {
        let t = syntheticTopology()
        try written(sampleProfile(topology: t)) { path in
            let rt = try QAQRuntime(profile: path, topology: t, isa: .v4)
            #expect(rt.source == .profile(path: path, match: .exact))
            #expect(rt.note == nil && rt.warning == nil)
            let plan = rt.plan(for: Self.problem0)
            #expect(plan.origin == .profile)
            #expect(plan.variant == sampleProfile().plans[0].chosen.variant)
            #expect(plan.measured?.nsPerTokenKVHead == 3.75)
        }
    }

    @Test("compatible host (another model string, same ISA and caches): used, with one note")
    func compatible() throws {
        var here = syntheticTopology()
        here.cpuModel = "Synthetic CPU 9000 rev B"
        try written(sampleProfile(topology: syntheticTopology())) { path in
            let rt = try QAQRuntime(profile: path, topology: here, isa: .v4)
            guard case .profile(_, .compatible(let d)) = rt.source else { Issue.record("expected compatible, got \(rt.source)"); return }
            #expect(d.count == 1)
            #expect(rt.profile != nil && rt.warning == nil)
            #expect(rt.note?.contains("compatible host") == true)
            #expect(rt.plan(for: Self.problem0).origin == .profile)
        }
    }

    @Test("another host: estimate-level defaults and exactly one clear warning")
    func anotherHost() throws {
        let here = syntheticTopology(l2: 1 << 20, cores: 4)
        try written(sampleProfile(topology: syntheticTopology())) { path in
            let rt = try QAQRuntime(profile: path, topology: here, isa: .v4)
            #expect(rt.source == .estimate && rt.profile == nil && rt.note == nil)
            let w = try #require(rt.warning)
            #expect(w.contains("another host") && w.contains("L2=1048576") && w.contains("cores: profile 2, this host 4"))
            #expect(w.contains(HostFingerprint(here).id))
            #expect(!w.contains("\n"), "one line")
            let plan = rt.plan(for: Self.problem0)
            #expect(plan.origin == .estimate)
            #expect(plan.variant == Estimate.variant(for: Self.problem0, topology: here))
        }
    }

    @Test("a malformed profile throws from the strict loader and falls back in the lenient one")
    func malformed() throws {
        let dir = try makeTempDirectory("runtime")
        defer { removeTree(dir) }
        let path = dir + "/p.json"
        try writeText("{\"schemaVersion\": 1, \"effort\": ", to: path)
        #expect(throws: ProfileError.truncated(path: path, line: 1, column: 32)) {
            try QAQRuntime(profile: path, topology: syntheticTopology(), isa: .v4)
        }
        let rt = QAQRuntime.loadingOrDefaults(profile: path, topology: syntheticTopology(), isa: .v4)
        #expect(rt.source == .estimate)
        #expect(rt.warning?.contains("truncated") == true)
    }

    @Test("plan lookup: nearest context bucket of the same shape, else estimate; threads capped by the affinity mask")
    func lookup() throws {
        let t = syntheticTopology()
        let profile = sampleProfile(topology: t)
        let rt = QAQRuntime(profile: profile, topology: t, isa: .v4)

        var shorter = Self.problem0
        shorter.contextBucket = 1000
        #expect(rt.plan(for: shorter).origin == .profileNearest(contextBucket: 4096))
        var longer = Self.problem0
        longer.contextBucket = 100_000
        #expect(rt.plan(for: longer).origin == .profileNearest(contextBucket: 4096))
        var otherShape = Self.problem0
        otherShape.headDim = 128
        #expect(rt.plan(for: otherShape).origin == .estimate)

        var oneCPU = t
        oneCPU.affinityPUs = 1
        let capped = QAQRuntime(profile: profile, topology: oneCPU, isa: .v4).plan(for: Self.problem0)
        #expect(capped.origin == .profile)
        #expect(capped.variant.threads == 1 && capped.variant.pinning == .none && capped.variant.split == .head)
    }

    @Test("variants above the usable ISA level (QAQ_ISA) are not used")
    func isaCap() {
        let t = syntheticTopology()
        let rt = QAQRuntime(profile: sampleProfile(topology: t), topology: t, isa: .v3)
        let plan = rt.plan(for: Self.problem0)
        #expect(plan.origin == .estimate)
        #expect(plan.variant.isa == .v3 && plan.variant.tile == 8)
        #expect(QAQRuntime(estimateFor: t, isa: .base).plan(for: Self.problem0).variant.isa == .base)
    }

    @Test("estimate-only runtime: no profile, no warning")
    func estimateOnly() {
        let rt = QAQRuntime(estimateFor: syntheticTopology(), isa: .v4)
        #expect(rt.source == .estimate && rt.warning == nil && rt.note == nil)
        #expect(rt.plan(for: Self.problem0).origin == .estimate)
    }
}

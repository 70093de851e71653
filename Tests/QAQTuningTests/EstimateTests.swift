import QAQ
import QAQTuning
import Testing

@Suite("QAQTuning estimate-level defaults")
struct EstimateTests {
    @Test("bytes per token·KV-head: K+V codes at 4 bits plus fp16 lo/step per group")
    func bytesPerToken() {
        #expect(Estimate.bytesPerToken(headDim: 128, groupSize: 32) == 160)
        #expect(Estimate.bytesPerToken(headDim: 64, groupSize: 32) == 80)
        #expect(Estimate.bytesPerToken(headDim: 80, groupSize: 80) == 88)
        #expect(Estimate.groupSize(headDim: 128) == 32)
        #expect(Estimate.groupSize(headDim: 80) == 80)
    }

    @Test("a page of K+V fits in half the L1d share of a PU, and is the largest power of two that does",
          arguments: [4 << 10, 16 << 10, 32 << 10, 48 << 10, 64 << 10, 128 << 10])
    func pagesRespectL1(l1: Int) {
        for shared in [1, 2] {
            let t = syntheticTopology(l1: l1, cores: 4, l1Shared: shared)
            let budget = l1 / shared / 2
            #expect(Estimate.pageBudget(t) == budget)
            for d in [64, 80, 96, 128, 256] {
                let p = Estimate.variant(for: Problem(headDim: d, kvHeads: 8, gqa: 4, contextBucket: 4096, threads: 4), topology: t)
                let perToken = Estimate.bytesPerToken(headDim: d, groupSize: p.groupSize)
                #expect(p.pageTokens & (p.pageTokens - 1) == 0, "power of two")
                #expect(p.pageTokens >= Estimate.minPageTokens && p.pageTokens <= Estimate.maxPageTokens)
                #expect(p.pageTokens * perToken <= budget || p.pageTokens == Estimate.minPageTokens,
                        "D=\(d) L1d=\(l1)/\(shared): \(p.pageTokens) tokens × \(perToken) B > \(budget) B")
                #expect(p.pageTokens == Estimate.maxPageTokens || 2 * p.pageTokens * perToken > budget, "largest that fits")
                #expect(p.tile <= p.pageTokens)
            }
        }
    }

    @Test("without an L1d size the page budget is an eighth of the L2 share; without either, 16 KiB")
    func pagesWithoutL1() {
        var t = syntheticTopology(l1: 48 << 10, l2: 1 << 20)
        t.caches = t.caches.map { c in
            var c = c
            if c.level == 1 { c.size = 0 }
            return c
        }
        #expect(Estimate.pageBudget(t) == (1 << 20) / 8)
        t.caches = []
        #expect(Estimate.pageBudget(t) == Estimate.fallbackPageBudget)
        let p = Estimate.pageTokens(headDim: 128, groupSize: 32, topology: t)
        #expect(p * 160 <= Estimate.fallbackPageBudget)
    }

    @Test("threads: physical cores, capped by the affinity mask, the problem and the work")
    func threads() {
        let big = Problem(headDim: 128, kvHeads: 8, gqa: 4, contextBucket: 8192, threads: 64)
        #expect(Estimate.threads(for: big, topology: syntheticTopology(cores: 4)) == 4)
        #expect(Estimate.threads(for: big, topology: syntheticTopology(cores: 4, smt: 2)) == 4, "cores, not PUs")
        #expect(Estimate.threads(for: big, topology: syntheticTopology(cores: 4, affinity: 2)) == 2, "affinity mask")
        #expect(Estimate.threads(for: big, topology: syntheticTopology(cores: 4, smt: 2, affinity: 3)) == 3)
        var one = big
        one.threads = 1
        #expect(Estimate.threads(for: one, topology: syntheticTopology(cores: 4)) == 1, "the problem allows 1")
        let tiny = Problem(headDim: 64, kvHeads: 1, gqa: 1, contextBucket: 256, threads: 8)
        #expect(Estimate.threads(for: tiny, topology: syntheticTopology(cores: 4)) == 1, "20 KiB of K+V is not worth a fork")
    }

    @Test("absurd problems do not trap")
    func absurdProblems() {
        let t = syntheticTopology(cores: 4)
        let huge = Problem(headDim: .max, kvHeads: .max, gqa: .max, contextBucket: .max, threads: .max)
        let v = Estimate.variant(for: huge, topology: t)
        #expect(v.threads == 4 && v.pageTokens == Estimate.minPageTokens)
        let zero = Problem(headDim: 0, kvHeads: 0, gqa: 0, contextBucket: 0, threads: 0)
        let w = Estimate.variant(for: zero, topology: t)
        #expect(w.threads == 1 && w.pageTokens >= Estimate.minPageTokens)
    }

    @Test("split: by head when heads divide among threads, both when heads outnumber them unevenly, else tokens")
    func split() {
        #expect(Estimate.split(kvHeads: 8, threads: 2) == .head)
        #expect(Estimate.split(kvHeads: 3, threads: 2) == .both)
        #expect(Estimate.split(kvHeads: 1, threads: 2) == .tokens)
        #expect(Estimate.split(kvHeads: 3, threads: 1) == .head)
        let t = syntheticTopology(cores: 2)
        let v = Estimate.variant(for: Problem(headDim: 64, kvHeads: 3, gqa: 3, contextBucket: 4096, threads: 2), topology: t)
        #expect(v.threads == 2 && v.split == .both && v.pinning == .cores && v.isa == .v4 && v.tile == 16)
        let w = Estimate.variant(for: Problem(headDim: 64, kvHeads: 3, gqa: 3, contextBucket: 4096, threads: 1), topology: t)
        #expect(w.threads == 1 && w.split == .head && w.pinning == .none)
    }

    @Test("read-roof buffers sit in their level: L1 < L1d, L1d < L2 buffer ≤ L2, L2 < L3 buffer ≤ L3, DRAM > L3")
    func roofSizes() {
        for t in [syntheticTopology(), syntheticTopology(l1: 32 << 10, l2: 1 << 20, l3: 32 << 20),
                  syntheticTopology(l1: 48 << 10, l2: 2 << 20, l3: 260 << 20)] {
            let s = Dictionary(uniqueKeysWithValues: RoofProbe.sizes(for: t).map { ($0.level, $0.bytes) })
            let l1 = t.dataCacheSize(level: 1)!, l2 = t.dataCacheSize(level: 2)!, l3 = t.dataCacheSize(level: 3)!
            #expect(s[.L1]! <= l1)
            #expect(s[.L2]! > l1 && s[.L2]! <= l2)
            #expect(s[.L3]! > l2 && s[.L3]! <= l3)
            #expect(s[.DRAM]! > l3 || s[.DRAM]! == 1 << 30)
        }
        let noL3 = RoofProbe.sizes(for: syntheticTopology(l3: 0))
        #expect(noL3.map(\.level) == [.L1, .L2, .DRAM])
    }

    @Test("measuring roofs is optional and quick at L1")
    func measureL1() {
        let r = RoofProbe.measure(topology: Topology.current, levels: [.L1], repetitions: 1, minSeconds: 0.002)
        #expect(r.count == 1)
        #expect(r[0].level == .L1 && r[0].threads == 1 && r[0].gbps > 0)
    }

    @Test("an estimate profile holds one plan per distinct problem, no timings, and validates")
    func estimateProfile() throws {
        let t = syntheticTopology()
        let problems = [Problem(headDim: 64, kvHeads: 3, gqa: 3, contextBucket: 2048, threads: 2),
                        Problem(headDim: 128, kvHeads: 8, gqa: 4, contextBucket: 4096, threads: 2)]
        let p = Estimate.profile(for: problems + problems, topology: t)
        #expect(p.effort == .estimate && p.plans.count == 2)
        #expect(p.plans.allSatisfy { $0.chosen.nsPerTokenKVHead == nil && $0.runnersUp.isEmpty })
        #expect(p.validationIssue() == nil)
        let back = try Profile.decode(p.encoded())
        #expect(back == p)
    }
}

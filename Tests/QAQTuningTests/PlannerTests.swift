import Foundation
import QAQ
import QAQTuning
import Testing

/// A timer whose costs are known by construction, advancing a fake clock by `secondsPerTiming`
/// per variant timed (no real timing anywhere).
final class CostModelTimer: VariantTimer, @unchecked Sendable {
    let cost: (KernelVariant, Problem) -> Double?
    let secondsPerTiming: Double
    var now = 0.0
    var timed: [KernelVariant] = []
    var prepared: [Problem] = []

    init(secondsPerTiming: Double = 0.1, cost: @escaping (KernelVariant, Problem) -> Double?) {
        self.cost = cost
        self.secondsPerTiming = secondsPerTiming
    }

    func prepare(_ problem: Problem) throws { prepared.append(problem) }
    func measure(_ variant: KernelVariant, problem: Problem) -> MeasuredVariant? {
        now += secondsPerTiming
        timed.append(variant)
        guard let ns = cost(variant, problem) else { return nil }
        return MeasuredVariant(variant: variant, nsPerTokenKVHead: ns, gbps: 100 / ns, minNsPerTokenKVHead: ns, samples: 5,
                               rejectedSamples: 0, noisy: false, foreignShare: 0)
    }
    func finish() {}
}

/// A smooth cost with a unique optimum: 2 threads, split tokens, chunk 256, pinned to cores,
/// page 64, group 64 — each knob adds a penalty when it differs.
func knownCost(_ v: KernelVariant, _ p: Problem) -> Double? {
    var c = 10.0
    c *= v.threads == 2 ? 1 : 1.8
    if v.threads == 2 {
        c *= [Split.tokens: 1.0, .both: 1.1, .head: 1.3][v.split]!
        c *= v.split == .head ? 1 : (v.chunkTokens == 256 ? 1 : 1.15)
        c *= v.pinning == .cores ? 1 : 1.12
    }
    c *= v.pageTokens == 64 ? 1 : 1.2
    c *= v.groupSize == 64 ? 1 : 1.25
    return c
}

let plannerProblem = Problem(headDim: 128, kvHeads: 8, gqa: 4, contextBucket: 8192, threads: 2)

func admitAll() -> QualityGate { QualityGate(budget: 1) { _, _, _ in 0.01 } }

@Suite("Planner")
struct PlannerTests {
    let topology = syntheticTopology(cores: 2)

    @Test("coordinate descent finds the fastest variant of a catalogue with known costs")
    func searchFindsFastest() throws {
        let start = Estimate.variant(for: plannerProblem, topology: topology)
        let catalogue = Catalogue.forProblem(plannerProblem, effort: .measure, start: start, topology: topology, groupSizes: [32, 64])
        // The brute-force optimum of the catalogue.
        let best = catalogue.allVariants.min { knownCost($0, plannerProblem)! < knownCost($1, plannerProblem)! }!
        var clock = 0.0
        let outcome = try #require(Search.run(start: start, axes: catalogue.axes, budget: SearchBudget(maxEvaluations: 100, deadline: 1e9, maxPasses: 4),
                                              margin: 0, clock: { clock }) { v in
            clock += 1
            return MeasuredVariant(variant: v, nsPerTokenKVHead: knownCost(v, plannerProblem))
        })
        #expect(outcome.chosen.variant == best)
        #expect(outcome.chosen.nsPerTokenKVHead == knownCost(best, plannerProblem))
        #expect(outcome.evaluations < catalogue.allVariants.count, "descent times fewer variants than the cross product")
        #expect(outcome.start.variant == Catalogue.canonical(start))
        let costs = outcome.others.compactMap(\.nsPerTokenKVHead)
        #expect(costs == costs.sorted(), "runners-up fastest first")

        // Exhaustive over the catalogue finds the same one.
        let all = try #require(Search.run(start: start, axes: [], exhaustive: catalogue.allVariants,
                                          budget: SearchBudget(maxEvaluations: 10_000, deadline: 1e9, maxPasses: 1), margin: 0,
                                          clock: { 0 }) { MeasuredVariant(variant: $0, nsPerTokenKVHead: knownCost($0, plannerProblem)) })
        #expect(all.chosen.variant == best)
    }

    @Test("the start is kept unless a variant beats it by more than the margin; failing variants are skipped")
    func marginKeepsStart() throws {
        let start = Catalogue.canonical(Estimate.variant(for: plannerProblem, topology: topology))
        let catalogue = Catalogue.forProblem(plannerProblem, effort: .measure, start: start, topology: topology, groupSizes: [32, 64])
        // Everything else is 1 % faster (within a 3 % margin) or cannot run.
        let outcome = try #require(Search.run(start: start, axes: catalogue.axes, budget: SearchBudget(maxEvaluations: 100, deadline: 1e9, maxPasses: 3),
                                              margin: 0.03, clock: { 0 }) { v in
            if v.pageTokens != start.pageTokens { return nil }
            return MeasuredVariant(variant: v, nsPerTokenKVHead: v == start ? 10 : 9.9)
        })
        #expect(outcome.chosen.variant == start)
        #expect(outcome.others.allSatisfy { $0.variant.pageTokens == start.pageTokens })
    }

    @Test("the planner picks the known optimum per problem and records the default's speed and the speed-up")
    func plannerRecords() throws {
        let timer = CostModelTimer(cost: knownCost)
        let settings = exhaustiveSettings(budgetSeconds: 1000)
        let planner = Planner(topology: topology, settings: settings, quality: admitAll(), clock: { timer.now })
        let problems = [plannerProblem, Problem(headDim: 128, kvHeads: 8, gqa: 4, contextBucket: 1024, threads: 2)]
        var events: [PlannerEvent.Kind] = []
        let plans = planner.plan(problems + [plannerProblem], timer: timer) { events.append($0.kind) }
        #expect(plans.map(\.problem) == problems, "duplicates dropped, input order kept")
        #expect(timer.prepared.map(\.contextBucket) == [1024, 8192], "contexts visited smallest first")
        for plan in plans {
            #expect(plan.chosen.variant.threads == 2 && plan.chosen.variant.split == .tokens && plan.chosen.variant.chunkTokens == 256)
            #expect(plan.chosen.variant.pageTokens == 64 && plan.chosen.variant.groupSize == 64 && plan.chosen.variant.pinning == .cores)
            let d = try #require(plan.estimateDefault)
            #expect(d.variant == Catalogue.canonical(Estimate.variant(for: plan.problem, topology: topology)))
            let speedup = try #require(plan.speedup)
            #expect(abs(speedup - d.nsPerTokenKVHead! / plan.chosen.nsPerTokenKVHead!) < 1e-12)
            #expect(speedup > 1)
            #expect(plan.runnersUp.count == settings.runnersUp)
            #expect(plan.quality?.map(\.groupSize) == [32, 64, 128])
        }
        #expect(events.filter { $0 == .finished }.count == 2)
        #expect(events.first == .started)
    }

    @Test("effort budgets: evaluations per problem and the time budget bound the search")
    func budgets() throws {
        let problems = [1024, 4096, 16384].map { Problem(headDim: 128, kvHeads: 8, gqa: 4, contextBucket: $0, threads: 2) }
        // Evaluation cap.
        do {
            let timer = CostModelTimer(cost: knownCost)
            var settings = PlannerSettings.forEffort(.measure)
            settings.budgetSeconds = 1e6
            settings.maxEvaluationsPerProblem = 4
            settings.confirmRounds = 0
            let plans = Planner(topology: topology, settings: settings, quality: admitAll(), clock: { timer.now }).plan(problems, timer: timer)
            #expect(plans.count == 3)
            #expect(timer.timed.count <= 3 * 4)
        }
        // Time budget: 10 fake seconds at 1 s per timing: every problem still gets its default
        // timed, and the total stays near the budget.
        do {
            let timer = CostModelTimer(secondsPerTiming: 1, cost: knownCost)
            var settings = PlannerSettings.forEffort(.measure)
            settings.budgetSeconds = 10
            settings.confirmRounds = 0
            let plans = Planner(topology: topology, settings: settings, quality: admitAll(), clock: { timer.now }).plan(problems, timer: timer)
            #expect(plans.count == 3)
            #expect(plans.allSatisfy { $0.estimateDefault?.nsPerTokenKVHead != nil })
            #expect(timer.now <= 10 + Double(problems.count), "at most one timing per problem past the deadline (the default)")
        }
        // The patient effort searches at least as much as measure, estimate times nothing.
        #expect(PlannerSettings.forEffort(.patient).maxEvaluationsPerProblem > PlannerSettings.forEffort(.measure).maxEvaluationsPerProblem)
        #expect(PlannerSettings.forEffort(.patient).budgetSeconds > PlannerSettings.forEffort(.measure).budgetSeconds)
        #expect(PlannerSettings.forEffort(.measure).budgetSeconds <= 60)
        let timer = CostModelTimer(cost: knownCost)
        let plans = Planner(topology: topology, settings: .forEffort(.estimate), quality: admitAll(), clock: { timer.now }).plan(problems, timer: timer)
        #expect(timer.timed.isEmpty)
        #expect(plans.map(\.chosen.variant) == problems.map { Estimate.variant(for: $0, topology: topology) })
    }

    @Test("the quality budget rejects a group size whose error exceeds it, whatever its speed")
    func qualityBudget() throws {
        // Group 128 is by far the fastest but its error is over the budget.
        let gate = QualityGate(budget: 0.1) { _, _, g in [32: 0.05, 64: 0.09, 128: 0.2][g] }
        let judged = gate.judge(headDim: 128, gqa: 4)
        #expect(judged == [GroupQuality(groupSize: 32, attentionRelError: 0.05, admitted: true),
                           GroupQuality(groupSize: 64, attentionRelError: 0.09, admitted: true),
                           GroupQuality(groupSize: 128, attentionRelError: 0.2, admitted: false)])
        let timer = CostModelTimer { v, _ in v.groupSize == 128 ? 1 : (v.groupSize == 64 ? 5 : 6) }
        var settings = PlannerSettings.forEffort(.measure)
        settings.budgetSeconds = 1e6
        let plans = Planner(topology: topology, settings: settings, quality: gate, clock: { timer.now }).plan([plannerProblem], timer: timer)
        #expect(plans[0].chosen.variant.groupSize == 64)
        #expect(!timer.timed.contains { $0.groupSize == 128 }, "a rejected group size is never timed")
        #expect(plans[0].quality == judged)
        // A budget that rejects the default's group moves the search's start, not the baseline.
        let strict = QualityGate(budget: 0.095) { _, _, g in [32: 0.1, 64: 0.09, 128: 0.2][g] }
        let t2 = CostModelTimer { _, _ in 3 }
        let p2 = Planner(topology: topology, settings: settings, quality: strict, clock: { t2.now }).plan([plannerProblem], timer: t2)
        #expect(p2[0].chosen.variant.groupSize == 64)
        #expect(p2[0].estimateDefault?.variant.groupSize == 32)
    }

    @Test("catalogue: canonical variants, pinning to CPUs, storage hints")
    func catalogue() throws {
        let smt = syntheticTopology(cores: 2, smt: 2)
        let start = Estimate.variant(for: plannerProblem, topology: smt)
        let c = Catalogue.forProblem(plannerProblem, effort: .measure, start: start, topology: smt, groupSizes: [32])
        #expect(c.pinnings == [.none, .cores, .pus])
        #expect(Catalogue.forProblem(plannerProblem, effort: .measure, start: start, topology: topology, groupSizes: [32]).pinnings == [.none, .cores])
        #expect(c.contains(start))
        #expect(Set(c.allVariants).count == c.allVariants.count)
        #expect(c.allVariants.allSatisfy { $0.threads > 1 || ($0.split == .head && $0.pinning == .none) })
        var v = start
        v.threads = 2
        v.pinning = .cores
        #expect(v.cpus(topology: smt) == [0, 2])
        v.pinning = .pus
        #expect(v.cpus(topology: smt) == [0, 1, 2, 3])
        v.pinning = .none
        #expect(v.cpus(topology: smt).isEmpty)
        v.pinning = .cores
        v.split = .tokens
        v.chunkTokens = 256
        let plan = v.attentionPlan(topology: smt)
        #expect(plan.threads == 2 && plan.split == .tokens && plan.cpus == [0, 2] && plan.chunkTokens == 256)
        let hinted = Catalogue.forProblem(plannerProblem, effort: .measure, start: start, topology: smt, groupSizes: [32, 64],
                                          storageHints: [KernelVariant(isa: .v4, layout: "bitplane", pageTokens: 256, groupSize: 64, tile: 16,
                                                                       threads: 1, split: .head, pinning: .none)])
        #expect(start.pageTokens == 64)
        #expect(hinted.pageTokens == [64, 256])
        #expect(hinted.groupSizes == [32, 64])
        #expect(Catalogue.groupSizes(headDim: 64) == [32, 64])
        #expect(Catalogue.groupSizes(headDim: 80) == [80])
        #expect(Catalogue.groupSizes(headDim: 256) == [32, 64, 128, 256])
    }

    @Test("timed profiles with runners-up, the default's speed and quality round-trip; schema 1 still loads")
    func roundTrip() throws {
        let timer = CostModelTimer(cost: knownCost)
        var settings = PlannerSettings.forEffort(.measure)
        settings.budgetSeconds = 1e6
        let plans = Planner(topology: topology, settings: settings, quality: admitAll(), clock: { timer.now })
            .plan([plannerProblem, Problem(headDim: 64, kvHeads: 3, gqa: 3, contextBucket: 1024, threads: 2)], timer: timer)
        let profile = Profile(createdAt: "2026-01-02T03:04:05Z", effort: .measure, host: HostFingerprint(topology), plans: plans,
                              qualityBudget: 0.18, measureSeconds: 12.5)
        #expect(plans.allSatisfy { !$0.runnersUp.isEmpty })
        let decoded = try Profile.decode(try profile.encoded())
        #expect(decoded == profile)
        let text = String(decoding: try profile.encoded(), as: UTF8.self)
        #expect(text.contains("\"chunkTokens\" : 256"))
        #expect(text.contains("\"estimateDefault\" : {"))
        #expect(text.contains("\"schemaVersion\" : 3"))
        #expect(text.contains("\"dot\" : \"fp32\""))

        // A schema-1 file (no chunkTokens, no dot, no measurement fields) loads with the defaults.
        var old = String(decoding: try sampleProfile(topology: topology).encoded(), as: UTF8.self)
        old = old.replacingOccurrences(of: "\"schemaVersion\" : 3", with: "\"schemaVersion\" : 1")
        old = old.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.contains("\"chunkTokens\"") && !$0.contains("\"dot\"") }.joined(separator: "\n")
        let v1 = try Profile.decode(Array(old.utf8))
        #expect(v1.schemaVersion == 1)
        #expect(v1.plans[0].chosen.variant.chunkTokens == KernelVariant.defaultChunkTokens)
        #expect(v1.plans[0].estimateDefault == nil)
        #expect(v1.plans.allSatisfy { ([$0.chosen] + $0.runnersUp).allSatisfy { $0.variant.dot == .fp32 } })

        // New fields are checked like the old ones.
        let bad = text.replacingOccurrences(of: "\"chunkTokens\" : 256", with: "\"chunkTokens\" : 0")
        #expect(throws: ProfileError.self) { try Profile.decode(Array(bad.utf8)) }
        do {
            _ = try Profile.decode(Array(bad.utf8))
        } catch {
            #expect(error.field?.hasSuffix("variant.chunkTokens") == true)
            #expect(error.line != nil)
        }
        let badType = text.replacingOccurrences(of: "\"noisy\" : false", with: "\"noisy\" : \"no\"")
        do {
            _ = try Profile.decode(Array(badType.utf8))
            Issue.record("a string for noisy must be refused")
        } catch {
            guard case .wrongType = error else { Issue.record("expected wrongType, got \(error)"); return }
        }
    }
}

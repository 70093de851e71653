import Foundation
import QAQ
import QAQTuning
import Testing

/// The synthetic machine with AVX-512 VNNI (int8 dot products) at level v4.
func vnniTopology(cores: Int = 2) -> Topology {
    var t = syntheticTopology(cores: cores)
    t.features.append("avx512vnni")
    return t
}

/// ``knownCost`` with int8 scores 30 % cheaper than fp32 (the optimum of ``knownCost`` moves to
/// int8 wherever it is offered).
func int8Cost(_ v: KernelVariant, _ p: Problem) -> Double? {
    knownCost(v, p).map { $0 * (v.dot == .int8 ? 0.7 : 1) }
}

/// fp32 errors of the default budget's calibration (D = 128), int8 errors `int8Factor` × those.
func int8Gate(int8Factor: Double, budget: Double = 0.18, fp32: [Int: Double] = [32: 0.131, 64: 0.137, 128: 0.195]) -> QualityGate {
    QualityGate(budget: budget, error: { _, _, g in fp32[g] }, int8Error: { _, _, g in fp32[g].map { $0 * int8Factor } })
}

@Suite("Planner: fp32 or int8 scores")
struct IntegerDotPlannerTests {
    func settings() -> PlannerSettings { exhaustiveSettings(budgetSeconds: 1e6) }

    @Test("the gate's int8 rule: within the budget and at most 5 % above the fp32 error, per admitted group size")
    func gateRule() {
        let judged = int8Gate(int8Factor: 1.04).judge(headDim: 128, gqa: 4, integerDot: true)
        #expect(judged.map(\.groupSize) == [32, 64, 128])
        #expect(judged.map(\.admitted) == [true, true, false])
        #expect(judged.map(\.int8Admitted) == [true, true, nil], "int8 is judged only where fp32 is admitted")
        #expect(abs(judged[0].int8AttentionRelError! - 0.131 * 1.04) < 1e-12)
        #expect(judged[2].int8AttentionRelError == nil)

        // 6 % above fp32: rejected although within the budget.
        #expect(int8Gate(int8Factor: 1.06).judge(headDim: 128, gqa: 4, integerDot: true).map(\.int8Admitted) == [false, false, nil])
        // Within 5 % but over the budget: rejected at G = 64 (0.137 · 1.04 > 0.14), admitted at G = 32.
        let tight = int8Gate(int8Factor: 1.04, budget: 0.14).judge(headDim: 128, gqa: 4, integerDot: true)
        #expect(tight.map(\.admitted) == [true, true, false])
        #expect(tight.map(\.int8Admitted) == [true, false, nil])
        // Not measurable, or no int8 judge at all: not admitted / not judged.
        let unmeasurable = QualityGate(budget: 0.18, error: { _, _, _ in 0.1 }, int8Error: { _, _, _ in nil })
        #expect(unmeasurable.judge(headDim: 128, gqa: 4, integerDot: true).allSatisfy { $0.int8Admitted == false && $0.int8AttentionRelError == nil })
        let fp32Only = QualityGate(budget: 0.18) { _, _, _ in 0.1 }
        #expect(fp32Only.judge(headDim: 128, gqa: 4, integerDot: true).allSatisfy { $0.int8Admitted == false })
        // Without integerDot nothing about int8 is recorded (the pre-int8 entries).
        #expect(int8Gate(int8Factor: 1).judge(headDim: 128, gqa: 4).allSatisfy { $0.int8Admitted == nil && $0.int8AttentionRelError == nil })
        #expect(int8Gate(int8Factor: 1).admitsInt8(fp32: 0.1, int8: 0.1049))
        #expect(!int8Gate(int8Factor: 1).admitsInt8(fp32: 0.1, int8: 0.1051))
        #expect(!int8Gate(int8Factor: 1).admitsInt8(fp32: 0.1, int8: .nan))
    }

    @Test("catalogue: the dot axis only on v4 with VNNI, D = 128, measure/patient, at the group sizes int8 was admitted at")
    func catalogue() throws {
        let t = vnniTopology()
        let start = Estimate.variant(for: plannerProblem, topology: t)
        #expect(start.dot == .fp32, "the estimate-level default is fp32")
        let c = Catalogue.forProblem(plannerProblem, effort: .measure, start: start, topology: t, groupSizes: [32, 64], int8GroupSizes: [32])
        #expect(c.dots == [.fp32, .int8] && c.int8GroupSizes == [32])
        #expect(c.axes.map(\.name).contains("dot"))
        var v = Catalogue.canonical(start)
        v.groupSize = 32
        v.dot = .int8
        #expect(c.contains(v))
        var v64 = v
        v64.groupSize = 64
        #expect(!c.contains(v64), "int8 is not admitted at G = 64")
        let v64Int8 = v64
        v64.dot = .fp32
        #expect(c.contains(v64))
        let all = c.allVariants
        #expect(all.contains { $0.dot == .int8 })
        #expect(all.allSatisfy { $0.dot == .fp32 || $0.groupSize == 32 })
        #expect(all.filter { $0.dot == .int8 }.count == all.filter { $0.dot == .fp32 && $0.groupSize == 32 }.count)
        #expect(Set(all).count == all.count)
        // Moving the group size off the int8 sizes takes fp32 with it.
        let groupAxis = try #require(c.axes.first { $0.name == "groupSize" })
        #expect(groupAxis.neighbours(of: v).allSatisfy { $0.dot == .fp32 || $0.groupSize == 32 })
        let dotAxis = try #require(c.axes.first { $0.name == "dot" })
        #expect(dotAxis.neighbours(of: v64) == [v64], "no int8 neighbour at G = 64")
        #expect(dotAxis.neighbours(of: v64Int8) == [v64], "an int8 variant at G = 64 is moved back to fp32")
        #expect(dotAxis.neighbours(of: v).map(\.dot).sorted { $0.rawValue < $1.rawValue } == [.fp32, .int8])
        // The variant's plan carries the choice.
        #expect(v.attentionPlan(topology: t).integerDot)
        #expect(!v64.attentionPlan(topology: t).integerDot)
        // Below v4 there are no integer kernels: canonical is fp32.
        var v3 = v
        v3.isa = .v3
        #expect(Catalogue.canonical(v3).dot == .fp32)
        #expect(v.shortDescription.hasSuffix(" int8") && !v64.shortDescription.contains("int8"))

        // No int8: estimate effort, no VNNI, another head dimension, nothing admitted.
        #expect(Catalogue.forProblem(plannerProblem, effort: .estimate, start: start, topology: t, groupSizes: [32], int8GroupSizes: [32]).dots == [.fp32])
        #expect(Catalogue.forProblem(plannerProblem, effort: .measure, start: start, topology: syntheticTopology(cores: 2), groupSizes: [32],
                                     int8GroupSizes: [32]).dots == [.fp32])
        let d96 = Problem(headDim: 96, kvHeads: 8, gqa: 4, contextBucket: 8192, threads: 2)
        #expect(Catalogue.forProblem(d96, effort: .patient, start: Estimate.variant(for: d96, topology: t), topology: t, groupSizes: [32],
                                     int8GroupSizes: [32]).dots == [.fp32])
        let d64 = Problem(headDim: 64, kvHeads: 8, gqa: 4, contextBucket: 8192, threads: 2)
        #expect(Catalogue.forProblem(d64, effort: .patient, start: Estimate.variant(for: d64, topology: t), topology: t, groupSizes: [32],
                                     int8GroupSizes: [32]).dots == [.fp32, .int8])
        #expect(Catalogue.forProblem(plannerProblem, effort: .patient, start: start, topology: t, groupSizes: [32, 64]).dots == [.fp32])
        #expect(!Catalogue.forProblem(plannerProblem, effort: .measure, start: start, topology: t, groupSizes: [32, 64]).contains(v))
        #expect(Catalogue.integerDotAvailable(headDim: 128, topology: t) && Catalogue.integerDotAvailable(headDim: 64, topology: t))
        #expect(!Catalogue.integerDotAvailable(headDim: 96, topology: t))
        #expect(!Catalogue.integerDotAvailable(headDim: 128, topology: syntheticTopology()))
    }

    @Test("the search picks int8 when it is cheaper and admitted, and never times it when the gate rejects it")
    func plannerChoosesInt8() throws {
        let t = vnniTopology()
        // Admitted (int8 2 % above fp32): the optimum of knownCost with int8 scores.
        let timer = CostModelTimer(cost: int8Cost)
        let plans = Planner(topology: t, settings: settings(), quality: int8Gate(int8Factor: 1.02), clock: { timer.now })
            .plan([plannerProblem], timer: timer)
        let chosen = plans[0].chosen.variant
        #expect(chosen.dot == .int8)
        #expect(chosen.threads == 2 && chosen.split == .tokens && chosen.chunkTokens == 256 && chosen.pageTokens == 64
                && chosen.groupSize == 64 && chosen.pinning == .cores)
        #expect(plans[0].estimateDefault?.variant.dot == .fp32, "the baseline stays the fp32 estimate default")
        #expect(plans[0].quality?.map(\.int8Admitted) == [true, true, nil])
        #expect(abs((plans[0].speedup ?? 0) - knownCost(Catalogue.canonical(Estimate.variant(for: plannerProblem, topology: t)), plannerProblem)!
                    / int8Cost(chosen, plannerProblem)!) < 1e-9)

        // Rejected (int8 10 % above fp32): never timed, never chosen.
        for gate in [int8Gate(int8Factor: 1.10), QualityGate(budget: 0.18) { _, _, g in [32: 0.131, 64: 0.137, 128: 0.195][g] }] {
            let t2 = CostModelTimer(cost: int8Cost)
            let p2 = Planner(topology: t, settings: settings(), quality: gate, clock: { t2.now }).plan([plannerProblem], timer: t2)
            #expect(p2[0].chosen.variant.dot == .fp32)
            #expect(!t2.timed.contains { $0.dot == .int8 })
            #expect(p2[0].chosen.variant.groupSize == 64)
        }

        // Admitted only at G = 32: the search may take int8 there, never at G = 64. With int8
        // 30 % cheaper and G = 32 25 % dearer, int8 at G = 32 wins.
        let onlyG32 = QualityGate(budget: 0.18, error: { _, _, g in [32: 0.131, 64: 0.137, 128: 0.195][g] },
                                  int8Error: { _, _, g in [32: 0.132, 64: 0.16][g] })
        let t3 = CostModelTimer(cost: int8Cost)
        let p3 = Planner(topology: t, settings: settings(), quality: onlyG32, clock: { t3.now }).plan([plannerProblem], timer: t3)
        #expect(p3[0].chosen.variant.dot == .int8 && p3[0].chosen.variant.groupSize == 32)
        #expect(!t3.timed.contains { $0.dot == .int8 && $0.groupSize != 32 })
        #expect(p3[0].quality?.map(\.int8Admitted) == [true, false, nil])

        // No VNNI: int8 is neither judged nor timed, whatever the gate says.
        let t4 = CostModelTimer(cost: int8Cost)
        let p4 = Planner(topology: syntheticTopology(cores: 2), settings: settings(), quality: int8Gate(int8Factor: 1), clock: { t4.now })
            .plan([plannerProblem], timer: t4)
        #expect(p4[0].chosen.variant.dot == .fp32 && !t4.timed.contains { $0.dot == .int8 })
        #expect(p4[0].quality?.allSatisfy { $0.int8Admitted == nil } == true)

        // Estimate effort: fp32, nothing judged.
        let t5 = CostModelTimer(cost: int8Cost)
        let p5 = Planner(topology: t, settings: .forEffort(.estimate), quality: int8Gate(int8Factor: 1), clock: { t5.now })
            .plan([plannerProblem], timer: t5)
        #expect(p5[0].chosen.variant.dot == .fp32 && t5.timed.isEmpty)
    }

    @Test("profiles: dot and the int8 quality round-trip; a variant without dot reads as fp32; a bad value is a typed error")
    func profileRoundTrip() throws {
        let t = vnniTopology()
        let timer = CostModelTimer(cost: int8Cost)
        let plans = Planner(topology: t, settings: settings(), quality: int8Gate(int8Factor: 1.02), clock: { timer.now })
            .plan([plannerProblem, Problem(headDim: 64, kvHeads: 3, gqa: 3, contextBucket: 1024, threads: 2)], timer: timer)
        #expect(plans[0].chosen.variant.dot == .int8 && plans[1].chosen.variant.dot == .int8)
        let profile = Profile(createdAt: "2026-01-02T03:04:05Z", effort: .measure, host: HostFingerprint(t), plans: plans,
                              qualityBudget: 0.18, measureSeconds: 1)
        let bytes = try profile.encoded()
        #expect(try Profile.decode(bytes) == profile)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains("\"dot\" : \"int8\"") && text.contains("\"dot\" : \"fp32\""))
        #expect(text.contains("\"int8AttentionRelError\" : ") && text.contains("\"int8Admitted\" : true"))
        #expect(text.contains("\"schemaVersion\" : \(Profile.currentSchemaVersion)") && Profile.currentSchemaVersion == 3)

        // Through a file and the runtime: the plan for the problem is the int8 variant, and its
        // AttentionPlan asks for integer dot products.
        let dir = try makeTempDirectory()
        defer { removeTree(dir) }
        let path = dir + "/p.json"
        try profile.write(to: path)
        let rt = try QAQRuntime(profile: path, topology: t, isa: .v4)
        let resolved = rt.plan(for: plannerProblem)
        #expect(resolved.variant.dot == .int8)
        #expect(resolved.variant.attentionPlan(topology: t).integerDot)

        // A schema-2 profile (no dot, no int8 quality fields) loads with fp32 everywhere.
        func strip(_ x: Any) -> Any {
            if var d = x as? [String: Any] {
                for k in ["dot", "int8AttentionRelError", "int8Admitted"] { d.removeValue(forKey: k) }
                return d.mapValues(strip)
            }
            if let a = x as? [Any] { return a.map(strip) }
            return x
        }
        var tree = try #require(strip(try JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any])
        tree["schemaVersion"] = 2
        let old = try JSONSerialization.data(withJSONObject: tree, options: [.prettyPrinted, .sortedKeys])
        #expect(!String(decoding: old, as: UTF8.self).contains("dot"))
        let v2 = try Profile.decode([UInt8](old))
        #expect(v2.schemaVersion == 2)
        #expect(v2.plans.allSatisfy { p in ([p.chosen] + p.runnersUp + [p.estimateDefault].compactMap { $0 }).allSatisfy { $0.variant.dot == .fp32 } })
        #expect(v2.plans[0].quality?.allSatisfy { $0.int8AttentionRelError == nil && $0.int8Admitted == nil } == true)
        #expect(v2.plans[0].quality?.map(\.attentionRelError) == profile.plans[0].quality?.map(\.attentionRelError))

        // Unknown value: invalidValue naming the field, its line and the valid names.
        let chosenDot = try #require(text.range(of: "\"dot\" : \"int8\""))
        let line = text[..<chosenDot.lowerBound].filter { $0 == "\n" }.count + 1
        let bad = text.replacingCharacters(in: chosenDot, with: "\"dot\" : \"int4\"")
        do {
            _ = try Profile.decode(Array(bad.utf8))
            Issue.record("dot \"int4\" must be refused")
        } catch {
            guard case .invalidValue(_, let field, let reason, let l) = error else { Issue.record("expected invalidValue, got \(error)"); return }
            #expect(field.hasPrefix("plans[0].") && field.hasSuffix(".variant.dot"))
            #expect(reason.contains("\"int4\" is not one of \"fp32\", \"int8\""))
            #expect(l == line)
        }
        // A negative int8 error: invalidValue naming the quality entry.
        var negative = profile
        negative.plans[0].quality?[0].int8AttentionRelError = -0.1
        #expect(negative.validationIssue()?.field == "plans[0].quality[0].int8AttentionRelError")
    }
}

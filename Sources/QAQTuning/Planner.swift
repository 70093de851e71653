import QAQ

/// Group size under a quality budget: a group size is admitted when the mean relative
/// attention-output error of 4-bit keys and values at that group size, on the synthetic
/// generator (``QAQ/SyntheticKV``, through ``QAQ/QualityBench``), is at most `budget`. Speed
/// never overrides this: the planner only times admitted group sizes.
///
/// int8 dot products (`AttentionPlan.integerDot`: scores and affine value sums) are judged the
/// same way, per admitted group size G: with e₃₂ the error of G in fp32 and e₈ the error with
/// int8, int8 is
/// admitted at G when e₈ ≤ `budget` and e₈ ≤ (1 + `int8Tolerance`)·e₃₂ (default 5 %: int8 may
/// cost at most 5 % more error than fp32, relative). Only then does the catalogue offer int8
/// at G; a gate without `int8Error` never admits int8.
public struct QualityGate: Sendable {
    /// Largest admitted mean relative attention error.
    public var budget: Double
    /// Error of a (D, GQA, group size); nil when it cannot be measured (then not admitted).
    public var error: @Sendable (_ headDim: Int, _ gqa: Int, _ groupSize: Int) -> Double?
    /// The same error with int8 dot products; nil (the closure or its result): int8 not admitted.
    public var int8Error: (@Sendable (_ headDim: Int, _ gqa: Int, _ groupSize: Int) -> Double?)?
    /// How much more error than fp32 int8 may add, relative to the fp32 error.
    public var int8Tolerance: Double

    /// Default ``int8Tolerance``: 5 %.
    public static let defaultInt8Tolerance = 0.05

    public init(budget: Double, error: @escaping @Sendable (_ headDim: Int, _ gqa: Int, _ groupSize: Int) -> Double?,
                int8Error: (@Sendable (_ headDim: Int, _ gqa: Int, _ groupSize: Int) -> Double?)? = nil,
                int8Tolerance: Double = QualityGate.defaultInt8Tolerance) {
        self.budget = budget
        self.error = error
        self.int8Error = int8Error
        self.int8Tolerance = int8Tolerance
    }

    /// Default budget, from the generator's errors at 4 bits (192 steps, GQA 3): D = 64 —
    /// G = 32 0.165, G = 64 0.212; D = 128 — G = 32 0.131, G = 64 0.137, G = 128 0.195. So
    /// 0.18 admits G = 32 everywhere and G = 64 at D = 128, and rejects whole-vector groups.
    public static let defaultBudget = 0.18

    /// The real gate: ``QAQ/QualityBench`` on `tokens` synthetic decode steps, 2 KV heads; int8
    /// scores by the same bench with `AttentionPlan(integerDot: true)`.
    public static func synthetic(budget: Double = defaultBudget, tokens: Int = 192, kernels: KernelSet = .active) -> QualityGate {
        @Sendable func bench(_ d: Int, _ g: Int, _ group: Int, _ plan: AttentionPlan) -> Double? {
            let data = SyntheticKV(tokens: tokens, kvHeads: 2, queryHeadsPerKVHead: min(max(g, 1), 8), dim: d, seed: 1)
            return try? QualityBench.run(policy: FixedPolicy.uniform(bits: 4, group: group), data: data, kernels: kernels,
                                         plan: plan).attentionRelError
        }
        return QualityGate(budget: budget, error: { d, g, group in bench(d, g, group, .serial) },
                           int8Error: { d, g, group in bench(d, g, group, AttentionPlan(integerDot: true)) })
    }

    /// Whether int8 passes at an fp32 error `fp32` with int8 error `int8` (the rule above).
    public func admitsInt8(fp32: Double, int8: Double) -> Bool {
        int8.isFinite && int8 <= budget && int8 <= fp32 * (1 + int8Tolerance)
    }

    /// Every group size of the head dimension with its error and verdict; with `integerDot`,
    /// also the int8-score error and verdict of each admitted group size.
    public func judge(headDim: Int, gqa: Int, integerDot: Bool = false) -> [GroupQuality] {
        Catalogue.groupSizes(headDim: headDim).map { g in
            let e = error(headDim, gqa, g)
            var q = GroupQuality(groupSize: g, attentionRelError: e ?? .infinity, admitted: e.map { $0 <= budget } ?? false)
            if integerDot, q.admitted, let e {
                let e8 = int8Error?(headDim, gqa, g)
                q.int8AttentionRelError = e8.flatMap { $0.isFinite ? $0 : nil }
                q.int8Admitted = e8.map { admitsInt8(fp32: e, int8: $0) } ?? false
            }
            return q
        }
    }
}

/// Times variants for the planner. The real one fills caches and runs decode attention; tests
/// pass one whose costs are known by construction.
public protocol VariantTimer: AnyObject {
    /// Called before a problem's variants are timed.
    func prepare(_ problem: Problem) throws
    /// Times a variant for the prepared problem; nil if it cannot run.
    func measure(_ variant: KernelVariant, problem: Problem) -> MeasuredVariant?
    /// Called when planning ends (free memory).
    func finish()
}

/// The real timer: an ``AttentionHarness`` per shape and a ``RobustTimer``.
public final class AttentionTimer: VariantTimer {
    public let topology: Topology
    public let timer: RobustTimer
    private var harness: AttentionHarness?
    /// Seconds spent filling caches.
    public private(set) var fillSeconds: Double = 0

    public init(topology: Topology, timer: RobustTimer) {
        self.topology = topology
        self.timer = timer
    }

    public func prepare(_ problem: Problem) throws {
        if let h = harness, h.headDim != problem.headDim || h.kvHeads != problem.kvHeads || h.gqa != problem.gqa {
            fillSeconds += h.fillSeconds
            harness = nil
        }
        let h = harness ?? AttentionHarness(headDim: problem.headDim, kvHeads: problem.kvHeads, gqa: problem.gqa, topology: topology)
        harness = h
        try h.setContext(problem.contextBucket)
    }

    public func measure(_ variant: KernelVariant, problem: Problem) -> MeasuredVariant? {
        harness?.measure(variant, timer: timer)
    }

    public func finish() {
        fillSeconds += harness?.fillSeconds ?? 0
        harness = nil
    }
}

/// Knobs of one planning run.
public struct PlannerSettings: Sendable {
    public var effort: Effort
    public var timing: TimingSettings
    /// Wall seconds for all problems' searches together (roofs and start-up not included).
    public var budgetSeconds: Double
    public var maxEvaluationsPerProblem: Int
    public var maxPasses: Int
    /// A move must beat the current point by this fraction (noise must not move plans).
    public var margin: Double
    /// Runners-up kept per problem.
    public var runnersUp: Int
    /// Interleaved re-timings of the estimate default and the winner after the search; the
    /// recorded speeds and the final choice use the median over the search's timing and these,
    /// so the speed-up compares figures taken under the same conditions.
    public var confirmRounds: Int = 2
    /// Contexts above this reuse the storage knobs (page, group) the smaller contexts of the
    /// same shape chose, instead of filling new caches (`measure` only).
    public var storageSearchMaxContext: Int? = nil

    public init(effort: Effort, timing: TimingSettings, budgetSeconds: Double, maxEvaluationsPerProblem: Int, maxPasses: Int,
                margin: Double, runnersUp: Int) {
        self.effort = effort
        self.timing = timing
        self.budgetSeconds = budgetSeconds
        self.maxEvaluationsPerProblem = maxEvaluationsPerProblem
        self.maxPasses = maxPasses
        self.margin = margin
        self.runnersUp = runnersUp
    }

    /// `measure`: coordinate descent over the measure catalogue, 2 passes, ≤ 20 variants per
    /// problem, 40 s in all; `patient`: the wide catalogue, 4 passes, ≤ 120 variants, 10 minutes.
    public static func forEffort(_ effort: Effort) -> PlannerSettings {
        switch effort {
        case .estimate:
            return PlannerSettings(effort: .estimate, timing: .measure, budgetSeconds: 0, maxEvaluationsPerProblem: 1, maxPasses: 1,
                                   margin: 0, runnersUp: 0)
        case .measure:
            var s = PlannerSettings(effort: .measure, timing: .measure, budgetSeconds: 40, maxEvaluationsPerProblem: 20, maxPasses: 2,
                                    margin: 0.03, runnersUp: 3)
            s.storageSearchMaxContext = 16384
            return s
        case .patient:
            var s = PlannerSettings(effort: .patient, timing: .patient, budgetSeconds: 600, maxEvaluationsPerProblem: 120, maxPasses: 4,
                                    margin: 0.02, runnersUp: 5)
            s.confirmRounds = 3
            return s
        }
    }
}

/// What the planner reports while it works.
public struct PlannerEvent: Sendable {
    public enum Kind: Sendable { case started, timed, finished }
    public var kind: Kind
    /// 1-based index of the problem among all.
    public var index: Int
    public var count: Int
    public var problem: Problem
    public var evaluations: Int
    /// The latest timed variant (`timed`) or the chosen one (`finished`).
    public var variant: MeasuredVariant?
    public var record: PlanRecord?
}

/// The planner (FFTW's vocabulary): for each ``Problem``, a ``Catalogue`` of
/// ``KernelVariant``s and a ``Search`` through it within the effort's budget, timing through a
/// ``VariantTimer``. Group sizes (and int8 dot products) pass the ``QualityGate`` first. The estimate-level default is
/// always the search's start and is recorded with its measured speed, so the profile holds the
/// speed-up the tuning bought.
public struct Planner {
    public var topology: Topology
    public var settings: PlannerSettings
    public var quality: QualityGate
    public var clock: () -> Double

    public init(topology: Topology, settings: PlannerSettings, quality: QualityGate, clock: @escaping () -> Double = monotonicSeconds) {
        self.topology = topology
        self.settings = settings
        self.quality = quality
        self.clock = clock
    }

    /// Visiting order: problems of one shape together (shapes in first-appearance order),
    /// contexts from the smallest up — the harness's caches grow by appending, and each
    /// context's search is seeded with the previous context's winner.
    public static func order(_ problems: [Problem]) -> [Int] {
        var shapes: [String] = []
        func shape(_ p: Problem) -> String { "\(p.headDim)/\(p.kvHeads)/\(p.gqa)/\(p.bitMix)/\(p.elementType)/\(p.threads)" }
        for p in problems where !shapes.contains(shape(p)) { shapes.append(shape(p)) }
        return problems.indices.sorted { a, b in
            let sa = shapes.firstIndex(of: shape(problems[a]))!, sb = shapes.firstIndex(of: shape(problems[b]))!
            if sa != sb { return sa < sb }
            if problems[a].contextBucket != problems[b].contextBucket { return problems[a].contextBucket < problems[b].contextBucket }
            return a < b
        }
    }

    /// Relative share of the time budget a problem gets: larger contexts take longer per timing.
    static func weight(_ p: Problem) -> Double { 1 + Double(min(p.contextBucket, 1 << 20)) / 16384 }

    /// Plans every distinct problem; the records come back in the problems' order.
    public func plan(_ input: [Problem], timer: VariantTimer, progress: (PlannerEvent) -> Void = { _ in }) -> [PlanRecord] {
        var problems: [Problem] = []
        for p in input where !problems.contains(p) { problems.append(p) }
        let visit = Planner.order(problems)
        var records = [PlanRecord?](repeating: nil, count: problems.count)
        var qualityCache: [String: [GroupQuality]] = [:]
        let end = clock() + settings.budgetSeconds
        var remainingWeight = problems.reduce(0) { $0 + Planner.weight($1) }
        var previous: [String: KernelVariant] = [:]
        defer { timer.finish() }

        for (n, i) in visit.enumerated() {
            let problem = problems[i]
            let estimate = Estimate.variant(for: problem, topology: topology)
            let qkey = "\(problem.headDim)/\(problem.gqa)"
            let integerDot = Catalogue.integerDotAvailable(headDim: problem.headDim, topology: topology)
            let judged = settings.effort == .estimate ? []
                : (qualityCache[qkey] ?? quality.judge(headDim: problem.headDim, gqa: problem.gqa, integerDot: integerDot))
            qualityCache[qkey] = judged
            let admitted = judged.filter(\.admitted).map(\.groupSize)
            let int8Admitted = judged.filter { $0.admitted && $0.int8Admitted == true }.map(\.groupSize)

            guard settings.effort != .estimate else {
                records[i] = PlanRecord(problem: problem, chosen: MeasuredVariant(variant: estimate))
                continue
            }
            progress(PlannerEvent(kind: .started, index: n + 1, count: problems.count, problem: problem, evaluations: 0))
            let now = clock()
            let w = Planner.weight(problem)
            let deadline = now + max(0, end - now) * w / max(remainingWeight, w)
            remainingWeight -= w

            // The search starts at the estimate default, or at its nearest admitted group size
            // when the budget rejects the default's.
            var start = estimate
            if !admitted.isEmpty && !admitted.contains(start.groupSize) {
                start.groupSize = admitted.min { abs($0 - estimate.groupSize) < abs($1 - estimate.groupSize) }!
            }
            let shapeKey = "\(problem.headDim)/\(problem.kvHeads)/\(problem.gqa)/\(problem.bitMix)/\(problem.elementType)/\(problem.threads)"
            let seed = previous[shapeKey]
            let limitStorage = settings.storageSearchMaxContext.map { problem.contextBucket > $0 } ?? false
            let catalogue = Catalogue.forProblem(problem, effort: settings.effort, start: start, topology: topology,
                                                 groupSizes: admitted.isEmpty ? [start.groupSize] : admitted,
                                                 int8GroupSizes: int8Admitted,
                                                 storageHints: limitStorage ? (seed.map { [$0] } ?? []) : nil)
            do { try timer.prepare(problem) } catch {
                records[i] = PlanRecord(problem: problem, chosen: MeasuredVariant(variant: estimate), quality: judged)
                continue
            }
            var evaluations = 0
            let outcome = Search.run(start: start, seeds: seed.map { [$0] } ?? [], axes: catalogue.axes,
                                     budget: SearchBudget(maxEvaluations: settings.maxEvaluationsPerProblem, deadline: deadline,
                                                          maxPasses: settings.maxPasses),
                                     margin: settings.margin, clock: clock) { v in
                let m = timer.measure(v, problem: problem)
                evaluations += 1
                progress(PlannerEvent(kind: .timed, index: n + 1, count: problems.count, problem: problem, evaluations: evaluations, variant: m))
                return m
            }
            guard var outcome else {
                records[i] = PlanRecord(problem: problem, chosen: MeasuredVariant(variant: estimate), quality: judged)
                continue
            }
            var baseline = outcome.start
            if Catalogue.canonical(estimate) != Catalogue.canonical(start) {
                baseline = timer.measure(Catalogue.canonical(estimate), problem: problem) ?? MeasuredVariant(variant: estimate)
            }
            if outcome.chosen.variant != baseline.variant && settings.confirmRounds > 0 {
                (baseline, outcome.chosen) = confirm(baseline, outcome.chosen, problem: problem, timer: timer)
                if let a = baseline.nsPerTokenKVHead, let b = outcome.chosen.nsPerTokenKVHead, !(b < a * (1 - settings.margin)),
                   baseline.variant == Catalogue.canonical(start) {
                    // Confirmation shows no real gain: keep the default.
                    outcome.others.insert(outcome.chosen, at: 0)
                    outcome.others.removeAll { $0.variant == baseline.variant }
                    outcome.chosen = baseline
                }
            }
            previous[shapeKey] = outcome.chosen.variant
            let speedup: Double? = {
                guard let a = baseline.nsPerTokenKVHead, let b = outcome.chosen.nsPerTokenKVHead, a > 0, b > 0 else { return nil }
                return a / b
            }()
            let record = PlanRecord(problem: problem, chosen: outcome.chosen, runnersUp: Array(outcome.others.prefix(settings.runnersUp)),
                                    estimateDefault: baseline, speedup: speedup, quality: judged)
            records[i] = record
            progress(PlannerEvent(kind: .finished, index: n + 1, count: problems.count, problem: problem, evaluations: evaluations,
                                  variant: outcome.chosen, record: record))
        }
        return records.compactMap { $0 }
    }

    /// Re-times `a` and `b` alternately `confirmRounds` times; each comes back with the median
    /// of its search timing and the re-timings (other fields from its latest timing).
    func confirm(_ a: MeasuredVariant, _ b: MeasuredVariant, problem: Problem, timer: VariantTimer) -> (MeasuredVariant, MeasuredVariant) {
        var la = [a], lb = [b]
        for _ in 0..<settings.confirmRounds {
            if let m = timer.measure(a.variant, problem: problem) { la.append(m) }
            if let m = timer.measure(b.variant, problem: problem) { lb.append(m) }
        }
        func combine(_ list: [MeasuredVariant]) -> MeasuredVariant {
            var m = list.last!
            let ns = list.compactMap(\.nsPerTokenKVHead)
            guard !ns.isEmpty, let ns0 = m.nsPerTokenKVHead, let gb = m.gbps else { return m }
            let med = TimingResult.median(ns)
            m.nsPerTokenKVHead = med
            m.gbps = gb * ns0 / med
            m.minNsPerTokenKVHead = list.compactMap(\.minNsPerTokenKVHead).min()
            m.samples = list.compactMap(\.samples).reduce(0, +)
            m.rejectedSamples = list.compactMap(\.rejectedSamples).reduce(0, +)
            m.noisy = list.contains { $0.noisy == true }
            m.foreignShare = list.compactMap(\.foreignShare).max()
            return m
        }
        return (combine(la), combine(lb))
    }
}

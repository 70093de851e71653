/// Limits on one problem's search.
public struct SearchBudget: Sendable, Equatable {
    /// Most variants timed (the start included).
    public var maxEvaluations: Int
    /// Clock reading after which no new variant is started (the start is always timed).
    public var deadline: Double
    /// Most sweeps over all axes.
    public var maxPasses: Int

    public init(maxEvaluations: Int, deadline: Double, maxPasses: Int) {
        self.maxEvaluations = max(1, maxEvaluations)
        self.deadline = deadline
        self.maxPasses = max(1, maxPasses)
    }
}

/// What a search found: every variant it timed, fastest first, and the one it chose.
public struct SearchOutcome: Sendable, Equatable {
    public var chosen: MeasuredVariant
    /// The start (estimate-level default) as measured.
    public var start: MeasuredVariant
    /// Every other timed variant, fastest first.
    public var others: [MeasuredVariant]
    public var evaluations: Int
    /// True when the budget (evaluations or time) ended the search before it converged.
    public var stoppedByBudget: Bool
}

/// The planner's search, with timing as a parameter: `evaluate` returns a measured variant
/// (its `nsPerTokenKVHead` is the cost) or nil when the variant cannot run. Real planning passes
/// a timer over a filled cache; tests pass a cost function known by construction.
public enum Search {
    /// Coordinate descent from `start` (or from a seed that beats it by more than `margin`): sweep each axis in turn, move to the fastest value when
    /// it beats the current point by more than `margin` (a fraction: noise must not move the
    /// plan), repeat until a pass changes nothing or the budget ends. `exhaustive` instead times
    /// every variant of `variants` (in order) within the budget. The chosen variant is the
    /// fastest timed one, except that the start is kept unless that one beats it by more than
    /// `margin`.
    public static func run(start: KernelVariant, seeds: [KernelVariant] = [], axes: [Axis], exhaustive variants: [KernelVariant]? = nil,
                           budget: SearchBudget, margin: Double = 0.02, clock: () -> Double,
                           evaluate: (KernelVariant) -> MeasuredVariant?) -> SearchOutcome? {
        var memo: [KernelVariant: MeasuredVariant?] = [:]
        var order: [KernelVariant] = []
        var stopped = false
        func cost(_ m: MeasuredVariant?) -> Double { m?.nsPerTokenKVHead ?? .infinity }
        func timed(_ v: KernelVariant, force: Bool = false) -> MeasuredVariant? {
            let v = Catalogue.canonical(v)
            if let m = memo[v] { return m }
            if !force && (memo.count >= budget.maxEvaluations || clock() >= budget.deadline) {
                stopped = true
                return nil
            }
            let m = evaluate(v)
            memo[v] = .some(m)
            order.append(v)
            return m
        }

        let s = Catalogue.canonical(start)
        guard let startMeasured = timed(s, force: true) else { return nil }
        if let variants {
            for v in variants where !stopped { _ = timed(v) }
        } else {
            var current = s
            var currentCost = cost(startMeasured)
            // Seeds (e.g. the winner at the previous context) may replace the start.
            for seed in seeds {
                let c = cost(timed(seed))
                if c < currentCost * (1 - margin) { current = Catalogue.canonical(seed); currentCost = c }
            }
            pass: for _ in 0..<budget.maxPasses {
                var moved = false
                for axis in axes {
                    var best = current, bestCost = currentCost
                    for w in axis.neighbours(of: current) where w != current {
                        let c = cost(timed(w))
                        if stopped { break }
                        if c < bestCost { best = w; bestCost = c }
                    }
                    if best != current && bestCost < currentCost * (1 - margin) {
                        current = best
                        currentCost = bestCost
                        moved = true
                    }
                    if stopped { break pass }
                }
                if !moved { break }
            }
        }

        let measured = order.compactMap { v -> MeasuredVariant? in memo[v] ?? nil }.filter { cost($0).isFinite }
        let sorted = measured.enumerated().sorted { a, b in
            cost(a.element) != cost(b.element) ? cost(a.element) < cost(b.element) : a.offset < b.offset
        }.map(\.element)
        guard var chosen = sorted.first else { return nil }
        if chosen.variant != s && !(cost(chosen) < cost(startMeasured) * (1 - margin)) { chosen = startMeasured }
        let others = sorted.filter { $0.variant != chosen.variant }
        return SearchOutcome(chosen: chosen, start: startMeasured, others: others, evaluations: order.count, stoppedByBudget: stopped)
    }
}

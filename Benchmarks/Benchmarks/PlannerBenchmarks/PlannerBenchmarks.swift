// The planner's (QAQTuning) run time: at `estimate` over qaqtune's standard problem set
// (no timing, plans derived from the topology) and at `measure` on one problem with a
// small search budget, driven as `qaqtune` drives it (Topology, RobustTimer with the
// ForeignCPUGuard, AttentionTimer, QualityGate.synthetic).
//
//   cd Benchmarks && swift package benchmark --target PlannerBenchmarks
//
// Metrics: `Time (wall clock)` per planning run, `Throughput (# / s)` runs per second,
// `problems/s` (estimate: 16 problems per run) and `variants timed` (measure: variants the
// search timed in the run, the estimate default and the confirmation re-timings included
// as the planner counts them). The estimate runs must not allocate beyond their deterministic
// count (gated strictly); the measure run fills caches and times threads, so its
// allocations are reported, not gated.
import Benchmark
import Foundation
import QAQ
import QAQBenchSupport
import QAQTuning

/// qaqtune's standard problem set (Sources/qaqtune/QAQTune.swift, `standardProblems`): the
/// reference model's shape and the attention issue's shapes, at every usable thread.
private let standardProblems: [Problem] = {
    var problems: [Problem] = []
    for (d, h, g) in [(64, 3, 3), (128, 8, 4), (64, 8, 1), (128, 8, 8)] {
        for context in [1024, 4096, 16384, 65536] {
            problems.append(Problem(headDim: d, kvHeads: h, gqa: g, contextBucket: context, threads: ProcessInfo.processInfo.activeProcessorCount))
        }
    }
    return problems
}()

/// The `measure` problem: the attention issue's headline shape at 4K.
private let measureProblem = Problem(headDim: 128, kvHeads: 8, gqa: 4, contextBucket: 4096,
                                     threads: ProcessInfo.processInfo.activeProcessorCount)
/// Search budget of the `measure` run, seconds (qaqtune: 40 for all 16 problems).
private let measureBudget = 5.0

/// A timer for `estimate` (the planner times nothing there).
private final class NoTimer: VariantTimer {
    func prepare(_ problem: Problem) throws {}
    func measure(_ variant: KernelVariant, problem: Problem) -> MeasuredVariant? { nil }
    func finish() {}
}

let benchmarks: @Sendable () -> Void = {
    let problemCount = standardProblems.count

    // 1. Topology detection (hwloc, then sysfs): what every qaqtune run pays first.
    Benchmark(
        "Planner topology detect",
        configuration: suiteConfiguration(rate: [], maxDuration: .milliseconds(1000), maxIterations: 200,
                                          gateAllocations: false)
    ) { benchmark in
        benchmark.startMeasurement()
        let t = Topology.detect()
        benchmark.stopMeasurement()
        Benchmark.blackHole(t.usablePUs)
    }

    // 2. `Planner.plan` at effort estimate over the standard problems.
    Benchmark(
        "Planner estimate problems=\(problemCount)",
        configuration: suiteConfiguration(rate: [.problemsPerSecond], maxDuration: .milliseconds(1000), maxIterations: 5000)
    ) { benchmark, topology in
        let planner = Planner(topology: topology, settings: .forEffort(.estimate), quality: QualityGate(budget: 1) { _, _, _ in nil })
        let timer = NoTimer()
        benchmark.startMeasurement()
        let t0 = nanosecondsNow()
        let plans = planner.plan(standardProblems, timer: timer)
        let t1 = nanosecondsNow()
        benchmark.stopMeasurement()
        Benchmark.blackHole(plans)
        if plans.count != problemCount { benchmark.error("estimate planned \(plans.count) of \(problemCount) problems") }
        benchmark.measurement(.problemsPerSecond, perSecond(problemCount, t1 - t0))
    } setup: {
        Topology.current
    }

    // 3. The estimate profile as `qaqtune --effort estimate --no-roofs` builds it (plans and
    //    the host fingerprint).
    Benchmark(
        "Planner estimate profile problems=\(problemCount)",
        configuration: suiteConfiguration(rate: [.problemsPerSecond], maxDuration: .milliseconds(1000), maxIterations: 5000)
    ) { benchmark, topology in
        benchmark.startMeasurement()
        let t0 = nanosecondsNow()
        let profile = Estimate.profile(for: standardProblems, topology: topology)
        let t1 = nanosecondsNow()
        benchmark.stopMeasurement()
        Benchmark.blackHole(profile)
        benchmark.measurement(.problemsPerSecond, perSecond(problemCount, t1 - t0))
    } setup: {
        Topology.current
    }

    // 4. `measure` on one problem with a 5 s search budget: quality gate, cache fills,
    //    coordinate descent, confirmation — one run per iteration, no warm-up.
    let p = measureProblem
    Benchmark(
        "Planner measure D=\(p.headDim) H=\(p.kvHeads) GQA=\(p.gqa) ctx=\(p.contextBucket) threads=\(p.threads) budget=\(Int(measureBudget))s",
        configuration: suiteConfiguration(rate: [.variantsTimed], warmupIterations: 0, maxDuration: .seconds(20), maxIterations: 2,
                                          gateAllocations: false)
    ) { benchmark, topology in
        let isa = ISALevel.detected
        var settings = PlannerSettings.forEffort(.measure)
        settings.budgetSeconds = measureBudget
        let guardian = ForeignCPUGuard(cpuCount: topology.usablePUs)
        let timer = AttentionTimer(topology: topology, timer: RobustTimer(settings: settings.timing, guardian: guardian))
        let planner = Planner(topology: topology, settings: settings, quality: .synthetic(kernels: .forLevel(isa)))
        var timed = 0
        benchmark.startMeasurement()
        let plans = planner.plan([p], timer: timer) { event in
            if event.kind == .timed { timed += 1 }
        }
        benchmark.stopMeasurement()
        Benchmark.blackHole(plans)
        if plans.count != 1 || plans[0].chosen.nsPerTokenKVHead == nil { benchmark.error("measure found no timed plan") }
        benchmark.measurement(.variantsTimed, timed)
    } setup: {
        Topology.current
    }
}

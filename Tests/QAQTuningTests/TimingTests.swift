import Foundation
import QAQTuning
import Testing

/// Synthetic /proc/stat text: per CPU (user, system, idle, steal) ticks.
func procStat(_ cpus: [(user: UInt64, system: UInt64, idle: UInt64, steal: UInt64)]) -> String {
    let total = cpus.reduce((0 as UInt64, 0 as UInt64, 0 as UInt64, 0 as UInt64)) { ($0.0 + $1.user, $0.1 + $1.system, $0.2 + $1.idle, $0.3 + $1.steal) }
    var lines = ["cpu  \(total.0) 0 \(total.1) \(total.2) 0 0 0 \(total.3) 0 0"]
    for (i, c) in cpus.enumerated() { lines.append("cpu\(i) \(c.user) 0 \(c.system) \(c.idle) 0 0 0 \(c.steal) 0 0") }
    lines.append("intr 12345 0 0")
    lines.append("ctxt 999")
    return lines.joined(separator: "\n") + "\n"
}

@Suite("Foreign-CPU guard and robust timing")
struct TimingTests {
    @Test("parsing /proc/stat: busy includes steal, idle includes iowait, junk is skipped")
    func parse() throws {
        let text = "cpu  100 5 20 1000 7 1 2 3 9 9\ncpu0 60 5 10 500 7 1 2 3 0 0\ncpu1 40 0 10 500 0 0 0 0 0 0\ncpuX 1 2\nintr 1 2 3\n"
        let s = try #require(ProcStatSnapshot.parse(text))
        #expect(s.total == .init(busy: 100 + 5 + 20 + 1 + 2 + 3, idle: 1007))
        #expect(s.cpus[0] == .init(busy: 60 + 5 + 10 + 1 + 2 + 3, idle: 507))
        #expect(s.cpus[1] == .init(busy: 50, idle: 500))
        #expect(s.ticks(over: [0, 1]) == .init(busy: 131, idle: 1007))
        #expect(s.ticks(over: [5]) == nil)
        #expect(ProcStatSnapshot.parse("") == nil)
        #expect(ProcStatSnapshot.parse("intr 1 2\n") == nil)
        #expect(ProcStatSnapshot.parse("cpu 1 2\n") == nil)
        // The real file parses here (Linux).
        #expect(ForeignCPUGuard.readProcStat() != nil)
    }

    @Test("the guard's arithmetic on synthetic samples")
    func verdicts() throws {
        let g = ForeignCPUGuard(cpuCount: 2, ticksPerSecond: 100, threshold: 0.10)
        #expect(abs(g.tolerance - 0.04) < 1e-12)
        func reading(_ wall: Double, _ cpus: [(UInt64, UInt64, UInt64, UInt64)], own: Double) -> CPUUsageReading {
            CPUUsageReading(wall: wall, stat: ProcStatSnapshot.parse(procStat(cpus.map { (user: $0.0, system: $0.1, idle: $0.2, steal: $0.3) })), ownCPU: own)
        }
        let a = reading(10, [(1000, 100, 5000, 0), (1000, 100, 5000, 0)], own: 3.0)
        // 1 s, one thread: we used 1.0 s, the other CPU idle → clean.
        let quiet = reading(11, [(1100, 100, 5000, 0), (1000, 100, 5100, 0)], own: 4.0)
        let q = g.verdict(from: a, to: quiet, threads: 1)
        #expect(q.known && !q.significant && q.share == 0)
        #expect(abs(q.foreignSeconds) < 1e-9)
        // One thread, others busy on the other CPU (1 s) — fits in the CPU we left free → clean.
        let neighbour = reading(11, [(1100, 100, 5000, 0), (1100, 100, 5000, 0)], own: 4.0)
        let n = g.verdict(from: a, to: neighbour, threads: 1)
        #expect(abs(n.foreignSeconds - 1.0) < 1e-9)
        #expect(!n.significant)
        // Two threads, others took 0.5 s of the two CPUs (we got 1.5 s) → contended share
        // (0.5 − 0.04) / 2 = 0.23 → noisy.
        let busy2 = reading(11, [(1100, 100, 5000, 0), (1100, 100, 5000, 0)], own: 4.5)
        let b = g.verdict(from: a, to: busy2, threads: 2)
        #expect(abs(b.foreignSeconds - 0.5) < 1e-9)
        #expect(abs(b.share - 0.23) < 1e-9)
        #expect(b.significant)
        // Steal counts as foreign: one thread, the hypervisor stole 0.3 s of our CPU and the
        // other CPU was busy with a neighbour: 1.3 s foreign, 1 s of it fits on the free CPU.
        let stolen = reading(11, [(1070, 100, 5000, 30), (1100, 100, 5000, 0)], own: 3.7)
        let s = g.verdict(from: a, to: stolen, threads: 1)
        #expect(abs(s.foreignSeconds - 1.3) < 1e-9)
        #expect(abs(s.share - 0.26) < 1e-9)
        #expect(s.significant)
        // Below the tick tolerance nothing is flagged.
        let tiny = reading(10.05, [(1003, 100, 5000, 0), (1002, 100, 5000, 0)], own: 3.02)
        #expect(!g.verdict(from: a, to: tiny, threads: 2).significant)
        // Watching a CPU subset: only cpu1's ticks count.
        let sub = ForeignCPUGuard(cpuSet: [1], cpuCount: 1, ticksPerSecond: 100, threshold: 0.1)
        let onlyCPU0Busy = reading(11, [(1100, 100, 5000, 0), (1000, 100, 5100, 0)], own: 0)
        #expect(!sub.verdict(from: a, to: onlyCPU0Busy, threads: 1).significant)
        // Unreadable /proc/stat: unknown, never flagged.
        let none = CPUUsageReading(wall: 11, stat: nil, ownCPU: 4)
        let u = g.verdict(from: a, to: none, threads: 2)
        #expect(!u.known && !u.significant)
    }

    @Test("robust timer: warm-up, calibrated samples, noisy samples re-taken within the bound, min and median")
    func robustTimer() throws {
        // A fake world: each call takes 1 ms; the CPU readings make every sample whose index
        // is in `noisy` look contended (the neighbour took the CPU we run on).
        final class World: @unchecked Sendable {
            var wall = 0.0, own = 0.0, busySeconds = 0.0, reads = 0
            var contendNext = false
            func read() -> CPUUsageReading {
                reads += 1
                let stat = ProcStatSnapshot(total: .init(busy: UInt64((busySeconds * 100).rounded()), idle: 0), cpus: [:])
                return CPUUsageReading(wall: wall, stat: stat, ownCPU: own)
            }
            func call(_ seconds: Double) {
                wall += seconds
                own += seconds
                // Contended: a neighbour ran as long as we did on our CPU.
                busySeconds += seconds + (contendNext ? seconds : 0)
            }
        }
        let world = World()
        var settings = TimingSettings(warmups: 2, samples: 5, minSampleSeconds: 0.0495, maxExtraSamples: 3)
        let guardian = ForeignCPUGuard(cpuCount: 1, ticksPerSecond: 100, threshold: 0.1)
        var timer = RobustTimer(settings: settings, guardian: guardian, read: { world.read() })
        var calls = 0
        var sampleCalls = 0
        // Samples 2 and 4 (of the timed ones) are contended.
        let r = timer.time(threads: 1) {
            calls += 1
            let inSamples = calls > 3   // 2 warm-ups + 1 calibration call
            if inSamples { sampleCalls += 1 }
            let sample = inSamples ? (sampleCalls - 1) / 50 : -1
            world.contendNext = sample == 1 || sample == 3
            world.call(sample == 1 || sample == 3 ? 0.002 : 0.001)
        }
        #expect(r.callsPerSample == 50)
        #expect(r.rejected == 2)
        #expect(r.kept.count == 5)
        #expect(!r.noisy)
        #expect(abs(r.median - 0.001) < 1e-9 && abs(r.min - 0.001) < 1e-9)
        #expect(sampleCalls == 7 * 50, "5 clean samples needed 7 taken")

        // Always contended: the bound stops re-measuring and the result is flagged.
        settings.maxExtraSamples = 2
        timer.settings = settings
        let w2 = World()
        timer.read = { w2.read() }
        let r2 = timer.time(threads: 1) { w2.contendNext = true; w2.call(0.001) }
        #expect(r2.noisy)
        #expect(r2.rejected == 7)
        #expect(r2.kept.count == 7, "with too few clean samples every sample counts")
        #expect(r2.foreignShare > 0.5)

        // No guard: plain min and median.
        let w3 = World()
        let plain = RobustTimer(settings: TimingSettings(warmups: 0, samples: 3, minSampleSeconds: 0, maxExtraSamples: 0), guardian: nil,
                                read: { w3.read() })
        var k = 0
        let r3 = plain.time(threads: 1) { k += 1; w3.call(k == 2 ? 0.005 : Double(k) * 0.001) }
        #expect(r3.kept.count == 3 && r3.rejected == 0 && !r3.noisy)
        #expect(abs(r3.min - 0.003) < 1e-9 && abs(r3.median - 0.004) < 1e-9)
    }
}

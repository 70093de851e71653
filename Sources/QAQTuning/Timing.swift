/// How one variant is timed: warm-up, repeated samples, and how far the foreign-CPU guard may
/// make us re-measure.
public struct TimingSettings: Sendable, Equatable {
    /// Untimed calls first (page faults, caches, the worker pool's first wake-up).
    public var warmups: Int
    /// Clean samples wanted.
    public var samples: Int
    /// A sample repeats the call until it lasts at least this long (so /proc/stat ticks and the
    /// clock resolve it).
    public var minSampleSeconds: Double
    /// Extra samples allowed to replace ones the guard rejected (the bound on re-measuring).
    public var maxExtraSamples: Int
    /// Most calls in one sample.
    public var maxCallsPerSample: Int

    public init(warmups: Int, samples: Int, minSampleSeconds: Double, maxExtraSamples: Int, maxCallsPerSample: Int = 1 << 16) {
        self.warmups = max(0, warmups)
        self.samples = max(1, samples)
        self.minSampleSeconds = max(0, minSampleSeconds)
        self.maxExtraSamples = max(0, maxExtraSamples)
        self.maxCallsPerSample = max(1, maxCallsPerSample)
    }

    /// `measure`: 1 warm-up, 5 samples of ≥ 4 ms, up to 4 re-takes.
    public static let measure = TimingSettings(warmups: 1, samples: 5, minSampleSeconds: 0.004, maxExtraSamples: 4)
    /// `patient`: 2 warm-ups, 9 samples of ≥ 20 ms, up to 9 re-takes.
    public static let patient = TimingSettings(warmups: 2, samples: 9, minSampleSeconds: 0.02, maxExtraSamples: 9)
}

/// The robust timing of one variant: seconds per call.
public struct TimingResult: Sendable, Equatable {
    /// Seconds per call of each kept sample, in the order taken.
    public var kept: [Double]
    /// Samples the guard rejected (and re-took while the bound allowed).
    public var rejected: Int
    /// Calls per sample.
    public var callsPerSample: Int
    /// The guard's share over the whole measurement, 0…1 (0 when /proc/stat is unreadable).
    public var foreignShare: Double
    /// Not enough clean samples within the bound, or thin interference the per-sample checks
    /// could not resolve but the whole measurement shows.
    public var noisy: Bool

    public var min: Double { kept.min() ?? .nan }
    public var median: Double { TimingResult.median(kept) }

    public static func median(_ xs: [Double]) -> Double {
        guard !xs.isEmpty else { return .nan }
        let s = xs.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}

/// Times a closure robustly on a noisy shared machine: warm-up, calibrated samples, the
/// foreign-CPU guard around each sample (rejected samples are re-taken, within a bound), then
/// min and median of what was kept. The clock and the CPU readings are injectable so the logic
/// is testable without real time.
public struct RobustTimer: Sendable {
    public var settings: TimingSettings
    public var guardian: ForeignCPUGuard?
    public var read: @Sendable () -> CPUUsageReading

    public init(settings: TimingSettings, guardian: ForeignCPUGuard?,
                read: @escaping @Sendable () -> CPUUsageReading = { ForeignCPUGuard.read() }) {
        self.settings = settings
        self.guardian = guardian
        self.read = read
    }

    /// Times `body` (one call = one decode step) run by `threads` threads.
    public func time<E: Error>(threads: Int, _ body: () throws(E) -> Void) throws(E) -> TimingResult {
        let s = settings
        for _ in 0..<s.warmups { try body() }
        // Calibrate: calls per sample so a sample lasts ≥ minSampleSeconds.
        let c0 = read()
        try body()
        let c1 = read()
        let one = max(c1.wall - c0.wall, 1e-9)
        let calls = Swift.max(1, Swift.min(s.maxCallsPerSample, Int((s.minSampleSeconds / one).rounded(.up))))

        var kept: [Double] = []
        var all: [Double] = []
        var rejected = 0
        let first = read()
        var last = first
        var taken = 0
        while kept.count < s.samples && taken < s.samples + s.maxExtraSamples {
            let a = read()
            for _ in 0..<calls { try body() }
            let b = read()
            last = b
            taken += 1
            let perCall = Swift.max(b.wall - a.wall, 0) / Double(calls)
            all.append(perCall)
            if let g = guardian, g.verdict(from: a, to: b, threads: threads).significant {
                rejected += 1
            } else {
                kept.append(perCall)
            }
        }
        let overall = guardian?.verdict(from: first, to: last, threads: threads)
        let enough = kept.count >= s.samples
        let noisy = !enough || (rejected == 0 && overall?.significant == true)
        // With too few clean samples, every sample counts (and the result is flagged).
        return TimingResult(kept: enough ? kept : all, rejected: rejected, callsPerSample: calls,
                            foreignShare: overall?.share ?? 0, noisy: noisy)
    }
}

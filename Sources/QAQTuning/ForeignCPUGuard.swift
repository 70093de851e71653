#if canImport(Glibc)
import Glibc
#endif

/// Busy and idle time of each CPU, from one read of `/proc/stat`, in clock ticks
/// (`USER_HZ`, 100 per second on Linux).
public struct ProcStatSnapshot: Sendable, Equatable {
    public struct CPU: Sendable, Equatable {
        /// user + nice + system + irq + softirq + steal. Steal counts: on a VM it is time the
        /// hypervisor gave this vCPU's core to someone else — exactly the interference we guard
        /// against. guest/guest_nice are already inside user/nice and are not added again.
        public var busy: UInt64
        /// idle + iowait.
        public var idle: UInt64
        public init(busy: UInt64, idle: UInt64) {
            self.busy = busy
            self.idle = idle
        }
    }

    /// The aggregate `cpu` line.
    public var total: CPU
    /// Per-CPU lines by OS index (`cpu0`, `cpu1`, …).
    public var cpus: [Int: CPU]

    public init(total: CPU, cpus: [Int: CPU]) {
        self.total = total
        self.cpus = cpus
    }

    /// Parses `/proc/stat` text; nil when it has no `cpu` line with at least four numbers.
    public static func parse(_ text: String) -> ProcStatSnapshot? {
        var total: CPU?
        var cpus: [Int: CPU] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("cpu") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let name = fields.first, fields.count >= 5 else { continue }
            var values: [UInt64] = []
            for f in fields.dropFirst() {
                guard let v = UInt64(f) else { break }
                values.append(v)
            }
            guard values.count >= 4 else { continue }
            func at(_ i: Int) -> UInt64 { i < values.count ? values[i] : 0 }
            // user nice system idle iowait irq softirq steal guest guest_nice
            let (b1, o1) = at(0).addingReportingOverflow(at(1))
            let (b2, o2) = b1.addingReportingOverflow(at(2))
            let (b3, o3) = b2.addingReportingOverflow(at(5))
            let (b4, o4) = b3.addingReportingOverflow(at(6))
            let (busy, o5) = b4.addingReportingOverflow(at(7))
            let (idle, o6) = at(3).addingReportingOverflow(at(4))
            guard !(o1 || o2 || o3 || o4 || o5 || o6) else { continue }
            let cpu = CPU(busy: busy, idle: idle)
            if name == "cpu" {
                total = cpu
            } else if let i = Int(name.dropFirst(3)), i >= 0 {
                cpus[i] = cpu
            }
        }
        guard let total else { return nil }
        return ProcStatSnapshot(total: total, cpus: cpus)
    }

    /// Busy and idle ticks summed over `set` (nil = the aggregate line).
    public func ticks(over set: [Int]?) -> CPU? {
        guard let set, !set.isEmpty else { return total }
        var busy: UInt64 = 0, idle: UInt64 = 0
        for i in set {
            guard let c = cpus[i] else { return nil }
            busy &+= c.busy
            idle &+= c.idle
        }
        return CPU(busy: busy, idle: idle)
    }
}

/// One reading of everything the guard needs: wall clock, the CPUs' ticks, this process's
/// own CPU time.
public struct CPUUsageReading: Sendable, Equatable {
    /// Seconds on a monotonic clock.
    public var wall: Double
    public var stat: ProcStatSnapshot?
    /// This process's user + system CPU seconds (`getrusage(RUSAGE_SELF)`), every thread.
    public var ownCPU: Double

    public init(wall: Double, stat: ProcStatSnapshot?, ownCPU: Double) {
        self.wall = wall
        self.stat = stat
        self.ownCPU = ownCPU
    }
}

/// What other processes did to the CPUs a measurement needed, between two readings.
public struct ForeignCPUVerdict: Sendable, Equatable {
    /// Wall seconds between the readings.
    public var wall: Double
    /// CPU seconds others spent on the watched CPUs: busy time of the set minus our own.
    public var foreignSeconds: Double
    /// Of that, what could not have fitted on the CPUs the measurement left free:
    /// `max(0, foreign − (cpus − threads)·wall − tolerance)`.
    public var contendedSeconds: Double
    /// `contendedSeconds ÷ (threads · wall)`: the share of our threads' CPUs others took, 0…1.
    public var share: Double
    /// `share > threshold`.
    public var significant: Bool
    /// False when /proc/stat could not be read (then nothing is ever flagged).
    public var known: Bool
}

/// The foreign-CPU guard: compares the CPU time all processes spent on the CPUs a measurement
/// uses (`/proc/stat`) with this process's own CPU time (`getrusage`) over the same wall
/// interval. If others used more than the CPUs we left free — so some of their time must have
/// come out of ours — by more than `threshold` of our threads' capacity, the sample is noisy.
///
/// `/proc/stat` counts in ticks (10 ms), so a reading is uncertain by about one tick per CPU at
/// each end; that uncertainty (`tolerance`) is subtracted before judging, which means short
/// samples are flagged only when the interference is large. Pure arithmetic on readings, so it
/// is tested on synthetic `/proc/stat` text.
public struct ForeignCPUGuard: Sendable {
    /// CPUs watched (OS indexes); nil = every CPU (the aggregate line).
    public var cpuSet: [Int]?
    /// CPUs the watched set holds.
    public var cpuCount: Int
    /// Ticks per second of /proc/stat.
    public var ticksPerSecond: Double
    /// Largest share of our CPUs others may take before a sample is noisy.
    public var threshold: Double

    public init(cpuSet: [Int]? = nil, cpuCount: Int, ticksPerSecond: Double = ForeignCPUGuard.systemTicksPerSecond,
                threshold: Double = 0.10) {
        self.cpuSet = cpuSet
        self.cpuCount = max(1, cpuCount)
        self.ticksPerSecond = ticksPerSecond > 0 ? ticksPerSecond : 100
        self.threshold = threshold
    }

    /// `sysconf(_SC_CLK_TCK)`, 100 when unknown.
    public static let systemTicksPerSecond: Double = {
        let t = sysconf(Int32(_SC_CLK_TCK))
        return t > 0 ? Double(t) : 100
    }()

    /// Seconds of measurement uncertainty: two ticks per watched CPU (one at each reading).
    public var tolerance: Double { 2 * Double(cpuCount) / ticksPerSecond }

    /// The verdict for a measurement that ran `threads` threads between `a` and `b`.
    public func verdict(from a: CPUUsageReading, to b: CPUUsageReading, threads: Int) -> ForeignCPUVerdict {
        let wall = max(b.wall - a.wall, 0)
        let n = max(1, min(threads, cpuCount))
        guard let sa = a.stat?.ticks(over: cpuSet), let sb = b.stat?.ticks(over: cpuSet), sb.busy >= sa.busy, wall > 0 else {
            return ForeignCPUVerdict(wall: wall, foreignSeconds: 0, contendedSeconds: 0, share: 0, significant: false, known: false)
        }
        let busy = Double(sb.busy - sa.busy) / ticksPerSecond
        let own = max(b.ownCPU - a.ownCPU, 0)
        let foreign = max(busy - own, 0)
        let free = Double(cpuCount - n) * wall
        let contended = max(0, foreign - free - tolerance)
        let share = min(1, contended / (Double(n) * wall))
        return ForeignCPUVerdict(wall: wall, foreignSeconds: foreign, contendedSeconds: contended, share: share,
                                 significant: share > threshold, known: true)
    }

    /// Reads the current state: monotonic wall clock, /proc/stat and own CPU time.
    public static func read() -> CPUUsageReading {
        let wall = monotonicSeconds()
        let stat = readProcStat()
        var u = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &u)
        let own = Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) * 1e-6
            + Double(u.ru_stime.tv_sec) + Double(u.ru_stime.tv_usec) * 1e-6
        return CPUUsageReading(wall: wall, stat: stat, ownCPU: own)
    }

    /// `/proc/stat`, parsed; nil where it cannot be read (not Linux, a sandbox).
    public static func readProcStat(path: String = "/proc/stat") -> ProcStatSnapshot? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 8192)
        while bytes.count < (1 << 20) {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            bytes.append(contentsOf: buf[0..<n])
            // The cpu lines come first; stop after them.
            if let s = bytes.firstIndex(of: UInt8(ascii: "i")), s > 0, bytes[s - 1] == UInt8(ascii: "\n") { break }
        }
        return ProcStatSnapshot.parse(String(decoding: bytes, as: UTF8.self))
    }
}

/// Seconds on CLOCK_MONOTONIC.
public func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A STREAM-like read probe: how many bytes per second one thread reads from a buffer of
/// a given size with the active kernels' widest loads. Reported beside every kernel
/// figure so that each speed reads as a fraction of what this machine can do.
public struct ReadRoof: Sendable, Codable, Equatable {
    /// Working-set bytes probed.
    public let bytes: Int
    /// Best observed read bandwidth, GB/s (10⁹ bytes per second).
    public let gbps: Double
    /// Median read bandwidth over the repetitions, GB/s.
    public let medianGBps: Double
    /// ISA level of the probe kernel.
    public let isa: ISALevel

    /// Measures the read roof over `bytes` bytes (rounded up to 4 KiB): one warm-up pass,
    /// then `repetitions` timed passes, each at least `minSeconds` long. With `pool`, its
    /// threads read disjoint slices of the buffer at once (the roof at that thread count).
    public static func measure(bytes: Int = 256 << 20, repetitions: Int = 5, minSeconds: Double = 0.05,
                               kernels: KernelSet = .active, pool: WorkerPool? = nil) -> ReadRoof {
        let n = pool?.threads ?? 1
        let size = (max(bytes, 4096 * n) + 4096 * n - 1) / (4096 * n) * (4096 * n)
        let slice = size / n
        let buf = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 4096)
        defer { buf.deallocate() }
        // Touch every page with small finite floats.
        let floats = buf.bindMemory(to: Float.self, capacity: size / 4)
        for i in 0..<(size / 4) { floats[i] = Float(i & 1023) * (1.0 / 1024) }
        let sums = UnsafeMutablePointer<Float>.allocate(capacity: 16 * n)
        defer { sums.deallocate() }
        func pass() -> Float {
            guard let pool else { return kernels.readSum(buf, size) }
            pool.run(items: n) { _, i in sums[16 * i] = kernels.readSum(buf + i * slice, slice) }
            var s: Float = 0
            for i in 0..<n { s += sums[16 * i] }
            return s
        }
        var sink: Float = pass()
        var rates: [Double] = []
        for _ in 0..<repetitions {
            var passes = 0
            let t0 = MonotonicClock.now()
            var t1 = t0
            repeat {
                sink += pass()
                passes += 1
                t1 = MonotonicClock.now()
            } while t1 - t0 < minSeconds
            rates.append(Double(size * passes) / (t1 - t0) / 1e9)
        }
        blackHole(sink)
        rates.sort()
        return ReadRoof(bytes: size, gbps: rates.last!, medianGBps: rates[rates.count / 2], isa: kernels.isa)
    }
}

/// Monotonic time in seconds.
public enum MonotonicClock {
    @inline(__always)
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}

/// Keeps a value alive so the optimizer cannot drop the computation that made it.
@inline(never)
func blackHole<T>(_ x: T) {
    withExtendedLifetime(x) {}
}

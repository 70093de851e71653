// Kernel benchmarks for QAQ: quantize and dequantize per code width, group size and ISA
// level, dot per code width and ISA level, with the read roof (the STREAM-like `readSum` probe) measured in the same run so that
// every kernel figure can be read as a fraction of what this machine can do.
//
//   cd Benchmarks && swift package benchmark --target KernelBenchmarks
//
// Everything runs on one thread (the kernels are single-threaded; `threads=1` in names).
// All buffers are allocated and filled in each benchmark's `setup`, outside the
// measured region; the measured region is exactly one kernel call, so
// `mallocCountTotal` must read 0 (kernels never allocate).
//
// Metrics per benchmark:
// - `Time (wall clock)`: one kernel call over the whole buffer (ReadRoof L2: 16 passes).
//   Quantize and dequantize (4 widths × 3 group sizes × every ISA level) run for at most
//   300 ms each, dot and the roof for 1 s, so that the suite stays within 1–2 minutes.
// - `Throughput (# / s)`: such calls per second.
// - `values/s` (custom, shown in M): vectors × D per second, timed around the call.
//   For `Dot` this counts the packed vectors' elements scored.
// - `bytes/s` (custom, shown in M, i.e. MB/s): for `Dot`, packed record bytes read per
//   second (codes + metadata); for `ReadRoof`, bytes summed per second.
// - `Malloc (total)`: allocations inside the measured region.
//
// Hardware counters (`instructions`) are not used: perf_event_open fails on these VMs
// (DESIGN.md §8). Wall time is noisy here, so `baseline check` gates only the allocation
// count (strict); time-based metrics are reported (`baseline compare`), not gated.
import Benchmark
import QAQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Problem sizes

/// Head dimension D.
private let dim = 128
/// Group sizes G of quantize and dequantize.
private let groupSizes = [32, 64, 128]
/// Group size G of dot.
private let dotGroupSize = 32
/// Code widths benchmarked.
private let widths = [2, 3, 4, 8]
/// Vectors per quantize / dequantize call: 4096 × 128 fp32 = 2 MiB of input (of output).
private let quantizeVectors = 4096
/// Packed vectors per dot call.
private let dotVectors = 16384
/// Read-roof buffers: DRAM-sized (as `ReadRoof.measure`'s default; note that the L3 of
/// these hosts is reported as 260 MiB shared with other tenants, so "DRAM" is what other
/// tenants leave of it) and L2-sized (L1d 48 KiB, L2 2 MiB per core here).
private let roofDRAMBytes = 256 << 20
private let roofCacheBytes = 256 << 10
/// Bytes read per measured call of the roof probe at least (small buffers are read
/// several times per call so that the two clock reads around it cost < 0.1 %).
private let roofBytesPerCall = 4 << 20

// MARK: - Metrics

extension BenchmarkMetric {
    /// Elements (vectors × D) processed per second, timed around the kernel call.
    static var valuesPerSecond: BenchmarkMetric {
        .custom("values/s", polarity: .prefersLarger, useScalingFactor: false)
    }
    /// Bytes read per second, timed around the kernel call.
    static var bytesPerSecond: BenchmarkMetric {
        .custom("bytes/s", polarity: .prefersLarger, useScalingFactor: false)
    }
}

private func configuration(
    rate: [BenchmarkMetric], maxDuration: Duration = .milliseconds(1000), maxIterations: Int = 2000
) -> Benchmark.Configuration {
    // `baseline check` thresholds. Allocations in the measured region: exactly as in the
    // baseline (0) — deterministic, so this is the gate. Time-based metrics: none. Wall
    // time is a report (`baseline compare`), not a gate (DESIGN.md §8): on these shared
    // 2-vCPU VMs medians moved by more than 50 % between runs minutes apart, and the
    // check is symmetric (a large "improvement" fails it too). For a loose time gate use
    // e.g. `BenchmarkThresholds(relative: [.p50: 50.0])` here.
    let metrics: [BenchmarkMetric] = [.wallClock, .throughput] + rate + [.mallocCountTotal]
    let timeThresholds = BenchmarkThresholds.none
    var thresholds: [BenchmarkMetric: BenchmarkThresholds] = [:]
    var units: [BenchmarkMetric: BenchmarkUnits] = [:]
    for metric in metrics { thresholds[metric] = metric == .mallocCountTotal ? .strict : timeThresholds }
    for metric in rate { units[metric] = .mega }
    return .init(
        metrics: metrics,
        units: units,
        warmupIterations: 3,
        maxDuration: maxDuration,
        maxIterations: maxIterations,
        thresholds: thresholds)
}

/// Quantize and dequantize run per (ISA level, width, group size): 36 each with three ISA
/// levels, 300 ms each.
private let codecCases = ISALevel.available.flatMap { isa in
    widths.flatMap { bits in groupSizes.map { group in (isa: isa, bits: bits, group: group) } }
}
private let codecDuration = Duration.milliseconds(300)

/// "Quantize b=4 v4 D=128 G=64 threads=1". Parameters live in the name, not in tags:
/// `--filter` is matched against the name with and without tags, so with tags a filter
/// could not select one width or ISA level. Select with e.g. `--filter 'Dot b=4 .*'`,
/// `--filter '.* v4 .*'` or `--filter 'Dequantize .* G=128 .*'` (the regex must match the
/// whole name).
private func kernelName(_ kernel: String, bits: Int, isa: ISALevel, group: Int) -> String {
    "\(kernel) b=\(bits) \(isa) D=\(dim) G=\(group) threads=1"
}

// MARK: - Timing and data

/// Monotonic nanoseconds.
@inline(__always)
private func nanosecondsNow() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// `amount` per second over `nanoseconds`, as an integer metric value.
private func perSecond(_ amount: Int, _ nanoseconds: UInt64) -> Int {
    Int((Double(amount) * 1e9 / Double(max(nanoseconds, 1))).rounded())
}

/// A page-aligned, zero-filled buffer owned by a benchmark's setup state.
private final class AlignedBuffer {
    let pointer: UnsafeMutableRawPointer
    let byteCount: Int

    init(byteCount: Int) {
        self.byteCount = byteCount
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 64), alignment: 4096)
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: max(byteCount, 64))
    }

    deinit { pointer.deallocate() }

    var floats: UnsafeMutablePointer<Float> { pointer.assumingMemoryBound(to: Float.self) }
}

/// `count × dim` fp32 values shaped like K/V activations: roughly Gaussian per element,
/// with a per-channel scale so that groups differ in range. Deterministic.
private func activations(vectors count: Int) -> AlignedBuffer {
    let buffer = AlignedBuffer(byteCount: count * dim * MemoryLayout<Float>.stride)
    let floats = buffer.pointer.bindMemory(to: Float.self, capacity: count * dim)
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    func uniform() -> Float {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Float(state >> 40) * (1.0 / Float(1 << 24)) // [0, 1)
    }
    for t in 0..<count {
        for e in 0..<dim {
            let channelScale: Float = 0.25 + Float((e * 37) % 16) * 0.25
            let gauss = (uniform() + uniform() + uniform() + uniform() - 2) * 1.7
            floats[t * dim + e] = gauss * channelScale
        }
    }
    return buffer
}

private func makeLayout(bits: Int, group: Int) -> PackedLayout {
    do {
        return try PackedLayout(dim: dim, groupSize: group, bits: bits)
    } catch {
        fatalError("benchmark layout D=\(dim) G=\(group) b=\(bits): \(error)")
    }
}

/// Packs `count` activation vectors with `kernels` (once, in setup).
private func packed(vectors count: Int, layout: PackedLayout, kernels: KernelSet) -> AlignedBuffer {
    let source = activations(vectors: count)
    let records = AlignedBuffer(byteCount: count * layout.recordBytes)
    let status = kernels.quantize(source.pointer, .float32, count, dim, layout, records.pointer)
    precondition(status.code == .ok, "setup quantize failed: \(status)")
    return records
}

// MARK: - Setup states

private final class QuantizeState {
    let kernels: KernelSet
    let layout: PackedLayout
    let source: AlignedBuffer
    let records: AlignedBuffer

    init(isa: ISALevel, bits: Int, group: Int) {
        kernels = KernelSet.forLevel(isa)
        layout = makeLayout(bits: bits, group: group)
        source = activations(vectors: quantizeVectors)
        records = AlignedBuffer(byteCount: quantizeVectors * layout.recordBytes)
    }
}

private final class DotState {
    let kernels: KernelSet
    let layout: PackedLayout
    let records: AlignedBuffer
    let query: AlignedBuffer
    let scores: AlignedBuffer

    init(isa: ISALevel, bits: Int) {
        kernels = KernelSet.forLevel(isa)
        layout = makeLayout(bits: bits, group: dotGroupSize)
        records = packed(vectors: dotVectors, layout: layout, kernels: kernels)
        query = activations(vectors: 1)
        scores = AlignedBuffer(byteCount: dotVectors * MemoryLayout<Float>.stride)
    }
}

private final class DequantizeState {
    let kernels: KernelSet
    let layout: PackedLayout
    let records: AlignedBuffer
    let output: AlignedBuffer

    init(isa: ISALevel, bits: Int, group: Int) {
        kernels = KernelSet.forLevel(isa)
        layout = makeLayout(bits: bits, group: group)
        records = packed(vectors: quantizeVectors, layout: layout, kernels: kernels)
        output = AlignedBuffer(byteCount: quantizeVectors * dim * MemoryLayout<Float>.stride)
    }
}

private final class RoofState {
    let kernels: KernelSet
    let buffer: AlignedBuffer

    init(isa: ISALevel, bytes: Int) {
        kernels = KernelSet.forLevel(isa)
        buffer = AlignedBuffer(byteCount: bytes)
        // Small finite floats on every page (as `ReadRoof.measure` does).
        let floats = buffer.pointer.bindMemory(to: Float.self, capacity: bytes / 4)
        for i in 0..<(bytes / 4) { floats[i] = Float(i & 1023) * (1.0 / 1024) }
    }
}

// MARK: - Suite

let benchmarks: @Sendable () -> Void = {
    let best = ISALevel.detected

    // 1. Quantize: fp32 → packed records, per width, group size and ISA level.
    for (isa, bits, group) in codecCases {
        Benchmark(
            kernelName("Quantize", bits: bits, isa: isa, group: group),
            configuration: configuration(rate: [.valuesPerSecond], maxDuration: codecDuration)
        ) { benchmark, state in
            let count = quantizeVectors
            benchmark.startMeasurement()
            let t0 = nanosecondsNow()
            let status = state.kernels.quantize(
                state.source.pointer, .float32, count, dim, state.layout, state.records.pointer)
            let t1 = nanosecondsNow()
            benchmark.stopMeasurement()
            Benchmark.blackHole(status)
            Benchmark.blackHole(state.records.pointer.load(as: UInt8.self))
            if status.code != .ok { benchmark.error("quantize failed: \(status)") }
            benchmark.measurement(.valuesPerSecond, perSecond(count * dim, t1 - t0))
        } setup: {
            QuantizeState(isa: isa, bits: bits, group: group)
        }
    }

    // 2. Dot: one fp32 query against packed records, per width and ISA level (G=32).
    for isa in ISALevel.available {
        for bits in widths {
            Benchmark(
                kernelName("Dot", bits: bits, isa: isa, group: dotGroupSize),
                configuration: configuration(rate: [.valuesPerSecond, .bytesPerSecond])
            ) { benchmark, state in
                let count = dotVectors
                let query = UnsafePointer(state.query.floats)
                benchmark.startMeasurement()
                let t0 = nanosecondsNow()
                state.kernels.dot(query, state.records.pointer, count, state.layout, state.scores.floats)
                let t1 = nanosecondsNow()
                benchmark.stopMeasurement()
                Benchmark.blackHole(state.scores.floats[count - 1])
                benchmark.measurement(.valuesPerSecond, perSecond(count * dim, t1 - t0))
                benchmark.measurement(.bytesPerSecond, perSecond(count * state.layout.recordBytes, t1 - t0))
            } setup: {
                DotState(isa: isa, bits: bits)
            }
        }
    }

    // 3. Dequantize: packed records → fp32, per width, group size and ISA level (the records
    //    are packed in setup by the same level's quantize).
    for (isa, bits, group) in codecCases {
        Benchmark(
            kernelName("Dequantize", bits: bits, isa: isa, group: group),
            configuration: configuration(rate: [.valuesPerSecond], maxDuration: codecDuration)
        ) { benchmark, state in
            let count = quantizeVectors
            benchmark.startMeasurement()
            let t0 = nanosecondsNow()
            state.kernels.dequantize(state.records.pointer, count, state.layout, state.output.floats, dim)
            let t1 = nanosecondsNow()
            benchmark.stopMeasurement()
            Benchmark.blackHole(state.output.floats[count * dim - 1])
            benchmark.measurement(.valuesPerSecond, perSecond(count * dim, t1 - t0))
        } setup: {
            DequantizeState(isa: isa, bits: bits, group: group)
        }
    }

    // 4. Read roof: `readSum` over a DRAM-sized and a cache-sized buffer, best ISA level.
    //    One measured call reads the buffer `passes` times (1 for DRAM, 16 for L2).
    for (level, bytes) in [("DRAM", roofDRAMBytes), ("L2", roofCacheBytes)] {
        let size = bytes >= (1 << 20) ? "\(bytes >> 20)MiB" : "\(bytes >> 10)KiB"
        let passes = max(1, roofBytesPerCall / bytes)
        Benchmark(
            "ReadRoof \(level) \(size) \(best) threads=1",
            configuration: configuration(rate: [.bytesPerSecond])
        ) { benchmark, state in
            let buffer = state.buffer
            var sum: Float = 0
            benchmark.startMeasurement()
            let t0 = nanosecondsNow()
            for _ in 0..<passes { sum += state.kernels.readSum(buffer.pointer, buffer.byteCount) }
            let t1 = nanosecondsNow()
            benchmark.stopMeasurement()
            Benchmark.blackHole(sum)
            benchmark.measurement(.bytesPerSecond, perSecond(passes * buffer.byteCount, t1 - t0))
        } setup: {
            RoofState(isa: best, bytes: bytes)
        }
    }
}

/// Timed runs of the kernels over buffers they own, for `qaq bench` and the planner.
/// Each figure comes with the read roof measured in the same process, at the same
/// working-set size, so it reads as a fraction of what this machine can do.
public enum KernelBench {
    /// The result of timing one kernel.
    public struct Result: Codable, Sendable {
        public var kernel: String
        public var isa: ISALevel
        public var dim: Int
        public var groupSize: Int
        public var bits: Int
        public var outliers: Int
        public var vectors: Int
        public var threads: Int
        /// Median seconds of one pass over all vectors.
        public var seconds: Double
        /// Fastest pass.
        public var minSeconds: Double
        /// Values (elements) processed per second, 10⁹.
        public var gvaluesPerSecond: Double
        /// Kernel input bytes read per second, 10⁹ (fp32 input for quantize, packed bytes for dot).
        public var inputGBps: Double
        /// Packed bytes per vector, all overheads included.
        public var recordBytes: Int
        public var bitsPerElement: Double
        /// Read roof measured in the same run over a buffer of the same size as the input.
        public var roofGBps: Double
        /// inputGBps ÷ roofGBps.
        public var fractionOfRoof: Double
        /// Same kernel through the scalar reference, seconds per pass (nil if not measured).
        public var referenceSeconds: Double?
        /// Speed-up over the scalar reference.
        public var speedupVsReference: Double?
    }

    /// Times `quantize` of `vectors` random rows of `layout.dim` fp32 values.
    public static func quantize(layout: PackedLayout, vectors: Int, kernels: KernelSet,
                                repetitions: Int = 7, withReference: Bool = false) -> Result {
        let d = layout.dim
        let src = UnsafeMutablePointer<Float>.allocate(capacity: vectors * d)
        defer { src.deallocate() }
        fillRows(src, count: vectors * d)
        let dst = UnsafeMutableRawPointer.allocate(byteCount: vectors * layout.recordBytes, alignment: 64)
        defer { dst.deallocate() }
        let times = time(repetitions) { _ = kernels.quantize(src, .float32, vectors, d, layout, dst) }
        var refTime: Double?
        if withReference {
            let n = min(vectors, 512)
            refTime = time(3) { _ = KernelSet.reference.quantize(src, .float32, n, d, layout, dst) }.median * Double(vectors) / Double(n)
        }
        let bytes = vectors * d * 4
        return result("quantize", layout, vectors, kernels.isa, times, values: vectors * d, inputBytes: bytes,
                      roofBytes: bytes, kernels: kernels, referenceSeconds: refTime)
    }

    /// Times `dot` of one query against `vectors` packed vectors.
    public static func dot(layout: PackedLayout, vectors: Int, kernels: KernelSet,
                           repetitions: Int = 7, withReference: Bool = false) -> Result {
        let d = layout.dim
        let src = UnsafeMutablePointer<Float>.allocate(capacity: vectors * d)
        defer { src.deallocate() }
        fillRows(src, count: vectors * d)
        let packed = UnsafeMutableRawPointer.allocate(byteCount: vectors * layout.recordBytes, alignment: 64)
        defer { packed.deallocate() }
        _ = kernels.quantize(src, .float32, vectors, d, layout, packed)
        let out = UnsafeMutablePointer<Float>.allocate(capacity: vectors)
        defer { out.deallocate() }
        let times = time(repetitions) { kernels.dot(src, packed, vectors, layout, out) }
        var refTime: Double?
        if withReference {
            let n = min(vectors, 256)
            refTime = time(3) { KernelSet.reference.dot(src, packed, n, layout, out) }.median * Double(vectors) / Double(n)
        }
        let bytes = vectors * layout.recordBytes
        return result("dot", layout, vectors, kernels.isa, times, values: vectors * d, inputBytes: bytes,
                      roofBytes: bytes, kernels: kernels, referenceSeconds: refTime)
    }

    static func result(_ name: String, _ layout: PackedLayout, _ vectors: Int, _ isa: ISALevel,
                       _ times: (median: Double, min: Double), values: Int, inputBytes: Int, roofBytes: Int,
                       kernels: KernelSet, referenceSeconds: Double?) -> Result {
        let roof = ReadRoof.measure(bytes: roofBytes, repetitions: 5, minSeconds: 0.02, kernels: kernels)
        let gbps = Double(inputBytes) / times.median / 1e9
        return Result(
            kernel: name, isa: isa, dim: layout.dim, groupSize: layout.groupSize, bits: layout.bits,
            outliers: layout.outlierCount, vectors: vectors, threads: 1, seconds: times.median, minSeconds: times.min,
            gvaluesPerSecond: Double(values) / times.median / 1e9, inputGBps: gbps,
            recordBytes: layout.recordBytes, bitsPerElement: layout.bitsPerElement,
            roofGBps: roof.medianGBps, fractionOfRoof: gbps / roof.medianGBps,
            referenceSeconds: referenceSeconds, speedupVsReference: referenceSeconds.map { $0 / times.median })
    }

    /// Median and minimum seconds of `body` over `repetitions` runs after one warm-up.
    public static func time(_ repetitions: Int, _ body: () -> Void) -> (median: Double, min: Double) {
        body()
        var samples: [Double] = []
        samples.reserveCapacity(repetitions)
        for _ in 0..<max(1, repetitions) {
            let t0 = MonotonicClock.now()
            body()
            samples.append(MonotonicClock.now() - t0)
        }
        samples.sort()
        return (samples[samples.count / 2], samples[0])
    }

    /// Deterministic K/V-like data: a cheap Gaussian-ish mix with a few large channels.
    static func fillRows(_ p: UnsafeMutablePointer<Float>, count: Int) {
        var s: UInt64 = 0x1234_5678
        for i in 0..<count {
            s = s &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let a = Float(UInt32(truncatingIfNeeded: s >> 33) & 0xFFFF) / 65536
            let b = Float(UInt32(truncatingIfNeeded: s >> 17) & 0xFFFF) / 65536
            p[i] = (a + b - 1) * ((i % 64) == 5 ? 8 : 1)
        }
    }
}

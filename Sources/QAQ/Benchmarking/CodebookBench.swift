extension KernelBench {
    /// Times the code-map quantizer (`RotatedCodebookCodec.encode`, the cache's path) over
    /// `vectors` random rows of `dim` fp32 values at `bits` bits with one fp16 scale per
    /// vector: with the Hadamard rotation (`rotated`, the rlm formats) or on the rows as
    /// they are. Input GB/s counts the fp32 rows.
    public static func codebookQuantize(dim: Int, bits: Int, rotated: Bool, vectors: Int, kernels: KernelSet,
                                        repetitions: Int = 7, withReference: Bool = false) throws -> Result {
        let codec = try RotatedCodebookCodec(dim: dim, bits: bits, rotation: rotated ? .defaultHadamard : .none,
                                             kernels: kernels)
        let layout = codec.layout
        let src = UnsafeMutablePointer<Float>.allocate(capacity: vectors * dim)
        defer { src.deallocate() }
        fillRows(src, count: vectors * dim)
        let dst = UnsafeMutableRawPointer.allocate(byteCount: vectors * layout.recordBytes, alignment: 64)
        defer { dst.deallocate() }
        let times = time(repetitions) { try? codec.encode(src, count: vectors, into: dst) }
        var refTime: Double?
        if withReference {
            let n = min(vectors, 512)
            let ref = try RotatedCodebookCodec(dim: dim, bits: bits, rotation: rotated ? .defaultHadamard : .none,
                                               kernels: .reference)
            refTime = time(3) { try? ref.encode(src, count: n, into: dst) }.median * Double(vectors) / Double(n)
        }
        let bytes = vectors * dim * 4
        let roof = ReadRoof.measure(bytes: bytes, repetitions: 5, minSeconds: 0.02, kernels: kernels)
        let gbps = Double(bytes) / times.median / 1e9
        return Result(
            kernel: rotated ? "quantize-rotated" : "quantize-codebook", isa: kernels.isa, dim: dim, groupSize: dim,
            bits: bits, outliers: 0, vectors: vectors, threads: 1, seconds: times.median, minSeconds: times.min,
            gvaluesPerSecond: Double(vectors * dim) / times.median / 1e9, inputGBps: gbps,
            recordBytes: layout.recordBytes, bitsPerElement: layout.bitsPerElement,
            roofGBps: roof.medianGBps, fractionOfRoof: gbps / roof.medianGBps,
            referenceSeconds: refTime, speedupVsReference: refTime.map { $0 / times.median })
    }
}

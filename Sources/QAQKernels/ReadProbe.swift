extension Kernels {
    /// A STREAM-like read probe: sums `byteCount` bytes (a multiple of 256) as fp32 with
    /// four independent accumulators. Returns the sum so the reads cannot be elided.
    /// Bytes ÷ time is the read roof the benchmarks report beside every kernel.
    public static func readSum(_ p: UnsafeRawPointer, byteCount: Int) -> Float {
        var a0 = F32x16(), a1 = F32x16(), a2 = F32x16(), a3 = F32x16()
        var off = 0
        while off + 256 <= byteCount {
            a0 += p.loadUnaligned(fromByteOffset: off, as: F32x16.self)
            a1 += p.loadUnaligned(fromByteOffset: off + 64, as: F32x16.self)
            a2 += p.loadUnaligned(fromByteOffset: off + 128, as: F32x16.self)
            a3 += p.loadUnaligned(fromByteOffset: off + 192, as: F32x16.self)
            off += 256
        }
        return hsum((a0 + a1) + (a2 + a3))
    }
}

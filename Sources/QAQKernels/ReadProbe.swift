extension Kernels {
    /// A STREAM-like read probe: sums `byteCount` bytes (a multiple of 512) as fp32 with
    /// eight independent accumulators (enough to hide the add latency at two loads per
    /// cycle). Returns the sum so the reads cannot be elided.
    /// Bytes ÷ time is the read roof the benchmarks report beside every kernel.
    public static func readSum(_ p: UnsafeRawPointer, byteCount: Int) -> Float {
        var a0 = F32x16(), a1 = F32x16(), a2 = F32x16(), a3 = F32x16()
        var a4 = F32x16(), a5 = F32x16(), a6 = F32x16(), a7 = F32x16()
        var off = 0
        while off + 512 <= byteCount {
            a0 += p.loadUnaligned(fromByteOffset: off, as: F32x16.self)
            a1 += p.loadUnaligned(fromByteOffset: off + 64, as: F32x16.self)
            a2 += p.loadUnaligned(fromByteOffset: off + 128, as: F32x16.self)
            a3 += p.loadUnaligned(fromByteOffset: off + 192, as: F32x16.self)
            a4 += p.loadUnaligned(fromByteOffset: off + 256, as: F32x16.self)
            a5 += p.loadUnaligned(fromByteOffset: off + 320, as: F32x16.self)
            a6 += p.loadUnaligned(fromByteOffset: off + 384, as: F32x16.self)
            a7 += p.loadUnaligned(fromByteOffset: off + 448, as: F32x16.self)
            off += 512
        }
        return hsum(((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)))
    }
}

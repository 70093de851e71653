import QAQ

/// Every kernel set this machine can run, plus the scalar reference.
public enum TestKernels {
    /// One `KernelSet` per ISA level available on this CPU.
    public static var available: [KernelSet] { ISALevel.available.map(KernelSet.forLevel) }
}

/// Packs with a kernel set; returns the bytes and the status.
public func pack(_ values: [Float], layout: PackedLayout, kernels: KernelSet,
                 elementType: ElementType = .float32) -> (bytes: [UInt8], status: KernelStatus) {
    let count = values.count / layout.dim
    var out = [UInt8](repeating: 0xAB, count: count * layout.recordBytes)
    let status: KernelStatus
    if elementType == .float16 {
        let halves = values.map { Float16($0) }
        status = halves.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { dst in
                kernels.quantize(src.baseAddress!, .float16, count, layout.dim, layout, dst.baseAddress!)
            }
        }
    } else {
        status = values.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { dst in
                kernels.quantize(src.baseAddress!, .float32, count, layout.dim, layout, dst.baseAddress!)
            }
        }
    }
    return (out, status)
}

/// Dequantizes packed bytes with a kernel set.
public func unpack(_ bytes: [UInt8], layout: PackedLayout, kernels: KernelSet) -> [Float] {
    let count = bytes.count / layout.recordBytes
    var out = [Float](repeating: .nan, count: count * layout.dim)
    bytes.withUnsafeBytes { src in
        out.withUnsafeMutableBufferPointer { dst in
            kernels.dequantize(src.baseAddress!, count, layout, dst.baseAddress!, layout.dim)
        }
    }
    return out
}

/// The layouts the tests sweep: every supported width × group × head dimension.
public func sweepLayouts(dims: [Int] = [64, 80, 96, 128, 256], outliers: [Int] = [0, 2]) -> [PackedLayout] {
    var result: [PackedLayout] = []
    for d in dims {
        for g in Set([32, 64, 128, d]).sorted() where d % g == 0 {
            for b in PackedLayout.supportedBits {
                for k in outliers {
                    result.append(try! PackedLayout(dim: d, groupSize: g, bits: b, outlierCount: k))
                }
            }
        }
    }
    return result
}

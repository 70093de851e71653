/// A run of packed vectors (records of one ``PackedLayout``) in one owned, 64-byte
/// aligned buffer: the public face of the quantize / dequantize / dot / accumulate
/// kernels for users who do not manage raw memory.
///
/// Numerical contract: for every non-outlier element `|x − x̂| ≤ step/2` of its group
/// (up to fp32 rounding of `lo + (c + ½)·step`); outliers are their fp16 value exactly.
public final class PackedVectors: @unchecked Sendable {
    /// The layout of every record.
    public let layout: PackedLayout
    /// Number of vectors.
    public let count: Int
    /// The kernels used for this buffer's operations.
    public let kernels: KernelSet
    /// `count × layout.recordBytes` bytes.
    public let bytes: UnsafeMutableRawPointer

    /// Total bytes held (codes, metadata, outliers).
    public var byteCount: Int { count * layout.recordBytes }

    private init(layout: PackedLayout, count: Int, kernels: KernelSet) {
        self.layout = layout
        self.count = count
        self.kernels = kernels
        self.bytes = UnsafeMutableRawPointer.allocate(byteCount: max(1, count * layout.recordBytes), alignment: 64)
    }

    deinit { bytes.deallocate() }

    /// Quantizes fp32 `values` (row-major, `count × layout.dim`).
    public static func quantizing(_ values: UnsafeBufferPointer<Float>, layout: PackedLayout,
                                  kernels: KernelSet = .active) throws(QuantizationError) -> PackedVectors {
        try make(UnsafeRawBufferPointer(values), .float32, layout, kernels)
    }

    /// Quantizes fp16 `values` (row-major, `count × layout.dim`).
    public static func quantizing(_ values: UnsafeBufferPointer<Float16>, layout: PackedLayout,
                                  kernels: KernelSet = .active) throws(QuantizationError) -> PackedVectors {
        try make(UnsafeRawBufferPointer(values), .float16, layout, kernels)
    }

    /// Quantizes an fp32 array (row-major, `count × layout.dim`).
    public static func quantizing(_ values: [Float], layout: PackedLayout,
                                  kernels: KernelSet = .active) throws(QuantizationError) -> PackedVectors {
        let result = values.withUnsafeBufferPointer { buf in
            Result { () throws(QuantizationError) in try make(UnsafeRawBufferPointer(buf), .float32, layout, kernels) }
        }
        return try result.get()
    }

    private static func make(_ raw: UnsafeRawBufferPointer, _ elementType: ElementType, _ layout: PackedLayout,
                             _ kernels: KernelSet) throws(QuantizationError) -> PackedVectors {
        let elements = raw.count / elementType.byteCount
        guard elements % layout.dim == 0 else {
            throw .shapeMismatch(expected: "a multiple of D = \(layout.dim) elements", got: "\(elements) elements")
        }
        let out = PackedVectors(layout: layout, count: elements / layout.dim, kernels: kernels)
        guard out.count > 0, let base = raw.baseAddress else { return out }
        let status = kernels.quantize(base, elementType, out.count, layout.dim, layout, out.bytes)
        if status.code != .ok { throw QuantizationError(status) }
        return out
    }

    /// The dequantized values, row-major `count × dim`.
    public func dequantized() -> [Float] {
        [Float](unsafeUninitializedCapacity: count * layout.dim) { buf, n in
            if count > 0 { kernels.dequantize(bytes, count, layout, buf.baseAddress!, layout.dim) }
            n = count * layout.dim
        }
    }

    /// `q · x̂ₜ` for every vector t.
    public func dot(_ query: [Float]) throws(QuantizationError) -> [Float] {
        guard query.count == layout.dim else {
            throw .shapeMismatch(expected: "query of \(layout.dim) elements", got: "\(query.count)")
        }
        return [Float](unsafeUninitializedCapacity: count) { out, n in
            query.withUnsafeBufferPointer { q in
                if count > 0 { kernels.dot(q.baseAddress!, bytes, count, layout, out.baseAddress!) }
            }
            n = count
        }
    }

    /// `Σₜ w[t]·x̂ₜ`, a vector of `dim` elements.
    public func weightedSum(_ weights: [Float]) throws(QuantizationError) -> [Float] {
        guard weights.count == count else {
            throw .shapeMismatch(expected: "\(count) weights", got: "\(weights.count)")
        }
        var acc = [Float](repeating: 0, count: layout.dim)
        weights.withUnsafeBufferPointer { w in
            acc.withUnsafeMutableBufferPointer { a in
                if count > 0 { kernels.accumulate(w.baseAddress!, bytes, count, layout, a.baseAddress!) }
            }
        }
        return acc
    }

    /// The same vectors with `bits` bits per code: codes shifted right, steps doubled per
    /// bit. Equal, byte for byte, to quantizing the originals at `bits` (nesting property).
    public func lower(bits: Int) throws(QuantizationError) -> PackedVectors {
        guard bits <= layout.bits, bits >= 1 else { throw .cannotLower(from: layout.bits, to: bits) }
        let target: PackedLayout
        do { target = try layout.lowered(by: layout.bits - bits) } catch { throw .cannotLower(from: layout.bits, to: bits) }
        let out = PackedVectors(layout: target, count: count, kernels: kernels)
        if count > 0 { kernels.lower(bytes, count, layout, target, out.bytes) }
        return out
    }

    /// The raw bytes of record `i`.
    public func record(_ i: Int) -> UnsafeRawBufferPointer {
        precondition(i >= 0 && i < count, "record index \(i) out of 0..<\(count)")
        return UnsafeRawBufferPointer(start: bytes + i * layout.recordBytes, count: layout.recordBytes)
    }
}

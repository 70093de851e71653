import QAQLayout

extension Kernels {
    /// Quantizes `count` vectors into consecutive packed records.
    ///
    /// - Parameters:
    ///   - src: first element of the first vector (fp32 or fp16, per `elementType`).
    ///   - srcStride: elements from one vector's start to the next.
    ///   - dst: `count × layout.recordBytes` bytes; fully overwritten.
    /// - Returns: `.ok`, or the first failing vector (NaN/Inf input, or a magnitude that
    ///   does not fit fp16); records before it are written, later ones are not touched.
    ///
    /// Codes: `c = min(⌊(x − lo)·(1/step)⌋, 2^b − 1)` in fp32 (no FMA), bit-exact with
    /// ``Reference/quantize(_:elementType:count:srcStride:layout:dst:)``.
    public static func quantize(
        _ src: UnsafeRawPointer, elementType: ElementType, count: Int, srcStride: Int,
        layout: PackedLayout, dst: UnsafeMutableRawPointer
    ) -> KernelStatus {
        let isF16 = elementType == .float16
        let esize = elementType.byteCount
        let slotsPerGroup = layout.groupSize / 16
        let table = layout.slots
        let maxCode = U32x16(repeating: layout.maxCode)
        let magic = F32x16(repeating: 8_388_608)
        for v in 0..<count {
            let x0 = src + v * srcStride * esize
            let record = dst + v * layout.recordBytes
            // Pass 1: finiteness and the vector's range.
            var bad = F32x16()
            var vmin = F32x16(repeating: .infinity), vmax = F32x16(repeating: -.infinity)
            for s in 0..<layout.slotCount {
                let x = loadElements(x0, isF16, 16 * s)
                bad += x * F32x16(repeating: 0)
                vmin = vmin.replacing(with: x, where: x .< vmin)
                vmax = vmax.replacing(with: x, where: x .> vmax)
            }
            if hsum(bad) != 0 { return KernelStatus(code: .nonFinite, vector: v) }  // NaN != 0 too
            if hmin(vmin) < -65504 || hmax(vmax) > 65504 { return KernelStatus(code: .outOfFloat16Range, vector: v) }

            let outliers = selectOutliers(x0, isF16, dim: layout.dim, count: layout.outlierCount)
            let hasOutliers = layout.outlierCount > 0
            // Zero the codes; they are ORed in slot by slot.
            record.initializeMemory(as: UInt8.self, repeating: 0, count: layout.codeBytes)
            for g in 0..<layout.groupCount {
                var gmin = F32x16(repeating: .infinity), gmax = F32x16(repeating: -.infinity)
                for s in (g * slotsPerGroup)..<((g + 1) * slotsPerGroup) {
                    let x = loadElements(x0, isF16, 16 * s)
                    var lanesMin = x, lanesMax = x
                    if hasOutliers {
                        let isOutlier = ((U32x16(repeating: outliers[s]) &>> laneIndex) & U32x16(repeating: 1)) .!= U32x16()
                        lanesMin.replace(with: F32x16(repeating: .infinity), where: isOutlier)
                        lanesMax.replace(with: F32x16(repeating: -.infinity), where: isOutlier)
                    }
                    gmin = gmin.replacing(with: lanesMin, where: lanesMin .< gmin)
                    gmax = gmax.replacing(with: lanesMax, where: lanesMax .> gmax)
                }
                guard let (lo, step) = groupParameters(min: hmin(gmin), max: hmax(gmax), bits: layout.bits) else {
                    return KernelStatus(code: .outOfFloat16Range, vector: v)
                }
                record.storeBytes(of: lo, toByteOffset: layout.metadataOffset + 4 * g, as: Float16.self)
                record.storeBytes(of: step, toByteOffset: layout.metadataOffset + 4 * g + 2, as: Float16.self)
                let lov = F32x16(repeating: Float(lo))
                let inv = F32x16(repeating: reciprocal(step))
                for s in (g * slotsPerGroup)..<((g + 1) * slotsPerGroup) {
                    let x = loadElements(x0, isF16, 16 * s)
                    var y = (x - lov) * inv
                    if hasOutliers {
                        let isOutlier = ((U32x16(repeating: outliers[s]) &>> laneIndex) & U32x16(repeating: 1)) .!= U32x16()
                        y.replace(with: F32x16(), where: isOutlier)
                    }
                    // floor(y) for 0 ≤ y < 2^23: round to nearest by the magic add, then
                    // step down where that rounded up.
                    let t = y + magic
                    var c = unsafeBitCast(t, to: U32x16.self) & U32x16(repeating: 0x7F_FFFF)
                    c.replace(with: c &- U32x16(repeating: 1), where: (t - magic) .> y)
                    c.replace(with: maxCode, where: c .> maxCode)
                    packSlot(record, table, s, c)
                }
            }
            if hasOutliers { storeOutliers(x0, isF16, outliers, layout, record) }
        }
        return .ok
    }
}

extension Reference {
    /// Scalar reference of ``Kernels/quantize(_:elementType:count:srcStride:layout:dst:)``:
    /// element by element, codes packed bit by bit from the layout's definition.
    public static func quantize(
        _ src: UnsafeRawPointer, elementType: ElementType, count: Int, srcStride: Int,
        layout: PackedLayout, dst: UnsafeMutableRawPointer
    ) -> KernelStatus {
        let isF16 = elementType == .float16
        let esize = elementType.byteCount
        for v in 0..<count {
            let x0 = src + v * srcStride * esize
            let record = dst + v * layout.recordBytes
            for i in 0..<layout.dim {
                let x = loadElement(x0, isF16, i)
                if !x.isFinite { return KernelStatus(code: .nonFinite, vector: v) }
                if x.magnitude > 65504 { return KernelStatus(code: .outOfFloat16Range, vector: v) }
            }
            let outliers = selectOutliers(x0, isF16, dim: layout.dim, count: layout.outlierCount)
            func isOutlier(_ i: Int) -> Bool { (outliers[i >> 4] >> UInt32(i & 15)) & 1 == 1 }
            for i in 0..<layout.codeBytes { record.storeBytes(of: 0, toByteOffset: i, as: UInt8.self) }
            for g in 0..<layout.groupCount {
                var mn = Float.infinity, mx = -Float.infinity
                for i in (g * layout.groupSize)..<((g + 1) * layout.groupSize) where !isOutlier(i) {
                    let x = loadElement(x0, isF16, i)
                    if x < mn { mn = x }
                    if x > mx { mx = x }
                }
                guard let (lo, step) = groupParameters(min: mn, max: mx, bits: layout.bits) else {
                    return KernelStatus(code: .outOfFloat16Range, vector: v)
                }
                record.storeBytes(of: lo, toByteOffset: layout.metadataOffset + 4 * g, as: Float16.self)
                record.storeBytes(of: step, toByteOffset: layout.metadataOffset + 4 * g + 2, as: Float16.self)
                let inv = reciprocal(step)
                for i in (g * layout.groupSize)..<((g + 1) * layout.groupSize) {
                    var code: UInt32 = 0
                    if !isOutlier(i) {
                        let y = (loadElement(x0, isF16, i) - Float(lo)) * inv
                        code = UInt32(y.rounded(.down))
                        if code > layout.maxCode { code = layout.maxCode }
                    }
                    setCode(record, layout, element: i, code: code)
                }
            }
            if layout.outlierCount > 0 { storeOutliers(x0, isF16, outliers, layout, record) }
        }
        return .ok
    }

    /// Reads the code of element `i` bit by bit from the lane-slice definition.
    public static func code(_ record: UnsafeRawPointer, _ layout: PackedLayout, element i: Int) -> UInt32 {
        let (s, l) = (i / 16, i % 16)
        let t = layout.slots
        var c = laneBits(record, t.stream0[s], lane: l, count: t.bits0)
        if t.bits1 != 0 { c |= laneBits(record, t.stream1[s], lane: l, count: 1) << 2 }
        return c
    }

    /// Writes the code of element `i` bit by bit (the bits must be zero before).
    static func setCode(_ record: UnsafeMutableRawPointer, _ layout: PackedLayout, element i: Int, code: UInt32) {
        let (s, l) = (i / 16, i % 16)
        let t = layout.slots
        if t.bits1 != 0 {
            setLaneBits(record, t.stream0[s], lane: l, count: 2, value: code & 3)
            setLaneBits(record, t.stream1[s], lane: l, count: 1, value: code >> 2)
        } else {
            setLaneBits(record, t.stream0[s], lane: l, count: t.bits0, value: code)
        }
    }

    /// Absolute bit position of bit `j` of lane `l` of a slot entry.
    static func bitPosition(_ entry: UInt32, lane l: Int, bit j: Int) -> Int {
        let w = SlotTable.width(entry)
        // w ≥ 8: lanes interleave over 32-bit units (unit l % u, slice l / u, u = w/2 units);
        // w < 8: lane l is bits [l·w, l·w + w) of the word.
        let lanePosition = w >= 8 ? 32 * (l % (w / 2)) + w * (l / (w / 2)) : l * w
        return 8 * SlotTable.byteOffset(entry) + lanePosition + Int(SlotTable.bitOffset(entry)) + j
    }

    static func laneBits(_ record: UnsafeRawPointer, _ entry: UInt32, lane l: Int, count: Int) -> UInt32 {
        var v: UInt32 = 0
        for j in 0..<count {
            let p = bitPosition(entry, lane: l, bit: j)
            let byte = record.load(fromByteOffset: p / 8, as: UInt8.self)
            v |= UInt32((byte >> UInt8(p % 8)) & 1) << UInt32(j)
        }
        return v
    }

    static func setLaneBits(_ record: UnsafeMutableRawPointer, _ entry: UInt32, lane l: Int, count: Int, value: UInt32) {
        for j in 0..<count where (value >> UInt32(j)) & 1 == 1 {
            let p = bitPosition(entry, lane: l, bit: j)
            let byte = record.load(fromByteOffset: p / 8, as: UInt8.self)
            record.storeBytes(of: byte | (1 << UInt8(p % 8)), toByteOffset: p / 8, as: UInt8.self)
        }
    }
}

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
        // Without outliers: one specialized copy per width (see `quantizeNoOutliers`).
        if layout.outlierCount == 0 {
            switch layout.bits {
            case 1: return quantizeNoOutliers1(src, elementType, count, srcStride, layout, dst)
            case 2: return quantizeNoOutliers2(src, elementType, count, srcStride, layout, dst)
            case 3: return quantizeNoOutliers3(src, elementType, count, srcStride, layout, dst)
            case 4: return quantizeNoOutliers4(src, elementType, count, srcStride, layout, dst)
            default: return quantizeNoOutliers8(src, elementType, count, srcStride, layout, dst)
            }
        }
        return quantizeGeneral(src, elementType: elementType, count: count, srcStride: srcStride, layout: layout, dst: dst)
    }
}

/// The general quantize kernel (outliers, and the vectors the specialized copies hand
/// over): the contract of ``Kernels/quantize(_:elementType:count:srcStride:layout:dst:)``.
@inline(never)
func quantizeGeneral(
    _ src: UnsafeRawPointer, elementType: ElementType, count: Int, srcStride: Int,
    layout: PackedLayout, dst: UnsafeMutableRawPointer
) -> KernelStatus {
    let isF16 = elementType == .float16
    let esize = elementType.byteCount
    let slotsPerGroup = layout.groupSize / 16
    let table = layout.slots
    let bitsVector = U32x16(repeating: UInt32(layout.bits))
    let groups = layout.groupCount
    // The vector path for group parameters needs every group to keep a value.
    let vectorParameters = layout.outlierCount < layout.groupSize
    for v in 0..<count {
        let x0 = src + v * srcStride * esize
        let record = dst + v * layout.recordBytes
        let hasOutliers = layout.outlierCount > 0
        let outliers = hasOutliers ? selectOutliers(x0, isF16, dim: layout.dim, count: layout.outlierCount) : SIMD16<UInt32>()
        // Phase A: per group, the range of its non-outlier values and its parameters.
        var loV = InlineArray<16, Float>(repeating: 0), invV = InlineArray<16, Float>(repeating: 0)
        var nanProbe = F32x16()
        var rangeFail = hasOutliers && outliersBeyondFloat16(x0, isF16, outliers, layout.slotCount)
        var chunk = 0
        while chunk < groups {
            let inChunk = groups - chunk
            // Lane-wise min and max of groups chunk…chunk+3 (the first repeated past the end).
            let (m0, x0r) = laneRange(x0, isF16, chunk, slotsPerGroup, hasOutliers, outliers, &nanProbe)
            let (m1, x1r) = inChunk > 1 ? laneRange(x0, isF16, chunk + 1, slotsPerGroup, hasOutliers, outliers, &nanProbe) : (m0, x0r)
            let (m2, x2r) = inChunk > 2 ? laneRange(x0, isF16, chunk + 2, slotsPerGroup, hasOutliers, outliers, &nanProbe) : (m0, x0r)
            let (m3, x3r) = inChunk > 3 ? laneRange(x0, isF16, chunk + 3, slotsPerGroup, hasOutliers, outliers, &nanProbe) : (m0, x0r)
            let (mn, mx) = groupRanges4(m0, m1, m2, m3, x0r, x1r, x2r, x3r)
            // Lanes 0…7 hold the four groups (or repeats): check their ranges.
            let over = lessThan(mn, F32x16(repeating: -65504)) | lessThan(F32x16(repeating: 65504), mx)
            if orReduce16(over & lowLanes8) != 0 { rangeFail = true }
            let p = groupParameters16(min: mn, max: mx, bits: layout.bits)
            let loBits = unsafeBitCast(p.loBits, to: InlineArray<16, UInt32>.self)
            let stepBits = unsafeBitCast(p.stepBits, to: InlineArray<16, UInt32>.self)
            let los = unsafeBitCast(p.lo, to: InlineArray<16, Float>.self)
            let invs = unsafeBitCast(p.inv, to: InlineArray<16, Float>.self)
            let bad = unsafeBitCast(p.bad, to: InlineArray<16, UInt32>.self)
            let mns = unsafeBitCast(mn, to: InlineArray<16, Float>.self)
            let mxs = unsafeBitCast(mx, to: InlineArray<16, Float>.self)
            var j = 0
            while j < 4 && chunk + j < groups {
                let g = chunk + j
                var lo = Float16(bitPattern: UInt16(truncatingIfNeeded: loBits[2 * j]))
                var step = Float16(bitPattern: UInt16(truncatingIfNeeded: stepBits[2 * j]))
                var lof = los[2 * j], inv = invs[2 * j]
                if bad[2 * j] != 0 || !vectorParameters {
                    // Rare: the scalar definition decides (and reports overflow).
                    if let (l, st) = groupParameters(min: mns[2 * j], max: mxs[2 * j], bits: layout.bits) {
                        lo = l; step = st; lof = Float(l); inv = reciprocal(st)
                    } else {
                        rangeFail = true
                    }
                }
                record.storeBytes(of: lo, toByteOffset: layout.metadataOffset + 4 * g, as: Float16.self)
                record.storeBytes(of: step, toByteOffset: layout.metadataOffset + 4 * g + 2, as: Float16.self)
                loV[g] = lof
                invV[g] = inv
                j += 1
            }
            chunk += 4
        }
        if hsum(nanProbe) != 0 { return KernelStatus(code: .nonFinite, vector: v) }  // NaN != 0 too
        if rangeFail { return KernelStatus(code: .outOfFloat16Range, vector: v) }
        // Phase B: codes, one lane word at a time, accumulated in a register.
        // (Plain parameters, not a struct: a struct here gets value witnesses, emitted
        // as weak symbols shared by all ISA variants.)
        if table.bits1 == 0 {
            packStream(record, table.stream0, slotCount: layout.slotCount, bits: table.bits0, shift: 0,
                       x0, isF16, slotsPerGroup, loV, invV, bitsVector, hasOutliers, outliers)
        } else {
            packStream(record, table.stream0, slotCount: layout.slotCount, bits: 2, shift: 0,
                       x0, isF16, slotsPerGroup, loV, invV, bitsVector, hasOutliers, outliers)
            packStream(record, table.stream1, slotCount: layout.slotCount, bits: 1, shift: 2,
                       x0, isF16, slotsPerGroup, loV, invV, bitsVector, hasOutliers, outliers)
        }
        if hasOutliers { storeOutliers(x0, isF16, outliers, layout, record) }
    }
    return .ok
}

/// Lane-wise minimum and maximum of group `g`'s non-outlier values; adds `x·0` of every
/// value to `nanProbe` (NaN or ±Inf make it NaN).
@inline(__always)
func laneRange(_ src: UnsafeRawPointer, _ isF16: Bool, _ g: Int, _ slotsPerGroup: Int, _ hasOutliers: Bool,
               _ outliers: SIMD16<UInt32>, _ nanProbe: inout F32x16) -> (F32x16, F32x16) {
    var gmin = F32x16(repeating: .infinity), gmax = F32x16(repeating: -.infinity)
    for s in (g * slotsPerGroup)..<((g + 1) * slotsPerGroup) {
        let x = loadElements(src, isF16, 16 * s)
        nanProbe += x * F32x16(repeating: 0)
        var lanesMin = x, lanesMax = x
        if hasOutliers {
            // Outlier lanes become +Inf for the minimum and −Inf for the maximum.
            let keep = ((U32x16(repeating: outliers[s]) &>> laneIndex) & U32x16(repeating: 1)) &- U32x16(repeating: 1)
            let bits = unsafeBitCast(x, to: U32x16.self) & keep
            lanesMin = unsafeBitCast(bits | (U32x16(repeating: 0x7F80_0000) & ~keep), to: F32x16.self)
            lanesMax = unsafeBitCast(bits | (U32x16(repeating: 0xFF80_0000) & ~keep), to: F32x16.self)
        }
        gmin = vmin(gmin, lanesMin)
        gmax = vmax(gmax, lanesMax)
    }
    return (gmin, gmax)
}

/// `min(⌊(x − lo)·inv⌋, 2^b − 1)` for the 16 elements of slot `s` (in group `g`); 0 at
/// outliers.
@inline(__always)
func slotCodes(_ src: UnsafeRawPointer, _ isF16: Bool, _ s: Int, _ lo: Float, _ inv: Float, _ bits: U32x16,
               _ hasOutliers: Bool, _ outliers: SIMD16<UInt32>) -> U32x16 {
    let x = loadElements(src, isF16, 16 * s)
    let y = (x - F32x16(repeating: lo)) * F32x16(repeating: inv)
    // floor(y) for 0 ≤ y < 2^23 without masks (Swift's SIMD masks compile to shuffles
    // here): round to nearest by the magic add, then subtract the sign bit of
    // y − round(y), which is +0, never −0, when y is an integer.
    let magic = F32x16(repeating: 8_388_608)
    let t = y + magic
    var c = unsafeBitCast(t, to: U32x16.self) & U32x16(repeating: 0x7F_FFFF)
    c &-= unsafeBitCast(y - (t - magic), to: U32x16.self) &>> 31
    // y ≤ 2^b (hi ≤ lo + 2^b·step), so the only code past the top is 2^b.
    c &-= c &>> bits
    if hasOutliers {
        c &= ((U32x16(repeating: outliers[s]) &>> laneIndex) & U32x16(repeating: 1)) &- U32x16(repeating: 1)
    }
    return c
}

/// Writes one code stream (see `SlotTable`) word by word: each word's slots are ORed
/// into a register (`(code >> shift) & (2^bits − 1)` at the slot's bit offset) and the word
/// is stored once, in its width. No read-modify-write, no zeroing.
@inline(__always)
func packStream(_ record: UnsafeMutableRawPointer, _ stream: SIMD16<UInt32>, slotCount: Int, bits: Int,
                shift: UInt32, _ src: UnsafeRawPointer, _ isF16: Bool, _ slotsPerGroup: Int,
                _ lo: InlineArray<16, Float>, _ inv: InlineArray<16, Float>, _ codeBits: U32x16,
                _ hasOutliers: Bool, _ outliers: SIMD16<UInt32>) {
    let mask = U32x16(repeating: (1 << UInt32(bits)) - 1)
    var s = 0
    var g = 0, leftInGroup = slotsPerGroup   // no division in the loop
    while s < slotCount {
        let e = stream[s]
        let width = SlotTable.width(e)
        let slotsInWord = width / bits
        var acc = U32x16()
        for j in 0..<slotsInWord {
            let c = slotCodes(src, isF16, s + j, lo[g], inv[g], codeBits, hasOutliers, outliers)
            acc |= ((c &>> U32x16(repeating: shift)) & mask) &<< U32x16(repeating: UInt32(j * bits))
            leftInGroup -= 1
            if leftInGroup == 0 { g += 1; leftInGroup = slotsPerGroup }
        }
        storeLaneWord(record, e, acc)
        s += slotsInWord
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
        code(record, slots: layout.slots, element: i)
    }

    /// Reads the code of element `i` from code bytes laid out by `t`.
    public static func code(_ record: UnsafeRawPointer, slots t: SlotTable, element i: Int) -> UInt32 {
        let (s, l) = (i / 16, i % 16)
        var c = laneBits(record, t.stream0[s], lane: l, count: t.bits0)
        if t.bits1 != 0 { c |= laneBits(record, t.stream1[s], lane: l, count: 1) << 2 }
        return c
    }

    /// Writes the code of element `i` bit by bit (the bits must be zero before).
    static func setCode(_ record: UnsafeMutableRawPointer, _ layout: PackedLayout, element i: Int, code: UInt32) {
        setCode(record, slots: layout.slots, element: i, code: code)
    }

    /// Writes the code of element `i` into code bytes laid out by `t` (bits zero before).
    static func setCode(_ record: UnsafeMutableRawPointer, slots t: SlotTable, element i: Int, code: UInt32) {
        let (s, l) = (i / 16, i % 16)
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

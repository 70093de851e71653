import QAQLayout
import _QAQSIMDShims

// The affine quantize kernel without outliers: one copy per code width (and, for the common
// shapes, per D and G), chosen once per call. Per vector:
//  1. the lane-wise minima and maxima of up to four groups at a time, their ranges
//     (`groupRanges4`) and parameters (`groupParameters16`), the metadata of the four
//     groups stored as one 16-byte word, and a probe for NaN/±Inf (a lane-wise sum);
//  2. per slot `min((x − lo)·inv, 2^b − 1)` truncated to an integer (the same as ⌊·⌋ then
//     the clamp, since 0 ≤ (x − lo)·inv ≤ 2^b), ORed into a register at the slot's bit
//     offset; a full 32-bit lane word is stored when it fills, the narrower tail words
//     (and the high bits of 3-bit codes) once at the end.
// Anything unusual in a vector — a non-finite value, a magnitude beyond fp16, a group whose
// vector parameters need the scalar definition — sends that vector through the general
// kernel, which rewrites the whole record and reports the status.

// The stores: full 32-bit lane words and metadata words through the C shim's always-inlined
// stores; the narrower lane words and single metadata words in small functions that are not
// inlined. Inlined into the large kernels (through `@inline(always)` helpers, which are
// inlined first), the stdlib's generic `storeBytes` stays a call in test builds (-g
// -enable-testing): a weak specialization shared across the ISA modules.

/// Stores a lane word of width 2^log2w (each lane's bits in its low bits) at byte `offset`.
@inline(never)
private func storeWord(_ record: UnsafeMutableRawPointer, _ offset: Int, _ log2w: UInt32, _ lanes: U32x16) {
    storeLaneWord(record, UInt32(truncatingIfNeeded: offset) | (log2w << 12), lanes)
}


/// The (lo, step) word of one group.
@inline(never)
private func storeMetadata1(_ record: UnsafeMutableRawPointer, _ offset: Int, _ word: UInt32) {
    record.storeBytes(of: word, toByteOffset: offset, as: UInt32.self)
}

/// Truncates 16 floats in [0, 2^23) to integers (lane by lane: LLVM vectorizes this to one
/// `cvttps2dq`; the stdlib's generic SIMD conversion is slow and emits weak symbols).
@inline(always)
private func truncatedCodes(_ y: F32x16) -> U32x16 {
    U32x16(UInt32(bitPattern: Int32(y[0])), UInt32(bitPattern: Int32(y[1])), UInt32(bitPattern: Int32(y[2])),
           UInt32(bitPattern: Int32(y[3])), UInt32(bitPattern: Int32(y[4])), UInt32(bitPattern: Int32(y[5])),
           UInt32(bitPattern: Int32(y[6])), UInt32(bitPattern: Int32(y[7])), UInt32(bitPattern: Int32(y[8])),
           UInt32(bitPattern: Int32(y[9])), UInt32(bitPattern: Int32(y[10])), UInt32(bitPattern: Int32(y[11])),
           UInt32(bitPattern: Int32(y[12])), UInt32(bitPattern: Int32(y[13])), UInt32(bitPattern: Int32(y[14])),
           UInt32(bitPattern: Int32(y[15])))
}

/// Lane-wise minimum and maximum of the `n` slots from slot `s` (no outliers); adds every
/// value to `probe` (NaN or ±Inf make it non-finite).
@inline(always)
private func laneRangeNoOutliers(_ src: UnsafeRawPointer, _ isF16: Bool, _ s: Int, _ n: Int,
                         _ probe: inout F32x16) -> (F32x16, F32x16) {
    let first = loadElements(src, isF16, 16 * s)
    probe += first
    var gmin = first, gmax = first
    var k = 1
    while k < n {
        let x = loadElements(src, isF16, 16 * (s + k))
        probe += x
        gmin = vmin(gmin, x)
        gmax = vmax(gmax, x)
        k += 1
    }
    return (gmin, gmax)
}

/// Stores the bits collected in `acc` — slot `first + j` at bits [j·b, j·b + b) of each lane,
/// `bits` bits in all (< 32) — as the narrow lane words that end a stream: widths are the
/// binary decomposition of `bits`, widest first, from byte `offset` on (see `SlotTable`).
@inline(always)
private func storeTailWords(_ record: UnsafeMutableRawPointer, _ offset: Int, _ bits: Int, _ acc: U32x16) {
    // Written out per width (a loop over the widths is not unrolled): each a constant.
    // (No local functions in these kernels: in test builds their stores stay calls to
    // generic stdlib specializations, weak symbols shared across the ISA modules.)
    var o = offset, used = 0
    tailWord(record, bits, acc, 16, 4, &o, &used)
    tailWord(record, bits, acc, 8, 3, &o, &used)
    tailWord(record, bits, acc, 4, 2, &o, &used)
    tailWord(record, bits, acc, 2, 1, &o, &used)
    tailWord(record, bits, acc, 1, 0, &o, &used)
}

/// One lane word of width `w` (= 2^log2w) of `storeTailWords`, if `bits` has it.
@inline(always)
private func tailWord(_ record: UnsafeMutableRawPointer, _ bits: Int, _ acc: U32x16, _ w: Int, _ log2w: UInt32,
                      _ o: inout Int, _ used: inout Int) {
    if bits & w != 0 {
        let lanes = (acc &>> U32x16(repeating: UInt32(used))) & U32x16(repeating: (1 << UInt32(w)) &- 1)
        let x = unsafeBitCast(lanes, to: U64x8.self)
        if w == 16 {
            // 32-bit unit u: lane u | lane u + 8 << 16 (see `storeLaneWord`).
            let high = unsafeBitCast(U64x8(x[4], x[5], x[6], x[7], x[0], x[1], x[2], x[3]), to: U32x16.self)
            qaq_store_u32x16_first32(record + o, lanes | (high &<< U32x16(repeating: 16)))
        } else if w == 8 {
            // Unit u: lanes u, u + 4, u + 8, u + 12 in its bytes 0…3.
            let t = lanes | (unsafeBitCast(U64x8(x[4], x[5], x[6], x[7], x[0], x[1], x[2], x[3]), to: U32x16.self) &<< U32x16(repeating: 16))
            let y = unsafeBitCast(t, to: U64x8.self)
            let r = unsafeBitCast(U64x8(y[2], y[3], y[4], y[5], y[6], y[7], y[0], y[1]), to: U32x16.self)
            qaq_store_u32x16_first16(record + o, t | (r &<< U32x16(repeating: 8)))
        } else {
            storeWord(record, o, log2w, lanes)
        }
        o &+= 2 &* w
        used &+= w
    }
}

/// Codes of slot `s` — `min(⌊(x − lo)·inv⌋, 2^b − 1)`: x ≥ lo and inv ≥ 0, so truncation is
/// the floor, and the product is at most 2^b — ORed into the stream accumulators at the
/// slot's place; a filled 32-bit lane word of stream 0 is stored at once.
@inline(always)
private func emitSlotCodes(_ src: UnsafeRawPointer, _ isF16: Bool, _ s: Int, _ lo: Float, _ inv: Float, _ bits: Int,
                   _ record: UnsafeMutableRawPointer, _ acc: inout U32x16, _ top: inout U32x16,
                   _ inWord: inout Int, _ wordOffset: inout Int) {
    let x = loadElements(src, isF16, 16 * s)
    var c = truncatedCodes((x - F32x16(repeating: lo)) * F32x16(repeating: inv))
    if bits >= 4 {
        let cmax = U32x16(repeating: (1 << UInt32(bits)) &- 1)
        c = c.replacing(with: cmax, where: cmax .< c)    // one unsigned minimum
    } else {
        // (As a select, LLVM merged the clamp into the shifts below and split it in halves.)
        c &-= c &>> U32x16(repeating: UInt32(bits))
    }
    let split = bits == 3
    let b0 = split ? 2 : bits
    if split {
        acc |= (c & U32x16(repeating: 3)) &<< U32x16(repeating: UInt32(2 * inWord))
        top |= (c &>> U32x16(repeating: 2)) &<< U32x16(repeating: UInt32(s))
    } else {
        acc |= c &<< U32x16(repeating: UInt32(b0 * inWord))
    }
    inWord += 1
    if inWord == 32 / b0 {
        qaq_store_u32x16(record + wordOffset, acc)
        wordOffset += 64
        acc = U32x16()
        inWord = 0
    }
}

// MARK: - Sixteen groups at once (fp32, G = 32, D = 64 or 128)

/// One level of the range reduction: per 128-, 64- or 32-bit granule pair of `a` and `b`,
/// the minimum (or maximum) of the two granules of each item, items of `a` first.
@inline(always)
private func foldLevel(_ x: F32x16, _ y: F32x16, _ isMin: Bool) -> F32x16 { isMin ? vmin(x, y) : vmax(x, y) }

// The minima (or maxima) of 16 vectors, vector i's in lane i: four levels of pairwise folds
// (256-bit halves, 128-bit quarters, 64-bit pairs, 32-bit lanes), 30 shuffles and 15 minima
// in all: `reduceQuad` folds four vectors (the first two levels), `reduceFinal` the four
// results. Separate, so that the kernel folds each four groups' ranges as soon as they are
// loaded (computed all before the folds, 32 ranges were live at once and spilled).

/// [a₀…₇ | b₀…₇] folded with [a₈…₁₅ | b₈…₁₅]: a's eight partials, then b's.
@inline(always)
private func foldHalves16(_ a: F32x16, _ b: F32x16, _ isMin: Bool) -> F32x16 {
    foldLevel(pick(a, b, (0, 1, 2, 3), (0, 1, 2, 3)), pick(a, b, (4, 5, 6, 7), (4, 5, 6, 7)), isMin)
}

/// Items of 8 lanes → 4.
@inline(always)
private func foldQuarters16(_ a: F32x16, _ b: F32x16, _ isMin: Bool) -> F32x16 {
    foldLevel(pick(a, b, (0, 1, 4, 5), (0, 1, 4, 5)), pick(a, b, (2, 3, 6, 7), (2, 3, 6, 7)), isMin)
}

/// Items of 4 lanes → 2.
@inline(always)
private func foldPairs16(_ a: F32x16, _ b: F32x16, _ isMin: Bool) -> F32x16 {
    foldLevel(pick(a, b, (0, 2, 4, 6), (0, 2, 4, 6)), pick(a, b, (1, 3, 5, 7), (1, 3, 5, 7)), isMin)
}

/// Items of 2 lanes → 1.
@inline(always)
private func foldLanes16(_ a: F32x16, _ b: F32x16, _ isMin: Bool) -> F32x16 {
    let even = F32x16(a[0], a[2], a[4], a[6], a[8], a[10], a[12], a[14], b[0], b[2], b[4], b[6], b[8], b[10], b[12], b[14])
    let odd = F32x16(a[1], a[3], a[5], a[7], a[9], a[11], a[13], a[15], b[1], b[3], b[5], b[7], b[9], b[11], b[13], b[15])
    return foldLevel(even, odd, isMin)
}

/// Four vectors folded to items of 4 lanes (vector i's in lanes 4i…4i+3).
@inline(always)
private func reduceQuad(_ isMin: Bool, _ v0: F32x16, _ v1: F32x16, _ v2: F32x16, _ v3: F32x16) -> F32x16 {
    foldQuarters16(foldHalves16(v0, v1, isMin), foldHalves16(v2, v3, isMin), isMin)
}

/// Four `reduceQuad` results → the 16 vectors' minima (maxima), vector i's in lane i.
@inline(always)
private func reduceFinal(_ isMin: Bool, _ q0: F32x16, _ q1: F32x16, _ q2: F32x16, _ q3: F32x16) -> F32x16 {
    foldLanes16(foldPairs16(q0, q1, isMin), foldPairs16(q2, q3, isMin), isMin)
}

/// Codes, metadata and tail words of one vector of a 16-group block: groups `first…first +
/// groupsPerVector − 1` of the block's parameters, two slots each.
@inline(always)
private func emitBlockVector(_ row: UnsafeRawPointer, _ record: UnsafeMutableRawPointer, _ first: Int, _ groupsPerVector: Int,
                     _ bits: Int, _ meta: U32x16, _ lo: F32x16, _ inv: F32x16) {
    let slotCount = 2 * groupsPerVector
    let split = bits == 3
    let b0 = split ? 2 : bits
    let metadataOffset = 2 * bits * slotCount
    if groupsPerVector == 4 {
        qaq_store_u32x4(record + metadataOffset, SIMD4<UInt32>(meta[first], meta[first + 1], meta[first + 2], meta[first + 3]))
    } else {
        qaq_store_u64(record + metadataOffset, unsafeBitCast(meta, to: U64x8.self)[first / 2])
    }
    var acc = U32x16(), top = U32x16()
    var inWord = 0, wordOffset = 0
    blockGroup(row, record, 0, first, groupsPerVector, bits, lo, inv, &acc, &top, &inWord, &wordOffset)
    blockGroup(row, record, 1, first, groupsPerVector, bits, lo, inv, &acc, &top, &inWord, &wordOffset)
    blockGroup(row, record, 2, first, groupsPerVector, bits, lo, inv, &acc, &top, &inWord, &wordOffset)
    blockGroup(row, record, 3, first, groupsPerVector, bits, lo, inv, &acc, &top, &inWord, &wordOffset)
    let codesPerWord = 32 / b0
    let tailBits = (slotCount % codesPerWord) * b0
    if tailBits > 0 { storeTailWords(record, wordOffset, tailBits, acc) }
    if split { storeTailWords(record, 2 * b0 * slotCount, slotCount, top) }
}

/// The two slots of group `j` of a block vector (if it has that many groups).
@inline(always)
private func blockGroup(_ row: UnsafeRawPointer, _ record: UnsafeMutableRawPointer, _ j: Int, _ first: Int,
                        _ groupsPerVector: Int, _ bits: Int, _ lo: F32x16, _ inv: F32x16, _ acc: inout U32x16,
                        _ top: inout U32x16, _ inWord: inout Int, _ wordOffset: inout Int) {
    if j < groupsPerVector {
        let l = lo[first + j], i = inv[first + j]
        emitSlotCodes(row, false, 2 * j, l, i, bits, record, &acc, &top, &inWord, &wordOffset)
        emitSlotCodes(row, false, 2 * j + 1, l, i, bits, record, &acc, &top, &inWord, &wordOffset)
    }
}

/// Lane-wise range of block group `i` (vector i / groupsPerVector, its group i %
/// groupsPerVector); adds its two slots to `probe` (NaN or ±Inf make it non-finite). The
/// sum goes through an empty asm at once: LLVM otherwise computed the sums last, from
/// the loaded values spilled to the stack.
@inline(always)
private func blockRange(_ src: UnsafeRawPointer, _ rowBytes: Int, _ i: Int, _ groupsPerVector: Int,
                        _ probe: inout F32x16) -> (F32x16, F32x16) {
    let row = src + (i / groupsPerVector) * rowBytes
    let s = (i % groupsPerVector) * 2
    let a = loadElements(row, false, 16 * s), b = loadElements(row, false, 16 * (s + 1))
    probe = qaq_opaque_f32x16(probe + (a + b))
    return (vmin(a, b), vmax(a, b))
}

/// Vector `v` of a block, if the block has that many.
@inline(always)
private func blockVector(_ v: Int, _ src: UnsafeRawPointer, _ rowBytes: Int, _ dst: UnsafeMutableRawPointer,
                         _ recordBytes: Int, _ bits: Int, _ groupsPerVector: Int, _ meta: U32x16, _ lo: F32x16, _ inv: F32x16) {
    if v < 16 / groupsPerVector {
        emitBlockVector(src + v * rowBytes, dst + v * recordBytes, v * groupsPerVector, groupsPerVector, bits, meta, lo, inv)
    }
}

/// 16/`groupsPerVector` fp32 vectors of 2·`groupsPerVector` slots with G = 32: the 16 groups'
/// lane-wise ranges reduced together and their parameters computed in one 16-lane pass.
/// Returns false, having written nothing, when a value is not finite or beyond ±65504 or a
/// group needs the scalar parameters (the caller then takes these vectors one by one).
@inline(always)
private func quantizeBlock16(_ src: UnsafeRawPointer, _ rowBytes: Int, _ dst: UnsafeMutableRawPointer, _ recordBytes: Int,
                     _ bits: Int, _ groupsPerVector: Int) -> Bool {
    // Four probes (a serial chain of adds was a latency chain); each four groups' ranges
    // folded at once.
    var q0 = F32x16(), q1 = F32x16(), q2 = F32x16(), q3 = F32x16()
    let (n0, x0) = blockRange(src, rowBytes, 0, groupsPerVector, &q0), (n1, x1) = blockRange(src, rowBytes, 1, groupsPerVector, &q1)
    let (n2, x2) = blockRange(src, rowBytes, 2, groupsPerVector, &q2), (n3, x3) = blockRange(src, rowBytes, 3, groupsPerVector, &q3)
    let mq0 = reduceQuad(true, n0, n1, n2, n3), xq0 = reduceQuad(false, x0, x1, x2, x3)
    let (n4, x4) = blockRange(src, rowBytes, 4, groupsPerVector, &q0), (n5, x5) = blockRange(src, rowBytes, 5, groupsPerVector, &q1)
    let (n6, x6) = blockRange(src, rowBytes, 6, groupsPerVector, &q2), (n7, x7) = blockRange(src, rowBytes, 7, groupsPerVector, &q3)
    let mq1 = reduceQuad(true, n4, n5, n6, n7), xq1 = reduceQuad(false, x4, x5, x6, x7)
    let (n8, x8) = blockRange(src, rowBytes, 8, groupsPerVector, &q0), (n9, x9) = blockRange(src, rowBytes, 9, groupsPerVector, &q1)
    let (n10, x10) = blockRange(src, rowBytes, 10, groupsPerVector, &q2), (n11, x11) = blockRange(src, rowBytes, 11, groupsPerVector, &q3)
    let mq2 = reduceQuad(true, n8, n9, n10, n11), xq2 = reduceQuad(false, x8, x9, x10, x11)
    let (n12, x12) = blockRange(src, rowBytes, 12, groupsPerVector, &q0), (n13, x13) = blockRange(src, rowBytes, 13, groupsPerVector, &q1)
    let (n14, x14) = blockRange(src, rowBytes, 14, groupsPerVector, &q2), (n15, x15) = blockRange(src, rowBytes, 15, groupsPerVector, &q3)
    let mq3 = reduceQuad(true, n12, n13, n14, n15), xq3 = reduceQuad(false, x12, x13, x14, x15)
    let probe = (q0 + q1) + (q2 + q3)
    let mn = reduceFinal(true, mq0, mq1, mq2, mq3), mx = reduceFinal(false, xq0, xq1, xq2, xq3)
    let p = groupParameters16(min: mn, max: mx, bits: bits)
    let fail = lessThan(mn, F32x16(repeating: -65504)) | lessThan(F32x16(repeating: 65504), mx) | p.bad
    let nonFinite = unsafeBitCast(probe * F32x16(repeating: 0), to: U32x16.self) & U32x16(repeating: 0x7FFF_FFFF)
    if orReduce16(fail | nonFinite) != 0 { return false }
    let meta = p.loBits | (p.stepBits &<< U32x16(repeating: 16))
    // Through an empty asm: read lane by lane below, `inv` (a divide and a select) was
    // otherwise scalarized by LLVM, 16 scalar divides and mask moves per block.
    let lo = qaq_opaque_f32x16(p.lo), inv = qaq_opaque_f32x16(p.inv)
    blockVector(0, src, rowBytes, dst, recordBytes, bits, groupsPerVector, meta, lo, inv)
    blockVector(1, src, rowBytes, dst, recordBytes, bits, groupsPerVector, meta, lo, inv)
    blockVector(2, src, rowBytes, dst, recordBytes, bits, groupsPerVector, meta, lo, inv)
    blockVector(3, src, rowBytes, dst, recordBytes, bits, groupsPerVector, meta, lo, inv)
    blockVector(4, src, rowBytes, dst, recordBytes, bits, groupsPerVector, meta, lo, inv)
    blockVector(5, src, rowBytes, dst, recordBytes, bits, groupsPerVector, meta, lo, inv)
    blockVector(6, src, rowBytes, dst, recordBytes, bits, groupsPerVector, meta, lo, inv)
    blockVector(7, src, rowBytes, dst, recordBytes, bits, groupsPerVector, meta, lo, inv)
    return true
}

/// Slot `k` of a chunk (if the chunk has that many), in group `j` of the chunk.
@inline(always)
private func chunkSlot(_ k: Int, _ chunkSlots: Int, _ x0: UnsafeRawPointer, _ isF16: Bool, _ s0: Int,
                       _ los: InlineArray<16, Float>, _ invs: InlineArray<16, Float>, _ slotsPerGroup: Int, _ bits: Int,
                       _ record: UnsafeMutableRawPointer, _ j: inout Int, _ left: inout Int, _ acc: inout U32x16,
                       _ top: inout U32x16, _ inWord: inout Int, _ wordOffset: inout Int) {
    if k < chunkSlots {
        emitSlotCodes(x0, isF16, s0 + k, los[2 * j], invs[2 * j], bits, record, &acc, &top, &inWord, &wordOffset)
        left -= 1
        if left == 0 { j += 1; left = slotsPerGroup }
    }
}

/// The kernel body for `bits` bits and fp16 or fp32 input (constants after inlining) and,
/// when nonzero, a constant slot count and slots per group. Returns `.ok` or the first
/// failing vector's status.
@inline(always)
private func quantizeNoOutliers(
    _ src: UnsafeRawPointer, _ isF16: Bool, _ count: Int, _ srcStride: Int,
    _ layout: PackedLayout, _ dst: UnsafeMutableRawPointer,
    _ bits: Int, _ fixedSlots: Int, _ fixedSlotsPerGroup: Int
) -> KernelStatus {
    let esize = isF16 ? 2 : 4
    let slotCount = fixedSlots > 0 ? fixedSlots : layout.slotCount
    let slotsPerGroup = fixedSlotsPerGroup > 0 ? fixedSlotsPerGroup : layout.groupSize / 16
    let groups = fixedSlots > 0 && fixedSlotsPerGroup > 0 ? fixedSlots / fixedSlotsPerGroup : layout.groupCount
    let split = bits == 3                        // 3-bit codes: low 2 bits, then the high bit
    let b0 = split ? 2 : bits
    let codesPerWord = 32 / b0
    let fullWords = slotCount / codesPerWord     // 32-bit lane words of stream 0
    let tailBits = (slotCount - fullWords * codesPerWord) * b0
    let stream1Offset = 2 * b0 * slotCount       // bytes of stream 0
    let metadataOffset = 2 * bits * slotCount    // = layout.metadataOffset
    let recordBytes = layout.recordBytes
    let limit = F32x16(repeating: 65504), negLimit = F32x16(repeating: -65504)
    // fp32 rows of D = 64 or 128 with G = 32 go in blocks of 16 groups; a block that needs
    // the general kernel, and the last vectors, go one by one.
    let blocks = !isF16 && slotsPerGroup == 2 && fixedSlotsPerGroup == 2 && (slotCount == 8 || slotCount == 4)
    let blockVectors = blocks ? 32 / slotCount : 1      // 16 groups
    var next = 0
    while next < count {
        if blocks && next + blockVectors <= count
            && quantizeBlock16(src + next * srcStride * 4, srcStride * 4, dst + next * recordBytes, recordBytes, bits, slotCount / 2) {
            next += blockVectors
            continue
        }
        let end = blocks && next + blockVectors < count ? next + blockVectors : count
        for v in next..<end {
            let x0 = src + v * srcStride * esize
            let record = dst + v * recordBytes
            var probe = F32x16()
            var fail = U32x16()
            var acc = U32x16(), top = U32x16()
            var inWord = 0, wordOffset = 0
            var chunk = 0
            while chunk < groups {
                let inChunk = groups - chunk
                let s0 = chunk * slotsPerGroup
                // Ranges of groups chunk…chunk+3 (the first repeated past the end).
                let (m0, x0r) = laneRangeNoOutliers(x0, isF16, s0, slotsPerGroup, &probe)
                let (m1, x1r) = inChunk > 1 ? laneRangeNoOutliers(x0, isF16, s0 + slotsPerGroup, slotsPerGroup, &probe) : (m0, x0r)
                let (m2, x2r) = inChunk > 2 ? laneRangeNoOutliers(x0, isF16, s0 + 2 * slotsPerGroup, slotsPerGroup, &probe) : (m0, x0r)
                let (m3, x3r) = inChunk > 3 ? laneRangeNoOutliers(x0, isF16, s0 + 3 * slotsPerGroup, slotsPerGroup, &probe) : (m0, x0r)
                let (mn, mx) = groupRanges4(m0, m1, m2, m3, x0r, x1r, x2r, x3r)
                let p = groupParameters16(min: mn, max: mx, bits: bits)
                fail |= lessThan(mn, negLimit) | lessThan(limit, mx) | p.bad
                // Metadata: (lo, step) of group chunk + j is lane 2j of `meta`.
                let meta = p.loBits | (p.stepBits &<< U32x16(repeating: 16))
                if inChunk >= 4 {
                    qaq_store_u32x4(record + metadataOffset + 4 * chunk, SIMD4<UInt32>(meta[0], meta[2], meta[4], meta[6]))
                } else {
                    let metas = unsafeBitCast(meta, to: InlineArray<16, UInt32>.self)
                    for j in 0..<inChunk {
                        storeMetadata1(record, metadataOffset + 4 * (chunk + j), metas[2 * j])
                    }
                }
                // Codes of the chunk's slots, written out one by one (loops here are not
                // unrolled by LLVM): slot k of the chunk is in group j of it.
                let los = unsafeBitCast(p.lo, to: InlineArray<16, Float>.self)
                let invs = unsafeBitCast(qaq_opaque_f32x16(p.inv), to: InlineArray<16, Float>.self)   // see quantizeBlock16
                let chunkSlots = (inChunk < 4 ? inChunk : 4) * slotsPerGroup
                var j = 0, left = slotsPerGroup
                chunkSlot(0, chunkSlots, x0, isF16, s0, los, invs, slotsPerGroup, bits, record, &j, &left, &acc, &top, &inWord, &wordOffset)
                chunkSlot(1, chunkSlots, x0, isF16, s0, los, invs, slotsPerGroup, bits, record, &j, &left, &acc, &top, &inWord, &wordOffset)
                chunkSlot(2, chunkSlots, x0, isF16, s0, los, invs, slotsPerGroup, bits, record, &j, &left, &acc, &top, &inWord, &wordOffset)
                chunkSlot(3, chunkSlots, x0, isF16, s0, los, invs, slotsPerGroup, bits, record, &j, &left, &acc, &top, &inWord, &wordOffset)
                chunkSlot(4, chunkSlots, x0, isF16, s0, los, invs, slotsPerGroup, bits, record, &j, &left, &acc, &top, &inWord, &wordOffset)
                chunkSlot(5, chunkSlots, x0, isF16, s0, los, invs, slotsPerGroup, bits, record, &j, &left, &acc, &top, &inWord, &wordOffset)
                chunkSlot(6, chunkSlots, x0, isF16, s0, los, invs, slotsPerGroup, bits, record, &j, &left, &acc, &top, &inWord, &wordOffset)
                chunkSlot(7, chunkSlots, x0, isF16, s0, los, invs, slotsPerGroup, bits, record, &j, &left, &acc, &top, &inWord, &wordOffset)
                chunkSlot(8, chunkSlots, x0, isF16, s0, los, invs, slotsPerGroup, bits, record, &j, &left, &acc, &top, &inWord, &wordOffset)
                chunkSlot(9, chunkSlots, x0, isF16, s0, los, invs, slotsPerGroup, bits, record, &j, &left, &acc, &top, &inWord, &wordOffset)
                chunkSlot(10, chunkSlots, x0, isF16, s0, los, invs, slotsPerGroup, bits, record, &j, &left, &acc, &top, &inWord, &wordOffset)
                chunkSlot(11, chunkSlots, x0, isF16, s0, los, invs, slotsPerGroup, bits, record, &j, &left, &acc, &top, &inWord, &wordOffset)
                chunkSlot(12, chunkSlots, x0, isF16, s0, los, invs, slotsPerGroup, bits, record, &j, &left, &acc, &top, &inWord, &wordOffset)
                chunkSlot(13, chunkSlots, x0, isF16, s0, los, invs, slotsPerGroup, bits, record, &j, &left, &acc, &top, &inWord, &wordOffset)
                chunkSlot(14, chunkSlots, x0, isF16, s0, los, invs, slotsPerGroup, bits, record, &j, &left, &acc, &top, &inWord, &wordOffset)
                chunkSlot(15, chunkSlots, x0, isF16, s0, los, invs, slotsPerGroup, bits, record, &j, &left, &acc, &top, &inWord, &wordOffset)
                chunk += 4
            }
            if tailBits > 0 { storeTailWords(record, wordOffset, tailBits, acc) }
            if split { storeTailWords(record, stream1Offset, slotCount, top) }
            // NaN/±Inf (probe · 0 is NaN there), |x| > 65504 or a group for the scalar
            // parameters: the general kernel redoes this vector and decides.
            let nonFinite = unsafeBitCast(probe * F32x16(repeating: 0), to: U32x16.self) & U32x16(repeating: 0x7FFF_FFFF)
            if orReduce16((fail & lowLanes8) | nonFinite) != 0 {
                let status = quantizeGeneral(x0, elementType: isF16 ? .float16 : .float32, count: 1, srcStride: srcStride,
                                             layout: layout, dst: record)
                if status.code != .ok { return KernelStatus(code: status.code, vector: v) }
            }
        }
        next = end
    }
    return .ok
}

// One function per code width and shape (each holding one copy of the body: a function with
// several copies grows past the inliner's limits in test builds, which then leaves calls to
// generic stdlib specializations, weak symbols shared across the ISA modules). fp32 rows of
// D = 64 and 128 with G = 32, 64 or D get copies with constant loops.

@inline(never)
private func quantizeNoOutliers1D128G32(_ src: UnsafeRawPointer, _ count: Int, _ srcStride: Int, _ layout: PackedLayout,
    _ dst: UnsafeMutableRawPointer) -> KernelStatus {
    quantizeNoOutliers(src, false, count, srcStride, layout, dst, 1, 8, 2)
}

@inline(never)
private func quantizeNoOutliers1D64G32(_ src: UnsafeRawPointer, _ count: Int, _ srcStride: Int, _ layout: PackedLayout,
    _ dst: UnsafeMutableRawPointer) -> KernelStatus {
    quantizeNoOutliers(src, false, count, srcStride, layout, dst, 1, 4, 2)
}

@inline(never)
private func quantizeNoOutliers1D128G64(_ src: UnsafeRawPointer, _ count: Int, _ srcStride: Int, _ layout: PackedLayout,
    _ dst: UnsafeMutableRawPointer) -> KernelStatus {
    quantizeNoOutliers(src, false, count, srcStride, layout, dst, 1, 8, 4)
}

@inline(never)
private func quantizeNoOutliers1D128G128(_ src: UnsafeRawPointer, _ count: Int, _ srcStride: Int, _ layout: PackedLayout,
    _ dst: UnsafeMutableRawPointer) -> KernelStatus {
    quantizeNoOutliers(src, false, count, srcStride, layout, dst, 1, 8, 8)
}

@inline(never)
private func quantizeNoOutliers1D64G64(_ src: UnsafeRawPointer, _ count: Int, _ srcStride: Int, _ layout: PackedLayout,
    _ dst: UnsafeMutableRawPointer) -> KernelStatus {
    quantizeNoOutliers(src, false, count, srcStride, layout, dst, 1, 4, 4)
}

@inline(never)
private func quantizeNoOutliers1F32(_ src: UnsafeRawPointer, _ count: Int, _ srcStride: Int, _ layout: PackedLayout,
    _ dst: UnsafeMutableRawPointer) -> KernelStatus {
    quantizeNoOutliers(src, false, count, srcStride, layout, dst, 1, 0, 0)
}

@inline(never)
private func quantizeNoOutliers1F16(_ src: UnsafeRawPointer, _ count: Int, _ srcStride: Int, _ layout: PackedLayout,
    _ dst: UnsafeMutableRawPointer) -> KernelStatus {
    quantizeNoOutliers(src, true, count, srcStride, layout, dst, 1, 0, 0)
}

func quantizeNoOutliers1(_ src: UnsafeRawPointer, _ elementType: ElementType, _ count: Int, _ srcStride: Int,
                         _ layout: PackedLayout, _ dst: UnsafeMutableRawPointer) -> KernelStatus {
    if elementType == .float16 { return quantizeNoOutliers1F16(src, count, srcStride, layout, dst) }
    switch (layout.dim, layout.groupSize) {
    case (128, 32): return quantizeNoOutliers1D128G32(src, count, srcStride, layout, dst)
    case (64, 32): return quantizeNoOutliers1D64G32(src, count, srcStride, layout, dst)
    case (128, 64): return quantizeNoOutliers1D128G64(src, count, srcStride, layout, dst)
    case (128, 128): return quantizeNoOutliers1D128G128(src, count, srcStride, layout, dst)
    case (64, 64): return quantizeNoOutliers1D64G64(src, count, srcStride, layout, dst)
    default: return quantizeNoOutliers1F32(src, count, srcStride, layout, dst)
    }
}

@inline(never)
private func quantizeNoOutliers2D128G32(_ src: UnsafeRawPointer, _ count: Int, _ srcStride: Int, _ layout: PackedLayout,
    _ dst: UnsafeMutableRawPointer) -> KernelStatus {
    quantizeNoOutliers(src, false, count, srcStride, layout, dst, 2, 8, 2)
}

@inline(never)
private func quantizeNoOutliers2D64G32(_ src: UnsafeRawPointer, _ count: Int, _ srcStride: Int, _ layout: PackedLayout,
    _ dst: UnsafeMutableRawPointer) -> KernelStatus {
    quantizeNoOutliers(src, false, count, srcStride, layout, dst, 2, 4, 2)
}

@inline(never)
private func quantizeNoOutliers2D128G64(_ src: UnsafeRawPointer, _ count: Int, _ srcStride: Int, _ layout: PackedLayout,
    _ dst: UnsafeMutableRawPointer) -> KernelStatus {
    quantizeNoOutliers(src, false, count, srcStride, layout, dst, 2, 8, 4)
}

@inline(never)
private func quantizeNoOutliers2D128G128(_ src: UnsafeRawPointer, _ count: Int, _ srcStride: Int, _ layout: PackedLayout,
    _ dst: UnsafeMutableRawPointer) -> KernelStatus {
    quantizeNoOutliers(src, false, count, srcStride, layout, dst, 2, 8, 8)
}

@inline(never)
private func quantizeNoOutliers2D64G64(_ src: UnsafeRawPointer, _ count: Int, _ srcStride: Int, _ layout: PackedLayout,
    _ dst: UnsafeMutableRawPointer) -> KernelStatus {
    quantizeNoOutliers(src, false, count, srcStride, layout, dst, 2, 4, 4)
}

@inline(never)
private func quantizeNoOutliers2F32(_ src: UnsafeRawPointer, _ count: Int, _ srcStride: Int, _ layout: PackedLayout,
    _ dst: UnsafeMutableRawPointer) -> KernelStatus {
    quantizeNoOutliers(src, false, count, srcStride, layout, dst, 2, 0, 0)
}

@inline(never)
private func quantizeNoOutliers2F16(_ src: UnsafeRawPointer, _ count: Int, _ srcStride: Int, _ layout: PackedLayout,
    _ dst: UnsafeMutableRawPointer) -> KernelStatus {
    quantizeNoOutliers(src, true, count, srcStride, layout, dst, 2, 0, 0)
}

func quantizeNoOutliers2(_ src: UnsafeRawPointer, _ elementType: ElementType, _ count: Int, _ srcStride: Int,
                         _ layout: PackedLayout, _ dst: UnsafeMutableRawPointer) -> KernelStatus {
    if elementType == .float16 { return quantizeNoOutliers2F16(src, count, srcStride, layout, dst) }
    switch (layout.dim, layout.groupSize) {
    case (128, 32): return quantizeNoOutliers2D128G32(src, count, srcStride, layout, dst)
    case (64, 32): return quantizeNoOutliers2D64G32(src, count, srcStride, layout, dst)
    case (128, 64): return quantizeNoOutliers2D128G64(src, count, srcStride, layout, dst)
    case (128, 128): return quantizeNoOutliers2D128G128(src, count, srcStride, layout, dst)
    case (64, 64): return quantizeNoOutliers2D64G64(src, count, srcStride, layout, dst)
    default: return quantizeNoOutliers2F32(src, count, srcStride, layout, dst)
    }
}

@inline(never)
private func quantizeNoOutliers3D128G32(_ src: UnsafeRawPointer, _ count: Int, _ srcStride: Int, _ layout: PackedLayout,
    _ dst: UnsafeMutableRawPointer) -> KernelStatus {
    quantizeNoOutliers(src, false, count, srcStride, layout, dst, 3, 8, 2)
}

@inline(never)
private func quantizeNoOutliers3D64G32(_ src: UnsafeRawPointer, _ count: Int, _ srcStride: Int, _ layout: PackedLayout,
    _ dst: UnsafeMutableRawPointer) -> KernelStatus {
    quantizeNoOutliers(src, false, count, srcStride, layout, dst, 3, 4, 2)
}

@inline(never)
private func quantizeNoOutliers3D128G64(_ src: UnsafeRawPointer, _ count: Int, _ srcStride: Int, _ layout: PackedLayout,
    _ dst: UnsafeMutableRawPointer) -> KernelStatus {
    quantizeNoOutliers(src, false, count, srcStride, layout, dst, 3, 8, 4)
}

@inline(never)
private func quantizeNoOutliers3D128G128(_ src: UnsafeRawPointer, _ count: Int, _ srcStride: Int, _ layout: PackedLayout,
    _ dst: UnsafeMutableRawPointer) -> KernelStatus {
    quantizeNoOutliers(src, false, count, srcStride, layout, dst, 3, 8, 8)
}

@inline(never)
private func quantizeNoOutliers3D64G64(_ src: UnsafeRawPointer, _ count: Int, _ srcStride: Int, _ layout: PackedLayout,
    _ dst: UnsafeMutableRawPointer) -> KernelStatus {
    quantizeNoOutliers(src, false, count, srcStride, layout, dst, 3, 4, 4)
}

@inline(never)
private func quantizeNoOutliers3F32(_ src: UnsafeRawPointer, _ count: Int, _ srcStride: Int, _ layout: PackedLayout,
    _ dst: UnsafeMutableRawPointer) -> KernelStatus {
    quantizeNoOutliers(src, false, count, srcStride, layout, dst, 3, 0, 0)
}

@inline(never)
private func quantizeNoOutliers3F16(_ src: UnsafeRawPointer, _ count: Int, _ srcStride: Int, _ layout: PackedLayout,
    _ dst: UnsafeMutableRawPointer) -> KernelStatus {
    quantizeNoOutliers(src, true, count, srcStride, layout, dst, 3, 0, 0)
}

func quantizeNoOutliers3(_ src: UnsafeRawPointer, _ elementType: ElementType, _ count: Int, _ srcStride: Int,
                         _ layout: PackedLayout, _ dst: UnsafeMutableRawPointer) -> KernelStatus {
    if elementType == .float16 { return quantizeNoOutliers3F16(src, count, srcStride, layout, dst) }
    switch (layout.dim, layout.groupSize) {
    case (128, 32): return quantizeNoOutliers3D128G32(src, count, srcStride, layout, dst)
    case (64, 32): return quantizeNoOutliers3D64G32(src, count, srcStride, layout, dst)
    case (128, 64): return quantizeNoOutliers3D128G64(src, count, srcStride, layout, dst)
    case (128, 128): return quantizeNoOutliers3D128G128(src, count, srcStride, layout, dst)
    case (64, 64): return quantizeNoOutliers3D64G64(src, count, srcStride, layout, dst)
    default: return quantizeNoOutliers3F32(src, count, srcStride, layout, dst)
    }
}

@inline(never)
private func quantizeNoOutliers4D128G32(_ src: UnsafeRawPointer, _ count: Int, _ srcStride: Int, _ layout: PackedLayout,
    _ dst: UnsafeMutableRawPointer) -> KernelStatus {
    quantizeNoOutliers(src, false, count, srcStride, layout, dst, 4, 8, 2)
}

@inline(never)
private func quantizeNoOutliers4D64G32(_ src: UnsafeRawPointer, _ count: Int, _ srcStride: Int, _ layout: PackedLayout,
    _ dst: UnsafeMutableRawPointer) -> KernelStatus {
    quantizeNoOutliers(src, false, count, srcStride, layout, dst, 4, 4, 2)
}

@inline(never)
private func quantizeNoOutliers4D128G64(_ src: UnsafeRawPointer, _ count: Int, _ srcStride: Int, _ layout: PackedLayout,
    _ dst: UnsafeMutableRawPointer) -> KernelStatus {
    quantizeNoOutliers(src, false, count, srcStride, layout, dst, 4, 8, 4)
}

@inline(never)
private func quantizeNoOutliers4D128G128(_ src: UnsafeRawPointer, _ count: Int, _ srcStride: Int, _ layout: PackedLayout,
    _ dst: UnsafeMutableRawPointer) -> KernelStatus {
    quantizeNoOutliers(src, false, count, srcStride, layout, dst, 4, 8, 8)
}

@inline(never)
private func quantizeNoOutliers4D64G64(_ src: UnsafeRawPointer, _ count: Int, _ srcStride: Int, _ layout: PackedLayout,
    _ dst: UnsafeMutableRawPointer) -> KernelStatus {
    quantizeNoOutliers(src, false, count, srcStride, layout, dst, 4, 4, 4)
}

@inline(never)
private func quantizeNoOutliers4F32(_ src: UnsafeRawPointer, _ count: Int, _ srcStride: Int, _ layout: PackedLayout,
    _ dst: UnsafeMutableRawPointer) -> KernelStatus {
    quantizeNoOutliers(src, false, count, srcStride, layout, dst, 4, 0, 0)
}

@inline(never)
private func quantizeNoOutliers4F16(_ src: UnsafeRawPointer, _ count: Int, _ srcStride: Int, _ layout: PackedLayout,
    _ dst: UnsafeMutableRawPointer) -> KernelStatus {
    quantizeNoOutliers(src, true, count, srcStride, layout, dst, 4, 0, 0)
}

func quantizeNoOutliers4(_ src: UnsafeRawPointer, _ elementType: ElementType, _ count: Int, _ srcStride: Int,
                         _ layout: PackedLayout, _ dst: UnsafeMutableRawPointer) -> KernelStatus {
    if elementType == .float16 { return quantizeNoOutliers4F16(src, count, srcStride, layout, dst) }
    switch (layout.dim, layout.groupSize) {
    case (128, 32): return quantizeNoOutliers4D128G32(src, count, srcStride, layout, dst)
    case (64, 32): return quantizeNoOutliers4D64G32(src, count, srcStride, layout, dst)
    case (128, 64): return quantizeNoOutliers4D128G64(src, count, srcStride, layout, dst)
    case (128, 128): return quantizeNoOutliers4D128G128(src, count, srcStride, layout, dst)
    case (64, 64): return quantizeNoOutliers4D64G64(src, count, srcStride, layout, dst)
    default: return quantizeNoOutliers4F32(src, count, srcStride, layout, dst)
    }
}

@inline(never)
private func quantizeNoOutliers8D128G32(_ src: UnsafeRawPointer, _ count: Int, _ srcStride: Int, _ layout: PackedLayout,
    _ dst: UnsafeMutableRawPointer) -> KernelStatus {
    quantizeNoOutliers(src, false, count, srcStride, layout, dst, 8, 8, 2)
}

@inline(never)
private func quantizeNoOutliers8D64G32(_ src: UnsafeRawPointer, _ count: Int, _ srcStride: Int, _ layout: PackedLayout,
    _ dst: UnsafeMutableRawPointer) -> KernelStatus {
    quantizeNoOutliers(src, false, count, srcStride, layout, dst, 8, 4, 2)
}

@inline(never)
private func quantizeNoOutliers8D128G64(_ src: UnsafeRawPointer, _ count: Int, _ srcStride: Int, _ layout: PackedLayout,
    _ dst: UnsafeMutableRawPointer) -> KernelStatus {
    quantizeNoOutliers(src, false, count, srcStride, layout, dst, 8, 8, 4)
}

@inline(never)
private func quantizeNoOutliers8D128G128(_ src: UnsafeRawPointer, _ count: Int, _ srcStride: Int, _ layout: PackedLayout,
    _ dst: UnsafeMutableRawPointer) -> KernelStatus {
    quantizeNoOutliers(src, false, count, srcStride, layout, dst, 8, 8, 8)
}

@inline(never)
private func quantizeNoOutliers8D64G64(_ src: UnsafeRawPointer, _ count: Int, _ srcStride: Int, _ layout: PackedLayout,
    _ dst: UnsafeMutableRawPointer) -> KernelStatus {
    quantizeNoOutliers(src, false, count, srcStride, layout, dst, 8, 4, 4)
}

@inline(never)
private func quantizeNoOutliers8F32(_ src: UnsafeRawPointer, _ count: Int, _ srcStride: Int, _ layout: PackedLayout,
    _ dst: UnsafeMutableRawPointer) -> KernelStatus {
    quantizeNoOutliers(src, false, count, srcStride, layout, dst, 8, 0, 0)
}

@inline(never)
private func quantizeNoOutliers8F16(_ src: UnsafeRawPointer, _ count: Int, _ srcStride: Int, _ layout: PackedLayout,
    _ dst: UnsafeMutableRawPointer) -> KernelStatus {
    quantizeNoOutliers(src, true, count, srcStride, layout, dst, 8, 0, 0)
}

func quantizeNoOutliers8(_ src: UnsafeRawPointer, _ elementType: ElementType, _ count: Int, _ srcStride: Int,
                         _ layout: PackedLayout, _ dst: UnsafeMutableRawPointer) -> KernelStatus {
    if elementType == .float16 { return quantizeNoOutliers8F16(src, count, srcStride, layout, dst) }
    switch (layout.dim, layout.groupSize) {
    case (128, 32): return quantizeNoOutliers8D128G32(src, count, srcStride, layout, dst)
    case (64, 32): return quantizeNoOutliers8D64G32(src, count, srcStride, layout, dst)
    case (128, 64): return quantizeNoOutliers8D128G64(src, count, srcStride, layout, dst)
    case (128, 128): return quantizeNoOutliers8D128G128(src, count, srcStride, layout, dst)
    case (64, 64): return quantizeNoOutliers8D64G64(src, count, srcStride, layout, dst)
    default: return quantizeNoOutliers8F32(src, count, srcStride, layout, dst)
    }
}

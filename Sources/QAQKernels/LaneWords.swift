import QAQLayout

// Loading and storing the lane words of a packed vector (see `PackedLayout`/`SlotTable`).

typealias U32x16 = SIMD16<UInt32>
typealias F32x16 = SIMD16<Float>

/// Lane index 0…15.
@inline(__always) var laneIndex: U32x16 {
    U32x16(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
}

/// The 16 lanes of the lane word an entry points to, each lane's w bits in its low bits.
@inline(__always)
func loadLaneWord(_ codes: UnsafeRawPointer, _ entry: UInt32) -> U32x16 {
    let p = codes + SlotTable.byteOffset(entry)
    switch (entry >> 12) & 7 {
    case 5:
        return p.loadUnaligned(as: U32x16.self)
    case 4:
        // Lane l < 8: low half of 32-bit unit l; lane l ≥ 8: high half of unit l − 8.
        let w = p.loadUnaligned(as: SIMD8<UInt32>.self)
        return U32x16(lowHalf: w & SIMD8(repeating: 0xFFFF), highHalf: w &>> SIMD8(repeating: 16))
    case 3:
        // Lane l: byte l / 4 of 32-bit unit l % 4.
        let w = p.loadUnaligned(as: SIMD4<UInt32>.self)
        let m = SIMD4<UInt32>(repeating: 0xFF)
        let a = SIMD8(lowHalf: w & m, highHalf: (w &>> SIMD4(repeating: 8)) & m)
        let b = SIMD8(lowHalf: (w &>> SIMD4(repeating: 16)) & m, highHalf: w &>> SIMD4(repeating: 24))
        return U32x16(lowHalf: a, highHalf: b)
    case 2:
        // 64 bits: lanes 0–7 in the low word, 8–15 in the high word, 4 bits each.
        let lo = p.loadUnaligned(as: UInt32.self)
        let hi = p.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
        let v = U32x16(lowHalf: SIMD8(repeating: lo), highHalf: SIMD8(repeating: hi))
        let shift = (laneIndex & U32x16(repeating: 7)) &<< U32x16(repeating: 2)
        return (v &>> shift) & U32x16(repeating: 0xF)
    case 1:
        let v = U32x16(repeating: p.loadUnaligned(as: UInt32.self))
        return (v &>> (laneIndex &<< U32x16(repeating: 1))) & U32x16(repeating: 0x3)
    default:
        let v = U32x16(repeating: UInt32(p.loadUnaligned(as: UInt16.self)))
        return (v &>> laneIndex) & U32x16(repeating: 0x1)
    }
}

/// Calls `body(s, codes)` for every slot in order, reading each lane word once (one
/// width dispatch per word, not per slot). 3-bit codes take their high bit per slot.
@inline(__always)
func forEachSlot(_ codes: UnsafeRawPointer, _ table: SlotTable, slotCount: Int, _ body: (Int, U32x16) -> Void) {
    let b = UInt32(table.bits0)
    let mask = U32x16(repeating: (1 << b) - 1)
    var s = 0
    while s < slotCount {
        let e = table.stream0[s]
        var lanes = loadLaneWord(codes, e)
        let m = SlotTable.width(e) / table.bits0
        for j in 0..<m {
            var c = lanes & mask
            if table.bits1 != 0 {
                let e1 = table.stream1[s + j]
                c |= ((loadLaneWord(codes, e1) &>> U32x16(repeating: SlotTable.bitOffset(e1))) & U32x16(repeating: 1)) &<< U32x16(repeating: 2)
            }
            body(s + j, c)
            lanes &>>= U32x16(repeating: b)
        }
        s += m
    }
}

/// ORs `bits` (each lane's value already shifted to its bit offset, fitting the lane
/// width) into the lane word an entry points to.
@inline(__always)
func orLaneWord(_ codes: UnsafeMutableRawPointer, _ entry: UInt32, _ bits: U32x16) {
    let p = codes + SlotTable.byteOffset(entry)
    switch (entry >> 12) & 7 {
    case 5:
        p.storeBytes(of: p.loadUnaligned(as: U32x16.self) | bits, as: U32x16.self)
    case 4:
        let w = bits.lowHalf | (bits.highHalf &<< SIMD8(repeating: 16))
        p.storeBytes(of: p.loadUnaligned(as: SIMD8<UInt32>.self) | w, as: SIMD8<UInt32>.self)
    case 3:
        let w = (bits.lowHalf.lowHalf | (bits.lowHalf.highHalf &<< SIMD4(repeating: 8)))
            | ((bits.highHalf.lowHalf &<< SIMD4(repeating: 16)) | (bits.highHalf.highHalf &<< SIMD4(repeating: 24)))
        p.storeBytes(of: p.loadUnaligned(as: SIMD4<UInt32>.self) | w, as: SIMD4<UInt32>.self)
    case 2:
        let shifted = bits &<< ((laneIndex & U32x16(repeating: 7)) &<< U32x16(repeating: 2))
        let lo = orReduce8(shifted.lowHalf)
        let hi = orReduce8(shifted.highHalf)
        p.storeBytes(of: p.loadUnaligned(as: UInt32.self) | lo, as: UInt32.self)
        p.storeBytes(of: p.loadUnaligned(fromByteOffset: 4, as: UInt32.self) | hi, toByteOffset: 4, as: UInt32.self)
    case 1:
        let shifted = bits &<< (laneIndex &<< U32x16(repeating: 1))
        let v = orReduce8(shifted.lowHalf | shifted.highHalf)
        p.storeBytes(of: p.loadUnaligned(as: UInt32.self) | v, as: UInt32.self)
    default:
        let shifted = bits &<< laneIndex
        let v = UInt16(truncatingIfNeeded: orReduce8(shifted.lowHalf | shifted.highHalf))
        p.storeBytes(of: p.loadUnaligned(as: UInt16.self) | v, as: UInt16.self)
    }
}

@inline(__always)
func orReduce8(_ v: SIMD8<UInt32>) -> UInt32 {
    let a = v.lowHalf | v.highHalf
    let b = a.lowHalf | a.highHalf
    return b[0] | b[1]
}

/// The b-bit codes of slot `s` (16 lanes).
@inline(__always)
func unpackSlot(_ codes: UnsafeRawPointer, _ table: SlotTable, _ s: Int) -> U32x16 {
    let e0 = table.stream0[s]
    let m0 = U32x16(repeating: (1 << UInt32(table.bits0)) - 1)
    var c = (loadLaneWord(codes, e0) &>> U32x16(repeating: SlotTable.bitOffset(e0))) & m0
    if table.bits1 != 0 {
        let e1 = table.stream1[s]
        let hi = (loadLaneWord(codes, e1) &>> U32x16(repeating: SlotTable.bitOffset(e1))) & U32x16(repeating: 1)
        c |= hi &<< U32x16(repeating: 2)
    }
    return c
}

/// ORs the codes of slot `s` into zero-initialised code bytes.
@inline(__always)
func packSlot(_ codes: UnsafeMutableRawPointer, _ table: SlotTable, _ s: Int, _ c: U32x16) {
    let e0 = table.stream0[s]
    if table.bits1 != 0 {
        orLaneWord(codes, e0, (c & U32x16(repeating: 3)) &<< U32x16(repeating: SlotTable.bitOffset(e0)))
        let e1 = table.stream1[s]
        orLaneWord(codes, e1, (c &>> U32x16(repeating: 2)) &<< U32x16(repeating: SlotTable.bitOffset(e1)))
    } else {
        orLaneWord(codes, e0, c &<< U32x16(repeating: SlotTable.bitOffset(e0)))
    }
}

/// Codes (< 2^23) to floats without an int→float conversion.
@inline(__always)
func codesToFloat(_ c: U32x16) -> F32x16 {
    unsafeBitCast(c | U32x16(repeating: 0x4B00_0000), to: F32x16.self) - F32x16(repeating: 8_388_608)
}

/// Horizontal sum by halves (a tree, not the stdlib's `.sum()`).
@inline(__always)
func hsum(_ v: F32x16) -> Float {
    let a = v.lowHalf + v.highHalf
    let b = a.lowHalf + a.highHalf
    let c = b.lowHalf + b.highHalf
    return c[0] + c[1]
}

@inline(__always)
func hmin(_ v: F32x16) -> Float {
    let a = v.lowHalf.replacing(with: v.highHalf, where: v.highHalf .< v.lowHalf)
    let b = a.lowHalf.replacing(with: a.highHalf, where: a.highHalf .< a.lowHalf)
    let c = b.lowHalf.replacing(with: b.highHalf, where: b.highHalf .< b.lowHalf)
    return c[1] < c[0] ? c[1] : c[0]
}

@inline(__always)
func hmax(_ v: F32x16) -> Float {
    let a = v.lowHalf.replacing(with: v.highHalf, where: v.highHalf .> v.lowHalf)
    let b = a.lowHalf.replacing(with: a.highHalf, where: a.highHalf .> a.lowHalf)
    let c = b.lowHalf.replacing(with: b.highHalf, where: b.highHalf .> b.lowHalf)
    return c[1] > c[0] ? c[1] : c[0]
}

/// Loads 16 elements of an fp32 or fp16 source as fp32.
@inline(__always)
func loadElements(_ src: UnsafeRawPointer, _ isF16: Bool, _ element: Int) -> F32x16 {
    if isF16 {
        // Lane by lane: the stdlib's generic SIMD conversion would be emitted as a weak
        // symbol shared by all ISA variants.
        let h = (src + 2 * element).loadUnaligned(as: SIMD16<Float16>.self)
        return F32x16(Float(h[0]), Float(h[1]), Float(h[2]), Float(h[3]), Float(h[4]), Float(h[5]),
                      Float(h[6]), Float(h[7]), Float(h[8]), Float(h[9]), Float(h[10]), Float(h[11]),
                      Float(h[12]), Float(h[13]), Float(h[14]), Float(h[15]))
    }
    return (src + 4 * element).loadUnaligned(as: F32x16.self)
}

/// Loads one element of an fp32 or fp16 source as fp32.
@inline(__always)
func loadElement(_ src: UnsafeRawPointer, _ isF16: Bool, _ element: Int) -> Float {
    if isF16 { return Float((src + 2 * element).loadUnaligned(as: Float16.self)) }
    return (src + 4 * element).loadUnaligned(as: Float.self)
}

/// Zeroes `n` bytes (n even, as code bytes always are) without a call.
@inline(__always)
func zeroBytes(_ p: UnsafeMutableRawPointer, _ n: Int) {
    var i = 0
    while i + 64 <= n { p.storeBytes(of: U32x16(), toByteOffset: i, as: U32x16.self); i += 64 }
    while i + 8 <= n { p.storeBytes(of: UInt64(0), toByteOffset: i, as: UInt64.self); i += 8 }
    while i + 2 <= n { p.storeBytes(of: UInt16(0), toByteOffset: i, as: UInt16.self); i += 2 }
}

/// Stores a whole lane word (each lane's w bits in its low bits) where an entry points.
@inline(__always)
func storeLaneWord(_ codes: UnsafeMutableRawPointer, _ entry: UInt32, _ bits: U32x16) {
    let p = codes + SlotTable.byteOffset(entry)
    switch (entry >> 12) & 7 {
    case 5:
        p.storeBytes(of: bits, as: U32x16.self)
    case 4:
        p.storeBytes(of: bits.lowHalf | (bits.highHalf &<< SIMD8(repeating: 16)), as: SIMD8<UInt32>.self)
    case 3:
        let w = (bits.lowHalf.lowHalf | (bits.lowHalf.highHalf &<< SIMD4(repeating: 8)))
            | ((bits.highHalf.lowHalf &<< SIMD4(repeating: 16)) | (bits.highHalf.highHalf &<< SIMD4(repeating: 24)))
        p.storeBytes(of: w, as: SIMD4<UInt32>.self)
    case 2:
        let shifted = bits &<< ((laneIndex & U32x16(repeating: 7)) &<< U32x16(repeating: 2))
        p.storeBytes(of: orReduce8(shifted.lowHalf), as: UInt32.self)
        p.storeBytes(of: orReduce8(shifted.highHalf), toByteOffset: 4, as: UInt32.self)
    case 1:
        let shifted = bits &<< (laneIndex &<< U32x16(repeating: 1))
        p.storeBytes(of: orReduce8(shifted.lowHalf | shifted.highHalf), as: UInt32.self)
    default:
        let shifted = bits &<< laneIndex
        p.storeBytes(of: UInt16(truncatingIfNeeded: orReduce8(shifted.lowHalf | shifted.highHalf)), as: UInt16.self)
    }
}

/// Ones in lanes 0…7.
@inline(__always) var lowLanes8: U32x16 {
    U32x16(~0, ~0, ~0, ~0, ~0, ~0, ~0, ~0, 0, 0, 0, 0, 0, 0, 0, 0)
}

/// OR of all 16 lanes (nonzero iff any lane is).
@inline(__always)
func orReduce16(_ v: U32x16) -> UInt32 {
    let u = unsafeBitCast(v, to: U64x8.self)
    let a = (u[0] | u[1]) | (u[2] | u[3]), b = (u[4] | u[5]) | (u[6] | u[7])
    let c = a | b
    return UInt32(truncatingIfNeeded: c) | UInt32(truncatingIfNeeded: c >> 32)
}

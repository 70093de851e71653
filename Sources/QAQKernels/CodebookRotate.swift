import QAQLayout
import _QAQSIMDShims

// The randomized Hadamard rotation of the code-map formats, as a kernel: bit-exact with
// `RandomizedHadamard.forward/inverse` of the QAQ module (same blocks, same butterfly
// stages in the same order, same fp32 operations), but vectorized at every stride.
//
// Blocks: the binary decomposition of D, largest first (D is a multiple of 16 here, so
// every block holds whole 16-lane vectors). Within a block of n elements the unnormalized
// Walsh–Hadamard butterflies run at strides h = 1, 2, 4, …, n/2: (a, b) → (a + b, a − b)
// for every pair (j, j + h) with j & h = 0. Strides below 16 stay inside one vector: lane l
// takes partner(l) + x[l]·(±1) with partner(l) = x[l ^ h] and −1 where l & h ≠ 0, which is
// exactly a + b on the low lane and a − b on the high lane (x·(−1) = −x exactly, and
// x − y ≡ x + (−y) in IEEE arithmetic; fused or not, it rounds once). The partner is a
// fixed lane permutation: one shuffle and one FMA per stride.
// `scaledSigns[i]` = sᵢ/√n(block of i) multiplies before the butterflies (forward) or after
// them (inverse).

extension Kernels {
    /// Rotates `count` contiguous vectors of `dim` elements (a multiple of 16, ≤ 256) from
    /// `src` into `dst` (which may equal `src`): forward `dst = H·diag(s)·src`, inverse
    /// `dst = diag(s)·H·src`, with `scaledSigns` the D values sᵢ/√n of
    /// `RandomizedHadamard`. Bit-exact with ``Reference/hadamardRotate(_:_:count:dim:scaledSigns:inverse:)``.
    ///
    /// Blocks of up to 128 elements (8 vectors) are rotated in registers: load, signs,
    /// the in-vector strides, the cross-vector strides, store; larger blocks (256) run their
    /// cross-vector strides through memory.
    public static func hadamardRotate(
        _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, count: Int, dim: Int,
        scaledSigns: UnsafePointer<Float>, inverse: Bool
    ) {
        let sg = UnsafeRawPointer(scaledSigns)
        // D = 64 and 128 (one block): a loop per size and direction, the lane signs in
        // registers across vectors.
        switch (dim, inverse) {
        case (64, false): return rotateVectors64(src, dst, count, sg)
        case (64, true): return rotateVectors64Inverse(src, dst, count, sg)
        case (128, false): return rotateVectors128(src, dst, count, sg)
        case (128, true): return rotateVectors128Inverse(src, dst, count, sg)
        default: break
        }
        for v in 0..<count {
            let x = UnsafeRawPointer(src + v * dim)
            let y = UnsafeMutableRawPointer(dst + v * dim)
            var offset = 0                       // bytes
            var rest = dim
            while rest > 0 {
                var n = 16
                while 2 * n <= rest { n *= 2 }   // the largest power of two ≤ rest
                switch n {
                case 16: rotateBlock16(x, y, sg, offset, inverse)
                case 32: rotateBlock32(x, y, sg, offset, inverse)
                case 64: rotateBlock64(x, y, sg, offset, inverse)
                case 128: rotateBlock128(x, y, sg, offset, inverse)
                default: rotateInMemory(x, y, sg, offset, n, inverse)
                }
                offset += 4 * n
                rest -= n
            }
        }
    }
}

/// ±1 per lane for the in-vector strides 1, 2, 4, 8: −1 in the lanes l with l & h ≠ 0.
/// Each passes an optimization barrier: with the constants in sight LLVM rewrites
/// `partner + x·(±1)` into an add, a subtract and extra shuffles. (They are made inside each
/// block kernel — four constant loads — rather than passed in: a tuple of four vectors
/// crossed the call as sixteen 128-bit stack moves and reassembly shuffles per block.)
@inline(__always)
func inVectorSigns() -> (F32x16, F32x16, F32x16, F32x16) {
    (qaq_opaque_f32x16(laneSigns(1)), qaq_opaque_f32x16(laneSigns(2)),
     qaq_opaque_f32x16(laneSigns(4)), qaq_opaque_f32x16(laneSigns(8)))
}

/// −1 in the lanes l with l & h ≠ 0, +1 elsewhere (h a constant power of two).
@inline(__always)
func laneSigns(_ h: UInt32) -> F32x16 {
    let m = (laneIndex & U32x16(repeating: h)) &* U32x16(repeating: 0x8000_0000 / h)
    return unsafeBitCast(U32x16(repeating: 0x3F80_0000) | m, to: F32x16.self)
}

/// `partner + x·sign`, fused where the target has FMA (exact either way: x·(±1) is exact,
/// so both round p ± x once).
@inline(__always)
func addSigned(_ partner: F32x16, _ x: F32x16, _ sign: F32x16) -> F32x16 {
    #if HAS_FMA
    return partner.addingProduct(x, sign)
    #else
    return partner + x * sign
    #endif
}

/// The Walsh–Hadamard butterflies at strides 1, 2, 4, 8 within one 16-lane vector: per
/// stride one lane permutation and one (fused) multiply-add by ±1.
@inline(__always)
func butterflies16(_ v: F32x16, _ s: (F32x16, F32x16, F32x16, F32x16)) -> F32x16 {
    var x = v
    // Partners: stride 1 swaps the 32-bit halves of each 64-bit lane; strides 2, 4, 8 swap
    // 64-, 128- and 256-bit blocks.
    var u = unsafeBitCast(x, to: U64x8.self)
    x = addSigned(unsafeBitCast((u &>> 32) | (u &<< 32), to: F32x16.self), x, s.0)
    u = unsafeBitCast(x, to: U64x8.self)
    x = addSigned(unsafeBitCast(U64x8(u[1], u[0], u[3], u[2], u[5], u[4], u[7], u[6]), to: F32x16.self), x, s.1)
    u = unsafeBitCast(x, to: U64x8.self)
    x = addSigned(unsafeBitCast(U64x8(u[2], u[3], u[0], u[1], u[6], u[7], u[4], u[5]), to: F32x16.self), x, s.2)
    u = unsafeBitCast(x, to: U64x8.self)
    x = addSigned(unsafeBitCast(U64x8(u[4], u[5], u[6], u[7], u[0], u[1], u[2], u[3]), to: F32x16.self), x, s.3)
    return x
}

/// Vector `i` of a block at byte offset `o`: loaded, forward signs applied, in-vector strides done.
@inline(__always)
func loadRotated(_ x: UnsafeRawPointer, _ sg: UnsafeRawPointer, _ o: Int, _ i: Int, _ inverse: Bool,
                 _ s: (F32x16, F32x16, F32x16, F32x16)) -> F32x16 {
    var a = x.loadUnaligned(fromByteOffset: o + 64 * i, as: F32x16.self)
    if !inverse { a *= sg.loadUnaligned(fromByteOffset: o + 64 * i, as: F32x16.self) }
    return butterflies16(a, s)
}

/// Stores vector `i` of a block (inverse: after its signs).
@inline(__always)
func storeRotated(_ y: UnsafeMutableRawPointer, _ sg: UnsafeRawPointer, _ o: Int, _ i: Int, _ inverse: Bool, _ v: F32x16) {
    var a = v
    if inverse { a *= sg.loadUnaligned(fromByteOffset: o + 64 * i, as: F32x16.self) }
    y.storeBytes(of: a, toByteOffset: o + 64 * i, as: F32x16.self)
}

/// One butterfly between vectors: (a, b) → (a + b, a − b).
@inline(__always)
func butterfly(_ a: inout F32x16, _ b: inout F32x16) {
    let p = a + b, q = a - b
    a = p
    b = q
}

/// A block of k ∈ {1, 2, 4, 8} vectors (a constant after inlining), entirely in registers.
@inline(__always)
func rotateInRegisters(_ x: UnsafeRawPointer, _ y: UnsafeMutableRawPointer, _ sg: UnsafeRawPointer, _ o: Int,
                       _ k: Int, _ inverse: Bool) {
    let s = inVectorSigns()
    var v0 = loadRotated(x, sg, o, 0, inverse, s)
    var v1 = k > 1 ? loadRotated(x, sg, o, 1, inverse, s) : v0
    var v2 = k > 2 ? loadRotated(x, sg, o, 2, inverse, s) : v0
    var v3 = k > 2 ? loadRotated(x, sg, o, 3, inverse, s) : v0
    var v4 = k > 4 ? loadRotated(x, sg, o, 4, inverse, s) : v0
    var v5 = k > 4 ? loadRotated(x, sg, o, 5, inverse, s) : v0
    var v6 = k > 4 ? loadRotated(x, sg, o, 6, inverse, s) : v0
    var v7 = k > 4 ? loadRotated(x, sg, o, 7, inverse, s) : v0
    if k > 1 {                                   // stride 16
        butterfly(&v0, &v1)
        if k > 2 { butterfly(&v2, &v3) }
        if k > 4 { butterfly(&v4, &v5); butterfly(&v6, &v7) }
    }
    if k > 2 {                                   // stride 32
        butterfly(&v0, &v2); butterfly(&v1, &v3)
        if k > 4 { butterfly(&v4, &v6); butterfly(&v5, &v7) }
    }
    if k > 4 {                                   // stride 64
        butterfly(&v0, &v4); butterfly(&v1, &v5); butterfly(&v2, &v6); butterfly(&v3, &v7)
    }
    storeRotated(y, sg, o, 0, inverse, v0)
    if k > 1 { storeRotated(y, sg, o, 1, inverse, v1) }
    if k > 2 { storeRotated(y, sg, o, 2, inverse, v2); storeRotated(y, sg, o, 3, inverse, v3) }
    if k > 4 {
        storeRotated(y, sg, o, 4, inverse, v4); storeRotated(y, sg, o, 5, inverse, v5)
        storeRotated(y, sg, o, 6, inverse, v6); storeRotated(y, sg, o, 7, inverse, v7)
    }
}

// One non-inlined copy per block size, each with a single call: with the four calls in one
// function the optimizer kept one out-of-line copy with k tested at run time.
@inline(never) func rotateBlock16(_ x: UnsafeRawPointer, _ y: UnsafeMutableRawPointer, _ sg: UnsafeRawPointer, _ o: Int, _ inverse: Bool) { rotateInRegisters(x, y, sg, o, 1, inverse) }
@inline(never) func rotateBlock32(_ x: UnsafeRawPointer, _ y: UnsafeMutableRawPointer, _ sg: UnsafeRawPointer, _ o: Int, _ inverse: Bool) { rotateInRegisters(x, y, sg, o, 2, inverse) }
@inline(never) func rotateBlock64(_ x: UnsafeRawPointer, _ y: UnsafeMutableRawPointer, _ sg: UnsafeRawPointer, _ o: Int, _ inverse: Bool) { rotateInRegisters(x, y, sg, o, 4, inverse) }
@inline(never) func rotateBlock128(_ x: UnsafeRawPointer, _ y: UnsafeMutableRawPointer, _ sg: UnsafeRawPointer, _ o: Int, _ inverse: Bool) { rotateInRegisters(x, y, sg, o, 8, inverse) }

/// `count` vectors of one block of k ∈ {4, 8} vectors each (D = 64, 128), in registers.
@inline(__always)
func rotateVectors(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ count: Int, _ sg: UnsafeRawPointer,
                   _ k: Int, _ inverse: Bool) {
    for v in 0..<count {
        rotateInRegisters(UnsafeRawPointer(src + v * 16 * k), UnsafeMutableRawPointer(dst + v * 16 * k), sg, 0, k, inverse)
    }
}

@inline(never) func rotateVectors64(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, _ sg: UnsafeRawPointer) { rotateVectors(x, y, n, sg, 4, false) }
@inline(never) func rotateVectors64Inverse(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, _ sg: UnsafeRawPointer) { rotateVectors(x, y, n, sg, 4, true) }
@inline(never) func rotateVectors128(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, _ sg: UnsafeRawPointer) { rotateVectors(x, y, n, sg, 8, false) }
@inline(never) func rotateVectors128Inverse(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, _ sg: UnsafeRawPointer) { rotateVectors(x, y, n, sg, 8, true) }

/// A block of n ≥ 256 elements: in-vector strides per vector, then the cross-vector
/// strides through `y` (inverse: the signs with the last stride).
@inline(__always)
func rotateInMemory(_ x: UnsafeRawPointer, _ y: UnsafeMutableRawPointer, _ sg: UnsafeRawPointer, _ offset: Int,
                    _ n: Int, _ inverse: Bool) {
    let s = inVectorSigns()
    let end = offset + 4 * n
    var o = offset
    while o < end {
        y.storeBytes(of: loadRotated(x, sg, o, 0, inverse, s), toByteOffset: o, as: F32x16.self)
        o += 64
    }
    var h = 64                                   // bytes
    while h < 4 * n {
        let last = inverse && 2 * h == 4 * n
        var i = offset
        while i < end {
            var j = i
            while j < i + h {
                let a = y.loadUnaligned(fromByteOffset: j, as: F32x16.self)
                let b = y.loadUnaligned(fromByteOffset: j + h, as: F32x16.self)
                var p = a + b, q = a - b
                if last {
                    p *= sg.loadUnaligned(fromByteOffset: j, as: F32x16.self)
                    q *= sg.loadUnaligned(fromByteOffset: j + h, as: F32x16.self)
                }
                y.storeBytes(of: p, toByteOffset: j, as: F32x16.self)
                y.storeBytes(of: q, toByteOffset: j + h, as: F32x16.self)
                j += 64
            }
            i += 2 * h
        }
        h *= 2
    }
}

extension Reference {
    /// Scalar reference of ``Kernels/hadamardRotate(_:_:count:dim:scaledSigns:inverse:)``:
    /// the butterflies of `RandomizedHadamard`, one element pair at a time.
    public static func hadamardRotate(
        _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, count: Int, dim: Int,
        scaledSigns: UnsafePointer<Float>, inverse: Bool
    ) {
        for v in 0..<count {
            let y = dst + v * dim
            for i in 0..<dim { y[i] = src[v * dim + i] }
            if !inverse { for i in 0..<dim { y[i] *= scaledSigns[i] } }
            var offset = 0, rest = dim
            while rest > 0 {
                var n = 1
                while 2 * n <= rest { n *= 2 }
                var h = 1
                while h < n {
                    var i = offset
                    while i < offset + n {
                        for j in i..<(i + h) {
                            let a = y[j], b = y[j + h]
                            y[j] = a + b
                            y[j + h] = a - b
                        }
                        i += 2 * h
                    }
                    h *= 2
                }
                offset += n
                rest -= n
            }
            if inverse { for i in 0..<dim { y[i] *= scaledSigns[i] } }
        }
    }
}

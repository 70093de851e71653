import QAQLayout

// The softmax pieces of decode attention over a row of scores: maximum, in-place
// exp(x − shift) with its sum, and scaling. exp is vectorized (Cephes' single-precision
// polynomial after an exact two-constant range reduction, 2ⁿ built in the exponent bits):
// relative error ≤ 2 ulp against the libm expf on [−87, 0]; arguments below −87 are
// taken as −87 (e^−87 ≈ 1.6·10⁻³⁸, a term that cannot move a sum whose largest term is 1).

/// e^x for x ≤ 0 (lanes below −87 are clamped there).
@inline(__always)
func expNonPositive(_ x0: F32x16) -> F32x16 {
    let x = x0.replacing(with: F32x16(repeating: -87), where: x0 .< F32x16(repeating: -87))
    // n = round(x·log₂e) by the 1.5·2²³ trick; its integer sits in the low mantissa bits.
    // (Fused where FMA is native, like every step below: n may then differ from the
    // product-rounded one at a tie, r stays within the polynomial's range either way.)
    var t = F32x16(repeating: 12_582_912)
    fma16(&t, x, F32x16(repeating: 1.44269504088896341))
    let n = t - F32x16(repeating: 12_582_912)
    var r = x
    fma16(&r, n, F32x16(repeating: -0.693359375))
    fma16(&r, n, F32x16(repeating: 2.12194440e-4))
    // Horner's scheme, one fused step per coefficient.
    var p = F32x16(repeating: 1.3981999507e-3)
    fma16(&p, F32x16(repeating: 1.9875691500e-4), r)
    var p2 = F32x16(repeating: 8.3334519073e-3)
    fma16(&p2, p, r)
    var p3 = F32x16(repeating: 4.1665795894e-2)
    fma16(&p3, p2, r)
    var p4 = F32x16(repeating: 1.6666665459e-1)
    fma16(&p4, p3, r)
    p = F32x16(repeating: 5.0000001201e-1)
    fma16(&p, p4, r)
    var y = r + F32x16(repeating: 1)
    fma16(&y, p, r * r)
    // 2ⁿ: (n + 127) << 23, with n read from t's bits (t = 1.5·2²³ + n).
    let bits = (unsafeBitCast(t, to: U32x16.self) &+ U32x16(repeating: 127 &- 0x4B40_0000)) &<< U32x16(repeating: 23)
    return y * unsafeBitCast(bits, to: F32x16.self)
}

extension Kernels {
    /// The largest of `count` (≥ 1) values.
    public static func maximum(_ x: UnsafePointer<Float>, count: Int) -> Float {
        let r = UnsafeRawPointer(x)
        var m = F32x16(repeating: -.infinity)
        var i = 0
        while i + 16 <= count {
            let v = r.loadUnaligned(fromByteOffset: 4 * i, as: F32x16.self)
            m = m.replacing(with: v, where: v .> m)
            i += 16
        }
        var s = hmax(m)
        while i < count { if x[i] > s { s = x[i] }; i += 1 }
        return s
    }

    /// `x[i] = e^(x[i] − shift)` in place for `count` values (each ≤ shift); returns their sum.
    public static func expShifted(_ x: UnsafeMutablePointer<Float>, count: Int, shift: Float) -> Float {
        let r = UnsafeMutableRawPointer(x)
        let sv = F32x16(repeating: shift)
        var sum = F32x16()
        var i = 0
        while i + 16 <= count {
            let e = expNonPositive(r.loadUnaligned(fromByteOffset: 4 * i, as: F32x16.self) - sv)
            r.storeBytes(of: e, toByteOffset: 4 * i, as: F32x16.self)
            sum += e
            i += 16
        }
        var total = hsum(sum)
        if i < count {
            // The tail through a padded vector (lanes past the end are e^−87 and not stored).
            var tail = unsafeBitCast(F32x16(repeating: -.infinity), to: InlineArray<16, Float>.self)
            for j in 0..<(count - i) { tail[j] = x[i + j] }
            let e = unsafeBitCast(expNonPositive(unsafeBitCast(tail, to: F32x16.self) - sv), to: InlineArray<16, Float>.self)
            for j in 0..<(count - i) { x[i + j] = e[j]; total += e[j] }
        }
        return total
    }

    /// `x[i] *= factor` for `count` values.
    public static func scale(_ x: UnsafeMutablePointer<Float>, count: Int, by factor: Float) {
        let r = UnsafeMutableRawPointer(x)
        let f = F32x16(repeating: factor)
        var i = 0
        while i + 16 <= count {
            r.storeBytes(of: r.loadUnaligned(fromByteOffset: 4 * i, as: F32x16.self) * f, toByteOffset: 4 * i, as: F32x16.self)
            i += 16
        }
        while i < count { x[i] *= factor; i += 1 }
    }
}

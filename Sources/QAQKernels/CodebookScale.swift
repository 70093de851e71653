import QAQLayout

// Scales of code-map records (see `CodebookLayout`): fp16, or one byte k with
// scale = 2^((k − 128)/16) (k = 0: scale 0). Shared by the kernels and their references,
// so that every ISA level and the reference agree on every byte.

/// 2^(j/16) for j = 0…16, each correctly rounded to fp32 (a switch over constants, which
/// compiles to a table load).
@inline(__always)
func pow2Sixteenth(_ j: Int) -> Float {
    switch j {
    case 0: return 1
    case 1: return 0x1.0b5586p+0
    case 2: return 0x1.172b84p+0
    case 3: return 0x1.2387a6p+0
    case 4: return 0x1.306fe0p+0
    case 5: return 0x1.3dea64p+0
    case 6: return 0x1.4bfdaep+0
    case 7: return 0x1.5ab07ep+0
    case 8: return 0x1.6a09e6p+0
    case 9: return 0x1.7a1148p+0
    case 10: return 0x1.8ace54p+0
    case 11: return 0x1.9c4918p+0
    case 12: return 0x1.ae89fap+0
    case 13: return 0x1.c199bep+0
    case 14: return 0x1.d5818ep+0
    case 15: return 0x1.ea4afap+0
    default: return 2
    }
}

/// The scale a log8 byte stands for: 0 for k = 0, else 2^((k − 128)/16), computed as
/// 2^(j/16) (the table above) times an exact power of two.
@inline(__always)
func scaleOfLog8(_ k: UInt8) -> Float {
    let t = Int(k) - 128
    let p2 = Float(bitPattern: UInt32(truncatingIfNeeded: (t >> 4) + 127) << 23)   // 2^⌊t/16⌋
    return k == 0 ? 0 : pow2Sixteenth(t & 15) * p2
}

/// The log8 byte of the representable scale nearest to `s` (s ≥ 0, finite): among
/// {0} ∪ {2^(n/16) : −127 ≤ n ≤ 127}, the nearest value — which, because ‖x − s′c‖² is a
/// parabola in s′ centred on the least-squares scale s, is also the best representable
/// scale in the least-squares sense. The midpoint between neighbours 2^(j/16)·2^e and
/// 2^((j+1)/16)·2^e is taken as `(2^(j/16) + 2^((j+1)/16)) · 0.5` in fp32 (`log8Midpoint`),
/// times 2^e; a tie goes up. Below half the smallest scale (2^(−127/16)) the
/// scale is 0. Returns −1 when the nearest grid value lies above 2^(127/16) (no fit).
@inline(__always)
func nearestLog8(_ s: Float) -> Int {
    let smin: Float = 0x1.0b5586p-8                    // 2^(−127/16)
    if !(s >= 0.5 * smin) { return 0 }                 // 0 or tiny (NaN never reaches here)
    let bits = s.bitPattern
    let e = Int((bits >> 23) & 0xFF) - 127              // s ≥ 2^-9: a normal number
    let m = Float(bitPattern: (bits & 0x7F_FFFF) | 0x3F80_0000)   // s / 2^e ∈ [1, 2)
    // n = number of octave midpoints ≤ m (0…16): the nearest grid point is 2^(n/16) · 2^e.
    // One 16-lane compare and a count (a scalar search branches unpredictably).
    let mids = F32x16(log8Midpoint(0), log8Midpoint(1), log8Midpoint(2), log8Midpoint(3),
                      log8Midpoint(4), log8Midpoint(5), log8Midpoint(6), log8Midpoint(7),
                      log8Midpoint(8), log8Midpoint(9), log8Midpoint(10), log8Midpoint(11),
                      log8Midpoint(12), log8Midpoint(13), log8Midpoint(14), log8Midpoint(15))
    let below = F32x16(repeating: 1).replacing(with: 0, where: F32x16(repeating: m) .< mids)
    let t = 16 &* e &+ Int(foldSum(below))
    if t > 127 { return -1 }
    if t < -127 { return 1 }          // s ≥ smin/2 here: smin is nearer than 0
    return t &+ 128
}

/// (2^(j/16) + 2^((j+1)/16)) · 0.5 in fp32, j = 0…15: the midpoints between neighbouring
/// log8 scales within an octave (a switch over constants, compiled to a table load).
@inline(__always)
func log8Midpoint(_ j: Int) -> Float {
    switch j {
    case 0: return 0x1.05aac4p+0
    case 1: return 0x1.114084p+0
    case 2: return 0x1.1d5994p+0
    case 3: return 0x1.29fbc4p+0
    case 4: return 0x1.372d22p+0
    case 5: return 0x1.44f408p+0
    case 6: return 0x1.535716p+0
    case 7: return 0x1.625d32p+0
    case 8: return 0x1.720d98p+0
    case 9: return 0x1.826fcep+0
    case 10: return 0x1.938bb6p+0
    case 11: return 0x1.a56988p+0
    case 12: return 0x1.b811dcp+0
    case 13: return 0x1.cb8da6p+0
    case 14: return 0x1.dfe644p+0
    default: return 0x1.f5257cp+0
    }
}

/// Scale of group `g` of a code-map record, in fp32.
@inline(__always)
func loadCodebookScale(_ record: UnsafeRawPointer, _ layout: CodebookLayout, _ g: Int) -> Float {
    if layout.isLog8 {
        return scaleOfLog8(record.load(fromByteOffset: layout.scaleOffset, as: UInt8.self))
    }
    return Float(record.loadUnaligned(fromByteOffset: layout.scaleOffset + 2 * g, as: Float16.self))
}

/// Rounds the least-squares scale `s` of group `g` to the layout's storage and writes it.
/// Returns false if it does not fit (fp16 overflow, or beyond the log8 range).
@inline(__always)
func storeCodebookScale(_ record: UnsafeMutableRawPointer, _ layout: CodebookLayout, _ g: Int, _ s: Float) -> Bool {
    if layout.isLog8 {
        let k = nearestLog8(s)
        record.storeBytes(of: UInt8(truncatingIfNeeded: k), toByteOffset: layout.scaleOffset, as: UInt8.self)
        return k >= 0
    }
    let h = Float16(s)
    record.storeBytes(of: h, toByteOffset: layout.scaleOffset + 2 * g, as: Float16.self)
    return !h.isInfinite
}

extension Reference {
    /// The stored scale of group `g` (the only group for vector modes), in fp32.
    public static func codebookScale(_ record: UnsafeRawPointer, _ layout: CodebookLayout, group g: Int) -> Float {
        loadCodebookScale(record, layout, g)
    }

    /// The scale a log8 byte stands for: 0 for k = 0, else 2^((k − 128)/16).
    public static func log8Scale(_ k: UInt8) -> Float { scaleOfLog8(k) }

    /// The log8 byte for a least-squares scale `s ≥ 0` (nearest representable value, see the
    /// kernels' documentation), or −1 when it lies beyond 2^(127/16).
    public static func log8Code(_ s: Float) -> Int { nearestLog8(s) }
}

// Minimum and maximum of up to four groups at once, without horizontal reductions.
//
// Eight 16-lane vectors (the lane-wise minima of four groups and the negated lane-wise
// maxima) are folded pairwise, halving the lanes per item at each level (8, 4, 2, 1),
// so that one 16-lane `min` serves several groups. Only full-width compares are used:
// Swift's narrower SIMD masks compile to shuffles.

@inline(always)
func vmin(_ a: F32x16, _ b: F32x16) -> F32x16 { a.replacing(with: b, where: b .< a) }

@inline(always)
func vmax(_ a: F32x16, _ b: F32x16) -> F32x16 { a.replacing(with: b, where: b .> a) }

// The shuffles are written as 64-bit-lane constructors (which compile to one permute);
// `lowHalf`/`highHalf` getters were emitted as shared weak symbols.
typealias U64x8 = SIMD8<UInt64>

@inline(always)
func pick(_ a: F32x16, _ b: F32x16, _ i: (Int, Int, Int, Int), _ j: (Int, Int, Int, Int)) -> F32x16 {
    let x = unsafeBitCast(a, to: U64x8.self), y = unsafeBitCast(b, to: U64x8.self)
    return unsafeBitCast(U64x8(x[i.0], x[i.1], x[i.2], x[i.3], y[j.0], y[j.1], y[j.2], y[j.3]), to: F32x16.self)
}

/// Level 1: items of 16 lanes → two items of 8 lanes in one vector.
@inline(always)
func foldHalves(_ a: F32x16, _ b: F32x16) -> F32x16 {
    vmin(pick(a, b, (0, 1, 2, 3), (0, 1, 2, 3)), pick(a, b, (4, 5, 6, 7), (4, 5, 6, 7)))
}

/// Level 2: [a₀ a₁] [b₀ b₁] (8-lane items) → [a₀ a₁ b₀ b₁] of 4 lanes each.
@inline(always)
func foldQuarters(_ a: F32x16, _ b: F32x16) -> F32x16 {
    vmin(pick(a, b, (0, 1, 4, 5), (0, 1, 4, 5)), pick(a, b, (2, 3, 6, 7), (2, 3, 6, 7)))
}

/// Level 3: four 4-lane items per vector → eight 2-lane items.
@inline(always)
func foldPairs(_ a: F32x16, _ b: F32x16) -> F32x16 {
    vmin(pick(a, b, (0, 2, 4, 6), (0, 2, 4, 6)), pick(a, b, (1, 3, 5, 7), (1, 3, 5, 7)))
}

/// Level 4: each 2-lane item → its minimum in both lanes.
@inline(always)
func foldAdjacent(_ v: F32x16) -> F32x16 {
    let u = unsafeBitCast(v, to: SIMD8<UInt64>.self)
    return vmin(v, unsafeBitCast((u &>> 32) | (u &<< 32), to: F32x16.self))
}

/// The ranges of four groups from their lane-wise minima `m` and maxima `x`:
/// returns (mn, mx) with group g's minimum in lanes 2g, 2g+1 of `mn` and its maximum in the
/// same lanes of `mx` (g = 0…3). Lanes 8…15 hold no groups.
@inline(always)
func groupRanges4(_ m0: F32x16, _ m1: F32x16, _ m2: F32x16, _ m3: F32x16,
                  _ x0: F32x16, _ x1: F32x16, _ x2: F32x16, _ x3: F32x16) -> (mn: F32x16, mx: F32x16) {
    let mins = foldQuarters(foldHalves(m0, m1), foldHalves(m2, m3))
    let negMaxes = foldQuarters(foldHalves(-x0, -x1), foldHalves(-x2, -x3))
    let w = foldAdjacent(foldPairs(mins, negMaxes))
    return (w, -pick(w, w, (4, 5, 6, 7), (0, 1, 2, 3)))
}

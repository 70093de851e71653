/// Why a policy input was rejected. Nothing is recorded or changed when one is thrown.
public enum PolicyError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Token `token` was given an attention probability that is NaN, negative, or above 1 by more than
    /// `AttentionHistory.slack`.
    case invalidProbability(token: Int, value: Float)
    /// The probabilities do not cover exactly the tokens held: `expected` values (heads × tokens), `got` given.
    case countMismatch(expected: Int, got: Int)

    public var description: String {
        switch self {
        case .invalidProbability(let t, let v):
            return "token \(t): attention probability \(v) is not in [0, 1]"
        case .countMismatch(let e, let g):
            return "attention rows hold \(g) values, expected \(e) (heads × tokens held)"
        }
    }
}

/// Per token, the attention probabilities of its last `n` decode steps, so that the value rule can use
/// `Ŝ_t = max` of them (the paper's attention window, `n = 5`; `QAQBits.valueSigma`).
///
/// With GQA a step contributes, per token, the max over the q heads sharing the KV head: pass the group's
/// rows to `record(heads:...)`, or take the max yourself and call `record(_:)`.
///
/// Representation: one ring of `n` `Float16` slots per token, all tokens sharing one ring cursor (every step
/// covers every token held), so a token costs exactly **`2·n` bytes (10 bytes at n = 5)** and nothing else;
/// the struct itself is 32 bytes plus the array's header. Slots of steps before a token existed read 0 (the neutral element of
/// max over probabilities), so a token observed `k < n` times reports the max of those `k`, and a token never
/// observed reports 0. Values are stored rounded **up** to Float16 (a value that rounds to nearest below itself
/// is replaced by the next Float16), so `maxRecent` is never below the exact max: at most 2⁻¹¹ relative above
/// it for values ≥ 2⁻¹⁴, and any positive value below 2⁻²⁴ reads as 2⁻²⁴ (≈ 6·10⁻⁸).
///
/// Inputs are checked before anything is written: a NaN, a negative value, or a value above `1 + slack`
/// throws `PolicyError.invalidProbability` (the first offending token), a wrong length throws
/// `PolicyError.countMismatch`; values in `(1, 1 + slack]` are stored as 1.
///
/// `record` does not allocate; `appendTokens` grows storage (amortized, or not at all after
/// `reserveCapacity`).
public struct AttentionHistory: Sendable {
    /// Tolerance above 1 for rounding in the caller's softmax.
    public static let slack: Float = 1e-6
    /// Bytes per token of this history (the cache charges them to bookkeeping): `2·window`.
    public var bytesPerToken: Int { window * MemoryLayout<Float16>.size }

    /// The window `n`: how many recent steps each token remembers.
    public let window: Int
    /// Tokens held.
    public private(set) var tokenCount: Int = 0
    /// Steps recorded so far.
    public private(set) var steps: Int = 0
    /// `tokenCount × window` slots, token-major.
    private var slots: [Float16] = []

    /// - Precondition: `window ≥ 1`.
    public init(window n: Int = 5) {
        precondition(n >= 1, "AttentionHistory: window must be ≥ 1, got \(n)")
        window = n
    }

    /// Reserves storage for `tokens` tokens.
    public mutating func reserveCapacity(tokens: Int) {
        slots.reserveCapacity(tokens * window)
    }

    /// Appends `count` tokens with an empty history (they report 0 until recorded).
    public mutating func appendTokens(_ count: Int = 1) {
        precondition(count >= 0, "AttentionHistory: cannot append \(count) tokens")
        slots.append(contentsOf: repeatElement(0, count: count * window))
        tokenCount += count
    }

    /// Drops every token with index `≥ newCount` (no effect when `newCount ≥ tokenCount`).
    public mutating func truncate(to newCount: Int) {
        precondition(newCount >= 0, "AttentionHistory: cannot truncate to \(newCount) tokens")
        guard newCount < tokenCount else { return }
        slots.removeLast((tokenCount - newCount) * window)
        tokenCount = newCount
    }

    /// Records one decode step: `probabilities[t]` is token `t`'s attention probability (already the max over
    /// the q heads of a GQA group), for every token `0 ..< tokenCount`.
    ///
    /// - Throws: `PolicyError` — and then records nothing.
    public mutating func record(_ probabilities: UnsafeBufferPointer<Float>) throws(PolicyError) {
        try record(heads: probabilities, headCount: 1)
    }

    /// Records one decode step of a GQA group: `rows` holds `headCount` rows of `tokenCount` probabilities
    /// (head-major); token `t` records `max over heads h of rows[h·tokenCount + t]`.
    ///
    /// - Throws: `PolicyError` — and then records nothing.
    public mutating func record(heads rows: UnsafeBufferPointer<Float>, headCount: Int) throws(PolicyError) {
        precondition(headCount >= 1, "AttentionHistory: headCount must be ≥ 1, got \(headCount)")
        let T = tokenCount
        guard rows.count == headCount * T else {
            throw .countMismatch(expected: headCount * T, got: rows.count)
        }
        // Validate everything first: one pass without an early exit (it vectorizes), then, only
        // if something is out of range, token by token so that the error names the first one.
        if Self.anyOutOfRange(rows) {
            for t in 0..<T {
                for hd in 0..<headCount {
                    let v = rows[hd * T + t]
                    if !Self.isProbability(v) { throw .invalidProbability(token: t, value: v) }
                }
            }
        }
        recordValidated(heads: rows, headCount: headCount)
    }

    /// ``record(heads:headCount:)`` for rows the caller has checked: `headCount` rows of
    /// ``tokenCount`` values, each in [0, 1 + slack].
    mutating func recordValidated(heads rows: UnsafeBufferPointer<Float>, headCount: Int) {
        let T = tokenCount
        precondition(headCount >= 1 && rows.count == headCount * T, "AttentionHistory: \(rows.count) values for \(headCount) × \(T)")
        let slot = steps % window
        slots.withUnsafeMutableBufferPointer { out in
            let o = out.baseAddress!
            for t in 0..<T {
                var m = rows[t]
                for hd in 1..<headCount { m = Swift.max(m, rows[hd * T + t]) }
                o[t * window + slot] = Float16(bitPattern: Self.roundUpBits(Swift.min(m, 1)))
            }
        }
        steps += 1
    }

    /// Convenience for arrays; see `record(_:)`.
    public mutating func record(_ probabilities: [Float]) throws(PolicyError) {
        try probabilities.withUnsafeBufferPointer { (p) throws(PolicyError) in try record(p) }
    }

    /// Convenience for arrays; see `record(heads:headCount:)`.
    public mutating func record(heads rows: [Float], headCount: Int) throws(PolicyError) {
        try rows.withUnsafeBufferPointer { (p) throws(PolicyError) in try record(heads: p, headCount: headCount) }
    }

    /// `Ŝ_t`: the max of token `token`'s last `min(window, steps since it was appended)` recorded probabilities
    /// (0 if none), rounded up to Float16.
    public func maxRecent(token: Int) -> Float {
        precondition(token >= 0 && token < tokenCount, "AttentionHistory: token \(token) of \(tokenCount)")
        var m: Float16 = 0
        let base = token * window
        for i in 0..<window { m = Swift.max(m, slots[base + i]) }
        return Float(m)
    }

    /// Whether `v` is in [0, 1 + slack] (NaN is not).
    @inline(__always)
    static func isProbability(_ v: Float) -> Bool { v >= 0 && v <= 1 + slack }

    /// Whether any of `values` is not in [0, 1 + slack] (NaN included), by the bit patterns so
    /// that the loop vectorizes: the valid ones are +0…(1 + slack) as unsigned integers, and −0.
    static func anyOutOfRange(_ values: UnsafeBufferPointer<Float>) -> Bool {
        let limit = (1 + slack).bitPattern
        var bad: UInt32 = 0
        for v in values {
            let b = v.bitPattern
            bad |= (b > limit ? 1 : 0) & (b != 0x8000_0000 ? 1 : 0)
        }
        return bad != 0
    }

    /// The bits of the smallest Float16 not below `x`, for `x` in [0, 1], by integer
    /// arithmetic (a Float16 conversion is a library call at the baseline ISA, twice per token
    /// and step): from 2⁻¹⁴ up, the fp32 exponent rebiased by −112 and the mantissa cut to 10
    /// bits, plus one if any cut bit is set (a carry runs into the exponent); below, the
    /// subnormal ⌈x·2²⁴⌉ (exact: x·2²⁴ is a power-of-two scaling), so 0 stays 0 and any positive
    /// value below 2⁻²⁴ becomes 2⁻²⁴.
    @inline(__always)
    static func roundUpBits(_ x: Float) -> UInt16 {
        let b = x.bitPattern & 0x7FFF_FFFF   // −0 as 0
        if b >= 0x3880_0000 {
            let r = b &- 0x3800_0000
            return UInt16(truncatingIfNeeded: (r &>> 13) &+ (r & 0x1FFF != 0 ? 1 : 0))
        }
        return UInt16((x * 16_777_216).rounded(.up))
    }
}

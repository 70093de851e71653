/// Rotated Lloyd-Max codebooks at fixed widths (issue 10's `rlm:KB:VB`): keys at `keyBits`
/// and values at `valueBits` ∈ {1, 2, 3, 4}, each vector rotated by a fixed random-sign
/// Hadamard transform and coded against the Lloyd-Max levels of N(0, 1) with one scale;
/// the first `sinks` tokens stay fp16; optional key centering and an 8-bit staging tier
/// (tokens leave the fp16 window at 8 bits and get their codebook after `stage` more tokens).
public struct RLMPolicy: CachePolicy {
    public var keyBits: Int
    public var valueBits: Int
    public var sinks: Int
    public var scale: CodebookScale
    public var center: Bool
    /// Tokens spent in the 8-bit staging tier (0: none).
    public var stage: Int
    public var hotWindow: Int
    public var keyScheme: KeyScheme { .token }

    public init(keyBits: Int, valueBits: Int, sinks: Int = 1, scale: CodebookScale = .f16, center: Bool = false,
                stage: Int = 0, hotWindow: Int = 32) {
        self.keyBits = keyBits
        self.valueBits = valueBits
        self.sinks = sinks
        self.scale = scale
        self.center = center
        self.stage = stage
        self.hotWindow = hotWindow
    }

    public var sinkTokens: Int { sinks }
    public var centersKeys: Bool { center }
    public var staging: (format: StorageFormat, tokens: Int)? {
        stage > 0 ? (.affine(bits: 8, group: 32, outliers: 0), stage) : nil
    }

    public func storage(for token: TokenContext) -> (key: StorageFormat, value: StorageFormat) {
        (.codebook(bits: keyBits, scale: scale, rotated: true), .codebook(bits: valueBits, scale: scale, rotated: true))
    }

    public var description: String {
        var s = "rlm:\(keyBits):\(valueBits):sink=\(sinks):scale=\(scale)"
        if center { s += ":center=on" }
        if stage > 0 { s += ":stage=\(stage)" }
        return s
    }
}

/// QAQ's adaptive policy (arXiv 2403.04643, DESIGN §6): separate per-token bit widths for
/// keys and values from the measured sensitivity of attention.
///
/// - Values: σ_V,t ≤ σ_X / (√T · Ŝₜ), Ŝₜ the max of token t's recent attention (max over the
///   q heads of the KV head with GQA).
/// - Keys: σ_K² ≤ ln(T³/(T−1)·σ_S² + 1) / ‖q/√D‖², ‖q/√D‖² a running 90th percentile.
/// - Bits from σ: ``QAQBits/bits(range:sigma:formula:min:max:)`` on the vector's range.
/// Tokens whose statistics are not known yet (no query seen, no attention recorded — e.g.
/// a prefill batch leaving the window before its first attention step) get `maxBits`;
/// ``KVCache/refresh(layer:)`` lowers them once the statistics exist. Bits never rise.
public struct QAQPolicy: CachePolicy {
    /// Key quality target σ_S (std of the attention-probability perturbation).
    public var sigmaS: Double
    /// Value quality target σ_X (std of the attention-output perturbation).
    public var sigmaX: Double
    public var formula: BitsFormula
    public var minBits: Int
    public var maxBits: Int
    /// Quantization group size G (clamped to D).
    public var group: Int
    /// Fraction of each vector kept as exact outliers (both tails).
    public var outlierFraction: Double
    public var hotWindow: Int
    public var keyScheme: KeyScheme
    /// Code map of the stored vectors: the affine midpoint quantizer, or rotated Lloyd-Max
    /// codebooks (widths ≤ 4; wider choices fall back to affine 8 bits). Lowering a codebook
    /// token re-quantizes from its current levels (they do not nest by shift).
    public var codeMap: CodeMap = .affine
    /// Attention window n: steps each token's Ŝₜ covers.
    public var attentionWindow: Int = 5
    public var usesAttention: Bool { true }

    public init(sigmaS: Double = 0.02, sigmaX: Double = 0.05, formula: BitsFormula = .paper,
                minBits: Int = 2, maxBits: Int = 8, group: Int = 32, outlierFraction: Double = 0.01,
                hotWindow: Int = 32, keyScheme: KeyScheme = .token) {
        self.sigmaS = sigmaS
        self.sigmaX = sigmaX
        self.formula = formula
        self.minBits = minBits
        self.maxBits = maxBits
        self.group = group
        self.outlierFraction = outlierFraction
        self.hotWindow = hotWindow
        self.keyScheme = keyScheme
    }

    func outliers(dim: Int) -> Int { Int((outlierFraction * Double(dim)).rounded()) }

    public func keyBits(_ t: TokenContext) -> Int {
        guard t.queryNormSquared > 0 else { return maxBits }
        let sigma = QAQBits.keySigma(sigmaS: sigmaS, contextLength: t.contextLength, queryNormSquared: t.queryNormSquared)
        return QAQBits.bits(range: Double(t.keyRange), sigma: sigma, formula: formula, min: minBits, max: maxBits)
    }

    public func valueBits(_ t: TokenContext) -> Int {
        guard t.recentMaxAttention > 0 else { return maxBits }
        let sigma = QAQBits.valueSigma(sigmaX: sigmaX, contextLength: t.contextLength, maxAttention: Double(t.recentMaxAttention))
        return QAQBits.bits(range: Double(t.valueRange), sigma: sigma, formula: formula, min: minBits, max: maxBits)
    }

    public func storage(for token: TokenContext) -> (key: StorageFormat, value: StorageFormat) {
        (format(bits: keyBits(token), dim: token.dim), format(bits: valueBits(token), dim: token.dim))
    }

    func format(bits: Int, dim: Int) -> StorageFormat {
        if codeMap == .lloydMax, bits <= 4 { return .codebook(bits: bits, scale: .f16, rotated: true) }
        return .affine(bits: bits, group: group, outliers: outliers(dim: dim))
    }

    /// How stored codes map to values.
    public enum CodeMap: String, Sendable, Hashable {
        case affine
        case lloydMax = "lm"
    }

    public func lowered(for token: TokenContext, key: StorageFormat, value: StorageFormat) -> (key: StorageFormat, value: StorageFormat)? {
        let next = storage(for: token)
        let k = next.key.bits < key.bits ? next.key : key
        let v = next.value.bits < value.bits ? next.value : value
        return k == key && v == value ? nil : (k, v)
    }

    /// The block's bits: the most any of its tokens needs, rounded up to a width the
    /// channel codec stores (2, 4 or 8).
    public func keyBlockBits(_ tokens: [TokenContext]) -> Int {
        let b = tokens.map(keyBits).max() ?? maxBits
        return [2, 4, 8].first { $0 >= b } ?? 8
    }

    public var description: String {
        let scheme: String
        switch keyScheme {
        case .token: scheme = "token"
        case .channel(let b): scheme = "channel\(b)"
        case .rotated: scheme = "rotated"
        }
        return "qaq(σS=\(sigmaS), σX=\(sigmaX), keys=\(scheme), map=\(codeMap.rawValue), G=\(group), W=\(hotWindow), bits \(minBits)…\(maxBits))"
    }
}

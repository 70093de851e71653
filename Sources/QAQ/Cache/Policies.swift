/// A fixed format for every key and every value, stored as soon as a token arrives (no hot
/// window): the baselines `fp32`, `fp16`, `uniform(bits, group)`, `q8_0`, `q4_0`.
public struct FixedPolicy: CachePolicy {
    public var key: StorageFormat
    public var value: StorageFormat
    public var hotWindow: Int
    public var keyScheme: KeyScheme { .token }

    public init(key: StorageFormat, value: StorageFormat, hotWindow: Int = 0) {
        self.key = key
        self.value = value
        self.hotWindow = hotWindow
    }

    public static let fp32 = FixedPolicy(key: .fp32, value: .fp32)
    public static let fp16 = FixedPolicy(key: .fp16, value: .fp16)
    public static let q8_0 = FixedPolicy(key: .q8_0, value: .q8_0)
    public static let q4_0 = FixedPolicy(key: .q4_0, value: .q4_0)
    /// Per-token affine quantization of keys and values at `bits`, groups of `group`.
    public static func uniform(bits: Int, group: Int) -> FixedPolicy {
        FixedPolicy(key: .affine(bits: bits, group: group, outliers: 0), value: .affine(bits: bits, group: group, outliers: 0))
    }

    public func storage(for token: TokenContext) -> (key: StorageFormat, value: StorageFormat) { (key, value) }

    public var description: String {
        if key == value {
            if case .affine(let b, let g, 0) = key { return "uniform:\(b):\(g)" }
            return key.description
        }
        return "fixed(k=\(key), v=\(value))"
    }
}

/// KIVI (Liu et al. 2024): keys quantized per channel over blocks of `group` tokens, values
/// per token in groups of `group` elements, the newest tokens (up to `residual` + a partial
/// block) kept in fp16.
public struct KIVIPolicy: CachePolicy {
    public var bits: Int
    public var group: Int
    public var residual: Int

    public init(bits: Int, group: Int = 32, residual: Int = 32) {
        self.bits = bits
        self.group = group
        self.residual = residual
    }

    /// The residual is the fp16 part: tokens leave it a whole key block at a time, so between
    /// `residual` and `residual + group − 1` tokens are fp16. With `residual = group` this
    /// matches KIVI's rule of quantizing the residual once it holds `group` tokens, shifted
    /// by one block.
    public var hotWindow: Int { residual - group >= 0 ? residual - group : 0 }
    public var keyScheme: KeyScheme { .channel(blockTokens: group) }

    public func storage(for token: TokenContext) -> (key: StorageFormat, value: StorageFormat) {
        (.affine(bits: bits, group: group, outliers: 0), .affine(bits: bits, group: group, outliers: 0))
    }

    public func keyBlockBits(_ tokens: [TokenContext]) -> Int { bits }

    public var description: String { "kivi:\(bits):\(group):\(residual)" }
}

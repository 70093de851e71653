/// What a policy knows about a token when it decides how to store it.
public struct TokenContext: Sendable {
    /// Absolute position of the token.
    public var position: Int
    /// Tokens in the sequence now (T).
    public var contextLength: Int
    /// max − min of the key vector (as stored: after rotation when keys are rotated).
    public var keyRange: Float
    /// max − min of the value vector.
    public var valueRange: Float
    /// Max attention probability of the token over its last n steps, max over the q heads of
    /// the KV head's group (Ŝₜ); 0 if none recorded.
    public var recentMaxAttention: Float
    /// The running high quantile of ‖q/√D‖² for this (layer, KV head); 0 if no query seen.
    public var queryNormSquared: Double
    /// Head dimension D.
    public var dim: Int

    public init(position: Int, contextLength: Int, keyRange: Float, valueRange: Float, recentMaxAttention: Float,
                queryNormSquared: Double, dim: Int) {
        self.position = position
        self.contextLength = contextLength
        self.keyRange = keyRange
        self.valueRange = valueRange
        self.recentMaxAttention = recentMaxAttention
        self.queryNormSquared = queryNormSquared
        self.dim = dim
    }
}

/// How keys are laid out before their codec sees them.
public enum KeyScheme: Hashable, Sendable, Codable {
    /// Per-token vectors (the paper).
    case token
    /// Per-channel groups over blocks of `blockTokens` consecutive tokens (KIVI-style),
    /// quantized when a block has left the hot window.
    case channel(blockTokens: Int)
    /// Per-token vectors after a fixed random-sign Hadamard rotation of k (and of q at
    /// attention time); attention is unchanged in exact arithmetic.
    case rotated
}

/// A cache policy: which storage each token gets when it leaves the hot window, and which
/// cheaper storage it may move to later. All policies — QAQ's adaptive bits and the fixed
/// baselines — go through this one protocol, so an engine or a benchmark swaps them freely.
public protocol CachePolicy: Sendable, CustomStringConvertible {
    /// Newest tokens kept in fp16 before their storage is decided (W).
    var hotWindow: Int { get }
    /// Key layout.
    var keyScheme: KeyScheme { get }
    /// Whether the policy reads attention probabilities (so the cache records them).
    var usesAttention: Bool { get }
    /// Steps of attention each token remembers (n; Ŝₜ is the max over them). Default 5.
    var attentionWindow: Int { get }
    /// Storage for a token leaving the hot window. With `.channel` keys, `key` is ignored
    /// (see ``keyBlockBits(_:)``).
    func storage(for token: TokenContext) -> (key: StorageFormat, value: StorageFormat)
    /// Called at refresh for tokens already stored: a format with no more bits than the
    /// current one, or nil to keep it. Bits never rise.
    func lowered(for token: TokenContext, key: StorageFormat, value: StorageFormat) -> (key: StorageFormat, value: StorageFormat)?
    /// Bits for a block of channel-quantized keys (`.channel` scheme only), given the tokens.
    func keyBlockBits(_ tokens: [TokenContext]) -> Int
    /// The first `sinkTokens` tokens of a sequence (attention sinks) stay fp16 for good.
    var sinkTokens: Int { get }
    /// A staging tier: tokens leaving the hot window are stored at `format` first and get
    /// their final storage (``storage(for:)``) after `tokens` more tokens. nil: no staging.
    var staging: (format: StorageFormat, tokens: Int)? { get }
    /// Key centering: subtract a per-(layer, KV head) mean key, estimated from the
    /// `hotWindow` keys after the sinks, before storing keys (token and rotated schemes);
    /// the mean is added back exactly when keys are read (scores gain q·mean).
    var centersKeys: Bool { get }
}

extension CachePolicy {
    public var usesAttention: Bool { false }
    public var attentionWindow: Int { 5 }
    public func lowered(for token: TokenContext, key: StorageFormat, value: StorageFormat) -> (key: StorageFormat, value: StorageFormat)? { nil }
    public func keyBlockBits(_ tokens: [TokenContext]) -> Int { 4 }
    public var sinkTokens: Int { 0 }
    public var staging: (format: StorageFormat, tokens: Int)? { nil }
    public var centersKeys: Bool { false }
}

/// Shape and policy of a ``KVCache``.
public struct KVCacheConfiguration: Sendable {
    /// Transformer layers.
    public var layers: Int
    /// KV heads per layer.
    public var kvHeads: Int
    /// Query heads sharing each KV head (GQA group size; 1 without GQA).
    public var queryHeadsPerKVHead: Int
    /// Head dimension D.
    public var headDim: Int
    /// The storage policy.
    public var policy: any CachePolicy
    /// Tokens per page of stored vectors.
    public var pageTokens: Int
    /// Kernels for the affine formats.
    public var kernels: KernelSet
    /// Most tokens per layer (nil: unlimited); appending past it is a ``CacheError/contextFull(layer:tokens:appending:limit:)``.
    public var maxTokens: Int?
    /// How decode attention runs (threads, split, pinning); the planner's choice. The cache
    /// keeps its own worker pool when the plan has more than one thread.
    public var attentionPlan: AttentionPlan

    public init(layers: Int, kvHeads: Int, queryHeadsPerKVHead: Int, headDim: Int, policy: any CachePolicy,
                pageTokens: Int = 64, kernels: KernelSet = .active, maxTokens: Int? = nil,
                attentionPlan: AttentionPlan = .serial) {
        self.maxTokens = maxTokens
        self.attentionPlan = attentionPlan
        self.layers = layers
        self.kvHeads = kvHeads
        self.queryHeadsPerKVHead = queryHeadsPerKVHead
        self.headDim = headDim
        self.policy = policy
        self.pageTokens = pageTokens
        self.kernels = kernels
    }

    /// Query heads per layer.
    public var queryHeads: Int { kvHeads * queryHeadsPerKVHead }

    func validate() throws(CacheError) {
        guard layers > 0, kvHeads > 0, queryHeadsPerKVHead > 0 else {
            throw .invalidConfiguration("layers, KV heads and the GQA group must be positive (got \(layers), \(kvHeads), \(queryHeadsPerKVHead))")
        }
        guard headDim > 0, headDim % 16 == 0, headDim <= PackedLayout.maxDim else {
            throw .invalidConfiguration("head dimension \(headDim) is not supported: a multiple of 16 up to \(PackedLayout.maxDim)")
        }
        guard pageTokens > 0 else { throw .invalidConfiguration("pageTokens must be positive") }
        if let maxTokens, maxTokens <= 0 { throw .invalidConfiguration("maxTokens must be positive") }
        guard policy.attentionWindow >= 1 else { throw .invalidConfiguration("the attention window n must be at least 1") }
        guard policy.hotWindow >= 0 else { throw .invalidConfiguration("the hot window cannot be negative") }
        if case .channel(let b) = policy.keyScheme, b <= 0 {
            throw .invalidConfiguration("channel key blocks need a positive token count")
        }
    }
}

/// Bytes a ``KVCache`` holds, exactly, split by what they are for.
public struct CacheMemory: Sendable, Codable, Equatable {
    /// Tokens per layer.
    public var tokens: Int
    /// Quantized codes (and raw values of fp16/fp32-stored tokens outside the window).
    public var codes: Int
    /// Scales, zero points, lo/step pairs.
    public var metadata: Int
    /// Outlier indices and values.
    public var outliers: Int
    /// The fp16 hot window (and tokens waiting for a full key block).
    public var window: Int
    /// Positions of stored records, per-token ranges and attention statistics.
    public var bookkeeping: Int
    /// Elements stored: tokens × layers × KV heads × D × 2 (keys and values).
    public var elements: Int

    public var total: Int { codes + metadata + outliers + window + bookkeeping }
    /// Bits per stored element, everything included.
    public var bitsPerElement: Double { elements == 0 ? 0 : Double(total * 8) / Double(elements) }
    /// fp16 bytes of the same cache ÷ ``total``.
    public var compressionRatio: Double { total == 0 ? 0 : Double(elements * 2) / Double(total) }
    /// Bytes per token per layer (all heads, keys and values).
    public func bytesPerToken(layers: Int) -> Double { tokens == 0 ? 0 : Double(total) / Double(tokens * layers) }
}

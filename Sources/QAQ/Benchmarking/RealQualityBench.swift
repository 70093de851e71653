#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Attention quality of a cache policy on real captured activations (one layer of an
/// ``ActivationSet``), streaming decode: every step appends one token to a one-layer
/// ``KVCache`` and attends with that step's queries; the cache's output and probabilities are
/// compared with exact fp64 attention over the unquantized inputs. Each policy runs twice:
/// as given (keys and values quantized, "K+V") and through ``KeysOnlyPolicy`` (values kept
/// fp32), so the probability error of key quantization alone is reported separately.
public enum RealQualityBench {
    public struct Result: Codable, Sendable {
        public var policy: String
        public var layer: Int
        /// Decode steps run.
        public var tokens: Int
        /// Bits per stored element at the end, everything included (window, bookkeeping), K+V.
        public var bitsPerElement: Double
        /// fp16 bytes ÷ bytes held, K+V.
        public var compressionRatio: Double
        /// K+V: mean over steps ≥ warmup and q heads of ‖out − exact‖ / ‖exact‖.
        public var attentionRelError: Double
        /// K+V: mean over steps ≥ warmup and q heads of KL(exact ‖ cache) of the attention
        /// probabilities, in nats.
        public var klKV: Double
        /// The same KL with only the keys stored by the policy (values fp32).
        public var klKeysOnly: Double
        /// The output error with only the keys stored by the policy (values fp32).
        public var attentionRelErrorKeysOnly: Double
        /// Bytes held at the end (K+V), split.
        public var memory: CacheMemory
    }

    /// One variant's figures.
    public struct Measurement: Sendable {
        public var attentionRelError: Double
        public var kl: Double
        public var memory: CacheMemory
    }

    /// Exact fp64 attention of every step, computed once per set and shared by the policies.
    public struct Reference: Sendable {
        public let tokens: Int
        /// Per step t: `[queryHeads][dim]`.
        public let outputs: [[Double]]
        /// Per step t: `[queryHeads][t + 1]`.
        public let probabilities: [[Double]]

        public init(set: ActivationSet, tokens: Int) {
            precondition(tokens >= 0 && tokens <= set.tokens, "tokens \(tokens) out of 0...\(set.tokens)")
            self.tokens = tokens
            var outputs: [[Double]] = [], probabilities: [[Double]] = []
            outputs.reserveCapacity(tokens)
            probabilities.reserveCapacity(tokens)
            for t in 0..<tokens {
                let e = set.exact(step: t)
                outputs.append(e.output)
                probabilities.append(e.probabilities)
            }
            self.outputs = outputs
            self.probabilities = probabilities
        }
    }

    /// Runs `policy` (K+V, then keys only) over the first `tokens` tokens of `set` (all when
    /// nil). `warmup`: steps before this one are not averaged. `refreshEvery` > 0 calls
    /// refresh every so many steps (as ``QualityBench`` does). `reference` may be passed to
    /// share the exact attention between policies; it must cover at least `tokens` steps of
    /// this set.
    public static func run(policy: any CachePolicy, set: ActivationSet, tokens: Int? = nil, warmup: Int = 8,
                           refreshEvery: Int = 16, kernels: KernelSet = .active,
                           reference: Reference? = nil) throws(CacheError) -> Result {
        let n = tokens ?? set.tokens
        guard n > 0, n <= set.tokens else {
            throw .invalidConfiguration("tokens must be in 1...\(set.tokens) for this activation set, got \(n)")
        }
        if let reference, reference.tokens < n {
            throw .invalidConfiguration("the reference covers \(reference.tokens) steps, \(n) requested")
        }
        let ref = reference ?? Reference(set: set, tokens: n)
        let kv = try measure(policy: policy, set: set, tokens: n, reference: ref, warmup: warmup,
                             refreshEvery: refreshEvery, kernels: kernels)
        let keysOnly = try measure(policy: KeysOnlyPolicy(policy), set: set, tokens: n, reference: ref, warmup: warmup,
                                   refreshEvery: refreshEvery, kernels: kernels)
        return Result(policy: policy.description, layer: set.layer, tokens: n,
                      bitsPerElement: kv.memory.bitsPerElement, compressionRatio: kv.memory.compressionRatio,
                      attentionRelError: kv.attentionRelError, klKV: kv.kl, klKeysOnly: keysOnly.kl,
                      attentionRelErrorKeysOnly: keysOnly.attentionRelError, memory: kv.memory)
    }

    /// One streaming pass of `policy` over the first `tokens` tokens of `set`.
    public static func measure(policy: any CachePolicy, set: ActivationSet, tokens: Int, reference: Reference,
                               warmup: Int = 8, refreshEvery: Int = 16, kernels: KernelSet = .active) throws(CacheError) -> Measurement {
        precondition(tokens <= reference.tokens && tokens <= set.tokens, "tokens beyond the set or its reference")
        let cache = try KVCache(KVCacheConfiguration(
            layers: 1, kvHeads: set.kvHeads, queryHeadsPerKVHead: set.queryHeadsPerKVHead,
            headDim: set.dim, policy: policy, kernels: kernels))
        let d = set.dim, heads = set.queryHeads
        var errorSum = 0.0, klSum = 0.0
        var samples = 0
        for t in 0..<tokens {
            try cache.append(layer: 0, keys: Array(set.keys(token: t)), values: Array(set.values(token: t)))
            let (out, probabilities) = try cache.attentionWithProbabilities(layer: 0, queries: Array(set.queries(token: t)))
            if refreshEvery > 0, t % refreshEvery == refreshEvery - 1 { try cache.refresh(layer: 0) }
            guard t >= warmup else { continue }
            let exact = reference.outputs[t], exactP = reference.probabilities[t]
            let count = t + 1
            precondition(probabilities.count == heads * count, "cache returned \(probabilities.count) probabilities, expected \(heads * count)")
            for qh in 0..<heads {
                errorSum += relativeError(out[(qh * d)..<((qh + 1) * d)], exact[(qh * d)..<((qh + 1) * d)])
                klSum += klDivergence(exactP[(qh * count)..<((qh + 1) * count)], probabilities[(qh * count)..<((qh + 1) * count)])
                samples += 1
            }
        }
        return Measurement(attentionRelError: samples == 0 ? 0 : errorSum / Double(samples),
                           kl: samples == 0 ? 0 : klSum / Double(samples), memory: cache.memory)
    }

    /// ‖out − exact‖ / ‖exact‖ (the denominator floored at 1e-300).
    static func relativeError(_ out: ArraySlice<Float>, _ exact: ArraySlice<Double>) -> Double {
        var num = 0.0, den = 0.0
        for (o, e) in zip(out, exact) {
            let diff = Double(o) - e
            num += diff * diff
            den += e * e
        }
        return (num / max(den, 1e-300)).squareRoot()
    }

    /// KL(p ‖ q) in nats, p exact (sums to 1 in fp64). The cache's q is fp32: it is
    /// renormalized in fp64 first, so that its rounding (a sum ≠ 1 by ~1e-7) does not show
    /// as a first-order KL; q is floored at 1e-300 where it underflowed to 0 (no log 0), and
    /// terms with p = 0 contribute 0.
    static func klDivergence(_ p: ArraySlice<Double>, _ q: ArraySlice<Float>) -> Double {
        var qSum = 0.0
        for x in q { qSum += Double(x) }
        guard qSum > 0 else { return .infinity }
        var kl = 0.0
        for (pi, qi) in zip(p, q) where pi > 0 {
            kl += pi * log(pi / max(Double(qi) / qSum, 1e-300))
        }
        return kl
    }
}

/// A policy that stores keys exactly as `base` does and every value as fp32: the cache's
/// probability error then comes from key quantization alone. Everything else (hot window,
/// key scheme, attention use, refresh lowering of keys, key block bits) is forwarded.
public struct KeysOnlyPolicy: CachePolicy {
    public let base: any CachePolicy

    public init(_ base: any CachePolicy) { self.base = base }

    public var hotWindow: Int { base.hotWindow }
    public var keyScheme: KeyScheme { base.keyScheme }
    public var usesAttention: Bool { base.usesAttention }

    public func storage(for token: TokenContext) -> (key: StorageFormat, value: StorageFormat) {
        (base.storage(for: token).key, .fp32)
    }

    /// Lowers keys as `base` would; values stay fp32.
    public func lowered(for token: TokenContext, key: StorageFormat, value: StorageFormat) -> (key: StorageFormat, value: StorageFormat)? {
        guard let lowered = base.lowered(for: token, key: key, value: value) else { return nil }
        return (lowered.key, .fp32)
    }

    public func keyBlockBits(_ tokens: [TokenContext]) -> Int { base.keyBlockBits(tokens) }

    public var description: String { "\(base.description) (keys only)" }
}

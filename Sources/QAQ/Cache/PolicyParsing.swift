/// Policies by name, for command lines and configuration files:
///
/// | spec | policy |
/// |---|---|
/// | `fp32`, `fp16`, `q8_0`, `q4_0` | ``FixedPolicy`` |
/// | `uniform:B[:G]` | per-token affine, B bits, groups of G (default 32) |
/// | `kivi:B[:G[:R]]` | ``KIVIPolicy`` (B ∈ {2, 4, 8}, G = 32, residual R = 32) |
/// | `rlm:KB:VB[:sink=S][:scale=f16|log8][:center=on|off][:stage=W2][:window=W]` | ``RLMPolicy`` (rotated Lloyd-Max codebooks) |
/// | `qaq[:key=value…]` | ``QAQPolicy``; keys `sigmaS`, `sigmaX`, `keys=token|channel|rotated`, `group`, `window` (W), `n` (attention window), `min`, `max`, `alpha`, `formula=paper|code`, `map=affine|lm` |
public enum PolicySpec {
    public static func parse(_ spec: String) throws(CacheError) -> any CachePolicy {
        let parts = spec.split(separator: ":").map(String.init)
        guard let name = parts.first?.lowercased() else { throw .invalidConfiguration("empty policy") }
        func int(_ i: Int, _ what: String, default d: Int) throws(CacheError) -> Int {
            guard i < parts.count else { return d }
            guard let v = Int(parts[i]), v > 0 else { throw .invalidConfiguration("policy \(spec): \(what) must be a positive integer, got '\(parts[i])'") }
            return v
        }
        switch name {
        case "fp32": return FixedPolicy.fp32
        case "fp16": return FixedPolicy.fp16
        case "q8_0": return FixedPolicy.q8_0
        case "q4_0": return FixedPolicy.q4_0
        case "uniform":
            guard parts.count >= 2 else { throw .invalidConfiguration("uniform needs bits: uniform:B[:G]") }
            let bits = try int(1, "bits", default: 4)
            guard PackedLayout.supportedBits.contains(bits) else { throw .invalidConfiguration("uniform: \(bits) bits unsupported (1, 2, 3, 4, 8)") }
            return FixedPolicy.uniform(bits: bits, group: try int(2, "group", default: 32))
        case "kivi":
            guard parts.count >= 2 else { throw .invalidConfiguration("kivi needs bits: kivi:B[:G[:R]]") }
            let bits = try int(1, "bits", default: 2)
            guard [2, 4, 8].contains(bits) else { throw .invalidConfiguration("kivi: \(bits) bits unsupported (2, 4, 8)") }
            return KIVIPolicy(bits: bits, group: try int(2, "group", default: 32), residual: try int(3, "residual", default: 32))
        case "rlm":
            guard parts.count >= 3, let kb = Int(parts[1]), let vb = Int(parts[2]), (1...4).contains(kb), (1...4).contains(vb) else {
                throw .invalidConfiguration("rlm needs key and value bits in 1...4: rlm:KB:VB[:sink=S][:scale=f16|log8][:center=on|off][:stage=W2]")
            }
            var p = RLMPolicy(keyBits: kb, valueBits: vb)
            for option in parts.dropFirst(3) {
                let kv = option.split(separator: "=", maxSplits: 1).map(String.init)
                guard kv.count == 2 else { throw .invalidConfiguration("rlm option '\(option)' is not key=value") }
                switch (kv[0], kv[1]) {
                case ("sink", let v):
                    guard let n = Int(v), n >= 0 else { throw .invalidConfiguration("rlm: sink must be a non-negative integer") }
                    p.sinks = n
                case ("scale", "f16"): p.scale = .f16
                case ("scale", "log8"): p.scale = .log8
                case ("center", "on"): p.center = true
                case ("center", "off"): p.center = false
                case ("stage", let v):
                    guard let n = Int(v), n >= 0 else { throw .invalidConfiguration("rlm: stage must be a non-negative integer") }
                    p.stage = n
                case ("window", let v):
                    guard let n = Int(v), n >= 1 else { throw .invalidConfiguration("rlm: window must be a positive integer") }
                    p.hotWindow = n
                default: throw .invalidConfiguration("rlm: unknown option '\(option)' (sink=S, scale=f16|log8, center=on|off, stage=W2, window=W)")
                }
            }
            return p
        case "qaq":
            var p = QAQPolicy()
            for option in parts.dropFirst() {
                let kv = option.split(separator: "=", maxSplits: 1).map(String.init)
                guard kv.count == 2 else { throw .invalidConfiguration("qaq option '\(option)' is not key=value") }
                func number() throws(CacheError) -> Double {
                    guard let v = Double(kv[1]), v.isFinite, v > 0 else { throw .invalidConfiguration("qaq: \(kv[0]) must be a positive number, got '\(kv[1])'") }
                    return v
                }
                func integer() throws(CacheError) -> Int {
                    guard let v = Int(kv[1]), v >= 0 else { throw .invalidConfiguration("qaq: \(kv[0]) must be a non-negative integer, got '\(kv[1])'") }
                    return v
                }
                switch kv[0] {
                case "sigmaS": p.sigmaS = try number()
                case "sigmaX": p.sigmaX = try number()
                case "group": p.group = try integer()
                case "window": p.hotWindow = try integer()
                case "n":
                    let n = try integer()
                    guard n >= 1 else { throw .invalidConfiguration("qaq: n (attention window) must be at least 1") }
                    p.attentionWindow = n
                case "min": p.minBits = try integer()
                case "max": p.maxBits = try integer()
                case "alpha":
                    guard let v = Double(kv[1]), v >= 0, v < 0.5 else { throw .invalidConfiguration("qaq: alpha must be in [0, 0.5)") }
                    p.outlierFraction = v
                case "formula":
                    switch kv[1] {
                    case "paper": p.formula = .paper
                    case "code": p.formula = .authorsCode
                    default: throw .invalidConfiguration("qaq: formula must be paper or code")
                    }
                case "map":
                    guard let m = QAQPolicy.CodeMap(rawValue: kv[1]) else { throw .invalidConfiguration("qaq: map must be affine or lm") }
                    p.codeMap = m
                case "keys":
                    switch kv[1] {
                    case "token": p.keyScheme = .token
                    case "channel": p.keyScheme = .channel(blockTokens: 32)
                    case "rotated": p.keyScheme = .rotated
                    default: throw .invalidConfiguration("qaq: keys must be token, channel or rotated")
                    }
                default: throw .invalidConfiguration("qaq: unknown option '\(kv[0])'")
                }
            }
            guard PackedLayout.supportedBits.contains(p.minBits), PackedLayout.supportedBits.contains(p.maxBits), p.minBits <= p.maxBits else {
                throw .invalidConfiguration("qaq: min/max bits must be supported widths with min ≤ max")
            }
            return p
        default:
            throw .invalidConfiguration("unknown policy '\(spec)': use fp32, fp16, q8_0, q4_0, uniform:B[:G], kivi:B[:G[:R]], rlm:KB:VB[:…] or qaq[:key=value…]")
        }
    }
}

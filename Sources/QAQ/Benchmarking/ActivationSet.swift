import Foundation

/// Why captured activations could not be loaded. Every case names the file at fault.
public enum ActivationError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The manifest or a tensor file it lists does not exist.
    case missingFile(path: String)
    /// A tensor file whose size is not its manifest shape's product × 2 bytes (fp16).
    case truncatedFile(path: String, expectedBytes: Int, actualBytes: Int)
    /// manifest.json is not valid JSON, lacks a field, or lists inconsistent shapes.
    case malformedManifest(path: String, reason: String)
    /// The manifest has no such layer.
    case layerNotFound(path: String, layer: Int, available: [Int])
    /// A NaN or ±Inf element at (head, token, channel) of a tensor file.
    case nonFinite(path: String, head: Int, token: Int, channel: Int)
    /// The file exists but could not be read.
    case unreadable(path: String, reason: String)

    public var description: String {
        switch self {
        case .missingFile(let p): return "\(p): no such file"
        case .truncatedFile(let p, let e, let a): return "\(p): \(a) bytes, expected \(e) (shape product × 2 bytes of fp16)"
        case .malformedManifest(let p, let r): return "\(p): malformed manifest: \(r)"
        case .layerNotFound(let p, let l, let a): return "\(p): no layer \(l) (layers: \(a.map(String.init).joined(separator: ", ")))"
        case .nonFinite(let p, let h, let t, let c): return "\(p): NaN or Inf at head \(h), token \(t), channel \(c)"
        case .unreadable(let p, let r): return "\(p): cannot read: \(r)"
        }
    }
}

/// One layer of captured attention inputs — queries, keys and values of a real model, RoPE
/// already applied — in the format of `shared/fixtures/smollm2-activations`: a `manifest.json`
/// listing, per file, its layer, tensor (`q`, `k` or `v`) and shape `[heads][tokens][dim]`,
/// and the files themselves, row-major little-endian IEEE fp16. Query head h reads KV head
/// h / (qHeads / kvHeads); scores are q·k/√dim, causal.
///
/// Held here as fp32 (exact: every fp16 is an fp32), token-major: keys and values
/// `[tokens][kvHeads][dim]`, queries `[tokens][qHeads][dim]` — the layout ``KVCache`` takes.
public struct ActivationSet: Sendable {
    /// The manifest, as written.
    public struct Manifest: Codable, Sendable {
        public struct File: Codable, Sendable {
            public var layer: Int
            public var tensor: String
            public var shape: [Int]
            public var maxAbs: Double?
        }
        public var model: String?
        public var layers: [Int]
        public var files: [String: File]
    }

    public let directory: URL
    public let layer: Int
    public let tokens: Int
    public let kvHeads: Int
    public let queryHeads: Int
    public let dim: Int
    public let model: String?
    /// `[tokens][kvHeads][dim]`.
    public let keys: [Float]
    /// `[tokens][kvHeads][dim]`.
    public let values: [Float]
    /// `[tokens][queryHeads][dim]`.
    public let queries: [Float]

    /// Query heads sharing one KV head.
    public var queryHeadsPerKVHead: Int { queryHeads / kvHeads }

    /// Layers listed in `directory`'s manifest.
    public static func layers(in directory: URL) throws(ActivationError) -> [Int] {
        try readManifest(directory).manifest.layers
    }

    /// Loads `layer` from `directory` (which holds `manifest.json` and the files it lists).
    /// Checks the manifest's shapes against each other and the files' sizes against the
    /// shapes, and that every element is finite.
    public init(directory: URL, layer: Int) throws(ActivationError) {
        let (manifest, manifestPath) = try Self.readManifest(directory)
        guard manifest.layers.contains(layer) else {
            throw .layerNotFound(path: manifestPath, layer: layer, available: manifest.layers)
        }
        func entry(_ tensor: String) throws(ActivationError) -> (name: String, shape: [Int]) {
            let matches = manifest.files.filter { $0.value.layer == layer && $0.value.tensor == tensor }
            guard matches.count == 1, let match = matches.first else {
                throw .malformedManifest(path: manifestPath, reason: "\(matches.count) files for tensor \(tensor) of layer \(layer), expected 1")
            }
            let (name, file) = (match.key, match.value)
            guard !name.contains("/"), name != "..", name != "." else {
                throw .malformedManifest(path: manifestPath, reason: "file name '\(name)' is not a plain name")
            }
            guard file.shape.count == 3, file.shape.allSatisfy({ $0 > 0 && $0 <= 1 << 24 }) else {
                throw .malformedManifest(path: manifestPath, reason: "\(name): shape \(file.shape) is not [heads][tokens][dim] of positive sizes")
            }
            return (name, file.shape)
        }
        let q = try entry("q"), k = try entry("k"), v = try entry("v")
        guard k.shape == v.shape else {
            throw .malformedManifest(path: manifestPath, reason: "k shape \(k.shape) ≠ v shape \(v.shape)")
        }
        guard q.shape[1] == k.shape[1], q.shape[2] == k.shape[2] else {
            throw .malformedManifest(path: manifestPath, reason: "q shape \(q.shape) and k shape \(k.shape) differ in tokens or dim")
        }
        guard q.shape[0] % k.shape[0] == 0 else {
            throw .malformedManifest(path: manifestPath, reason: "\(q.shape[0]) q heads is not a multiple of \(k.shape[0]) KV heads")
        }
        guard q.shape[0] * q.shape[1] * q.shape[2] <= 1 << 31 else {
            throw .malformedManifest(path: manifestPath, reason: "q shape \(q.shape) is too large")
        }
        self.directory = directory
        self.layer = layer
        self.queryHeads = q.shape[0]
        self.kvHeads = k.shape[0]
        self.tokens = k.shape[1]
        self.dim = k.shape[2]
        self.model = manifest.model
        self.queries = try Self.readTensor(directory, q.name, shape: q.shape)
        self.keys = try Self.readTensor(directory, k.name, shape: k.shape)
        self.values = try Self.readTensor(directory, v.name, shape: v.shape)
    }

    /// Convenience: a path instead of a URL.
    public init(path: String, layer: Int) throws(ActivationError) {
        try self.init(directory: URL(fileURLWithPath: path, isDirectory: true), layer: layer)
    }

    private static func readManifest(_ directory: URL) throws(ActivationError) -> (manifest: Manifest, path: String) {
        let url = directory.appendingPathComponent("manifest.json")
        let data = try readFile(url)
        let manifest: Manifest
        do { manifest = try JSONDecoder().decode(Manifest.self, from: data) } catch {
            throw .malformedManifest(path: url.path, reason: describe(error))
        }
        return (manifest, url.path)
    }

    private static func readFile(_ url: URL) throws(ActivationError) -> Data {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw .missingFile(path: url.path)
        }
        do { return try Data(contentsOf: url) } catch { throw .unreadable(path: url.path, reason: "\(error)") }
    }

    /// Reads a `[heads][tokens][dim]` fp16 file into token-major fp32 `[tokens][heads][dim]`.
    private static func readTensor(_ directory: URL, _ name: String, shape: [Int]) throws(ActivationError) -> [Float] {
        let url = directory.appendingPathComponent(name)
        let data = try readFile(url)
        let (heads, tokens, dim) = (shape[0], shape[1], shape[2])
        let count = heads * tokens * dim
        guard data.count == count * 2 else { throw .truncatedFile(path: url.path, expectedBytes: count * 2, actualBytes: data.count) }
        var out = [Float](repeating: 0, count: count)
        var bad: Int?
        data.withUnsafeBytes { raw in
            out.withUnsafeMutableBufferPointer { dst in
                for h in 0..<heads {
                    for t in 0..<tokens {
                        let src = (h * tokens + t) * dim, to = (t * heads + h) * dim
                        for i in 0..<dim {
                            let bits = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: (src + i) * 2, as: UInt16.self))
                            let x = Float(Float16(bitPattern: bits))
                            if !x.isFinite, bad == nil { bad = src + i }
                            dst[to + i] = x
                        }
                    }
                }
            }
        }
        if let bad {
            throw .nonFinite(path: url.path, head: bad / (tokens * dim), token: bad / dim % tokens, channel: bad % dim)
        }
        return out
    }

    private static func describe(_ error: any Error) -> String {
        switch error as? DecodingError {
        case .dataCorrupted(let c)?: return "not valid JSON (\(c.debugDescription))"
        case .keyNotFound(let key, let c)?: return "missing field '\((c.codingPath + [key]).map(\.stringValue).joined(separator: "."))'"
        case .typeMismatch(let type, let c)?: return "field '\(c.codingPath.map(\.stringValue).joined(separator: "."))' is not \(type)"
        case .valueNotFound(let type, let c)?: return "field '\(c.codingPath.map(\.stringValue).joined(separator: "."))' is null, expected \(type)"
        default: return "\(error)"
        }
    }

    // MARK: Per token

    /// Keys of token `t`: `[kvHeads][dim]`.
    public func keys(token t: Int) -> ArraySlice<Float> {
        let n = kvHeads * dim
        return keys[(t * n)..<((t + 1) * n)]
    }

    /// Values of token `t`: `[kvHeads][dim]`.
    public func values(token t: Int) -> ArraySlice<Float> {
        let n = kvHeads * dim
        return values[(t * n)..<((t + 1) * n)]
    }

    /// Queries of step `t`: `[queryHeads][dim]`.
    public func queries(token t: Int) -> ArraySlice<Float> {
        let n = queryHeads * dim
        return queries[(t * n)..<((t + 1) * n)]
    }

    // MARK: Exact attention

    /// Exact causal attention in fp64 for the queries of step `t` over tokens `0...t`:
    /// output `[queryHeads][dim]` and probabilities `[queryHeads][t + 1]`.
    public func exact(step t: Int) -> (output: [Double], probabilities: [Double]) {
        precondition(t >= 0 && t < tokens, "step \(t) out of 0..<\(tokens)")
        let g = queryHeadsPerKVHead, n = t + 1, d = dim
        let scale = 1 / Double(d).squareRoot()
        var output = [Double](repeating: 0, count: queryHeads * d)
        var probabilities = [Double](repeating: 0, count: queryHeads * n)
        keys.withUnsafeBufferPointer { k in
            values.withUnsafeBufferPointer { v in
                queries.withUnsafeBufferPointer { q in
                    for qh in 0..<queryHeads {
                        let h = qh / g
                        let qBase = (t * queryHeads + qh) * d
                        var m = -Double.infinity
                        for s in 0..<n {
                            let kBase = (s * kvHeads + h) * d
                            var acc = 0.0
                            for i in 0..<d { acc += Double(q[qBase + i]) * Double(k[kBase + i]) }
                            let score = acc * scale
                            probabilities[qh * n + s] = score
                            m = max(m, score)
                        }
                        var sum = 0.0
                        for s in 0..<n {
                            let e = exp(probabilities[qh * n + s] - m)
                            probabilities[qh * n + s] = e
                            sum += e
                        }
                        for s in 0..<n {
                            let p = probabilities[qh * n + s] / sum
                            probabilities[qh * n + s] = p
                            let vBase = (s * kvHeads + h) * d
                            for i in 0..<d { output[qh * d + i] += p * Double(v[vBase + i]) }
                        }
                    }
                }
            }
        }
        return (output, probabilities)
    }

    /// Exact causal attention output in fp64 for step `t`: `[queryHeads][dim]`.
    public func exactAttention(step t: Int) -> [Double] { exact(step: t).output }

    /// Exact attention probabilities in fp64 for step `t`: `[queryHeads][t + 1]`.
    public func exactProbabilities(step t: Int) -> [Double] { exact(step: t).probabilities }
}

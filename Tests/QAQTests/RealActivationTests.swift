import Foundation
import QAQ
import Testing

/// The first 96 tokens of layer 18 of shared/fixtures/smollm2-activations (all heads), cut by
/// Fixtures/cut-slice.py.
private let sliceDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("Fixtures/smollm2-layer18-slice", isDirectory: true)
private let sliceLayer = 18

/// A fresh copy of the slice in a temporary directory, for tests that damage it.
private func scratchCopy() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("qaq-activations-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.copyItem(at: sliceDirectory, to: dir)
    return dir
}

/// An independent reading of one fixture file: `[heads][tokens][dim]` fp16 little-endian,
/// decoded here by hand (sign, exponent, mantissa), not through the loader.
private func rawTensor(_ name: String) throws -> [Double] {
    let bytes = [UInt8](try Data(contentsOf: sliceDirectory.appendingPathComponent(name)))
    return stride(from: 0, to: bytes.count, by: 2).map { i in
        let h = UInt16(bytes[i]) | UInt16(bytes[i + 1]) << 8
        let sign: Double = h & 0x8000 == 0 ? 1 : -1
        let e = Int(h >> 10 & 0x1F), m = Double(h & 0x3FF)
        if e == 0 { return sign * m * pow(2, -24) }
        precondition(e != 31, "non-finite in fixture")
        return sign * (1 + m / 1024) * pow(2, Double(e - 15))
    }
}

@Suite("Real activations")
struct RealActivationTests {
    static let set: ActivationSet = {
        do { return try ActivationSet(directory: sliceDirectory, layer: sliceLayer) } catch { fatalError("fixture: \(error)") }
    }()
    static let reference = RealQualityBench.Reference(set: set, tokens: set.tokens)

    static func bench(_ spec: String) throws -> RealQualityBench.Result {
        try RealQualityBench.run(policy: try PolicySpec.parse(spec), set: set, reference: reference)
    }

    @Test("real keys: rotated Lloyd-Max beats affine 4-bit per token at fewer bits (layer 18 slice)")
    func rotatedCodebookWins() throws {
        // Window 8 so most of the 96 tokens are quantized.
        let rlm = try Self.bench("rlm:4:4:window=8")
        let affine = try Self.bench("qaq:window=8:min=4:max=4:alpha=0")   // affine 4-bit, G=32, same window
        #expect(rlm.bitsPerElement < affine.bitsPerElement)
        #expect(rlm.attentionRelError < affine.attentionRelError)
        #expect(rlm.klKV < affine.klKV)
    }

    @Test("the slice loads with the manifest's shapes")
    func loads() throws {
        let s = Self.set
        #expect(try ActivationSet.layers(in: sliceDirectory) == [18])
        #expect((s.layer, s.tokens, s.kvHeads, s.queryHeads, s.dim, s.queryHeadsPerKVHead) == (18, 96, 3, 9, 64, 3))
        #expect(s.keys(token: 5).count == 3 * 64)
        #expect(s.values(token: 95).count == 3 * 64)
        #expect(s.queries(token: 0).count == 9 * 64)
        // Token-major per-token rows against the head-major files, decoded independently.
        let k = try rawTensor("layer18-k.f16"), q = try rawTensor("layer18-q.f16")
        for (t, h, i) in [(0, 0, 0), (5, 2, 63), (95, 1, 17), (40, 0, 31)] {
            #expect(Double(Array(s.keys(token: t))[h * 64 + i]) == k[(h * 96 + t) * 64 + i])
        }
        for (t, h, i) in [(0, 8, 0), (77, 4, 9)] {
            #expect(Double(Array(s.queries(token: t))[h * 64 + i]) == q[(h * 96 + t) * 64 + i])
        }
        #expect(throws: ActivationError.layerNotFound(path: sliceDirectory.appendingPathComponent("manifest.json").path, layer: 0, available: [18])) {
            _ = try ActivationSet(directory: sliceDirectory, layer: 0)
        }
    }

    @Test("exactAttention matches a naive computation from the raw files", arguments: [0, 1, 8, 47, 95])
    func exactMatchesNaive(step t: Int) throws {
        let q = try rawTensor("layer18-q.f16"), k = try rawTensor("layer18-k.f16"), v = try rawTensor("layer18-v.f16")
        let (output, probabilities) = Self.set.exact(step: t)
        #expect(Self.set.exactAttention(step: t) == output)
        #expect(Self.set.exactProbabilities(step: t) == probabilities)
        #expect(output.count == 9 * 64 && probabilities.count == 9 * (t + 1))
        for qh in 0..<9 {
            let kh = qh / 3
            let scores = (0...t).map { s in
                (0..<64).reduce(0.0) { $0 + q[(qh * 96 + t) * 64 + $1] * k[(kh * 96 + s) * 64 + $1] } / 8
            }
            let weights = scores.map { exp($0 - scores.max()!) }
            let total = weights.reduce(0, +)
            let p = weights.map { $0 / total }
            #expect(abs(p.reduce(0, +) - 1) < 1e-12)
            for s in 0...t { #expect(abs(probabilities[qh * (t + 1) + s] - p[s]) <= 1e-12, "head \(qh) token \(s)") }
            for i in 0..<64 {
                let o = (0...t).reduce(0.0) { $0 + p[$1] * v[(kh * 96 + $1) * 64 + i] }
                #expect(abs(output[qh * 64 + i] - o) <= 1e-12 * max(1, abs(o)), "head \(qh) channel \(i)")
            }
        }
    }

    @Test("fp32 cache reproduces exact attention")
    func fp32() throws {
        let r = try Self.bench("fp32")
        #expect(r.layer == 18 && r.tokens == 96)
        #expect(r.attentionRelError < 1e-5)
        #expect(r.klKV >= -1e-12 && r.klKV < 1e-9)
        #expect(r.klKeysOnly >= -1e-12 && r.klKeysOnly < 1e-9)
        #expect(abs(r.bitsPerElement - 32.5) < 1e-9)    // 32 bits + a 4-byte position per 64-element record
    }

    @Test("fp16 cache is within 1e-3")
    func fp16() throws {
        let r = try Self.bench("fp16")
        #expect(r.attentionRelError < 1e-3)
        #expect(r.klKV < 1e-6)
        #expect(abs(r.bitsPerElement - 16.5) < 1e-9)
        #expect(abs(r.compressionRatio - 16 / 16.5) < 1e-9)
    }

    @Test("KL falls as bits rise (uniform 2 → 3 → 4 → 8)")
    func monotoneInBits() throws {
        let results = try [2, 3, 4, 8].map { try Self.bench("uniform:\($0):32") }
        for (lower, higher) in zip(results, results.dropFirst()) {
            #expect(lower.klKV > higher.klKV, "\(lower.policy) \(lower.klKV) vs \(higher.policy) \(higher.klKV)")
            #expect(lower.klKeysOnly > higher.klKeysOnly, "\(lower.policy) \(lower.klKeysOnly) vs \(higher.policy) \(higher.klKeysOnly)")
            #expect(lower.attentionRelError > higher.attentionRelError)
            #expect(lower.bitsPerElement < higher.bitsPerElement)
        }
        #expect(results[2].klKV > 0)
        // Probabilities depend on the keys alone, and these policies store keys the same way
        // whatever happens to the values: the keys-only KL is the K+V KL.
        for r in results { #expect(r.klKeysOnly == r.klKV) }
    }

    @Test("the keys-only wrapper stores values as fp32 and keys as the policy does")
    func keysOnlyPolicy() throws {
        let policy = KeysOnlyPolicy(try PolicySpec.parse("uniform:4:32"))
        let cache = try KVCache(KVCacheConfiguration(layers: 1, kvHeads: 3, queryHeadsPerKVHead: 3, headDim: 64, policy: policy))
        for t in 0..<40 {
            try cache.append(layer: 0, keys: Array(Self.set.keys(token: t)), values: Array(Self.set.values(token: t)))
            _ = try cache.attention(layer: 0, queries: Array(Self.set.queries(token: t)))
        }
        let formats = try cache.storedFormats(layer: 0, head: 1)
        #expect(formats.count == 40)
        #expect(formats.allSatisfy { $0.key == .affine(bits: 4, group: 32, outliers: 0) && $0.value == .fp32 })
        // Values exact: only keys move the probabilities.
        let values = try cache.storedRows(layer: 0, head: 1, keys: false)
        #expect(values == (0..<40).flatMap { Array(Self.set.values(token: $0))[64..<128] })
    }

    @Test("a truncated file is refused, naming it")
    func truncated() throws {
        let dir = try scratchCopy()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("layer18-v.f16")
        let data = try Data(contentsOf: file)
        try data.prefix(data.count - 2).write(to: file)
        #expect(throws: ActivationError.truncatedFile(path: file.path, expectedBytes: 36864, actualBytes: 36862)) {
            _ = try ActivationSet(directory: dir, layer: 18)
        }
    }

    @Test("a missing file is refused, naming it")
    func missing() throws {
        let dir = try scratchCopy()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("layer18-k.f16")
        try FileManager.default.removeItem(at: file)
        #expect(throws: ActivationError.missingFile(path: file.path)) { _ = try ActivationSet(directory: dir, layer: 18) }
        let empty = dir.appendingPathComponent("nothing-here", isDirectory: true)
        #expect(throws: ActivationError.missingFile(path: empty.appendingPathComponent("manifest.json").path)) {
            _ = try ActivationSet.layers(in: empty)
        }
    }

    @Test("a malformed manifest is refused", arguments: [
        "{ not json",
        #"{"layers": [18]}"#,                                                    // no files
        #"{"layers": "18", "files": {}}"#,                                      // wrong type
        #"{"layers": [18], "files": {}}"#,                                      // no tensors for the layer
        #"{"layers": [18], "files": {"layer18-q.f16": {"layer": 18, "tensor": "q", "shape": [9, 96, 64]}, "layer18-k.f16": {"layer": 18, "tensor": "k", "shape": [3, 96, 64]}, "layer18-v.f16": {"layer": 18, "tensor": "v", "shape": [3, 95, 64]}}}"#,
        #"{"layers": [18], "files": {"layer18-q.f16": {"layer": 18, "tensor": "q", "shape": [9, 96]}, "layer18-k.f16": {"layer": 18, "tensor": "k", "shape": [3, 96, 64]}, "layer18-v.f16": {"layer": 18, "tensor": "v", "shape": [3, 96, 64]}}}"#,
        #"{"layers": [18], "files": {"layer18-q.f16": {"layer": 18, "tensor": "q", "shape": [8, 96, 64]}, "layer18-k.f16": {"layer": 18, "tensor": "k", "shape": [3, 96, 64]}, "layer18-v.f16": {"layer": 18, "tensor": "v", "shape": [3, 96, 64]}}}"#,
        #"{"layers": [18], "files": {"../layer18-q.f16": {"layer": 18, "tensor": "q", "shape": [9, 96, 64]}, "layer18-k.f16": {"layer": 18, "tensor": "k", "shape": [3, 96, 64]}, "layer18-v.f16": {"layer": 18, "tensor": "v", "shape": [3, 96, 64]}}}"#,
    ])
    func badManifest(json: String) throws {
        let dir = try scratchCopy()
        defer { try? FileManager.default.removeItem(at: dir) }
        let manifest = dir.appendingPathComponent("manifest.json")
        try Data(json.utf8).write(to: manifest)
        do throws(ActivationError) {
            _ = try ActivationSet(directory: dir, layer: 18)
            Issue.record("accepted a malformed manifest")
        } catch {
            guard case .malformedManifest(let path, let reason) = error else { Issue.record("wrong error: \(error)"); return }
            #expect(path == manifest.path)
            #expect(!reason.isEmpty)
        }
    }

    @Test("NaN and Inf are refused, naming the file and the element", arguments: [UInt16(0x7E00), 0x7C00, 0xFC00])
    func nonFinite(bits: UInt16) throws {
        let dir = try scratchCopy()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("layer18-q.f16")
        var data = try Data(contentsOf: file)
        let index = (4 * 96 + 33) * 64 + 7          // head 4, token 33, channel 7
        data[index * 2] = UInt8(bits & 0xFF)
        data[index * 2 + 1] = UInt8(bits >> 8)
        try data.write(to: file)
        #expect(throws: ActivationError.nonFinite(path: file.path, head: 4, token: 33, channel: 7)) {
            _ = try ActivationSet(directory: dir, layer: 18)
        }
    }

    @Test("a token count beyond the set is refused")
    func tooManyTokens() throws {
        #expect(throws: CacheError.self) { _ = try RealQualityBench.run(policy: FixedPolicy.fp32, set: Self.set, tokens: 97) }
        let r = try RealQualityBench.run(policy: FixedPolicy.fp16, set: Self.set, tokens: 20)
        #expect(r.tokens == 20 && r.memory.tokens == 20)
    }
}

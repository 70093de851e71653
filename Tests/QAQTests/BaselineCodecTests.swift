import Foundation
import QAQ
import QAQTestSupport
import Testing

// MARK: - An independent scalar transcription of ggml's C reference

/// ggml's `ggml_compute_fp32_to_fp16` (round to nearest even, bit tricks from the FP16 library),
/// written out here so the oracle does not share Swift's `Float16(Float)` conversion.
private func ggmlFP32ToFP16(_ f: Float) -> UInt16 {
    let scaleToInf = Float(bitPattern: 0x7780_0000)   // 0x1.0p+112f
    let scaleToZero = Float(bitPattern: 0x0880_0000)  // 0x1.0p-110f
    var base = (fabsf(f) * scaleToInf) * scaleToZero
    let w = f.bitPattern
    let shl1w = w &+ w
    let sign = w & 0x8000_0000
    var bias = shl1w & 0xFF00_0000
    if bias < 0x7100_0000 { bias = 0x7100_0000 }
    base = Float(bitPattern: (bias >> 1) &+ 0x0780_0000) + base
    let bits = base.bitPattern
    let expBits = (bits >> 13) & 0x0000_7C00
    let mantissaBits = bits & 0x0000_0FFF
    let nonsign = expBits &+ mantissaBits
    return UInt16(truncatingIfNeeded: (sign >> 16) | (shl1w > 0xFF00_0000 ? 0x7E00 : nonsign))
}

/// fp16 bits → fp32 by the definition (finite values only).
private func fp16ToFP32(_ h: UInt16) -> Float {
    let sign: Float = h & 0x8000 != 0 ? -1 : 1
    let exp = Int((h >> 10) & 0x1F), mant = Float(h & 0x3FF)
    if exp == 0 { return sign * mant * powf(2, -24) }
    return sign * (1024 + mant) * powf(2, Float(exp - 25))
}

private func appendFP16(_ out: inout [UInt8], _ h: UInt16) {
    out.append(UInt8(h & 0xFF))
    out.append(UInt8(h >> 8))
}

/// `quantize_row_q8_0_ref`, transcribed.
private func refQuantizeQ8_0(_ x: [Float]) -> [UInt8] {
    precondition(x.count % 32 == 0)
    var y: [UInt8] = []
    for i in 0..<(x.count / 32) {
        var amax: Float = 0
        for j in 0..<32 {
            let v = x[i * 32 + j]
            amax = amax > fabsf(v) ? amax : fabsf(v)  // MAX(amax, fabsf(v))
        }
        let d = amax / Float((1 << 7) - 1)
        let id: Float = d != 0 ? 1.0 / d : 0.0
        appendFP16(&y, ggmlFP32ToFP16(d))
        for j in 0..<32 {
            let x0 = x[i * 32 + j] * id
            y.append(UInt8(bitPattern: Int8(roundf(x0))))
        }
    }
    return y
}

/// `dequantize_row_q8_0`, transcribed.
private func refDequantizeQ8_0(_ y: [UInt8]) -> [Float] {
    var x: [Float] = []
    for blk in 0..<(y.count / 34) {
        let d = fp16ToFP32(UInt16(y[blk * 34]) | UInt16(y[blk * 34 + 1]) << 8)
        for j in 0..<32 { x.append(Float(Int8(bitPattern: y[blk * 34 + 2 + j])) * d) }
    }
    return x
}

/// `quantize_row_q4_0_ref`, transcribed.
private func refQuantizeQ4_0(_ x: [Float]) -> [UInt8] {
    precondition(x.count % 32 == 0)
    var y: [UInt8] = []
    for i in 0..<(x.count / 32) {
        var amax: Float = 0
        var max: Float = 0
        for j in 0..<32 {
            let v = x[i * 32 + j]
            if amax < fabsf(v) {
                amax = fabsf(v)
                max = v
            }
        }
        let d = max / -8
        let id: Float = d != 0 ? 1.0 / d : 0.0
        appendFP16(&y, ggmlFP32ToFP16(d))
        for j in 0..<16 {
            let x0 = x[i * 32 + j] * id
            let x1 = x[i * 32 + 16 + j] * id
            let xi0 = UInt8(min(15, Int32(truncf(x0 + 8.5))))  // MIN(15, (int8_t)(x0 + 8.5f))
            let xi1 = UInt8(min(15, Int32(truncf(x1 + 8.5))))
            y.append(xi0 | (xi1 << 4))
        }
    }
    return y
}

/// `dequantize_row_q4_0`, transcribed.
private func refDequantizeQ4_0(_ y: [UInt8]) -> [Float] {
    var x = [Float](repeating: 0, count: y.count / 18 * 32)
    for blk in 0..<(y.count / 18) {
        let d = fp16ToFP32(UInt16(y[blk * 18]) | UInt16(y[blk * 18 + 1]) << 8)
        for j in 0..<16 {
            let b = y[blk * 18 + 2 + j]
            x[blk * 32 + j] = Float(Int(b & 0x0F) - 8) * d
            x[blk * 32 + 16 + j] = Float(Int(b >> 4) - 8) * d
        }
    }
    return x
}

// MARK: - Helpers

/// Runs `body` on `x` and a buffer of `bytes` + 16 bytes pre-filled with 0xAB, catching the error.
private func withEncode(_ x: [Float], bytes: Int,
                        _ body: (UnsafePointer<Float>, UnsafeMutableRawPointer) throws(QuantizationError) -> Void)
    -> (bytes: [UInt8], buffer: [UInt8], error: QuantizationError?) {
    var out = [UInt8](repeating: 0xAB, count: bytes + 16)
    var failure: QuantizationError?
    x.withUnsafeBufferPointer { src in
        out.withUnsafeMutableBytes { dst in
            do throws(QuantizationError) { try body(src.baseAddress!, dst.baseAddress!) } catch { failure = error }
        }
    }
    return (Array(out.prefix(bytes)), out, failure)
}

// Concrete codecs (their encode throws QuantizationError, whatever the protocol declares).
private func tryEncode(_ codec: Q8_0Codec, _ x: [Float], count: Int? = nil) -> (bytes: [UInt8], buffer: [UInt8], error: QuantizationError?) {
    let n = count ?? x.count / codec.dim
    return withEncode(x, bytes: n * codec.bytesPerVector) { (src, dst) throws(QuantizationError) in
        try codec.encode(src, count: n, into: dst)
    }
}

private func tryEncode(_ codec: Q4_0Codec, _ x: [Float], count: Int? = nil) -> (bytes: [UInt8], buffer: [UInt8], error: QuantizationError?) {
    let n = count ?? x.count / codec.dim
    return withEncode(x, bytes: n * codec.bytesPerVector) { (src, dst) throws(QuantizationError) in
        try codec.encode(src, count: n, into: dst)
    }
}

private func encode(_ codec: Q8_0Codec, _ x: [Float]) throws(QuantizationError) -> [UInt8] {
    let result = tryEncode(codec, x)
    if let error = result.error { throw error }
    return result.bytes
}

private func encode(_ codec: Q4_0Codec, _ x: [Float]) throws(QuantizationError) -> [UInt8] {
    let result = tryEncode(codec, x)
    if let error = result.error { throw error }
    return result.bytes
}

private func isShapeMismatch(_ error: QuantizationError?) -> Bool {
    if case .shapeMismatch? = error { return true }
    return false
}

private func decode(_ codec: some VectorCodec, _ bytes: [UInt8]) -> [Float] {
    let count = bytes.count / codec.bytesPerVector
    var out = [Float](repeating: .nan, count: count * codec.dim)
    bytes.withUnsafeBytes { src in
        out.withUnsafeMutableBufferPointer { dst in codec.decode(src.baseAddress!, count: count, into: dst.baseAddress!) }
    }
    return out
}

/// Blocks that exercise the corners of the C reference (each 32 values).
private func specialBlocks() -> [[Float]] {
    var blocks: [[Float]] = []
    blocks.append([Float](repeating: 0, count: 32))                         // amax = 0
    blocks.append([Float](repeating: -0.0, count: 32))                      // signed zeros
    // q8_0 ties: amax = 127 → d = 1, id = 1, so x·id = k + 0.5 exactly (roundf → away from zero).
    blocks.append([127] + (0..<31).map { Float($0 - 15) + 0.5 })
    blocks.append([-127] + (0..<31).map { Float(15 - $0) - 0.5 })
    // q4_0 ties and the clamp: max = -8 → d = 1; max = 8 → d = -1 (x·id = -x, 8 → nibble 16 → 15).
    blocks.append([-8] + (0..<31).map { Float($0 - 15) * 0.5 })
    blocks.append([8] + (0..<31).map { Float($0 - 15) * 0.5 })
    // |+8| and |−8| both present: the first one wins (strict `amax < fabsf(v)`).
    blocks.append([3, 8, -8] + (0..<29).map { Float($0 % 7) - 3 })
    blocks.append([3, -8, 8] + (0..<29).map { Float($0 % 7) - 3 })
    // Negative max block (all values negative, a positive tail).
    blocks.append((0..<32).map { -Float($0 + 1) * 0.37 })
    // One spike, the rest tiny.
    blocks.append((0..<32).map { $0 == 17 ? 41.5 : Float($0) * 1e-3 })
    // Tiny values: fp16 d subnormal or zero while the fp32 d is not.
    blocks.append((0..<32).map { Float($0 - 16) * 1e-6 })
    blocks.append((0..<32).map { Float($0 - 16) * 3e-9 })
    // Large values near the fp16 limit of d.
    // fp32 rounding inside ggml's expressions: with d = 1, x0 + 8.5f rounds up to an integer
    // for x0 just below k + 0.5 (q4_0 then stores k + 9, not the nearest k + 8).
    var nearTies: [Float] = [-8] + (0..<31).map { k in
        let tie = Float(k % 15 - 7) + 0.5  // −6.5 … 7.5
        return k % 2 == 0 ? tie.nextDown : tie.nextUp
    }
    nearTies[17] = Float(1.5).nextDown
    blocks.append(nearTies)
    // Large values: q4_0's d = 30000 · 16 / 8 = 60000 is close to the fp16 limit.
    blocks.append((0..<32).map { Float($0 - 16) * 3e4 })
    return blocks
}

/// The corner blocks as rows of `dim`, padded with zero blocks to whole vectors.
private func specialRows(dim: Int) -> [Float] {
    var x = specialBlocks().flatMap { $0 }
    while x.count % dim != 0 { x.append(0) }
    return x
}

private let dims = [32, 64, 96, 128, 256]

// MARK: - q8_0

@Suite("Baseline codecs: q8_0")
struct BaselineQ8_0Tests {
    @Test("34 bytes per 32-value block; breakdown", arguments: dims)
    func sizes(dim: Int) throws {
        let codec = Q8_0Codec(dim: dim)
        #expect(codec.bytesPerVector == dim / 32 * 34)
        #expect(codec.breakdown == ByteBreakdown(codes: dim, metadata: dim / 16, outliers: 0))
        #expect(codec.breakdown.total == codec.bytesPerVector)
        #expect(codec.bitsPerElement == 8.5)
        #expect(try Q8_0Codec(validatingDim: dim).dim == dim)
    }

    @Test("fp16 oracle conversion agrees with Float16(Float)")
    func fp16Oracle() {
        var rng = SplitMix64(seed: 99)
        var mismatches = 0
        for _ in 0..<50_000 {
            // Exponents from far below the fp16 subnormals to beyond its largest finite value.
            let r = rng.next()
            let sign = UInt32(r >> 63) << 31
            let exponent = UInt32(90 + (r >> 32) % 60) << 23
            let f = Float(bitPattern: sign | exponent | UInt32(truncatingIfNeeded: r) & 0x007F_FFFF)
            if ggmlFP32ToFP16(f) != Float16(f).bitPattern { mismatches += 1 }
        }
        #expect(mismatches == 0)
        for f: Float in [0, -0.0, 65504, 65519.99, 1e-8, 3e-8, 5.96e-8, -2.98e-8, 6.1e-5] {
            #expect(ggmlFP32ToFP16(f) == Float16(f).bitPattern, "\(f)")
        }
    }

    @Test("byte-exact with quantize_row_q8_0_ref on random rows", arguments: dims)
    func byteExactRandom(dim: Int) throws {
        let codec = Q8_0Codec(dim: dim)
        for (seed, scale) in [(1, Float(1)), (2, 0.01), (3, 250)] as [(UInt64, Float)] {
            let x = DataMaker.rows(count: 17, dim: dim, seed: seed, scale: scale)
            let bytes = try encode(codec, x)
            let ref = refQuantizeQ8_0(x)
            #expect(bytes == ref)
            #expect(decode(codec, bytes) == refDequantizeQ8_0(ref))
        }
    }

    @Test("byte-exact on corner blocks (zeros, ties, tiny and large d)")
    func byteExactSpecial() throws {
        let codec = Q8_0Codec(dim: 32)
        let blocks = specialBlocks()
        let x = blocks.flatMap { $0 }
        let bytes = try encode(codec, x)
        #expect(bytes == refQuantizeQ8_0(x))
        for (b, block) in blocks.enumerated() {
            #expect(Array(bytes[(b * 34)..<(b * 34 + 34)]) == refQuantizeQ8_0(block), "block \(b)")
        }
        // Ties go away from zero: block 2 has d = 1 and x = -14.5 … 15.5.
        let tieBlock = Array(bytes[(2 * 34)..<(3 * 34)])
        #expect(tieBlock[0] == 0x00 && tieBlock[1] == 0x3C)  // fp16(1.0)
        #expect(Int8(bitPattern: tieBlock[2]) == 127)
        #expect(Int8(bitPattern: tieBlock[3]) == -15)  // -14.5 → -15
        #expect(Int8(bitPattern: tieBlock[3 + 15]) == 1)  // 0.5 → 1
        #expect(Int8(bitPattern: tieBlock[3 + 16]) == 2)  // 1.5 → 2
        // All-zero block: d = 0, codes 0.
        #expect(bytes[0..<34].allSatisfy { $0 == 0 })
        #expect(decode(codec, bytes) == refDequantizeQ8_0(bytes))
    }

    @Test("|x − x̂| ≤ d/2 + 127·|d − fp16(d)| per block", arguments: dims)
    func errorBound(dim: Int) throws {
        let codec = Q8_0Codec(dim: dim)
        let x = DataMaker.rows(count: 32, dim: dim, seed: 11) + specialRows(dim: dim)
        let y = decode(codec, try encode(codec, x))
        for blk in 0..<(x.count / 32) {
            let block = x[(blk * 32)..<(blk * 32 + 32)]
            let amax = block.map(\.magnitude).max()!
            let d = amax / 127
            let d16 = Float(Float16(d))
            // q·d16 differs from x by at most d/2 (rounding to the grid of the fp32 d) plus
            // |q|·|d − d16| ≤ 127·|d − d16| (the stored scale); fp32 products add ≤ 2^-22·amax.
            let bound = d / 2 + 127 * abs(d - d16) + amax * 0x1p-22
            for j in 0..<32 {
                let i = blk * 32 + j
                #expect(abs(x[i] - y[i]) <= bound, "block \(blk) element \(j): \(x[i]) → \(y[i]), bound \(bound)")
            }
        }
    }

    @Test("NaN/Inf → nonFinite(vector:), nothing written")
    func nonFinite() {
        let codec = Q8_0Codec(dim: 64)
        for bad in [Float.nan, .infinity, -.infinity] {
            var x = DataMaker.rows(count: 4, dim: 64, seed: 5)
            x[2 * 64 + 40] = bad
            let result = tryEncode(codec, x)
            #expect(result.error == .nonFinite(vector: 2))
            #expect(result.buffer.allSatisfy { $0 == 0xAB })
        }
    }

    @Test("d beyond fp16 → outOfFloat16Range(vector:)")
    func fp16Overflow() throws {
        let codec = Q8_0Codec(dim: 32)
        var x = [Float](repeating: 1, count: 64)
        x[32 + 3] = 127 * 65520  // d = 65520 rounds to fp16 infinity
        #expect(throws: QuantizationError.outOfFloat16Range(vector: 1)) { try encode(codec, x) }
        x[32 + 3] = 127 * 65504  // d = 65504 is the largest fp16
        _ = try encode(codec, x)
    }

    @Test("dim not a multiple of 32 → shapeMismatch", arguments: [0, 16, 48, 80, 100])
    func badDim(dim: Int) {
        let result = tryEncode(Q8_0Codec(dim: dim), [Float](repeating: 1, count: max(dim, 1)), count: 1)
        #expect(isShapeMismatch(result.error))
        #expect(result.buffer.allSatisfy { $0 == 0xAB })
        var error: QuantizationError?
        do { _ = try Q8_0Codec(validatingDim: dim) } catch let e { error = e }
        #expect(isShapeMismatch(error))
    }
}

// MARK: - q4_0

@Suite("Baseline codecs: q4_0")
struct BaselineQ4_0Tests {
    @Test("18 bytes per 32-value block; breakdown", arguments: dims)
    func sizes(dim: Int) throws {
        let codec = Q4_0Codec(dim: dim)
        #expect(codec.bytesPerVector == dim / 32 * 18)
        #expect(codec.breakdown == ByteBreakdown(codes: dim / 2, metadata: dim / 16, outliers: 0))
        #expect(codec.breakdown.total == codec.bytesPerVector)
        #expect(codec.bitsPerElement == 4.5)
        #expect(try Q4_0Codec(validatingDim: dim).dim == dim)
    }

    @Test("byte-exact with quantize_row_q4_0_ref on random rows", arguments: dims)
    func byteExactRandom(dim: Int) throws {
        let codec = Q4_0Codec(dim: dim)
        for (seed, scale) in [(1, Float(1)), (2, 0.01), (3, 250)] as [(UInt64, Float)] {
            let x = DataMaker.rows(count: 17, dim: dim, seed: seed, scale: scale)
            let bytes = try encode(codec, x)
            let ref = refQuantizeQ4_0(x)
            #expect(bytes == ref)
            #expect(decode(codec, bytes) == refDequantizeQ4_0(ref))
        }
    }

    @Test("byte-exact on corner blocks (zeros, ties, clamp, sign of max)")
    func byteExactSpecial() throws {
        let codec = Q4_0Codec(dim: 32)
        let blocks = specialBlocks()
        let x = blocks.flatMap { $0 }
        let bytes = try encode(codec, x)
        #expect(bytes == refQuantizeQ4_0(x))
        for (b, block) in blocks.enumerated() {
            #expect(Array(bytes[(b * 18)..<(b * 18 + 18)]) == refQuantizeQ4_0(block), "block \(b)")
        }
        func nibble(_ block: Int, _ j: Int) -> UInt8 {
            let byte = bytes[block * 18 + 2 + j % 16]
            return j < 16 ? byte & 0x0F : byte >> 4
        }
        // All-zero block: d = −0 (0x8000, as ggml stores 0 / −8), every nibble 8.
        #expect(bytes[0] == 0x00 && bytes[1] == 0x80)
        #expect((0..<32).allSatisfy { nibble(0, $0) == 8 })
        // Block 4: max = −8 → d = 1; x = (k − 15)/2 → trunc(x + 8.5): ties go up.
        #expect(bytes[4 * 18] == 0x00 && bytes[4 * 18 + 1] == 0x3C)
        #expect(nibble(4, 0) == 0)                // the max itself
        #expect(nibble(4, 1 + 14) == 8)           // x = −0.5 → 8.0 → 8
        #expect(nibble(4, 1 + 16) == 9)           // x = 0.5 → 9.0 → 9
        #expect(nibble(4, 1 + 12) == 7)           // x = −1.5 → 7
        // Block 5: max = 8 → d = −1 (0xBC00); x = −7.5 → 16 → clamped 15.
        #expect(bytes[5 * 18] == 0x00 && bytes[5 * 18 + 1] == 0xBC)
        #expect(nibble(5, 1) == 15)
        // Blocks 6 and 7: the first of +8 / −8 sets the sign of d.
        #expect(bytes[6 * 18 + 1] == 0xBC && bytes[7 * 18 + 1] == 0x3C)
        // Block 12, element 17 = 1.5.nextDown: x0 + 8.5f rounds to 10.0 in fp32, so nibble 10
        // (the nearest level would be 9).
        #expect(blocks[12][17] == Float(1.5).nextDown)
        #expect(nibble(12, 17) == 10)
        #expect(decode(codec, bytes) == refDequantizeQ4_0(bytes))
    }

    @Test("|x − x̂| ≤ |d|/2 (≤ |d| where clamped at 15) + 8·|d − fp16(d)|", arguments: dims)
    func errorBound(dim: Int) throws {
        let codec = Q4_0Codec(dim: dim)
        let x = DataMaker.rows(count: 32, dim: dim, seed: 12) + specialRows(dim: dim)
        let y = decode(codec, try encode(codec, x))
        for blk in 0..<(x.count / 32) {
            let block = Array(x[(blk * 32)..<(blk * 32 + 32)])
            var amax: Float = 0, mx: Float = 0
            for v in block where amax < v.magnitude { amax = v.magnitude; mx = v }
            let d = mx / -8
            let d16 = Float(Float16(d))
            for j in 0..<32 {
                let i = blk * 32 + j
                // x·id > 7.5 lands on nibble 15 (the top of the grid is 7·|d| on the side opposite max).
                let clamped = d != 0 && x[i] / d > 7.5
                let bound = (clamped ? abs(d) : abs(d) / 2) + 8 * abs(d - d16) + amax * 0x1p-21
                #expect(abs(x[i] - y[i]) <= bound, "block \(blk) element \(j): \(x[i]) → \(y[i]), bound \(bound)")
            }
        }
    }

    @Test("NaN/Inf → nonFinite(vector:), nothing written")
    func nonFinite() {
        let codec = Q4_0Codec(dim: 128)
        for bad in [Float.nan, .infinity, -.infinity] {
            var x = DataMaker.rows(count: 3, dim: 128, seed: 5)
            x[1 * 128 + 127] = bad
            let result = tryEncode(codec, x)
            #expect(result.error == .nonFinite(vector: 1))
            #expect(result.buffer.allSatisfy { $0 == 0xAB })
        }
    }

    @Test("d beyond fp16 → outOfFloat16Range(vector:)")
    func fp16Overflow() throws {
        let codec = Q4_0Codec(dim: 32)
        var x = [Float](repeating: 1, count: 96)
        x[64 + 31] = -8 * 65520
        #expect(throws: QuantizationError.outOfFloat16Range(vector: 2)) { try encode(codec, x) }
        x[64 + 31] = -8 * 65504
        _ = try encode(codec, x)
    }

    @Test("dim not a multiple of 32 → shapeMismatch", arguments: [0, 16, 48, 80, 100])
    func badDim(dim: Int) {
        let result = tryEncode(Q4_0Codec(dim: dim), [Float](repeating: 1, count: max(dim, 1)), count: 1)
        #expect(isShapeMismatch(result.error))
        #expect(result.buffer.allSatisfy { $0 == 0xAB })
        var error: QuantizationError?
        do { _ = try Q4_0Codec(validatingDim: dim) } catch let e { error = e }
        #expect(isShapeMismatch(error))
    }
}

// MARK: - KIVI keys

/// Encodes one block into a buffer pre-filled with 0xAB, catching the error.
private func tryEncodeBlock(_ codec: KIVIKeyCodec, _ x: [Float]) -> (bytes: [UInt8], error: QuantizationError?) {
    let result = withEncode(x, bytes: codec.bytesPerBlock) { (src, dst) throws(QuantizationError) in
        try codec.encode(src, into: dst)
    }
    return (result.error == nil ? result.bytes : result.buffer, result.error)
}

private func encodeBlock(_ codec: KIVIKeyCodec, _ x: [Float]) throws(QuantizationError) -> [UInt8] {
    let result = tryEncodeBlock(codec, x)
    if let error = result.error { throw error }
    return result.bytes
}

private func decodeBlock(_ codec: KIVIKeyCodec, _ bytes: [UInt8]) -> [Float] {
    var out = [Float](repeating: .nan, count: codec.dim * codec.blockTokens)
    bytes.withUnsafeBytes { src in
        out.withUnsafeMutableBufferPointer { dst in codec.decode(src.baseAddress!, into: dst.baseAddress!) }
    }
    return out
}

@Suite("Baseline codecs: KIVI per-channel keys")
struct BaselineKIVITests {
    static let shapes: [(dim: Int, bits: Int, tokens: Int)] = [64, 80, 96, 128].flatMap { d in
        [2, 4, 8].flatMap { b in [(d, b, 32), (d, b, 16)] }
    }

    @Test("bytes per block = D·T·b/8 + 4·D")
    func sizes() throws {
        for s in Self.shapes {
            let codec = try KIVIKeyCodec(dim: s.dim, bits: s.bits, blockTokens: s.tokens)
            #expect(codec.bytesPerBlock == s.dim * s.tokens * s.bits / 8 + 4 * s.dim)
            #expect(codec.breakdown == ByteBreakdown(codes: s.dim * s.tokens * s.bits / 8, metadata: 4 * s.dim, outliers: 0))
        }
        #expect(try KIVIKeyCodec(dim: 128, bits: 4).blockTokens == 32)
        // KIVI-4 at D = 64, T = 32: 4 + 4·64·8/(64·32) = 5 bits per key element.
        #expect(try KIVIKeyCodec(dim: 64, bits: 4).bitsPerElement == 5)
    }

    @Test("per-channel error bound |x − x̂| ≤ s/2 up to fp16 rounding of min and scale")
    func errorBound() throws {
        for (n, s) in Self.shapes.enumerated() {
            let codec = try KIVIKeyCodec(dim: s.dim, bits: s.bits, blockTokens: s.tokens)
            let x = DataMaker.rows(count: s.tokens, dim: s.dim, seed: UInt64(100 + n))
            let bytes = try encodeBlock(codec, x)
            let y = decodeBlock(codec, bytes)
            let levels = Float((1 << s.bits) - 1)
            var worstRatio: Float = 0
            for c in 0..<s.dim {
                let column = (0..<s.tokens).map { x[$0 * s.dim + c] }
                let lo = column.min()!, hi = column.max()!
                let scale = (hi - lo) / levels
                let s16 = Float(Float16(scale)), m16 = Float(Float16(lo))
                // The grid m16 + q·s16 (q ∈ 0...L) has spacing s16: inside it the error is ≤ s16/2.
                // Below it, x ≥ lo is at most |lo − m16| away; above it, x ≤ hi = lo + L·scale is at
                // most |lo − m16| + L·|scale − s16| away. Each fp16 rounding is ≤ 2^-11 relative (so
                // these terms are ≈ 2^-11·(|lo| + range)); fp32 arithmetic in (x − m)/s and m + q·s adds
                // a few ulps of the operands: 4·2^-23·(|lo| + |hi| + range).
                let bound = s16 / 2 + abs(lo - m16) + levels * abs(scale - s16)
                    + 4 * Float.ulpOfOne * (abs(lo) + abs(hi) + (hi - lo))
                // The rounding terms really are second order: fp16's 11 significant bits.
                #expect(abs(lo - m16) + levels * abs(scale - s16) <= 0x1p-11 * (abs(lo) + (hi - lo)) + 0x1p-24)
                for t in 0..<s.tokens {
                    let i = t * s.dim + c
                    #expect(abs(x[i] - y[i]) <= bound, "D=\(s.dim) b=\(s.bits) T=\(s.tokens) c=\(c) t=\(t)")
                    if s16 > 0 { worstRatio = max(worstRatio, abs(x[i] - y[i]) / (s16 / 2)) }
                }
            }
            // The bound is tight, not vacuous: some element sits close to half a step away.
            #expect(worstRatio > 0.8, "D=\(s.dim) b=\(s.bits) T=\(s.tokens): worst error / (s/2) = \(worstRatio)")
        }
    }

    @Test("byte-exact with a scalar reference (fp16-rounded scale and min, ties to even)")
    func byteExact() throws {
        for (n, s) in Self.shapes.enumerated() {
            let codec = try KIVIKeyCodec(dim: s.dim, bits: s.bits, blockTokens: s.tokens)
            let x = DataMaker.rows(count: s.tokens, dim: s.dim, seed: UInt64(300 + n))
            let levels = Float((1 << s.bits) - 1)
            var expected = [UInt8](repeating: 0, count: codec.bytesPerBlock)
            var scale = [Float](repeating: 0, count: s.dim), minimum = scale
            for c in 0..<s.dim {
                let column = (0..<s.tokens).map { x[$0 * s.dim + c] }
                let lo = column.min()!, hi = column.max()!
                let s16 = ggmlFP32ToFP16((hi - lo) / levels), m16 = ggmlFP32ToFP16(lo)
                expected[2 * c] = UInt8(s16 & 0xFF); expected[2 * c + 1] = UInt8(s16 >> 8)
                expected[2 * (s.dim + c)] = UInt8(m16 & 0xFF); expected[2 * (s.dim + c) + 1] = UInt8(m16 >> 8)
                scale[c] = fp16ToFP32(s16)
                minimum[c] = fp16ToFP32(m16)
            }
            for i in 0..<(s.dim * s.tokens) {
                let c = i % s.dim
                let q = scale[c] == 0 ? 0 : Swift.min(levels, Swift.max(0, rintf((x[i] - minimum[c]) / scale[c])))
                expected[4 * s.dim + i * s.bits / 8] |= UInt8(q) << UInt8(i * s.bits % 8)
            }
            let bytes = try encodeBlock(codec, x)
            #expect(bytes == expected, "D=\(s.dim) b=\(s.bits) T=\(s.tokens)")
            let y = decodeBlock(codec, bytes)
            var mismatches = 0
            for i in 0..<(s.dim * s.tokens) {
                let c = i % s.dim
                let q = (expected[4 * s.dim + i * s.bits / 8] >> UInt8(i * s.bits % 8)) & UInt8((1 << s.bits) - 1)
                if y[i] != minimum[c] + Float(q) * scale[c] { mismatches += 1 }
            }
            #expect(mismatches == 0)
        }
    }

    @Test("exact ties round to even (as PyTorch's round_ in KIVI's code)")
    func tiesToEven() throws {
        // One channel, T = 8, 2 bits: min 0, max 3 → scale 1, so x = k + 0.5 is an exact tie.
        let codec = try KIVIKeyCodec(dim: 1, bits: 2, blockTokens: 8)
        let x: [Float] = [0, 3, 0.5, 1.5, 2.5, 1, 2, 2.5]
        let bytes = try encodeBlock(codec, x)
        #expect(Array(bytes[4...]) == [0b10_00_11_00, 0b10_10_01_10])  // codes 0 3 0 2 | 2 1 2 2
        #expect(decodeBlock(codec, bytes) == [0, 3, 0, 2, 2, 1, 2, 2])
    }

    @Test("constant channels decode exactly (to fp16 of the constant)")
    func constantChannel() throws {
        for bits in [2, 4, 8] {
            let codec = try KIVIKeyCodec(dim: 64, bits: bits)
            var x = DataMaker.rows(count: 32, dim: 64, seed: 7)
            for t in 0..<32 {
                x[t * 64 + 3] = 0.375       // fp16-representable: exact
                x[t * 64 + 10] = -3
                x[t * 64 + 11] = 0
                x[t * 64 + 40] = 0.1        // not representable: decodes to fp16(0.1)
            }
            let bytes = try encodeBlock(codec, x)
            let y = decodeBlock(codec, bytes)
            for t in 0..<32 {
                #expect(y[t * 64 + 3] == 0.375)
                #expect(y[t * 64 + 10] == -3)
                #expect(y[t * 64 + 11] == 0)
                #expect(y[t * 64 + 40] == Float(Float16(0.1)))
            }
            // Scale stored as 0 for those channels.
            for c in [3, 10, 11, 40] {
                #expect(bytes[2 * c] == 0 && bytes[2 * c + 1] == 0)
            }
        }
    }

    @Test("layout: fp16 scales, fp16 mins, then token-major little-endian codes")
    func layout() throws {
        // Channel c runs over 0, 1, …, L (then repeats): min 0, max L, scale 1, codes = values.
        for bits in [2, 4, 8] {
            let levels = (1 << bits) - 1
            let d = 16, tokens = 32
            let codec = try KIVIKeyCodec(dim: d, bits: bits, blockTokens: tokens)
            var x = [Float](repeating: 0, count: d * tokens)
            // Token 0 is 0 and token 1 is L in every channel, so min 0, scale 1 and code = value.
            func value(_ t: Int, _ c: Int) -> Int { t == 0 ? 0 : t == 1 ? levels : (5 * t + 3 * c) % (levels + 1) }
            for t in 0..<tokens { for c in 0..<d { x[t * d + c] = Float(value(t, c)) } }
            let bytes = try encodeBlock(codec, x)
            for c in 0..<d {
                #expect(bytes[2 * c] == 0x00 && bytes[2 * c + 1] == 0x3C)       // scale 1.0
                #expect(bytes[2 * (d + c)] == 0 && bytes[2 * (d + c) + 1] == 0)  // min 0
            }
            var expected = [UInt8](repeating: 0, count: d * tokens * bits / 8)
            for i in 0..<(d * tokens) {
                let code = UInt8(value(i / d, i % d))
                expected[i * bits / 8] |= code << UInt8((i * bits) % 8)
            }
            #expect(Array(bytes[(4 * d)...]) == expected)
            #expect(decodeBlock(codec, bytes) == x)
        }
    }

    @Test("invalid shapes and inputs → typed errors, nothing written")
    func errors() throws {
        for bits in [0, 1, 3, 5, 16] {
            #expect(throws: QuantizationError.self) { try KIVIKeyCodec(dim: 64, bits: bits) }
        }
        #expect(throws: QuantizationError.self) { try KIVIKeyCodec(dim: 0, bits: 4) }
        #expect(throws: QuantizationError.self) { try KIVIKeyCodec(dim: 64, bits: 4, blockTokens: 0) }
        #expect(throws: QuantizationError.self) { try KIVIKeyCodec(dim: 3, bits: 2, blockTokens: 1) }  // 6 bits
        let codec = try KIVIKeyCodec(dim: 64, bits: 4)
        for bad in [Float.nan, .infinity, -.infinity] {
            var x = DataMaker.rows(count: 32, dim: 64, seed: 8)
            x[5 * 64 + 9] = bad
            let result = tryEncodeBlock(codec, x)
            #expect(result.error == .nonFinite(vector: 5))
            #expect(result.bytes.allSatisfy { $0 == 0xAB })
        }
        var x = DataMaker.rows(count: 32, dim: 64, seed: 9)
        x[31 * 64] = -70000
        #expect(throws: QuantizationError.outOfFloat16Range(vector: 31)) { try encodeBlock(codec, x) }
    }
}

import QAQ
import QAQKernelsBase
import Testing

@Suite("Packed layout")
struct PackedLayoutTests {
    @Test("code bytes are exactly D·b/8 and every code bit has its own place",
          arguments: [16, 32, 48, 64, 80, 96, 112, 128, 160, 192, 256])
    func exactAndDisjoint(dim: Int) throws {
        for b in PackedLayout.supportedBits {
            let layout = try PackedLayout(dim: dim, groupSize: dim, bits: b)
            #expect(layout.codeBytes == dim * b / 8)
            // Set each element's code to all ones, one element at a time: the bits set must
            // be exactly b new ones, none shared with another element.
            var seen = [UInt8](repeating: 0, count: layout.codeBytes)
            for e in 0..<dim {
                var record = [UInt8](repeating: 0, count: layout.recordBytes)
                record.withUnsafeMutableBytes { r in
                    writeCode(r.baseAddress!, layout, element: e, code: layout.maxCode)
                }
                let ones = record.prefix(layout.codeBytes).reduce(0) { $0 + $1.nonzeroBitCount }
                #expect(ones == b, "element \(e) at \(b) bits sets \(ones) bits")
                for i in 0..<layout.codeBytes {
                    #expect(seen[i] & record[i] == 0, "element \(e) overlaps at byte \(i)")
                    seen[i] |= record[i]
                }
                let back = record.withUnsafeBytes { Reference.code($0.baseAddress!, layout, element: e) }
                #expect(back == layout.maxCode)
            }
            #expect(seen.allSatisfy { $0 == 0xFF }, "D=\(dim) b=\(b): some code bytes unused")
        }
    }

    @Test("records count every byte: codes, fp16 lo/step per group, 3 bytes per outlier")
    func recordBytes() throws {
        let l = try PackedLayout(dim: 128, groupSize: 32, bits: 4, outlierCount: 2)
        #expect(l.codeBytes == 64)
        #expect(l.metadataBytes == 16)
        #expect(l.outlierBytes == 6)
        #expect(l.recordBytes == 86)
        #expect(abs(l.bitsPerElement - 86.0 * 8 / 128) < 1e-12)
        #expect(abs(l.compressionRatio - 256.0 / 86) < 1e-12)
    }

    @Test("unsupported shapes are typed errors")
    func rejects() {
        #expect(throws: LayoutError.unsupportedDimension(72)) { try PackedLayout(dim: 72, groupSize: 72, bits: 4) }
        #expect(throws: LayoutError.unsupportedDimension(512)) { try PackedLayout(dim: 512, groupSize: 32, bits: 4) }
        #expect(throws: LayoutError.unsupportedBits(5)) { try PackedLayout(dim: 64, groupSize: 32, bits: 5) }
        #expect(throws: LayoutError.unsupportedGroupSize(64, dim: 96)) { try PackedLayout(dim: 96, groupSize: 64, bits: 4) }
        #expect(throws: LayoutError.unsupportedOutlierCount(64, dim: 64)) { try PackedLayout(dim: 64, groupSize: 32, bits: 4, outlierCount: 64) }
    }
}

/// Writes one code bit by bit from the lane-slice definition (test oracle).
func writeCode(_ record: UnsafeMutableRawPointer, _ layout: PackedLayout, element i: Int, code: UInt32) {
    let (s, l) = (i / 16, i % 16)
    func put(_ entry: UInt32, _ value: UInt32, _ n: Int) {
        let w = SlotTable.width(entry)
        let lanePos = w >= 8 ? 32 * (l % (w / 2)) + w * (l / (w / 2)) : l * w
        for j in 0..<n where (value >> UInt32(j)) & 1 == 1 {
            let p = 8 * SlotTable.byteOffset(entry) + lanePos + Int(SlotTable.bitOffset(entry)) + j
            let old = record.load(fromByteOffset: p / 8, as: UInt8.self)
            record.storeBytes(of: old | (1 << UInt8(p % 8)), toByteOffset: p / 8, as: UInt8.self)
        }
    }
    let t = layout.slots
    if t.bits1 != 0 {
        put(t.stream0[s], code & 3, 2)
        put(t.stream1[s], code >> 2, 1)
    } else {
        put(t.stream0[s], code, t.bits0)
    }
}

import CQAQSupport
#if canImport(Glibc)
import Glibc
#endif

/// The instruction-set level a kernel variant is compiled for.
public enum ISALevel: String, Sendable, CaseIterable, Codable, Comparable, CustomStringConvertible {
    /// x86-64 baseline (SSE2), or the host architecture's baseline elsewhere.
    case base
    /// x86-64-v3: AVX2, FMA, F16C, BMI1/2, LZCNT, MOVBE.
    case v3
    /// x86-64-v4 plus AVX-512 VNNI: v3 plus AVX-512 F/BW/CD/DQ/VL and VNNI (the int8 dot
    /// products of the attention scores). An AVX-512 CPU without VNNI (Skylake-SP/X) runs v3.
    case v4

    public var description: String { rawValue }

    public static func < (a: ISALevel, b: ISALevel) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    /// The CPU's feature bits (see `CQAQSupport.h`).
    public static let cpuFeatures: UInt32 = qaq_cpu_features()

    /// The highest level this CPU runs and this binary carries.
    public static let detected: ISALevel = {
        let f = cpuFeatures
        func has(_ bits: UInt32) -> Bool { f & bits == bits }
        let v3Bits = QAQ_CPU_AVX2 | QAQ_CPU_FMA | QAQ_CPU_F16C | QAQ_CPU_BMI1
            | QAQ_CPU_BMI2 | QAQ_CPU_LZCNT | QAQ_CPU_MOVBE
        let v4Bits = QAQ_CPU_AVX512F | QAQ_CPU_AVX512BW | QAQ_CPU_AVX512CD
            | QAQ_CPU_AVX512DQ | QAQ_CPU_AVX512VL | QAQ_CPU_AVX512VNNI
        var level = ISALevel.base
        if has(v3Bits) && compiled.contains(.v3) { level = .v3 }
        if level == .v3 && has(v4Bits) && compiled.contains(.v4) { level = .v4 }
        return level
    }()

    /// The levels compiled into this binary (all three on x86-64, `base` elsewhere).
    public static var compiled: [ISALevel] {
        #if arch(x86_64)
        return [.base, .v3, .v4]
        #else
        return [.base]
        #endif
    }

    /// Levels this CPU can run, lowest first.
    public static var available: [ISALevel] { compiled.filter { $0 <= detected } }

    /// The level to use: `QAQ_ISA` (base|v3|v4) when set, else ``detected``.
    /// Throws ``ISAError`` for an unknown value or a level this CPU or binary lacks.
    public static func selected(environment: [String: String]? = nil) throws(ISAError) -> ISALevel {
        let value: String?
        if let environment {
            value = environment["QAQ_ISA"]
        } else if let p = getenv("QAQ_ISA") {
            value = String(cString: p)
        } else {
            value = nil
        }
        guard let value, !value.isEmpty else { return detected }
        guard let level = ISALevel(rawValue: value.lowercased()) else { throw .unknownLevel(value) }
        guard compiled.contains(level) else { throw .notCompiled(level) }
        guard level <= detected else { throw .unsupportedByCPU(level, detected: detected) }
        return level
    }

    /// The CPU model string (cpuid brand string on x86; empty if unknown).
    public static let cpuModel: String = {
        var buffer = [CChar](repeating: 0, count: 64)
        let n = qaq_cpu_model(&buffer, Int32(buffer.count))
        guard n > 0 else { return "" }
        return String(decoding: buffer.prefix(Int(n)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }()

    /// Names of the CPU features relevant to the kernels that this CPU has.
    public static var featureNames: [String] {
        let names: [(UInt32, String)] = [
            (QAQ_CPU_SSE42, "sse4.2"), (QAQ_CPU_POPCNT, "popcnt"),
            (QAQ_CPU_AVX, "avx"), (QAQ_CPU_AVX2, "avx2"), (QAQ_CPU_FMA, "fma"),
            (QAQ_CPU_F16C, "f16c"), (QAQ_CPU_BMI1, "bmi1"), (QAQ_CPU_BMI2, "bmi2"),
            (QAQ_CPU_LZCNT, "lzcnt"), (QAQ_CPU_MOVBE, "movbe"),
            (QAQ_CPU_AVX512F, "avx512f"), (QAQ_CPU_AVX512BW, "avx512bw"),
            (QAQ_CPU_AVX512CD, "avx512cd"), (QAQ_CPU_AVX512DQ, "avx512dq"),
            (QAQ_CPU_AVX512VL, "avx512vl"), (QAQ_CPU_AVX512VNNI, "avx512vnni"),
            (QAQ_CPU_AVXVNNI, "avxvnni"), (QAQ_CPU_AVX512BF16, "avx512bf16"),
            (QAQ_CPU_AVX512FP16, "avx512fp16"),
        ]
        return names.filter { cpuFeatures & $0.0 != 0 }.map(\.1)
    }
}

/// Why an ISA level cannot be used.
public enum ISAError: Error, Equatable, Sendable, CustomStringConvertible {
    case unknownLevel(String)
    case notCompiled(ISALevel)
    case unsupportedByCPU(ISALevel, detected: ISALevel)

    public var description: String {
        switch self {
        case .unknownLevel(let s):
            return "QAQ_ISA=\(s) is not a level: use base, v3 or v4"
        case .notCompiled(let l):
            return "ISA level \(l) is not compiled into this binary (levels: \(ISALevel.compiled.map { $0.rawValue }.joined(separator: ", ")))"
        case .unsupportedByCPU(let l, let d):
            return "this CPU cannot run ISA level \(l): it supports up to \(d)"
        }
    }
}

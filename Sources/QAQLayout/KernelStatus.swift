/// What a kernel reports back. Kernels never throw or allocate; the library turns a
/// status into a typed error that names the vector and element.
public struct KernelStatus: Equatable, Sendable {
    public enum Code: Int32, Sendable {
        case ok = 0
        /// An input element is NaN or ±Inf.
        case nonFinite = 1
        /// An input element's magnitude does not fit fp16 metadata (|x| > 65504, or a
        /// group range whose step overflows fp16).
        case outOfFloat16Range = 2
    }
    public var code: Code
    /// Index of the offending vector (when `code != .ok`).
    public var vector: Int

    @inlinable public init(code: Code, vector: Int) {
        self.code = code
        self.vector = vector
    }
    public static let ok = KernelStatus(code: .ok, vector: -1)
}

/// Element type of kernel inputs.
public enum ElementType: String, Sendable, CaseIterable, Codable {
    case float32 = "f32"
    case float16 = "f16"

    /// Bytes per element.
    public var byteCount: Int { self == .float32 ? 4 : 2 }
}

@_exported import QAQLayout

/// QAQ: quality-adaptive quantization of the LLM KV cache.
///
/// Rooms of this module: `Runtime/` (ISA selection and the kernel table), `Formats/`
/// (packed vectors and their errors), `Measurement/` (the read-roof probe and timing).
public enum QAQ {
    /// Library version, written into profiles and reports.
    public static let version = "0.1.0"
}

/// Why vectors could not be quantized or used. Every case names the offending input;
/// nothing is modified when one is thrown.
public enum QuantizationError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The layout cannot be built.
    case layout(LayoutError)
    /// Vector `vector` holds NaN or ±Inf.
    case nonFinite(vector: Int)
    /// Vector `vector` holds a magnitude that fp16 metadata cannot describe (> 65504).
    case outOfFloat16Range(vector: Int)
    /// The input does not have the shape the layout asks for.
    case shapeMismatch(expected: String, got: String)
    /// Lowering to `to` bits from `from` bits is not possible (bits are never raised).
    case cannotLower(from: Int, to: Int)

    public var description: String {
        switch self {
        case .layout(let e): return e.description
        case .nonFinite(let v): return "vector \(v) contains NaN or Inf"
        case .outOfFloat16Range(let v): return "vector \(v) has a value beyond the fp16 range (|x| > 65504)"
        case .shapeMismatch(let e, let g): return "shape mismatch: expected \(e), got \(g)"
        case .cannotLower(let f, let t): return "cannot lower \(f)-bit codes to \(t) bits: bits are only ever lowered, to a supported width (1, 2, 3, 4, 8)"
        }
    }

    init(_ status: KernelStatus) {
        switch status.code {
        case .nonFinite: self = .nonFinite(vector: status.vector)
        default: self = .outOfFloat16Range(vector: status.vector)
        }
    }
}

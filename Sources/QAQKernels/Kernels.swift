import QAQLayout

/// The SIMD kernels, over raw pointers: quantize, dequantize, dot, weighted accumulation,
/// down-quantization and a memory read probe.
///
/// This file set is compiled three times — `QAQKernelsBase` (x86-64 baseline or the host
/// architecture), `QAQKernelsV3` (x86-64-v3: AVX2, FMA, F16C) and `QAQKernelsV4`
/// (x86-64-v4: AVX-512) — and the library picks one at start. Kernels call nothing
/// generic from the standard library that is not inlined, so no variant emits weak
/// symbols that the linker could share across ISA levels (a test checks the objects).
///
/// Every kernel has a plain scalar reference beside it in ``Reference``; the SIMD kernel
/// must match it bit-exactly where the contract says so (codes, dequantized values) and
/// within fp32 rounding of a different summation order elsewhere (dots, accumulation).
public enum Kernels {}

/// Scalar references, one per kernel: the numerical contract written out plainly.
public enum Reference {}

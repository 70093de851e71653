// Vector operations Swift's SIMD types cannot express (a variable lane permute), for the
// kernel modules. Header-only: each kernel module imports it with its own -march, so the
// functions below are `static inline` (internal to each module, never a shared weak symbol)
// and compile to that level's instructions.
#ifndef QAQ_SIMD_SHIMS_H
#define QAQ_SIMD_SHIMS_H

#include <stdint.h>

/// 16 fp32 lanes (imported into Swift as SIMD16<Float>).
typedef float qaq_f32x16 __attribute__((ext_vector_type(16)));
/// 16 uint32 lanes (imported into Swift as SIMD16<UInt32>).
typedef uint32_t qaq_u32x16 __attribute__((ext_vector_type(16)));

#if defined(__AVX512F__)
#include <immintrin.h>
/// 2: one instruction (vpermps zmm); 1: four 8-lane permutes and two blends (AVX2);
/// 0: no native permute (callers use their portable path; `qaq_permute16` is then scalar).
#define QAQ_PERMUTE16_NATIVE 2

/// result[i] = table[index[i] & 15].
static inline __attribute__((always_inline)) qaq_f32x16 qaq_permute16(qaq_f32x16 table, qaq_u32x16 index) {
    return (qaq_f32x16)_mm512_permutexvar_ps((__m512i)index, (__m512)table);
}
#elif defined(__AVX2__)
#include <immintrin.h>
#define QAQ_PERMUTE16_NATIVE 1

typedef float qaq_f32x8 __attribute__((ext_vector_type(8)));
typedef uint32_t qaq_u32x8 __attribute__((ext_vector_type(8)));

static inline __attribute__((always_inline)) __m256 qaq_permute16_half(__m256 lo, __m256 hi, qaq_u32x8 index) {
    __m256i ix = (__m256i)index;
    __m256 a = _mm256_permutevar8x32_ps(lo, ix), b = _mm256_permutevar8x32_ps(hi, ix);
    return _mm256_blendv_ps(a, b, _mm256_castsi256_ps(_mm256_slli_epi32(ix, 28)));   // bit 3 → sign
}

/// result[i] = table[index[i] & 15].
static inline __attribute__((always_inline)) qaq_f32x16 qaq_permute16(qaq_f32x16 table, qaq_u32x16 index) {
    __m256 lo = (__m256)__builtin_shufflevector(table, table, 0, 1, 2, 3, 4, 5, 6, 7);
    __m256 hi = (__m256)__builtin_shufflevector(table, table, 8, 9, 10, 11, 12, 13, 14, 15);
    qaq_f32x8 r0 = (qaq_f32x8)qaq_permute16_half(lo, hi, __builtin_shufflevector(index, index, 0, 1, 2, 3, 4, 5, 6, 7));
    qaq_f32x8 r1 = (qaq_f32x8)qaq_permute16_half(lo, hi, __builtin_shufflevector(index, index, 8, 9, 10, 11, 12, 13, 14, 15));
    return __builtin_shufflevector(r0, r1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}
#else
#define QAQ_PERMUTE16_NATIVE 0

/// result[i] = table[index[i] & 15] (scalar; callers prefer their own path at this level).
static inline __attribute__((always_inline)) qaq_f32x16 qaq_permute16(qaq_f32x16 table, qaq_u32x16 index) {
    qaq_f32x16 r;
    for (int i = 0; i < 16; i++) r[i] = table[index[i] & 15];
    return r;
}
#endif

/// QAQ_PERMUTE16_NATIVE as a function (Swift sees no macros in `if`; a constant condition
/// would warn): nonzero when `qaq_permute16` is native at this level. Folds away.
static inline __attribute__((always_inline)) int qaq_permute16_native(void) { return QAQ_PERMUTE16_NATIVE; }

#endif

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

/// result[i] = table[index[i] & 7], for tables of at most 8 entries; `table`'s lanes 8…15
/// must repeat lanes 0…7 (bit 3 of the index is then irrelevant at every level, so callers
/// may leave garbage above bit 2). One vpermps at v4; two 8-lane vpermps at v3, half the
/// work of `qaq_permute16` there.
static inline __attribute__((always_inline)) qaq_f32x16 qaq_permute8(qaq_f32x16 table, qaq_u32x16 index) {
#if defined(__AVX512F__)
    return qaq_permute16(table, index);
#elif defined(__AVX2__)
    __m256 lo = (__m256)__builtin_shufflevector(table, table, 0, 1, 2, 3, 4, 5, 6, 7);
    qaq_f32x8 r0 = (qaq_f32x8)_mm256_permutevar8x32_ps(lo, (__m256i)__builtin_shufflevector(index, index, 0, 1, 2, 3, 4, 5, 6, 7));
    qaq_f32x8 r1 = (qaq_f32x8)_mm256_permutevar8x32_ps(lo, (__m256i)__builtin_shufflevector(index, index, 8, 9, 10, 11, 12, 13, 14, 15));
    return __builtin_shufflevector(r0, r1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
#else
    qaq_f32x16 r;
    for (int i = 0; i < 16; i++) r[i] = table[index[i] & 7];
    return r;
#endif
}

/// QAQ_PERMUTE16_NATIVE as a function (Swift sees no macros in `if`; a constant condition
/// would warn): nonzero when `qaq_permute16` is native at this level. Folds away.
static inline __attribute__((always_inline)) int qaq_permute16_native(void) { return QAQ_PERMUTE16_NATIVE; }

// MARK: - Stores, an optimization barrier and fp16 conversions for the quantize kernels

/// Stores 64 bytes (one 32-bit lane word) at `p`, unaligned. (Swift's generic `storeBytes`
/// stays a call to a shared weak specialization in test builds; this is always inlined.)
static inline __attribute__((always_inline)) void qaq_store_u32x16(void *p, qaq_u32x16 v) {
    __builtin_memcpy(p, &v, sizeof v);
}

/// Stores lanes 0…7 (32 bytes) of `v` at `p`, unaligned.
static inline __attribute__((always_inline)) void qaq_store_u32x16_first32(void *p, qaq_u32x16 v) {
    __builtin_memcpy(p, &v, 32);
}

/// Stores lanes 0…3 (16 bytes) of `v` at `p`, unaligned.
static inline __attribute__((always_inline)) void qaq_store_u32x16_first16(void *p, qaq_u32x16 v) {
    __builtin_memcpy(p, &v, 16);
}

/// 4 uint32 lanes (imported into Swift as SIMD4<UInt32>).
typedef uint32_t qaq_u32x4 __attribute__((ext_vector_type(4)));

/// Stores 16 bytes at `p`, unaligned.
static inline __attribute__((always_inline)) void qaq_store_u32x4(void *p, qaq_u32x4 v) {
    __builtin_memcpy(p, &v, sizeof v);
}

/// Stores 8 bytes at `p`, unaligned.
static inline __attribute__((always_inline)) void qaq_store_u64(void *p, uint64_t v) {
    __builtin_memcpy(p, &v, sizeof v);
}

/// `v`, unchanged, through an empty asm statement: LLVM cannot see what the value is, so
/// it keeps the computation before it a vector one (it otherwise scalarizes a vector
/// divide whose lanes are only read one by one) and cannot look through it.
static inline __attribute__((always_inline)) qaq_f32x16 qaq_opaque_f32x16(qaq_f32x16 v) {
#if defined(__AVX512F__)
    __asm__("" : "+v"(v));
    return v;
#elif defined(__AVX__)
    typedef float qaq_f32x8_ __attribute__((ext_vector_type(8)));
    qaq_f32x8_ a = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7);
    qaq_f32x8_ b = __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
    __asm__("" : "+x"(a), "+x"(b));
    return __builtin_shufflevector(a, b, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
#else
    typedef float qaq_f32x4_ __attribute__((ext_vector_type(4)));
    typedef float qaq_f32x8_ __attribute__((ext_vector_type(8)));
    qaq_f32x4_ a = __builtin_shufflevector(v, v, 0, 1, 2, 3), b = __builtin_shufflevector(v, v, 4, 5, 6, 7);
    qaq_f32x4_ c = __builtin_shufflevector(v, v, 8, 9, 10, 11), d = __builtin_shufflevector(v, v, 12, 13, 14, 15);
    __asm__("" : "+x"(a), "+x"(b), "+x"(c), "+x"(d));
    return __builtin_shufflevector(__builtin_shufflevector(a, b, 0, 1, 2, 3, 4, 5, 6, 7),
                                   __builtin_shufflevector(c, d, 0, 1, 2, 3, 4, 5, 6, 7),
                                   0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
#endif
}

/// fp32 → fp16 with an explicit rounding (F16C: `vcvtps2ph`, imm 0 nearest-even, 1 down,
/// 2 up), each lane's fp16 bits zero-extended to 32 bits; fp16 bits (low 16 bits of each
/// lane) → fp32, exact. `qaq_f16c()` is nonzero where these are native; elsewhere they are
/// placeholders (zeros) and callers take their portable path.
#if defined(__F16C__) && defined(__AVX512F__)
#define QAQ_F16C 1
#define QAQ_F16_BITS(x, mode) \
    ((qaq_u32x16)_mm512_cvtepu16_epi32(_mm512_cvtps_ph((__m512)(x), (mode))))
static inline __attribute__((always_inline)) qaq_f32x16 qaq_f16_decode(qaq_u32x16 h) {
    return (qaq_f32x16)_mm512_cvtph_ps(_mm512_cvtepi32_epi16((__m512i)h));
}
#elif defined(__F16C__) && defined(__AVX2__)
#define QAQ_F16C 1
static inline __attribute__((always_inline)) __m256i qaq_f16_widen_(__m128i h) { return _mm256_cvtepu16_epi32(h); }
#define QAQ_F16_BITS(x, mode) ((qaq_u32x16)__builtin_shufflevector( \
    (qaq_u32x8)qaq_f16_widen_(_mm256_cvtps_ph((__m256)__builtin_shufflevector((x), (x), 0, 1, 2, 3, 4, 5, 6, 7), (mode))), \
    (qaq_u32x8)qaq_f16_widen_(_mm256_cvtps_ph((__m256)__builtin_shufflevector((x), (x), 8, 9, 10, 11, 12, 13, 14, 15), (mode))), \
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15))
static inline __attribute__((always_inline)) qaq_f32x16 qaq_f16_decode(qaq_u32x16 h) {
    typedef uint16_t qaq_u16x8_ __attribute__((ext_vector_type(8)));
    qaq_u32x8 a = __builtin_shufflevector(h, h, 0, 1, 2, 3, 4, 5, 6, 7);
    qaq_u32x8 b = __builtin_shufflevector(h, h, 8, 9, 10, 11, 12, 13, 14, 15);
    qaq_f32x8 fa = (qaq_f32x8)_mm256_cvtph_ps((__m128i)__builtin_convertvector(a, qaq_u16x8_));
    qaq_f32x8 fb = (qaq_f32x8)_mm256_cvtph_ps((__m128i)__builtin_convertvector(b, qaq_u16x8_));
    return __builtin_shufflevector(fa, fb, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}
#else
#define QAQ_F16C 0
#define QAQ_F16_BITS(x, mode) ((void)(x), (qaq_u32x16){0})
static inline __attribute__((always_inline)) qaq_f32x16 qaq_f16_decode(qaq_u32x16 h) { (void)h; return (qaq_f32x16){0}; }
#endif

static inline __attribute__((always_inline)) int qaq_f16c(void) { return QAQ_F16C; }
/// The fp16 value nearest to each lane (ties to even).
static inline __attribute__((always_inline)) qaq_u32x16 qaq_f16_bits_nearest(qaq_f32x16 x) { return QAQ_F16_BITS(x, 0); }
/// The largest fp16 value ≤ each lane.
static inline __attribute__((always_inline)) qaq_u32x16 qaq_f16_bits_down(qaq_f32x16 x) { return QAQ_F16_BITS(x, 1); }
/// The smallest fp16 value ≥ each lane.
static inline __attribute__((always_inline)) qaq_u32x16 qaq_f16_bits_up(qaq_f32x16 x) { return QAQ_F16_BITS(x, 2); }

// MARK: - Integer dot products for the int8 attention scores (DESIGN §5)

/// acc[i] + Σₖ a.byte[4i+k] (unsigned) × b.byte[4i+k] (signed), per 32-bit lane, without
/// saturation: `vpdpbusd` where the module is built with AVX-512 VNNI (`qaq_dpbusd_native()`
/// nonzero), a plain per-lane loop elsewhere (callers do not use it there).
#if defined(__AVX512VNNI__) && defined(__AVX512F__)
#define QAQ_DPBUSD_NATIVE 1
static inline __attribute__((always_inline)) qaq_u32x16 qaq_dpbusd(qaq_u32x16 acc, qaq_u32x16 a, qaq_u32x16 b) {
    return (qaq_u32x16)_mm512_dpbusd_epi32((__m512i)acc, (__m512i)a, (__m512i)b);
}
#else
#define QAQ_DPBUSD_NATIVE 0
static inline __attribute__((always_inline)) qaq_u32x16 qaq_dpbusd(qaq_u32x16 acc, qaq_u32x16 a, qaq_u32x16 b) {
    for (int i = 0; i < 16; i++) {
        int32_t s = (int32_t)acc[i];
        for (int k = 0; k < 4; k++) {
            s += (int32_t)(uint8_t)(a[i] >> (8 * k)) * (int32_t)(int8_t)(uint8_t)(b[i] >> (8 * k));
        }
        acc[i] = (uint32_t)s;
    }
    return acc;
}
#endif
static inline __attribute__((always_inline)) int qaq_dpbusd_native(void) { return QAQ_DPBUSD_NATIVE; }

/// Byte `i` of each 128-bit lane of the result is byte `index.byte[i] & 15` of the same lane
/// of `table` (`vpshufb`; index bytes here are always < 16).
static inline __attribute__((always_inline)) qaq_u32x16 qaq_shuffle_bytes(qaq_u32x16 table, qaq_u32x16 index) {
#if defined(__AVX512BW__)
    return (qaq_u32x16)_mm512_shuffle_epi8((__m512i)table, (__m512i)index);
#else
    typedef uint8_t qaq_u8x64_ __attribute__((ext_vector_type(64)));
    qaq_u8x64_ t = (qaq_u8x64_)table, x = (qaq_u8x64_)index, r;
    for (int i = 0; i < 64; i++) r[i] = t[(i & ~15) | (x[i] & 15)];
    return (qaq_u32x16)r;
#endif
}

/// The 32 bytes at `p` (unaligned) in both 256-bit halves of the result (`vbroadcasti64x4`
/// at AVX-512).
static inline __attribute__((always_inline)) qaq_u32x16 qaq_load_32_twice(const void *p) {
    typedef uint32_t qaq_u32x8_ __attribute__((ext_vector_type(8)));
    qaq_u32x8_ v;
    __builtin_memcpy(&v, p, sizeof v);
    return __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7);
}

/// The 32-bit lanes as signed integers, converted to fp32 (exact below 2^24).
static inline __attribute__((always_inline)) qaq_f32x16 qaq_i32_to_f32(qaq_u32x16 v) {
    typedef int32_t qaq_i32x16_ __attribute__((ext_vector_type(16)));
    return __builtin_convertvector((qaq_i32x16_)v, qaq_f32x16);
}

/// Pairwise sums of adjacent lanes: lanes 0…7 from `a`, lanes 8…15 from `b`
/// (r[i] = a[2i] + a[2i+1], r[8+i] = b[2i] + b[2i+1]). Written as two constant shuffles so
/// that every level gets its best two-source permute (`vpermt2ps` on AVX-512); Swift's
/// `evenHalf`/`oddHalf` over vectors in memory were lowered lane by lane.
static inline __attribute__((always_inline)) qaq_f32x16 qaq_pair_sums(qaq_f32x16 a, qaq_f32x16 b) {
    return __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)
         + __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
}

#endif

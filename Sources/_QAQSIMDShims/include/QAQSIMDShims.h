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

#if QAQ_F16C
/// The eight fp16 values of the 128-bit `h` as fp32 in lanes 0…7 (one `vcvtph2ps`); lanes
/// 8…15 zero. A macro: a C helper returning 16 lanes would warn about the vector ABI at v3.
/// (At AVX-512 one 512-bit convert of the zero-extended halves: `_mm512_castps256_ps512`'s
/// undefined upper half became a `vinsertf64x4` of an arbitrary register, and a zero
/// extension of the 256-bit result a `vexpandpd`, one more shuffle per call in the decode
/// loops.)
#if defined(__AVX512F__)
#define QAQ_F16X8_TO_F32X16(h) ((qaq_f32x16)_mm512_cvtph_ps(_mm256_zextsi128_si256(h)))
#else
#define QAQ_F16X8_TO_F32X16(h) ({ \
    typedef float qaq_f32x8_m_ __attribute__((ext_vector_type(8))); \
    qaq_f32x8_m_ f_ = (qaq_f32x8_m_)_mm256_cvtph_ps(h), z_ = {0}; \
    __builtin_shufflevector(f_, z_, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15); })
#endif
#endif

#if QAQ_F16C
/// The `n` (2, 4 or 8) fp16 values at `p` (unaligned) in the low 2n bytes, the rest zero.
static inline __attribute__((always_inline)) __m128i qaq_f16_halves_(const void *p, int n) {
    if (n == 8) { return _mm_loadu_si128((const __m128i *)p); }
    if (n == 4) { int64_t v; __builtin_memcpy(&v, p, 8); return _mm_cvtsi64_si128(v); }
    int32_t v; __builtin_memcpy(&v, p, 4); return _mm_cvtsi32_si128(v);
}
#endif

/// The `n` (2, 4 or 8) fp16 values at `p` (unaligned) as fp32 in lanes 0…n−1, the other
/// lanes zero. One `vcvtph2ps` where F16C is native; zeros elsewhere (a placeholder, like
/// `qaq_f16_decode`).
static inline __attribute__((always_inline)) qaq_f32x16 qaq_f16_load(const void *p, int n) {
#if QAQ_F16C
    return QAQ_F16X8_TO_F32X16(qaq_f16_halves_(p, n));
#else
    (void)p; (void)n;
    return (qaq_f32x16){0};
#endif
}

/// The `n` (2, 4 or 8) fp16 values at `p` in lanes 0…n−1 and those at `q` in lanes
/// 8…8+n−1, as fp32, the other lanes zero: two tokens' parameters in one convert (one
/// 512-bit `vcvtph2ps` at AVX-512, two 256-bit ones at AVX2). Zeros where F16C is not native
/// (a placeholder, like `qaq_f16_load`).
static inline __attribute__((always_inline)) qaq_f32x16 qaq_f16_load_two(const void *p, const void *q, int n) {
#if QAQ_F16C
    __m128i a = qaq_f16_halves_(p, n), b = qaq_f16_halves_(q, n);
#if defined(__AVX512F__)
    return (qaq_f32x16)_mm512_cvtph_ps(_mm256_set_m128i(b, a));
#else
    typedef float qaq_f32x8_t_ __attribute__((ext_vector_type(8)));
    qaq_f32x8_t_ fa = (qaq_f32x8_t_)_mm256_cvtph_ps(a), fb = (qaq_f32x8_t_)_mm256_cvtph_ps(b);
    return __builtin_shufflevector(fa, fb, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
#endif
#else
    (void)p; (void)q; (void)n;
    return (qaq_f32x16){0};
#endif
}

/// The `n` (2 or 4) fp16 values at `p` in lanes 0…n−1 and those at `q` in lanes 4…4+n−1,
/// as fp32 (one `vcvtph2ps`); the other lanes are zero. Zeros where F16C is not
/// native (a placeholder, like `qaq_f16_load`).
static inline __attribute__((always_inline)) qaq_f32x16 qaq_f16_load_pair(const void *p, const void *q, int n) {
#if QAQ_F16C
    int64_t a = 0, b = 0;
    if (n == 4) { __builtin_memcpy(&a, p, 8); __builtin_memcpy(&b, q, 8); }
    else { uint32_t x, y; __builtin_memcpy(&x, p, 4); __builtin_memcpy(&y, q, 4); a = (int64_t)x; b = (int64_t)y; }
    __m128i h = _mm_set_epi64x(b, a);
    return QAQ_F16X8_TO_F32X16(h);
#else
    (void)p; (void)q; (void)n;
    return (qaq_f32x16){0};
#endif
}

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

/// round(v) per lane as 32-bit integers, to nearest, ties to even, for lanes finite and in
/// [0, 2^22) (the caller's guarantee): one `vcvtps2dq` with embedded rounding at AVX-512,
/// the 1.5·2²³ addition elsewhere (same results on that range).
static inline __attribute__((always_inline)) qaq_u32x16 qaq_f32_round_u32(qaq_f32x16 v) {
#if defined(__AVX512F__)
    return (qaq_u32x16)_mm512_cvt_roundps_epi32((__m512)v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
#else
    qaq_f32x16 t = v + (qaq_f32x16)12582912.0f;
    return (qaq_u32x16)t - (qaq_u32x16)0x4B400000u;
#endif
}

/// min(⌊v⌋, limit) per lane: the fp32 lanes truncated toward zero to 32-bit integers
/// (`vcvttps2dq`), then the unsigned minimum with `limit`; the caller guarantees every lane
/// is finite and in [0, 2^31).
static inline __attribute__((always_inline)) qaq_u32x16 qaq_f32_to_u32_clamped(qaq_f32x16 v, uint32_t limit) {
    typedef int32_t qaq_i32x16_ __attribute__((ext_vector_type(16)));
    qaq_u32x16 t = (qaq_u32x16)__builtin_convertvector(v, qaq_i32x16_);
    return __builtin_elementwise_min(t, (qaq_u32x16)limit);
}

/// QAQ_COUNT_LESS_(n, t, u) = n + (t < u ? 1 : 0) per lane (an ordered fp32 compare). At
/// AVX-512 the compare's mask drives one masked `vpaddd` (inline asm: LLVM otherwise
/// rewrites the select into a mask-to-vector move and a subtract, two instructions);
/// elsewhere the −1/0 mask subtracted.
/// QAQ_FLIP_NEGATIVE_(r, x, flip) = r ^ (x < 0 ? flip : 0) per lane, "x < 0" the sign bit of
/// x's fp32 pattern (−0 counts): one `vpternlogd` at AVX-512.
/// (Macros: C helpers passing 16 lanes to each other warn about the vector ABI at v3.)
typedef int32_t qaq_i32x16_shim_ __attribute__((ext_vector_type(16)));
#if defined(__AVX512F__)
#define QAQ_COUNT_LESS_(n, t, u) ({ \
    __m512i r_ = (__m512i)(n); \
    __mmask16 k_ = _mm512_cmp_ps_mask((__m512)(t), (__m512)(u), _CMP_LT_OQ); \
    __asm__("vpaddd %2, %0, %0 %{%1%}" : "+v"(r_) : "Yk"(k_), "v"(_mm512_set1_epi32(1))); \
    (qaq_u32x16)r_; })
#define QAQ_FLIP_NEGATIVE_(r, x, flip) ((qaq_u32x16)_mm512_ternarylogic_epi32( \
    (__m512i)(r), _mm512_srai_epi32((__m512i)(x), 31), _mm512_set1_epi32((int)(flip)), 0x78))
#else
#define QAQ_COUNT_LESS_(n, t, u) ((n) - (qaq_u32x16)((t) < (u)))
#define QAQ_FLIP_NEGATIVE_(r, x, flip) ((r) ^ ((qaq_u32x16)((qaq_i32x16_shim_)(x) >> 31) & (flip)))
#endif

/// (n + (t < u ? 1 : 0)) ^ (x < 0 ? flip : 0) per lane: the 4-bit code search by bins
/// (`codebookQuantizeH`), three instructions at AVX-512.
static inline __attribute__((always_inline)) qaq_u32x16 qaq_binned_code(qaq_u32x16 n, qaq_f32x16 t, qaq_f32x16 u,
                                                                        qaq_f32x16 x, uint32_t flip) {
    return QAQ_FLIP_NEGATIVE_(QAQ_COUNT_LESS_(n, t, u), x, flip);
}

/// (h + #{ j < count : t_j < u }) ^ (x < 0 ? flip : 0) per lane, count ∈ {1, 2, 3} (a constant
/// after inlining; t₂, t₃ unused below it): the code search by compares of the 2- and 3-bit
/// code maps (`codebookQuantizeH`), a compare and a masked add per threshold at AVX-512.
static inline __attribute__((always_inline)) qaq_u32x16 qaq_counted_code(qaq_f32x16 u, qaq_f32x16 t1, qaq_f32x16 t2,
                                                                         qaq_f32x16 t3, int count, qaq_f32x16 x,
                                                                         uint32_t h, uint32_t flip) {
    qaq_u32x16 r = QAQ_COUNT_LESS_((qaq_u32x16)h, t1, u);
    if (count > 1) r = QAQ_COUNT_LESS_(r, t2, u);
    if (count > 2) r = QAQ_COUNT_LESS_(r, t3, u);
    return QAQ_FLIP_NEGATIVE_(r, x, flip);
}

/// Pairwise sums of adjacent lanes: lanes 0…7 from `a`, lanes 8…15 from `b`
/// (r[i] = a[2i] + a[2i+1], r[8+i] = b[2i] + b[2i+1]). Written as two constant shuffles so
/// that every level gets its best two-source permute (`vpermt2ps` on AVX-512); Swift's
/// `evenHalf`/`oddHalf` over vectors in memory were lowered lane by lane.
static inline __attribute__((always_inline)) qaq_f32x16 qaq_pair_sums(qaq_f32x16 a, qaq_f32x16 b) {
    return __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)
         + __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
}

/// Block j (lanes 4j…4j+3) of the result, lane m, is Σ_L a_j[4L + m]: the four 128-bit
/// blocks of each of four heads' int32 dot lanes summed, one head per block (six
/// `vshufi32x4` and three adds at AVX-512; integer sums, exact).
static inline __attribute__((always_inline)) qaq_u32x16 qaq_sum_head_blocks(qaq_u32x16 a0, qaq_u32x16 a1, qaq_u32x16 a2, qaq_u32x16 a3) {
    qaq_u32x16 x = __builtin_shufflevector(a0, a1, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23)
                 + __builtin_shufflevector(a0, a1, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    qaq_u32x16 y = __builtin_shufflevector(a2, a3, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23)
                 + __builtin_shufflevector(a2, a3, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    return __builtin_shufflevector(x, y, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27)
         + __builtin_shufflevector(x, y, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
}

/// Lane 4b + j of the result is Σ_m f_j[4b + m]: per 128-bit block, the sums of the four
/// lanes of each of `f0`…`f3` (a transposing sum: four `vunpck{l,h}ps`, two
/// `vunpck{l,h}pd`, three adds).
static inline __attribute__((always_inline)) qaq_f32x16 qaq_sum_quads4(qaq_f32x16 f0, qaq_f32x16 f1, qaq_f32x16 f2, qaq_f32x16 f3) {
    qaq_f32x16 a = __builtin_shufflevector(f0, f1, 0, 16, 1, 17, 4, 20, 5, 21, 8, 24, 9, 25, 12, 28, 13, 29)
                 + __builtin_shufflevector(f0, f1, 2, 18, 3, 19, 6, 22, 7, 23, 10, 26, 11, 27, 14, 30, 15, 31);
    qaq_f32x16 c = __builtin_shufflevector(f2, f3, 0, 16, 1, 17, 4, 20, 5, 21, 8, 24, 9, 25, 12, 28, 13, 29)
                 + __builtin_shufflevector(f2, f3, 2, 18, 3, 19, 6, 22, 7, 23, 10, 26, 11, 27, 14, 30, 15, 31);
    return __builtin_shufflevector(a, c, 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29)
         + __builtin_shufflevector(a, c, 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31);
}

/// Declares `blk_[0…3]`, where block k of `blk_[j]` is block j of `fk`: a 4 × 4 transpose of
/// 128-bit blocks (two levels of `vshuff32x4`). (A macro: a C call passing 512-bit vectors would
/// change the ABI in the modules built without AVX-512.)
#define QAQ_BLOCKS4(f0, f1, f2, f3) \
    qaq_f32x16 t01lo_ = __builtin_shufflevector(f0, f1, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23); \
    qaq_f32x16 t23lo_ = __builtin_shufflevector(f2, f3, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23); \
    qaq_f32x16 t01hi_ = __builtin_shufflevector(f0, f1, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31); \
    qaq_f32x16 t23hi_ = __builtin_shufflevector(f2, f3, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31); \
    qaq_f32x16 blk_[4] = { \
        __builtin_shufflevector(t01lo_, t23lo_, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27), \
        __builtin_shufflevector(t01lo_, t23lo_, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31), \
        __builtin_shufflevector(t01hi_, t23hi_, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27), \
        __builtin_shufflevector(t01hi_, t23hi_, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31) }

/// Block k of the result is block `j` (0…3, a constant) of `f_k`: one output of
/// `QAQ_BLOCKS4` (the others are dropped once inlined).
static inline __attribute__((always_inline)) qaq_f32x16 qaq_block_column(qaq_f32x16 f0, qaq_f32x16 f1, qaq_f32x16 f2, qaq_f32x16 f3, int j) {
    QAQ_BLOCKS4(f0, f1, f2, f3);
    return blk_[j];
}

// MARK: - Integer-dot values (AttentionInt8Values.swift)

typedef uint8_t qaq_u8x64 __attribute__((ext_vector_type(64)));
typedef uint16_t qaq_u16x32 __attribute__((ext_vector_type(32)));

/// Output `j` (0…3, a constant) of the byte transpose of four tokens' code vectors: per
/// 128-bit block L, its 32-bit lane 4L + k holds byte k of lane 4L + j of `n0`, `n1`, `n2`,
/// `n3` (in that byte order). Two levels of interleaves (`vpunpck{l,h}bw`, then
/// `vpunpck{l,h}wd`); the four calls of one transpose share the first level once inlined.
static inline __attribute__((always_inline)) qaq_u32x16 qaq_bytes_4x4(qaq_u32x16 n0, qaq_u32x16 n1, qaq_u32x16 n2, qaq_u32x16 n3, int j) {
    qaq_u8x64 b0 = (qaq_u8x64)n0, b1 = (qaq_u8x64)n1, b2 = (qaq_u8x64)n2, b3 = (qaq_u8x64)n3;
#define QAQ_LO8 0, 64, 1, 65, 2, 66, 3, 67, 4, 68, 5, 69, 6, 70, 7, 71, 16, 80, 17, 81, 18, 82, 19, 83, 20, 84, 21, 85, 22, 86, 23, 87, \
                32, 96, 33, 97, 34, 98, 35, 99, 36, 100, 37, 101, 38, 102, 39, 103, 48, 112, 49, 113, 50, 114, 51, 115, 52, 116, 53, 117, 54, 118, 55, 119
#define QAQ_HI8 8, 72, 9, 73, 10, 74, 11, 75, 12, 76, 13, 77, 14, 78, 15, 79, 24, 88, 25, 89, 26, 90, 27, 91, 28, 92, 29, 93, 30, 94, 31, 95, \
                40, 104, 41, 105, 42, 106, 43, 107, 44, 108, 45, 109, 46, 110, 47, 111, 56, 120, 57, 121, 58, 122, 59, 123, 60, 124, 61, 125, 62, 126, 63, 127
#define QAQ_LO16 0, 32, 1, 33, 2, 34, 3, 35, 8, 40, 9, 41, 10, 42, 11, 43, 16, 48, 17, 49, 18, 50, 19, 51, 24, 56, 25, 57, 26, 58, 27, 59
#define QAQ_HI16 4, 36, 5, 37, 6, 38, 7, 39, 12, 44, 13, 45, 14, 46, 15, 47, 20, 52, 21, 53, 22, 54, 23, 55, 28, 60, 29, 61, 30, 62, 31, 63
    qaq_u32x16 r;
    if (j < 2) {
        qaq_u16x32 a = (qaq_u16x32)__builtin_shufflevector(b0, b1, QAQ_LO8), c = (qaq_u16x32)__builtin_shufflevector(b2, b3, QAQ_LO8);
        r = j == 0 ? (qaq_u32x16)__builtin_shufflevector(a, c, QAQ_LO16) : (qaq_u32x16)__builtin_shufflevector(a, c, QAQ_HI16);
    } else {
        qaq_u16x32 b = (qaq_u16x32)__builtin_shufflevector(b0, b1, QAQ_HI8), d = (qaq_u16x32)__builtin_shufflevector(b2, b3, QAQ_HI8);
        r = j == 2 ? (qaq_u32x16)__builtin_shufflevector(b, d, QAQ_LO16) : (qaq_u32x16)__builtin_shufflevector(b, d, QAQ_HI16);
    }
#undef QAQ_LO8
#undef QAQ_HI8
#undef QAQ_LO16
#undef QAQ_HI16
    return r;
}

/// The low bytes of four vectors' 32-bit lanes, transposed per 128-bit block: word k of
/// block h is bytes (u0, u1, u2, u3)[4h + k]. `pairs` (a constant): word k takes lane
/// 4h + (k & 1) instead, words 2 and 3 repeating 0 and 1 (the D = 64 weight bytes of
/// AttentionInt8Values.swift, built from rows of two tokens each). Lanes hold 0…255:
/// `vpackusdw`, `vpackuswb` and one `vpshufb` at AVX-512BW, a byte loop elsewhere.
static inline __attribute__((always_inline)) qaq_u32x16 qaq_pack_bytes_4x4(qaq_u32x16 u0, qaq_u32x16 u1, qaq_u32x16 u2, qaq_u32x16 u3, int pairs) {
#if defined(__AVX512BW__)
    __m512i p = _mm512_packus_epi16(_mm512_packus_epi32((__m512i)u0, (__m512i)u1), _mm512_packus_epi32((__m512i)u2, (__m512i)u3));
    const __m512i t = pairs ? _mm512_set4_epi32(0x0D090501, 0x0C080400, 0x0D090501, 0x0C080400)
                            : _mm512_set4_epi32(0x0F0B0703, 0x0E0A0602, 0x0D090501, 0x0C080400);
    return (qaq_u32x16)_mm512_shuffle_epi8(p, t);
#else
    qaq_u8x64 r;
    for (int i = 0; i < 64; i++) {
        int lane = 4 * (i >> 4) + ((i >> 2) & (pairs ? 1 : 3)), which = i & 3;
        qaq_u32x16 u = which == 0 ? u0 : which == 1 ? u1 : which == 2 ? u2 : u3;
        r[i] = (uint8_t)u[lane];
    }
    return (qaq_u32x16)r;
#endif
}

/// Declares `o0`…`o3`, where lane 4b + j of `ok` is lane 4b + k of `fj`: a 4 × 4 transpose of
/// 32-bit lanes within each 128-bit block. (A macro: a C call passing 512-bit vectors would
/// change the ABI in the modules built without AVX-512.)
#define QAQ_TRANSPOSE4(f0, f1, f2, f3) \
    qaq_f32x16 a01_ = __builtin_shufflevector(f0, f1, 0, 16, 1, 17, 4, 20, 5, 21, 8, 24, 9, 25, 12, 28, 13, 29); \
    qaq_f32x16 a23_ = __builtin_shufflevector(f2, f3, 0, 16, 1, 17, 4, 20, 5, 21, 8, 24, 9, 25, 12, 28, 13, 29); \
    qaq_f32x16 b01_ = __builtin_shufflevector(f0, f1, 2, 18, 3, 19, 6, 22, 7, 23, 10, 26, 11, 27, 14, 30, 15, 31); \
    qaq_f32x16 b23_ = __builtin_shufflevector(f2, f3, 2, 18, 3, 19, 6, 22, 7, 23, 10, 26, 11, 27, 14, 30, 15, 31); \
    qaq_f32x16 o[4] = { \
        __builtin_shufflevector(a01_, a23_, 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29), \
        __builtin_shufflevector(a01_, a23_, 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31), \
        __builtin_shufflevector(b01_, b23_, 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29), \
        __builtin_shufflevector(b01_, b23_, 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31) }

/// Four rows of 16 lanes stored token-major: `out[4t + h] = f_h[t]` (t = 0…15, h = 0…3), as a
/// 4 × 4 transpose of 32-bit lanes within each 128-bit block and one of the blocks, then four
/// full stores; unaligned.
static inline __attribute__((always_inline)) void qaq_store_columns4(float *out, qaq_f32x16 f0, qaq_f32x16 f1, qaq_f32x16 f2, qaq_f32x16 f3) {
    QAQ_TRANSPOSE4(f0, f1, f2, f3);
    // o[k] block b: (f0, f1, f2, f3)[4b + k], the four rows at column 4b + k; blk_[b] gathers
    // block b of o[0…3], columns 4b…4b+3 in order.
    QAQ_BLOCKS4(o[0], o[1], o[2], o[3]);
    for (int b = 0; b < 4; b++) __builtin_memcpy(out + 16 * b, &blk_[b], sizeof blk_[b]);
}

/// out[32k + l] += O_k[l] for k = 0…3, l = 0…15, where lane 4b + j of O_k is lane 4b + k of
/// `f_j` (a 4 × 4 transpose of 32-bit lanes within each 128-bit block); unaligned.
static inline __attribute__((always_inline)) void qaq_add_transposed4(float *out, qaq_f32x16 f0, qaq_f32x16 f1, qaq_f32x16 f2, qaq_f32x16 f3) {
    QAQ_TRANSPOSE4(f0, f1, f2, f3);
    for (int k = 0; k < 4; k++) {
        qaq_f32x16 v;
        __builtin_memcpy(&v, out + 32 * k, sizeof v);
        v += o[k];
        __builtin_memcpy(out + 32 * k, &v, sizeof v);
    }
}

/// out[o_k + l] += O_k[l] for lanes l < 8 and out[o_k + 8 + l] += O_k[l] for l ≥ 8, with O_k
/// as in ``qaq_add_transposed4``: at D = 64 with o = (0, 32, 8, 40), the element order of a
/// record's code bytes; the value sums of 2- and 3-bit code maps at D = 128 with (0, 64, 8,
/// 72) and (32, 96, 40, 104) (AttentionInt8Codebook.swift).
static inline __attribute__((always_inline)) void qaq_add_transposed4_split(float *out, qaq_f32x16 f0, qaq_f32x16 f1, qaq_f32x16 f2, qaq_f32x16 f3,
                                                                          int o0, int o1, int o2, int o3) {
    typedef float qaq_f32x8_ __attribute__((ext_vector_type(8)));
    const int offsets[4] = {o0, o1, o2, o3};
    QAQ_TRANSPOSE4(f0, f1, f2, f3);
    for (int k = 0; k < 4; k++) {
        qaq_f32x8_ lo, hi;
        __builtin_memcpy(&lo, out + offsets[k], sizeof lo);
        __builtin_memcpy(&hi, out + offsets[k] + 16, sizeof hi);
        lo += __builtin_shufflevector(o[k], o[k], 0, 1, 2, 3, 4, 5, 6, 7);
        hi += __builtin_shufflevector(o[k], o[k], 8, 9, 10, 11, 12, 13, 14, 15);
        __builtin_memcpy(out + offsets[k], &lo, sizeof lo);
        __builtin_memcpy(out + offsets[k] + 16, &hi, sizeof hi);
    }
}

/// Stores the low byte of each 32-bit lane of `v` (16 bytes) at `p`, unaligned (`vpmovdb`
/// at AVX-512).
static inline __attribute__((always_inline)) void qaq_store_low_bytes16(void *p, qaq_u32x16 v) {
    typedef uint8_t qaq_u8x16_ __attribute__((ext_vector_type(16)));
    qaq_u8x16_ b = __builtin_convertvector(v, qaq_u8x16_);
    __builtin_memcpy(p, &b, sizeof b);
}

#endif

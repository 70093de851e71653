// CQAQSupport: the one place QAQ reaches below Swift.
// CPU feature detection (cpuid via the compiler's __builtin_cpu_supports, which also
// checks that the OS saves the AVX/AVX-512 state) and thread pinning.
#ifndef CQAQSUPPORT_H
#define CQAQSUPPORT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Feature bits returned by qaq_cpu_features().
enum {
    QAQ_CPU_SSE42     = 1u << 0,
    QAQ_CPU_AVX       = 1u << 1,
    QAQ_CPU_AVX2      = 1u << 2,
    QAQ_CPU_FMA       = 1u << 3,
    QAQ_CPU_F16C      = 1u << 4,
    QAQ_CPU_BMI1      = 1u << 5,
    QAQ_CPU_BMI2      = 1u << 6,
    QAQ_CPU_LZCNT     = 1u << 7,
    QAQ_CPU_MOVBE     = 1u << 8,
    QAQ_CPU_AVX512F   = 1u << 9,
    QAQ_CPU_AVX512BW  = 1u << 10,
    QAQ_CPU_AVX512CD  = 1u << 11,
    QAQ_CPU_AVX512DQ  = 1u << 12,
    QAQ_CPU_AVX512VL  = 1u << 13,
    QAQ_CPU_AVX512VNNI = 1u << 14,
    QAQ_CPU_AVXVNNI   = 1u << 15,
    QAQ_CPU_AVX512BF16 = 1u << 16,
    QAQ_CPU_AVX512FP16 = 1u << 17,
    QAQ_CPU_POPCNT    = 1u << 18,
    QAQ_CPU_X86       = 1u << 31,
};

/// The CPU's feature bits (0 on non-x86 hosts).
uint32_t qaq_cpu_features(void);

/// The CPU's model string (x86: the cpuid brand string), written to `buffer`
/// (NUL-terminated, at most `capacity` bytes). Returns the length, or 0 if unknown.
int qaq_cpu_model(char *buffer, int capacity);

/// Pins the calling thread to logical CPU `cpu`. Returns 0 or an errno value.
int qaq_pin_current_thread(int cpu);

/// Number of logical CPUs in the calling thread's affinity mask (0 if unknown).
int qaq_affinity_cpu_count(void);

/// Hints that the 128 bytes at `p` will be read soon (two prefetches; never faults): the
/// decode loop's next page object, whose fields it would otherwise wait for.
static inline void qaq_prefetch_object(const void *p) {
    __builtin_prefetch(p, 0, 3);
    __builtin_prefetch((const char *)p + 64, 0, 3);
}

#ifdef __cplusplus
}
#endif

#endif

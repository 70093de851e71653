#include "CQAQSupport.h"

#include <errno.h>
#include <string.h>
#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

uint32_t qaq_cpu_features(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    uint32_t f = QAQ_CPU_X86;
    if (__builtin_cpu_supports("sse4.2")) f |= QAQ_CPU_SSE42;
    if (__builtin_cpu_supports("popcnt")) f |= QAQ_CPU_POPCNT;
    if (__builtin_cpu_supports("avx")) f |= QAQ_CPU_AVX;
    if (__builtin_cpu_supports("avx2")) f |= QAQ_CPU_AVX2;
    if (__builtin_cpu_supports("fma")) f |= QAQ_CPU_FMA;
    if (__builtin_cpu_supports("bmi")) f |= QAQ_CPU_BMI1;
    if (__builtin_cpu_supports("bmi2")) f |= QAQ_CPU_BMI2;
    if (__builtin_cpu_supports("avx512f")) f |= QAQ_CPU_AVX512F;
    if (__builtin_cpu_supports("avx512bw")) f |= QAQ_CPU_AVX512BW;
    if (__builtin_cpu_supports("avx512cd")) f |= QAQ_CPU_AVX512CD;
    if (__builtin_cpu_supports("avx512dq")) f |= QAQ_CPU_AVX512DQ;
    if (__builtin_cpu_supports("avx512vl")) f |= QAQ_CPU_AVX512VL;
    if (__builtin_cpu_supports("avx512vnni")) f |= QAQ_CPU_AVX512VNNI;
    if (__builtin_cpu_supports("avx512bf16")) f |= QAQ_CPU_AVX512BF16;
    if (__builtin_cpu_supports("avx512fp16")) f |= QAQ_CPU_AVX512FP16;
    if (__builtin_cpu_supports("avxvnni")) f |= QAQ_CPU_AVXVNNI;
    /* f16c, lzcnt and movbe are not names every compiler accepts: read cpuid. */
    unsigned a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d)) {
        if (c & (1u << 29)) f |= QAQ_CPU_F16C;
        if (c & (1u << 22)) f |= QAQ_CPU_MOVBE;
    }
    if (__get_cpuid(0x80000001u, &a, &b, &c, &d)) {
        if (c & (1u << 5)) f |= QAQ_CPU_LZCNT;
    }
    /* AVX state must be enabled by the OS for F16C/FMA to be usable. */
    if (!(f & QAQ_CPU_AVX)) f &= ~(uint32_t)(QAQ_CPU_F16C | QAQ_CPU_FMA);
    return f;
#else
    return 0;
#endif
}

int qaq_cpu_model(char *buffer, int capacity) {
    if (buffer == 0 || capacity <= 0) return 0;
    buffer[0] = 0;
#if defined(__x86_64__) || defined(__i386__)
    unsigned regs[12];
    unsigned maxExt = __get_cpuid_max(0x80000000u, 0);
    if (maxExt < 0x80000004u) return 0;
    for (unsigned i = 0; i < 3; i++) {
        __get_cpuid(0x80000002u + i, &regs[4 * i], &regs[4 * i + 1], &regs[4 * i + 2], &regs[4 * i + 3]);
    }
    char brand[49];
    memcpy(brand, regs, 48);
    brand[48] = 0;
    const char *s = brand;
    while (*s == ' ') s++;
    int n = (int)strlen(s);
    while (n > 0 && s[n - 1] == ' ') n--;
    if (n >= capacity) n = capacity - 1;
    memcpy(buffer, s, (size_t)n);
    buffer[n] = 0;
    return n;
#else
    return 0;
#endif
}

int qaq_pin_current_thread(int cpu) {
#if defined(__linux__)
    if (cpu < 0 || cpu >= CPU_SETSIZE) return EINVAL;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
#else
    (void)cpu;
    return ENOTSUP;
#endif
}

int qaq_affinity_cpu_count(void) {
#if defined(__linux__)
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return 0;
    return CPU_COUNT(&set);
#else
    return 0;
#endif
}

/* Run-time choice of SIMD kernels, made once. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "math/ntt.h"

static const ntt_kernels kernel_table[SIMD_LEVEL_COUNT] = {
    {"portable", SIMD_PORTABLE, ntt_forward_portable, ntt_inverse_portable},
#if defined(__x86_64__)
    {"avx2", SIMD_AVX2, ntt_forward_avx2, ntt_inverse_avx2},
    {"avx512", SIMD_AVX512, ntt_forward_avx512, ntt_inverse_avx512},
    {"avx512ifma", SIMD_AVX512IFMA, ntt_forward_avx512ifma, ntt_inverse_avx512ifma},
#endif
};

simd_level simd_cpu_level(void)
{
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl")) {
        if (__builtin_cpu_supports("avx512ifma")) return SIMD_AVX512IFMA;
        return SIMD_AVX512;
    }
    if (__builtin_cpu_supports("avx2")) return SIMD_AVX2;
#endif
    return SIMD_PORTABLE;
}

const ntt_kernels *ntt_kernels_for(simd_level level)
{
#if !defined(__x86_64__)
    if (level != SIMD_PORTABLE) return NULL;
#endif
    if (level >= SIMD_LEVEL_COUNT || level > simd_cpu_level()) return NULL;
    return &kernel_table[level];
}

static const ntt_kernels *active;
static pthread_once_t active_once = PTHREAD_ONCE_INIT;

static void choose_kernels(void)
{
    simd_level level = simd_cpu_level();
    const char *force = getenv("HECNN_FORCE_ISA");
    if (force && *force) {
        for (int l = 0; l < SIMD_LEVEL_COUNT; l++)
            if (!strcmp(force, kernel_table[l].name) && (simd_level)l < level) level = (simd_level)l;
    }
    active = &kernel_table[level];
}

const ntt_kernels *ntt_kernels_active(void)
{
    pthread_once(&active_once, choose_kernels);
    return active;
}

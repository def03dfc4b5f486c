/* Negacyclic NTT over Z_q[X]/(X^n + 1), n a power of two, q = 1 mod 2n, q < 2^62.
 *
 * Forward: natural-order coefficients in [0, q) -> evaluations at psi^(2*brv(i)+1) in
 * bit-reversed order, in [0, q). Inverse: the exact inverse (scaling by n^-1 included).
 * Every SIMD kernel produces bit-identical outputs to the portable one. */
#ifndef HECNN_MATH_NTT_H
#define HECNN_MATH_NTT_H

#include <stddef.h>
#include <stdint.h>

#include "math/modarith.h"

typedef struct ntt_table {
    modulus mod;
    size_t n;
    unsigned log_n;
    uint64_t psi;            /* primitive 2n-th root of unity */
    uint64_t *fwd;           /* fwd[k] = psi^brv(k), k in [1, n) */
    uint64_t *fwd_shoup;     /* floor(fwd[k] * 2^64 / q) */
    uint64_t *inv;           /* inv[k] = psi^-brv(k) */
    uint64_t *inv_shoup;
    uint64_t n_inv, n_inv_shoup;
    /* IFMA52 (q < 2^50 only, else NULL): floor(w * 2^52 / q) */
    uint64_t *fwd_shoup52, *inv_shoup52;
    uint64_t n_inv_shoup52;
    /* inv[1] * n^-1 mod q with its Shoup constants (52-bit one 0 unless q < 2^50): the twiddle
     * of the last inverse stage with the n^-1 scaling folded in, for the SIMD kernels */
    uint64_t inv1_n_inv, inv1_n_inv_shoup, inv1_n_inv_shoup52;
} ntt_table;

/* 0 on success, -1 on allocation failure or unsuitable q. */
int ntt_table_init(ntt_table *t, uint64_t q, unsigned log_n);
void ntt_table_free(ntt_table *t);

typedef enum simd_level {
    SIMD_PORTABLE = 0,
    SIMD_AVX2 = 1,
    SIMD_AVX512 = 2,      /* AVX-512F + DQ */
    SIMD_AVX512IFMA = 3,  /* plus IFMA52: used for q < 2^50 */
    SIMD_LEVEL_COUNT
} simd_level;

typedef struct ntt_kernels {
    const char *name;
    simd_level level;
    void (*forward)(const ntt_table *t, uint64_t *a);
    void (*inverse)(const ntt_table *t, uint64_t *a);
} ntt_kernels;

/* The kernels chosen once for this CPU; HECNN_FORCE_ISA=portable|avx2|avx512|avx512ifma
 * lowers the choice (never raises it above what the CPU supports). */
const ntt_kernels *ntt_kernels_active(void);
/* A specific level's kernels, or NULL when this CPU (or build) lacks it: for tests. */
const ntt_kernels *ntt_kernels_for(simd_level level);
/* Highest level the CPU supports. */
simd_level simd_cpu_level(void);

static inline void ntt_forward(const ntt_table *t, uint64_t *a) { ntt_kernels_active()->forward(t, a); }
static inline void ntt_inverse(const ntt_table *t, uint64_t *a) { ntt_kernels_active()->inverse(t, a); }

/* Portable reference kernels (also the fallback of the SIMD files). */
void ntt_forward_portable(const ntt_table *t, uint64_t *a);
void ntt_inverse_portable(const ntt_table *t, uint64_t *a);

/* SIMD kernels, defined in ntt_avx2.c / ntt_avx512.c (compiled with per-file target flags). */
void ntt_forward_avx2(const ntt_table *t, uint64_t *a);
void ntt_inverse_avx2(const ntt_table *t, uint64_t *a);
void ntt_forward_avx512(const ntt_table *t, uint64_t *a);
void ntt_inverse_avx512(const ntt_table *t, uint64_t *a);
void ntt_forward_avx512ifma(const ntt_table *t, uint64_t *a);
void ntt_inverse_avx512ifma(const ntt_table *t, uint64_t *a);

#endif

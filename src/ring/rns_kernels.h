/* Vector kernels of the RNS layer: basis conversion, the key-switching inner product, the CKKS
 * tensor product and limb-wise modular arithmetic. Like the NTT kernels, one table per SIMD level
 * (portable in rns.c, avx2 in rns_avx2.c, avx512 / avx512ifma in rns_avx512.c), chosen once from
 * the NTT's choice (so HECNN_FORCE_ISA applies to both). Every kernel returns fully reduced
 * residues, so every level is bit-identical to the portable one; where a vector path does not
 * apply (a prime above its bound, a short tail) a kernel falls back to the scalar code below.
 *
 * Vector arithmetic used (see rns_avx512.c for the details):
 *  - IFMA52 (avx512ifma level, primes below 2^50, or 2^52 for a basis-conversion target):
 *    products as 52-bit halves (vpmadd52{lo,hi}uq), Montgomery reduction in radix 2^52,
 *    Shoup with 52-bit constants, Barrett as in mul_mod.
 *  - 30-bit limbs (avx512 and avx2 levels, and the 60-bit primes at every level): a and b below
 *    2^60 split as a0 + a1 2^30, so that the four _mm*_mul_epu32 partial products (< 2^60) can be
 *    summed over up to 7 terms in 64-bit lanes; Montgomery reduction in radix 2^30. */
#ifndef HECNN_RING_RNS_KERNELS_H
#define HECNN_RING_RNS_KERNELS_H

#include <stdbool.h>

#include "math/ntt.h"
#include "ring/rns.h"

/* Basis conversion works on blocks of coefficients: each kernel keeps [x_i (Q/q_i)^-1]_{q_i} for
 * the block (in.limbs x block words, and for the 30-bit kernels two split copies) in L1. */
#define RNS_BC_WORDS 4096
#define RNS_BC_MAX_BLOCK 128
static inline size_t rns_bc_block(size_t in_limbs)
{
    size_t b = RNS_BC_WORDS / (in_limbs ? in_limbs : 1);
    b = b > RNS_BC_MAX_BLOCK ? RNS_BC_MAX_BLOCK : b & ~(size_t)7;
    return b ? b : 1; /* in.limbs <= RNS_MAX_LIMBS = 128: b >= 32 */
}

/* Precomputed constants beyond rns.h's, stored after the documented arrays of a baseconv:
 *  hat_inv[in.limbs + i]: floor(hat_inv[i] 2^52 / q_i) when q_i < 2^50 (IFMA Shoup), else 0;
 *  hat_mod[I*O + i*O + k]: [Q/q_i 2^104 f]_{t_k} (IFMA Montgomery, R = 2^104);
 *  hat_mod[2*I*O + i*O + k]: [Q/q_i 2^90 f]_{t_k} (30-bit Montgomery, R = 2^90);
 * with I = in.limbs, O = out.limbs and f = 2^64 for times_r, else 1. */
static inline const uint64_t *bc_hat_inv_shoup52(const baseconv *bc) { return bc->hat_inv + bc->in.limbs; }
static inline const uint64_t *bc_hat_mod104(const baseconv *bc) { return bc->hat_mod + bc->in.limbs * bc->out.limbs; }
static inline const uint64_t *bc_hat_mod90(const baseconv *bc) { return bc->hat_mod + 2 * bc->in.limbs * bc->out.limbs; }

typedef struct rns_kernels {
    const char *name;
    simd_level level;
    /* One limb of n coefficients; inputs in [0, q) unless said otherwise, outputs in [0, q);
     * out may alias an input. */
    void (*add)(uint64_t *out, const uint64_t *x, const uint64_t *y, size_t n, uint64_t q);
    void (*sub)(uint64_t *out, const uint64_t *x, const uint64_t *y, size_t n, uint64_t q);
    /* out = x * y */
    void (*mul)(uint64_t *out, const uint64_t *x, const uint64_t *y, size_t n, const modulus *m);
    /* out = x * w, w < q, wp = shoup_precompute(w, q) */
    void (*mul_scalar)(uint64_t *out, const uint64_t *x, size_t n, uint64_t w, uint64_t wp, uint64_t q);
    /* out = (x - y) * w: the last step of ModDown and of rescaling */
    void (*sub_mul_scalar)(uint64_t *out, const uint64_t *x, const uint64_t *y, size_t n, uint64_t w, uint64_t wp,
                           uint64_t q);
    /* The degree-2 tensor product d0 = a0 b0, d1 = a0 b1 + a1 b0, d2 = a1 b1. */
    void (*tensor)(uint64_t *d0, uint64_t *d1, uint64_t *d2, const uint64_t *a0, const uint64_t *a1,
                   const uint64_t *b0, const uint64_t *b1, size_t n, const modulus *m);
    /* Key-switching inner product of count <= REDC_TERMS digits:
     * r0 = REDC(sum_j x[j] k0[j]), r1 = REDC(sum_j x[j] k1[j]) (x * 2^-64 mod q), then
     * out = r or out + r (accumulate). x[j] < q, k[j] < q. */
    void (*ip_redc)(uint64_t *out0, uint64_t *out1, const uint64_t *const *x, const uint64_t *const *k0,
                    const uint64_t *const *k1, unsigned count, size_t n, const modulus *m, bool accumulate);
    /* Rescaling by q_l: v (< 2^62, coefficients mod q_l) -> [v]_q, minus [q_l]_q where v > q_l / 2
     * (the centered lift). */
    void (*rescale_lift)(uint64_t *out, const uint64_t *v, size_t n, uint64_t ql, const modulus *m);
    /* out[i] = src[perm[i]] (perm[i] < n); out must not alias src. Fast for the Galois
     * permutations of the NTT layout, which map every aligned block of 8 slots onto one. */
    void (*permute)(uint64_t *out, const uint64_t *src, const size_t *perm, size_t n);
    /* Coefficients [c0, c0 + len) of a basis conversion to the first n_out output limbs;
     * len <= rns_bc_block(bc->in.limbs). */
    void (*baseconv_block)(const baseconv *bc, uint64_t *out, const uint64_t *in, size_t n_out, size_t c0, size_t len);
    /* out = x - table[idx] (idx[i] < RNS_LOOKUP_ENTRIES, table entries < q): ModDown's correction */
    void (*sub_lookup)(uint64_t *out, const uint64_t *x, const uint8_t *idx, const uint64_t *table, size_t n, uint64_t q);
} rns_kernels;
#define RNS_LOOKUP_ENTRIES 16

/* The kernels of the NTT's level (ntt_kernels_active()). */
const rns_kernels *rns_kernels_active(void);
/* A specific level's kernels, or NULL when this CPU (or build) lacks it: for tests. */
const rns_kernels *rns_kernels_for(simd_level level);

/* Portable kernels (rns.c), also the fallbacks of the SIMD files. */
void rns_add_portable(uint64_t *out, const uint64_t *x, const uint64_t *y, size_t n, uint64_t q);
void rns_sub_portable(uint64_t *out, const uint64_t *x, const uint64_t *y, size_t n, uint64_t q);
void rns_mul_portable(uint64_t *out, const uint64_t *x, const uint64_t *y, size_t n, const modulus *m);
void rns_mul_scalar_portable(uint64_t *out, const uint64_t *x, size_t n, uint64_t w, uint64_t wp, uint64_t q);
void rns_sub_mul_scalar_portable(uint64_t *out, const uint64_t *x, const uint64_t *y, size_t n, uint64_t w,
                                 uint64_t wp, uint64_t q);
void rns_tensor_portable(uint64_t *d0, uint64_t *d1, uint64_t *d2, const uint64_t *a0, const uint64_t *a1,
                         const uint64_t *b0, const uint64_t *b1, size_t n, const modulus *m);
void rns_ip_redc_portable(uint64_t *out0, uint64_t *out1, const uint64_t *const *x, const uint64_t *const *k0,
                          const uint64_t *const *k1, unsigned count, size_t n, const modulus *m, bool accumulate);
void rns_rescale_lift_portable(uint64_t *out, const uint64_t *v, size_t n, uint64_t ql, const modulus *m);
void rns_permute_portable(uint64_t *out, const uint64_t *src, const size_t *perm, size_t n);
void rns_baseconv_block_portable(const baseconv *bc, uint64_t *out, const uint64_t *in, size_t n_out, size_t c0,
                                 size_t len);
void rns_sub_lookup_portable(uint64_t *out, const uint64_t *x, const uint8_t *idx, const uint64_t *table, size_t n,
                             uint64_t q);

/* SIMD tables (rns_avx2.c, rns_avx512.c). */
extern const rns_kernels rns_kernels_avx2, rns_kernels_avx512, rns_kernels_avx512ifma;

/* Terms per Montgomery reduction for the 30-bit-piece kernels, sources below 2^60 with
 * y >> 30 <= y1max, target t < 2^60: with M = 2^30 - 1, the digit sums of K terms plus the
 * reduction's own products stay below 2^64 while
 *   D0: (K + 1) M^2 < 2^64, and D1: K M (y1max + (t - 1) >> 30) + 2 M^2 + 2^34 < 2^64. */
static inline size_t rns_bc_terms30(uint64_t y1max, uint64_t t)
{
    const u128 M = ((u128)1 << 30) - 1, per = M * (y1max + ((t - 1) >> 30)), limit = (u128)1 << 64;
    size_t k = 15;
    while (k > 1 && (u128)k * per + 2 * M * M + ((u128)1 << 34) >= limit) k--;
    return k;
}

/* Scalar pieces shared by every level. */

/* y[c] = [x[c] * hat_inv_i]_{q_i} for c in [from, to). */
static inline void rns_bc_scalar_y(const baseconv *bc, uint64_t *y, const uint64_t *x, size_t i, size_t from, size_t to)
{
    const uint64_t q = bc->in.tab[i]->mod.q, w = bc->hat_inv[i], wp = bc->hat_inv_shoup[i];
    for (size_t c = from; c < to; c++) y[c] = mul_shoup(x[c], w, wp, q);
}

/* o[c] = sum_i y[i * stride + c] * hat_mod[i][k] reduced, for c in [from, to): sums of at most
 * REDC_TERMS products, one Montgomery reduction each (hat_mod carries the 2^64). */
static inline void rns_bc_scalar_out(const baseconv *bc, uint64_t *o, const uint64_t *y, size_t stride, size_t k,
                                     size_t from, size_t to)
{
    const modulus *m = &bc->out.tab[k]->mod;
    const size_t ni = bc->in.limbs, no = bc->out.limbs;
    const uint64_t *h = bc->hat_mod + k;
    size_t c = from;
    for (; c + 4 <= to; c += 4) {
        uint64_t r[4] = {0, 0, 0, 0};
        for (size_t i0 = 0; i0 < ni; i0 += REDC_TERMS) {
            const size_t i1 = i0 + REDC_TERMS < ni ? i0 + REDC_TERMS : ni;
            u128 a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            for (size_t i = i0; i < i1; i++) {
                const uint64_t hi = h[i * no], *yi = y + i * stride + c;
                a0 += (u128)yi[0] * hi;
                a1 += (u128)yi[1] * hi;
                a2 += (u128)yi[2] * hi;
                a3 += (u128)yi[3] * hi;
            }
            r[0] = add_mod(r[0], redc128(a0, m), m->q);
            r[1] = add_mod(r[1], redc128(a1, m), m->q);
            r[2] = add_mod(r[2], redc128(a2, m), m->q);
            r[3] = add_mod(r[3], redc128(a3, m), m->q);
        }
        o[c] = r[0], o[c + 1] = r[1], o[c + 2] = r[2], o[c + 3] = r[3];
    }
    for (; c < to; c++) {
        uint64_t r = 0;
        for (size_t i0 = 0; i0 < ni; i0 += REDC_TERMS) {
            const size_t i1 = i0 + REDC_TERMS < ni ? i0 + REDC_TERMS : ni;
            u128 a = 0;
            for (size_t i = i0; i < i1; i++) a += (u128)y[i * stride + c] * h[i * no];
            r = add_mod(r, redc128(a, m), m->q);
        }
        o[c] = r;
    }
}

/* One coefficient of the inner product (the scalar definition). */
static inline void rns_ip_scalar(uint64_t *out0, uint64_t *out1, const uint64_t *const *x, const uint64_t *const *k0,
                                 const uint64_t *const *k1, unsigned count, size_t i, const modulus *m, bool accumulate)
{
    u128 s0 = 0, s1 = 0;
    for (unsigned j = 0; j < count; j++) {
        s0 += (u128)x[j][i] * k0[j][i];
        s1 += (u128)x[j][i] * k1[j][i];
    }
    const uint64_t r0 = redc128(s0, m), r1 = redc128(s1, m);
    out0[i] = accumulate ? add_mod(out0[i], r0, m->q) : r0;
    out1[i] = accumulate ? add_mod(out1[i], r1, m->q) : r1;
}

static inline uint64_t rns_tensor_d1_scalar(uint64_t x0, uint64_t x1, uint64_t y0, uint64_t y1, const modulus *m)
{
    return reduce128((u128)x0 * y1 + (u128)x1 * y0, m);
}

static inline uint64_t rns_rescale_lift_scalar(uint64_t v, uint64_t ql, uint64_t ql_mod, const modulus *m)
{
    const uint64_t r = reduce64(v, m);
    return v > ql / 2 ? sub_mod(r, ql_mod, m->q) : r;
}

#endif

/* AVX-512 RNS kernels: 8 lanes of 64 bits. Two tables share the code (a compile-time `ifma`
 * selects the back end, as in ntt_avx512.c):
 *  - avx512 (F + DQ): products of residues below 2^60 from 30-bit halves (_mm512_mul_epu32),
 *    Montgomery reduction in radix 2^30 (rns_emul30.h); Shoup with an estimated 64-bit high
 *    product.
 *  - avx512ifma: for primes below 2^50 (basis-conversion targets: 2^52), 52-bit halves from
 *    vpmadd52{lo,hi}uq, Montgomery reduction in radix 2^52, 52-bit Shoup and Barrett; the other
 *    primes (the 60-bit ones) take the avx512 path.
 * Primes of 61 bits and short tails use the scalar code of rns_kernels.h. Every output is fully
 * reduced, hence equal to the portable kernels'. */
#include <immintrin.h>
#include <stdint.h>

#include "ring/rns_kernels.h"

#define AI static inline __attribute__((always_inline))
#define BIT(k) ((uint64_t)1 << (k))
#define ALIGNED __attribute__((aligned(64)))

AI __m512i ld(const uint64_t *p) { return _mm512_loadu_si512((const void *)p); }
AI void st(uint64_t *p, __m512i v) { _mm512_storeu_si512((void *)p, v); }
/* Store, non-temporal when nt (p 64-byte aligned): for outputs far larger than the caches, it
 * saves reading every line before writing it. */
AI void put(uint64_t *p, __m512i v, int nt)
{
    if (nt) _mm512_stream_si512((void *)p, v);
    else _mm512_storeu_si512((void *)p, v);
}
AI __m512i set1(uint64_t v) { return _mm512_set1_epi64((long long)v); }
AI __m512i add(__m512i a, __m512i b) { return _mm512_add_epi64(a, b); }
AI __m512i sub(__m512i a, __m512i b) { return _mm512_sub_epi64(a, b); }
AI __m512i mul32(__m512i a, __m512i b) { return _mm512_mul_epu32(a, b); }
AI __m512i lo52(__m512i acc, __m512i a, __m512i b) { return _mm512_madd52lo_epu64(acc, a, b); }
AI __m512i hi52(__m512i acc, __m512i a, __m512i b) { return _mm512_madd52hi_epu64(acc, a, b); }
/* a mod b for a in [0, 2b) */
AI __m512i csub(__m512i a, __m512i b) { return _mm512_min_epu64(a, _mm512_sub_epi64(a, b)); }

typedef __m512i vec;
#define VL 8
AI vec vand(vec a, vec b) { return _mm512_and_si512(a, b); }
#define srli(a, k) _mm512_srli_epi64(a, k)

/* Estimate of floor(a b / 2^64), low by at most 2; bh = b >> 32. */
AI __m512i mulhi64_est(__m512i a, __m512i b, __m512i bh)
{
    const __m512i ah = _mm512_srli_epi64(a, 32);
    const __m512i p01 = _mm512_mul_epu32(a, bh);
    const __m512i p10 = _mm512_mul_epu32(ah, b);
    const __m512i p11 = _mm512_mul_epu32(ah, bh);
    return add(p11, add(_mm512_srli_epi64(p01, 32), _mm512_srli_epi64(p10, 32)));
}

/* A fixed multiplier w < q with its Shoup constants. */
typedef struct vshoup {
    __m512i w, wp, wph; /* wp = floor(w 2^64 / q) (or 2^52 for IFMA), wph = wp >> 32 */
    __m512i q, q2, negq52, mask52;
} vshoup;

/* wp: floor(w 2^64 / q), or floor(w 2^52 / q) for IFMA */
static inline vshoup shoup_make(uint64_t w, uint64_t wp, uint64_t q)
{
    vshoup s;
    s.w = set1(w);
    s.wp = set1(wp);
    s.wph = set1(wp >> 32);
    s.q = set1(q);
    s.q2 = set1(2 * q);
    s.negq52 = set1(BIT(52) - q);
    s.mask52 = set1(BIT(52) - 1);
    return s;
}

/* a w mod q in [0, q). IFMA (q < 2^50): a < 2^52; else any a < 2^64 (q < 2^62). */
AI __m512i shoup(const int ifma, __m512i a, const vshoup *s)
{
    if (ifma) {
        const __m512i z = _mm512_setzero_si512();
        const __m512i qh = hi52(z, a, s->wp);
        __m512i r = lo52(z, a, s->w);
        r = _mm512_and_si512(lo52(r, qh, s->negq52), s->mask52); /* [0, 2q) */
        return csub(r, s->q);
    }
    /* quotient low by at most 1 (Shoup) + 2 (estimate): [0, 4q) */
    const __m512i qh = mulhi64_est(a, s->wp, s->wph);
    const __m512i r = sub(_mm512_mullo_epi64(a, s->w), _mm512_mullo_epi64(qh, s->q));
    return csub(csub(r, s->q2), s->q);
}

/* 2^-4 mod t by Shoup (any V < 2^64): shorter than four halvings with vpmullq at hand */
typedef vshoup fix_2m4_consts;
static inline fix_2m4_consts fix_2m4_make(const modulus *m)
{
    const uint64_t half = (m->q + 1) / 2, inv16 = mul_mod(mul_mod(half, half, m), mul_mod(half, half, m), m);
    return shoup_make(inv16, shoup_precompute(inv16, m->q), m->q);
}
AI vec fix_2m4(vec V, const fix_2m4_consts *f) { return shoup(0, V, f); }

#include "ring/rns_emul30.h"

/* ---------------------------------------------------------------- limb-wise */

static void add_avx512(uint64_t *out, const uint64_t *x, const uint64_t *y, size_t n, uint64_t q)
{
    const __m512i Q = set1(q);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) st(out + i, csub(add(ld(x + i), ld(y + i)), Q));
    rns_add_portable(out + i, x + i, y + i, n - i, q);
}

static void sub_avx512(uint64_t *out, const uint64_t *x, const uint64_t *y, size_t n, uint64_t q)
{
    const __m512i Q = set1(q);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) st(out + i, csub(add(sub(ld(x + i), ld(y + i)), Q), Q));
    rns_sub_portable(out + i, x + i, y + i, n - i, q);
}

/* The 16-entry table lives in two registers; vpermt2q picks an entry per lane. */
static void sub_lookup_avx512(uint64_t *out, const uint64_t *x, const uint8_t *idx, const uint64_t *table, size_t n,
                              uint64_t q)
{
    const __m512i Q = set1(q), lo = ld(table), hi = ld(table + 8);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m512i j = _mm512_cvtepu8_epi64(_mm_loadl_epi64((const __m128i *)(idx + i)));
        const __m512i t = _mm512_permutex2var_epi64(lo, j, hi);
        st(out + i, csub(add(sub(ld(x + i), t), Q), Q));
    }
    rns_sub_lookup_portable(out + i, x + i, idx + i, table, n - i, q);
}

AI void mul_scalar_impl(const int ifma, uint64_t *out, const uint64_t *x, size_t n, uint64_t w, uint64_t wp, uint64_t q)
{
    const vshoup s = shoup_make(w, ifma ? (uint64_t)(((u128)w << 52) / q) : wp, q);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) st(out + i, shoup(ifma, ld(x + i), &s));
    rns_mul_scalar_portable(out + i, x + i, n - i, w, wp, q);
}

AI void sub_mul_scalar_impl(const int ifma, uint64_t *out, const uint64_t *x, const uint64_t *y, size_t n, uint64_t w,
                            uint64_t wp, uint64_t q)
{
    const vshoup s = shoup_make(w, ifma ? (uint64_t)(((u128)w << 52) / q) : wp, q);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) st(out + i, shoup(ifma, add(sub(ld(x + i), ld(y + i)), s.q), &s)); /* x - y + q < 2q */
    rns_sub_mul_scalar_portable(out + i, x + i, y + i, n - i, w, wp, q);
}

static void mul_scalar_avx512(uint64_t *out, const uint64_t *x, size_t n, uint64_t w, uint64_t wp, uint64_t q)
{
    mul_scalar_impl(0, out, x, n, w, wp, q);
}

static void mul_scalar_ifma(uint64_t *out, const uint64_t *x, size_t n, uint64_t w, uint64_t wp, uint64_t q)
{
    if (q < BIT(50)) mul_scalar_impl(1, out, x, n, w, wp, q);
    else mul_scalar_impl(0, out, x, n, w, wp, q);
}

static void sub_mul_scalar_avx512(uint64_t *out, const uint64_t *x, const uint64_t *y, size_t n, uint64_t w,
                                  uint64_t wp, uint64_t q)
{
    sub_mul_scalar_impl(0, out, x, y, n, w, wp, q);
}

static void sub_mul_scalar_ifma(uint64_t *out, const uint64_t *x, const uint64_t *y, size_t n, uint64_t w,
                                uint64_t wp, uint64_t q)
{
    if (q < BIT(50)) sub_mul_scalar_impl(1, out, x, y, n, w, wp, q);
    else sub_mul_scalar_impl(0, out, x, y, n, w, wp, q);
}

/* ---------------------------------------------------------------- IFMA Barrett (q < 2^50) */

/* mul_mod's Barrett in 52-bit pieces: for P = phi 2^52 + plo (plo < 2^53) below 2 q^2,
 * top = floor(P / 2^(L-1)) < 2^52, qhat = floor(top mu / 2^(L+1)) is at most 3 below P / q
 * (2 for P < q^2), so P - qhat q in [0, 4q) is computed mod 2^52. */
typedef struct vbarrett {
    __m512i q, q2, negq52, mask52, mu;
    __m128i top_hi, top_lo, qh_hi, qh_lo; /* shift counts 53 - L, L - 1, 51 - L, L + 1 */
} vbarrett;

static inline vbarrett barrett_make(const modulus *m)
{
    vbarrett b;
    const unsigned L = m->bits;
    b.q = set1(m->q);
    b.q2 = set1(2 * m->q);
    b.negq52 = set1(BIT(52) - m->q);
    b.mask52 = set1(BIT(52) - 1);
    b.mu = set1(m->mu);
    b.top_hi = _mm_cvtsi32_si128((int)(53 - L));
    b.top_lo = _mm_cvtsi32_si128((int)(L - 1));
    b.qh_hi = _mm_cvtsi32_si128((int)(51 - L));
    b.qh_lo = _mm_cvtsi32_si128((int)(L + 1));
    return b;
}

AI __m512i barrett52(__m512i plo, __m512i phi, const vbarrett *b)
{
    const __m512i z = _mm512_setzero_si512();
    const __m512i top = add(_mm512_sll_epi64(phi, b->top_hi), _mm512_srl_epi64(plo, b->top_lo));
    const __m512i tlo = lo52(z, top, b->mu), thi = hi52(z, top, b->mu);
    const __m512i qh = add(_mm512_sll_epi64(thi, b->qh_hi), _mm512_srl_epi64(tlo, b->qh_lo));
    const __m512i r = _mm512_and_si512(lo52(plo, qh, b->negq52), b->mask52);
    return csub(csub(r, b->q2), b->q);
}

static void mul_avx512(uint64_t *out, const uint64_t *x, const uint64_t *y, size_t n, const modulus *m)
{
    if (m->q < BIT(60)) mul_emul(out, x, y, n, m);
    else rns_mul_portable(out, x, y, n, m);
}

static void tensor_avx512(uint64_t *d0, uint64_t *d1, uint64_t *d2, const uint64_t *a0, const uint64_t *a1,
                          const uint64_t *b0, const uint64_t *b1, size_t n, const modulus *m)
{
    if (m->q < BIT(60)) tensor_emul(d0, d1, d2, a0, a1, b0, b1, n, m);
    else rns_tensor_portable(d0, d1, d2, a0, a1, b0, b1, n, m);
}

static void mul_ifma(uint64_t *out, const uint64_t *x, const uint64_t *y, size_t n, const modulus *m)
{
    if (m->q >= BIT(50)) {
        mul_avx512(out, x, y, n, m);
        return;
    }
    size_t i = 0;
    {
        const vbarrett b = barrett_make(m);
        const __m512i z = _mm512_setzero_si512();
        for (; i + 8 <= n; i += 8) {
            const __m512i X = ld(x + i), Y = ld(y + i);
            st(out + i, barrett52(lo52(z, X, Y), hi52(z, X, Y), &b));
        }
    }
    rns_mul_portable(out + i, x + i, y + i, n - i, m);
}

static void tensor_ifma(uint64_t *d0, uint64_t *d1, uint64_t *d2, const uint64_t *a0, const uint64_t *a1,
                        const uint64_t *b0, const uint64_t *b1, size_t n, const modulus *m)
{
    if (m->q >= BIT(50)) {
        tensor_avx512(d0, d1, d2, a0, a1, b0, b1, n, m);
        return;
    }
    size_t i = 0;
    {
        const vbarrett b = barrett_make(m);
        const __m512i z = _mm512_setzero_si512();
        for (; i + 8 <= n; i += 8) {
            const __m512i X0 = ld(a0 + i), X1 = ld(a1 + i), Y0 = ld(b0 + i), Y1 = ld(b1 + i);
            st(d0 + i, barrett52(lo52(z, X0, Y0), hi52(z, X0, Y0), &b));
            st(d1 + i, barrett52(lo52(lo52(z, X0, Y1), X1, Y0), hi52(hi52(z, X0, Y1), X1, Y0), &b));
            st(d2 + i, barrett52(lo52(z, X1, Y1), hi52(z, X1, Y1), &b));
        }
    }
    rns_tensor_portable(d0 + i, d1 + i, d2 + i, a0 + i, a1 + i, b0 + i, b1 + i, n - i, m);
}

/* ---------------------------------------------------------------- Montgomery reductions */

/* S = D0 + D1 2^52 + D2 2^104 (64-bit digit sums) -> S 2^-104 mod t in [0, t), t < 2^52, when
 * S 2^-104 < t (the result before the subtraction is below S 2^-104 + t). */
AI __m512i redc104(__m512i D0, __m512i D1, __m512i D2, __m512i T, __m512i NINV)
{
    const __m512i z = _mm512_setzero_si512();
    __m512i m = lo52(z, D0, NINV);
    D0 = lo52(D0, m, T); /* = 0 mod 2^52 */
    D1 = hi52(add(D1, _mm512_srli_epi64(D0, 52)), m, T);
    m = lo52(z, D1, NINV);
    D1 = lo52(D1, m, T);
    D2 = hi52(add(D2, _mm512_srli_epi64(D1, 52)), m, T);
    return csub(D2, T);
}

/* S = D0 + D1 2^52 with S < 7 t^2, t < 2^50 -> S 2^-64 mod t in [0, t): one step of radix
 * 2^52, then one of radix 2^12 (m1 t < 2^62 from vpmullq). */
AI __m512i redc64_52(__m512i D0, __m512i D1, __m512i T, __m512i NINV, __m512i M12)
{
    const __m512i z = _mm512_setzero_si512();
    __m512i m = lo52(z, D0, NINV);
    D0 = lo52(D0, m, T);
    __m512i V = hi52(add(D1, _mm512_srli_epi64(D0, 52)), m, T); /* (S + m t) / 2^52 < 2^51 */
    m = _mm512_and_si512(lo52(z, V, NINV), M12);
    V = _mm512_srli_epi64(add(V, _mm512_mullo_epi64(m, T)), 12);
    return csub(V, T);
}

/* ---------------------------------------------------------------- key-switching inner product */

static void ip_redc_avx512(uint64_t *out0, uint64_t *out1, const uint64_t *const *x, const uint64_t *const *k0,
                           const uint64_t *const *k1, unsigned count, size_t n, const modulus *m, bool accumulate)
{
    if (m->q < BIT(60) && count <= REDC_TERMS) ip_emul(out0, out1, x, k0, k1, count, n, m, accumulate);
    else rns_ip_redc_portable(out0, out1, x, k0, k1, count, n, m, accumulate);
}

static void ip_redc_ifma(uint64_t *out0, uint64_t *out1, const uint64_t *const *x, const uint64_t *const *k0,
                         const uint64_t *const *k1, unsigned count, size_t n, const modulus *m, bool accumulate)
{
    if (m->q >= BIT(50) || count > REDC_TERMS) {
        ip_redc_avx512(out0, out1, x, k0, k1, count, n, m, accumulate);
        return;
    }
    const __m512i T = set1(m->q), NINV = set1(m->mont_neg_inv), M12 = set1(BIT(12) - 1);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m512i A0 = _mm512_setzero_si512(), A1 = A0, B0 = A0, B1 = A0;
#pragma GCC unroll 7
        for (unsigned j = 0; j < count; j++) {
            const __m512i X = ld(x[j] + i), K = ld(k0[j] + i), L = ld(k1[j] + i);
            A0 = lo52(A0, X, K);
            A1 = hi52(A1, X, K);
            B0 = lo52(B0, X, L);
            B1 = hi52(B1, X, L);
        }
        __m512i r0 = redc64_52(A0, A1, T, NINV, M12), r1 = redc64_52(B0, B1, T, NINV, M12);
        if (accumulate) {
            r0 = csub(add(ld(out0 + i), r0), T);
            r1 = csub(add(ld(out1 + i), r1), T);
        }
        st(out0 + i, r0);
        st(out1 + i, r1);
    }
    for (; i < n; i++) rns_ip_scalar(out0, out1, x, k0, k1, count, i, m, accumulate);
}

/* ---------------------------------------------------------------- rescaling */

static void rescale_lift_avx512(uint64_t *out, const uint64_t *v, size_t n, uint64_t ql, const modulus *m)
{
    size_t i = 0;
    const uint64_t q = m->q, ql_mod = reduce64(ql, m);
    /* quotient from doubles: v / q < 2^46, so the estimate is within 1 of floor(v / q) and
     * v - qh q lies in [-q, 2q) */
    if (q >= BIT(16) && q < BIT(62) && ql < BIT(62)) {
        const __m512i Q = set1(q), Q2 = set1(2 * q), QLH = set1(ql / 2), QD = set1(q - ql_mod);
        const __m512d QINV = _mm512_set1_pd(1.0 / (double)q);
        for (; i + 8 <= n; i += 8) {
            const __m512i V = ld(v + i);
            const __m512i qh = _mm512_cvttpd_epu64(_mm512_mul_pd(_mm512_cvtepu64_pd(V), QINV));
            __m512i r = add(sub(V, _mm512_mullo_epi64(qh, Q)), Q); /* [0, 3q) */
            r = csub(csub(r, Q2), Q);
            const __mmask8 up = _mm512_cmpgt_epu64_mask(V, QLH);
            r = _mm512_mask_mov_epi64(r, up, csub(add(r, QD), Q)); /* r - [q_l]_q */
            st(out + i, r);
        }
    }
    for (; i < n; i++) out[i] = rns_rescale_lift_scalar(v[i], ql, ql_mod, m);
}

/* ---------------------------------------------------------------- permutation */

/* A Galois permutation of the bit-reversed NTT layout sends slot brv(j) to brv(j g + (g-1)/2 mod n),
 * so the 8 slots of an aligned block read one aligned block of the source: one load and a lane
 * permutation. Other blocks take a gather. */
static void permute_avx512(uint64_t *out, const uint64_t *src, const size_t *perm, size_t n)
{
    size_t i = 0;
    /* the source blocks come in random order, which the hardware prefetchers cannot follow */
    const size_t ahead = 512;
    for (; i + 8 <= n; i += 8) {
        if (i + ahead < n) _mm_prefetch((const char *)(src + perm[i + ahead]), _MM_HINT_T0);
        const __m512i idx = _mm512_loadu_si512((const void *)(perm + i));
        const size_t base = perm[i] & ~(size_t)7;
        const __mmask8 same = _mm512_cmpeq_epi64_mask(_mm512_srli_epi64(idx, 3), set1(base >> 3));
        if (same == 0xFF && base + 8 <= n) st(out + i, _mm512_permutexvar_epi64(idx, ld(src + base)));
        else st(out + i, _mm512_i64gather_epi64(idx, (const void *)src, 8));
    }
    rns_permute_portable(out + i, src, perm + i, n - i);
}

/* ---------------------------------------------------------------- basis conversion */

/* Outputs for a target t < 2^52 by IFMA: S = sum_i y_i h_i with h_i = [Q/q_i 2^104 f]_t; y_i
 * below 2^52 take two vpmadd52, wider ones (< 2^62) four (y = ylo + yhi 2^52). S 2^-104 < t
 * for any number of terms that fits the accumulators (< 2^10). */
AI void bc_target_ifma(uint64_t *o, const uint64_t *y, size_t stride, size_t ni, const uint64_t *h, size_t no,
                       const unsigned char *wide, const modulus *mk, size_t lv, int nt)
{
    const __m512i T = set1(mk->q), NINV = set1(mk->mont_neg_inv), z = _mm512_setzero_si512();
    size_t c = 0;
    for (; c + 32 <= lv; c += 32) {
        __m512i D0[4], D1[4], D2[4];
        for (int u = 0; u < 4; u++) D0[u] = D1[u] = D2[u] = z;
        for (size_t i = 0; i < ni; i++) {
            const __m512i H = set1(h[i * no]);
            const uint64_t *yi = y + i * stride + c;
            if (!wide[i]) {
                for (int u = 0; u < 4; u++) {
                    const __m512i Y = ld(yi + 8 * u);
                    D0[u] = lo52(D0[u], Y, H);
                    D1[u] = hi52(D1[u], Y, H);
                }
            } else {
                for (int u = 0; u < 4; u++) {
                    const __m512i Y = ld(yi + 8 * u), Yh = _mm512_srli_epi64(Y, 52);
                    D0[u] = lo52(D0[u], Y, H);
                    D1[u] = lo52(hi52(D1[u], Y, H), Yh, H);
                    D2[u] = hi52(D2[u], Yh, H);
                }
            }
        }
        for (int u = 0; u < 4; u++) put(o + c + 8 * u, redc104(D0[u], D1[u], D2[u], T, NINV), nt);
    }
    for (; c < lv; c += 8) {
        __m512i D0 = z, D1 = z, D2 = z;
        for (size_t i = 0; i < ni; i++) {
            const __m512i H = set1(h[i * no]), Y = ld(y + i * stride + c);
            D0 = lo52(D0, Y, H);
            D1 = hi52(D1, Y, H);
            if (wide[i]) {
                const __m512i Yh = _mm512_srli_epi64(Y, 52);
                D1 = lo52(D1, Yh, H);
                D2 = hi52(D2, Yh, H);
            }
        }
        put(o + c, redc104(D0, D1, D2, T, NINV), nt);
    }
}

/* Outputs for a target 2^52 <= t < 2^62 by IFMA: h = hl + hh 2^52 (hh < 2^10), so a term is
 * four vpmadd52 (seven for a wide y), and the Montgomery steps multiply m by t in the same two
 * pieces; the result (S + M t) / 2^104 spans D2 + D3 2^52 and is below S 2^-104 + t < 2t. */
AI void wide_terms(const int U, __m512i *D0, __m512i *D1, __m512i *D2, const uint64_t *y, size_t stride, size_t ni,
                   const uint64_t *h, size_t no, const unsigned char *wide)
{
    for (size_t i = 0; i < ni; i++) {
        const uint64_t hv = h[i * no];
        const __m512i HL = set1(hv & (BIT(52) - 1)), HH = set1(hv >> 52);
        for (int u = 0; u < U; u++) {
            const __m512i Y = ld(y + i * stride + 8 * u);
            D0[u] = lo52(D0[u], Y, HL);
            D1[u] = lo52(hi52(D1[u], Y, HL), Y, HH);
            D2[u] = hi52(D2[u], Y, HH);
            if (wide[i]) {
                const __m512i Yh = _mm512_srli_epi64(Y, 52);
                D1[u] = lo52(D1[u], Yh, HL);
                D2[u] = lo52(hi52(D2[u], Yh, HL), Yh, HH); /* hi52(Yh HH) = 0 */
            }
        }
    }
}

AI __m512i redc104_wide(__m512i D0, __m512i D1, __m512i D2, __m512i T, __m512i TL, __m512i TH, __m512i NINV)
{
    const __m512i z = _mm512_setzero_si512();
    __m512i m = lo52(z, D0, NINV);
    D0 = lo52(D0, m, TL); /* = 0 mod 2^52 */
    D1 = lo52(hi52(add(D1, _mm512_srli_epi64(D0, 52)), m, TL), m, TH);
    D2 = hi52(D2, m, TH);
    m = lo52(z, D1, NINV);
    D1 = lo52(D1, m, TL);
    D2 = lo52(hi52(add(D2, _mm512_srli_epi64(D1, 52)), m, TL), m, TH);
    return csub(add(D2, _mm512_slli_epi64(hi52(z, m, TH), 52)), T);
}

AI void bc_target_ifma_wide(uint64_t *o, const uint64_t *y, size_t stride, size_t ni, const uint64_t *h, size_t no,
                            const unsigned char *wide, const modulus *mk, size_t lv, int nt)
{
    const __m512i T = set1(mk->q), TL = set1(mk->q & (BIT(52) - 1)), TH = set1(mk->q >> 52),
                  NINV = set1(mk->mont_neg_inv), z = _mm512_setzero_si512();
    size_t c = 0;
    for (; c + 32 <= lv; c += 32) {
        __m512i D0[4] = {z, z, z, z}, D1[4] = {z, z, z, z}, D2[4] = {z, z, z, z};
        wide_terms(4, D0, D1, D2, y + c, stride, ni, h, no, wide);
        for (int u = 0; u < 4; u++) put(o + c + 8 * u, redc104_wide(D0[u], D1[u], D2[u], T, TL, TH, NINV), nt);
    }
    for (; c < lv; c += 8) {
        __m512i D0 = z, D1 = z, D2 = z;
        wide_terms(1, &D0, &D1, &D2, y + c, stride, ni, h, no, wide);
        put(o + c, redc104_wide(D0, D1, D2, T, TL, TH, NINV), nt);
    }
}

AI void bc_block(const int ifma, const baseconv *bc, uint64_t *out, const uint64_t *in, size_t n_out, size_t c0,
                 size_t len)
{
    uint64_t ALIGNED y[RNS_BC_WORDS], y0[RNS_BC_WORDS], y1[RNS_BC_WORDS];
    unsigned char wide[RNS_MAX_LIMBS];
    const size_t n = bc->in.n, ni = bc->in.limbs, no = bc->out.limbs;
    const size_t lv = len & ~(size_t)7, stride = (len + 7) & ~(size_t)7;
    bool src60 = true;
    uint64_t y1max = 0;
    for (size_t i = 0; i < ni; i++) {
        const modulus *mi = &bc->in.tab[i]->mod;
        const uint64_t *x = in + i * n + c0;
        uint64_t *yi = y + i * stride;
        const int narrow = ifma && mi->q < BIT(50);
        const vshoup s = shoup_make(bc->hat_inv[i], narrow ? bc_hat_inv_shoup52(bc)[i] : bc->hat_inv_shoup[i], mi->q);
        if (narrow) {
            for (size_t c = 0; c < lv; c += 8) st(yi + c, shoup(1, ld(x + c), &s));
        } else {
            for (size_t c = 0; c < lv; c += 8) st(yi + c, shoup(0, ld(x + c), &s));
        }
        rns_bc_scalar_y(bc, yi, x, i, lv, len);
        wide[i] = mi->q >= BIT(52);
        src60 &= mi->q < BIT(60);
        if ((mi->q - 1) >> 30 > y1max) y1max = (mi->q - 1) >> 30;
    }
    bool split = false;
    /* an output of several MiB leaves the caches before it is read again */
    const bool big = n * n_out * 8 >= ((size_t)8 << 20);
    for (size_t k = 0; k < n_out; k++) {
        const modulus *mk = &bc->out.tab[k]->mod;
        uint64_t *o = out + k * n + c0;
        const int nt = big && ((uintptr_t)o & 63) == 0;
        if (ifma && mk->q < BIT(52)) {
            bc_target_ifma(o, y, stride, ni, bc_hat_mod104(bc) + k, no, wide, mk, lv, nt);
        } else if (ifma && mk->q < BIT(62)) {
            bc_target_ifma_wide(o, y, stride, ni, bc_hat_mod104(bc) + k, no, wide, mk, lv, nt);
        } else if (src60 && mk->q < BIT(60)) {
            if (!split) {
                const __m512i M30 = set1(BIT(30) - 1);
                for (size_t i = 0; i < ni; i++)
                    for (size_t c = 0; c < lv; c += 8) {
                        const __m512i Y = ld(y + i * stride + c);
                        st(y0 + i * stride + c, _mm512_and_si512(Y, M30));
                        st(y1 + i * stride + c, _mm512_srli_epi64(Y, 30));
                    }
                split = true;
            }
            bc_target_emul(o, y0, y1, stride, ni, bc_hat_mod90(bc) + k, no, mk, lv, nt, y1max);
        } else {
            rns_bc_scalar_out(bc, o, y, stride, k, 0, lv);
        }
        rns_bc_scalar_out(bc, o, y, stride, k, lv, len);
    }
    if (big) _mm_sfence(); /* order the streamed stores before whatever synchronizes with the reader */
}

static void baseconv_block_avx512(const baseconv *bc, uint64_t *out, const uint64_t *in, size_t n_out, size_t c0,
                                  size_t len)
{
    bc_block(0, bc, out, in, n_out, c0, len);
}

static void baseconv_block_ifma(const baseconv *bc, uint64_t *out, const uint64_t *in, size_t n_out, size_t c0,
                                size_t len)
{
    bc_block(1, bc, out, in, n_out, c0, len);
}

/* ---------------------------------------------------------------- tables */

const rns_kernels rns_kernels_avx512 = {
    "avx512",
    SIMD_AVX512,
    add_avx512,
    sub_avx512,
    mul_avx512,
    mul_scalar_avx512,
    sub_mul_scalar_avx512,
    tensor_avx512,
    ip_redc_avx512,
    rescale_lift_avx512,
    permute_avx512,
    baseconv_block_avx512,
    sub_lookup_avx512,
};

const rns_kernels rns_kernels_avx512ifma = {
    "avx512ifma",
    SIMD_AVX512IFMA,
    add_avx512,
    sub_avx512,
    mul_ifma,
    mul_scalar_ifma,
    sub_mul_scalar_ifma,
    tensor_ifma,
    ip_redc_ifma,
    rescale_lift_avx512,
    permute_avx512,
    baseconv_block_ifma,
    sub_lookup_avx512,
};

/* AVX-512 negacyclic NTT kernels: 8 lanes of 64 bits.
 *
 * Two multiplication back ends share one kernel body (selected by a compile-time constant):
 *  - avx512 (F + DQ): 64-bit Shoup, q < 2^62. There is no 64x64->128 multiply: the Shoup
 *    quotient (high half of y*w') is estimated from three _mm512_mul_epu32 (low by at most 2,
 *    fixed by one conditional subtraction); the low halves use vpmullq. Lazy values in [0, 4q).
 *  - avx512ifma: 52-bit Shoup with vpmadd52{lo,hi}uq, q < 2^50 so that 4q < 2^52. Used when
 *    the table has the 52-bit constants (fwd_shoup52 != NULL), else the avx512 kernel runs.
 *
 * Structure (forward, Cooley–Tukey, natural -> bit-reversed order):
 *  - stages with butterfly gap >= 16 are done two at a time (radix-4 passes, one read and one
 *    write of the data per two stages), lazily in [0, 4q);
 *  - the last four stages (gaps 8, 4, 2, 1) are done per 16-element chunk in registers, with
 *    lane permutes instead of memory passes, and the final reduction to [0, q) is fused in.
 * Large transforms are processed depth-first once a sub-transform fits in L1 (see BLOCK).
 * The inverse (Gentleman–Sande, bit-reversed -> natural) mirrors this: the first four stages in
 * registers, then radix-4 passes, values in [0, 2q) between stages, with n^-1 folded into the
 * twiddles of the last stage, which also reduces to [0, q).
 * Outputs equal the portable kernels' exactly, since both are fully reduced residues of the
 * same transform. n < 16 (forward) / n <= 16 (inverse) uses the AVX2 kernels. */
#include <immintrin.h>

#include "math/ntt.h"

#define AI static inline __attribute__((always_inline))

/* Sub-transforms of at most BLOCK elements (32 KiB) are finished depth-first, in L1. */
#ifndef NTT_BLOCK_LOG
#define NTT_BLOCK_LOG 12
#endif
#define BLOCK ((size_t)1 << NTT_BLOCK_LOG)

typedef struct vconst {
    __m512i q, q2;     /* q, 2q */
    __m512i negq52;    /* 2^52 - q (IFMA) */
    __m512i mask52;    /* 2^52 - 1 (IFMA) */
} vconst;

/* A vector of twiddles w with Shoup constants wp (52- or 64-bit) and wph = wp >> 32 (64-bit). */
typedef struct vtw {
    __m512i w, wp, wph;
} vtw;

static inline vconst make_consts(uint64_t q)
{
    vconst c;
    c.q = _mm512_set1_epi64((long long)q);
    c.q2 = _mm512_set1_epi64((long long)(2 * q));
    c.negq52 = _mm512_set1_epi64((long long)(((uint64_t)1 << 52) - q));
    c.mask52 = _mm512_set1_epi64((long long)(((uint64_t)1 << 52) - 1));
    return c;
}

AI __m512i ld(const uint64_t *p) { return _mm512_loadu_si512((const void *)p); }
AI void st(uint64_t *p, __m512i v) { _mm512_storeu_si512((void *)p, v); }

AI vtw tw_make(const int ifma, __m512i w, __m512i wp)
{
    vtw r;
    r.w = w;
    r.wp = wp;
    r.wph = ifma ? wp : _mm512_srli_epi64(wp, 32);
    return r;
}

AI vtw tw_bcast(const int ifma, const uint64_t *W, const uint64_t *WP, size_t k)
{
    return tw_make(ifma, _mm512_set1_epi64((long long)W[k]), _mm512_set1_epi64((long long)WP[k]));
}

/* An estimate of floor(a * b / 2^64), low by at most 2, for any 64-bit a, b; bh = b >> 32.
 * (The exact value would also need a0*b0 and the carries of the middle column.) */
AI __m512i mulhi64_est(__m512i a, __m512i b, __m512i bh)
{
    const __m512i ah = _mm512_srli_epi64(a, 32);
    const __m512i p01 = _mm512_mul_epu32(a, bh);
    const __m512i p10 = _mm512_mul_epu32(ah, b);
    const __m512i p11 = _mm512_mul_epu32(ah, bh);
    return _mm512_add_epi64(p11, _mm512_add_epi64(_mm512_srli_epi64(p01, 32), _mm512_srli_epi64(p10, 32)));
}

/* a mod b for a in [0, 2b) (also: values in [0, 4q) -> [0, 2q) with b = 2q). */
AI __m512i csub(__m512i a, __m512i b) { return _mm512_min_epu64(a, _mm512_sub_epi64(a, b)); }

/* y * w mod q in [0, 2q). IFMA: y < 2^52; 64-bit: any y.
 * 64-bit: with the Shoup quotient low by at most 1 and the estimate by at most 2 more,
 * y*w - qh*q lies in [0, 4q), and one conditional subtraction of 2q brings it to [0, 2q). */
AI __m512i mulshoup(const int ifma, __m512i y, const vtw *w, const vconst *c)
{
    if (ifma) {
        /* qh = floor(y * wp / 2^52) with wp = floor(w 2^52 / q): y*w - qh*q in [0, 2q) for
         * y < 2^52, so computing it mod 2^52 (low halves only, then the mask) is exact */
        const __m512i z = _mm512_setzero_si512();
        const __m512i qh = _mm512_madd52hi_epu64(z, y, w->wp);
        __m512i r = _mm512_madd52lo_epu64(z, y, w->w);
        r = _mm512_madd52lo_epu64(r, qh, c->negq52); /* + lo52(-qh*q) */
        return _mm512_and_si512(r, c->mask52);
    }
    const __m512i qh = mulhi64_est(y, w->wp, w->wph);
    return csub(_mm512_sub_epi64(_mm512_mullo_epi64(y, w->w), _mm512_mullo_epi64(qh, c->q)), c->q2);
}

/* CT butterfly: x, y in [0, 4q) -> x + w*y, x - w*y in [0, 4q). */
AI void fwd_bf(const int ifma, __m512i *x, __m512i *y, const vtw *w, const vconst *c)
{
    const __m512i u = csub(*x, c->q2);
    const __m512i v = mulshoup(ifma, *y, w, c);
    *x = _mm512_add_epi64(u, v);
    *y = _mm512_sub_epi64(_mm512_add_epi64(u, c->q2), v);
}

/* GS butterfly: x, y in [0, 2q) -> x + y, w*(x - y) in [0, 2q). */
AI void inv_bf(const int ifma, __m512i *x, __m512i *y, const vtw *w, const vconst *c)
{
    const __m512i u = *x, v = *y;
    *x = csub(_mm512_add_epi64(u, v), c->q2);
    *y = mulshoup(ifma, _mm512_sub_epi64(_mm512_add_epi64(u, c->q2), v), w, c);
}

/* ---------------------------------------------------------------- forward */

/* One stage over a[0, len): groups of 2*gap elements (gap >= 8), group g uses twiddle index
 * k0 + g. In/out [0, 4q). */
AI void fwd_r2(const int ifma, uint64_t *a, size_t len, size_t gap, size_t k0, const uint64_t *W,
               const uint64_t *WP, const vconst *c)
{
    for (size_t g = 0; g < len / (2 * gap); g++) {
        const vtw w = tw_bcast(ifma, W, WP, k0 + g);
        uint64_t *x = a + 2 * g * gap, *y = x + gap;
        for (size_t j = 0; j < gap; j += 8) {
            __m512i X = ld(x + j), Y = ld(y + j);
            fwd_bf(ifma, &X, &Y, &w, c);
            st(x + j, X);
            st(y + j, Y);
        }
    }
}

/* Two stages over a[0, len): gap then gap/2 (gap >= 16); the first stage's group g uses twiddle
 * k0 + g, the second's 2*k0 + 2g and 2*k0 + 2g + 1. In/out [0, 4q). */
AI void fwd_r4(const int ifma, uint64_t *a, size_t len, size_t gap, size_t k0, const uint64_t *W,
               const uint64_t *WP, const vconst *c)
{
    const size_t h = gap / 2;
    for (size_t g = 0; g < len / (2 * gap); g++) {
        const vtw w1 = tw_bcast(ifma, W, WP, k0 + g);
        const vtw w2 = tw_bcast(ifma, W, WP, 2 * (k0 + g));
        const vtw w3 = tw_bcast(ifma, W, WP, 2 * (k0 + g) + 1);
        uint64_t *x0 = a + 2 * g * gap, *x1 = x0 + h, *x2 = x0 + gap, *x3 = x2 + h;
        for (size_t j = 0; j < h; j += 8) {
            __m512i A = ld(x0 + j), B = ld(x1 + j), C = ld(x2 + j), D = ld(x3 + j);
            fwd_bf(ifma, &A, &C, &w1, c);
            fwd_bf(ifma, &B, &D, &w1, c);
            fwd_bf(ifma, &A, &B, &w2, c);
            fwd_bf(ifma, &C, &D, &w3, c);
            st(x0 + j, A);
            st(x1 + j, B);
            st(x2 + j, C);
            st(x3 + j, D);
        }
    }
}

/* The last four stages (gaps 8, 4, 2, 1) on U consecutive 16-element chunks at p, the first
 * being chunk b of a run whose twiddles start at W8 (gap 8), W4, W2, W1 (gap 1). The U chunks
 * are interleaved step by step so that their independent dependency chains overlap.
 * In [0, 4q), out [0, q). */
AI void fwd_tail_chunks(const int ifma, const int U, uint64_t *p, size_t b, const uint64_t *W8,
                        const uint64_t *WP8, const uint64_t *W4, const uint64_t *WP4, const uint64_t *W2,
                        const uint64_t *WP2, const uint64_t *W1, const uint64_t *WP1, const vconst *c)
{
    const __m512i rep4 = _mm512_set_epi64(1, 1, 1, 1, 0, 0, 0, 0);
    const __m512i rep2 = _mm512_set_epi64(3, 3, 2, 2, 1, 1, 0, 0);
    const __m512i g2x = _mm512_set_epi64(13, 12, 5, 4, 9, 8, 1, 0);
    const __m512i g2y = _mm512_set_epi64(15, 14, 7, 6, 11, 10, 3, 2);
    const __m512i o0 = _mm512_set_epi64(11, 3, 10, 2, 9, 1, 8, 0);
    const __m512i o1 = _mm512_set_epi64(15, 7, 14, 6, 13, 5, 12, 4);
    __m512i X[2], Y[2];
    vtw w[2];
    /* gap 8: A[k] with B[k] */
    for (int u = 0; u < U; u++) {
        X[u] = ld(p + 16 * u);
        Y[u] = ld(p + 16 * u + 8);
        w[u] = tw_bcast(ifma, W8, WP8, b + u);
    }
    for (int u = 0; u < U; u++) fwd_bf(ifma, &X[u], &Y[u], &w[u], c);
    /* gap 4: X = elements 0-3 of both 8-blocks, Y = elements 4-7 */
    for (int u = 0; u < U; u++) {
        const __m512i A = X[u], B = Y[u];
        X[u] = _mm512_shuffle_i64x2(A, B, 0x44);
        Y[u] = _mm512_shuffle_i64x2(A, B, 0xEE);
        const size_t k = 2 * (b + u);
        w[u] = tw_make(ifma, _mm512_permutexvar_epi64(rep4, _mm512_broadcast_i64x2(_mm_loadu_si128((const void *)(W4 + k)))),
                       _mm512_permutexvar_epi64(rep4, _mm512_broadcast_i64x2(_mm_loadu_si128((const void *)(WP4 + k)))));
    }
    for (int u = 0; u < U; u++) fwd_bf(ifma, &X[u], &Y[u], &w[u], c);
    /* gap 2: X = elements 0,1 of the four 4-blocks in order, Y = elements 2,3 */
    for (int u = 0; u < U; u++) {
        const __m512i A = X[u], B = Y[u];
        X[u] = _mm512_permutex2var_epi64(A, g2x, B);
        Y[u] = _mm512_permutex2var_epi64(A, g2y, B);
        const size_t k = 4 * (b + u);
        w[u] = tw_make(ifma, _mm512_permutexvar_epi64(rep2, _mm512_broadcast_i64x4(_mm256_loadu_si256((const void *)(W2 + k)))),
                       _mm512_permutexvar_epi64(rep2, _mm512_broadcast_i64x4(_mm256_loadu_si256((const void *)(WP2 + k)))));
    }
    for (int u = 0; u < U; u++) fwd_bf(ifma, &X[u], &Y[u], &w[u], c);
    /* gap 1: X = even elements of the eight pairs in order, Y = odd elements */
    for (int u = 0; u < U; u++) {
        const __m512i A = X[u], B = Y[u];
        X[u] = _mm512_unpacklo_epi64(A, B);
        Y[u] = _mm512_unpackhi_epi64(A, B);
        w[u] = tw_make(ifma, ld(W1 + 8 * (b + u)), ld(WP1 + 8 * (b + u)));
    }
    for (int u = 0; u < U; u++) fwd_bf(ifma, &X[u], &Y[u], &w[u], c);
    /* [0, 4q) -> [0, q), back to memory order */
    for (int u = 0; u < U; u++) {
        const __m512i A = csub(csub(X[u], c->q2), c->q), B = csub(csub(Y[u], c->q2), c->q);
        st(p + 16 * u, _mm512_permutex2var_epi64(A, o0, B));
        st(p + 16 * u + 8, _mm512_permutex2var_epi64(A, o1, B));
    }
}

/* The last four stages on a[0, len), len a multiple of 16, a[0] being 16-chunk c0.
 * In [0, 4q), out [0, q). */
AI void fwd_tail(const int ifma, uint64_t *a, size_t len, size_t n, size_t c0, const uint64_t *W,
                 const uint64_t *WP, const vconst *c)
{
    const uint64_t *W8 = W + n / 16 + c0, *WP8 = WP + n / 16 + c0;
    const uint64_t *W4 = W + n / 8 + 2 * c0, *WP4 = WP + n / 8 + 2 * c0;
    const uint64_t *W2 = W + n / 4 + 4 * c0, *WP2 = WP + n / 4 + 4 * c0;
    const uint64_t *W1 = W + n / 2 + 8 * c0, *WP1 = WP + n / 2 + 8 * c0;
    const size_t chunks = len / 16;
    size_t b = 0;
    for (; b + 2 <= chunks; b += 2)
        fwd_tail_chunks(ifma, 2, a + 16 * b, b, W8, WP8, W4, WP4, W2, WP2, W1, WP1, c);
    if (b < chunks) fwd_tail_chunks(ifma, 1, a + 16 * b, b, W8, WP8, W4, WP4, W2, WP2, W1, WP1, c);
}

/* The remaining stages of a sub-transform: a[0, len) is group k0 of the stage with gap len/2
 * (twiddle W[k0]); runs every stage from gap len/2 down, ending with the fused tail.
 * In [0, 4q) (or [0, q)), out [0, q). */
AI void fwd_sub(const int ifma, uint64_t *a, size_t len, size_t k0, size_t n, const uint64_t *W,
                const uint64_t *WP, const vconst *c)
{
    /* k0 is the first stage's twiddle index for a[0]; each stage doubles it */
    size_t gap = len / 2, k = k0;
    size_t stages = 0;
    for (size_t s = len; s > 16; s >>= 1) stages++; /* stages with gap >= 16 */
    if (stages & 1) {
        fwd_r2(ifma, a, len, gap, k, W, WP, c);
        gap >>= 1;
        k <<= 1;
        stages--;
    }
    for (; stages; stages -= 2) {
        fwd_r4(ifma, a, len, gap, k, W, WP, c);
        gap >>= 2;
        k <<= 2;
    }
    /* k = n/16 + chunk index of a[0] now */
    fwd_tail(ifma, a, len, n, k - n / 16, W, WP, c);
}

AI void fwd_kernel(const int ifma, const ntt_table *t, uint64_t *a)
{
    const size_t n = t->n;
    const uint64_t *W = t->fwd, *WP = ifma ? t->fwd_shoup52 : t->fwd_shoup;
    const vconst c = make_consts(t->mod.q);
    if (n <= BLOCK) {
        fwd_sub(ifma, a, n, 1, n, W, WP, &c);
        return;
    }
    /* breadth-first stages until the groups have BLOCK elements, then depth-first */
    size_t gap = n / 2, k = 1;
    size_t stages = 0;
    for (size_t s = n; s > BLOCK; s >>= 1) stages++;
    if (stages & 1) {
        fwd_r2(ifma, a, n, gap, k, W, WP, &c);
        gap >>= 1;
        k <<= 1;
        stages--;
    }
    for (; stages; stages -= 2) {
        fwd_r4(ifma, a, n, gap, k, W, WP, &c);
        gap >>= 2;
        k <<= 2;
    }
    for (size_t b = 0; b < n / BLOCK; b++) fwd_sub(ifma, a + b * BLOCK, BLOCK, k + b, n, W, WP, &c);
}

/* ---------------------------------------------------------------- inverse */

/* One stage over a[0, len): groups of 2*gap (gap >= 8), group g uses twiddle k0 + g.
 * In/out [0, 2q). */
AI void inv_r2(const int ifma, uint64_t *a, size_t len, size_t gap, size_t k0, const uint64_t *W,
               const uint64_t *WP, const vconst *c)
{
    for (size_t g = 0; g < len / (2 * gap); g++) {
        const vtw w = tw_bcast(ifma, W, WP, k0 + g);
        uint64_t *x = a + 2 * g * gap, *y = x + gap;
        for (size_t j = 0; j < gap; j += 8) {
            __m512i X = ld(x + j), Y = ld(y + j);
            inv_bf(ifma, &X, &Y, &w, c);
            st(x + j, X);
            st(y + j, Y);
        }
    }
}

/* Two stages: gap (twiddles k0 + 2g, k0 + 2g + 1 for the g-th 4*gap block) then 2*gap (twiddle
 * k0/2 + g). gap >= 8. In/out [0, 2q). */
AI void inv_r4(const int ifma, uint64_t *a, size_t len, size_t gap, size_t k0, const uint64_t *W,
               const uint64_t *WP, const vconst *c)
{
    for (size_t g = 0; g < len / (4 * gap); g++) {
        const vtw w1 = tw_bcast(ifma, W, WP, k0 + 2 * g);
        const vtw w2 = tw_bcast(ifma, W, WP, k0 + 2 * g + 1);
        const vtw w3 = tw_bcast(ifma, W, WP, k0 / 2 + g);
        uint64_t *x0 = a + 4 * g * gap, *x1 = x0 + gap, *x2 = x1 + gap, *x3 = x2 + gap;
        for (size_t j = 0; j < gap; j += 8) {
            __m512i A = ld(x0 + j), B = ld(x1 + j), C = ld(x2 + j), D = ld(x3 + j);
            inv_bf(ifma, &A, &B, &w1, c);
            inv_bf(ifma, &C, &D, &w2, c);
            inv_bf(ifma, &A, &C, &w3, c);
            inv_bf(ifma, &B, &D, &w3, c);
            st(x0 + j, A);
            st(x1 + j, B);
            st(x2 + j, C);
            st(x3 + j, D);
        }
    }
}

/* The first four stages (gaps 1, 2, 4, 8) on a[0, len), chunk index of a[0] being c0.
 * In [0, 2q), out [0, 2q). */
AI void inv_head(const int ifma, uint64_t *a, size_t len, size_t n, size_t c0, const uint64_t *W,
                 const uint64_t *WP, const vconst *c)
{
    const __m512i ev = _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i od = _mm512_set_epi64(15, 13, 11, 9, 7, 5, 3, 1);
    const __m512i rep4 = _mm512_set_epi64(1, 1, 1, 1, 0, 0, 0, 0);
    const __m512i rep2 = _mm512_set_epi64(3, 3, 2, 2, 1, 1, 0, 0);
    const __m512i g4x = _mm512_set_epi64(13, 12, 5, 4, 9, 8, 1, 0);
    const __m512i g4y = _mm512_set_epi64(15, 14, 7, 6, 11, 10, 3, 2);
    const uint64_t *W8 = W + n / 16 + c0, *WP8 = WP + n / 16 + c0;
    const uint64_t *W4 = W + n / 8 + 2 * c0, *WP4 = WP + n / 8 + 2 * c0;
    const uint64_t *W2 = W + n / 4 + 4 * c0, *WP2 = WP + n / 4 + 4 * c0;
    const uint64_t *W1 = W + n / 2 + 8 * c0, *WP1 = WP + n / 2 + 8 * c0;
    for (size_t b = 0; b < len / 16; b++) {
        uint64_t *p = a + 16 * b;
        const __m512i A0 = ld(p), B0 = ld(p + 8);
        /* gap 1: X = even elements of the eight pairs, Y = odd */
        __m512i X1 = _mm512_permutex2var_epi64(A0, ev, B0), Y1 = _mm512_permutex2var_epi64(A0, od, B0);
        const vtw w1 = tw_make(ifma, ld(W1 + 8 * b), ld(WP1 + 8 * b));
        inv_bf(ifma, &X1, &Y1, &w1, c);
        /* gap 2: X = elements 0,1 of the four 4-blocks, Y = elements 2,3 */
        __m512i X2 = _mm512_unpacklo_epi64(X1, Y1), Y2 = _mm512_unpackhi_epi64(X1, Y1);
        const vtw w2 = tw_make(ifma,
                               _mm512_permutexvar_epi64(rep2, _mm512_broadcast_i64x4(_mm256_loadu_si256((const void *)(W2 + 4 * b)))),
                               _mm512_permutexvar_epi64(rep2, _mm512_broadcast_i64x4(_mm256_loadu_si256((const void *)(WP2 + 4 * b)))));
        inv_bf(ifma, &X2, &Y2, &w2, c);
        /* gap 4: X = elements 0-3 of both 8-blocks, Y = elements 4-7 */
        __m512i X4 = _mm512_permutex2var_epi64(X2, g4x, Y2), Y4 = _mm512_permutex2var_epi64(X2, g4y, Y2);
        const vtw w4 = tw_make(ifma,
                               _mm512_permutexvar_epi64(rep4, _mm512_broadcast_i64x2(_mm_loadu_si128((const void *)(W4 + 2 * b)))),
                               _mm512_permutexvar_epi64(rep4, _mm512_broadcast_i64x2(_mm_loadu_si128((const void *)(WP4 + 2 * b)))));
        inv_bf(ifma, &X4, &Y4, &w4, c);
        /* gap 8: back to memory order, A[k] with B[k] */
        __m512i A = _mm512_shuffle_i64x2(X4, Y4, 0x44), B = _mm512_shuffle_i64x2(X4, Y4, 0xEE);
        const vtw w8 = tw_bcast(ifma, W8, WP8, b);
        inv_bf(ifma, &A, &B, &w8, c);
        st(p, A);
        st(p + 8, B);
    }
}

/* The first stages of a sub-transform a[0, len) (len <= n/2, a multiple of 32): after them,
 * a[0, len) forms group k0 of the stage with gap len (twiddle k0), not done here.
 * In [0, 2q), out [0, 2q). */
AI void inv_sub(const int ifma, uint64_t *a, size_t len, size_t n, size_t c0, const uint64_t *W,
                const uint64_t *WP, const vconst *c)
{
    inv_head(ifma, a, len, n, c0, W, WP, c);
    size_t gap = 16, k = n / 32 + c0 / 2; /* stage with gap 16: a[0] is in group c0/2 */
    size_t stages = 0;
    for (size_t s = len; s > 16; s >>= 1) stages++; /* stages with gap 16 .. len/2 */
    if (stages & 1) {
        inv_r2(ifma, a, len, gap, k, W, WP, c);
        gap <<= 1;
        k >>= 1;
        stages--;
    }
    for (; stages; stages -= 2) {
        inv_r4(ifma, a, len, gap, k, W, WP, c);
        gap <<= 2;
        k >>= 2;
    }
}

/* The last stage (gap n/2, twiddle W[1]) with n^-1 folded in. In [0, 2q), out [0, q). */
AI void inv_last_r2(const int ifma, uint64_t *a, size_t n, const vtw *ni, const vtw *wn, const vconst *c)
{
    uint64_t *x = a, *y = a + n / 2;
    for (size_t j = 0; j < n / 2; j += 8) {
        const __m512i u = ld(x + j), v = ld(y + j);
        const __m512i X = mulshoup(ifma, _mm512_add_epi64(u, v), ni, c);
        const __m512i Y = mulshoup(ifma, _mm512_sub_epi64(_mm512_add_epi64(u, c->q2), v), wn, c);
        st(x + j, csub(X, c->q));
        st(y + j, csub(Y, c->q));
    }
}

/* The last two stages (gap n/4 with twiddles W[2], W[3], then gap n/2 with n^-1 folded in).
 * In [0, 2q), out [0, q). */
AI void inv_last_r4(const int ifma, uint64_t *a, size_t n, const uint64_t *W, const uint64_t *WP,
                    const vtw *ni, const vtw *wn, const vconst *c)
{
    const vtw w2 = tw_bcast(ifma, W, WP, 2), w3 = tw_bcast(ifma, W, WP, 3);
    const size_t h = n / 4;
    uint64_t *x0 = a, *x1 = a + h, *x2 = x1 + h, *x3 = x2 + h;
    for (size_t j = 0; j < h; j += 8) {
        __m512i A = ld(x0 + j), B = ld(x1 + j), C = ld(x2 + j), D = ld(x3 + j);
        inv_bf(ifma, &A, &B, &w2, c);
        inv_bf(ifma, &C, &D, &w3, c);
        const __m512i a2 = mulshoup(ifma, _mm512_add_epi64(A, C), ni, c);
        const __m512i c2 = mulshoup(ifma, _mm512_sub_epi64(_mm512_add_epi64(A, c->q2), C), wn, c);
        const __m512i b2 = mulshoup(ifma, _mm512_add_epi64(B, D), ni, c);
        const __m512i d2 = mulshoup(ifma, _mm512_sub_epi64(_mm512_add_epi64(B, c->q2), D), wn, c);
        st(x0 + j, csub(a2, c->q));
        st(x1 + j, csub(b2, c->q));
        st(x2 + j, csub(c2, c->q));
        st(x3 + j, csub(d2, c->q));
    }
}

AI void inv_kernel(const int ifma, const ntt_table *t, uint64_t *a)
{
    const size_t n = t->n;
    const uint64_t *W = t->inv, *WP = ifma ? t->inv_shoup52 : t->inv_shoup;
    const vconst c = make_consts(t->mod.q);
    /* n^-1 and W[1] * n^-1 with their Shoup constants, for the fused last stage */
    const vtw ni = tw_make(ifma, _mm512_set1_epi64((long long)t->n_inv),
                           _mm512_set1_epi64((long long)(ifma ? t->n_inv_shoup52 : t->n_inv_shoup)));
    const vtw wnv = tw_make(ifma, _mm512_set1_epi64((long long)t->inv1_n_inv),
                            _mm512_set1_epi64((long long)(ifma ? t->inv1_n_inv_shoup52 : t->inv1_n_inv_shoup)));

    /* depth-first sub-transforms of up to BLOCK elements (all but the last one or two stages) */
    size_t len = n / 4 < BLOCK ? n / 4 : BLOCK;
    if (len < 16) len = 16;
    for (size_t b = 0; b < n / len; b++) inv_sub(ifma, a + b * len, len, n, b * (len / 16), W, WP, &c);
    /* then breadth-first the stages with gap len .. n/4 (or n/8), then the fused last one(s) */
    size_t gap = len, k = n / (2 * len);
    size_t stages = 0;
    for (size_t s = n / 2; s > len; s >>= 1) stages++; /* stages with gap len .. n/4 */
    if (stages == 0) {
        inv_last_r2(ifma, a, n, &ni, &wnv, &c);
        return;
    }
    /* keep two stages for the fused radix-4 ending */
    stages--;
    if (stages & 1) {
        inv_r2(ifma, a, n, gap, k, W, WP, &c);
        gap <<= 1;
        k >>= 1;
        stages--;
    }
    for (; stages; stages -= 2) {
        inv_r4(ifma, a, n, gap, k, W, WP, &c);
        gap <<= 2;
        k >>= 2;
    }
    inv_last_r4(ifma, a, n, W, WP, &ni, &wnv, &c);
}

/* ---------------------------------------------------------------- entry points */

/* Forward: in [0, q) natural order, out [0, q) bit-reversed. q < 2^62. */
__attribute__((noinline)) void ntt_forward_avx512(const ntt_table *t, uint64_t *a)
{
    if (t->n < 16) {
        ntt_forward_avx2(t, a); /* every AVX-512 CPU has AVX2 */
        return;
    }
    fwd_kernel(0, t, a);
}

/* Inverse: in [0, q) bit-reversed, out [0, q) natural order (n^-1 included). q < 2^62. */
__attribute__((noinline)) void ntt_inverse_avx512(const ntt_table *t, uint64_t *a)
{
    if (t->n <= 16) {
        ntt_inverse_avx2(t, a);
        return;
    }
    inv_kernel(0, t, a);
}

/* As above with IFMA52 when q < 2^50 (the table then has the 52-bit Shoup constants). */
void ntt_forward_avx512ifma(const ntt_table *t, uint64_t *a)
{
    if (!t->fwd_shoup52 || t->n < 16) {
        ntt_forward_avx512(t, a);
        return;
    }
    fwd_kernel(1, t, a);
}

void ntt_inverse_avx512ifma(const ntt_table *t, uint64_t *a)
{
    if (!t->inv_shoup52 || t->n <= 16) {
        ntt_inverse_avx512(t, a);
        return;
    }
    inv_kernel(1, t, a);
}

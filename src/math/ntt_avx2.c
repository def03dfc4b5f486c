/* AVX2 negacyclic NTT kernels: 4 lanes of 64 bits, 64-bit Shoup multiplication, q < 2^62.
 *
 * AVX2 has no 64x64 multiply: the Shoup quotient (high half of y*w') is estimated from three
 * _mm256_mul_epu32 (low by at most 2, fixed by one conditional subtraction), and the low half
 * of y*w - qhat*q comes from two _mm256_mul_epu32 plus two _mm256_mullo_epi32 on
 * dword-swapped operands (the cross terms are only needed mod 2^32). No unsigned 64-bit
 * compare/min either: conditional subtractions use the sign of the difference (blendv_pd),
 * valid because every value compared is within 2^63 of the bound.
 *
 * Structure as in ntt_avx512.c: stages with gap >= 8 two at a time (radix-4 passes), the
 * last three stages (gaps 4, 2, 1) per 8-element chunk in registers with the final reduction
 * fused in (forward); the first three in registers and n^-1 folded into the last stage
 * (inverse); depth-first once a sub-transform fits in L1. Forward lazy range [0, 4q), inverse
 * [0, 2q); outputs fully reduced, hence bit-identical to the portable kernels.
 * n < 8 (forward) / n <= 8 (inverse) uses the portable kernels. */
#include <immintrin.h>

#include "math/ntt.h"

#define AI static inline __attribute__((always_inline))

/* Sub-transforms of at most BLOCK elements (32 KiB) are finished depth-first, in L1. */
#ifndef NTT_BLOCK_LOG
#define NTT_BLOCK_LOG 12
#endif
#define BLOCK ((size_t)1 << NTT_BLOCK_LOG)

typedef struct vconst {
    __m256i q, q2, qsw; /* q, 2q, q with its 32-bit halves swapped */
    __m256i himask;     /* 0xffffffff00000000 */
} vconst;

/* Twiddles w, w with halves swapped, Shoup constants wp = floor(w 2^64 / q), wp >> 32. */
typedef struct vtw {
    __m256i w, wsw, wp, wph;
} vtw;

static inline vconst make_consts(uint64_t q)
{
    vconst c;
    c.q = _mm256_set1_epi64x((long long)q);
    c.q2 = _mm256_set1_epi64x((long long)(2 * q));
    c.qsw = _mm256_set1_epi64x((long long)((q << 32) | (q >> 32)));
    c.himask = _mm256_set1_epi64x((long long)0xffffffff00000000ull);
    return c;
}

AI __m256i ld(const uint64_t *p) { return _mm256_loadu_si256((const void *)p); }
AI void st(uint64_t *p, __m256i v) { _mm256_storeu_si256((void *)p, v); }

AI vtw tw_make(__m256i w, __m256i wp)
{
    vtw r;
    r.w = w;
    r.wsw = _mm256_shuffle_epi32(w, 0xB1);
    r.wp = wp;
    r.wph = _mm256_srli_epi64(wp, 32);
    return r;
}

AI vtw tw_bcast(const uint64_t *W, const uint64_t *WP, size_t k)
{
    return tw_make(_mm256_set1_epi64x((long long)W[k]), _mm256_set1_epi64x((long long)WP[k]));
}

/* a - b if a >= b else a, for a in [0, 2b), b <= 2^63. */
AI __m256i csub(__m256i a, __m256i b)
{
    const __m256d d = _mm256_castsi256_pd(_mm256_sub_epi64(a, b));
    return _mm256_castpd_si256(_mm256_blendv_pd(d, _mm256_castsi256_pd(a), d));
}

/* y * w mod q in [0, 2q) for any 64-bit y (Shoup). The quotient estimate leaves out a0*b0 and
 * the carries of the middle column, so it is low by at most 2 besides Shoup's 1: y*w - qh*q
 * lies in [0, 4q) and one conditional subtraction of 2q finishes. */
AI __m256i mulshoup(__m256i y, const vtw *w, const vconst *c)
{
    const __m256i yh = _mm256_srli_epi64(y, 32);
    const __m256i p01 = _mm256_mul_epu32(y, w->wph);
    const __m256i p10 = _mm256_mul_epu32(yh, w->wp);
    const __m256i p11 = _mm256_mul_epu32(yh, w->wph);
    const __m256i qh =
        _mm256_add_epi64(p11, _mm256_add_epi64(_mm256_srli_epi64(p01, 32), _mm256_srli_epi64(p10, 32)));
    /* r = y*w - qh*q mod 2^64: low products plus the cross terms mod 2^32, shifted up */
    const __m256i lo = _mm256_sub_epi64(_mm256_mul_epu32(y, w->w), _mm256_mul_epu32(qh, c->q));
    const __m256i d = _mm256_sub_epi32(_mm256_mullo_epi32(y, w->wsw), _mm256_mullo_epi32(qh, c->qsw));
    const __m256i cross = _mm256_add_epi64(_mm256_slli_epi64(d, 32), _mm256_and_si256(d, c->himask));
    return csub(_mm256_add_epi64(lo, cross), c->q2);
}

/* CT butterfly: x, y in [0, 4q) -> x + w*y, x - w*y in [0, 4q). */
AI void fwd_bf(__m256i *x, __m256i *y, const vtw *w, const vconst *c)
{
    const __m256i u = csub(*x, c->q2);
    const __m256i v = mulshoup(*y, w, c);
    *x = _mm256_add_epi64(u, v);
    *y = _mm256_sub_epi64(_mm256_add_epi64(u, c->q2), v);
}

/* GS butterfly: x, y in [0, 2q) -> x + y, w*(x - y) in [0, 2q). */
AI void inv_bf(__m256i *x, __m256i *y, const vtw *w, const vconst *c)
{
    const __m256i u = *x, v = *y;
    *x = csub(_mm256_add_epi64(u, v), c->q2);
    *y = mulshoup(_mm256_sub_epi64(_mm256_add_epi64(u, c->q2), v), w, c);
}

/* ---------------------------------------------------------------- forward */

/* One stage over a[0, len): groups of 2*gap (gap >= 4), group g uses twiddle k0 + g.
 * In/out [0, 4q). */
static void fwd_r2(uint64_t *a, size_t len, size_t gap, size_t k0, const uint64_t *W, const uint64_t *WP,
                   const vconst *c)
{
    for (size_t g = 0; g < len / (2 * gap); g++) {
        const vtw w = tw_bcast(W, WP, k0 + g);
        uint64_t *x = a + 2 * g * gap, *y = x + gap;
        for (size_t j = 0; j < gap; j += 4) {
            __m256i X = ld(x + j), Y = ld(y + j);
            fwd_bf(&X, &Y, &w, c);
            st(x + j, X);
            st(y + j, Y);
        }
    }
}

/* Two stages: gap (twiddle k0 + g) then gap/2 (twiddles 2(k0+g), 2(k0+g)+1); gap >= 8.
 * In/out [0, 4q). */
static void fwd_r4(uint64_t *a, size_t len, size_t gap, size_t k0, const uint64_t *W, const uint64_t *WP,
                   const vconst *c)
{
    const size_t h = gap / 2;
    for (size_t g = 0; g < len / (2 * gap); g++) {
        const vtw w1 = tw_bcast(W, WP, k0 + g);
        const vtw w2 = tw_bcast(W, WP, 2 * (k0 + g));
        const vtw w3 = tw_bcast(W, WP, 2 * (k0 + g) + 1);
        uint64_t *x0 = a + 2 * g * gap, *x1 = x0 + h, *x2 = x0 + gap, *x3 = x2 + h;
        for (size_t j = 0; j < h; j += 4) {
            __m256i A = ld(x0 + j), B = ld(x1 + j), C = ld(x2 + j), D = ld(x3 + j);
            fwd_bf(&A, &C, &w1, c);
            fwd_bf(&B, &D, &w1, c);
            fwd_bf(&A, &B, &w2, c);
            fwd_bf(&C, &D, &w3, c);
            st(x0 + j, A);
            st(x1 + j, B);
            st(x2 + j, C);
            st(x3 + j, D);
        }
    }
}

/* The last three stages (gaps 4, 2, 1) on a[0, len), len a multiple of 8, a[0] being 8-chunk
 * c0. In [0, 4q), out [0, q). */
static void fwd_tail(uint64_t *a, size_t len, size_t n, size_t c0, const uint64_t *W, const uint64_t *WP,
                     const vconst *c)
{
    const uint64_t *W4 = W + n / 8 + c0, *WP4 = WP + n / 8 + c0;
    const uint64_t *W2 = W + n / 4 + 2 * c0, *WP2 = WP + n / 4 + 2 * c0;
    const uint64_t *W1 = W + n / 2 + 4 * c0, *WP1 = WP + n / 2 + 4 * c0;
    for (size_t b = 0; b < len / 8; b++) {
        uint64_t *p = a + 8 * b;
        __m256i A = ld(p), B = ld(p + 4);
        /* gap 4: A[k] with B[k] */
        const vtw w4 = tw_bcast(W4, WP4, b);
        fwd_bf(&A, &B, &w4, c);
        /* gap 2: X = elements 0,1 of both 4-blocks, Y = elements 2,3 */
        __m256i X = _mm256_permute2x128_si256(A, B, 0x20), Y = _mm256_permute2x128_si256(A, B, 0x31);
        const vtw w2 = tw_make(_mm256_permute4x64_epi64(_mm256_broadcastsi128_si256(_mm_loadu_si128((const void *)(W2 + 2 * b))), 0x50),
                               _mm256_permute4x64_epi64(_mm256_broadcastsi128_si256(_mm_loadu_si128((const void *)(WP2 + 2 * b))), 0x50));
        fwd_bf(&X, &Y, &w2, c);
        /* gap 1: X = even elements of the four pairs, Y = odd */
        __m256i X1 = _mm256_unpacklo_epi64(X, Y), Y1 = _mm256_unpackhi_epi64(X, Y);
        const vtw w1 = tw_make(ld(W1 + 4 * b), ld(WP1 + 4 * b));
        fwd_bf(&X1, &Y1, &w1, c);
        X1 = csub(csub(X1, c->q2), c->q);
        Y1 = csub(csub(Y1, c->q2), c->q);
        const __m256i lo = _mm256_unpacklo_epi64(X1, Y1), hi = _mm256_unpackhi_epi64(X1, Y1);
        st(p, _mm256_permute2x128_si256(lo, hi, 0x20));
        st(p + 4, _mm256_permute2x128_si256(lo, hi, 0x31));
    }
}

/* All stages of the sub-transform a[0, len), group k0 of the stage with gap len/2.
 * In [0, 4q), out [0, q). */
static void fwd_sub(uint64_t *a, size_t len, size_t k0, size_t n, const uint64_t *W, const uint64_t *WP,
                    const vconst *c)
{
    size_t gap = len / 2, k = k0, stages = 0;
    for (size_t s = len; s > 8; s >>= 1) stages++; /* stages with gap >= 8 */
    if (stages & 1) {
        fwd_r2(a, len, gap, k, W, WP, c);
        gap >>= 1;
        k <<= 1;
        stages--;
    }
    for (; stages; stages -= 2) {
        fwd_r4(a, len, gap, k, W, WP, c);
        gap >>= 2;
        k <<= 2;
    }
    fwd_tail(a, len, n, k - n / 8, W, WP, c);
}

/* Forward: in [0, q) natural order, out [0, q) bit-reversed. q < 2^62. */
void ntt_forward_avx2(const ntt_table *t, uint64_t *a)
{
    const size_t n = t->n;
    if (n < 8) {
        ntt_forward_portable(t, a);
        return;
    }
    const uint64_t *W = t->fwd, *WP = t->fwd_shoup;
    const vconst c = make_consts(t->mod.q);
    if (n <= BLOCK) {
        fwd_sub(a, n, 1, n, W, WP, &c);
        return;
    }
    size_t gap = n / 2, k = 1, stages = 0;
    for (size_t s = n; s > BLOCK; s >>= 1) stages++;
    if (stages & 1) {
        fwd_r2(a, n, gap, k, W, WP, &c);
        gap >>= 1;
        k <<= 1;
        stages--;
    }
    for (; stages; stages -= 2) {
        fwd_r4(a, n, gap, k, W, WP, &c);
        gap >>= 2;
        k <<= 2;
    }
    for (size_t b = 0; b < n / BLOCK; b++) fwd_sub(a + b * BLOCK, BLOCK, k + b, n, W, WP, &c);
}

/* ---------------------------------------------------------------- inverse */

/* One stage: groups of 2*gap (gap >= 4), group g uses twiddle k0 + g. In/out [0, 2q). */
static void inv_r2(uint64_t *a, size_t len, size_t gap, size_t k0, const uint64_t *W, const uint64_t *WP,
                   const vconst *c)
{
    for (size_t g = 0; g < len / (2 * gap); g++) {
        const vtw w = tw_bcast(W, WP, k0 + g);
        uint64_t *x = a + 2 * g * gap, *y = x + gap;
        for (size_t j = 0; j < gap; j += 4) {
            __m256i X = ld(x + j), Y = ld(y + j);
            inv_bf(&X, &Y, &w, c);
            st(x + j, X);
            st(y + j, Y);
        }
    }
}

/* Two stages: gap (twiddles k0 + 2g, k0 + 2g + 1) then 2*gap (twiddle k0/2 + g); gap >= 4.
 * In/out [0, 2q). */
static void inv_r4(uint64_t *a, size_t len, size_t gap, size_t k0, const uint64_t *W, const uint64_t *WP,
                   const vconst *c)
{
    for (size_t g = 0; g < len / (4 * gap); g++) {
        const vtw w1 = tw_bcast(W, WP, k0 + 2 * g);
        const vtw w2 = tw_bcast(W, WP, k0 + 2 * g + 1);
        const vtw w3 = tw_bcast(W, WP, k0 / 2 + g);
        uint64_t *x0 = a + 4 * g * gap, *x1 = x0 + gap, *x2 = x1 + gap, *x3 = x2 + gap;
        for (size_t j = 0; j < gap; j += 4) {
            __m256i A = ld(x0 + j), B = ld(x1 + j), C = ld(x2 + j), D = ld(x3 + j);
            inv_bf(&A, &B, &w1, c);
            inv_bf(&C, &D, &w2, c);
            inv_bf(&A, &C, &w3, c);
            inv_bf(&B, &D, &w3, c);
            st(x0 + j, A);
            st(x1 + j, B);
            st(x2 + j, C);
            st(x3 + j, D);
        }
    }
}

/* The first three stages (gaps 1, 2, 4) on a[0, len), a[0] being 8-chunk c0.
 * In [0, 2q), out [0, 2q). */
static void inv_head(uint64_t *a, size_t len, size_t n, size_t c0, const uint64_t *W, const uint64_t *WP,
                     const vconst *c)
{
    const uint64_t *W4 = W + n / 8 + c0, *WP4 = WP + n / 8 + c0;
    const uint64_t *W2 = W + n / 4 + 2 * c0, *WP2 = WP + n / 4 + 2 * c0;
    const uint64_t *W1 = W + n / 2 + 4 * c0, *WP1 = WP + n / 2 + 4 * c0;
    for (size_t b = 0; b < len / 8; b++) {
        uint64_t *p = a + 8 * b;
        const __m256i A0 = ld(p), B0 = ld(p + 4);
        /* gap 1: X = even elements of the four pairs, Y = odd */
        __m256i X1 = _mm256_permute4x64_epi64(_mm256_unpacklo_epi64(A0, B0), 0xD8);
        __m256i Y1 = _mm256_permute4x64_epi64(_mm256_unpackhi_epi64(A0, B0), 0xD8);
        const vtw w1 = tw_make(ld(W1 + 4 * b), ld(WP1 + 4 * b));
        inv_bf(&X1, &Y1, &w1, c);
        /* gap 2: X = elements 0,1 of both 4-blocks, Y = elements 2,3 */
        __m256i X = _mm256_unpacklo_epi64(X1, Y1), Y = _mm256_unpackhi_epi64(X1, Y1);
        const vtw w2 = tw_make(_mm256_permute4x64_epi64(_mm256_broadcastsi128_si256(_mm_loadu_si128((const void *)(W2 + 2 * b))), 0x50),
                               _mm256_permute4x64_epi64(_mm256_broadcastsi128_si256(_mm_loadu_si128((const void *)(WP2 + 2 * b))), 0x50));
        inv_bf(&X, &Y, &w2, c);
        /* gap 4: memory order, A[k] with B[k] */
        __m256i A = _mm256_permute2x128_si256(X, Y, 0x20), B = _mm256_permute2x128_si256(X, Y, 0x31);
        const vtw w4 = tw_bcast(W4, WP4, b);
        inv_bf(&A, &B, &w4, c);
        st(p, A);
        st(p + 4, B);
    }
}

/* The first stages of the sub-transform a[0, len) (gaps 1 .. len/2), a[0] being 8-chunk c0.
 * In [0, 2q), out [0, 2q). */
static void inv_sub(uint64_t *a, size_t len, size_t n, size_t c0, const uint64_t *W, const uint64_t *WP,
                    const vconst *c)
{
    inv_head(a, len, n, c0, W, WP, c);
    size_t gap = 8, k = n / 16 + c0 / 2, stages = 0;
    for (size_t s = len; s > 8; s >>= 1) stages++; /* stages with gap 8 .. len/2 */
    if (stages & 1) {
        inv_r2(a, len, gap, k, W, WP, c);
        gap <<= 1;
        k >>= 1;
        stages--;
    }
    for (; stages; stages -= 2) {
        inv_r4(a, len, gap, k, W, WP, c);
        gap <<= 2;
        k >>= 2;
    }
}

/* Last stage (gap n/2) with n^-1 folded in. In [0, 2q), out [0, q). */
static void inv_last_r2(uint64_t *a, size_t n, const vtw *ni, const vtw *wn, const vconst *c)
{
    uint64_t *x = a, *y = a + n / 2;
    for (size_t j = 0; j < n / 2; j += 4) {
        const __m256i u = ld(x + j), v = ld(y + j);
        const __m256i X = mulshoup(_mm256_add_epi64(u, v), ni, c);
        const __m256i Y = mulshoup(_mm256_sub_epi64(_mm256_add_epi64(u, c->q2), v), wn, c);
        st(x + j, csub(X, c->q));
        st(y + j, csub(Y, c->q));
    }
}

/* Last two stages (gap n/4, twiddles W[2], W[3]; gap n/2 with n^-1 folded in).
 * In [0, 2q), out [0, q). */
static void inv_last_r4(uint64_t *a, size_t n, const uint64_t *W, const uint64_t *WP, const vtw *ni,
                        const vtw *wn, const vconst *c)
{
    const vtw w2 = tw_bcast(W, WP, 2), w3 = tw_bcast(W, WP, 3);
    const size_t h = n / 4;
    uint64_t *x0 = a, *x1 = a + h, *x2 = x1 + h, *x3 = x2 + h;
    for (size_t j = 0; j < h; j += 4) {
        __m256i A = ld(x0 + j), B = ld(x1 + j), C = ld(x2 + j), D = ld(x3 + j);
        inv_bf(&A, &B, &w2, c);
        inv_bf(&C, &D, &w3, c);
        const __m256i a2 = mulshoup(_mm256_add_epi64(A, C), ni, c);
        const __m256i c2 = mulshoup(_mm256_sub_epi64(_mm256_add_epi64(A, c->q2), C), wn, c);
        const __m256i b2 = mulshoup(_mm256_add_epi64(B, D), ni, c);
        const __m256i d2 = mulshoup(_mm256_sub_epi64(_mm256_add_epi64(B, c->q2), D), wn, c);
        st(x0 + j, csub(a2, c->q));
        st(x1 + j, csub(b2, c->q));
        st(x2 + j, csub(c2, c->q));
        st(x3 + j, csub(d2, c->q));
    }
}

/* Inverse: in [0, q) bit-reversed, out [0, q) natural order (n^-1 included). q < 2^62. */
void ntt_inverse_avx2(const ntt_table *t, uint64_t *a)
{
    const size_t n = t->n;
    if (n <= 8) {
        ntt_inverse_portable(t, a);
        return;
    }
    const uint64_t *W = t->inv, *WP = t->inv_shoup;
    const vconst c = make_consts(t->mod.q);
    /* n^-1 and W[1] * n^-1 with their Shoup constants, for the fused last stage */
    const vtw ni = tw_make(_mm256_set1_epi64x((long long)t->n_inv), _mm256_set1_epi64x((long long)t->n_inv_shoup));
    const vtw wnv = tw_make(_mm256_set1_epi64x((long long)t->inv1_n_inv),
                            _mm256_set1_epi64x((long long)t->inv1_n_inv_shoup));

    size_t len = n / 4 < BLOCK ? n / 4 : BLOCK;
    if (len < 8) len = 8;
    for (size_t b = 0; b < n / len; b++) inv_sub(a + b * len, len, n, b * (len / 8), W, WP, &c);
    size_t gap = len, k = n / (2 * len), stages = 0;
    for (size_t s = n / 2; s > len; s >>= 1) stages++; /* stages with gap len .. n/4 */
    if (stages == 0) {
        inv_last_r2(a, n, &ni, &wnv, &c);
        return;
    }
    stages--; /* the stage with gap n/4 goes into the fused ending */
    if (stages & 1) {
        inv_r2(a, n, gap, k, W, WP, &c);
        gap <<= 1;
        k >>= 1;
        stages--;
    }
    for (; stages; stages -= 2) {
        inv_r4(a, n, gap, k, W, WP, &c);
        gap <<= 2;
        k >>= 2;
    }
    inv_last_r4(a, n, W, WP, &ni, &wnv, &c);
}

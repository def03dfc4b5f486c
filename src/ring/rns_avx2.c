/* AVX2 RNS kernels: 4 lanes of 64 bits. AVX2 has _mm256_mul_epu32 but no 64-bit multiply,
 * so only the kernels that live on 32 x 32-bit products are vectorized here: the basis
 * conversion (residues below 2^60 in 30-bit pieces, Montgomery reduction in radix 2^30, as the
 * avx512 kernel of rns_avx512.c) and the additions; the others use the portable kernels. No
 * unsigned 64-bit compare: conditional subtractions compare signed, valid since every value is
 * below 2^63. Outputs fully reduced, hence equal to the portable kernels'. */
#include <immintrin.h>

#include "ring/rns_kernels.h"

#define AI static inline __attribute__((always_inline))
#define BIT(k) ((uint64_t)1 << (k))
#define ALIGNED __attribute__((aligned(64)))

AI __m256i ld(const uint64_t *p) { return _mm256_loadu_si256((const __m256i *)p); }
AI void st(uint64_t *p, __m256i v) { _mm256_storeu_si256((__m256i *)p, v); }
AI __m256i set1(uint64_t v) { return _mm256_set1_epi64x((long long)v); }
AI __m256i add(__m256i a, __m256i b) { return _mm256_add_epi64(a, b); }
AI __m256i sub(__m256i a, __m256i b) { return _mm256_sub_epi64(a, b); }
AI __m256i mul32(__m256i a, __m256i b) { return _mm256_mul_epu32(a, b); }
/* a mod b for a in [0, 2b), a and b below 2^63 */
AI __m256i csub(__m256i a, __m256i b) { return sub(a, _mm256_andnot_si256(_mm256_cmpgt_epi64(b, a), b)); }

static void add_avx2(uint64_t *out, const uint64_t *x, const uint64_t *y, size_t n, uint64_t q)
{
    const __m256i Q = set1(q);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) st(out + i, csub(add(ld(x + i), ld(y + i)), Q));
    rns_add_portable(out + i, x + i, y + i, n - i, q);
}

static void sub_avx2(uint64_t *out, const uint64_t *x, const uint64_t *y, size_t n, uint64_t q)
{
    const __m256i Q = set1(q);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) st(out + i, csub(add(sub(ld(x + i), ld(y + i)), Q), Q));
    rns_sub_portable(out + i, x + i, y + i, n - i, q);
}

typedef struct vmont30 {
    __m256i t, t0, t1, ninv, m30;
} vmont30;

AI void mont30_step(__m256i *Dlo, __m256i *Dhi, const vmont30 *c)
{
    const __m256i m = _mm256_and_si256(mul32(*Dlo, c->ninv), c->m30);
    const __m256i lo = add(*Dlo, mul32(m, c->t0));
    *Dhi = add(*Dhi, add(_mm256_srli_epi64(lo, 30), mul32(m, c->t1)));
}

/* S = D0 + D1 2^30 + D2 2^60 (at most 7 products below 2^120) -> S 2^-90 mod t, t < 2^60. */
AI __m256i redc90(__m256i D0, __m256i D1, __m256i D2, const vmont30 *c)
{
    __m256i D3 = _mm256_setzero_si256();
    mont30_step(&D0, &D1, c);
    mont30_step(&D1, &D2, c);
    mont30_step(&D2, &D3, c);
    return csub(D3, c->t);
}

static void bc_target_emul(uint64_t *o, const uint64_t *y0, const uint64_t *y1, size_t stride, size_t ni,
                           const uint64_t *h, size_t no, const modulus *mk, size_t lv)
{
    const vmont30 c = {set1(mk->q), set1(mk->q & (BIT(30) - 1)), set1(mk->q >> 30), set1(mk->mont_neg_inv),
                       set1(BIT(30) - 1)};
    const __m256i z = _mm256_setzero_si256();
    for (size_t i0 = 0; i0 < ni; i0 += REDC_TERMS) {
        const size_t i1 = i0 + REDC_TERMS < ni ? i0 + REDC_TERMS : ni;
        size_t x = 0;
        for (; x + 8 <= lv; x += 8) {
            __m256i D0[2], D1[2], D2[2];
            for (int u = 0; u < 2; u++) D0[u] = D1[u] = D2[u] = z;
            for (size_t i = i0; i < i1; i++) {
                const uint64_t hv = h[i * no];
                const __m256i H0 = set1(hv & (BIT(30) - 1)), H1 = set1(hv >> 30);
                const uint64_t *a = y0 + i * stride + x, *b = y1 + i * stride + x;
                for (int u = 0; u < 2; u++) {
                    const __m256i A0 = ld(a + 4 * u), A1 = ld(b + 4 * u);
                    D0[u] = add(D0[u], mul32(A0, H0));
                    D1[u] = add(D1[u], add(mul32(A0, H1), mul32(A1, H0)));
                    D2[u] = add(D2[u], mul32(A1, H1));
                }
            }
            for (int u = 0; u < 2; u++) {
                __m256i r = redc90(D0[u], D1[u], D2[u], &c);
                if (i0) r = csub(add(ld(o + x + 4 * u), r), c.t);
                st(o + x + 4 * u, r);
            }
        }
        for (; x < lv; x += 4) {
            __m256i D0 = z, D1 = z, D2 = z;
            for (size_t i = i0; i < i1; i++) {
                const uint64_t hv = h[i * no];
                const __m256i H0 = set1(hv & (BIT(30) - 1)), H1 = set1(hv >> 30);
                const __m256i A0 = ld(y0 + i * stride + x), A1 = ld(y1 + i * stride + x);
                D0 = add(D0, mul32(A0, H0));
                D1 = add(D1, add(mul32(A0, H1), mul32(A1, H0)));
                D2 = add(D2, mul32(A1, H1));
            }
            __m256i r = redc90(D0, D1, D2, &c);
            if (i0) r = csub(add(ld(o + x), r), c.t);
            st(o + x, r);
        }
    }
}

static void baseconv_block_avx2(const baseconv *bc, uint64_t *out, const uint64_t *in, size_t n_out, size_t c0,
                                size_t len)
{
    uint64_t ALIGNED y[RNS_BC_WORDS], y0[RNS_BC_WORDS], y1[RNS_BC_WORDS];
    const size_t n = bc->in.n, ni = bc->in.limbs, no = bc->out.limbs;
    const size_t lv = len & ~(size_t)3, stride = (len + 7) & ~(size_t)7;
    bool src60 = true;
    const __m256i M30 = set1(BIT(30) - 1);
    for (size_t i = 0; i < ni; i++) {
        uint64_t *yi = y + i * stride;
        rns_bc_scalar_y(bc, yi, in + i * n + c0, i, 0, len);
        for (size_t c = 0; c < lv; c += 4) {
            const __m256i Y = ld(yi + c);
            st(y0 + i * stride + c, _mm256_and_si256(Y, M30));
            st(y1 + i * stride + c, _mm256_srli_epi64(Y, 30));
        }
        src60 &= bc->in.tab[i]->mod.q < BIT(60);
    }
    for (size_t k = 0; k < n_out; k++) {
        const modulus *mk = &bc->out.tab[k]->mod;
        uint64_t *o = out + k * n + c0;
        if (src60 && mk->q < BIT(60)) bc_target_emul(o, y0, y1, stride, ni, bc_hat_mod90(bc) + k, no, mk, lv);
        else rns_bc_scalar_out(bc, o, y, stride, k, 0, lv);
        rns_bc_scalar_out(bc, o, y, stride, k, lv, len);
    }
}

const rns_kernels rns_kernels_avx2 = {
    "avx2",
    SIMD_AVX2,
    add_avx2,
    sub_avx2,
    rns_mul_portable,
    rns_mul_scalar_portable,
    rns_sub_mul_scalar_portable,
    rns_tensor_portable,
    rns_ip_redc_portable,
    rns_rescale_lift_portable,
    rns_permute_portable,
    baseconv_block_avx2,
};

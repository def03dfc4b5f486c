/* AVX2 RNS kernels: 4 lanes of 64 bits. AVX2 has _mm256_mul_epu32 but no 64-bit multiply, so
 * the kernels that can live on 30 x 30-bit products are vectorized (rns_emul30.h, shared with
 * the avx512 level: basis conversion, inner product, tensor product and pointwise product of
 * residues below 2^60), plus the additions and the Shoup multiplications by a constant (as in
 * ntt_avx2.c). No unsigned 64-bit compare: conditional subtractions use the sign of the
 * difference, valid since every value compared is within 2^63 of the bound. Outputs fully
 * reduced, hence equal to the portable kernels'. */
#include <immintrin.h>
#include <stdint.h>

#include "ring/rns_kernels.h"

#define AI static inline __attribute__((always_inline))
#define BIT(k) ((uint64_t)1 << (k))
#define ALIGNED __attribute__((aligned(64)))

typedef __m256i vec;
#define VL 4
AI __m256i ld(const uint64_t *p) { return _mm256_loadu_si256((const __m256i *)p); }
AI void st(uint64_t *p, __m256i v) { _mm256_storeu_si256((__m256i *)p, v); }
/* non-temporal when nt (p 32-byte aligned) */
AI void put(uint64_t *p, __m256i v, int nt)
{
    if (nt) _mm256_stream_si256((__m256i *)p, v);
    else _mm256_storeu_si256((__m256i *)p, v);
}
AI __m256i vand(__m256i a, __m256i b) { return _mm256_and_si256(a, b); }
#define srli(a, k) _mm256_srli_epi64(a, k)
AI __m256i set1(uint64_t v) { return _mm256_set1_epi64x((long long)v); }
AI __m256i add(__m256i a, __m256i b) { return _mm256_add_epi64(a, b); }
AI __m256i sub(__m256i a, __m256i b) { return _mm256_sub_epi64(a, b); }
AI __m256i mul32(__m256i a, __m256i b) { return _mm256_mul_epu32(a, b); }
/* a mod b for a in [0, 2b), b <= 2^63: the sign of a - b picks */
AI __m256i csub(__m256i a, __m256i b)
{
    const __m256d d = _mm256_castsi256_pd(_mm256_sub_epi64(a, b));
    return _mm256_castpd_si256(_mm256_blendv_pd(d, _mm256_castsi256_pd(a), d));
}

/* A fixed multiplier w < q < 2^62 with its Shoup constant wp = floor(w 2^64 / q). */
typedef struct vshoup {
    __m256i w, wsw, wp, wph, q, qsw, q2, himask;
} vshoup;

static inline vshoup shoup_make(uint64_t w, uint64_t wp, uint64_t q)
{
    return (vshoup){set1(w),  set1((w << 32) | (w >> 32)), set1(wp),     set1(wp >> 32),
                    set1(q),  set1((q << 32) | (q >> 32)), set1(2 * q), set1(0xffffffff00000000ull)};
}

/* y w mod q in [0, q) for any 64-bit y (as ntt_avx2.c's mulshoup): the quotient estimate from
 * three _mm256_mul_epu32 is low by at most 2 besides Shoup's 1, so y w - qh q is in [0, 4q); its
 * low 64 bits are two _mm256_mul_epu32 plus the cross terms mod 2^32 from two
 * _mm256_mullo_epi32 on dword-swapped operands. */
AI __m256i shoup(__m256i y, const vshoup *s)
{
    const __m256i yh = _mm256_srli_epi64(y, 32);
    const __m256i qh = add(mul32(yh, s->wph),
                           add(_mm256_srli_epi64(mul32(y, s->wph), 32), _mm256_srli_epi64(mul32(yh, s->wp), 32)));
    const __m256i lo = sub(mul32(y, s->w), mul32(qh, s->q));
    const __m256i d = _mm256_sub_epi32(_mm256_mullo_epi32(y, s->wsw), _mm256_mullo_epi32(qh, s->qsw));
    const __m256i cross = add(_mm256_slli_epi64(d, 32), _mm256_and_si256(d, s->himask));
    return csub(csub(add(lo, cross), s->q2), s->q);
}

static void mul_scalar_avx2(uint64_t *out, const uint64_t *x, size_t n, uint64_t w, uint64_t wp, uint64_t q)
{
    const vshoup s = shoup_make(w, wp, q);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) st(out + i, shoup(ld(x + i), &s));
    rns_mul_scalar_portable(out + i, x + i, n - i, w, wp, q);
}

static void sub_mul_scalar_avx2(uint64_t *out, const uint64_t *x, const uint64_t *y, size_t n, uint64_t w,
                                uint64_t wp, uint64_t q)
{
    const vshoup s = shoup_make(w, wp, q);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) st(out + i, shoup(add(sub(ld(x + i), ld(y + i)), s.q), &s));
    rns_sub_mul_scalar_portable(out + i, x + i, y + i, n - i, w, wp, q);
}

/* 2^-4 mod t by four exact halvings (V + t if odd, then >> 1): from V < 8t, below
 * (8t + 15t) / 16 < 2t. */
typedef struct fix_2m4_consts {
    __m256i t;
} fix_2m4_consts;
static inline fix_2m4_consts fix_2m4_make(const modulus *m) { return (fix_2m4_consts){set1(m->q)}; }
AI vec fix_2m4(vec V, const fix_2m4_consts *f)
{
    const vec one = set1(1), z = set1(0);
    for (int k = 0; k < 4; k++) V = srli(add(V, vand(sub(z, vand(V, one)), f->t)), 1);
    return csub(V, f->t);
}

#include "ring/rns_emul30.h"

static void mul_avx2(uint64_t *out, const uint64_t *x, const uint64_t *y, size_t n, const modulus *m)
{
    if (m->q < BIT(60)) mul_emul(out, x, y, n, m);
    else rns_mul_portable(out, x, y, n, m);
}

static void tensor_avx2(uint64_t *d0, uint64_t *d1, uint64_t *d2, const uint64_t *a0, const uint64_t *a1,
                        const uint64_t *b0, const uint64_t *b1, size_t n, const modulus *m)
{
    if (m->q < BIT(60)) tensor_emul(d0, d1, d2, a0, a1, b0, b1, n, m);
    else rns_tensor_portable(d0, d1, d2, a0, a1, b0, b1, n, m);
}

static void ip_redc_avx2(uint64_t *out0, uint64_t *out1, const uint64_t *const *x, const uint64_t *const *k0,
                         const uint64_t *const *k1, unsigned count, size_t n, const modulus *m, bool accumulate)
{
    if (m->q < BIT(60) && count <= REDC_TERMS) ip_emul(out0, out1, x, k0, k1, count, n, m, accumulate);
    else rns_ip_redc_portable(out0, out1, x, k0, k1, count, n, m, accumulate);
}

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

static void baseconv_block_avx2(const baseconv *bc, uint64_t *out, const uint64_t *in, size_t n_out, size_t c0,
                                size_t len)
{
    uint64_t ALIGNED y[RNS_BC_WORDS], y0[RNS_BC_WORDS], y1[RNS_BC_WORDS];
    const size_t n = bc->in.n, ni = bc->in.limbs, no = bc->out.limbs;
    const size_t lv = len & ~(size_t)3, stride = (len + 7) & ~(size_t)7;
    const bool big = n * n_out * 8 >= ((size_t)8 << 20);
    bool src60 = true;
    uint64_t y1max = 0;
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
        if ((bc->in.tab[i]->mod.q - 1) >> 30 > y1max) y1max = (bc->in.tab[i]->mod.q - 1) >> 30;
    }
    for (size_t k = 0; k < n_out; k++) {
        const modulus *mk = &bc->out.tab[k]->mod;
        uint64_t *o = out + k * n + c0;
        const int nt = big && ((uintptr_t)o & 63) == 0;
        if (src60 && mk->q < BIT(60)) bc_target_emul(o, y0, y1, stride, ni, bc_hat_mod90(bc) + k, no, mk, lv, nt, y1max);
        else rns_bc_scalar_out(bc, o, y, stride, k, 0, lv);
        rns_bc_scalar_out(bc, o, y, stride, k, lv, len);
    }
    if (big) _mm_sfence();
}

const rns_kernels rns_kernels_avx2 = {
    "avx2",
    SIMD_AVX2,
    add_avx2,
    sub_avx2,
    mul_avx2,
    mul_scalar_avx2,
    sub_mul_scalar_avx2,
    tensor_avx2,
    ip_redc_avx2,
    rns_rescale_lift_portable,
    rns_permute_portable,
    baseconv_block_avx2,
    rns_sub_lookup_portable,
};

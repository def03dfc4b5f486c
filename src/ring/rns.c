#include "ring/rns.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#include "ring/rns_kernels.h"
#include "util/alloc.h"

#define FOR_LIMBS(b) _Pragma("omp parallel for schedule(static) if (b->limbs * b->n >= 32768)") \
    for (size_t k = 0; k < b->limbs; k++)

void rns_ntt(const rns_basis *b, uint64_t *a)
{
    FOR_LIMBS(b) ntt_forward(b->tab[k], a + k * b->n);
}

void rns_intt(const rns_basis *b, uint64_t *a)
{
    FOR_LIMBS(b) ntt_inverse(b->tab[k], a + k * b->n);
}

/* ---------------------------------------------------------------- kernel choice */

static const rns_kernels portable_kernels = {
    "portable",
    SIMD_PORTABLE,
    rns_add_portable,
    rns_sub_portable,
    rns_mul_portable,
    rns_mul_scalar_portable,
    rns_sub_mul_scalar_portable,
    rns_tensor_portable,
    rns_ip_redc_portable,
    rns_rescale_lift_portable,
    rns_permute_portable,
    rns_baseconv_block_portable,
    rns_sub_lookup_portable,
};

const rns_kernels *rns_kernels_for(simd_level level)
{
    if (!ntt_kernels_for(level)) return NULL;
    switch (level) {
#if defined(__x86_64__)
    case SIMD_AVX2: return &rns_kernels_avx2;
    case SIMD_AVX512: return &rns_kernels_avx512;
    case SIMD_AVX512IFMA: return &rns_kernels_avx512ifma;
#endif
    default: return &portable_kernels;
    }
}

static const rns_kernels *active_kernels;
static pthread_once_t active_once = PTHREAD_ONCE_INIT;

static void choose_kernels(void)
{
    active_kernels = rns_kernels_for(ntt_kernels_active()->level);
    if (!active_kernels) active_kernels = &portable_kernels;
}

const rns_kernels *rns_kernels_active(void)
{
    pthread_once(&active_once, choose_kernels);
    return active_kernels;
}

/* ---------------------------------------------------------------- portable kernels */

void rns_add_portable(uint64_t *out, const uint64_t *x, const uint64_t *y, size_t n, uint64_t q)
{
    for (size_t i = 0; i < n; i++) out[i] = add_mod(x[i], y[i], q);
}

void rns_sub_portable(uint64_t *out, const uint64_t *x, const uint64_t *y, size_t n, uint64_t q)
{
    for (size_t i = 0; i < n; i++) out[i] = sub_mod(x[i], y[i], q);
}

void rns_mul_portable(uint64_t *out, const uint64_t *x, const uint64_t *y, size_t n, const modulus *m)
{
    for (size_t i = 0; i < n; i++) out[i] = mul_mod(x[i], y[i], m);
}

void rns_mul_scalar_portable(uint64_t *out, const uint64_t *x, size_t n, uint64_t w, uint64_t wp, uint64_t q)
{
    for (size_t i = 0; i < n; i++) out[i] = mul_shoup(x[i], w, wp, q);
}

void rns_sub_mul_scalar_portable(uint64_t *out, const uint64_t *x, const uint64_t *y, size_t n, uint64_t w,
                                 uint64_t wp, uint64_t q)
{
    /* x - y + q < 2q: Shoup takes any 64-bit input */
    for (size_t i = 0; i < n; i++) out[i] = mul_shoup(x[i] - y[i] + q, w, wp, q);
}

void rns_tensor_portable(uint64_t *d0, uint64_t *d1, uint64_t *d2, const uint64_t *a0, const uint64_t *a1,
                         const uint64_t *b0, const uint64_t *b1, size_t n, const modulus *m)
{
    for (size_t i = 0; i < n; i++) {
        const uint64_t x0 = a0[i], x1 = a1[i], y0 = b0[i], y1 = b1[i];
        d0[i] = mul_mod(x0, y0, m);
        d1[i] = rns_tensor_d1_scalar(x0, x1, y0, y1, m);
        d2[i] = mul_mod(x1, y1, m);
    }
}

void rns_ip_redc_portable(uint64_t *out0, uint64_t *out1, const uint64_t *const *x, const uint64_t *const *k0,
                          const uint64_t *const *k1, unsigned count, size_t n, const modulus *m, bool accumulate)
{
    for (size_t i = 0; i < n; i++) rns_ip_scalar(out0, out1, x, k0, k1, count, i, m, accumulate);
}

void rns_rescale_lift_portable(uint64_t *out, const uint64_t *v, size_t n, uint64_t ql, const modulus *m)
{
    const uint64_t ql_mod = reduce64(ql, m);
    for (size_t i = 0; i < n; i++) out[i] = rns_rescale_lift_scalar(v[i], ql, ql_mod, m);
}

void rns_permute_portable(uint64_t *out, const uint64_t *src, const size_t *perm, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = src[perm[i]];
}

void rns_sub_lookup_portable(uint64_t *out, const uint64_t *x, const uint8_t *idx, const uint64_t *table, size_t n,
                             uint64_t q)
{
    for (size_t i = 0; i < n; i++) out[i] = sub_mod(x[i], table[idx[i]], q);
}

void rns_baseconv_block_portable(const baseconv *bc, uint64_t *out, const uint64_t *in, size_t n_out, size_t c0,
                                 size_t len)
{
    uint64_t y[RNS_BC_WORDS];
    const size_t n = bc->in.n, ni = bc->in.limbs;
    for (size_t i = 0; i < ni; i++) rns_bc_scalar_y(bc, y + i * len, in + i * n + c0, i, 0, len);
    for (size_t k = 0; k < n_out; k++) rns_bc_scalar_out(bc, out + k * n + c0, y, len, k, 0, len);
}

/* ---------------------------------------------------------------- limb-wise operations */

void rns_add(const rns_basis *b, uint64_t *out, const uint64_t *x, const uint64_t *y)
{
    const rns_kernels *kern = rns_kernels_active();
    const size_t n = b->n;
    for (size_t k = 0; k < b->limbs; k++) kern->add(out + k * n, x + k * n, y + k * n, n, b->tab[k]->mod.q);
}

void rns_sub(const rns_basis *b, uint64_t *out, const uint64_t *x, const uint64_t *y)
{
    const rns_kernels *kern = rns_kernels_active();
    const size_t n = b->n;
    for (size_t k = 0; k < b->limbs; k++) kern->sub(out + k * n, x + k * n, y + k * n, n, b->tab[k]->mod.q);
}

void rns_neg(const rns_basis *b, uint64_t *out, const uint64_t *x)
{
    const size_t n = b->n;
    for (size_t k = 0; k < b->limbs; k++) {
        const uint64_t q = b->tab[k]->mod.q;
        for (size_t i = k * n; i < (k + 1) * n; i++) out[i] = neg_mod(x[i], q);
    }
}

void rns_mul(const rns_basis *b, uint64_t *out, const uint64_t *x, const uint64_t *y)
{
    const rns_kernels *kern = rns_kernels_active();
    const size_t n = b->n;
    FOR_LIMBS(b) kern->mul(out + k * n, x + k * n, y + k * n, n, &b->tab[k]->mod);
}

void rns_mul_add(const rns_basis *b, uint64_t *acc, const uint64_t *x, const uint64_t *y)
{
    const size_t n = b->n;
    FOR_LIMBS(b)
    {
        const modulus *m = &b->tab[k]->mod;
        for (size_t i = k * n; i < (k + 1) * n; i++) acc[i] = add_mod(acc[i], mul_mod(x[i], y[i], m), m->q);
    }
}

void rns_mul_scalar(const rns_basis *b, uint64_t *out, const uint64_t *x, const uint64_t *c)
{
    const rns_kernels *kern = rns_kernels_active();
    const size_t n = b->n;
    for (size_t k = 0; k < b->limbs; k++) {
        const uint64_t q = b->tab[k]->mod.q;
        kern->mul_scalar(out + k * n, x + k * n, n, c[k], shoup_precompute(c[k], q), q);
    }
}

void rns_add_scalar(const rns_basis *b, uint64_t *out, const uint64_t *x, const uint64_t *c)
{
    const size_t n = b->n;
    for (size_t k = 0; k < b->limbs; k++) {
        const uint64_t q = b->tab[k]->mod.q;
        for (size_t i = k * n; i < (k + 1) * n; i++) out[i] = add_mod(x[i], c[k], q);
    }
}

void rns_from_small(const rns_basis *b, uint64_t *out, const int8_t *small)
{
    const size_t n = b->n;
    for (size_t k = 0; k < b->limbs; k++) {
        const uint64_t q = b->tab[k]->mod.q;
        for (size_t i = 0; i < n; i++) { /* + q for a negative value, by its sign mask (no branch: secrets) */
            const int64_t v = small[i];
            out[k * n + i] = (uint64_t)v + (q & (uint64_t)(v >> 63));
        }
    }
}

bool rns_in_range(const rns_basis *b, const uint64_t *a)
{
    for (size_t k = 0; k < b->limbs; k++) {
        const uint64_t q = b->tab[k]->mod.q;
        uint64_t bad = 0;
        for (size_t i = k * b->n; i < (k + 1) * b->n; i++) bad |= a[i] >= q;
        if (bad) return false;
    }
    return true;
}

int baseconv_init(baseconv *bc, const rns_basis *in, const rns_basis *out, bool times_r)
{
    *bc = (baseconv){.in = *in, .out = *out};
    const size_t ni = in->limbs, no = out->limbs;
    /* the vector kernels' constants follow the documented arrays (see rns_kernels.h) */
    bc->hat_inv = hecnn_alloc(2 * ni * 8);
    bc->hat_inv_shoup = hecnn_alloc(ni * 8);
    bc->hat_mod = hecnn_alloc(3 * ni * no * 8);
    if (!bc->hat_inv || !bc->hat_inv_shoup || !bc->hat_mod) {
        baseconv_free(bc);
        return -1;
    }
    uint64_t *hat_inv52 = bc->hat_inv + ni, *hat104 = bc->hat_mod + ni * no, *hat90 = bc->hat_mod + 2 * ni * no;
    for (size_t i = 0; i < ni; i++) {
        const modulus *mi = &in->tab[i]->mod;
        uint64_t hat = 1;
        for (size_t j = 0; j < ni; j++)
            if (j != i) hat = mul_mod(hat, in->tab[j]->mod.q % mi->q, mi);
        bc->hat_inv[i] = inv_mod(hat, mi);
        bc->hat_inv_shoup[i] = shoup_precompute(bc->hat_inv[i], mi->q);
        hat_inv52[i] = mi->q < ((uint64_t)1 << 50) ? (uint64_t)(((u128)bc->hat_inv[i] << 52) / mi->q) : 0;
        for (size_t k = 0; k < no; k++) {
            const modulus *mk = &out->tab[k]->mod;
            uint64_t h = 1;
            for (size_t j = 0; j < ni; j++)
                if (j != i) h = mul_mod(h, in->tab[j]->mod.q % mk->q, mk);
            if (times_r) h = mul_mod(h, mk->r_mod, mk);
            /* pre-multiplied by the Montgomery factor of each kernel (and 2^64 more for times_r), so
             * that one Montgomery reduction of the sum gives the exact value */
            bc->hat_mod[i * no + k] = mul_mod(h, mk->r_mod, mk);
            hat104[i * no + k] = mul_mod(h, reduce128((u128)1 << 104, mk), mk);
            hat90[i * no + k] = mul_mod(h, reduce128((u128)1 << 90, mk), mk);
        }
    }
    return 0;
}

void baseconv_free(baseconv *bc)
{
    hecnn_free(bc->hat_inv);
    hecnn_free(bc->hat_inv_shoup);
    hecnn_free(bc->hat_mod);
    bc->hat_inv = bc->hat_inv_shoup = bc->hat_mod = NULL;
}

void baseconv_apply(const baseconv *bc, uint64_t *out, const uint64_t *in)
{
    baseconv_apply_prefix(bc, out, in, bc->out.limbs);
}

void baseconv_apply_prefix(const baseconv *bc, uint64_t *out, const uint64_t *in, size_t n_out)
{
    const rns_kernels *kern = rns_kernels_active();
    const size_t n = bc->in.n, block = rns_bc_block(bc->in.limbs);
    /* Blocks of coefficients keep y = [x_i (Q/q_i)^-1]_{q_i} (in.limbs x block) in L1 while every
     * output limb reads it. */
#pragma omp parallel for schedule(static) if (n * n_out >= 32768)
    for (size_t c0 = 0; c0 < n; c0 += block) kern->baseconv_block(bc, out, in, n_out, c0, n - c0 < block ? n - c0 : block);
}

static size_t bit_reverse(size_t x, unsigned bits)
{
    size_t r = 0;
    for (unsigned i = 0; i < bits; i++) r |= ((x >> i) & 1) << (bits - 1 - i);
    return r;
}

/* Slot i of the NTT holds a(psi^(2 brv(i) + 1)); sigma_g(a) there is a(psi^((2 brv(i) + 1) g)). */
void galois_ntt_permutation(size_t *perm, unsigned log_n, uint64_t g)
{
    const size_t n = (size_t)1 << log_n;
    const uint64_t mask = 2 * (uint64_t)n - 1;
    for (size_t i = 0; i < n; i++) {
        uint64_t e = ((2 * (uint64_t)bit_reverse(i, log_n) + 1) * g) & mask;
        perm[i] = bit_reverse((size_t)(e >> 1), log_n);
    }
}

void rns_permute(const rns_basis *b, uint64_t *out, const uint64_t *in, const size_t *perm)
{
    const rns_kernels *kern = rns_kernels_active();
    const size_t n = b->n;
    for (size_t k = 0; k < b->limbs; k++) kern->permute(out + k * n, in + k * n, perm, n);
}

/* The samplers never branch on, nor index memory by, what they draw (tests/ct_secret.c checks
 * under valgrind): secrets and errors come out of them. */

void sample_ternary(prng *p, int8_t *out, size_t n)
{
    /* floor(3 r / 2^64) of a 64-bit word r: each value has probability 1/3 within 2^-64 (no
     * rejection, so no branch on the stream). */
    for (size_t i = 0; i < n; i++) out[i] = (int8_t)((int)mulhi64(prng_u64(p), 3) - 1);
}

/* Compare-exchange of two sort keys without a branch: the borrow of b - a, as a mask, swaps. */
static inline void cswap_u64(uint64_t *a, uint64_t *b)
{
    const uint64_t x = *a, y = *b, swap = (uint64_t)(((u128)y - x) >> 64), t = (x ^ y) & swap;
    *a = x ^ t, *b = y ^ t;
}

void sample_sparse_ternary(prng *p, int8_t *out, size_t n, size_t h)
{
    /* Exactly min(h, n) nonzero coefficients at uniformly random positions, in constant time: key k
     * is 61 random bits above a 2-bit code (+1 or -1 from a random bit for k < h, 0 after), and a
     * bitonic sorting network (compare-exchanges at fixed positions) sorts the keys: the codes come
     * out in a uniformly random order (keys tie with probability below n^2 2^-62). The array is
     * padded to a power of two with keys that sort last. */
    size_t m = 1;
    while (m < n) m <<= 1;
    uint64_t *key = hecnn_alloc(m * sizeof *key);
    if (!key) {
        memset(out, 0, n);
        return;
    }
    for (size_t k = 0; k < n; k++) {
        const uint64_t r = prng_u64(p), code = k < h ? 1 + (r & 1) : 0; /* 1: +1, 2: -1 */
        key[k] = r >> 3 << 2 | code; /* 61 random bits above the code, top bit clear: below the padding */
    }
    for (size_t k = n; k < m; k++) key[k] = UINT64_MAX;
    for (size_t size = 2; size <= m; size <<= 1)
        for (size_t stride = size >> 1; stride; stride >>= 1)
            for (size_t i = 0; i < m; i++) {
                const size_t j = i ^ stride;
                if (j <= i) continue;
                if (i & size) cswap_u64(key + j, key + i); /* descending run */
                else cswap_u64(key + i, key + j);
            }
    for (size_t k = 0; k < n; k++) {
        const uint64_t code = key[k] & 3;
        out[k] = (int8_t)((int)(code & 1) - (int)(code >> 1));
    }
    hecnn_secure_free(key, m * sizeof *key);
}

void sample_gaussian(prng *p, int8_t *out, size_t n, double sigma)
{
    int bound = (int)ceil(6 * sigma);
    if (bound > 127) bound = 127;
    /* cdf[k] = P(X <= k - bound) * 2^64, for the discrete Gaussian on [-bound, bound] */
    uint64_t cdf[255];
    long double total = 0, acc = 0;
    for (int v = -bound; v <= bound; v++) total += expl(-(long double)v * v / (2.0L * sigma * sigma));
    for (int v = -bound; v <= bound; v++) {
        acc += expl(-(long double)v * v / (2.0L * sigma * sigma));
        long double c = acc / total * 18446744073709551616.0L;
        cdf[v + bound] = c >= 18446744073709551615.0L ? UINT64_MAX : (uint64_t)c;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t r = prng_u64(p);
        int v = -bound;
        for (int k = 0; k < 2 * bound; k++) v += r >= cdf[k]; /* branch-free count */
        out[i] = (int8_t)v;
    }
}

int sample_uniform_limb(const uint8_t seed[HECNN_SEED_BYTES], uint16_t index, const ntt_table *tab, size_t n,
                        uint64_t *out)
{
    prng p;
    if (prng_init_limb(&p, seed, index, tab->mod.q)) return -1;
    const uint64_t q = tab->mod.q, mask = ((uint64_t)1 << tab->mod.bits) - 1;
    prng_fill_fresh(&p, out, n * 8);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) { /* in place: kept <= i */
        const uint64_t v = out[i] & mask;
        out[kept] = v;
        kept += v < q;
    }
    while (kept < n) {
        const uint64_t v = prng_u64(&p) & mask;
        out[kept] = v;
        kept += v < q;
    }
    prng_free(&p);
    return 0;
}

int sample_uniform(const uint8_t seed[HECNN_SEED_BYTES], uint16_t index, const rns_basis *b, uint64_t *out)
{
    bool failed = false;
#pragma omp parallel for schedule(static) if (b->n >= 8192 && b->limbs > 1)
    for (size_t k = 0; k < b->limbs; k++)
        if (sample_uniform_limb(seed, index, b->tab[k], b->n, out + k * b->n)) failed = true;
    return failed ? -1 : 0;
}

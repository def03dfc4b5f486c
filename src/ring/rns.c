#include "ring/rns.h"

#include <math.h>
#include <string.h>

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

void rns_add(const rns_basis *b, uint64_t *out, const uint64_t *x, const uint64_t *y)
{
    const size_t n = b->n;
    for (size_t k = 0; k < b->limbs; k++) {
        const uint64_t q = b->tab[k]->mod.q;
        for (size_t i = k * n; i < (k + 1) * n; i++) out[i] = add_mod(x[i], y[i], q);
    }
}

void rns_sub(const rns_basis *b, uint64_t *out, const uint64_t *x, const uint64_t *y)
{
    const size_t n = b->n;
    for (size_t k = 0; k < b->limbs; k++) {
        const uint64_t q = b->tab[k]->mod.q;
        for (size_t i = k * n; i < (k + 1) * n; i++) out[i] = sub_mod(x[i], y[i], q);
    }
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
    const size_t n = b->n;
    FOR_LIMBS(b)
    {
        const modulus *m = &b->tab[k]->mod;
        for (size_t i = k * n; i < (k + 1) * n; i++) out[i] = mul_mod(x[i], y[i], m);
    }
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
    const size_t n = b->n;
    for (size_t k = 0; k < b->limbs; k++) {
        const uint64_t q = b->tab[k]->mod.q, w = c[k], wp = shoup_precompute(c[k], q);
        for (size_t i = k * n; i < (k + 1) * n; i++) out[i] = mul_shoup(x[i], w, wp, q);
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
        for (size_t i = 0; i < n; i++) out[k * n + i] = small[i] < 0 ? q + (uint64_t)(int64_t)small[i] : (uint64_t)small[i];
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
    bc->hat_inv = hecnn_alloc(in->limbs * 8);
    bc->hat_inv_shoup = hecnn_alloc(in->limbs * 8);
    bc->hat_mod = hecnn_alloc(in->limbs * out->limbs * 8);
    if (!bc->hat_inv || !bc->hat_inv_shoup || !bc->hat_mod) {
        baseconv_free(bc);
        return -1;
    }
    for (size_t i = 0; i < in->limbs; i++) {
        const modulus *mi = &in->tab[i]->mod;
        uint64_t hat = 1;
        for (size_t j = 0; j < in->limbs; j++)
            if (j != i) hat = mul_mod(hat, in->tab[j]->mod.q % mi->q, mi);
        bc->hat_inv[i] = inv_mod(hat, mi);
        bc->hat_inv_shoup[i] = shoup_precompute(bc->hat_inv[i], mi->q);
        for (size_t k = 0; k < out->limbs; k++) {
            const modulus *mk = &out->tab[k]->mod;
            uint64_t h = 1;
            for (size_t j = 0; j < in->limbs; j++)
                if (j != i) h = mul_mod(h, in->tab[j]->mod.q % mk->q, mk);
            /* pre-multiplied by 2^64 (or 2^128) so that one Montgomery reduction finishes the sum */
            bc->hat_mod[i * out->limbs + k] = mul_mod(h, times_r ? mk->r2_mod : mk->r_mod, mk);
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

#define BASECONV_BLOCK 256

void baseconv_apply(const baseconv *bc, uint64_t *out, const uint64_t *in)
{
    baseconv_apply_prefix(bc, out, in, bc->out.limbs);
}

void baseconv_apply_prefix(const baseconv *bc, uint64_t *out, const uint64_t *in, size_t n_out)
{
    const size_t n = bc->in.n, ni = bc->in.limbs, no = bc->out.limbs;
    /* Blocks of coefficients keep y (ni x block) and the 128-bit accumulators in L1 while every
     * output limb reads them; each product is then one widening multiply and a 128-bit add. */
#pragma omp parallel for schedule(static) if (n * n_out >= 32768)
    for (size_t c0 = 0; c0 < n; c0 += BASECONV_BLOCK) {
        uint64_t y[RNS_MAX_LIMBS * BASECONV_BLOCK];
        u128 acc[BASECONV_BLOCK];
        const size_t len = n - c0 < BASECONV_BLOCK ? n - c0 : BASECONV_BLOCK;
        for (size_t i = 0; i < ni; i++) {
            const uint64_t q = bc->in.tab[i]->mod.q, w = bc->hat_inv[i], wp = bc->hat_inv_shoup[i];
            const uint64_t *x = in + i * n + c0;
            uint64_t *yi = y + i * BASECONV_BLOCK;
            for (size_t c = 0; c < len; c++) yi[c] = mul_shoup(x[c], w, wp, q);
        }
        for (size_t k = 0; k < n_out; k++) {
            const modulus *m = &bc->out.tab[k]->mod;
            uint64_t *o = out + k * n + c0;
            /* Montgomery reduction needs the sum below t * 2^64: at most REDC_TERMS terms at a time */
            for (size_t i0 = 0; i0 < ni; i0 += REDC_TERMS) {
                const size_t i1 = i0 + REDC_TERMS < ni ? i0 + REDC_TERMS : ni;
                for (size_t c = 0; c < len; c++) acc[c] = 0;
                for (size_t i = i0; i < i1; i++) {
                    const uint64_t h = bc->hat_mod[i * no + k], *yi = y + i * BASECONV_BLOCK;
                    for (size_t c = 0; c < len; c++) acc[c] += (u128)yi[c] * h;
                }
                if (i0 == 0)
                    for (size_t c = 0; c < len; c++) o[c] = redc128(acc[c], m);
                else
                    for (size_t c = 0; c < len; c++) o[c] = add_mod(o[c], redc128(acc[c], m), m->q);
            }
        }
    }
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
    const size_t n = b->n;
    for (size_t k = 0; k < b->limbs; k++)
        for (size_t i = 0; i < n; i++) out[k * n + i] = in[k * n + perm[i]];
}

void sample_ternary(prng *p, int8_t *out, size_t n)
{
    /* Rejection on bytes >= 255 keeps the three values exactly equiprobable. */
    for (size_t i = 0; i < n;) {
        uint8_t byte;
        prng_bytes(p, &byte, 1);
        if (byte == 255) continue;
        out[i++] = (int8_t)(byte % 3) - 1;
    }
}

static uint64_t uniform_below(prng *p, uint64_t bound)
{
    uint64_t mask = bound - 1;
    mask |= mask >> 1, mask |= mask >> 2, mask |= mask >> 4, mask |= mask >> 8, mask |= mask >> 16,
        mask |= mask >> 32;
    for (;;) {
        uint64_t v = prng_u64(p) & mask;
        if (v < bound) return v;
    }
}

void sample_sparse_ternary(prng *p, int8_t *out, size_t n, size_t h)
{
    /* Partial Fisher–Yates: the first h positions of a random permutation get +-1. */
    memset(out, 0, n);
    size_t *idx = hecnn_alloc(n * sizeof *idx);
    if (!idx) return;
    for (size_t i = 0; i < n; i++) idx[i] = i;
    for (size_t i = 0; i < h && i < n; i++) {
        size_t j = i + (size_t)uniform_below(p, n - i);
        size_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
        out[idx[i]] = (prng_u64(p) & 1) ? 1 : -1;
    }
    hecnn_secure_free(idx, n * sizeof *idx);
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

void sample_uniform(prng *p, const rns_basis *b, uint64_t *out)
{
    for (size_t k = 0; k < b->limbs; k++) {
        const uint64_t q = b->tab[k]->mod.q;
        uint64_t mask = ((uint64_t)1 << b->tab[k]->mod.bits) - 1;
        for (size_t i = 0; i < b->n;) {
            uint64_t v = prng_u64(p) & mask;
            if (v < q) out[k * b->n + i++] = v;
        }
    }
}

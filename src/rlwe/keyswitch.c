/* Hybrid key switching (dnum digits, special modulus P) with a hoistable decomposition. */
#include <string.h>

#include "ring/rns_kernels.h"
#include "rlwe/rlwe.h"
#include "util/alloc.h"
#include "util/error.h"

static unsigned digits_at(const rlwe_context *ctx, unsigned level) { return (level + ctx->alpha) / ctx->alpha; }

void ks_decomposition_free(ks_decomposition *dec)
{
    hecnn_free(dec->data);
    dec->data = NULL;
}

hecnn_status ks_decompose_ws(const rlwe_context *ctx, const ks_special *sp, ks_decomposition *dec, uint64_t *data,
                             uint64_t *scratch, const uint64_t *d, unsigned level)
{
    const size_t n = ctx->n, limbs = level + 1 + sp->n_p;
    const unsigned digits = digits_at(ctx, level);
    const rns_kernels *kern = rns_kernels_active();
    *dec = (ks_decomposition){.level = level, .digits = digits, .limbs = limbs, .sp = sp, .data = data};
    uint64_t *coef = scratch, *conv = scratch + (size_t)(level + 1) * n;
    rns_basis bq, bqp;
    rlwe_basis_q(ctx, &bq, level);
    rlwe_basis_qp_special(ctx, &bqp, level, sp);
    memcpy(coef, d, (size_t)(level + 1) * n * 8);
    rns_intt(&bq, coef);
    for (unsigned j = 0; j < digits; j++) {
        const unsigned lo = j * ctx->alpha, hi = lo + ctx->alpha < level + 1 ? lo + ctx->alpha : level + 1;
        uint64_t *out = data + (size_t)j * limbs * n;
        /* source limbs: the digit itself; targets: every other limb of Q_l ∪ P */
        rns_basis src = {.limbs = hi - lo, .n = n}, dst = {.limbs = 0, .n = n};
        size_t dst_index[RNS_MAX_LIMBS];
        for (unsigned i = lo; i < hi; i++) src.tab[i - lo] = bqp.tab[i];
        for (size_t i = 0; i < limbs; i++)
            if (i < lo || i >= hi) {
                dst_index[dst.limbs] = i;
                dst.tab[dst.limbs++] = bqp.tab[i];
            }
        baseconv bc;
        if (baseconv_init(&bc, &src, &dst, true)) return hecnn_fail(HECNN_ERR_NO_MEMORY, "basis conversion");
        baseconv_apply(&bc, conv, coef + (size_t)lo * n);
        baseconv_free(&bc);
        rns_ntt(&dst, conv);
#pragma omp parallel for schedule(static) if (n >= 8192)
        for (size_t t = 0; t < dst.limbs; t++) memcpy(out + dst_index[t] * n, conv + t * n, n * 8);
        /* the digit's own limbs, also in Montgomery form (x * 2^64) */
#pragma omp parallel for schedule(static) if (n >= 8192)
        for (unsigned i = lo; i < hi; i++) {
            const modulus *m = &ctx->tables[i].mod;
            kern->mul_scalar(out + (size_t)i * n, d + (size_t)i * n, n, m->r_mod, shoup_precompute(m->r_mod, m->q), m->q);
        }
    }
    return HECNN_OK;
}

hecnn_status ks_decompose(const rlwe_context *ctx, const ks_special *sp, ks_decomposition *dec, const uint64_t *d,
                          unsigned level)
{
    const size_t n = ctx->n, limbs = level + 1 + sp->n_p;
    uint64_t *data = hecnn_alloc((size_t)digits_at(ctx, level) * limbs * n * 8);
    uint64_t *scratch = hecnn_alloc(ks_decompose_scratch_words(ctx, level) * 8);
    hecnn_status st = data && scratch ? ks_decompose_ws(ctx, sp, dec, data, scratch, d, level)
                                      : hecnn_fail(HECNN_ERR_NO_MEMORY, "key-switching decomposition");
    hecnn_free(scratch);
    if (st) {
        hecnn_free(data);
        dec->data = NULL;
    }
    return st;
}

/* The fast conversion of [a]_P (y_j = [a_j (P/p_j)^-1]_{p_j}) yields sum_j y_j P/p_j = [a]_P + u P with
 * u = floor(sum_j y_j / p_j) in [0, n_p). alpha = round(sum_j y_j / p_j) turns it into the centred
 * representative: ModDown then rounds to nearest (error 1/2) instead of leaving u (up to n_p - 1),
 * which the secret would multiply into the noise. A sum within 2^-40 of a half may round either
 * way; both choices are valid representatives. a_p: the P limbs in coefficient form. */
void mod_down_correction(const rlwe_context *ctx, const ks_special *sp, uint8_t *alpha, const uint64_t *a_p)
{
    const size_t n = ctx->n;
    const baseconv *bc = &sp->p_to_q;
    double inv_p[RLWE_MAX_PRIMES];
    for (unsigned j = 0; j < sp->n_p; j++) inv_p[j] = 1.0 / (double)bc->in.tab[j]->mod.q;
#pragma omp parallel for schedule(static) if (n >= 8192)
    for (size_t i = 0; i < n; i++) {
        double sum = 0.5;
        for (unsigned j = 0; j < sp->n_p; j++) {
            const uint64_t p = bc->in.tab[j]->mod.q;
            sum += (double)mul_shoup(a_p[(size_t)j * n + i], bc->hat_inv[j], bc->hat_inv_shoup[j], p) * inv_p[j];
        }
        alpha[i] = (uint8_t)sum;
    }
}

void ks_mod_down_ws(const rlwe_context *ctx, const ks_special *sp, uint64_t *out, uint64_t *a, unsigned level,
                    uint64_t *scratch)
{
    const size_t n = ctx->n;
    rns_basis bp, bq;
    rlwe_basis_p(ctx, &bp);
    bp.limbs = sp->n_p;
    rlwe_basis_q(ctx, &bq, level);
    uint64_t *pa = a + (size_t)(level + 1) * n, *conv = scratch;
    uint8_t *alpha = (uint8_t *)(scratch + (size_t)(level + 1) * n);
    rns_intt(&bp, pa);
    /* Convert [a]_P to Q_l: the first level + 1 outputs of the context's P -> Q conversion. */
    baseconv_apply_prefix(&sp->p_to_q, conv, pa, level + 1);
    mod_down_correction(ctx, sp, alpha, pa);
    /* conv_k -= alpha * P: the centred [a]_P, so that the division below rounds to nearest */
    const rns_kernels *kern = rns_kernels_active();
#pragma omp parallel for schedule(static) if (level >= 1 && n >= 8192)
    for (unsigned k = 0; k <= level; k++) {
        const modulus *m = &ctx->tables[k].mod;
        uint64_t multiple[RLWE_MAX_PRIMES + RNS_LOOKUP_ENTRIES] = {0}; /* alpha <= n_p */
        for (unsigned j = 0; j <= sp->n_p; j++) multiple[j] = mul_mod(j, sp->p_mod_q[k], m);
        uint64_t *y = conv + (size_t)k * n;
        if (sp->n_p < RNS_LOOKUP_ENTRIES) kern->sub_lookup(y, y, alpha, multiple, n, m->q);
        else rns_sub_lookup_portable(y, y, alpha, multiple, n, m->q);
    }
    rns_ntt(&bq, conv);
#pragma omp parallel for schedule(static) if (level >= 1 && n >= 8192)
    for (unsigned k = 0; k <= level; k++) {
        const uint64_t q = ctx->tables[k].mod.q, w = sp->p_inv_mod_q[k], wp = shoup_precompute(w, q);
        kern->sub_mul_scalar(out + (size_t)k * n, a + (size_t)k * n, conv + (size_t)k * n, n, w, wp, q);
    }
}

hecnn_status ks_mod_down(const rlwe_context *ctx, const ks_special *sp, uint64_t *out, uint64_t *a, unsigned level)
{
    uint64_t *scratch = hecnn_alloc(ks_mod_down_scratch_words(ctx, level) * 8);
    if (!scratch) return hecnn_fail(HECNN_ERR_NO_MEMORY, "mod-down buffer");
    ks_mod_down_ws(ctx, sp, out, a, level, scratch);
    hecnn_free(scratch);
    return HECNN_OK;
}

hecnn_status ks_inner_product(const rlwe_context *ctx, uint64_t *r0, uint64_t *r1, const ks_decomposition *dec,
                              const size_t *perm, const rlwe_switching_key *k)
{
    const size_t n = ctx->n, limbs = dec->limbs;
    const unsigned level = dec->level;
    if (k->max_level < level) return hecnn_fail(HECNN_ERR_LEVEL_MISMATCH, "key for level %u used at level %u", k->max_level, level);
    if (swk_special(k) != dec->sp)
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "key over %u special primes used with a decomposition over %u",
                          swk_special(k)->n_p, dec->sp->n_p);
    /* Limb t of Q_l ∪ P is key limb t for the q part and max_level + 1 + (t - level - 1) for P.
     * With a Galois permutation, each digit's limb is first gathered into a per-thread buffer:
     * the random reads then stay within one limb (L2-resident) at a time. A compact key's limbs
     * are unpacked (b) and re-expanded (a) into per-thread buffers just before they are used. */
    bool no_memory = false, no_random = false;
    const rns_kernels *kern = rns_kernels_active();
#pragma omp parallel if (n >= 8192)
    {
        uint64_t *gathered = perm ? hecnn_alloc((size_t)dec->digits * n * 8) : NULL;
        uint64_t *key_limbs = k->compact ? hecnn_alloc((size_t)dec->digits * 2 * n * 8) : NULL;
        const bool ready = (!perm || gathered) && (!k->compact || key_limbs);
        if (!ready) no_memory = true;
#pragma omp for schedule(static)
        for (size_t t = 0; t < limbs; t++) {
            if (!ready) continue;
            const size_t kt = t <= level ? t : t + (k->max_level - level);
            const uint64_t *x[RNS_MAX_LIMBS], *kb[RNS_MAX_LIMBS], *ka[RNS_MAX_LIMBS];
            bool have_key = true;
            for (unsigned j = 0; j < dec->digits; j++) {
                const uint64_t *src = dec->data + ((size_t)j * limbs + t) * n;
                if (perm) {
                    uint64_t *g = gathered + (size_t)j * n;
                    kern->permute(g, src, perm, n);
                    src = g;
                }
                x[j] = src;
                /* whole keys need no scratch (key_limbs NULL): no arithmetic on a NULL pointer */
                kb[j] = swk_b_limb(k, j, kt, key_limbs ? key_limbs + (size_t)2 * j * n : NULL);
                ka[j] = swk_a_limb(k, j, kt, key_limbs ? key_limbs + (size_t)(2 * j + 1) * n : NULL);
                have_key &= ka[j] != NULL;
            }
            if (!have_key) {
                no_random = true;
                continue;
            }
            /* The decomposition carries 2^64, so Montgomery reduction gives the exact inner product;
             * at most REDC_TERMS digits are summed per reduction. */
            const modulus *m = &swk_limb_table(k, kt)->mod;
            for (unsigned j0 = 0; j0 < dec->digits; j0 += REDC_TERMS) {
                const unsigned j1 = j0 + REDC_TERMS < dec->digits ? j0 + REDC_TERMS : dec->digits;
                kern->ip_redc(r0 + t * n, r1 + t * n, x + j0, kb + j0, ka + j0, j1 - j0, n, m, j0 != 0);
            }
        }
        hecnn_free(gathered);
        hecnn_free(key_limbs);
    }
    if (no_memory) return hecnn_fail(HECNN_ERR_NO_MEMORY, "key-switching buffers");
    return no_random ? hecnn_fail(HECNN_ERR_RANDOM, "AES-CTR init") : HECNN_OK;
}

hecnn_status ks_apply(const rlwe_context *ctx, uint64_t *out0, uint64_t *out1, const ks_decomposition *dec,
                      const size_t *perm, const rlwe_switching_key *k)
{
    const size_t words = dec->limbs * ctx->n;
    uint64_t *acc = hecnn_alloc(2 * words * 8);
    if (!acc) return hecnn_fail(HECNN_ERR_NO_MEMORY, "key-switching accumulator");
    hecnn_status st = ks_inner_product(ctx, acc, acc + words, dec, perm, k);
    if (!st) st = ks_mod_down(ctx, dec->sp, out0, acc, dec->level);
    if (!st) st = ks_mod_down(ctx, dec->sp, out1, acc + words, dec->level);
    hecnn_free(acc);
    return st;
}

hecnn_status keyswitch(const rlwe_context *ctx, uint64_t *out0, uint64_t *out1, const uint64_t *d, unsigned level,
                       const rlwe_switching_key *k)
{
    if (k->max_level < level) return hecnn_fail(HECNN_ERR_LEVEL_MISMATCH, "key for level %u used at level %u", k->max_level, level);
    ks_decomposition dec;
    hecnn_status st = ks_decompose(ctx, swk_special(k), &dec, d, level);
    if (st) return st;
    st = ks_apply(ctx, out0, out1, &dec, NULL, k);
    ks_decomposition_free(&dec);
    return st;
}

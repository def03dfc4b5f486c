/* Double-hoisted baby-step giant-step (Bossuat, Mouchet, Troncoso-Pastoriza, Hubaux 2021) on the
 * engine's internal key-switching pieces.
 *
 * Everything stays in the extended basis Q_l ∪ P until the end: the input's c1 is decomposed
 * once; each baby rotation is the inner product of the permuted decomposition with its key plus
 * P sigma(c0) (no ModDown); the diagonals (kept compactly as signed 64-bit coefficients and
 * expanded to Q_l ∪ P, Montgomery form, when used) multiply those; each giant step ModDowns only
 * the c1 half of its inner sum, decomposes it and rotates, while the c0 half is permuted as it
 * is; one final ModDown. The engine's rotations would ModDown once per rotation instead. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "circuits/circuits_internal.h"
#include "circuits/dft.h"
#include "circuits/lintrans_internal.h"
#include "ckks/internal.h"
#include "ring/rns_kernels.h"

/* Below this ring degree a limb is too little work to share between threads. */
#define LT_PAR_MIN_N 8192

/* ---- compact diagonals --------------------------------------------------------------------- */

int lt_compact_encode(int64_t *out, const long double complex *v, size_t slots, double scale, const long double complex *tw)
{
    long double complex *w = hecnn_alloc(slots * sizeof *w);
    if (!w) return -1;
    memcpy(w, v, slots * sizeof *w);
    dft_reference_inverse_tw(slots, w, tw);
    int rc = 0;
    for (size_t i = 0; i < slots && !rc; i++) {
        const long double re = roundl(creall(w[i]) * (long double)scale), im = roundl(cimagl(w[i]) * (long double)scale);
        if (!(fabsl(re) < 0x1p62L) || !(fabsl(im) < 0x1p62L)) rc = 1;
        out[i] = (int64_t)re;
        out[slots + i] = (int64_t)im;
    }
    hecnn_free(w);
    return rc;
}

/* v mod q for |v| < 2^63, without a division */
static inline uint64_t signed_mod(int64_t v, const modulus *m)
{
    const uint64_t a = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v, r = reduce64(a, m);
    return v < 0 ? neg_mod(r, m->q) : r;
}

void lt_reduce_signed_avx512(uint64_t *dst, const int64_t *src, size_t count, uint64_t q);

static void reduce_run(uint64_t *dst, const int64_t *src, size_t count, const modulus *m)
{
    if (simd_cpu_level() >= SIMD_AVX512 && ntt_kernels_active()->level >= SIMD_AVX512) {
        lt_reduce_signed_avx512(dst, src, count, m->q);
        return;
    }
    for (size_t i = 0; i < count; i++) dst[i] = signed_mod(src[i], m);
}

/* Limb of Q_level ∪ P (NTT form, plain, not Montgomery) of a compact diagonal. */
static void expand_limb(const ckks_context *ctx, uint64_t *dst, const int64_t *coef, size_t slots, const ntt_table *tab)
{
    const size_t n = ctx->rlwe.n, gap = n / (2 * slots);
    const modulus *m = &tab->mod;
    if (gap == 1) {
        reduce_run(dst, coef, slots, m);
        reduce_run(dst + n / 2, coef + slots, slots, m);
    } else {
        memset(dst, 0, n * 8);
        for (size_t i = 0; i < slots; i++) {
            dst[i * gap] = signed_mod(coef[i], m);
            dst[n / 2 + i * gap] = signed_mod(coef[slots + i], m);
        }
    }
    ntt_forward(tab, dst);
}

/* ---- helpers ------------------------------------------------------------------------------- */

typedef struct qp_ctx {
    const ckks_context *ctx;
    unsigned level;
    size_t limbs, n;
    rns_basis qp;
} qp_ctx;

static const modulus *qp_mod(const qp_ctx *c, size_t t) { return &c->qp.tab[t]->mod; }

/* (r0, r1) = <perm(dec), key> over all limbs of Q_l ∪ P (perm == NULL: none). */
static void inner_product(const qp_ctx *c, uint64_t *r0, uint64_t *r1, const ks_decomposition *dec, const size_t *perm,
                          const ckks_switching_key *key, bool *failed)
{
    if (ks_inner_product(&c->ctx->rlwe, r0, r1, dec, perm, &key->rlwe)) *failed = true;
}

/* r0[t] += P * c0[t][perm] on the Q limbs (P c0 vanishes modulo the special primes). */
static void add_p_times(const qp_ctx *c, uint64_t *r0, const uint64_t *c0, const size_t *perm, bool *failed)
{
    const size_t n = c->n;
    const rns_kernels *kern = rns_kernels_active();
#pragma omp parallel if (c->n >= LT_PAR_MIN_N)
    {
        uint64_t *tmp = hecnn_alloc(n * 8);
        if (!tmp) *failed = true;
#pragma omp for schedule(static)
        for (size_t t = 0; t <= c->level; t++) {
            if (!tmp) continue;
            const modulus *m = qp_mod(c, t);
            const uint64_t w = c->ctx->rlwe.special[KS_ALL_P].p_mod_q[t], wp = shoup_precompute(w, m->q);
            const uint64_t *x = c0 + t * n;
            if (perm) {
                kern->permute(tmp, x, perm, n);
                x = tmp;
            }
            kern->mul_scalar(tmp, x, n, w, wp, m->q);
            kern->add(r0 + t * n, r0 + t * n, tmp, n, m->q);
        }
        hecnn_free(tmp);
    }
}

/* Key-switching halves into the workspace (no allocation per call): the engine's
 * ks_decompose_ws and ks_mod_down_ws. */
static hecnn_status decompose_ws(const qp_ctx *c, ks_decomposition *dec, uint64_t *data, uint64_t *scratch,
                                 const uint64_t *d)
{
    return ks_decompose_ws(&c->ctx->rlwe, &c->ctx->rlwe.special[KS_ALL_P], dec, data, scratch, d, c->level);
}

static void mod_down_ws(const qp_ctx *c, uint64_t *out, uint64_t *a, uint64_t *conv)
{
    ks_mod_down_ws(&c->ctx->rlwe, &c->ctx->rlwe.special[KS_ALL_P], out, a, c->level, conv);
}

/* ---- the transform ------------------------------------------------------------------------- */

void lt_workspace_free(lt_workspace *ws)
{
    if (!ws) return;
    hecnn_free(ws->buf);
    hecnn_free(ws->perm);
    hecnn_free(ws->uidx);
    *ws = (lt_workspace){0};
}

int lt_workspace_reserve(lt_workspace *ws, const ckks_context *ctx, size_t babies, size_t limbs, size_t n1)
{
    const size_t poly = limbs * ctx->rlwe.n;
    /* U (babies x 2 polys), acc, inner, rot (2 each), a decomposition (digits polys), scratch for
     * it and for ModDown (2 polys), and per thread REDC_TERMS expanded diagonal limbs */
    const size_t digits = (limbs - ctx->rlwe.n_p + ctx->rlwe.alpha - 1) / ctx->rlwe.alpha;
    const size_t words = (babies ? babies : 1) * 2 * poly + 6 * poly + digits * poly + 2 * poly +
                         (size_t)omp_get_max_threads() * REDC_TERMS * ctx->rlwe.n;
    if (words > ws->words) {
        hecnn_free(ws->buf);
        ws->buf = hecnn_alloc(words * 8);
        ws->words = ws->buf ? words : 0;
        if (!ws->buf) return -1;
    }
    if (!ws->perm) ws->perm = hecnn_alloc(ctx->rlwe.n * sizeof *ws->perm);
    if (n1 > ws->n1) {
        hecnn_free(ws->uidx);
        ws->uidx = hecnn_alloc(n1 * sizeof *ws->uidx);
        ws->n1 = ws->uidx ? n1 : 0;
    }
    return ws->perm && ws->uidx ? 0 : -1;
}

hecnn_status lt_apply_fast(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *in,
                           const ckks_lintrans *lt)
{
    lt_workspace ws = {0};
    hecnn_status st = lt_apply_fast_ws(ev, out, in, lt, &ws);
    lt_workspace_free(&ws);
    return st;
}

hecnn_status lt_apply_fast_ws(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *in,
                              const ckks_lintrans *lt, lt_workspace *ws)
{
    const ckks_context *ctx = lt->ctx;
    if (in->degree != 1) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "linear transform needs a degree-1 ciphertext");
    const unsigned level = in->level < lt->level ? in->level : lt->level;
    qp_ctx c = {.ctx = ctx, .level = level, .n = ctx->rlwe.n};
    rlwe_basis_qp(&ctx->rlwe, &c.qp, level);
    c.limbs = c.qp.limbs;
    const size_t n = c.n, limbs = c.limbs, poly = limbs * n, nb = lt->n_babies;
    const ckks_eval_keys *keys = ev->keys;

    /* keys first: a missing one fails before any work */
    const ckks_switching_key **bkey = hecnn_calloc(lt->n1, sizeof *bkey), **gkey = hecnn_calloc(lt->n_giants, sizeof *gkey);
    if (!bkey || !gkey) {
        hecnn_free(bkey);
        hecnn_free(gkey);
        return hecnn_fail(HECNN_ERR_NO_MEMORY, "linear transform");
    }
    hecnn_status st = HECNN_OK;
    for (size_t i = 0; i < nb + lt->n_giants && !st; i++) {
        const size_t r = i < nb ? lt->babies[i] : lt->giants[i - nb];
        if (!r) continue;
        const uint64_t g = ckks_galois_element_rotation(ctx, (int)r);
        const ckks_switching_key *k = keys ? ckks_eval_keys_galois(keys, g) : NULL;
        if (!k) st = hecnn_fail(HECNN_ERR_MISSING_KEY, "no Galois key for rotation %zu (element %llu)", r, (unsigned long long)g);
        else if (k->rlwe.max_level < level)
            st = hecnn_fail(HECNN_ERR_LEVEL_MISMATCH, "Galois key for level %u used at level %u", k->rlwe.max_level, level);
        if (i < nb) bkey[lt->babies[i]] = k;
        else gkey[i - nb] = k;
    }
    if (st) {
        hecnn_free(bkey);
        hecnn_free(gkey);
        return st;
    }

    ks_decomposition dec = {0};
    bool failed = false, have_acc = false;
    const uint64_t *c0 = ct_comp(in, 0), *c1 = ct_comp(in, 1);
    if (lt_workspace_reserve(ws, ctx, nb, limbs, lt->n1)) {
        hecnn_free(bkey);
        hecnn_free(gkey);
        return hecnn_fail(HECNN_ERR_NO_MEMORY, "linear transform buffers");
    }
    uint64_t *U = ws->buf, *acc = U + (nb ? nb : 1) * 2 * poly, *inner = acc + 2 * poly, *rot = inner + 2 * poly,
             *decbuf = rot + 2 * poly, *scratch = decbuf + (size_t)((level + ctx->rlwe.alpha) / ctx->rlwe.alpha) * poly,
             *dg = scratch + 2 * poly;
    size_t *perm = ws->perm, *uidx = ws->uidx;
    /* 1. babies: U_j = (P sigma_j(c0) + <sigma_j(dec c1), k_j>_0, <sigma_j(dec c1), k_j>_1) over Q_l ∪ P */
    bool any_rot = false;
    for (size_t i = 0; i < nb; i++) any_rot |= lt->babies[i] != 0;
    if (any_rot && (st = decompose_ws(&c, &dec, decbuf, scratch, c1))) goto done;
    for (size_t i = 0; i < nb && !st; i++) {
        const size_t j = lt->babies[i];
        uint64_t *u0 = U + i * 2 * poly, *u1 = u0 + poly;
        uidx[j] = i;
        if (j == 0) {
            memset(u0, 0, 2 * poly * 8);
            add_p_times(&c, u0, c0, NULL, &failed);
            add_p_times(&c, u1, c1, NULL, &failed);
            continue;
        }
        galois_ntt_permutation(perm, ctx->rlwe.log_n, ckks_galois_element_rotation(ctx, (int)j));
        inner_product(&c, u0, u1, &dec, perm, bkey[j], &failed);
        add_p_times(&c, u0, c0, perm, &failed);
    }
    /* U in Montgomery form (times 2^64), so that the products with plain diagonals come out
     * of the Montgomery inner product exactly */
    {
        const rns_kernels *kern = rns_kernels_active();
#pragma omp parallel for collapse(2) schedule(static) if (n >= LT_PAR_MIN_N)
        for (size_t i = 0; i < nb; i++)
            for (size_t t = 0; t < limbs; t++) {
                const modulus *m = qp_mod(&c, t);
                const uint64_t w = m->r_mod, wp = shoup_precompute(w, m->q);
                uint64_t *u = U + i * 2 * poly + t * n;
                kern->mul_scalar(u, u, n, w, wp, m->q);
                kern->mul_scalar(u + poly, u + poly, n, w, wp, m->q);
            }
    }
    dec.data = NULL;
    if (failed) st = hecnn_fail(HECNN_ERR_NO_MEMORY, "gather buffer");

    /* 2. giants */
    const rns_kernels *kern = rns_kernels_active();
    size_t di = 0;
    for (size_t gi = 0; gi < lt->n_giants && !st; gi++) {
        const size_t g = lt->giants[gi];
        size_t d0 = di;
        while (di < lt->n_diags && lt->off[di] - lt->off[di] % lt->n1 == g) di++;
        /* inner = sum_j pt_(g,j) U_j, REDC_TERMS diagonals per reduction */
        for (size_t a = d0; a < di; a += REDC_TERMS) {
            const size_t b = a + REDC_TERMS < di ? a + REDC_TERMS : di;
#pragma omp parallel for schedule(static) if (n >= LT_PAR_MIN_N)
            for (size_t t = 0; t < limbs; t++) {
                const uint64_t *x[REDC_TERMS], *k0[REDC_TERMS], *k1[REDC_TERMS];
                for (size_t e = a; e < b; e++) {
                    uint64_t *dst = dg + ((size_t)omp_get_thread_num() * REDC_TERMS + (e - a)) * n;
                    expand_limb(ctx, dst, lt->coef[e], lt->slots, c.qp.tab[t]);
                    const uint64_t *u = U + uidx[lt->off[e] % lt->n1] * 2 * poly;
                    x[e - a] = dst; /* plain diagonal times Montgomery U: REDC gives the product */
                    k0[e - a] = u + t * n;
                    k1[e - a] = u + poly + t * n;
                }
                kern->ip_redc(inner + t * n, inner + poly + t * n, x, k0, k1, (unsigned)(b - a), n, qp_mod(&c, t), a != d0);
            }
        }
        if (g == 0) {
            if (!have_acc) memcpy(acc, inner, 2 * poly * 8);
            else
                for (size_t t = 0; t < limbs; t++) {
                    const uint64_t q = qp_mod(&c, t)->q;
                    kern->add(acc + t * n, acc + t * n, inner + t * n, n, q);
                    kern->add(acc + poly + t * n, acc + poly + t * n, inner + poly + t * n, n, q);
                }
            have_acc = true;
            continue;
        }
        /* rotate the inner sum by g, staying in Q_l ∪ P: c1 half ModDown + decomposition,
         * c0 half permuted as it is */
        mod_down_ws(&c, rot, inner + poly, scratch);
        if ((st = decompose_ws(&c, &dec, decbuf, scratch, rot))) break;
        galois_ntt_permutation(perm, ctx->rlwe.log_n, ckks_galois_element_rotation(ctx, (int)g));
        inner_product(&c, rot, rot + poly, &dec, perm, gkey[gi], &failed);
        dec.data = NULL;
        if (failed) {
            st = hecnn_fail(HECNN_ERR_NO_MEMORY, "gather buffer");
            break;
        }
#pragma omp parallel for schedule(static) if (n >= LT_PAR_MIN_N)
        for (size_t t = 0; t < limbs; t++) {
            const uint64_t q = qp_mod(&c, t)->q;
            uint64_t *r0 = rot + t * n;
            /* the inner sum's c0 half is no longer needed: permute it into its c1 half's place */
            uint64_t *x = inner + poly + t * n;
            kern->permute(x, inner + t * n, perm, n);
            kern->add(r0, r0, x, n, q);
            if (have_acc) {
                kern->add(acc + t * n, acc + t * n, r0, n, q);
                kern->add(acc + poly + t * n, acc + poly + t * n, rot + poly + t * n, n, q);
            } else {
                memcpy(acc + t * n, r0, n * 8);
                memcpy(acc + poly + t * n, rot + poly + t * n, n * 8);
            }
        }
        have_acc = true;
    }
    if (st) goto done;
    /* 3. one ModDown of both halves */
    {
        const double scale = in->scale * lt->scale;
        const size_t slots = in->slots > lt->slots ? in->slots : lt->slots;
        if ((st = ct_reserve(out, 1, level))) goto done;
        if (have_acc) {
            mod_down_ws(&c, ct_comp(out, 0), acc, scratch);
            mod_down_ws(&c, ct_comp(out, 1), acc + poly, scratch);
        } else {
            memset(out->data, 0, 2 * (size_t)(level + 1) * n * 8);
        }
        out->scale = scale;
        out->slots = slots;
    }
done:
    hecnn_free(bkey);
    hecnn_free(gkey);
    return st;
}

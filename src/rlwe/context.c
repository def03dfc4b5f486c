/* The ring context: NTT tables over the chosen primes, the key-switching digit shape and the
 * ModDown constants. */
#include <math.h>

#include "rlwe/rlwe.h"
#include "util/alloc.h"
#include "util/error.h"

void rlwe_basis_q(const rlwe_context *ctx, rns_basis *b, unsigned level)
{
    b->n = ctx->n;
    b->limbs = level + 1;
    for (unsigned i = 0; i <= level; i++) b->tab[i] = &ctx->tables[i];
}

void rlwe_basis_p(const rlwe_context *ctx, rns_basis *b)
{
    b->n = ctx->n;
    b->limbs = ctx->n_p;
    for (unsigned i = 0; i < ctx->n_p; i++) b->tab[i] = &ctx->tables[ctx->n_q + i];
}

void rlwe_basis_qp_special(const rlwe_context *ctx, rns_basis *b, unsigned level, const ks_special *sp)
{
    rlwe_basis_q(ctx, b, level);
    for (unsigned i = 0; i < sp->n_p; i++) b->tab[level + 1 + i] = &ctx->tables[ctx->n_q + i];
    b->limbs = level + 1 + sp->n_p;
}

void rlwe_basis_qp(const rlwe_context *ctx, rns_basis *b, unsigned level)
{
    rlwe_basis_qp_special(ctx, b, level, &ctx->special[KS_ALL_P]);
}

hecnn_status rlwe_context_init(rlwe_context *ctx, unsigned log_n, const uint64_t *primes, unsigned n_q, unsigned n_p,
                               unsigned dnum, double sigma)
{
    *ctx = (rlwe_context){.log_n = log_n, .n = (size_t)1 << log_n, .n_q = n_q, .n_p = n_p, .sigma = sigma};
    ctx->dnum = dnum ? dnum : (n_q + n_p - 1) / n_p;
    if (ctx->dnum > n_q) ctx->dnum = n_q;
    ctx->alpha = (n_q + ctx->dnum - 1) / ctx->dnum;
    ctx->dnum = (n_q + ctx->alpha - 1) / ctx->alpha; /* no empty digit */

    const unsigned total = n_q + n_p;
    ctx->tables = hecnn_calloc(total, sizeof *ctx->tables);
    if (!ctx->tables) return hecnn_fail(HECNN_ERR_NO_MEMORY, "NTT tables");
    for (unsigned i = 0; i < total; i++)
        if (ntt_table_init(&ctx->tables[i], primes[i], log_n))
            return hecnn_fail(HECNN_ERR_INVALID_PARAMS, "no NTT table for the prime %llu, N=%zu",
                              (unsigned long long)primes[i], ctx->n);

    /* The special modulus must cover the largest digit, or key switching noise explodes. */
    double log_p = 0, worst_digit = 0;
    for (unsigned i = 0; i < n_p; i++) log_p += log2((double)primes[n_q + i]);
    for (unsigned d = 0; d < ctx->dnum; d++) {
        double bits = 0;
        for (unsigned i = d * ctx->alpha; i < (d + 1) * ctx->alpha && i < n_q; i++) bits += log2((double)primes[i]);
        if (bits > worst_digit) worst_digit = bits;
    }
    if (log_p + 1 < worst_digit)
        return hecnn_fail(HECNN_ERR_INVALID_PARAMS,
                          "special primes (%.0f bits) smaller than a key-switching digit (%.0f bits): raise dnum or n_p",
                          log_p, worst_digit);

    /* ModDown constants, for all special primes and for the first few, just enough to exceed
     * q_0 2^30 (the level-0 encapsulation key: its key switch then adds at most 2^-30 q_0 noise) */
    unsigned level0_p = 0;
    for (double bits = 0; level0_p < n_p && bits < log2((double)primes[0]) + 30; level0_p++)
        bits += log2((double)primes[n_q + level0_p]);
    bool ok = true;
    for (int v = KS_ALL_P; v <= KS_LEVEL0_P && ok; v++) {
        ks_special *sp = &ctx->special[v];
        sp->n_p = v == KS_ALL_P ? n_p : level0_p;
        rns_basis bp, bq;
        rlwe_basis_p(ctx, &bp);
        bp.limbs = sp->n_p;
        rlwe_basis_q(ctx, &bq, n_q - 1);
        sp->p_inv_mod_q = hecnn_alloc(n_q * 8);
        sp->p_mod_q = hecnn_alloc(n_q * 8);
        ok = sp->p_inv_mod_q && sp->p_mod_q && !baseconv_init(&sp->p_to_q, &bp, &bq, false);
        for (unsigned i = 0; i < n_q && ok; i++) {
            const modulus *m = &ctx->tables[i].mod;
            uint64_t pm = 1;
            for (unsigned j = 0; j < sp->n_p; j++) pm = mul_mod(pm, primes[n_q + j] % m->q, m);
            sp->p_mod_q[i] = pm;
            sp->p_inv_mod_q[i] = inv_mod(pm, m);
        }
    }
    return ok ? HECNN_OK : hecnn_fail(HECNN_ERR_NO_MEMORY, "context tables");
}

void rlwe_context_clear(rlwe_context *ctx)
{
    if (ctx->tables)
        for (unsigned i = 0; i < ctx->n_q + ctx->n_p; i++) ntt_table_free(&ctx->tables[i]);
    hecnn_free(ctx->tables);
    ctx->tables = NULL;
    for (int v = KS_ALL_P; v <= KS_LEVEL0_P; v++) {
        baseconv_free(&ctx->special[v].p_to_q);
        hecnn_free(ctx->special[v].p_inv_mod_q);
        hecnn_free(ctx->special[v].p_mod_q);
        ctx->special[v] = (ks_special){0};
    }
}

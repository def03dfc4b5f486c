/* Public-key and secret-key encryption, decryption. */
#include <string.h>

#include "ckks/internal.h"

static hecnn_status check_pt(const ckks_context *ctx, const ckks_plaintext *pt)
{
    if (!pt || !pt->data) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "empty plaintext");
    if (pt->ctx->param_id != ctx->param_id) return hecnn_fail(HECNN_ERR_PARAMS_MISMATCH, "plaintext of another context");
    return HECNN_OK;
}

static hecnn_status small_ntt(const rns_basis *b, uint64_t *out, prng *p, int kind, double sigma)
{
    int8_t *small = hecnn_alloc(b->n);
    if (!small) return hecnn_fail(HECNN_ERR_NO_MEMORY, "sample");
    if (kind) sample_gaussian(p, small, b->n, sigma);
    else sample_ternary(p, small, b->n);
    rns_from_small(b, out, small);
    hecnn_secure_free(small, b->n);
    rns_ntt(b, out);
    return HECNN_OK;
}

hecnn_status ckks_encrypt_pk_derand(const ckks_context *ctx, ckks_ciphertext *ct, const ckks_plaintext *pt,
                                    const ckks_public_key *pk, const uint8_t seed[CKKS_SEED_BYTES])
{
    if (!ctx || !ct || !pk || !seed) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    hecnn_status st = check_pt(ctx, pt);
    if (st) return st;
    if (pk->ctx->param_id != ctx->param_id || ct->ctx->param_id != ctx->param_id)
        return hecnn_fail(HECNN_ERR_PARAMS_MISMATCH, "key or ciphertext of another context");
    const unsigned level = pt->level;
    const size_t n = ctx->n, limbs = level + 1;
    rns_basis b;
    ctx_basis_q(ctx, &b, level);
    uint64_t *u = hecnn_alloc(limbs * n * 8), *e = hecnn_alloc(limbs * n * 8);
    prng pu = {0}, pe = {0};
    if (!u || !e) st = hecnn_fail(HECNN_ERR_NO_MEMORY, "encryption");
    if (!st && (prng_init(&pu, seed, DOMAIN_EPHEMERAL, 0) || prng_init(&pe, seed, DOMAIN_ERROR, 0)))
        st = hecnn_fail(HECNN_ERR_RANDOM, "AES-CTR init");
    if (!st) st = ct_reserve(ct, 1, level);
    if (!st) {
        uint64_t *c0 = ct_comp(ct, 0), *c1 = ct_comp(ct, 1);
        small_ntt(&b, u, &pu, 0, 0);
        rns_mul(&b, c0, pk->b, u);
        rns_mul(&b, c1, pk->a, u);
        small_ntt(&b, e, &pe, 1, ctx->params.sigma);
        rns_add(&b, c0, c0, e);
        small_ntt(&b, e, &pe, 1, ctx->params.sigma);
        rns_add(&b, c1, c1, e);
        rns_add(&b, c0, c0, pt->data);
        ct->scale = pt->scale;
        ct->slots = pt->slots;
    }
    prng_free(&pu);
    prng_free(&pe);
    hecnn_secure_free(u, u ? limbs * n * 8 : 0);
    hecnn_secure_free(e, e ? limbs * n * 8 : 0);
    return st;
}

hecnn_status ckks_encrypt_pk(const ckks_context *ctx, ckks_ciphertext *ct, const ckks_plaintext *pt,
                             const ckks_public_key *pk)
{
    uint8_t seed[CKKS_SEED_BYTES];
    if (random_os_seed(seed)) return hecnn_fail(HECNN_ERR_RANDOM, "getrandom failed");
    hecnn_status st = ckks_encrypt_pk_derand(ctx, ct, pt, pk, seed);
    hecnn_secure_wipe(seed, sizeof seed);
    return st;
}

hecnn_status ckks_encrypt_sk_derand(const ckks_context *ctx, ckks_ciphertext *ct, const ckks_plaintext *pt,
                                    const ckks_secret_key *sk, const uint8_t seed[CKKS_SEED_BYTES])
{
    if (!ctx || !ct || !sk || !seed) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    hecnn_status st = check_pt(ctx, pt);
    if (st) return st;
    if (sk->ctx->param_id != ctx->param_id || ct->ctx->param_id != ctx->param_id)
        return hecnn_fail(HECNN_ERR_PARAMS_MISMATCH, "key or ciphertext of another context");
    /* seeds[0] names c1 (stored); seeds[1] the error (secret: wiped on every path) */
    uint8_t seeds[2][CKKS_SEED_BYTES];
    if (prng_derive_seeds(seeds, seed)) return hecnn_fail(HECNN_ERR_RANDOM, "AES-CTR init");
    const unsigned level = pt->level;
    rns_basis b;
    ctx_basis_q(ctx, &b, level);
    uint64_t *c0 = NULL, *c1 = NULL;
    prng pe = {0};
    if (!(st = ct_reserve(ct, 1, level))) {
        c0 = ct_comp(ct, 0), c1 = ct_comp(ct, 1);
        if (sample_uniform(seeds[0], 0, &b, c1) || prng_init(&pe, seeds[1], DOMAIN_ERROR, 0))
            st = hecnn_fail(HECNN_ERR_RANDOM, "AES-CTR init");
    }
    if (!st) st = small_ntt(&b, c0, &pe, 1, ctx->params.sigma);
    prng_free(&pe);
    if (!st) {
        const size_t n = ctx->n;
        for (size_t k = 0; k <= level; k++) {
            const modulus *m = &ctx->tables[k].mod;
            for (size_t i = k * n; i < (k + 1) * n; i++)
                c0[i] = add_mod(sub_mod(c0[i], mul_mod(c1[i], sk->ntt[i], m), m->q), pt->data[i], m->q);
        }
        ct->scale = pt->scale;
        ct->slots = pt->slots;
        ct->seeded = true;
        memcpy(ct->seed, seeds[0], CKKS_SEED_BYTES);
    }
    hecnn_secure_wipe(seeds, sizeof seeds);
    return st;
}

hecnn_status ckks_encrypt_sk(const ckks_context *ctx, ckks_ciphertext *ct, const ckks_plaintext *pt,
                             const ckks_secret_key *sk)
{
    uint8_t seed[CKKS_SEED_BYTES];
    if (random_os_seed(seed)) return hecnn_fail(HECNN_ERR_RANDOM, "getrandom failed");
    hecnn_status st = ckks_encrypt_sk_derand(ctx, ct, pt, sk, seed);
    hecnn_secure_wipe(seed, sizeof seed);
    return st;
}

hecnn_status ckks_decrypt(const ckks_context *ctx, ckks_plaintext *pt, const ckks_ciphertext *ct,
                          const ckks_secret_key *sk)
{
    if (!ctx || !pt || !ct || !sk || !ct->data) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL or empty argument");
    if (ct->ctx->param_id != ctx->param_id || sk->ctx->param_id != ctx->param_id || pt->ctx->param_id != ctx->param_id)
        return hecnn_fail(HECNN_ERR_PARAMS_MISMATCH, "objects of different parameter sets");
    const unsigned level = ct->level;
    rns_basis b;
    ctx_basis_q(ctx, &b, level);
    hecnn_status st = pt_reserve(pt, level);
    if (st) return st;
    /* Horner: m = c0 + s (c1 + s c2) */
    const size_t n = ctx->n;
    for (size_t k = 0; k <= level; k++) {
        const modulus *m = &ctx->tables[k].mod;
        const uint64_t *s = sk->ntt + k * n;
        for (size_t i = 0; i < n; i++) {
            uint64_t acc = ct_comp(ct, ct->degree)[k * n + i];
            for (int c = (int)ct->degree - 1; c >= 0; c--)
                acc = add_mod(mul_mod(acc, s[i], m), ct_comp(ct, (unsigned)c)[k * n + i], m->q);
            pt->data[k * n + i] = acc;
        }
    }
    pt->scale = ct->scale;
    pt->slots = ct->slots;
    return HECNN_OK;
}

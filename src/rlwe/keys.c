/* Secret, public and switching keys. Uniform halves are expanded from stored seeds; errors and
 * secrets come from separate derived seeds that are never stored. */
#include <endian.h>
#include <string.h>

#include "ckks/internal.h"

static hecnn_status derive_seeds(uint8_t out[2][CKKS_SEED_BYTES], const uint8_t seed[CKKS_SEED_BYTES])
{
    return prng_derive_seeds(out, seed) ? hecnn_fail(HECNN_ERR_RANDOM, "AES-CTR init") : HECNN_OK;
}

static hecnn_status fresh_seed(uint8_t seed[CKKS_SEED_BYTES])
{
    return random_os_seed(seed) ? hecnn_fail(HECNN_ERR_RANDOM, "getrandom failed") : HECNN_OK;
}

/* hamming_weight 0: uniform ternary; else exactly that many nonzero coefficients. */
static hecnn_status secret_key_generate(ckks_secret_key **out, const ckks_context *ctx, size_t hamming_weight,
                                        const uint8_t seed[CKKS_SEED_BYTES])
{
    if (!out || !ctx || !seed) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    if (hamming_weight > ctx->n) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "Hamming weight %zu > N", hamming_weight);
    *out = NULL;
    ckks_secret_key *sk = hecnn_calloc(1, sizeof *sk);
    if (!sk) return hecnn_fail(HECNN_ERR_NO_MEMORY, "secret key");
    sk->ctx = ctx;
    sk->small = hecnn_alloc(ctx->n);
    sk->ntt = hecnn_alloc((size_t)(ctx->n_q + ctx->n_p) * ctx->n * 8);
    prng p;
    if (!sk->small || !sk->ntt) {
        ckks_secret_key_free(sk);
        return hecnn_fail(HECNN_ERR_NO_MEMORY, "secret key");
    }
    if (prng_init(&p, seed, DOMAIN_SECRET, 0)) {
        ckks_secret_key_free(sk);
        return hecnn_fail(HECNN_ERR_RANDOM, "AES-CTR init");
    }
    if (hamming_weight) sample_sparse_ternary(&p, sk->small, ctx->n, hamming_weight);
    else sample_ternary(&p, sk->small, ctx->n);
    prng_free(&p);
    hecnn_status st = secret_key_refresh_ntt(sk);
    if (st) {
        ckks_secret_key_free(sk);
        return st;
    }
    *out = sk;
    return HECNN_OK;
}

hecnn_status ckks_secret_key_generate_derand(ckks_secret_key **out, const ckks_context *ctx,
                                             const uint8_t seed[CKKS_SEED_BYTES])
{
    if (!ctx) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    size_t h = ctx->params.secret == CKKS_SECRET_SPARSE_TERNARY ? ctx->params.hamming_weight : 0;
    return secret_key_generate(out, ctx, h, seed);
}

hecnn_status ckks_secret_key_generate_sparse_derand(ckks_secret_key **out, const ckks_context *ctx,
                                                    size_t hamming_weight, const uint8_t seed[CKKS_SEED_BYTES])
{
    if (!hamming_weight) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "Hamming weight 0");
    return secret_key_generate(out, ctx, hamming_weight, seed);
}

hecnn_status ckks_secret_key_generate_sparse(ckks_secret_key **out, const ckks_context *ctx, size_t hamming_weight)
{
    uint8_t seed[CKKS_SEED_BYTES];
    hecnn_status st = fresh_seed(seed);
    if (!st) st = ckks_secret_key_generate_sparse_derand(out, ctx, hamming_weight, seed);
    hecnn_secure_wipe(seed, sizeof seed);
    return st;
}

hecnn_status secret_key_refresh_ntt(ckks_secret_key *sk)
{
    const ckks_context *ctx = sk->ctx;
    rns_basis b = {.limbs = ctx->n_q + ctx->n_p, .n = ctx->n};
    for (size_t i = 0; i < b.limbs; i++) b.tab[i] = &ctx->tables[i];
    rns_from_small(&b, sk->ntt, sk->small);
    rns_ntt(&b, sk->ntt);
    return HECNN_OK;
}

hecnn_status ckks_secret_key_generate(ckks_secret_key **out, const ckks_context *ctx)
{
    uint8_t seed[CKKS_SEED_BYTES];
    hecnn_status st = fresh_seed(seed);
    if (!st) st = ckks_secret_key_generate_derand(out, ctx, seed);
    hecnn_secure_wipe(seed, sizeof seed);
    return st;
}

void ckks_secret_key_free(ckks_secret_key *sk)
{
    if (!sk) return;
    const ckks_context *ctx = sk->ctx;
    hecnn_secure_free(sk->small, sk->small ? ctx->n : 0);
    hecnn_secure_free(sk->ntt, sk->ntt ? (size_t)(ctx->n_q + ctx->n_p) * ctx->n * 8 : 0);
    hecnn_secure_free(sk, sizeof *sk);
}

/* Gather the secret's limbs for Q_level ∪ P into a contiguous buffer. */
static uint64_t *secret_over_qp(const ckks_secret_key *sk, unsigned level, const ks_special *sp)
{
    const ckks_context *ctx = sk->ctx;
    const size_t n = ctx->n, limbs = level + 1 + sp->n_p;
    uint64_t *s = hecnn_alloc(limbs * n * 8);
    if (!s) return NULL;
    memcpy(s, sk->ntt, (size_t)(level + 1) * n * 8);
    memcpy(s + (size_t)(level + 1) * n, sk->ntt + (size_t)ctx->n_q * n, (size_t)sp->n_p * n * 8);
    return s;
}

/* b = -a*s + e over basis `b` (s given over the same basis); a from (a_seed, index), e from (e_seed, index). */
static hecnn_status rlwe_sample(const rns_basis *basis, uint64_t *b, uint64_t *a, const uint64_t *s,
                                const uint8_t a_seed[CKKS_SEED_BYTES], const uint8_t e_seed[CKKS_SEED_BYTES],
                                uint64_t index, double sigma)
{
    prng pe;
    if (sample_uniform(a_seed, (uint16_t)index, basis, a) || prng_init(&pe, e_seed, DOMAIN_ERROR, index))
        return hecnn_fail(HECNN_ERR_RANDOM, "AES-CTR init");
    int8_t *e = hecnn_alloc(basis->n);
    if (!e) {
        prng_free(&pe);
        return hecnn_fail(HECNN_ERR_NO_MEMORY, "error sample");
    }
    sample_gaussian(&pe, e, basis->n, sigma);
    prng_free(&pe);
    rns_from_small(basis, b, e);
    hecnn_secure_free(e, basis->n);
    rns_ntt(basis, b);
    /* b = e - a*s */
    const size_t n = basis->n;
    for (size_t k = 0; k < basis->limbs; k++) {
        const modulus *m = &basis->tab[k]->mod;
        for (size_t i = k * n; i < (k + 1) * n; i++) b[i] = sub_mod(b[i], mul_mod(a[i], s[i], m), m->q);
    }
    return HECNN_OK;
}

hecnn_status ckks_public_key_generate_derand(ckks_public_key **out, const ckks_secret_key *sk,
                                             const uint8_t seed[CKKS_SEED_BYTES])
{
    if (!out || !sk || !seed) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    const ckks_context *ctx = sk->ctx;
    uint8_t seeds[2][CKKS_SEED_BYTES];
    hecnn_status st = derive_seeds(seeds, seed);
    if (st) return st;
    ckks_public_key *pk = hecnn_calloc(1, sizeof *pk);
    if (!pk) return hecnn_fail(HECNN_ERR_NO_MEMORY, "public key");
    pk->ctx = ctx;
    pk->b = hecnn_alloc((size_t)ctx->n_q * ctx->n * 8);
    pk->a = hecnn_alloc((size_t)ctx->n_q * ctx->n * 8);
    if (!pk->a || !pk->b) st = hecnn_fail(HECNN_ERR_NO_MEMORY, "public key");
    rns_basis bq;
    ctx_basis_q(ctx, &bq, ctx->n_q - 1);
    if (!st) st = rlwe_sample(&bq, pk->b, pk->a, sk->ntt, seeds[0], seeds[1], 0, ctx->params.sigma);
    memcpy(pk->seed, seeds[0], CKKS_SEED_BYTES);
    hecnn_secure_wipe(seeds, sizeof seeds);
    if (st) {
        ckks_public_key_free(pk);
        return st;
    }
    *out = pk;
    return HECNN_OK;
}

hecnn_status ckks_public_key_generate(ckks_public_key **out, const ckks_secret_key *sk)
{
    uint8_t seed[CKKS_SEED_BYTES];
    hecnn_status st = fresh_seed(seed);
    if (!st) st = ckks_public_key_generate_derand(out, sk, seed);
    hecnn_secure_wipe(seed, sizeof seed);
    return st;
}

void ckks_public_key_free(ckks_public_key *pk)
{
    if (!pk) return;
    hecnn_free(pk->a);
    hecnn_free(pk->b);
    hecnn_free(pk);
}

uint64_t ckks_galois_element_rotation(const ckks_context *ctx, int steps)
{
    const uint64_t slots = ctx->n / 2, m = 2 * ctx->n;
    int64_t s = steps % (int64_t)slots;
    if (s < 0) s += (int64_t)slots;
    uint64_t g = 1, b = 5;
    for (uint64_t e = (uint64_t)s; e; e >>= 1, b = (b * b) % m)
        if (e & 1) g = (g * b) % m;
    return g;
}

uint64_t ckks_galois_element_conjugate(const ckks_context *ctx) { return 2 * ctx->n - 1; }

hecnn_status switching_key_alloc(ckks_switching_key **out, const ckks_context *ctx, uint64_t galois, unsigned max_level,
                                 unsigned n_special)
{
    ckks_switching_key *k = hecnn_calloc(1, sizeof *k);
    if (!k) return hecnn_fail(HECNN_ERR_NO_MEMORY, "switching key");
    k->ctx = ctx;
    k->galois = galois;
    k->max_level = max_level;
    k->digits = (max_level + ctx->alpha) / ctx->alpha;
    k->limbs = max_level + 1 + n_special;
    k->data = hecnn_alloc((size_t)k->digits * 2 * k->limbs * ctx->n * 8);
    if (!k->data) {
        hecnn_free(k);
        return hecnn_fail(HECNN_ERR_NO_MEMORY, "switching key of %u digits", k->digits);
    }
    *out = k;
    return HECNN_OK;
}

/* The common core: a key from s' (given over Q_max_level in NTT form) to sk's secret. */
static hecnn_status switching_key_build(ckks_switching_key **out, const ckks_secret_key *sk, const uint64_t *s_new,
                                        uint64_t galois, unsigned max_level, const uint8_t seed[CKKS_SEED_BYTES],
                                        const ks_special *sp)
{
    const ckks_context *ctx = sk->ctx;
    const size_t n = ctx->n;
    uint8_t seeds[2][CKKS_SEED_BYTES];
    hecnn_status st = derive_seeds(seeds, seed);
    if (st) return st;
    ckks_switching_key *k;
    if ((st = switching_key_alloc(&k, ctx, galois, max_level, sp->n_p))) return st;
    memcpy(k->seed, seeds[0], CKKS_SEED_BYTES);
    rns_basis bqp;
    ctx_basis_qp_special(ctx, &bqp, max_level, sp);
    uint64_t *s = secret_over_qp(sk, max_level, sp);
    if (!s) st = hecnn_fail(HECNN_ERR_NO_MEMORY, "key generation");
    for (unsigned j = 0; j < k->digits && !st; j++) {
        uint64_t *b = swk_part(k, j, 0), *a = swk_part(k, j, 1);
        st = rlwe_sample(&bqp, b, a, s, seeds[0], seeds[1], j, ctx->params.sigma);
        /* + P * s' on the digit's own primes */
        const unsigned lo = j * ctx->alpha, hi = lo + ctx->alpha < max_level + 1 ? lo + ctx->alpha : max_level + 1;
        for (unsigned i = lo; i < hi && !st; i++) {
            const modulus *m = &ctx->tables[i].mod;
            const uint64_t w = sp->p_mod_q[i], wp = shoup_precompute(w, m->q);
            for (size_t c = 0; c < n; c++)
                b[i * n + c] = add_mod(b[i * n + c], mul_shoup(s_new[i * n + c], w, wp, m->q), m->q);
        }
    }
    hecnn_secure_free(s, s ? (size_t)(max_level + 1 + sp->n_p) * n * 8 : 0);
    hecnn_secure_wipe(seeds, sizeof seeds);
    if (st) {
        ckks_switching_key_free(k);
        return st;
    }
    *out = k;
    return HECNN_OK;
}

hecnn_status ckks_switching_key_generate_derand(ckks_switching_key **out, const ckks_secret_key *sk, uint64_t galois,
                                                unsigned max_level, const uint8_t seed[CKKS_SEED_BYTES])
{
    if (!out || !sk || !seed) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    const ckks_context *ctx = sk->ctx;
    const size_t n = ctx->n;
    if (max_level >= ctx->n_q) return hecnn_fail(HECNN_ERR_LEVEL_MISMATCH, "max_level %u > %u", max_level, ctx->n_q - 1);
    if (galois && (!(galois & 1) || galois >= 2 * n))
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "Galois element %llu is not odd and below 2N", (unsigned long long)galois);
    rns_basis bq;
    ctx_basis_q(ctx, &bq, max_level);
    uint64_t *s_new = hecnn_alloc((size_t)(max_level + 1) * n * 8);
    size_t *perm = galois ? hecnn_alloc(n * sizeof *perm) : NULL;
    hecnn_status st = HECNN_OK;
    if (!s_new || (galois && !perm)) st = hecnn_fail(HECNN_ERR_NO_MEMORY, "key generation");
    if (!st) {
        /* s' = s^2 (relinearization) or s(X^g) (Galois); sk->ntt starts with the q limbs */
        if (galois) {
            galois_ntt_permutation(perm, ctx->log_n, galois);
            rns_permute(&bq, s_new, sk->ntt, perm);
        } else {
            rns_mul(&bq, s_new, sk->ntt, sk->ntt);
        }
        st = switching_key_build(out, sk, s_new, galois, max_level, seed, &ctx->special[KS_ALL_P]);
    }
    hecnn_secure_free(s_new, s_new ? (size_t)(max_level + 1) * n * 8 : 0);
    hecnn_free(perm);
    return st;
}

hecnn_status ckks_switching_key_generate_between_derand(ckks_switching_key **out, const ckks_secret_key *from,
                                                        const ckks_secret_key *to, unsigned max_level,
                                                        const uint8_t seed[CKKS_SEED_BYTES])
{
    if (!out || !from || !to || !seed) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    if (from->ctx->param_id != to->ctx->param_id) return hecnn_fail(HECNN_ERR_PARAMS_MISMATCH, "secret keys of different contexts");
    if (max_level >= to->ctx->n_q)
        return hecnn_fail(HECNN_ERR_LEVEL_MISMATCH, "max_level %u > %u", max_level, to->ctx->n_q - 1);
    return switching_key_build(out, to, from->ntt, CKKS_SWITCH_SECRET, max_level, seed, &to->ctx->special[KS_ALL_P]);
}

hecnn_status switching_key_generate_level0(ckks_switching_key **out, const ckks_secret_key *from,
                                            const ckks_secret_key *to)
{
    if (!out || !from || !to) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    if (from->ctx->param_id != to->ctx->param_id) return hecnn_fail(HECNN_ERR_PARAMS_MISMATCH, "secret keys of different contexts");
    uint8_t seed[CKKS_SEED_BYTES];
    hecnn_status st = fresh_seed(seed);
    if (!st) st = switching_key_build(out, to, from->ntt, CKKS_SWITCH_SECRET, 0, seed, &to->ctx->special[KS_LEVEL0_P]);
    hecnn_secure_wipe(seed, sizeof seed);
    return st;
}

hecnn_status ckks_switching_key_generate_between(ckks_switching_key **out, const ckks_secret_key *from,
                                                 const ckks_secret_key *to, unsigned max_level)
{
    uint8_t seed[CKKS_SEED_BYTES];
    hecnn_status st = fresh_seed(seed);
    if (!st) st = ckks_switching_key_generate_between_derand(out, from, to, max_level, seed);
    hecnn_secure_wipe(seed, sizeof seed);
    return st;
}

static hecnn_status switching_key_generate(ckks_switching_key **out, const ckks_secret_key *sk, uint64_t galois,
                                           unsigned max_level)
{
    uint8_t seed[CKKS_SEED_BYTES];
    hecnn_status st = fresh_seed(seed);
    if (!st) st = ckks_switching_key_generate_derand(out, sk, galois, max_level, seed);
    hecnn_secure_wipe(seed, sizeof seed);
    return st;
}

hecnn_status ckks_relin_key_generate(ckks_switching_key **out, const ckks_secret_key *sk, unsigned max_level)
{
    return switching_key_generate(out, sk, 0, max_level);
}

hecnn_status ckks_galois_key_generate(ckks_switching_key **out, const ckks_secret_key *sk, uint64_t galois_element,
                                      unsigned max_level)
{
    if (!galois_element) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "Galois element 0");
    return switching_key_generate(out, sk, galois_element, max_level);
}

void ckks_switching_key_free(ckks_switching_key *key)
{
    if (!key) return;
    hecnn_free(key->data);
    hecnn_free(key->packed_offset);
    hecnn_free(key);
}

uint64_t ckks_switching_key_galois_element(const ckks_switching_key *key) { return key->galois; }
unsigned ckks_switching_key_max_level(const ckks_switching_key *key) { return key->max_level; }

/* ---- key sets ---- */

hecnn_status ckks_eval_keys_new(ckks_eval_keys **out, const ckks_context *ctx)
{
    if (!out || !ctx) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = hecnn_calloc(1, sizeof **out);
    if (!*out) return hecnn_fail(HECNN_ERR_NO_MEMORY, "key set");
    (*out)->ctx = ctx;
    return HECNN_OK;
}

void ckks_eval_keys_free(ckks_eval_keys *keys)
{
    if (!keys) return;
    ckks_switching_key_free(keys->relin);
    for (size_t i = 0; i < keys->n_galois; i++) ckks_switching_key_free(keys->galois[i]);
    hecnn_free(keys->galois);
    hecnn_free(keys);
}

hecnn_status ckks_eval_keys_add(ckks_eval_keys *keys, ckks_switching_key *key)
{
    if (!keys || !key) {
        ckks_switching_key_free(key);
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    }
    if (key->ctx->param_id != keys->ctx->param_id) {
        ckks_switching_key_free(key);
        return hecnn_fail(HECNN_ERR_PARAMS_MISMATCH, "key of another parameter set");
    }
    if (!key->galois) {
        ckks_switching_key_free(keys->relin);
        keys->relin = key;
        return HECNN_OK;
    }
    for (size_t i = 0; i < keys->n_galois; i++)
        if (keys->galois[i]->galois == key->galois) {
            ckks_switching_key_free(keys->galois[i]);
            keys->galois[i] = key;
            return HECNN_OK;
        }
    if (keys->n_galois == keys->cap_galois) {
        size_t cap = keys->cap_galois ? 2 * keys->cap_galois : 8;
        ckks_switching_key **g = hecnn_alloc(cap * sizeof *g);
        if (!g) {
            ckks_switching_key_free(key);
            return hecnn_fail(HECNN_ERR_NO_MEMORY, "key set");
        }
        if (keys->n_galois) memcpy(g, keys->galois, keys->n_galois * sizeof *g);
        hecnn_free(keys->galois);
        keys->galois = g;
        keys->cap_galois = cap;
    }
    keys->galois[keys->n_galois++] = key;
    return HECNN_OK;
}

hecnn_status ckks_eval_keys_generate(ckks_eval_keys **out, const ckks_secret_key *sk, bool relin, const int *steps,
                                     size_t n_steps, bool conjugate)
{
    if (!out || !sk || (n_steps && !steps)) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    const ckks_context *ctx = sk->ctx;
    const unsigned top = ctx->n_q - 1;
    ckks_eval_keys *keys;
    hecnn_status st = ckks_eval_keys_new(&keys, ctx);
    if (st) return st;
    ckks_switching_key *k;
    if (relin && !(st = ckks_relin_key_generate(&k, sk, top))) st = ckks_eval_keys_add(keys, k);
    for (size_t i = 0; i < n_steps && !st; i++) {
        uint64_t g = ckks_galois_element_rotation(ctx, steps[i]);
        if (g == 1 || ckks_eval_keys_galois(keys, g)) continue;
        if (!(st = ckks_galois_key_generate(&k, sk, g, top))) st = ckks_eval_keys_add(keys, k);
    }
    if (conjugate && !st && !(st = ckks_galois_key_generate(&k, sk, ckks_galois_element_conjugate(ctx), top)))
        st = ckks_eval_keys_add(keys, k);
    if (st) {
        ckks_eval_keys_free(keys);
        return st;
    }
    *out = keys;
    return HECNN_OK;
}

const ckks_switching_key *ckks_eval_keys_relin(const ckks_eval_keys *keys) { return keys ? keys->relin : NULL; }

const ckks_switching_key *ckks_eval_keys_galois(const ckks_eval_keys *keys, uint64_t g)
{
    if (!keys) return NULL;
    for (size_t i = 0; i < keys->n_galois; i++)
        if (keys->galois[i]->galois == g) return keys->galois[i];
    return NULL;
}

size_t ckks_eval_keys_count(const ckks_eval_keys *keys) { return keys ? keys->n_galois + (keys->relin != NULL) : 0; }

const ckks_switching_key *ckks_eval_keys_at(const ckks_eval_keys *keys, size_t i)
{
    if (!keys) return NULL;
    if (keys->relin) {
        if (i == 0) return keys->relin;
        i--;
    }
    return i < keys->n_galois ? keys->galois[i] : NULL;
}

/* ---- compact keys ---- */

/* Bytes a packed coefficient of limb t takes: its prime's bit length, rounded up. */
static unsigned packed_bytes(const ckks_switching_key *k, size_t t) { return (swk_limb_table(k, t)->mod.bits + 7) / 8; }

/* Packed limbs are read 8 bytes at a time: the buffer ends with this much slack. */
#define PACK_SLACK 8

const uint64_t *swk_b_limb(const ckks_switching_key *k, unsigned digit, size_t t, uint64_t *buf)
{
    const size_t n = k->ctx->n;
    if (!k->compact) return swk_part(k, digit, 0) + t * n;
    const unsigned bytes = packed_bytes(k, t);
    const uint8_t *in = (const uint8_t *)k->data + digit * k->packed_offset[k->limbs] + k->packed_offset[t];
    if (bytes == 8) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        return (const uint64_t *)in; /* 8-byte aligned: every offset is a multiple of 8 n */
#else
        for (size_t i = 0; i < n; i++) {
            uint64_t v;
            memcpy(&v, in + i * 8, 8);
            buf[i] = le64toh(v);
        }
        return buf;
#endif
    }
    const uint64_t mask = ((uint64_t)1 << (8 * bytes)) - 1;
    for (size_t i = 0; i < n; i++) {
        uint64_t v;
        memcpy(&v, in + i * bytes, 8); /* the coefficient's bytes, then the next one's */
        buf[i] = le64toh(v) & mask;
    }
    return buf;
}

const uint64_t *swk_a_limb(const ckks_switching_key *k, unsigned digit, size_t t, uint64_t *buf)
{
    if (!k->compact) return swk_part(k, digit, 1) + t * k->ctx->n;
    return sample_uniform_limb(k->seed, (uint16_t)digit, swk_limb_table(k, t), k->ctx->n, buf) ? NULL : buf;
}

size_t ckks_switching_key_memory_bytes(const ckks_switching_key *key)
{
    if (!key) return 0;
    if (key->compact) return key->digits * key->packed_offset[key->limbs] + PACK_SLACK;
    return (size_t)key->digits * 2 * key->limbs * key->ctx->n * 8;
}

/* Drops the a halves and packs the b halves. */
hecnn_status switching_key_compact_trusted(ckks_switching_key *key)
{
    if (key->compact) return HECNN_OK;
    const size_t n = key->ctx->n;
    size_t *offset = hecnn_alloc((key->limbs + 1) * sizeof *offset);
    if (!offset) return hecnn_fail(HECNN_ERR_NO_MEMORY, "key compaction");
    offset[0] = 0;
    for (size_t t = 0; t < key->limbs; t++) offset[t + 1] = offset[t] + n * packed_bytes(key, t);
    uint8_t *packed = hecnn_alloc(key->digits * offset[key->limbs] + PACK_SLACK);
    if (!packed) {
        hecnn_free(offset);
        return hecnn_fail(HECNN_ERR_NO_MEMORY, "key compaction");
    }
    memset(packed + key->digits * offset[key->limbs], 0, PACK_SLACK);
    for (unsigned j = 0; j < key->digits; j++)
        for (size_t t = 0; t < key->limbs; t++) {
            const unsigned bytes = packed_bytes(key, t);
            const uint64_t *b = swk_part(key, j, 0) + t * n;
            uint8_t *o = packed + j * offset[key->limbs] + offset[t];
            for (size_t i = 0; i < n; i++)
                for (unsigned c = 0; c < bytes; c++) o[i * bytes + c] = (uint8_t)(b[i] >> (8 * c)); /* little-endian */
        }
    hecnn_free(key->data);
    key->data = (uint64_t *)packed;
    key->packed_offset = offset;
    key->compact = true;
    return HECNN_OK;
}

hecnn_status ckks_switching_key_compact(ckks_switching_key *key)
{
    if (!key) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL key");
    if (key->compact) return HECNN_OK;
    /* the a halves must be the seed's expansion, since that is what replaces them */
    const size_t part = key->limbs * key->ctx->n;
    rns_basis bqp;
    ctx_basis_qp_special(key->ctx, &bqp, key->max_level, swk_special(key));
    uint64_t *check = hecnn_alloc(part * 8);
    hecnn_status st = check ? HECNN_OK : hecnn_fail(HECNN_ERR_NO_MEMORY, "key compaction");
    for (unsigned j = 0; j < key->digits && !st; j++) {
        if (sample_uniform(key->seed, (uint16_t)j, &bqp, check)) st = hecnn_fail(HECNN_ERR_RANDOM, "AES-CTR init");
        else if (memcmp(check, swk_part(key, j, 1), part * 8))
            st = hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "the key's uniform halves do not come from its seed");
    }
    hecnn_free(check);
    return st ? st : switching_key_compact_trusted(key);
}

hecnn_status ckks_eval_keys_compact(ckks_eval_keys *keys, bool include_relin)
{
    if (!keys) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL key set");
    hecnn_status st = include_relin && keys->relin ? ckks_switching_key_compact(keys->relin) : HECNN_OK;
    for (size_t i = 0; i < keys->n_galois && !st; i++) st = ckks_switching_key_compact(keys->galois[i]);
    return st;
}

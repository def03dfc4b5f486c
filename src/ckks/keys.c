/* The public key handles: CKKS parameters (the secret's distribution, Galois elements of slot
 * rotations) over the ring-level keys of src/rlwe, and key sets. */
#include <string.h>

#include "ckks/internal.h"

static hecnn_status fresh_seed(uint8_t seed[CKKS_SEED_BYTES])
{
    return random_os_seed(seed) ? hecnn_fail(HECNN_ERR_RANDOM, "getrandom failed") : HECNN_OK;
}

/* ---- secret and public keys ---- */

hecnn_status secret_key_alloc(ckks_secret_key **out, const ckks_context *ctx)
{
    *out = hecnn_calloc(1, sizeof **out);
    if (!*out) return hecnn_fail(HECNN_ERR_NO_MEMORY, "secret key");
    (*out)->ctx = ctx;
    return rlwe_secret_key_init(&(*out)->rlwe, &ctx->rlwe);
}

/* hamming_weight 0: uniform ternary; else exactly that many nonzero coefficients. */
static hecnn_status secret_key_generate(ckks_secret_key **out, const ckks_context *ctx, size_t hamming_weight,
                                        const uint8_t seed[CKKS_SEED_BYTES])
{
    if (!out || !ctx || !seed) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    if (hamming_weight > ctx->rlwe.n)
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "Hamming weight %zu > N", hamming_weight);
    *out = NULL;
    ckks_secret_key *sk;
    hecnn_status st = secret_key_alloc(&sk, ctx);
    if (!st) st = rlwe_secret_key_sample(&sk->rlwe, hamming_weight, seed);
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
    rlwe_secret_key_clear(&sk->rlwe);
    hecnn_secure_free(sk, sizeof *sk);
}

hecnn_status ckks_public_key_generate_derand(ckks_public_key **out, const ckks_secret_key *sk,
                                             const uint8_t seed[CKKS_SEED_BYTES])
{
    if (!out || !sk || !seed) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    const ckks_context *ctx = sk->ctx;
    ckks_public_key *pk = hecnn_calloc(1, sizeof *pk);
    if (!pk) return hecnn_fail(HECNN_ERR_NO_MEMORY, "public key");
    pk->ctx = ctx;
    pk->b = hecnn_alloc((size_t)ctx->rlwe.n_q * ctx->rlwe.n * 8);
    pk->a = hecnn_alloc((size_t)ctx->rlwe.n_q * ctx->rlwe.n * 8);
    hecnn_status st = pk->a && pk->b ? rlwe_public_key_sample(&sk->rlwe, pk->b, pk->a, pk->seed, seed)
                                     : hecnn_fail(HECNN_ERR_NO_MEMORY, "public key");
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

/* ---- switching keys ---- */

uint64_t ckks_galois_element_rotation(const ckks_context *ctx, int steps)
{
    const uint64_t slots = ctx->rlwe.n / 2, m = 2 * ctx->rlwe.n;
    int64_t s = steps % (int64_t)slots;
    if (s < 0) s += (int64_t)slots;
    uint64_t g = 1, b = 5;
    for (uint64_t e = (uint64_t)s; e; e >>= 1, b = (b * b) % m)
        if (e & 1) g = (g * b) % m;
    return g;
}

uint64_t ckks_galois_element_conjugate(const ckks_context *ctx) { return 2 * ctx->rlwe.n - 1; }

hecnn_status switching_key_alloc(ckks_switching_key **out, const ckks_context *ctx, uint64_t galois, unsigned max_level,
                                 unsigned n_special)
{
    ckks_switching_key *k = hecnn_calloc(1, sizeof *k);
    if (!k) return hecnn_fail(HECNN_ERR_NO_MEMORY, "switching key");
    k->ctx = ctx;
    hecnn_status st = rlwe_switching_key_init(&k->rlwe, &ctx->rlwe, galois, max_level, n_special);
    if (st) {
        hecnn_free(k);
        return st;
    }
    *out = k;
    return HECNN_OK;
}

/* A handle around a ring-level key that generate(&k->rlwe, ...) fills (and clears on failure). */
static ckks_switching_key *switching_key_handle(const ckks_context *ctx)
{
    ckks_switching_key *k = hecnn_calloc(1, sizeof *k);
    if (k) k->ctx = ctx;
    return k;
}

static hecnn_status switching_key_handle_done(ckks_switching_key **out, ckks_switching_key *k, hecnn_status st)
{
    if (st) {
        hecnn_free(k);
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
    ckks_switching_key *k = switching_key_handle(sk->ctx);
    if (!k) return hecnn_fail(HECNN_ERR_NO_MEMORY, "switching key");
    return switching_key_handle_done(out, k, rlwe_switching_key_generate(&k->rlwe, &sk->rlwe, galois, max_level, seed));
}

hecnn_status ckks_switching_key_generate_between_derand(ckks_switching_key **out, const ckks_secret_key *from,
                                                        const ckks_secret_key *to, unsigned max_level,
                                                        const uint8_t seed[CKKS_SEED_BYTES])
{
    if (!out || !from || !to || !seed) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    if (from->ctx->param_id != to->ctx->param_id) return hecnn_fail(HECNN_ERR_PARAMS_MISMATCH, "secret keys of different contexts");
    ckks_switching_key *k = switching_key_handle(to->ctx);
    if (!k) return hecnn_fail(HECNN_ERR_NO_MEMORY, "switching key");
    return switching_key_handle_done(
        out, k, rlwe_switching_key_generate_between(&k->rlwe, &from->rlwe, &to->rlwe, max_level, KS_ALL_P, seed));
}

hecnn_status switching_key_generate_level0(ckks_switching_key **out, const ckks_secret_key *from,
                                            const ckks_secret_key *to)
{
    if (!out || !from || !to) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    if (from->ctx->param_id != to->ctx->param_id) return hecnn_fail(HECNN_ERR_PARAMS_MISMATCH, "secret keys of different contexts");
    uint8_t seed[CKKS_SEED_BYTES];
    hecnn_status st = fresh_seed(seed);
    ckks_switching_key *k = st ? NULL : switching_key_handle(to->ctx);
    if (!st && !k) st = hecnn_fail(HECNN_ERR_NO_MEMORY, "switching key");
    if (!st)
        st = switching_key_handle_done(
            out, k, rlwe_switching_key_generate_between(&k->rlwe, &from->rlwe, &to->rlwe, 0, KS_LEVEL0_P, seed));
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
    rlwe_switching_key_clear(&key->rlwe);
    hecnn_free(key);
}

uint64_t ckks_switching_key_galois_element(const ckks_switching_key *key) { return key->rlwe.galois; }
unsigned ckks_switching_key_max_level(const ckks_switching_key *key) { return key->rlwe.max_level; }

size_t ckks_switching_key_memory_bytes(const ckks_switching_key *key)
{
    return key ? rlwe_switching_key_memory_bytes(&key->rlwe) : 0;
}

hecnn_status ckks_switching_key_compact(ckks_switching_key *key)
{
    if (!key) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL key");
    return rlwe_switching_key_compact(&key->rlwe);
}

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
    if (!key->rlwe.galois) {
        ckks_switching_key_free(keys->relin);
        keys->relin = key;
        return HECNN_OK;
    }
    for (size_t i = 0; i < keys->n_galois; i++)
        if (keys->galois[i]->rlwe.galois == key->rlwe.galois) {
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
    const unsigned top = ctx->rlwe.n_q - 1;
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
        if (keys->galois[i]->rlwe.galois == g) return keys->galois[i];
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

hecnn_status ckks_eval_keys_compact(ckks_eval_keys *keys, bool include_relin)
{
    if (!keys) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL key set");
    hecnn_status st = include_relin && keys->relin ? ckks_switching_key_compact(keys->relin) : HECNN_OK;
    for (size_t i = 0; i < keys->n_galois && !st; i++) st = ckks_switching_key_compact(keys->galois[i]);
    return st;
}

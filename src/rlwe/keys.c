/* Secret, public and switching keys at the ring level. Uniform halves are expanded from stored
 * seeds; errors and secrets come from separate derived seeds that are never stored. */
#include <endian.h>
#include <string.h>

#include "rlwe/rlwe.h"
#include "util/alloc.h"
#include "util/error.h"

static hecnn_status derive_seeds(uint8_t out[2][HECNN_SEED_BYTES], const uint8_t seed[HECNN_SEED_BYTES])
{
    return prng_derive_seeds(out, seed) ? hecnn_fail(HECNN_ERR_RANDOM, "AES-CTR init") : HECNN_OK;
}

/* ---- secret keys ---- */

static size_t secret_ntt_bytes(const rlwe_context *ctx) { return (size_t)(ctx->n_q + ctx->n_p) * ctx->n * 8; }

hecnn_status rlwe_secret_key_init(rlwe_secret_key *sk, const rlwe_context *ctx)
{
    sk->ctx = ctx;
    sk->small = hecnn_alloc(ctx->n);
    sk->ntt = hecnn_alloc(secret_ntt_bytes(ctx));
    return sk->small && sk->ntt ? HECNN_OK : hecnn_fail(HECNN_ERR_NO_MEMORY, "secret key");
}

void rlwe_secret_key_clear(rlwe_secret_key *sk)
{
    hecnn_secure_free(sk->small, sk->small ? sk->ctx->n : 0);
    hecnn_secure_free(sk->ntt, sk->ntt ? secret_ntt_bytes(sk->ctx) : 0);
    sk->small = NULL;
    sk->ntt = NULL;
}

hecnn_status rlwe_secret_key_sample(rlwe_secret_key *sk, size_t hamming_weight, const uint8_t seed[HECNN_SEED_BYTES])
{
    prng p;
    if (prng_init(&p, seed, DOMAIN_SECRET, 0)) return hecnn_fail(HECNN_ERR_RANDOM, "AES-CTR init");
    if (hamming_weight) sample_sparse_ternary(&p, sk->small, sk->ctx->n, hamming_weight);
    else sample_ternary(&p, sk->small, sk->ctx->n);
    prng_free(&p);
    rlwe_secret_key_refresh_ntt(sk);
    return HECNN_OK;
}

void rlwe_secret_key_refresh_ntt(rlwe_secret_key *sk)
{
    const rlwe_context *ctx = sk->ctx;
    rns_basis b = {.limbs = ctx->n_q + ctx->n_p, .n = ctx->n};
    for (size_t i = 0; i < b.limbs; i++) b.tab[i] = &ctx->tables[i];
    rns_from_small(&b, sk->ntt, sk->small);
    rns_ntt(&b, sk->ntt);
}

/* Gather the secret's limbs for Q_level ∪ P into a contiguous buffer. */
static uint64_t *secret_over_qp(const rlwe_secret_key *sk, unsigned level, const ks_special *sp)
{
    const rlwe_context *ctx = sk->ctx;
    const size_t n = ctx->n, limbs = level + 1 + sp->n_p;
    uint64_t *s = hecnn_alloc(limbs * n * 8);
    if (!s) return NULL;
    memcpy(s, sk->ntt, (size_t)(level + 1) * n * 8);
    memcpy(s + (size_t)(level + 1) * n, sk->ntt + (size_t)ctx->n_q * n, (size_t)sp->n_p * n * 8);
    return s;
}

/* b = -a*s + e over basis `b` (s given over the same basis); a from (a_seed, index), e from (e_seed, index). */
static hecnn_status rlwe_sample(const rns_basis *basis, uint64_t *b, uint64_t *a, const uint64_t *s,
                                const uint8_t a_seed[HECNN_SEED_BYTES], const uint8_t e_seed[HECNN_SEED_BYTES],
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

/* ---- public keys ---- */

hecnn_status rlwe_public_key_sample(const rlwe_secret_key *sk, uint64_t *b, uint64_t *a, uint8_t a_seed[HECNN_SEED_BYTES],
                                    const uint8_t seed[HECNN_SEED_BYTES])
{
    const rlwe_context *ctx = sk->ctx;
    uint8_t seeds[2][HECNN_SEED_BYTES];
    hecnn_status st = derive_seeds(seeds, seed);
    if (st) return st;
    rns_basis bq;
    rlwe_basis_q(ctx, &bq, ctx->n_q - 1);
    st = rlwe_sample(&bq, b, a, sk->ntt, seeds[0], seeds[1], 0, ctx->sigma);
    memcpy(a_seed, seeds[0], HECNN_SEED_BYTES);
    hecnn_secure_wipe(seeds, sizeof seeds);
    return st;
}

/* ---- switching keys ---- */

hecnn_status rlwe_switching_key_init(rlwe_switching_key *k, const rlwe_context *ctx, uint64_t galois, unsigned max_level,
                                     unsigned n_special)
{
    *k = (rlwe_switching_key){.ctx = ctx, .galois = galois, .max_level = max_level};
    k->digits = (max_level + ctx->alpha) / ctx->alpha;
    k->limbs = max_level + 1 + n_special;
    k->data = hecnn_alloc((size_t)k->digits * 2 * k->limbs * ctx->n * 8);
    if (!k->data) return hecnn_fail(HECNN_ERR_NO_MEMORY, "switching key of %u digits", k->digits);
    return HECNN_OK;
}

void rlwe_switching_key_clear(rlwe_switching_key *k)
{
    hecnn_free(k->data);
    hecnn_free(k->packed_offset);
    k->data = NULL;
    k->packed_offset = NULL;
    k->compact = false;
}

/* The common core: a key from s' (given over Q_max_level in NTT form) to sk's secret. */
static hecnn_status switching_key_build(rlwe_switching_key *k, const rlwe_secret_key *sk, const uint64_t *s_new,
                                        uint64_t galois, unsigned max_level, const uint8_t seed[HECNN_SEED_BYTES],
                                        const ks_special *sp)
{
    const rlwe_context *ctx = sk->ctx;
    const size_t n = ctx->n;
    uint8_t seeds[2][HECNN_SEED_BYTES];
    hecnn_status st = derive_seeds(seeds, seed);
    if (st) return st;
    if ((st = rlwe_switching_key_init(k, ctx, galois, max_level, sp->n_p))) {
        hecnn_secure_wipe(seeds, sizeof seeds);
        return st;
    }
    memcpy(k->seed, seeds[0], HECNN_SEED_BYTES);
    rns_basis bqp;
    rlwe_basis_qp_special(ctx, &bqp, max_level, sp);
    uint64_t *s = secret_over_qp(sk, max_level, sp);
    if (!s) st = hecnn_fail(HECNN_ERR_NO_MEMORY, "key generation");
    for (unsigned j = 0; j < k->digits && !st; j++) {
        uint64_t *b = swk_part(k, j, 0), *a = swk_part(k, j, 1);
        st = rlwe_sample(&bqp, b, a, s, seeds[0], seeds[1], j, ctx->sigma);
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
    if (st) rlwe_switching_key_clear(k);
    return st;
}

hecnn_status rlwe_switching_key_generate(rlwe_switching_key *k, const rlwe_secret_key *sk, uint64_t galois,
                                         unsigned max_level, const uint8_t seed[HECNN_SEED_BYTES])
{
    const rlwe_context *ctx = sk->ctx;
    const size_t n = ctx->n;
    if (max_level >= ctx->n_q) return hecnn_fail(HECNN_ERR_LEVEL_MISMATCH, "max_level %u > %u", max_level, ctx->n_q - 1);
    if (galois && (!(galois & 1) || galois >= 2 * n))
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "Galois element %llu is not odd and below 2N", (unsigned long long)galois);
    rns_basis bq;
    rlwe_basis_q(ctx, &bq, max_level);
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
        st = switching_key_build(k, sk, s_new, galois, max_level, seed, &ctx->special[KS_ALL_P]);
    }
    hecnn_secure_free(s_new, s_new ? (size_t)(max_level + 1) * n * 8 : 0);
    hecnn_free(perm);
    return st;
}

static bool same_ring(const rlwe_context *a, const rlwe_context *b)
{
    if (a == b) return true;
    if (a->n != b->n || a->n_q != b->n_q || a->n_p != b->n_p || a->alpha != b->alpha) return false;
    for (unsigned i = 0; i < a->n_q + a->n_p; i++)
        if (a->tables[i].mod.q != b->tables[i].mod.q) return false;
    return true;
}

hecnn_status rlwe_switching_key_generate_between(rlwe_switching_key *k, const rlwe_secret_key *from,
                                                 const rlwe_secret_key *to, unsigned max_level, int special,
                                                 const uint8_t seed[HECNN_SEED_BYTES])
{
    if (!same_ring(from->ctx, to->ctx)) return hecnn_fail(HECNN_ERR_PARAMS_MISMATCH, "secret keys of different rings");
    if (max_level >= to->ctx->n_q)
        return hecnn_fail(HECNN_ERR_LEVEL_MISMATCH, "max_level %u > %u", max_level, to->ctx->n_q - 1);
    return switching_key_build(k, to, from->ntt, RLWE_SWITCH_SECRET, max_level, seed, &to->ctx->special[special]);
}

/* ---- compact keys ---- */

/* Bytes a packed coefficient of limb t takes: its prime's bit length, rounded up. */
static unsigned packed_bytes(const rlwe_switching_key *k, size_t t) { return (swk_limb_table(k, t)->mod.bits + 7) / 8; }

/* Packed limbs are read 8 bytes at a time: the buffer ends with this much slack. */
#define PACK_SLACK 8

const uint64_t *swk_b_limb(const rlwe_switching_key *k, unsigned digit, size_t t, uint64_t *buf)
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

const uint64_t *swk_a_limb(const rlwe_switching_key *k, unsigned digit, size_t t, uint64_t *buf)
{
    if (!k->compact) return swk_part(k, digit, 1) + t * k->ctx->n;
    return sample_uniform_limb(k->seed, (uint16_t)digit, swk_limb_table(k, t), k->ctx->n, buf) ? NULL : buf;
}

size_t rlwe_switching_key_memory_bytes(const rlwe_switching_key *k)
{
    if (k->compact) return k->digits * k->packed_offset[k->limbs] + PACK_SLACK;
    return (size_t)k->digits * 2 * k->limbs * k->ctx->n * 8;
}

hecnn_status rlwe_switching_key_compact_trusted(rlwe_switching_key *k)
{
    if (k->compact) return HECNN_OK;
    const size_t n = k->ctx->n;
    size_t *offset = hecnn_alloc((k->limbs + 1) * sizeof *offset);
    if (!offset) return hecnn_fail(HECNN_ERR_NO_MEMORY, "key compaction");
    offset[0] = 0;
    for (size_t t = 0; t < k->limbs; t++) offset[t + 1] = offset[t] + n * packed_bytes(k, t);
    uint8_t *packed = hecnn_alloc(k->digits * offset[k->limbs] + PACK_SLACK);
    if (!packed) {
        hecnn_free(offset);
        return hecnn_fail(HECNN_ERR_NO_MEMORY, "key compaction");
    }
    memset(packed + k->digits * offset[k->limbs], 0, PACK_SLACK);
    for (unsigned j = 0; j < k->digits; j++)
        for (size_t t = 0; t < k->limbs; t++) {
            const unsigned bytes = packed_bytes(k, t);
            const uint64_t *b = swk_part(k, j, 0) + t * n;
            uint8_t *o = packed + j * offset[k->limbs] + offset[t];
            for (size_t i = 0; i < n; i++)
                for (unsigned c = 0; c < bytes; c++) o[i * bytes + c] = (uint8_t)(b[i] >> (8 * c)); /* little-endian */
        }
    hecnn_free(k->data);
    k->data = (uint64_t *)packed;
    k->packed_offset = offset;
    k->compact = true;
    return HECNN_OK;
}

hecnn_status rlwe_switching_key_compact(rlwe_switching_key *k)
{
    if (k->compact) return HECNN_OK;
    /* the a halves must be the seed's expansion, since that is what replaces them */
    const size_t part = k->limbs * k->ctx->n;
    rns_basis bqp;
    rlwe_basis_qp_special(k->ctx, &bqp, k->max_level, swk_special(k));
    uint64_t *check = hecnn_alloc(part * 8);
    hecnn_status st = check ? HECNN_OK : hecnn_fail(HECNN_ERR_NO_MEMORY, "key compaction");
    for (unsigned j = 0; j < k->digits && !st; j++) {
        if (sample_uniform(k->seed, (uint16_t)j, &bqp, check)) st = hecnn_fail(HECNN_ERR_RANDOM, "AES-CTR init");
        else if (memcmp(check, swk_part(k, j, 1), part * 8))
            st = hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "the key's uniform halves do not come from its seed");
    }
    hecnn_free(check);
    return st ? st : rlwe_switching_key_compact_trusted(k);
}

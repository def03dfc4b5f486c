/* The RLWE engine: the ring and its primes, secret and switching keys, hybrid key switching.
 * Layout: every polynomial is limb-major (limb k at data + k*n) and in NTT form.
 *
 * Design: rlwe owns the ring-level state and knows nothing of CKKS (encoding, slots, scales, the
 * public API). rlwe_context holds what key generation and key switching need — the degree, the q
 * and p primes with their NTT tables, the digit shape and the ModDown constants — and
 * rlwe_secret_key / rlwe_switching_key the ring-level parts of the keys. The layer above embeds
 * them: the CKKS context holds an rlwe_context, and the public key handles hold an rlwe key next to
 * their CKKS context, so the public names stay while every function here takes rlwe objects only.
 * Nothing here includes a header above src/ring (tests/check_layers.sh). */
#ifndef HECNN_RLWE_RLWE_H
#define HECNN_RLWE_RLWE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hecnn/status.h"
#include "math/ntt.h"
#include "ring/rns.h"
#include "util/random.h"

#define RLWE_MAX_PRIMES 64  /* of each kind, q and p */
/* The galois field of a key from one secret to another (relinearization 0, Galois odd). */
#define RLWE_SWITCH_SECRET 2

/* ---- the context ---------------------------------------------------------------------- */

/* The special primes a key switch extends Q_l with: all of P (every key but one), or the first few,
 * just enough to exceed q_0 2^30 (the level-0 encapsulation key to the ephemeral sparse secret, whose
 * modulus must stay small for that secret to be safe; docs/BOOTSTRAPPING.md). */
typedef struct ks_special {
    unsigned n_p;
    baseconv p_to_q;                 /* ModDown: p_0..p_{n_p-1} -> every q prime */
    uint64_t *p_inv_mod_q, *p_mod_q; /* this P's inverse and residue mod each q_i */
} ks_special;
enum { KS_ALL_P = 0, KS_LEVEL0_P = 1 };

typedef struct rlwe_context {
    size_t n;
    unsigned log_n;
    unsigned n_q, n_p;     /* ciphertext primes q_0..q_{n_q-1}, special primes p_0..p_{n_p-1} */
    unsigned dnum, alpha;  /* key-switching digits, limbs per digit */
    double sigma;          /* error std-dev of key generation */
    ntt_table *tables;     /* n_q + n_p: the q primes, then the p primes */
    /* key switching over all special primes, or over the few a level-0 key needs (ks_special) */
    ks_special special[2];
} rlwe_context;

/* A context over primes[0..n_q) (q) and primes[n_q..n_q+n_p) (p), distinct and NTT-friendly for
 * 2^log_n, n_q and n_p in 1..RLWE_MAX_PRIMES. dnum 0 means ceil(n_q / n_p); it is capped at n_q and
 * lowered so that no digit is empty. Fails with INVALID_PARAMS when P does not cover the largest
 * digit. rlwe_context_clear undoes a failed init too. */
hecnn_status rlwe_context_init(rlwe_context *ctx, unsigned log_n, const uint64_t *primes, unsigned n_q, unsigned n_p,
                               unsigned dnum, double sigma);
void rlwe_context_clear(rlwe_context *ctx);

/* Bases over the context's primes. */
void rlwe_basis_q(const rlwe_context *ctx, rns_basis *b, unsigned level);       /* q_0..q_level */
void rlwe_basis_p(const rlwe_context *ctx, rns_basis *b);                       /* p_0..p_{n_p-1} */
void rlwe_basis_qp(const rlwe_context *ctx, rns_basis *b, unsigned level);      /* q_0..q_level, P */
void rlwe_basis_qp_special(const rlwe_context *ctx, rns_basis *b, unsigned level, const ks_special *sp);

/* ---- keys ----------------------------------------------------------------------------- */

typedef struct rlwe_secret_key {
    const rlwe_context *ctx;
    int8_t *small;         /* n coefficients in {-1, 0, 1} */
    uint64_t *ntt;         /* n_q + n_p limbs */
} rlwe_secret_key;

/* Allocates sk's limbs (contents undefined). rlwe_secret_key_clear wipes and frees them, also after
 * a failed init or on a zeroed key. */
hecnn_status rlwe_secret_key_init(rlwe_secret_key *sk, const rlwe_context *ctx);
void rlwe_secret_key_clear(rlwe_secret_key *sk);
/* Draws the secret from seed: hamming_weight 0 uniform ternary, else exactly that many nonzero
 * coefficients (<= n). */
hecnn_status rlwe_secret_key_sample(rlwe_secret_key *sk, size_t hamming_weight, const uint8_t seed[HECNN_SEED_BYTES]);
/* Recompute sk->ntt from sk->small (all n_q + n_p limbs). */
void rlwe_secret_key_refresh_ntt(rlwe_secret_key *sk);

/* A public key (b, a) over Q (all n_q primes): b = -a s + e, a the expansion of a_seed, which is
 * derived from seed (the error's seed, also derived, is never stored). */
hecnn_status rlwe_public_key_sample(const rlwe_secret_key *sk, uint64_t *b, uint64_t *a, uint8_t a_seed[HECNN_SEED_BYTES],
                                    const uint8_t seed[HECNN_SEED_BYTES]);

/* Hybrid key-switching key from s' to s: for digit j, (b_j, a_j) over Q_{max_level} ∪ P with
 * b_j = -a_j s + e_j + P * g_j * s', g_j = 1 on digit j's primes and 0 on the others. */
typedef struct rlwe_switching_key {
    const rlwe_context *ctx;
    uint64_t galois;       /* 0 for relinearization (s' = s^2), RLWE_SWITCH_SECRET, else s' = s(X^galois) */
    unsigned max_level, digits;
    size_t limbs;          /* max_level + 1 + n_p */
    uint64_t *data;        /* digits x {b, a} x limbs x n words; compact: the b halves packed */
    /* Compact: the a halves are not held but re-expanded from the seed when used, and the b halves
     * are packed, each coefficient in the bytes its prime needs (5 for a 40-bit prime): digit j's
     * limb t starts at byte j * packed_offset[limbs] + packed_offset[t]. */
    bool compact;
    size_t *packed_offset;
    uint8_t seed[HECNN_SEED_BYTES];
} rlwe_switching_key;

/* Sets k's shape and allocates a whole key (contents undefined, seed zero). rlwe_switching_key_clear
 * frees it, also after a failed init or on a zeroed key. */
hecnn_status rlwe_switching_key_init(rlwe_switching_key *k, const rlwe_context *ctx, uint64_t galois, unsigned max_level,
                                     unsigned n_special);
void rlwe_switching_key_clear(rlwe_switching_key *k);
/* A key to sk's secret from s^2 (galois 0) or s(X^galois) (galois odd, below 2N), usable up to
 * max_level (below n_q), over all of P; k is initialized here (cleared again on failure). */
hecnn_status rlwe_switching_key_generate(rlwe_switching_key *k, const rlwe_secret_key *sk, uint64_t galois,
                                         unsigned max_level, const uint8_t seed[HECNN_SEED_BYTES]);
/* A key from `from` to `to` (RLWE_SWITCH_SECRET) over the special primes of `special` (KS_ALL_P, or
 * KS_LEVEL0_P for the level-0 encapsulation key); the same contract. The secrets must be over the
 * same primes (PARAMS_MISMATCH otherwise). */
hecnn_status rlwe_switching_key_generate_between(rlwe_switching_key *k, const rlwe_secret_key *from,
                                                 const rlwe_secret_key *to, unsigned max_level, int special,
                                                 const uint8_t seed[HECNN_SEED_BYTES]);
/* Drops the a halves and packs the b halves; _trusted skips checking that the a halves are the
 * seed's expansion (for keys known to be: just generated, or read from a seeded file). */
hecnn_status rlwe_switching_key_compact(rlwe_switching_key *k);
hecnn_status rlwe_switching_key_compact_trusted(rlwe_switching_key *k);
/* Bytes the key's data takes in memory. */
size_t rlwe_switching_key_memory_bytes(const rlwe_switching_key *k);

/* b (part 0) or a (part 1) of a digit of a whole (not compact) key. */
static inline uint64_t *swk_part(const rlwe_switching_key *k, unsigned digit, unsigned part)
{
    return k->data + ((size_t)digit * 2 + part) * k->limbs * k->ctx->n;
}
/* The prime of key limb t: q_t, then the special primes. */
static inline const ntt_table *swk_limb_table(const rlwe_switching_key *k, size_t t)
{
    return t <= k->max_level ? &k->ctx->tables[t] : &k->ctx->tables[k->ctx->n_q + (t - k->max_level - 1)];
}
/* Limb t of a digit's b or a half, for any key: a whole key's in place; a compact key's unpacked
 * or re-expanded into buf (n words). NULL only when AES-CTR cannot be set up. */
const uint64_t *swk_b_limb(const rlwe_switching_key *k, unsigned digit, size_t t, uint64_t *buf);
const uint64_t *swk_a_limb(const rlwe_switching_key *k, unsigned digit, size_t t, uint64_t *buf);
/* The special primes of a key: all of P, or the few of a level-0 encapsulation key. */
static inline const ks_special *swk_special(const rlwe_switching_key *k)
{
    return &k->ctx->special[k->limbs - k->max_level - 1 == k->ctx->n_p ? KS_ALL_P : KS_LEVEL0_P];
}
/* Whether the key knows the seed of its a halves (generated, or read from a seeded file; a key read
 * in full has an all-zero seed). */
static inline bool swk_has_seed(const rlwe_switching_key *k)
{
    uint8_t acc = 0;
    for (int i = 0; i < HECNN_SEED_BYTES; i++) acc |= k->seed[i];
    return acc != 0;
}

/* ---- key switching -------------------------------------------------------------------- */

/* Hybrid key switching of d (level l, NTT form) with key k: (out0, out1) over Q_l with
 * out0 + out1 * s ≈ d * s'. out0/out1 may not alias d. */
hecnn_status keyswitch(const rlwe_context *ctx, uint64_t *out0, uint64_t *out1, const uint64_t *d, unsigned level,
                       const rlwe_switching_key *k);

/* The hoistable half: d decomposed into digits, each extended to Q_l ∪ P in NTT form:
 * digits(l) x (l + 1 + n_p) limbs, in Montgomery form (times 2^64 mod each prime) so that the
 * inner product with a key needs one Montgomery reduction per coefficient. P is sp's. */
typedef struct ks_decomposition {
    unsigned level, digits;
    size_t limbs;
    const ks_special *sp;
    uint64_t *data;
} ks_decomposition;
hecnn_status ks_decompose(const rlwe_context *ctx, const ks_special *sp, ks_decomposition *dec, const uint64_t *d,
                          unsigned level);
/* The same into caller-owned buffers (no allocation): data holds digits(l) x (l + 1 + n_p) limbs
 * and becomes dec->data (not to be freed with ks_decomposition_free); scratch holds
 * ks_decompose_scratch_words. */
static inline size_t ks_decompose_scratch_words(const rlwe_context *ctx, unsigned level)
{
    return (size_t)(2 * (level + 1) + ctx->n_p) * ctx->n;
}
hecnn_status ks_decompose_ws(const rlwe_context *ctx, const ks_special *sp, ks_decomposition *dec, uint64_t *data,
                             uint64_t *scratch, const uint64_t *d, unsigned level);
void ks_decomposition_free(ks_decomposition *dec);
/* (r0, r1) = <perm(dec), k> over the limbs of Q_l ∪ P, before ModDown (perm NULL: none). */
hecnn_status ks_inner_product(const rlwe_context *ctx, uint64_t *r0, uint64_t *r1, const ks_decomposition *dec,
                              const size_t *perm, const rlwe_switching_key *k);
/* Inner product of a (optionally Galois-permuted) decomposition with k, then ModDown to Q_l.
 * perm == NULL means no permutation. */
hecnn_status ks_apply(const rlwe_context *ctx, uint64_t *out0, uint64_t *out1, const ks_decomposition *dec,
                      const size_t *perm, const rlwe_switching_key *k);
/* (a mod QP) -> round(a / P) mod Q_l, for a over Q_l ∪ P (sp's) in NTT form; out over Q_l. */
hecnn_status ks_mod_down(const rlwe_context *ctx, const ks_special *sp, uint64_t *out, uint64_t *a, unsigned level);
/* The same with caller-owned scratch of ks_mod_down_scratch_words (a's P limbs are consumed). */
static inline size_t ks_mod_down_scratch_words(const rlwe_context *ctx, unsigned level)
{
    return (size_t)(level + 2) * ctx->n;
}
void ks_mod_down_ws(const rlwe_context *ctx, const ks_special *sp, uint64_t *out, uint64_t *a, unsigned level,
                    uint64_t *scratch);
/* alpha[i] = round(sum_j y_j / p_j) for the P limbs a_p (coefficient form): subtracting alpha * P
 * from the fast P -> Q conversion gives the centred [a]_P (exact, rounding ModDown). */
void mod_down_correction(const rlwe_context *ctx, const ks_special *sp, uint8_t *alpha, const uint64_t *a_p);

#endif

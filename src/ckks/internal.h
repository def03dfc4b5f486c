/* Internal definitions of the CKKS objects, shared by src/ckks, src/rlwe and src/circuits.
 * Layout: every polynomial is limb-major (limb k at data + k*n) and in NTT form. */
#ifndef HECNN_CKKS_INTERNAL_H
#define HECNN_CKKS_INTERNAL_H

#include <complex.h>

#include "hecnn/ckks.h"
#include "ring/rns.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/random.h"

/* The special primes a key switch extends Q_l with: all of P (every key but one), or the first few,
 * just enough to exceed q_0 2^30 (the level-0 encapsulation key to the ephemeral sparse secret, whose
 * modulus must stay small for that secret to be safe; docs/BOOTSTRAPPING.md). */
typedef struct ks_special {
    unsigned n_p;
    baseconv p_to_q;                 /* ModDown: p_0..p_{n_p-1} -> every q prime */
    uint64_t *p_inv_mod_q, *p_mod_q; /* this P's inverse and residue mod each q_i */
} ks_special;
enum { KS_ALL_P = 0, KS_LEVEL0_P = 1 };

/* The HE standard's error distribution: sigma 3.19 (8 / sqrt(2 pi)) or the 3.2 the presets use,
 * both tail-cut at ceil(6 sigma) = 20 by the sampler; 0 stands for 3.2. Anything else makes the
 * security estimate meaningless (with no error, the secret key follows from the public key), so a
 * context refuses it unless the literal sets allow_insecure, and a parameter file never carries it. */
static inline bool ckks_sigma_standard(double sigma) { return sigma == 0 || (sigma >= 3.19 && sigma <= 3.2); }

struct ckks_context {
    ckks_params_literal params;
    size_t n;
    unsigned log_n;
    unsigned n_q, n_p;     /* ciphertext primes q_0..q_{n_q-1}, special primes p_0..p_{n_p-1} */
    unsigned dnum, alpha;  /* key-switching digits, limbs per digit */
    uint64_t param_id;
    double default_scale, log_qp;
    ntt_table *tables;     /* n_q + n_p: the q primes, then the p primes */
    /* key switching over all special primes, or over the few a level-0 key needs (ks_special) */
    ks_special special[2];
    /* encoder: exp(2 pi i k / 2N) for k < 2N, and 5^j mod 2N for j < N/2 */
    double complex *roots;
    uint64_t *rot_group;
};

struct ckks_plaintext {
    const ckks_context *ctx;
    unsigned level;
    double scale;
    size_t slots;
    uint64_t *data;        /* level + 1 limbs */
    size_t capacity;       /* limbs allocated */
};

struct ckks_ciphertext {
    const ckks_context *ctx;
    unsigned level, degree;
    double scale;
    size_t slots;
    uint64_t *data;        /* degree + 1 components of level + 1 limbs each */
    size_t capacity;       /* limbs allocated */
    bool seeded;           /* fresh symmetric ciphertext: c1 = uniform(seed) */
    uint8_t seed[CKKS_SEED_BYTES];
};

struct ckks_secret_key {
    const ckks_context *ctx;
    int8_t *small;         /* n coefficients in {-1, 0, 1} */
    uint64_t *ntt;         /* n_q + n_p limbs */
};

struct ckks_public_key {
    const ckks_context *ctx;
    uint64_t *b, *a;       /* n_q limbs each; a = uniform(seed) */
    uint8_t seed[CKKS_SEED_BYTES];
};

/* Hybrid key-switching key from s' to s: for digit j, (b_j, a_j) over Q_{max_level} ∪ P with
 * b_j = -a_j s + e_j + P * g_j * s', g_j = 1 on digit j's primes and 0 on the others. */
struct ckks_switching_key {
    const ckks_context *ctx;
    uint64_t galois;       /* 0 for relinearization (s' = s^2), else s' = s(X^galois) */
    unsigned max_level, digits;
    size_t limbs;          /* max_level + 1 + n_p */
    uint64_t *data;        /* digits x {b, a} x limbs x n words; compact: the b halves packed */
    /* Compact: the a halves are not held but re-expanded from the seed when used, and the b halves
     * are packed, each coefficient in the bytes its prime needs (5 for a 40-bit prime): digit j's
     * limb t starts at byte j * packed_offset[limbs] + packed_offset[t]. */
    bool compact;
    size_t *packed_offset;
    uint8_t seed[CKKS_SEED_BYTES];
};

struct ckks_eval_keys {
    const ckks_context *ctx;
    ckks_switching_key *relin;
    ckks_switching_key **galois;
    size_t n_galois, cap_galois;
};

struct ckks_evaluator {
    const ckks_context *ctx;
    const ckks_eval_keys *keys;
};

/* Bases over the context's primes. */
void ctx_basis_q(const ckks_context *ctx, rns_basis *b, unsigned level);       /* q_0..q_level */
void ctx_basis_p(const ckks_context *ctx, rns_basis *b);                       /* p_0..p_{n_p-1} */
void ctx_basis_qp(const ckks_context *ctx, rns_basis *b, unsigned level);      /* q_0..q_level, P */
void ctx_basis_qp_special(const ckks_context *ctx, rns_basis *b, unsigned level, const ks_special *sp);

static inline uint64_t *ct_comp(const ckks_ciphertext *ct, unsigned c)
{
    return ct->data + (size_t)c * (ct->level + 1) * ct->ctx->n;
}
/* b (part 0) or a (part 1) of a digit of a whole (not compact) key. */
static inline uint64_t *swk_part(const ckks_switching_key *k, unsigned digit, unsigned part)
{
    return k->data + ((size_t)digit * 2 + part) * k->limbs * k->ctx->n;
}
/* The prime of key limb t: q_t, then the special primes. */
static inline const ntt_table *swk_limb_table(const ckks_switching_key *k, size_t t)
{
    return t <= k->max_level ? &k->ctx->tables[t] : &k->ctx->tables[k->ctx->n_q + (t - k->max_level - 1)];
}
/* Limb t of a digit's b or a half, for any key: a whole key's in place; a compact key's unpacked
 * or re-expanded into buf (n words). NULL only when AES-CTR cannot be set up. */
const uint64_t *swk_b_limb(const ckks_switching_key *k, unsigned digit, size_t t, uint64_t *buf);
const uint64_t *swk_a_limb(const ckks_switching_key *k, unsigned digit, size_t t, uint64_t *buf);

/* Resize to (degree, level) keeping metadata untouched; contents undefined. */
hecnn_status ct_reserve(ckks_ciphertext *ct, unsigned degree, unsigned level);
hecnn_status pt_reserve(ckks_plaintext *pt, unsigned level);

/* The special primes of a key: all of P, or the few of a level-0 encapsulation key. */
static inline const ks_special *swk_special(const ckks_switching_key *k)
{
    return &k->ctx->special[k->limbs - k->max_level - 1 == k->ctx->n_p ? KS_ALL_P : KS_LEVEL0_P];
}

/* Hybrid key switching of d (level l, NTT form) with key k: (out0, out1) over Q_l with
 * out0 + out1 * s ≈ d * s'. out0/out1 may not alias d. */
hecnn_status keyswitch(const ckks_context *ctx, uint64_t *out0, uint64_t *out1, const uint64_t *d,
                       unsigned level, const ckks_switching_key *k);

/* The hoistable half: d decomposed into digits, each extended to Q_l ∪ P in NTT form:
 * digits(l) x (l + 1 + n_p) limbs, in Montgomery form (times 2^64 mod each prime) so that the
 * inner product with a key needs one Montgomery reduction per coefficient. P is sp's. */
typedef struct ks_decomposition {
    unsigned level, digits;
    size_t limbs;
    const ks_special *sp;
    uint64_t *data;
} ks_decomposition;
hecnn_status ks_decompose(const ckks_context *ctx, const ks_special *sp, ks_decomposition *dec, const uint64_t *d,
                          unsigned level);
/* The same into caller-owned buffers (no allocation): data holds digits(l) x (l + 1 + n_p) limbs
 * and becomes dec->data (not to be freed with ks_decomposition_free); scratch holds
 * ks_decompose_scratch_words. */
static inline size_t ks_decompose_scratch_words(const ckks_context *ctx, unsigned level)
{
    return (size_t)(2 * (level + 1) + ctx->n_p) * ctx->n;
}
hecnn_status ks_decompose_ws(const ckks_context *ctx, const ks_special *sp, ks_decomposition *dec, uint64_t *data,
                             uint64_t *scratch, const uint64_t *d, unsigned level);
void ks_decomposition_free(ks_decomposition *dec);
/* (r0, r1) = <perm(dec), k> over the limbs of Q_l ∪ P, before ModDown (perm NULL: none). */
hecnn_status ks_inner_product(const ckks_context *ctx, uint64_t *r0, uint64_t *r1, const ks_decomposition *dec,
                              const size_t *perm, const ckks_switching_key *k);
/* Inner product of a (optionally Galois-permuted) decomposition with k, then ModDown to Q_l.
 * perm == NULL means no permutation. */
hecnn_status ks_apply(const ckks_context *ctx, uint64_t *out0, uint64_t *out1, const ks_decomposition *dec,
                      const size_t *perm, const ckks_switching_key *k);
/* (a mod QP) -> round(a / P) mod Q_l, for a over Q_l ∪ P (sp's) in NTT form; out over Q_l. */
hecnn_status ks_mod_down(const ckks_context *ctx, const ks_special *sp, uint64_t *out, uint64_t *a, unsigned level);
/* The same with caller-owned scratch of ks_mod_down_scratch_words (a's P limbs are consumed). */
static inline size_t ks_mod_down_scratch_words(const ckks_context *ctx, unsigned level)
{
    return (size_t)(level + 2) * ctx->n;
}
void ks_mod_down_ws(const ckks_context *ctx, const ks_special *sp, uint64_t *out, uint64_t *a, unsigned level,
                    uint64_t *scratch);
/* alpha[i] = round(sum_j y_j / p_j) for the P limbs a_p (coefficient form): subtracting alpha * P
 * from the fast P -> Q conversion gives the centred [a]_P (exact, rounding ModDown). */
void mod_down_correction(const ckks_context *ctx, const ks_special *sp, uint8_t *alpha, const uint64_t *a_p);

/* Recompute sk->ntt from sk->small (all n_q + n_p limbs). */
hecnn_status secret_key_refresh_ntt(ckks_secret_key *sk);
/* ckks_ciphertext_save / _load that also give the object's SHA-256 (its stored checksum), for
 * files that hold ciphertexts and seal them as a whole (the encrypted MNIST model). */
hecnn_status ckks_ciphertext_save_digest(const ckks_ciphertext *ct, FILE *f, uint8_t digest[32]);
hecnn_status ckks_ciphertext_load_digest(const ckks_context *ctx, ckks_ciphertext *ct, FILE *f, uint8_t digest[32]);
/* Bytes ckks_eval_keys_save writes: the keys (ckks_switching_key_bytes) and the set's framing. */
size_t eval_keys_serialized_bytes(const ckks_eval_keys *keys, bool seeded);
hecnn_status switching_key_alloc(ckks_switching_key **out, const ckks_context *ctx, uint64_t galois, unsigned max_level,
                                 unsigned n_special);
/* ckks_switching_key_compact without checking the a halves against the seed: for keys known to
 * carry their seed's expansion (just generated, or read from a seeded file). */
hecnn_status switching_key_compact_trusted(ckks_switching_key *key);
/* Whether the key knows the seed of its a halves (generated, or read from a seeded file; a key read
 * in full has an all-zero seed). */
static inline bool swk_has_seed(const ckks_switching_key *k)
{
    uint8_t acc = 0;
    for (int i = 0; i < CKKS_SEED_BYTES; i++) acc |= k->seed[i];
    return acc != 0;
}
/* A level-0 key from `from` to `to` over q_0 and the special primes of KS_LEVEL0_P only: the
 * encapsulation key to an ephemeral sparse secret (`to`), kept under a small modulus. */
hecnn_status switching_key_generate_level0(ckks_switching_key **out, const ckks_secret_key *from,
                                            const ckks_secret_key *to);

/* Scale comparison used by every binary operation. */
bool scales_equal(double a, double b);
/* Encode a constant c * scale as a residue per limb (rounded, sign-aware, any magnitude). */
void ckks_const_residues(const ckks_context *ctx, uint64_t *out, double value, unsigned level);

#endif

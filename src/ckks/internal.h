/* Internal definitions of the CKKS objects, shared by src/ckks and the layers above it.
 * Layout: every polynomial is limb-major (limb k at data + k*n) and in NTT form.
 * The ring-level state lives in src/rlwe: the context embeds an rlwe_context (ctx->rlwe: degree,
 * primes, NTT tables, key-switching constants) and the key handles their rlwe keys (sk->rlwe,
 * k->rlwe, whose ctx is &ctx->rlwe). */
#ifndef HECNN_CKKS_INTERNAL_H
#define HECNN_CKKS_INTERNAL_H

#include <complex.h>

#include "hecnn/ckks.h"
#include "ring/rns.h"
#include "rlwe/rlwe.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/random.h"

/* The HE standard's error distribution: sigma 3.19 (8 / sqrt(2 pi)) or the 3.2 the presets use,
 * both tail-cut at ceil(6 sigma) = 20 by the sampler; 0 stands for 3.2. Anything else makes the
 * security estimate meaningless (with no error, the secret key follows from the public key), so a
 * context refuses it unless the literal sets allow_insecure, and a parameter file never carries it. */
static inline bool ckks_sigma_standard(double sigma) { return sigma == 0 || (sigma >= 3.19 && sigma <= 3.2); }

struct ckks_context {
    ckks_params_literal params;
    rlwe_context rlwe;     /* N, the q and p primes, NTT tables, key-switching digits and constants */
    uint64_t param_id;     /* names the parameter set in every object and file */
    double default_scale, log_qp;
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
    rlwe_secret_key rlwe;  /* rlwe.ctx == &ctx->rlwe */
};

struct ckks_public_key {
    const ckks_context *ctx;
    uint64_t *b, *a;       /* n_q limbs each; a = uniform(seed) */
    uint8_t seed[CKKS_SEED_BYTES];
};

/* A relinearization, Galois or secret-switching key (rlwe_switching_key). */
struct ckks_switching_key {
    const ckks_context *ctx;
    rlwe_switching_key rlwe; /* rlwe.ctx == &ctx->rlwe */
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

static inline uint64_t *ct_comp(const ckks_ciphertext *ct, unsigned c)
{
    return ct->data + (size_t)c * (ct->level + 1) * ct->ctx->rlwe.n;
}
/* Resize to (degree, level) keeping metadata untouched; contents undefined. */
hecnn_status ct_reserve(ckks_ciphertext *ct, unsigned degree, unsigned level);
hecnn_status pt_reserve(ckks_plaintext *pt, unsigned level);

/* A secret-key handle with its limbs allocated (contents undefined); *out is set even on failure,
 * for ckks_secret_key_free. */
hecnn_status secret_key_alloc(ckks_secret_key **out, const ckks_context *ctx);
/* ckks_ciphertext_save / _load that also give the object's SHA-256 (its stored checksum), for
 * files that hold ciphertexts and seal them as a whole (the encrypted MNIST model). */
hecnn_status ckks_ciphertext_save_digest(const ckks_ciphertext *ct, FILE *f, uint8_t digest[32]);
hecnn_status ckks_ciphertext_load_digest(const ckks_context *ctx, ckks_ciphertext *ct, FILE *f, uint8_t digest[32]);
/* Bytes ckks_eval_keys_save writes: the keys (ckks_switching_key_bytes) and the set's framing. */
size_t eval_keys_serialized_bytes(const ckks_eval_keys *keys, bool seeded);
hecnn_status switching_key_alloc(ckks_switching_key **out, const ckks_context *ctx, uint64_t galois, unsigned max_level,
                                 unsigned n_special);
/* A level-0 key from `from` to `to` over q_0 and the special primes of KS_LEVEL0_P only: the
 * encapsulation key to an ephemeral sparse secret (`to`), kept under a small modulus. */
hecnn_status switching_key_generate_level0(ckks_switching_key **out, const ckks_secret_key *from,
                                            const ckks_secret_key *to);

/* Scale comparison used by every binary operation. */
bool scales_equal(double a, double b);
/* Encode a constant c * scale as a residue per limb (rounded, sign-aware, any magnitude). */
void ckks_const_residues(const ckks_context *ctx, uint64_t *out, double value, unsigned level);

_Static_assert(CKKS_SEED_BYTES == HECNN_SEED_BYTES, "one seed size");
_Static_assert(CKKS_MAX_PRIMES <= RLWE_MAX_PRIMES, "the ring holds every prime a literal names");
_Static_assert(CKKS_SWITCH_SECRET == RLWE_SWITCH_SECRET, "one tag for secret-switching keys");

#endif

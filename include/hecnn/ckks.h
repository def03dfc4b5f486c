/* hecnn — RNS-CKKS: parameters, keys, encoding, encryption, evaluation, serialization.
 *
 * Conventions (see docs/ARCHITECTURE.md):
 *  - Every fallible function returns hecnn_status (HECNN_OK = 0); outputs come first.
 *  - Handles are opaque; X_free(NULL) is a no-op; secret material is wiped on free.
 *  - A ciphertext at level l has l+1 limbs q_0..q_l; level 0 is the last one usable.
 *  - Every plaintext, ciphertext and key records its parameter id, level and scale;
 *    every operation checks them and fails with a specific status instead of computing nonsense.
 *  - Outputs of evaluator operations may alias inputs.
 *  - The context and keys are immutable after creation and may be shared across threads;
 *    evaluation functions are reentrant.
 */
#ifndef HECNN_CKKS_H
#define HECNN_CKKS_H

#include <complex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hecnn/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

#define CKKS_MAX_PRIMES 64
#define CKKS_SEED_BYTES 32

typedef enum ckks_secret_dist {
    CKKS_SECRET_TERNARY = 0,        /* uniform over {-1,0,1}: covered by the HE standard */
    CKKS_SECRET_SPARSE_TERNARY = 1  /* exactly h nonzero coefficients in {-1,1} */
} ckks_secret_dist;

/* A plain description of a parameter set; turned into a validated context. */
typedef struct ckks_params_literal {
    unsigned log_n;                        /* ring degree N = 2^log_n, 4..17 */
    unsigned n_q;                          /* number of ciphertext primes (max level + 1) */
    unsigned log_q[CKKS_MAX_PRIMES];       /* bit size of q_0 (first) .. q_{n_q-1} */
    unsigned n_p;                          /* number of special primes for key switching */
    unsigned log_p[CKKS_MAX_PRIMES];       /* bit size of each special prime */
    unsigned dnum;                         /* key-switching digits; 0 = ceil(n_q / n_p) */
    unsigned log_scale;                    /* default scale is 2^log_scale */
    ckks_secret_dist secret;
    unsigned hamming_weight;               /* for CKKS_SECRET_SPARSE_TERNARY */
    double sigma;                          /* error std-dev; 0 = 3.2; the HE standard's 3.19..3.2 only */
    bool allow_insecure;                   /* accept log QP above the 128-bit bound, a sparse secret or
                                              another sigma (tests only; a file never sets another sigma) */
} ckks_params_literal;

/* Named presets, 128-bit secure by the HomomorphicEncryption.org table. */
typedef enum ckks_preset {
    CKKS_PRESET_N13 = 0,   /* N=2^13, log QP <= 218 */
    CKKS_PRESET_N14,       /* N=2^14, log QP <= 438 */
    CKKS_PRESET_N15,       /* N=2^15, log QP <= 881 */
    CKKS_PRESET_N16,       /* N=2^16, 25 limbs (60 + 24x50), 8x60 special, dnum 3: log QP 1740 */
    CKKS_PRESET_COUNT
} ckks_preset;

hecnn_status ckks_params_preset(ckks_params_literal *out, ckks_preset preset);
/* Largest log2(QP) that is 128-bit secure for ring degree 2^log_n (ternary secret), 0 if unknown. */
unsigned ckks_max_log_qp_128(unsigned log_n);

typedef struct ckks_context ckks_context;
typedef struct ckks_plaintext ckks_plaintext;
typedef struct ckks_ciphertext ckks_ciphertext;
typedef struct ckks_secret_key ckks_secret_key;
typedef struct ckks_public_key ckks_public_key;
typedef struct ckks_switching_key ckks_switching_key;   /* relinearization or one Galois key */
typedef struct ckks_eval_keys ckks_eval_keys;           /* a relin key and a set of Galois keys */

/* ---- context ---------------------------------------------------------------------------- */
hecnn_status ckks_context_new(ckks_context **out, const ckks_params_literal *params);
void ckks_context_free(ckks_context *ctx);
size_t ckks_context_n(const ckks_context *ctx);            /* ring degree N */
size_t ckks_context_max_slots(const ckks_context *ctx);    /* N/2 */
unsigned ckks_context_max_level(const ckks_context *ctx);  /* n_q - 1 */
double ckks_context_default_scale(const ckks_context *ctx);
uint64_t ckks_context_param_id(const ckks_context *ctx);
uint64_t ckks_context_q(const ckks_context *ctx, unsigned i);  /* i-th ciphertext prime */
uint64_t ckks_context_p(const ckks_context *ctx, unsigned i);  /* i-th special prime */
unsigned ckks_context_n_p(const ckks_context *ctx);
unsigned ckks_context_dnum(const ckks_context *ctx);
double ckks_context_log_qp(const ckks_context *ctx);
const ckks_params_literal *ckks_context_params(const ckks_context *ctx);

/* Threads used by operations that split work internally (OpenMP); 0 = all cores. */
void hecnn_set_threads(int threads);
int hecnn_get_threads(void);
/* SIMD path in use for the NTT: "portable", "avx2", "avx512", "avx512ifma". */
const char *hecnn_simd_name(void);

/* ---- plaintexts and ciphertexts ------------------------------------------------------- */
hecnn_status ckks_plaintext_new(ckks_plaintext **out, const ckks_context *ctx);
void ckks_plaintext_free(ckks_plaintext *pt);
unsigned ckks_plaintext_level(const ckks_plaintext *pt);
double ckks_plaintext_scale(const ckks_plaintext *pt);
size_t ckks_plaintext_slots(const ckks_plaintext *pt);

hecnn_status ckks_ciphertext_new(ckks_ciphertext **out, const ckks_context *ctx);
void ckks_ciphertext_free(ckks_ciphertext *ct);
hecnn_status ckks_ciphertext_copy(ckks_ciphertext *dst, const ckks_ciphertext *src);
unsigned ckks_ciphertext_level(const ckks_ciphertext *ct);
double ckks_ciphertext_scale(const ckks_ciphertext *ct);
size_t ckks_ciphertext_slots(const ckks_ciphertext *ct);
unsigned ckks_ciphertext_degree(const ckks_ciphertext *ct);  /* 1 normally, 2 after mul */
/* Overwrite the recorded scale (for callers that track scales exactly, e.g. after a
 * multiplication by a constant that was folded into the scale). */
hecnn_status ckks_ciphertext_set_scale(ckks_ciphertext *ct, double scale);

/* ---- encoding ------------------------------------------------------------------------- */
/* Encode `count` complex values into `slots` slots (power of two, <= N/2; 0 means N/2);
 * missing values are zero. The plaintext is at `level` with `scale`. */
hecnn_status ckks_encode(const ckks_context *ctx, ckks_plaintext *pt, const double complex *values,
                         size_t count, size_t slots, unsigned level, double scale);
hecnn_status ckks_encode_real(const ckks_context *ctx, ckks_plaintext *pt, const double *values,
                              size_t count, size_t slots, unsigned level, double scale);
/* Decode all `ckks_plaintext_slots(pt)` slots; `out` holds at least that many. */
hecnn_status ckks_decode(const ckks_context *ctx, double complex *out, const ckks_plaintext *pt);
hecnn_status ckks_decode_real(const ckks_context *ctx, double *out, const ckks_plaintext *pt);

/* ---- keys ----------------------------------------------------------------------------- */
/* _derand variants take an explicit 32-byte seed for known-answer tests; the others draw
 * seeds from the operating system's CSPRNG. */
hecnn_status ckks_secret_key_generate(ckks_secret_key **out, const ckks_context *ctx);
hecnn_status ckks_secret_key_generate_derand(ckks_secret_key **out, const ckks_context *ctx,
                                             const uint8_t seed[CKKS_SEED_BYTES]);
void ckks_secret_key_free(ckks_secret_key *sk);
/* An ephemeral sparse secret (exactly `hamming_weight` coefficients in {-1, 1}) under the same
 * context, e.g. for sparse-secret encapsulation in bootstrapping; the main secret stays dense. */
hecnn_status ckks_secret_key_generate_sparse(ckks_secret_key **out, const ckks_context *ctx, size_t hamming_weight);
hecnn_status ckks_secret_key_generate_sparse_derand(ckks_secret_key **out, const ckks_context *ctx,
                                                    size_t hamming_weight, const uint8_t seed[CKKS_SEED_BYTES]);

hecnn_status ckks_public_key_generate(ckks_public_key **out, const ckks_secret_key *sk);
hecnn_status ckks_public_key_generate_derand(ckks_public_key **out, const ckks_secret_key *sk,
                                             const uint8_t seed[CKKS_SEED_BYTES]);
void ckks_public_key_free(ckks_public_key *pk);

/* Galois elements: X -> X^g. Rotation by k slots to the left uses 5^k mod 2N. */
uint64_t ckks_galois_element_rotation(const ckks_context *ctx, int steps);
uint64_t ckks_galois_element_conjugate(const ckks_context *ctx);

/* Switching keys usable up to `max_level` (ckks_context_max_level for all levels):
 * a key for a low level is smaller. */
hecnn_status ckks_relin_key_generate(ckks_switching_key **out, const ckks_secret_key *sk,
                                     unsigned max_level);
hecnn_status ckks_galois_key_generate(ckks_switching_key **out, const ckks_secret_key *sk,
                                      uint64_t galois_element, unsigned max_level);
hecnn_status ckks_switching_key_generate_derand(ckks_switching_key **out, const ckks_secret_key *sk,
                                                uint64_t galois_element /* 0 = relin */,
                                                unsigned max_level,
                                                const uint8_t seed[CKKS_SEED_BYTES]);
/* A key turning ciphertexts under `from` into ciphertexts under `to` (same context); its
 * galois element reads CKKS_SWITCH_SECRET. Apply with ckks_switch_key. */
#define CKKS_SWITCH_SECRET 2
hecnn_status ckks_switching_key_generate_between(ckks_switching_key **out, const ckks_secret_key *from,
                                                 const ckks_secret_key *to, unsigned max_level);
hecnn_status ckks_switching_key_generate_between_derand(ckks_switching_key **out, const ckks_secret_key *from,
                                                        const ckks_secret_key *to, unsigned max_level,
                                                        const uint8_t seed[CKKS_SEED_BYTES]);
void ckks_switching_key_free(ckks_switching_key *key);
uint64_t ckks_switching_key_galois_element(const ckks_switching_key *key); /* 0 relin, 2 secret switch */
unsigned ckks_switching_key_max_level(const ckks_switching_key *key);
size_t ckks_switching_key_bytes(const ckks_switching_key *key, bool seeded); /* serialized size */
/* Memory held by the key (about 42 % of the whole key once compact). */
size_t ckks_switching_key_memory_bytes(const ckks_switching_key *key);
/* Hold the key compactly: the uniform halves are dropped and re-expanded from the key's seed
 * (AES-256-CTR, limb by limb) each time the key is used, and the other halves are packed, each
 * coefficient in the bytes its prime needs. Results are bit-identical; a use costs about 6 ms more
 * at N = 2^16 and the top level. Fails with HECNN_ERR_INVALID_ARGUMENT when the halves do not come
 * from the seed (a key loaded from an unseeded file). Idempotent. */
hecnn_status ckks_switching_key_compact(ckks_switching_key *key);

hecnn_status ckks_eval_keys_new(ckks_eval_keys **out, const ckks_context *ctx);
void ckks_eval_keys_free(ckks_eval_keys *keys);
/* Takes ownership of `key` (also on failure); replaces a key of the same role. */
hecnn_status ckks_eval_keys_add(ckks_eval_keys *keys, ckks_switching_key *key);
/* Convenience: relinearization key (if `relin`), rotations by each of `steps`, and
 * conjugation (if `conjugate`), all at the context's top level. */
hecnn_status ckks_eval_keys_generate(ckks_eval_keys **out, const ckks_secret_key *sk, bool relin,
                                     const int *steps, size_t n_steps, bool conjugate);
const ckks_switching_key *ckks_eval_keys_relin(const ckks_eval_keys *keys);
const ckks_switching_key *ckks_eval_keys_galois(const ckks_eval_keys *keys, uint64_t galois_element);
size_t ckks_eval_keys_count(const ckks_eval_keys *keys);
/* ckks_switching_key_compact on every Galois key, and on the relinearization key if asked. */
hecnn_status ckks_eval_keys_compact(ckks_eval_keys *keys, bool include_relin);
const ckks_switching_key *ckks_eval_keys_at(const ckks_eval_keys *keys, size_t i);

/* ---- encryption ----------------------------------------------------------------------- */
hecnn_status ckks_encrypt_pk(const ckks_context *ctx, ckks_ciphertext *ct, const ckks_plaintext *pt,
                             const ckks_public_key *pk);
hecnn_status ckks_encrypt_pk_derand(const ckks_context *ctx, ckks_ciphertext *ct,
                                    const ckks_plaintext *pt, const ckks_public_key *pk,
                                    const uint8_t seed[CKKS_SEED_BYTES]);
/* Symmetric encryption: the uniform half is a seed, so the fresh ciphertext serializes at half size. */
hecnn_status ckks_encrypt_sk(const ckks_context *ctx, ckks_ciphertext *ct, const ckks_plaintext *pt,
                             const ckks_secret_key *sk);
hecnn_status ckks_encrypt_sk_derand(const ckks_context *ctx, ckks_ciphertext *ct,
                                    const ckks_plaintext *pt, const ckks_secret_key *sk,
                                    const uint8_t seed[CKKS_SEED_BYTES]);
hecnn_status ckks_decrypt(const ckks_context *ctx, ckks_plaintext *pt, const ckks_ciphertext *ct,
                          const ckks_secret_key *sk);

/* ---- decryption for results that leave the data owner (docs/SECURITY.md) -------------------- *
 * A decryption is m + e, and e depends on the secret key: published decryptions of ciphertexts an
 * adversary chose reveal the key (Li-Micciancio 2021, IND-CPA^D). A flooded decryption adds to every
 * coefficient an independent rounded Gaussian of standard deviation
 *     sigma_flood = 2^flood_bits * B
 * where B bounds the rms coefficient error of the ciphertext (log2_error, or the floor estimate of
 * ckks_error_estimate_log2). The default flood_bits = s/2 + log2(N)/2 + 1 with s = CKKS_FLOOD_STAT_SEC:
 * then for any two errors e, e' within the bound (|e - e'|_2 <= 2 sqrt(N) B) the flooded outputs are
 * within KL divergence |e - e'|^2 / (2 sigma^2) <= 2^-(s+1) per decryption (t decryptions: t times
 * that). Precision cost: each decoded slot gains noise of standard deviation
 * sigma_flood * sqrt(slots) / scale per real part (ckks_flood_slot_stddev). */
#define CKKS_FLOOD_STAT_SEC 30
typedef struct ckks_flood_options {
    double flood_bits; /* 0: ckks_flood_bits_default(ctx); else in (0, 64] */
    double log2_error; /* log2 B, the caller's bound (e.g. from a noise-estimation run); 0: the estimate */
} ckks_flood_options;
/* log2 of the rms coefficient error every ciphertext carries at the least: a fresh public-key
 * encryption's, sigma sqrt(4N/3 + 1), at the top level; a rescale's rounding, sqrt((1 + 2N/3) / 12),
 * below it. A floor, not a bound: an evaluated ciphertext carries more (pass log2_error then). */
double ckks_error_estimate_log2(const ckks_context *ctx, const ckks_ciphertext *ct);
double ckks_flood_bits_default(const ckks_context *ctx);
/* log2 sigma_flood (coefficient units) for ct under opt (NULL: defaults). */
double ckks_flood_sigma_log2(const ckks_context *ctx, const ckks_ciphertext *ct, const ckks_flood_options *opt);
/* The flooding noise's standard deviation in a decoded slot (real part) of ct. */
double ckks_flood_slot_stddev(const ckks_context *ctx, const ckks_ciphertext *ct, const ckks_flood_options *opt);
/* Decrypt, then flood from a fresh OS-seeded AES-CTR stream. Refuses (INVALID_ARGUMENT) flood_bits
 * outside (0, 64], a non-finite log2_error, or a sigma_flood whose 8-sigma tail reaches a quarter of
 * the ciphertext's modulus (the noise would wrap). opt NULL: the defaults. */
hecnn_status ckks_decrypt_flooded(const ckks_context *ctx, ckks_plaintext *pt, const ckks_ciphertext *ct,
                                  const ckks_secret_key *sk, const ckks_flood_options *opt);
/* The same with the flooding stream named by `seed`: reproducible, for known-answer tests only. */
hecnn_status ckks_decrypt_flooded_derand(const ckks_context *ctx, ckks_plaintext *pt, const ckks_ciphertext *ct,
                                         const ckks_secret_key *sk, const ckks_flood_options *opt,
                                         const uint8_t seed[CKKS_SEED_BYTES]);

/* ---- evaluation ----------------------------------------------------------------------- */
typedef struct ckks_evaluator ckks_evaluator;
/* `keys` may be NULL (then mul-relin, rotation and conjugation fail with MISSING_KEY);
 * the evaluator borrows ctx and keys, which must outlive it. */
hecnn_status ckks_evaluator_new(ckks_evaluator **out, const ckks_context *ctx,
                                const ckks_eval_keys *keys);
void ckks_evaluator_free(ckks_evaluator *ev);
const ckks_context *ckks_evaluator_context(const ckks_evaluator *ev);

/* Binary ops need equal levels and scales (relative difference below 2^-40). */
hecnn_status ckks_add(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a,
                      const ckks_ciphertext *b);
hecnn_status ckks_sub(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a,
                      const ckks_ciphertext *b);
hecnn_status ckks_negate(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a);
hecnn_status ckks_add_plain(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a,
                            const ckks_plaintext *b);
hecnn_status ckks_sub_plain(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a,
                            const ckks_plaintext *b);
/* Scale of the result is the product of the scales; the plaintext's level must be >= a's. */
hecnn_status ckks_mul_plain(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a,
                            const ckks_plaintext *b);
/* Adds c to every slot (at a's scale). */
hecnn_status ckks_add_const(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a,
                            double complex c);
/* Multiplies every slot by c encoded at `const_scale` (0 = the current top prime q_level, so a
 * following rescale restores a's scale exactly); result scale = scale(a) * const_scale. */
hecnn_status ckks_mul_const(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a,
                            double complex c, double const_scale);
/* Multiplies by an integer without changing the scale. */
hecnn_status ckks_mul_integer(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a,
                              int64_t k);
/* out = sum_j k_j * in_j, or out += that when `accumulate`: integer weights, so no level is used and
 * the scale is unchanged. Inputs (degree 1) share one level and scale; out must not alias them. */
hecnn_status ckks_dot_integer(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *const *in,
                              const int64_t *k, size_t count, bool accumulate);
/* Multiplies by the monomial X^k (k any integer, taken mod 2N; X^N = -1): exact, no level, no
 * scale change, no key. Slot j is multiplied by zeta_j^k, zeta_j = exp(i pi 5^j / N) its root:
 * for k = N/2 that is i in every slot (ckks_mul_i); N gives -1 and 3N/2 gives -i. */
hecnn_status ckks_mul_monomial(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a,
                               int64_t k);
/* Multiplies every slot by i (X^(N/2)): exact, no level, no scale change, no key. */
hecnn_status ckks_mul_i(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a);
/* Tensor product without relinearization: degree 2 output. */
hecnn_status ckks_mul(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a,
                      const ckks_ciphertext *b);
hecnn_status ckks_relinearize(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a);
hecnn_status ckks_mul_relin(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a,
                            const ckks_ciphertext *b);
hecnn_status ckks_square_relin(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a);
/* Divide by the top prime q_level: level - 1, scale / q_level. */
hecnn_status ckks_rescale(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a);
/* Drop limbs down to `level` (<= current) without changing the scale. */
hecnn_status ckks_drop_level(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a,
                             unsigned level);
/* Bring a and b to the lower of their levels (in place). */
hecnn_status ckks_match_level(const ckks_evaluator *ev, ckks_ciphertext *a, ckks_ciphertext *b);
/* Set the scale to `scale` exactly by a constant multiplication and a rescale (uses one level). */
hecnn_status ckks_set_scale(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a,
                            double scale);
/* Rotate slots left by `steps` (negative: right). */
hecnn_status ckks_rotate(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a,
                         int steps);
hecnn_status ckks_conjugate(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a);
/* Apply any Galois automorphism for which a key is present. */
hecnn_status ckks_apply_galois(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a,
                               uint64_t galois_element);
/* Re-encrypt a (degree-1) ciphertext under another secret with a key from
 * ckks_switching_key_generate_between; level and scale unchanged. */
hecnn_status ckks_switch_key(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a,
                             const ckks_switching_key *key);
/* Lift a ciphertext to `level` (>= its own) by reading its coefficients modulo q_0 as centred
 * integers: the plaintext gains a multiple of q_0 (the I(X) term of bootstrapping). */
hecnn_status ckks_mod_raise(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a, unsigned level);
/* Hoisted rotations: one key-switching decomposition of `a` shared by all `count` rotations.
 * outs[i] receives a rotated by steps[i] (steps[i] == 0 copies). */
hecnn_status ckks_rotate_hoisted(const ckks_evaluator *ev, ckks_ciphertext *const *outs,
                                 const ckks_ciphertext *a, const int *steps, size_t count);

/* ---- serialization -------------------------------------------------------------------- *
 * Every object is written with a fixed little-endian header: magic "HECNN\0", format version,
 * object type, parameter id and total size. Loaders validate the header, then the metadata,
 * then the sizes against the context, before allocating; then check every coefficient
 * against its modulus. Keys and fresh symmetric ciphertexts are stored seeded when possible. */
hecnn_status ckks_params_save(const ckks_params_literal *params, FILE *f);
hecnn_status ckks_params_load(ckks_params_literal *out, FILE *f);
hecnn_status ckks_ciphertext_save(const ckks_ciphertext *ct, FILE *f);
hecnn_status ckks_ciphertext_load(const ckks_context *ctx, ckks_ciphertext *ct, FILE *f);
hecnn_status ckks_plaintext_save(const ckks_plaintext *pt, FILE *f);
hecnn_status ckks_plaintext_load(const ckks_context *ctx, ckks_plaintext *pt, FILE *f);
hecnn_status ckks_secret_key_save(const ckks_secret_key *sk, FILE *f);
hecnn_status ckks_secret_key_load(const ckks_context *ctx, ckks_secret_key **out, FILE *f);
hecnn_status ckks_public_key_save(const ckks_public_key *pk, FILE *f);
hecnn_status ckks_public_key_load(const ckks_context *ctx, ckks_public_key **out, FILE *f);
/* seeded: write the uniform half as its seed (half the size). */
hecnn_status ckks_switching_key_save(const ckks_switching_key *key, bool seeded, FILE *f);
hecnn_status ckks_switching_key_load(const ckks_context *ctx, ckks_switching_key **out, FILE *f);
/* A key set is a count followed by its switching keys, loadable one by one. */
hecnn_status ckks_eval_keys_save(const ckks_eval_keys *keys, bool seeded, FILE *f);
hecnn_status ckks_eval_keys_load(const ckks_context *ctx, ckks_eval_keys **out, FILE *f);
/* The same, compacting each Galois key (and the relinearization key if asked) that carries a seed
 * as soon as it is read, so that no more than one key is ever held whole. */
hecnn_status ckks_eval_keys_load_compact(const ckks_context *ctx, ckks_eval_keys **out, FILE *f, bool include_relin);

/* ---- precision statistics --------------------------------------------------------------- */
/* log2 of the absolute error, per part: larger is better (bits of precision = -log2 err). */
typedef struct ckks_precision_stats {
    double min_bits_real, mean_bits_real, median_bits_real, max_bits_real;
    double min_bits_imag, mean_bits_imag, median_bits_imag, max_bits_imag;
    double max_abs_error;  /* largest |want - have| over real and imaginary parts */
} ckks_precision_stats;
hecnn_status ckks_precision(ckks_precision_stats *out, const double complex *want,
                            const double complex *have, size_t n);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif

/* hecnn — circuits over CKKS: polynomial evaluation, composite sign/ReLU approximations,
 * linear transforms (BSGS, hoisted rotations) and bootstrapping.
 *
 * Conventions follow ckks.h: status returns, outputs first, opaque handles with _free(NULL)
 * a no-op, every ciphertext level and scale checked by the engine. See docs/BOOTSTRAPPING.md. */
#ifndef HECNN_CIRCUITS_H
#define HECNN_CIRCUITS_H

#include <complex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hecnn/ckks.h"
#include "hecnn/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

/* ==== polynomials in the Chebyshev basis ============================================= */

/* p(x) = sum_{i <= degree} c_i T_i(y), y = (2x - a - b) / (b - a), for x in [a, b]. */
typedef struct ckks_poly ckks_poly;
typedef double (*ckks_real_fn)(double x, void *arg);

hecnn_status ckks_poly_new(ckks_poly **out, const double *coeffs, size_t degree, double a, double b);
/* Interpolation at the degree + 1 Chebyshev nodes of [a, b]. */
hecnn_status ckks_poly_interpolate(ckks_poly **out, ckks_real_fn f, void *arg, double a, double b,
                                   size_t degree);
/* From power-basis coefficients sum m_i x^i, re-expressed in the Chebyshev basis of [a, b]. */
hecnn_status ckks_poly_from_monomial(ckks_poly **out, const double *monomial, size_t degree, double a,
                                     double b);
hecnn_status ckks_poly_copy(ckks_poly **out, const ckks_poly *p);
void ckks_poly_free(ckks_poly *p);
size_t ckks_poly_degree(const ckks_poly *p);        /* index of the last nonzero coefficient */
const double *ckks_poly_coeffs(const ckks_poly *p); /* degree + 1 Chebyshev coefficients */
double ckks_poly_a(const ckks_poly *p);
double ckks_poly_b(const ckks_poly *p);
/* Zero the even (make_odd) or odd (make_even) coefficients; meaningful when a = -b. The
 * evaluator then skips the zero half of the power basis. */
void ckks_poly_make_odd(ckks_poly *p);
void ckks_poly_make_even(ckks_poly *p);
/* Levels consumed by ckks_poly_evaluate: ceil(log2(degree + 1)). */
unsigned ckks_poly_depth(const ckks_poly *p);
/* Ciphertext-ciphertext multiplications ckks_poly_evaluate performs. */
unsigned ckks_poly_mul_count(const ckks_poly *p);
/* Clenshaw evaluation in double precision. */
double ckks_poly_eval(const ckks_poly *p, double x);
/* max |f(x) - p(x)| over `samples` points evenly spread on [a, b]. */
double ckks_poly_max_error(const ckks_poly *p, ckks_real_fn f, void *arg, size_t samples);

/* out = p(in) slot-wise (real coefficients; slots must lie in [a, b]). The result has scale
 * exactly `target_scale` (0 = scale of in): the constants are encoded at scales chosen so that
 * every sum is exact and every rescale lands where it must (baby-step giant-step in the
 * Chebyshev basis). It is at level level(in) - ckks_poly_depth(p) (optimal) when the input's
 * scale divided by 2/(b - a) is near the prime q_level(in); otherwise the power basis would
 * drift off the primes, and one more level normalizes the input first (ckks_poly_levels_used
 * says which). Keep inputs in [-1, 1] at the primes' scale to get the optimal depth. Needs the
 * relinearization key. */
unsigned ckks_poly_levels_used(const ckks_context *ctx, const ckks_poly *p, unsigned level, double scale);
hecnn_status ckks_poly_evaluate(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *in,
                                const ckks_poly *p, double target_scale);

/* ==== composite minimax sign and ReLU (Lee, Lee, Kim, No 2021) ======================== */

/* sign(x) on [-1, -2^-alpha] ∪ [2^-alpha, 1] as p_k ∘ ... ∘ p_1: each p_i is the odd
 * minimax polynomial of degree degrees[i] for sign on the image of the previous stages,
 * found by the Remez exchange algorithm. */
typedef struct ckks_sign_approx ckks_sign_approx;
hecnn_status ckks_sign_approx_new(ckks_sign_approx **out, double alpha, const unsigned *degrees, size_t stages);
void ckks_sign_approx_free(ckks_sign_approx *s);
size_t ckks_sign_approx_stages(const ckks_sign_approx *s);
const ckks_poly *ckks_sign_approx_stage(const ckks_sign_approx *s, size_t i);
unsigned ckks_sign_approx_depth(const ckks_sign_approx *s);
/* -log2 max |sign(x) - approx(x)| over the domain (measured on the Remez equioscillation). */
double ckks_sign_approx_error_bits(const ckks_sign_approx *s);
double ckks_sign_approx_alpha(const ckks_sign_approx *s);
double ckks_sign_approx_eval(const ckks_sign_approx *s, double x);

/* out ≈ sign(in): level(in) - depth, scale target_scale (0 = scale of in). */
hecnn_status ckks_sign_evaluate(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *in,
                                const ckks_sign_approx *s, double target_scale);
/* out ≈ max(in, 0) for |in| <= bound, as (x + x sign(x / bound)) / 2: depth + 1 levels. */
hecnn_status ckks_relu_evaluate(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *in,
                                const ckks_sign_approx *s, double bound, double target_scale);

/* Recommended composites: degrees, depth, and the error measured when the table was made. */
typedef struct ckks_sign_preset {
    double alpha;           /* inputs with |x| >= 2^-alpha are separated */
    size_t stages;
    unsigned degrees[4];
    unsigned depth;         /* sign; ReLU needs one more */
    double error_bits;      /* -log2 max error of sign on the domain */
} ckks_sign_preset;
size_t ckks_sign_presets(const ckks_sign_preset **out);

/* ==== linear transforms ============================================================== */

/* out[j] = sum_i diags[i][j] * in[(j + offsets[i]) mod slots], j < slots, on ciphertexts that
 * hold `slots` values (a slot vector repeating with period `slots`). Evaluated by baby-step
 * giant-step with hoisted baby rotations; the diagonals are encoded once, at `level`. */
typedef struct ckks_lintrans_desc {
    size_t slots;                        /* power of two <= N/2 (0 = N/2) */
    size_t n_diags;
    const int *offsets;                  /* any integers; reduced mod slots, distinct after that */
    const double complex *const *diags;  /* n_diags vectors of `slots` values */
    unsigned level;                      /* level of the ciphertexts it will be applied to */
    double scale;                        /* plaintext scale; 0 = q_level (rescale restores the input scale) */
    size_t baby_step;                    /* power of two; 0 = chosen by the planner */
} ckks_lintrans_desc;

typedef struct ckks_lintrans ckks_lintrans;
hecnn_status ckks_lintrans_new(ckks_lintrans **out, const ckks_context *ctx, const ckks_lintrans_desc *desc);
/* A dense slots x slots matrix (row-major): zero diagonals are dropped. */
hecnn_status ckks_lintrans_from_matrix(ckks_lintrans **out, const ckks_context *ctx, const double complex *matrix,
                                       size_t slots, unsigned level, double scale);
void ckks_lintrans_free(ckks_lintrans *lt);
unsigned ckks_lintrans_level(const ckks_lintrans *lt);
double ckks_lintrans_scale(const ckks_lintrans *lt);
size_t ckks_lintrans_baby_step(const ckks_lintrans *lt);
/* The planner: exactly the rotations (steps in [1, slots)) and the Galois elements the
 * transform needs, ascending. Returns the count; writes at most `cap`. */
size_t ckks_lintrans_rotations(const ckks_lintrans *lt, int *out, size_t cap);
size_t ckks_lintrans_galois_elements(const ckks_lintrans *lt, uint64_t *out, size_t cap);
/* out = M in; out is at the level of in with scale scale(in) * ckks_lintrans_scale (rescale
 * afterwards). in must be at the transform's level or above. MISSING_KEY when a key is absent. */
hecnn_status ckks_lintrans_apply(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *in,
                                 const ckks_lintrans *lt);

/* ==== bootstrapping ================================================================== */

typedef enum ckks_mod1_kind {
    CKKS_MOD1_COS_DOUBLE_ANGLE = 0,  /* Chebyshev interpolant of a scaled cosine, then double angles */
    CKKS_MOD1_SIN = 1                /* Chebyshev interpolant of sin(2 pi x) / (2 pi) directly */
} ckks_mod1_kind;

/* How one bootstrap is laid out. Levels are consumed from the top of the chain:
 * CoeffsToSlots, then EvalMod, then SlotsToCoeffs; the output lands at
 * max_level - depth (ckks_bootstrapper_output_level). */
typedef struct ckks_boot_params {
    unsigned log_slots;             /* slots bootstrapped: 2^log_slots <= N/2 */
    unsigned c2s_levels;            /* levels of the homomorphic DFT CoeffsToSlots (1..8) */
    unsigned s2c_levels;            /* levels of SlotsToCoeffs (1..8) */
    unsigned c2s_stages[8];         /* radix-2 stages merged per level, first level first; all 0 = even split */
    unsigned s2c_stages[8];
    ckks_mod1_kind mod1;
    unsigned k;                     /* |I| < k: range [-k, k] of the integer part after ModRaise */
    unsigned mod1_degree;           /* degree of the cosine / sine interpolant */
    unsigned double_angle;          /* double-angle steps (COS_DOUBLE_ANGLE only) */
    unsigned arcsine_degree;        /* odd Taylor degree of the arcsine correction; 0 = none */
    unsigned log_message_ratio;     /* the input is scaled to q_0 / 2^ratio before ModRaise */
    unsigned ephemeral_hamming_weight; /* sparse-secret encapsulation weight; 0 = off (main secret must be sparse) */
    unsigned evalmod_log_scale;     /* scale of EvalMod's intermediate results (0 = bits of its primes) */
} ckks_boot_params;

typedef enum ckks_boot_preset {
    /* N = 2^16, 2^15 slots, dense ternary main secret, ephemeral h = 32: 128-bit. */
    CKKS_BOOT_N16_FULL = 0,
    /* Same chain, 2^12 slots. */
    CKKS_BOOT_N16_SPARSE,
    /* N = 2^12 test sets (insecure: for fast tests only): full and sparse slots. */
    CKKS_BOOT_TEST_N12_FULL,
    CKKS_BOOT_TEST_N12_SPARSE,
    /* N = 2^12 (insecure, tests and the tool's test mode), full slots: the TEST_N12_FULL chain with
     * six residual 40-bit levels (room for a network's linear layers between bootstraps), dnum 5
     * so that the special primes cover a digit. */
    CKKS_BOOT_TEST_N12_DEEP,
    CKKS_BOOT_PRESET_COUNT
} ckks_boot_preset;

/* The full modulus chain (residual primes, then SlotsToCoeffs, EvalMod, CoeffsToSlots) and
 * the bootstrapping layout of a preset. */
hecnn_status ckks_boot_preset_params(ckks_params_literal *ckks, ckks_boot_params *boot, ckks_boot_preset preset);

typedef struct ckks_bootstrapper ckks_bootstrapper;
/* Precomputes the DFT factors (encoded diagonals) and the EvalMod polynomials. */
hecnn_status ckks_bootstrapper_new(ckks_bootstrapper **out, const ckks_context *ctx, const ckks_boot_params *bp);
void ckks_bootstrapper_free(ckks_bootstrapper *bt);
unsigned ckks_bootstrapper_output_level(const ckks_bootstrapper *bt);
unsigned ckks_bootstrapper_depth(const ckks_bootstrapper *bt);
size_t ckks_bootstrapper_slots(const ckks_bootstrapper *bt);
/* Failure probability per bootstrap (log2): the chance that some |I_j| >= k after ModRaise
 * under the (ephemeral) secret, from the Irwin–Hall tail of the sum of h uniform terms. */
double ckks_bootstrapper_log2_failure(const ckks_bootstrapper *bt);
/* Bytes of the precomputed plaintexts (DFT diagonals). */
size_t ckks_bootstrapper_bytes(const ckks_bootstrapper *bt);

/* A key the bootstrapper needs: a Galois element (0 = relinearization) and the highest level it
 * is used at (keys are generated level-reduced to that level). */
typedef struct ckks_key_need {
    uint64_t galois;
    unsigned max_level;
} ckks_key_need;
/* Exactly the relinearization and Galois keys, ascending by Galois element (relin first). */
size_t ckks_bootstrapper_key_plan(const ckks_bootstrapper *bt, ckks_key_need *out, size_t cap);

/* Bootstrapping keys: the planned keys plus, with encapsulation, the two switching keys
 * dense -> ephemeral sparse (at level 0) and sparse -> dense (at the top). */
typedef struct ckks_boot_keys ckks_boot_keys;
hecnn_status ckks_boot_keys_generate(ckks_boot_keys **out, const ckks_bootstrapper *bt, const ckks_secret_key *sk);
/* Assemble from keys made or loaded one by one (e.g. with ckks_galois_key_generate at each
 * planned level, ckks_switching_key_generate_between for the pair); takes ownership of all,
 * also on failure. to_sparse / to_dense may be NULL when encapsulation is off. */
hecnn_status ckks_boot_keys_assemble(ckks_boot_keys **out, ckks_eval_keys *evk, ckks_switching_key *to_sparse,
                                     ckks_switching_key *to_dense);
void ckks_boot_keys_free(ckks_boot_keys *keys);
/* The relinearization and Galois keys (owned by `keys`): usable for an evaluator. */
const ckks_eval_keys *ckks_boot_keys_eval_keys(const ckks_boot_keys *keys);
size_t ckks_boot_keys_count(const ckks_boot_keys *keys);
/* Bytes ckks_boot_keys_save writes (seeded: for keys whose seeds regenerate their uniform halves,
 * as generated or loaded keys do). */
size_t ckks_boot_keys_bytes(const ckks_boot_keys *keys, bool seeded);
size_t ckks_boot_keys_memory_bytes(const ckks_boot_keys *keys);
/* Hold the Galois and sparse-to-dense keys compactly (ckks_switching_key_compact): 42 % of the key
 * memory at N = 2^16, about 0.5 s more per bootstrap at one thread. */
hecnn_status ckks_boot_keys_compact(ckks_boot_keys *keys);
/* ckks_boot_keys_generate, compacting each key as it is made: the peak memory stays low too. */
hecnn_status ckks_boot_keys_generate_compact(ckks_boot_keys **out, const ckks_bootstrapper *bt,
                                             const ckks_secret_key *sk);
/* Serialized as the encapsulation pair then the eval key set, each key loadable one by one. */
hecnn_status ckks_boot_keys_save(const ckks_boot_keys *keys, bool seeded, FILE *f);
hecnn_status ckks_boot_keys_load(const ckks_context *ctx, ckks_boot_keys **out, FILE *f);
/* ckks_boot_keys_load, compacting each key as it is read (as ckks_boot_keys_compact): what a
 * server with little memory loads. Keys written unseeded stay whole. */
hecnn_status ckks_boot_keys_load_compact(const ckks_context *ctx, ckks_boot_keys **out, FILE *f);

/* Refresh `in` (any level >= 0, 2^log_slots slots, scale <= q_0 / 2^ratio) to
 * ckks_bootstrapper_output_level with the context's default scale. Reentrant: several threads
 * may bootstrap different ciphertexts with one bootstrapper and one key set. */
hecnn_status ckks_bootstrap(const ckks_bootstrapper *bt, const ckks_boot_keys *keys, ckks_ciphertext *out,
                            const ckks_ciphertext *in);

/* Two real messages through one bootstrap (half the bootstraps of a circuit whose values are all
 * real): z = in_a + i in_b (ckks_mul_i, exact) is bootstrapped once, then split with one
 * conjugation, a = (z + conj z) / 2, b = (z - conj z) / 2i. The 1/2 costs no level and no
 * precision: it is folded into EvalMod's declared scale (exact). No key beyond
 * ckks_bootstrapper_key_plan: its conjugation key serves the split.
 * Inputs: degree 1, the same level (else LEVEL_MISMATCH), scale (else SCALE_MISMATCH) and slot
 * count (the bootstrapper's); scale <= q_0 / 2^log_message_ratio, as ckks_bootstrap. Their
 * imaginary parts must be (near) zero: -Im(in_b) lands in out_a and Im(in_a) in out_b.
 * Outputs: out_a ~ a, out_b ~ b at ckks_bootstrapper_output_level with exactly the default scale
 * (as ckks_bootstrap); imaginary parts at the noise level (below 2^-27 measured). Precision: that
 * of one ckks_bootstrap of the complex message z (docs/BOOTSTRAPPING.md): at N = 2^16 the same as
 * a real message's, at the N = 2^12 test presets 1 bit below it.
 * in_b NULL (then out_b must be NULL): out_a ~ Re(in_a), a real bootstrap that also clears the
 * imaginary part. Outputs may alias inputs; out_a != out_b. Reentrant as ckks_bootstrap. A caller
 * that wants 2a, 2b instead (to fold the 1/2 elsewhere) declares half the default scale
 * (ckks_ciphertext_set_scale): the same ciphertexts. */
hecnn_status ckks_bootstrap_pair(const ckks_bootstrapper *bt, const ckks_boot_keys *keys, ckks_ciphertext *out_a,
                                 ckks_ciphertext *out_b, const ckks_ciphertext *in_a, const ckks_ciphertext *in_b);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif

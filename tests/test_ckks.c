/* CKKS operations against a plaintext reference, judged by log2 precision.
 * Thresholds (mean bits, real parts) are stated per operation below; they leave a margin of a few
 * bits under what these parameters give, so a real regression (a wrong rounding, a lost factor)
 * fails while noise variation does not. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/check.h"
#include "ckks/internal.h"
#include "hecnn/hecnn.h"

typedef struct fixture {
    ckks_context *ctx;
    ckks_secret_key *sk;
    ckks_public_key *pk;
    ckks_eval_keys *keys;
    ckks_evaluator *ev;
    size_t slots;
} fixture;

static const int rot_steps[] = {1, 2, 3, 5, -1, 7, 100, 16};

static int fixture_init(fixture *f, unsigned log_n, unsigned n_q, unsigned log_scale, unsigned n_p, unsigned dnum)
{
    ckks_params_literal p = {.log_n = log_n, .n_q = n_q, .n_p = n_p, .dnum = dnum, .log_scale = log_scale,
                             .allow_insecure = true};
    p.log_q[0] = 60;
    for (unsigned i = 1; i < n_q; i++) p.log_q[i] = log_scale;
    for (unsigned i = 0; i < n_p; i++) p.log_p[i] = 60;
    uint8_t seed[CKKS_SEED_BYTES] = {1, 2, 3};
    memset(f, 0, sizeof *f);
    if (ckks_context_new(&f->ctx, &p)) return -1;
    if (ckks_secret_key_generate_derand(&f->sk, f->ctx, seed)) return -1;
    if (ckks_public_key_generate(&f->pk, f->sk)) return -1;
    if (ckks_eval_keys_generate(&f->keys, f->sk, true, rot_steps, sizeof rot_steps / sizeof *rot_steps, true)) return -1;
    if (ckks_evaluator_new(&f->ev, f->ctx, f->keys)) return -1;
    f->slots = ckks_context_max_slots(f->ctx);
    return 0;
}

static void fixture_free(fixture *f)
{
    ckks_evaluator_free(f->ev);
    ckks_eval_keys_free(f->keys);
    ckks_public_key_free(f->pk);
    ckks_secret_key_free(f->sk);
    ckks_context_free(f->ctx);
}

static void random_values(double complex *v, size_t n, double bound)
{
    for (size_t i = 0; i < n; i++) v[i] = test_rng_uniform(-bound, bound) + I * test_rng_uniform(-bound, bound);
}

static ckks_ciphertext *encrypt_n(fixture *f, const double complex *v, size_t count, unsigned level, double scale)
{
    ckks_plaintext *pt;
    ckks_ciphertext *ct;
    ckks_plaintext_new(&pt, f->ctx);
    ckks_ciphertext_new(&ct, f->ctx);
    CHECK(ckks_encode(f->ctx, pt, v, count, f->slots, level, scale) == HECNN_OK);
    CHECK(ckks_encrypt_pk(f->ctx, ct, pt, f->pk) == HECNN_OK);
    ckks_plaintext_free(pt);
    return ct;
}

static ckks_ciphertext *encrypt(fixture *f, const double complex *v, unsigned level, double scale)
{
    return encrypt_n(f, v, f->slots, level, scale);
}

/* Mean bits of precision (real and imaginary, the smaller) of ct against want. */
static double precision_of(fixture *f, const ckks_ciphertext *ct, const double complex *want)
{
    ckks_plaintext *pt;
    ckks_plaintext_new(&pt, f->ctx);
    double complex *have = malloc(f->slots * sizeof *have);
    CHECK(ckks_decrypt(f->ctx, pt, ct, f->sk) == HECNN_OK);
    CHECK(ckks_decode(f->ctx, have, pt) == HECNN_OK);
    ckks_precision_stats s;
    ckks_precision(&s, want, have, f->slots);
    ckks_plaintext_free(pt);
    free(have);
    return fmin(s.mean_bits_real, s.mean_bits_imag);
}

#define CHECK_BITS(bits, min, what) CHECK_MSG((bits) >= (min), "%s: %.1f bits < %.1f", what, (bits), (double)(min))

static void test_encoding(fixture *f)
{
    /* encode/decode without encryption: limited only by double rounding at scale 2^40 */
    const size_t n = f->slots;
    double complex *v = malloc(n * sizeof *v), *w = malloc(n * sizeof *w);
    random_values(v, n, 1);
    ckks_plaintext *pt;
    ckks_plaintext_new(&pt, f->ctx);
    for (size_t slots = 1; slots <= n; slots *= 4) {
        CHECK(ckks_encode(f->ctx, pt, v, slots, slots, ckks_context_max_level(f->ctx), 0x1p40) == HECNN_OK);
        CHECK(ckks_decode(f->ctx, w, pt) == HECNN_OK);
        ckks_precision_stats s;
        ckks_precision(&s, v, w, slots);
        CHECK_BITS(s.min_bits_real, 30, "encode/decode worst slot");
    }
    /* real values at a huge scale (coefficients beyond 2^63) still round-trip */
    CHECK(ckks_encode(f->ctx, pt, v, n, n, ckks_context_max_level(f->ctx), 0x1p80) == HECNN_OK);
    CHECK(ckks_decode(f->ctx, w, pt) == HECNN_OK);
    ckks_precision_stats s;
    ckks_precision(&s, v, w, n);
    CHECK_BITS(s.min_bits_real, 40, "encode at scale 2^80");
    /* bad arguments */
    CHECK(ckks_encode(f->ctx, pt, v, n, 3, 0, 0x1p40) == HECNN_ERR_INVALID_ARGUMENT);
    CHECK(ckks_encode(f->ctx, pt, v, n + 1, n, 0, 0x1p40) == HECNN_ERR_INVALID_ARGUMENT);
    CHECK(ckks_encode(f->ctx, pt, v, n, n, 99, 0x1p40) == HECNN_ERR_LEVEL_MISMATCH);
    v[0] = NAN;
    CHECK(ckks_encode(f->ctx, pt, v, n, n, 0, 0x1p40) == HECNN_ERR_INVALID_ARGUMENT);
    ckks_plaintext_free(pt);
    free(v);
    free(w);
}

static void test_arithmetic(fixture *f)
{
    const size_t n = f->slots;
    const unsigned top = ckks_context_max_level(f->ctx);
    const double scale = ckks_context_default_scale(f->ctx);
    double complex *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *want = malloc(n * sizeof *want);
    random_values(a, n, 1);
    random_values(b, n, 1);
    ckks_ciphertext *ca = encrypt(f, a, top, scale), *cb = encrypt(f, b, top, scale), *out;
    ckks_ciphertext_new(&out, f->ctx);

    CHECK_BITS(precision_of(f, ca, a), 25, "fresh pk encryption");

    /* secret-key encryption */
    ckks_plaintext *pt;
    ckks_plaintext_new(&pt, f->ctx);
    ckks_encode(f->ctx, pt, a, n, n, top, scale);
    CHECK(ckks_encrypt_sk(f->ctx, out, pt, f->sk) == HECNN_OK);
    CHECK_BITS(precision_of(f, out, a), 27, "fresh sk encryption");

    CHECK(ckks_add(f->ev, out, ca, cb) == HECNN_OK);
    for (size_t i = 0; i < n; i++) want[i] = a[i] + b[i];
    CHECK_BITS(precision_of(f, out, want), 24, "add");

    CHECK(ckks_sub(f->ev, out, ca, cb) == HECNN_OK);
    for (size_t i = 0; i < n; i++) want[i] = a[i] - b[i];
    CHECK_BITS(precision_of(f, out, want), 24, "sub");

    CHECK(ckks_negate(f->ev, out, ca) == HECNN_OK);
    for (size_t i = 0; i < n; i++) want[i] = -a[i];
    CHECK_BITS(precision_of(f, out, want), 25, "negate");

    ckks_encode(f->ctx, pt, b, n, n, top, scale);
    CHECK(ckks_add_plain(f->ev, out, ca, pt) == HECNN_OK);
    for (size_t i = 0; i < n; i++) want[i] = a[i] + b[i];
    CHECK_BITS(precision_of(f, out, want), 25, "add_plain");
    CHECK(ckks_sub_plain(f->ev, out, ca, pt) == HECNN_OK);
    for (size_t i = 0; i < n; i++) want[i] = a[i] - b[i];
    CHECK_BITS(precision_of(f, out, want), 25, "sub_plain");

    CHECK(ckks_mul_plain(f->ev, out, ca, pt) == HECNN_OK);
    CHECK(ckks_rescale(f->ev, out, out) == HECNN_OK);
    CHECK(ckks_ciphertext_level(out) == top - 1);
    for (size_t i = 0; i < n; i++) want[i] = a[i] * b[i];
    CHECK_BITS(precision_of(f, out, want), 22, "mul_plain + rescale");

    CHECK(ckks_add_const(f->ev, out, ca, 0.25 - 0.5 * I) == HECNN_OK);
    for (size_t i = 0; i < n; i++) want[i] = a[i] + 0.25 - 0.5 * I;
    CHECK_BITS(precision_of(f, out, want), 25, "add_const complex");
    CHECK(ckks_add_const(f->ev, out, ca, -3.0) == HECNN_OK);
    for (size_t i = 0; i < n; i++) want[i] = a[i] - 3.0;
    CHECK_BITS(precision_of(f, out, want), 25, "add_const real");

    CHECK(ckks_mul_const(f->ev, out, ca, 1.7, 0) == HECNN_OK);
    CHECK(ckks_rescale(f->ev, out, out) == HECNN_OK);
    CHECK_MSG(fabs(ckks_ciphertext_scale(out) / scale - 1) < 1e-12, "mul_const(scale 0) + rescale keeps scale");
    for (size_t i = 0; i < n; i++) want[i] = 1.7 * a[i];
    CHECK_BITS(precision_of(f, out, want), 24, "mul_const real");
    CHECK(ckks_mul_const(f->ev, out, ca, 0.5 + 2.0 * I, 0) == HECNN_OK);
    CHECK(ckks_rescale(f->ev, out, out) == HECNN_OK);
    for (size_t i = 0; i < n; i++) want[i] = (0.5 + 2.0 * I) * a[i];
    CHECK_BITS(precision_of(f, out, want), 23, "mul_const complex");

    CHECK(ckks_mul_integer(f->ev, out, ca, -3) == HECNN_OK);
    for (size_t i = 0; i < n; i++) want[i] = -3.0 * a[i];
    CHECK_BITS(precision_of(f, out, want), 23, "mul_integer");

    /* mul + relin + rescale, twice (depth 2), with aliasing out == a */
    CHECK(ckks_mul_relin(f->ev, out, ca, cb) == HECNN_OK);
    CHECK(ckks_ciphertext_degree(out) == 1);
    CHECK(ckks_rescale(f->ev, out, out) == HECNN_OK);
    for (size_t i = 0; i < n; i++) want[i] = a[i] * b[i];
    CHECK_BITS(precision_of(f, out, want), 22, "mul_relin + rescale");
    ckks_ciphertext *sq;
    ckks_ciphertext_new(&sq, f->ctx);
    CHECK(ckks_square_relin(f->ev, sq, out) == HECNN_OK);
    CHECK(ckks_rescale(f->ev, sq, sq) == HECNN_OK);
    for (size_t i = 0; i < n; i++) want[i] = want[i] * want[i];
    CHECK_BITS(precision_of(f, sq, want), 20, "square_relin depth 2");

    /* degree-2 decryption and explicit relinearization */
    CHECK(ckks_mul(f->ev, out, ca, cb) == HECNN_OK);
    CHECK(ckks_ciphertext_degree(out) == 2);
    for (size_t i = 0; i < n; i++) want[i] = a[i] * b[i];
    CHECK(ckks_rescale(f->ev, sq, out) == HECNN_OK);
    CHECK_BITS(precision_of(f, sq, want), 22, "degree-2 decrypt");
    CHECK(ckks_relinearize(f->ev, out, out) == HECNN_OK);
    CHECK(ckks_rescale(f->ev, out, out) == HECNN_OK);
    CHECK_BITS(precision_of(f, out, want), 22, "relinearize in place");

    /* level and scale errors */
    CHECK(ckks_add(f->ev, sq, out, ca) == HECNN_ERR_LEVEL_MISMATCH);
    ckks_ciphertext *low;
    ckks_ciphertext_new(&low, f->ctx);
    CHECK(ckks_drop_level(f->ev, low, ca, top - 1) == HECNN_OK);
    CHECK(ckks_ciphertext_level(low) == top - 1);
    CHECK_BITS(precision_of(f, low, a), 25, "drop_level");
    CHECK(ckks_add(f->ev, sq, low, out) == HECNN_ERR_SCALE_MISMATCH);
    CHECK(ckks_set_scale(f->ev, sq, low, ckks_ciphertext_scale(out)) == HECNN_OK);
    CHECK(ckks_ciphertext_level(sq) == top - 2);
    CHECK(ckks_match_level(f->ev, sq, out) == HECNN_OK);
    CHECK(ckks_add(f->ev, sq, sq, out) == HECNN_OK);
    for (size_t i = 0; i < n; i++) want[i] = a[i] + a[i] * b[i];
    CHECK_BITS(precision_of(f, sq, want), 20, "set_scale + match_level + add");
    CHECK(ckks_drop_level(f->ev, low, ca, top + 1) == HECNN_ERR_LEVEL_MISMATCH);
    CHECK(ckks_drop_level(f->ev, low, ca, 0) == HECNN_OK);
    CHECK(ckks_rescale(f->ev, low, low) == HECNN_ERR_LEVEL_MISMATCH);

    ckks_ciphertext_free(low);
    ckks_ciphertext_free(sq);
    ckks_plaintext_free(pt);
    ckks_ciphertext_free(ca);
    ckks_ciphertext_free(cb);
    ckks_ciphertext_free(out);
    free(a);
    free(b);
    free(want);
}

static void test_rotations(fixture *f)
{
    const size_t n = f->slots;
    const unsigned top = ckks_context_max_level(f->ctx);
    double complex *a = malloc(n * sizeof *a), *want = malloc(n * sizeof *want);
    random_values(a, n, 1);
    ckks_ciphertext *ca = encrypt(f, a, top, ckks_context_default_scale(f->ctx));
    const size_t count = sizeof rot_steps / sizeof *rot_steps;
    ckks_ciphertext *outs[sizeof rot_steps / sizeof *rot_steps];
    for (size_t r = 0; r < count; r++) ckks_ciphertext_new(&outs[r], f->ctx);
    for (size_t r = 0; r < count; r++) {
        const int k = rot_steps[r];
        CHECK(ckks_rotate(f->ev, outs[r], ca, k) == HECNN_OK);
        for (size_t i = 0; i < n; i++) want[i] = a[((i + (size_t)(k + (int)n)) % n)];
        CHECK_BITS(precision_of(f, outs[r], want), 24, "rotate");
    }
    CHECK(ckks_rotate_hoisted(f->ev, outs, ca, rot_steps, count) == HECNN_OK);
    for (size_t r = 0; r < count; r++) {
        for (size_t i = 0; i < n; i++) want[i] = a[((i + (size_t)(rot_steps[r] + (int)n)) % n)];
        CHECK_BITS(precision_of(f, outs[r], want), 24, "hoisted rotate");
    }
    /* at a lower level, and aliasing the input */
    ckks_ciphertext *low;
    ckks_ciphertext_new(&low, f->ctx);
    ckks_drop_level(f->ev, low, ca, 1);
    CHECK(ckks_rotate(f->ev, low, low, 3) == HECNN_OK);
    for (size_t i = 0; i < n; i++) want[i] = a[(i + 3) % n];
    CHECK_BITS(precision_of(f, low, want), 24, "rotate at level 1, in place");
    CHECK(ckks_conjugate(f->ev, outs[0], ca) == HECNN_OK);
    for (size_t i = 0; i < n; i++) want[i] = conj(a[i]);
    CHECK_BITS(precision_of(f, outs[0], want), 24, "conjugate");
    CHECK(ckks_rotate(f->ev, outs[0], ca, 4) == HECNN_ERR_MISSING_KEY);
    CHECK(ckks_rotate(f->ev, outs[0], ca, (int)n) == HECNN_OK); /* full turn: no key needed */
    CHECK_BITS(precision_of(f, outs[0], a), 25, "rotate by N/2 is identity");

    /* sparse slots: a rotation of a 16-slot vector */
    ckks_plaintext *pt;
    ckks_plaintext_new(&pt, f->ctx);
    CHECK(ckks_encode(f->ctx, pt, a, 16, 16, top, ckks_context_default_scale(f->ctx)) == HECNN_OK);
    CHECK(ckks_encrypt_pk(f->ctx, low, pt, f->pk) == HECNN_OK);
    CHECK(ckks_rotate(f->ev, outs[0], low, 3) == HECNN_OK);
    CHECK(ckks_decrypt(f->ctx, pt, outs[0], f->sk) == HECNN_OK);
    CHECK(ckks_plaintext_slots(pt) == 16);
    double complex got[16], exp16[16];
    ckks_decode(f->ctx, got, pt);
    for (size_t i = 0; i < 16; i++) exp16[i] = a[(i + 3) % 16];
    ckks_precision_stats s;
    ckks_precision(&s, exp16, got, 16);
    CHECK_BITS(s.mean_bits_real, 24, "sparse rotate");

    ckks_plaintext_free(pt);
    ckks_ciphertext_free(low);
    for (size_t r = 0; r < count; r++) ckks_ciphertext_free(outs[r]);
    ckks_ciphertext_free(ca);
    free(a);
    free(want);
}

/* Bit-identical ciphertexts (level, degree, scale and every limb). */
static bool ct_same(const ckks_ciphertext *x, const ckks_ciphertext *y)
{
    if (x->level != y->level || x->degree != y->degree || x->scale != y->scale || x->slots != y->slots) return false;
    const size_t words = ((size_t)x->degree + 1) * ((size_t)x->level + 1) * x->ctx->rlwe.n;
    return !memcmp(x->data, y->data, words * 8);
}

/* Multiplication by X^k: exact (bit-identical to the NTT product ckks_mul_const computes for i),
 * no level or scale change, aliasing, every degree, and slot j multiplied by zeta_j^k. */
static void test_mul_monomial(fixture *f)
{
    const size_t n = f->slots, N = ckks_context_n(f->ctx);
    const unsigned top = ckks_context_max_level(f->ctx);
    const double scale = ckks_context_default_scale(f->ctx);
    double complex *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *want = malloc(n * sizeof *want);
    double complex *have = malloc(n * sizeof *have), *ref = malloc(n * sizeof *ref);
    random_values(a, n, 1);
    random_values(b, n, 1);
    ckks_ciphertext *ca = encrypt(f, a, top, scale), *cb = encrypt(f, b, top, scale), *out, *x;
    ckks_ciphertext_new(&out, f->ctx);
    ckks_ciphertext_new(&x, f->ctx);
    ckks_plaintext *pt;
    ckks_plaintext_new(&pt, f->ctx);

    CHECK(ckks_mul_i(f->ev, out, ca) == HECNN_OK);
    CHECK(ckks_ciphertext_level(out) == top && ckks_ciphertext_scale(out) == scale);
    CHECK(ckks_mul_const(f->ev, x, ca, I, 1.0) == HECNN_OK);
    CHECK_MSG(ct_same(out, x), "mul_i = mul_const(i, scale 1) bit for bit");
    for (size_t i = 0; i < n; i++) want[i] = I * a[i];
    CHECK_BITS(precision_of(f, out, want), 24, "mul_i");
    /* to full precision: the decryption is X^(N/2) times a's, so the decodings agree to the FFT's rounding */
    CHECK(ckks_decrypt(f->ctx, pt, ca, f->sk) == HECNN_OK && ckks_decode(f->ctx, ref, pt) == HECNN_OK);
    CHECK(ckks_decrypt(f->ctx, pt, out, f->sk) == HECNN_OK && ckks_decode(f->ctx, have, pt) == HECNN_OK);
    double e = 0;
    for (size_t i = 0; i < n; i++) e = fmax(e, cabs(have[i] - I * ref[i]));
    CHECK_MSG(e < 1e-12, "decode(mul_i(ct)) - i decode(ct): %g", e);
    /* i^2 = -1 and i^4 = 1 exactly; X^N and X^(3N/2) = X^(-N/2); k is taken mod 2N */
    CHECK(ckks_negate(f->ev, x, ca) == HECNN_OK);
    CHECK(ckks_mul_i(f->ev, out, out) == HECNN_OK); /* in place */
    CHECK_MSG(ct_same(out, x), "mul_i twice = negate");
    CHECK(ckks_mul_monomial(f->ev, out, ca, (int64_t)N) == HECNN_OK);
    CHECK_MSG(ct_same(out, x), "X^N = -1");
    CHECK(ckks_mul_monomial(f->ev, out, ca, -(int64_t)N / 2) == HECNN_OK);
    CHECK(ckks_mul_monomial(f->ev, x, ca, 3 * (int64_t)N / 2) == HECNN_OK);
    CHECK_MSG(ct_same(out, x), "X^(-N/2) = X^(3N/2)");
    CHECK(ckks_mul_i(f->ev, out, out) == HECNN_OK);
    CHECK(ckks_mul_monomial(f->ev, x, ca, 2 * (int64_t)N) == HECNN_OK);
    CHECK_MSG(ct_same(out, ca) && ct_same(x, ca), "i^4 = 1, X^2N = 1");
    CHECK(ckks_mul_monomial(f->ev, out, ca, 0) == HECNN_OK && ct_same(out, ca));
    /* X^1: slot j times its root exp(i pi 5^j / N) */
    CHECK(ckks_mul_monomial(f->ev, out, ca, 1) == HECNN_OK);
    uint64_t g = 1;
    for (size_t j = 0; j < n; j++, g = g * 5 % (2 * N)) want[j] = a[j] * cexp(I * acos(-1.0) * (double)g / (double)N);
    CHECK_BITS(precision_of(f, out, want), 24, "X^1");
    /* at a lower level, on a degree-2 product, on a seeded symmetric ciphertext */
    CHECK(ckks_drop_level(f->ev, out, ca, 1) == HECNN_OK && ckks_mul_i(f->ev, out, out) == HECNN_OK);
    CHECK(ckks_ciphertext_level(out) == 1);
    for (size_t i = 0; i < n; i++) want[i] = I * a[i];
    CHECK_BITS(precision_of(f, out, want), 24, "mul_i at level 1");
    CHECK(ckks_mul(f->ev, out, ca, cb) == HECNN_OK && ckks_mul_i(f->ev, out, out) == HECNN_OK);
    CHECK(ckks_ciphertext_degree(out) == 2);
    CHECK(ckks_relinearize(f->ev, out, out) == HECNN_OK && ckks_rescale(f->ev, out, out) == HECNN_OK);
    for (size_t i = 0; i < n; i++) want[i] = I * a[i] * b[i];
    CHECK_BITS(precision_of(f, out, want), 20, "mul_i of a product");
    CHECK(ckks_encode(f->ctx, pt, a, n, n, top, scale) == HECNN_OK && ckks_encrypt_sk(f->ctx, x, pt, f->sk) == HECNN_OK);
    CHECK(ckks_mul_i(f->ev, x, x) == HECNN_OK);
    for (size_t i = 0; i < n; i++) want[i] = I * a[i];
    CHECK_BITS(precision_of(f, x, want), 24, "mul_i of a seeded ciphertext");
    /* bad arguments */
    CHECK(ckks_mul_i(NULL, out, ca) == HECNN_ERR_INVALID_ARGUMENT);
    CHECK(ckks_mul_i(f->ev, NULL, ca) == HECNN_ERR_INVALID_ARGUMENT);
    CHECK(ckks_mul_i(f->ev, out, NULL) == HECNN_ERR_INVALID_ARGUMENT);
    CHECK(ckks_mul_monomial(f->ev, out, NULL, 3) == HECNN_ERR_INVALID_ARGUMENT);
    ckks_plaintext_free(pt);
    ckks_ciphertext_free(ca);
    ckks_ciphertext_free(cb);
    ckks_ciphertext_free(out);
    ckks_ciphertext_free(x);
    free(a);
    free(b);
    free(want);
    free(have);
    free(ref);
}

static void test_params(void)
{
    ckks_params_literal p;
    ckks_context *ctx = NULL;
    for (int preset = 0; preset < CKKS_PRESET_COUNT; preset++) {
        CHECK(ckks_params_preset(&p, (ckks_preset)preset) == HECNN_OK);
        if (preset <= CKKS_PRESET_N14) {
            CHECK_MSG(ckks_context_new(&ctx, &p) == HECNN_OK, "preset %d: %s", preset, hecnn_last_error_detail());
            CHECK(ctx && ckks_context_log_qp(ctx) <= ckks_max_log_qp_128(p.log_n));
            ckks_context_free(ctx);
        }
    }
    /* one bit too many for 128-bit security at N = 2^13 */
    p = (ckks_params_literal){.log_n = 13, .n_q = 4, .n_p = 1, .log_scale = 40};
    p.log_q[0] = 60, p.log_q[1] = 40, p.log_q[2] = 40, p.log_q[3] = 40, p.log_p[0] = 60;
    CHECK(ckks_context_new(&ctx, &p) == HECNN_ERR_INSECURE_PARAMS);
    CHECK(ctx == NULL);
    CHECK(strlen(hecnn_last_error_detail()) > 0);
    p.allow_insecure = true;
    CHECK(ckks_context_new(&ctx, &p) == HECNN_OK);
    ckks_context_free(ctx);
    /* sparse secrets are outside the standard */
    p = (ckks_params_literal){.log_n = 13, .n_q = 2, .n_p = 1, .log_scale = 40, .secret = CKKS_SECRET_SPARSE_TERNARY,
                              .hamming_weight = 64};
    p.log_q[0] = 60, p.log_q[1] = 40, p.log_p[0] = 60;
    CHECK(ckks_context_new(&ctx, &p) == HECNN_ERR_INSECURE_PARAMS);
    /* malformed literals */
    p = (ckks_params_literal){.log_n = 3, .n_q = 1, .n_p = 1, .log_scale = 20};
    CHECK(ckks_context_new(&ctx, &p) == HECNN_ERR_INVALID_PARAMS);
    p = (ckks_params_literal){.log_n = 12, .n_q = 1, .n_p = 1, .log_scale = 20, .allow_insecure = true};
    p.log_q[0] = 62, p.log_p[0] = 60;
    CHECK(ckks_context_new(&ctx, &p) == HECNN_ERR_INVALID_PARAMS);
    p.log_q[0] = 60, p.log_p[0] = 30;
    p.n_q = 3, p.log_q[1] = 50, p.log_q[2] = 50, p.dnum = 1;
    CHECK(ckks_context_new(&ctx, &p) == HECNN_ERR_INVALID_PARAMS); /* P smaller than the digit */
    CHECK(ckks_context_new(NULL, &p) == HECNN_ERR_INVALID_ARGUMENT);
    CHECK(strcmp(hecnn_status_name(HECNN_ERR_BAD_FORMAT), "HECNN_ERR_BAD_FORMAT") == 0);
}

/* Only the HE standard's error width is secure: a tiny sigma leaves the public key without error
 * (the secret key then follows by division). Others need allow_insecure; NaN, inf and negative
 * widths are refused even then. */
static void test_params_sigma(void)
{
    ckks_params_literal p;
    ckks_context *ctx = NULL;
    CHECK(ckks_params_preset(&p, CKKS_PRESET_N13) == HECNN_OK);
    const double standard[] = {0, 3.19, 3.2};
    for (size_t i = 0; i < sizeof standard / sizeof *standard; i++) {
        p.sigma = standard[i];
        CHECK_MSG(ckks_context_new(&ctx, &p) == HECNN_OK, "sigma %g: %s", standard[i], hecnn_last_error_detail());
        ckks_context_free(ctx);
        ctx = NULL;
    }
    const double weak[] = {0.01, 5e-324, 1, 3.0, 3.21, 6.4, 20};
    for (size_t i = 0; i < sizeof weak / sizeof *weak; i++) {
        p.sigma = weak[i];
        p.allow_insecure = false;
        CHECK_MSG(ckks_context_new(&ctx, &p) == HECNN_ERR_INSECURE_PARAMS, "sigma %g accepted as secure", weak[i]);
        CHECK(ctx == NULL && strstr(hecnn_last_error_detail(), "sigma"));
        p.allow_insecure = true; /* tests may, through code */
        CHECK_MSG(ckks_context_new(&ctx, &p) == HECNN_OK, "sigma %g with allow_insecure: %s", weak[i], hecnn_last_error_detail());
        ckks_context_free(ctx);
        ctx = NULL;
    }
    const double bad[] = {NAN, INFINITY, -INFINITY, -1, -5e-324, 20.5};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        for (int insecure = 0; insecure < 2; insecure++) {
            p.sigma = bad[i];
            p.allow_insecure = insecure;
            CHECK_MSG(ckks_context_new(&ctx, &p) == HECNN_ERR_INVALID_PARAMS, "sigma %g (allow_insecure %d)", bad[i], insecure);
            CHECK(ctx == NULL);
        }
}

static void test_cross_context(fixture *f, fixture *g)
{
    /* objects of another parameter set are refused */
    double complex v[4] = {1, 2, 3, 4};
    ckks_ciphertext *ca = encrypt_n(f, v, 4, 1, 0x1p40), *cg;
    ckks_ciphertext_new(&cg, g->ctx);
    CHECK(ckks_add(f->ev, ca, ca, cg) != HECNN_OK);
    CHECK(ckks_rotate(g->ev, cg, ca, 1) == HECNN_ERR_PARAMS_MISMATCH);
    CHECK(ckks_mul_i(g->ev, cg, ca) == HECNN_ERR_PARAMS_MISMATCH);
    ckks_plaintext *pt;
    ckks_plaintext_new(&pt, g->ctx);
    CHECK(ckks_decrypt(g->ctx, pt, ca, g->sk) == HECNN_ERR_PARAMS_MISMATCH);
    ckks_plaintext_free(pt);
    ckks_ciphertext_free(ca);
    ckks_ciphertext_free(cg);
}

static void test_known_answer(void)
{
    /* The same seeds give the same secret key and ciphertexts: derandomized APIs are deterministic. */
    fixture f;
    if (fixture_init(&f, 10, 3, 40, 1, 0)) {
        CHECK(!"fixture");
        return;
    }
    uint8_t seed[CKKS_SEED_BYTES] = {9};
    ckks_plaintext *pt;
    ckks_ciphertext *c1, *c2;
    ckks_plaintext_new(&pt, f.ctx);
    ckks_ciphertext_new(&c1, f.ctx);
    ckks_ciphertext_new(&c2, f.ctx);
    double complex v[2] = {0.5, -0.25};
    ckks_encode(f.ctx, pt, v, 2, 0, 2, 0x1p40);
    CHECK(ckks_encrypt_pk_derand(f.ctx, c1, pt, f.pk, seed) == HECNN_OK);
    CHECK(ckks_encrypt_pk_derand(f.ctx, c2, pt, f.pk, seed) == HECNN_OK);
    CHECK(ckks_add(f.ev, c1, c1, c1) == HECNN_OK);
    CHECK(ckks_add(f.ev, c2, c2, c2) == HECNN_OK);
    ckks_ciphertext *diff;
    ckks_ciphertext_new(&diff, f.ctx);
    CHECK(ckks_sub(f.ev, diff, c1, c2) == HECNN_OK);
    ckks_decrypt(f.ctx, pt, diff, f.sk);
    double complex out[512];
    ckks_decode(f.ctx, out, pt);
    CHECK(cabs(out[0]) == 0 && cabs(out[1]) == 0); /* identical ciphertexts: exact zero */
    ckks_ciphertext_free(diff);
    ckks_ciphertext_free(c1);
    ckks_ciphertext_free(c2);
    ckks_plaintext_free(pt);
    fixture_free(&f);
}

/* Sparse ephemeral secret, switching between secrets, and ModRaise (q_0 multiples appear in the
 * plaintext exactly as integers: m + q_0 * I with small I). */
static void test_secret_switch_and_mod_raise(fixture *f)
{
    const size_t n = f->slots;
    double complex *a = malloc(n * sizeof *a), *have = malloc(n * sizeof *have);
    random_values(a, n, 1);
    ckks_secret_key *sparse;
    REQUIRE_VOID(ckks_secret_key_generate_sparse(&sparse, f->ctx, 32) == HECNN_OK);
    ckks_switching_key *to_sparse, *to_dense;
    const unsigned top = ckks_context_max_level(f->ctx);
    REQUIRE_VOID(ckks_switching_key_generate_between(&to_sparse, f->sk, sparse, top) == HECNN_OK);
    REQUIRE_VOID(ckks_switching_key_generate_between(&to_dense, sparse, f->sk, top) == HECNN_OK);
    CHECK(ckks_switching_key_galois_element(to_sparse) == CKKS_SWITCH_SECRET);
    ckks_ciphertext *ca = encrypt(f, a, top, ckks_context_default_scale(f->ctx)), *cs;
    ckks_ciphertext_new(&cs, f->ctx);
    CHECK(ckks_switch_key(f->ev, cs, ca, to_sparse) == HECNN_OK);
    ckks_plaintext *pt;
    ckks_plaintext_new(&pt, f->ctx);
    CHECK(ckks_decrypt(f->ctx, pt, cs, sparse) == HECNN_OK);
    CHECK(ckks_decode(f->ctx, have, pt) == HECNN_OK);
    ckks_precision_stats s;
    ckks_precision(&s, a, have, n);
    CHECK_BITS(s.mean_bits_real, 24, "switch to sparse secret");
    CHECK(ckks_switch_key(f->ev, cs, cs, to_dense) == HECNN_OK);
    CHECK_BITS(precision_of(f, cs, a), 23, "and back to the dense secret");

    /* ModRaise of a level-0 ciphertext under the sparse secret: decrypting at the top level gives
     * the plaintext plus q_0 * I(X), so reducing the decryption mod q_0 recovers the message. */
    CHECK(ckks_switch_key(f->ev, cs, ca, to_sparse) == HECNN_OK);
    CHECK(ckks_drop_level(f->ev, cs, cs, 0) == HECNN_OK);
    ckks_ciphertext *raised;
    ckks_ciphertext_new(&raised, f->ctx);
    CHECK(ckks_mod_raise(f->ev, raised, cs, top) == HECNN_OK);
    CHECK(ckks_ciphertext_level(raised) == top);
    CHECK(ckks_mod_raise(f->ev, raised, cs, top + 1) == HECNN_ERR_LEVEL_MISMATCH);
    ckks_plaintext *p0;
    ckks_plaintext_new(&p0, f->ctx);
    CHECK(ckks_decrypt(f->ctx, pt, raised, sparse) == HECNN_OK);
    CHECK(ckks_decrypt(f->ctx, p0, cs, sparse) == HECNN_OK);
    /* Coefficient-wise: the top-level decryption is v + q_0 * I on limb 1, where v is the centred
     * level-0 decryption and |I| <= h/2 + 1 (h = 32); and it is v exactly on limb 0. */
    {
        const ckks_context *ctx = f->ctx;
        const size_t N = ckks_context_n(ctx);
        uint64_t *top0 = malloc(N * 8), *top1 = malloc(N * 8), *low0 = malloc(N * 8);
        memcpy(top0, pt->data, N * 8);
        memcpy(top1, pt->data + N, N * 8);
        memcpy(low0, p0->data, N * 8);
        ntt_inverse(&ctx->rlwe.tables[0], top0);
        ntt_inverse(&ctx->rlwe.tables[1], top1);
        ntt_inverse(&ctx->rlwe.tables[0], low0);
        const uint64_t q0 = ctx->rlwe.tables[0].mod.q, q1 = ctx->rlwe.tables[1].mod.q;
        int exact = 1, lifted = 1, nonzero_i = 0;
        for (size_t i = 0; i < N; i++) {
            exact &= top0[i] == low0[i];
            const int64_t v = to_centered(low0[i], q0);
            int found = 0;
            for (int64_t m = -17; m <= 17 && !found; m++) {
                const uint64_t want = add_mod(from_signed(v, q1), mul_mod(from_signed(m, q1), q0 % q1, &ctx->rlwe.tables[1].mod), q1);
                if (want == top1[i]) found = 1, nonzero_i |= m != 0;
            }
            lifted &= found;
        }
        CHECK_MSG(exact, "ModRaise keeps limb 0");
        CHECK_MSG(lifted, "ModRaise adds q_0 * I with |I| <= h/2 + 1");
        CHECK_MSG(nonzero_i, "the I(X) term is not trivially zero");
        free(top0), free(top1), free(low0);
    }
    /* and dropping back to level 0 gives the message again */
    ckks_drop_level(f->ev, cs, raised, 0);
    ckks_plaintext *p1;
    ckks_plaintext_new(&p1, f->ctx);
    CHECK(ckks_decrypt(f->ctx, p1, cs, sparse) == HECNN_OK);
    ckks_decode(f->ctx, have, p1);
    ckks_precision(&s, a, have, n);
    CHECK_BITS(s.mean_bits_real, 20, "ModRaise then drop to level 0");
    /* The level-0 encapsulation key over q_0 and a few special primes (the sparse secret never
     * meets a larger modulus): a level-0 ciphertext at the bootstrap's scale q_0 / 2^8 switches as
     * precisely; the key round-trips through a file; the loader takes such keys between secrets only. */
    ckks_switching_key *narrow = NULL, *back = NULL;
    REQUIRE_VOID(switching_key_generate_level0(&narrow, f->sk, sparse) == HECNN_OK);
    CHECK(narrow->rlwe.limbs == 1 + f->ctx->rlwe.special[KS_LEVEL0_P].n_p && ckks_switching_key_max_level(narrow) == 0);
    CHECK(f->ctx->rlwe.special[KS_LEVEL0_P].n_p <= f->ctx->rlwe.n_p);
    ckks_ciphertext *c0 = encrypt(f, a, 0, ldexp((double)ckks_context_q(f->ctx, 0), -8)), *n1, *n2;
    ckks_ciphertext_new(&n1, f->ctx);
    ckks_ciphertext_new(&n2, f->ctx);
    CHECK(ckks_switch_key(f->ev, n1, c0, narrow) == HECNN_OK);
    CHECK(ckks_decrypt(f->ctx, pt, n1, sparse) == HECNN_OK && ckks_decode(f->ctx, have, pt) == HECNN_OK);
    ckks_precision(&s, a, have, n);
    CHECK_BITS(s.mean_bits_real, 24, "switch to the sparse secret at level 0");
    CHECK(ckks_switch_key(f->ev, n1, ca, narrow) == HECNN_ERR_LEVEL_MISMATCH);
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    REQUIRE_VOID(mem);
    CHECK(ckks_switching_key_save(narrow, true, mem) == HECNN_OK);
    fclose(mem);
    mem = fmemopen(buf, len, "rb");
    CHECK(ckks_switching_key_load(f->ctx, &back, mem) == HECNN_OK);
    fclose(mem);
    if (back) {
        CHECK(ckks_switch_key(f->ev, n2, c0, back) == HECNN_OK);
        CHECK_MSG(!memcmp(n1->data, n2->data, 2 * ckks_context_n(f->ctx) * 8), "reloaded p_0-only key: same result");
    }
    for (int i = 0; i < 8; i++) buf[32 + i] = (char)(i == 0 ? 5 : 0); /* Galois element 5 (LE): such a key needs every special prime */
    mem = fmemopen(buf, len, "rb");
    ckks_switching_key *odd = NULL;
    CHECK(f->ctx->rlwe.special[KS_LEVEL0_P].n_p == f->ctx->rlwe.n_p || ckks_switching_key_load(f->ctx, &odd, mem) == HECNN_ERR_BAD_FORMAT);
    fclose(mem);
    ckks_switching_key_free(odd);
    free(buf);
    ckks_switching_key_free(narrow);
    ckks_switching_key_free(back);
    ckks_ciphertext_free(c0);
    ckks_ciphertext_free(n1);
    ckks_ciphertext_free(n2);
    ckks_plaintext_free(p0);
    ckks_plaintext_free(p1);
    ckks_ciphertext_free(raised);
    ckks_plaintext_free(pt);
    ckks_ciphertext_free(ca);
    ckks_ciphertext_free(cs);
    ckks_switching_key_free(to_sparse);
    ckks_switching_key_free(to_dense);
    ckks_secret_key_free(sparse);
    free(a);
    free(have);
}

/* Compact keys (uniform halves re-expanded from the seed on use, the other halves packed) give
 * bit-identical results in less than half the memory, serialize like full keys, and are refused when the halves do not match the seed. */
static void test_compact_keys(fixture *f)
{
    const unsigned top = ckks_context_max_level(f->ctx);
    const uint8_t seed[CKKS_SEED_BYTES] = {7, 7, 7};
    const uint64_t g = ckks_galois_element_rotation(f->ctx, 3);
    ckks_switching_key *full_g, *compact_g, *full_r, *compact_r;
    REQUIRE_VOID(ckks_switching_key_generate_derand(&full_g, f->sk, g, top, seed) == HECNN_OK);
    REQUIRE_VOID(ckks_switching_key_generate_derand(&compact_g, f->sk, g, top, seed) == HECNN_OK);
    REQUIRE_VOID(ckks_switching_key_generate_derand(&full_r, f->sk, 0, top, seed) == HECNN_OK);
    REQUIRE_VOID(ckks_switching_key_generate_derand(&compact_r, f->sk, 0, top, seed) == HECNN_OK);
    const size_t full_bytes = ckks_switching_key_memory_bytes(full_g);
    CHECK(ckks_switching_key_compact(compact_g) == HECNN_OK);
    CHECK(ckks_switching_key_compact(compact_g) == HECNN_OK); /* idempotent */
    /* no a halves, and each b coefficient in the bytes its prime needs */
    size_t packed = 0;
    for (size_t t = 0; t < compact_g->rlwe.limbs; t++)
        packed += ckks_context_n(f->ctx) * ((swk_limb_table(&compact_g->rlwe, t)->mod.bits + 7) / 8);
    const size_t compact_bytes = ckks_switching_key_memory_bytes(compact_g);
    CHECK_MSG(compact_bytes >= compact_g->rlwe.digits * packed && compact_bytes <= compact_g->rlwe.digits * packed + 64 &&
                  2 * compact_bytes < full_bytes,
              "compact key: %zu bytes, packed b halves %zu, whole key %zu", compact_bytes, compact_g->rlwe.digits * packed, full_bytes);
    ckks_eval_keys *kf, *kc;
    ckks_eval_keys_new(&kf, f->ctx);
    ckks_eval_keys_new(&kc, f->ctx);
    ckks_eval_keys_add(kf, full_g);
    ckks_eval_keys_add(kf, full_r);
    ckks_eval_keys_add(kc, compact_g);
    ckks_eval_keys_add(kc, compact_r);
    CHECK(ckks_eval_keys_compact(kc, true) == HECNN_OK);
    ckks_evaluator *ef, *ec;
    ckks_evaluator_new(&ef, f->ctx, kf);
    ckks_evaluator_new(&ec, f->ctx, kc);
    const size_t n = f->slots;
    double complex *a = malloc(n * sizeof *a);
    random_values(a, n, 1);
    ckks_ciphertext *ca = encrypt(f, a, top, ckks_context_default_scale(f->ctx)), *x, *y;
    ckks_ciphertext_new(&x, f->ctx);
    ckks_ciphertext_new(&y, f->ctx);
    const size_t words = 2 * (size_t)(top + 1) * ckks_context_n(f->ctx);
    CHECK(ckks_rotate(ef, x, ca, 3) == HECNN_OK && ckks_rotate(ec, y, ca, 3) == HECNN_OK);
    CHECK_MSG(!memcmp(x->data, y->data, words * 8), "rotation with a compact key is bit-identical");
    const int steps[2] = {3, 0};
    ckks_ciphertext *z, *w;
    ckks_ciphertext_new(&z, f->ctx);
    ckks_ciphertext_new(&w, f->ctx);
    ckks_ciphertext *outs_f[2] = {x, z}, *outs_c[2] = {y, w};
    CHECK(ckks_rotate_hoisted(ef, outs_f, ca, steps, 2) == HECNN_OK);
    CHECK(ckks_rotate_hoisted(ec, outs_c, ca, steps, 2) == HECNN_OK);
    CHECK_MSG(!memcmp(x->data, y->data, words * 8), "hoisted rotation with a compact key is bit-identical");
    ckks_ciphertext_free(z);
    ckks_ciphertext_free(w);
    CHECK(ckks_mul_relin(ef, x, ca, ca) == HECNN_OK && ckks_mul_relin(ec, y, ca, ca) == HECNN_OK);
    CHECK_MSG(!memcmp(x->data, y->data, words * 8), "relinearization with a compact key is bit-identical");
    /* serialized compact keys: seeded and full files, both reload to working keys */
    for (int seeded = 0; seeded <= 1; seeded++) {
        FILE *tmp = tmpfile();
        REQUIRE_VOID(tmp);
        CHECK(ckks_switching_key_save(compact_g, seeded, tmp) == HECNN_OK);
        CHECK((size_t)ftell(tmp) == ckks_switching_key_bytes(compact_g, seeded));
        rewind(tmp);
        ckks_switching_key *back = NULL;
        CHECK(ckks_switching_key_load(f->ctx, &back, tmp) == HECNN_OK);
        fclose(tmp);
        if (!back) continue;
        CHECK_MSG(!memcmp(back->rlwe.data, full_g->rlwe.data, full_bytes), "compact key reloads to the full key (seeded %d)", seeded);
        ckks_switching_key_free(back);
    }
    /* a key set loaded compact: every key compact (the relinearization key too, if asked), and
     * the same results */
    {
        FILE *tmp = tmpfile();
        REQUIRE_VOID(tmp);
        CHECK(ckks_eval_keys_save(kf, true, tmp) == HECNN_OK);
        rewind(tmp);
        ckks_eval_keys *kl = NULL;
        CHECK(ckks_eval_keys_load_compact(f->ctx, &kl, tmp, true) == HECNN_OK);
        fclose(tmp);
        if (kl) {
            CHECK(ckks_switching_key_memory_bytes(ckks_eval_keys_galois(kl, g)) == compact_bytes);
            CHECK(ckks_switching_key_memory_bytes(ckks_eval_keys_relin(kl)) == compact_bytes);
            ckks_evaluator *el;
            ckks_evaluator_new(&el, f->ctx, kl);
            CHECK(ckks_mul_relin(ef, x, ca, ca) == HECNN_OK && ckks_mul_relin(el, y, ca, ca) == HECNN_OK);
            CHECK_MSG(!memcmp(x->data, y->data, words * 8), "relinearization with a loaded compact key is bit-identical");
            ckks_evaluator_free(el);
            ckks_eval_keys_free(kl);
        }
    }
    /* a key whose uniform half was altered cannot be compacted */
    ckks_switching_key *odd;
    REQUIRE_VOID(ckks_switching_key_generate_derand(&odd, f->sk, g, top, seed) == HECNN_OK);
    swk_part(&odd->rlwe, 0, 1)[5] ^= 1;
    CHECK(ckks_switching_key_compact(odd) == HECNN_ERR_INVALID_ARGUMENT);
    ckks_switching_key_free(odd);
    ckks_ciphertext_free(ca);
    ckks_ciphertext_free(x);
    ckks_ciphertext_free(y);
    ckks_evaluator_free(ef);
    ckks_evaluator_free(ec);
    ckks_eval_keys_free(kf);
    ckks_eval_keys_free(kc);
    free(a);
}

/* Flooded decryption (docs/SECURITY.md): fresh noise of the stated width on every decryption, the
 * derandomized variant reproducible, the message kept to within the stated precision loss, absurd
 * widths refused. */
static void decode_flooded(fixture *f, double complex *have, ckks_plaintext *pt, const ckks_ciphertext *ct,
                           const ckks_flood_options *opt, const uint8_t *seed)
{
    if (seed) CHECK(ckks_decrypt_flooded_derand(f->ctx, pt, ct, f->sk, opt, seed) == HECNN_OK);
    else CHECK(ckks_decrypt_flooded(f->ctx, pt, ct, f->sk, opt) == HECNN_OK);
    CHECK(ckks_decode(f->ctx, have, pt) == HECNN_OK);
}

static void test_flooding(fixture *f)
{
    const size_t n = ckks_context_n(f->ctx), slots = f->slots;
    const unsigned top = ckks_context_max_level(f->ctx);
    const double scale = ckks_context_default_scale(f->ctx);
    double complex *v = malloc(slots * sizeof *v), *plain = malloc(slots * sizeof *plain),
                   *a = malloc(slots * sizeof *a), *b = malloc(slots * sizeof *b);
    random_values(v, slots, 1.0);
    ckks_ciphertext *ct = encrypt(f, v, top, scale);
    ckks_plaintext *pa, *pb;
    ckks_plaintext_new(&pa, f->ctx);
    ckks_plaintext_new(&pb, f->ctx);
    CHECK(ckks_decrypt(f->ctx, pa, ct, f->sk) == HECNN_OK && ckks_decode(f->ctx, plain, pa) == HECNN_OK);
    ckks_precision_stats s0, s1;
    ckks_precision(&s0, v, plain, slots);

    /* the stated width: default bits s/2 + log2(N)/2 + 1 over the fresh-encryption estimate */
    const double bits = ckks_flood_bits_default(f->ctx), est = ckks_error_estimate_log2(f->ctx, ct);
    CHECK(fabs(bits - (CKKS_FLOOD_STAT_SEC / 2.0 + log2((double)n) / 2 + 1)) < 1e-12);
    CHECK(fabs(est - log2(3.2 * sqrt(4.0 * (double)n / 3 + 1))) < 1e-9);
    CHECK(fabs(ckks_flood_sigma_log2(f->ctx, ct, NULL) - (bits + est)) < 1e-12);
    const ckks_flood_options own = {.flood_bits = 10, .log2_error = 20};
    CHECK(ckks_flood_sigma_log2(f->ctx, ct, &own) == 30);
    const double sd = ckks_flood_slot_stddev(f->ctx, ct, NULL);
    CHECK(fabs(sd - exp2(bits + est) * sqrt((double)slots) / scale) <= 1e-12 * sd);

    /* two flooded decryptions differ, in the plaintext and in the decoded values */
    decode_flooded(f, a, pa, ct, NULL, NULL);
    decode_flooded(f, b, pb, ct, NULL, NULL);
    const size_t words = (size_t)(top + 1) * n;
    CHECK(memcmp(pa->data, pb->data, words * 8) != 0);
    size_t differ = 0;
    for (size_t i = 0; i < slots; i++) differ += a[i] != b[i];
    CHECK_MSG(differ > slots / 2, "only %zu of %zu slots differ between two flooded decryptions", differ, slots);

    /* the noise has the stated standard deviation (rms of flooded - unflooded, real parts) and the
     * message keeps its precision up to that: report the bits lost */
    double ss = 0;
    for (size_t i = 0; i < slots; i++) ss += pow(creal(a[i]) - creal(plain[i]), 2);
    const double rms = sqrt(ss / (double)slots);
    CHECK_MSG(rms > 0.8 * sd && rms < 1.25 * sd, "flooding rms %.3g, stated %.3g", rms, sd);
    ckks_precision(&s1, v, a, slots);
    CHECK_MSG(s1.max_abs_error <= s0.max_abs_error + 6 * sd, "flooded error %.3g > %.3g + 6 x %.3g", s1.max_abs_error,
              s0.max_abs_error, sd);
    CHECK_BITS(s1.mean_bits_real, -log2(sd) - 2, "flooded decryption");
    fprintf(stderr, "  flooding %.1f bits over 2^%.1f: sigma 2^%.1f, slot stddev 2^%.1f; precision %.1f -> %.1f bits (%.1f lost)\n",
            bits, est, bits + est, log2(sd), s0.mean_bits_real, s1.mean_bits_real, s0.mean_bits_real - s1.mean_bits_real);

    /* derandomized: reproducible per seed, different across seeds */
    const uint8_t seed1[CKKS_SEED_BYTES] = {7}, seed2[CKKS_SEED_BYTES] = {8};
    decode_flooded(f, a, pa, ct, &own, seed1);
    decode_flooded(f, b, pb, ct, &own, seed1);
    CHECK(memcmp(pa->data, pb->data, words * 8) == 0 && memcmp(a, b, slots * sizeof *a) == 0);
    decode_flooded(f, b, pb, ct, &own, seed2);
    CHECK(memcmp(pa->data, pb->data, words * 8) != 0);

    /* absurd widths are refused, and nothing is decrypted then */
    const ckks_flood_options bad[] = {{.flood_bits = 65}, {.flood_bits = -1}, {.flood_bits = NAN},
                                      {.flood_bits = 10, .log2_error = INFINITY}, {.flood_bits = 64}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK_MSG(ckks_decrypt_flooded(f->ctx, pa, ct, f->sk, &bad[i]) == HECNN_ERR_INVALID_ARGUMENT, "bad option %zu accepted", i);
    /* at level 0 (q_0 of 60 bits) 8 sigma must stay under q_0 / 4: sigma 2^54 passes, 2^56 not */
    ckks_ciphertext *low = encrypt(f, v, 0, scale);
    const ckks_flood_options fits = {.flood_bits = 24, .log2_error = 30}, wraps = {.flood_bits = 26, .log2_error = 30};
    CHECK(ckks_decrypt_flooded(f->ctx, pa, low, f->sk, &fits) == HECNN_OK);
    CHECK(ckks_decrypt_flooded(f->ctx, pa, low, f->sk, &wraps) == HECNN_ERR_INVALID_ARGUMENT);
    /* below the top level the estimate is a rescale's rounding */
    CHECK(fabs(ckks_error_estimate_log2(f->ctx, low) - log2(sqrt((1 + 2.0 * (double)n / 3) / 12))) < 1e-9 || top == 0);

    ckks_ciphertext_free(low);
    ckks_ciphertext_free(ct);
    ckks_plaintext_free(pa);
    ckks_plaintext_free(pb);
    free(v);
    free(plain);
    free(a);
    free(b);
}

int main(void)
{
    test_rng_seed(42);
    test_params();
    test_params_sigma();
    test_known_answer();
    /* (log N, limbs, log scale, special primes, dnum): several ring sizes and digit counts */
    static const unsigned configs[][5] = {{10, 4, 40, 1, 0}, {12, 6, 40, 2, 3}, {13, 5, 45, 3, 2}, {16, 3, 45, 1, 0}};
    fixture prev = {0};
    for (size_t c = 0; c < sizeof configs / sizeof configs[0]; c++) {
        fixture f;
        REQUIRE(fixture_init(&f, configs[c][0], configs[c][1], configs[c][2], configs[c][3], configs[c][4]) == 0);
        fprintf(stderr, "N = 2^%u, %u limbs, dnum %u\n", configs[c][0], configs[c][1], ckks_context_dnum(f.ctx));
        test_encoding(&f);
        test_arithmetic(&f);
        test_rotations(&f);
        test_mul_monomial(&f);
        test_secret_switch_and_mod_raise(&f);
        test_compact_keys(&f);
        test_flooding(&f);
        if (prev.ctx) {
            test_cross_context(&f, &prev);
            fixture_free(&prev);
        }
        prev = f;
    }
    fixture_free(&prev);
    return check_summary();
}

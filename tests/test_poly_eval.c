/* Polynomial evaluation: Chebyshev interpolation in doubles, then homomorphic evaluation against
 * the double-precision Clenshaw reference at N = 2^12 (insecure parameters, tests only):
 * output level = input level - ceil(log2(d + 1)), output scale exactly the target, precision in
 * bits. Composite sign / ReLU: the Remez stages' error against the preset table, then encrypted. */
#include <math.h>
#include <string.h>

#include "common/check.h"
#include "hecnn/hecnn.h"

typedef struct fixture {
    ckks_context *ctx;
    ckks_secret_key *sk;
    ckks_eval_keys *keys;
    ckks_evaluator *ev;
    size_t slots;
} fixture;

static int fixture_init(fixture *f, unsigned log_n, unsigned n_q, unsigned log_scale)
{
    ckks_params_literal p = {.log_n = log_n, .n_q = n_q, .n_p = 2, .log_scale = log_scale, .allow_insecure = true};
    p.log_q[0] = 60;
    for (unsigned i = 1; i < n_q; i++) p.log_q[i] = log_scale;
    p.log_p[0] = p.log_p[1] = 61;
    p.dnum = (n_q + 1) / 2;
    uint8_t seed[CKKS_SEED_BYTES] = {7, 1};
    memset(f, 0, sizeof *f);
    if (ckks_context_new(&f->ctx, &p)) return -1;
    if (ckks_secret_key_generate_derand(&f->sk, f->ctx, seed)) return -1;
    if (ckks_eval_keys_generate(&f->keys, f->sk, true, NULL, 0, false)) return -1;
    if (ckks_evaluator_new(&f->ev, f->ctx, f->keys)) return -1;
    f->slots = ckks_context_max_slots(f->ctx);
    return 0;
}

static void fixture_free(fixture *f)
{
    ckks_evaluator_free(f->ev);
    ckks_eval_keys_free(f->keys);
    ckks_secret_key_free(f->sk);
    ckks_context_free(f->ctx);
}

static ckks_ciphertext *encrypt_real(fixture *f, const double *v, unsigned level, double scale)
{
    ckks_plaintext *pt = NULL;
    ckks_ciphertext *ct = NULL;
    ckks_plaintext_new(&pt, f->ctx);
    ckks_ciphertext_new(&ct, f->ctx);
    CHECK(ckks_encode_real(f->ctx, pt, v, f->slots, f->slots, level, scale) == HECNN_OK);
    CHECK(ckks_encrypt_sk(f->ctx, ct, pt, f->sk) == HECNN_OK);
    ckks_plaintext_free(pt);
    return ct;
}

/* mean and min bits of the real parts against want */
static void precision_real(fixture *f, const ckks_ciphertext *ct, const double *want, double *mean, double *min)
{
    ckks_plaintext *pt = NULL;
    ckks_plaintext_new(&pt, f->ctx);
    double complex *have = malloc(f->slots * sizeof *have), *w = malloc(f->slots * sizeof *w);
    CHECK(ckks_decrypt(f->ctx, pt, ct, f->sk) == HECNN_OK);
    CHECK(ckks_decode(f->ctx, have, pt) == HECNN_OK);
    for (size_t i = 0; i < f->slots; i++) {
        w[i] = want[i];
        have[i] = creal(have[i]);
    }
    ckks_precision_stats s;
    CHECK(ckks_precision(&s, w, have, f->slots) == HECNN_OK);
    *mean = s.mean_bits_real;
    *min = s.min_bits_real;
    free(have);
    free(w);
    ckks_plaintext_free(pt);
}

/* ---- double-precision parts -------------------------------------------------------------- */

static double f_exp(double x, void *arg)
{
    (void)arg;
    return exp(x);
}
static double f_sigmoid(double x, void *arg)
{
    (void)arg;
    return 1 / (1 + exp(-x));
}
static double f_cos(double x, void *arg)
{
    (void)arg;
    return cos(x);
}
static double f_tanh(double x, void *arg)
{
    (void)arg;
    return tanh(x);
}

static void test_interpolation(void)
{
    ckks_poly *p = NULL;
    REQUIRE_VOID(ckks_poly_interpolate(&p, f_exp, NULL, -1, 1, 15) == HECNN_OK);
    CHECK_MSG(ckks_poly_max_error(p, f_exp, NULL, 1001) < 1e-14, "exp deg 15 error %g",
              ckks_poly_max_error(p, f_exp, NULL, 1001));
    CHECK(ckks_poly_depth(p) == 4);
    ckks_poly_free(p);

    REQUIRE_VOID(ckks_poly_interpolate(&p, f_sigmoid, NULL, -8, 8, 63) == HECNN_OK);
    CHECK_MSG(ckks_poly_max_error(p, f_sigmoid, NULL, 1001) < 1e-9, "sigmoid error %g",
              ckks_poly_max_error(p, f_sigmoid, NULL, 1001));
    CHECK(ckks_poly_depth(p) == 6);
    ckks_poly_free(p);

    /* power basis -> Chebyshev: 1 - 2x + 3x^3 on [-2, 5] */
    const double mono[4] = {1, -2, 0, 3};
    REQUIRE_VOID(ckks_poly_from_monomial(&p, mono, 3, -2, 5) == HECNN_OK);
    double worst = 0;
    for (double x = -2; x <= 5; x += 0.01) worst = fmax(worst, fabs(ckks_poly_eval(p, x) - (1 - 2 * x + 3 * x * x * x)));
    CHECK_MSG(worst < 1e-12, "monomial conversion error %g", worst);
    CHECK(ckks_poly_degree(p) == 3);
    ckks_poly_free(p);

    /* odd polynomial keeps exact zeros */
    const double odd[6] = {0, 1.5, 0, -0.5, 0, 0.1};
    REQUIRE_VOID(ckks_poly_from_monomial(&p, odd, 5, -1, 1) == HECNN_OK);
    const double *c = ckks_poly_coeffs(p);
    CHECK(c[0] == 0 && c[2] == 0 && c[4] == 0);
    ckks_poly_free(p);

    /* depth and product counts: ceil(log2(d+1)) levels */
    for (size_t d = 1; d <= 64; d++) {
        double *cf = calloc(d + 1, sizeof *cf);
        for (size_t i = 0; i <= d; i++) cf[i] = 1.0 / (double)(i + 1);
        REQUIRE_VOID(ckks_poly_new(&p, cf, d, -1, 1) == HECNN_OK);
        unsigned D = 0;
        while ((1u << D) < d + 1) D++;
        CHECK(ckks_poly_depth(p) == D);
        unsigned m = ckks_poly_mul_count(p);
        CHECK_MSG(m + 1 >= D && m <= d + 1, "degree %zu: %u products", d, m);
        ckks_poly_free(p);
        free(cf);
    }
}

/* ---- homomorphic evaluation -------------------------------------------------------------- */

typedef struct case_ {
    ckks_real_fn f;
    double a, b;
    size_t degree;
    int parity;          /* 1 odd, 2 even */
    double min_mean_bits;
} case_;

static void run_case(fixture *f, const case_ *c, unsigned level, double in_scale, double target)
{
    ckks_poly *p = NULL;
    REQUIRE_VOID(ckks_poly_interpolate(&p, c->f, NULL, c->a, c->b, c->degree) == HECNN_OK);
    if (c->parity == 1) ckks_poly_make_odd(p);
    if (c->parity == 2) ckks_poly_make_even(p);
    double *x = malloc(f->slots * sizeof *x), *want = malloc(f->slots * sizeof *want);
    for (size_t i = 0; i < f->slots; i++) {
        x[i] = test_rng_uniform(c->a, c->b);
        want[i] = ckks_poly_eval(p, x[i]);
    }
    ckks_ciphertext *ct = encrypt_real(f, x, level, in_scale);
    ckks_ciphertext *out = NULL;
    ckks_ciphertext_new(&out, f->ctx);
    hecnn_status st = ckks_poly_evaluate(f->ev, out, ct, p, target);
    CHECK_MSG(st == HECNN_OK, "degree %zu: %s (%s)", c->degree, hecnn_status_name(st), hecnn_last_error_detail());
    if (!st) {
        const unsigned depth = ckks_poly_depth(p), used = ckks_poly_levels_used(f->ctx, p, level, in_scale);
        /* optimal depth whenever the input needs no normalization: always on [-1, 1] at the primes' scale */
        CHECK(used == depth || used == depth + 1);
        if (c->a == -1 && c->b == 1 && in_scale == ldexp(1, 45)) CHECK(used == depth);
        CHECK_MSG(ckks_ciphertext_level(out) == level - used, "degree %zu: level %u, want %u", c->degree,
                  ckks_ciphertext_level(out), level - used);
        const double want_scale = target ? target : in_scale;
        CHECK_MSG(ckks_ciphertext_scale(out) == want_scale, "degree %zu: scale %.17g, want %.17g", c->degree,
                  ckks_ciphertext_scale(out), want_scale);
        double mean, min;
        precision_real(f, out, want, &mean, &min);
        CHECK_MSG(mean >= c->min_mean_bits, "degree %zu on [%g,%g]: mean %.2f bits (min %.2f), want >= %.1f", c->degree,
                  c->a, c->b, mean, min, c->min_mean_bits);
        if (getenv("HECNN_VERBOSE"))
            printf("  degree %3zu on [%5g,%5g] parity %d: depth %u (used %u), %2u products, mean %.1f bits, min %.1f\n",
                   c->degree, c->a, c->b, c->parity, depth, used, ckks_poly_mul_count(p), mean, min);
    }
    /* aliasing: out == in */
    if (c->degree == 7) {
        ckks_ciphertext *ct2 = NULL;
        ckks_ciphertext_new(&ct2, f->ctx);
        ckks_ciphertext_copy(ct2, ct);
        CHECK(ckks_poly_evaluate(f->ev, ct2, ct2, p, target) == HECNN_OK);
        double mean, min;
        precision_real(f, ct2, want, &mean, &min);
        CHECK(mean >= c->min_mean_bits);
        ckks_ciphertext_free(ct2);
    }
    ckks_ciphertext_free(out);
    ckks_ciphertext_free(ct);
    ckks_poly_free(p);
    free(x);
    free(want);
}

static void test_homomorphic(void)
{
    fixture f;
    REQUIRE_VOID(fixture_init(&f, 12, 11, 45) == 0);
    const unsigned top = ckks_context_max_level(f.ctx);
    const double s45 = ldexp(1, 45);
    const case_ cases[] = {
        {f_exp, -1, 1, 1, 0, 25},      {f_exp, -1, 1, 2, 0, 25},      {f_exp, -1, 1, 3, 0, 25},
        {f_exp, -1, 1, 7, 0, 25},      {f_exp, -1, 1, 8, 0, 25},      {f_exp, -2, 1, 12, 0, 24},
        {f_tanh, -8, 8, 31, 1, 24}, {f_sigmoid, -8, 8, 32, 0, 24}, {f_sigmoid, -8, 8, 63, 0, 23},
        {f_cos, -3, 3, 30, 2, 24},     {f_tanh, -4, 4, 27, 1, 24},    {f_cos, -10, 10, 119, 2, 20},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_case(&f, &cases[i], top, s45, 0);
    }
    /* a target scale different from the input's, and an input below the top */
    run_case(&f, &cases[6], top - 1, s45, ldexp(1, 40));
    run_case(&f, &cases[3], top - 3, ldexp(1, 42), ldexp(1, 50));

    /* not enough levels */
    ckks_poly *p = NULL;
    double *x = calloc(f.slots, sizeof *x);
    ckks_ciphertext *ct = encrypt_real(&f, x, 2, s45), *out = NULL;
    ckks_ciphertext_new(&out, f.ctx);
    REQUIRE_VOID(ckks_poly_interpolate(&p, f_exp, NULL, -1, 1, 7) == HECNN_OK);
    CHECK(ckks_poly_evaluate(f.ev, out, ct, p, 0) == HECNN_ERR_LEVEL_MISMATCH);
    ckks_poly_free(p);
    ckks_ciphertext_free(ct);
    ckks_ciphertext_free(out);
    free(x);
    fixture_free(&f);
}

/* ---- sign and ReLU -------------------------------------------------------------------------- */

static void test_sign_table(void)
{
    const ckks_sign_preset *tab = NULL;
    size_t n = ckks_sign_presets(&tab);
    CHECK(n >= 3);
    for (size_t i = 0; i < n; i++) {
        ckks_sign_approx *s = NULL;
        REQUIRE_VOID(ckks_sign_approx_new(&s, tab[i].alpha, tab[i].degrees, tab[i].stages) == HECNN_OK);
        CHECK(ckks_sign_approx_depth(s) == tab[i].depth);
        double bits = ckks_sign_approx_error_bits(s);
        CHECK_MSG(fabs(bits - tab[i].error_bits) < 0.05, "preset %zu: %.3f bits, table says %.3f", i, bits,
                  tab[i].error_bits);
        /* measured independently on a dense grid of [2^-alpha, 1] (and the odd symmetry) */
        double lo = exp2(-tab[i].alpha), worst = 0;
        for (int k = 0; k <= 20000; k++) {
            double xs[2] = {lo + (1 - lo) * k / 20000.0, lo * pow(1 / lo, k / 20000.0)};
            for (int t = 0; t < 2; t++) {
                worst = fmax(worst, fabs(ckks_sign_approx_eval(s, xs[t]) - 1));
                worst = fmax(worst, fabs(ckks_sign_approx_eval(s, -xs[t]) + 1));
            }
        }
        CHECK_MSG(-log2(worst) >= bits - 0.01, "preset %zu: grid error %.3f bits < Remez %.3f", i, -log2(worst), bits);
        if (getenv("HECNN_VERBOSE"))
            printf("  sign alpha %4.1f degrees %u,%u,%u,%u: depth %u, %.2f bits\n", tab[i].alpha, tab[i].degrees[0],
                   tab[i].degrees[1], tab[i].degrees[2], tab[i].degrees[3], tab[i].depth, bits);
        ckks_sign_approx_free(s);
    }
}

static void test_sign_relu_encrypted(void)
{
    fixture f;
    REQUIRE_VOID(fixture_init(&f, 12, 15, 45) == 0);
    const unsigned top = ckks_context_max_level(f.ctx);
    const ckks_sign_preset *tab = NULL;
    ckks_sign_presets(&tab);
    const ckks_sign_preset *pr = &tab[1];
    ckks_sign_approx *s = NULL;
    REQUIRE_VOID(ckks_sign_approx_new(&s, pr->alpha, pr->degrees, pr->stages) == HECNN_OK);
    const double bound = 4.0, lo = exp2(-pr->alpha);
    double *x = malloc(f.slots * sizeof *x), *want_s = malloc(f.slots * sizeof *want_s),
           *want_r = malloc(f.slots * sizeof *want_r);
    for (size_t i = 0; i < f.slots; i++) {
        double m = test_rng_uniform(lo, 1) * (i & 1 ? -1 : 1);
        x[i] = m;
        want_s[i] = m > 0 ? 1 : -1;
        want_r[i] = bound * m > 0 ? bound * m : 0;
    }
    ckks_ciphertext *ct = encrypt_real(&f, x, top, ldexp(1, 45)), *out = NULL;
    ckks_ciphertext_new(&out, f.ctx);
    hecnn_status st = ckks_sign_evaluate(f.ev, out, ct, s, 0);
    CHECK_MSG(st == HECNN_OK, "sign: %s", hecnn_last_error_detail());
    const double need = ckks_sign_approx_error_bits(s) - 1.5;
    if (!st) {
        double mean, min;
        precision_real(&f, out, want_s, &mean, &min);
        CHECK_MSG(min >= need, "sign: min %.2f bits, approximation gives %.2f", min, need + 1.5);
        CHECK(ckks_ciphertext_level(out) == top - pr->depth);
    }
    ckks_ciphertext_free(ct);
    for (size_t i = 0; i < f.slots; i++) x[i] *= bound;
    ct = encrypt_real(&f, x, top, ldexp(1, 45));
    st = ckks_relu_evaluate(f.ev, out, ct, s, bound, ldexp(1, 40));
    CHECK_MSG(st == HECNN_OK, "relu: %s", hecnn_last_error_detail());
    if (!st) {
        double mean, min;
        precision_real(&f, out, want_r, &mean, &min);
        /* |relu error| <= bound * |x| * delta / 2 */
        CHECK_MSG(min >= need - 2, "relu: min %.2f bits", min);
        CHECK(ckks_ciphertext_level(out) <= top - pr->depth - 1);
        CHECK(ckks_ciphertext_scale(out) == ldexp(1, 40));
    }
    ckks_ciphertext_free(ct);
    ckks_ciphertext_free(out);
    ckks_sign_approx_free(s);
    free(x);
    free(want_s);
    free(want_r);
    fixture_free(&f);
}

int main(void)
{
    test_rng_seed(4);
    test_interpolation();
    test_sign_table();
    test_homomorphic();
    test_sign_relu_encrypted();
    return check_summary();
}

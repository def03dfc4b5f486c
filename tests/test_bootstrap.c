/* Bootstrapping: the DFT factorization against the encoder's FFT in doubles, the EvalMod fit,
 * the failure probability of the presets, then encrypted bootstrapping at N = 2^12 (insecure
 * test presets: full and sparse slots) with the precision asserted in bits, and the key plan:
 * exactly the planned keys work, removing one fails with MISSING_KEY, a key below its planned
 * level fails with LEVEL_MISMATCH. */
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "circuits/dft.h"
#include "circuits/evalmod.h"
#include "common/check.h"
#include "hecnn/hecnn.h"

static size_t brv(size_t x, size_t n)
{
    size_t r = 0;
    for (size_t b = 1; b < n; b <<= 1) r = (r << 1) | ((x & b) != 0);
    return r;
}

static void test_dft_plain(size_t n, const unsigned *c2s, size_t nc, const unsigned *s2c, size_t ns)
{
    ldcomplex *v = malloc(n * sizeof *v), *z = malloc(n * sizeof *z), *t = malloc(n * sizeof *t), *u = malloc(n * sizeof *u);
    for (size_t i = 0; i < n; i++) z[i] = v[i] = test_rng_uniform(-1, 1) + I * test_rng_uniform(-1, 1);
    dft_reference_forward(n, z);
    diag_matrix fc[8], fs[8];
    REQUIRE_VOID(dft_factors(fc, n, true, c2s, nc) == 0);
    REQUIRE_VOID(dft_factors(fs, n, false, s2c, ns) == 0);
    memcpy(t, z, n * sizeof *t);
    for (size_t l = 0; l < nc; l++) {
        diag_matrix_apply(&fc[l], u, t);
        memcpy(t, u, n * sizeof *t);
        /* a level merging s stages has at most 2^(s+1) - 1 diagonals */
        CHECK(diag_matrix_count(&fc[l]) <= ((size_t)2 << c2s[l]) - 1);
    }
    double e = 0;
    for (size_t i = 0; i < n; i++) e = fmax(e, (double)cabsl(t[i] - v[brv(i, n)]));
    CHECK_MSG(e < 1e-15, "CoeffsToSlots (n = %zu) error %g", n, e);
    for (size_t l = 0; l < ns; l++) {
        diag_matrix_apply(&fs[l], u, t);
        memcpy(t, u, n * sizeof *t);
    }
    e = 0;
    for (size_t i = 0; i < n; i++) e = fmax(e, (double)cabsl(t[i] - z[i]));
    CHECK_MSG(e < 1e-14, "SlotsToCoeffs (n = %zu) error %g", n, e);
    for (size_t l = 0; l < nc; l++) diag_matrix_free(&fc[l]);
    for (size_t l = 0; l < ns; l++) diag_matrix_free(&fs[l]);
    free(v);
    free(z);
    free(t);
    free(u);
}

static void test_presets_offline(void)
{
    for (int pr = 0; pr < CKKS_BOOT_PRESET_COUNT; pr++) {
        ckks_params_literal p;
        ckks_boot_params bp;
        REQUIRE_VOID(ckks_boot_preset_params(&p, &bp, (ckks_boot_preset)pr) == HECNN_OK);
        evalmod em;
        REQUIRE_VOID(evalmod_init(&em, &bp) == HECNN_OK);
        double err = evalmod_max_error(&em);
        /* EvalMod error in units of q_0, on the neighbourhoods |u - I| <= 2^-ratio */
        CHECK_MSG(err < ldexp(1, -34), "preset %d: EvalMod error 2^%.1f", pr, log2(err));
        if (getenv("HECNN_VERBOSE"))
            printf("  preset %d: EvalMod degree %u, %u double angles, depth %u, error 2^%.1f\n", pr, bp.mod1_degree,
                   bp.double_angle, em.depth, log2(err));
        evalmod_free(&em);
        if (p.log_n == 16) {
            /* the default sets are 128-bit secure */
            double log_qp = 0;
            for (unsigned i = 0; i < p.n_q; i++) log_qp += p.log_q[i];
            for (unsigned i = 0; i < p.n_p; i++) log_qp += p.log_p[i];
            CHECK(log_qp <= ckks_max_log_qp_128(16));
            CHECK(!p.allow_insecure && p.secret == CKKS_SECRET_TERNARY);
        }
    }
}

typedef struct fixture {
    ckks_context *ctx;
    ckks_secret_key *sk;
    ckks_bootstrapper *bt;
    ckks_boot_params bp;
} fixture;

static int fixture_init(fixture *f, ckks_boot_preset preset)
{
    ckks_params_literal p;
    memset(f, 0, sizeof *f);
    uint8_t seed[CKKS_SEED_BYTES] = {9, 9};
    if (ckks_boot_preset_params(&p, &f->bp, preset)) return -1;
    if (ckks_context_new(&f->ctx, &p)) return -1;
    if (ckks_secret_key_generate_derand(&f->sk, f->ctx, seed)) return -1;
    if (ckks_bootstrapper_new(&f->bt, f->ctx, &f->bp)) return -1;
    return 0;
}

static void fixture_free(fixture *f)
{
    ckks_bootstrapper_free(f->bt);
    ckks_secret_key_free(f->sk);
    ckks_context_free(f->ctx);
}

/* encrypt random values in the unit square at `level`, bootstrap, return mean bits (worse part) */
static double bootstrap_once(fixture *f, const ckks_boot_keys *keys, unsigned level, hecnn_status *st_out,
                             double *min_bits)
{
    const size_t n = ckks_bootstrapper_slots(f->bt);
    double complex *v = malloc(n * sizeof *v), *w = malloc(n * sizeof *w);
    for (size_t i = 0; i < n; i++) v[i] = test_rng_uniform(-1, 1) + I * test_rng_uniform(-1, 1);
    ckks_plaintext *pt = NULL;
    ckks_ciphertext *ct = NULL, *out = NULL;
    ckks_plaintext_new(&pt, f->ctx);
    ckks_ciphertext_new(&ct, f->ctx);
    ckks_ciphertext_new(&out, f->ctx);
    CHECK(ckks_encode(f->ctx, pt, v, n, n, level, ckks_context_default_scale(f->ctx)) == HECNN_OK);
    CHECK(ckks_encrypt_sk(f->ctx, ct, pt, f->sk) == HECNN_OK);
    hecnn_status st = ckks_bootstrap(f->bt, keys, out, ct);
    *st_out = st;
    double bits = -1;
    if (!st) {
        CHECK(ckks_ciphertext_level(out) == ckks_bootstrapper_output_level(f->bt));
        CHECK(ckks_ciphertext_scale(out) == ckks_context_default_scale(f->ctx));
        CHECK(ckks_ciphertext_slots(out) == n);
        CHECK(ckks_decrypt(f->ctx, pt, out, f->sk) == HECNN_OK);
        CHECK(ckks_decode(f->ctx, w, pt) == HECNN_OK);
        ckks_precision_stats s;
        ckks_precision(&s, v, w, n);
        bits = fmin(s.mean_bits_real, s.mean_bits_imag);
        if (min_bits) *min_bits = fmin(s.min_bits_real, s.min_bits_imag);
    }
    ckks_plaintext_free(pt);
    ckks_ciphertext_free(ct);
    ckks_ciphertext_free(out);
    free(v);
    free(w);
    return bits;
}

/* keys from the plan, one by one, optionally skipping one Galois element or lowering one level */
static ckks_boot_keys *keys_from_plan(fixture *f, uint64_t skip, uint64_t lower, bool drop_pair)
{
    size_t np = ckks_bootstrapper_key_plan(f->bt, NULL, 0);
    ckks_key_need *plan = malloc(np * sizeof *plan);
    ckks_bootstrapper_key_plan(f->bt, plan, np);
    ckks_eval_keys *evk = NULL;
    if (ckks_eval_keys_new(&evk, f->ctx)) return NULL;
    for (size_t i = 0; i < np; i++) {
        if (plan[i].galois == skip) continue;
        unsigned lev = plan[i].max_level - (plan[i].galois == lower ? 1 : 0);
        ckks_switching_key *k = NULL;
        hecnn_status st = plan[i].galois ? ckks_galois_key_generate(&k, f->sk, plan[i].galois, lev)
                                         : ckks_relin_key_generate(&k, f->sk, lev);
        if (st || ckks_eval_keys_add(evk, k)) return NULL;
    }
    free(plan);
    ckks_secret_key *eph = NULL;
    ckks_switching_key *a = NULL, *b = NULL;
    if (ckks_secret_key_generate_sparse(&eph, f->ctx, f->bp.ephemeral_hamming_weight)) return NULL;
    if (!drop_pair && ckks_switching_key_generate_between(&a, f->sk, eph, 0)) return NULL;
    if (ckks_switching_key_generate_between(&b, eph, f->sk, ckks_context_max_level(f->ctx))) return NULL;
    ckks_secret_key_free(eph);
    ckks_boot_keys *k = NULL;
    if (ckks_boot_keys_assemble(&k, evk, a, b)) return NULL;
    return k;
}

static void test_full(void)
{
    fixture f;
    REQUIRE_VOID(fixture_init(&f, CKKS_BOOT_TEST_N12_FULL) == 0);
    CHECK(ckks_bootstrapper_slots(f.bt) == ckks_context_max_slots(f.ctx));
    CHECK(ckks_bootstrapper_output_level(f.bt) == 2);
    CHECK(ckks_bootstrapper_log2_failure(f.bt) < -60);
    ckks_boot_keys *keys = NULL;
    REQUIRE_VOID(ckks_boot_keys_generate(&keys, f.bt, f.sk) == HECNN_OK);
    size_t np = ckks_bootstrapper_key_plan(f.bt, NULL, 0);
    CHECK(ckks_boot_keys_count(keys) == np + 2); /* + the encapsulation pair */
    hecnn_status st;
    double min_bits = 0;
    double bits = bootstrap_once(&f, keys, 0, &st, &min_bits);
    CHECK_MSG(st == HECNN_OK, "bootstrap: %s (%s)", hecnn_status_name(st), hecnn_last_error_detail());
    CHECK_MSG(bits >= 22, "full slots: %.2f mean bits (min %.2f)", bits, min_bits);
    if (getenv("HECNN_VERBOSE")) printf("  full slots (N = 2^12): mean %.2f bits, min %.2f\n", bits, min_bits);
    /* from a level above 0 too */
    bits = bootstrap_once(&f, keys, 2, &st, NULL);
    CHECK(st == HECNN_OK && bits >= 22);

    /* save / load round trip of the key set */
    FILE *tmp = tmpfile();
    if (tmp) {
        CHECK(ckks_boot_keys_save(keys, true, tmp) == HECNN_OK);
        rewind(tmp);
        ckks_boot_keys *loaded = NULL;
        CHECK(ckks_boot_keys_load(f.ctx, &loaded, tmp) == HECNN_OK);
        if (loaded) {
            CHECK(ckks_boot_keys_count(loaded) == ckks_boot_keys_count(keys));
            bits = bootstrap_once(&f, loaded, 0, &st, NULL);
            CHECK(st == HECNN_OK && bits >= 22);
        }
        ckks_boot_keys_free(loaded);
        fclose(tmp);
    }
    ckks_boot_keys_free(keys);

    /* exactly the planned keys: assembled one by one they work; any removal fails */
    ckks_key_need *plan = malloc(np * sizeof *plan);
    ckks_bootstrapper_key_plan(f.bt, plan, np);
    CHECK(plan[0].galois == 0); /* relinearization first */
    keys = keys_from_plan(&f, UINT64_MAX, UINT64_MAX, false);
    REQUIRE_VOID(keys);
    bits = bootstrap_once(&f, keys, 0, &st, NULL);
    CHECK(st == HECNN_OK && bits >= 22);
    ckks_boot_keys_free(keys);
    const uint64_t conj = ckks_galois_element_conjugate(f.ctx);
    const uint64_t drops[] = {0, conj, plan[np / 2].galois};
    for (size_t i = 0; i < sizeof drops / sizeof drops[0]; i++) {
        keys = keys_from_plan(&f, drops[i], UINT64_MAX, false);
        REQUIRE_VOID(keys);
        bootstrap_once(&f, keys, 0, &st, NULL);
        CHECK_MSG(st == HECNN_ERR_MISSING_KEY, "without galois %llu: %s", (unsigned long long)drops[i], hecnn_status_name(st));
        ckks_boot_keys_free(keys);
    }
    /* a key generated one level below its plan */
    keys = keys_from_plan(&f, UINT64_MAX, plan[np - 1].galois, false);
    REQUIRE_VOID(keys);
    bootstrap_once(&f, keys, 0, &st, NULL);
    CHECK_MSG(st == HECNN_ERR_LEVEL_MISMATCH, "lowered key: %s", hecnn_status_name(st));
    ckks_boot_keys_free(keys);
    /* without the dense -> sparse key */
    keys = keys_from_plan(&f, UINT64_MAX, UINT64_MAX, true);
    REQUIRE_VOID(keys);
    bootstrap_once(&f, keys, 0, &st, NULL);
    CHECK(st == HECNN_ERR_MISSING_KEY);
    ckks_boot_keys_free(keys);
    free(plan);
    fixture_free(&f);
}

static void test_sparse(void)
{
    fixture f;
    REQUIRE_VOID(fixture_init(&f, CKKS_BOOT_TEST_N12_SPARSE) == 0);
    CHECK(ckks_bootstrapper_slots(f.bt) == 512);
    ckks_boot_keys *keys = NULL;
    REQUIRE_VOID(ckks_boot_keys_generate(&keys, f.bt, f.sk) == HECNN_OK);
    hecnn_status st;
    double min_bits = 0, bits = bootstrap_once(&f, keys, 0, &st, &min_bits);
    CHECK_MSG(st == HECNN_OK, "sparse bootstrap: %s (%s)", hecnn_status_name(st), hecnn_last_error_detail());
    CHECK_MSG(bits >= 20, "sparse slots: %.2f mean bits (min %.2f)", bits, min_bits);
    if (getenv("HECNN_VERBOSE")) printf("  sparse slots (2^9 of 2^11): mean %.2f bits, min %.2f\n", bits, min_bits);
    ckks_boot_keys_free(keys);
    fixture_free(&f);
}

/* ---- two real messages in one bootstrap ---- */

static ckks_ciphertext *encrypt_values(fixture *f, const double complex *v, unsigned level, double scale)
{
    const size_t n = ckks_bootstrapper_slots(f->bt);
    ckks_plaintext *pt = NULL;
    ckks_ciphertext *ct = NULL;
    ckks_plaintext_new(&pt, f->ctx);
    ckks_ciphertext_new(&ct, f->ctx);
    CHECK(ckks_encode(f->ctx, pt, v, n, n, level, scale) == HECNN_OK);
    CHECK(ckks_encrypt_sk(f->ctx, ct, pt, f->sk) == HECNN_OK);
    ckks_plaintext_free(pt);
    return ct;
}

/* Bits of ct / factor against the real vector want: mean and worst slot of the real part, and the
 * mean -log2 |imaginary part|. */
typedef struct real_bits {
    double mean, min, imag;
} real_bits;

static real_bits measure_real(fixture *f, const ckks_ciphertext *ct, const double complex *want, double factor)
{
    const size_t n = ckks_bootstrapper_slots(f->bt);
    double complex *have = malloc(n * sizeof *have), *re = malloc(n * sizeof *re);
    ckks_plaintext *pt = NULL;
    ckks_plaintext_new(&pt, f->ctx);
    CHECK(ckks_decrypt(f->ctx, pt, ct, f->sk) == HECNN_OK);
    CHECK(ckks_decode(f->ctx, have, pt) == HECNN_OK);
    for (size_t i = 0; i < n; i++) {
        have[i] /= factor;
        re[i] = creal(want[i]);
    }
    ckks_precision_stats s;
    ckks_precision(&s, re, have, n);
    ckks_plaintext_free(pt);
    free(have);
    free(re);
    return (real_bits){s.mean_bits_real, s.min_bits_real, s.mean_bits_imag};
}

/* ckks_bootstrap_pair against one ckks_bootstrap of a (real part) and one of the complex message
 * z = a + i b itself (the weaker part). Measured at N = 2^12: the pair as precise as the complex
 * bootstrap (both 25.6 mean bits full, 23.5 sparse), 1 bit below the real one (26.5, 24.3-24.7: at
 * this ring size EvalMod's error, cubic in the message, dominates; at N = 2^16 all three agree).
 * Asserted: within 0.5 bit of the complex bootstrap, 1.5 bits of the real one, and above
 * `floor_bits` (3.5 bits under the measurement: the margin of the complex thresholds above);
 * imaginary parts below 2^-29 (measured 2^-32); in_b NULL; in place; levels, scales; refusals. */
static void test_pair(ckks_boot_preset preset, double floor_bits, const char *name)
{
    fixture f;
    REQUIRE_VOID(fixture_init(&f, preset) == 0);
    ckks_boot_keys *keys = NULL;
    REQUIRE_VOID(ckks_boot_keys_generate(&keys, f.bt, f.sk) == HECNN_OK);
    const size_t n = ckks_bootstrapper_slots(f.bt);
    const unsigned out_level = ckks_bootstrapper_output_level(f.bt);
    const double scale = ckks_context_default_scale(f.ctx);
    /* the key plan already has the conjugation key the split uses (one level above the output) */
    size_t np = ckks_bootstrapper_key_plan(f.bt, NULL, 0);
    ckks_key_need *plan = malloc(np * sizeof *plan);
    ckks_bootstrapper_key_plan(f.bt, plan, np);
    bool conj_planned = false;
    for (size_t i = 0; i < np; i++)
        conj_planned |= plan[i].galois == ckks_galois_element_conjugate(f.ctx) && plan[i].max_level > out_level;
    CHECK(conj_planned);
    free(plan);

    double complex *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *z = malloc(n * sizeof *z);
    double complex *have = malloc(n * sizeof *have);
    for (size_t i = 0; i < n; i++) {
        a[i] = test_rng_uniform(-1, 1);
        b[i] = test_rng_uniform(-1, 1);
        z[i] = a[i] + I * b[i];
    }
    ckks_ciphertext *ca = encrypt_values(&f, a, 0, scale), *cb = encrypt_values(&f, b, 0, scale);
    ckks_ciphertext *oa = NULL, *ob = NULL;
    ckks_ciphertext_new(&oa, f.ctx);
    ckks_ciphertext_new(&ob, f.ctx);

    /* references: one bootstrap of a (its real part), one of z (the weaker part) */
    hecnn_status st = ckks_bootstrap(f.bt, keys, oa, ca);
    CHECK_MSG(st == HECNN_OK, "%s: bootstrap: %s", name, hecnn_status_name(st));
    const real_bits single = measure_real(&f, oa, a, 1);
    ckks_ciphertext *cz = encrypt_values(&f, z, 0, scale);
    st = ckks_bootstrap(f.bt, keys, oa, cz);
    CHECK_MSG(st == HECNN_OK, "%s: bootstrap: %s", name, hecnn_status_name(st));
    ckks_plaintext *pt = NULL;
    ckks_plaintext_new(&pt, f.ctx);
    CHECK(ckks_decrypt(f.ctx, pt, oa, f.sk) == HECNN_OK && ckks_decode(f.ctx, have, pt) == HECNN_OK);
    ckks_precision_stats zs;
    ckks_precision(&zs, z, have, n);
    const double complex_bits = fmin(zs.mean_bits_real, zs.mean_bits_imag);

    st = ckks_bootstrap_pair(f.bt, keys, oa, ob, ca, cb);
    CHECK_MSG(st == HECNN_OK, "%s: pair: %s (%s)", name, hecnn_status_name(st), hecnn_last_error_detail());
    for (int k = 0; k < 2; k++) {
        const ckks_ciphertext *o = k ? ob : oa;
        CHECK(ckks_ciphertext_level(o) == out_level);
        CHECK(ckks_ciphertext_scale(o) == scale);
        CHECK(ckks_ciphertext_slots(o) == n);
        CHECK(ckks_ciphertext_degree(o) == 1);
    }
    const real_bits pa = measure_real(&f, oa, a, 1), pb = measure_real(&f, ob, b, 1);
    const double pair_bits = fmin(pa.mean, pb.mean);
    CHECK_MSG(pair_bits >= complex_bits - 0.5 && pair_bits >= single.mean - 1.5 && pair_bits >= floor_bits,
              "%s: pair %.2f / %.2f mean bits; one bootstrap of z %.2f, of a %.2f; floor %.1f", name, pa.mean, pb.mean,
              complex_bits, single.mean, floor_bits);
    CHECK_MSG(fmin(pa.min, pb.min) >= fmin(zs.min_bits_real, zs.min_bits_imag) - 1, "%s: pair worst %.2f / %.2f", name,
              pa.min, pb.min);
    /* imaginary parts: the bootstrap's noise only, split off */
    CHECK_MSG(pa.imag >= 29 && pb.imag >= 29, "%s: imaginary parts 2^-%.1f, 2^-%.1f", name, pa.imag, pb.imag);
    /* 2a, 2b at half the scale: the same ciphertexts */
    CHECK(ckks_ciphertext_set_scale(oa, scale / 2) == HECNN_OK);
    const real_bits da = measure_real(&f, oa, a, 2);
    CHECK(fabs(da.mean - pa.mean) < 1e-9);

    /* in_b NULL: the real part of in_a, its imaginary part cleared (the complex z: a) */
    st = ckks_bootstrap_pair(f.bt, keys, oa, NULL, cz, NULL);
    CHECK_MSG(st == HECNN_OK, "%s: pair without b: %s", name, hecnn_status_name(st));
    CHECK(ckks_ciphertext_level(oa) == out_level && ckks_ciphertext_scale(oa) == scale);
    const real_bits na = measure_real(&f, oa, a, 1);
    CHECK_MSG(na.mean >= complex_bits - 0.5 && na.imag >= 29, "%s: real bootstrap of a + i b: %.2f bits, imaginary 2^-%.1f",
              name, na.mean, na.imag);

    if (getenv("HECNN_VERBOSE"))
        printf("  %s: one bootstrap of a %.2f mean / %.2f worst bits (real part), of z = a + ib %.2f / %.2f; "
               "pair %.2f / %.2f (a), %.2f / %.2f (b), imaginary 2^-%.1f; in_b NULL %.2f\n",
               name, single.mean, single.min, complex_bits, fmin(zs.min_bits_real, zs.min_bits_imag), pa.mean, pa.min,
               pb.mean, pb.min, fmin(pa.imag, pb.imag), na.mean);

    /* in place, from a level above 0, the outputs swapped onto the inputs */
    ckks_ciphertext *ha = encrypt_values(&f, a, 2, scale), *hb = encrypt_values(&f, b, 2, scale);
    st = ckks_bootstrap_pair(f.bt, keys, hb, ha, ha, hb);
    CHECK_MSG(st == HECNN_OK, "%s: pair in place: %s", name, hecnn_status_name(st));
    const real_bits ia = measure_real(&f, hb, a, 1), ib = measure_real(&f, ha, b, 1);
    CHECK_MSG(ia.mean >= floor_bits && ib.mean >= floor_bits, "%s: in place %.2f / %.2f bits", name, ia.mean, ib.mean);

    /* refusals */
    ckks_ciphertext *c1 = encrypt_values(&f, b, 1, scale), *cs = NULL;
    CHECK(ckks_bootstrap_pair(f.bt, keys, oa, ob, ca, c1) == HECNN_ERR_LEVEL_MISMATCH);
    ckks_ciphertext_new(&cs, f.ctx);
    CHECK(ckks_ciphertext_copy(cs, cb) == HECNN_OK && ckks_ciphertext_set_scale(cs, 2 * scale) == HECNN_OK);
    CHECK(ckks_bootstrap_pair(f.bt, keys, oa, ob, ca, cs) == HECNN_ERR_SCALE_MISMATCH);
    CHECK(ckks_bootstrap_pair(f.bt, keys, oa, NULL, ca, cb) == HECNN_ERR_INVALID_ARGUMENT);
    CHECK(ckks_bootstrap_pair(f.bt, keys, oa, ob, ca, NULL) == HECNN_ERR_INVALID_ARGUMENT);
    CHECK(ckks_bootstrap_pair(f.bt, keys, oa, oa, ca, cb) == HECNN_ERR_INVALID_ARGUMENT);
    CHECK(ckks_bootstrap_pair(NULL, keys, oa, ob, ca, cb) == HECNN_ERR_INVALID_ARGUMENT);
    CHECK(ckks_bootstrap_pair(f.bt, NULL, oa, ob, ca, cb) == HECNN_ERR_INVALID_ARGUMENT);
    CHECK(ckks_bootstrap_pair(f.bt, keys, NULL, ob, ca, cb) == HECNN_ERR_INVALID_ARGUMENT);
    CHECK(ckks_bootstrap_pair(f.bt, keys, oa, ob, NULL, cb) == HECNN_ERR_INVALID_ARGUMENT);

    ckks_plaintext_free(pt);
    ckks_ciphertext_free(ca);
    ckks_ciphertext_free(cb);
    ckks_ciphertext_free(cz);
    ckks_ciphertext_free(ha);
    ckks_ciphertext_free(hb);
    ckks_ciphertext_free(c1);
    ckks_ciphertext_free(cs);
    ckks_ciphertext_free(oa);
    ckks_ciphertext_free(ob);
    free(a);
    free(b);
    free(z);
    free(have);
    ckks_boot_keys_free(keys);
    fixture_free(&f);
}

/* Compact keys (uniform halves re-expanded from seeds, the others packed) bootstrap as precisely,
 * in less than half the key memory, whether generated, loaded or compacted after the fact. */
static void test_compact_keys(void)
{
    fixture f;
    REQUIRE_VOID(fixture_init(&f, CKKS_BOOT_TEST_N12_SPARSE) == 0);
    ckks_boot_keys *full = NULL, *compact = NULL;
    REQUIRE_VOID(ckks_boot_keys_generate(&full, f.bt, f.sk) == HECNN_OK);
    REQUIRE_VOID(ckks_boot_keys_generate_compact(&compact, f.bt, f.sk) == HECNN_OK);
    const size_t full_bytes = ckks_boot_keys_memory_bytes(full), compact_bytes = ckks_boot_keys_memory_bytes(compact);
    CHECK_MSG(compact_bytes < 0.6 * (double)full_bytes, "compact keys: %zu of %zu bytes", compact_bytes, full_bytes);
    CHECK(ckks_boot_keys_bytes(compact, true) == ckks_boot_keys_bytes(full, true));
    hecnn_status st;
    double min_bits = 0, bits = bootstrap_once(&f, compact, 0, &st, &min_bits);
    CHECK_MSG(st == HECNN_OK, "compact-key bootstrap: %s (%s)", hecnn_status_name(st), hecnn_last_error_detail());
    CHECK_MSG(bits >= 20, "compact keys: %.2f mean bits (min %.2f)", bits, min_bits);
    /* loading compact from a seeded file gives the same keys; from an unseeded file they stay whole */
    for (int seeded = 1; seeded >= 0; seeded--) {
        FILE *tmp = tmpfile();
        REQUIRE_VOID(tmp);
        CHECK(ckks_boot_keys_save(full, seeded, tmp) == HECNN_OK);
        /* the announced size is the file's, framing included */
        const long written = ftell(tmp);
        CHECK_MSG(written >= 0 && (size_t)written == ckks_boot_keys_bytes(full, seeded), "%s boot keys: %ld bytes written, %zu announced",
                  seeded ? "seeded" : "unseeded", written, ckks_boot_keys_bytes(full, seeded));
        rewind(tmp);
        ckks_boot_keys *loaded = NULL;
        CHECK(ckks_boot_keys_load_compact(f.ctx, &loaded, tmp) == HECNN_OK);
        fclose(tmp);
        if (!loaded) continue;
        CHECK_MSG(ckks_boot_keys_memory_bytes(loaded) == (seeded ? compact_bytes : full_bytes), "loaded %s: %zu bytes",
                  seeded ? "seeded" : "unseeded", ckks_boot_keys_memory_bytes(loaded));
        if (seeded) {
            bits = bootstrap_once(&f, loaded, 0, &st, &min_bits);
            CHECK_MSG(st == HECNN_OK && bits >= 20, "loaded compact keys: %.2f mean bits (%s)", bits, hecnn_status_name(st));
        }
        ckks_boot_keys_free(loaded);
    }
    /* compacting whole key sets after the fact is the same */
    CHECK(ckks_boot_keys_compact(full) == HECNN_OK);
    CHECK(ckks_boot_keys_memory_bytes(full) == compact_bytes);
    ckks_boot_keys_free(full);
    ckks_boot_keys_free(compact);
    fixture_free(&f);
}

/* Reentrancy: two threads bootstrap with one bootstrapper and one key set at once (one of them
 * gets the bootstrapper's kept workspace, the other its own), with bit-identical results to
 * bootstrapping the same ciphertexts one after the other. */
typedef struct boot_job {
    const fixture *f;
    const ckks_boot_keys *keys;
    ckks_ciphertext *out;
    const ckks_ciphertext *in;
    hecnn_status st;
} boot_job;

static void *boot_thread(void *arg)
{
    boot_job *j = arg;
    j->st = ckks_bootstrap(j->f->bt, j->keys, j->out, j->in);
    return NULL;
}

/* Bit-identical ciphertexts: the same serialization. */
static bool ct_identical(const ckks_ciphertext *a, const ckks_ciphertext *b)
{
    char *da = NULL, *db = NULL;
    size_t la = 0, lb = 0;
    FILE *fa = open_memstream(&da, &la), *fb = open_memstream(&db, &lb);
    const bool saved = fa && fb && ckks_ciphertext_save(a, fa) == HECNN_OK && ckks_ciphertext_save(b, fb) == HECNN_OK;
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    const bool same = saved && la == lb && !memcmp(da, db, la);
    free(da);
    free(db);
    return same;
}

static void test_concurrent(void)
{
    fixture f;
    REQUIRE_VOID(fixture_init(&f, CKKS_BOOT_TEST_N12_SPARSE) == 0);
    ckks_boot_keys *keys = NULL;
    REQUIRE_VOID(ckks_boot_keys_generate_compact(&keys, f.bt, f.sk) == HECNN_OK);
    const size_t n = ckks_bootstrapper_slots(f.bt);
    double complex *v = malloc(n * sizeof *v);
    ckks_plaintext *pt;
    ckks_plaintext_new(&pt, f.ctx);
    ckks_ciphertext *in[2], *serial[2], *parallel[2];
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < n; i++) v[i] = test_rng_uniform(-1, 1) + I * test_rng_uniform(-1, 1);
        ckks_ciphertext_new(&in[k], f.ctx);
        ckks_ciphertext_new(&serial[k], f.ctx);
        ckks_ciphertext_new(&parallel[k], f.ctx);
        CHECK(ckks_encode(f.ctx, pt, v, n, n, 0, ckks_context_default_scale(f.ctx)) == HECNN_OK);
        CHECK(ckks_encrypt_sk(f.ctx, in[k], pt, f.sk) == HECNN_OK);
        CHECK(ckks_bootstrap(f.bt, keys, serial[k], in[k]) == HECNN_OK);
    }
    boot_job jobs[2];
    pthread_t threads[2];
    for (int k = 0; k < 2; k++) {
        jobs[k] = (boot_job){&f, keys, parallel[k], in[k], HECNN_OK};
        REQUIRE_VOID(pthread_create(&threads[k], NULL, boot_thread, &jobs[k]) == 0);
    }
    for (int k = 0; k < 2; k++) pthread_join(threads[k], NULL);
    for (int k = 0; k < 2; k++) {
        CHECK_MSG(jobs[k].st == HECNN_OK, "concurrent bootstrap %d: %s", k, hecnn_status_name(jobs[k].st));
        CHECK_MSG(ct_identical(parallel[k], serial[k]), "concurrent bootstrap %d = serial", k);
        ckks_ciphertext_free(in[k]);
        ckks_ciphertext_free(serial[k]);
        ckks_ciphertext_free(parallel[k]);
    }
    ckks_plaintext_free(pt);
    free(v);
    ckks_boot_keys_free(keys);
    fixture_free(&f);
}

int main(void)
{
    test_rng_seed(5);
    const unsigned a[] = {4, 2}, b[] = {2, 2, 2}, c[] = {10}, d[] = {3, 3, 4}, e[] = {1, 1, 1, 1, 1, 1};
    test_dft_plain(64, a, 2, b, 3);
    test_dft_plain(1024, c, 1, d, 3);
    test_dft_plain(64, e, 6, a, 2);
    test_dft_plain(2, (const unsigned[]){1}, 1, (const unsigned[]){1}, 1);
    test_presets_offline();
    test_full();
    test_sparse();
    test_pair(CKKS_BOOT_TEST_N12_FULL, 22, "full slots");
    test_pair(CKKS_BOOT_TEST_N12_SPARSE, 20, "sparse slots");
    test_compact_keys();
    test_concurrent();
    return check_summary();
}

/* Linear transforms: encrypted M v against the plaintext product (dense and sparse-diagonal
 * matrices, full and sparse slot counts, forced and planned baby steps); the planner returns
 * exactly the Galois keys needed: the product works with exactly those keys, and fails with
 * HECNN_ERR_MISSING_KEY when any one of them is removed. N = 2^11, insecure test parameters. */
#include <math.h>
#include <string.h>

#include "common/check.h"
#include "hecnn/hecnn.h"

static ckks_context *ctx;
static ckks_secret_key *sk;

static ckks_eval_keys *keys_for(const uint64_t *gal, size_t n, size_t skip)
{
    ckks_eval_keys *k = NULL;
    if (ckks_eval_keys_new(&k, ctx)) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (i == skip) continue;
        ckks_switching_key *key = NULL;
        if (ckks_galois_key_generate(&key, sk, gal[i], ckks_context_max_level(ctx))) return NULL;
        if (ckks_eval_keys_add(k, key)) return NULL;
    }
    return k;
}

static ckks_ciphertext *encrypt(const double complex *v, size_t slots, unsigned level)
{
    ckks_plaintext *pt = NULL;
    ckks_ciphertext *ct = NULL;
    ckks_plaintext_new(&pt, ctx);
    ckks_ciphertext_new(&ct, ctx);
    CHECK(ckks_encode(ctx, pt, v, slots, slots, level, ckks_context_default_scale(ctx)) == HECNN_OK);
    CHECK(ckks_encrypt_sk(ctx, ct, pt, sk) == HECNN_OK);
    ckks_plaintext_free(pt);
    return ct;
}

static double mean_bits(const ckks_ciphertext *ct, const double complex *want, size_t slots)
{
    ckks_plaintext *pt = NULL;
    ckks_plaintext_new(&pt, ctx);
    double complex *have = malloc(slots * sizeof *have);
    CHECK(ckks_decrypt(ctx, pt, ct, sk) == HECNN_OK);
    CHECK(ckks_decode(ctx, have, pt) == HECNN_OK);
    ckks_precision_stats s;
    ckks_precision(&s, want, have, slots);
    free(have);
    ckks_plaintext_free(pt);
    return fmin(s.mean_bits_real, s.mean_bits_imag);
}

/* Build, plan, check against the plaintext product, then the key exactness. */
static void check_transform(const char *name, ckks_lintrans *lt, const double complex *m, size_t slots, bool drop_each)
{
    const unsigned level = ckks_lintrans_level(lt);
    size_t ng = ckks_lintrans_galois_elements(lt, NULL, 0);
    uint64_t *gal = malloc((ng ? ng : 1) * sizeof *gal);
    CHECK(ckks_lintrans_galois_elements(lt, gal, ng) == ng);
    size_t nr = ckks_lintrans_rotations(lt, NULL, 0);
    CHECK(nr == ng);
    for (size_t i = 1; i < ng; i++) CHECK(gal[i - 1] < gal[i]);

    double complex *v = malloc(slots * sizeof *v), *want = calloc(slots, sizeof *want);
    for (size_t i = 0; i < slots; i++) v[i] = test_rng_uniform(-1, 1) + I * test_rng_uniform(-1, 1);
    for (size_t r = 0; r < slots; r++)
        for (size_t c = 0; c < slots; c++) want[r] += m[r * slots + c] * v[c];
    ckks_ciphertext *ct = encrypt(v, slots, level), *out = NULL;
    ckks_ciphertext_new(&out, ctx);

    ckks_eval_keys *keys = keys_for(gal, ng, (size_t)-1);
    REQUIRE_VOID(keys);
    ckks_evaluator *ev = NULL;
    ckks_evaluator_new(&ev, ctx, keys);
    hecnn_status st = ckks_lintrans_apply(ev, out, ct, lt);
    CHECK_MSG(st == HECNN_OK, "%s: %s (%s)", name, hecnn_status_name(st), hecnn_last_error_detail());
    if (!st) {
        CHECK(ckks_ciphertext_level(out) == level);
        CHECK(ckks_rescale(ev, out, out) == HECNN_OK);
        const double want_scale = ckks_context_default_scale(ctx) * ckks_lintrans_scale(lt) / (double)ckks_context_q(ctx, level);
        CHECK(fabs(ckks_ciphertext_scale(out) / want_scale - 1) < 1e-12);
        double bits = mean_bits(out, want, slots);
        CHECK_MSG(bits > 25, "%s: %.1f bits", name, bits);
        if (getenv("HECNN_VERBOSE"))
            printf("  %-28s slots %5zu baby step %3zu: %2zu keys, %.1f bits\n", name, slots, ckks_lintrans_baby_step(lt), ng,
                   bits);
    }
    /* aliasing */
    ckks_ciphertext *alias = NULL;
    ckks_ciphertext_new(&alias, ctx);
    ckks_ciphertext_copy(alias, ct);
    CHECK(ckks_lintrans_apply(ev, alias, alias, lt) == HECNN_OK);
    CHECK(ckks_rescale(ev, alias, alias) == HECNN_OK);
    CHECK(mean_bits(alias, want, slots) > 25);
    ckks_ciphertext_free(alias);
    ckks_evaluator_free(ev);
    ckks_eval_keys_free(keys);

    /* every planned key is needed */
    for (size_t skip = 0; drop_each && skip < ng; skip++) {
        keys = keys_for(gal, ng, skip);
        ckks_evaluator_new(&ev, ctx, keys);
        st = ckks_lintrans_apply(ev, out, ct, lt);
        CHECK_MSG(st == HECNN_ERR_MISSING_KEY, "%s: without key %zu (galois %llu): %s", name, skip,
                  (unsigned long long)gal[skip], hecnn_status_name(st));
        ckks_evaluator_free(ev);
        ckks_eval_keys_free(keys);
    }
    ckks_ciphertext_free(ct);
    ckks_ciphertext_free(out);
    free(gal);
    free(v);
    free(want);
}

static void test_dense(size_t slots, unsigned level)
{
    double complex *m = calloc(slots * slots, sizeof *m);
    for (size_t r = 0; r < slots; r++)
        for (size_t c = 0; c < slots; c++)
            if ((c + slots - r) % slots % 3 != 2) /* every third diagonal is zero */
                m[r * slots + c] = test_rng_uniform(-1, 1) / sqrt((double)slots) + I * test_rng_uniform(-1, 1) / (double)slots;
    ckks_lintrans *lt = NULL;
    REQUIRE_VOID(ckks_lintrans_from_matrix(&lt, ctx, m, slots, level, 0) == HECNN_OK);
    check_transform(slots < 64 ? "dense (all keys dropped)" : "dense", lt, m, slots, slots < 64);
    ckks_lintrans_free(lt);
    free(m);
}

static void test_sparse_diagonals(size_t slots, size_t baby_step)
{
    const int offs[] = {0, 1, 2, 5, -3, 17, 100, -64, 64};
    const size_t nd = sizeof offs / sizeof offs[0];
    double complex *store = malloc(nd * slots * sizeof *store), *m = calloc(slots * slots, sizeof *m);
    const double complex *dp[sizeof offs / sizeof offs[0]];
    for (size_t i = 0; i < nd; i++) {
        dp[i] = store + i * slots;
        size_t k = (size_t)(((offs[i] % (long)slots) + (long)slots) % (long)slots);
        for (size_t j = 0; j < slots; j++) {
            store[i * slots + j] = test_rng_uniform(-0.3, 0.3) + I * test_rng_uniform(-0.3, 0.3);
            m[j * slots + (j + k) % slots] += store[i * slots + j];
        }
    }
    ckks_lintrans_desc d = {.slots = slots, .n_diags = nd, .offsets = offs, .diags = dp, .level = 2, .baby_step = baby_step};
    ckks_lintrans *lt = NULL;
    hecnn_status st = ckks_lintrans_new(&lt, ctx, &d);
    if (slots <= 128) {
        /* -64 and 64 coincide modulo 128 (and with 0 modulo 64): rejected */
        CHECK(st == HECNN_ERR_INVALID_ARGUMENT);
        d.n_diags = slots == 64 ? nd - 2 : nd - 1;
        memset(m, 0, slots * slots * sizeof *m);
        for (size_t i = 0; i < d.n_diags; i++) {
            size_t k = (size_t)(((offs[i] % (long)slots) + (long)slots) % (long)slots);
            for (size_t j = 0; j < slots; j++) m[j * slots + (j + k) % slots] += store[i * slots + j];
        }
        st = ckks_lintrans_new(&lt, ctx, &d);
    }
    CHECK_MSG(st == HECNN_OK, "sparse diagonals: %s", hecnn_last_error_detail());
    if (!st) {
        if (baby_step) CHECK(ckks_lintrans_baby_step(lt) == baby_step);
        check_transform(baby_step ? "sparse diagonals, forced n1" : "sparse diagonals", lt, m, slots, baby_step == 16);
    }
    ckks_lintrans_free(lt);
    free(store);
    free(m);
}

int main(void)
{
    test_rng_seed(11);
    ckks_params_literal p = {.log_n = 11, .n_q = 4, .n_p = 1, .log_scale = 40, .allow_insecure = true};
    p.log_q[0] = 55;
    p.log_q[1] = p.log_q[2] = p.log_q[3] = 40;
    p.log_p[0] = 61;
    p.dnum = 4;
    uint8_t seed[CKKS_SEED_BYTES] = {42};
    if (ckks_context_new(&ctx, &p) || ckks_secret_key_generate_derand(&sk, ctx, seed)) {
        fprintf(stderr, "setup failed: %s\n", hecnn_last_error_detail());
        return 1;
    }
    const size_t full = ckks_context_max_slots(ctx);
    test_dense(32, 3);
    test_dense(full, 3);
    test_sparse_diagonals(full, 0);
    test_sparse_diagonals(full, 16);
    test_sparse_diagonals(64, 0);
    test_sparse_diagonals(128, 4);

    /* diagonals too large for the compact form (scale 2^70) take the generic path */
    {
        const size_t slots = 64;
        double complex *m = calloc(slots * slots, sizeof *m);
        for (size_t r = 0; r < slots; r++) {
            m[r * slots + r] = 0.5;
            m[r * slots + (r + 1) % slots] = 0.25 * I;
            m[r * slots + (r + 9) % slots] = -0.125;
        }
        ckks_lintrans *big = NULL;
        REQUIRE(ckks_lintrans_from_matrix(&big, ctx, m, slots, 3, ldexp(1, 70)) == HECNN_OK);
        check_transform("generic path (scale 2^70)", big, m, slots, true);
        ckks_lintrans_free(big);
        free(m);
    }

    /* planner: a baby step that is not a power of two is refused */
    const int o[] = {0, 1};
    double complex z[1024];
    for (size_t i = 0; i < full; i++) z[i] = 1;
    const double complex *dz[2] = {z, z};
    ckks_lintrans_desc d = {.slots = full, .n_diags = 2, .offsets = o, .diags = dz, .level = 1, .baby_step = 3};
    ckks_lintrans *lt = NULL;
    CHECK(ckks_lintrans_new(&lt, ctx, &d) == HECNN_ERR_INVALID_ARGUMENT);
    d.baby_step = 0;
    d.level = 9;
    CHECK(ckks_lintrans_new(&lt, ctx, &d) == HECNN_ERR_LEVEL_MISMATCH);

    ckks_secret_key_free(sk);
    ckks_context_free(ctx);
    return check_summary();
}

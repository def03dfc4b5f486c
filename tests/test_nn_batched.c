/* The batched packing end to end on a small ResNet-shaped network (random weights, 8x8 images,
 * residual blocks with an identity and a 1x1 stride-2 shortcut, global pooling, dense), encrypted at
 * insecure test parameters (N = 2^12, the bootstrapping test chain with six residual levels) and
 * compared with the graph's plaintext simulation (HECNN_INFER_APPROX): the same polynomials, so the
 * difference is the CKKS error alone. */
#include <math.h>
#include <string.h>

#include "common/check.h"
#include "hecnn/graph.h"
#include "hecnn/plan.h"

#define SIDE 8
#define BATCH 40

static double relu(double x, void *arg)
{
    (void)arg;
    return x > 0 ? x : 0;
}

static void random_fill(double *v, size_t n, double scale)
{
    for (size_t i = 0; i < n; i++) v[i] = test_rng_uniform(-scale, scale);
}

static size_t conv(hecnn_graph *g, size_t in, uint32_t cin, uint32_t cout, uint32_t k, uint32_t stride)
{
    double w[8 * 8 * 9], b[8];
    random_fill(w, (size_t)cout * cin * k * k, 1.0 / sqrt((double)cin * k * k));
    random_fill(b, cout, 0.1);
    size_t id = 0;
    CHECK(hecnn_graph_conv2d(g, &id, in, cout, k, stride, k / 2, w, b) == HECNN_OK);
    return id;
}

static size_t relu_node(hecnn_graph *g, size_t in)
{
    size_t id = 0;
    CHECK(hecnn_graph_relu(g, &id, in) == HECNN_OK);
    return id;
}

static size_t add(hecnn_graph *g, size_t a, size_t b)
{
    size_t id = 0;
    CHECK(hecnn_graph_add(g, &id, a, b) == HECNN_OK);
    return id;
}

/* input 3x8x8 -> conv 4 -> relu -> [conv relu conv + id] relu -> [conv/2 relu conv + 1x1/2] relu ->
 * pool -> dense 3 */
static hecnn_graph *small_resnet(void)
{
    hecnn_graph *g = NULL;
    if (hecnn_graph_new(&g, 3, SIDE, SIDE)) return NULL;
    size_t x = relu_node(g, conv(g, 0, 3, 4, 3, 1));
    size_t y = relu_node(g, conv(g, x, 4, 4, 3, 1));
    x = relu_node(g, add(g, conv(g, y, 4, 4, 3, 1), x));
    y = relu_node(g, conv(g, x, 4, 8, 3, 2));
    x = relu_node(g, add(g, conv(g, y, 8, 8, 3, 1), conv(g, x, 4, 8, 1, 2)));
    size_t p = 0, d = 0;
    CHECK(hecnn_graph_avgpool(g, &p, x, SIDE / 2) == HECNN_OK);
    double w[3 * 8], b[3];
    random_fill(w, 24, 0.5);
    random_fill(b, 3, 0.1);
    CHECK(hecnn_graph_dense(g, &d, p, 3, w, b) == HECNN_OK);
    return g;
}

/* Ranges from the exact run (margin 1.5) and a degree-7 Chebyshev ReLU on [-1, 1]. */
static void calibrate(hecnn_graph *g, const double *images, size_t n)
{
    const size_t count = hecnn_graph_node_count(g);
    double *absmax = calloc(count, sizeof *absmax), *out = calloc(n * 3, sizeof *out);
    hecnn_infer_stats stats = {.absmax = absmax};
    CHECK(hecnn_graph_infer(g, HECNN_INFER_EXACT, images, n, out, &stats) == HECNN_OK);
    ckks_poly *p = NULL;
    CHECK(ckks_poly_interpolate(&p, relu, NULL, -1, 1, 7) == HECNN_OK);
    for (size_t id = 0; id < count && p; id++)
        if (hecnn_graph_node(g, id)->op == HECNN_OP_RELU) {
            CHECK(absmax[id] > 0);
            CHECK(hecnn_graph_set_relu_range(g, id, 1.5 * absmax[id]) == HECNN_OK);
            CHECK(hecnn_graph_set_relu_approx(g, id, ckks_poly_coeffs(p), ckks_poly_degree(p)) == HECNN_OK);
        }
    ckks_poly_free(p);
    free(absmax);
    free(out);
}

/* The N = 2^12 bootstrapping test chain with six residual levels (CKKS_BOOT_TEST_N12_DEEP). */
static int make_context(ckks_context **ctx, ckks_bootstrapper **bt)
{
    ckks_params_literal lit;
    ckks_boot_params bp;
    if (ckks_boot_preset_params(&lit, &bp, CKKS_BOOT_TEST_N12_DEEP)) return -1;
    if (ckks_context_new(ctx, &lit)) return -1;
    return ckks_bootstrapper_new(bt, *ctx, &bp) ? -1 : 0;
}

static void test_end_to_end(void)
{
    test_rng_seed(8);
    hecnn_graph *g = small_resnet();
    REQUIRE_VOID(g);
    const size_t per = 3 * SIDE * SIDE;
    double *images = malloc(BATCH * per * sizeof *images);
    random_fill(images, BATCH * per, 1.5);
    calibrate(g, images, BATCH);

    ckks_context *ctx = NULL;
    ckks_bootstrapper *bt = NULL;
    REQUIRE_VOID(make_context(&ctx, &bt) == 0);
    hecnn_plan *plan = NULL;
    const hecnn_plan_options opt = {.batch = BATCH, .grid = SIDE};
    REQUIRE_VOID(hecnn_plan_new(&plan, g, ctx, bt, &opt) == HECNN_OK);
    /* 2048 slots of 8x8 blocks: 32 images per ciphertext, two groups merged into one at stride 2 */
    CHECK(hecnn_plan_images_per_ciphertext(plan) == 32);
    CHECK(hecnn_plan_input_ciphertexts(plan) == 2 * 3);
    CHECK(hecnn_plan_output_ciphertexts(plan) == 3);
    CHECK(hecnn_plan_classes(plan) == 3);
    /* ReLUs on 2 x 4 ciphertexts (three of them) and 1 x 8 (two): 3 x 4 + 2 x 4 paired bootstraps,
     * less the first ReLU's: the images are encrypted two levels above a bootstrap's output */
    CHECK_MSG(hecnn_plan_bootstraps(plan) == 16, "%zu bootstraps", hecnn_plan_bootstraps(plan));
    CHECK(hecnn_plan_input_level(plan) == ckks_bootstrapper_output_level(bt) + 2);
    /* per node: the first ReLU evaluates its polynomial on the deep input, the second bootstraps
     * 2 x 4 ciphertexts in 4 pairs; the stride-2 layer (node 8)
     * merges the two groups into one at gap 2; the output sits one level below the last ReLU's
     * (6 after a bootstrap, 3 after the degree-7 polynomial, 2 after the dense layer) */
    hecnn_plan_node info;
    CHECK(hecnn_plan_node_info(plan, 2, &info) == HECNN_OK && info.bootstraps == 0 && info.ciphertexts == 8);
    CHECK(hecnn_plan_node_info(plan, 4, &info) == HECNN_OK && info.bootstraps == 4 && info.ciphertexts == 8);
    CHECK(hecnn_plan_node_info(plan, 8, &info) == HECNN_OK && info.gap == 2 && info.groups == 1 && info.rotations > 0);
    CHECK(hecnn_plan_node_info(plan, hecnn_graph_node_count(g) - 1, &info) == HECNN_OK && info.level == 2);
    CHECK(hecnn_plan_node_info(plan, hecnn_graph_node_count(g), &info) == HECNN_ERR_INVALID_ARGUMENT);

    uint8_t seed[CKKS_SEED_BYTES] = {8};
    ckks_secret_key *sk = NULL;
    ckks_eval_keys *keys = NULL;
    ckks_boot_keys *boot_keys = NULL;
    REQUIRE_VOID(ckks_secret_key_generate_derand(&sk, ctx, seed) == HECNN_OK);
    REQUIRE_VOID(hecnn_plan_keys_generate(&keys, plan, sk) == HECNN_OK);
    REQUIRE_VOID(ckks_boot_keys_generate(&boot_keys, bt, sk) == HECNN_OK);
    CHECK(hecnn_plan_check_keys(plan, keys) == HECNN_OK);

    /* a key set without the network's rotations is refused by name */
    ckks_eval_keys *partial = NULL;
    CHECK(ckks_eval_keys_generate(&partial, sk, true, NULL, 0, false) == HECNN_OK);
    CHECK(hecnn_plan_check_keys(plan, partial) == HECNN_ERR_MISSING_KEY);
    CHECK(strstr(hecnn_last_error_detail(), "rotation key") != NULL);

    const size_t n_in = hecnn_plan_input_ciphertexts(plan), n_out = hecnn_plan_output_ciphertexts(plan);
    ckks_ciphertext *in[6] = {0}, *out[3] = {0};
    for (size_t i = 0; i < n_in; i++) CHECK(ckks_ciphertext_new(&in[i], ctx) == HECNN_OK);
    for (size_t i = 0; i < n_out; i++) CHECK(ckks_ciphertext_new(&out[i], ctx) == HECNN_OK);
    CHECK(hecnn_plan_encrypt(plan, in, images, BATCH, NULL, sk) == HECNN_OK);
    CHECK(hecnn_plan_run(plan, partial, boot_keys, in, out, NULL, NULL, NULL, NULL) == HECNN_ERR_MISSING_KEY);
    volatile int cancel = 1;
    CHECK(hecnn_plan_run(plan, keys, boot_keys, in, out, NULL, NULL, &cancel, NULL) == HECNN_ERR_CANCELLED);

    hecnn_run_stats stats;
    const hecnn_status st = hecnn_plan_run(plan, keys, boot_keys, in, out, NULL, NULL, NULL, &stats);
    CHECK_MSG(st == HECNN_OK, "%s: %s", hecnn_status_name(st), hecnn_last_error_detail());
    CHECK(stats.bootstraps == hecnn_plan_bootstraps(plan));
    CHECK(stats.rotations == hecnn_plan_rotations(plan));
    double got[BATCH * 3], want[BATCH * 3], exact[BATCH * 3];
    CHECK(hecnn_plan_decrypt(plan, got, BATCH, out, sk) == HECNN_OK);
    CHECK(hecnn_graph_infer(g, HECNN_INFER_APPROX, images, BATCH, want, NULL) == HECNN_OK);
    CHECK(hecnn_graph_infer(g, HECNN_INFER_EXACT, images, BATCH, exact, NULL) == HECNN_OK);
    double err = 0, mag = 0;
    for (size_t i = 0; i < BATCH * 3; i++) {
        err = fmax(err, fabs(got[i] - want[i]));
        mag = fmax(mag, fabs(want[i]));
    }
    /* the CKKS error against the simulation: well below the approximation's own error */
    CHECK_MSG(err < 1e-3 * mag, "largest logit error %.3g (logits up to %.3g)", err, mag);
    fprintf(stderr, "batched: largest logit error %.3g of %.3g (%.1f bits), %zu bootstraps, %zu rotations\n", err, mag,
            -log2(err / mag), stats.bootstraps, stats.rotations);
    /* the flooded owner side (library defaults): the same scores up to the stated noise, never equal */
    double flooded[BATCH * 3];
    CHECK(hecnn_plan_decrypt_flooded(plan, flooded, BATCH, out, sk, NULL) == HECNN_OK);
    const double sd = ckks_flood_slot_stddev(ctx, out[0], NULL);
    double dev = 0;
    for (size_t i = 0; i < BATCH * 3; i++) dev = fmax(dev, fabs(flooded[i] - got[i]));
    CHECK_MSG(dev > 0 && dev < 8 * sd, "flooded scores move by %.3g, stated stddev %.3g", dev, sd);
    fprintf(stderr, "batched: flooded decryption, noise stddev %.3g per score\n", sd);

    for (size_t i = 0; i < n_in; i++) ckks_ciphertext_free(in[i]);
    for (size_t i = 0; i < n_out; i++) ckks_ciphertext_free(out[i]);
    ckks_eval_keys_free(partial);
    ckks_eval_keys_free(keys);
    ckks_boot_keys_free(boot_keys);
    ckks_secret_key_free(sk);
    hecnn_plan_free(plan);
    ckks_bootstrapper_free(bt);
    ckks_context_free(ctx);
    hecnn_graph_free(g);
    free(images);
}

/* Graphs the packing cannot lay out are refused when planned, with a reason. */
static void test_refusals(void)
{
    ckks_context *ctx = NULL;
    ckks_bootstrapper *bt = NULL;
    REQUIRE_VOID(make_context(&ctx, &bt) == 0);
    hecnn_graph *g = NULL;
    hecnn_plan *plan = NULL;
    const hecnn_plan_options opt = {.batch = 4, .grid = SIDE};
    REQUIRE_VOID(hecnn_graph_new(&g, 1, SIDE, SIDE) == HECNN_OK);
    size_t r = relu_node(g, conv(g, 0, 1, 2, 3, 1));
    /* an uncalibrated ReLU */
    CHECK(hecnn_plan_new(&plan, g, ctx, bt, &opt) == HECNN_ERR_INVALID_ARGUMENT);
    CHECK(strstr(hecnn_last_error_detail(), "not calibrated") != NULL);
    double c[2] = {0, 1};
    CHECK(hecnn_graph_set_relu_range(g, r, 1) == HECNN_OK);
    CHECK(hecnn_graph_set_relu_approx(g, r, c, 1) == HECNN_OK);
    /* no pooling + dense at the end */
    CHECK(hecnn_plan_new(&plan, g, ctx, bt, &opt) == HECNN_ERR_UNSUPPORTED);
    /* linear layers in a row run out of levels: the ReLU (degree 1) leaves 5, eight layers need 8 */
    size_t c2 = r;
    for (int i = 0; i < 8; i++) c2 = conv(g, c2, 2, 2, 3, 1);
    CHECK(hecnn_plan_new(&plan, g, ctx, bt, &opt) == HECNN_ERR_LEVEL_MISMATCH);
    /* a batch of zero, a grid too small */
    const hecnn_plan_options zero = {.batch = 0, .grid = SIDE}, small = {.batch = 1, .grid = SIDE / 2};
    CHECK(hecnn_plan_new(&plan, g, ctx, bt, &zero) == HECNN_ERR_INVALID_ARGUMENT);
    CHECK(hecnn_plan_new(&plan, g, ctx, bt, &small) == HECNN_ERR_INVALID_ARGUMENT);
    CHECK(plan == NULL);
    hecnn_graph_free(g);
    ckks_bootstrapper_free(bt);
    ckks_context_free(ctx);
}

int main(void)
{
    test_refusals();
    test_end_to_end();
    return check_summary();
}

/* The batched packing end to end on a small ResNet-shaped network (random weights, 8x8 images,
 * residual blocks with an identity and a 1x1 stride-2 shortcut, global pooling, dense), encrypted at
 * insecure test parameters (N = 2^12, the bootstrapping test chain with six residual levels) and
 * compared with the graph's plaintext simulation (HECNN_INFER_APPROX): the same polynomials, so the
 * difference is the CKKS error alone. */
#include <math.h>
#include <string.h>

#include "common/check.h"
#include "common/nn_graphs.h"
#include "hecnn/graph.h"
#include "hecnn/plan.h"

#define SIDE 8
#define BATCH 40

/* input 3x8x8 -> conv 4 -> relu -> [conv relu conv + id] relu -> [conv/2 relu conv + 1x1/2] relu ->
 * pool -> dense 3 */
static hecnn_graph *small_resnet(void)
{
    hecnn_graph *g = NULL;
    if (hecnn_graph_new(&g, 3, SIDE, SIDE)) return NULL;
    size_t x = test_relu_node(g, test_conv(g, 0, 3, 4, 3, 1));
    size_t y = test_relu_node(g, test_conv(g, x, 4, 4, 3, 1));
    x = test_relu_node(g, test_add(g, test_conv(g, y, 4, 4, 3, 1), x));
    y = test_relu_node(g, test_conv(g, x, 4, 8, 3, 2));
    x = test_relu_node(g, test_add(g, test_conv(g, y, 8, 8, 3, 1), test_conv(g, x, 4, 8, 1, 2)));
    size_t p = 0, d = 0;
    CHECK(hecnn_graph_avgpool(g, &p, x, SIDE / 2) == HECNN_OK);
    double w[3 * 8], b[3];
    test_random_fill(w, 24, 0.5);
    test_random_fill(b, 3, 0.1);
    CHECK(hecnn_graph_dense(g, &d, p, 3, w, b) == HECNN_OK);
    return g;
}

static void test_end_to_end(void)
{
    test_rng_seed(8);
    hecnn_graph *g = small_resnet();
    REQUIRE_VOID(g);
    const size_t per = 3 * SIDE * SIDE;
    double *images = malloc(BATCH * per * sizeof *images);
    test_random_fill(images, BATCH * per, 1.5);
    test_calibrate(g, images, BATCH);

    ckks_context *ctx = NULL;
    ckks_bootstrapper *bt = NULL;
    REQUIRE_VOID(test_boot_context(&ctx, &bt) == 0);
    hecnn_plan *plan = NULL;
    const hecnn_plan_options opt = {.batch = BATCH, .grid = SIDE};
    REQUIRE_VOID(hecnn_plan_new(&plan, g, ctx, bt, &opt) == HECNN_OK);
    /* 2048 slots of 8x8 blocks: 32 images per ciphertext, two groups merged into one at stride 2,
     * whose other two sub-positions are lanes: 8 channels in 4 ciphertexts, 3 scores in 2 */
    CHECK(hecnn_plan_images_per_ciphertext(plan) == 32);
    CHECK(hecnn_plan_input_ciphertexts(plan) == 2 * 3);
    CHECK(hecnn_plan_output_ciphertexts(plan) == 2);
    CHECK(hecnn_plan_classes(plan) == 3);
    /* ReLUs on 2 x 4 ciphertexts (three of them) and 1 x 4 (two): 3 x 4 + 2 x 2 paired bootstraps,
     * less the first ReLU's: the images are encrypted two levels above a bootstrap's output */
    CHECK_MSG(hecnn_plan_bootstraps(plan) == 12, "%zu bootstraps", hecnn_plan_bootstraps(plan));
    CHECK(hecnn_plan_input_level(plan) == ckks_bootstrapper_output_level(bt) + 2);
    /* per node: the first ReLU evaluates its polynomial on the deep input, the second bootstraps
     * 2 x 4 ciphertexts in 4 pairs; the stride-2 layer (node 8)
     * merges the two groups into one at gap 2; the output sits one level below the last ReLU's
     * (6 after a bootstrap, 3 after the degree-7 polynomial, 2 after the dense layer) */
    hecnn_plan_node info;
    CHECK(hecnn_plan_node_info(plan, 2, &info) == HECNN_OK && info.bootstraps == 0 && info.ciphertexts == 8);
    CHECK(hecnn_plan_node_info(plan, 4, &info) == HECNN_OK && info.bootstraps == 4 && info.ciphertexts == 8);
    CHECK(hecnn_plan_node_info(plan, 8, &info) == HECNN_OK && info.gap == 2 && info.groups == 1 && info.rotations > 0 &&
          info.ciphertexts == 4);
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
    ckks_ciphertext *in[6] = {0}, *out[2] = {0};
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

/* input 3x8x8 -> conv 4 -> relu -> conv/2 8 -> relu -> conv/2 16 -> relu -> pool -> dense 3: two
 * merges of one group, so 4 and then 16 lanes */
static hecnn_graph *three_stage_net(void)
{
    hecnn_graph *g = NULL;
    if (hecnn_graph_new(&g, 3, SIDE, SIDE)) return NULL;
    size_t x = test_relu_node(g, test_conv(g, 0, 3, 4, 3, 1));
    x = test_relu_node(g, test_conv(g, x, 4, 8, 3, 2));
    x = test_relu_node(g, test_conv(g, x, 8, 16, 3, 2));
    size_t p = 0, d = 0;
    CHECK(hecnn_graph_avgpool(g, &p, x, SIDE / 4) == HECNN_OK);
    double w[3 * 16], b[3];
    test_random_fill(w, 48, 0.5);
    test_random_fill(b, 3, 0.1);
    CHECK(hecnn_graph_dense(g, &d, p, 3, w, b) == HECNN_OK);
    return g;
}

typedef struct lane_case {
    size_t node;       /* a node of the last stage */
    size_t node_cts;   /* its ciphertexts */
    size_t bootstraps; /* paired */
    size_t outputs;    /* score ciphertexts */
} lane_case;

/* g (calibrated on `images`) encrypted on a batch of n (one group), against the plaintext
 * simulation; the plan's counts as `want`; the scores in got. */
static void run_one_group(const hecnn_graph *g, const double *images, size_t n, bool replicate, const lane_case *want,
                          double *got)
{
    double sim[8 * 3];
    REQUIRE_VOID(n <= 8);
    CHECK(hecnn_graph_infer(g, HECNN_INFER_APPROX, images, n, sim, NULL) == HECNN_OK);
    ckks_context *ctx = NULL;
    ckks_bootstrapper *bt = NULL;
    REQUIRE_VOID(test_boot_context(&ctx, &bt) == 0);
    uint8_t seed[CKKS_SEED_BYTES] = {9};
    ckks_secret_key *sk = NULL;
    ckks_boot_keys *boot_keys = NULL;
    ckks_eval_keys *keys = NULL;
    hecnn_plan *plan = NULL;
    const hecnn_plan_options opt = {.batch = n, .grid = SIDE, .replicate_images = replicate};
    REQUIRE_VOID(hecnn_plan_new(&plan, g, ctx, bt, &opt) == HECNN_OK);
    hecnn_plan_node info;
    CHECK_MSG(hecnn_plan_node_info(plan, want->node, &info) == HECNN_OK && info.ciphertexts == want->node_cts,
              "node %zu: %zu ciphertexts", want->node, info.ciphertexts);
    CHECK_MSG(hecnn_plan_bootstraps(plan) == want->bootstraps, "%zu bootstraps", hecnn_plan_bootstraps(plan));
    CHECK(hecnn_plan_output_ciphertexts(plan) == want->outputs && hecnn_plan_classes(plan) == 3);
    REQUIRE_VOID(ckks_secret_key_generate_derand(&sk, ctx, seed) == HECNN_OK);
    REQUIRE_VOID(ckks_boot_keys_generate(&boot_keys, bt, sk) == HECNN_OK);
    REQUIRE_VOID(hecnn_plan_keys_generate(&keys, plan, sk) == HECNN_OK);
    const size_t n_in = hecnn_plan_input_ciphertexts(plan), n_out = hecnn_plan_output_ciphertexts(plan);
    ckks_ciphertext *in[3] = {0}, *out[3] = {0};
    REQUIRE_VOID(n_in == 3 && n_out <= 3);
    for (size_t i = 0; i < n_in; i++) CHECK(ckks_ciphertext_new(&in[i], ctx) == HECNN_OK);
    for (size_t i = 0; i < n_out; i++) CHECK(ckks_ciphertext_new(&out[i], ctx) == HECNN_OK);
    CHECK(hecnn_plan_encrypt(plan, in, images, n, NULL, sk) == HECNN_OK);
    hecnn_run_stats stats;
    const hecnn_status st = hecnn_plan_run(plan, keys, boot_keys, in, out, NULL, NULL, NULL, &stats);
    CHECK_MSG(st == HECNN_OK, "%s: %s", hecnn_status_name(st), hecnn_last_error_detail());
    CHECK(stats.rotations == hecnn_plan_rotations(plan) && stats.bootstraps == want->bootstraps);
    CHECK(hecnn_plan_decrypt(plan, got, n, out, sk) == HECNN_OK);
    double err = 0, mag = 0;
    for (size_t i = 0; i < n * 3; i++) {
        err = fmax(err, fabs(got[i] - sim[i]));
        mag = fmax(mag, fabs(sim[i]));
    }
    CHECK_MSG(err < 1e-3 * mag, "largest logit error %.3g (logits up to %.3g)", err, mag);
    fprintf(stderr, "batched, %s: largest logit error %.3g of %.3g (%.1f bits), %zu bootstraps, %zu rotations\n",
            replicate ? "repeated images" : "lanes", err, mag, -log2(err / mag), stats.bootstraps, stats.rotations);
    for (size_t i = 0; i < n_in; i++) ckks_ciphertext_free(in[i]);
    for (size_t i = 0; i < n_out; i++) ckks_ciphertext_free(out[i]);
    ckks_eval_keys_free(keys);
    ckks_boot_keys_free(boot_keys);
    ckks_secret_key_free(sk);
    hecnn_plan_free(plan);
    ckks_bootstrapper_free(bt);
    ckks_context_free(ctx);
}

/* A batch of one group: a stride-2 merge finds one group, so its stage multiplexes four channels per
 * ciphertext (lanes) where the layout before repeated the images four times; a second merge makes
 * 16 lanes. Encrypted against the plaintext simulation; the lanes bootstrap fewer ciphertexts and
 * give the same classes as the repeated images. */
static void test_lanes(void)
{
    enum { N_IMG = 8 };
    const size_t per = 3 * SIDE * SIDE;
    double images[N_IMG * 3 * SIDE * SIDE], got[2][N_IMG * 3];
    test_rng_seed(9);
    hecnn_graph *g = small_resnet();
    REQUIRE_VOID(g);
    test_random_fill(images, N_IMG * per, 1.5);
    test_calibrate(g, images, N_IMG);
    /* stage 0: 4 ciphertexts, two ReLUs bootstrapped (the first is deep); stage 1 (node 8, the
     * stride-2 layer): 8 channels in 2 ciphertexts (4 lanes) or 8 (repeated images), two ReLUs */
    const lane_case lanes = {8, 2, 2 * 2 + 2 * 1, 1}, repeated = {8, 8, 2 * 2 + 2 * 4, 3};
    run_one_group(g, images, N_IMG, false, &lanes, got[0]);
    run_one_group(g, images, N_IMG, true, &repeated, got[1]);
    for (size_t n = 0; n < N_IMG; n++) {
        size_t a = 0, b = 0;
        for (size_t k = 1; k < 3; k++) {
            if (got[0][n * 3 + k] > got[0][n * 3 + a]) a = k;
            if (got[1][n * 3 + k] > got[1][n * 3 + b]) b = k;
        }
        CHECK_MSG(a == b, "image %zu: class %zu with lanes, %zu with repeated images", n, a, b);
    }
    hecnn_graph_free(g);

    /* 4 lanes, then 16: the second stage's 16 channels in one ciphertext (node 5), one pair per
     * ReLU after the deep first one */
    g = three_stage_net();
    REQUIRE_VOID(g);
    test_random_fill(images, N_IMG * per, 1.5);
    test_calibrate(g, images, N_IMG);
    const lane_case deep = {5, 1, 2, 1};
    run_one_group(g, images, N_IMG, false, &deep, got[0]);
    hecnn_graph_free(g);
}

/* Graphs the packing cannot lay out are refused when planned, with a reason. */
static void test_refusals(void)
{
    ckks_context *ctx = NULL;
    ckks_bootstrapper *bt = NULL;
    REQUIRE_VOID(test_boot_context(&ctx, &bt) == 0);
    hecnn_graph *g = NULL;
    hecnn_plan *plan = NULL;
    const hecnn_plan_options opt = {.batch = 4, .grid = SIDE};
    REQUIRE_VOID(hecnn_graph_new(&g, 1, SIDE, SIDE) == HECNN_OK);
    size_t r = test_relu_node(g, test_conv(g, 0, 1, 2, 3, 1));
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
    for (int i = 0; i < 8; i++) c2 = test_conv(g, c2, 2, 2, 3, 1);
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
    test_lanes();
    return check_summary();
}

/* The single-image packing (src/nn/single.c): one ciphertext per image, channels multiplexed in the
 * slots. Each linear layer on its own (convolutions of stride 1 and 2, the 1x1 stride-2 shortcuts of
 * option B and option A, global pooling and the dense layer) against the float64 reference; then a
 * small ResNet-shaped network end to end against its plaintext simulation (HECNN_INFER_APPROX: the
 * same polynomials, so the difference is the CKKS error alone), and the same graph in the batched
 * layout giving the same classes. Insecure test parameters (N = 2^12, the bootstrapping test chain
 * with six residual levels). */
#include <math.h>
#include <string.h>

#include "common/check.h"
#include "common/nn_graphs.h"
#include "hecnn/graph.h"
#include "hecnn/plan.h"

#define SIDE 8
#define BATCH 2

/* A bootstrapper of 2^log_slots slots on the same chain. */
static int make_sparse_bootstrapper(const ckks_context *ctx, ckks_bootstrapper **bt, unsigned log_slots)
{
    ckks_params_literal lit;
    ckks_boot_params bp;
    if (ckks_boot_preset_params(&lit, &bp, CKKS_BOOT_TEST_N12_DEEP)) return -1;
    bp.log_slots = log_slots;
    return ckks_bootstrapper_new(bt, ctx, &bp) ? -1 : 0;
}

/* Encrypt, run, decrypt `n` images through plan; got[n][outputs]. */
static hecnn_status run_plan(const hecnn_plan *plan, const ckks_context *ctx, const ckks_secret_key *sk,
                             const ckks_boot_keys *boot_keys, const double *images, size_t n, double *got,
                             hecnn_run_stats *stats)
{
    ckks_eval_keys *keys = NULL;
    hecnn_status st = hecnn_plan_keys_generate(&keys, plan, sk);
    const size_t n_in = hecnn_plan_input_ciphertexts(plan), n_out = hecnn_plan_output_ciphertexts(plan);
    ckks_ciphertext **in = calloc(n_in, sizeof *in), **out = calloc(n_out, sizeof *out);
    for (size_t i = 0; i < n_in && !st; i++) st = ckks_ciphertext_new(&in[i], ctx);
    for (size_t i = 0; i < n_out && !st; i++) st = ckks_ciphertext_new(&out[i], ctx);
    if (!st) st = hecnn_plan_encrypt(plan, in, images, n, NULL, sk);
    if (!st) st = hecnn_plan_run(plan, keys, boot_keys, in, out, NULL, NULL, NULL, stats);
    if (!st) st = hecnn_plan_decrypt(plan, got, n, out, sk);
    for (size_t i = 0; i < n_in; i++) ckks_ciphertext_free(in[i]);
    for (size_t i = 0; i < n_out; i++) ckks_ciphertext_free(out[i]);
    free(in);
    free(out);
    ckks_eval_keys_free(keys);
    return st;
}

/* -log2 of the largest error relative to the largest value. */
static double precision_bits(const double *got, const double *want, size_t n)
{
    double err = 0, mag = 0;
    for (size_t i = 0; i < n; i++) {
        err = fmax(err, fabs(got[i] - want[i]));
        mag = fmax(mag, fabs(want[i]));
    }
    return err > 0 ? -log2(err / mag) : 60;
}

/* One linear layer (a graph ending at it) against the reference: every output value. */
static void check_layer(const char *what, hecnn_graph *g, const ckks_context *ctx, const ckks_secret_key *sk,
                        size_t want_rotations_max)
{
    const size_t out_id = hecnn_graph_output(g), outs = hecnn_graph_node_size(g, out_id);
    const size_t per = hecnn_graph_node_size(g, 0);
    double *images = malloc(per * sizeof *images), *got = malloc(outs * sizeof *got), *want = malloc(outs * sizeof *want);
    test_random_fill(images, per, 1.0);
    hecnn_plan *plan = NULL;
    const hecnn_plan_options opt = {.batch = 1, .layout = HECNN_LAYOUT_SINGLE};
    hecnn_status st = hecnn_plan_new(&plan, g, ctx, NULL, &opt);
    CHECK_MSG(st == HECNN_OK, "%s: %s: %s", what, hecnn_status_name(st), hecnn_last_error_detail());
    if (!st) {
        CHECK(hecnn_plan_layout_of(plan) == HECNN_LAYOUT_SINGLE);
        CHECK(hecnn_plan_images_per_ciphertext(plan) == 1);
        CHECK(hecnn_plan_classes(plan) == outs);
        CHECK_MSG(hecnn_plan_rotations(plan) <= want_rotations_max, "%s: %zu rotations", what, hecnn_plan_rotations(plan));
        hecnn_run_stats stats;
        st = run_plan(plan, ctx, sk, NULL, images, 1, got, &stats);
        CHECK_MSG(st == HECNN_OK, "%s: %s: %s", what, hecnn_status_name(st), hecnn_last_error_detail());
        CHECK(stats.rotations == hecnn_plan_rotations(plan));
        CHECK(hecnn_graph_infer(g, HECNN_INFER_EXACT, images, 1, want, NULL) == HECNN_OK);
        const double bits = precision_bits(got, want, outs);
        CHECK_MSG(!st && bits > 20, "%s: %.1f bits", what, bits);
        fprintf(stderr, "single: %s: %zu values, %.1f bits, %zu rotations\n", what, outs, bits, hecnn_plan_rotations(plan));
    }
    hecnn_plan_free(plan);
    free(images);
    free(got);
    free(want);
}

static void test_layers(void)
{
    test_rng_seed(3);
    ckks_context *ctx = NULL;
    REQUIRE_VOID(test_boot_context(&ctx, NULL) == 0);
    uint8_t seed[CKKS_SEED_BYTES] = {3};
    ckks_secret_key *sk = NULL;
    REQUIRE_VOID(ckks_secret_key_generate_derand(&sk, ctx, seed) == HECNN_OK);
    hecnn_graph *g = NULL;
    /* stride 1, 3 -> 5 channels (blocks padded to 4 then 8): 9 tap rotations and the channel moves */
    REQUIRE_VOID(hecnn_graph_new(&g, 3, SIDE, SIDE) == HECNN_OK);
    test_conv(g, 0, 3, 5, 3, 1);
    check_layer("conv 3x3 stride 1, 3 -> 5", g, ctx, sk, 40);
    hecnn_graph_free(g);
    /* stride 2, 4 -> 8: gap 1 -> 2, four channels a block */
    REQUIRE_VOID(hecnn_graph_new(&g, 4, SIDE, SIDE) == HECNN_OK);
    test_conv(g, 0, 4, 8, 3, 2);
    check_layer("conv 3x3 stride 2, 4 -> 8", g, ctx, sk, 60);
    hecnn_graph_free(g);
    /* 5x5 stride 1 with 16 channels */
    REQUIRE_VOID(hecnn_graph_new(&g, 16, SIDE, SIDE) == HECNN_OK);
    test_conv(g, 0, 16, 6, 5, 1);
    check_layer("conv 5x5 stride 1, 16 -> 6", g, ctx, sk, 200);
    hecnn_graph_free(g);
    /* the option-B shortcut: 1x1 stride 2 */
    REQUIRE_VOID(hecnn_graph_new(&g, 4, SIDE, SIDE) == HECNN_OK);
    test_conv(g, 0, 4, 8, 1, 2);
    check_layer("shortcut B: 1x1 stride 2, 4 -> 8", g, ctx, sk, 20);
    hecnn_graph_free(g);
    /* the option-A shortcut: out[o] = in[o - 2] on the even lattice, zero channels around */
    {
        double w[8 * 4] = {0};
        for (size_t o = 2; o < 6; o++) w[o * 4 + (o - 2)] = 1;
        REQUIRE_VOID(hecnn_graph_new(&g, 4, SIDE, SIDE) == HECNN_OK);
        CHECK(hecnn_graph_conv2d(g, NULL, 0, 8, 1, 2, 0, w, NULL) == HECNN_OK);
        check_layer("shortcut A: 1x1 stride 2 zero-pad, 4 -> 8", g, ctx, sk, 10);
        hecnn_graph_free(g);
    }
    /* global average pooling at gap 1, then the dense layer */
    REQUIRE_VOID(hecnn_graph_new(&g, 6, SIDE, SIDE) == HECNN_OK);
    {
        size_t p = 0;
        CHECK(hecnn_graph_avgpool(g, &p, 0, SIDE) == HECNN_OK);
        check_layer("global average pool, 6 x 8 x 8", g, ctx, sk, 6);
        double w[10 * 6], b[10];
        test_random_fill(w, 60, 0.5);
        test_random_fill(b, 10, 0.1);
        CHECK(hecnn_graph_dense(g, NULL, p, 10, w, b) == HECNN_OK);
        check_layer("pool and dense 6 -> 10", g, ctx, sk, 40);
    }
    hecnn_graph_free(g);
    /* CIFAR-sized maps in 2048 slots: 4 channels of 32 x 32 span two ciphertexts an image */
    REQUIRE_VOID(hecnn_graph_new(&g, 3, 32, 32) == HECNN_OK);
    test_conv(g, 0, 3, 4, 3, 1);
    check_layer("conv 3x3 stride 1 on 32x32, 3 -> 4: two ciphertexts", g, ctx, sk, 60);
    hecnn_graph_free(g);
    REQUIRE_VOID(hecnn_graph_new(&g, 4, 32, 32) == HECNN_OK);
    test_conv(g, 0, 4, 8, 3, 2);
    check_layer("conv 3x3 stride 2 on 32x32, 4 -> 8: two ciphertexts into one", g, ctx, sk, 120);
    hecnn_graph_free(g);
    REQUIRE_VOID(hecnn_graph_new(&g, 4, 32, 32) == HECNN_OK);
    {
        size_t p = 0;
        CHECK(hecnn_graph_avgpool(g, &p, 0, 32) == HECNN_OK);
        double w[10 * 4], b[10];
        test_random_fill(w, 40, 0.5);
        test_random_fill(b, 10, 0.1);
        CHECK(hecnn_graph_dense(g, NULL, p, 10, w, b) == HECNN_OK);
        check_layer("pool and dense on two ciphertexts, 4 x 32 x 32 -> 10", g, ctx, sk, 60);
    }
    hecnn_graph_free(g);
    ckks_secret_key_free(sk);
    ckks_context_free(ctx);
}

/* input 3x8x8 -> conv 4 -> relu -> [conv relu conv + id] relu -> [conv/2 relu conv + 1x1/2] relu ->
 * [conv/2 relu conv + subsampling identity] relu -> pool -> dense 3: gaps 1, 2 and 4 (eight channels
 * in a block of sixteen positions); eight channels at most, to keep the batched run short */
static hecnn_graph *small_resnet(void)
{
    hecnn_graph *g = NULL;
    if (hecnn_graph_new(&g, 3, SIDE, SIDE)) return NULL;
    size_t x = test_relu_node(g, test_conv(g, 0, 3, 4, 3, 1));
    size_t y = test_relu_node(g, test_conv(g, x, 4, 4, 3, 1));
    x = test_relu_node(g, test_add(g, test_conv(g, y, 4, 4, 3, 1), x));
    y = test_relu_node(g, test_conv(g, x, 4, 8, 3, 2));
    x = test_relu_node(g, test_add(g, test_conv(g, y, 8, 8, 3, 1), test_conv(g, x, 4, 8, 1, 2)));
    y = test_relu_node(g, test_conv(g, x, 8, 8, 3, 2));
    double wa[8 * 8] = {0};
    for (size_t o = 0; o < 8; o++) wa[o * 8 + o] = 1;
    size_t a = 0;
    CHECK(hecnn_graph_conv2d(g, &a, x, 8, 1, 2, 0, wa, NULL) == HECNN_OK);
    x = test_relu_node(g, test_add(g, test_conv(g, y, 8, 8, 3, 1), a));
    size_t p = 0, d = 0;
    CHECK(hecnn_graph_avgpool(g, &p, x, SIDE / 4) == HECNN_OK);
    double w[3 * 8], b[3];
    test_random_fill(w, 24, 0.5);
    test_random_fill(b, 3, 0.1);
    CHECK(hecnn_graph_dense(g, &d, p, 3, w, b) == HECNN_OK);
    return g;
}

static size_t argmax(const double *v, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

static void test_end_to_end(void)
{
    test_rng_seed(9);
    hecnn_graph *g = small_resnet();
    REQUIRE_VOID(g);
    const size_t per = 3 * SIDE * SIDE, relus = 7;
    double images[BATCH * 3 * SIDE * SIDE];
    test_random_fill(images, BATCH * per, 1.5);
    test_calibrate(g, images, BATCH);

    ckks_context *ctx = NULL;
    ckks_bootstrapper *bt = NULL;
    REQUIRE_VOID(test_boot_context(&ctx, &bt) == 0);
    /* AUTO: single for one image, batched for more */
    hecnn_plan *plan = NULL;
    const hecnn_plan_options one = {.batch = 1}, two = {.batch = BATCH, .grid = SIDE};
    /* the bootstrapper's slots: the single layout's largest tensor (4 channels of 8 x 8 at gap 1 fill
     * four blocks of 64), the batched layout every slot */
    const hecnn_plan_options single_two = {.batch = BATCH, .layout = HECNN_LAYOUT_SINGLE};
    CHECK(hecnn_plan_boot_slots(g, &one, 2048) == 4 * SIDE * SIDE);
    CHECK(hecnn_plan_boot_slots(g, &single_two, 2048) == 4 * SIDE * SIDE);
    CHECK(hecnn_plan_boot_slots(g, &one, 128) == 128);
    CHECK(hecnn_plan_boot_slots(g, &two, 2048) == 2048);
    {   /* a graph the single packing cannot lay out (a 12 x 12 input) keeps every slot, so that AUTO's
         * fallback to the batched layout gets the bootstrapper it needs */
        hecnn_graph *g12 = NULL;
        REQUIRE_VOID(hecnn_graph_new(&g12, 3, 12, 12) == HECNN_OK);
        test_conv(g12, 0, 3, 4, 3, 1);
        CHECK(hecnn_plan_boot_slots(g12, &one, 2048) == 2048);
        hecnn_graph_free(g12);
    }
    REQUIRE_VOID(hecnn_plan_new(&plan, g, ctx, bt, &one) == HECNN_OK);
    CHECK(hecnn_plan_layout_of(plan) == HECNN_LAYOUT_SINGLE);
    /* a deep input (encrypted as high as a bootstrap's output, plus the first convolution's level)
     * spares the first ReLU's bootstrap */
    CHECK_MSG(hecnn_plan_bootstraps(plan) == relus - 1, "%zu bootstraps", hecnn_plan_bootstraps(plan));
    CHECK(hecnn_plan_input_level(plan) == ckks_bootstrapper_output_level(bt) + 1);
    hecnn_plan_free(plan);
    REQUIRE_VOID(hecnn_plan_new(&plan, g, ctx, bt, &two) == HECNN_OK);
    CHECK(hecnn_plan_layout_of(plan) == HECNN_LAYOUT_BATCHED);
    hecnn_plan_free(plan);

    const hecnn_plan_options opt = {.batch = BATCH, .layout = HECNN_LAYOUT_SINGLE};
    hecnn_status st = hecnn_plan_new(&plan, g, ctx, bt, &opt);
    REQUIRE_VOID(st == HECNN_OK);
    CHECK(hecnn_plan_input_ciphertexts(plan) == BATCH && hecnn_plan_output_ciphertexts(plan) == BATCH);
    CHECK(hecnn_plan_classes(plan) == 3);
    /* two images: each ReLU but the deep input's first bootstraps both in one paired bootstrap */
    CHECK_MSG(hecnn_plan_bootstraps(plan) == relus - 1, "%zu bootstraps", hecnn_plan_bootstraps(plan));
    /* node info: the first ReLU (node 2) at gap 1 with no bootstrap, the stride-2 convolutions at gaps 2 and 4 */
    hecnn_plan_node info;
    CHECK(hecnn_plan_node_info(plan, 2, &info) == HECNN_OK && info.bootstraps == 0 && info.gap == 1 && info.ciphertexts == BATCH);
    CHECK(hecnn_plan_node_info(plan, 4, &info) == HECNN_OK && info.bootstraps == 1);
    CHECK(hecnn_plan_node_info(plan, 8, &info) == HECNN_OK && info.gap == 2 && info.rotations > 0);
    size_t rot_sum = 0, boot_sum = 0;
    for (size_t id = 0; id < hecnn_graph_node_count(g); id++) {
        CHECK(hecnn_plan_node_info(plan, id, &info) == HECNN_OK);
        rot_sum += info.rotations;
        boot_sum += info.bootstraps;
    }
    CHECK(rot_sum == hecnn_plan_rotations(plan) && boot_sum == hecnn_plan_bootstraps(plan));
    CHECK(hecnn_plan_node_info(plan, hecnn_graph_output(g), &info) == HECNN_OK && info.gap == 4);

    uint8_t seed[CKKS_SEED_BYTES] = {9};
    ckks_secret_key *sk = NULL;
    ckks_boot_keys *boot_keys = NULL;
    REQUIRE_VOID(ckks_secret_key_generate_derand(&sk, ctx, seed) == HECNN_OK);
    REQUIRE_VOID(ckks_boot_keys_generate(&boot_keys, bt, sk) == HECNN_OK);

    double got[BATCH * 3], want[BATCH * 3], exact[BATCH * 3], bat[BATCH * 3];
    hecnn_run_stats stats;
    st = run_plan(plan, ctx, sk, boot_keys, images, BATCH, got, &stats);
    CHECK_MSG(st == HECNN_OK, "%s: %s", hecnn_status_name(st), hecnn_last_error_detail());
    CHECK(stats.bootstraps == hecnn_plan_bootstraps(plan));
    CHECK(stats.rotations == hecnn_plan_rotations(plan));
    CHECK(hecnn_graph_infer(g, HECNN_INFER_APPROX, images, BATCH, want, NULL) == HECNN_OK);
    CHECK(hecnn_graph_infer(g, HECNN_INFER_EXACT, images, BATCH, exact, NULL) == HECNN_OK);
    const double bits = precision_bits(got, want, BATCH * 3);
    CHECK_MSG(bits > 14, "single: %.1f bits against the simulation", bits);
    fprintf(stderr, "single: small ResNet, %d images: %.1f bits against the simulation, %zu bootstraps, %zu rotations "
            "(linear %.1f s, activations %.1f s, bootstraps %.1f s)\n", BATCH, bits, stats.bootstraps, stats.rotations,
            stats.seconds_linear, stats.seconds_activation, stats.seconds_bootstrap);
    hecnn_plan_free(plan);

    /* the batched layout: the same classes */
    REQUIRE_VOID(hecnn_plan_new(&plan, g, ctx, bt, &two) == HECNN_OK);
    st = run_plan(plan, ctx, sk, boot_keys, images, BATCH, bat, NULL);
    CHECK_MSG(st == HECNN_OK, "%s: %s", hecnn_status_name(st), hecnn_last_error_detail());
    for (size_t i = 0; i < BATCH; i++) {
        CHECK(argmax(got + 3 * i, 3) == argmax(bat + 3 * i, 3));
        CHECK(argmax(got + 3 * i, 3) == argmax(want + 3 * i, 3));
    }
    fprintf(stderr, "single: batched layout agrees to %.1f bits\n", precision_bits(bat, got, BATCH * 3));
    hecnn_plan_free(plan);

    /* one image at the fewest slots: 128 (a 3 x 8 x 8 input and the 4 x 8 x 8 stage span two
     * ciphertexts, which each ReLU of the stage bootstraps together; the later stages fit one) */
    ckks_bootstrapper *bt7 = NULL;
    ckks_boot_keys *boot7 = NULL;
    REQUIRE_VOID(make_sparse_bootstrapper(ctx, &bt7, 7) == 0);
    REQUIRE_VOID(ckks_boot_keys_generate(&boot7, bt7, sk) == HECNN_OK);
    st = hecnn_plan_new(&plan, g, ctx, bt7, &one);
    CHECK_MSG(st == HECNN_OK, "%s: %s", hecnn_status_name(st), hecnn_last_error_detail());
    if (!st) {
        CHECK(hecnn_plan_layout_of(plan) == HECNN_LAYOUT_SINGLE && hecnn_plan_input_ciphertexts(plan) == 2);
        CHECK(hecnn_plan_node_info(plan, 2, &info) == HECNN_OK && info.ciphertexts == 2 && info.bootstraps == 0);
        CHECK_MSG(hecnn_plan_bootstraps(plan) == relus - 1, "%zu bootstraps", hecnn_plan_bootstraps(plan));
        double one_img[3];
        st = run_plan(plan, ctx, sk, boot7, images, 1, one_img, &stats);
        CHECK_MSG(st == HECNN_OK, "%s: %s", hecnn_status_name(st), hecnn_last_error_detail());
        const double bits1 = precision_bits(one_img, want, 3);
        CHECK_MSG(bits1 > 14, "single at 128 slots: %.1f bits against the simulation", bits1);
        CHECK(argmax(one_img, 3) == argmax(want, 3));
        fprintf(stderr, "single: one image at 128 slots: %.1f bits against the simulation, %zu bootstraps, %zu rotations\n",
                bits1, stats.bootstraps, stats.rotations);
        hecnn_plan_free(plan);
    }
    ckks_boot_keys_free(boot7);
    ckks_bootstrapper_free(bt7);

    ckks_boot_keys_free(boot_keys);
    ckks_secret_key_free(sk);
    ckks_bootstrapper_free(bt);
    ckks_context_free(ctx);
    hecnn_graph_free(g);
}

/* Graphs the single packing cannot lay out are refused with a reason. */
static void test_refusals(void)
{
    ckks_context *ctx = NULL;
    REQUIRE_VOID(test_boot_context(&ctx, NULL) == 0);
    hecnn_graph *g = NULL;
    hecnn_plan *plan = NULL;
    const hecnn_plan_options opt = {.batch = 1, .layout = HECNN_LAYOUT_SINGLE};
    /* 256 channels of 32 x 32 would need 128 ciphertexts of 2048 slots an image */
    REQUIRE_VOID(hecnn_graph_new(&g, 1, 32, 32) == HECNN_OK);
    {
        static double w[256 * 9];
        CHECK(hecnn_graph_conv2d(g, NULL, 0, 256, 3, 1, 1, w, NULL) == HECNN_OK);
    }
    CHECK(hecnn_plan_new(&plan, g, ctx, NULL, &opt) == HECNN_ERR_UNSUPPORTED);
    CHECK(strstr(hecnn_last_error_detail(), "slots") != NULL);
    hecnn_graph_free(g);
    /* a non-power-of-two input */
    REQUIRE_VOID(hecnn_graph_new(&g, 1, 6, 6) == HECNN_OK);
    test_conv(g, 0, 1, 2, 3, 1);
    CHECK(hecnn_plan_new(&plan, g, ctx, NULL, &opt) == HECNN_ERR_UNSUPPORTED);
    hecnn_graph_free(g);
    /* two linear layers in a row from the input's single level */
    REQUIRE_VOID(hecnn_graph_new(&g, 1, SIDE, SIDE) == HECNN_OK);
    test_conv(g, test_conv(g, 0, 1, 2, 3, 1), 2, 2, 3, 1);
    CHECK(hecnn_plan_new(&plan, g, ctx, NULL, &opt) == HECNN_ERR_LEVEL_MISMATCH);
    CHECK(plan == NULL);
    hecnn_graph_free(g);
    ckks_context_free(ctx);
}

int main(void)
{
    test_refusals();
    test_layers();
    test_end_to_end();
    return check_summary();
}

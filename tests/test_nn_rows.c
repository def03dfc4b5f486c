/* The MNIST network through the plan (graph -> rows packing -> plan -> run) against the fused path
 * of hecnn_mnist_* (the reference): the graph's float inference equals hecnn_mnist_infer_plain, and
 * the encrypted scores are bit-identical (ciphertext bytes and decrypted doubles) for plain and
 * encrypted weights, one batch or several. N = 2^11 (insecure parameters, tests only). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "hecnn/hecnn.h"
#include "hecnn/plan.h"

static void random_model(hecnn_mnist_model *m)
{
    memset(m, 0, sizeof *m);
    for (int q = 0; q < 4; q++) {
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++) m->conv_w[q][a][b] = test_rng_uniform(-0.6, 0.6);
        m->conv_b[q] = test_rng_uniform(-0.2, 0.2);
    }
    const double act1[4] = {0.05, 0.5, 0.2, -0.02}, act2[4] = {-0.03, 0.6, 0.1, -0.01};
    memcpy(m->act1, act1, sizeof act1);
    memcpy(m->act2, act2, sizeof act2);
    for (int j = 0; j < 64; j++) {
        for (int t = 0; t < 2704; t++) m->fc1_w[j][t] = test_rng_uniform(-0.05, 0.05);
        m->fc1_b[j] = test_rng_uniform(-0.1, 0.1);
    }
    for (int k = 0; k < 10; k++) {
        for (int j = 0; j < 64; j++) m->fc2_w[k][j] = test_rng_uniform(-0.3, 0.3);
        m->fc2_b[k] = test_rng_uniform(-0.1, 0.1);
    }
}

static void random_images(double *px, size_t n)
{
    for (size_t i = 0; i < n * 784; i++) px[i] = test_rng_uniform(0, 1) < 0.8 ? 0 : test_rng_uniform(0, 1);
}

/* The ciphertext's file bytes (malloc'ed, *len). */
static unsigned char *ct_bytes(const ckks_ciphertext *ct, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f) abort();
    CHECK(ckks_ciphertext_save(ct, f) == HECNN_OK);
    fclose(f);
    return (unsigned char *)buf;
}

static bool same_ct(const ckks_ciphertext *a, const ckks_ciphertext *b)
{
    size_t la = 0, lb = 0;
    unsigned char *x = ct_bytes(a, &la), *y = ct_bytes(b, &lb);
    const bool same = la == lb && !memcmp(x, y, la);
    free(x);
    free(y);
    return same;
}

/* 1. The graph: its float inference computes hecnn_mnist_infer_plain. */
static void test_graph(const hecnn_mnist_model *model)
{
    hecnn_graph *g = NULL;
    REQUIRE_VOID(hecnn_mnist_to_graph(&g, model) == HECNN_OK);
    CHECK(hecnn_graph_node_count(g) == 6);
    const hecnn_op ops[6] = {HECNN_OP_INPUT, HECNN_OP_CONV2D, HECNN_OP_POLY, HECNN_OP_DENSE, HECNN_OP_POLY, HECNN_OP_DENSE};
    for (size_t i = 0; i < 6; i++) CHECK(hecnn_graph_node(g, i)->op == ops[i]);
    const hecnn_node *cv = hecnn_graph_node(g, 1);
    CHECK(cv->c == 4 && cv->h == 26 && cv->w == 26 && cv->k == 3 && cv->stride == 1 && cv->pad == 0);
    CHECK(hecnn_graph_node_size(g, 2) == 2704 && hecnn_graph_node(g, 5)->c == 10);
    enum { n = 24 };
    double *px = malloc(n * 784 * sizeof *px), want[n * 10], have[n * 10];
    random_images(px, n);
    hecnn_mnist_infer_plain(model, px, n, want);
    CHECK(hecnn_graph_infer(g, HECNN_INFER_EXACT, px, n, have, NULL) == HECNN_OK);
    double err = 0, mag = 0;
    for (size_t i = 0; i < n * 10; i++) {
        err = fmax(err, fabs(have[i] - want[i]));
        mag = fmax(mag, fabs(want[i]));
    }
    printf("graph inference vs hecnn_mnist_infer_plain: largest difference %.3g (largest logit %.3g)\n", err, mag);
    CHECK_MSG(err <= 1e-12 * fmax(1, mag), "graph inference differs by %g", err);
    free(px);
    hecnn_graph_free(g);
}

typedef struct fixture {
    ckks_context *ctx;
    ckks_secret_key *sk;
    ckks_public_key *pk;
    hecnn_graph *g;
} fixture;

static int fixture_init(fixture *f, const hecnn_mnist_model *model)
{
    ckks_params_literal p;
    hecnn_mnist_params(&p);
    p.log_n = 11; /* the real network at a toy ring size */
    p.allow_insecure = true;
    uint8_t seed[CKKS_SEED_BYTES] = {5};
    memset(f, 0, sizeof *f);
    if (ckks_context_new(&f->ctx, &p)) return -1;
    if (ckks_secret_key_generate_derand(&f->sk, f->ctx, seed)) return -1;
    if (ckks_public_key_generate(&f->pk, f->sk)) return -1;
    return hecnn_mnist_to_graph(&f->g, model) ? -1 : 0;
}

/* 2. Graphs other than the MNIST network, and weights where they do not belong, are refused. */
static void test_refusals(fixture *f, const hecnn_mnist_model *model)
{
    hecnn_graph *g = NULL;
    REQUIRE_VOID(hecnn_graph_new(&g, 1, 28, 28) == HECNN_OK);
    CHECK(hecnn_graph_conv2d(g, NULL, 0, 4, 3, 1, 1, &model->conv_w[0][0][0], model->conv_b) == HECNN_OK); /* padded */
    CHECK(hecnn_graph_poly(g, NULL, 1, model->act1, 3) == HECNN_OK);
    CHECK(hecnn_graph_dense(g, NULL, 2, 10, &model->fc1_w[0][0], NULL) == HECNN_OK);
    hecnn_plan *p = NULL;
    const hecnn_plan_options rows = {.batch = 32, .layout = HECNN_LAYOUT_ROWS};
    CHECK(hecnn_plan_new(&p, g, f->ctx, NULL, &rows) == HECNN_ERR_UNSUPPORTED && !p);
    CHECK(strstr(hecnn_last_error_detail(), "rows packing") != NULL);
    hecnn_graph_free(g);
    /* the MNIST network with padding 1 has the right node count but not the right convolution */
    REQUIRE_VOID(hecnn_graph_new(&g, 1, 28, 28) == HECNN_OK);
    double *big = calloc(64 * 4 * 28 * 28, sizeof *big); /* dense 3136 -> 64 */
    CHECK(hecnn_graph_conv2d(g, NULL, 0, 4, 3, 1, 1, &model->conv_w[0][0][0], model->conv_b) == HECNN_OK);
    CHECK(hecnn_graph_poly(g, NULL, 1, model->act1, 3) == HECNN_OK);
    CHECK(hecnn_graph_dense(g, NULL, 2, 64, big, NULL) == HECNN_OK);
    CHECK(hecnn_graph_poly(g, NULL, 3, model->act2, 3) == HECNN_OK);
    CHECK(hecnn_graph_dense(g, NULL, 4, 10, &model->fc2_w[0][0], NULL) == HECNN_OK);
    CHECK(hecnn_plan_new(&p, g, f->ctx, NULL, &rows) == HECNN_ERR_UNSUPPORTED && !p);
    CHECK(strstr(hecnn_last_error_detail(), "node 1") != NULL);
    hecnn_graph_free(g);
    free(big);
    /* a plan for plain weights takes no encrypted ones */
    REQUIRE_VOID(hecnn_plan_new(&p, f->g, f->ctx, NULL, &rows) == HECNN_OK);
    CHECK(hecnn_plan_layout_of(p) == HECNN_LAYOUT_ROWS && !strcmp(hecnn_plan_layout_name(HECNN_LAYOUT_ROWS), "rows"));
    hecnn_plan_weights *w = NULL;
    CHECK(hecnn_plan_weights_encrypt(&w, p, f->pk) == HECNN_ERR_INVALID_ARGUMENT && !w);
    CHECK(hecnn_plan_weights_plain(&w, p) == HECNN_OK && w && !hecnn_plan_weights_encrypted(w));
    FILE *tf = tmpfile();
    CHECK(hecnn_plan_weights_save(w, tf) == HECNN_ERR_INVALID_ARGUMENT); /* only encrypted weights are saved */
    fclose(tf);
    hecnn_plan_weights_free(w);
    hecnn_plan_free(p);
}

typedef struct io {
    ckks_ciphertext *const *blocks;
    size_t n_in, reads, writes;
    ckks_ciphertext **got; /* one output per batch */
} io;

static hecnn_status io_read(void *user, size_t batch, ckks_ciphertext *const *cts)
{
    io *s = user;
    (void)batch;
    s->reads++;
    hecnn_status st = HECNN_OK;
    for (size_t i = 0; !st && i < s->n_in; i++) st = ckks_ciphertext_copy(cts[i], s->blocks[i]);
    return st;
}

static hecnn_status io_write(void *user, size_t batch, ckks_ciphertext *const *cts)
{
    io *s = user;
    s->writes++;
    return ckks_ciphertext_copy(s->got[batch], cts[0]);
}

typedef struct prog {
    double last;
    size_t calls;
    bool monotone;
    volatile int *cancel; /* set at the first report */
} prog;

static void on_progress(void *user, const char *stage, double done)
{
    prog *p = user;
    (void)stage;
    if (p->cancel) *p->cancel = 1;
    if (done + 1e-12 < p->last || done > 1 + 1e-12) p->monotone = false;
    p->last = done;
    p->calls++;
}

/* 3. One mode: the fused path (reference) and the plan path on the same input ciphertexts and keys. */
static void run_mode(fixture *f, const hecnn_mnist_model *model, bool encrypted, size_t batch, size_t n_img)
{
    const hecnn_mnist_mode mode = encrypted ? HECNN_MNIST_ENCRYPTED_MODEL : HECNN_MNIST_PLAIN_MODEL;
    const size_t width = hecnn_mnist_width_for_batch(ckks_context_max_slots(f->ctx), batch);
    hecnn_mnist_net *net = NULL;
    REQUIRE_VOID(hecnn_mnist_net_new(&net, f->ctx, width, mode) == HECNN_OK);
    hecnn_plan *plan = NULL;
    const hecnn_plan_options opt = {.batch = batch, .layout = HECNN_LAYOUT_ROWS, .encrypted_weights = encrypted};
    hecnn_status st = hecnn_plan_new(&plan, f->g, f->ctx, NULL, &opt);
    CHECK_MSG(st == HECNN_OK, "plan: %s %s", hecnn_status_name(st), hecnn_last_error_detail());
    if (st) {
        hecnn_mnist_net_free(net);
        return;
    }
    const size_t m = hecnn_mnist_net_layout(net)->rows, nb = hecnn_mnist_net_input_blocks(net);
    CHECK(hecnn_plan_batch(plan) == m && hecnn_plan_images_per_ciphertext(plan) == m);
    CHECK(hecnn_plan_input_ciphertexts(plan) == nb && hecnn_plan_output_ciphertexts(plan) == 1);
    CHECK(hecnn_plan_classes(plan) == 10 && hecnn_plan_bootstraps(plan) == 0 && hecnn_plan_rotations(plan) > 0);
    hecnn_plan_node last;
    CHECK(hecnn_plan_node_info(plan, 5, &last) == HECNN_OK && last.level == 0 && last.ciphertexts == 1);

    /* the plan's key list is exactly hecnn_mnist_eval_keys_generate's */
    ckks_eval_keys *keys = NULL;
    REQUIRE_VOID(hecnn_mnist_eval_keys_generate(&keys, net, f->sk) == HECNN_OK);
    ckks_key_need need[256];
    const size_t n_need = hecnn_plan_key_needs(plan, need, 256);
    CHECK(n_need == ckks_eval_keys_count(keys));
    for (size_t i = 0; i < n_need && i < 256; i++) {
        const ckks_switching_key *k = need[i].galois ? ckks_eval_keys_galois(keys, need[i].galois) : ckks_eval_keys_relin(keys);
        CHECK_MSG(k && ckks_switching_key_max_level(k) == need[i].max_level, "key %zu (galois %llu)", i,
                  (unsigned long long)need[i].galois);
    }
    CHECK(hecnn_plan_check_keys(plan, keys) == HECNN_OK);
    ckks_eval_keys *plan_keys = NULL;
    CHECK(hecnn_plan_keys_generate(&plan_keys, plan, f->sk) == HECNN_OK && ckks_eval_keys_count(plan_keys) == n_need);
    ckks_eval_keys_free(plan_keys);
    ckks_evaluator *ev = NULL;
    REQUIRE_VOID(ckks_evaluator_new(&ev, f->ctx, keys) == HECNN_OK);

    /* weights: the reference's, and the plan's (encrypted ones through the file: the same bytes
     * load through both) */
    hecnn_mnist_prepared *prep = NULL;
    hecnn_plan_weights *w = NULL;
    if (!encrypted) {
        CHECK(hecnn_mnist_prepare_plain(&prep, net, model) == HECNN_OK);
        CHECK(hecnn_plan_weights_plain(&w, plan) == HECNN_OK);
    } else {
        hecnn_plan_weights *enc = NULL;
        CHECK(hecnn_plan_weights_encrypt(&enc, plan, f->pk) == HECNN_OK && hecnn_plan_weights_encrypted(enc));
        FILE *tf = tmpfile();
        CHECK(hecnn_plan_weights_save(enc, tf) == HECNN_OK);
        CHECK(hecnn_plan_weights_ciphertexts(enc) > 0);
        rewind(tf);
        CHECK(hecnn_plan_weights_load(&w, plan, tf) == HECNN_OK);
        CHECK(hecnn_plan_weights_ciphertexts(w) == hecnn_plan_weights_ciphertexts(enc));
        rewind(tf);
        CHECK(hecnn_mnist_prepared_load(&prep, net, tf) == HECNN_OK);
        fclose(tf);
        hecnn_plan_weights_free(enc);
    }
    REQUIRE_VOID(prep && w);

    double *px = malloc(n_img * 784 * sizeof *px);
    random_images(px, n_img);
    ckks_ciphertext **blocks = calloc(nb, sizeof *blocks), *ref = NULL, *out = NULL;
    for (size_t i = 0; i < nb; i++) ckks_ciphertext_new(&blocks[i], f->ctx);
    ckks_ciphertext_new(&ref, f->ctx);
    ckks_ciphertext_new(&out, f->ctx);
    CHECK(hecnn_plan_encrypt(plan, blocks, px, n_img, NULL, f->sk) == HECNN_OK);

    /* one batch: fused reference, plan with these weights (and plain: with NULL weights) */
    st = hecnn_mnist_infer(net, prep, ev, ref, blocks, NULL, NULL);
    CHECK_MSG(st == HECNN_OK, "reference: %s %s", hecnn_status_name(st), hecnn_last_error_detail());
    prog pr = {.monotone = true};
    hecnn_run_stats stats;
    st = hecnn_plan_run_with(plan, w, keys, NULL, blocks, &out, on_progress, &pr, NULL, &stats);
    CHECK_MSG(st == HECNN_OK, "plan run: %s %s", hecnn_status_name(st), hecnn_last_error_detail());
    CHECK(pr.calls > 0 && pr.monotone && fabs(pr.last - 1) < 1e-12);
    CHECK(stats.rotations > 0 && stats.seconds_linear > 0);
    CHECK_MSG(same_ct(ref, out), "%s weights: the plan's result ciphertext differs from the fused path's",
              encrypted ? "encrypted" : "plain");
    double *a = calloc(m * 10, sizeof *a), *b = calloc(m * 10, sizeof *b), *want = malloc(n_img * 10 * sizeof *want);
    CHECK(hecnn_mnist_decrypt_scores(net, a, n_img, ref, f->sk) == HECNN_OK);
    CHECK(hecnn_plan_decrypt(plan, b, n_img, &out, f->sk) == HECNN_OK);
    CHECK_MSG(!memcmp(a, b, n_img * 10 * sizeof *a), "decrypted scores differ");
    hecnn_mnist_infer_plain(model, px, n_img, want);
    double err = 0;
    for (size_t i = 0; i < n_img * 10; i++) err = fmax(err, fabs(b[i] - want[i]));
    printf("%s weights, w = %zu, m = %zu: plan result bit-identical to the fused path; logit error %.3g\n",
           encrypted ? "encrypted" : "plain", width, m, err);
    CHECK(err < 1e-2);
    if (!encrypted) {
        CHECK(hecnn_plan_run(plan, keys, NULL, blocks, &out, NULL, NULL, NULL, NULL) == HECNN_OK);
        CHECK_MSG(same_ct(ref, out), "hecnn_plan_run (the plan's plain weights) differs from the fused path");
    }
    /* flooded decryption through the plan as through the fused path's checks */
    const ckks_flood_options flood = {.flood_bits = 20};
    CHECK(hecnn_plan_decrypt_flooded(plan, b, n_img, &out, f->sk, &flood) == HECNN_OK);

    /* several batches: the library's loop (plain: the plan's weights, encoded once; encrypted: the
     * giant steps rotated once ahead, the same rotations as in the run), each batch's scores
     * bit-identical to the fused path's */
    enum { batches = 2 };
    ckks_ciphertext *got[batches];
    for (int i = 0; i < batches; i++) ckks_ciphertext_new(&got[i], f->ctx);
    io s = {.blocks = blocks, .n_in = nb, .got = got};
    pr = (prog){.monotone = true};
    st = hecnn_plan_run_batches(plan, encrypted ? w : NULL, keys, NULL, batches, io_read, io_write, &s, on_progress, &pr, NULL,
                                &stats);
    CHECK_MSG(st == HECNN_OK, "run_batches: %s %s", hecnn_status_name(st), hecnn_last_error_detail());
    CHECK(s.reads == batches && s.writes == batches && pr.monotone && fabs(pr.last - 1) < 1e-12);
    for (int i = 0; i < batches; i++) CHECK_MSG(same_ct(ref, got[i]), "batch %d of the library's loop differs", i);
    if (!encrypted) { /* cancelled while running: stops at the next report */
        volatile int stop = 0;
        s = (io){.blocks = blocks, .n_in = nb, .got = got};
        pr = (prog){.monotone = true, .cancel = &stop};
        CHECK(hecnn_plan_run_batches(plan, w, keys, NULL, batches, io_read, io_write, &s, on_progress, &pr, &stop, NULL) ==
              HECNN_ERR_CANCELLED);
        CHECK(s.reads == 1 && s.writes == 0);
    }
    /* cancelled, and a missing key named before any work */
    volatile int cancel = 1;
    s = (io){.blocks = blocks, .n_in = nb, .got = got};
    CHECK(hecnn_plan_run_batches(plan, w, keys, NULL, batches, io_read, io_write, &s, NULL, NULL, &cancel, NULL) ==
          HECNN_ERR_CANCELLED);
    CHECK(s.reads == 0);
    CHECK(hecnn_plan_run_with(plan, w, keys, NULL, blocks, &out, NULL, NULL, &cancel, NULL) == HECNN_ERR_CANCELLED);
    ckks_eval_keys *partial = NULL;
    ckks_eval_keys_new(&partial, f->ctx);
    CHECK(hecnn_plan_run_with(plan, w, partial, NULL, blocks, &out, NULL, NULL, NULL, NULL) == HECNN_ERR_MISSING_KEY);
    ckks_eval_keys_free(partial);

    for (int i = 0; i < batches; i++) ckks_ciphertext_free(got[i]);
    for (size_t i = 0; i < nb; i++) ckks_ciphertext_free(blocks[i]);
    free(blocks);
    ckks_ciphertext_free(ref);
    ckks_ciphertext_free(out);
    free(a);
    free(b);
    free(want);
    free(px);
    hecnn_plan_weights_free(w);
    hecnn_mnist_prepared_free(prep);
    ckks_evaluator_free(ev);
    ckks_eval_keys_free(keys);
    hecnn_plan_free(plan);
    hecnn_mnist_net_free(net);
}

int main(void)
{
    test_rng_seed(91);
    hecnn_mnist_model *model = calloc(1, sizeof *model);
    random_model(model);
    test_graph(model);
    fixture f;
    REQUIRE(fixture_init(&f, model) == 0);
    test_refusals(&f, model);
    /* (the plan's code does not depend on the row width: one width per kind of weights keeps the
     * sanitizer build's run short) */
    run_mode(&f, model, false, 16, 12); /* rows of 64 slots: two pixel rows per matrix row */
    run_mode(&f, model, true, 32, 32);  /* rows of 32 slots: one pixel row per matrix row */
    hecnn_graph_free(f.g);
    ckks_public_key_free(f.pk);
    ckks_secret_key_free(f.sk);
    ckks_context_free(f.ctx);
    free(model);
    return check_summary();
}

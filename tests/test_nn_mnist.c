/* The MNIST network on the Volley Revolver encoding against the plaintext reference, in both
 * modes, at N = 2^11 (insecure parameters, tests only; 32 images per batch), with a random model
 * of realistic magnitudes; plus the model file format and its validation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "hecnn/hecnn.h"


static void random_model(hecnn_mnist_model *m)
{
    memset(m, 0, sizeof *m);
    for (int q = 0; q < 4; q++) {
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++) m->conv_w[q][a][b] = test_rng_uniform(-0.6, 0.6);
        m->conv_b[q] = test_rng_uniform(-0.2, 0.2);
    }
    const double act[4] = {0.05, 0.5, 0.2, -0.02};
    memcpy(m->act1, act, sizeof act);
    memcpy(m->act2, act, sizeof act);
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

static void test_model_file(const hecnn_mnist_model *m)
{
    const char *path = "test_nn_mnist_model.hcnn";
    CHECK(hecnn_mnist_model_save(m, path) == HECNN_OK);
    hecnn_mnist_model *back = NULL;
    CHECK(hecnn_mnist_model_load(&back, path) == HECNN_OK);
    CHECK(back && memcmp(back, m, sizeof *m) == 0);
    hecnn_mnist_model_free(back);
    /* read the bytes and damage them */
    FILE *f = fopen(path, "rb");
    REQUIRE_VOID(f);
    fseek(f, 0, SEEK_END);
    const size_t size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(size);
    CHECK(fread(buf, 1, size, f) == size);
    fclose(f);
    hecnn_mnist_model *x = NULL;
    CHECK(hecnn_mnist_model_read(&x, buf, size) == HECNN_OK);
    hecnn_mnist_model_free(x);
    const size_t cuts[] = {0, 10, 63, 64, 1000, size - 33, size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        x = NULL;
        CHECK(hecnn_mnist_model_read(&x, buf, cuts[i]) == HECNN_ERR_BAD_FORMAT);
        CHECK(x == NULL);
    }
    buf[5000] ^= 1; /* a weight bit: checksum */
    CHECK(hecnn_mnist_model_read(&x, buf, size) == HECNN_ERR_BAD_FORMAT);
    CHECK(strstr(hecnn_last_error_detail(), "checksum") != NULL);
    buf[5000] ^= 1;
    buf[0] = 'X';
    CHECK(hecnn_mnist_model_read(&x, buf, size) == HECNN_ERR_BAD_FORMAT);
    buf[0] = 'H';
    buf[28] = 27; /* input width */
    CHECK(hecnn_mnist_model_read(&x, buf, size) == HECNN_ERR_BAD_FORMAT);
    free(buf);
    /* a weight that is not finite, or absurdly large, is named by its part and index */
    hecnn_mnist_model *bad = malloc(sizeof *bad);
    REQUIRE_VOID(bad);
    const double wrong[2] = {NAN, 1e7};
    for (int k = 0; k < 2; k++) {
        memcpy(bad, m, sizeof *m);
        bad->fc1_w[0][5] = wrong[k];
        CHECK(hecnn_mnist_model_save(bad, path) == HECNN_OK);
        x = NULL;
        CHECK(hecnn_mnist_model_load(&x, path) == HECNN_ERR_BAD_FORMAT && x == NULL);
        CHECK_MSG(strstr(hecnn_last_error_detail(), "weight 5 of part 3") != NULL, "%s", hecnn_last_error_detail());
    }
    memcpy(bad, m, sizeof *m);
    bad->fc2_b[9] = -1e6; /* the last weight, at the bound: accepted */
    CHECK(hecnn_mnist_model_save(bad, path) == HECNN_OK);
    CHECK(hecnn_mnist_model_load(&x, path) == HECNN_OK && x && x->fc2_b[9] == -1e6);
    hecnn_mnist_model_free(x);
    free(bad);
    CHECK(hecnn_mnist_model_load(&x, "does/not/exist.hcnn") == HECNN_ERR_IO);
    remove(path);
}

typedef struct fixture {
    ckks_context *ctx;
    ckks_secret_key *sk;
    ckks_public_key *pk;
} fixture;

static int fixture_init(fixture *f)
{
    ckks_params_literal p;
    hecnn_mnist_params(&p);
    p.log_n = 11; /* the real network at a toy ring size */
    p.allow_insecure = true;
    uint8_t seed[CKKS_SEED_BYTES] = {3};
    memset(f, 0, sizeof *f);
    if (ckks_context_new(&f->ctx, &p)) return -1;
    if (ckks_secret_key_generate_derand(&f->sk, f->ctx, seed)) return -1;
    return ckks_public_key_generate(&f->pk, f->sk) ? -1 : 0;
}

/* Loads the encrypted model bytes d[0, len) under net: its status, the model freed. */
static hecnn_status load_prepared(const hecnn_mnist_net *net, const uint8_t *d, size_t len)
{
    FILE *g = len ? fmemopen((void *)d, len, "rb") : fopen("/dev/null", "rb");
    if (!g) abort();
    hecnn_mnist_prepared *p = NULL;
    hecnn_status st = hecnn_mnist_prepared_load(&p, net, g);
    fclose(g);
    CHECK(st ? p == NULL : p != NULL);
    hecnn_mnist_prepared_free(p);
    return st;
}

/* The encrypted model file: a flipped bit in its header, a ciphertext's body, a ciphertext's or
 * the file's checksum is refused as a checksum mismatch; the file cut short is refused. A sample
 * of places (each load decodes the whole model). Layout: 96-byte header, its SHA-256, then
 * ciphertext objects (their size at byte 24 of each), then the SHA-256 of the whole. */
static void check_prepared_damage(const hecnn_mnist_net *net, FILE *tf)
{
    rewind(tf);
    fseek(tf, 0, SEEK_END);
    const size_t len = (size_t)ftell(tf);
    rewind(tf);
    uint8_t *d = malloc(len), *e = malloc(len);
    REQUIRE_VOID(fread(d, 1, len, tf) == len);
    CHECK(load_prepared(net, d, len) == HECNN_OK);
    uint64_t ct1 = 0; /* size of the first ciphertext, at byte 128 */
    for (int i = 7; i >= 0; i--) ct1 = ct1 << 8 | d[128 + 24 + i];
    const size_t at[] = {12, 20, 40, 95, 96, 127, 128 + 32 + 40, 128 + ct1 - 1, 128 + ct1 + 32 + 100, len / 2, len - 33, len - 1};
    for (size_t i = 0; i < sizeof at / sizeof *at; i++) {
        memcpy(e, d, len);
        e[at[i]] ^= 4;
        const hecnn_status st = load_prepared(net, e, len);
        CHECK_MSG(st == HECNN_ERR_BAD_FORMAT && strstr(hecnn_last_error_detail(), "checksum mismatch"),
                  "encrypted model, byte %zu of %zu flipped: %s (%s)", at[i], len, hecnn_status_name(st), hecnn_last_error_detail());
    }
    memcpy(e, d, len);
    e[128] ^= 1; /* a ciphertext's magic: refused by its header check */
    CHECK(load_prepared(net, e, len) == HECNN_ERR_BAD_FORMAT);
    memcpy(e, d, len);
    e[8] = 1; /* the earlier, unchecksummed version: refused by name */
    CHECK(load_prepared(net, e, len) == HECNN_ERR_BAD_FORMAT && strstr(hecnn_last_error_detail(), "version 1"));
    const size_t cut[] = {0, 100, 128 + ct1 / 2, len / 2, len - 32, len - 1};
    for (size_t i = 0; i < sizeof cut / sizeof *cut; i++)
        CHECK_MSG(load_prepared(net, d, cut[i]) == HECNN_ERR_BAD_FORMAT, "encrypted model cut to %zu of %zu bytes: %s", cut[i], len,
                  hecnn_last_error_detail());
    free(d);
    free(e);
}

static void run_mode(fixture *f, const hecnn_mnist_model *model, hecnn_mnist_mode mode, size_t width, size_t n_img)
{
    hecnn_mnist_net *net = NULL;
    hecnn_status st = hecnn_mnist_net_new(&net, f->ctx, width, mode);
    REQUIRE_VOID(st == HECNN_OK);
    const hecnn_vr_layout *l = hecnn_mnist_net_layout(net);
    CHECK(l->width == width);
    int steps[128];
    unsigned levels[128];
    const size_t nrot = hecnn_vr_required_rotations(net, steps, levels, 128);
    printf("mode %d, w = %zu, m = %zu: %zu rotation keys\n", (int)mode, width, l->rows, nrot);
    CHECK(nrot > 0 && nrot < 50);
    ckks_eval_keys *keys = NULL;
    st = hecnn_mnist_eval_keys_generate(&keys, net, f->sk);
    REQUIRE_VOID(st == HECNN_OK);
    CHECK(ckks_eval_keys_count(keys) == nrot + 2); /* relinearization, conjugation */
    ckks_evaluator *ev = NULL;
    ckks_evaluator_new(&ev, f->ctx, keys);

    hecnn_mnist_prepared *prep = NULL;
    if (mode == HECNN_MNIST_PLAIN_MODEL) {
        st = hecnn_mnist_prepare_plain(&prep, net, model);
    } else {
        st = hecnn_mnist_encrypt_model(&prep, net, model, f->pk);
        /* round trip through the file format */
        if (!st) {
            FILE *tf = tmpfile();
            CHECK(hecnn_mnist_prepared_save(prep, tf) == HECNN_OK);
            check_prepared_damage(net, tf);
            rewind(tf);
            hecnn_mnist_prepared *back = NULL;
            CHECK(hecnn_mnist_prepared_load(&back, net, tf) == HECNN_OK);
            fclose(tf);
            if (back) {
                hecnn_mnist_prepared_free(prep);
                prep = back;
            }
        }
    }
    CHECK_MSG(st == HECNN_OK, "prepare: %s %s", hecnn_status_name(st), hecnn_last_error_detail());
    double *px = malloc(n_img * 784 * sizeof *px), *want = malloc(n_img * 10 * sizeof *want),
           *have = malloc(l->rows * 10 * sizeof *have);
    random_images(px, n_img);
    hecnn_mnist_infer_plain(model, px, n_img, want);
    const size_t nb = hecnn_mnist_net_input_blocks(net);
    ckks_ciphertext **blocks = calloc(nb, sizeof *blocks), *result;
    for (size_t i = 0; i < nb; i++) ckks_ciphertext_new(&blocks[i], f->ctx);
    ckks_ciphertext_new(&result, f->ctx);
    CHECK(hecnn_mnist_encrypt_images(net, blocks, px, n_img, NULL, f->sk) == HECNN_OK);
    if (prep && mode == HECNN_MNIST_ENCRYPTED_MODEL) CHECK(hecnn_mnist_prepared_expand(prep, ev) == HECNN_OK);
    st = prep ? hecnn_mnist_infer(net, prep, ev, result, blocks, NULL, NULL) : HECNN_ERR_INVALID_ARGUMENT;
    CHECK_MSG(st == HECNN_OK, "infer: %s %s", hecnn_status_name(st), hecnn_last_error_detail());
    if (!st) {
        CHECK(ckks_ciphertext_level(result) == 0);
        st = hecnn_mnist_decrypt_scores(net, have, n_img, result, f->sk);
        CHECK_MSG(st == HECNN_OK, "decrypt: %s %s", hecnn_status_name(st), hecnn_last_error_detail());
        double err = 0, mag = 0;
        int agree = 0;
        for (size_t i = 0; i < n_img; i++) {
            int a = 0, b = 0;
            for (int k = 0; k < 10; k++) {
                err = fmax(err, fabs(have[i * 10 + k] - want[i * 10 + k]));
                mag = fmax(mag, fabs(want[i * 10 + k]));
                if (have[i * 10 + k] > have[i * 10 + a]) a = k;
                if (want[i * 10 + k] > want[i * 10 + b]) b = k;
            }
            agree += a == b;
        }
        printf("  max logit error %.3g (largest logit %.3g), %d/%zu argmax agree\n", err, mag, agree, n_img);
        CHECK_MSG(err < 1e-3 * fmax(1, mag), "logit error %g", err);
        /* flooded as decrypt-scores does (20 bits): within the stated noise, and the same digit wherever
         * the unflooded margin exceeds 16 standard deviations (no image can flip by chance then) */
        const ckks_flood_options flood = {.flood_bits = 20};
        double *fl = malloc(n_img * 10 * sizeof *fl);
        CHECK(hecnn_mnist_decrypt_scores_flooded(net, fl, n_img, result, f->sk, &flood) == HECNN_OK);
        const double sd = ckks_flood_slot_stddev(f->ctx, result, &flood);
        double dev = 0;
        size_t flipped = 0, clear = 0;
        for (size_t i = 0; i < n_img; i++) {
            int a = 0, b = 0;
            for (int k = 0; k < 10; k++) {
                dev = fmax(dev, fabs(fl[i * 10 + k] - have[i * 10 + k]));
                if (fl[i * 10 + k] > fl[i * 10 + a]) a = k;
                if (have[i * 10 + k] > have[i * 10 + b]) b = k;
            }
            double second = -INFINITY;
            for (int k = 0; k < 10; k++)
                if (k != b) second = fmax(second, have[i * 10 + k]);
            if (have[i * 10 + b] - second > 16 * sd) {
                clear++;
                flipped += a != b;
            }
        }
        CHECK_MSG(dev > 0 && dev < 8 * sd, "flooded logits move by %.3g, stated stddev %.3g", dev, sd);
        CHECK_MSG(flipped == 0 && clear > 0, "flooding changed %zu of %zu clear digits", flipped, clear);
        printf("  flooded (20 bits): logit noise stddev %.3g, %zu clear digits kept\n", sd, clear);
        free(fl);
        /* a different secret key must be detected at decryption */
        ckks_secret_key *other;
        uint8_t seed[CKKS_SEED_BYTES] = {99};
        ckks_secret_key_generate_derand(&other, f->ctx, seed);
        CHECK(hecnn_mnist_decrypt_scores(net, have, n_img, result, other) == HECNN_ERR_BAD_FORMAT);
        ckks_secret_key_free(other);
    }
    for (size_t i = 0; i < nb; i++) ckks_ciphertext_free(blocks[i]);
    free(blocks);
    ckks_ciphertext_free(result);
    free(px);
    free(want);
    free(have);
    hecnn_mnist_prepared_free(prep);
    ckks_evaluator_free(ev);
    ckks_eval_keys_free(keys);
    hecnn_mnist_net_free(net);
}

int main(void)
{
    test_rng_seed(77);
    hecnn_mnist_model *model = calloc(1, sizeof *model);
    random_model(model);
    test_model_file(model);
    fixture f;
    REQUIRE(fixture_init(&f) == 0);
    ckks_params_literal p;
    CHECK(hecnn_mnist_params(&p) == HECNN_OK);
    ckks_context *secure = NULL;
    CHECK(ckks_context_new(&secure, &p) == HECNN_OK); /* the real parameters pass the 128-bit check */
    ckks_context_free(secure);
    CHECK(hecnn_mnist_width_for_batch(8192, 256) == 32);
    CHECK(hecnn_mnist_width_for_batch(8192, 32) == 256);
    CHECK(hecnn_mnist_width_for_batch(1024, 100) == 32);
    run_mode(&f, model, HECNN_MNIST_PLAIN_MODEL, 32, 20);
    run_mode(&f, model, HECNN_MNIST_ENCRYPTED_MODEL, 32, 32);
    run_mode(&f, model, HECNN_MNIST_PLAIN_MODEL, 64, 16); /* two pixel rows per matrix row */
    ckks_public_key_free(f.pk);
    ckks_secret_key_free(f.sk);
    ckks_context_free(f.ctx);
    free(model);
    return check_summary();
}

/* The seed's Volley Revolver primitives (vRot, SumRowVec, SumColVec, RowShifter, SumForConv,
 * Kernelspanner, Algorithms 3 and 4, reshaping) against a plaintext reference, at N = 2^10
 * (insecure parameters, tests only). Every result must agree to 1e-4 (the inputs are in [-1, 1]). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "hecnn/hecnn.h"

#define TOL 1e-4

typedef struct fixture {
    ckks_context *ctx;
    ckks_secret_key *sk;
    ckks_eval_keys *keys;
    ckks_evaluator *ev;
    hecnn_vr_layout l; /* 512 slots as 8 rows of 64 */
} fixture;

static int fixture_init(fixture *f)
{
    ckks_params_literal p = {.log_n = 10, .n_q = 7, .n_p = 1, .log_scale = 36, .allow_insecure = true};
    p.log_q[0] = 50;
    for (unsigned i = 1; i < p.n_q; i++) p.log_q[i] = 36;
    p.log_p[0] = 55;
    uint8_t seed[CKKS_SEED_BYTES] = {7};
    memset(f, 0, sizeof *f);
    if (ckks_context_new(&f->ctx, &p)) return -1;
    if (ckks_secret_key_generate_derand(&f->sk, f->ctx, seed)) return -1;
    /* every rotation the tests use */
    int steps[64];
    size_t n = 0;
    for (int k = 1; k < 8; k++) steps[n++] = 64 * k;             /* RowShifter, SumRowVec */
    for (int j = 1; j < 64; j <<= 1) steps[n++] = j, steps[n++] = -j; /* SumColVec, SumForConv */
    steps[n++] = 5, steps[n++] = 5 - 64;                          /* vRot by 5 */
    steps[n++] = 16, steps[n++] = 4, steps[n++] = 12;             /* SumForConv (pitch 8), reshape */
    if (ckks_eval_keys_generate(&f->keys, f->sk, true, steps, n, false)) return -1;
    if (ckks_evaluator_new(&f->ev, f->ctx, f->keys)) return -1;
    return hecnn_vr_layout_make(&f->l, ckks_context_max_slots(f->ctx), 64) ? -1 : 0;
}

static void fixture_free(fixture *f)
{
    ckks_evaluator_free(f->ev);
    ckks_eval_keys_free(f->keys);
    ckks_secret_key_free(f->sk);
    ckks_context_free(f->ctx);
}

static ckks_ciphertext *enc_at(fixture *f, const double *v, unsigned level, double scale)
{
    ckks_plaintext *pt;
    ckks_ciphertext *ct;
    ckks_plaintext_new(&pt, f->ctx);
    ckks_ciphertext_new(&ct, f->ctx);
    const size_t s = f->l.slots;
    CHECK(ckks_encode_real(f->ctx, pt, v, s, s, level, scale) == HECNN_OK);
    CHECK(ckks_encrypt_sk(f->ctx, ct, pt, f->sk) == HECNN_OK);
    ckks_plaintext_free(pt);
    return ct;
}

static ckks_ciphertext *enc(fixture *f, const double *v)
{
    return enc_at(f, v, ckks_context_max_level(f->ctx), ckks_context_default_scale(f->ctx));
}

static double max_err(fixture *f, const ckks_ciphertext *ct, const double *want)
{
    ckks_plaintext *pt;
    ckks_plaintext_new(&pt, f->ctx);
    double *have = malloc(f->l.slots * sizeof *have);
    CHECK(ckks_decrypt(f->ctx, pt, ct, f->sk) == HECNN_OK);
    CHECK(ckks_decode_real(f->ctx, have, pt) == HECNN_OK);
    double e = 0;
    for (size_t i = 0; i < f->l.slots; i++) e = fmax(e, fabs(have[i] - want[i]));
    ckks_plaintext_free(pt);
    free(have);
    return e;
}

static void random_fill(double *v, size_t n)
{
    for (size_t i = 0; i < n; i++) v[i] = test_rng_uniform(-1, 1);
}

static void test_pack(fixture *f)
{
    const size_t rows = 5, cols = 150, nb = hecnn_vr_blocks(&f->l, cols);
    CHECK(nb == 3);
    double *mat = malloc(rows * cols * sizeof *mat), *back = calloc(rows * cols, sizeof *back);
    double *slots = malloc(nb * f->l.slots * sizeof *slots);
    random_fill(mat, rows * cols);
    CHECK(hecnn_vr_pack(&f->l, slots, mat, rows, cols) == HECNN_OK);
    CHECK(slots[1 * f->l.slots + 2 * 64 + 3] == mat[2 * cols + 64 + 3]);
    CHECK(slots[2 * f->l.slots + 4 * 64 + 30] == 0.0); /* column 158 is padding */
    CHECK(hecnn_vr_unpack(&f->l, back, slots, rows, cols) == HECNN_OK);
    CHECK(memcmp(mat, back, rows * cols * sizeof *mat) == 0);
    CHECK(hecnn_vr_pack(&f->l, slots, mat, 9, cols) == HECNN_ERR_INVALID_ARGUMENT);
    hecnn_vr_layout bad;
    CHECK(hecnn_vr_layout_make(&bad, 512, 48) == HECNN_ERR_INVALID_ARGUMENT);
    free(mat);
    free(back);
    free(slots);
}

static void test_rows_cols(fixture *f)
{
    const size_t s = f->l.slots, w = f->l.width, m = f->l.rows;
    double *x = malloc(s * sizeof *x), *want = malloc(s * sizeof *want);
    random_fill(x, s);
    ckks_ciphertext *ct = enc(f, x), *out;
    ckks_ciphertext_new(&out, f->ctx);

    /* vRot by 5: each row rotates within itself */
    for (size_t i = 0; i < m; i++)
        for (size_t c = 0; c < w; c++) want[i * w + c] = x[i * w + (c + 5) % w];
    CHECK(hecnn_vr_vrot(f->ev, out, ct, &f->l, 5) == HECNN_OK);
    CHECK_MSG(max_err(f, out, want) < TOL, "vRot error %g", max_err(f, out, want));

    /* SumRowVec: column sums in every row */
    for (size_t c = 0; c < w; c++) {
        double sum = 0;
        for (size_t i = 0; i < m; i++) sum += x[i * w + c];
        for (size_t i = 0; i < m; i++) want[i * w + c] = sum;
    }
    CHECK(hecnn_vr_sum_rows(f->ev, out, ct, &f->l) == HECNN_OK);
    CHECK_MSG(max_err(f, out, want) < TOL, "SumRowVec error %g", max_err(f, out, want));

    /* SumColVec: row sums in every column */
    for (size_t i = 0; i < m; i++) {
        double sum = 0;
        for (size_t c = 0; c < w; c++) sum += x[i * w + c];
        for (size_t c = 0; c < w; c++) want[i * w + c] = sum;
    }
    CHECK(hecnn_vr_sum_cols(f->ev, out, ct, &f->l) == HECNN_OK);
    CHECK_MSG(max_err(f, out, want) < TOL, "SumColVec error %g", max_err(f, out, want));
    CHECK(ckks_ciphertext_level(out) == ckks_context_max_level(f->ctx) - 1);

    /* RowShifter on a tile of p rows, p | m (one rotation) and p = 3 (two rotations, masks) */
    const size_t ps[2] = {4, 3};
    for (int t = 0; t < 2; t++) {
        const size_t p = ps[t];
        double *tiled = malloc(s * sizeof *tiled);
        for (size_t i = 0; i < m; i++) memcpy(tiled + i * w, x + (i % p) * w, w * sizeof *x);
        ckks_ciphertext *tc = enc(f, tiled);
        for (size_t k = 0; k < p; k++) {
            for (size_t i = 0; i < m; i++) memcpy(want + i * w, x + ((i + k) % p) * w, w * sizeof *x);
            CHECK(hecnn_vr_row_shifter(f->ev, out, tc, &f->l, p, k) == HECNN_OK);
            const double e = max_err(f, out, want);
            CHECK_MSG(e < TOL, "RowShifter p=%zu k=%zu error %g", p, k, e);
        }
        ckks_ciphertext_free(tc);
        free(tiled);
    }
    ckks_ciphertext_free(ct);
    ckks_ciphertext_free(out);
    free(x);
    free(want);
}

/* 6x6 images with pitch 8 in rows of 64; 3x3 kernel: 4x4 outputs. */
static void test_conv(fixture *f)
{
    const size_t s = f->l.slots, w = f->l.width, m = f->l.rows;
    const hecnn_vr_image img = {.h = 6, .w = 6, .pitch = 8};
    double *x = calloc(s, sizeof *x), *want = calloc(s, sizeof *want), kernel[9], bias = 0.25;
    for (size_t i = 0; i < m; i++)
        for (size_t r = 0; r < 6; r++)
            for (size_t c = 0; c < 6; c++) x[i * w + r * 8 + c] = test_rng_uniform(0, 1);
    random_fill(kernel, 9);
    ckks_ciphertext *ct = enc(f, x), *out;
    ckks_ciphertext_new(&out, f->ctx);

    /* SumForConv: the 3x3 block sum at each top-left corner (valid corners only compared) */
    CHECK(hecnn_vr_sum_for_conv(f->ev, out, ct, 8, 3, 3) == HECNN_OK);
    {
        ckks_plaintext *pt;
        ckks_plaintext_new(&pt, f->ctx);
        double *have = malloc(s * sizeof *have);
        ckks_decrypt(f->ctx, pt, out, f->sk);
        ckks_decode_real(f->ctx, have, pt);
        double e = 0;
        for (size_t i = 0; i < m; i++)
            for (size_t r = 0; r < 4; r++)
                for (size_t c = 0; c < 4; c++) {
                    double sum = 0;
                    for (size_t a = 0; a < 3; a++)
                        for (size_t b = 0; b < 3; b++) sum += x[i * w + (r + a) * 8 + c + b];
                    e = fmax(e, fabs(have[i * w + r * 8 + c] - sum));
                }
        CHECK_MSG(e < TOL, "SumForConv error %g", e);
        ckks_plaintext_free(pt);
        free(have);
    }

    /* Kernelspanner: every valid output position is the top-left corner of exactly one K_{i,j} block */
    double *span = malloc(9 * s * sizeof *span), *filt = malloc(s * sizeof *filt);
    int covered[64] = {0};
    for (size_t i = 0; i < 3; i++)
        for (size_t j = 0; j < 3; j++) {
            CHECK(hecnn_vr_kernelspanner(&f->l, &img, kernel, 3, 3, i, j, false, span + (i * 3 + j) * s) == HECNN_OK);
            CHECK(hecnn_vr_kernelspanner(&f->l, &img, kernel, 3, 3, i, j, true, filt) == HECNN_OK);
            for (size_t q = 0; q < 64; q++) covered[q] += filt[q] != 0;
        }
    int ok = 1;
    for (size_t r = 0; r < 8; r++)
        for (size_t c = 0; c < 8; c++) ok &= covered[r * 8 + c] == (r < 4 && c < 4);
    CHECK(ok);
    /* K_{1,2}: block at (1, 2) holds the kernel */
    CHECK(span[(1 * 3 + 2) * s + (1 + 1) * 8 + 2 + 2] == kernel[1 * 3 + 2]);

    /* Algorithm 4 with the spanned kernel as plaintext values, then as ciphertexts */
    for (size_t i = 0; i < m; i++)
        for (size_t r = 0; r < 4; r++)
            for (size_t c = 0; c < 4; c++) {
                double sum = bias;
                for (size_t a = 0; a < 3; a++)
                    for (size_t b = 0; b < 3; b++) sum += kernel[a * 3 + b] * x[i * w + (r + a) * 8 + c + b];
                want[i * w + r * 8 + c] = sum;
            }
    double *bias_v = calloc(s, sizeof *bias_v);
    for (size_t i = 0; i < m; i++)
        for (size_t r = 0; r < 4; r++)
            for (size_t c = 0; c < 4; c++) bias_v[i * w + r * 8 + c] = bias;
    hecnn_vr_operand ops[9], bop = {.values = bias_v};
    for (size_t t = 0; t < 9; t++) ops[t] = (hecnn_vr_operand){.values = span + t * s};
    CHECK(hecnn_vr_conv_seed(f->ev, out, ct, &f->l, &img, 3, 3, ops, &bop) == HECNN_OK);
    CHECK_MSG(max_err(f, out, want) < TOL, "Algorithm 4 (plaintext kernel) error %g", max_err(f, out, want));
    CHECK(ckks_ciphertext_level(out) == ckks_context_max_level(f->ctx) - 2);

    const unsigned top = ckks_context_max_level(f->ctx);
    ckks_ciphertext *kc[9];
    for (size_t t = 0; t < 9; t++) {
        kc[t] = enc_at(f, span + t * s, top, (double)ckks_context_q(f->ctx, top));
        ops[t] = (hecnn_vr_operand){.ct = kc[t]};
    }
    ckks_ciphertext *bc = enc_at(f, bias_v, top - 2, ckks_ciphertext_scale(ct));
    bop = (hecnn_vr_operand){.ct = bc};
    CHECK(hecnn_vr_conv_seed(f->ev, out, ct, &f->l, &img, 3, 3, ops, &bop) == HECNN_OK);
    CHECK_MSG(max_err(f, out, want) < TOL, "Algorithm 4 (encrypted kernel) error %g", max_err(f, out, want));

    /* Reshape the 4x4 outputs from pitch 8 to pitch 4 */
    double *packed = calloc(s, sizeof *packed);
    for (size_t i = 0; i < m; i++)
        for (size_t r = 0; r < 4; r++)
            for (size_t c = 0; c < 4; c++) packed[i * w + r * 4 + c] = want[i * w + r * 8 + c];
    CHECK(hecnn_vr_reshape(f->ev, out, out, &f->l, 4, 4, 8, 4) == HECNN_OK);
    CHECK_MSG(max_err(f, out, packed) < TOL, "reshape error %g", max_err(f, out, packed));

    for (size_t t = 0; t < 9; t++) ckks_ciphertext_free(kc[t]);
    ckks_ciphertext_free(bc);
    ckks_ciphertext_free(ct);
    ckks_ciphertext_free(out);
    free(x);
    free(want);
    free(span);
    free(filt);
    free(bias_v);
    free(packed);
}

/* Algorithm 3: A (8 x 100, two column blocks) times B (100 x p), p = 4 and p = 3. */
static void test_matmul(fixture *f)
{
    const size_t s = f->l.slots, w = f->l.width, m = f->l.rows, n = 100, nb = 2;
    double *a = malloc(m * n * sizeof *a), *a_slots = malloc(nb * s * sizeof *a_slots);
    random_fill(a, m * n);
    hecnn_vr_pack(&f->l, a_slots, a, m, n);
    ckks_ciphertext *ac[2] = {enc(f, a_slots), enc(f, a_slots + s)};
    const size_t ps[2] = {4, 3};
    for (int t = 0; t < 2; t++) {
        const size_t p = ps[t];
        double *b = malloc(n * p * sizeof *b), *tiles = calloc(nb * s, sizeof *tiles);
        random_fill(b, n * p);
        /* B^T tiled vertically, per column block of A */
        for (size_t blk = 0; blk < nb; blk++)
            for (size_t i = 0; i < m; i++)
                for (size_t c = 0; c < w && blk * w + c < n; c++) tiles[blk * s + i * w + c] = b[(blk * w + c) * p + i % p];
        double *want = calloc(s, sizeof *want);
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < p; j++) {
                double sum = 0;
                for (size_t k = 0; k < n; k++) sum += a[i * n + k] * b[k * p + j];
                want[i * w + j] = sum;
            }
        ckks_ciphertext *c;
        ckks_ciphertext_new(&c, f->ctx);
        hecnn_vr_operand ops[2] = {{.values = tiles}, {.values = tiles + s}};
        CHECK(hecnn_vr_matmul_seed(f->ev, &c, ac, nb, &f->l, ops, p) == HECNN_OK);
        CHECK_MSG(max_err(f, c, want) < 1e-3, "Algorithm 3 (p = %zu, plaintext B) error %g", p, max_err(f, c, want));
        /* the seed's setting: B encrypted by the model provider */
        const unsigned top = ckks_context_max_level(f->ctx);
        ckks_ciphertext *bc[2] = {enc_at(f, tiles, top, (double)ckks_context_q(f->ctx, top)),
                                  enc_at(f, tiles + s, top, (double)ckks_context_q(f->ctx, top))};
        if (p == 3) { /* two-rotation RowShifter: B one level lower after its masks */
            for (int q = 0; q < 2; q++) {
                ckks_ciphertext_free(bc[q]);
                bc[q] = enc_at(f, tiles + q * s, top, (double)ckks_context_q(f->ctx, top - 1));
            }
        }
        hecnn_vr_operand cops[2] = {{.ct = bc[0]}, {.ct = bc[1]}};
        ckks_ciphertext *c2;
        ckks_ciphertext_new(&c2, f->ctx);
        const hecnn_status st = hecnn_vr_matmul_seed(f->ev, &c2, ac, nb, &f->l, cops, p);
        CHECK_MSG(st == HECNN_OK, "%s: %s", hecnn_status_name(st), hecnn_last_error_detail());
        if (!st) CHECK_MSG(max_err(f, c2, want) < 1e-3, "Algorithm 3 (p = %zu, encrypted B) error %g", p, max_err(f, c2, want));
        ckks_ciphertext_free(bc[0]);
        ckks_ciphertext_free(bc[1]);
        ckks_ciphertext_free(c);
        ckks_ciphertext_free(c2);
        free(b);
        free(tiles);
        free(want);
    }
    ckks_ciphertext_free(ac[0]);
    ckks_ciphertext_free(ac[1]);
    free(a);
    free(a_slots);
}

int main(void)
{
    test_rng_seed(2024);
    fixture f;
    REQUIRE(fixture_init(&f) == 0);
    test_pack(&f);
    test_rows_cols(&f);
    test_conv(&f);
    test_matmul(&f);
    fixture_free(&f);
    return check_summary();
}

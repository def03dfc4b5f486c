/* The network graph: builders and their validation, batch-norm folding, the float64 reference
 * inference (against hand-computed values and a naive convolution), APPROX mode and its
 * statistics, and the model file (round trip, every truncation, every flipped bit, bad headers). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/check.h"
#include "hecnn/hecnn.h"

static bool near(double a, double b, double tol) { return fabs(a - b) <= tol * (1 + fabs(b)); }

static bool all_near(const double *a, const double *b, size_t n, double tol)
{
    for (size_t i = 0; i < n; i++)
        if (!near(a[i], b[i], tol)) {
            fprintf(stderr, "  [%zu] %.17g vs %.17g\n", i, a[i], b[i]);
            return false;
        }
    return true;
}

/* ---- hand-computed values ------------------------------------------------------------------- */

static void test_conv_by_hand(void)
{
    hecnn_graph *g = NULL;
    REQUIRE_VOID(hecnn_graph_new(&g, 1, 4, 4) == HECNN_OK);
    /* channel 0: all ones, bias 0.5; channel 1: 2 at the centre, bias -1 */
    double w[2 * 9] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 0, 0, 0, 0};
    const double b[2] = {0.5, -1};
    size_t id = 0;
    CHECK(hecnn_graph_conv2d(g, &id, 0, 2, 3, 2, 1, w, b) == HECNN_OK);
    CHECK(id == 1);
    w[0] = 99; /* weights were copied */
    const hecnn_node *nd = hecnn_graph_node(g, 1);
    REQUIRE_VOID(nd);
    CHECK(nd->op == HECNN_OP_CONV2D && nd->c == 2 && nd->h == 2 && nd->w == 2 && nd->n_weight == 18 && nd->n_bias == 2);
    CHECK(hecnn_graph_node_size(g, 1) == 8 && hecnn_graph_output(g) == 1 && hecnn_graph_node_count(g) == 2);
    double x[16], y[8];
    for (int i = 0; i < 16; i++) x[i] = i + 1; /* x[r][c] = 4r + c + 1 */
    CHECK(hecnn_graph_infer(g, HECNN_INFER_EXACT, x, 1, y, NULL) == HECNN_OK);
    /* windows centred on (0,0), (0,2), (2,0), (2,2) with one row/column of zero padding */
    const double want[8] = {14.5, 30.5, 57.5, 99.5, 1, 5, 17, 21};
    CHECK(all_near(y, want, 8, 0));
    hecnn_graph_free(g);
}

static void test_small_ops_by_hand(void)
{
    hecnn_graph *g = NULL;
    REQUIRE_VOID(hecnn_graph_new(&g, 2, 2, 2) == HECNN_OK);
    size_t pool, relu, add, poly, dense, bn;
    CHECK(hecnn_graph_avgpool(g, &pool, 0, 2) == HECNN_OK);               /* 2x1x1 */
    CHECK(hecnn_graph_relu(g, &relu, 0) == HECNN_OK);                     /* 2x2x2 */
    CHECK(hecnn_graph_add(g, &add, 0, relu) == HECNN_OK);                 /* x + relu(x) */
    const double pc[3] = {1, -2, 0.5};
    CHECK(hecnn_graph_poly(g, &poly, add, pc, 2) == HECNN_OK);            /* 1 - 2v + v^2/2 */
    const double sc[2] = {2, -1}, sh[2] = {0.25, 3};
    CHECK(hecnn_graph_batchnorm(g, &bn, poly, sc, sh) == HECNN_OK);
    double dw[3 * 8];
    for (int i = 0; i < 24; i++) dw[i] = (i % 8 == i / 8) ? 1 : (i / 8 == 2 ? 0.5 : 0);
    const double db[3] = {0, 1, -1};
    CHECK(hecnn_graph_dense(g, &dense, bn, 3, dw, db) == HECNN_OK);
    CHECK(hecnn_graph_output(g) == dense && hecnn_graph_node_size(g, dense) == 3);
    CHECK(hecnn_graph_node_size(g, pool) == 2);
    const double x[8] = {1, -2, 3, -4, 0.5, 0, -1, 2};
    double y[3];
    CHECK(hecnn_graph_infer(g, HECNN_INFER_EXACT, x, 1, y, NULL) == HECNN_OK);
    double v[8], want[3];
    for (int i = 0; i < 8; i++) {
        const double a = x[i] + (x[i] > 0 ? x[i] : 0);
        const double p = 1 - 2 * a + 0.5 * a * a;
        v[i] = sc[i / 4] * p + sh[i / 4];
    }
    want[0] = v[0];
    want[1] = v[1] + 1;
    want[2] = -1;
    for (int i = 0; i < 8; i++) want[2] += 0.5 * v[i];
    want[2] -= 0.5 * v[2] - 1 * v[2]; /* row 2 has 1 on its diagonal */
    CHECK(all_near(y, want, 3, 1e-15));
    /* avgpool alone */
    hecnn_graph *p = NULL;
    REQUIRE_VOID(hecnn_graph_new(&p, 1, 2, 4) == HECNN_OK);
    CHECK(hecnn_graph_avgpool(p, NULL, 0, 2) == HECNN_OK);
    const double px[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    double py[2];
    CHECK(hecnn_graph_infer(p, HECNN_INFER_EXACT, px, 1, py, NULL) == HECNN_OK);
    CHECK(py[0] == (1 + 2 + 5 + 6) / 4.0 && py[1] == (3 + 4 + 7 + 8) / 4.0);
    hecnn_graph_free(p);
    hecnn_graph_free(g);
}

/* ---- convolution against a naive loop ------------------------------------------------------- */

static void naive_conv(const double *x, size_t cin, size_t h, size_t w, const double *wt, const double *b, size_t cout,
                       size_t k, size_t s, size_t pad, double *y)
{
    const size_t oh = (h + 2 * pad - k) / s + 1, ow = (w + 2 * pad - k) / s + 1;
    for (size_t co = 0; co < cout; co++)
        for (size_t oy = 0; oy < oh; oy++)
            for (size_t ox = 0; ox < ow; ox++) {
                double acc = b[co];
                for (size_t ci = 0; ci < cin; ci++)
                    for (size_t ky = 0; ky < k; ky++)
                        for (size_t kx = 0; kx < k; kx++) {
                            const long iy = (long)(oy * s + ky) - (long)pad, ix = (long)(ox * s + kx) - (long)pad;
                            if (iy < 0 || ix < 0 || iy >= (long)h || ix >= (long)w) continue;
                            acc += wt[((co * cin + ci) * k + ky) * k + kx] * x[(ci * h + (size_t)iy) * w + (size_t)ix];
                        }
                y[(co * oh + oy) * ow + ox] = acc;
            }
}

static void test_conv_random(void)
{
    const size_t cin = 3, h = 7, w = 9, cout = 4, n = 3;
    double *x = malloc(n * cin * h * w * sizeof *x), *wt = malloc(cout * cin * 25 * sizeof *wt), b[4];
    double *y = malloc(n * cout * (h + 8) * (w + 8) * sizeof *y), *ref = malloc(cout * (h + 8) * (w + 8) * sizeof *ref);
    REQUIRE_VOID(x && wt && y && ref);
    for (size_t i = 0; i < n * cin * h * w; i++) x[i] = test_rng_uniform(-1, 1);
    for (size_t i = 0; i < cout * cin * 25; i++) wt[i] = test_rng_uniform(-1, 1);
    for (size_t i = 0; i < cout; i++) b[i] = test_rng_uniform(-1, 1);
    int cases = 0, good = 0;
    for (uint32_t k = 1; k <= 5; k++)
        for (uint32_t s = 1; s <= 3; s++)
            for (uint32_t pad = 0; pad < k; pad++) {
                hecnn_graph *g = NULL;
                if (hecnn_graph_new(&g, cin, h, w)) continue;
                size_t id;
                cases++;
                if (hecnn_graph_conv2d(g, &id, 0, cout, k, s, pad, wt, b) == HECNN_OK &&
                    hecnn_graph_infer(g, HECNN_INFER_EXACT, x, n, y, NULL) == HECNN_OK) {
                    const size_t sz = hecnn_graph_node_size(g, id);
                    bool ok = true;
                    for (size_t img = 0; img < n; img++) {
                        naive_conv(x + img * cin * h * w, cin, h, w, wt, b, cout, k, s, pad, ref);
                        ok &= all_near(y + img * sz, ref, sz, 1e-13);
                    }
                    if (ok) good++;
                    else fprintf(stderr, "conv k=%u s=%u pad=%u differs\n", k, s, pad);
                }
                hecnn_graph_free(g);
            }
    CHECK(cases > 0 && good == cases);
    free(x), free(wt), free(y), free(ref);
}

/* ---- batch-norm folding --------------------------------------------------------------------- */

static void test_fold(void)
{
    const size_t cin = 2, h = 6, w = 6, cout = 3, n = 4;
    hecnn_graph *g = NULL;
    REQUIRE_VOID(hecnn_graph_new(&g, cin, h, w) == HECNN_OK);
    double wt[9 + 3 * 3 * 9], b[3], gam[3], bet[3], mu[3], var[3];
    for (size_t i = 0; i < sizeof wt / sizeof *wt; i++) wt[i] = test_rng_uniform(-1, 1);
    for (size_t i = 0; i < 3; i++) {
        b[i] = test_rng_uniform(-1, 1), gam[i] = test_rng_uniform(0.5, 2), bet[i] = test_rng_uniform(-1, 1);
        mu[i] = test_rng_uniform(-1, 1), var[i] = test_rng_uniform(0.1, 3);
    }
    size_t c1, bn1, r1, c2, bn2, c3, bn3, sum;
    CHECK(hecnn_graph_conv2d(g, &c1, 0, cout, 3, 1, 1, wt, b) == HECNN_OK);
    CHECK(hecnn_graph_batchnorm_stats(g, &bn1, c1, gam, bet, mu, var, 1e-5) == HECNN_OK);
    CHECK(hecnn_graph_relu(g, &r1, bn1) == HECNN_OK);
    CHECK(hecnn_graph_conv2d(g, &c2, r1, cout, 3, 1, 1, wt + 9 /* any 81 values */, NULL) == HECNN_OK);
    CHECK(hecnn_graph_batchnorm_stats(g, &bn2, c2, gam, bet, mu, var, 1e-5) == HECNN_OK);
    /* c3 is read by bn3 and by the add: not folded */
    CHECK(hecnn_graph_conv2d(g, &c3, r1, cout, 3, 1, 1, wt, b) == HECNN_OK);
    CHECK(hecnn_graph_batchnorm(g, &bn3, c3, gam, bet) == HECNN_OK);
    CHECK(hecnn_graph_add(g, &sum, bn2, c3) == HECNN_OK);
    CHECK(hecnn_graph_add(g, &sum, sum, bn3) == HECNN_OK);
    CHECK(hecnn_graph_relu(g, NULL, sum) == HECNN_OK);
    const size_t count = hecnn_graph_node_count(g), out = hecnn_graph_node_size(g, hecnn_graph_output(g));
    double *x = malloc(n * cin * h * w * sizeof *x), *y0 = malloc(n * out * sizeof *y0), *y1 = malloc(n * out * sizeof *y1);
    REQUIRE_VOID(x && y0 && y1);
    for (size_t i = 0; i < n * cin * h * w; i++) x[i] = test_rng_uniform(-1, 1);
    CHECK(hecnn_graph_infer(g, HECNN_INFER_EXACT, x, n, y0, NULL) == HECNN_OK);
    CHECK(hecnn_graph_fold_batchnorm(g) == HECNN_OK);
    CHECK(hecnn_graph_node_count(g) == count - 2);
    size_t bns = 0;
    for (size_t i = 0; i < hecnn_graph_node_count(g); i++) {
        const hecnn_node *nd = hecnn_graph_node(g, i);
        bns += nd->op == HECNN_OP_BATCHNORM;
        CHECK(nd->in[0] < i || i == 0);
        CHECK(nd->op != HECNN_OP_ADD || nd->in[1] < i);
    }
    CHECK(bns == 1);
    CHECK(hecnn_graph_node(g, 2)->op == HECNN_OP_RELU && hecnn_graph_node(g, 2)->in[0] == 1);
    CHECK(hecnn_graph_infer(g, HECNN_INFER_EXACT, x, n, y1, NULL) == HECNN_OK);
    CHECK(all_near(y1, y0, n * out, 1e-12));
    CHECK(hecnn_graph_fold_batchnorm(g) == HECNN_OK); /* idempotent */
    CHECK(hecnn_graph_node_count(g) == count - 2);
    free(x), free(y0), free(y1);
    hecnn_graph_free(g);
}

/* ---- APPROX mode and statistics ------------------------------------------------------------- */

static void test_approx(void)
{
    hecnn_graph *g = NULL;
    REQUIRE_VOID(hecnn_graph_new(&g, 1, 1, 4) == HECNN_OK);
    size_t r1, r2;
    CHECK(hecnn_graph_relu(g, &r1, 0) == HECNN_OK);
    CHECK(hecnn_graph_relu(g, &r2, r1) == HECNN_OK);
    const double x[3 * 4] = {-3, -1, 0.5, 2, 1, 5, -0.25, 0, -6, 1, 1, 1};
    double y[12], stats_abs[3] = {0}, want[12];
    size_t oor[3] = {0};
    hecnn_infer_stats st = {stats_abs, oor};
    CHECK(hecnn_graph_infer(g, HECNN_INFER_APPROX, x, 3, y, NULL) == HECNN_ERR_INVALID_ARGUMENT); /* no range */
    CHECK(hecnn_graph_set_relu_range(g, r1, 4) == HECNN_OK);
    CHECK(hecnn_graph_set_relu_range(g, r2, 2) == HECNN_OK);
    CHECK(hecnn_graph_infer(g, HECNN_INFER_APPROX, x, 3, y, NULL) == HECNN_ERR_INVALID_ARGUMENT); /* no approximation */
    CHECK(strstr(hecnn_last_error_detail(), "approximation") != NULL);
    /* exact mode: relu(relu(x)); stats count images over range at each relu */
    CHECK(hecnn_graph_infer(g, HECNN_INFER_EXACT, x, 3, y, &st) == HECNN_OK);
    for (int i = 0; i < 12; i++) want[i] = x[i] > 0 ? x[i] : 0;
    CHECK(all_near(y, want, 12, 0));
    CHECK(stats_abs[0] == 6 && stats_abs[1] == 6 && stats_abs[2] == 5);
    CHECK(oor[0] == 0 && oor[1] == 2 && oor[2] == 1); /* |x| > 4: images 1, 2; relu(x) > 2: image 1 */
    /* p(y) = y at r1 (identity), p(y) = T2(y) = 2y^2 - 1 at r2: out = 2 (2 (v/2)^2 - 1) = v^2 - 2 */
    const double id1[2] = {0, 1}, t2[3] = {0, 0, 1};
    CHECK(hecnn_graph_set_relu_approx(g, r1, id1, 1) == HECNN_OK);
    CHECK(hecnn_graph_set_relu_approx(g, r2, t2, 2) == HECNN_OK);
    CHECK(hecnn_graph_node(g, r2)->degree == 2 && hecnn_graph_node(g, r2)->range == 2);
    CHECK(hecnn_graph_infer(g, HECNN_INFER_APPROX, x, 3, y, &st) == HECNN_OK); /* stats accumulate */
    for (int i = 0; i < 12; i++) want[i] = x[i] * x[i] - 2;
    CHECK(all_near(y, want, 12, 1e-15));
    CHECK(stats_abs[1] == 6 && stats_abs[2] == 6);
    CHECK(oor[1] == 4 && oor[2] == 4); /* second run: identity passes |x| > 2 in all three images */
    /* p on a single image, the identity at a wide range */
    CHECK(hecnn_graph_set_relu_approx(g, r2, id1, 1) == HECNN_OK);
    CHECK(hecnn_graph_set_relu_range(g, r2, 1000) == HECNN_OK);
    CHECK(hecnn_graph_infer(g, HECNN_INFER_APPROX, x, 3, y, NULL) == HECNN_OK);
    CHECK(all_near(y, x, 12, 1e-15));
    /* clearing the approximation */
    CHECK(hecnn_graph_set_relu_approx(g, r2, NULL, 0) == HECNN_OK);
    CHECK(hecnn_graph_node(g, r2)->coeff == NULL);
    CHECK(hecnn_graph_infer(g, HECNN_INFER_APPROX, x, 3, y, NULL) == HECNN_ERR_INVALID_ARGUMENT);
    CHECK(hecnn_graph_infer(g, HECNN_INFER_EXACT, x, 0, NULL, NULL) == HECNN_OK);
    hecnn_graph_free(g);
}

/* ---- builder errors ------------------------------------------------------------------------- */

static void test_builder_errors(void)
{
    hecnn_graph *g = NULL;
    CHECK(hecnn_graph_new(&g, 0, 4, 4) == HECNN_ERR_INVALID_ARGUMENT && g == NULL);
    CHECK(hecnn_graph_new(&g, 1, HECNN_GRAPH_MAX_DIM + 1, 4) == HECNN_ERR_INVALID_ARGUMENT);
    REQUIRE_VOID(hecnn_graph_new(&g, 2, 5, 5) == HECNN_OK);
    double w[2 * 2 * 49] = {0};
    size_t id = 12345;
    const hecnn_status bad = HECNN_ERR_INVALID_ARGUMENT;
    CHECK(hecnn_graph_conv2d(g, &id, 1, 2, 3, 1, 1, w, NULL) == bad); /* no node 1 */
    CHECK(id == 12345);
    CHECK(hecnn_graph_conv2d(g, &id, 0, 2, 7, 1, 0, w, NULL) == bad); /* 7 > 5 */
    CHECK(hecnn_graph_conv2d(g, &id, 0, 2, 7, 1, 1, w, NULL) == HECNN_OK); /* 5 + 2 = 7: one output */
    CHECK(hecnn_graph_node(g, id)->h == 1 && hecnn_graph_node(g, id)->w == 1);
    CHECK(hecnn_graph_conv2d(g, &id, 0, 2, 0, 1, 0, w, NULL) == bad);
    CHECK(hecnn_graph_conv2d(g, &id, 0, 2, HECNN_GRAPH_MAX_KERNEL + 1, 1, 0, w, NULL) == bad);
    CHECK(hecnn_graph_conv2d(g, &id, 0, 2, 3, 0, 0, w, NULL) == bad);
    CHECK(hecnn_graph_conv2d(g, &id, 0, 2, 3, 1, 3, w, NULL) == bad);
    CHECK(hecnn_graph_conv2d(g, &id, 0, 0, 3, 1, 0, w, NULL) == bad);
    CHECK(hecnn_graph_conv2d(g, &id, 0, 2, 3, 1, 0, NULL, NULL) == bad);
    w[5] = NAN;
    CHECK(hecnn_graph_conv2d(g, &id, 0, 2, 3, 1, 0, w, NULL) == bad);
    CHECK(strstr(hecnn_last_error_detail(), "not finite") != NULL);
    w[5] = INFINITY;
    CHECK(hecnn_graph_dense(g, &id, 0, 2, w, NULL) == bad);
    w[5] = 0;
    const double bb[2] = {0, NAN};
    CHECK(hecnn_graph_conv2d(g, &id, 0, 2, 3, 1, 0, w, bb) == bad);
    CHECK(hecnn_graph_dense(g, &id, 0, 2, w, bb) == bad);
    CHECK(hecnn_graph_batchnorm(g, &id, 0, w, bb) == bad);
    const double one[2] = {1, 1}, zero[2] = {0, 0}, neg[2] = {1, -1};
    CHECK(hecnn_graph_batchnorm_stats(g, &id, 0, one, zero, zero, neg, 0) == bad);
    CHECK(hecnn_graph_batchnorm_stats(g, &id, 0, one, zero, zero, zero, 0) == bad);
    CHECK(hecnn_graph_batchnorm_stats(g, &id, 0, one, zero, zero, one, -1) == bad);
    CHECK(hecnn_graph_dense(g, &id, 0, 0, w, NULL) == bad);
    CHECK(hecnn_graph_dense(g, &id, 7, 2, w, NULL) == bad);
    CHECK(hecnn_graph_avgpool(g, &id, 0, 2) == bad); /* 2 does not divide 5 */
    CHECK(hecnn_graph_avgpool(g, &id, 0, 0) == bad);
    CHECK(hecnn_graph_avgpool(g, &id, 0, 5) == HECNN_OK);
    const size_t pooled = id;
    CHECK(hecnn_graph_add(g, &id, 0, pooled) == bad); /* 2x5x5 + 2x1x1 */
    CHECK(hecnn_graph_add(g, &id, 0, 99) == bad);
    CHECK(hecnn_graph_relu(g, &id, 99) == bad);
    const double pc[3] = {0, 1, NAN};
    CHECK(hecnn_graph_poly(g, &id, 0, pc, 2) == bad);
    CHECK(hecnn_graph_poly(g, &id, 0, NULL, 2) == bad);
    CHECK(hecnn_graph_poly(g, &id, 0, pc, HECNN_GRAPH_MAX_POLY + 1) == bad);
    CHECK(hecnn_graph_set_relu_range(g, 0, 1) == bad); /* not a relu */
    CHECK(hecnn_graph_relu(g, &id, 0) == HECNN_OK);
    CHECK(hecnn_graph_set_relu_range(g, id, NAN) == bad);
    CHECK(hecnn_graph_set_relu_range(g, id, -1) == bad);
    CHECK(hecnn_graph_set_relu_approx(g, id, pc, 2) == bad);
    CHECK(hecnn_graph_set_relu_approx(g, id + 1, pc, 1) == bad);
    CHECK(hecnn_graph_set_input_norm(g, one, zero) == bad);
    CHECK(hecnn_graph_set_input_norm(g, bb, one) == bad);
    const double mean[2] = {0.5, 0.25}, sd[2] = {0.2, 0.3};
    CHECK(hecnn_graph_set_input_norm(g, mean, sd) == HECNN_OK);
    CHECK(hecnn_graph_input_mean(g)[1] == 0.25 && hecnn_graph_input_std(g)[0] == 0.2);
    CHECK(hecnn_graph_node(g, 1000) == NULL && hecnn_graph_node_size(g, 1000) == 0);
    /* weight budget: a dense layer of 4096 x 2*5*5 fits, 4096 outputs over a huge input does not */
    hecnn_graph *big = NULL;
    REQUIRE_VOID(hecnn_graph_new(&big, 4096, 4096, 4096) == HECNN_OK);
    CHECK(hecnn_graph_dense(big, &id, 0, 1, w, NULL) == bad);
    CHECK(hecnn_graph_conv2d(big, &id, 0, 4096, 15, 1, 0, w, NULL) == bad);
    hecnn_graph_free(big);
    hecnn_graph_free(g);
}

/* ---- model files ---------------------------------------------------------------------------- */

static double *random_array(size_t n, double scale)
{
    double *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = test_rng_uniform(-scale, scale);
    return p;
}

/* Every operation once, with calibration, approximations and input normalisation. */
static hecnn_graph *small_model(void)
{
    hecnn_graph *g = NULL;
    if (hecnn_graph_new(&g, 2, 4, 4)) return NULL;
    double *w1 = random_array(54, 0.5), *b1 = random_array(3, 0.1), *sc = random_array(3, 1), *sh = random_array(3, 0.1);
    double *w2 = random_array(9, 0.5), *wd = random_array(60, 0.3), *bd = random_array(5, 0.1);
    const double mean[2] = {0.5, 0.25}, sd[2] = {0.25, 0.5}, cheb[5] = {0.3, 0.5, 0.2, 0, -0.01}, pc[3] = {0.1, 1, 0.05};
    size_t c1, bn, r, c2, a, p, ap, d;
    const bool ok = !hecnn_graph_set_input_norm(g, mean, sd) && !hecnn_graph_conv2d(g, &c1, 0, 3, 3, 1, 1, w1, b1) &&
                    !hecnn_graph_batchnorm(g, &bn, c1, sc, sh) && !hecnn_graph_relu(g, &r, bn) &&
                    !hecnn_graph_set_relu_range(g, r, 3) && !hecnn_graph_set_relu_approx(g, r, cheb, 4) &&
                    !hecnn_graph_conv2d(g, &c2, r, 3, 1, 1, 0, w2, NULL) && !hecnn_graph_add(g, &a, c2, r) &&
                    !hecnn_graph_poly(g, &p, a, pc, 2) && !hecnn_graph_avgpool(g, &ap, p, 2) &&
                    !hecnn_graph_dense(g, &d, ap, 5, wd, bd) && !hecnn_graph_relu(g, NULL, d);
    free(w1), free(b1), free(sc), free(sh), free(w2), free(wd), free(bd);
    if (!ok) {
        hecnn_graph_free(g);
        return NULL;
    }
    return g;
}

static uint8_t *save_bytes(const hecnn_graph *g, size_t *size)
{
    char *data = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&data, &len);
    if (!f) return NULL;
    const hecnn_status st = hecnn_graph_save(g, f);
    fclose(f);
    *size = len;
    if (st) {
        free(data);
        return NULL;
    }
    return (uint8_t *)data;
}

/* Recompute the trailing SHA-256 after an edit, so the checks past the checksum are reached. */
static void resign(uint8_t *buf, size_t size)
{
    unsigned len = 0;
    EVP_Digest(buf, size - 32, buf + size - 32, &len, EVP_sha256(), NULL);
}

static hecnn_status read_edited(const uint8_t *orig, size_t size, size_t at, uint32_t value)
{
    uint8_t *b = malloc(size);
    memcpy(b, orig, size);
    for (int i = 0; i < 4; i++) b[at + (size_t)i] = (uint8_t)(value >> (8 * i));
    resign(b, size);
    hecnn_graph *g = NULL;
    const hecnn_status st = hecnn_graph_read(&g, b, size);
    hecnn_graph_free(g);
    free(b);
    return st;
}

static void test_file(void)
{
    hecnn_graph *g = small_model();
    REQUIRE_VOID(g);
    size_t size = 0;
    uint8_t *buf = save_bytes(g, &size);
    REQUIRE_VOID(buf);
    /* round trip: the same graph, bit for bit */
    hecnn_graph *back = NULL;
    CHECK(hecnn_graph_read(&back, buf, size) == HECNN_OK);
    REQUIRE_VOID(back);
    CHECK(hecnn_graph_node_count(back) == hecnn_graph_node_count(g));
    const size_t n = 5, nin = hecnn_graph_node_size(g, 0), nout = hecnn_graph_node_size(g, hecnn_graph_output(g));
    double *x = random_array(n * nin, 1), *y0 = malloc(n * nout * sizeof *y0), *y1 = malloc(n * nout * sizeof *y1);
    CHECK(hecnn_graph_infer(g, HECNN_INFER_EXACT, x, n, y0, NULL) == HECNN_OK);
    CHECK(hecnn_graph_infer(back, HECNN_INFER_EXACT, x, n, y1, NULL) == HECNN_OK);
    CHECK(memcmp(y0, y1, n * nout * sizeof *y0) == 0);
    const hecnn_node *r = hecnn_graph_node(back, 3);
    CHECK(r && r->op == HECNN_OP_RELU && r->range == 3 && r->degree == 4 && r->coeff && r->coeff[4] == -0.01);
    CHECK(hecnn_graph_input_std(back)[1] == 0.5 && hecnn_graph_input_mean(back)[0] == 0.5);
    size_t size2 = 0;
    uint8_t *buf2 = save_bytes(back, &size2);
    CHECK(buf2 && size2 == size && memcmp(buf, buf2, size) == 0);
    free(buf2);
    uint8_t d0[32], d1[32], d2[32];
    unsigned dl = 0;
    CHECK(hecnn_graph_digest(g, d0) == HECNN_OK && hecnn_graph_digest(back, d1) == HECNN_OK);
    EVP_Digest(buf, size, d2, &dl, EVP_sha256(), NULL);
    CHECK(memcmp(d0, d1, 32) == 0 && memcmp(d0, d2, 32) == 0); /* the SHA-256 of the file */
    hecnn_graph_free(back);
    /* the stream loader reads exactly one model: two in a row load one by one */
    uint8_t *two = malloc(2 * size + 1);
    memcpy(two, buf, size), memcpy(two + size, buf, size), two[2 * size] = 7;
    FILE *f = fmemopen(two, 2 * size + 1, "rb");
    REQUIRE_VOID(f);
    CHECK(hecnn_graph_load(&back, f) == HECNN_OK);
    hecnn_graph_free(back);
    CHECK(hecnn_graph_load(&back, f) == HECNN_OK);
    hecnn_graph_free(back);
    back = (hecnn_graph *)1;
    CHECK(hecnn_graph_load(&back, f) == HECNN_ERR_BAD_FORMAT && back == NULL); /* one byte left */
    fclose(f);
    /* trailing byte */
    CHECK(hecnn_graph_read(&back, two, size + 1) == HECNN_ERR_BAD_FORMAT);
    CHECK(strstr(hecnn_last_error_detail(), "trailing") != NULL);
    free(two);
    /* every truncation, through both readers */
    int trunc_ok = 0;
    for (size_t cut = 0; cut < size; cut++) {
        back = NULL;
        if (hecnn_graph_read(&back, buf, cut) == HECNN_ERR_BAD_FORMAT && !back) trunc_ok++;
        hecnn_graph_free(back);
        if (cut == 0) continue;
        f = fmemopen(buf, cut, "rb");
        if (!f) continue;
        back = NULL;
        if (hecnn_graph_load(&back, f) == HECNN_ERR_BAD_FORMAT && !back) trunc_ok++;
        hecnn_graph_free(back);
        fclose(f);
    }
    CHECK(trunc_ok == (int)(2 * size - 1));
    /* every flipped bit */
    int flip_ok = 0, checksum_msgs = 0;
    for (size_t bit = 0; bit < 8 * size; bit++) {
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        back = NULL;
        if (hecnn_graph_read(&back, buf, size) == HECNN_ERR_BAD_FORMAT && !back) flip_ok++;
        checksum_msgs += strstr(hecnn_last_error_detail(), "checksum") != NULL;
        hecnn_graph_free(back);
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    CHECK(flip_ok == (int)(8 * size));
    CHECK(checksum_msgs > (int)(8 * size) / 2);
    /* fields past the checksum (re-signed): header, then node 1's record at 32 + 16 * 2 = 64 */
    const size_t rec = 64;
    const hecnn_status bad = HECNN_ERR_BAD_FORMAT;
    CHECK(read_edited(buf, size, 0, 0x4e434548u /* "HECN" -> same */) == HECNN_OK);
    CHECK(read_edited(buf, size, 0, 0x58434548u) == bad);    /* magic */
    CHECK(read_edited(buf, size, 8, 2) == bad);              /* version */
    CHECK(strstr(hecnn_last_error_detail(), "version") != NULL);
    CHECK(read_edited(buf, size, 12, 64) == bad);            /* header size */
    CHECK(read_edited(buf, size, 16, 0xffffffffu) == bad);   /* node count */
    CHECK(read_edited(buf, size, 16, 0) == bad);
    CHECK(read_edited(buf, size, 16, 3) == bad);             /* fewer nodes: trailing bytes */
    CHECK(read_edited(buf, size, 20, 4096) == bad);          /* input channels: truncated, nothing allocated */
    CHECK(read_edited(buf, size, 24, 0) == bad);             /* input height */
    CHECK(read_edited(buf, size, 24, 8) == bad);             /* conv output no longer 4x4: record mismatch */
    CHECK(read_edited(buf, size, 52, 0) == bad);             /* input std[0] = 0 (its high half; the low half is 0) */
    CHECK(read_edited(buf, size, 44, 0x7ff00000u) == bad);   /* input mean[1] = inf */
    CHECK(read_edited(buf, size, rec, 0) == bad);            /* op INPUT */
    CHECK(read_edited(buf, size, rec, 99) == bad);           /* unknown op */
    CHECK(read_edited(buf, size, rec, HECNN_OP_DENSE) == bad);
    CHECK(read_edited(buf, size, rec + 4, 1) == bad);        /* reads itself */
    CHECK(read_edited(buf, size, rec + 8, 1) == bad);        /* in[1] set on a conv */
    CHECK(read_edited(buf, size, rec + 12, 4) == bad);       /* channels */
    CHECK(read_edited(buf, size, rec + 16, 5) == bad);       /* height */
    CHECK(read_edited(buf, size, rec + 24, 5) == bad);       /* kernel */
    CHECK(read_edited(buf, size, rec + 28, 2) == bad);       /* stride: shape mismatch */
    CHECK(read_edited(buf, size, rec + 32, 3) == bad);       /* padding >= kernel */
    CHECK(read_edited(buf, size, rec + 36, 0xffffffffu) == bad); /* huge weight count */
    CHECK(strstr(hecnn_last_error_detail(), "limit") != NULL);
    CHECK(read_edited(buf, size, rec + 36, 53) == bad);      /* one weight short */
    {   /* a stream that declares 60M weights and ends: truncated, read as it arrives */
        uint8_t *b = malloc(size);
        memcpy(b, buf, size);
        b[rec + 36] = 0, b[rec + 37] = 0x87, b[rec + 38] = 0x93, b[rec + 39] = 0x03; /* 60,000,000 */
        f = fmemopen(b, size, "rb");
        back = NULL;
        CHECK(f && hecnn_graph_load(&back, f) == bad && back == NULL);
        CHECK(strstr(hecnn_last_error_detail(), "truncated") != NULL);
        if (f) fclose(f);
        free(b);
    }
    CHECK(read_edited(buf, size, rec + 44, 1) == bad);       /* coefficients on a conv */
    CHECK(read_edited(buf, size, rec + 44, 0xffffffffu) == bad);
    CHECK(read_edited(buf, size, rec + 48, 1) == bad);       /* a range on a conv */
    CHECK(read_edited(buf, size, rec + 56 + 4, 0xfff80000u) == bad); /* weight 0 high half: NaN */
    CHECK(strstr(hecnn_last_error_detail(), "not finite") != NULL);
    free(buf);
    /* a graph of the input alone */
    hecnn_graph *in_only = NULL;
    REQUIRE_VOID(hecnn_graph_new(&in_only, 1, 2, 3) == HECNN_OK);
    buf = save_bytes(in_only, &size);
    CHECK(buf && size == 32 + 16 + 32);
    CHECK(hecnn_graph_read(&back, buf, size) == HECNN_OK && hecnn_graph_node_count(back) == 1);
    const double xi[6] = {1, 2, 3, 4, 5, 6};
    double yi[6];
    CHECK(hecnn_graph_infer(back, HECNN_INFER_EXACT, xi, 1, yi, NULL) == HECNN_OK && memcmp(xi, yi, sizeof xi) == 0);
    hecnn_graph_free(back);
    free(buf);
    hecnn_graph_free(in_only);
    CHECK(hecnn_graph_read(NULL, NULL, 0) == HECNN_ERR_INVALID_ARGUMENT);
    CHECK(hecnn_graph_read(&back, NULL, 0) == HECNN_ERR_BAD_FORMAT);
    CHECK(hecnn_graph_save(g, NULL) == HECNN_ERR_INVALID_ARGUMENT && hecnn_graph_load(&back, NULL) == HECNN_ERR_INVALID_ARGUMENT);
    free(x), free(y0), free(y1);
    hecnn_graph_free(g);
}

int main(void)
{
    test_rng_seed(20261203);
    test_conv_by_hand();
    test_small_ops_by_hand();
    test_conv_random();
    setenv("HECNN_FORCE_ISA", "portable", 1); /* the portable kernel too */
    test_conv_random();
    unsetenv("HECNN_FORCE_ISA");
    test_fold();
    test_approx();
    test_builder_errors();
    test_file();
    return check_summary();
}

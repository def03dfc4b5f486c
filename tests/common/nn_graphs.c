#include "common/nn_graphs.h"

#include <math.h>
#include <stdlib.h>

#include "common/check.h"

double test_relu(double x, void *arg)
{
    (void)arg;
    return x > 0 ? x : 0;
}

void test_random_fill(double *v, size_t n, double scale)
{
    for (size_t i = 0; i < n; i++) v[i] = test_rng_uniform(-scale, scale);
}

size_t test_conv(hecnn_graph *g, size_t in, uint32_t cin, uint32_t cout, uint32_t k, uint32_t stride)
{
    double w[16 * 16 * 25], b[16];
    test_random_fill(w, (size_t)cout * cin * k * k, 1.0 / sqrt((double)cin * k * k));
    test_random_fill(b, cout, 0.1);
    size_t id = 0;
    CHECK(hecnn_graph_conv2d(g, &id, in, cout, k, stride, k / 2, w, b) == HECNN_OK);
    return id;
}

size_t test_relu_node(hecnn_graph *g, size_t in)
{
    size_t id = 0;
    CHECK(hecnn_graph_relu(g, &id, in) == HECNN_OK);
    return id;
}

size_t test_add(hecnn_graph *g, size_t a, size_t b)
{
    size_t id = 0;
    CHECK(hecnn_graph_add(g, &id, a, b) == HECNN_OK);
    return id;
}

void test_calibrate(hecnn_graph *g, const double *images, size_t n)
{
    const size_t count = hecnn_graph_node_count(g);
    const size_t outputs = hecnn_graph_node_size(g, hecnn_graph_output(g));
    double *absmax = calloc(count, sizeof *absmax), *out = calloc(n * outputs, sizeof *out);
    hecnn_infer_stats stats = {.absmax = absmax};
    CHECK(hecnn_graph_infer(g, HECNN_INFER_EXACT, images, n, out, &stats) == HECNN_OK);
    ckks_poly *p = NULL;
    CHECK(ckks_poly_interpolate(&p, test_relu, NULL, -1, 1, 7) == HECNN_OK);
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

int test_boot_context(ckks_context **ctx, ckks_bootstrapper **bt)
{
    ckks_params_literal lit;
    ckks_boot_params bp;
    if (ckks_boot_preset_params(&lit, &bp, CKKS_BOOT_TEST_N12_DEEP)) return -1;
    if (ckks_context_new(ctx, &lit)) return -1;
    return bt && ckks_bootstrapper_new(bt, *ctx, &bp) ? -1 : 0;
}

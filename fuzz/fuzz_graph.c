/* libFuzzer harness for hecnn_graph_load / hecnn_graph_read (see fuzz_common.h): an accepted model
 * saves back to the same bytes, reads back from them, and small ones run the reference inference.
 * Each input is tried twice: as it is, and with its last 32 bytes replaced by the SHA-256 of the
 * bytes before them, so that mutations reach the checks behind the checksum. */
#include <openssl/evp.h>

#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Seed: every operation once, with calibration, an approximation and input normalisation. */
static void write_seed(void)
{
    hecnn_graph *g = NULL;
    hecnn_status st = hecnn_graph_new(&g, 2, 4, 4);
    if (st) fz_die("graph", st);
    double w[96];
    for (int i = 0; i < 96; i++) w[i] = (double)((i * 37) % 11 - 5) / 8;
    const double mean[2] = {0.5, 0.25}, sd[2] = {0.25, 0.5}, cheb[3] = {0.3, 0.5, 0.2}, pc[3] = {0.1, 1, 0.05};
    size_t c1, bn, r, c2, a, p, ap, d;
    if ((st = hecnn_graph_set_input_norm(g, mean, sd)) || (st = hecnn_graph_conv2d(g, &c1, 0, 3, 3, 1, 1, w, w)) ||
        (st = hecnn_graph_batchnorm(g, &bn, c1, w, w + 3)) || (st = hecnn_graph_relu(g, &r, bn)) ||
        (st = hecnn_graph_set_relu_range(g, r, 3)) || (st = hecnn_graph_set_relu_approx(g, r, cheb, 2)) ||
        (st = hecnn_graph_conv2d(g, &c2, r, 3, 3, 2, 1, w, NULL)) || (st = hecnn_graph_avgpool(g, &ap, r, 2)) ||
        (st = hecnn_graph_add(g, &a, c2, ap)) || (st = hecnn_graph_poly(g, &p, a, pc, 2)) ||
        (st = hecnn_graph_dense(g, &d, p, 5, w, w)) || (st = hecnn_graph_relu(g, NULL, d)))
        fz_die("seed graph", st);
    fz_buf b;
    fz_out(&b);
    if ((st = hecnn_graph_save(g, b.f))) fz_die("save", st);
    fz_close(&b);
    fz_seed_file("graph_small", &b);
    free(b.data);
    hecnn_graph_free(g);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    write_seed();
    return 0;
}

static void one_input(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one_input(data, size);
    if (size >= 64) {
        uint8_t *signed_copy = malloc(size);
        if (!signed_copy) abort();
        memcpy(signed_copy, data, size);
        unsigned len = 0;
        if (EVP_Digest(signed_copy, size - 32, signed_copy + size - 32, &len, EVP_sha256(), NULL) != 1) abort();
        one_input(signed_copy, size);
        free(signed_copy);
    }
    return 0;
}

static void one_input(const uint8_t *data, size_t size)
{
    hecnn_graph *g = NULL;
    FILE *f = fz_open(data, size);
    hecnn_status st = hecnn_graph_load(&g, f);
    fclose(f);
    hecnn_graph *r = NULL;
    const hecnn_status rst = hecnn_graph_read(&r, data, size);
    fz_check(rst == HECNN_OK || r == NULL, "failed read left a graph");
    hecnn_graph_free(r);
    if (st) {
        fz_check(g == NULL, "failed load left a graph");
        fz_check(rst != HECNN_OK, "read accepts what load refuses");
        return;
    }
    /* canonical: saving what was loaded reproduces the input's model bytes */
    fz_buf b;
    fz_out(&b);
    fz_check(hecnn_graph_save(g, b.f) == HECNN_OK, "save of a loaded graph");
    fz_close(&b);
    fz_resaved(&b, data, size, "graph re-save differs from input");
    fz_check((rst == HECNN_OK) == (b.len == size), "read accepts exactly one whole model");
    uint8_t d[32];
    fz_check(hecnn_graph_digest(g, d) == HECNN_OK, "digest");
    free(b.data);
    /* small graphs run, in both modes, before and after folding */
    size_t values = 0;
    const size_t n = hecnn_graph_node_count(g);
    for (size_t i = 0; i < n; i++) values += hecnn_graph_node_size(g, i);
    if (n <= 64 && values <= 4096) {
        const size_t nin = hecnn_graph_node_size(g, 0), nout = hecnn_graph_node_size(g, hecnn_graph_output(g));
        double *x = calloc(nin, sizeof *x), *y = calloc(nout, sizeof *y);
        double *absmax = calloc(n, sizeof *absmax);
        size_t *oor = calloc(n, sizeof *oor);
        if (!x || !y || !absmax || !oor) abort();
        for (size_t i = 0; i < nin; i++) x[i] = (double)(i % 7) / 3 - 1;
        hecnn_infer_stats stats = {absmax, oor};
        fz_check(hecnn_graph_infer(g, HECNN_INFER_EXACT, x, 1, y, &stats) == HECNN_OK, "exact inference");
        st = hecnn_graph_infer(g, HECNN_INFER_APPROX, x, 1, y, &stats);
        fz_check(st == HECNN_OK || st == HECNN_ERR_INVALID_ARGUMENT, "approximate inference");
        st = hecnn_graph_fold_batchnorm(g);
        fz_check(st == HECNN_OK || st == HECNN_ERR_INVALID_ARGUMENT, "fold");
        fz_check(hecnn_graph_infer(g, HECNN_INFER_EXACT, x, 1, y, NULL) == HECNN_OK, "exact inference after folding");
        free(x), free(y), free(absmax), free(oor);
    }
    hecnn_graph_free(g);
}

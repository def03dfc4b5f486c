/* CIFAR ResNets from FHEON-style CSV weights (see util_resnet.h). */
#include "util_resnet.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util_cli.h"

static const resnet_shape shapes[] = {
    {"resnet20", 3, {16, 32, 64, 0}, {3, 3, 3, 0}, 10},
    {"resnet34", 4, {16, 32, 64, 128}, {3, 4, 6, 3}, 100},
};

const double resnet_fheon_mean[3] = {0.4914, 0.4822, 0.4465};
const double resnet_fheon_std[3] = {0.2023, 0.1994, 0.2010};

const resnet_shape *resnet_shape_of(resnet_arch arch) { return (unsigned)arch < 2 ? &shapes[arch] : NULL; }

bool resnet_arch_by_name(const char *name, resnet_arch *out)
{
    for (unsigned i = 0; name && i < 2; i++)
        if (!strcmp(name, shapes[i].name)) return *out = (resnet_arch)i, true;
    return false;
}

/* Largest CSV accepted: the biggest FHEON tensor (147,456 values) takes under 2 MB. */
#define CSV_MAX_BYTES (64u << 20)

int resnet_csv_read(const char *path, size_t expect, const char *shape, double **values)
{
    *values = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        cli_error("cannot read weights '%s': %s", path, strerror(errno));
        return -1;
    }
    struct stat sb;
    char *text = NULL;
    double *v = NULL;
    int rc = -1;
    if (fstat(fileno(f), &sb) || !S_ISREG(sb.st_mode) || (unsigned long long)sb.st_size > CSV_MAX_BYTES) {
        cli_error("cannot read weights '%s': not a regular file of at most %u bytes", path, CSV_MAX_BYTES);
        goto done;
    }
    const size_t size = (size_t)sb.st_size;
    text = malloc(size + 1);
    v = malloc((expect ? expect : 1) * sizeof *v);
    if (!text || !v) {
        cli_error("out of memory reading '%s'", path);
        goto done;
    }
    if (fread(text, 1, size, f) != size) {
        cli_error("cannot read weights '%s': short read", path);
        goto done;
    }
    text[size] = 0;
    if (memchr(text, 0, size)) {
        cli_error("weights '%s': not a text file (NUL byte)", path);
        goto done;
    }
    size_t n = 0;
    const char *p = text;
    for (;;) {
        while (*p == ' ' || *p == '\t') p++;
        if (!*p || *p == '\n' || *p == '\r') break;
        char *end;
        errno = 0;
        const double d = strtod(p, &end);
        /* ERANGE on underflow is fine (denormals round toward 0); overflow is not */
        if (end == p || !isfinite(d) || (errno == ERANGE && fabs(d) > 1)) {
            const size_t l = strcspn(p, ",\r\n");
            cli_error("weights '%s': value %zu is not a finite number: '%.*s%s'", path, n + 1, (int)(l > 32 ? 32 : l), p,
                      l > 32 ? "..." : "");
            goto done;
        }
        if (n < expect) v[n] = d;
        n++;
        p = end;
        while (*p == ' ' || *p == '\t') p++;
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p && *p != '\n' && *p != '\r') {
            cli_error("weights '%s': unexpected '%c' after value %zu (one row of comma-separated numbers expected)", path, *p, n);
            goto done;
        }
        break;
    }
    while (*p == '\n' || *p == '\r' || *p == ' ' || *p == '\t') p++;
    if (*p) {
        cli_error("weights '%s': more than one row (one row of %zu values %s expected)", path, expect, shape);
        goto done;
    }
    if (n != expect) {
        cli_error("weights '%s': %zu values, expected %zu for shape %s", path, n, expect, shape);
        goto done;
    }
    *values = v;
    v = NULL;
    rc = 0;
done:
    free(v);
    free(text);
    fclose(f);
    return rc;
}

/* Read DIR/STEM_weight.csv and DIR/STEM_bias.csv of a layer with `nw` weights and `nb` biases. */
static int read_layer(const char *dir, const char *stem, size_t nw, const char *wshape, size_t nb, double **w, double **b)
{
    char path[4096], bshape[32];
    *w = *b = NULL;
    snprintf(path, sizeof path, "%s/%s_weight.csv", dir, stem);
    if (resnet_csv_read(path, nw, wshape, w)) return -1;
    snprintf(path, sizeof path, "%s/%s_bias.csv", dir, stem);
    snprintf(bshape, sizeof bshape, "[%zu]", nb);
    if (resnet_csv_read(path, nb, bshape, b)) {
        free(*w);
        *w = NULL;
        return -1;
    }
    return 0;
}

/* A conv layer from DIR/STEM_{weight,bias}.csv appended to g. */
static int add_conv(hecnn_graph *g, const char *dir, const char *stem, size_t in, unsigned cin, unsigned cout, unsigned k,
                    unsigned stride, unsigned pad, size_t *id)
{
    char shape[64];
    snprintf(shape, sizeof shape, "[%u,%u,%u,%u]", cout, cin, k, k);
    double *w, *b;
    if (read_layer(dir, stem, (size_t)cout * cin * k * k, shape, cout, &w, &b)) return -1;
    hecnn_status st = hecnn_graph_conv2d(g, id, in, cout, k, stride, pad, w, b);
    free(w);
    free(b);
    if (st) {
        cli_status_error(st, "cannot add layer %s", stem);
        return -1;
    }
    return 0;
}

static int add_relu(hecnn_graph *g, size_t in, size_t *id)
{
    hecnn_status st = hecnn_graph_relu(g, id, in);
    if (st) cli_status_error(st, "cannot add a ReLU");
    return st ? -1 : 0;
}

/* Option A: out[o] = in[o - (cout - cin) / 2] on the even lattice (zero outside). */
static int add_option_a(hecnn_graph *g, size_t in, unsigned cin, unsigned cout, size_t *id)
{
    double *w = calloc((size_t)cout * cin, sizeof *w);
    if (!w) {
        cli_error("out of memory");
        return -1;
    }
    const unsigned lo = (cout - cin) / 2;
    for (unsigned i = 0; i < cin; i++) w[(size_t)(lo + i) * cin + i] = 1.0;
    hecnn_status st = hecnn_graph_conv2d(g, id, in, cout, 1, 2, 0, w, NULL);
    free(w);
    if (st) cli_status_error(st, "cannot add an option-A shortcut");
    return st ? -1 : 0;
}

/* Optional DIR/input_{mean,std}.csv: both or neither. 1 when read, 0 when absent, -1 on error. */
static int read_norm(const char *dir, double mean[3], double std[3])
{
    char pm[4096], ps[4096];
    snprintf(pm, sizeof pm, "%s/input_mean.csv", dir);
    snprintf(ps, sizeof ps, "%s/input_std.csv", dir);
    const bool hm = cli_file_exists(pm), hs = cli_file_exists(ps);
    if (!hm && !hs) return 0;
    if (hm != hs) {
        cli_error("'%s' has %s but not %s: give both or neither", dir, hm ? "input_mean.csv" : "input_std.csv",
                  hm ? "input_std.csv" : "input_mean.csv");
        return -1;
    }
    double *m, *s;
    if (resnet_csv_read(pm, 3, "[3]", &m)) return -1;
    if (resnet_csv_read(ps, 3, "[3]", &s)) {
        free(m);
        return -1;
    }
    int rc = 1;
    for (int c = 0; c < 3; c++) {
        if (!(s[c] > 0)) {
            cli_error("'%s': standard deviations must be positive", ps);
            rc = -1;
        }
        mean[c] = m[c];
        std[c] = s[c];
    }
    free(m);
    free(s);
    return rc;
}

int resnet_import_csv(const char *dir, resnet_arch arch, resnet_shortcut shortcut, hecnn_graph **out, bool *used_file_norm)
{
    *out = NULL;
    const resnet_shape *sh = resnet_shape_of(arch);
    struct stat sb;
    if (!sh) {
        cli_error("unknown architecture");
        return -1;
    }
    if (stat(dir, &sb) || !S_ISDIR(sb.st_mode)) {
        cli_error("'%s' is not a directory of weight CSVs", dir);
        return -1;
    }
    double mean[3], std[3];
    const int norm = read_norm(dir, mean, std);
    if (norm < 0) return -1;
    if (!norm) {
        memcpy(mean, resnet_fheon_mean, sizeof mean);
        memcpy(std, resnet_fheon_std, sizeof std);
    }
    if (used_file_norm) *used_file_norm = norm == 1;
    hecnn_graph *g = NULL;
    hecnn_status st = hecnn_graph_new(&g, 3, 32, 32);
    if (!st) st = hecnn_graph_set_input_norm(g, mean, std);
    if (st) {
        cli_status_error(st, "cannot create the graph");
        hecnn_graph_free(g);
        return -1;
    }
    size_t x, id;
    unsigned c = sh->width[0];
    char stem[64];
    if (add_conv(g, dir, "layer0_conv1", 0, 3, c, 3, 1, 1, &id) || add_relu(g, id, &x)) goto fail;
    for (unsigned L = 0; L < sh->stages; L++) {
        for (unsigned B = 0; B < sh->blocks[L]; B++) {
            const unsigned cout = sh->width[L], stride = (L > 0 && B == 0) ? 2u : 1u;
            size_t a, r, b, s = x;
            snprintf(stem, sizeof stem, "layer%u_block%u_conv1", L + 1, B + 1);
            if (add_conv(g, dir, stem, x, c, cout, 3, stride, 1, &a) || add_relu(g, a, &r)) goto fail;
            snprintf(stem, sizeof stem, "layer%u_block%u_conv2", L + 1, B + 1);
            if (add_conv(g, dir, stem, r, cout, cout, 3, 1, 1, &b)) goto fail;
            if (stride != 1 || c != cout) {
                if (shortcut == RESNET_SHORTCUT_A) {
                    if (add_option_a(g, x, c, cout, &s)) goto fail;
                } else {
                    snprintf(stem, sizeof stem, "layer%u_block%u_shortcut", L + 1, B + 1);
                    if (add_conv(g, dir, stem, x, c, cout, 1, stride, 0, &s)) goto fail;
                }
            }
            if ((st = hecnn_graph_add(g, &id, b, s))) {
                cli_status_error(st, "cannot add the residual of layer%u_block%u", L + 1, B + 1);
                goto fail;
            }
            if (add_relu(g, id, &x)) goto fail;
            c = cout;
        }
    }
    const hecnn_node *last = hecnn_graph_node(g, x);
    if ((st = hecnn_graph_avgpool(g, &id, x, last->h))) {
        cli_status_error(st, "cannot add the average pooling");
        goto fail;
    }
    double *w, *b;
    char shape[32];
    snprintf(shape, sizeof shape, "[%u,%u]", sh->classes, c);
    if (read_layer(dir, "layer_fc", (size_t)sh->classes * c, shape, sh->classes, &w, &b)) goto fail;
    st = hecnn_graph_dense(g, &x, id, sh->classes, w, b);
    free(w);
    free(b);
    if (st) {
        cli_status_error(st, "cannot add the dense layer");
        goto fail;
    }
    *out = g;
    return 0;
fail:
    hecnn_graph_free(g);
    return -1;
}

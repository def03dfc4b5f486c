/* The network graph: builders (every shape and value validated), batch-norm folding, and the
 * float64 reference inference (exact, or with each ReLU replaced by its polynomial). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hecnn/graph.h"
#include "nn/graph_internal.h"
#include "util/alloc.h"
#include "util/error.h"

/* ---- the graph object ----------------------------------------------------------------------- */

hecnn_status hecnn_graph_new(hecnn_graph **out, uint32_t c, uint32_t h, uint32_t w)
{
    if (!out) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    if (c < 1 || h < 1 || w < 1 || c > HECNN_GRAPH_MAX_DIM || h > HECNN_GRAPH_MAX_DIM || w > HECNN_GRAPH_MAX_DIM)
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "input shape %ux%ux%u: each side must be in [1, %u]", c, h, w,
                          HECNN_GRAPH_MAX_DIM);
    hecnn_graph *g = hecnn_calloc(1, sizeof *g);
    if (!g) return hecnn_fail(HECNN_ERR_NO_MEMORY, "graph");
    g->cap = 16;
    g->nodes = hecnn_calloc(g->cap, sizeof *g->nodes);
    g->mean = hecnn_calloc(c, sizeof *g->mean);
    g->std = hecnn_alloc((size_t)c * sizeof *g->std);
    if (!g->nodes || !g->mean || !g->std) {
        hecnn_graph_free(g);
        return hecnn_fail(HECNN_ERR_NO_MEMORY, "graph");
    }
    for (size_t i = 0; i < c; i++) g->std[i] = 1;
    g->nodes[0] = (hecnn_node){.op = HECNN_OP_INPUT, .c = c, .h = h, .w = w};
    g->n = 1;
    *out = g;
    return HECNN_OK;
}

static void node_clear(hecnn_node *nd)
{
    hecnn_free(nd->weight);
    hecnn_free(nd->bias);
    hecnn_free(nd->coeff);
    nd->weight = nd->bias = nd->coeff = NULL;
}

void hecnn_graph_free(hecnn_graph *g)
{
    if (!g) return;
    for (size_t i = 0; i < g->n; i++) node_clear(&g->nodes[i]);
    hecnn_free(g->nodes);
    hecnn_free(g->mean);
    hecnn_free(g->std);
    hecnn_free(g);
}

size_t hecnn_graph_node_count(const hecnn_graph *g) { return g ? g->n : 0; }

const hecnn_node *hecnn_graph_node(const hecnn_graph *g, size_t id) { return g && id < g->n ? &g->nodes[id] : NULL; }

size_t hecnn_graph_output(const hecnn_graph *g) { return g && g->n ? g->n - 1 : 0; }

size_t hecnn_graph_node_size(const hecnn_graph *g, size_t id)
{
    if (!g || id >= g->n) return 0;
    const hecnn_node *nd = &g->nodes[id];
    return (size_t)nd->c * nd->h * nd->w;
}

/* ---- builders ------------------------------------------------------------------------------- */

static hecnn_status check_finite(const double *v, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "%s[%zu] is %g (not finite)", what, i, v[i]);
    return HECNN_OK;
}

static hecnn_status check_input(const hecnn_graph *g, size_t in, const char *op)
{
    if (!g) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL graph");
    if (in >= g->n)
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "%s reads node %zu; the graph has %zu nodes", op, in, g->n);
    if (g->n >= HECNN_GRAPH_MAX_NODES)
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "a graph holds at most %u nodes", HECNN_GRAPH_MAX_NODES);
    return HECNN_OK;
}

/* Room for `more` scalars within HECNN_GRAPH_MAX_WEIGHTS (so every product below fits a size_t). */
static hecnn_status check_budget(const hecnn_graph *g, size_t more, const char *op)
{
    if (more > HECNN_GRAPH_MAX_WEIGHTS || g->scalars + more > HECNN_GRAPH_MAX_WEIGHTS)
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "%s needs %zu more scalars; a graph holds at most %u (it has %zu)", op,
                          more, HECNN_GRAPH_MAX_WEIGHTS, g->scalars);
    return HECNN_OK;
}

static double *copy_array(const double *src, size_t n)
{
    double *p = hecnn_alloc((n ? n : 1) * sizeof *p);
    if (p && n) memcpy(p, src, n * sizeof *p);
    return p;
}

/* Appends *nd (taking its arrays, freed on failure) and sets *id. */
static hecnn_status push(hecnn_graph *g, hecnn_node *nd, size_t *id)
{
    if (g->n == g->cap) {
        const size_t cap = g->cap * 2;
        hecnn_node *nodes = hecnn_calloc(cap, sizeof *nodes);
        if (!nodes) {
            node_clear(nd);
            return hecnn_fail(HECNN_ERR_NO_MEMORY, "graph nodes");
        }
        memcpy(nodes, g->nodes, g->n * sizeof *nodes);
        hecnn_free(g->nodes);
        g->nodes = nodes;
        g->cap = cap;
    }
    g->scalars += nd->n_weight + nd->n_bias + (nd->coeff ? nd->degree + 1 : 0);
    g->nodes[g->n] = *nd;
    if (id) *id = g->n;
    g->n++;
    return HECNN_OK;
}

/* A node with copies of (weight, n_weight) and (bias, n_bias; NULL = zeros). */
static hecnn_status with_arrays(hecnn_node *nd, const double *weight, size_t n_weight, const double *bias, size_t n_bias)
{
    nd->weight = copy_array(weight, n_weight);
    nd->bias = bias ? copy_array(bias, n_bias) : hecnn_calloc(n_bias ? n_bias : 1, sizeof *nd->bias);
    nd->n_weight = n_weight;
    nd->n_bias = n_bias;
    if (!nd->weight || !nd->bias) {
        node_clear(nd);
        return hecnn_fail(HECNN_ERR_NO_MEMORY, "node weights");
    }
    return HECNN_OK;
}

hecnn_status hecnn_graph_conv2d(hecnn_graph *g, size_t *id, size_t in, uint32_t cout, uint32_t k, uint32_t stride,
                                uint32_t pad, const double *weight, const double *bias)
{
    hecnn_status st = check_input(g, in, "conv2d");
    if (st) return st;
    const hecnn_node *x = &g->nodes[in];
    if (!weight) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "conv2d: NULL weight");
    if (cout < 1 || cout > HECNN_GRAPH_MAX_DIM)
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "conv2d: %u output channels, must be in [1, %u]", cout,
                          HECNN_GRAPH_MAX_DIM);
    if (k < 1 || k > HECNN_GRAPH_MAX_KERNEL)
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "conv2d: kernel %u, must be in [1, %u]", k, HECNN_GRAPH_MAX_KERNEL);
    if (stride < 1 || stride > HECNN_GRAPH_MAX_DIM)
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "conv2d: stride %u, must be in [1, %u]", stride, HECNN_GRAPH_MAX_DIM);
    /* pad >= k would give windows of padding only */
    if (pad >= k) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "conv2d: padding %u, must be below the kernel size %u", pad, k);
    if ((uint64_t)x->h + 2ull * pad < k || (uint64_t)x->w + 2ull * pad < k)
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "conv2d: kernel %u larger than the padded input %ux%u (padding %u)", k,
                          x->h, x->w, pad);
    const uint32_t oh = (x->h + 2 * pad - k) / stride + 1, ow = (x->w + 2 * pad - k) / stride + 1;
    const size_t n_weight = (size_t)cout * x->c * k * k;
    if ((st = check_budget(g, n_weight + cout, "conv2d"))) return st;
    if ((st = check_finite(weight, n_weight, "conv2d weight"))) return st;
    if (bias && (st = check_finite(bias, cout, "conv2d bias"))) return st;
    hecnn_node nd = {.op = HECNN_OP_CONV2D, .in = {(uint32_t)in, 0}, .c = cout, .h = oh, .w = ow, .k = k, .stride = stride, .pad = pad};
    if ((st = with_arrays(&nd, weight, n_weight, bias, cout))) return st;
    return push(g, &nd, id);
}

hecnn_status hecnn_graph_batchnorm(hecnn_graph *g, size_t *id, size_t in, const double *scale, const double *shift)
{
    hecnn_status st = check_input(g, in, "batchnorm");
    if (st) return st;
    if (!scale || !shift) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "batchnorm: NULL scale or shift");
    const hecnn_node *x = &g->nodes[in];
    if ((st = check_budget(g, 2 * (size_t)x->c, "batchnorm"))) return st;
    if ((st = check_finite(scale, x->c, "batchnorm scale"))) return st;
    if ((st = check_finite(shift, x->c, "batchnorm shift"))) return st;
    hecnn_node nd = {.op = HECNN_OP_BATCHNORM, .in = {(uint32_t)in, 0}, .c = x->c, .h = x->h, .w = x->w};
    if ((st = with_arrays(&nd, scale, x->c, shift, x->c))) return st;
    return push(g, &nd, id);
}

hecnn_status hecnn_graph_batchnorm_stats(hecnn_graph *g, size_t *id, size_t in, const double *gamma, const double *beta,
                                         const double *mean, const double *var, double eps)
{
    hecnn_status st = check_input(g, in, "batchnorm");
    if (st) return st;
    if (!gamma || !beta || !mean || !var) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "batchnorm: NULL statistics");
    if (!isfinite(eps) || eps < 0) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "batchnorm: eps %g, must be finite and >= 0", eps);
    const size_t c = g->nodes[in].c;
    double *scale = hecnn_alloc(2 * c * sizeof *scale);
    if (!scale) return hecnn_fail(HECNN_ERR_NO_MEMORY, "batchnorm");
    double *shift = scale + c;
    for (size_t i = 0; i < c && !st; i++) {
        if (!(var[i] + eps > 0) || !isfinite(var[i]))
            st = hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "batchnorm: var[%zu] + eps = %g, must be positive and finite", i,
                            var[i] + eps);
        scale[i] = gamma[i] / sqrt(var[i] + eps);
        shift[i] = beta[i] - mean[i] * scale[i];
    }
    if (!st) st = hecnn_graph_batchnorm(g, id, in, scale, shift); /* rejects non-finite results */
    hecnn_free(scale);
    return st;
}

hecnn_status hecnn_graph_dense(hecnn_graph *g, size_t *id, size_t in, uint32_t out, const double *weight, const double *bias)
{
    hecnn_status st = check_input(g, in, "dense");
    if (st) return st;
    if (!weight) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "dense: NULL weight");
    if (out < 1 || out > HECNN_GRAPH_MAX_DIM)
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "dense: %u outputs, must be in [1, %u]", out, HECNN_GRAPH_MAX_DIM);
    const size_t n_in = hecnn_graph_node_size(g, in);
    if (n_in > HECNN_GRAPH_MAX_WEIGHTS) /* keeps out * n_in below 2^38 */
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "dense: %zu inputs exceed the weight limit %u", n_in,
                          HECNN_GRAPH_MAX_WEIGHTS);
    const size_t n_weight = (size_t)out * n_in;
    if ((st = check_budget(g, n_weight + out, "dense"))) return st;
    if ((st = check_finite(weight, n_weight, "dense weight"))) return st;
    if (bias && (st = check_finite(bias, out, "dense bias"))) return st;
    hecnn_node nd = {.op = HECNN_OP_DENSE, .in = {(uint32_t)in, 0}, .c = out, .h = 1, .w = 1};
    if ((st = with_arrays(&nd, weight, n_weight, bias, out))) return st;
    return push(g, &nd, id);
}

hecnn_status hecnn_graph_avgpool(hecnn_graph *g, size_t *id, size_t in, uint32_t k)
{
    hecnn_status st = check_input(g, in, "avgpool");
    if (st) return st;
    const hecnn_node *x = &g->nodes[in];
    if (k < 1 || x->h % k || x->w % k)
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "avgpool: window %u must divide the input %ux%u", k, x->h, x->w);
    hecnn_node nd = {.op = HECNN_OP_AVGPOOL, .in = {(uint32_t)in, 0}, .c = x->c, .h = x->h / k, .w = x->w / k, .k = k};
    return push(g, &nd, id);
}

hecnn_status hecnn_graph_add(hecnn_graph *g, size_t *id, size_t a, size_t b)
{
    hecnn_status st = check_input(g, a, "add");
    if (st || (st = check_input(g, b, "add"))) return st;
    const hecnn_node *x = &g->nodes[a], *y = &g->nodes[b];
    if (x->c != y->c || x->h != y->h || x->w != y->w)
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "add: node %zu is %ux%ux%u, node %zu is %ux%ux%u", a, x->c, x->h, x->w, b,
                          y->c, y->h, y->w);
    hecnn_node nd = {.op = HECNN_OP_ADD, .in = {(uint32_t)a, (uint32_t)b}, .c = x->c, .h = x->h, .w = x->w};
    return push(g, &nd, id);
}

hecnn_status hecnn_graph_relu(hecnn_graph *g, size_t *id, size_t in)
{
    hecnn_status st = check_input(g, in, "relu");
    if (st) return st;
    const hecnn_node *x = &g->nodes[in];
    hecnn_node nd = {.op = HECNN_OP_RELU, .in = {(uint32_t)in, 0}, .c = x->c, .h = x->h, .w = x->w};
    return push(g, &nd, id);
}

static hecnn_status check_coeffs(const hecnn_graph *g, const double *coeff, size_t degree, const char *what)
{
    if (!coeff) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "%s: NULL coefficients", what);
    if (degree > HECNN_GRAPH_MAX_POLY)
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "%s: degree %zu, at most %u", what, degree, HECNN_GRAPH_MAX_POLY);
    hecnn_status st = check_budget(g, degree + 1, what);
    return st ? st : check_finite(coeff, degree + 1, what);
}

hecnn_status hecnn_graph_poly(hecnn_graph *g, size_t *id, size_t in, const double *coeff, size_t degree)
{
    hecnn_status st = check_input(g, in, "poly");
    if (st || (st = check_coeffs(g, coeff, degree, "poly"))) return st;
    const hecnn_node *x = &g->nodes[in];
    hecnn_node nd = {.op = HECNN_OP_POLY, .in = {(uint32_t)in, 0}, .c = x->c, .h = x->h, .w = x->w, .degree = degree};
    if (!(nd.coeff = copy_array(coeff, degree + 1))) return hecnn_fail(HECNN_ERR_NO_MEMORY, "poly coefficients");
    return push(g, &nd, id);
}

/* ---- calibration, normalisation ------------------------------------------------------------- */

static hecnn_status relu_node(hecnn_graph *g, size_t id, hecnn_node **out)
{
    if (!g) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL graph");
    if (id >= g->n || g->nodes[id].op != HECNN_OP_RELU)
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "node %zu is not a relu", id);
    *out = &g->nodes[id];
    return HECNN_OK;
}

hecnn_status hecnn_graph_set_relu_range(hecnn_graph *g, size_t id, double range)
{
    hecnn_node *nd = NULL;
    hecnn_status st = relu_node(g, id, &nd);
    if (st) return st;
    if (!isfinite(range) || range < 0)
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "relu %zu: range %g, must be finite and >= 0", id, range);
    nd->range = range;
    return HECNN_OK;
}

hecnn_status hecnn_graph_set_relu_approx(hecnn_graph *g, size_t id, const double *cheb, size_t degree)
{
    hecnn_node *nd = NULL;
    hecnn_status st = relu_node(g, id, &nd);
    if (st) return st;
    const size_t old = nd->coeff ? nd->degree + 1 : 0;
    if (!cheb) { /* NULL: no approximation */
        hecnn_free(nd->coeff);
        nd->coeff = NULL;
        nd->degree = 0;
        g->scalars -= old;
        return HECNN_OK;
    }
    g->scalars -= old; /* the new coefficients replace the old within the budget */
    st = check_coeffs(g, cheb, degree, "relu approximation");
    double *c = st ? NULL : copy_array(cheb, degree + 1);
    if (!st && !c) st = hecnn_fail(HECNN_ERR_NO_MEMORY, "relu approximation");
    if (st) {
        g->scalars += old;
        return st;
    }
    hecnn_free(nd->coeff);
    nd->coeff = c;
    nd->degree = degree;
    g->scalars += degree + 1;
    return HECNN_OK;
}

hecnn_status hecnn_graph_set_input_norm(hecnn_graph *g, const double *mean, const double *std)
{
    if (!g || !mean || !std) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    const size_t c = g->nodes[0].c;
    hecnn_status st = check_finite(mean, c, "input mean");
    if (st || (st = check_finite(std, c, "input std"))) return st;
    for (size_t i = 0; i < c; i++)
        if (!(std[i] > 0)) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "input std[%zu] is %g, must be positive", i, std[i]);
    memcpy(g->mean, mean, c * sizeof *mean);
    memcpy(g->std, std, c * sizeof *std);
    return HECNN_OK;
}

const double *hecnn_graph_input_mean(const hecnn_graph *g) { return g ? g->mean : NULL; }
const double *hecnn_graph_input_std(const hecnn_graph *g) { return g ? g->std : NULL; }

/* ---- batch-norm folding --------------------------------------------------------------------- */

static size_t readers(const hecnn_graph *g, size_t id)
{
    size_t r = 0;
    for (size_t i = id + 1; i < g->n; i++) {
        const hecnn_node *nd = &g->nodes[i];
        r += nd->in[0] == id;
        r += nd->op == HECNN_OP_ADD && nd->in[1] == id;
    }
    return r;
}

hecnn_status hecnn_graph_fold_batchnorm(hecnn_graph *g)
{
    if (!g) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL graph");
    for (size_t i = 1; i < g->n;) {
        hecnn_node *bn = &g->nodes[i];
        const size_t j = bn->in[0];
        hecnn_node *cv = &g->nodes[j];
        if (bn->op != HECNN_OP_BATCHNORM || cv->op != HECNN_OP_CONV2D || readers(g, j) != 1) {
            i++;
            continue;
        }
        const size_t per = cv->n_weight / cv->c;
        /* check first, so a failure leaves this pair unfolded */
        for (size_t o = 0; o < cv->c; o++) {
            const double s = bn->weight[o];
            bool ok = isfinite(s * cv->bias[o] + bn->bias[o]);
            for (size_t t = 0; t < per && ok; t++) ok = isfinite(s * cv->weight[o * per + t]);
            if (!ok)
                return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "folding batchnorm %zu into conv %zu overflows (channel %zu)", i, j, o);
        }
        for (size_t o = 0; o < cv->c; o++) {
            const double s = bn->weight[o];
            for (size_t t = 0; t < per; t++) cv->weight[o * per + t] *= s;
            cv->bias[o] = s * cv->bias[o] + bn->bias[o];
        }
        g->scalars -= bn->n_weight + bn->n_bias;
        node_clear(bn);
        memmove(&g->nodes[i], &g->nodes[i + 1], (g->n - i - 1) * sizeof *g->nodes);
        g->n--;
        /* readers of the BN now read the conv; later ids shift down by one */
        for (size_t m = i; m < g->n; m++) {
            hecnn_node *nd = &g->nodes[m];
            const size_t nin = nd->op == HECNN_OP_ADD ? 2 : 1;
            for (size_t t = 0; t < nin; t++) {
                if (nd->in[t] == i) nd->in[t] = (uint32_t)j;
                else if (nd->in[t] > i) nd->in[t]--;
            }
        }
    }
    return HECNN_OK;
}

/* ---- reference inference: convolution ------------------------------------------------------ */

/*
 * A convolution is a matrix product: out[co][t] = bias[co] + sum_j W[co][j] X[j][t], j running over
 * (ci, ky, kx). X is never formed: the input is laid out once per image as "phase planes" (the
 * zero-padded input split by row and column modulo the stride; for stride 1 the padded input
 * itself), each hq x wq, so that for every tap row j of X is one contiguous run starting at
 * offs[j] in that layout. Outputs are computed over "extended" rows of wq columns (the columns
 * past ow are discarded), so t runs contiguously over the whole output plane: no bounds test, no
 * per-row overhead. The AVX2 kernel keeps a 4-channel x 12-column block of outputs in registers
 * over the whole sum (each input load feeds four FMAs, each weight broadcast twelve); the portable
 * kernel is the same loop nest in plain C. The two differ only in rounding (FMA). */

#define CONV_MR 4 /* output channels per block */
#define CONV_NR 12 /* extended output columns per block */

typedef struct conv_plan {
    double *wpk;     /* [cout / MR rounded up][kdim][MR]: weights, zero rows past cout */
    size_t *offs;    /* [kdim]: start of each tap's run in the phase planes */
    size_t kdim;     /* cin * k * k */
    size_t hq, wq;   /* phase plane shape */
    size_t len;      /* oh * wq: extended outputs per channel, rounded up to CONV_NR */
    size_t sp;       /* phases per dimension: min(stride, k) (the others are never read) */
    size_t planes;   /* cin * sp^2 * hq * wq values of phase planes */
    size_t need;     /* values read: planes, then zeros up to max(offs) + len */
} conv_plan;

static void conv_plan_free(conv_plan *cp)
{
    if (!cp) return;
    hecnn_free(cp->wpk);
    hecnn_free(cp->offs);
    cp->wpk = NULL;
    cp->offs = NULL;
}

static hecnn_status conv_plan_new(conv_plan *cp, const hecnn_node *nd, const hecnn_node *src)
{
    const size_t cin = src->c, k = nd->k, s = nd->stride, cout = nd->c;
    const size_t hp = src->h + 2 * (size_t)nd->pad, wp = src->w + 2 * (size_t)nd->pad;
    cp->kdim = cin * k * k;
    cp->hq = (hp + s - 1) / s;
    cp->wq = (wp + s - 1) / s;
    cp->len = ((size_t)nd->h * cp->wq + CONV_NR - 1) / CONV_NR * CONV_NR;
    cp->sp = s < k ? s : k;
    cp->planes = cin * cp->sp * cp->sp * cp->hq * cp->wq;
    const size_t blocks = (cout + CONV_MR - 1) / CONV_MR;
    cp->wpk = hecnn_calloc(blocks * cp->kdim * CONV_MR, sizeof *cp->wpk);
    cp->offs = hecnn_alloc(cp->kdim * sizeof *cp->offs);
    if (!cp->wpk || !cp->offs) {
        conv_plan_free(cp);
        return hecnn_fail(HECNN_ERR_NO_MEMORY, "convolution plan");
    }
    const size_t plane = cp->hq * cp->wq;
    size_t top = 0;
    for (size_t ci = 0, j = 0; ci < cin; ci++)
        for (size_t ky = 0; ky < k; ky++)
            for (size_t kx = 0; kx < k; kx++, j++) {
                const size_t phase = (ky % s) * cp->sp + kx % s;
                cp->offs[j] = (ci * cp->sp * cp->sp + phase) * plane + (ky / s) * cp->wq + kx / s;
                if (cp->offs[j] > top) top = cp->offs[j];
            }
    cp->need = top + cp->len > cp->planes ? top + cp->len : cp->planes;
    for (size_t co = 0; co < cout; co++)
        for (size_t j = 0; j < cp->kdim; j++)
            cp->wpk[((co / CONV_MR) * cp->kdim + j) * CONV_MR + co % CONV_MR] = nd->weight[co * cp->kdim + j];
    return HECNN_OK;
}

/* The phase planes of image x (input node src) into xq (cp->need values). */
static void conv_layout(const conv_plan *cp, const hecnn_node *nd, const hecnn_node *src, const double *x, double *xq)
{
    const size_t s = nd->stride, p = nd->pad, h = src->h, w = src->w, hq = cp->hq, wq = cp->wq, sp = cp->sp;
    memset(xq, 0, cp->need * sizeof *xq);
    if (s == 1) {
        for (size_t ci = 0; ci < src->c; ci++)
            for (size_t r = 0; r < h; r++) memcpy(xq + (ci * hq + r + p) * wq + p, x + (ci * h + r) * w, w * sizeof *x);
        return;
    }
    /* padded (R, C) = input (R - p, C - p) goes to phase (R % s, C % s), position (R / s, C / s) */
    for (size_t ci = 0; ci < src->c; ci++)
        for (size_t r = 0; r < h; r++) {
            const size_t R = r + p;
            if (R % s >= sp) continue;
            const double *row = x + (ci * h + r) * w;
            for (size_t c = 0; c < w; c++) {
                const size_t C = c + p;
                if (C % s < sp) xq[((ci * sp * sp + (R % s) * sp + C % s) * hq + R / s) * wq + C / s] = row[c];
            }
        }
}

/* ext[block][MR][len] = the extended outputs of every channel block (no bias). */
static void conv_gemm_portable(const conv_plan *cp, size_t blocks, const double *xq, double *ext)
{
    for (size_t b = 0; b < blocks; b++) {
        const double *wb = cp->wpk + b * cp->kdim * CONV_MR;
        double *e = ext + b * CONV_MR * cp->len;
        for (size_t t0 = 0; t0 < cp->len; t0 += CONV_NR) {
            double acc[CONV_MR][CONV_NR] = {{0}};
            for (size_t j = 0; j < cp->kdim; j++) {
                const double *q = xq + cp->offs[j] + t0, *wj = wb + j * CONV_MR;
                for (size_t r = 0; r < CONV_MR; r++)
                    for (size_t c = 0; c < CONV_NR; c++) acc[r][c] += wj[r] * q[c];
            }
            for (size_t r = 0; r < CONV_MR; r++) memcpy(e + r * cp->len + t0, acc[r], sizeof acc[r]);
        }
    }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define GRAPH_HAVE_FMA_KERNEL 1
__attribute__((target("avx2,fma"))) static void conv_gemm_fma(const conv_plan *cp, size_t blocks, const double *xq,
                                                              double *ext)
{
    for (size_t b = 0; b < blocks; b++) {
        const double *wb = cp->wpk + b * cp->kdim * CONV_MR;
        double *e = ext + b * CONV_MR * cp->len;
        for (size_t t0 = 0; t0 < cp->len; t0 += CONV_NR) {
            __m256d a00 = _mm256_setzero_pd(), a01 = a00, a02 = a00, a10 = a00, a11 = a00, a12 = a00, a20 = a00,
                    a21 = a00, a22 = a00, a30 = a00, a31 = a00, a32 = a00;
            const double *base = xq + t0;
            for (size_t j = 0; j < cp->kdim; j++) {
                const double *q = base + cp->offs[j], *wj = wb + j * CONV_MR;
                const __m256d x0 = _mm256_loadu_pd(q), x1 = _mm256_loadu_pd(q + 4), x2 = _mm256_loadu_pd(q + 8);
                __m256d w = _mm256_broadcast_sd(wj);
                a00 = _mm256_fmadd_pd(w, x0, a00), a01 = _mm256_fmadd_pd(w, x1, a01), a02 = _mm256_fmadd_pd(w, x2, a02);
                w = _mm256_broadcast_sd(wj + 1);
                a10 = _mm256_fmadd_pd(w, x0, a10), a11 = _mm256_fmadd_pd(w, x1, a11), a12 = _mm256_fmadd_pd(w, x2, a12);
                w = _mm256_broadcast_sd(wj + 2);
                a20 = _mm256_fmadd_pd(w, x0, a20), a21 = _mm256_fmadd_pd(w, x1, a21), a22 = _mm256_fmadd_pd(w, x2, a22);
                w = _mm256_broadcast_sd(wj + 3);
                a30 = _mm256_fmadd_pd(w, x0, a30), a31 = _mm256_fmadd_pd(w, x1, a31), a32 = _mm256_fmadd_pd(w, x2, a32);
            }
            double *r0 = e + t0, *r1 = r0 + cp->len, *r2 = r1 + cp->len, *r3 = r2 + cp->len;
            _mm256_storeu_pd(r0, a00), _mm256_storeu_pd(r0 + 4, a01), _mm256_storeu_pd(r0 + 8, a02);
            _mm256_storeu_pd(r1, a10), _mm256_storeu_pd(r1 + 4, a11), _mm256_storeu_pd(r1 + 8, a12);
            _mm256_storeu_pd(r2, a20), _mm256_storeu_pd(r2 + 4, a21), _mm256_storeu_pd(r2 + 8, a22);
            _mm256_storeu_pd(r3, a30), _mm256_storeu_pd(r3 + 4, a31), _mm256_storeu_pd(r3 + 8, a32);
        }
    }
}
#endif

typedef void (*conv_fn)(const conv_plan *, size_t, const double *, double *);

/* HECNN_FORCE_ISA=portable selects the portable kernel (as for the NTT kernels, src/math/cpu.c). */
static conv_fn conv_kernel(void)
{
#ifdef GRAPH_HAVE_FMA_KERNEL
    const char *force = getenv("HECNN_FORCE_ISA");
    if (force && !strcmp(force, "portable")) return conv_gemm_portable;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return conv_gemm_fma;
#endif
    return conv_gemm_portable;
}

/* Scratch values conv_forward needs: the phase planes, then the extended outputs. */
static size_t conv_scratch(const conv_plan *cp, const hecnn_node *nd)
{
    return cp->need + (nd->c + CONV_MR - 1) / CONV_MR * CONV_MR * cp->len;
}

static void conv_forward(conv_fn kern, const conv_plan *cp, const hecnn_node *nd, const hecnn_node *src,
                         const double *x, double *y, double *scratch)
{
    conv_layout(cp, nd, src, x, scratch);
    double *ext = scratch + cp->need;
    kern(cp, (nd->c + CONV_MR - 1) / CONV_MR, scratch, ext);
    const size_t oh = nd->h, ow = nd->w;
    for (size_t co = 0; co < nd->c; co++) {
        const double b = nd->bias[co];
        for (size_t oy = 0; oy < oh; oy++) {
            const double *e = ext + co * cp->len + oy * cp->wq;
            double *d = y + (co * oh + oy) * ow;
            for (size_t ox = 0; ox < ow; ox++) d[ox] = e[ox] + b;
        }
    }
}

static void dense_forward(const hecnn_node *nd, const double *x, double *y)
{
    const size_t n = nd->n_weight / nd->c;
    for (size_t o = 0; o < nd->c; o++) {
        const double *wr = nd->weight + o * n;
        double acc[4] = {0, 0, 0, 0}; /* four chains: the loop vectorises without reassociation */
        size_t i = 0;
        for (; i + 4 <= n; i += 4)
            for (size_t l = 0; l < 4; l++) acc[l] += wr[i + l] * x[i + l];
        for (; i < n; i++) acc[0] += wr[i] * x[i];
        y[o] = nd->bias[o] + ((acc[0] + acc[1]) + (acc[2] + acc[3]));
    }
}

static void avgpool_forward(const hecnn_node *nd, const hecnn_node *src, const double *x, double *y)
{
    const size_t k = nd->k, h = src->h, w = src->w, oh = nd->h, ow = nd->w;
    const double inv = 1.0 / ((double)k * (double)k);
    for (size_t c = 0; c < nd->c; c++)
        for (size_t oy = 0; oy < oh; oy++) {
            double *d = y + (c * oh + oy) * ow;
            for (size_t ox = 0; ox < ow; ox++) d[ox] = 0;
            for (size_t ky = 0; ky < k; ky++) {
                const double *r = x + (c * h + oy * k + ky) * w;
                for (size_t ox = 0; ox < ow; ox++)
                    for (size_t kx = 0; kx < k; kx++) d[ox] += r[ox * k + kx];
            }
            for (size_t ox = 0; ox < ow; ox++) d[ox] *= inv;
        }
}

/* y[t] = r p(x[t] / r) for n values: Clenshaw on blocks of 16 independent recurrences, so the
 * loop runs at the multiplier's throughput instead of its latency (degree 255: ~10x). */
static void clenshaw_scaled(const double *c, size_t d, double r, const double *x, double *y, size_t n)
{
    enum { BLOCK = 16 };
    const double inv = 1 / r;
    for (size_t t0 = 0; t0 < n; t0 += BLOCK) {
        const size_t m = n - t0 < BLOCK ? n - t0 : BLOCK;
        double v[BLOCK] = {0}, b1[BLOCK] = {0}, b2[BLOCK] = {0};
        for (size_t j = 0; j < m; j++) v[j] = x[t0 + j] * inv;
        for (size_t i = d; i >= 1; i--)
            for (size_t j = 0; j < BLOCK; j++) {
                const double t = 2 * v[j] * b1[j] - b2[j] + c[i];
                b2[j] = b1[j];
                b1[j] = t;
            }
        for (size_t j = 0; j < m; j++) y[t0 + j] = r * (v[j] * b1[j] - b2[j] + c[0]);
    }
}

static double horner(const double *c, size_t d, double x)
{
    double r = c[d];
    for (size_t i = d; i-- > 0;) r = r * x + c[i];
    return r;
}

static double absmax_of(const double *v, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        const double a = fabs(v[i]);
        if (a > m || isnan(a)) m = isnan(a) ? INFINITY : a;
    }
    return m;
}

typedef struct infer_plan {
    const hecnn_graph *g;
    hecnn_infer_mode mode;
    conv_fn conv;
    conv_plan *cp;    /* per node (convolutions only) */
    size_t *off;      /* offset of each node's values in a thread's arena */
    size_t arena;     /* values per thread, convolution scratch included */
    size_t scratch;   /* offset of that scratch */
} infer_plan;

static void plan_free(infer_plan *pl)
{
    for (size_t i = 0; pl->cp && i < pl->g->n; i++) conv_plan_free(&pl->cp[i]);
    hecnn_free(pl->cp);
    hecnn_free(pl->off);
}

/* One image through every node; local absmax / out-of-range counts (NULL: none kept). */
static void infer_image(const infer_plan *pl, const double *in, double *out, double *mem, double *absmax, size_t *oor)
{
    const hecnn_graph *g = pl->g;
    const size_t nin = hecnn_graph_node_size(g, 0);
    memcpy(mem + pl->off[0], in, nin * sizeof *in);
    if (absmax) absmax[0] = fmax(absmax[0], absmax_of(in, nin));
    for (size_t i = 1; i < g->n; i++) {
        const hecnn_node *nd = &g->nodes[i], *src = &g->nodes[nd->in[0]];
        const double *x = mem + pl->off[nd->in[0]];
        double *y = mem + pl->off[i];
        const size_t n = hecnn_graph_node_size(g, i);
        bool activation = false;
        switch (nd->op) {
        case HECNN_OP_CONV2D:
            conv_forward(pl->conv, &pl->cp[i], nd, src, x, y, mem + pl->scratch);
            break;
        case HECNN_OP_BATCHNORM: {
            const size_t plane = (size_t)nd->h * nd->w;
            for (size_t c = 0; c < nd->c; c++)
                for (size_t t = 0; t < plane; t++) y[c * plane + t] = nd->weight[c] * x[c * plane + t] + nd->bias[c];
            break;
        }
        case HECNN_OP_DENSE:
            dense_forward(nd, x, y);
            break;
        case HECNN_OP_AVGPOOL:
            avgpool_forward(nd, src, x, y);
            break;
        case HECNN_OP_ADD: {
            const double *x2 = mem + pl->off[nd->in[1]];
            for (size_t t = 0; t < n; t++) y[t] = x[t] + x2[t];
            break;
        }
        case HECNN_OP_RELU:
            activation = true;
            if (pl->mode == HECNN_INFER_APPROX) {
                clenshaw_scaled(nd->coeff, nd->degree, nd->range, x, y, n);
            } else {
                for (size_t t = 0; t < n; t++) y[t] = x[t] > 0 ? x[t] : 0;
            }
            break;
        case HECNN_OP_POLY:
            activation = true;
            for (size_t t = 0; t < n; t++) y[t] = horner(nd->coeff, nd->degree, x[t]);
            break;
        default: /* HECNN_OP_INPUT appears only at 0; the builders admit nothing else */
            break;
        }
        if (absmax) {
            const double m = activation ? absmax_of(x, n) : absmax_of(y, n);
            absmax[i] = fmax(absmax[i], m);
            if (nd->op == HECNN_OP_RELU && nd->range > 0 && m > nd->range) oor[i]++;
        } else if (oor && nd->op == HECNN_OP_RELU && nd->range > 0 && absmax_of(x, n) > nd->range) {
            oor[i]++;
        }
    }
    memcpy(out, mem + pl->off[g->n - 1], hecnn_graph_node_size(g, g->n - 1) * sizeof *out);
}

/* Where each node's values live in a thread's arena: a node's buffer is reused once its last
 * reader has run (the working set of one image then stays in cache). *total = the values used. */
static hecnn_status place_values(const hecnn_graph *g, size_t *off, size_t *total)
{
    const size_t n = g->n;
    size_t *last = hecnn_alloc(4 * n * sizeof *last); /* last reader; buffer offset, size, owner */
    if (!last) return hecnn_fail(HECNN_ERR_NO_MEMORY, "inference plan");
    size_t *boff = last + n, *bsize = boff + n, *owner = bsize + n, nbuf = 0, end = 0;
    const size_t none = SIZE_MAX;
    for (size_t i = 0; i < n; i++) last[i] = i;
    for (size_t i = 1; i < n; i++) {
        last[g->nodes[i].in[0]] = i;
        if (g->nodes[i].op == HECNN_OP_ADD) last[g->nodes[i].in[1]] = i;
    }
    last[n - 1] = n; /* the output is copied out at the end */
    hecnn_status st = HECNN_OK;
    for (size_t i = 0; i < n && !st; i++) {
        const size_t sz = hecnn_graph_node_size(g, i);
        size_t best = none; /* the smallest free buffer that fits */
        for (size_t b = 0; b < nbuf; b++)
            if (owner[b] == none && bsize[b] >= sz && (best == none || bsize[b] < bsize[best])) best = b;
        if (best == none) {
            if (sz > SIZE_MAX / 16 - end) {
                st = hecnn_fail(HECNN_ERR_NO_MEMORY, "inference: the activations do not fit in memory");
                break;
            }
            best = nbuf++;
            boff[best] = end;
            bsize[best] = sz;
            end += sz;
        }
        owner[best] = i;
        off[i] = boff[best];
        /* inputs read for the last time by node i are free from node i + 1 on */
        for (size_t b = 0; b < nbuf; b++)
            if (owner[b] != none && owner[b] != i && last[owner[b]] <= i) owner[b] = none;
    }
    hecnn_free(last);
    *total = end;
    return st;
}

hecnn_status hecnn_graph_infer(const hecnn_graph *g, hecnn_infer_mode mode, const double *input, size_t n, double *output,
                               hecnn_infer_stats *stats)
{
    if (!g || (n && (!input || !output))) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    if (mode != HECNN_INFER_EXACT && mode != HECNN_INFER_APPROX)
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "unknown inference mode %d", (int)mode);
    if (mode == HECNN_INFER_APPROX)
        for (size_t i = 1; i < g->n; i++) {
            const hecnn_node *nd = &g->nodes[i];
            if (nd->op != HECNN_OP_RELU) continue;
            if (!(nd->range > 0)) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "approximate inference: relu %zu has no range", i);
            if (!nd->coeff)
                return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "approximate inference: relu %zu has no approximation", i);
        }
    if (n == 0) return HECNN_OK;
    infer_plan pl = {.g = g, .mode = mode, .conv = conv_kernel()};
    pl.off = hecnn_alloc(g->n * sizeof *pl.off);
    pl.cp = hecnn_calloc(g->n, sizeof *pl.cp);
    hecnn_status st = pl.off && pl.cp ? HECNN_OK : hecnn_fail(HECNN_ERR_NO_MEMORY, "inference plan");
    size_t total = 0, scratch = 0;
    if (!st) st = place_values(g, pl.off, &total);
    for (size_t i = 0; i < g->n && !st; i++) {
        const hecnn_node *nd = &g->nodes[i];
        if (nd->op == HECNN_OP_CONV2D && !(st = conv_plan_new(&pl.cp[i], nd, &g->nodes[nd->in[0]]))) {
            const size_t cs = conv_scratch(&pl.cp[i], nd);
            if (cs > scratch) scratch = cs;
        }
    }
    if (!st && scratch > SIZE_MAX / 16 - total)
        st = hecnn_fail(HECNN_ERR_NO_MEMORY, "inference: the activations do not fit in memory");
    if (st) {
        plan_free(&pl);
        return st;
    }
    pl.scratch = total;
    pl.arena = total + scratch;
    const size_t nin = hecnn_graph_node_size(g, 0), nout = hecnn_graph_node_size(g, g->n - 1);
    int failed = 0;
#pragma omp parallel if (n > 1)
    {
        double *mem = hecnn_alloc(pl.arena * sizeof *mem);
        double *amax = stats && stats->absmax ? hecnn_calloc(g->n, sizeof *amax) : NULL;
        size_t *oor = stats && stats->out_of_range ? hecnn_calloc(g->n, sizeof *oor) : NULL;
        const bool ok = mem && (!stats || !stats->absmax || amax) && (!stats || !stats->out_of_range || oor);
        if (!ok) {
#pragma omp atomic write
            failed = 1;
        }
        /* every thread takes part in the loop (a worksharing construct), idle if it failed */
#pragma omp for schedule(dynamic, 4)
        for (size_t img = 0; img < n; img++)
            if (ok) infer_image(&pl, input + img * nin, output + img * nout, mem, amax, oor);
        if (ok && stats) {
#pragma omp critical(hecnn_graph_stats)
            {
                for (size_t i = 0; i < g->n; i++) {
                    if (amax) stats->absmax[i] = fmax(stats->absmax[i], amax[i]);
                    if (oor) stats->out_of_range[i] += oor[i];
                }
            }
        }
        hecnn_free(mem);
        hecnn_free(amax);
        hecnn_free(oor);
    }
    plan_free(&pl);
    if (failed) return hecnn_fail(HECNN_ERR_NO_MEMORY, "inference buffers (%zu values per thread)", pl.arena);
    return HECNN_OK;
}

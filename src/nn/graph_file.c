/* Model files of a graph (docs/FORMATS.md, "Network graph"): a header, the input normalisation,
 * one fixed record per node followed by its float64 arrays, and a SHA-256 of everything before.
 * The reader checks every count against the limits and the bytes present before it allocates,
 * verifies the checksum, then rebuilds the graph through the builders (so every shape is checked
 * again) and requires each record to be exactly what its node encodes to (one file per graph). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "hecnn/graph.h"
#include "nn/graph_internal.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/fileheader.h"
#include "util/le.h"

#define GRF_VERSION 1u
static const file_format GRF_FORMAT = {.magic = "HECNNGRF", .magic_bytes = 8, .version_bytes = 4, .version = GRF_VERSION,
                                       .what = "a hecnn graph file", .name = "graph file"};
#define GRF_HEADER 32u
#define GRF_RECORD 56u
#define GRF_DIGEST 32u

static double rdf64(const uint8_t *p)
{
    const uint64_t u = le_get64(p);
    double v;
    memcpy(&v, &u, 8);
    return v;
}
static void wrf64(uint8_t *p, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    le_put64(p, u);
}

static int sha256(const uint8_t *data, size_t n, uint8_t out[32])
{
    unsigned len = 0;
    return EVP_Digest(data, n, out, &len, EVP_sha256(), NULL) == 1 && len == 32 ? 0 : -1;
}

/* ---- writing -------------------------------------------------------------------------------- */

static size_t n_coeff(const hecnn_node *nd) { return nd->coeff ? nd->degree + 1 : 0; }

/* The 56-byte record of a node (the reader compares each record with this encoding). */
static void encode_record(uint8_t r[GRF_RECORD], const hecnn_node *nd)
{
    const uint32_t f[12] = {(uint32_t)nd->op, nd->in[0], nd->in[1], nd->c, nd->h, nd->w, nd->k, nd->stride, nd->pad,
                            (uint32_t)nd->n_weight, (uint32_t)nd->n_bias, (uint32_t)n_coeff(nd)};
    for (int i = 0; i < 12; i++) le_put32(r + 4 * i, f[i]);
    wrf64(r + 48, nd->range);
}

static size_t file_size(const hecnn_graph *g)
{
    size_t total = GRF_HEADER + 16 * (size_t)g->nodes[0].c + GRF_DIGEST;
    for (size_t i = 1; i < g->n; i++) {
        const hecnn_node *nd = &g->nodes[i];
        total += GRF_RECORD + 8 * (nd->n_weight + nd->n_bias + n_coeff(nd));
    }
    return total;
}

static uint8_t *put_array(uint8_t *p, const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++, p += 8) wrf64(p, v[i]);
    return p;
}

/* The whole file in a new buffer (digest included). */
static hecnn_status serialize(const hecnn_graph *g, uint8_t **out, size_t *size)
{
    *out = NULL;
    *size = 0;
    if (!g) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL graph");
    const size_t total = file_size(g), c = g->nodes[0].c;
    uint8_t *buf = hecnn_alloc(total);
    if (!buf) return hecnn_fail(HECNN_ERR_NO_MEMORY, "model buffer (%zu bytes)", total);
    file_header_put(buf, &GRF_FORMAT);
    le_put32(buf + 12, GRF_HEADER);
    le_put32(buf + 16, (uint32_t)g->n);
    le_put32(buf + 20, g->nodes[0].c);
    le_put32(buf + 24, g->nodes[0].h);
    le_put32(buf + 28, g->nodes[0].w);
    uint8_t *p = put_array(buf + GRF_HEADER, g->mean, c);
    p = put_array(p, g->std, c);
    for (size_t i = 1; i < g->n; i++) {
        const hecnn_node *nd = &g->nodes[i];
        encode_record(p, nd);
        p = put_array(p + GRF_RECORD, nd->weight, nd->n_weight);
        p = put_array(p, nd->bias, nd->n_bias);
        p = put_array(p, nd->coeff, n_coeff(nd));
    }
    if (sha256(buf, total - GRF_DIGEST, p)) {
        hecnn_free(buf);
        return hecnn_fail(HECNN_ERR_UNSUPPORTED, "SHA-256 unavailable");
    }
    *out = buf;
    *size = total;
    return HECNN_OK;
}

hecnn_status hecnn_graph_save(const hecnn_graph *g, FILE *f)
{
    if (!g || !f) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    uint8_t *buf;
    size_t size;
    hecnn_status st = serialize(g, &buf, &size);
    if (st) return st;
    if (fwrite(buf, 1, size, f) != size || fflush(f))
        st = hecnn_fail(HECNN_ERR_IO, "cannot write the model: %s", strerror(errno));
    hecnn_free(buf);
    return st;
}

hecnn_status hecnn_graph_digest(const hecnn_graph *g, uint8_t digest[32])
{
    if (!g || !digest) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    uint8_t *buf;
    size_t size;
    hecnn_status st = serialize(g, &buf, &size);
    if (st) return st;
    if (sha256(buf, size, digest)) st = hecnn_fail(HECNN_ERR_UNSUPPORTED, "SHA-256 unavailable");
    hecnn_free(buf);
    return st;
}

/* ---- reading -------------------------------------------------------------------------------- */

/* Header fields; the count of nodes (input included) and the input channels. */
static hecnn_status check_header(const uint8_t *h, uint32_t *count, uint32_t *channels)
{
    const hecnn_status st = file_header_check(h, GRF_HEADER, &GRF_FORMAT, NULL);
    if (st) return st;
    const uint32_t hsize = le_get32(h + 12), n = le_get32(h + 16);
    const uint32_t c = le_get32(h + 20), hh = le_get32(h + 24), w = le_get32(h + 28);
    if (hsize != GRF_HEADER) return hecnn_fail(HECNN_ERR_BAD_FORMAT, "graph header size %u, expected %u", hsize, GRF_HEADER);
    if (n < 1 || n > HECNN_GRAPH_MAX_NODES)
        return hecnn_fail(HECNN_ERR_BAD_FORMAT, "graph of %u nodes, must be in [1, %u]", n, HECNN_GRAPH_MAX_NODES);
    if (c < 1 || hh < 1 || w < 1 || c > HECNN_GRAPH_MAX_DIM || hh > HECNN_GRAPH_MAX_DIM || w > HECNN_GRAPH_MAX_DIM)
        return hecnn_fail(HECNN_ERR_BAD_FORMAT, "graph input %ux%ux%u, each side must be in [1, %u]", c, hh, w,
                          HECNN_GRAPH_MAX_DIM);
    *count = n;
    *channels = c;
    return HECNN_OK;
}

/* The op and array sizes of record `id`: each within the limits, their running total (*scalars)
 * within HECNN_GRAPH_MAX_WEIGHTS. *bytes = the record's array bytes. */
static hecnn_status check_record(const uint8_t *r, size_t id, size_t *scalars, size_t *bytes)
{
    const uint32_t op = le_get32(r), nw = le_get32(r + 36), nb = le_get32(r + 40), nc = le_get32(r + 44);
    if (op == HECNN_OP_INPUT || op >= HECNN_OP_COUNT)
        return hecnn_fail(HECNN_ERR_BAD_FORMAT, "node %zu: unknown operation %u", id, op);
    if (nc > HECNN_GRAPH_MAX_POLY + 1)
        return hecnn_fail(HECNN_ERR_BAD_FORMAT, "node %zu: %u coefficients, at most %u", id, nc, HECNN_GRAPH_MAX_POLY + 1);
    const uint64_t more = (uint64_t)nw + nb + nc;
    if (more > HECNN_GRAPH_MAX_WEIGHTS - *scalars)
        return hecnn_fail(HECNN_ERR_BAD_FORMAT, "node %zu: %llu more scalars exceed the limit of %u in a graph", id,
                          (unsigned long long)more, HECNN_GRAPH_MAX_WEIGHTS);
    *scalars += (size_t)more;
    *bytes = 8 * (size_t)more;
    return HECNN_OK;
}

/* Walks the layout without allocating: *total = the size the header and records declare. */
static hecnn_status walk(const uint8_t *data, size_t size, size_t *total)
{
    if (size < GRF_HEADER)
        return hecnn_fail(HECNN_ERR_BAD_FORMAT, "graph file truncated: %zu bytes, the header alone is %u", size, GRF_HEADER);
    uint32_t count, c;
    hecnn_status st = check_header(data, &count, &c);
    if (st) return st;
    size_t off = GRF_HEADER + 16 * (size_t)c, scalars = 0;
    for (size_t id = 1; id < count; id++) {
        if (size < off || size - off < GRF_RECORD)
            return hecnn_fail(HECNN_ERR_BAD_FORMAT, "graph file truncated: %zu bytes, node %zu starts at %zu", size, id, off);
        size_t bytes = 0;
        if ((st = check_record(data + off, id, &scalars, &bytes))) return st;
        off += GRF_RECORD + bytes;
    }
    off += GRF_DIGEST;
    if (size < off) return hecnn_fail(HECNN_ERR_BAD_FORMAT, "graph file truncated: %zu of %zu bytes", size, off);
    *total = off;
    return HECNN_OK;
}

static void get_array(double *v, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) v[i] = rdf64(p + 8 * i);
}

/* A builder's INVALID_ARGUMENT as the file's BAD_FORMAT, naming the node. */
static hecnn_status as_format(hecnn_status st, size_t id)
{
    if (st != HECNN_ERR_INVALID_ARGUMENT) return st;
    char detail[256];
    snprintf(detail, sizeof detail, "%s", hecnn_last_error_detail());
    return hecnn_fail(HECNN_ERR_BAD_FORMAT, "node %zu: %s", id, detail);
}

/* Node `id` from its record r and arrays a (already within the file and the limits). */
static hecnn_status build_node(hecnn_graph *g, size_t id, const uint8_t *r, const uint8_t *a, double *tmp)
{
    const uint32_t op = le_get32(r), in0 = le_get32(r + 4), in1 = le_get32(r + 8), c = le_get32(r + 12), k = le_get32(r + 24);
    const uint32_t stride = le_get32(r + 28), pad = le_get32(r + 32), nw = le_get32(r + 36), nb = le_get32(r + 40), nc = le_get32(r + 44);
    const double range = rdf64(r + 48);
    if (in0 >= id || (op == HECNN_OP_ADD && in1 >= id))
        return hecnn_fail(HECNN_ERR_BAD_FORMAT, "node %zu reads node %u; only earlier nodes may be read", id,
                          in0 >= id ? in0 : in1);
    const hecnn_node *x = &g->nodes[in0];
    /* the array sizes the operation implies, before a builder reads them */
    uint64_t want_w = 0, want_b = 0;
    switch (op) {
    case HECNN_OP_CONV2D:
        if (c <= HECNN_GRAPH_MAX_DIM && k <= HECNN_GRAPH_MAX_KERNEL) want_w = (uint64_t)c * x->c * k * k, want_b = c;
        break;
    case HECNN_OP_DENSE:
        if (c <= HECNN_GRAPH_MAX_DIM) want_w = (uint64_t)c * hecnn_graph_node_size(g, in0), want_b = c;
        break;
    case HECNN_OP_BATCHNORM:
        want_w = want_b = x->c;
        break;
    default:
        break;
    }
    if (nw != want_w || nb != want_b)
        return hecnn_fail(HECNN_ERR_BAD_FORMAT, "node %zu (operation %u): %u weights and %u biases, its shape needs %llu and %llu",
                          id, op, nw, nb, (unsigned long long)want_w, (unsigned long long)want_b);
    if ((op == HECNN_OP_POLY && nc == 0) || (op != HECNN_OP_POLY && op != HECNN_OP_RELU && nc != 0))
        return hecnn_fail(HECNN_ERR_BAD_FORMAT, "node %zu (operation %u): %u coefficients", id, op, nc);
    get_array(tmp, a, (size_t)nw + nb + nc);
    const double *w = tmp, *b = tmp + nw, *coeff = tmp + nw + nb;
    size_t got = 0;
    hecnn_status st;
    switch (op) {
    case HECNN_OP_CONV2D: st = hecnn_graph_conv2d(g, &got, in0, c, k, stride, pad, w, b); break;
    case HECNN_OP_BATCHNORM: st = hecnn_graph_batchnorm(g, &got, in0, w, b); break;
    case HECNN_OP_DENSE: st = hecnn_graph_dense(g, &got, in0, c, w, b); break;
    case HECNN_OP_AVGPOOL: st = hecnn_graph_avgpool(g, &got, in0, k); break;
    case HECNN_OP_ADD: st = hecnn_graph_add(g, &got, in0, in1); break;
    case HECNN_OP_RELU:
        st = hecnn_graph_relu(g, &got, in0);
        if (!st) st = hecnn_graph_set_relu_range(g, got, range);
        if (!st && nc) st = hecnn_graph_set_relu_approx(g, got, coeff, nc - 1);
        break;
    default: st = hecnn_graph_poly(g, &got, in0, coeff, nc - 1); break;
    }
    if (st) return as_format(st, id);
    /* canonical: the record is exactly what the node encodes to (shape, unused fields zero) */
    uint8_t again[GRF_RECORD];
    encode_record(again, &g->nodes[got]);
    if (memcmp(again, r, GRF_RECORD) != 0) {
        const hecnn_node *nd = &g->nodes[got];
        return hecnn_fail(HECNN_ERR_BAD_FORMAT,
                          "node %zu: its record does not match the node it builds (output %ux%ux%u from %u, %u, %u; "
                          "unused fields must be 0)",
                          id, nd->c, nd->h, nd->w, le_get32(r + 12), le_get32(r + 16), le_get32(r + 20));
    }
    return HECNN_OK;
}

hecnn_status hecnn_graph_read(hecnn_graph **out, const uint8_t *data, size_t size)
{
    if (!out || (!data && size)) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    size_t total = 0;
    hecnn_status st = walk(data, size, &total);
    if (st) return st;
    if (size > total) return hecnn_fail(HECNN_ERR_BAD_FORMAT, "graph file has %zu trailing bytes", size - total);
    uint8_t digest[32];
    if (sha256(data, total - GRF_DIGEST, digest)) return hecnn_fail(HECNN_ERR_UNSUPPORTED, "SHA-256 unavailable");
    if (memcmp(digest, data + total - GRF_DIGEST, GRF_DIGEST) != 0)
        return hecnn_fail(HECNN_ERR_BAD_FORMAT, "graph checksum mismatch: the file is corrupted or was altered");
    const uint32_t count = le_get32(data + 16), c = le_get32(data + 20);
    /* largest array of one node, for the conversion buffer */
    size_t off = GRF_HEADER + 16 * (size_t)c, largest = 2 * (size_t)c;
    for (size_t id = 1; id < count; id++) {
        const size_t n = (size_t)le_get32(data + off + 36) + le_get32(data + off + 40) + le_get32(data + off + 44);
        if (n > largest) largest = n;
        off += GRF_RECORD + 8 * n;
    }
    double *tmp = hecnn_alloc(largest * sizeof *tmp);
    if (!tmp) return hecnn_fail(HECNN_ERR_NO_MEMORY, "model arrays");
    hecnn_graph *g = NULL;
    st = hecnn_graph_new(&g, c, le_get32(data + 24), le_get32(data + 28));
    if (!st) {
        get_array(tmp, data + GRF_HEADER, 2 * (size_t)c);
        st = hecnn_graph_set_input_norm(g, tmp, tmp + c);
        if (st == HECNN_ERR_INVALID_ARGUMENT) {
            char detail[256];
            snprintf(detail, sizeof detail, "%s", hecnn_last_error_detail());
            st = hecnn_fail(HECNN_ERR_BAD_FORMAT, "graph input normalisation: %s", detail);
        }
    }
    off = GRF_HEADER + 16 * (size_t)c;
    for (size_t id = 1; id < count && !st; id++) {
        const uint8_t *r = data + off;
        const size_t n = (size_t)le_get32(r + 36) + le_get32(r + 40) + le_get32(r + 44);
        st = build_node(g, id, r, r + GRF_RECORD, tmp);
        off += GRF_RECORD + 8 * n;
    }
    hecnn_free(tmp);
    if (st) {
        hecnn_graph_free(g);
        return st;
    }
    *out = g;
    return HECNN_OK;
}

/* ---- reading a stream ----------------------------------------------------------------------- */

typedef struct rbuf {
    uint8_t *p;
    size_t n, cap;
} rbuf;

/* Appends exactly `want` bytes from f (the caller has checked `want` against the limits). The
 * buffer grows with the bytes that actually arrive, 1 MiB at a time at most, so a short stream
 * that declares a large model costs no more than twice what it holds. */
static hecnn_status rb_read(rbuf *b, FILE *f, size_t want)
{
    while (want) {
        const size_t chunk = want < ((size_t)1 << 20) ? want : (size_t)1 << 20;
        if (b->cap - b->n < chunk) {
            size_t cap = b->cap ? b->cap : 4096;
            while (cap - b->n < chunk) cap *= 2;
            uint8_t *p = hecnn_alloc(cap);
            if (!p) return hecnn_fail(HECNN_ERR_NO_MEMORY, "model buffer (%zu bytes)", cap);
            if (b->n) memcpy(p, b->p, b->n);
            hecnn_free(b->p);
            b->p = p;
            b->cap = cap;
        }
        const size_t got = fread(b->p + b->n, 1, chunk, f);
        b->n += got;
        if (got < chunk) {
            if (ferror(f)) return hecnn_fail(HECNN_ERR_IO, "cannot read the model");
            return hecnn_fail(HECNN_ERR_BAD_FORMAT, "graph file truncated after %zu bytes", b->n);
        }
        want -= chunk;
    }
    return HECNN_OK;
}

hecnn_status hecnn_graph_load(hecnn_graph **out, FILE *f)
{
    if (!out || !f) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    rbuf b = {0};
    uint32_t count = 0, c = 0;
    hecnn_status st = rb_read(&b, f, GRF_HEADER);
    if (!st) st = check_header(b.p, &count, &c);
    if (!st) st = rb_read(&b, f, 16 * (size_t)c);
    size_t scalars = 0;
    for (size_t id = 1; id < count && !st; id++) {
        size_t bytes = 0;
        st = rb_read(&b, f, GRF_RECORD);
        if (!st) st = check_record(b.p + b.n - GRF_RECORD, id, &scalars, &bytes);
        if (!st) st = rb_read(&b, f, bytes); /* bounded: scalars <= HECNN_GRAPH_MAX_WEIGHTS */
    }
    if (!st) st = rb_read(&b, f, GRF_DIGEST);
    if (!st) st = hecnn_graph_read(out, b.p, b.n);
    hecnn_free(b.p);
    return st;
}

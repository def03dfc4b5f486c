/* The MNIST CNN's weights file and its plaintext reference inference (MNIST idx files are read by
 * the tool: tools/util_idx.c). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "hecnn/nn.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/fileheader.h"
#include "util/le.h"

#define MODEL_VERSION 1u
static const file_format MODEL_FORMAT = {.magic = "HECNNMDL", .magic_bytes = 8, .version_bytes = 4, .version = MODEL_VERSION,
                                         .what = "a hecnn model file", .name = "model format"};
#define MODEL_ARCH_VR_MNIST 1u
#define MODEL_HEADER 64u
#define MODEL_DTYPE_F32 1u
#define MODEL_DTYPE_F64 2u
#define MODEL_PARAMS                                                                                             \
    (HECNN_MNIST_KERNELS * 9 + HECNN_MNIST_KERNELS + 4 + HECNN_MNIST_FC1_OUT * HECNN_MNIST_FC1_IN +               \
     HECNN_MNIST_FC1_OUT + 4 + HECNN_MNIST_CLASSES * HECNN_MNIST_FC1_OUT + HECNN_MNIST_CLASSES)
/* Largest file we accept: float64 payload + header + digest. */
#define MODEL_MAX_BYTES ((size_t)MODEL_HEADER + (size_t)MODEL_PARAMS * 8 + 32)


static int sha256(const uint8_t *data, size_t n, uint8_t out[32])
{
    unsigned len = 0;
    return EVP_Digest(data, n, out, &len, EVP_sha256(), NULL) == 1 && len == 32 ? 0 : -1;
}

/* The payload in file order, as pointers into the model. */
typedef struct {
    double *p;
    size_t n;
} span;

/* Fuzzing builds (clang) keep the loops over a whole payload out of line and free of coverage
 * hooks: 174,000 weights' hooks cost more than the rest of the loader, and a trip count is no
 * coverage. */
#if defined(__clang__) && defined(FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION)
#define PAYLOAD_LOOP __attribute__((noinline, no_sanitize("coverage")))
#else
#define PAYLOAD_LOOP
#endif

/* Decodes s.n little-endian weights of `width` bytes (4: float32, 8: float64) from p into s; the
 * index of the first that is not finite or absurdly large (it is stored), or s.n. */
static PAYLOAD_LOOP size_t decode_span(span s, const uint8_t *p, size_t width)
{
    for (size_t i = 0; i < s.n; i++, p += width) {
        double v;
        if (width == 4) {
            const uint32_t u = le_get32(p);
            float f;
            memcpy(&f, &u, 4);
            v = f;
        } else {
            v = le_bits_double(le_get64(p));
        }
        s.p[i] = v;
        if (!isfinite(v) || fabs(v) > 1e6) return i;
    }
    return s.n;
}

/* Encodes the s.n weights of s as little-endian float64 at p. */
static PAYLOAD_LOOP void encode_span(span s, uint8_t *p)
{
    for (size_t i = 0; i < s.n; i++, p += 8) {
        uint64_t u;
        memcpy(&u, &s.p[i], 8);
        le_put64(p, u);
    }
}

static size_t model_spans(hecnn_mnist_model *m, span s[8])
{
    s[0] = (span){&m->conv_w[0][0][0], HECNN_MNIST_KERNELS * 9};
    s[1] = (span){m->conv_b, HECNN_MNIST_KERNELS};
    s[2] = (span){m->act1, 4};
    s[3] = (span){&m->fc1_w[0][0], (size_t)HECNN_MNIST_FC1_OUT * HECNN_MNIST_FC1_IN};
    s[4] = (span){m->fc1_b, HECNN_MNIST_FC1_OUT};
    s[5] = (span){m->act2, 4};
    s[6] = (span){&m->fc2_w[0][0], (size_t)HECNN_MNIST_CLASSES * HECNN_MNIST_FC1_OUT};
    s[7] = (span){m->fc2_b, HECNN_MNIST_CLASSES};
    return 8;
}

hecnn_status hecnn_mnist_model_read(hecnn_mnist_model **out, const uint8_t *data, size_t size)
{
    if (!out || (!data && size)) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    if (size < MODEL_HEADER + 32)
        return hecnn_fail(HECNN_ERR_BAD_FORMAT, "model file truncated: %zu bytes, a header alone is %u", size,
                          MODEL_HEADER + 32);
    const hecnn_status hst = file_header_check(data, size, &MODEL_FORMAT, NULL);
    if (hst) return hst;
    const uint32_t arch = le_get32(data + 12), hsize = le_get32(data + 16), dtype = le_get32(data + 20);
    if (arch != MODEL_ARCH_VR_MNIST) return hecnn_fail(HECNN_ERR_BAD_FORMAT, "unknown model architecture %u", arch);
    if (hsize != MODEL_HEADER) return hecnn_fail(HECNN_ERR_BAD_FORMAT, "header size %u, expected %u", hsize, MODEL_HEADER);
    if (dtype != MODEL_DTYPE_F32 && dtype != MODEL_DTYPE_F64) return hecnn_fail(HECNN_ERR_BAD_FORMAT, "unknown weight type %u", dtype);
    static const uint32_t want[8] = {HECNN_MNIST_SIDE, HECNN_MNIST_SIDE, HECNN_MNIST_KERNELS, HECNN_MNIST_KSIZE, 1,
                                     HECNN_MNIST_FC1_OUT, HECNN_MNIST_CLASSES, 3};
    static const char *const names[8] = {"input height", "input width", "kernels", "kernel size", "stride",
                                         "hidden units", "classes", "activation degree"};
    for (int i = 0; i < 8; i++) {
        const uint32_t v = le_get32(data + 24 + 4 * i);
        if (v != want[i])
            return hecnn_fail(HECNN_ERR_BAD_FORMAT, "model %s is %u; this network needs %u", names[i], v, want[i]);
    }
    const size_t width = dtype == MODEL_DTYPE_F32 ? 4 : 8;
    const uint64_t payload = le_get64(data + 56);
    if (payload != (uint64_t)MODEL_PARAMS * width)
        return hecnn_fail(HECNN_ERR_BAD_FORMAT, "payload of %llu bytes, the sizes give %zu", (unsigned long long)payload,
                          (size_t)MODEL_PARAMS * width);
    const size_t total = MODEL_HEADER + (size_t)payload + 32;
    if (size < total) return hecnn_fail(HECNN_ERR_BAD_FORMAT, "model file truncated: %zu of %zu bytes", size, total);
    if (size > total) return hecnn_fail(HECNN_ERR_BAD_FORMAT, "model file has %zu trailing bytes", size - total);
    uint8_t digest[32];
    if (sha256(data, total - 32, digest)) return hecnn_fail(HECNN_ERR_UNSUPPORTED, "SHA-256 unavailable");
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION /* fuzzing builds only (CMakeLists.txt): reach the checks behind it */
    if (memcmp(digest, data + total - 32, 32) != 0)
        return hecnn_fail(HECNN_ERR_BAD_FORMAT, "model checksum mismatch: the file is corrupted or was altered");
#endif
    hecnn_mnist_model *m = hecnn_calloc(1, sizeof *m);
    if (!m) return hecnn_fail(HECNN_ERR_NO_MEMORY, "model");
    span s[8];
    const size_t ns = model_spans(m, s);
    const uint8_t *p = data + MODEL_HEADER;
    for (size_t k = 0; k < ns; p += s[k].n * width, k++) {
        const size_t i = decode_span(s[k], p, width);
        if (i < s[k].n) {
            const double v = s[k].p[i];
            hecnn_free(m);
            return hecnn_fail(HECNN_ERR_BAD_FORMAT, "weight %zu of part %zu is %g (not finite or absurdly large)", i, k, v);
        }
    }
    *out = m;
    return HECNN_OK;
}

hecnn_status hecnn_mnist_model_load(hecnn_mnist_model **out, const char *path)
{
    if (!out || !path) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return hecnn_fail(HECNN_ERR_IO, "cannot open model %s: %s", path, strerror(errno));
    uint8_t *buf = hecnn_alloc(MODEL_MAX_BYTES + 1);
    if (!buf) {
        fclose(f);
        return hecnn_fail(HECNN_ERR_NO_MEMORY, "model buffer");
    }
    errno = 0;
    const size_t n = fread(buf, 1, MODEL_MAX_BYTES + 1, f);
    const int err = ferror(f) ? (errno ? errno : EIO) : 0;
    fclose(f);
    hecnn_status st;
    if (err) st = hecnn_fail(HECNN_ERR_IO, "cannot read model %s: %s", path, strerror(err)); /* "Is a directory" */
    else if (n > MODEL_MAX_BYTES) st = hecnn_fail(HECNN_ERR_BAD_FORMAT, "model file %s is too large", path);
    else st = hecnn_mnist_model_read(out, buf, n);
    hecnn_free(buf);
    return st;
}

hecnn_status hecnn_mnist_model_save(const hecnn_mnist_model *model, const char *path)
{
    if (!model || !path) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    const size_t total = MODEL_HEADER + (size_t)MODEL_PARAMS * 8 + 32;
    uint8_t *buf = hecnn_calloc(total, 1);
    if (!buf) return hecnn_fail(HECNN_ERR_NO_MEMORY, "model buffer");
    file_header_put(buf, &MODEL_FORMAT);
    le_put32(buf + 12, MODEL_ARCH_VR_MNIST);
    le_put32(buf + 16, MODEL_HEADER);
    le_put32(buf + 20, MODEL_DTYPE_F64);
    const uint32_t dims[8] = {HECNN_MNIST_SIDE, HECNN_MNIST_SIDE, HECNN_MNIST_KERNELS, HECNN_MNIST_KSIZE, 1,
                              HECNN_MNIST_FC1_OUT, HECNN_MNIST_CLASSES, 3};
    for (int i = 0; i < 8; i++) le_put32(buf + 24 + 4 * i, dims[i]);
    le_put64(buf + 56, (uint64_t)MODEL_PARAMS * 8);
    span s[8];
    const size_t ns = model_spans((hecnn_mnist_model *)model, s);
    uint8_t *p = buf + MODEL_HEADER;
    for (size_t k = 0; k < ns; p += s[k].n * 8, k++) encode_span(s[k], p);
    hecnn_status st = HECNN_OK;
    if (sha256(buf, total - 32, buf + total - 32)) st = hecnn_fail(HECNN_ERR_UNSUPPORTED, "SHA-256 unavailable");
    FILE *f = st ? NULL : fopen(path, "wb");
    if (!st && !f) st = hecnn_fail(HECNN_ERR_IO, "cannot create %s: %s", path, strerror(errno));
    if (f) {
        if (fwrite(buf, 1, total, f) != total) st = hecnn_fail(HECNN_ERR_IO, "cannot write %s", path);
        if (fclose(f) && !st) st = hecnn_fail(HECNN_ERR_IO, "cannot write %s", path);
    }
    hecnn_free(buf);
    return st;
}

void hecnn_mnist_model_free(hecnn_mnist_model *model) { hecnn_free(model); }

static double poly3(const double c[4], double x) { return c[0] + x * (c[1] + x * (c[2] + x * c[3])); }

void hecnn_mnist_infer_plain(const hecnn_mnist_model *m, const double *pixels, size_t n, double *logits)
{
    enum { S = HECNN_MNIST_SIDE, C = HECNN_MNIST_CONV_SIDE };
    double *h1 = hecnn_alloc(HECNN_MNIST_FC1_IN * sizeof *h1);
    if (!h1) abort();
    for (size_t img = 0; img < n; img++) {
        const double *x = pixels + img * HECNN_MNIST_PIXELS;
        for (int q = 0; q < HECNN_MNIST_KERNELS; q++)
            for (int r = 0; r < C; r++)
                for (int c = 0; c < C; c++) {
                    double s = m->conv_b[q];
                    for (int a = 0; a < 3; a++)
                        for (int b = 0; b < 3; b++) s += m->conv_w[q][a][b] * x[(r + a) * S + c + b];
                    h1[q * C * C + r * C + c] = poly3(m->act1, s);
                }
        double h2[HECNN_MNIST_FC1_OUT];
        for (int j = 0; j < HECNN_MNIST_FC1_OUT; j++) {
            double s = m->fc1_b[j];
            for (int t = 0; t < HECNN_MNIST_FC1_IN; t++) s += m->fc1_w[j][t] * h1[t];
            h2[j] = poly3(m->act2, s);
        }
        for (int k = 0; k < HECNN_MNIST_CLASSES; k++) {
            double s = m->fc2_b[k];
            for (int j = 0; j < HECNN_MNIST_FC1_OUT; j++) s += m->fc2_w[k][j] * h2[j];
            logits[img * HECNN_MNIST_CLASSES + k] = s;
        }
    }
    hecnn_free(h1);
}

hecnn_status hecnn_mnist_to_graph(hecnn_graph **out, const hecnn_mnist_model *m)
{
    if (!out || !m) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    hecnn_graph *g = NULL;
    size_t id = 0;
    hecnn_status st = hecnn_graph_new(&g, 1, HECNN_MNIST_SIDE, HECNN_MNIST_SIDE);
    if (!st) st = hecnn_graph_conv2d(g, &id, 0, HECNN_MNIST_KERNELS, HECNN_MNIST_KSIZE, 1, 0, &m->conv_w[0][0][0], m->conv_b);
    if (!st) st = hecnn_graph_poly(g, &id, id, m->act1, 3);
    if (!st) st = hecnn_graph_dense(g, &id, id, HECNN_MNIST_FC1_OUT, &m->fc1_w[0][0], m->fc1_b);
    if (!st) st = hecnn_graph_poly(g, &id, id, m->act2, 3);
    if (!st) st = hecnn_graph_dense(g, &id, id, HECNN_MNIST_CLASSES, &m->fc2_w[0][0], m->fc2_b);
    if (st) {
        hecnn_graph_free(g);
        return st;
    }
    *out = g;
    return HECNN_OK;
}

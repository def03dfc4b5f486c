/* hecnn — the network graph: what a CNN computes, with no packing in it.
 *
 * A graph is a list of nodes in evaluation order; node 0 is the input (c x h x w per image) and every
 * other node reads earlier nodes only. Tensors are per image, channel-major (c, row, col), float64.
 * The same graph drives the float64 reference inference below, the plaintext simulation of the
 * encrypted run (HECNN_INFER_APPROX: each ReLU replaced by the polynomial the encrypted run uses), and
 * the packings that lay it into ciphertexts (include/hecnn/resnet.h).
 *
 * A graph owns its weights (copied in). Model files (hecnn_graph_save / _load) are versioned and
 * checksummed; the loader validates every size before allocating (docs/FORMATS.md). */
#ifndef HECNN_GRAPH_H
#define HECNN_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hecnn/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

typedef enum hecnn_op {
    HECNN_OP_INPUT = 0,
    HECNN_OP_CONV2D = 1,     /* square kernel k, stride, zero padding; weight [cout][cin][k][k], bias [cout] */
    HECNN_OP_BATCHNORM = 2,  /* y = scale[c] * x + shift[c] (inference form); folded into a preceding conv */
    HECNN_OP_DENSE = 3,      /* weight [out][in] over the flattened input (c, row, col); bias [out] */
    HECNN_OP_AVGPOOL = 4,    /* k x k windows, stride k (k = h = w: global average pooling) */
    HECNN_OP_ADD = 5,        /* element-wise sum of two nodes of the same shape (residual) */
    HECNN_OP_RELU = 6,       /* max(x, 0); approximated in the encrypted run (range + polynomial) */
    HECNN_OP_POLY = 7,       /* a trained polynomial activation sum_i coeff[i] x^i */
    HECNN_OP_COUNT
} hecnn_op;

/* Limits every graph (and so every model file) obeys. */
#define HECNN_GRAPH_MAX_NODES 4096u
#define HECNN_GRAPH_MAX_DIM 4096u      /* channels, height, width, dense sizes */
#define HECNN_GRAPH_MAX_KERNEL 15u
#define HECNN_GRAPH_MAX_POLY 1023u     /* polynomial degree (activations, ReLU approximations) */
#define HECNN_GRAPH_MAX_WEIGHTS (64u << 20) /* total scalars */

typedef struct hecnn_node {
    hecnn_op op;
    uint32_t in[2];          /* inputs (earlier node ids); in[1] for ADD only */
    uint32_t c, h, w;        /* output shape */
    uint32_t k, stride, pad; /* CONV2D (k, stride, pad), AVGPOOL (k) */
    double *weight;          /* CONV2D, DENSE; BATCHNORM: scale[c] */
    double *bias;            /* CONV2D, DENSE; BATCHNORM: shift[c] */
    size_t n_weight, n_bias;
    /* RELU: calibrated input bound (|x| <= range for the data it was calibrated on, margin
     * included; 0 = not calibrated) and the approximation of max(y, 0) on y in [-1, 1] in the
     * Chebyshev basis, applied as range * p(x / range) by the encrypted run. POLY: power-basis
     * coefficients. */
    double range;
    double *coeff;
    size_t degree;           /* coeff holds degree + 1 values (0 coefficients: none) */
} hecnn_node;

typedef struct hecnn_graph hecnn_graph;

/* A graph with its input node (c x h x w per image). */
hecnn_status hecnn_graph_new(hecnn_graph **out, uint32_t c, uint32_t h, uint32_t w);
void hecnn_graph_free(hecnn_graph *g);
size_t hecnn_graph_node_count(const hecnn_graph *g);
const hecnn_node *hecnn_graph_node(const hecnn_graph *g, size_t id);
/* The output node: the last one. */
size_t hecnn_graph_output(const hecnn_graph *g);
/* Values per image of node id (c * h * w). */
size_t hecnn_graph_node_size(const hecnn_graph *g, size_t id);

/* Builders: each appends a node reading `in` and returns its id in *id (id may be NULL). Weights are
 * copied and must be finite. conv2d: 1 <= k <= HECNN_GRAPH_MAX_KERNEL, stride >= 1, pad < k, output
 * (h + 2 pad - k) / stride + 1 >= 1. dense reads the c*h*w values of its input. avgpool: k divides h
 * and w. add: equal shapes. Failures are HECNN_ERR_INVALID_ARGUMENT and leave the graph as it was. */
hecnn_status hecnn_graph_conv2d(hecnn_graph *g, size_t *id, size_t in, uint32_t cout, uint32_t k, uint32_t stride,
                                uint32_t pad, const double *weight, const double *bias /* NULL = 0 */);
hecnn_status hecnn_graph_batchnorm(hecnn_graph *g, size_t *id, size_t in, const double *scale, const double *shift);
/* BatchNorm from its training statistics: scale = gamma / sqrt(var + eps), shift = beta - mean * scale. */
hecnn_status hecnn_graph_batchnorm_stats(hecnn_graph *g, size_t *id, size_t in, const double *gamma, const double *beta,
                                         const double *mean, const double *var, double eps);
hecnn_status hecnn_graph_dense(hecnn_graph *g, size_t *id, size_t in, uint32_t out, const double *weight,
                               const double *bias);
hecnn_status hecnn_graph_avgpool(hecnn_graph *g, size_t *id, size_t in, uint32_t k);
hecnn_status hecnn_graph_add(hecnn_graph *g, size_t *id, size_t a, size_t b);
hecnn_status hecnn_graph_relu(hecnn_graph *g, size_t *id, size_t in);
hecnn_status hecnn_graph_poly(hecnn_graph *g, size_t *id, size_t in, const double *coeff, size_t degree);

/* Fold every BATCHNORM that follows a CONV2D read by nothing else into that conv (the BN node
 * becomes an identity the passes below skip: it is removed and later ids shift down). */
hecnn_status hecnn_graph_fold_batchnorm(hecnn_graph *g);

/* Per-channel input normalisation the data owner applies before encrypting: x = (p - mean) / std
 * for pixels p in [0, 1]. Defaults: mean 0, std 1. */
hecnn_status hecnn_graph_set_input_norm(hecnn_graph *g, const double *mean, const double *std);
const double *hecnn_graph_input_mean(const hecnn_graph *g);
const double *hecnn_graph_input_std(const hecnn_graph *g);

/* Calibration and approximation of a RELU node. */
hecnn_status hecnn_graph_set_relu_range(hecnn_graph *g, size_t id, double range);
/* cheb NULL removes the approximation. */
hecnn_status hecnn_graph_set_relu_approx(hecnn_graph *g, size_t id, const double *cheb, size_t degree);

typedef enum hecnn_infer_mode {
    HECNN_INFER_EXACT = 0,  /* ReLU is max(x, 0) */
    HECNN_INFER_APPROX = 1  /* ReLU is range * p(x / range), as encrypted; needs every range and p */
} hecnn_infer_mode;

/* Statistics of one reference run, per node (arrays of hecnn_graph_node_count entries, or NULL). */
typedef struct hecnn_infer_stats {
    double *absmax;          /* largest |value| seen at each node's INPUT (activations) or output (others) */
    size_t *out_of_range;    /* RELU nodes: images with some input |x| > range */
} hecnn_infer_stats;

/* Float64 reference inference of `n` images (input[n][c*h*w], already normalised) into
 * output[n][size of the output node]. stats (may be NULL) accumulate over calls. */
hecnn_status hecnn_graph_infer(const hecnn_graph *g, hecnn_infer_mode mode, const double *input, size_t n,
                               double *output, hecnn_infer_stats *stats);

/* Model files: "HECNNGRF", version, node records with shapes and float64 weights, calibration and
 * approximations, input normalisation, SHA-256 of everything before it. */
hecnn_status hecnn_graph_save(const hecnn_graph *g, FILE *f);
hecnn_status hecnn_graph_load(hecnn_graph **out, FILE *f);
hecnn_status hecnn_graph_read(hecnn_graph **out, const uint8_t *data, size_t size);
/* SHA-256 of the model file's content (what a data owner pins to know which model ran). */
hecnn_status hecnn_graph_digest(const hecnn_graph *g, uint8_t digest[32]);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif

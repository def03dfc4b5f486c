/* The MNIST network's plan and prepared model, shared by the files of src/nn/mnist_*.c. */
#ifndef HECNN_NN_MNIST_INTERNAL_H
#define HECNN_NN_MNIST_INTERNAL_H

#include <complex.h>

#include "hecnn/nn.h"
#include "nn/vr_internal.h"

struct hecnn_mnist_net {
    const ckks_context *ctx;
    hecnn_mnist_mode mode;
    hecnn_vr_layout L;
    size_t w, m, S;
    size_t n_in;            /* input blocks */
    size_t cb, n_a;         /* conv output blocks per kernel; FC1 input blocks (4 * cb) */
    size_t L1, G1, nb1, nh1; /* FC1: revolver cycle, groups, baby and giant steps */
    size_t nhp;             /* FC1 giant steps h and h + nhp share one complex tile */
    size_t n_x2;            /* FC1 output (FC2 input) blocks */
    size_t L2, G2, nb2, nh2;
    size_t rs1, rs2;        /* rotate-and-sum windows */
    unsigned lv_in, lv_conv, lv_act1, lv_fc1, lv_act2, lv_out;
    double scale;           /* the input scale, kept by every layer */
};

struct hecnn_mnist_prepared {
    const hecnn_mnist_net *net;
    hecnn_mnist_mode mode;
    double act1[4], act2[4];    /* public in both modes, as in the seed */
    hecnn_mnist_model *model;   /* plain mode: the weights (tiles are encoded on the fly) */
    /* conv spanned kernels, index ((q * 3 + a) * 3 + b) * deltas + delta; NULL where empty */
    size_t n_conv, deltas;
    ckks_plaintext **conv_pt;
    ckks_ciphertext **conv_ct;
    ckks_ciphertext **conv_bias_ct;     /* encrypted mode: per kernel, level lv_conv, input scale */
    ckks_ciphertext **fc1_ct;           /* encrypted mode: [g * n_a + beta] at lv_act1 */
    ckks_ciphertext **fc1_giant;        /* optional: fc1_ct rotated by hp nb1 w, [(g * n_a + beta) * nhp + hp] */
    ckks_plaintext **fc1_bias_pt;       /* [n_x2] at lv_fc1 */
    ckks_ciphertext **fc1_bias_ct;
    ckks_plaintext **fc2_pt;            /* [(g * L2 + k) * n_x2 + beta] at lv_act2 */
    ckks_ciphertext **fc2_ct;
    ckks_plaintext *fc2_bias_pt;        /* at lv_out */
    ckks_ciphertext *fc2_bias_ct;
    ckks_plaintext *mask0_fc1, *mask0_fc2; /* column 0 of every row, at lv_act1 - 1 and lv_act2 - 1 */
};

bool mnist_conv_mask(const hecnn_mnist_net *n, size_t a, size_t b, size_t delta, double weight, double *out);
size_t mnist_conv_deltas(const hecnn_mnist_net *n);
long mnist_fc1_feature(const hecnn_mnist_net *n, size_t beta, size_t c);
void mnist_fc1_tile(const hecnn_mnist_net *n, const hecnn_mnist_model *mdl, size_t g, size_t beta, size_t h, double *out);
/* The complex tile T_hp + i T_(hp + nhp). */
void mnist_fc1_tile_c(const hecnn_mnist_net *n, const hecnn_mnist_model *mdl, size_t g, size_t beta, size_t hp,
                      double complex *out, double *tmp);
size_t mnist_fc1_neuron(const hecnn_mnist_net *n, size_t i, size_t j);
size_t mnist_fc2_class(const hecnn_mnist_net *n, size_t i, size_t j);
void mnist_fc1_bias(const hecnn_mnist_net *n, const hecnn_mnist_model *mdl, size_t blk, double *out);
void mnist_fc2_tile(const hecnn_mnist_net *n, const hecnn_mnist_model *mdl, size_t g, size_t k, size_t beta, double *out);
void mnist_fc2_bias(const hecnn_mnist_net *n, const hecnn_mnist_model *mdl, double *out);
int mnist_step(const hecnn_mnist_net *n, long step);
size_t mnist_fc1_bin(size_t nb, size_t w);
/* hecnn_mnist_infer with a cancel flag (read at each progress report: HECNN_ERR_CANCELLED) and the
 * seconds of its stages: conv + act1 + FC1, act2, FC2 (seconds may be NULL). */
hecnn_status mnist_infer_run(const hecnn_mnist_net *n, const hecnn_mnist_prepared *p, const ckks_evaluator *ev,
                             ckks_ciphertext *result, ckks_ciphertext *const *blocks, hecnn_progress_fn progress, void *user,
                             const volatile int *cancel, double seconds[3]);

#endif

/* hecnn — the neural-network layer: Volley Revolver encoding (seed 002) and the MNIST CNN on it.
 *
 * The Volley Revolver ("VR") encoding views a ciphertext of S slots as an m x w matrix (row-major,
 * w a power of two, m = S / w): one sample (image) per row. A logical matrix with more than w columns
 * is split into column blocks of w, one ciphertext each (the seed's "several ciphertexts per operand").
 * Slot (i, c) of block b holds column b*w + c of row i.
 *
 * Two families of functions live here:
 *  - the seed's primitives, literally (vRot, SumRowVec, SumColVec, RowShifter, SumForConv,
 *    Kernelspanner, the matrix product of Algorithm 3, the convolution of Algorithm 4, reshaping);
 *  - the MNIST network of the seed's Table 3 evaluated on that encoding with the same algorithms,
 *    rearranged so that rotations are shared and hoisted (docs/MNIST.md explains the rewriting).
 */
#ifndef HECNN_NN_H
#define HECNN_NN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hecnn/ckks.h"
#include "hecnn/graph.h"
#include "hecnn/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

/* ---- the encoding ------------------------------------------------------------------------ */
typedef struct hecnn_vr_layout {
    size_t slots;  /* S, slots per ciphertext */
    size_t width;  /* w, slots per matrix row (power of two, divides S) */
    size_t rows;   /* m = S / w: samples per ciphertext */
} hecnn_vr_layout;

hecnn_status hecnn_vr_layout_make(hecnn_vr_layout *out, size_t slots, size_t width);
/* Column blocks (ciphertexts) a matrix of `cols` columns needs. */
size_t hecnn_vr_blocks(const hecnn_vr_layout *layout, size_t cols);
/* Pack a row-major n_rows x cols matrix (n_rows <= m) into blocks * S slot values, zero padded:
 * out[b * S + i * w + c] = mat[i * cols + b * w + c]. */
hecnn_status hecnn_vr_pack(const hecnn_vr_layout *layout, double *out, const double *mat, size_t n_rows,
                           size_t cols);
/* Inverse of hecnn_vr_pack. */
hecnn_status hecnn_vr_unpack(const hecnn_vr_layout *layout, double *mat, const double *in, size_t n_rows,
                             size_t cols);

/* ---- the seed's primitives (one ciphertext = one m x w matrix, or its virtual ciphertexts) ---- *
 * Masks are encoded at the ciphertext's level with scale q_level and rescaled, so a function that
 * multiplies by a mask uses one level and keeps the scale. Rotation keys: see each function. */

/* vRot (Algorithm 5): rotate every row (virtual ciphertext) left by r, cyclically within the row.
 * Keys: r mod w and (r mod w) - w. One level. */
hecnn_status hecnn_vr_vrot(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *ct,
                           const hecnn_vr_layout *layout, size_t r);
/* SumRowVec: every row receives the column sums (sum over rows). Keys: w * 2^j. No level. */
hecnn_status hecnn_vr_sum_rows(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *ct,
                               const hecnn_vr_layout *layout);
/* SumColVec: every slot of a row receives the sum of that row (Han et al.): rotate-and-sum, keep
 * column 0, spread it back. Keys: +-2^j for 2^j < w. One level. */
hecnn_status hecnn_vr_sum_cols(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *ct,
                               const hecnn_vr_layout *layout);
/* RowShifter (Algorithm 2): for a ciphertext whose row i holds row (i mod p) of a p-row matrix
 * ("tiled vertically"), return the one whose row i holds row ((i + k) mod p). A single rotation
 * (k*w) when p divides m; otherwise two rotations and two masks (one level). */
hecnn_status hecnn_vr_row_shifter(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *ct,
                                  const hecnn_vr_layout *layout, size_t p, size_t k);
/* SumForConv (Algorithm 1) for images stored with row pitch `pitch` in each matrix row: position
 * (x, y) receives the sum of the kh x kw block whose top-left corner it is. (kw - 1) + (kh - 1)
 * rotations (keys 1..kw-1 and pitch*(1..kh-1)). No level. */
hecnn_status hecnn_vr_sum_for_conv(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *ct,
                                   size_t pitch, size_t kh, size_t kw);

/* Geometry of one image channel inside a matrix row. */
typedef struct hecnn_vr_image {
    size_t h, w;     /* image height and width */
    size_t pitch;    /* slots between image rows (>= w); h * pitch <= layout width */
} hecnn_vr_image;

/* Kernelspanner: the kh*kw matrices K_{i,j} (i < kh, j < kw) that span a kernel over the image:
 * K_{i,j}(x, y) = kernel[(x - i) mod kh][(y - j) mod kw] inside every kh x kw block whose top-left
 * corner (i + kh*s, j + kw*t) is a valid output position, 0 elsewhere; the same in every row of the
 * layout. out receives S values for (i, j). Also: the filter F_{i,j} of Algorithm 4 (1 on those
 * top-left corners) when `filter` is true. */
hecnn_status hecnn_vr_kernelspanner(const hecnn_vr_layout *layout, const hecnn_vr_image *img, const double *kernel,
                                    size_t kh, size_t kw, size_t i, size_t j, bool filter, double *out);

/* The weight operand of a product: slot values (encoded when used, at the other operand's level
 * with scale q_level), a plaintext, or a ciphertext (the model provider's setting). Set one. */
typedef struct hecnn_vr_operand {
    const double *values;
    const ckks_plaintext *pt;
    const ckks_ciphertext *ct;
} hecnn_vr_operand;

/* Convolution of Algorithm 4 over every image of the ciphertext at once (stride 1, no padding):
 * out(x, y) = bias + sum_{a,b} kernel[a][b] * in(x + a, y + b) at the valid positions
 * (x <= h - kh, y <= w - kw), 0 elsewhere. spanned[i*kw + j] holds K_{i,j} (Kernelspanner) at the
 * input's level with scale q_level; bias is a plaintext or ciphertext at level - 2 with the input's
 * scale (or both NULL). Two levels (product, filter). */
hecnn_status hecnn_vr_conv_seed(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *in,
                                const hecnn_vr_layout *layout, const hecnn_vr_image *img, size_t kh, size_t kw,
                                const hecnn_vr_operand *spanned, const hecnn_vr_operand *bias);

/* Homomorphic matrix product of Algorithm 3, C = A * B for A (m x n, `a_blocks` ciphertexts of
 * column blocks) and B (n x p): `b_tiled` holds, per column block of A, B^T tiled vertically
 * (row i = column (i mod p) of B restricted to that block), at A's level with scale q_level. For
 * k < p: RowShifter, product, SumColVec, filter F_k (row i keeps column (i + k) mod p), accumulate.
 * C (m x p) is returned in ceil(p / w) blocks at level - 3 with A's scale. Keys: those of RowShifter
 * (k*w), SumColVec. */
hecnn_status hecnn_vr_matmul_seed(const ckks_evaluator *ev, ckks_ciphertext **c_blocks,
                                  ckks_ciphertext *const *a_blocks, size_t n_blocks, const hecnn_vr_layout *layout,
                                  const hecnn_vr_operand *b_tiled, size_t p);

/* Reshaping after a convolution (section 4.3): move image row x from offset x*from_pitch to
 * x*to_pitch (to_pitch < from_pitch), keeping `cols` columns per image row, for `h` rows.
 * h - 1 rotations and h masks; one level. */
hecnn_status hecnn_vr_reshape(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *in,
                              const hecnn_vr_layout *layout, size_t h, size_t cols, size_t from_pitch,
                              size_t to_pitch);

/* ---- the MNIST network (seed 002, Table 3) ------------------------------------------------ */
#define HECNN_MNIST_SIDE 28
#define HECNN_MNIST_PIXELS 784
#define HECNN_MNIST_KERNELS 4
#define HECNN_MNIST_KSIZE 3
#define HECNN_MNIST_CONV_SIDE 26
#define HECNN_MNIST_FC1_IN 2704
#define HECNN_MNIST_FC1_OUT 64
#define HECNN_MNIST_CLASSES 10

typedef struct hecnn_mnist_model {
    double conv_w[HECNN_MNIST_KERNELS][HECNN_MNIST_KSIZE][HECNN_MNIST_KSIZE];
    double conv_b[HECNN_MNIST_KERNELS];
    double act1[4];                                        /* c0 + c1 x + c2 x^2 + c3 x^3 */
    double fc1_w[HECNN_MNIST_FC1_OUT][HECNN_MNIST_FC1_IN]; /* input ch*676 + r*26 + c */
    double fc1_b[HECNN_MNIST_FC1_OUT];
    double act2[4];
    double fc2_w[HECNN_MNIST_CLASSES][HECNN_MNIST_FC1_OUT];
    double fc2_b[HECNN_MNIST_CLASSES];
} hecnn_mnist_model;

/* Weights file (docs/MNIST.md): magic "HECNNMDL", version, architecture, sizes, float32 or float64
 * payload, SHA-256. The loader checks all of it and rejects truncated or altered files with
 * HECNN_ERR_BAD_FORMAT and a detail (hecnn_last_error_detail). */
hecnn_status hecnn_mnist_model_load(hecnn_mnist_model **out, const char *path);
hecnn_status hecnn_mnist_model_read(hecnn_mnist_model **out, const uint8_t *data, size_t size);
hecnn_status hecnn_mnist_model_save(const hecnn_mnist_model *model, const char *path);
void hecnn_mnist_model_free(hecnn_mnist_model *model);
/* Plaintext reference inference in double precision; pixels in [0, 1]; logits[n][10]. */
void hecnn_mnist_infer_plain(const hecnn_mnist_model *model, const double *pixels, size_t n, double *logits);
/* The network as a graph (include/hecnn/graph.h): INPUT 1x28x28, CONV2D 4 kernels k3 stride 1 pad 0,
 * POLY (act1, degree 3), DENSE 64, POLY (act2), DENSE 10; inputs are the pixels in [0, 1] (no input
 * normalisation). hecnn_graph_infer on it computes hecnn_mnist_infer_plain; the rows packing
 * (HECNN_LAYOUT_ROWS, include/hecnn/plan.h) runs it encrypted. */
hecnn_status hecnn_mnist_to_graph(hecnn_graph **out, const hecnn_mnist_model *model);

/* Network geometry: the CKKS parameters (128-bit secure, N = 2^14, 10 ciphertext primes of
 * 50 + 9 x 36 bits, one 60-bit special prime, scale 2^36) and the
 * row width w; m = N/2 / w images per batch. */
typedef enum hecnn_mnist_mode {
    HECNN_MNIST_PLAIN_MODEL = 0,     /* the server holds the weights in the clear */
    HECNN_MNIST_ENCRYPTED_MODEL = 1  /* the model provider encrypted them: the server sees neither */
} hecnn_mnist_mode;

hecnn_status hecnn_mnist_params(ckks_params_literal *out);
/* Smallest supported row width for a batch of `images` (32 <= w <= 1024): w = S / m, m >= images
 * (a power of two, at most S/32). */
size_t hecnn_mnist_width_for_batch(size_t slots, size_t images);

typedef struct hecnn_mnist_net hecnn_mnist_net;  /* a plan: context, layout, levels, keys needed */
hecnn_status hecnn_mnist_net_new(hecnn_mnist_net **out, const ckks_context *ctx, size_t width,
                                 hecnn_mnist_mode mode);
void hecnn_mnist_net_free(hecnn_mnist_net *net);
const hecnn_vr_layout *hecnn_mnist_net_layout(const hecnn_mnist_net *net);
size_t hecnn_mnist_net_input_blocks(const hecnn_mnist_net *net);

/* The rotations the network uses (steps, left-positive) and, per step, the highest level it is used
 * at (so a key can be level-reduced). Returns the count; fills at most `cap` entries. */
size_t hecnn_vr_required_rotations(const hecnn_mnist_net *net, int *steps, unsigned *max_levels, size_t cap);
/* Relinearization key and exactly those rotation keys, each at the level it is needed at. */
hecnn_status hecnn_mnist_eval_keys_generate(ckks_eval_keys **out, const hecnn_mnist_net *net,
                                            const ckks_secret_key *sk);

/* Data owner: encrypt up to m images (n x 784 pixels in [0, 1]) into input blocks. Exactly one of
 * pk / sk. */
hecnn_status hecnn_mnist_encrypt_images(const hecnn_mnist_net *net, ckks_ciphertext **blocks, const double *pixels,
                                        size_t n, const ckks_public_key *pk, const ckks_secret_key *sk);
/* Data owner: decrypt the result ciphertext into logits[n][10]. Fails with HECNN_ERR_BAD_FORMAT when
 * the padding slots do not decrypt to (near) zero: a ciphertext under another key. */
hecnn_status hecnn_mnist_decrypt_scores(const hecnn_mnist_net *net, double *logits, size_t n,
                                        const ckks_ciphertext *result, const ckks_secret_key *sk);
/* The same through ckks_decrypt_flooded (flood NULL: its defaults): logits that may leave the data
 * owner. The padding check allows for the flooding noise (10 of its standard deviations). */
hecnn_status hecnn_mnist_decrypt_scores_flooded(const hecnn_mnist_net *net, double *logits, size_t n,
                                                const ckks_ciphertext *result, const ckks_secret_key *sk,
                                                const ckks_flood_options *flood);

/* The model in the layout the server uses: plaintexts (plain mode) or ciphertexts (encrypted mode,
 * produced by the model provider with the data owner's public key). */
typedef struct hecnn_mnist_prepared hecnn_mnist_prepared;
hecnn_status hecnn_mnist_prepare_plain(hecnn_mnist_prepared **out, const hecnn_mnist_net *net,
                                       const hecnn_mnist_model *model);
hecnn_status hecnn_mnist_encrypt_model(hecnn_mnist_prepared **out, const hecnn_mnist_net *net,
                                       const hecnn_mnist_model *model, const ckks_public_key *pk);
void hecnn_mnist_prepared_free(hecnn_mnist_prepared *prep);
/* Encrypted mode, for several batches: rotate the FC1 tiles to their giant steps once instead of
 * in every batch (about 560 MB more at batches of 256). No-op in the plain mode. */
hecnn_status hecnn_mnist_prepared_expand(hecnn_mnist_prepared *prep, const ckks_evaluator *ev);
hecnn_status hecnn_mnist_prepared_save(const hecnn_mnist_prepared *prep, FILE *f);
hecnn_status hecnn_mnist_prepared_load(hecnn_mnist_prepared **out, const hecnn_mnist_net *net, FILE *f);
size_t hecnn_mnist_prepared_ciphertexts(const hecnn_mnist_prepared *prep);

/* Server: one batch (input blocks from hecnn_mnist_encrypt_images) to one result ciphertext.
 * `progress` (may be NULL) is called with a stage name and a fraction done. */
typedef void (*hecnn_progress_fn)(void *user, const char *stage, double done);
hecnn_status hecnn_mnist_infer(const hecnn_mnist_net *net, const hecnn_mnist_prepared *prep,
                               const ckks_evaluator *ev, ckks_ciphertext *result, ckks_ciphertext *const *blocks,
                               hecnn_progress_fn progress, void *user);

/* ---- files of encrypted batches ------------------------------------------------------------ *
 * "HECNNVRB", u32 version, u32 kind, u64 parameter id, u32 row width, u32 images, u32 batches,
 * u32 ciphertexts per batch; then batches x per_batch ciphertexts (ckks_ciphertext_save), read one
 * batch at a time. */
typedef enum hecnn_vr_file_kind { HECNN_VR_FILE_IMAGES = 1, HECNN_VR_FILE_SCORES = 2 } hecnn_vr_file_kind;
typedef struct hecnn_vr_file_header {
    hecnn_vr_file_kind kind;
    size_t width, images, batches, per_batch;
} hecnn_vr_file_header;
hecnn_status hecnn_vr_file_write_header(FILE *f, const ckks_context *ctx, const hecnn_vr_file_header *h);
/* Checks magic, version, kind, parameter id (HECNN_ERR_PARAMS_MISMATCH) and consistency; on a
 * regular file also that the bytes after the header can hold the ciphertexts it announces (at
 * least 96 + N bytes each), so counts can be trusted for allocation. */
hecnn_status hecnn_vr_file_read_header(FILE *f, const ckks_context *ctx, hecnn_vr_file_kind kind,
                                       hecnn_vr_file_header *h);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif

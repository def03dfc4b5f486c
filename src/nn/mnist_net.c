/* The MNIST CNN of the seed (Table 3) on the Volley Revolver encoding.
 *
 * Layout. A batch of m images is an m x F matrix, one image per row; F counts 28 pixel rows of
 * pitch 32 (pixel (r, c) is column 32r + c). Rows are w slots wide, so the batch is F / w ciphertexts
 * (column blocks). With w = 32 (the default, m = 256 at N = 2^14), block r holds pixel row r of
 * every image.
 *
 * CONV (Algorithm 4). SumForConv is a sum of rotations by s = 32a + b of the product with the
 * spanned kernel, and the filter keeps the block corners. Both are linear, so
 *     sum_{i,j} F_ij * SumForConv(in * K_ij) = sum_{a,b} rot(in, s_ab) * Kspan_ab,
 * where Kspan_ab = sum_{i,j} F_ij * rot(K_ij, s_ab) is the kernel weight k[a][b] spanned over the
 * valid output positions (the model provider computes it, like K_ij). The rotations then act on
 * the input only: they are hoisted and shared by all kernels, and the filter costs no level.
 * Across column blocks a shift s reads block beta + delta with rotation s - delta*w; the spanned
 * kernel is split by delta.
 *
 * FC (Algorithm 3, "revolver"). For the product A (m x n) * B (n x p), B^T is tiled vertically
 * (row i of the tile = neuron i mod L, L = min(p, m)); iteration k multiplies A with
 * RowShifter(tile, k) = rot(tile, k w), so row i meets neuron (i + k) mod L, then sums each row
 * (SumColVec) and keeps one column. Two changes, both exact:
 *  - baby-step/giant-step RowShifter: k = h*nb + b, rot(T, k w) * A = rot(rot(T, h nb w) *
 *    rot(A, -b w), b w), so nb - 1 rotations of each input block and L/nb - 1 of each tile (or
 *    re-encoded plaintexts) replace L - 1 per block;
 *  - the row sum is a rotate-and-sum that leaves the sum in column 0 only; one mask keeps it and a
 *    rotation places it in column k ("revolved" output: row i, column k holds neuron (i + k) mod L).
 *    The broadcast of SumColVec and its second mask disappear; the next layer's weights are laid
 *    out for the revolved order (in the encrypted mode the provider encrypts them so).
 *
 * Levels (top T): conv T -> T-1, act T-1 -> T-3, FC1 -> T-5, act -> T-7, FC2 -> T-9 = 0.
 * Every layer keeps the scale exactly: weights and masks are encoded at the prime they are
 * rescaled by, and the activation picks its constant scales to land on the input scale. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "nn/mnist_internal.h"
#include "util/alloc.h"
#include "util/error.h"

#define PITCH 32u
#define P1 HECNN_MNIST_FC1_OUT
#define P2 16u /* 10 classes padded to a power of two */

static bool is_pow2(size_t x) { return x && !(x & (x - 1)); }
static size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }

hecnn_status hecnn_mnist_params(ckks_params_literal *out)
{
    if (!out) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    /* log QP = 50 + 9 x 36 + 60 = 434 <= 438 (N = 2^14, 128-bit). Nine levels: the depth of
     * conv (1) + act (2) + FC (2) + act (2) + FC (2). One special prime above every ciphertext
     * prime (dnum = 10) keeps key-switching noise far below the scale: with two 45-bit special
     * primes and 33-bit levels the logits were 25 times less precise. q_0 leaves 14 bits above the
     * scale for the logits. */
    *out = (ckks_params_literal){.log_n = 14, .n_q = 10, .n_p = 1, .log_scale = 36, .sigma = 3.2};
    out->log_q[0] = 50;
    for (unsigned i = 1; i < 10; i++) out->log_q[i] = 36;
    out->log_p[0] = 60;
    return HECNN_OK;
}

size_t hecnn_mnist_width_for_batch(size_t slots, size_t images)
{
    size_t m = slots / PITCH;
    if (images == 0) images = 1;
    while (m / 2 >= images && m / 2 >= P2) m /= 2;
    size_t w = slots / m;
    return w < PITCH ? PITCH : w;
}

static size_t rs_window(size_t w, size_t used) { return min_sz(w, used); }

/* FC1 baby steps: rotations of the input are dear, re-encoding a plaintext tile is cheap, while
 * an encrypted tile's giant step is a rotation too. At least two giant steps remain, to pair. */
static size_t fc1_baby(hecnn_mnist_mode mode, size_t L1, size_t w)
{
    return min_sz(min_sz(mode == HECNN_MNIST_ENCRYPTED_MODEL ? 8 : 2, L1 / 2), w);
}

hecnn_status hecnn_mnist_net_new(hecnn_mnist_net **out, const ckks_context *ctx, size_t width, hecnn_mnist_mode mode)
{
    if (!out || !ctx) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    const size_t slots = ckks_context_max_slots(ctx);
    if (!is_pow2(width) || width < PITCH || width > slots / P2 || width > 1024)
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "row width %zu: a power of two from %u to %zu", width, PITCH, slots / P2);
    if (mode != HECNN_MNIST_PLAIN_MODEL && mode != HECNN_MNIST_ENCRYPTED_MODEL)
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "mode %d", (int)mode);
    const unsigned top = ckks_context_max_level(ctx);
    if (top < 9) return hecnn_fail(HECNN_ERR_INVALID_PARAMS, "the network needs 9 levels, the context has %u", top);
    hecnn_mnist_net *n = hecnn_calloc(1, sizeof *n);
    if (!n) return hecnn_fail(HECNN_ERR_NO_MEMORY, "net");
    n->ctx = ctx;
    n->mode = mode;
    hecnn_vr_layout_make(&n->L, slots, width);
    const size_t w = width, m = n->L.rows;
    n->w = w;
    n->m = m;
    n->S = slots;
    n->n_in = (HECNN_MNIST_SIDE * PITCH + w - 1) / w;
    n->cb = (HECNN_MNIST_CONV_SIDE * PITCH + w - 1) / w;
    n->n_a = HECNN_MNIST_KERNELS * n->cb;
    n->L1 = min_sz(P1, m);
    n->G1 = P1 / n->L1;
    n->nb1 = fc1_baby(mode, n->L1, w);
    n->nh1 = n->L1 / n->nb1;
    n->nhp = n->nh1 / 2;
    n->n_x2 = (P1 + w - 1) / w;
    n->L2 = min_sz(P2, m);
    n->G2 = P2 / n->L2;
    n->nb2 = min_sz(4, n->L2);
    n->nh2 = n->L2 / n->nb2;
    n->rs1 = rs_window(w, w);
    n->rs2 = rs_window(w, P1);
    n->lv_in = top;
    n->lv_conv = top - 1;
    n->lv_act1 = top - 3;
    n->lv_fc1 = top - 5;
    n->lv_act2 = top - 7;
    n->lv_out = top - 9;
    n->scale = ckks_context_default_scale(ctx);
    *out = n;
    return HECNN_OK;
}

void hecnn_mnist_net_free(hecnn_mnist_net *net) { hecnn_free(net); }
const hecnn_vr_layout *hecnn_mnist_net_layout(const hecnn_mnist_net *net) { return &net->L; }
size_t hecnn_mnist_net_input_blocks(const hecnn_mnist_net *net) { return net->n_in; }

/* ---- geometry shared by the server and the model provider ----------------------------------- */

/* Conv source for shift s = 32a + b at output column c: block offset (c + s) / w, and whether the
 * output column is a real pixel column (c mod 32 < 26). */
bool mnist_conv_mask(const hecnn_mnist_net *n, size_t a, size_t b, size_t delta, double weight, double *out)
{
    const size_t s = PITCH * a + b, w = n->w;
    bool any = false;
    if (out) memset(out, 0, n->S * sizeof *out);
    for (size_t c = 0; c < w; c++) {
        if (c % PITCH >= HECNN_MNIST_CONV_SIDE || (c + s) / w != delta) continue;
        any = true;
        if (!out) break;
        for (size_t i = 0; i < n->m; i++) out[i * w + c] = weight;
    }
    return any;
}

size_t mnist_conv_deltas(const hecnn_mnist_net *n) { return (n->w - 1 + 2 * PITCH + 2) / n->w + 1; }

/* FC1 input feature of (block beta, column c), or -1 for padding. */
long mnist_fc1_feature(const hecnn_mnist_net *n, size_t beta, size_t c)
{
    const size_t q = beta / n->cb, o = (beta % n->cb) * n->w + c, r = o / PITCH, col = o % PITCH;
    if (r >= HECNN_MNIST_CONV_SIDE || col >= HECNN_MNIST_CONV_SIDE) return -1;
    return (long)(q * HECNN_MNIST_CONV_SIDE * HECNN_MNIST_CONV_SIDE + r * HECNN_MNIST_CONV_SIDE + col);
}

/* FC1 tile (group g) for input block beta, giant shift h: row i holds neuron g L1 + (i + h nb1) mod L1. */
void mnist_fc1_tile(const hecnn_mnist_net *n, const hecnn_mnist_model *mdl, size_t g, size_t beta, size_t h, double *out)
{
    const size_t w = n->w;
    memset(out, 0, n->S * sizeof *out);
    long feat[1024];
    for (size_t c = 0; c < w; c++) feat[c] = mnist_fc1_feature(n, beta, c);
    for (size_t i = 0; i < n->m; i++) {
        const size_t neuron = g * n->L1 + (i + h * n->nb1) % n->L1;
        for (size_t c = 0; c < w; c++)
            if (feat[c] >= 0) out[i * w + c] = mdl->fc1_w[neuron][feat[c]];
    }
}

void mnist_fc1_tile_c(const hecnn_mnist_net *n, const hecnn_mnist_model *mdl, size_t g, size_t beta, size_t hp,
                      double complex *out, double *tmp)
{
    mnist_fc1_tile(n, mdl, g, beta, hp, tmp);
    for (size_t i = 0; i < n->S; i++) out[i] = tmp[i];
    mnist_fc1_tile(n, mdl, g, beta, hp + n->nhp, tmp);
    for (size_t i = 0; i < n->S; i++) out[i] += I * tmp[i];
}

/* FC1 placement: a group's column offset c splits into c mod Q (one rotation per group) and
 * c - c mod Q (one rotation per bin of groups), fewer keys than one rotation per offset. */
size_t mnist_fc1_bin(size_t nb, size_t w) { return min_sz(8 * nb, w); }

/* Revolved FC1 output: row i, column j < 64 holds neuron g L1 + (i + k) mod L1, j = g L1 + k. */
size_t mnist_fc1_neuron(const hecnn_mnist_net *n, size_t i, size_t j)
{
    return (j / n->L1) * n->L1 + (i + j % n->L1) % n->L1;
}

/* Revolved FC2 output: row i, column j < 16 holds class g L2 + (i + k) mod L2, j = g L2 + k. */
size_t mnist_fc2_class(const hecnn_mnist_net *n, size_t i, size_t j)
{
    return (j / n->L2) * n->L2 + (i + j % n->L2) % n->L2;
}

void mnist_fc1_bias(const hecnn_mnist_net *n, const hecnn_mnist_model *mdl, size_t blk, double *out)
{
    memset(out, 0, n->S * sizeof *out);
    for (size_t i = 0; i < n->m; i++)
        for (size_t c = 0; c < n->w && blk * n->w + c < P1; c++)
            out[i * n->w + c] = mdl->fc1_b[mnist_fc1_neuron(n, i, blk * n->w + c)];
}

/* FC2 tile for iteration (g, k) and input block beta: row i, column c holds
 * W2[class g L2 + (i + k) mod L2][neuron of input column beta w + c]. */
void mnist_fc2_tile(const hecnn_mnist_net *n, const hecnn_mnist_model *mdl, size_t g, size_t k, size_t beta, double *out)
{
    memset(out, 0, n->S * sizeof *out);
    for (size_t i = 0; i < n->m; i++) {
        const size_t cls = g * n->L2 + (i + k) % n->L2;
        if (cls >= HECNN_MNIST_CLASSES) continue;
        for (size_t c = 0; c < n->w && beta * n->w + c < P1; c++)
            out[i * n->w + c] = mdl->fc2_w[cls][mnist_fc1_neuron(n, i, beta * n->w + c)];
    }
}

void mnist_fc2_bias(const hecnn_mnist_net *n, const hecnn_mnist_model *mdl, double *out)
{
    memset(out, 0, n->S * sizeof *out);
    for (size_t i = 0; i < n->m; i++)
        for (size_t j = 0; j < P2; j++) {
            const size_t cls = mnist_fc2_class(n, i, j);
            if (cls < HECNN_MNIST_CLASSES) out[i * n->w + j] = mdl->fc2_b[cls];
        }
}

/* ---- rotation keys ----------------------------------------------------------------------------- */

typedef struct rot_set {
    int *steps;
    unsigned *levels;
    size_t n, cap;
} rot_set;

static void rot_add(rot_set *r, long step, unsigned level, size_t slots)
{
    const long s = (long)slots;
    step = ((step % s) + s) % s;
    if (step == 0) return;
    if (step > s / 2) step -= s; /* prefer the short direction: same Galois element */
    for (size_t i = 0; i < r->n; i++)
        if (r->steps[i] == (int)step) {
            if (level > r->levels[i]) r->levels[i] = level;
            return;
        }
    if (r->n < r->cap) {
        r->steps[r->n] = (int)step;
        r->levels[r->n] = level;
    }
    r->n++;
}

/* Normalised rotation step as used by the evaluation code (same Galois element as `step`). */
int mnist_step(const hecnn_mnist_net *n, long step)
{
    const long s = (long)n->S;
    step = ((step % s) + s) % s;
    if (step > s / 2) step -= s;
    return (int)step;
}

size_t hecnn_vr_required_rotations(const hecnn_mnist_net *n, int *steps, unsigned *max_levels, size_t cap)
{
    if (!n) return 0;
    int dummy_s[1];
    unsigned dummy_l[1];
    rot_set r = {.steps = steps ? steps : dummy_s, .levels = max_levels ? max_levels : dummy_l, .cap = steps && max_levels ? cap : 0};
    const size_t w = n->w, S = n->S;
    /* conv: input rotations */
    for (size_t a = 0; a < 3; a++)
        for (size_t b = 0; b < 3; b++)
            for (size_t d = 0; d < mnist_conv_deltas(n); d++)
                if (mnist_conv_mask(n, a, b, d, 1, NULL)) rot_add(&r, (long)(PITCH * a + b) - (long)(d * w), n->lv_in, S);
    /* FC1: baby steps on the input, giant steps on encrypted tiles; placement. Keys for the
     * encrypted model also serve the plaintext one (union of both plans). */
    for (int pass = 0; pass < (n->mode == HECNN_MNIST_ENCRYPTED_MODEL ? 2 : 1); pass++) {
        const hecnn_mnist_mode md = pass ? HECNN_MNIST_PLAIN_MODEL : n->mode;
        const size_t nb = fc1_baby(md, n->L1, w), nh = n->L1 / nb, nhp = nh / 2;
        for (size_t b = 1; b < nb; b++) rot_add(&r, -(long)(b * w), n->lv_act1, S);
        if (md == HECNN_MNIST_ENCRYPTED_MODEL)
            for (size_t h = 1; h < nhp; h++) rot_add(&r, (long)(h * nb * w), n->lv_act1, S);
        for (size_t b = 1; b < nb; b++) rot_add(&r, (long)(b * (w - 1)), n->lv_fc1, S);
        const size_t Q = mnist_fc1_bin(nb, w);
        for (size_t g = 0; g < n->G1; g++)
            for (size_t h = 0; h < nh; h++) {
                const size_t c = (g * n->L1 + h * nb) % w;
                rot_add(&r, -(long)(c % Q), n->lv_fc1, S);
                rot_add(&r, -(long)(c - c % Q), n->lv_fc1, S);
            }
    }
    for (size_t j = 1; j < n->rs1; j <<= 1) rot_add(&r, (long)j, n->lv_act1 - 1, S);
    /* FC2 */
    for (size_t j = 1; j < n->rs2; j <<= 1) rot_add(&r, (long)j, n->lv_act2 - 1, S);
    for (size_t b = 1; b < n->nb2; b++) rot_add(&r, -(long)b, n->lv_out, S);
    for (size_t g = 0; g < n->G2; g++)
        for (size_t h = 0; h < n->nh2; h++) rot_add(&r, -(long)((g * n->L2 + h * n->nb2) % w), n->lv_out, S);
    return r.n;
}

hecnn_status hecnn_mnist_eval_keys_generate(ckks_eval_keys **out, const hecnn_mnist_net *n, const ckks_secret_key *sk)
{
    if (!out || !n || !sk) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    int steps[256];
    unsigned levels[256];
    const size_t count = hecnn_vr_required_rotations(n, steps, levels, 256);
    if (count > 256) return hecnn_fail(HECNN_ERR_UNSUPPORTED, "%zu rotation keys", count);
    ckks_eval_keys *keys;
    hecnn_status st = ckks_eval_keys_new(&keys, n->ctx);
    if (st) return st;
    ckks_switching_key *k = NULL;
    /* the relinearization key is used from the top (encrypted conv) or from T-1 (activation) */
    st = ckks_relin_key_generate(&k, sk, n->mode == HECNN_MNIST_ENCRYPTED_MODEL ? n->lv_in : n->lv_conv);
    if (!st) st = ckks_eval_keys_add(keys, k);
    for (size_t i = 0; !st && i < count; i++) {
        st = ckks_galois_key_generate(&k, sk, ckks_galois_element_rotation(n->ctx, steps[i]), levels[i]);
        if (!st) st = ckks_eval_keys_add(keys, k);
    }
    /* FC1 separates the two halves of its complex accumulators by a conjugation */
    if (!st) st = ckks_galois_key_generate(&k, sk, ckks_galois_element_conjugate(n->ctx), n->lv_fc1);
    if (!st) st = ckks_eval_keys_add(keys, k);
    if (st) {
        ckks_eval_keys_free(keys);
        return st;
    }
    *out = keys;
    return HECNN_OK;
}

/* ---- data owner ----------------------------------------------------------------------------------- */

hecnn_status hecnn_mnist_encrypt_images(const hecnn_mnist_net *n, ckks_ciphertext **blocks, const double *pixels, size_t count,
                                        const ckks_public_key *pk, const ckks_secret_key *sk)
{
    if (!n || !blocks || (!pixels && count) || (!pk == !sk)) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "bad argument");
    if (count > n->m) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "%zu images, a batch holds %zu", count, n->m);
    const size_t S = n->S, w = n->w;
    double *slots = hecnn_calloc(n->n_in * S, sizeof *slots);
    if (!slots) return hecnn_fail(HECNN_ERR_NO_MEMORY, "slots");
    for (size_t i = 0; i < count; i++)
        for (size_t r = 0; r < HECNN_MNIST_SIDE; r++)
            for (size_t c = 0; c < HECNN_MNIST_SIDE; c++) {
                const size_t f = r * PITCH + c;
                slots[(f / w) * S + i * w + f % w] = pixels[i * HECNN_MNIST_PIXELS + r * HECNN_MNIST_SIDE + c];
            }
    hecnn_status st = HECNN_OK;
#pragma omp parallel for schedule(dynamic) num_threads(omp_get_max_threads())
    for (size_t b = 0; b < n->n_in; b++) {
        ckks_plaintext *pt = NULL;
        hecnn_status s2 = vr_encode_new(n->ctx, &pt, slots + b * S, n->lv_in, n->scale);
        if (!s2) s2 = pk ? ckks_encrypt_pk(n->ctx, blocks[b], pt, pk) : ckks_encrypt_sk(n->ctx, blocks[b], pt, sk);
        ckks_plaintext_free(pt);
        if (s2) {
#pragma omp critical(mnist_err)
            st = s2;
        }
    }
    hecnn_free(slots);
    return st;
}

/* Decrypt (flooded when asked: opt NULL means the library's defaults), decode, check the padding on
 * the values that leave this function. */
static hecnn_status mnist_decrypt(const hecnn_mnist_net *n, double *logits, size_t count, const ckks_ciphertext *result,
                                  const ckks_secret_key *sk, bool flooded, const ckks_flood_options *flood)
{
    if (!n || !logits || !result || !sk) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    if (count > n->m) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "%zu images, a batch holds %zu", count, n->m);
    /* the layout fills all S slots: fewer would decode only part of the rows, and another scale
     * would scale every score (both come from the untrusted result's header) */
    if (ckks_ciphertext_slots(result) != n->S)
        return hecnn_fail(HECNN_ERR_BAD_FORMAT, "the result has %zu slots, the network's layout uses %zu",
                          ckks_ciphertext_slots(result), n->S);
    const double scale = ckks_ciphertext_scale(result);
    if (!(fabs(scale / n->scale - 1) <= 1e-9))
        return hecnn_fail(HECNN_ERR_BAD_FORMAT, "the result has scale %g, the network keeps its input scale 2^%.3f", scale,
                          log2(n->scale));
    ckks_plaintext *pt;
    hecnn_status st = ckks_plaintext_new(&pt, n->ctx);
    if (st) return st;
    double *v = hecnn_alloc(n->S * sizeof *v);
    if (!v) st = hecnn_fail(HECNN_ERR_NO_MEMORY, "slots");
    if (!st) st = flooded ? ckks_decrypt_flooded(n->ctx, pt, result, sk, flood) : ckks_decrypt(n->ctx, pt, result, sk);
    if (!st) st = ckks_decode_real(n->ctx, v, pt);
    if (!st) {
        /* Columns 16.. of every row are exact zeros under the right key; anything else decrypts to
         * noise of the size of q_0 / scale. NaN-safe (fmax would drop a NaN): any value that is
         * not finite, padding or score, refuses the result. */
        double worst = 0;
        bool finite = true;
        /* flooding noise reaches padding too: allow 10 of its standard deviations beyond 0.5 */
        const double limit = 0.5 + (flooded ? 10 * ckks_flood_slot_stddev(n->ctx, result, flood) : 0);
        for (size_t i = 0; i < n->m; i++)
            for (size_t c = 0; c < n->w; c++) {
                const double a = fabs(v[i * n->w + c]);
                if (!isfinite(a)) finite = false;
                else if (c >= P2 && a > worst) worst = a;
            }
        if (!finite)
            st = hecnn_fail(HECNN_ERR_BAD_FORMAT, "the result decrypts to values that are not finite: corrupted (scale or data)");
        else if (!(worst < limit))
            st = hecnn_fail(HECNN_ERR_BAD_FORMAT,
                            "the result does not decrypt under this secret key (padding slots reach %.3g): "
                            "encrypted under other keys, or corrupted",
                            worst);
    }
    for (size_t i = 0; !st && i < count; i++)
        for (size_t j = 0; j < P2; j++) {
            const size_t cls = mnist_fc2_class(n, i, j);
            if (cls < HECNN_MNIST_CLASSES) logits[i * HECNN_MNIST_CLASSES + cls] = v[i * n->w + j];
        }
    hecnn_free(v);
    ckks_plaintext_free(pt);
    return st;
}

hecnn_status hecnn_mnist_decrypt_scores(const hecnn_mnist_net *n, double *logits, size_t count, const ckks_ciphertext *result,
                                        const ckks_secret_key *sk)
{
    return mnist_decrypt(n, logits, count, result, sk, false, NULL);
}

hecnn_status hecnn_mnist_decrypt_scores_flooded(const hecnn_mnist_net *n, double *logits, size_t count,
                                                const ckks_ciphertext *result, const ckks_secret_key *sk,
                                                const ckks_flood_options *flood)
{
    return mnist_decrypt(n, logits, count, result, sk, true, flood);
}

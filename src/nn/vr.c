/* The Volley Revolver encoding and the seed's primitives, implemented as the paper states them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/vr_internal.h"
#include "util/alloc.h"
#include "util/error.h"

static bool is_pow2(size_t x) { return x && !(x & (x - 1)); }

hecnn_status hecnn_vr_layout_make(hecnn_vr_layout *out, size_t slots, size_t width)
{
    if (!out) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    if (!is_pow2(slots) || !is_pow2(width) || width > slots)
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "row width %zu must be a power of two dividing %zu slots", width, slots);
    *out = (hecnn_vr_layout){.slots = slots, .width = width, .rows = slots / width};
    return HECNN_OK;
}

size_t hecnn_vr_blocks(const hecnn_vr_layout *l, size_t cols) { return (cols + l->width - 1) / l->width; }

hecnn_status hecnn_vr_pack(const hecnn_vr_layout *l, double *out, const double *mat, size_t n_rows, size_t cols)
{
    if (!l || !out || (!mat && n_rows && cols)) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    if (n_rows > l->rows) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "%zu rows, the layout holds %zu", n_rows, l->rows);
    const size_t nb = hecnn_vr_blocks(l, cols);
    memset(out, 0, nb * l->slots * sizeof *out);
    for (size_t i = 0; i < n_rows; i++)
        for (size_t j = 0; j < cols; j++) out[(j / l->width) * l->slots + i * l->width + j % l->width] = mat[i * cols + j];
    return HECNN_OK;
}

hecnn_status hecnn_vr_unpack(const hecnn_vr_layout *l, double *mat, const double *in, size_t n_rows, size_t cols)
{
    if (!l || !in || (!mat && n_rows && cols)) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    if (n_rows > l->rows) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "%zu rows, the layout holds %zu", n_rows, l->rows);
    for (size_t i = 0; i < n_rows; i++)
        for (size_t j = 0; j < cols; j++) mat[i * cols + j] = in[(j / l->width) * l->slots + i * l->width + j % l->width];
    return HECNN_OK;
}

/* ---- helpers ------------------------------------------------------------------------------ */

double vr_q(const ckks_context *ctx, unsigned level) { return (double)ckks_context_q(ctx, level); }

hecnn_status vr_encode_new(const ckks_context *ctx, ckks_plaintext **out, const double *values, unsigned level,
                           double scale)
{
    hecnn_status st = ckks_plaintext_new(out, ctx);
    if (st) return st;
    const size_t slots = ckks_context_max_slots(ctx);
    if ((st = ckks_encode_real(ctx, *out, values, slots, slots, level, scale))) {
        ckks_plaintext_free(*out);
        *out = NULL;
    }
    return st;
}

hecnn_status vr_mul_mask(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *in, const double *mask)
{
    const ckks_context *ctx = ckks_evaluator_context(ev);
    const unsigned level = ckks_ciphertext_level(in);
    ckks_plaintext *pt;
    hecnn_status st = vr_encode_new(ctx, &pt, mask, level, vr_q(ctx, level));
    if (st) return st;
    st = ckks_mul_plain(ev, out, in, pt);
    if (!st) st = ckks_rescale(ev, out, out);
    ckks_plaintext_free(pt);
    return st;
}

hecnn_status vr_accumulate(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *in, bool *first)
{
    if (*first) {
        *first = false;
        return ckks_ciphertext_copy(out, in);
    }
    return ckks_add(ev, out, out, in);
}

hecnn_status vr_mul_operand(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *in,
                            const hecnn_vr_operand *op)
{
    if (!op) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL operand");
    if (op->ct) return ckks_mul_relin(ev, out, in, op->ct);
    if (op->pt) return ckks_mul_plain(ev, out, in, op->pt);
    if (!op->values) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "empty operand");
    const ckks_context *ctx = ckks_evaluator_context(ev);
    const unsigned level = ckks_ciphertext_level(in);
    ckks_plaintext *pt;
    hecnn_status st = vr_encode_new(ctx, &pt, op->values, level, vr_q(ctx, level));
    if (!st) st = ckks_mul_plain(ev, out, in, pt);
    ckks_plaintext_free(pt);
    return st;
}

hecnn_status vr_add_operand(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *in,
                            const hecnn_vr_operand *op)
{
    if (!op) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL operand");
    if (op->ct) return ckks_add(ev, out, in, op->ct);
    if (op->pt) return ckks_add_plain(ev, out, in, op->pt);
    if (!op->values) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "empty operand");
    ckks_plaintext *pt;
    hecnn_status st = vr_encode_new(ckks_evaluator_context(ev), &pt, op->values, ckks_ciphertext_level(in),
                                    ckks_ciphertext_scale(in));
    if (!st) st = ckks_add_plain(ev, out, in, pt);
    ckks_plaintext_free(pt);
    return st;
}

hecnn_status vr_ct_array_new(const ckks_context *ctx, ckks_ciphertext ***out, size_t count)
{
    *out = hecnn_calloc(count ? count : 1, sizeof **out);
    if (!*out) return hecnn_fail(HECNN_ERR_NO_MEMORY, "ciphertext array");
    for (size_t i = 0; i < count; i++) {
        hecnn_status st = ckks_ciphertext_new(&(*out)[i], ctx);
        if (st) {
            vr_ct_array_free(*out, count);
            *out = NULL;
            return st;
        }
    }
    return HECNN_OK;
}

void vr_ct_array_free(ckks_ciphertext **arr, size_t count)
{
    if (!arr) return;
    for (size_t i = 0; i < count; i++) ckks_ciphertext_free(arr[i]);
    hecnn_free(arr);
}

static double *slots_new(const hecnn_vr_layout *l) { return hecnn_calloc(l->slots, sizeof(double)); }

/* ---- vRot, SumRowVec, SumColVec, RowShifter ------------------------------------------------- */

/* out = first * rot(ct, steps[0]) + (1 - first) * rot(ct, steps[1]) on the rows x width matrix
 * (first: a 0/1 mask over the slots); the two rotations are hoisted. */
static hecnn_status blend_two_rotations(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *ct,
                                        const hecnn_vr_layout *l, const int steps[2], double *first)
{
    const ckks_context *ctx = ckks_evaluator_context(ev);
    ckks_ciphertext *t[2] = {NULL, NULL};
    double *second = slots_new(l);
    hecnn_status st = second ? HECNN_OK : hecnn_fail(HECNN_ERR_NO_MEMORY, "masks");
    if (!st) st = ckks_ciphertext_new(&t[0], ctx);
    if (!st) st = ckks_ciphertext_new(&t[1], ctx);
    if (!st) st = ckks_rotate_hoisted(ev, t, ct, steps, 2);
    if (!st) {
        for (size_t i = 0; i < l->rows * l->width; i++) second[i] = 1.0 - first[i];
        st = vr_mul_mask(ev, t[0], t[0], first);
    }
    if (!st) st = vr_mul_mask(ev, t[1], t[1], second);
    if (!st) st = ckks_add(ev, out, t[0], t[1]);
    ckks_ciphertext_free(t[0]);
    ckks_ciphertext_free(t[1]);
    hecnn_free(second);
    return st;
}

hecnn_status hecnn_vr_vrot(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *ct,
                           const hecnn_vr_layout *l, size_t r)
{
    if (!ev || !out || !ct || !l) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    const size_t w = l->width;
    r %= w;
    if (r == 0) return ckks_ciphertext_copy(out, ct);
    double *first = slots_new(l);
    if (!first) return hecnn_fail(HECNN_ERR_NO_MEMORY, "masks");
    for (size_t i = 0; i < l->rows; i++)
        for (size_t c = 0; c < w - r; c++) first[i * w + c] = 1.0;
    const int steps[2] = {(int)r, (int)r - (int)w};
    hecnn_status st = blend_two_rotations(ev, out, ct, l, steps, first);
    hecnn_free(first);
    return st;
}


/* ct += rot(ct, step * 2^j) for 2^j < count (log-step rotate-and-sum). */
static hecnn_status rotate_sum(const ckks_evaluator *ev, ckks_ciphertext *ct, long step, size_t count)
{
    ckks_ciphertext *t;
    hecnn_status st = ckks_ciphertext_new(&t, ckks_evaluator_context(ev));
    for (size_t j = 1; !st && j < count; j <<= 1) {
        st = ckks_rotate(ev, t, ct, (int)(step * (long)j));
        if (!st) st = ckks_add(ev, ct, ct, t);
    }
    ckks_ciphertext_free(t);
    return st;
}

hecnn_status hecnn_vr_sum_rows(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *ct,
                               const hecnn_vr_layout *l)
{
    if (!ev || !out || !ct || !l) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    hecnn_status st = ckks_ciphertext_copy(out, ct);
    if (!st) st = rotate_sum(ev, out, (long)l->width, l->rows);
    return st;
}

hecnn_status hecnn_vr_sum_cols(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *ct,
                               const hecnn_vr_layout *l)
{
    if (!ev || !out || !ct || !l) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    hecnn_status st = ckks_ciphertext_copy(out, ct);
    if (!st) st = rotate_sum(ev, out, 1, l->width);
    double *m = st ? NULL : slots_new(l);
    if (!st && !m) st = hecnn_fail(HECNN_ERR_NO_MEMORY, "mask");
    if (!st) {
        for (size_t i = 0; i < l->rows; i++) m[i * l->width] = 1.0;
        st = vr_mul_mask(ev, out, out, m);
    }
    if (!st) st = rotate_sum(ev, out, -1, l->width);
    hecnn_free(m);
    return st;
}

hecnn_status hecnn_vr_row_shifter(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *ct,
                                  const hecnn_vr_layout *l, size_t p, size_t k)
{
    if (!ev || !out || !ct || !l) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    if (p == 0 || p > l->rows) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "tile of %zu rows in %zu rows", p, l->rows);
    const size_t m = l->rows, w = l->width, r = m % p;
    k %= p;
    if (k == 0) return ckks_ciphertext_copy(out, ct);
    if (r == 0) return ckks_rotate(ev, out, ct, (int)(k * w));
    /* Rows i < m - k come from row i + k; the last k rows from row i + k - m + r (same tile row,
     * since m - r is a multiple of p, and inside the matrix since r + k - 1 < m). */
    double *first = slots_new(l);
    if (!first) return hecnn_fail(HECNN_ERR_NO_MEMORY, "masks");
    for (size_t i = 0; i < (m - k) * w; i++) first[i] = 1.0;
    const long s = (long)l->slots;
    const int steps[2] = {(int)(k * w), (int)((((long)k - (long)m + (long)r) * (long)w % s + s) % s)};
    hecnn_status st = blend_two_rotations(ev, out, ct, l, steps, first);
    hecnn_free(first);
    return st;
}

/* ---- convolution: SumForConv, Kernelspanner, Algorithm 4 ------------------------------------- */

hecnn_status hecnn_vr_sum_for_conv(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *ct,
                                   size_t pitch, size_t kh, size_t kw)
{
    if (!ev || !out || !ct || !kh || !kw) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL or empty argument");
    const ckks_context *ctx = ckks_evaluator_context(ev);
    ckks_ciphertext *row = NULL, *t = NULL;
    hecnn_status st = ckks_ciphertext_new(&row, ctx);
    if (!st) st = ckks_ciphertext_new(&t, ctx);
    if (!st) st = ckks_ciphertext_copy(row, ct);
    for (size_t b = 1; !st && b < kw; b++) { /* along an image row */
        st = ckks_rotate(ev, t, ct, (int)b);
        if (!st) st = ckks_add(ev, row, row, t);
    }
    if (!st) st = ckks_ciphertext_copy(out, row);
    for (size_t a = 1; !st && a < kh; a++) { /* down the image rows */
        st = ckks_rotate(ev, t, row, (int)(a * pitch));
        if (!st) st = ckks_add(ev, out, out, t);
    }
    ckks_ciphertext_free(row);
    ckks_ciphertext_free(t);
    return st;
}

static hecnn_status check_image(const hecnn_vr_layout *l, const hecnn_vr_image *img, size_t kh, size_t kw)
{
    if (!l || !img) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    if (!kh || !kw || kh > img->h || kw > img->w || img->pitch < img->w || img->h * img->pitch > l->width)
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "image %zux%zu (pitch %zu) with kernel %zux%zu in rows of %zu", img->h,
                          img->w, img->pitch, kh, kw, l->width);
    return HECNN_OK;
}

hecnn_status hecnn_vr_kernelspanner(const hecnn_vr_layout *l, const hecnn_vr_image *img, const double *kernel, size_t kh,
                                    size_t kw, size_t i, size_t j, bool filter, double *out)
{
    hecnn_status st = check_image(l, img, kh, kw);
    if (st) return st;
    if (!out || (!kernel && !filter) || i >= kh || j >= kw) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "bad argument");
    memset(out, 0, l->slots * sizeof *out);
    for (size_t x0 = i; x0 + kh <= img->h; x0 += kh)
        for (size_t y0 = j; y0 + kw <= img->w; y0 += kw)
            for (size_t row = 0; row < l->rows; row++) {
                double *o = out + row * l->width;
                if (filter) {
                    o[x0 * img->pitch + y0] = 1.0;
                    continue;
                }
                for (size_t a = 0; a < kh; a++)
                    for (size_t b = 0; b < kw; b++) o[(x0 + a) * img->pitch + y0 + b] = kernel[a * kw + b];
            }
    return HECNN_OK;
}

hecnn_status hecnn_vr_conv_seed(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *in,
                                const hecnn_vr_layout *l, const hecnn_vr_image *img, size_t kh, size_t kw,
                                const hecnn_vr_operand *spanned, const hecnn_vr_operand *bias)
{
    hecnn_status st = check_image(l, img, kh, kw);
    if (st) return st;
    if (!ev || !out || !in || !spanned) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    const ckks_context *ctx = ckks_evaluator_context(ev);
    ckks_ciphertext *acc = NULL, *t = NULL;
    double *f = slots_new(l);
    if (!f) return hecnn_fail(HECNN_ERR_NO_MEMORY, "filter");
    st = ckks_ciphertext_new(&acc, ctx);
    if (!st) st = ckks_ciphertext_new(&t, ctx);
    bool first = true;
    for (size_t i = 0; !st && i < kh; i++)
        for (size_t j = 0; !st && j < kw; j++) {
            /* Step 1: product with the spanned kernel K_{i,j}. */
            st = vr_mul_operand(ev, t, in, &spanned[i * kw + j]);
            if (!st) st = ckks_rescale(ev, t, t);
            /* Step 2: SumForConv. */
            if (!st) st = hecnn_vr_sum_for_conv(ev, t, t, img->pitch, kh, kw);
            /* Step 3: the filter F_{i,j} keeps the top-left corners. */
            if (!st) st = hecnn_vr_kernelspanner(l, img, NULL, kh, kw, i, j, true, f);
            if (!st) st = vr_mul_mask(ev, t, t, f);
            /* Step 4: accumulate. */
            if (!st) st = vr_accumulate(ev, acc, t, &first);
        }
    if (!st && bias && (bias->pt || bias->ct || bias->values)) st = vr_add_operand(ev, acc, acc, bias);
    if (!st) st = ckks_ciphertext_copy(out, acc);
    ckks_ciphertext_free(acc);
    ckks_ciphertext_free(t);
    hecnn_free(f);
    return st;
}

/* ---- Algorithm 3 --------------------------------------------------------------------------- */

hecnn_status hecnn_vr_matmul_seed(const ckks_evaluator *ev, ckks_ciphertext **c_blocks, ckks_ciphertext *const *a_blocks,
                                  size_t n_blocks, const hecnn_vr_layout *l, const hecnn_vr_operand *b_tiled, size_t p)
{
    if (!ev || !c_blocks || !a_blocks || !l || !b_tiled || !n_blocks)
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL or empty argument");
    if (p == 0 || p > l->rows) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "p = %zu with %zu rows", p, l->rows);
    const ckks_context *ctx = ckks_evaluator_context(ev);
    const size_t m = l->rows, w = l->width, out_blocks = (p + w - 1) / w;
    const bool two_rot = m % p != 0;
    /* With a two-rotation RowShifter on ciphertexts, every product sits one level lower. */
    bool any_ct = false;
    for (size_t b = 0; b < n_blocks; b++) any_ct |= b_tiled[b].ct != NULL;
    const unsigned lvl_a = ckks_ciphertext_level(a_blocks[0]);
    const unsigned lvl_prod = lvl_a - (two_rot && any_ct ? 1u : 0u);
    ckks_ciphertext *rb = NULL, *prod = NULL, *sum = NULL, *a_low = NULL;
    double *vals = hecnn_calloc(l->slots, sizeof *vals), *f = hecnn_calloc(l->slots, sizeof *f);
    hecnn_status st = (!vals || !f) ? hecnn_fail(HECNN_ERR_NO_MEMORY, "buffers") : HECNN_OK;
    if (!st) st = ckks_ciphertext_new(&rb, ctx);
    if (!st) st = ckks_ciphertext_new(&prod, ctx);
    if (!st) st = ckks_ciphertext_new(&sum, ctx);
    if (!st) st = ckks_ciphertext_new(&a_low, ctx);
    bool *first = hecnn_calloc(out_blocks, sizeof *first);
    if (!st && !first) st = hecnn_fail(HECNN_ERR_NO_MEMORY, "flags");
    for (size_t o = 0; !st && o < out_blocks; o++) first[o] = true;
    for (size_t k = 0; !st && k < p; k++) {
        bool first_b = true;
        for (size_t b = 0; !st && b < n_blocks; b++) {
            const hecnn_vr_operand *op = &b_tiled[b];
            hecnn_vr_operand shifted = {0};
            /* Step 1: RowShifter, then the product. */
            if (op->ct) {
                st = hecnn_vr_row_shifter(ev, rb, op->ct, l, p, k);
                if (!st && ckks_ciphertext_level(rb) > lvl_prod) st = ckks_drop_level(ev, rb, rb, lvl_prod);
                shifted.ct = rb;
            } else if (op->values) {
                /* RowShifter on plaintext values: row i takes tile row (i + k) mod p. */
                for (size_t i = 0; i < m; i++) {
                    const size_t src = ((i % p + k) % p);
                    memcpy(vals + i * w, op->values + src * w, w * sizeof *vals);
                }
                shifted.values = vals;
            } else {
                st = hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "Algorithm 3 needs B as values or ciphertexts (RowShifter)");
            }
            if (!st) st = ckks_drop_level(ev, a_low, a_blocks[b], lvl_prod);
            if (!st) st = vr_mul_operand(ev, prod, a_low, &shifted);
            if (!st) st = vr_accumulate(ev, sum, prod, &first_b);
        }
        if (!st) st = ckks_rescale(ev, sum, sum);
        /* Step 2: SumColVec. */
        if (!st) st = hecnn_vr_sum_cols(ev, sum, sum, l);
        /* Steps 3-4: filter F_k (row i keeps column (i + k) mod p), accumulate. */
        for (size_t o = 0; !st && o < out_blocks; o++) {
            memset(f, 0, l->slots * sizeof *f);
            bool any = false;
            for (size_t i = 0; i < m; i++) {
                const size_t col = (i + k) % p;
                if (col / w == o) {
                    f[i * w + col % w] = 1.0;
                    any = true;
                }
            }
            if (!any) continue;
            st = vr_mul_mask(ev, prod, sum, f);
            if (!st) st = vr_accumulate(ev, c_blocks[o], prod, &first[o]);
        }
    }
    ckks_ciphertext_free(rb);
    ckks_ciphertext_free(prod);
    ckks_ciphertext_free(sum);
    ckks_ciphertext_free(a_low);
    hecnn_free(vals);
    hecnn_free(f);
    hecnn_free(first);
    return st;
}

/* ---- reshaping between layers (section 4.3) -------------------------------------------------- */

hecnn_status hecnn_vr_reshape(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *in,
                              const hecnn_vr_layout *l, size_t h, size_t cols, size_t from_pitch, size_t to_pitch)
{
    if (!ev || !out || !in || !l || !h) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL or empty argument");
    if (to_pitch > from_pitch || cols > to_pitch || h * from_pitch > l->width)
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "reshape %zu rows of %zu from pitch %zu to %zu in rows of %zu", h, cols,
                          from_pitch, to_pitch, l->width);
    const ckks_context *ctx = ckks_evaluator_context(ev);
    ckks_ciphertext *t = NULL, *acc = NULL;
    double *m = slots_new(l);
    hecnn_status st = m ? HECNN_OK : hecnn_fail(HECNN_ERR_NO_MEMORY, "mask");
    if (!st) st = ckks_ciphertext_new(&t, ctx);
    if (!st) st = ckks_ciphertext_new(&acc, ctx);
    bool first = true;
    for (size_t x = 0; !st && x < h; x++) {
        memset(m, 0, l->slots * sizeof *m);
        for (size_t i = 0; i < l->rows; i++)
            for (size_t c = 0; c < cols; c++) m[i * l->width + x * from_pitch + c] = 1.0;
        st = vr_mul_mask(ev, t, in, m);
        if (!st && x > 0 && from_pitch != to_pitch) st = ckks_rotate(ev, t, t, (int)(x * (from_pitch - to_pitch)));
        if (!st) st = vr_accumulate(ev, acc, t, &first);
    }
    if (!st) st = ckks_ciphertext_copy(out, acc);
    ckks_ciphertext_free(t);
    ckks_ciphertext_free(acc);
    hecnn_free(m);
    return st;
}

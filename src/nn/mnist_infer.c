/* The server's evaluation of the MNIST network on one batch (see mnist_net.c for the layout and
 * the rewriting of Algorithms 3 and 4). Parallel over ciphertexts: input blocks, conv outputs,
 * FC1 input blocks (per-thread accumulators), revolver groups. */
#include <complex.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/mnist_internal.h"
#include "util/alloc.h"
#include "util/error.h"

#define PITCH 32u

typedef struct run {
    const hecnn_mnist_net *n;
    const hecnn_mnist_prepared *p;
    const ckks_evaluator *ev;
    hecnn_status st;
    hecnn_progress_fn progress;
    void *user;
    const volatile int *cancel;
} run;

static void fail(run *r, hecnn_status st)
{
    if (!st) return;
#pragma omp critical(mnist_infer_err)
    if (!r->st) r->st = st;
}

/* Progress, and the cancel flag read at the same points: the loops stop at their next item. */
static void report(run *r, const char *stage, double done)
{
    if (r->progress) r->progress(r->user, stage, done);
    if (r->cancel && *r->cancel) fail(r, hecnn_fail(HECNN_ERR_CANCELLED, "cancelled during %s", stage));
}

/* out = c0 + c1 x + c2 x^2 + c3 x^3 at level(x) - 2 with x's scale (x at level l, scale D):
 * x^2 -> D^2 / q_l; c3 x + c2 with constant scale C = q_l^2 q_{l-1} / D^2 -> D C / q_l;
 * their product -> D at l - 2; c1 x at constant scale q_{l-1} after dropping x to l - 1 -> D. */
static hecnn_status act_poly(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *x, const double c[4])
{
    const ckks_context *ctx = ckks_evaluator_context(ev);
    const unsigned l = ckks_ciphertext_level(x);
    if (l < 2) return hecnn_fail(HECNN_ERR_LEVEL_MISMATCH, "activation needs 2 levels, %u left", l);
    const double D = ckks_ciphertext_scale(x), ql = vr_q(ctx, l), ql1 = vr_q(ctx, l - 1);
    ckks_ciphertext *x2 = NULL, *t = NULL, *u = NULL;
    hecnn_status st = ckks_ciphertext_new(&x2, ctx);
    if (!st) st = ckks_ciphertext_new(&t, ctx);
    if (!st) st = ckks_ciphertext_new(&u, ctx);
    if (!st) st = ckks_square_relin(ev, x2, x);
    if (!st) st = ckks_rescale(ev, x2, x2);
    if (!st) st = ckks_mul_const(ev, t, x, c[3], ql / D * ql * ql1 / D);
    if (!st) st = ckks_rescale(ev, t, t);
    if (!st) st = ckks_add_const(ev, t, t, c[2]);
    if (!st) st = ckks_mul_relin(ev, t, t, x2);
    if (!st) st = ckks_rescale(ev, t, t);
    if (!st) st = ckks_drop_level(ev, u, x, l - 1);
    if (!st) st = ckks_mul_const(ev, u, u, c[1], ql1);
    if (!st) st = ckks_rescale(ev, u, u);
    if (!st) st = ckks_add_const(ev, u, u, c[0]);
    /* Both sit at scale D up to rounding of the primes' ratio: record it exactly. */
    if (!st) st = ckks_ciphertext_set_scale(t, D);
    if (!st) st = ckks_ciphertext_set_scale(u, D);
    if (!st) st = ckks_add(ev, out, t, u);
    ckks_ciphertext_free(x2);
    ckks_ciphertext_free(t);
    ckks_ciphertext_free(u);
    return st;
}

/* x = sum_{t < win} rot(x, t): column 0 of each row gets the sum of its first `win` columns. */
static hecnn_status rotate_sum(const ckks_evaluator *ev, ckks_ciphertext *x, size_t win, ckks_ciphertext *tmp)
{
    hecnn_status st = HECNN_OK;
    for (size_t j = 1; !st && j < win; j <<= 1) {
        st = ckks_rotate(ev, tmp, x, (int)j);
        if (!st) st = ckks_add(ev, x, x, tmp);
    }
    return st;
}

/* ---- CONV + ACT1 ----------------------------------------------------------------------------- */

typedef struct conv_steps {
    int steps[64];
    size_t n;
} conv_steps;

static size_t step_index(conv_steps *cs, int step)
{
    for (size_t i = 0; i < cs->n; i++)
        if (cs->steps[i] == step) return i;
    cs->steps[cs->n] = step;
    return cs->n++;
}

static hecnn_status conv_act(run *r, ckks_ciphertext *const *in, ckks_ciphertext **a_out)
{
    const hecnn_mnist_net *n = r->n;
    const hecnn_mnist_prepared *p = r->p;
    const bool enc = p->mode == HECNN_MNIST_ENCRYPTED_MODEL;
    const size_t D = p->deltas;
    conv_steps cs = {.n = 0};
    size_t idx[3][3][8];
    for (size_t a = 0; a < 3; a++)
        for (size_t b = 0; b < 3; b++)
            for (size_t d = 0; d < D && d < 8; d++)
                idx[a][b][d] = mnist_conv_mask(n, a, b, d, 1, NULL)
                                   ? step_index(&cs, mnist_step(n, (long)(PITCH * a + b) - (long)(d * n->w)))
                                   : (size_t)-1;
    /* Input rotations, hoisted per block, shared by the four kernels. */
    ckks_ciphertext **rot = NULL;
    hecnn_status st = vr_ct_array_new(n->ctx, &rot, n->n_in * cs.n);
    if (st) return st;
#pragma omp parallel for schedule(dynamic) num_threads(omp_get_max_threads())
    for (size_t j = 0; j < n->n_in; j++) {
        if (r->st) continue;
        fail(r, ckks_rotate_hoisted(r->ev, rot + j * cs.n, in[j], cs.steps, cs.n));
    }
    report(r, "conv", 0.3);
    hecnn_log("[profile]   conv rotations done");
    const size_t outs = HECNN_MNIST_KERNELS * n->cb;
#pragma omp parallel num_threads(omp_get_max_threads())
    {
        ckks_ciphertext *acc = NULL, *t = NULL;
        hecnn_status s2 = ckks_ciphertext_new(&acc, n->ctx);
        if (!s2) s2 = ckks_ciphertext_new(&t, n->ctx);
        fail(r, s2);
#pragma omp for schedule(dynamic)
        for (size_t o = 0; o < outs; o++) {
            if (r->st) continue;
            const size_t q = o / n->cb, beta = o % n->cb;
            bool first = true;
            hecnn_status s3 = HECNN_OK;
            for (size_t a = 0; !s3 && a < 3; a++)
                for (size_t b = 0; !s3 && b < 3; b++)
                    for (size_t d = 0; !s3 && d < D; d++) {
                        const size_t ci = ((q * 3 + a) * 3 + b) * D + d;
                        if (idx[a][b][d] == (size_t)-1 || beta + d >= n->n_in) continue;
                        const ckks_ciphertext *src = rot[(beta + d) * cs.n + idx[a][b][d]];
                        if (enc) s3 = ckks_mul(r->ev, t, src, p->conv_ct[ci]); /* relinearised once, below */
                        else s3 = ckks_mul_plain(r->ev, t, src, p->conv_pt[ci]);
                        if (!s3) s3 = vr_accumulate(r->ev, acc, t, &first);
                    }
            if (!s3 && enc) s3 = ckks_relinearize(r->ev, acc, acc);
            if (!s3) s3 = ckks_rescale(r->ev, acc, acc);
            if (!s3) s3 = ckks_ciphertext_set_scale(acc, n->scale);
            if (!s3) s3 = enc ? ckks_add(r->ev, acc, acc, p->conv_bias_ct[q]) : ckks_add_const(r->ev, acc, acc, p->model->conv_b[q]);
            if (!s3) s3 = act_poly(r->ev, a_out[o], acc, p->act1);
            fail(r, s3);
        }
        ckks_ciphertext_free(acc);
        ckks_ciphertext_free(t);
    }
    vr_ct_array_free(rot, n->n_in * cs.n);
    report(r, "conv+act1", 1.0);
    return r->st;
}

/* ---- FC1: Algorithm 3 with baby-step/giant-step RowShifter ------------------------------------ *
 * Giant steps h and h + nhp travel together as the real and imaginary parts of one complex tile,
 * so every product, row sum and mask serves two revolver iterations; a conjugation per group
 * separates them before their placement. */

static hecnn_status fc1(run *r, ckks_ciphertext *const *A, ckks_ciphertext **X)
{
    const hecnn_mnist_net *n = r->n;
    const hecnn_mnist_prepared *p = r->p;
    const bool enc = p->mode == HECNN_MNIST_ENCRYPTED_MODEL;
    const size_t w = n->w, nb = n->nb1, nhp = n->nhp, G = n->G1, nE = G * nhp * nb;
    const int threads = omp_get_max_threads();
    /* per-thread accumulators E[(g * nhp + hp) * nb + b] */
    ckks_ciphertext ***E = hecnn_calloc((size_t)threads, sizeof *E);
    bool **used = hecnn_calloc((size_t)threads, sizeof *used);
    if (!E || !used) {
        hecnn_free(E);
        hecnn_free(used);
        return hecnn_fail(HECNN_ERR_NO_MEMORY, "accumulators");
    }
    int baby[64], giant[64];
    for (size_t b = 0; b < nb; b++) baby[b] = mnist_step(n, -(long)(b * w));
    for (size_t h = 0; h < nhp; h++) giant[h] = mnist_step(n, (long)(h * nb * w));
    size_t done = 0;
#pragma omp parallel num_threads(threads)
    {
        const int tid = omp_get_thread_num();
        ckks_ciphertext **rotA = NULL, **rotT = NULL, *t = NULL;
        ckks_plaintext *pt = NULL;
        double *vals = hecnn_alloc(n->S * sizeof *vals);
        double complex *cvals = hecnn_alloc(n->S * sizeof *cvals);
        used[tid] = hecnn_calloc(nE, sizeof **used);
        hecnn_status s2 = vals && cvals && used[tid] ? HECNN_OK : hecnn_fail(HECNN_ERR_NO_MEMORY, "buffers");
        if (!s2) s2 = vr_ct_array_new(n->ctx, &E[tid], nE);
        if (!s2) s2 = vr_ct_array_new(n->ctx, &rotA, nb);
        if (!s2) s2 = vr_ct_array_new(n->ctx, &rotT, nhp);
        if (!s2) s2 = ckks_ciphertext_new(&t, n->ctx);
        if (!s2) s2 = ckks_plaintext_new(&pt, n->ctx);
        fail(r, s2);
#pragma omp for schedule(dynamic)
        for (size_t beta = 0; beta < n->n_a; beta++) {
            if (r->st) continue;
            hecnn_status s3 = ckks_rotate_hoisted(r->ev, rotA, A[beta], baby, nb);
            for (size_t g = 0; !s3 && g < G; g++) {
                if (enc && !p->fc1_giant) s3 = ckks_rotate_hoisted(r->ev, rotT, p->fc1_ct[g * n->n_a + beta], giant, nhp);
                for (size_t hp = 0; !s3 && hp < nhp; hp++) {
                    if (!enc) {
                        mnist_fc1_tile_c(n, p->model, g, beta, hp, cvals, vals);
                        s3 = ckks_encode(n->ctx, pt, cvals, n->S, n->S, n->lv_act1, vr_q(n->ctx, n->lv_act1));
                    }
                    for (size_t b = 0; !s3 && b < nb; b++) {
                        const size_t e = (g * nhp + hp) * nb + b;
                        if (enc)
                            s3 = ckks_mul(r->ev, t, rotA[b],
                                          p->fc1_giant ? p->fc1_giant[(g * n->n_a + beta) * nhp + hp] : rotT[hp]);
                        else s3 = ckks_mul_plain(r->ev, t, rotA[b], pt);
                        if (!s3) {
                            bool first = !used[tid][e];
                            s3 = vr_accumulate(r->ev, E[tid][e], t, &first);
                            used[tid][e] = true;
                        }
                    }
                }
            }
            fail(r, s3);
            size_t now;
#pragma omp atomic capture
            now = ++done;
            if (tid == 0) report(r, "fc1", 0.8 * (double)now / (double)n->n_a);
        }
        vr_ct_array_free(rotA, nb);
        vr_ct_array_free(rotT, nhp);
        ckks_ciphertext_free(t);
        ckks_plaintext_free(pt);
        hecnn_free(vals);
        hecnn_free(cvals);
    }
    hecnn_log("[profile]   fc1 products done");
    /* Reduce the threads' accumulators into E[0]. */
    for (int tid = 1; !r->st && tid < threads; tid++) {
        if (!E[tid]) continue;
#pragma omp parallel for schedule(static) num_threads(threads)
        for (size_t e = 0; e < nE; e++) {
            if (!used[tid][e]) continue;
            bool first = !used[0][e];
            fail(r, vr_accumulate(r->ev, E[0][e], E[tid][e], &first));
            used[0][e] = true;
        }
    }
    /* Row sums, column-0 mask (which also halves), placement of the nb baby steps in a group; then
     * the two halves: re = z + conj(z), im = -i (z - conj(z)), each to its column. */
    const size_t Q = mnist_fc1_bin(nb, w), nbin = n->n_x2 * (w / Q);
    ckks_ciphertext **bins = NULL;
    bool *first_bin = hecnn_calloc(nbin, sizeof *first_bin);
    if (!first_bin) fail(r, hecnn_fail(HECNN_ERR_NO_MEMORY, "flags"));
    for (size_t i = 0; first_bin && i < nbin; i++) first_bin[i] = true;
    if (!r->st) fail(r, vr_ct_array_new(n->ctx, &bins, nbin));
    if (!r->st) {
#pragma omp parallel num_threads(threads)
        {
            ckks_ciphertext *t = NULL, *acc = NULL, *cj = NULL;
            hecnn_status s2 = ckks_ciphertext_new(&t, n->ctx);
            if (!s2) s2 = ckks_ciphertext_new(&acc, n->ctx);
            if (!s2) s2 = ckks_ciphertext_new(&cj, n->ctx);
            fail(r, s2);
#pragma omp for schedule(dynamic)
            for (size_t gh = 0; gh < G * nhp; gh++) {
                if (r->st) continue;
                const size_t g = gh / nhp, hp = gh % nhp;
                bool first = true;
                hecnn_status s3 = HECNN_OK;
                for (size_t b = 0; !s3 && b < nb; b++) {
                    ckks_ciphertext *e = E[0][gh * nb + b];
                    if (enc) s3 = ckks_relinearize(r->ev, e, e);
                    if (!s3) s3 = ckks_rescale(r->ev, e, e);
                    if (!s3) s3 = rotate_sum(r->ev, e, n->rs1, t);
                    if (!s3) s3 = ckks_mul_plain(r->ev, e, e, p->mask0_fc1);
                    if (!s3) s3 = ckks_rescale(r->ev, e, e);
                    /* column 0 of row i -> row i - b, column b */
                    if (!s3 && b) s3 = ckks_rotate(r->ev, e, e, mnist_step(n, (long)(b * (w - 1))));
                    if (!s3) s3 = vr_accumulate(r->ev, acc, e, &first);
                }
                if (!s3) s3 = ckks_conjugate(r->ev, cj, acc);
                for (int half = 0; !s3 && half < 2; half++) {
                    const size_t j0 = g * n->L1 + (hp + (size_t)half * nhp) * nb, c = j0 % w;
                    if (half == 0) {
                        s3 = ckks_add(r->ev, t, acc, cj);
                    } else {
                        s3 = ckks_sub(r->ev, t, acc, cj);
                        if (!s3) s3 = ckks_mul_const(r->ev, t, t, -I, 1.0);
                    }
                    if (!s3 && c % Q) s3 = ckks_rotate(r->ev, t, t, mnist_step(n, -(long)(c % Q)));
                    if (!s3) {
                        const size_t bin = (j0 / w) * (w / Q) + c / Q;
#pragma omp critical(mnist_fc1_out)
                        s3 = vr_accumulate(r->ev, bins[bin], t, &first_bin[bin]);
                    }
                }
                fail(r, s3);
            }
            ckks_ciphertext_free(t);
            ckks_ciphertext_free(acc);
            ckks_ciphertext_free(cj);
        }
    }
    /* the bins' common offsets */
    bool *first_out = hecnn_calloc(n->n_x2, sizeof *first_out);
    if (!first_out) fail(r, hecnn_fail(HECNN_ERR_NO_MEMORY, "flags"));
    for (size_t i = 0; first_out && i < n->n_x2; i++) first_out[i] = true;
    for (size_t bin = 0; !r->st && bin < nbin; bin++) {
        if (first_bin[bin]) continue;
        const size_t blk = bin / (w / Q), u = bin % (w / Q);
        if (u) fail(r, ckks_rotate(r->ev, bins[bin], bins[bin], mnist_step(n, -(long)(u * Q))));
        if (!r->st) fail(r, vr_accumulate(r->ev, X[blk], bins[bin], &first_out[blk]));
    }
    vr_ct_array_free(bins, nbin);
    hecnn_free(first_bin);
    for (int tid = 0; tid < threads; tid++) {
        vr_ct_array_free(E[tid], nE);
        hecnn_free(used[tid]);
    }
    hecnn_free(E);
    hecnn_free(used);
    for (size_t blk = 0; !r->st && blk < n->n_x2; blk++) {
        if (first_out[blk]) {
            fail(r, hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "FC1 output block %zu empty", blk));
            break;
        }
        fail(r, ckks_ciphertext_set_scale(X[blk], n->scale));
        if (!r->st) fail(r, enc ? ckks_add(r->ev, X[blk], X[blk], p->fc1_bias_ct[blk]) : ckks_add_plain(r->ev, X[blk], X[blk], p->fc1_bias_pt[blk]));
    }
    hecnn_free(first_out);
    report(r, "fc1", 1.0);
    return r->st;
}

/* ---- FC2: Algorithm 3 on the revolved FC1 output, one tile per iteration ----------------------- */

static hecnn_status fc2(run *r, ckks_ciphertext *const *X, ckks_ciphertext *result)
{
    const hecnn_mnist_net *n = r->n;
    const hecnn_mnist_prepared *p = r->p;
    const bool enc = p->mode == HECNN_MNIST_ENCRYPTED_MODEL;
    const size_t w = n->w, nb = n->nb2, nh = n->nh2, G = n->G2;
    bool first_out = true;
#pragma omp parallel num_threads(omp_get_max_threads())
    {
        ckks_ciphertext *t = NULL, *e = NULL, *acc = NULL;
        hecnn_status s2 = ckks_ciphertext_new(&t, n->ctx);
        if (!s2) s2 = ckks_ciphertext_new(&e, n->ctx);
        if (!s2) s2 = ckks_ciphertext_new(&acc, n->ctx);
        fail(r, s2);
#pragma omp for schedule(dynamic)
        for (size_t gh = 0; gh < G * nh; gh++) {
            if (r->st) continue;
            const size_t g = gh / nh, h = gh % nh;
            bool first_acc = true;
            hecnn_status s3 = HECNN_OK;
            for (size_t b = 0; !s3 && b < nb; b++) {
                const size_t k = h * nb + b;
                bool first = true;
                for (size_t beta = 0; !s3 && beta < n->n_x2; beta++) {
                    const size_t ti = (g * n->L2 + k) * n->n_x2 + beta;
                    s3 = enc ? ckks_mul(r->ev, t, X[beta], p->fc2_ct[ti]) : ckks_mul_plain(r->ev, t, X[beta], p->fc2_pt[ti]);
                    if (!s3) s3 = vr_accumulate(r->ev, e, t, &first);
                }
                if (!s3 && enc) s3 = ckks_relinearize(r->ev, e, e);
                if (!s3) s3 = ckks_rescale(r->ev, e, e);
                if (!s3) s3 = rotate_sum(r->ev, e, n->rs2, t);
                if (!s3) s3 = ckks_mul_plain(r->ev, e, e, p->mask0_fc2);
                if (!s3) s3 = ckks_rescale(r->ev, e, e);
                if (!s3 && b) s3 = ckks_rotate(r->ev, e, e, mnist_step(n, -(long)b));
                if (!s3) s3 = vr_accumulate(r->ev, acc, e, &first_acc);
            }
            const size_t j0 = g * n->L2 + h * nb;
            if (!s3 && j0 % w) s3 = ckks_rotate(r->ev, acc, acc, mnist_step(n, -(long)(j0 % w)));
            if (!s3) {
#pragma omp critical(mnist_fc2_out)
                s3 = vr_accumulate(r->ev, result, acc, &first_out);
            }
            fail(r, s3);
        }
        ckks_ciphertext_free(t);
        ckks_ciphertext_free(e);
        ckks_ciphertext_free(acc);
    }
    if (!r->st) fail(r, ckks_ciphertext_set_scale(result, n->scale));
    if (!r->st) fail(r, enc ? ckks_add(r->ev, result, result, p->fc2_bias_ct) : ckks_add_plain(r->ev, result, result, p->fc2_bias_pt));
    report(r, "fc2", 1.0);
    return r->st;
}

hecnn_status mnist_infer_run(const hecnn_mnist_net *n, const hecnn_mnist_prepared *p, const ckks_evaluator *ev,
                             ckks_ciphertext *result, ckks_ciphertext *const *blocks, hecnn_progress_fn progress, void *user,
                             const volatile int *cancel, double seconds[3])
{
    if (!n || !p || !ev || !result || !blocks) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    if (p->net != n && (p->net->w != n->w || p->mode != n->mode))
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "model prepared for another layout");
    if (ckks_context_param_id(ckks_evaluator_context(ev)) != ckks_context_param_id(n->ctx))
        return hecnn_fail(HECNN_ERR_PARAMS_MISMATCH, "evaluator of another context");
    for (size_t j = 0; j < n->n_in; j++) {
        if (!blocks[j]) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "input block %zu missing", j);
        if (ckks_ciphertext_level(blocks[j]) != n->lv_in ||
            ckks_ciphertext_degree(blocks[j]) != 1 || fabs(ckks_ciphertext_scale(blocks[j]) / n->scale - 1) > 1e-9)
            return hecnn_fail(HECNN_ERR_BAD_FORMAT, "input block %zu: level %u, scale 2^%.2f; expected a fresh encryption (level %u, 2^%.2f)",
                              j, ckks_ciphertext_level(blocks[j]), log2(ckks_ciphertext_scale(blocks[j])), n->lv_in, log2(n->scale));
    }
    run r = {.n = n, .p = p, .ev = ev, .progress = progress, .user = user, .cancel = cancel};
    if (cancel && *cancel) return hecnn_fail(HECNN_ERR_CANCELLED, "cancelled before the run");
    const bool prof = hecnn_log_enabled();
    double t0 = omp_get_wtime(), t[3] = {0};
    ckks_ciphertext **A = NULL, **X = NULL;
    hecnn_status st = vr_ct_array_new(n->ctx, &A, n->n_a);
    if (!st) st = vr_ct_array_new(n->ctx, &X, n->n_x2);
    if (!st) st = conv_act(&r, blocks, A);
    t[0] = omp_get_wtime() - t0, t0 = omp_get_wtime();
    if (prof) hecnn_log("[profile] conv+act1 %.3f s", t[0]);
    if (!st) st = fc1(&r, A, X);
    const double t_fc1 = omp_get_wtime() - t0;
    t[0] += t_fc1, t0 = omp_get_wtime();
    if (prof) hecnn_log("[profile] fc1 %.3f s", t_fc1);
    vr_ct_array_free(A, n->n_a);
    for (size_t blk = 0; !st && blk < n->n_x2; blk++) st = act_poly(ev, X[blk], X[blk], p->act2);
    t[1] = omp_get_wtime() - t0, t0 = omp_get_wtime();
    if (!st) st = fc2(&r, X, result);
    t[2] = omp_get_wtime() - t0;
    if (prof) hecnn_log("[profile] act2+fc2 %.3f s", t[1] + t[2]);
    vr_ct_array_free(X, n->n_x2);
    if (seconds) memcpy(seconds, t, sizeof t);
    return st;
}

hecnn_status hecnn_mnist_infer(const hecnn_mnist_net *n, const hecnn_mnist_prepared *p, const ckks_evaluator *ev,
                               ckks_ciphertext *result, ckks_ciphertext *const *blocks, hecnn_progress_fn progress, void *user)
{
    return mnist_infer_run(n, p, ev, result, blocks, progress, user, NULL, NULL);
}

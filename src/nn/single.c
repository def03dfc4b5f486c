/* The single-image packing (include/hecnn/plan.h, src/nn/plan_internal.h): one image per ciphertext,
 * every channel of a tensor multiplexed into the slots (the layout of Lee et al., "Low-complexity
 * deep convolutional neural networks on FHE using multiplexed parallel convolutions", ICML 2022).
 *
 * Layout. The input is H x W (powers of two); a tensor at gap g holds h = H/g by w = W/g pixels per
 * channel. Its channels sit in blocks of H x W slots, g^2 channels per block, interleaved: channel
 * ch = b g^2 + a g + e of block b has its pixel (r, c) at slot
 *     b H W + (g r + a) W + (g c + e),
 * so a stride-2 layer (gap g to 2g) keeps the map dense: four times the channels in each block at
 * half the resolution. The blocks are padded to a power of two, D = blocks x H x W positions. When
 * D <= the plan's slots S (the bootstrapper's) the D positions repeat to fill the ciphertext (a
 * rotation then acts modulo D); a larger tensor spans D / S ciphertexts per image, ciphertext k
 * holding positions k S .. k S + S - 1 (whole blocks: S >= H W), and a layer's output ciphertext
 * gathers terms from every input ciphertext.
 *
 * Linear layers (convolutions of any stride, 1x1 shortcuts, the dense layer after a global pool):
 * output slot j takes sum over input channels i and taps t of w[o][i][t] x[j + u], where the
 * rotation u = step_t + d moves the tap's pixel onto the window's origin (step_t = g_in (di W + dj))
 * and channel i's position onto output channel o's (d). Whatever the rotation u brings to slot j is
 * one input pixel, so one tap of one channel or nothing: out = sum over the distinct u of
 * V_u (.) rot(x, u), with V_u the plaintext vector of the weights (zero where nothing valid arrives:
 * padding, unused positions, zero weights), u taken modulo the input's period within a ciphertext.
 * Baby-step giant-step over u: u = giant + baby with baby = u mod G, aligned (0 .. G-1) or centred
 * (-G/2 .. G/2-1), G a power of two, whichever gives the layer the fewest rotations; the baby
 * rotations are hoisted (one decomposition per input ciphertext, shared by the output ciphertexts),
 * the products summed per giant step, each sum rotated once by its giant step (the vectors
 * pre-rotated by -giant). One level per layer: the vectors are encoded at scale q_level, so the
 * rescale restores the input's scale exactly. The vectors are encoded during the run, one giant step at a time (the plan holds none;
 * a plan at N = 2^16 would otherwise hold gigabytes).
 *
 * Global average pooling: log2(h) + log2(w) rotations and sums, leaving each channel's sum at its
 * position (a 1 x 1 map at the same gap); the 1 / (h w) goes into the unit. A dense layer then is a
 * 1x1 layer on that 1 x 1 map; class o's score sits at its channel position in the output layout.
 * (A graph may end with any node: its values are read from their positions, channel-major, so a
 * single layer can be checked against the reference.)
 *
 * Units and ReLUs as in the batched packing (src/nn/batched.c): a layer feeding a ReLU of range B
 * produces values / B; where a producer cannot (a ReLU output that is also a residual operand), one
 * constant multiplication (one level) converts it. A ReLU bootstraps its input's ciphertexts two at a
 * time with ckks_bootstrap_pair (two images, or the two ciphertexts of one image; a lone ciphertext
 * is bootstrapped as a real one), then evaluates the node's polynomial. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "nn/plan_internal.h"
#include "util/alloc.h"
#include "util/error.h"

#define INPUT_LEVEL 1 /* the lowest input level: enough for the first layer */

/* A tensor of every image in the batch: m ciphertexts per image (image-major). */
typedef struct stensor {
    uint32_t c, h, w, gap;
    size_t blocks;        /* power of two */
    size_t m;             /* ciphertexts per image: D / slots, or 1 when D <= slots (then repeated) */
    double unit;          /* ciphertexts hold values / unit */
    unsigned level;
    double scale;
    ckks_ciphertext **ct; /* batch x m; NULL in the dry run */
    size_t n_ct;          /* allocated */
} stensor;

/* The single layout's state (hecnn_plan.impl). */
typedef struct single {
    uint32_t h0, w0;     /* the input's side: the slot block */
    size_t area;         /* h0 * w0 */
    size_t m_in;         /* ciphertexts per image at the input */
    unsigned input_level; /* INPUT_LEVEL, or high enough that the first ReLU needs no bootstrap */
    uint32_t out_gap, out_h, out_w; /* the output node's layout */
    size_t out_blocks, m_out;
} single;

typedef struct runner {
    hecnn_plan *p;
    const single *s;
    bool dry;
    const ckks_evaluator *ev;
    const ckks_boot_keys *boot_keys;
    hecnn_run_stats stats;
} runner;

/* ---- layout ------------------------------------------------------------------------------- */

static size_t pow2_at_least(size_t n)
{
    size_t v = 1;
    while (v < n) v *= 2;
    return v;
}

static size_t blocks_for(uint32_t c, uint32_t gap)
{
    const size_t per = (size_t)gap * gap;
    return pow2_at_least((c + per - 1) / per);
}

static size_t period(const single *s, const stensor *t) { return t->blocks * s->area; }

/* The period of t's values within one ciphertext of `slots`. */
static size_t ct_period(const single *s, const stensor *t, size_t slots)
{
    const size_t d = period(s, t);
    return d < slots ? d : slots;
}

/* The slot of channel ch's pixel (0, 0). */
static size_t channel_pos(const single *s, uint32_t gap, size_t ch)
{
    const size_t per = (size_t)gap * gap, sub = ch % per;
    return (ch / per) * s->area + (sub / gap) * s->w0 + sub % gap;
}

/* Which channel and pixel position `j` holds in t's layout (j = k slots + slot for slot `slot` of
 * ciphertext k; reduced modulo the period); false for an unused position. */
static bool slot_decode(const single *s, const stensor *t, size_t j, size_t *ch, size_t *r, size_t *c)
{
    const size_t g = t->gap, pos = j % period(s, t), b = pos / s->area, rem = pos % s->area;
    const size_t Y = rem / s->w0, X = rem % s->w0;
    *r = Y / g;
    *c = X / g;
    *ch = b * g * g + (Y % g) * g + X % g;
    return *ch < t->c && *r < t->h && *c < t->w;
}

static void stensor_clear(stensor *t)
{
    if (t->ct) {
        for (size_t i = 0; i < t->n_ct; i++) ckks_ciphertext_free(t->ct[i]);
        hecnn_free(t->ct);
    }
    t->ct = NULL;
    t->n_ct = 0;
}

static hecnn_status stensor_alloc(const runner *r, stensor *t)
{
    t->ct = NULL;
    t->n_ct = 0;
    if (r->dry) return HECNN_OK;
    const size_t n = r->p->batch * t->m;
    t->ct = hecnn_calloc(n, sizeof *t->ct);
    if (!t->ct) return hecnn_fail(HECNN_ERR_NO_MEMORY, "tensor of %zu ciphertexts", n);
    for (size_t i = 0; i < n; i++) {
        hecnn_status st = ckks_ciphertext_new(&t->ct[i], r->p->ctx);
        if (st) {
            t->n_ct = i;
            stensor_clear(t);
            return st;
        }
        t->n_ct = i + 1;
    }
    return HECNN_OK;
}

#define SINGLE_MAX_CTS 64 /* ciphertexts per image and tensor */

/* t's blocks and ciphertexts per image from its channels and gap; refuses what does not fit. */
static hecnn_status shape(const runner *r, stensor *t, size_t id)
{
    const size_t slots = r->p->slots;
    if ((size_t)t->gap > r->s->h0 || (size_t)t->gap > r->s->w0)
        return hecnn_fail(HECNN_ERR_UNSUPPORTED, "node %zu: gap %u beyond the %ux%u block", id, t->gap, r->s->h0, r->s->w0);
    t->blocks = blocks_for(t->c, t->gap);
    const size_t d = period(r->s, t);
    t->m = d > slots ? d / slots : 1;
    if (r->s->area > slots || t->m > SINGLE_MAX_CTS)
        return hecnn_fail(HECNN_ERR_UNSUPPORTED, "node %zu: %u channels of %ux%u need %zu slots, the single packing has "
                          "%zu a ciphertext (at least %zu, at most %u ciphertexts)", id, t->c, t->h, t->w, d, slots,
                          r->s->area, SINGLE_MAX_CTS);
    return HECNN_OK;
}

static int normalize_step(const hecnn_plan *p, long step)
{
    long v = step % (long)p->slots;
    return (int)(v < 0 ? v + (long)p->slots : v);
}

static hecnn_status note_rotation(runner *r, int step, unsigned level)
{
    r->stats.rotations++;
    if (!r->dry) return HECNN_OK;
    return plan_need_key(r->p, ckks_galois_element_rotation(r->p->ctx, step), level);
}

/* ---- linear layers ------------------------------------------------------------------------- */

typedef struct slinear {
    uint32_t cout, cin, k, stride, pad;
    const double *weight; /* [cout][cin][k][k] */
    const double *bias;   /* [cout] or NULL */
    double factor;        /* weights times unit_in / unit_out */
    double unit_out;
} slinear;

/* One term of a layer's output ciphertext: input ciphertext kin rotated by u. Every (tap, input
 * channel) pair that the same rotation brings into place shares the term: one product. */
typedef struct lterm {
    size_t kin, u; /* u in [0, pin) */
} lterm;

/* A layer's geometry and the terms of one output ciphertext (kout), shared by the dry and the real run. */
typedef struct lplan {
    const slinear *L;
    const stensor *x, *y;   /* input, output (shapes) */
    size_t kout;
    size_t pin, pout, span; /* periods within a ciphertext; span = the larger */
    size_t n_terms;
    lterm *terms;
    size_t G, half;         /* baby-step split: baby = ((u + half) mod G) - half, giant = u - baby */
} lplan;

static void lplan_free(lplan *lp) { hecnn_free(lp->terms); }

static size_t mod_pos(long v, size_t m)
{
    const long r = v % (long)m;
    return (size_t)(r < 0 ? r + (long)m : r);
}

/* The weight output slot j (of ciphertext kout) takes from input ciphertext kin rotated by u: the
 * rotated slot holds one input pixel, which is one tap of the window or none. */
static double term_value(const runner *r, const lplan *lp, const lterm *e, size_t j)
{
    const single *s = r->s;
    const slinear *L = lp->L;
    size_t o, orow, ocol, i, irow, icol;
    if (!slot_decode(s, lp->y, lp->kout * r->p->slots + j, &o, &orow, &ocol)) return 0;
    if (!slot_decode(s, lp->x, e->kin * r->p->slots + (j + e->u) % lp->pin, &i, &irow, &icol)) return 0;
    const long ki = (long)irow + (long)L->pad - (long)(L->stride * orow), kj = (long)icol + (long)L->pad - (long)(L->stride * ocol);
    if (ki < 0 || kj < 0 || ki >= (long)L->k || kj >= (long)L->k) return 0;
    return L->weight[((o * L->cin + i) * L->k + (size_t)ki) * L->k + (size_t)kj] * L->factor;
}

/* baby in [-half, G - half), as a rotation in [0, pin); giant = u - baby in [0, pin) */
static size_t baby_of(const lplan *lp, const lterm *e)
{
    const long b = (long)((e->u + lp->half) % lp->G) - (long)lp->half;
    return mod_pos(b, lp->pin);
}

static size_t giant_of(const lplan *lp, const lterm *e) { return mod_pos((long)e->u - (long)baby_of(lp, e), lp->pin); }

/* The nonzero terms of output ciphertext kout and the baby/giant split with the fewest rotations. */
static hecnn_status lplan_build(const runner *r, lplan *lp, const slinear *L, const stensor *x, const stensor *y, size_t kout)
{
    const single *s = r->s;
    const size_t S = r->p->slots, taps = (size_t)L->k * L->k;
    *lp = (lplan){.L = L, .x = x, .y = y, .kout = kout, .pin = ct_period(s, x, S), .pout = ct_period(s, y, S)};
    lp->span = lp->pin > lp->pout ? lp->pin : lp->pout;
    const size_t cells = x->m * lp->pin;
    uint8_t *mark = hecnn_calloc(cells, 1);
    hecnn_status st = mark ? HECNN_OK : hecnn_fail(HECNN_ERR_NO_MEMORY, "layer tables");
    /* every output slot of one span, every tap and input channel: which ciphertext and rotation bring it */
    for (size_t j = 0; j < lp->span && !st; j++) {
        size_t o, orow, ocol;
        if (!slot_decode(s, y, kout * S + j, &o, &orow, &ocol)) continue;
        for (size_t t = 0; t < taps; t++) {
            const long ir = (long)(L->stride * orow) + (long)(t / L->k) - (long)L->pad;
            const long ic = (long)(L->stride * ocol) + (long)(t % L->k) - (long)L->pad;
            if (ir < 0 || ic < 0 || ir >= (long)x->h || ic >= (long)x->w) continue;
            for (size_t i = 0; i < L->cin; i++) {
                if (L->weight[(o * L->cin + i) * taps + t] == 0) continue;
                const size_t src = channel_pos(s, x->gap, i) + (size_t)x->gap * ((size_t)ir * s->w0 + (size_t)ic);
                mark[src / S * lp->pin + mod_pos((long)(src % lp->pin) - (long)j, lp->pin)] = 1;
            }
        }
    }
    size_t n = 0;
    for (size_t k = 0; k < cells && !st; k++) n += mark[k];
    if (!st && !(lp->terms = hecnn_alloc((n ? n : 1) * sizeof *lp->terms))) st = hecnn_fail(HECNN_ERR_NO_MEMORY, "layer terms");
    for (size_t k = 0; k < cells && !st; k++)
        if (mark[k]) lp->terms[lp->n_terms++] = (lterm){.kin = k / lp->pin, .u = k % lp->pin};
    hecnn_free(mark);
    /* the split: distinct nonzero baby rotations (per input ciphertext) plus distinct nonzero giant
     * steps, over G a power of two and babies aligned (0 .. G-1) or centred (-G/2 .. G/2-1) */
    size_t *seen = st ? NULL : hecnn_calloc((x->m + 1) * lp->pin, sizeof *seen);
    if (!st && !seen) st = hecnn_fail(HECNN_ERR_NO_MEMORY, "layer split");
    size_t best = SIZE_MAX, best_g = 1, best_half = 0, stamp = 0;
    for (size_t G = 1; G <= lp->pin && !st; G *= 2)
        for (size_t half = 0; half <= G / 2; half += G / 2 ? G / 2 : 1) {
            stamp++;
            lp->G = G;
            lp->half = half;
            size_t cost = 0;
            for (size_t k = 0; k < lp->n_terms; k++) {
                const lterm *e = &lp->terms[k];
                const size_t b = baby_of(lp, e), g = giant_of(lp, e);
                if (seen[e->kin * lp->pin + b] != stamp) {
                    seen[e->kin * lp->pin + b] = stamp;
                    cost += b != 0;
                }
                if (seen[x->m * lp->pin + g] != stamp) {
                    seen[x->m * lp->pin + g] = stamp;
                    cost += g != 0;
                }
            }
            if (cost < best) {
                best = cost;
                best_g = G;
                best_half = half;
            }
        }
    lp->G = best_g;
    lp->half = best_half;
    hecnn_free(seen);
    if (st) lplan_free(lp);
    return st;
}

/* The plaintext vector of term e, pre-rotated by -giant, at `level` and scale q_level. */
static hecnn_status term_plaintext(const runner *r, const lplan *lp, const lterm *e, unsigned level, double *v, ckks_plaintext *pt)
{
    const hecnn_plan *p = r->p;
    const size_t giant = giant_of(lp, e);
    for (size_t j = 0; j < p->slots; j++) v[(j + giant) % p->slots] = term_value(r, lp, e, j);
    return ckks_encode_real(p->ctx, pt, v, p->slots, p->slots, level, (double)ckks_context_q(p->ctx, level));
}

/* y += b / unit at every used slot of y's layout. */
static hecnn_status add_bias(runner *r, stensor *y, const double *bias)
{
    const hecnn_plan *p = r->p;
    bool any = false;
    for (size_t o = 0; bias && o < y->c; o++) any |= bias[o] != 0;
    if (!any || r->dry) return HECNN_OK;
    double *v = hecnn_alloc(p->slots * sizeof *v);
    ckks_plaintext *pt = NULL;
    hecnn_status st = v ? ckks_plaintext_new(&pt, p->ctx) : hecnn_fail(HECNN_ERR_NO_MEMORY, "bias");
    for (size_t k = 0; k < y->m && !st; k++) {
        for (size_t j = 0; j < p->slots; j++) {
            size_t o, row, col;
            v[j] = slot_decode(r->s, y, k * p->slots + j, &o, &row, &col) ? bias[o] / y->unit : 0.0;
        }
        st = ckks_encode_real(p->ctx, pt, v, p->slots, p->slots, y->level, y->scale);
        for (size_t n = 0; n < p->batch && !st; n++) st = ckks_add_plain(r->ev, y->ct[n * y->m + k], y->ct[n * y->m + k], pt);
    }
    ckks_plaintext_free(pt);
    hecnn_free(v);
    return st;
}

/* A layer's baby rotations, shared by its output ciphertexts: per input ciphertext, each distinct
 * rotation once (one hoisted decomposition per input ciphertext and image). */
typedef struct babies {
    size_t *idx;           /* per (kin, rotation in [0, pin)): the baby's index, or SIZE_MAX */
    size_t *kin;           /* per baby, grouped by kin */
    int *step;
    size_t n;
    ckks_ciphertext **rot; /* batch x n; NULL in the dry run */
} babies;

static void babies_free(babies *bb, size_t batch)
{
    for (size_t i = 0; bb->rot && i < batch * bb->n; i++) ckks_ciphertext_free(bb->rot[i]);
    hecnn_free(bb->rot);
    hecnn_free(bb->idx);
    hecnn_free(bb->kin);
    hecnn_free(bb->step);
}

/* The union of the output ciphertexts' babies; in the real run, every image's rotations. */
static hecnn_status babies_build(runner *r, babies *bb, const stensor *x, const lplan *lps, size_t n_lp)
{
    hecnn_plan *p = r->p;
    const size_t pin = lps[0].pin, cells = x->m * pin, batch = p->batch;
    size_t total = 0;
    for (size_t k = 0; k < n_lp; k++) total += lps[k].n_terms;
    *bb = (babies){0};
    bb->idx = hecnn_alloc(cells * sizeof *bb->idx);
    bb->kin = hecnn_alloc((total ? total : 1) * sizeof *bb->kin);
    bb->step = hecnn_alloc((total ? total : 1) * sizeof *bb->step);
    hecnn_status st = bb->idx && bb->kin && bb->step ? HECNN_OK : hecnn_fail(HECNN_ERR_NO_MEMORY, "layer steps");
    for (size_t j = 0; j < cells && !st; j++) bb->idx[j] = SIZE_MAX;
    for (size_t kin = 0; kin < x->m && !st; kin++)
        for (size_t k = 0; k < n_lp; k++)
            for (size_t t = 0; t < lps[k].n_terms; t++) {
                const lterm *e = &lps[k].terms[t];
                const size_t b = baby_of(&lps[k], e);
                if (e->kin != kin || bb->idx[kin * pin + b] != SIZE_MAX) continue;
                bb->idx[kin * pin + b] = bb->n;
                bb->kin[bb->n] = kin;
                bb->step[bb->n++] = normalize_step(p, (long)b);
            }
    for (size_t n = 0; n < batch && !st; n++)
        for (size_t b = 0; b < bb->n && !st; b++)
            if (bb->step[b]) st = note_rotation(r, bb->step[b], x->level);
    if (st || r->dry) return st;
    bb->rot = hecnn_calloc(batch * (bb->n ? bb->n : 1), sizeof *bb->rot);
    if (!bb->rot) return hecnn_fail(HECNN_ERR_NO_MEMORY, "baby rotations");
    for (size_t i = 0; i < batch * bb->n && !st; i++) st = ckks_ciphertext_new(&bb->rot[i], p->ctx);
    for (size_t n = 0; n < batch && !st; n++)
        for (size_t b0 = 0; b0 < bb->n && !st;) {
            size_t b1 = b0;
            while (b1 < bb->n && bb->kin[b1] == bb->kin[b0]) b1++;
            st = ckks_rotate_hoisted(r->ev, bb->rot + n * bb->n + b0, x->ct[n * x->m + bb->kin[b0]], bb->step + b0, b1 - b0);
            b0 = b1;
        }
    return st;
}

/* Output ciphertext lp->kout of every image: sum over giant steps of the rotated sums of products
 * of the babies and the weight vectors. */
static hecnn_status run_linear_ct(runner *r, stensor *out, const stensor *x, const lplan *lp, const babies *bb)
{
    hecnn_plan *p = r->p;
    const size_t nt = lp->n_terms, batch = p->batch;
    /* the distinct giant steps */
    size_t *gidx = hecnn_alloc(lp->pin * sizeof *gidx), *gval = hecnn_alloc((nt ? nt : 1) * sizeof *gval);
    size_t ng = 0;
    hecnn_status st = gidx && gval ? HECNN_OK : hecnn_fail(HECNN_ERR_NO_MEMORY, "layer steps");
    for (size_t j = 0; j < lp->pin && !st; j++) gidx[j] = SIZE_MAX;
    for (size_t k = 0; k < nt && !st; k++) {
        const size_t g = giant_of(lp, &lp->terms[k]);
        if (gidx[g] == SIZE_MAX) {
            gidx[g] = ng;
            gval[ng++] = g;
        }
    }
    for (size_t n = 0; n < batch && !st; n++)
        for (size_t g = 0; g < ng && !st; g++)
            if (gval[g]) st = note_rotation(r, normalize_step(p, (long)gval[g]), x->level);
    if (st || r->dry) {
        hecnn_free(gidx);
        hecnn_free(gval);
        return st;
    }

    ckks_ciphertext **acc = hecnn_calloc(batch, sizeof *acc), *tmp = NULL;
    ckks_plaintext **pts = hecnn_calloc(nt ? nt : 1, sizeof *pts);
    size_t *order = hecnn_alloc((nt ? nt : 1) * sizeof *order);
    bool *started = hecnn_calloc(batch, sizeof *started);
    if (!acc || !pts || !order || !started) st = hecnn_fail(HECNN_ERR_NO_MEMORY, "layer workspace");
    for (size_t i = 0; i < batch && !st; i++) st = ckks_ciphertext_new(&acc[i], p->ctx);
    if (!st) st = ckks_ciphertext_new(&tmp, p->ctx);
    /* the terms grouped by giant step; a group's vectors are encoded once for the batch */
    size_t m = 0;
    for (size_t g = 0; g < ng && !st; g++)
        for (size_t k = 0; k < nt; k++)
            if (giant_of(lp, &lp->terms[k]) == gval[g]) order[m++] = k;
    for (size_t g = 0, k0 = 0; g < ng && !st; g++) {
        size_t k1 = k0;
        while (k1 < nt && giant_of(lp, &lp->terms[order[k1]]) == gval[g]) k1++;
        hecnn_status shared = HECNN_OK;
#pragma omp parallel
        {
            double *v = hecnn_alloc(p->slots * sizeof *v);
            if (!v) {
#pragma omp critical(hecnn_single)
                shared = hecnn_fail(HECNN_ERR_NO_MEMORY, "weight vector");
            }
#pragma omp for schedule(dynamic)
            for (size_t q = k0; q < k1; q++) {
                if (!v) continue;
                hecnn_status s = ckks_plaintext_new(&pts[q], p->ctx);
                if (!s) s = term_plaintext(r, lp, &lp->terms[order[q]], x->level, v, pts[q]);
                if (s) {
#pragma omp critical(hecnn_single)
                    shared = s;
                }
            }
            hecnn_free(v);
        }
        st = shared;
        for (size_t n = 0; n < batch && !st; n++) {
            ckks_ciphertext *y = out->ct[n * out->m + lp->kout];
            for (size_t q = k0; q < k1 && !st; q++) {
                const lterm *e = &lp->terms[order[q]];
                const ckks_ciphertext *src = bb->rot[n * bb->n + bb->idx[e->kin * lp->pin + baby_of(lp, e)]];
                if (q == k0) st = ckks_mul_plain(r->ev, acc[n], src, pts[q]);
                else {
                    st = ckks_mul_plain(r->ev, tmp, src, pts[q]);
                    if (!st) st = ckks_add(r->ev, acc[n], acc[n], tmp);
                }
            }
            if (!st && gval[g]) st = ckks_rotate(r->ev, acc[n], acc[n], normalize_step(p, (long)gval[g]));
            if (!st) st = started[n] ? ckks_add(r->ev, y, y, acc[n]) : ckks_ciphertext_copy(y, acc[n]);
            started[n] = true;
        }
        for (size_t q = k0; q < k1; q++) {
            ckks_plaintext_free(pts[q]);
            pts[q] = NULL;
        }
        k0 = k1;
    }
    for (size_t n = 0; n < batch && !st; n++)
        if (!started[n]) { /* all weights zero: the input times a zero plaintext */
            double zero = 0;
            ckks_plaintext *pz = NULL;
            st = ckks_plaintext_new(&pz, p->ctx);
            if (!st) st = ckks_encode_real(p->ctx, pz, &zero, 1, p->slots, x->level, (double)ckks_context_q(p->ctx, x->level));
            if (!st) st = ckks_mul_plain(r->ev, out->ct[n * out->m + lp->kout], x->ct[n * x->m], pz);
            ckks_plaintext_free(pz);
        }
    for (size_t i = 0; acc && i < batch; i++) ckks_ciphertext_free(acc[i]);
    for (size_t q = 0; pts && q < nt; q++) ckks_plaintext_free(pts[q]);
    ckks_ciphertext_free(tmp);
    hecnn_free(acc);
    hecnn_free(pts);
    hecnn_free(order);
    hecnn_free(started);
    hecnn_free(gidx);
    hecnn_free(gval);
    return st;
}

/* out = L(x) for every image: one level. */
static hecnn_status run_linear(runner *r, stensor *out, const stensor *x, const slinear *L, size_t id)
{
    if (x->level < 1)
        return hecnn_fail(HECNN_ERR_LEVEL_MISMATCH, "a linear layer needs a level; its input is at level 0 "
                                                    "(put an activation between linear layers)");
    if (x->c != L->cin) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "layer reads %u channels, input has %u", L->cin, x->c);
    const double t0 = omp_get_wtime();
    *out = (stensor){.c = L->cout, .h = (x->h + 2 * L->pad - L->k) / L->stride + 1,
                     .w = (x->w + 2 * L->pad - L->k) / L->stride + 1, .gap = x->gap * L->stride,
                     .unit = L->unit_out, .level = x->level - 1, .scale = x->scale};
    hecnn_status st = shape(r, out, id);
    if (st) return st;
    lplan *lps = hecnn_calloc(out->m, sizeof *lps);
    size_t built = 0;
    babies bb = {0};
    if (!lps) st = hecnn_fail(HECNN_ERR_NO_MEMORY, "layer plans");
    for (; built < out->m && !st; built++)
        if ((st = lplan_build(r, &lps[built], L, x, out, built))) break;
    if (!st) st = stensor_alloc(r, out);
    if (!st) st = babies_build(r, &bb, x, lps, out->m);
    for (size_t kout = 0; kout < out->m && !st; kout++) st = run_linear_ct(r, out, x, &lps[kout], &bb);
    babies_free(&bb, r->p->batch);
    for (size_t k = 0; lps && k < built; k++) lplan_free(&lps[k]);
    hecnn_free(lps);
    for (size_t i = 0; !r->dry && i < out->n_ct && !st; i++) st = ckks_rescale(r->ev, out->ct[i], out->ct[i]);
    if (!st) st = add_bias(r, out, L->bias);
    if (!st && !r->dry && fabs(ckks_ciphertext_scale(out->ct[0]) / out->scale - 1) > 1e-9)
        st = hecnn_fail(HECNN_ERR_SCALE_MISMATCH, "layer output scale drifted");
    if (st) stensor_clear(out);
    r->stats.seconds_linear += omp_get_wtime() - t0;
    return st;
}

/* *view = x when it is already at `unit`, else a converted copy in *tmp (one constant
 * multiplication: one level). The caller clears *tmp. */
static hecnn_status at_unit(runner *r, const stensor **view, stensor *tmp, const stensor *x, double unit)
{
    *tmp = (stensor){0};
    *view = x;
    if (fabs(x->unit / unit - 1) < 1e-12) return HECNN_OK;
    if (x->level < 1) return hecnn_fail(HECNN_ERR_LEVEL_MISMATCH, "a unit conversion needs a level; its input is at level 0");
    *tmp = *x;
    tmp->unit = unit;
    tmp->level = x->level - 1;
    hecnn_status st = stensor_alloc(r, tmp);
    for (size_t n = 0; n < tmp->n_ct && !st; n++) {
        st = ckks_mul_const(r->ev, tmp->ct[n], x->ct[n], x->unit / unit, 0);
        if (!st) st = ckks_rescale(r->ev, tmp->ct[n], tmp->ct[n]);
    }
    if (st) stensor_clear(tmp);
    else *view = tmp;
    return st;
}

/* ---- activations: (paired) bootstrap, then the ReLU polynomial ------------------------------ */

static hecnn_status run_relu(runner *r, stensor *out, const stensor *x, size_t id)
{
    hecnn_plan *p = r->p;
    const hecnn_node *nd = hecnn_graph_node(p->g, id);
    if (!p->bt) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "the graph has ReLUs: the plan needs a bootstrapper");
    const unsigned top = ckks_bootstrapper_output_level(p->bt);
    const unsigned used = ckks_poly_levels_used(p->ctx, p->poly[id], top, p->scale);
    if (used > top)
        return hecnn_fail(HECNN_ERR_LEVEL_MISMATCH, "ReLU %zu: its polynomial needs %u levels, a bootstrap leaves %u", id, used, top);
    *out = *x;
    out->unit = nd->range;
    out->level = top - used;
    out->scale = p->scale;
    /* an input still as high as a bootstrap would leave it (a deep input's first ReLU): the
     * polynomial alone, ending no lower than after a bootstrap */
    const unsigned used_here = x->level >= used ? ckks_poly_levels_used(p->ctx, p->poly[id], x->level, x->scale) : x->level + 1;
    if (used_here <= x->level && x->level - used_here >= top - used) {
        out->level = x->level - used_here;
        if (r->dry) {
            out->ct = NULL;
            return plan_need_key(p, 0, x->level);
        }
        hecnn_status st = stensor_alloc(r, out);
        const double t0 = omp_get_wtime();
        for (size_t i = 0; i < out->n_ct && !st; i++) st = ckks_poly_evaluate(r->ev, out->ct[i], x->ct[i], p->poly[id], p->scale);
        r->stats.seconds_activation += omp_get_wtime() - t0;
        if (st) stensor_clear(out);
        return st;
    }
    const size_t n = p->batch * x->m, pairs = (n + 1) / 2;
    r->stats.bootstraps += pairs;
    if (r->dry) {
        out->ct = NULL;
        return plan_need_key(p, 0, top);
    }
    hecnn_status st = stensor_alloc(r, out);
    for (size_t j = 0; j < pairs && !st; j++) {
        ckks_ciphertext *ya = out->ct[2 * j], *yb = 2 * j + 1 < n ? out->ct[2 * j + 1] : NULL;
        const double t0 = omp_get_wtime();
        st = ckks_bootstrap_pair(p->bt, r->boot_keys, ya, yb, x->ct[2 * j], yb ? x->ct[2 * j + 1] : NULL);
        const double t1 = omp_get_wtime();
        r->stats.seconds_bootstrap += t1 - t0;
        if (!st) st = ckks_poly_evaluate(r->ev, ya, ya, p->poly[id], p->scale);
        if (!st && yb) st = ckks_poly_evaluate(r->ev, yb, yb, p->poly[id], p->scale);
        r->stats.seconds_activation += omp_get_wtime() - t1;
    }
    if (st) stensor_clear(out);
    return st;
}

/* ---- pooling and sums ------------------------------------------------------------------------- */

static hecnn_status run_global_pool(runner *r, stensor *out, const stensor *x)
{
    const double t0 = omp_get_wtime();
    if ((x->h & (x->h - 1)) || (x->w & (x->w - 1)))
        return hecnn_fail(HECNN_ERR_UNSUPPORTED, "the single packing pools power-of-two maps globally only");
    *out = *x;
    out->h = out->w = 1;
    out->unit = x->unit / ((double)x->h * x->w);
    size_t n_steps = 0;
    int steps[64];
    for (uint32_t s = 1; s < x->h; s *= 2) steps[n_steps++] = normalize_step(r->p, (long)x->gap * (long)r->s->w0 * s);
    for (uint32_t s = 1; s < x->w; s *= 2) steps[n_steps++] = normalize_step(r->p, (long)x->gap * s);
    hecnn_status st = HECNN_OK;
    for (size_t n = 0; n < r->p->batch * x->m && !st; n++)
        for (size_t k = 0; k < n_steps && !st; k++) st = note_rotation(r, steps[k], x->level);
    if (!st) st = stensor_alloc(r, out);
    if (st || r->dry) return st;
    ckks_ciphertext *tmp = NULL;
    st = ckks_ciphertext_new(&tmp, r->p->ctx);
    for (size_t n = 0; n < out->n_ct && !st; n++) {
        st = ckks_ciphertext_copy(out->ct[n], x->ct[n]);
        for (size_t k = 0; k < n_steps && !st; k++) {
            st = ckks_rotate(r->ev, tmp, out->ct[n], steps[k]);
            if (!st) st = ckks_add(r->ev, out->ct[n], out->ct[n], tmp);
        }
    }
    ckks_ciphertext_free(tmp);
    if (st) stensor_clear(out);
    r->stats.seconds_linear += omp_get_wtime() - t0;
    return st;
}

/* a + b at `unit` (0 = a's); the operand at the higher level drops to the other's. */
static hecnn_status run_add(runner *r, stensor *out, const stensor *a, const stensor *b, double unit)
{
    const stensor *va, *vb;
    stensor ta, tb = {0};
    hecnn_status st = at_unit(r, &va, &ta, a, unit > 0 ? unit : a->unit);
    if (!st) st = at_unit(r, &vb, &tb, b, unit > 0 ? unit : a->unit);
    if (st) goto done;
    if (va->c != vb->c || va->h != vb->h || va->w != vb->w || va->gap != vb->gap || va->blocks != vb->blocks || va->m != vb->m) {
        st = hecnn_fail(HECNN_ERR_UNSUPPORTED, "residual operands laid out differently");
        goto done;
    }
    if (fabs(va->scale / vb->scale - 1) > 1e-12) {
        st = hecnn_fail(HECNN_ERR_UNSUPPORTED, "residual operands at scales 2^%.2f, 2^%.2f", log2(va->scale), log2(vb->scale));
        goto done;
    }
    *out = *va;
    out->level = va->level < vb->level ? va->level : vb->level;
    if ((st = stensor_alloc(r, out)) || r->dry) goto done;
    for (size_t i = 0; i < out->n_ct && !st; i++) {
        ckks_ciphertext *o = out->ct[i];
        st = ckks_drop_level(r->ev, o, va->ct[i], out->level);
        if (!st && ckks_ciphertext_level(vb->ct[i]) == out->level) st = ckks_add(r->ev, o, o, vb->ct[i]);
        else if (!st) {
            ckks_ciphertext *t = NULL;
            st = ckks_ciphertext_new(&t, r->p->ctx);
            if (!st) st = ckks_drop_level(r->ev, t, vb->ct[i], out->level);
            if (!st) st = ckks_add(r->ev, o, o, t);
            ckks_ciphertext_free(t);
        }
    }
    if (st) stensor_clear(out);
done:
    stensor_clear(&ta);
    stensor_clear(&tb);
    return st;
}

/* ---- the walk over the graph ------------------------------------------------------------------ */

static hecnn_status run_graph(runner *r, ckks_ciphertext *const *in, ckks_ciphertext *const *out,
                              hecnn_progress_fn progress, void *user, const volatile int *cancel)
{
    hecnn_plan *p = r->p;
    const size_t count = hecnn_graph_node_count(p->g), batch = p->batch;
    stensor *t = hecnn_calloc(count, sizeof *t);
    if (!t) return hecnn_fail(HECNN_ERR_NO_MEMORY, "tensor table");
    const hecnn_node *n0 = hecnn_graph_node(p->g, 0);
    const unsigned input_level = r->s->input_level;
    t[0] = (stensor){.c = n0->c, .h = n0->h, .w = n0->w, .gap = 1, .unit = 1, .level = input_level, .scale = p->scale};
    hecnn_status st = shape(r, &t[0], 0);
    if (!st && r->dry) {
        p->nodes[0] = (hecnn_plan_node){.level = input_level, .scale = p->scale, .unit = 1, .gap = 1,
                                        .groups = t[0].blocks, .ciphertexts = batch * t[0].m};
        ((single *)p->impl)->m_in = t[0].m;
    }
    if (!st && !r->dry) {
        if ((st = stensor_alloc(r, &t[0]))) goto done;
        for (size_t i = 0; i < t[0].n_ct && !st; i++) {
            st = plan_check_input(p, in[i], i);
            if (!st) st = ckks_ciphertext_copy(t[0].ct[i], in[i]);
        }
    }
    for (size_t id = 1; id < count && !st; id++) {
        if (cancel && *cancel) {
            st = hecnn_fail(HECNN_ERR_CANCELLED, "run cancelled before node %zu", id);
            break;
        }
        const hecnn_node *nd = hecnn_graph_node(p->g, id);
        stensor *x = &t[nd->in[0]];
        const size_t boots_before = r->stats.bootstraps, rots_before = r->stats.rotations;
        const double unit = p->want[id] > 0 ? p->want[id] : 1.0;
        switch (nd->op) {
        case HECNN_OP_CONV2D: {
            if (nd->stride != 1 && nd->stride != 2) {
                st = hecnn_fail(HECNN_ERR_UNSUPPORTED, "node %zu: the single packing takes strides 1 and 2", id);
                break;
            }
            if (nd->stride == 2 && (x->h % 2 || x->w % 2)) {
                st = hecnn_fail(HECNN_ERR_UNSUPPORTED, "node %zu: stride 2 on an odd-sized map", id);
                break;
            }
            const slinear L = {.cout = nd->c, .cin = x->c, .k = nd->k, .stride = nd->stride, .pad = nd->pad,
                               .weight = nd->weight, .bias = nd->bias, .factor = x->unit / unit, .unit_out = unit};
            st = run_linear(r, &t[id], x, &L, id);
            break;
        }
        case HECNN_OP_DENSE: {
            if (x->h != 1 || x->w != 1) {
                st = hecnn_fail(HECNN_ERR_UNSUPPORTED, "node %zu: the single packing needs a global pool before a dense layer", id);
                break;
            }
            const slinear L = {.cout = nd->c, .cin = x->c, .k = 1, .stride = 1, .pad = 0, .weight = nd->weight,
                               .bias = nd->bias, .factor = x->unit / unit, .unit_out = unit};
            st = run_linear(r, &t[id], x, &L, id);
            break;
        }
        case HECNN_OP_AVGPOOL:
            if (nd->k != x->h || nd->k != x->w) st = hecnn_fail(HECNN_ERR_UNSUPPORTED, "node %zu: only global average pooling", id);
            else st = run_global_pool(r, &t[id], x);
            break;
        case HECNN_OP_ADD:
            st = run_add(r, &t[id], x, &t[nd->in[1]], p->want[id]);
            break;
        case HECNN_OP_RELU: {
            const stensor *v;
            stensor tmp;
            st = at_unit(r, &v, &tmp, x, nd->range);
            if (!st) st = run_relu(r, &t[id], v, id);
            stensor_clear(&tmp);
            break;
        }
        default:
            st = hecnn_fail(HECNN_ERR_UNSUPPORTED, "node %zu: operation %d is not supported by the single packing", id,
                            (int)nd->op);
        }
        if (!st && r->dry) {
            const stensor *o = &t[id];
            p->nodes[id] = (hecnn_plan_node){.level = o->level, .scale = o->scale, .unit = o->unit, .gap = o->gap,
                                             .groups = o->blocks, .ciphertexts = batch * o->m,
                                             .bootstraps = r->stats.bootstraps - boots_before,
                                             .rotations = r->stats.rotations - rots_before};
        }
        for (size_t j = 0; j < id && !st; j++)
            if (p->last_use[j] == id) stensor_clear(&t[j]);
        if (!st && progress) progress(user, "node", (double)id / (double)(count - 1));
    }
    if (st) goto done;
    const size_t last = count - 1;
    if (fabs(t[last].unit - 1) > 1e-12) { /* an output not produced at unit 1 (a graph ending at a pool): convert */
        const stensor *v;
        stensor tmp;
        st = at_unit(r, &v, &tmp, &t[last], 1.0);
        if (!st) {
            stensor_clear(&t[last]);
            t[last] = tmp;
            if (r->dry) {
                p->nodes[last].level = tmp.level;
                p->nodes[last].unit = 1;
            }
        }
    }
    if (!st && r->dry) {
        single *s = p->impl;
        s->out_gap = t[last].gap;
        s->out_blocks = t[last].blocks;
        s->m_out = t[last].m;
        s->out_h = t[last].h;
        s->out_w = t[last].w;
        p->classes = (size_t)t[last].c * t[last].h * t[last].w;
    }
    if (!st && !r->dry)
        for (size_t i = 0; i < t[last].n_ct && !st; i++) st = ckks_ciphertext_copy(out[i], t[last].ct[i]);
done:
    for (size_t i = 0; i < count; i++) stensor_clear(&t[i]);
    hecnn_free(t);
    return st;
}

/* ---- the packing's operations ------------------------------------------------------------------ */

size_t single_slots_needed(const hecnn_graph *g)
{
    const size_t count = hecnn_graph_node_count(g);
    const hecnn_node *in = hecnn_graph_node(g, 0);
    if (!in || (in->h & (in->h - 1)) || (in->w & (in->w - 1))) return 0;
    const size_t area = (size_t)in->h * in->w;
    uint32_t *gap = hecnn_calloc(count, sizeof *gap);
    if (!gap) return 0;
    size_t need = area;
    for (size_t id = 0; id < count && need; id++) {
        const hecnn_node *nd = hecnn_graph_node(g, id);
        const hecnn_node *x = id ? hecnn_graph_node(g, nd->in[0]) : NULL;
        /* what run_graph lays out: strides 1 and 2, global pooling, a dense layer on a 1 x 1 map */
        const bool laid = id == 0 || nd->op == HECNN_OP_RELU || nd->op == HECNN_OP_ADD ||
                          (nd->op == HECNN_OP_CONV2D && (nd->stride == 1 || nd->stride == 2)) ||
                          (nd->op == HECNN_OP_AVGPOOL && nd->k == x->h && nd->k == x->w) ||
                          (nd->op == HECNN_OP_DENSE && x->h == 1 && x->w == 1);
        /* a stride-2 layer doubles the gap; every other node keeps its input's */
        gap[id] = id == 0 ? 1 : gap[nd->in[0]] * (nd->op == HECNN_OP_CONV2D && nd->stride == 2 ? 2 : 1);
        if (!laid || gap[id] > in->h || gap[id] > in->w) need = 0;
        else if (blocks_for(nd->c, gap[id]) * area > need) need = blocks_for(nd->c, gap[id]) * area;
    }
    hecnn_free(gap);
    return need;
}

static void single_free(void *impl) { hecnn_free(impl); }

static hecnn_status single_build(hecnn_plan *p, const hecnn_plan_options *opt)
{
    (void)opt;
    const hecnn_node *in = hecnn_graph_node(p->g, 0);
    const size_t slots = p->bt ? ckks_bootstrapper_slots(p->bt) : ckks_context_max_slots(p->ctx);
    if ((in->h & (in->h - 1)) || (in->w & (in->w - 1)))
        return hecnn_fail(HECNN_ERR_UNSUPPORTED, "the single packing takes power-of-two inputs (%ux%u)", in->h, in->w);
    if (ckks_context_max_level(p->ctx) < INPUT_LEVEL)
        return hecnn_fail(HECNN_ERR_INVALID_PARAMS, "the context has no level for a layer");
    single *s = hecnn_calloc(1, sizeof *s);
    if (!s) return hecnn_fail(HECNN_ERR_NO_MEMORY, "plan");
    *s = (single){.h0 = in->h, .w0 = in->w, .area = (size_t)in->h * in->w, .input_level = INPUT_LEVEL};
    p->impl = s;
    p->slots = slots;
    /* the input's level: the lowest deep input (as high as a bootstrap's output, plus what the
     * layers before the first ReLU use) that spares the first ReLU's bootstrap, if one does */
    runner shallow = {.p = p, .s = s, .dry = true};
    hecnn_status st = run_graph(&shallow, NULL, NULL, NULL, NULL, NULL);
    for (unsigned extra = 1; p->bt && !st && extra <= 2; extra++) {
        const unsigned level = ckks_bootstrapper_output_level(p->bt) + extra;
        if (level > ckks_context_max_level(p->ctx)) break;
        s->input_level = level;
        runner deep = {.p = p, .s = s, .dry = true};
        if (!run_graph(&deep, NULL, NULL, NULL, NULL, NULL) && deep.stats.bootstraps < shallow.stats.bootstraps) break;
        s->input_level = INPUT_LEVEL;
    }
    p->n_keys = 0; /* the trial runs noted keys: the plan's run below notes its own */
    p->input_level = s->input_level;
    runner r = {.p = p, .s = s, .dry = true};
    if (!st) st = run_graph(&r, NULL, NULL, NULL, NULL, NULL);
    p->bootstraps = r.stats.bootstraps;
    p->rotations = r.stats.rotations;
    return st;
}

static size_t single_images_per_ciphertext(const hecnn_plan *p)
{
    (void)p;
    return 1;
}

static size_t single_input_ciphertexts(const hecnn_plan *p) { return p->batch * ((const single *)p->impl)->m_in; }
static size_t single_output_ciphertexts(const hecnn_plan *p) { return p->batch * ((const single *)p->impl)->m_out; }

static size_t single_bytes(const hecnn_plan *p)
{
    (void)p;
    return 0; /* the weight vectors are encoded during the run */
}

static hecnn_status single_encrypt(const hecnn_plan *p, ckks_ciphertext *const *cts, const double *images, size_t n,
                                   const ckks_public_key *pk, const ckks_secret_key *sk)
{
    const single *s = p->impl;
    const hecnn_node *in = hecnn_graph_node(p->g, 0);
    const stensor t = {.c = in->c, .h = in->h, .w = in->w, .gap = 1, .blocks = blocks_for(in->c, 1), .m = s->m_in};
    const size_t per = (size_t)in->c * in->h * in->w;
    double *v = hecnn_alloc(p->slots * sizeof *v);
    ckks_plaintext *pt = NULL;
    hecnn_status st = v ? ckks_plaintext_new(&pt, p->ctx) : hecnn_fail(HECNN_ERR_NO_MEMORY, "slots");
    /* a batch not filled repeats its images: every ciphertext carries a real image */
    for (size_t b = 0; b < p->batch * t.m && !st; b++) {
        const double *img = images + (b / t.m % n) * per;
        for (size_t j = 0; j < p->slots; j++) {
            size_t ch, row, col;
            v[j] = slot_decode(s, &t, b % t.m * p->slots + j, &ch, &row, &col) ? img[(ch * in->h + row) * in->w + col] : 0.0;
        }
        st = ckks_encode_real(p->ctx, pt, v, p->slots, p->slots, s->input_level, p->scale);
        if (!st) st = pk ? ckks_encrypt_pk(p->ctx, cts[b], pt, pk) : ckks_encrypt_sk(p->ctx, cts[b], pt, sk);
    }
    ckks_plaintext_free(pt);
    hecnn_free(v);
    return st;
}

static hecnn_status single_decrypt(const hecnn_plan *p, double *scores, size_t n, ckks_ciphertext *const *cts,
                                   const ckks_secret_key *sk, bool flooded, const ckks_flood_options *flood)
{
    const single *s = p->impl;
    const size_t m = s->m_out;
    double *v = hecnn_alloc(m * p->slots * sizeof *v);
    ckks_plaintext *pt = NULL;
    hecnn_status st = v ? ckks_plaintext_new(&pt, p->ctx) : hecnn_fail(HECNN_ERR_NO_MEMORY, "slots");
    for (size_t i = 0; i < n && !st; i++) {
        for (size_t k = 0; k < m && !st; k++) {
            const ckks_ciphertext *ct = cts[i * m + k];
            if (ckks_ciphertext_slots(ct) != p->slots) {
                st = hecnn_fail(HECNN_ERR_BAD_FORMAT, "score ciphertext %zu holds %zu slots, the plan %zu", i * m + k,
                                ckks_ciphertext_slots(ct), p->slots);
                break;
            }
            st = flooded ? ckks_decrypt_flooded(p->ctx, pt, ct, sk, flood) : ckks_decrypt(p->ctx, pt, ct, sk);
            if (!st) st = ckks_decode_real(p->ctx, v + k * p->slots, pt);
        }
        /* position v of the layout: ciphertext v / slots, slot v % slots (v < slots when m = 1) */
        const size_t hw = (size_t)s->out_h * s->out_w;
        for (size_t o = 0; o < p->classes && !st; o++) {
            const size_t ch = o / hw, row = o % hw / s->out_w, col = o % s->out_w;
            scores[i * p->classes + o] = v[channel_pos(s, s->out_gap, ch) + (size_t)s->out_gap * (row * s->w0 + col)];
        }
    }
    ckks_plaintext_free(pt);
    hecnn_free(v);
    return st;
}

static hecnn_status single_run(const hecnn_plan *p, const ckks_evaluator *ev, const ckks_boot_keys *boot_keys,
                               ckks_ciphertext *const *in, ckks_ciphertext *const *out, hecnn_progress_fn progress, void *user,
                               const volatile int *cancel, hecnn_run_stats *stats)
{
    runner r = {.p = (hecnn_plan *)p, .s = p->impl, .dry = false, .ev = ev, .boot_keys = boot_keys};
    const hecnn_status st = run_graph(&r, in, out, progress, user, cancel);
    *stats = r.stats;
    return st;
}

const packing_ops single_packing = {
    .name = "single",
    .build = single_build,
    .free = single_free,
    .images_per_ciphertext = single_images_per_ciphertext,
    .input_ciphertexts = single_input_ciphertexts,
    .output_ciphertexts = single_output_ciphertexts,
    .bytes = single_bytes,
    .encrypt = single_encrypt,
    .decrypt = single_decrypt,
    .run = single_run,
};

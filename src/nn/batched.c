/* The batched packing (include/hecnn/plan.h, src/nn/plan_internal.h): one ciphertext per channel and
 * group of images; its plan is a dry run of its executor.
 *
 * A tensor's ciphertexts hold its values divided by a unit: a layer that feeds a ReLU of range B
 * produces unit B (values in [-1, 1], what the ReLU's polynomial takes after a paired bootstrap), and
 * the ReLU produces unit B too.
 * Linear layers absorb every unit change into their weights; where the producer cannot (a ReLU
 * output feeding a residual sum), a 1x1 identity layer converts it, at the cost of one level. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "nn/plan_internal.h"
#include "util/alloc.h"
#include "util/error.h"

#define MASK_LOG_SCALE 30   /* masks hold 2^30: encoding error about 2^-24 */
#define WEIGHT_LOG_SCALE 20 /* integer weights round(2^20 w): error 2^-21 on w */
#define INPUT_LEVEL 1
#define CHANNEL_CHUNK 8     /* input channels rotated and masked at once in a linear layer */

typedef struct tensor {
    uint32_t c, h, w, gap;
    size_t groups;
    bool pooled;      /* one value per image, at block position (a, b) */
    double unit;      /* ciphertexts hold values / unit */
    unsigned level;
    double scale;
    ckks_ciphertext **ct; /* groups x c, group-major; NULL in the dry run */
} tensor;

typedef struct mask_entry {
    uint32_t gap, h, w, stride, k, pad, ki, kj, pooled;
    unsigned level;
    ckks_plaintext *pt;
} mask_entry;

/* The batched layout's state (hecnn_plan.impl). */
typedef struct batched {
    size_t grid, blocks, groups_in;
    mask_entry *masks;
    size_t n_masks, cap_masks;
    uint32_t out_gap;
    size_t out_groups;
} batched;

/* One execution (or dry run) of the network. */
typedef struct runner {
    hecnn_plan *p;            /* mutable only in the dry run (masks, keys) */
    batched *b;               /* likewise */
    bool dry;
    const ckks_evaluator *ev; /* network keys */
    const ckks_boot_keys *boot_keys;
    hecnn_run_stats stats;
} runner;

/* ---- tensors ----------------------------------------------------------------------------- */

static void tensor_clear(tensor *t)
{
    if (t->ct) {
        for (size_t i = 0; i < t->groups * t->c; i++) ckks_ciphertext_free(t->ct[i]);
        hecnn_free(t->ct);
    }
    t->ct = NULL;
}

static hecnn_status tensor_alloc(const runner *r, tensor *t)
{
    t->ct = NULL;
    if (r->dry) return HECNN_OK;
    const size_t n = t->groups * t->c;
    t->ct = hecnn_calloc(n ? n : 1, sizeof *t->ct);
    if (!t->ct) return hecnn_fail(HECNN_ERR_NO_MEMORY, "tensor of %zu ciphertexts", n);
    for (size_t i = 0; i < n; i++) {
        hecnn_status st = ckks_ciphertext_new(&t->ct[i], r->p->ctx);
        if (st) {
            t->groups = i / (t->c ? t->c : 1);
            tensor_clear(t);
            return st;
        }
    }
    return HECNN_OK;
}

/* ---- the dry run's records: keys and masks ------------------------------------------------- */

static int normalize_step(const hecnn_plan *p, long step)
{
    long s = step % (long)p->slots;
    return (int)(s < 0 ? s + (long)p->slots : s);
}

static hecnn_status note_rotation(runner *r, int step, unsigned level)
{
    r->stats.rotations++;
    if (!r->dry) return HECNN_OK;
    return plan_need_key(r->p, ckks_galois_element_rotation(r->p->ctx, step), level);
}

/* Is block position (y, x) an output of tap (ki, kj) of a layer on the gap-g layout? */
static bool mask_value(const mask_entry *m, size_t y, size_t x)
{
    const size_t g = m->gap, r = y / g, c = x / g;
    if (m->pooled) return r == 0 && c == 0;
    if (r >= m->h || c >= m->w || r % m->stride || c % m->stride) return false;
    const long ri = (long)r + (long)m->ki - (long)m->pad, ci = (long)c + (long)m->kj - (long)m->pad;
    return ri >= 0 && ri < (long)m->h && ci >= 0 && ci < (long)m->w;
}

static bool mask_same(const mask_entry *a, const mask_entry *b)
{
    return a->gap == b->gap && a->h == b->h && a->w == b->w && a->stride == b->stride && a->k == b->k &&
           a->pad == b->pad && a->ki == b->ki && a->kj == b->kj && a->pooled == b->pooled && a->level == b->level;
}

/* The mask for `want`: encoded by the dry run, looked up by the real run (read-only there). */
static hecnn_status get_mask(runner *r, const mask_entry *want, const ckks_plaintext **out)
{
    hecnn_plan *p = r->p;
    batched *b = r->b;
    for (size_t i = 0; i < b->n_masks; i++)
        if (mask_same(&b->masks[i], want)) {
            *out = b->masks[i].pt;
            return HECNN_OK;
        }
    if (!r->dry) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "mask missing from the plan");
    if (b->n_masks == b->cap_masks) {
        const size_t cap = b->cap_masks ? 2 * b->cap_masks : 32;
        mask_entry *m = hecnn_alloc(cap * sizeof *m);
        if (!m) return hecnn_fail(HECNN_ERR_NO_MEMORY, "mask list");
        if (b->n_masks) memcpy(m, b->masks, b->n_masks * sizeof *m);
        hecnn_free(b->masks);
        b->masks = m;
        b->cap_masks = cap;
    }
    double *v = hecnn_alloc(p->slots * sizeof *v);
    if (!v) return hecnn_fail(HECNN_ERR_NO_MEMORY, "mask values");
    const size_t area = b->grid * b->grid;
    for (size_t s = 0; s < p->slots; s++) {
        const size_t pos = s % area;
        v[s] = mask_value(want, pos / b->grid, pos % b->grid) ? 1.0 : 0.0;
    }
    mask_entry e = *want;
    hecnn_status st = ckks_plaintext_new(&e.pt, p->ctx);
    if (!st) st = ckks_encode_real(p->ctx, e.pt, v, p->slots, p->slots, want->level, ldexp(1.0, MASK_LOG_SCALE));
    hecnn_free(v);
    if (st) {
        ckks_plaintext_free(e.pt);
        return st;
    }
    b->masks[b->n_masks++] = e;
    *out = e.pt;
    return HECNN_OK;
}

/* ---- linear layers: convolution, dense, unit conversion --------------------------------------- */

typedef struct linear {
    uint32_t cout, cin, k, stride, pad;
    bool pooled;                 /* dense over pooled values: one tap at (0, 0) */
    const double *weight;        /* [cout][cin][k][k]; NULL = identity (cout == cin) */
    const double *bias;          /* [cout] or NULL */
    double factor;               /* weights times unit_in / unit_out */
    double unit_out;
} linear;

static double linear_weight(const linear *L, size_t o, size_t i, size_t tap)
{
    if (!L->weight) return o == i ? L->factor : 0.0;
    return L->weight[(o * L->cin + i) * (size_t)L->k * L->k + tap] * L->factor;
}

/* out = L(x) on every group: one level. A stride-2 layer leaves its outputs on the even positions
 * (merge_groups packs them). */
static hecnn_status run_linear(runner *r, tensor *out, const tensor *x, const linear *L)
{
    hecnn_plan *p = r->p;
    if (x->level < 1)
        return hecnn_fail(HECNN_ERR_LEVEL_MISMATCH, "a linear layer needs a level; its input is at level 0 "
                                                    "(put an activation between linear layers)");
    if (x->c != L->cin) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "layer reads %u channels, input has %u", L->cin, x->c);
    const size_t taps = (size_t)L->k * L->k;
    const double t0 = omp_get_wtime();
    *out = (tensor){.c = L->cout, .h = x->h, .w = x->w, .gap = x->gap, .groups = x->groups, .pooled = L->pooled,
                    .unit = L->unit_out, .level = x->level - 1};
    if (!L->pooled) {
        out->h = (x->h + 2 * L->pad - L->k) / L->stride + 1;
        out->w = (x->w + 2 * L->pad - L->k) / L->stride + 1;
    }
    const double q = (double)ckks_context_q(p->ctx, x->level);
    out->scale = x->scale * ldexp(1.0, MASK_LOG_SCALE + WEIGHT_LOG_SCALE) / q;
    /* masks and rotation steps per tap; an all-zero mask drops its tap */
    const ckks_plaintext **mask = hecnn_calloc(taps, sizeof *mask);
    int *step = hecnn_calloc(taps, sizeof *step);
    int64_t *wint = hecnn_calloc((size_t)L->cout * L->cin * taps, sizeof *wint);
    hecnn_status st = mask && step && wint ? HECNN_OK : hecnn_fail(HECNN_ERR_NO_MEMORY, "layer tables");
    for (size_t t = 0; t < taps && !st; t++) {
        const uint32_t ki = (uint32_t)(t / L->k), kj = (uint32_t)(t % L->k);
        const mask_entry want = {.gap = x->gap, .h = x->h, .w = x->w, .stride = L->stride, .k = L->k, .pad = L->pad,
                                 .ki = ki, .kj = kj, .pooled = L->pooled, .level = x->level};
        st = get_mask(r, &want, &mask[t]);
        step[t] = normalize_step(p, (long)x->gap * ((long)r->b->grid * ((long)ki - L->pad) + ((long)kj - L->pad)));
    }
    for (size_t o = 0; o < L->cout && !st; o++)
        for (size_t i = 0; i < L->cin && !st; i++)
            for (size_t t = 0; t < taps && !st; t++) {
                const double w = ldexp(linear_weight(L, o, i, t), WEIGHT_LOG_SCALE);
                if (!isfinite(w) || fabs(w) > 0x1p61)
                    st = hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "weight %g too large for the integer encoding",
                                    linear_weight(L, o, i, t));
                else wint[(o * L->cin + i) * taps + t] = llround(w);
            }
    for (size_t g = 0; g < x->groups && !st; g++)
        for (size_t i = 0; i < L->cin; i++)
            for (size_t t = 0; t < taps && !st; t++)
                if (step[t]) st = note_rotation(r, step[t], x->level);
    if (!st) st = tensor_alloc(r, out);
    if (st || r->dry) goto done;

    const size_t chunk = CHANNEL_CHUNK < L->cin ? CHANNEL_CHUNK : L->cin;
    ckks_ciphertext **z = hecnn_calloc(chunk * taps, sizeof *z);
    const ckks_ciphertext **terms = hecnn_calloc((size_t)L->cout * chunk * taps, sizeof *terms);
    int64_t *tw = hecnn_calloc((size_t)L->cout * chunk * taps, sizeof *tw);
    bool *started = hecnn_calloc(L->cout, sizeof *started);
    if (!z || !terms || !tw || !started) st = hecnn_fail(HECNN_ERR_NO_MEMORY, "layer workspace");
    for (size_t j = 0; j < chunk * taps && !st; j++) st = ckks_ciphertext_new(&z[j], p->ctx);
    for (size_t g = 0; g < x->groups && !st; g++) {
        memset(started, 0, L->cout * sizeof *started);
        for (size_t i0 = 0; i0 < L->cin && !st; i0 += chunk) {
            const size_t ni = L->cin - i0 < chunk ? L->cin - i0 : chunk;
            hecnn_status shared = HECNN_OK;
#pragma omp parallel for schedule(dynamic)
            for (size_t ii = 0; ii < ni; ii++) {
                const ckks_ciphertext *xi = x->ct[g * x->c + i0 + ii];
                hecnn_status s = ckks_rotate_hoisted(r->ev, &z[ii * taps], xi, step, taps);
                for (size_t t = 0; t < taps && !s; t++) s = ckks_mul_plain(r->ev, z[ii * taps + t], z[ii * taps + t], mask[t]);
                if (s) {
#pragma omp critical(hecnn_linear)
                    shared = s;
                }
            }
            if ((st = shared)) break;
#pragma omp parallel for schedule(dynamic)
            for (size_t o = 0; o < L->cout; o++) {
                const ckks_ciphertext **to = terms + o * chunk * taps;
                int64_t *wo = tw + o * chunk * taps;
                size_t n = 0;
                for (size_t ii = 0; ii < ni; ii++)
                    for (size_t t = 0; t < taps; t++) {
                        const int64_t w = wint[(o * L->cin + i0 + ii) * taps + t];
                        if (w) {
                            to[n] = z[ii * taps + t];
                            wo[n++] = w;
                        }
                    }
                if (!n && started[o]) continue;
                if (!n) { /* all-zero weights so far: start from zero */
                    to[0] = z[0];
                    wo[0] = 0;
                    n = 1;
                }
                hecnn_status s = ckks_dot_integer(r->ev, out->ct[g * out->c + o], to, wo, n, started[o]);
                started[o] = true;
                if (s) {
#pragma omp critical(hecnn_linear)
                    shared = s;
                }
            }
            st = shared;
        }
        hecnn_status shared = st;
#pragma omp parallel for schedule(dynamic)
        for (size_t o = 0; o < L->cout; o++) {
            if (shared) continue;
            ckks_ciphertext *ct = out->ct[g * out->c + o];
            hecnn_status s = ckks_ciphertext_set_scale(ct, ckks_ciphertext_scale(ct) * ldexp(1.0, WEIGHT_LOG_SCALE));
            if (!s) s = ckks_rescale(r->ev, ct, ct);
            if (!s && L->bias && L->bias[o] != 0) s = ckks_add_const(r->ev, ct, ct, L->bias[o] / L->unit_out);
            if (s) {
#pragma omp critical(hecnn_linear)
                shared = s;
            }
        }
        st = shared;
    }
    if (!st && x->groups && fabs(ckks_ciphertext_scale(out->ct[0]) / out->scale - 1) > 1e-9)
        st = hecnn_fail(HECNN_ERR_SCALE_MISMATCH, "layer output scale drifted");
    for (size_t j = 0; z && j < chunk * taps; j++) ckks_ciphertext_free(z[j]);
    hecnn_free(z);
    hecnn_free(terms);
    hecnn_free(tw);
    hecnn_free(started);
    if (st) tensor_clear(out);
done:
    hecnn_free(mask);
    hecnn_free(step);
    hecnn_free(wint);
    r->stats.seconds_linear += omp_get_wtime() - t0;
    return st;
}

/* Four groups of stride-2 outputs (on the even positions of gap g) into one group at gap 2g: group
 * 4m + q moves by g (q >> 1) rows and g (q & 1) columns. A last incomplete set repeats its groups so
 * that every slot keeps carrying a real image. */
static hecnn_status merge_groups(runner *r, tensor *t)
{
    const double t0 = omp_get_wtime();
    const size_t groups = (t->groups + 3) / 4;
    tensor m = *t;
    m.groups = groups;
    m.gap = t->gap * 2;
    hecnn_status st = HECNN_OK;
    for (size_t q = 1; q < 4 && !st; q++) {
        const int step = normalize_step(r->p, -(long)t->gap * ((long)r->b->grid * (long)(q >> 1) + (long)(q & 1)));
        for (size_t i = 0; i < groups * t->c && !st; i++) st = note_rotation(r, step, t->level);
    }
    if (!st) st = tensor_alloc(r, &m);
    if (st || r->dry) {
        if (!st) *t = m;
        r->stats.seconds_linear += omp_get_wtime() - t0;
        return st;
    }
    hecnn_status shared = HECNN_OK;
#pragma omp parallel for schedule(dynamic)
    for (size_t i = 0; i < groups * t->c; i++) {
        const size_t gm = i / t->c, ch = i % t->c, have = t->groups - 4 * gm < 4 ? t->groups - 4 * gm : 4;
        ckks_ciphertext *acc = m.ct[i], *tmp = NULL;
        hecnn_status s = ckks_ciphertext_copy(acc, t->ct[(4 * gm) * t->c + ch]);
        if (!s) s = ckks_ciphertext_new(&tmp, r->p->ctx);
        for (size_t q = 1; q < 4 && !s; q++) {
            const size_t src = 4 * gm + (q < have ? q : q % have);
            const int step = normalize_step(r->p, -(long)t->gap * ((long)r->b->grid * (long)(q >> 1) + (long)(q & 1)));
            s = ckks_rotate(r->ev, tmp, t->ct[src * t->c + ch], step);
            if (!s) s = ckks_add(r->ev, acc, acc, tmp);
        }
        ckks_ciphertext_free(tmp);
        if (s) {
#pragma omp critical(hecnn_merge)
            shared = s;
        }
    }
    if ((st = shared)) tensor_clear(&m);
    else {
        tensor_clear(t);
        *t = m;
    }
    r->stats.seconds_linear += omp_get_wtime() - t0;
    return st;
}

/* t += bias (per channel, at t's unit) in every slot. */
static hecnn_status add_bias(runner *r, tensor *t, const double *bias)
{
    if (!bias || r->dry) return HECNN_OK;
    hecnn_status st = HECNN_OK;
    for (size_t i = 0; i < t->groups * t->c && !st; i++)
        if (bias[i % t->c] != 0) st = ckks_add_const(r->ev, t->ct[i], t->ct[i], bias[i % t->c] / t->unit);
    return st;
}

/* *view = x when it is already at `unit`, else a converted copy in *tmp (a 1x1 identity layer: one
 * level). The caller clears *tmp. */
static hecnn_status at_unit(runner *r, const tensor **view, tensor *tmp, const tensor *x, double unit)
{
    *tmp = (tensor){0};
    *view = x;
    if (fabs(x->unit / unit - 1) < 1e-12) return HECNN_OK;
    const linear L = {.cout = x->c, .cin = x->c, .k = 1, .stride = 1, .pad = 0, .pooled = x->pooled,
                      .factor = x->unit / unit, .unit_out = unit};
    hecnn_status st = run_linear(r, tmp, x, &L);
    if (!st) *view = tmp;
    return st;
}

/* ---- activations: paired bootstrap, then the ReLU polynomial --------------------------------- */

static hecnn_status run_relu(runner *r, tensor *out, const tensor *x, size_t id)
{
    hecnn_plan *p = r->p;
    const hecnn_node *nd = hecnn_graph_node(p->g, id);
    if (!p->bt) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "the graph has ReLUs: the plan needs a bootstrapper");
    const unsigned top = ckks_bootstrapper_output_level(p->bt);
    const unsigned used = ckks_poly_levels_used(p->ctx, p->poly[id], top, p->scale);
    if (used > top) return hecnn_fail(HECNN_ERR_LEVEL_MISMATCH, "ReLU %zu: its polynomial needs %u levels, a bootstrap leaves %u", id, used, top);
    *out = *x;
    out->unit = nd->range;
    out->level = top - used;
    out->scale = p->scale;
    const size_t n = x->groups * x->c, pairs = (n + 1) / 2;
    r->stats.bootstraps += pairs;
    if (r->dry) {
        out->ct = NULL;
        return plan_need_key(p, 0, top);
    }
    hecnn_status st = tensor_alloc(r, out);
    for (size_t j = 0; j < pairs && !st; j++) {
        ckks_ciphertext *ya = out->ct[2 * j], *yb = 2 * j + 1 < n ? out->ct[2 * j + 1] : NULL;
        double t0 = omp_get_wtime();
        st = ckks_bootstrap_pair(p->bt, r->boot_keys, ya, yb, x->ct[2 * j], yb ? x->ct[2 * j + 1] : NULL);
        const double t1 = omp_get_wtime();
        r->stats.seconds_bootstrap += t1 - t0;
        if (!st) st = ckks_poly_evaluate(r->ev, ya, ya, p->poly[id], p->scale);
        if (!st && yb) st = ckks_poly_evaluate(r->ev, yb, yb, p->poly[id], p->scale);
        r->stats.seconds_activation += omp_get_wtime() - t1;
    }
    if (st) tensor_clear(out);
    return st;
}

/* The ReLU of node id on x, converted first to the unit `range` its bootstrap takes. */
static hecnn_status run_relu_node(runner *r, tensor *out, const tensor *x, size_t id)
{
    const tensor *v;
    tensor tmp;
    hecnn_status st = at_unit(r, &v, &tmp, x, hecnn_graph_node(r->p->g, id)->range);
    if (!st) st = run_relu(r, out, v, id);
    tensor_clear(&tmp);
    return st;
}

/* ---- pooling and sums ------------------------------------------------------------------------- */

static hecnn_status run_global_pool(runner *r, tensor *out, const tensor *x)
{
    const double t0 = omp_get_wtime();
    if (x->pooled || x->h != x->w || (x->h & (x->h - 1)))
        return hecnn_fail(HECNN_ERR_UNSUPPORTED, "the batched packing pools square power-of-two maps globally only");
    *out = *x;
    out->pooled = true;
    out->h = out->w = 1;
    out->unit = x->unit / ((double)x->h * x->w);
    size_t n_steps = 0;
    int steps[64];
    for (uint32_t s = 1; s < x->h; s *= 2) {
        steps[n_steps++] = normalize_step(r->p, (long)x->gap * (long)r->b->grid * s);
        steps[n_steps++] = normalize_step(r->p, (long)x->gap * s);
    }
    hecnn_status st = HECNN_OK;
    for (size_t i = 0; i < x->groups * x->c && !st; i++)
        for (size_t k = 0; k < n_steps && !st; k++) st = note_rotation(r, steps[k], x->level);
    if (!st) st = tensor_alloc(r, out);
    if (st || r->dry) return st;
    hecnn_status shared = HECNN_OK;
#pragma omp parallel for schedule(dynamic)
    for (size_t i = 0; i < x->groups * x->c; i++) {
        ckks_ciphertext *tmp = NULL;
        hecnn_status s = ckks_ciphertext_copy(out->ct[i], x->ct[i]);
        if (!s) s = ckks_ciphertext_new(&tmp, r->p->ctx);
        for (size_t k = 0; k < n_steps && !s; k++) {
            s = ckks_rotate(r->ev, tmp, out->ct[i], steps[k]);
            if (!s) s = ckks_add(r->ev, out->ct[i], out->ct[i], tmp);
        }
        ckks_ciphertext_free(tmp);
        if (s) {
#pragma omp critical(hecnn_pool)
            shared = s;
        }
    }
    if (shared) tensor_clear(out);
    r->stats.seconds_linear += omp_get_wtime() - t0;
    return shared;
}

/* a + b at `unit` (0 = a's). */
static hecnn_status run_add(runner *r, tensor *out, const tensor *a, const tensor *b, double unit)
{
    const tensor *va, *vb;
    tensor ta, tb = {0};
    hecnn_status st = at_unit(r, &va, &ta, a, unit > 0 ? unit : a->unit);
    if (!st) st = at_unit(r, &vb, &tb, b, unit > 0 ? unit : a->unit);
    if (st) goto done;
    if (va->c != vb->c || va->h != vb->h || va->w != vb->w || va->gap != vb->gap || va->groups != vb->groups ||
        va->pooled != vb->pooled) {
        st = hecnn_fail(HECNN_ERR_UNSUPPORTED, "residual operands laid out differently");
        goto done;
    }
    if (va->level != vb->level || fabs(va->scale / vb->scale - 1) > 1e-12) {
        st = hecnn_fail(HECNN_ERR_UNSUPPORTED, "residual operands at levels %u and %u (scales 2^%.2f, 2^%.2f)",
                        va->level, vb->level, log2(va->scale), log2(vb->scale));
        goto done;
    }
    *out = *va;
    if ((st = tensor_alloc(r, out)) || r->dry) goto done;
    for (size_t i = 0; i < va->groups * va->c && !st; i++) st = ckks_add(r->ev, out->ct[i], va->ct[i], vb->ct[i]);
    if (st) tensor_clear(out);
done:
    tensor_clear(&ta);
    tensor_clear(&tb);
    return st;
}

/* ---- the walk over the graph ------------------------------------------------------------------ */

static hecnn_status run_graph(runner *r, ckks_ciphertext *const *in, ckks_ciphertext *const *out,
                              hecnn_progress_fn progress, void *user, const volatile int *cancel)
{
    hecnn_plan *p = r->p;
    batched *b = r->b;
    const size_t count = hecnn_graph_node_count(p->g);
    tensor *t = hecnn_calloc(count, sizeof *t);
    if (!t) return hecnn_fail(HECNN_ERR_NO_MEMORY, "tensor table");
    const hecnn_node *n0 = hecnn_graph_node(p->g, 0);
    t[0] = (tensor){.c = n0->c, .h = n0->h, .w = n0->w, .gap = 1, .groups = b->groups_in, .unit = 1,
                    .level = INPUT_LEVEL, .scale = p->scale};
    hecnn_status st = HECNN_OK;
    if (r->dry)
        p->nodes[0] = (hecnn_plan_node){.level = INPUT_LEVEL, .scale = p->scale, .unit = 1, .gap = 1,
                                        .groups = b->groups_in, .ciphertexts = b->groups_in * n0->c};
    if (!r->dry) {
        /* the caller's ciphertexts, borrowed: copied so the run owns every tensor */
        if ((st = tensor_alloc(r, &t[0]))) goto done;
        for (size_t i = 0; i < b->groups_in * n0->c && !st; i++) {
            if (ckks_ciphertext_level(in[i]) != INPUT_LEVEL)
                st = hecnn_fail(HECNN_ERR_LEVEL_MISMATCH, "input ciphertext %zu at level %u, the plan takes %u", i,
                                ckks_ciphertext_level(in[i]), INPUT_LEVEL);
            else if (fabs(ckks_ciphertext_scale(in[i]) / p->scale - 1) > 1e-9)
                st = hecnn_fail(HECNN_ERR_SCALE_MISMATCH, "input ciphertext %zu at scale 2^%.2f, the plan takes 2^%.2f", i,
                                log2(ckks_ciphertext_scale(in[i])), log2(p->scale));
            else if (ckks_ciphertext_slots(in[i]) != p->slots)
                st = hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "input ciphertext %zu holds %zu slots, the plan %zu", i,
                                ckks_ciphertext_slots(in[i]), p->slots);
            else st = ckks_ciphertext_copy(t[0].ct[i], in[i]);
        }
    }
    for (size_t id = 1; id < count && !st; id++) {
        if (cancel && *cancel) {
            st = hecnn_fail(HECNN_ERR_CANCELLED, "run cancelled before node %zu", id);
            break;
        }
        const hecnn_node *nd = hecnn_graph_node(p->g, id);
        tensor *x = &t[nd->in[0]];
        const size_t boots_before = r->stats.bootstraps, rots_before = r->stats.rotations;
        const double unit = p->want[id] > 0 ? p->want[id] : 1.0;
        switch (nd->op) {
        case HECNN_OP_CONV2D: {
            if (x->pooled) {
                st = hecnn_fail(HECNN_ERR_UNSUPPORTED, "convolution after pooling");
                break;
            }
            if (nd->k % 2 == 0 || nd->pad != nd->k / 2 || (nd->stride != 1 && nd->stride != 2)) {
                st = hecnn_fail(HECNN_ERR_UNSUPPORTED, "node %zu: the batched packing takes odd kernels with 'same' "
                                                        "padding and strides 1 or 2", id);
                break;
            }
            if (nd->stride == 2 && (x->h % 2 || x->w % 2)) {
                st = hecnn_fail(HECNN_ERR_UNSUPPORTED, "node %zu: stride 2 on an odd-sized map", id);
                break;
            }
            /* a stride-2 layer's bias waits for the merge: the merge sums four groups' slots */
            const bool merge = nd->stride == 2;
            const linear L = {.cout = nd->c, .cin = x->c, .k = nd->k, .stride = nd->stride, .pad = nd->pad,
                              .weight = nd->weight, .bias = merge ? NULL : nd->bias, .factor = x->unit / unit,
                              .unit_out = unit};
            st = run_linear(r, &t[id], x, &L);
            if (!st && merge) {
                t[id].h = x->h / 2;
                t[id].w = x->w / 2;
                st = merge_groups(r, &t[id]);
                if (!st) st = add_bias(r, &t[id], nd->bias);
            }
            break;
        }
        case HECNN_OP_DENSE: {
            if (!x->pooled && (x->h != 1 || x->w != 1)) {
                st = hecnn_fail(HECNN_ERR_UNSUPPORTED, "node %zu: the batched packing needs a global pool before a dense layer", id);
                break;
            }
            const linear L = {.cout = nd->c, .cin = x->c, .k = 1, .stride = 1, .pad = 0, .pooled = true,
                              .weight = nd->weight, .bias = nd->bias, .factor = x->unit / unit, .unit_out = unit};
            st = run_linear(r, &t[id], x, &L);
            break;
        }
        case HECNN_OP_AVGPOOL:
            if (nd->k != x->h || nd->k != x->w) st = hecnn_fail(HECNN_ERR_UNSUPPORTED, "node %zu: only global average pooling", id);
            else st = run_global_pool(r, &t[id], x);
            break;
        case HECNN_OP_ADD:
            st = run_add(r, &t[id], x, &t[nd->in[1]], p->want[id]);
            break;
        case HECNN_OP_RELU:
            st = run_relu_node(r, &t[id], x, id);
            break;
        default:
            st = hecnn_fail(HECNN_ERR_UNSUPPORTED, "node %zu: operation %d is not supported by the batched packing", id,
                            (int)nd->op);
        }
        if (!st && r->dry) {
            const tensor *o = &t[id];
            hecnn_plan_node *pn = &p->nodes[id];
            pn->level = o->level;
            pn->scale = o->scale;
            pn->unit = o->unit;
            pn->gap = o->gap;
            pn->groups = o->groups;
            pn->ciphertexts = o->groups * o->c;
            pn->bootstraps = r->stats.bootstraps - boots_before;
            pn->rotations = r->stats.rotations - rots_before;
        }
        /* free what no later node reads */
        for (size_t j = 0; j < id && !st; j++)
            if (p->last_use[j] == id) tensor_clear(&t[j]);
        if (!st && progress) progress(user, "node", (double)id / (double)(count - 1));
    }
    if (st) goto done;
    const size_t last = count - 1;
    if (r->dry) {
        b->out_gap = t[last].gap;
        b->out_groups = t[last].groups;
        p->classes = t[last].c;
    }
    if (!t[last].pooled) {
        st = hecnn_fail(HECNN_ERR_UNSUPPORTED, "the batched packing ends with a global pool and a dense layer");
        goto done;
    }
    if (fabs(t[last].unit - 1) > 1e-12) st = hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "output unit %g", t[last].unit);
    if (!st && !r->dry)
        for (size_t i = 0; i < t[last].groups * t[last].c && !st; i++) st = ckks_ciphertext_copy(out[i], t[last].ct[i]);
done:
    for (size_t i = 0; i < count; i++) tensor_clear(&t[i]);
    hecnn_free(t);
    return st;
}

/* ---- the packing's operations ------------------------------------------------------------------ */

static void batched_free(void *impl)
{
    batched *b = impl;
    for (size_t i = 0; i < b->n_masks; i++) ckks_plaintext_free(b->masks[i].pt);
    hecnn_free(b->masks);
    hecnn_free(b);
}

static hecnn_status batched_build(hecnn_plan *p, const hecnn_plan_options *opt)
{
    const hecnn_node *in = hecnn_graph_node(p->g, 0);
    const size_t grid = opt->grid ? opt->grid : in->w, slots = ckks_context_max_slots(p->ctx);
    if (grid < in->h || grid < in->w || (grid & (grid - 1)) || grid * grid > slots)
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "grid %zu: a power of two >= the %ux%u input with grid^2 <= %zu slots",
                          grid, in->h, in->w, slots);
    if (in->h != grid || in->w != grid)
        return hecnn_fail(HECNN_ERR_UNSUPPORTED, "the batched packing takes inputs that fill the grid (%ux%u, grid %zu)",
                          in->h, in->w, grid);
    if (ckks_context_max_level(p->ctx) < INPUT_LEVEL)
        return hecnn_fail(HECNN_ERR_INVALID_PARAMS, "the context has no level for a layer");
    if (p->bt && ckks_bootstrapper_slots(p->bt) != slots)
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "the bootstrapper refreshes %zu slots, the packing uses %zu",
                          ckks_bootstrapper_slots(p->bt), slots);
    batched *b = hecnn_calloc(1, sizeof *b);
    if (!b) return hecnn_fail(HECNN_ERR_NO_MEMORY, "plan");
    *b = (batched){.grid = grid, .blocks = slots / (grid * grid)};
    b->groups_in = (p->batch + b->blocks - 1) / b->blocks;
    p->impl = b;
    p->slots = slots;
    p->input_level = INPUT_LEVEL;
    runner r = {.p = p, .b = b, .dry = true};
    hecnn_status st = run_graph(&r, NULL, NULL, NULL, NULL, NULL);
    p->bootstraps = r.stats.bootstraps;
    p->rotations = r.stats.rotations;
    return st;
}

static size_t batched_images_per_ciphertext(const hecnn_plan *p) { return ((const batched *)p->impl)->blocks; }

static size_t batched_input_ciphertexts(const hecnn_plan *p)
{
    return ((const batched *)p->impl)->groups_in * hecnn_graph_node(p->g, 0)->c;
}

static size_t batched_output_ciphertexts(const hecnn_plan *p) { return ((const batched *)p->impl)->out_groups * p->classes; }

static size_t batched_bytes(const hecnn_plan *p)
{
    const batched *b = p->impl;
    size_t bytes = 0;
    for (size_t i = 0; i < b->n_masks; i++) bytes += ((size_t)b->masks[i].level + 1) * ckks_context_n(p->ctx) * 8;
    return bytes;
}

/* Where image n's result sits: output group and slot. The merges put group 4m + q of gap g at
 * offset g (q >> 1), g (q & 1), one base-4 digit of the input group per merge. */
static void output_position(const batched *b, size_t n, size_t *group, size_t *slot)
{
    size_t g1 = n / b->blocks, y = 0, x = 0;
    const size_t blk = n % b->blocks;
    for (uint32_t g = 1; g < b->out_gap; g *= 2) {
        y += g * ((g1 % 4) >> 1);
        x += g * ((g1 % 4) & 1);
        g1 /= 4;
    }
    *group = g1;
    *slot = blk * b->grid * b->grid + y * b->grid + x;
}

static hecnn_status batched_encrypt(const hecnn_plan *p, ckks_ciphertext *const *cts, const double *images, size_t n,
                                    const ckks_public_key *pk, const ckks_secret_key *sk)
{
    const batched *b = p->impl;
    const hecnn_node *in = hecnn_graph_node(p->g, 0);
    const size_t px = (size_t)in->h * in->w, per = in->c * px;
    double *v = hecnn_alloc(p->slots * sizeof *v);
    ckks_plaintext *pt = NULL;
    hecnn_status st = v ? ckks_plaintext_new(&pt, p->ctx) : hecnn_fail(HECNN_ERR_NO_MEMORY, "slots");
    for (size_t g = 0; g < b->groups_in && !st; g++)
        for (size_t ch = 0; ch < in->c && !st; ch++) {
            for (size_t blk = 0; blk < b->blocks; blk++) {
                const double *img = images + ((g * b->blocks + blk) % n) * per + ch * px;
                for (size_t y = 0; y < b->grid; y++)
                    for (size_t x = 0; x < b->grid; x++) v[blk * b->grid * b->grid + y * b->grid + x] = img[y * in->w + x];
            }
            st = ckks_encode_real(p->ctx, pt, v, p->slots, p->slots, INPUT_LEVEL, p->scale);
            ckks_ciphertext *ct = cts[g * in->c + ch];
            if (!st) st = pk ? ckks_encrypt_pk(p->ctx, ct, pt, pk) : ckks_encrypt_sk(p->ctx, ct, pt, sk);
        }
    ckks_plaintext_free(pt);
    hecnn_free(v);
    return st;
}

static hecnn_status batched_decrypt(const hecnn_plan *p, double *scores, size_t n, ckks_ciphertext *const *cts,
                                    const ckks_secret_key *sk, bool flooded, const ckks_flood_options *flood)
{
    const batched *b = p->impl;
    double *v = hecnn_alloc(p->slots * sizeof *v);
    ckks_plaintext *pt = NULL;
    hecnn_status st = v ? ckks_plaintext_new(&pt, p->ctx) : hecnn_fail(HECNN_ERR_NO_MEMORY, "slots");
    for (size_t g = 0; g < b->out_groups && !st; g++)
        for (size_t o = 0; o < p->classes && !st; o++) {
            const ckks_ciphertext *ct = cts[g * p->classes + o];
            if (ckks_ciphertext_slots(ct) != p->slots) {
                st = hecnn_fail(HECNN_ERR_BAD_FORMAT, "score ciphertext %zu holds %zu slots, the plan %zu",
                                g * p->classes + o, ckks_ciphertext_slots(ct), p->slots);
                break;
            }
            st = flooded ? ckks_decrypt_flooded(p->ctx, pt, ct, sk, flood) : ckks_decrypt(p->ctx, pt, ct, sk);
            if (!st) st = ckks_decode_real(p->ctx, v, pt);
            for (size_t i = 0; i < n && !st; i++) {
                size_t grp, slot;
                output_position(b, i, &grp, &slot);
                if (grp == g) scores[i * p->classes + o] = v[slot];
            }
        }
    ckks_plaintext_free(pt);
    hecnn_free(v);
    return st;
}

static hecnn_status batched_run(const hecnn_plan *p, const ckks_evaluator *ev, const ckks_boot_keys *boot_keys,
                                ckks_ciphertext *const *in, ckks_ciphertext *const *out, hecnn_progress_fn progress, void *user,
                                const volatile int *cancel, hecnn_run_stats *stats)
{
    /* the real run never changes the plan: masks and keys are only read */
    runner r = {.p = (hecnn_plan *)p, .b = p->impl, .dry = false, .ev = ev, .boot_keys = boot_keys};
    const hecnn_status st = run_graph(&r, in, out, progress, user, cancel);
    *stats = r.stats;
    return st;
}

const packing_ops batched_packing = {
    .name = "batched",
    .build = batched_build,
    .free = batched_free,
    .images_per_ciphertext = batched_images_per_ciphertext,
    .input_ciphertexts = batched_input_ciphertexts,
    .output_ciphertexts = batched_output_ciphertexts,
    .bytes = batched_bytes,
    .encrypt = batched_encrypt,
    .decrypt = batched_decrypt,
    .run = batched_run,
};

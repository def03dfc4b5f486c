/* The batched packing (include/hecnn/plan.h, src/nn/plan_internal.h): one ciphertext per channel and
 * group of images; its plan is a dry run of its executor.
 *
 * A tensor's ciphertexts hold its values divided by a unit: a layer that feeds a ReLU of range B
 * produces unit B (values in [-1, 1], what the ReLU's polynomial takes after a paired bootstrap), and
 * the ReLU produces unit B too.
 * Linear layers absorb every unit change into their weights; where the producer cannot (a ReLU
 * output feeding a residual sum), a 1x1 identity layer converts it, at the cost of one level.
 *
 * A stage whose images fill only part of the slots (fewer than four groups to merge) multiplexes
 * channels instead of repeating images: the sub-positions a merge would fill with copies become
 * lanes, each holding another channel, so a tensor of c channels takes c / lanes ciphertexts and its
 * ReLUs bootstrap that many. A convolution then sums, for each output ciphertext, one rotation per
 * distinct offset between an input lane and an output lane. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nn/plan_internal.h"
#include "util/alloc.h"
#include "util/error.h"

#define MASK_LOG_SCALE 30   /* masks hold 2^30: encoding error about 2^-24 */
#define WEIGHT_LOG_SCALE 20 /* integer weights round(2^20 w): error 2^-21 on w */
#define INPUT_LEVEL 1       /* the lowest input level: enough for the first layer */
#define CHANNEL_CHUNK 8     /* input channels rotated and masked at once in a linear layer */

typedef struct tensor {
    uint32_t c, h, w, gap;
    uint32_t lanes;   /* channels per ciphertext: channel i in ciphertext i / lanes, lane i % lanes */
    size_t groups;
    bool pooled;      /* one value per image, at block position (a, b) */
    double unit;      /* ciphertexts hold values / unit */
    unsigned level;
    double scale;
    ckks_ciphertext **ct; /* groups x c, group-major; NULL in the dry run */
    bool borrowed;        /* ct points into a stage output the tensor does not own */
    uint64_t bytes;       /* what its ciphertexts hold (counted in dry runs too) */
} tensor;

typedef struct mask_entry {
    uint32_t gap, h, w, stride, k, pad, ki, kj, pooled;
    uint32_t lanes, lane; /* only lane `lane`'s sub-positions (lanes > 1) */
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
    unsigned input_level;     /* INPUT_LEVEL, or high enough that the first ReLU needs no bootstrap */
    unsigned *depth;          /* per node: stride-2 merges upstream (its stage) */
    unsigned stages;
    size_t *stage_groups;     /* per stage: groups of images */
    uint32_t *lanes;          /* per stage: channels per ciphertext */
    uint8_t *lane_have;       /* per stage d >= 1: the groups its merge finds (1 or 2) when the rest of
                                 its sub-positions are lanes; 0 when the merge packs or repeats images */
    uint32_t out_lanes;       /* the scores' tensor: lanes and ciphertexts per group */
    size_t out_cts;
    /* the memory schedule (hecnn_plan_set_memory): groups per chunk (0 = all), spilled stage outputs */
    size_t chunk;
    bool spill;
    char *scratch;
    char *ckpt_dir, *ckpt_id;  /* checkpoints (hecnn_plan_set_checkpoint), or NULL */
} batched;

/* One execution (or dry run) of the network. */
typedef struct runner {
    hecnn_plan *p;            /* mutable only in the dry run (masks, keys) */
    batched *b;               /* likewise */
    bool dry;
    bool estimate;            /* a dry run for the memory planner: records nothing in the plan */
    const ckks_evaluator *ev; /* network keys */
    const ckks_boot_keys *boot_keys;
    hecnn_run_stats stats;
    uint64_t bytes, peak;     /* ciphertext bytes held now and at most (dry runs count them too) */
    bool boot_spare_counted;
    bool spill;               /* stage outputs go to spill_dir (the schedule's, or checkpoints) */
    bool ckpt;                /* checkpoints: spill_dir is the checkpoint directory */
    char *spill_dir;          /* this run's directory of spilled stage outputs */
    int spill_lock;
} runner;

/* ---- tensors ----------------------------------------------------------------------------- */

/* Bytes of one ciphertext whose limbs reach `level`. */
static uint64_t ct_bytes(const runner *r, unsigned level)
{
    return 2 * ((uint64_t)level + 1) * ckks_context_n(r->p->ctx) * 8;
}

static void count_bytes(runner *r, int64_t delta)
{
    r->bytes += (uint64_t)delta;
    if (r->bytes > r->peak) r->peak = r->bytes;
}

/* Ciphertexts per group. */
static size_t cts(const tensor *t) { return t->lanes ? t->c / t->lanes : t->c; }

/* ---- lanes ---------------------------------------------------------------------------------------- *
 * At gap g = 2^s (after s merges) a block position (y, x) has the sub-position (y mod g, x mod g):
 * merge j (j = 1..s) set bit j - 1 of both, its digit q = 2 bit(y) + bit(x). A lane merge that found
 * `have` groups (1 or 2) put group q mod have at digit q and lane q / have of the merged channels. */

static unsigned stage_of(uint32_t gap)
{
    unsigned s = 0;
    while ((1u << s) < gap) s++;
    return s;
}

/* The lane of block position (y, x) at gap `gap`. */
static uint32_t lane_of(const batched *b, uint32_t gap, size_t y, size_t x)
{
    uint32_t lane = 0, mult = 1;
    for (unsigned j = 1; (1u << (j - 1)) < gap; j++) {
        const unsigned have = b->lane_have[j];
        if (!have) continue;
        const uint32_t q = (uint32_t)((((y >> (j - 1)) & 1) << 1) | ((x >> (j - 1)) & 1));
        lane += q / have * mult;
        mult *= 4 / have;
    }
    return lane;
}

/* Slot offset of lane m from lane 0 (the same image and pixel) at gap `gap`. */
static long lane_offset(const batched *b, uint32_t gap, uint32_t m)
{
    long off = 0;
    for (unsigned j = 1; (1u << (j - 1)) < gap; j++) {
        const unsigned have = b->lane_have[j];
        if (!have) continue;
        const uint32_t f = 4 / have, q = have * (m % f), g = 1u << (j - 1);
        off += (long)g * ((long)b->grid * (q >> 1) + (q & 1));
        m /= f;
    }
    return off;
}

static void tensor_clear(runner *r, tensor *t)
{
    if (t->ct && !t->borrowed) {
        for (size_t i = 0; i < t->groups * cts(t); i++) ckks_ciphertext_free(t->ct[i]);
        hecnn_free(t->ct);
    }
    count_bytes(r, -(int64_t)t->bytes);
    t->ct = NULL;
    t->bytes = 0;
    t->borrowed = false;
}

/* Ciphertexts for t (none in a dry run), counted as reaching `level` (the highest they hold). */
static hecnn_status tensor_alloc(runner *r, tensor *t, unsigned level)
{
    t->ct = NULL;
    t->borrowed = false;
    t->bytes = t->groups * cts(t) * ct_bytes(r, level);
    count_bytes(r, (int64_t)t->bytes);
    if (r->dry) return HECNN_OK;
    const size_t n = t->groups * cts(t);
    t->ct = hecnn_calloc(n ? n : 1, sizeof *t->ct);
    hecnn_status st = t->ct ? HECNN_OK : hecnn_fail(HECNN_ERR_NO_MEMORY, "tensor of %zu ciphertexts", n);
    for (size_t i = 0; i < n && !st; i++) st = ckks_ciphertext_new(&t->ct[i], r->p->ctx);
    if (st) tensor_clear(r, t);
    return st;
}

/* Workspaces, in ciphertexts at the top level of the context, measured with hecnn_alloc_stats at
 * 2 threads (N = 2^12 and 2^16, full slots): a bootstrap allocates up to 32 while it runs and keeps 20
 * (its linear transforms' workspace) from the first bootstrap on. */
#define BOOT_WORK_CIPHERTEXTS 34
#define BOOT_SPARE_CIPHERTEXTS 21
static uint64_t boot_work_bytes(const runner *r)
{
    return BOOT_WORK_CIPHERTEXTS * ct_bytes(r, ckks_context_max_level(r->p->ctx));
}

/* Evaluating a polynomial of degree d (baby-step giant-step) holds about sqrt(d) + log2(d) powers. */
static uint64_t poly_work_bytes(const runner *r, unsigned degree, unsigned level)
{
    unsigned baby = 1, giant = 0;
    while ((uint64_t)baby * baby < degree + 1u) baby *= 2;
    while ((baby << giant) < degree + 1u) giant++;
    return (baby + giant + 2) * ct_bytes(r, level);
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
    if (!r->dry || r->estimate) return HECNN_OK;
    return plan_need_key(r->p, ckks_galois_element_rotation(r->p->ctx, step), level);
}

/* Is block position (y, x) an output of tap (ki, kj) of a layer on the gap-g layout? */
static bool mask_value(const batched *b, const mask_entry *m, size_t y, size_t x)
{
    const size_t g = m->gap, r = y / g, c = x / g;
    if (m->lanes > 1 && lane_of(b, m->gap, y % g, x % g) != m->lane) return false;
    if (m->pooled) return r == 0 && c == 0;
    if (r >= m->h || c >= m->w || r % m->stride || c % m->stride) return false;
    const long ri = (long)r + (long)m->ki - (long)m->pad, ci = (long)c + (long)m->kj - (long)m->pad;
    return ri >= 0 && ri < (long)m->h && ci >= 0 && ci < (long)m->w;
}

static bool mask_same(const mask_entry *a, const mask_entry *b)
{
    return a->gap == b->gap && a->h == b->h && a->w == b->w && a->stride == b->stride && a->k == b->k &&
           a->pad == b->pad && a->ki == b->ki && a->kj == b->kj && a->pooled == b->pooled && a->level == b->level &&
           a->lanes == b->lanes && a->lane == b->lane;
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
    if (r->estimate) { /* a probe: nothing is recorded, and a dry run reads no mask */
        *out = NULL;
        return HECNN_OK;
    }
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
        v[s] = mask_value(b, want, pos / b->grid, pos % b->grid) ? 1.0 : 0.0;
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
    uint32_t cout_weights;       /* outputs with weights (cout may round up to whole ciphertexts) */
    bool pooled;                 /* dense over pooled values: one tap at (0, 0) */
    const double *weight;        /* [cout_weights][cin][k][k]; NULL = identity (cout == cin) */
    const double *bias;          /* [cout_weights] or NULL */
    double factor;               /* weights times unit_in / unit_out */
    double unit_out;
} linear;

static double linear_weight(const linear *L, size_t o, size_t i, size_t tap)
{
    if (!L->weight) return o == i ? L->factor : 0.0;
    if (o >= L->cout_weights) return 0.0;
    return L->weight[(o * L->cin + i) * (size_t)L->k * L->k + tap] * L->factor;
}

/* ct (ciphertext j of a group of t) += bias / unit per channel: a constant with one lane, else a
 * plaintext that holds each lane's channel's bias on its sub-positions. */
static hecnn_status add_bias_ct(runner *r, ckks_ciphertext *ct, const tensor *t, size_t j, const double *bias,
                                size_t channels)
{
    if (t->lanes == 1) return j < channels && bias[j] != 0 ? ckks_add_const(r->ev, ct, ct, bias[j] / t->unit) : HECNN_OK;
    const hecnn_plan *p = r->p;
    const size_t grid = r->b->grid, area = grid * grid;
    double *v = hecnn_alloc(p->slots * sizeof *v);
    uint32_t *lane = hecnn_alloc(area * sizeof *lane);
    ckks_plaintext *pt = NULL;
    hecnn_status st = v && lane ? ckks_plaintext_new(&pt, p->ctx) : hecnn_fail(HECNN_ERR_NO_MEMORY, "bias slots");
    for (size_t pos = 0; pos < area && !st; pos++)
        lane[pos] = lane_of(r->b, t->gap, pos / grid % t->gap, pos % grid % t->gap);
    for (size_t s = 0; s < p->slots && !st; s++) {
        const size_t o = j * t->lanes + lane[s % area];
        v[s] = o < channels ? bias[o] / t->unit : 0.0;
    }
    if (!st) st = ckks_encode_real(p->ctx, pt, v, p->slots, p->slots, ckks_ciphertext_level(ct), ckks_ciphertext_scale(ct));
    if (!st) st = ckks_add_plain(r->ev, ct, ct, pt);
    ckks_plaintext_free(pt);
    hecnn_free(lane);
    hecnn_free(v);
    return st;
}

/* The rotations that carry input lanes to output lanes: delta[0] = 0, then each distinct offset
 * between two lanes; to[d * lanes + m] is the output lane that input lane m reaches by delta[d], or
 * -1. One lane: just delta 0. */
static hecnn_status lane_shifts(const runner *r, const tensor *x, long **delta, int32_t **to, size_t *n_delta)
{
    const size_t lanes = x->lanes;
    long *off = hecnn_alloc(lanes * sizeof *off), *d = hecnn_alloc(lanes * lanes * sizeof *d);
    int32_t *t = hecnn_alloc(lanes * lanes * lanes * sizeof *t);
    if (!off || !d || !t) {
        hecnn_free(off);
        hecnn_free(d);
        hecnn_free(t);
        return hecnn_fail(HECNN_ERR_NO_MEMORY, "lane tables");
    }
    for (size_t m = 0; m < lanes; m++) off[m] = lane_offset(r->b, x->gap, (uint32_t)m);
    size_t n = 1;
    d[0] = 0;
    for (size_t m = 0; m < lanes; m++)
        for (size_t m2 = 0; m2 < lanes; m2++) {
            size_t k = 0;
            while (k < n && d[k] != off[m2] - off[m]) k++;
            if (k == n) d[n++] = off[m2] - off[m];
        }
    for (size_t k = 0; k < n * lanes; k++) t[k] = -1;
    for (size_t m = 0; m < lanes; m++)
        for (size_t m2 = 0; m2 < lanes; m2++)
            for (size_t k = 0; k < n; k++)
                if (d[k] == off[m2] - off[m]) t[k * lanes + m2] = (int32_t)m;
    hecnn_free(off);
    *delta = d;
    *to = t;
    *n_delta = n;
    return HECNN_OK;
}

/* out = L(x) on every group: one level. A stride-2 layer leaves its outputs on the even positions
 * (merge_groups packs them). With lanes, input lane m2 of tap t is masked out of the rotated input
 * and weighted into the partial sum of the offset that carries it to each output lane; each output
 * ciphertext then adds its partial sums rotated by their offsets. */
static hecnn_status run_linear(runner *r, tensor *out, const tensor *x, const linear *L)
{
    hecnn_plan *p = r->p;
    if (x->level < 1)
        return hecnn_fail(HECNN_ERR_LEVEL_MISMATCH, "a linear layer needs a level; its input is at level 0 "
                                                    "(put an activation between linear layers)");
    if (x->c != L->cin) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "layer reads %u channels, input has %u", L->cin, x->c);
    if (L->cout % x->lanes)
        return hecnn_fail(HECNN_ERR_UNSUPPORTED, "a layer of %u outputs on %u lanes", L->cout, x->lanes);
    const size_t taps = (size_t)L->k * L->k, lanes = x->lanes, nin = cts(x), nout = L->cout / lanes;
    const double t0 = omp_get_wtime();
    *out = (tensor){.c = L->cout, .lanes = x->lanes, .h = x->h, .w = x->w, .gap = x->gap, .groups = x->groups,
                    .pooled = L->pooled, .unit = L->unit_out, .level = x->level - 1};
    if (!L->pooled) {
        out->h = (x->h + 2 * L->pad - L->k) / L->stride + 1;
        out->w = (x->w + 2 * L->pad - L->k) / L->stride + 1;
    }
    const double q = (double)ckks_context_q(p->ctx, x->level);
    out->scale = x->scale * ldexp(1.0, MASK_LOG_SCALE + WEIGHT_LOG_SCALE) / q;
    /* masks per tap and input lane, rotation steps per tap; an all-zero mask drops its tap */
    long *delta = NULL;
    int32_t *to = NULL;
    size_t n_delta = 0;
    const ckks_plaintext **mask = hecnn_calloc(taps * lanes, sizeof *mask);
    int *step = hecnn_calloc(taps, sizeof *step);
    int64_t *wint = hecnn_calloc((size_t)L->cout * L->cin * taps, sizeof *wint);
    hecnn_status st = mask && step && wint ? lane_shifts(r, x, &delta, &to, &n_delta)
                                           : hecnn_fail(HECNN_ERR_NO_MEMORY, "layer tables");
    for (size_t t = 0; t < taps && !st; t++) {
        const uint32_t ki = (uint32_t)(t / L->k), kj = (uint32_t)(t % L->k);
        for (size_t m = 0; m < lanes && !st; m++) {
            const mask_entry want = {.gap = x->gap, .h = x->h, .w = x->w, .stride = L->stride, .k = L->k, .pad = L->pad,
                                     .ki = ki, .kj = kj, .pooled = L->pooled, .level = x->level,
                                     .lanes = (uint32_t)lanes, .lane = (uint32_t)m};
            st = get_mask(r, &want, &mask[t * lanes + m]);
        }
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
    /* offsets that carry some nonzero weight (an identity layer needs none but 0) */
    bool *used = st ? NULL : hecnn_calloc(n_delta, sizeof *used);
    if (!st && !used) st = hecnn_fail(HECNN_ERR_NO_MEMORY, "layer tables");
    for (size_t d = 0; d < n_delta && !st; d++)
        for (size_t m2 = 0; m2 < lanes && !used[d]; m2++) {
            const int32_t m = to[d * lanes + m2];
            for (size_t j = 0; m >= 0 && j < nout && !used[d]; j++)
                for (size_t i = 0; i < nin && !used[d]; i++)
                    for (size_t t = 0; t < taps && !used[d]; t++)
                        used[d] = d == 0 || wint[((j * lanes + (size_t)m) * L->cin + i * lanes + m2) * taps + t] != 0;
        }
    for (size_t g = 0; g < x->groups && !st; g++) {
        for (size_t i = 0; i < nin; i++)
            for (size_t t = 0; t < taps && !st; t++)
                if (step[t]) st = note_rotation(r, step[t], x->level);
        for (size_t j = 0; j < nout; j++)
            for (size_t d = 1; d < n_delta && !st; d++)
                if (used[d]) st = note_rotation(r, normalize_step(p, delta[d]), x->level);
    }
    if (!st) st = tensor_alloc(r, out, x->level);
    /* input ciphertexts rotated and masked at once: about CHANNEL_CHUNK channels */
    const size_t chunk = CHANNEL_CHUNK / lanes > 1 ? (CHANNEL_CHUNK / lanes < nin ? CHANNEL_CHUNK / lanes : nin) : 1;
    /* partial sums: one per output ciphertext and used nonzero offset, rank[d] - 1 among them */
    size_t *rank = st ? NULL : hecnn_calloc(n_delta, sizeof *rank), n_used = 0;
    if (!st && !rank) st = hecnn_fail(HECNN_ERR_NO_MEMORY, "layer tables");
    for (size_t d = 1; d < n_delta && !st; d++)
        if (used[d]) rank[d] = ++n_used;
    const size_t n_z = chunk * taps * lanes, n_acc = nout * n_used;
    /* the workspace: a chunk of rotated and masked inputs, the partial sums of the nonzero offsets */
    const int64_t workspace = (int64_t)((n_z + n_acc + 4 * (size_t)hecnn_get_threads()) * ct_bytes(r, x->level));
    count_bytes(r, workspace);
    count_bytes(r, -workspace);
    if (st || r->dry) goto done;

    ckks_ciphertext **z = hecnn_calloc(n_z, sizeof *z), **acc = hecnn_calloc(n_acc ? n_acc : 1, sizeof *acc);
    ckks_ciphertext **rot = hecnn_calloc(chunk * taps, sizeof *rot); /* lane 0 of each (input, tap) */
    const ckks_ciphertext **terms = hecnn_calloc(nout * n_delta * n_z, sizeof *terms);
    int64_t *tw = hecnn_calloc(nout * n_delta * n_z, sizeof *tw);
    bool *started = hecnn_calloc(nout * n_delta, sizeof *started);
    if (!z || !acc || !rot || !terms || !tw || !started) st = hecnn_fail(HECNN_ERR_NO_MEMORY, "layer workspace");
    for (size_t j = 0; j < n_z && !st; j++) st = ckks_ciphertext_new(&z[j], p->ctx);
    for (size_t j = 0; j < chunk * taps && !st; j++) rot[j] = z[j * lanes];
    for (size_t j = 0; j < n_acc && !st; j++) st = ckks_ciphertext_new(&acc[j], p->ctx);
    for (size_t g = 0; g < x->groups && !st; g++) {
        memset(started, 0, nout * n_delta * sizeof *started);
        for (size_t i0 = 0; i0 < nin && !st; i0 += chunk) {
            const size_t ni = nin - i0 < chunk ? nin - i0 : chunk;
            hecnn_status shared = HECNN_OK;
#pragma omp parallel for schedule(dynamic)
            for (size_t ii = 0; ii < ni; ii++) {
                const ckks_ciphertext *xi = x->ct[g * nin + i0 + ii];
                hecnn_status s = ckks_rotate_hoisted(r->ev, rot + ii * taps, xi, step, taps);
                /* lane 0 last: it masks the rotated input in place */
                for (size_t t = 0; t < taps && !s; t++)
                    for (size_t m = lanes; m-- > 0 && !s;)
                        s = ckks_mul_plain(r->ev, z[(ii * taps + t) * lanes + m], rot[ii * taps + t], mask[t * lanes + m]);
                if (s) {
#pragma omp critical(hecnn_linear)
                    shared = s;
                }
            }
            if ((st = shared)) break;
#pragma omp parallel for schedule(dynamic)
            for (size_t jd = 0; jd < nout * n_delta; jd++) {
                const size_t j = jd / n_delta, d = jd % n_delta;
                if (!used[d]) continue;
                const ckks_ciphertext **to_j = terms + jd * n_z;
                int64_t *wj = tw + jd * n_z;
                size_t n = 0;
                for (size_t ii = 0; ii < ni; ii++)
                    for (size_t t = 0; t < taps; t++)
                        for (size_t m2 = 0; m2 < lanes; m2++) {
                            const int32_t m = to[d * lanes + m2];
                            if (m < 0) continue;
                            const size_t o = j * lanes + (size_t)m, i = (i0 + ii) * lanes + m2;
                            const int64_t w = wint[(o * L->cin + i) * taps + t];
                            if (w) {
                                to_j[n] = z[(ii * taps + t) * lanes + m2];
                                wj[n++] = w;
                            }
                        }
                if (!n && started[jd]) continue;
                if (!n) { /* all-zero weights so far: start from zero */
                    to_j[0] = z[0];
                    wj[0] = 0;
                    n = 1;
                }
                ckks_ciphertext *dst = d ? acc[j * n_used + rank[d] - 1] : out->ct[g * nout + j];
                hecnn_status s = ckks_dot_integer(r->ev, dst, to_j, wj, n, started[jd]);
                started[jd] = true;
                if (s) {
#pragma omp critical(hecnn_linear)
                    shared = s;
                }
            }
            st = shared;
        }
        hecnn_status shared = st;
#pragma omp parallel for schedule(dynamic)
        for (size_t j = 0; j < nout; j++) {
            if (shared) continue;
            ckks_ciphertext *ct = out->ct[g * nout + j], *tmp = NULL;
            hecnn_status s = n_used ? ckks_ciphertext_new(&tmp, p->ctx) : HECNN_OK;
            for (size_t d = 1; d < n_delta && !s; d++) {
                if (!used[d]) continue;
                s = ckks_rotate(r->ev, tmp, acc[j * n_used + rank[d] - 1], normalize_step(p, delta[d]));
                if (!s) s = ckks_add(r->ev, ct, ct, tmp);
            }
            ckks_ciphertext_free(tmp);
            if (!s) s = ckks_ciphertext_set_scale(ct, ckks_ciphertext_scale(ct) * ldexp(1.0, WEIGHT_LOG_SCALE));
            if (!s) s = ckks_rescale(r->ev, ct, ct);
            if (!s && L->bias) s = add_bias_ct(r, ct, out, j, L->bias, L->cout_weights);
            if (s) {
#pragma omp critical(hecnn_linear)
                shared = s;
            }
        }
        st = shared;
    }
    if (!st && x->groups && fabs(ckks_ciphertext_scale(out->ct[0]) / out->scale - 1) > 1e-9)
        st = hecnn_fail(HECNN_ERR_SCALE_MISMATCH, "layer output scale drifted");
    for (size_t j = 0; z && j < n_z; j++) ckks_ciphertext_free(z[j]);
    for (size_t j = 0; acc && j < n_acc; j++) ckks_ciphertext_free(acc[j]);
    hecnn_free(z);
    hecnn_free(acc);
    hecnn_free(rot);
    hecnn_free(terms);
    hecnn_free(tw);
    hecnn_free(started);
    if (st) tensor_clear(r, out);
done:
    hecnn_free(mask);
    hecnn_free(step);
    hecnn_free(wint);
    hecnn_free(delta);
    hecnn_free(to);
    hecnn_free(used);
    hecnn_free(rank);
    r->stats.seconds_linear += omp_get_wtime() - t0;
    return st;
}

/* Four groups of stride-2 outputs (on the even positions of gap g) into one group at gap 2g: group
 * 4m + q moves by g (q >> 1) rows and g (q & 1) columns. A last incomplete set repeats its groups so
 * that every slot keeps carrying a real image; a lane merge (the stage's `have` groups, 1 or 2, are
 * all there are) fills digit q instead with group q mod have's ciphertext number q / have of each
 * run of 4 / have, whose channels become lanes. */
static hecnn_status merge_groups(runner *r, tensor *t)
{
    const double t0 = omp_get_wtime();
    const unsigned have_lanes = r->b->lane_have[stage_of(t->gap) + 1];
    if (have_lanes && t->groups != have_lanes)
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "a lane merge of %zu groups, planned for %u", t->groups, have_lanes);
    const size_t f = have_lanes ? 4 / have_lanes : 1, groups = have_lanes ? 1 : (t->groups + 3) / 4;
    if (cts(t) % f)
        return hecnn_fail(HECNN_ERR_UNSUPPORTED, "%u channels do not fill %zu lanes", t->c, t->lanes * f);
    tensor m = *t;
    m.ct = NULL;
    m.bytes = 0;
    m.borrowed = false;
    m.groups = groups;
    m.gap = t->gap * 2;
    m.lanes = t->lanes * (uint32_t)f;
    const size_t n_old = cts(t), n_new = cts(&m);
    hecnn_status st = HECNN_OK;
    for (size_t q = 1; q < 4 && !st; q++) {
        const int step = normalize_step(r->p, -(long)t->gap * ((long)r->b->grid * (long)(q >> 1) + (long)(q & 1)));
        for (size_t i = 0; i < groups * n_new && !st; i++) st = note_rotation(r, step, t->level);
    }
    if (!st) st = tensor_alloc(r, &m, t->level);
    if (st || r->dry) {
        if (!st) {
            tensor_clear(r, t);
            *t = m;
        }
        r->stats.seconds_linear += omp_get_wtime() - t0;
        return st;
    }
    hecnn_status shared = HECNN_OK;
#pragma omp parallel for schedule(dynamic)
    for (size_t i = 0; i < groups * n_new; i++) {
        const size_t gm = i / n_new, k = i % n_new, have = t->groups - 4 * gm < 4 ? t->groups - 4 * gm : 4;
        ckks_ciphertext *acc = m.ct[i], *tmp = NULL;
        hecnn_status s = HECNN_OK;
        for (size_t q = 0; q < 4 && !s; q++) {
            const size_t src = have_lanes ? (q % have) * n_old + k * f + q / have
                                          : (4 * gm + (q < have ? q : q % have)) * n_old + k;
            const int step = normalize_step(r->p, -(long)t->gap * ((long)r->b->grid * (long)(q >> 1) + (long)(q & 1)));
            if (!q) s = ckks_ciphertext_copy(acc, t->ct[src]);
            else {
                if (!tmp) s = ckks_ciphertext_new(&tmp, r->p->ctx);
                if (!s) s = ckks_rotate(r->ev, tmp, t->ct[src], step);
                if (!s) s = ckks_add(r->ev, acc, acc, tmp);
            }
        }
        ckks_ciphertext_free(tmp);
        if (s) {
#pragma omp critical(hecnn_merge)
            shared = s;
        }
    }
    if ((st = shared)) tensor_clear(r, &m);
    else {
        tensor_clear(r, t);
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
    for (size_t i = 0; i < t->groups * cts(t) && !st; i++) st = add_bias_ct(r, t->ct[i], t, i % cts(t), bias, t->c);
    return st;
}

/* *view = x when it is already at `unit`, else a converted copy in *tmp (a 1x1 identity layer: one
 * level). The caller clears *tmp. */
static hecnn_status at_unit(runner *r, const tensor **view, tensor *tmp, const tensor *x, double unit)
{
    *tmp = (tensor){0};
    *view = x;
    if (fabs(x->unit / unit - 1) < 1e-12) return HECNN_OK;
    const linear L = {.cout = x->c, .cin = x->c, .k = 1, .stride = 1, .pad = 0, .cout_weights = x->c,
                      .pooled = x->pooled, .factor = x->unit / unit, .unit_out = unit};
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
    out->ct = NULL;
    out->bytes = 0;
    out->borrowed = false;
    out->unit = nd->range;
    out->scale = p->scale;
    /* an input still as high as a bootstrap would leave it (the deep input's first ReLU): the
     * polynomial alone */
    const unsigned used_here = x->level >= used ? ckks_poly_levels_used(p->ctx, p->poly[id], x->level, x->scale) : x->level + 1;
    if (used_here <= x->level && x->level - used_here >= top - used) {
        out->level = x->level - used_here;
        hecnn_status st = tensor_alloc(r, out, x->level);
        const int64_t poly_work = (int64_t)poly_work_bytes(r, ckks_poly_degree(p->poly[id]), x->level);
        count_bytes(r, poly_work);
        count_bytes(r, -poly_work);
        if (r->dry) return st ? st : r->estimate ? HECNN_OK : plan_need_key(p, 0, x->level);
        const double t0 = omp_get_wtime();
        hecnn_status shared = st;
#pragma omp parallel for schedule(dynamic)
        for (size_t i = 0; i < x->groups * cts(x); i++) {
            if (shared) continue;
            const hecnn_status s2 = ckks_poly_evaluate(r->ev, out->ct[i], x->ct[i], p->poly[id], p->scale);
            if (s2) {
#pragma omp critical(hecnn_relu)
                shared = s2;
            }
        }
        r->stats.seconds_activation += omp_get_wtime() - t0;
        if (shared) tensor_clear(r, out);
        return shared;
    }
    out->level = top - used;
    /* pairs within each group, so that a run in chunks of groups bootstraps the same pairs */
    const size_t n = cts(x), per_group = (n + 1) / 2, pairs = x->groups * per_group;
    r->stats.bootstraps += pairs;
    hecnn_status st = tensor_alloc(r, out, top + 1);
    /* a bootstrap's own workspace while it runs (and what it keeps from the first on), then the
     * polynomial's */
    if (!r->boot_spare_counted) {
        count_bytes(r, (int64_t)(BOOT_SPARE_CIPHERTEXTS * ct_bytes(r, ckks_context_max_level(p->ctx))));
        r->boot_spare_counted = true;
    }
    count_bytes(r, (int64_t)boot_work_bytes(r));
    count_bytes(r, -(int64_t)boot_work_bytes(r));
    const int64_t poly_work = (int64_t)poly_work_bytes(r, ckks_poly_degree(p->poly[id]), top + 1);
    count_bytes(r, poly_work);
    count_bytes(r, -poly_work);
    if (r->dry) return st ? st : r->estimate ? HECNN_OK : plan_need_key(p, 0, top);
    for (size_t j = 0; j < pairs && !st; j++) {
        const size_t a = j / per_group * n + j % per_group * 2;
        const bool two = j % per_group * 2 + 1 < n;
        ckks_ciphertext *ya = out->ct[a], *yb = two ? out->ct[a + 1] : NULL;
        double t0 = omp_get_wtime();
        st = ckks_bootstrap_pair(p->bt, r->boot_keys, ya, yb, x->ct[a], yb ? x->ct[a + 1] : NULL);
        const double t1 = omp_get_wtime();
        r->stats.seconds_bootstrap += t1 - t0;
        if (!st) st = ckks_poly_evaluate(r->ev, ya, ya, p->poly[id], p->scale);
        if (!st && yb) st = ckks_poly_evaluate(r->ev, yb, yb, p->poly[id], p->scale);
        r->stats.seconds_activation += omp_get_wtime() - t1;
    }
    if (st) tensor_clear(r, out);
    return st;
}

/* The ReLU of node id on x, converted first to the unit `range` its bootstrap takes. */
static hecnn_status run_relu_node(runner *r, tensor *out, const tensor *x, size_t id)
{
    const tensor *v;
    tensor tmp;
    hecnn_status st = at_unit(r, &v, &tmp, x, hecnn_graph_node(r->p->g, id)->range);
    if (!st) st = run_relu(r, out, v, id);
    tensor_clear(r, &tmp);
    return st;
}

/* ---- pooling and sums ------------------------------------------------------------------------- */

static hecnn_status run_global_pool(runner *r, tensor *out, const tensor *x)
{
    const double t0 = omp_get_wtime();
    if (x->pooled || x->h != x->w || (x->h & (x->h - 1)))
        return hecnn_fail(HECNN_ERR_UNSUPPORTED, "the batched packing pools square power-of-two maps globally only");
    *out = *x;
    out->ct = NULL;
    out->bytes = 0;
    out->borrowed = false;
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
    for (size_t i = 0; i < x->groups * cts(x) && !st; i++)
        for (size_t k = 0; k < n_steps && !st; k++) st = note_rotation(r, steps[k], x->level);
    if (!st) st = tensor_alloc(r, out, x->level);
    if (st || r->dry) return st;
    hecnn_status shared = HECNN_OK;
#pragma omp parallel for schedule(dynamic)
    for (size_t i = 0; i < x->groups * cts(x); i++) {
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
    if (shared) tensor_clear(r, out);
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
    if (va->c != vb->c || va->lanes != vb->lanes || va->h != vb->h || va->w != vb->w || va->gap != vb->gap ||
        va->groups != vb->groups || va->pooled != vb->pooled) {
        st = hecnn_fail(HECNN_ERR_UNSUPPORTED, "residual operands laid out differently");
        goto done;
    }
    if (va->level != vb->level || fabs(va->scale / vb->scale - 1) > 1e-12) {
        st = hecnn_fail(HECNN_ERR_UNSUPPORTED, "residual operands at levels %u and %u (scales 2^%.2f, 2^%.2f)",
                        va->level, vb->level, log2(va->scale), log2(vb->scale));
        goto done;
    }
    *out = *va;
    if ((st = tensor_alloc(r, out, va->level)) || r->dry) goto done;
    for (size_t i = 0; i < va->groups * cts(va) && !st; i++) st = ckks_add(r->ev, out->ct[i], va->ct[i], vb->ct[i]);
    if (st) tensor_clear(r, out);
done:
    tensor_clear(r, &ta);
    tensor_clear(r, &tb);
    return st;
}

/* ---- stages, chunks and spilled stage outputs ---------------------------------------------------- *
 * A node's stage is the number of stride-2 merges above it. The groups of images of a stage are
 * independent until the next merge, so a stage may run in chunks of groups: the run then holds one
 * chunk's tensors plus the stage outputs (tensors that the next stage's merging layers read), which
 * stay in memory or go to the spill directory (the validated ciphertext format, written atomically,
 * deleted once read back). Every ciphertext goes through the same operations whatever the chunks,
 * so the scores are bit-identical. */

static bool is_stage_output(const hecnn_plan *p, const batched *b, size_t id)
{
    const size_t count = hecnn_graph_node_count(p->g);
    for (size_t k = id + 1; k < count; k++) {
        const hecnn_node *nd = hecnn_graph_node(p->g, k);
        if ((nd->in[0] == id || (nd->op == HECNN_OP_ADD && nd->in[1] == id)) && b->depth[k] > b->depth[id]) return true;
    }
    return false;
}

static void spill_name(char *out, size_t cap, const runner *r, size_t id, size_t ct, const char *ext)
{
    snprintf(out, cap, "%s/n%zu_%zu.%s", r->spill_dir, id, ct, ext);
}

/* Ciphertext number `ct` of stage output `id` to the spill directory: a temporary file renamed
 * into place, so that a name always holds a whole ciphertext. */
static hecnn_status spill_write(const runner *r, size_t id, size_t ct, const ckks_ciphertext *x)
{
    char tmp[4096], name[4096];
    spill_name(tmp, sizeof tmp, r, id, ct, "tmp");
    spill_name(name, sizeof name, r, id, ct, "ct");
    FILE *f = fopen(tmp, "wb");
    if (!f) return hecnn_fail(HECNN_ERR_IO, "cannot create spill file %s: %s", tmp, strerror(errno));
    hecnn_status st = ckks_ciphertext_save(x, f);
    if (fclose(f) && !st) st = hecnn_fail(HECNN_ERR_IO, "cannot write spill file %s: %s", tmp, strerror(errno));
    if (!st && rename(tmp, name)) st = hecnn_fail(HECNN_ERR_IO, "cannot rename spill file %s: %s", tmp, strerror(errno));
    if (st) unlink(tmp);
    return st;
}

static hecnn_status spill_read(const runner *r, size_t id, size_t ct, ckks_ciphertext *x)
{
    char name[4096];
    spill_name(name, sizeof name, r, id, ct, "ct");
    FILE *f = fopen(name, "rb");
    if (!f) return hecnn_fail(HECNN_ERR_IO, "cannot open spill file %s: %s", name, strerror(errno));
    hecnn_status st = ckks_ciphertext_load(r->p->ctx, x, f);
    if (!st && fgetc(f) != EOF) st = hecnn_fail(HECNN_ERR_BAD_FORMAT, "spill file %s has trailing bytes", name);
    fclose(f);
    if (!r->ckpt) unlink(name); /* a checkpoint stays until the next stage is done */
    return st;
}

/* Remove a spill directory and what it holds (names this code wrote only). */
static void spill_dir_remove(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char path[4096];
        while ((e = readdir(d)))
            if (e->d_name[0] != '.') {
                const int len = snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
                if (len > 0 && (size_t)len < sizeof path) unlink(path);
            }
        closedir(d);
    }
    rmdir(dir);
}

/* Spill directories of runs that ended without cleaning up (killed): their lock is free. A new run
 * never reads them; this only reclaims the space. */
static void spill_reclaim(const char *scratch)
{
    DIR *d = opendir(scratch);
    if (!d) return;
    struct dirent *e;
    char dir[4096], lock[4200];
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "hecnn-spill-", 12)) continue;
        const int len = snprintf(dir, sizeof dir, "%s/%s", scratch, e->d_name);
        if (len < 0 || (size_t)len >= sizeof dir) continue;
        snprintf(lock, sizeof lock, "%s/lock", dir);
        const int fd = open(lock, O_RDWR | O_CLOEXEC);
        if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0) spill_dir_remove(dir);
        if (fd >= 0) close(fd);
    }
    closedir(d);
}

/* This run's spill directory: DIR/hecnn-spill-XXXXXX, locked while the run lives. */
static hecnn_status spill_open(runner *r)
{
    const char *scratch = r->b->scratch;
    spill_reclaim(scratch);
    const size_t len = strlen(scratch) + 32;
    r->spill_dir = hecnn_alloc(len);
    if (!r->spill_dir) return hecnn_fail(HECNN_ERR_NO_MEMORY, "spill path");
    snprintf(r->spill_dir, len, "%s/hecnn-spill-XXXXXX", scratch);
    if (!mkdtemp(r->spill_dir)) {
        const hecnn_status st = hecnn_fail(HECNN_ERR_IO, "cannot create a spill directory in %s: %s", scratch, strerror(errno));
        hecnn_free(r->spill_dir);
        r->spill_dir = NULL;
        return st;
    }
    char lock[4200];
    snprintf(lock, sizeof lock, "%s/lock", r->spill_dir);
    r->spill_lock = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (r->spill_lock < 0 || flock(r->spill_lock, LOCK_EX | LOCK_NB))
        return hecnn_fail(HECNN_ERR_IO, "cannot lock %s: %s", lock, strerror(errno));
    return HECNN_OK;
}

static void spill_close(runner *r)
{
    if (!r->spill_dir) return;
    spill_dir_remove(r->spill_dir);
    if (r->spill_lock >= 0) close(r->spill_lock);
    hecnn_free(r->spill_dir);
    r->spill_dir = NULL;
}

/* ---- checkpoints ------------------------------------------------------------------------------ *
 * In the checkpoint directory: run.id (what the run computes), lock (held by the live run), the
 * stage outputs as spill files n<node>_<ct>.ct, and d<stage>_g<group>.done once a chunk's outputs
 * are all written (it holds the chunk's seconds). Files are written to a temporary name and renamed,
 * so a name always holds a whole file; the loader validates every ciphertext it reads back. */

#define CKPT_MAGIC "hecnn-checkpoint 1"

/* Is `name` one this code writes in a checkpoint directory? */
static bool ckpt_own_name(const char *name)
{
    unsigned a = 0;
    size_t b = 0, c = 0;
    char ext[8] = "", end;
    if (!strcmp(name, "run.id") || !strcmp(name, "run.id.tmp") || !strcmp(name, "lock")) return true;
    if (sscanf(name, "n%zu_%zu.%7[a-z]%c", &b, &c, ext, &end) == 3) return !strcmp(ext, "ct") || !strcmp(ext, "tmp");
    if (sscanf(name, "d%u_g%zu.%7[a-z]%c", &a, &b, ext, &end) == 3) return !strcmp(ext, "done") || !strcmp(ext, "tmp");
    return false;
}

/* Remove the checkpoint files in dir (all of them, or all but run.id and lock). */
static void ckpt_remove(const char *dir, bool all)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d)))
        if (ckpt_own_name(e->d_name) && (all || (strcmp(e->d_name, "run.id") && strcmp(e->d_name, "lock")))) {
            const int len = snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            if (len > 0 && (size_t)len < sizeof path) unlink(path);
        }
    closedir(d);
}

/* Write `text` to dir/name through a temporary file. */
static hecnn_status ckpt_write(const char *dir, const char *name, const char *text)
{
    char tmp[4300], path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return hecnn_fail(HECNN_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
    const bool ok = fputs(text, f) >= 0;
    if (fclose(f) || !ok || rename(tmp, path)) {
        const hecnn_status st = hecnn_fail(HECNN_ERR_IO, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return st;
    }
    return HECNN_OK;
}

/* Open the checkpoint directory for this run: lock it, and check (or write) run.id. A directory
 * without run.id holds nothing to trust: its stale checkpoint files go. */
static hecnn_status ckpt_open(runner *r)
{
    const batched *b = r->b;
    const char *dir = b->ckpt_dir;
    if (mkdir(dir, 0700) && errno != EEXIST) return hecnn_fail(HECNN_ERR_IO, "cannot create %s: %s", dir, strerror(errno));
    const size_t len = strlen(dir) + 1;
    if (!(r->spill_dir = hecnn_alloc(len))) return hecnn_fail(HECNN_ERR_NO_MEMORY, "checkpoint path");
    memcpy(r->spill_dir, dir, len);
    char path[4200], want[512], have[512] = "";
    snprintf(path, sizeof path, "%s/lock", dir);
    r->spill_lock = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (r->spill_lock < 0) return hecnn_fail(HECNN_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    if (flock(r->spill_lock, LOCK_EX | LOCK_NB))
        return hecnn_fail(HECNN_ERR_IO, "checkpoint directory %s is in use by another run", dir);
    snprintf(want, sizeof want, "%s\nrun %s\ngroups %zu\nstages %u\n", CKPT_MAGIC, b->ckpt_id, b->groups_in, b->stages);
    snprintf(path, sizeof path, "%s/run.id", dir);
    FILE *f = fopen(path, "r");
    if (f) {
        const size_t n = fread(have, 1, sizeof have - 1, f);
        have[n] = 0;
        fclose(f);
        if (strcmp(have, want))
            return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "checkpoint directory %s holds another run's checkpoints (other "
                                                          "keys, images or plan): remove it or name another", dir);
        return HECNN_OK;
    }
    ckpt_remove(dir, false);
    return ckpt_write(dir, "run.id", want);
}

/* Close the checkpoint directory; a completed run removes its files (and the directory, if empty). */
static void ckpt_close(runner *r, bool completed)
{
    if (!r->spill_dir) return;
    if (completed) {
        ckpt_remove(r->spill_dir, true);
        rmdir(r->spill_dir);
    }
    if (r->spill_lock >= 0) close(r->spill_lock);
    r->spill_lock = -1;
    hecnn_free(r->spill_dir);
    r->spill_dir = NULL;
}

/* Is the chunk of stage d at group g0 done? Its seconds in *seconds. */
static hecnn_status ckpt_done(const runner *r, unsigned d, size_t g0, bool *done, double *seconds)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/d%u_g%zu.done", r->spill_dir, d, g0);
    *done = false;
    FILE *f = fopen(path, "r");
    if (!f) return HECNN_OK;
    const bool ok = fscanf(f, "seconds %lf", seconds) == 1 && isfinite(*seconds) && *seconds >= 0;
    fclose(f);
    if (!ok) return hecnn_fail(HECNN_ERR_BAD_FORMAT, "checkpoint marker %s is malformed", path);
    *done = true;
    return HECNN_OK;
}

static hecnn_status ckpt_mark(const runner *r, unsigned d, size_t g0, double seconds)
{
    char name[64], text[64];
    snprintf(name, sizeof name, "d%u_g%zu.done", d, g0);
    snprintf(text, sizeof text, "seconds %.3f\n", seconds);
    return ckpt_write(r->spill_dir, name, text);
}

/* ---- the walk over the graph ------------------------------------------------------------------ */

/* The input images of groups [g0, g0 + n): the caller's ciphertexts, checked and copied. */
static hecnn_status load_input(runner *r, tensor *t, ckks_ciphertext *const *in, size_t g0, size_t n)
{
    const hecnn_plan *p = r->p;
    const hecnn_node *n0 = hecnn_graph_node(p->g, 0);
    const unsigned level = r->b->input_level;
    *t = (tensor){.c = n0->c, .lanes = 1, .h = n0->h, .w = n0->w, .gap = 1, .groups = n, .unit = 1, .level = level,
                  .scale = p->scale};
    hecnn_status st = tensor_alloc(r, t, level);
    for (size_t k = 0; k < n * n0->c && !st && !r->dry; k++) {
        const size_t i = g0 * n0->c + k;
        st = plan_check_input(p, in[i], i);
        if (!st) st = ckks_ciphertext_copy(t->ct[k], in[i]);
    }
    return st;
}

/* Groups [g0, g0 + n) of stage output `id` for the next stage: a view of the kept tensor, or read
 * back from the spill directory. */
static hecnn_status load_stage_output(runner *r, tensor *t, const tensor *kept, size_t id, size_t g0, size_t n)
{
    *t = *kept;
    t->groups = n;
    t->ct = NULL;
    t->bytes = 0;
    t->borrowed = false;
    if (!r->spill) {
        t->borrowed = true;
        t->ct = kept->ct ? kept->ct + g0 * cts(kept) : NULL;
        return HECNN_OK;
    }
    hecnn_status st = tensor_alloc(r, t, t->level);
    const double t0 = omp_get_wtime();
    for (size_t k = 0; k < n * cts(t) && !st && !r->dry; k++) st = spill_read(r, id, g0 * cts(t) + k, t->ct[k]);
    r->stats.seconds_spill += omp_get_wtime() - t0;
    return st;
}

/* Keep groups [g0, g0 + n) of stage output t (moved into *kept, or spilled), clearing t. */
static hecnn_status keep_stage_output(runner *r, tensor *kept, tensor *t, size_t id, size_t g0, size_t total_groups)
{
    hecnn_status st = HECNN_OK;
    if (!kept->c) { /* first chunk: the kept tensor's shape */
        *kept = *t;
        kept->groups = total_groups;
        kept->ct = NULL;
        kept->bytes = 0;
        kept->borrowed = false;
        if (!r->spill && !r->dry) {
            kept->ct = hecnn_calloc(total_groups * cts(t), sizeof *kept->ct);
            if (!kept->ct) st = hecnn_fail(HECNN_ERR_NO_MEMORY, "stage output of %zu ciphertexts", total_groups * cts(t));
        }
    }
    if (!r->spill) {
        /* the ciphertexts change owner: their bytes stay counted, now as the kept tensor's */
        kept->bytes += t->bytes;
        count_bytes(r, (int64_t)t->bytes);
        for (size_t k = 0; k < t->groups * cts(t) && !st && t->ct; k++) {
            kept->ct[g0 * cts(t) + k] = t->ct[k];
            t->ct[k] = NULL;
        }
    } else {
        const double t0 = omp_get_wtime();
        for (size_t k = 0; k < t->groups * cts(t) && !st && !r->dry; k++) st = spill_write(r, id, g0 * cts(t) + k, t->ct[k]);
        r->stats.seconds_spill += omp_get_wtime() - t0;
    }
    tensor_clear(r, t);
    return st;
}

/* One node on the chunk's tensors t (its inputs present). */
static hecnn_status run_node(runner *r, tensor *t, size_t id)
{
    hecnn_plan *p = r->p;
    const hecnn_node *nd = hecnn_graph_node(p->g, id);
    tensor *x = &t[nd->in[0]];
    const double unit = p->want[id] > 0 ? p->want[id] : 1.0;
    hecnn_status st = HECNN_OK;
    switch (nd->op) {
    case HECNN_OP_CONV2D: {
        if (x->pooled) return hecnn_fail(HECNN_ERR_UNSUPPORTED, "convolution after pooling");
        if (nd->k % 2 == 0 || nd->pad != nd->k / 2 || (nd->stride != 1 && nd->stride != 2))
            return hecnn_fail(HECNN_ERR_UNSUPPORTED, "node %zu: the batched packing takes odd kernels with 'same' "
                                                      "padding and strides 1 or 2", id);
        if (nd->stride == 2 && (x->h % 2 || x->w % 2))
            return hecnn_fail(HECNN_ERR_UNSUPPORTED, "node %zu: stride 2 on an odd-sized map", id);
        /* a stride-2 layer's bias waits for the merge: the merge sums four groups' slots */
        const bool merge = nd->stride == 2;
        const linear L = {.cout = nd->c, .cin = x->c, .k = nd->k, .stride = nd->stride, .pad = nd->pad,
                          .cout_weights = nd->c, .weight = nd->weight, .bias = merge ? NULL : nd->bias, .factor = x->unit / unit,
                          .unit_out = unit};
        st = run_linear(r, &t[id], x, &L);
        if (!st && merge) {
            t[id].h = x->h / 2;
            t[id].w = x->w / 2;
            st = merge_groups(r, &t[id]);
            if (!st) st = add_bias(r, &t[id], nd->bias);
        }
        return st;
    }
    case HECNN_OP_DENSE: {
        if (!x->pooled && (x->h != 1 || x->w != 1))
            return hecnn_fail(HECNN_ERR_UNSUPPORTED, "node %zu: the batched packing needs a global pool before a dense layer", id);
        /* the scores fill whole ciphertexts: the last one's spare lanes get zero weights */
        const uint32_t lanes = x->lanes ? x->lanes : 1;
        const uint32_t cout = id + 1 == hecnn_graph_node_count(p->g) ? (nd->c + lanes - 1) / lanes * lanes : nd->c;
        const linear L = {.cout = cout, .cin = x->c, .k = 1, .stride = 1, .pad = 0, .cout_weights = nd->c, .pooled = true,
                          .weight = nd->weight, .bias = nd->bias, .factor = x->unit / unit, .unit_out = unit};
        return run_linear(r, &t[id], x, &L);
    }
    case HECNN_OP_AVGPOOL:
        if (nd->k != x->h || nd->k != x->w) return hecnn_fail(HECNN_ERR_UNSUPPORTED, "node %zu: only global average pooling", id);
        return run_global_pool(r, &t[id], x);
    case HECNN_OP_ADD:
        return run_add(r, &t[id], x, &t[nd->in[1]], p->want[id]);
    case HECNN_OP_RELU:
        return run_relu_node(r, &t[id], x, id);
    default:
        return hecnn_fail(HECNN_ERR_UNSUPPORTED, "node %zu: operation %d is not supported by the batched packing", id,
                          (int)nd->op);
    }
}

/* The network stage by stage, each stage in chunks of b->chunk groups (0 = all at once; one with
 * checkpoints, each chunk of a stage with outputs then marked done, or skipped when a checkpoint
 * says it is: walked as a dry run, which reads and writes nothing). */
static hecnn_status run_graph(runner *r, ckks_ciphertext *const *in, ckks_ciphertext *const *out,
                              hecnn_progress_fn progress, void *user, const volatile int *cancel)
{
    hecnn_plan *p = r->p;
    batched *b = r->b;
    const size_t count = hecnn_graph_node_count(p->g), last = count - 1;
    tensor *t = hecnn_calloc(count, sizeof *t), *kept = hecnn_calloc(count, sizeof *kept);
    bool *output = hecnn_calloc(count, sizeof *output);
    hecnn_status st = t && kept && output ? HECNN_OK : hecnn_fail(HECNN_ERR_NO_MEMORY, "tensor table");
    for (size_t id = 0; id < count && !st; id++) output[id] = is_stage_output(p, b, id);
    r->ckpt = b->ckpt_dir && !r->dry;
    r->spill = b->spill || r->ckpt;
    const size_t chunk = r->ckpt ? 1 : b->chunk;
    if (!st && !r->dry) st = r->ckpt ? ckpt_open(r) : b->spill ? spill_open(r) : HECNN_OK;
    size_t steps = 0, done_steps = 0;
    for (unsigned d = 0; d < b->stages; d++) {
        const size_t k = chunk && chunk < b->stage_groups[d] ? chunk : b->stage_groups[d];
        size_t nodes = 0;
        for (size_t id = 0; id < count; id++) nodes += b->depth[id] == d;
        steps += nodes * ((b->stage_groups[d] + k - 1) / k);
    }
    for (unsigned d = 0; d < b->stages && !st; d++) {
        const size_t G = b->stage_groups[d], k = chunk && chunk < G ? chunk : G;
        for (size_t g0 = 0; g0 < G && !st; g0 += k) {
            const size_t n = G - g0 < k ? G - g0 : k;
            /* a chunk whose stage outputs a checkpoint holds: a dry walk (shapes, counts) */
            const bool marked = r->ckpt && d + 1 < b->stages;
            bool skip = false;
            double seconds = 0;
            if (marked && (st = ckpt_done(r, d, g0, &skip, &seconds))) break;
            if (skip) {
                r->dry = r->estimate = true;
                r->stats.chunks_resumed++;
                r->stats.seconds_resumed += seconds;
            }
            const double chunk_t0 = omp_get_wtime();
            for (size_t id = 0; id < count && !st; id++) {
                if (b->depth[id] != d) continue;
                if (cancel && *cancel) {
                    st = hecnn_fail(HECNN_ERR_CANCELLED, "run cancelled before node %zu", id);
                    break;
                }
                const hecnn_node *nd = hecnn_graph_node(p->g, id);
                /* inputs of the previous stage, read once per chunk */
                for (int j = 0; j < (nd->op == HECNN_OP_ADD ? 2 : 1) && id && !st; j++) {
                    const size_t src = nd->in[j];
                    if (b->depth[src] == d || t[src].c) continue;
                    const size_t first = 4 * g0, have = b->stage_groups[d - 1] - first;
                    st = load_stage_output(r, &t[src], &kept[src], src, first, have < 4 * n ? have : 4 * n);
                }
                const size_t boots_before = r->stats.bootstraps, rots_before = r->stats.rotations;
                if (!st) st = id ? run_node(r, t, id) : load_input(r, &t[0], in, g0, n);
                if (!st && r->dry && !r->estimate) {
                    const tensor *o = &t[id];
                    hecnn_plan_node *pn = &p->nodes[id];
                    if (g0 == 0)
                        *pn = (hecnn_plan_node){.level = o->level, .scale = o->scale, .unit = o->unit, .gap = o->gap,
                                                .groups = G, .ciphertexts = G * cts(o)};
                    pn->bootstraps += r->stats.bootstraps - boots_before;
                    pn->rotations += r->stats.rotations - rots_before;
                }
                /* free what no later node of this chunk reads */
                for (size_t j = 0; j < id && !st; j++)
                    if (p->last_use[j] == id && t[j].c) {
                        tensor_clear(r, &t[j]);
                        t[j].c = 0;
                    }
                if (!st && progress) progress(user, "node", (double)++done_steps / (double)steps);
            }
            /* the chunk's stage outputs are kept; the network's output goes to the caller */
            for (size_t id = 0; id < count && !st; id++) {
                if (b->depth[id] != d || !t[id].c) continue;
                if (output[id]) st = keep_stage_output(r, &kept[id], &t[id], id, g0, G);
                else if (id == last) {
                    if (!t[id].pooled)
                        st = hecnn_fail(HECNN_ERR_UNSUPPORTED, "the batched packing ends with a global pool and a dense layer");
                    else if (fabs(t[id].unit - 1) > 1e-12)
                        st = hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "output unit %g", t[id].unit);
                    if (r->dry && !r->estimate && g0 == 0) {
                        b->out_gap = t[id].gap;
                        b->out_groups = G;
                        p->classes = hecnn_graph_node(p->g, id)->c;
                        b->out_lanes = t[id].lanes;
                        b->out_cts = cts(&t[id]);
                    }
                    for (size_t i = 0; i < n * cts(&t[id]) && !st && !r->dry; i++)
                        st = ckks_ciphertext_copy(out[g0 * cts(&t[id]) + i], t[id].ct[i]);
                }
                tensor_clear(r, &t[id]);
                t[id].c = 0;
            }
            if (skip) r->dry = r->estimate = false;
            else if (marked && !st) st = ckpt_mark(r, d, g0, omp_get_wtime() - chunk_t0);
        }
        /* the previous stage's outputs are read (checkpoints: this stage's are all written) */
        for (size_t id = 0; id < count && d > 0; id++)
            if (b->depth[id] == d - 1 && kept[id].c) {
                for (size_t k = 0; r->ckpt && !st && k < kept[id].groups * cts(&kept[id]); k++) {
                    char name[4096];
                    spill_name(name, sizeof name, r, id, k, "ct");
                    unlink(name);
                }
                tensor_clear(r, &kept[id]);
                kept[id].c = 0;
            }
    }
    for (size_t i = 0; t && i < count; i++) tensor_clear(r, &t[i]);
    for (size_t i = 0; kept && i < count; i++) tensor_clear(r, &kept[i]);
    if (r->ckpt) ckpt_close(r, !st);
    else spill_close(r);
    hecnn_free(t);
    hecnn_free(kept);
    hecnn_free(output);
    return st;
}

/* ---- the packing's operations ------------------------------------------------------------------ */

static void batched_free(void *impl)
{
    batched *b = impl;
    for (size_t i = 0; i < b->n_masks; i++) ckks_plaintext_free(b->masks[i].pt);
    hecnn_free(b->masks);
    hecnn_free(b->depth);
    hecnn_free(b->stage_groups);
    hecnn_free(b->lanes);
    hecnn_free(b->lane_have);
    hecnn_free(b->scratch);
    hecnn_free(b->ckpt_dir);
    hecnn_free(b->ckpt_id);
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
    /* stages: a stride-2 convolution starts the next one; a sum's operands share theirs */
    const size_t count = hecnn_graph_node_count(p->g);
    b->depth = hecnn_calloc(count, sizeof *b->depth);
    if (!b->depth) return hecnn_fail(HECNN_ERR_NO_MEMORY, "plan tables");
    for (size_t id = 1; id < count; id++) {
        const hecnn_node *nd = hecnn_graph_node(p->g, id);
        b->depth[id] = b->depth[nd->in[0]] + (nd->op == HECNN_OP_CONV2D && nd->stride == 2);
        if (nd->op == HECNN_OP_ADD && b->depth[nd->in[1]] != b->depth[nd->in[0]])
            return hecnn_fail(HECNN_ERR_UNSUPPORTED, "node %zu adds maps of different resolutions", id);
        if (b->depth[id] + 1 > b->stages) b->stages = b->depth[id] + 1;
    }
    if (!b->stages) b->stages = 1;
    b->stage_groups = hecnn_calloc(b->stages, sizeof *b->stage_groups);
    if (!b->stage_groups) return hecnn_fail(HECNN_ERR_NO_MEMORY, "plan tables");
    b->stage_groups[0] = b->groups_in;
    for (unsigned d = 1; d < b->stages; d++) b->stage_groups[d] = (b->stage_groups[d - 1] + 3) / 4;
    /* lanes: a merge that finds 1 or 2 groups multiplexes channels into the rest of its
     * sub-positions, where every tensor from its stage on has channels to fill them (the scores
     * excepted: they round up to whole ciphertexts) */
    b->lanes = hecnn_calloc(b->stages, sizeof *b->lanes);
    b->lane_have = hecnn_calloc(b->stages, sizeof *b->lane_have);
    if (!b->lanes || !b->lane_have) return hecnn_fail(HECNN_ERR_NO_MEMORY, "plan tables");
    b->lanes[0] = 1;
    for (unsigned d = 1; d < b->stages; d++) {
        const size_t have = b->stage_groups[d - 1];
        const uint32_t lanes = b->lanes[d - 1] * (have == 1 || have == 2 ? 4 / (uint32_t)have : 1);
        bool fits = lanes > b->lanes[d - 1] && !opt->replicate_images;
        for (size_t id = 1; id < count && fits; id++) {
            const hecnn_node *nd = hecnn_graph_node(p->g, id);
            fits = b->depth[id] < d || id == count - 1 || nd->c % lanes == 0;
        }
        b->lane_have[d] = fits ? (uint8_t)have : 0;
        b->lanes[d] = fits ? lanes : b->lanes[d - 1];
    }
    /* the input's level: a deep input (as high as a bootstrap's output, and two more for the first
     * layer and the polynomial's normalisation) when it spares the first ReLU's bootstraps */
    b->input_level = INPUT_LEVEL;
    hecnn_status st = HECNN_OK;
    if (p->bt && ckks_bootstrapper_output_level(p->bt) + 2 <= ckks_context_max_level(p->ctx)) {
        runner shallow = {.p = p, .b = b, .dry = true, .estimate = true, .spill_lock = -1}, deep = shallow;
        st = run_graph(&shallow, NULL, NULL, NULL, NULL, NULL);
        b->input_level = ckks_bootstrapper_output_level(p->bt) + 2;
        if (!st && (run_graph(&deep, NULL, NULL, NULL, NULL, NULL) || deep.stats.bootstraps >= shallow.stats.bootstraps))
            b->input_level = INPUT_LEVEL;
    }
    p->input_level = b->input_level;
    runner r = {.p = p, .b = b, .dry = true, .spill_lock = -1};
    if (!st) st = run_graph(&r, NULL, NULL, NULL, NULL, NULL);
    p->bootstraps = r.stats.bootstraps;
    p->rotations = r.stats.rotations;
    return st;
}

static size_t batched_images_per_ciphertext(const hecnn_plan *p) { return ((const batched *)p->impl)->blocks; }

static size_t batched_input_ciphertexts(const hecnn_plan *p)
{
    return ((const batched *)p->impl)->groups_in * hecnn_graph_node(p->g, 0)->c;
}

static size_t batched_output_ciphertexts(const hecnn_plan *p)
{
    const batched *b = p->impl;
    return b->out_groups * b->out_cts;
}

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
            st = ckks_encode_real(p->ctx, pt, v, p->slots, p->slots, b->input_level, p->scale);
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
    /* class o in ciphertext o / lanes, at its lane's offset from the image's slot */
    for (size_t g = 0; g < b->out_groups && !st; g++)
        for (size_t j = 0; j < b->out_cts && !st; j++) {
            const ckks_ciphertext *ct = cts[g * b->out_cts + j];
            if (ckks_ciphertext_slots(ct) != p->slots) {
                st = hecnn_fail(HECNN_ERR_BAD_FORMAT, "score ciphertext %zu holds %zu slots, the plan %zu",
                                g * b->out_cts + j, ckks_ciphertext_slots(ct), p->slots);
                break;
            }
            st = flooded ? ckks_decrypt_flooded(p->ctx, pt, ct, sk, flood) : ckks_decrypt(p->ctx, pt, ct, sk);
            if (!st) st = ckks_decode_real(p->ctx, v, pt);
            for (size_t m = 0; m < b->out_lanes && !st; m++) {
                const size_t o = j * b->out_lanes + m;
                if (o >= p->classes) break;
                const long off = lane_offset(b, b->out_gap, (uint32_t)m);
                for (size_t i = 0; i < n; i++) {
                    size_t grp, slot;
                    output_position(b, i, &grp, &slot);
                    if (grp == g) scores[i * p->classes + o] = v[((long)slot + off) % (long)p->slots];
                }
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
    runner r = {.p = (hecnn_plan *)p, .b = p->impl, .dry = false, .ev = ev, .boot_keys = boot_keys, .spill_lock = -1};
    const hecnn_status st = run_graph(&r, in, out, progress, user, cancel);
    *stats = r.stats;
    return st;
}

static size_t batched_groups(const hecnn_plan *p) { return ((const batched *)p->impl)->groups_in; }

static hecnn_status batched_schedule(hecnn_plan *p, size_t chunk, bool spill, const char *scratch, bool keep,
                                     uint64_t *run_bytes)
{
    batched *b = p->impl;
    if (spill && !scratch) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "spilling needs a scratch directory");
    const size_t old_chunk = b->chunk;
    const bool old_spill = b->spill;
    b->chunk = chunk;
    b->spill = spill;
    runner r = {.p = p, .b = b, .dry = true, .estimate = true, .spill_lock = -1};
    hecnn_status st = run_graph(&r, NULL, NULL, NULL, NULL, NULL);
    *run_bytes = r.peak;
    if (!st && keep) {
        char *dir = NULL;
        if (spill) {
            const size_t n = strlen(scratch) + 1;
            if (!(dir = hecnn_alloc(n))) st = hecnn_fail(HECNN_ERR_NO_MEMORY, "scratch path");
            else memcpy(dir, scratch, n);
        }
        if (!st) {
            hecnn_free(b->scratch);
            b->scratch = dir;
            return HECNN_OK;
        }
    }
    b->chunk = old_chunk;
    b->spill = old_spill;
    return st;
}

static hecnn_status batched_checkpoint(hecnn_plan *p, const char *dir, const char *run_id)
{
    batched *b = p->impl;
    char *d = NULL, *id = NULL;
    if (dir) {
        if (!*dir || strlen(dir) > 3000) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "checkpoint directory name");
        if (!*run_id || strlen(run_id) > 256 || strpbrk(run_id, "\n\r"))
            return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "a run id is one line of at most 256 characters");
        const size_t nd = strlen(dir) + 1, ni = strlen(run_id) + 1;
        d = hecnn_alloc(nd);
        id = hecnn_alloc(ni);
        if (!d || !id) {
            hecnn_free(d);
            hecnn_free(id);
            return hecnn_fail(HECNN_ERR_NO_MEMORY, "checkpoint names");
        }
        memcpy(d, dir, nd);
        memcpy(id, run_id, ni);
    }
    hecnn_free(b->ckpt_dir);
    hecnn_free(b->ckpt_id);
    b->ckpt_dir = d;
    b->ckpt_id = id;
    return HECNN_OK;
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
    .schedule = batched_schedule,
    .groups = batched_groups,
    .checkpoint = batched_checkpoint,
};

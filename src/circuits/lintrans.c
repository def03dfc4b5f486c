/* Plaintext-matrix x encrypted-vector products by diagonals, baby-step giant-step:
 *   M v = sum_g rot_g( sum_j rot_-g(d_(g+j)) * rot_j(v) ),
 * g over multiples of the baby step n1, j in [0, n1). The baby rotations of v share one
 * key-switching decomposition (hoisted); each giant step costs one rotation. The planner picks
 * n1 by a cost model and lists exactly the rotations it implies. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "circuits/circuits_internal.h"
#include "circuits/dft.h"
#include "circuits/lintrans_internal.h"
#include "util/alloc.h"

static size_t mod_slots(long long k, size_t n)
{
    long long r = k % (long long)n;
    return (size_t)(r < 0 ? r + (long long)n : r);
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

double lt_plan_cost(const size_t *offs, size_t count, size_t n1, size_t *n_babies, size_t *n_giants)
{
    /* offsets sorted; babies = distinct k mod n1, giants = distinct k - k mod n1 */
    size_t nb = 0, ng = 0;
    bool *seen_b = hecnn_calloc(n1, 1);
    if (!seen_b) return INFINITY;
    size_t last_g = (size_t)-1;
    for (size_t i = 0; i < count; i++) {
        size_t j = offs[i] % n1, g = offs[i] - j;
        if (!seen_b[j]) {
            seen_b[j] = true;
            if (j) nb++;
        }
        if (g != last_g) { /* offsets sorted, so giants come in order */
            if (g) ng++;
            last_g = g;
        }
    }
    hecnn_free(seen_b);
    if (n_babies) *n_babies = nb;
    if (n_giants) *n_giants = ng;
    /* a hoisted baby rotation costs about half a rotation; a product by a diagonal little */
    return 0.5 * (double)nb + (double)ng + 0.03 * (double)count;
}

size_t lt_choose_baby_step(const size_t *offs, size_t count, size_t slots)
{
    size_t best = 1;
    double best_cost = INFINITY;
    for (size_t n1 = 1; n1 <= slots; n1 <<= 1) {
        double c = lt_plan_cost(offs, count, n1, NULL, NULL);
        if (c < best_cost - 1e-9) {
            best_cost = c;
            best = n1;
        }
    }
    return best;
}

static void lintrans_release(ckks_lintrans *lt)
{
    if (!lt) return;
    for (size_t i = 0; i < lt->n_diags; i++) {
        if (lt->pt) ckks_plaintext_free(lt->pt[i]);
        if (lt->coef) hecnn_free(lt->coef[i]);
    }
    hecnn_free(lt->pt);
    hecnn_free(lt->coef);
    hecnn_free(lt->off);
    hecnn_free(lt->babies);
    hecnn_free(lt->giants);
    hecnn_free(lt);
}

void ckks_lintrans_free(ckks_lintrans *lt) { lintrans_release(lt); }

hecnn_status lt_build(ckks_lintrans **out, const ckks_context *ctx, size_t slots, size_t n_diags, const size_t *offs,
                      const double complex *const *diags, const long double complex *const *ldiags, unsigned level,
                      double scale, size_t baby_step)
{
    /* offs: distinct, in [0, slots), any order */
    ckks_lintrans *lt = hecnn_calloc(1, sizeof *lt);
    if (!lt) return hecnn_fail(HECNN_ERR_NO_MEMORY, "linear transform");
    lt->ctx = ctx;
    lt->slots = slots;
    lt->level = level;
    lt->scale = scale;
    lt->n_diags = n_diags;
    lt->off = hecnn_alloc((n_diags ? n_diags : 1) * sizeof *lt->off);
    lt->pt = hecnn_calloc(n_diags ? n_diags : 1, sizeof *lt->pt);
    long double complex *rot = hecnn_alloc(slots * sizeof *rot);
    double complex *drot = hecnn_alloc(slots * sizeof *drot);
    size_t *order = hecnn_alloc((n_diags ? n_diags : 1) * sizeof *order);
    long double complex *tw = dft_twiddles_all(slots);
    hecnn_status st = HECNN_OK;
    if (!lt->off || !lt->pt || !rot || !drot || !order || !tw) {
        st = hecnn_fail(HECNN_ERR_NO_MEMORY, "linear transform");
        goto fail;
    }
    /* sort the diagonals by offset (stable grouping by giant step) */
    memcpy(order, offs, n_diags * sizeof *order);
    qsort(order, n_diags, sizeof *order, cmp_size);
    for (size_t i = 1; i < n_diags; i++)
        if (order[i] == order[i - 1]) {
            st = hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "offset %zu given twice (mod slots)", order[i]);
            goto fail;
        }
    lt->n1 = baby_step ? baby_step : lt_choose_baby_step(order, n_diags, slots);
    if (!is_pow2(lt->n1) || lt->n1 > slots) {
        st = hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "baby step %zu: need a power of two <= slots", lt->n1);
        goto fail;
    }
    /* babies and giants */
    lt->babies = hecnn_calloc(lt->n1, sizeof *lt->babies);
    lt->giants = hecnn_calloc(n_diags ? n_diags : 1, sizeof *lt->giants);
    if (!lt->babies || !lt->giants) {
        st = hecnn_fail(HECNN_ERR_NO_MEMORY, "linear transform plan");
        goto fail;
    }
    bool *bseen = hecnn_calloc(lt->n1, 1);
    if (!bseen) {
        st = hecnn_fail(HECNN_ERR_NO_MEMORY, "linear transform plan");
        goto fail;
    }
    for (size_t i = 0; i < n_diags; i++) {
        size_t j = order[i] % lt->n1, g = order[i] - j;
        if (!bseen[j]) {
            bseen[j] = true;
        }
        if (!lt->n_giants || lt->giants[lt->n_giants - 1] != g) lt->giants[lt->n_giants++] = g;
    }
    for (size_t j = 0; j < lt->n1; j++)
        if (bseen[j]) lt->babies[lt->n_babies++] = j;
    hecnn_free(bseen);

    /* encode rot_-g(d_k) at (level, scale): compact signed coefficients for the double-hoisted
     * path when they fit in 63 bits, else engine plaintexts for the generic one */
    lt->coef = hecnn_calloc(n_diags ? n_diags : 1, sizeof *lt->coef);
    if (!lt->coef) {
        st = hecnn_fail(HECNN_ERR_NO_MEMORY, "linear transform");
        goto fail;
    }
    bool compact = true;
    for (size_t i = 0; i < n_diags && !st; i++) {
        size_t k = order[i], g = k - k % lt->n1;
        size_t idx = 0;
        while (offs[idx] != k) idx++;
        for (size_t t = 0; t < slots; t++)
            rot[t] = ldiags ? ldiags[idx][(t + slots - g) % slots] : (long double complex)diags[idx][(t + slots - g) % slots];
        lt->off[i] = k;
        if (compact) {
            lt->coef[i] = hecnn_alloc(2 * slots * sizeof **lt->coef);
            int rc = lt->coef[i] ? lt_compact_encode(lt->coef[i], rot, slots, scale, tw) : -1;
            if (rc < 0) st = hecnn_fail(HECNN_ERR_NO_MEMORY, "diagonal");
            if (rc > 0) compact = false;
        }
        if (!compact) {
            for (size_t t = 0; t < slots; t++) drot[t] = (double complex)rot[t];
            st = ckks_plaintext_new(&lt->pt[i], ctx);
            if (!st) st = ckks_encode(ctx, lt->pt[i], drot, slots, slots, level, scale);
        }
    }
    if (!st && !compact) { /* the generic path encodes every diagonal */
        for (size_t i = 0; i < n_diags && !st; i++) {
            hecnn_free(lt->coef[i]);
            lt->coef[i] = NULL;
            if (lt->pt[i]) continue;
            size_t k = order[i], g = k - k % lt->n1, idx = 0;
            while (offs[idx] != k) idx++;
            for (size_t t = 0; t < slots; t++)
                drot[t] = ldiags ? (double complex)ldiags[idx][(t + slots - g) % slots] : diags[idx][(t + slots - g) % slots];
            st = ckks_plaintext_new(&lt->pt[i], ctx);
            if (!st) st = ckks_encode(ctx, lt->pt[i], drot, slots, slots, level, scale);
        }
        hecnn_free(lt->coef);
        lt->coef = NULL;
    } else if (!st) {
        hecnn_free(lt->pt);
        lt->pt = NULL;
    }
    if (st) goto fail;
    hecnn_free(rot);
    hecnn_free(drot);
    hecnn_free(order);
    hecnn_free(tw);
    *out = lt;
    return HECNN_OK;
fail:
    hecnn_free(rot);
    hecnn_free(drot);
    hecnn_free(order);
    hecnn_free(tw);
    lintrans_release(lt);
    return st;
}

hecnn_status ckks_lintrans_new(ckks_lintrans **out, const ckks_context *ctx, const ckks_lintrans_desc *d)
{
    if (!out || !ctx || !d) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    size_t slots = d->slots ? d->slots : ckks_context_max_slots(ctx);
    if (!is_pow2(slots) || slots > ckks_context_max_slots(ctx))
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "slots %zu: need a power of two <= N/2", slots);
    if (d->level > ckks_context_max_level(ctx))
        return hecnn_fail(HECNN_ERR_LEVEL_MISMATCH, "level %u above the top %u", d->level, ckks_context_max_level(ctx));
    if (d->n_diags && (!d->offsets || !d->diags)) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL diagonals");
    if (d->n_diags > slots) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "%zu diagonals for %zu slots", d->n_diags, slots);
    for (size_t i = 0; i < d->n_diags; i++)
        if (!d->diags[i]) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "diagonal %zu is NULL", i);
    double scale = d->scale ? d->scale : (double)ckks_context_q(ctx, d->level);
    if (!(scale > 0) || !isfinite(scale)) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "scale %g", scale);
    size_t *offs = hecnn_alloc((d->n_diags ? d->n_diags : 1) * sizeof *offs);
    if (!offs) return hecnn_fail(HECNN_ERR_NO_MEMORY, "offsets");
    for (size_t i = 0; i < d->n_diags; i++) offs[i] = mod_slots(d->offsets[i], slots);
    hecnn_status st = lt_build(out, ctx, slots, d->n_diags, offs, d->diags, NULL, d->level, scale, d->baby_step);
    hecnn_free(offs);
    return st;
}

hecnn_status ckks_lintrans_from_matrix(ckks_lintrans **out, const ckks_context *ctx, const double complex *m,
                                       size_t slots, unsigned level, double scale)
{
    if (!out || !ctx || !m) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    if (!slots) slots = ckks_context_max_slots(ctx);
    if (!is_pow2(slots) || slots > ckks_context_max_slots(ctx))
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "slots %zu: need a power of two <= N/2", slots);
    double complex *store = hecnn_alloc(slots * slots * sizeof *store);
    const double complex **dp = hecnn_alloc(slots * sizeof *dp);
    int *offs = hecnn_alloc(slots * sizeof *offs);
    if (!store || !dp || !offs) {
        hecnn_free(store);
        hecnn_free(dp);
        hecnn_free(offs);
        return hecnn_fail(HECNN_ERR_NO_MEMORY, "matrix diagonals");
    }
    size_t nd = 0;
    for (size_t k = 0; k < slots; k++) {
        double complex *dk = store + nd * slots;
        bool nz = false;
        /* out[j] = sum_k M[j][(j+k) mod n] in[(j+k) mod n] */
        for (size_t j = 0; j < slots; j++) {
            dk[j] = m[j * slots + (j + k) % slots];
            nz |= dk[j] != 0;
        }
        if (nz) {
            dp[nd] = dk;
            offs[nd++] = (int)k;
        }
    }
    ckks_lintrans_desc d = {.slots = slots, .n_diags = nd, .offsets = offs, .diags = dp, .level = level, .scale = scale};
    hecnn_status st = ckks_lintrans_new(out, ctx, &d);
    hecnn_free(store);
    hecnn_free(dp);
    hecnn_free(offs);
    return st;
}

unsigned ckks_lintrans_level(const ckks_lintrans *lt) { return lt->level; }
double ckks_lintrans_scale(const ckks_lintrans *lt) { return lt->scale; }
size_t ckks_lintrans_baby_step(const ckks_lintrans *lt) { return lt->n1; }

size_t ckks_lintrans_rotations(const ckks_lintrans *lt, int *out, size_t cap)
{
    /* union of babies j != 0 and giants g != 0, ascending */
    size_t count = 0, bi = 0, gi = 0;
    while (bi < lt->n_babies || gi < lt->n_giants) {
        size_t b = bi < lt->n_babies ? lt->babies[bi] : (size_t)-1;
        size_t g = gi < lt->n_giants ? lt->giants[gi] : (size_t)-1;
        size_t v = b < g ? b : g;
        if (b == v) bi++;
        if (g == v) gi++;
        if (v == 0) continue;
        if (count < cap && out) out[count] = (int)v;
        count++;
    }
    return count;
}

size_t ckks_lintrans_galois_elements(const ckks_lintrans *lt, uint64_t *out, size_t cap)
{
    size_t n = ckks_lintrans_rotations(lt, NULL, 0);
    int *r = hecnn_alloc((n ? n : 1) * sizeof *r);
    if (!r) return 0;
    ckks_lintrans_rotations(lt, r, n);
    uint64_t *g = hecnn_alloc((n ? n : 1) * sizeof *g);
    if (!g) {
        hecnn_free(r);
        return 0;
    }
    for (size_t i = 0; i < n; i++) g[i] = ckks_galois_element_rotation(lt->ctx, r[i]);
    /* ascending by element */
    for (size_t i = 1; i < n; i++) {
        uint64_t v = g[i];
        size_t j = i;
        while (j > 0 && g[j - 1] > v) {
            g[j] = g[j - 1];
            j--;
        }
        g[j] = v;
    }
    for (size_t i = 0; i < n && i < cap && out; i++) out[i] = g[i];
    hecnn_free(r);
    hecnn_free(g);
    return n;
}

hecnn_status ckks_lintrans_apply(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *in,
                                 const ckks_lintrans *lt)
{
    if (!ev || !out || !in || !lt) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    const ckks_context *ctx = ckks_evaluator_context(ev);
    if (ckks_context_param_id(ctx) != ckks_context_param_id(lt->ctx))
        return hecnn_fail(HECNN_ERR_PARAMS_MISMATCH, "transform of another context");
    if (lt->coef && ckks_ciphertext_degree(in) == 1) return lt_apply_fast(ev, out, in, lt);
    return lt_apply_generic(ev, out, in, lt);
}

hecnn_status lt_apply_generic(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *in,
                              const ckks_lintrans *lt)
{
    const ckks_context *ctx = lt->ctx;
    hecnn_status st = HECNN_OK;
    const size_t nb = lt->n_babies;
    ckks_ciphertext **rot = hecnn_calloc(lt->n1, sizeof *rot);
    ckks_ciphertext **bout = hecnn_calloc(nb ? nb : 1, sizeof *bout);
    int *steps = hecnn_alloc((nb ? nb : 1) * sizeof *steps);
    ckks_ciphertext *src = NULL, *acc = NULL, *tmp = NULL, *res = NULL;
    if (!rot || !bout || !steps) {
        st = hecnn_fail(HECNN_ERR_NO_MEMORY, "linear transform buffers");
        goto done;
    }
    if ((st = ckks_ciphertext_new(&src, ctx)) || (st = ckks_ciphertext_new(&acc, ctx)) ||
        (st = ckks_ciphertext_new(&tmp, ctx)) || (st = ckks_ciphertext_new(&res, ctx)))
        goto done;
    if (ckks_ciphertext_level(in) > lt->level) st = ckks_drop_level(ev, src, in, lt->level);
    else st = ckks_ciphertext_copy(src, in);
    if (st) goto done;
    for (size_t i = 0; i < nb && !st; i++) {
        st = ckks_ciphertext_new(&bout[i], ctx);
        steps[i] = (int)lt->babies[i];
        rot[lt->babies[i]] = bout[i];
    }
    if (!st && nb) st = ckks_rotate_hoisted(ev, bout, src, steps, nb);
    bool have_res = false;
    size_t di = 0;
    for (size_t gi = 0; gi < lt->n_giants && !st; gi++) {
        const size_t g = lt->giants[gi];
        bool have_acc = false;
        for (; di < lt->n_diags && lt->off[di] - lt->off[di] % lt->n1 == g && !st; di++) {
            const size_t j = lt->off[di] % lt->n1;
            ckks_ciphertext *dst = have_acc ? tmp : acc;
            st = ckks_mul_plain(ev, dst, rot[j], lt->pt[di]);
            if (!st && have_acc) st = ckks_add(ev, acc, acc, tmp);
            have_acc = true;
        }
        if (st || !have_acc) continue;
        if (g) st = ckks_rotate(ev, acc, acc, (int)g);
        if (st) break;
        if (have_res) st = ckks_add(ev, res, res, acc);
        else st = ckks_ciphertext_copy(res, acc);
        have_res = true;
    }
    if (!st && !have_res) { /* no diagonals: zero at the output scale */
        st = ckks_mul_const(ev, res, src, 0.0, lt->scale);
    }
    if (!st) st = ckks_ciphertext_copy(out, res);
done:
    for (size_t i = 0; bout && i < nb; i++) ckks_ciphertext_free(bout[i]);
    hecnn_free(bout);
    hecnn_free(rot);
    hecnn_free(steps);
    ckks_ciphertext_free(src);
    ckks_ciphertext_free(acc);
    ckks_ciphertext_free(tmp);
    ckks_ciphertext_free(res);
    return st;
}

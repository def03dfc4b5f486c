/* Prepared weights bound to a plan, runs with them and runs over many batches
 * (include/hecnn/plan.h). Only the rows packing keeps its weights apart from the plan
 * (src/nn/rows.c); the batched one encodes them into the plan and takes NULL weights. */
#include <omp.h>
#include <string.h>

#include "nn/plan_internal.h"
#include "nn/rows_internal.h"
#include "util/alloc.h"
#include "util/error.h"

static hecnn_status weights_of(hecnn_plan_weights **out, hecnn_mnist_prepared *prep, hecnn_status st)
{
    if (!st && !(*out = hecnn_calloc(1, sizeof **out))) st = hecnn_fail(HECNN_ERR_NO_MEMORY, "weights");
    if (st) {
        hecnn_mnist_prepared_free(prep);
        return st;
    }
    **out = (hecnn_plan_weights){.layout = HECNN_LAYOUT_ROWS, .prep = prep};
    return HECNN_OK;
}

static hecnn_status rows_only(const hecnn_plan *p)
{
    if (p->layout != HECNN_LAYOUT_ROWS)
        return hecnn_fail(HECNN_ERR_UNSUPPORTED, "the %s packing keeps its weights in the plan: run it with NULL weights",
                          hecnn_plan_layout_name(p->layout));
    return HECNN_OK;
}

hecnn_status hecnn_plan_weights_plain(hecnn_plan_weights **out, const hecnn_plan *p)
{
    if (!out || !p) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    hecnn_status st = rows_only(p);
    if (st) return st;
    hecnn_mnist_prepared *prep = NULL;
    st = rows_weights_plain(&prep, p);
    return weights_of(out, prep, st);
}

hecnn_status hecnn_plan_weights_encrypt(hecnn_plan_weights **out, const hecnn_plan *p, const ckks_public_key *pk)
{
    if (!out || !p || !pk) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    hecnn_status st = rows_only(p);
    if (st) return st;
    hecnn_mnist_prepared *prep = NULL;
    st = rows_weights_encrypt(&prep, p, pk);
    return weights_of(out, prep, st);
}

hecnn_status hecnn_plan_weights_load(hecnn_plan_weights **out, const hecnn_plan *p, FILE *f)
{
    if (!out || !p || !f) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    hecnn_status st = rows_only(p);
    if (st) return st;
    hecnn_mnist_prepared *prep = NULL;
    st = rows_weights_load(&prep, p, f);
    return weights_of(out, prep, st);
}

void hecnn_plan_weights_free(hecnn_plan_weights *w)
{
    if (!w) return;
    hecnn_mnist_prepared_free(w->prep);
    hecnn_free(w);
}

bool hecnn_plan_weights_encrypted(const hecnn_plan_weights *w) { return w && w->prep->mode == HECNN_MNIST_ENCRYPTED_MODEL; }

size_t hecnn_plan_weights_ciphertexts(const hecnn_plan_weights *w) { return w ? hecnn_mnist_prepared_ciphertexts(w->prep) : 0; }

hecnn_status hecnn_plan_weights_save(const hecnn_plan_weights *w, FILE *f)
{
    if (!w || !f) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    return hecnn_mnist_prepared_save(w->prep, f);
}

/* The checks of hecnn_plan_run, and the evaluator. */
static hecnn_status run_setup(const hecnn_plan *p, const hecnn_plan_weights *w, const ckks_eval_keys *keys,
                              const ckks_boot_keys *boot_keys, ckks_evaluator **ev)
{
    if (w) {
        if (w->layout != p->layout) return rows_only(p);
        hecnn_status st = rows_weights_check(p, w->prep);
        if (st) return st;
    }
    if (p->bootstraps && !boot_keys) return hecnn_fail(HECNN_ERR_MISSING_KEY, "the plan bootstraps: bootstrapping keys needed");
    hecnn_status st = hecnn_plan_check_keys(p, keys);
    return st ? st : ckks_evaluator_new(ev, p->ctx, keys);
}

hecnn_status hecnn_plan_run_with(const hecnn_plan *p, const hecnn_plan_weights *w, const ckks_eval_keys *keys,
                                 const ckks_boot_keys *boot_keys, ckks_ciphertext *const *in, ckks_ciphertext *const *out,
                                 hecnn_progress_fn progress, void *user, const volatile int *cancel, hecnn_run_stats *stats)
{
    if (!w) return hecnn_plan_run(p, keys, boot_keys, in, out, progress, user, cancel, stats);
    if (!p || !keys || !in || !out) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    ckks_evaluator *ev = NULL;
    hecnn_status st = run_setup(p, w, keys, boot_keys, &ev);
    hecnn_run_stats s = {0};
    if (!st) st = rows_exec(p, w->prep, ev, in, out, progress, user, cancel, &s);
    if (stats) *stats = s;
    ckks_evaluator_free(ev);
    return st;
}

/* Progress over all batches: batch b's fraction d is (b + d) / batches of the whole. */
typedef struct batch_progress {
    hecnn_progress_fn fn;
    void *user;
    size_t batch, batches;
} batch_progress;

static void on_progress(void *user, const char *stage, double done)
{
    const batch_progress *bp = user;
    if (bp->fn) bp->fn(bp->user, stage, ((double)bp->batch + done) / (double)bp->batches);
}

static void add_stats(hecnn_run_stats *to, const hecnn_run_stats *s)
{
    to->seconds_linear += s->seconds_linear;
    to->seconds_activation += s->seconds_activation;
    to->seconds_bootstrap += s->seconds_bootstrap;
    to->seconds_other += s->seconds_other;
    to->seconds_spill += s->seconds_spill;
    to->bootstraps += s->bootstraps;
    to->rotations += s->rotations;
}

hecnn_status hecnn_plan_run_batches(const hecnn_plan *p, const hecnn_plan_weights *w, const ckks_eval_keys *keys,
                                    const ckks_boot_keys *boot_keys, size_t batches, hecnn_batch_io_fn read,
                                    hecnn_batch_io_fn write, void *io, hecnn_progress_fn progress, void *user,
                                    const volatile int *cancel, hecnn_run_stats *stats)
{
    if (!p || !keys || !read || !write) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    ckks_evaluator *ev = NULL;
    hecnn_status st = run_setup(p, w, keys, boot_keys, &ev);
    if (!st && cancel && *cancel) st = hecnn_fail(HECNN_ERR_CANCELLED, "cancelled before the first batch");
    const bool rows = p->layout == HECNN_LAYOUT_ROWS;
    const size_t n_in = hecnn_plan_input_ciphertexts(p), n_out = hecnn_plan_output_ciphertexts(p);
    ckks_ciphertext **in = hecnn_calloc(n_in, sizeof *in), **out = hecnn_calloc(n_out, sizeof *out);
    if (!st && (!in || !out)) st = hecnn_fail(HECNN_ERR_NO_MEMORY, "ciphertexts");
    for (size_t i = 0; !st && i < n_in; i++) st = ckks_ciphertext_new(&in[i], p->ctx);
    for (size_t i = 0; !st && i < n_out; i++) st = ckks_ciphertext_new(&out[i], p->ctx);
    hecnn_run_stats total = {0};
    /* rows: the weights once for all batches (the plan's plain ones when w is NULL) */
    hecnn_mnist_prepared *own = NULL, run_w;
    const hecnn_mnist_prepared *base = NULL;
    bool expanded = false;
    if (!st && rows) {
        const double t0 = omp_get_wtime();
        if (!w) st = rows_weights_plain(&own, p);
        base = w ? w->prep : own;
        if (!st && batches > 1) {
            st = rows_expand(&run_w, base, ev);
            expanded = !st;
        } else if (!st) {
            run_w = *base;
        }
        total.seconds_other += omp_get_wtime() - t0;
    }
    for (size_t b = 0; !st && b < batches; b++) {
        if (cancel && *cancel) {
            st = hecnn_fail(HECNN_ERR_CANCELLED, "cancelled before batch %zu of %zu", b, batches);
            break;
        }
        if ((st = read(io, b, in))) break;
        batch_progress bp = {.fn = progress, .user = user, .batch = b, .batches = batches};
        hecnn_run_stats s = {0};
        st = rows ? rows_exec(p, &run_w, ev, in, out, on_progress, &bp, cancel, &s)
                  : p->ops->run(p, ev, boot_keys, in, out, on_progress, &bp, cancel, &s);
        add_stats(&total, &s);
        if (!st) st = write(io, b, out);
    }
    if (expanded) rows_unexpand(&run_w, base);
    hecnn_mnist_prepared_free(own);
    for (size_t i = 0; in && i < n_in; i++) ckks_ciphertext_free(in[i]);
    for (size_t i = 0; out && i < n_out; i++) ckks_ciphertext_free(out[i]);
    hecnn_free(in);
    hecnn_free(out);
    ckks_evaluator_free(ev);
    if (stats) *stats = total;
    return st;
}

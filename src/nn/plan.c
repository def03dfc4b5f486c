/* Plans (include/hecnn/plan.h): the packing-independent half — the graph's units and ReLU
 * polynomials, the key list, the per-node records — and the dispatch to the chosen packing
 * (src/nn/plan_internal.h). */
#include <math.h>
#include <string.h>

#include "nn/plan_internal.h"
#include "hecnn/circuits.h"
#include "util/alloc.h"
#include "util/error.h"

static const packing_ops *packing_of(hecnn_plan_layout layout)
{
    switch (layout) {
    case HECNN_LAYOUT_AUTO:
    case HECNN_LAYOUT_BATCHED: return &batched_packing;
    case HECNN_LAYOUT_SINGLE: return &single_packing;
    case HECNN_LAYOUT_ROWS: return &rows_packing;
    default: return NULL;
    }
}

const char *hecnn_plan_layout_name(hecnn_plan_layout layout)
{
    switch (layout) {
    case HECNN_LAYOUT_AUTO: return "auto";
    case HECNN_LAYOUT_BATCHED: return "batched";
    case HECNN_LAYOUT_SINGLE: return "single";
    case HECNN_LAYOUT_ROWS: return "rows";
    }
    return "unknown";
}

hecnn_status plan_need_key(hecnn_plan *p, uint64_t galois, unsigned level)
{
    for (size_t i = 0; i < p->n_keys; i++)
        if (p->keys[i].galois == galois) {
            if (p->keys[i].max_level < level) p->keys[i].max_level = level;
            return HECNN_OK;
        }
    if (p->n_keys == p->cap_keys) {
        const size_t cap = p->cap_keys ? 2 * p->cap_keys : 32;
        ckks_key_need *k = hecnn_alloc(cap * sizeof *k);
        if (!k) return hecnn_fail(HECNN_ERR_NO_MEMORY, "key list");
        if (p->n_keys) memcpy(k, p->keys, p->n_keys * sizeof *k);
        hecnn_free(p->keys);
        p->keys = k;
        p->cap_keys = cap;
    }
    p->keys[p->n_keys++] = (ckks_key_need){.galois = galois, .max_level = level};
    return HECNN_OK;
}

hecnn_status plan_check_input(const hecnn_plan *p, const ckks_ciphertext *ct, size_t i)
{
    if (ckks_ciphertext_level(ct) != p->input_level)
        return hecnn_fail(HECNN_ERR_LEVEL_MISMATCH, "input ciphertext %zu at level %u, the plan takes %u", i,
                          ckks_ciphertext_level(ct), p->input_level);
    if (fabs(ckks_ciphertext_scale(ct) / p->scale - 1) > 1e-9)
        return hecnn_fail(HECNN_ERR_SCALE_MISMATCH, "input ciphertext %zu at scale 2^%.2f, the plan takes 2^%.2f", i,
                          log2(ckks_ciphertext_scale(ct)), log2(p->scale));
    if (ckks_ciphertext_slots(ct) != p->slots)
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "input ciphertext %zu holds %zu slots, the plan %zu", i,
                          ckks_ciphertext_slots(ct), p->slots);
    return HECNN_OK;
}

void hecnn_plan_free(hecnn_plan *p)
{
    if (!p) return;
    if (p->ops && p->impl) p->ops->free(p->impl);
    for (size_t i = 0; p->poly && i < hecnn_graph_node_count(p->g); i++) ckks_poly_free(p->poly[i]);
    hecnn_free(p->poly);
    hecnn_free(p->keys);
    hecnn_free(p->want);
    hecnn_free(p->last_use);
    hecnn_free(p->nodes);
    hecnn_free(p);
}

/* The unit each node should produce: a ReLU wants its range from its input, a sum passes what its
 * consumer wants on to both operands; linear layers then produce it directly. */
static void plan_units(hecnn_plan *p)
{
    const size_t count = hecnn_graph_node_count(p->g);
    for (size_t id = count; id-- > 1;) {
        const hecnn_node *nd = hecnn_graph_node(p->g, id);
        if (nd->op == HECNN_OP_RELU && p->want[nd->in[0]] == 0) p->want[nd->in[0]] = nd->range;
        if (nd->op == HECNN_OP_ADD && p->want[id] > 0)
            for (int k = 0; k < 2; k++)
                if (p->want[nd->in[k]] == 0) p->want[nd->in[k]] = p->want[id];
    }
    if (p->want[count - 1] == 0) p->want[count - 1] = 1;
}

hecnn_status hecnn_plan_new(hecnn_plan **out, const hecnn_graph *g, const ckks_context *ctx, const ckks_bootstrapper *bt,
                            const hecnn_plan_options *opt)
{
    if (!out || !g || !ctx || !opt) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    if (!opt->batch) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "batch of 0 images");
    const packing_ops *ops = packing_of(opt->layout);
    if (!ops)
        return hecnn_fail(HECNN_ERR_UNSUPPORTED, "layout %s (%d) is not available", hecnn_plan_layout_name(opt->layout),
                          (int)opt->layout);
    hecnn_plan *p = hecnn_calloc(1, sizeof *p);
    if (!p) return hecnn_fail(HECNN_ERR_NO_MEMORY, "plan");
    const size_t count = hecnn_graph_node_count(g);
    *p = (hecnn_plan){.g = g, .ctx = ctx, .bt = bt, .ops = ops, .batch = opt->batch,
                      .layout = opt->layout == HECNN_LAYOUT_AUTO ? HECNN_LAYOUT_BATCHED : opt->layout,
                      .scale = ckks_context_default_scale(ctx)};
    p->want = hecnn_calloc(count, sizeof *p->want);
    p->last_use = hecnn_calloc(count, sizeof *p->last_use);
    p->poly = hecnn_calloc(count, sizeof *p->poly);
    p->nodes = hecnn_calloc(count, sizeof *p->nodes);
    hecnn_status st = p->want && p->last_use && p->poly && p->nodes ? HECNN_OK : hecnn_fail(HECNN_ERR_NO_MEMORY, "plan tables");
    for (size_t id = 1; id < count && !st; id++) {
        const hecnn_node *nd = hecnn_graph_node(g, id);
        p->last_use[nd->in[0]] = id;
        if (nd->op == HECNN_OP_ADD) p->last_use[nd->in[1]] = id;
        if (nd->op == HECNN_OP_BATCHNORM) st = hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "node %zu: fold batch norms first", id);
        if (nd->op == HECNN_OP_RELU) {
            if (!(nd->range > 0) || !nd->coeff)
                st = hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "ReLU node %zu is not calibrated (range and approximation)", id);
            else st = ckks_poly_new(&p->poly[id], nd->coeff, nd->degree, -1.0, 1.0);
        }
    }
    if (!st) plan_units(p);
    /* AUTO: a batch of one image takes the single layout where the graph fits it (one ciphertext
     * per image: the fewest bootstraps), else the batched one; a grid asks for the batched one */
    if (!st && opt->layout == HECNN_LAYOUT_AUTO && opt->batch == 1 && !opt->grid) {
        p->ops = &single_packing;
        p->layout = HECNN_LAYOUT_SINGLE;
        if (!(st = single_packing.build(p, opt))) {
            *out = p;
            return HECNN_OK;
        }
        if (st == HECNN_ERR_NO_MEMORY) {
            hecnn_plan_free(p);
            return st;
        }
        if (p->impl) single_packing.free(p->impl);
        p->impl = NULL;
        p->n_keys = 0;
        memset(p->nodes, 0, count * sizeof *p->nodes);
        p->bootstraps = p->rotations = p->classes = p->slots = 0;
        p->input_level = 0;
        p->ops = ops;
        p->layout = HECNN_LAYOUT_BATCHED;
        st = HECNN_OK;
    }
    if (!st) st = ops->build(p, opt);
    if (st) {
        hecnn_plan_free(p);
        return st;
    }
    *out = p;
    return HECNN_OK;
}

size_t hecnn_plan_boot_slots(const hecnn_graph *g, const hecnn_plan_options *opt, size_t max_slots)
{
    if (!g || !opt || !hecnn_graph_node_count(g)) return max_slots;
    const bool single = opt->layout == HECNN_LAYOUT_SINGLE ||
                        (opt->layout == HECNN_LAYOUT_AUTO && opt->batch == 1 && !opt->grid);
    const size_t need = single ? single_slots_needed(g) : 0;
    return need && need < max_slots ? need : max_slots;
}

hecnn_plan_layout hecnn_plan_layout_of(const hecnn_plan *p) { return p->layout; }
size_t hecnn_plan_batch(const hecnn_plan *p) { return p->batch; }
size_t hecnn_plan_images_per_ciphertext(const hecnn_plan *p) { return p->ops->images_per_ciphertext(p); }
size_t hecnn_plan_input_ciphertexts(const hecnn_plan *p) { return p->ops->input_ciphertexts(p); }
size_t hecnn_plan_output_ciphertexts(const hecnn_plan *p) { return p->ops->output_ciphertexts(p); }
unsigned hecnn_plan_input_level(const hecnn_plan *p) { return p->input_level; }
size_t hecnn_plan_classes(const hecnn_plan *p) { return p->classes; }
size_t hecnn_plan_bootstraps(const hecnn_plan *p) { return p->bootstraps; }
size_t hecnn_plan_rotations(const hecnn_plan *p) { return p->rotations; }
size_t hecnn_plan_bytes(const hecnn_plan *p) { return p->ops->bytes(p); }

hecnn_status hecnn_plan_node_info(const hecnn_plan *p, size_t id, hecnn_plan_node *out)
{
    if (!p || !out) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    if (id >= hecnn_graph_node_count(p->g)) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "node %zu of %zu", id, hecnn_graph_node_count(p->g));
    *out = p->nodes[id];
    return HECNN_OK;
}

size_t hecnn_plan_key_needs(const hecnn_plan *p, ckks_key_need *out, size_t cap)
{
    for (size_t i = 0; i < p->n_keys && i < cap; i++) out[i] = p->keys[i];
    return p->n_keys;
}

hecnn_status hecnn_plan_keys_generate(ckks_eval_keys **out, const hecnn_plan *p, const ckks_secret_key *sk)
{
    if (!out || !p || !sk) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    ckks_eval_keys *keys = NULL;
    hecnn_status st = ckks_eval_keys_new(&keys, p->ctx);
    for (size_t i = 0; i < p->n_keys && !st; i++) {
        ckks_switching_key *k = NULL;
        st = p->keys[i].galois ? ckks_galois_key_generate(&k, sk, p->keys[i].galois, p->keys[i].max_level)
                               : ckks_relin_key_generate(&k, sk, p->keys[i].max_level);
        if (!st && p->keys[i].galois) st = ckks_switching_key_compact(k);
        if (!st) st = ckks_eval_keys_add(keys, k);
        else ckks_switching_key_free(k);
    }
    if (st) {
        ckks_eval_keys_free(keys);
        return st;
    }
    *out = keys;
    return HECNN_OK;
}

hecnn_status hecnn_plan_check_keys(const hecnn_plan *p, const ckks_eval_keys *keys)
{
    if (!p || !keys) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    for (size_t i = 0; i < p->n_keys; i++) {
        const ckks_key_need *n = &p->keys[i];
        const ckks_switching_key *k = n->galois ? ckks_eval_keys_galois(keys, n->galois) : ckks_eval_keys_relin(keys);
        if (!k) {
            if (!n->galois) return hecnn_fail(HECNN_ERR_MISSING_KEY, "the relinearization key is missing");
            return hecnn_fail(HECNN_ERR_MISSING_KEY, "the rotation key for Galois element %llu (needed up to level %u) is missing",
                              (unsigned long long)n->galois, n->max_level);
        }
        if (ckks_switching_key_max_level(k) < n->max_level)
            return hecnn_fail(HECNN_ERR_MISSING_KEY, "key for Galois element %llu reaches level %u, the plan uses it at %u",
                              (unsigned long long)n->galois, ckks_switching_key_max_level(k), n->max_level);
    }
    return HECNN_OK;
}

hecnn_status hecnn_plan_encrypt(const hecnn_plan *p, ckks_ciphertext *const *cts, const double *images, size_t n,
                                const ckks_public_key *pk, const ckks_secret_key *sk)
{
    if (!p || !cts || !images || (!pk == !sk)) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument or not exactly one key");
    if (!n || n > p->batch) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "%zu images for a plan of batch %zu", n, p->batch);
    return p->ops->encrypt(p, cts, images, n, pk, sk);
}

hecnn_status hecnn_plan_decrypt(const hecnn_plan *p, double *scores, size_t n, ckks_ciphertext *const *cts,
                                const ckks_secret_key *sk)
{
    if (!p || !scores || !cts || !sk) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    if (!n || n > p->batch) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "%zu images for a plan of batch %zu", n, p->batch);
    return p->ops->decrypt(p, scores, n, cts, sk, false, NULL);
}

hecnn_status hecnn_plan_decrypt_flooded(const hecnn_plan *p, double *scores, size_t n, ckks_ciphertext *const *cts,
                                        const ckks_secret_key *sk, const ckks_flood_options *flood)
{
    if (!p || !scores || !cts || !sk) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    if (!n || n > p->batch) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "%zu images for a plan of batch %zu", n, p->batch);
    return p->ops->decrypt(p, scores, n, cts, sk, true, flood);
}

/* What a process holds besides the caller's objects and the run: the allocator's cache of freed
 * blocks (HECNN_ALLOC_CACHE_MB), code, libraries and thread stacks. */
#define PROCESS_BASELINE_BYTES (96ull << 20)

hecnn_status hecnn_plan_set_memory(hecnn_plan *p, const hecnn_memory_options *opt, hecnn_memory_schedule *out)
{
    if (!p || !opt) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    const uint64_t fixed = opt->held + hecnn_plan_bytes(p) + (p->bt ? ckks_bootstrapper_bytes(p->bt) : 0) +
                           hecnn_alloc_cache_limit() + PROCESS_BASELINE_BYTES;
    if (!p->ops->schedule) { /* one schedule, not estimated: run_bytes 0 */
        if (opt->budget) return hecnn_fail(HECNN_ERR_UNSUPPORTED, "the %s packing has no memory schedules", p->ops->name);
        if (out) *out = (hecnn_memory_schedule){.groups = 1, .chunk_groups = 1, .fixed_bytes = fixed, .peak_bytes = fixed};
        return HECNN_OK;
    }
    const size_t groups = p->ops->groups(p);
    /* candidates, fastest first: all groups, then halves, ...; without spilling, then with */
    hecnn_memory_schedule best = {0}, smallest = {0};
    bool found = false;
    hecnn_status st = HECNN_OK;
    for (int spill = 0; spill < (opt->scratch_dir ? 2 : 1) && !st && !found; spill++)
        for (size_t chunk = groups; chunk >= 1 && !st && !found; chunk = chunk == 1 ? 0 : (chunk + 1) / 2) {
            uint64_t run = 0;
            st = p->ops->schedule(p, chunk, spill, opt->scratch_dir, false, &run);
            const hecnn_memory_schedule s = {.groups = groups, .chunk_groups = chunk, .spill = spill, .run_bytes = run,
                                             .fixed_bytes = fixed, .peak_bytes = fixed + run};
            if (!smallest.peak_bytes || s.peak_bytes < smallest.peak_bytes) smallest = s;
            if (!opt->budget || s.peak_bytes <= opt->budget) {
                best = s;
                found = true;
            }
        }
    if (st) return st;
    if (!found && out) *out = (hecnn_memory_schedule){.groups = groups, .fixed_bytes = fixed, .min_budget = smallest.peak_bytes};
    if (!found)
        return hecnn_fail(HECNN_ERR_NO_MEMORY,
                          "a memory budget of %.2f GiB is too small: the smallest that works is %.2f GiB (%.2f GiB held "
                          "for keys, plan and process, %.2f GiB for the run in chunks of %zu of %zu image groups%s)",
                          opt->budget / 1073741824.0, smallest.peak_bytes / 1073741824.0, fixed / 1073741824.0,
                          smallest.run_bytes / 1073741824.0, smallest.chunk_groups, groups, smallest.spill ? ", stage outputs spilled" : "");
    best.min_budget = smallest.peak_bytes;
    uint64_t run = 0;
    if ((st = p->ops->schedule(p, best.chunk_groups, best.spill, opt->scratch_dir, true, &run))) return st;
    if (out) *out = best;
    return HECNN_OK;
}

hecnn_status hecnn_plan_set_checkpoint(hecnn_plan *p, const char *dir, const char *run_id)
{
    if (!p || (dir && !run_id)) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    if (!p->ops->checkpoint) return hecnn_fail(HECNN_ERR_UNSUPPORTED, "the %s packing keeps no checkpoints", p->ops->name);
    return p->ops->checkpoint(p, dir, run_id);
}

hecnn_status hecnn_plan_run(const hecnn_plan *p, const ckks_eval_keys *keys, const ckks_boot_keys *boot_keys,
                            ckks_ciphertext *const *in, ckks_ciphertext *const *out, hecnn_progress_fn progress,
                            void *user, const volatile int *cancel, hecnn_run_stats *stats)
{
    if (!p || !keys || !in || !out) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    if (p->bootstraps && !boot_keys) return hecnn_fail(HECNN_ERR_MISSING_KEY, "the plan bootstraps: bootstrapping keys needed");
    hecnn_status st = hecnn_plan_check_keys(p, keys);
    if (st) return st;
    ckks_evaluator *ev = NULL;
    if ((st = ckks_evaluator_new(&ev, p->ctx, keys))) return st;
    hecnn_run_stats s = {0};
    st = p->ops->run(p, ev, boot_keys, in, out, progress, user, cancel, &s);
    if (stats) *stats = s;
    ckks_evaluator_free(ev);
    return st;
}

/* The rows packing (Volley Revolver, seed 002): one image per matrix row of w slots, a ciphertext
 * an m x w matrix (include/hecnn/plan.h). It recognises the MNIST network of the seed's Table 3 in
 * a graph (hecnn_mnist_to_graph) and runs it with the fused kernels of mnist_net.c, mnist_infer.c
 * and mnist_prepare.c (docs/MNIST.md): the plan holds the network's geometry (hecnn_mnist_net),
 * prepared weights hold a hecnn_mnist_prepared. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "nn/mnist_internal.h"
#include "nn/plan_internal.h"
#include "nn/rows_internal.h"
#include "util/alloc.h"
#include "util/error.h"

typedef struct rows {
    hecnn_mnist_model *model;   /* the graph's weights, in the fused network's form */
    hecnn_mnist_net *net;       /* for the plan's weights (encrypted when asked) */
    hecnn_mnist_net *net_plain; /* for plain weights: net itself, or a second one */
} rows;

static const rows *rows_of(const hecnn_plan *p) { return p->impl; }

static void rows_free(void *impl)
{
    rows *r = impl;
    if (!r) return;
    if (r->net_plain != r->net) hecnn_mnist_net_free(r->net_plain);
    hecnn_mnist_net_free(r->net);
    hecnn_mnist_model_free(r->model);
    hecnn_free(r);
}

/* ---- the graph: exactly the MNIST network --------------------------------------------------- */

static hecnn_status refuse(size_t id, const char *what)
{
    return hecnn_fail(HECNN_ERR_UNSUPPORTED,
                      "the rows packing runs the Volley Revolver MNIST network only (input 1x28x28, conv 4 kernels 3x3 "
                      "stride 1 no padding, polynomial of degree <= 3, dense 64, polynomial, dense 10): node %zu %s",
                      id, what);
}

static bool poly_fits(const hecnn_node *nd, size_t in, double c[4])
{
    if (nd->op != HECNN_OP_POLY || nd->in[0] != in || nd->degree > 3 || !nd->coeff) return false;
    memset(c, 0, 4 * sizeof *c);
    for (size_t i = 0; i <= nd->degree; i++) c[i] = nd->coeff[i];
    return true;
}

static hecnn_status model_of(const hecnn_graph *g, hecnn_mnist_model **out)
{
    *out = NULL;
    if (hecnn_graph_node_count(g) != 6)
        return hecnn_fail(HECNN_ERR_UNSUPPORTED,
                          "the rows packing runs the Volley Revolver MNIST network only (input, conv, polynomial, dense, "
                          "polynomial, dense): the graph has %zu nodes, not 6", hecnn_graph_node_count(g));
    const hecnn_node *in = hecnn_graph_node(g, 0), *cv = hecnn_graph_node(g, 1), *d1 = hecnn_graph_node(g, 3),
                     *d2 = hecnn_graph_node(g, 5);
    if (in->c != 1 || in->h != HECNN_MNIST_SIDE || in->w != HECNN_MNIST_SIDE) return refuse(0, "is not a 1x28x28 input");
    if (cv->op != HECNN_OP_CONV2D || cv->in[0] != 0 || cv->c != HECNN_MNIST_KERNELS || cv->k != HECNN_MNIST_KSIZE ||
        cv->stride != 1 || cv->pad != 0 || cv->n_weight != HECNN_MNIST_KERNELS * 9)
        return refuse(1, "is not a convolution of 4 kernels 3x3, stride 1, no padding");
    if (d1->op != HECNN_OP_DENSE || d1->in[0] != 2 || d1->c != HECNN_MNIST_FC1_OUT || d1->n_weight != (size_t)HECNN_MNIST_FC1_OUT * HECNN_MNIST_FC1_IN)
        return refuse(3, "is not a dense layer 2704 -> 64");
    if (d2->op != HECNN_OP_DENSE || d2->in[0] != 4 || d2->c != HECNN_MNIST_CLASSES || d2->n_weight != (size_t)HECNN_MNIST_CLASSES * HECNN_MNIST_FC1_OUT)
        return refuse(5, "is not a dense layer 64 -> 10");
    hecnn_mnist_model *m = hecnn_calloc(1, sizeof *m);
    if (!m) return hecnn_fail(HECNN_ERR_NO_MEMORY, "model");
    if (!poly_fits(hecnn_graph_node(g, 2), 1, m->act1) || !poly_fits(hecnn_graph_node(g, 4), 3, m->act2)) {
        hecnn_mnist_model_free(m);
        return refuse(poly_fits(hecnn_graph_node(g, 2), 1, m->act1) ? 4 : 2, "is not a polynomial of degree <= 3 on the layer before");
    }
    memcpy(m->conv_w, cv->weight, sizeof m->conv_w);
    memcpy(m->fc1_w, d1->weight, sizeof m->fc1_w);
    memcpy(m->fc2_w, d2->weight, sizeof m->fc2_w);
    if (cv->bias && cv->n_bias == HECNN_MNIST_KERNELS) memcpy(m->conv_b, cv->bias, sizeof m->conv_b);
    if (d1->bias && d1->n_bias == HECNN_MNIST_FC1_OUT) memcpy(m->fc1_b, d1->bias, sizeof m->fc1_b);
    if (d2->bias && d2->n_bias == HECNN_MNIST_CLASSES) memcpy(m->fc2_b, d2->bias, sizeof m->fc2_b);
    *out = m;
    return HECNN_OK;
}

/* ---- the plan ------------------------------------------------------------------------------- */

static size_t log2_sz(size_t x)
{
    size_t k = 0;
    while (x > 1) x >>= 1, k++;
    return k;
}

/* Rotations and conjugations of one batch, counted from the geometry as mnist_infer.c does them
 * (hoisted ones included; expanded encrypted FC1 tiles save G1 n_a (nhp - 1) of them). */
static size_t rotations_per_batch(const hecnn_mnist_net *n)
{
    const bool enc = n->mode == HECNN_MNIST_ENCRYPTED_MODEL;
    size_t conv = 0;
    int seen[64];
    for (size_t a = 0; a < 3; a++)
        for (size_t b = 0; b < 3; b++)
            for (size_t d = 0; d < mnist_conv_deltas(n); d++) {
                if (!mnist_conv_mask(n, a, b, d, 1, NULL)) continue;
                const int s = mnist_step(n, (long)(32 * a + b) - (long)(d * n->w));
                bool dup = s == 0;
                for (size_t i = 0; i < conv && !dup; i++) dup = seen[i] == s;
                if (!dup && conv < 64) seen[conv++] = s;
            }
    size_t r = n->n_in * conv + n->n_a * (n->nb1 - 1);
    if (enc) r += n->G1 * n->n_a * (n->nhp - 1);
    r += n->G1 * n->nhp * (n->nb1 * log2_sz(n->rs1) + (n->nb1 - 1) + 1 + 2);
    r += n->G2 * n->nh2 * (n->nb2 * log2_sz(n->rs2) + (n->nb2 - 1) + 1);
    return r;
}

static hecnn_status rows_build(hecnn_plan *p, const hecnn_plan_options *opt)
{
    rows *r = hecnn_calloc(1, sizeof *r);
    if (!r) return hecnn_fail(HECNN_ERR_NO_MEMORY, "plan");
    p->impl = r;
    hecnn_status st = model_of(p->g, &r->model);
    if (st) return st;
    const size_t slots = ckks_context_max_slots(p->ctx), width = hecnn_mnist_width_for_batch(slots, opt->batch);
    st = hecnn_mnist_net_new(&r->net, p->ctx, width, opt->encrypted_weights ? HECNN_MNIST_ENCRYPTED_MODEL : HECNN_MNIST_PLAIN_MODEL);
    if (!st && opt->encrypted_weights) st = hecnn_mnist_net_new(&r->net_plain, p->ctx, width, HECNN_MNIST_PLAIN_MODEL);
    else r->net_plain = r->net;
    if (st) return st;
    const hecnn_mnist_net *n = r->net;
    p->batch = n->m;
    p->slots = slots;
    p->input_level = n->lv_in;
    p->classes = HECNN_MNIST_CLASSES;
    p->bootstraps = 0;
    p->rotations = rotations_per_batch(n);
    /* the keys of hecnn_mnist_eval_keys_generate, in its order: relinearization (from the top for
     * an encrypted convolution, else from the activation), the rotations, the conjugation */
    st = plan_need_key(p, 0, opt->encrypted_weights ? n->lv_in : n->lv_conv);
    int steps[256];
    unsigned levels[256];
    const size_t count = hecnn_vr_required_rotations(n, steps, levels, 256);
    if (!st && count > 256) st = hecnn_fail(HECNN_ERR_UNSUPPORTED, "%zu rotation keys", count);
    for (size_t i = 0; !st && i < count; i++) st = plan_need_key(p, ckks_galois_element_rotation(p->ctx, steps[i]), levels[i]);
    if (!st) st = plan_need_key(p, ckks_galois_element_conjugate(p->ctx), n->lv_fc1);
    if (st) return st;
    /* per node: where its output is (the activation after the convolution is fused into it) */
    const struct { unsigned level; size_t cts; } at[6] = {
        {n->lv_in, n->n_in}, {n->lv_conv, n->n_a}, {n->lv_act1, n->n_a},
        {n->lv_fc1, n->n_x2}, {n->lv_act2, n->n_x2}, {n->lv_out, 1}};
    for (size_t id = 0; id < 6; id++)
        p->nodes[id] = (hecnn_plan_node){.level = at[id].level, .scale = n->scale, .unit = 1, .gap = 1, .groups = 1,
                                         .ciphertexts = at[id].cts};
    return HECNN_OK;
}

static size_t rows_images_per_ciphertext(const hecnn_plan *p) { return rows_of(p)->net->m; }
static size_t rows_input_ciphertexts(const hecnn_plan *p) { return rows_of(p)->net->n_in; }
static size_t rows_output_ciphertexts(const hecnn_plan *p) { (void)p; return 1; }
static size_t rows_bytes(const hecnn_plan *p) { (void)p; return 0; } /* the weights hold the plaintexts */

static hecnn_status rows_encrypt(const hecnn_plan *p, ckks_ciphertext *const *cts, const double *images, size_t n,
                                 const ckks_public_key *pk, const ckks_secret_key *sk)
{
    return hecnn_mnist_encrypt_images(rows_of(p)->net_plain, (ckks_ciphertext **)cts, images, n, pk, sk);
}

static hecnn_status rows_decrypt(const hecnn_plan *p, double *scores, size_t n, ckks_ciphertext *const *cts,
                                 const ckks_secret_key *sk, bool flooded, const ckks_flood_options *flood)
{
    const hecnn_mnist_net *net = rows_of(p)->net_plain;
    return flooded ? hecnn_mnist_decrypt_scores_flooded(net, scores, n, cts[0], sk, flood)
                   : hecnn_mnist_decrypt_scores(net, scores, n, cts[0], sk);
}

/* ---- weights and runs (src/nn/plan_run.c owns the public calls) ------------------------------- */

hecnn_status rows_weights_plain(hecnn_mnist_prepared **out, const hecnn_plan *p)
{
    return hecnn_mnist_prepare_plain(out, rows_of(p)->net_plain, rows_of(p)->model);
}

static hecnn_status need_encrypted(const hecnn_plan *p)
{
    if (rows_of(p)->net->mode != HECNN_MNIST_ENCRYPTED_MODEL)
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "the plan was made for plain weights (hecnn_plan_options.encrypted_weights)");
    return HECNN_OK;
}

hecnn_status rows_weights_encrypt(hecnn_mnist_prepared **out, const hecnn_plan *p, const ckks_public_key *pk)
{
    hecnn_status st = need_encrypted(p);
    return st ? st : hecnn_mnist_encrypt_model(out, rows_of(p)->net, rows_of(p)->model, pk);
}

hecnn_status rows_weights_load(hecnn_mnist_prepared **out, const hecnn_plan *p, FILE *f)
{
    hecnn_status st = need_encrypted(p);
    return st ? st : hecnn_mnist_prepared_load(out, rows_of(p)->net, f);
}

/* The plan's net for these weights, or NULL when they do not fit it. */
static const hecnn_mnist_net *net_for(const hecnn_plan *p, const hecnn_mnist_prepared *prep)
{
    const rows *r = rows_of(p);
    const hecnn_mnist_net *n = prep->mode == HECNN_MNIST_ENCRYPTED_MODEL ? r->net : r->net_plain;
    return n->mode == prep->mode && n->w == prep->net->w ? n : NULL;
}

hecnn_status rows_weights_check(const hecnn_plan *p, const hecnn_mnist_prepared *prep)
{
    if (!net_for(p, prep))
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "%s weights for rows of %zu slots; the plan is for %s weights, rows of %zu",
                          prep->mode == HECNN_MNIST_ENCRYPTED_MODEL ? "encrypted" : "plain", prep->net->w,
                          rows_of(p)->net->mode == HECNN_MNIST_ENCRYPTED_MODEL ? "encrypted or plain" : "plain", rows_of(p)->net->w);
    return HECNN_OK;
}

/* The fused run reports each stage's own fraction; the plan's callers get the fraction of the run
 * (the stages' usual shares of the time), with the stage's name. */
typedef struct stage_progress {
    hecnn_progress_fn fn;
    void *user;
} stage_progress;

static void on_stage(void *user, const char *stage, double done)
{
    const stage_progress *sp = user;
    double lo = 0.9, span = 0.1; /* fc2 */
    if (!strncmp(stage, "conv", 4)) lo = 0, span = 0.3;
    else if (!strcmp(stage, "fc1")) lo = 0.3, span = 0.6;
    sp->fn(sp->user, stage, lo + span * done);
}

hecnn_status rows_exec(const hecnn_plan *p, const hecnn_mnist_prepared *prep, const ckks_evaluator *ev, ckks_ciphertext *const *in,
                       ckks_ciphertext *const *out, hecnn_progress_fn progress, void *user, const volatile int *cancel,
                       hecnn_run_stats *stats)
{
    const hecnn_mnist_net *n = net_for(p, prep);
    if (!n) return rows_weights_check(p, prep);
    double t[3] = {0};
    stage_progress sp = {.fn = progress, .user = user};
    const hecnn_status st = mnist_infer_run(n, prep, ev, out[0], in, progress ? on_stage : NULL, &sp, cancel, t);
    stats->seconds_linear += t[0] + t[2];
    stats->seconds_activation += t[1];
    if (!st) stats->rotations += rotations_per_batch(n) - (prep->fc1_giant ? n->G1 * n->n_a * (n->nhp - 1) : 0);
    return st;
}

hecnn_status rows_expand(hecnn_mnist_prepared *copy, const hecnn_mnist_prepared *prep, const ckks_evaluator *ev)
{
    *copy = *prep;
    if (prep->mode != HECNN_MNIST_ENCRYPTED_MODEL || prep->fc1_giant) return HECNN_OK;
    return hecnn_mnist_prepared_expand(copy, ev);
}

void rows_unexpand(hecnn_mnist_prepared *copy, const hecnn_mnist_prepared *prep)
{
    if (!copy->fc1_giant || copy->fc1_giant == prep->fc1_giant) return;
    const hecnn_mnist_net *n = copy->net;
    for (size_t i = 0; i < n->G1 * n->n_a * n->nhp; i++) ckks_ciphertext_free(copy->fc1_giant[i]);
    hecnn_free(copy->fc1_giant);
    copy->fc1_giant = NULL;
}

/* hecnn_plan_run: the plan's plain weights, encoded for this call. */
static hecnn_status rows_run(const hecnn_plan *p, const ckks_evaluator *ev, const ckks_boot_keys *boot_keys,
                             ckks_ciphertext *const *in, ckks_ciphertext *const *out, hecnn_progress_fn progress, void *user,
                             const volatile int *cancel, hecnn_run_stats *stats)
{
    (void)boot_keys;
    hecnn_mnist_prepared *prep = NULL;
    const double t0 = omp_get_wtime();
    hecnn_status st = rows_weights_plain(&prep, p);
    stats->seconds_other += omp_get_wtime() - t0;
    if (!st) st = rows_exec(p, prep, ev, in, out, progress, user, cancel, stats);
    hecnn_mnist_prepared_free(prep);
    return st;
}

const packing_ops rows_packing = {
    .name = "rows",
    .build = rows_build,
    .free = rows_free,
    .images_per_ciphertext = rows_images_per_ciphertext,
    .input_ciphertexts = rows_input_ciphertexts,
    .output_ciphertexts = rows_output_ciphertexts,
    .bytes = rows_bytes,
    .encrypt = rows_encrypt,
    .decrypt = rows_decrypt,
    .run = rows_run,
};

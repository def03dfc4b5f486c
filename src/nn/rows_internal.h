/* The rows packing's weights and runs (src/nn/rows.c), for the plan's public calls on prepared
 * weights (src/nn/plan_run.c). */
#ifndef HECNN_NN_ROWS_INTERNAL_H
#define HECNN_NN_ROWS_INTERNAL_H

#include "hecnn/plan.h"
#include "nn/mnist_internal.h"

struct hecnn_plan_weights {
    hecnn_plan_layout layout;     /* HECNN_LAYOUT_ROWS: the only packing with separate weights */
    hecnn_mnist_prepared *prep;
};

/* p is a rows plan. */
hecnn_status rows_weights_plain(hecnn_mnist_prepared **out, const hecnn_plan *p);
hecnn_status rows_weights_encrypt(hecnn_mnist_prepared **out, const hecnn_plan *p, const ckks_public_key *pk);
hecnn_status rows_weights_load(hecnn_mnist_prepared **out, const hecnn_plan *p, FILE *f);
/* HECNN_ERR_INVALID_ARGUMENT unless the weights fit the plan (mode, row width). */
hecnn_status rows_weights_check(const hecnn_plan *p, const hecnn_mnist_prepared *prep);
/* One batch; the keys are checked and ev holds them; stats accumulate. */
hecnn_status rows_exec(const hecnn_plan *p, const hecnn_mnist_prepared *prep, const ckks_evaluator *ev, ckks_ciphertext *const *in,
                       ckks_ciphertext *const *out, hecnn_progress_fn progress, void *user, const volatile int *cancel,
                       hecnn_run_stats *stats);
/* For several batches: *copy is prep with the encrypted FC1 tiles' giant steps rotated once (a
 * shallow copy otherwise); rows_unexpand frees what rows_expand added. */
hecnn_status rows_expand(hecnn_mnist_prepared *copy, const hecnn_mnist_prepared *prep, const ckks_evaluator *ev);
void rows_unexpand(hecnn_mnist_prepared *copy, const hecnn_mnist_prepared *prep);

#endif

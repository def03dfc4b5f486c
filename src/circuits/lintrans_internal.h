/* Linear transforms: the structure, shared with the bootstrapping DFT. */
#ifndef HECNN_CIRCUITS_LINTRANS_INTERNAL_H
#define HECNN_CIRCUITS_LINTRANS_INTERNAL_H

#include <complex.h>
#include <stddef.h>

#include "hecnn/circuits.h"

struct ckks_lintrans {
    const ckks_context *ctx;
    size_t slots;
    unsigned level;
    double scale;
    size_t n1;                /* baby step */
    size_t n_diags;
    size_t *off;              /* ascending offsets in [0, slots) */
    ckks_plaintext **pt;      /* pt[i] = encode(rot_-g(d_off[i])), g = off[i] - off[i] % n1 */
    size_t *babies, n_babies; /* distinct off % n1, ascending (0 included when used) */
    size_t *giants, n_giants; /* distinct off - off % n1, ascending */
};

/* Cost model and choice of the baby step for sorted distinct offsets. */
double lt_plan_cost(const size_t *offs, size_t count, size_t n1, size_t *n_babies, size_t *n_giants);
size_t lt_choose_baby_step(const size_t *offs, size_t count, size_t slots);
/* Build from offsets already reduced to [0, slots) (distinct). */
hecnn_status lt_build(ckks_lintrans **out, const ckks_context *ctx, size_t slots, size_t n_diags, const size_t *offs,
                      const double complex *const *diags, unsigned level, double scale, size_t baby_step);
/* BSGS with hoisted baby rotations, on the public evaluator API. */
hecnn_status lt_apply_generic(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *in,
                              const ckks_lintrans *lt);

#endif

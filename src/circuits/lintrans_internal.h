/* Linear transforms: the structure, shared with the bootstrapping DFT. */
#ifndef HECNN_CIRCUITS_LINTRANS_INTERNAL_H
#define HECNN_CIRCUITS_LINTRANS_INTERNAL_H

#include <complex.h>
#include <stddef.h>
#include <stdint.h>

#include "hecnn/circuits.h"

struct ckks_lintrans {
    const ckks_context *ctx;
    size_t slots;
    unsigned level;
    double scale;
    size_t n1;                /* baby step */
    size_t n_diags;
    size_t *off;              /* ascending offsets in [0, slots) */
    ckks_plaintext **pt;      /* pt[i] = encode(rot_-g(d_off[i])), g = off[i] - off[i] % n1 (generic path) */
    int64_t **coef;           /* or the same as 2 slots signed coefficients (fast path), NULL if unused */
    size_t *babies, n_babies; /* distinct off % n1, ascending (0 included when used) */
    size_t *giants, n_giants; /* distinct off - off % n1, ascending */
};

/* Cost model and choice of the baby step for sorted distinct offsets. */
double lt_plan_cost(const size_t *offs, size_t count, size_t n1, size_t *n_babies, size_t *n_giants);
size_t lt_choose_baby_step(const size_t *offs, size_t count, size_t slots);
/* Build from offsets already reduced to [0, slots) (distinct), from double (diags) or long
 * double (ldiags) diagonals: exactly one of them is given. */
hecnn_status lt_build(ckks_lintrans **out, const ckks_context *ctx, size_t slots, size_t n_diags, const size_t *offs,
                      const double complex *const *diags, const long double complex *const *ldiags, unsigned level,
                      double scale, size_t baby_step);
/* Signed coefficients of encode(v) at `scale`: slots real parts then slots imaginary parts
 * (coefficients i gap and N/2 + i gap); 1 when one exceeds 2^62 (then use a plaintext), -1 on
 * allocation failure. */
int lt_compact_encode(int64_t *out, const long double complex *v, size_t slots, double scale,
                      const long double complex *twiddles /* dft_twiddles_all(slots) */);
/* Double-hoisted BSGS on compact diagonals (lintrans_fast.c), with scratch reused across calls. */
typedef struct lt_workspace {
    uint64_t *buf;
    size_t words;
    size_t *perm, *uidx, n1;
} lt_workspace;
int lt_workspace_reserve(lt_workspace *ws, const ckks_context *ctx, size_t babies, size_t limbs, size_t n1);
void lt_workspace_free(lt_workspace *ws);
hecnn_status lt_apply_fast(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *in,
                           const ckks_lintrans *lt);
hecnn_status lt_apply_fast_ws(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *in,
                              const ckks_lintrans *lt, lt_workspace *ws);
/* BSGS with hoisted baby rotations, on the public evaluator API. */
hecnn_status lt_apply_generic(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *in,
                              const ckks_lintrans *lt);

#endif

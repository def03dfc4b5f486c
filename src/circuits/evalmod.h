/* EvalMod: slot-wise u mod 1 for u = R x, x in [-1, 1] (the coefficients after ModRaise and
 * CoeffsToSlots, divided by q_0 R). */
#ifndef HECNN_CIRCUITS_EVALMOD_H
#define HECNN_CIRCUITS_EVALMOD_H

#include "hecnn/circuits.h"

typedef struct evalmod {
    ckks_mod1_kind kind;
    double range;           /* R: |u| <= R */
    double fit_range;
    double delta;           /* |u - round(u)| <= delta: the fit's neighbourhoods of the integers */
    unsigned double_angle;  /* r */
    ckks_poly *poly;        /* in x = u / R: cos(2 pi (u - 1/4) / 2^r) or sin(2 pi u) / (2 pi) */
    unsigned depth;         /* levels consumed */
} evalmod;

/* Builds the polynomial: a least-squares fit in the Chebyshev basis on the union of
 * [I - delta, I + delta], |I| <= k (delta = 2^-log_message_ratio), which needs a far lower
 * degree than interpolating on the whole of [-R, R]. */
hecnn_status evalmod_init(evalmod *em, const ckks_boot_params *bp);
void evalmod_free(evalmod *em);
/* Worst |p_final(u) - sin(2 pi u) / (2 pi)| over the neighbourhoods (after the double angles), in doubles. */
double evalmod_max_error(const evalmod *em);
/* out = factor * (u mod 1) (as sin(2 pi u) / (2 pi)) at level level(in) - depth, scale exactly
 * out_scale. The input should be at scale q_level(in) for the optimal depth. */
hecnn_status evalmod_eval(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *in, const evalmod *em,
                          double factor, double out_scale);

#endif

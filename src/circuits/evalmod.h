/* EvalMod: slot-wise u mod 1 for x = (u - shift) / R in [-1, 1] (u: the coefficients after
 * ModRaise and CoeffsToSlots, divided by q_0). */
#ifndef HECNN_CIRCUITS_EVALMOD_H
#define HECNN_CIRCUITS_EVALMOD_H

#include "hecnn/circuits.h"

typedef struct evalmod {
    ckks_mod1_kind kind;
    unsigned k;             /* |round(u)| <= k */
    double shift;           /* 1/4 (cosine: the polynomial is even in x) or 0 (sine: odd) */
    double range;           /* R = k + shift + delta */
    double delta;           /* |u - round(u)| <= delta: the neighbourhoods of the integers */
    unsigned double_angle;  /* r */
    ckks_poly *poly;        /* in x: cos(2 pi (u - 1/4) / 2^r) or sin(2 pi u) / (2 pi) */
    unsigned depth;         /* levels consumed */
} evalmod;

/* Builds the polynomial: a least-squares fit in the even (cosine) or odd (sine) Chebyshev basis
 * on the union of [I - delta, I + delta], |I| <= k (delta = 2^-log_message_ratio), which needs
 * a lower degree than interpolating on the whole range; the whole-range fit is kept instead
 * when it is more accurate. */
hecnn_status evalmod_init(evalmod *em, const ckks_boot_params *bp);
void evalmod_free(evalmod *em);
/* Worst |p_final(u) - sin(2 pi u) / (2 pi)| over the neighbourhoods (after the double angles), in doubles. */
double evalmod_max_error(const evalmod *em);
/* out = factor * (u mod 1) (as sin(2 pi u) / (2 pi)) at level level(in) - depth, scale exactly
 * out_scale. The input should be at scale q_level(in) for the optimal depth. */
hecnn_status evalmod_eval(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *in, const evalmod *em,
                          double factor, double out_scale);

#endif

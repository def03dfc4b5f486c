/* EvalMod (see evalmod.h). Scales are planned backwards from the requested output scale, so
 * that every double-angle squaring lands exactly: s_k = sqrt(s_(k+1) q_(l_k)). */
#include "circuits/evalmod.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "circuits/circuits_internal.h"
#include "util/alloc.h"

typedef long double ld;

static ld target_fn(const evalmod *em, ld u)
{
    const ld pi = 3.141592653589793238462643383279502884L;
    if (em->kind == CKKS_MOD1_SIN) return sinl(2 * pi * u) / (2 * pi);
    return cosl(2 * pi * (u - 0.25L) / (ld)(1u << em->double_angle));
}

/* Least-squares fit of degree d in x = (u - shift) / R, basis T_j of one parity, on samples
 * clustered in [I - half, I + half], |I| <= k; Householder QR in long double. */
static int fit(const evalmod *em, double *coef, size_t d, double half)
{
    const unsigned par = em->kind == CKKS_MOD1_SIN ? 1 : 0;
    const size_t nb = (d - par) / 2 + 1; /* basis T_par, T_(par+2), ... */
    const unsigned k = em->k;
    const size_t per = 3 * nb / (2 * k + 1) + 12;
    const size_t M = (2 * (size_t)k + 1) * per, n = nb;
    ld *A = hecnn_alloc(M * n * sizeof *A), *b = hecnn_alloc(M * sizeof *b), *v = hecnn_alloc(M * sizeof *v), *c = hecnn_alloc(n * sizeof *c);
    int rc = -1;
    if (!A || !b || !v || !c) goto out;
    size_t row = 0;
    for (int ii = -(int)k; ii <= (int)k; ii++)
        for (size_t t = 0; t < per; t++) {
            ld u = (ld)ii + (ld)half * cosl(3.141592653589793238462643383279502884L * ((ld)t + 0.5L) / (ld)per);
            ld y = (u - (ld)em->shift) / (ld)em->range, t0 = 1, t1 = y;
            for (size_t j = 0, col = 0; j <= d; j++) {
                ld tj = j == 0 ? 1 : j == 1 ? y : 0;
                if (j >= 2) {
                    tj = 2 * y * t1 - t0;
                    t0 = t1;
                    t1 = tj;
                }
                if ((j & 1) == par) A[row * n + col++] = tj;
            }
            b[row++] = target_fn(em, u);
        }
    for (size_t j = 0; j < n; j++) {
        ld norm = 0;
        for (size_t i = j; i < M; i++) norm += A[i * n + j] * A[i * n + j];
        norm = sqrtl(norm);
        if (A[j * n + j] > 0) norm = -norm;
        for (size_t i = j; i < M; i++) v[i] = A[i * n + j];
        v[j] -= norm;
        ld vn = 0;
        for (size_t i = j; i < M; i++) vn += v[i] * v[i];
        if (vn == 0) continue;
        for (size_t col = j; col < n; col++) {
            ld s = 0;
            for (size_t i = j; i < M; i++) s += v[i] * A[i * n + col];
            s = 2 * s / vn;
            for (size_t i = j; i < M; i++) A[i * n + col] -= s * v[i];
        }
        ld s = 0;
        for (size_t i = j; i < M; i++) s += v[i] * b[i];
        s = 2 * s / vn;
        for (size_t i = j; i < M; i++) b[i] -= s * v[i];
    }
    for (size_t j = n; j-- > 0;) {
        ld s = b[j];
        for (size_t t = j + 1; t < n; t++) s -= A[j * n + t] * c[t];
        if (A[j * n + j] == 0) goto out;
        c[j] = s / A[j * n + j];
    }
    memset(coef, 0, (d + 1) * sizeof *coef);
    for (size_t j = 0; j < n; j++) coef[par + 2 * j] = (double)c[j];
    rc = 0;
out:
    hecnn_free(A);
    hecnn_free(b);
    hecnn_free(v);
    hecnn_free(c);
    return rc;
}

hecnn_status evalmod_init(evalmod *em, const ckks_boot_params *bp)
{
    memset(em, 0, sizeof *em);
    if (bp->k < 1 || bp->k > 4096 || bp->mod1_degree < 3 || bp->mod1_degree > 1023)
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "EvalMod: k = %u, degree = %u", bp->k, bp->mod1_degree);
    if (bp->mod1 != CKKS_MOD1_COS_DOUBLE_ANGLE && bp->mod1 != CKKS_MOD1_SIN)
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "EvalMod: unknown kind");
    if (bp->arcsine_degree) return hecnn_fail(HECNN_ERR_UNSUPPORTED, "EvalMod: arcsine correction not implemented");
    if (bp->double_angle > 8) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "EvalMod: %u double angles", bp->double_angle);
    em->kind = bp->mod1;
    em->k = bp->k;
    em->double_angle = bp->mod1 == CKKS_MOD1_SIN ? 0 : bp->double_angle;
    em->shift = bp->mod1 == CKKS_MOD1_SIN ? 0 : 0.25;
    em->delta = ldexp(1.0, -(int)bp->log_message_ratio);
    if (em->delta > 0.25) em->delta = 0.25;
    em->range = (double)bp->k + em->shift + em->delta;
    /* fit near the integers, and on the whole range; keep the more accurate */
    const size_t d = bp->mod1_degree;
    double *c = hecnn_calloc(2 * (d + 1), sizeof *c);
    if (!c) return hecnn_fail(HECNN_ERR_NO_MEMORY, "EvalMod polynomial");
    double *c2 = c + d + 1, best = INFINITY;
    for (int pass = 0; pass < 2; pass++) {
        if (fit(em, c2, d, pass ? 0.5 : em->delta)) continue;
        hecnn_status st = ckks_poly_new(&em->poly, c2, d, -1, 1);
        if (st) {
            hecnn_free(c);
            return st;
        }
        double e = evalmod_max_error(em);
        ckks_poly_free(em->poly);
        em->poly = NULL;
        if (e < best) {
            best = e;
            memcpy(c, c2, (d + 1) * sizeof *c);
        }
    }
    if (!(best < 1)) {
        hecnn_free(c);
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "EvalMod: least-squares fit failed");
    }
    hecnn_status st = ckks_poly_new(&em->poly, c, d, -1, 1);
    hecnn_free(c);
    if (st) return st;
    em->depth = ckks_poly_depth(em->poly) + em->double_angle;
    return HECNN_OK;
}

void evalmod_free(evalmod *em)
{
    if (!em) return;
    ckks_poly_free(em->poly);
    em->poly = NULL;
}

double evalmod_max_error(const evalmod *em)
{
    const int k = (int)em->k;
    double worst = 0;
    for (int ii = -k; ii <= k; ii++)
        for (int t = 0; t <= 200; t++) {
            double u = ii - em->delta + 2 * em->delta * t / 200.0;
            double y = ckks_poly_eval(em->poly, (u - em->shift) / em->range);
            for (unsigned j = 0; j < em->double_angle; j++) y = 2 * y * y - 1;
            if (em->kind != CKKS_MOD1_SIN) y /= 2 * M_PI;
            double e = fabs(y - sin(2 * M_PI * u) / (2 * M_PI));
            if (e > worst || isnan(e)) worst = e;
        }
    return worst;
}

hecnn_status evalmod_eval(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *in, const evalmod *em,
                          double factor, double out_scale)
{
    const ckks_context *ctx = ckks_evaluator_context(ev);
    const unsigned L = ckks_ciphertext_level(in), dp = ckks_poly_depth(em->poly), r = em->double_angle;
    if (L < em->depth) return hecnn_fail(HECNN_ERR_LEVEL_MISMATCH, "EvalMod needs %u levels, input at %u", em->depth, L);
    /* the value after the polynomial (and the double angles) is sin(2 pi u) (COS) or
     * sin(2 pi u) / (2 pi) (SIN); `factor (u mod 1)` is that times c */
    const double c = em->kind == CKKS_MOD1_SIN ? factor : factor / (2 * M_PI);
    double *s = hecnn_alloc((r + 1) * sizeof *s);
    if (!s) return hecnn_fail(HECNN_ERR_NO_MEMORY, "EvalMod scales");
    s[r] = out_scale * c; /* scale of the last result before declaring the factor */
    for (unsigned k = r; k-- > 0;) s[k] = sqrt(s[k + 1] * (double)ckks_context_q(ctx, L - dp - k));
    hecnn_status st = ckks_poly_evaluate(ev, out, in, em->poly, s[0]);
    for (unsigned k = 0; k < r && !st; k++) {
        st = ckks_square_relin(ev, out, out);
        if (!st) st = ckks_add(ev, out, out, out);
        if (!st) st = ckks_add_const(ev, out, out, -1.0);
        if (!st) st = ckks_rescale(ev, out, out);
        if (!st) st = ckks_ciphertext_set_scale(out, s[k + 1]);
    }
    if (!st) st = ckks_ciphertext_set_scale(out, out_scale);
    hecnn_free(s);
    return st;
}

/* Composite minimax approximations of sign (Lee, Lee, Kim, No: "Minimax approximation of sign
 * function by composite polynomial for homomorphic comparison", 2021) and the ReLU built on it.
 *
 * Stage i is the odd polynomial of degree d_i minimizing max |p(x) - 1| over [a_i, b_i], the
 * image of the previous stages ([2^-alpha, 1] for the first); by equioscillation its image is
 * [1 - delta_i, 1 + delta_i], the next stage's domain. Each stage is found by the Remez exchange
 * algorithm in the odd Chebyshev basis T_(2k+1)(x / b_i), which stays well conditioned. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "circuits/circuits_internal.h"
#include "util/alloc.h"

#define MAX_STAGES 8

struct ckks_sign_approx {
    size_t stages;
    ckks_poly *p[MAX_STAGES];
    double alpha;
    double delta;      /* max |approx - sign| on the domain */
};

/* odd basis: phi_k(x) = T_(2k+1)(x / b) */
static double odd_eval(const double *c, size_t m, double x, double b)
{
    double y = x / b, t0 = 1, t1 = y, s = 0;
    for (size_t j = 1; j <= 2 * m; j++) {
        if (j & 1) s += c[j >> 1] * t1;
        double t2 = 2 * y * t1 - t0;
        t0 = t1;
        t1 = t2;
    }
    return s;
}

/* Solve the (n x n) system A x = r by Gaussian elimination with partial pivoting (long double). */
static int solve(long double *A, long double *r, size_t n)
{
    for (size_t col = 0; col < n; col++) {
        size_t piv = col;
        for (size_t i = col + 1; i < n; i++)
            if (fabsl(A[i * n + col]) > fabsl(A[piv * n + col])) piv = i;
        if (A[piv * n + col] == 0) return -1;
        if (piv != col) {
            for (size_t j = 0; j < n; j++) {
                long double t = A[col * n + j];
                A[col * n + j] = A[piv * n + j];
                A[piv * n + j] = t;
            }
            long double t = r[col];
            r[col] = r[piv];
            r[piv] = t;
        }
        for (size_t i = col + 1; i < n; i++) {
            long double f = A[i * n + col] / A[col * n + col];
            if (f == 0) continue;
            for (size_t j = col; j < n; j++) A[i * n + j] -= f * A[col * n + j];
            r[i] -= f * r[col];
        }
    }
    for (size_t i = n; i-- > 0;) {
        long double s = r[i];
        for (size_t j = i + 1; j < n; j++) s -= A[i * n + j] * r[j];
        r[i] = s / A[i * n + i];
    }
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct ext {
    double x, e;
} ext;

/* golden-section refinement of a local extremum of sign * err on [lo, hi] */
static ext refine(const double *c, size_t m, double b, double lo, double hi, double sgn)
{
    const double g = 0.3819660112501051;
    double x1 = lo + g * (hi - lo), x2 = hi - g * (hi - lo);
    double f1 = sgn * (odd_eval(c, m, x1, b) - 1), f2 = sgn * (odd_eval(c, m, x2, b) - 1);
    for (int it = 0; it < 80 && hi - lo > 1e-15 * fabs(hi); it++) {
        if (f1 > f2) {
            hi = x2;
            x2 = x1;
            f2 = f1;
            x1 = lo + g * (hi - lo);
            f1 = sgn * (odd_eval(c, m, x1, b) - 1);
        } else {
            lo = x1;
            x1 = x2;
            f1 = f2;
            x2 = hi - g * (hi - lo);
            f2 = sgn * (odd_eval(c, m, x2, b) - 1);
        }
    }
    ext r = f1 > f2 ? (ext){x1, odd_eval(c, m, x1, b) - 1} : (ext){x2, odd_eval(c, m, x2, b) - 1};
    return r;
}

/* Odd minimax approximation of 1 on [a, b] with m odd terms (degree 2m - 1). Writes the
 * coefficients of T_1, T_3, ... (relative to [-b, b]) to c and returns the max error, or a
 * negative value on failure. */
static double remez_sign(double *c, size_t m, double a, double b)
{
    const size_t n = m + 1, grid = 4000 + 400 * m;
    double *ref = hecnn_alloc(n * sizeof *ref);
    long double *A = hecnn_alloc(n * n * sizeof *A), *r = hecnn_alloc(n * sizeof *r);
    double *gx = hecnn_alloc(2 * grid * sizeof *gx), *ge = hecnn_alloc(2 * grid * sizeof *ge);
    ext *ex = hecnn_alloc((2 * grid + 2) * sizeof *ex);
    double result = -1;
    if (!ref || !A || !r || !gx || !ge || !ex) goto out;

    /* initial reference: Chebyshev extrema of [a, b] */
    for (size_t j = 0; j < n; j++) ref[j] = 0.5 * (a + b) - 0.5 * (b - a) * cos(M_PI * (double)j / (double)m);
    /* search grid: uniform in x and geometric near a, merged */
    size_t ng = 0;
    for (size_t i = 0; i < grid; i++) gx[ng++] = a + (b - a) * (double)i / (double)(grid - 1);
    for (size_t i = 0; i < grid; i++) gx[ng++] = a * pow(b / a, (double)i / (double)(grid - 1));
    qsort(gx, ng, sizeof *gx, cmp_double);

    double prev_max = INFINITY;
    for (int iter = 0; iter < 100; iter++) {
        for (size_t j = 0; j < n; j++) {
            long double y = (long double)ref[j] / b, t0 = 1, t1 = y;
            for (size_t k = 1; k <= 2 * m; k++) {
                if (k & 1) A[j * n + (k >> 1)] = t1;
                long double t2 = 2 * y * t1 - t0;
                t0 = t1;
                t1 = t2;
            }
            A[j * n + m] = (j & 1) ? -1.0L : 1.0L;
            r[j] = 1;
        }
        if (solve(A, r, n)) goto out;
        for (size_t k = 0; k < m; k++) c[k] = (double)r[k];

        /* local extrema of the error on the grid, refined */
        for (size_t i = 0; i < ng; i++) ge[i] = odd_eval(c, m, gx[i], b) - 1;
        size_t ne = 0;
        ex[ne++] = (ext){gx[0], ge[0]};
        for (size_t i = 1; i + 1 < ng; i++) {
            double s = ge[i] >= 0 ? 1 : -1;
            if (s * ge[i] >= s * ge[i - 1] && s * ge[i] >= s * ge[i + 1] && fabs(ge[i]) > 0)
                ex[ne++] = refine(c, m, b, gx[i - 1], gx[i + 1], s);
        }
        ex[ne++] = (ext){gx[ng - 1], ge[ng - 1]};
        /* merge runs of equal sign, keeping the largest */
        size_t k = 0;
        for (size_t i = 0; i < ne; i++) {
            if (k > 0 && (ex[i].e >= 0) == (ex[k - 1].e >= 0)) {
                if (fabs(ex[i].e) > fabs(ex[k - 1].e)) ex[k - 1] = ex[i];
            } else {
                ex[k++] = ex[i];
            }
        }
        ne = k;
        size_t lo = 0, hi = ne; /* window [lo, hi) */
        while (hi - lo > n) {
            if (fabs(ex[lo].e) < fabs(ex[hi - 1].e)) lo++;
            else hi--;
        }
        if (hi - lo < n) { /* degenerate: keep the last solution */
            double mx = 0;
            for (size_t i = 0; i < ng; i++) mx = fmax(mx, fabs(ge[i]));
            result = mx;
            goto out;
        }
        double mx = 0, mn = INFINITY;
        for (size_t i = lo; i < hi; i++) {
            ref[i - lo] = ex[i].x;
            mx = fmax(mx, fabs(ex[i].e));
            mn = fmin(mn, fabs(ex[i].e));
        }
        for (size_t i = 0; i < ng; i++) mx = fmax(mx, fabs(ge[i]));
        result = mx;
        if (mx - mn <= 1e-9 * mx || fabs(prev_max - mx) <= 1e-14 * mx || mx < 1e-13) break;
        prev_max = mx;
    }
out:
    hecnn_free(ref);
    hecnn_free(A);
    hecnn_free(r);
    hecnn_free(gx);
    hecnn_free(ge);
    hecnn_free(ex);
    return result;
}

hecnn_status ckks_sign_approx_new(ckks_sign_approx **out, double alpha, const unsigned *degrees, size_t stages)
{
    if (!out || !degrees) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    if (stages < 1 || stages > MAX_STAGES) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "1..%d stages", MAX_STAGES);
    if (!(alpha > 0 && alpha <= 40)) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "alpha %g outside (0, 40]", alpha);
    for (size_t i = 0; i < stages; i++)
        if (degrees[i] < 1 || degrees[i] > 255 || !(degrees[i] & 1))
            return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "stage %zu: degree %u must be odd, 1..255", i, degrees[i]);
    ckks_sign_approx *s = hecnn_calloc(1, sizeof *s);
    if (!s) return hecnn_fail(HECNN_ERR_NO_MEMORY, "sign approximation");
    s->alpha = alpha;
    double a = ldexp(1.0, 0) * exp2(-alpha), b = 1.0, delta = 1.0;
    for (size_t i = 0; i < stages; i++) {
        const size_t m = (degrees[i] + 1) / 2;
        double *oc = hecnn_calloc(m, sizeof *oc), *full = hecnn_calloc(degrees[i] + 1, sizeof *full);
        if (!oc || !full) {
            hecnn_free(oc);
            hecnn_free(full);
            ckks_sign_approx_free(s);
            return hecnn_fail(HECNN_ERR_NO_MEMORY, "remez");
        }
        delta = remez_sign(oc, m, a, b);
        if (!(delta >= 0) || !(delta < 1)) {
            hecnn_free(oc);
            hecnn_free(full);
            ckks_sign_approx_free(s);
            return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "Remez did not converge at stage %zu", i);
        }
        for (size_t k = 0; k < m; k++) full[2 * k + 1] = oc[k];
        hecnn_status st = ckks_poly_new(&s->p[i], full, degrees[i], -b, b);
        hecnn_free(oc);
        hecnn_free(full);
        if (st) {
            ckks_sign_approx_free(s);
            return st;
        }
        s->stages = i + 1;
        a = 1 - delta;
        b = 1 + delta;
    }
    s->delta = delta;
    *out = s;
    return HECNN_OK;
}

void ckks_sign_approx_free(ckks_sign_approx *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->stages; i++) ckks_poly_free(s->p[i]);
    hecnn_free(s);
}

size_t ckks_sign_approx_stages(const ckks_sign_approx *s) { return s->stages; }
const ckks_poly *ckks_sign_approx_stage(const ckks_sign_approx *s, size_t i) { return i < s->stages ? s->p[i] : NULL; }
double ckks_sign_approx_alpha(const ckks_sign_approx *s) { return s->alpha; }
double ckks_sign_approx_error_bits(const ckks_sign_approx *s) { return -log2(s->delta); }

unsigned ckks_sign_approx_depth(const ckks_sign_approx *s)
{
    unsigned d = 0;
    for (size_t i = 0; i < s->stages; i++) d += ckks_poly_depth(s->p[i]);
    return d;
}

double ckks_sign_approx_eval(const ckks_sign_approx *s, double x)
{
    for (size_t i = 0; i < s->stages; i++) x = ckks_poly_eval(s->p[i], x);
    return x;
}

/* Stages in turn; the intermediate results are put at scale q_(their level), so that the next
 * stage's power basis stays on the primes (no normalizing level). */
static hecnn_status sign_chain(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *in,
                               const ckks_sign_approx *s, double bound, double target_scale)
{
    const ckks_context *ctx = ckks_evaluator_context(ev);
    hecnn_status st = HECNN_OK;
    ckks_poly *first = NULL;
    /* the first stage on [-bound, bound]: same coefficients, wider interval */
    if ((st = ckks_poly_copy(&first, s->p[0]))) return st;
    first->a *= bound;
    first->b *= bound;
    const ckks_ciphertext *src = in;
    for (size_t i = 0; i < s->stages && !st; i++) {
        const ckks_poly *p = i ? s->p[i] : first;
        const unsigned L = ckks_ciphertext_level(src);
        const unsigned used = ckks_poly_levels_used(ctx, p, L, ckks_ciphertext_scale(src));
        double tgt = target_scale;
        if (i + 1 < s->stages && L >= used) tgt = (double)ckks_context_q(ctx, L - used);
        st = ckks_poly_evaluate(ev, out, src, p, tgt);
        src = out;
    }
    ckks_poly_free(first);
    return st;
}

hecnn_status ckks_sign_evaluate(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *in,
                                const ckks_sign_approx *s, double target_scale)
{
    if (!ev || !out || !in || !s) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    if (target_scale == 0) target_scale = ckks_ciphertext_scale(in);
    if (ckks_ciphertext_level(in) < ckks_sign_approx_depth(s))
        return hecnn_fail(HECNN_ERR_LEVEL_MISMATCH, "sign needs %u levels, input at %u", ckks_sign_approx_depth(s),
                          ckks_ciphertext_level(in));
    return sign_chain(ev, out, in, s, 1.0, target_scale);
}

hecnn_status ckks_relu_evaluate(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *in,
                                const ckks_sign_approx *s, double bound, double target_scale)
{
    if (!ev || !out || !in || !s) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    if (!(bound > 0) || !isfinite(bound)) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "bound %g", bound);
    const ckks_context *ctx = ckks_evaluator_context(ev);
    const double sx = ckks_ciphertext_scale(in);
    if (target_scale == 0) target_scale = sx;
    const unsigned L = ckks_ciphertext_level(in);
    /* levels of the sign chain for this input: the intermediate stages run at scale su / 2,
     * close to the primes, so only the first stage may need a normalizing level */
    ckks_poly *first = NULL;
    hecnn_status st = ckks_poly_copy(&first, s->p[0]);
    if (st) return st;
    first->a *= bound;
    first->b *= bound;
    unsigned depth = L > ckks_sign_approx_depth(s) ? ckks_poly_levels_used(ctx, first, L, sx) : ckks_poly_depth(first);
    for (size_t i = 1; i < s->stages; i++) depth += ckks_poly_depth(s->p[i]);
    ckks_poly_free(first);
    if (L < depth + 1) return hecnn_fail(HECNN_ERR_LEVEL_MISMATCH, "ReLU needs %u levels, input at %u", depth + 1, L);
    const unsigned lev = L - depth; /* level of the sign and of the product before rescaling */
    /* u = (1 + sign) / 2 at scale s_u = target q_lev / s_x, so that x u rescaled has the target scale */
    const double su = target_scale * (double)ckks_context_q(ctx, lev) / sx;
    ckks_ciphertext *u = NULL, *x = NULL;
    st = ckks_ciphertext_new(&u, ctx);
    if (!st) st = ckks_ciphertext_new(&x, ctx);
    if (!st) st = sign_chain(ev, u, in, s, bound, su / 2);
    if (!st && ckks_ciphertext_level(u) != lev)
        st = hecnn_fail(HECNN_ERR_LEVEL_MISMATCH, "sign landed at level %u, expected %u", ckks_ciphertext_level(u), lev);
    if (!st) st = ckks_add_const(ev, u, u, 1.0);
    if (!st) st = ckks_ciphertext_set_scale(u, su);
    if (!st) st = ckks_drop_level(ev, x, in, lev);
    if (!st) st = ckks_mul_relin(ev, out, x, u);
    if (!st) st = ckks_rescale(ev, out, out);
    if (!st) st = ckks_ciphertext_set_scale(out, target_scale);
    ckks_ciphertext_free(u);
    ckks_ciphertext_free(x);
    return st;
}

/* Error bits as measured by tests/test_poly_eval.c (which recomputes and compares them).
 * Each row: the lowest depth found for sign error <= 2^-alpha over degrees {7, 15, 27, 31},
 * plus the (15, 15, 27) composite used by MPCNN-style ReLUs. */
static const ckks_sign_preset presets[] = {
    {6, 3, {7, 7, 7, 0}, 9, 6.437},
    {8, 3, {15, 15, 15, 0}, 12, 14.053},
    {10, 3, {15, 15, 27, 0}, 13, 7.339},
    {10, 4, {15, 7, 7, 15}, 14, 10.297},
    {13, 4, {27, 27, 15, 15}, 18, 17.234},
};

size_t ckks_sign_presets(const ckks_sign_preset **out)
{
    if (out) *out = presets;
    return sizeof presets / sizeof presets[0];
}

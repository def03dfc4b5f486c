/* Polynomials in the Chebyshev basis: interpolation, double evaluation, and homomorphic
 * evaluation by baby-step giant-step at depth ceil(log2(d + 1)) with exact output scale.
 *
 * Scheme. With L the input level, T_i is computed at level L - ceil(log2 i) as
 * T_i = 2 T_a T_b - T_c (a = 2^(ceil(log2 i) - 1), b = i - a, c = a - b): the product's scale
 * is s_a s_b, and T_c is brought to it by a multiplication by 1 at scale s_a s_b / s_c before
 * the single rescale. The polynomial is split recursively p = q T_m + r (m a power of two,
 * m > deg/2) until the pieces are leaves sum c_i T_i. A piece is evaluated "unrescaled" at
 * level l with scale S: leaves multiply T_i by c_i at scale S / s_i, so that every term has
 * scale S exactly; q is evaluated at level l + 1 with scale S q_(l+1) / s_m, rescaled, and
 * multiplied by T_m. The caller rescales once at the end, landing on the target scale. A
 * dry run of the same recursion chooses the baby-step size with the fewest products and the
 * exact set of powers to compute. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "circuits/circuits_internal.h"
#include "util/alloc.h"

/* ---- construction and double-precision evaluation ------------------------------------ */

static hecnn_status poly_alloc(ckks_poly **out, size_t degree, double a, double b)
{
    if (!out) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "output is NULL");
    *out = NULL;
    if (!(a < b) || !isfinite(a) || !isfinite(b))
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "interval [%g, %g] is empty or not finite", a, b);
    if (degree > (1u << 16)) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "degree %zu too large", degree);
    ckks_poly *p = hecnn_calloc(1, sizeof *p);
    if (!p) return hecnn_fail(HECNN_ERR_NO_MEMORY, "polynomial");
    p->c = hecnn_calloc(degree + 1, sizeof *p->c);
    if (!p->c) {
        hecnn_free(p);
        return hecnn_fail(HECNN_ERR_NO_MEMORY, "polynomial coefficients");
    }
    p->len = degree + 1;
    p->a = a;
    p->b = b;
    *out = p;
    return HECNN_OK;
}

hecnn_status ckks_poly_new(ckks_poly **out, const double *coeffs, size_t degree, double a, double b)
{
    if (!coeffs) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "coefficients are NULL");
    for (size_t i = 0; i <= degree; i++)
        if (!isfinite(coeffs[i])) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "coefficient %zu not finite", i);
    hecnn_status st = poly_alloc(out, degree, a, b);
    if (st) return st;
    memcpy((*out)->c, coeffs, (degree + 1) * sizeof *coeffs);
    return HECNN_OK;
}

void cheb_interpolate(double *c, size_t d, ckks_real_fn f, void *arg, double a, double b)
{
    const size_t n = d + 1;
    double *fx = hecnn_alloc(n * sizeof *fx);
    if (!fx) {
        memset(c, 0, n * sizeof *c);
        return;
    }
    for (size_t k = 0; k < n; k++) {
        double y = cos(M_PI * ((double)k + 0.5) / (double)n);
        fx[k] = f(0.5 * (b - a) * y + 0.5 * (a + b), arg);
    }
    for (size_t j = 0; j < n; j++) {
        double s = 0;
        for (size_t k = 0; k < n; k++) s += fx[k] * cos(M_PI * (double)j * ((double)k + 0.5) / (double)n);
        c[j] = s * 2.0 / (double)n;
    }
    c[0] *= 0.5;
    hecnn_free(fx);
}

double cheb_clenshaw(const double *c, size_t d, double y)
{
    double b1 = 0, b2 = 0;
    for (size_t i = d; i >= 1; i--) {
        double t = 2 * y * b1 - b2 + c[i];
        b2 = b1;
        b1 = t;
    }
    return y * b1 - b2 + c[0];
}

hecnn_status ckks_poly_interpolate(ckks_poly **out, ckks_real_fn f, void *arg, double a, double b, size_t degree)
{
    if (!f) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "function is NULL");
    hecnn_status st = poly_alloc(out, degree, a, b);
    if (st) return st;
    cheb_interpolate((*out)->c, degree, f, arg, a, b);
    for (size_t i = 0; i <= degree; i++)
        if (!isfinite((*out)->c[i])) {
            ckks_poly_free(*out);
            *out = NULL;
            return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "function not finite on [%g, %g]", a, b);
        }
    return HECNN_OK;
}

typedef struct mono_arg {
    const double *m;
    size_t d;
} mono_arg;

static double mono_eval(double x, void *arg)
{
    const mono_arg *ma = arg;
    double s = 0;
    for (size_t i = ma->d + 1; i-- > 0;) s = s * x + ma->m[i];
    return s;
}

hecnn_status ckks_poly_from_monomial(ckks_poly **out, const double *monomial, size_t degree, double a, double b)
{
    if (!monomial) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "coefficients are NULL");
    mono_arg ma = {monomial, degree};
    /* interpolation at degree + 1 nodes reproduces a degree-d polynomial exactly (up to rounding) */
    hecnn_status st = ckks_poly_interpolate(out, mono_eval, &ma, a, b, degree);
    if (st) return st;
    /* keep the parity of the input exactly */
    bool odd = true, even = true;
    for (size_t i = 0; i <= degree; i++) {
        if (monomial[i] != 0 && (i & 1) == 0) odd = false;
        if (monomial[i] != 0 && (i & 1) == 1) even = false;
    }
    if (a == -b && odd) ckks_poly_make_odd(*out);
    if (a == -b && even) ckks_poly_make_even(*out);
    return HECNN_OK;
}

hecnn_status ckks_poly_copy(ckks_poly **out, const ckks_poly *p)
{
    if (!p) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "polynomial is NULL");
    return ckks_poly_new(out, p->c, p->len - 1, p->a, p->b);
}

void ckks_poly_free(ckks_poly *p)
{
    if (!p) return;
    hecnn_free(p->c);
    hecnn_free(p);
}

size_t ckks_poly_degree(const ckks_poly *p)
{
    size_t d = p->len - 1;
    while (d > 0 && p->c[d] == 0) d--;
    return d;
}

const double *ckks_poly_coeffs(const ckks_poly *p) { return p->c; }
double ckks_poly_a(const ckks_poly *p) { return p->a; }
double ckks_poly_b(const ckks_poly *p) { return p->b; }

void ckks_poly_make_odd(ckks_poly *p)
{
    for (size_t i = 0; i < p->len; i += 2) p->c[i] = 0;
}

void ckks_poly_make_even(ckks_poly *p)
{
    for (size_t i = 1; i < p->len; i += 2) p->c[i] = 0;
}

unsigned ckks_poly_depth(const ckks_poly *p) { return clog2(ckks_poly_degree(p) + 1); }

double ckks_poly_eval(const ckks_poly *p, double x)
{
    double y = (2 * x - p->a - p->b) / (p->b - p->a);
    return cheb_clenshaw(p->c, ckks_poly_degree(p), y);
}

double ckks_poly_max_error(const ckks_poly *p, ckks_real_fn f, void *arg, size_t samples)
{
    double worst = 0;
    if (samples < 2) samples = 2;
    for (size_t i = 0; i < samples; i++) {
        double x = p->a + (p->b - p->a) * (double)i / (double)(samples - 1);
        double e = fabs(f(x, arg) - ckks_poly_eval(p, x));
        if (e > worst || isnan(e)) worst = e;
    }
    return worst;
}

/* ---- homomorphic evaluation ---------------------------------------------------------- */

typedef struct pe_state {
    const ckks_evaluator *ev;
    const ckks_context *ctx;
    bool sim;               /* dry run: record needs and count, touch no ciphertext */
    unsigned L;             /* level of T_1 */
    size_t n1;              /* baby steps: leaves have degree < n1 */
    size_t maxpow;          /* powers T_1..T_maxpow may exist */
    bool *need;             /* [maxpow + 1] */
    ckks_ciphertext **T;    /* [maxpow + 1] */
    unsigned mults;         /* ciphertext products (power basis + splits) */
    unsigned const_mults;
    bool infeasible;
} pe_state;

static int pow_level(const pe_state *st, size_t i) { return (int)st->L - (int)clog2(i); }

static size_t trim(const double *c, size_t deg)
{
    while (deg > 0 && c[deg] == 0) deg--;
    return deg;
}

/* mark T_i and what it is computed from */
static void need_power(pe_state *st, size_t i)
{
    if (i <= 1 || i > st->maxpow || st->need[i]) return;
    st->need[i] = true;
    size_t a = (size_t)1 << (clog2(i) - 1), b = i - a, c = a - b;
    need_power(st, a);
    need_power(st, b);
    need_power(st, c);
}

static hecnn_status drop_copy(const pe_state *st, ckks_ciphertext *dst, const ckks_ciphertext *src, unsigned level)
{
    return ckks_drop_level(st->ev, dst, src, level);
}

/* Leaf: sum c_i T_i at `level`, scale S, unrescaled. */
static hecnn_status eval_leaf(pe_state *st, const double *c, size_t deg, unsigned level, double S, ckks_ciphertext *out)
{
    if (st->sim) {
        for (size_t i = 1; i <= deg; i++)
            if (c[i] != 0) {
                if (i > st->maxpow || pow_level(st, i) < (int)level) st->infeasible = true;
                else if (i > 1) need_power(st, i);
                st->const_mults++;
            }
        return HECNN_OK;
    }
    hecnn_status s = HECNN_OK;
    ckks_ciphertext *tmp = NULL;
    bool have = false;
    if ((s = ckks_ciphertext_new(&tmp, st->ctx))) return s;
    for (size_t i = 1; i <= deg && !s; i++) {
        if (c[i] == 0) continue;
        const ckks_ciphertext *t = st->T[i];
        ckks_ciphertext *dst = have ? tmp : out;
        s = drop_copy(st, dst, t, level);
        if (!s) s = ckks_mul_const(st->ev, dst, dst, c[i], S / ckks_ciphertext_scale(t));
        if (!s) s = ckks_ciphertext_set_scale(dst, S);
        if (!s && have) s = ckks_add(st->ev, out, out, tmp);
        have = true;
    }
    if (!s && !have) {
        /* constant: a zero ciphertext from T_1 times 0 */
        s = drop_copy(st, out, st->T[1], level);
        if (!s) s = ckks_mul_const(st->ev, out, out, 0.0, S / ckks_ciphertext_scale(st->T[1]));
        if (!s) s = ckks_ciphertext_set_scale(out, S);
    }
    if (!s && c[0] != 0) s = ckks_add_const(st->ev, out, out, c[0]);
    ckks_ciphertext_free(tmp);
    return s;
}

static hecnn_status eval_rec(pe_state *st, const double *c, size_t deg, unsigned level, double S, ckks_ciphertext *out)
{
    deg = trim(c, deg);
    if (st->infeasible) return HECNN_OK;
    bool leaf = deg < st->n1;
    for (size_t i = 1; leaf && i <= deg; i++)
        if (c[i] != 0 && (i > st->maxpow || pow_level(st, i) < (int)level)) leaf = false;
    if (leaf) return eval_leaf(st, c, deg, level, S, out);

    size_t m = (size_t)1 << (clog2(deg + 1) - 1); /* largest power of two <= deg */
    if (m > st->maxpow || pow_level(st, m) < (int)level) {
        st->infeasible = true;
        return HECNN_OK;
    }
    const size_t qdeg = deg - m;
    double *q = hecnn_alloc((qdeg + 1 + m) * sizeof *q);
    if (!q) return hecnn_fail(HECNN_ERR_NO_MEMORY, "polynomial split");
    double *r = q + qdeg + 1;
    /* T_m T_k = (T_(m+k) + T_(m-k)) / 2 */
    q[0] = c[m];
    for (size_t k = 1; k <= qdeg; k++) q[k] = 2 * c[m + k];
    memcpy(r, c, m * sizeof *r);
    for (size_t k = 1; k <= qdeg; k++) r[m - k] -= c[m + k];
    size_t rdeg = trim(r, m - 1);
    bool r_const = rdeg == 0;
    hecnn_status s = HECNN_OK;

    if (st->sim) {
        need_power(st, m);
        if (qdeg == 0) {
            st->const_mults++;
        } else {
            st->mults++;
            if (level + 1 > st->L) st->infeasible = true;
            else s = eval_rec(st, q, qdeg, level + 1, 0, NULL);
        }
        if (!s && !r_const) s = eval_rec(st, r, rdeg, level, 0, NULL);
        hecnn_free(q);
        return s;
    }

    const ckks_ciphertext *Tm = st->T[m];
    const double sm = ckks_ciphertext_scale(Tm);
    ckks_ciphertext *tq = NULL, *tm = NULL;
    if ((s = ckks_ciphertext_new(&tq, st->ctx)) || (s = ckks_ciphertext_new(&tm, st->ctx))) goto done;
    if (qdeg == 0) {
        s = drop_copy(st, out, Tm, level);
        if (!s) s = ckks_mul_const(st->ev, out, out, q[0], S / sm);
    } else {
        const double qnext = (double)ckks_context_q(st->ctx, level + 1);
        s = eval_rec(st, q, qdeg, level + 1, S * qnext / sm, tq);
        if (!s) s = ckks_rescale(st->ev, tq, tq);
        if (!s) s = ckks_ciphertext_set_scale(tq, S / sm);
        if (!s) s = drop_copy(st, tm, Tm, level);
        if (!s) s = ckks_mul_relin(st->ev, out, tq, tm);
    }
    if (!s) s = ckks_ciphertext_set_scale(out, S);
    if (!s) {
        if (r_const) {
            if (r[0] != 0) s = ckks_add_const(st->ev, out, out, r[0]);
        } else {
            s = eval_rec(st, r, rdeg, level, S, tq);
            if (!s) s = ckks_add(st->ev, out, out, tq);
        }
    }
done:
    ckks_ciphertext_free(tq);
    ckks_ciphertext_free(tm);
    hecnn_free(q);
    return s;
}

/* T_i = 2 T_a T_b - T_c at level L - ceil(log2 i). */
static hecnn_status gen_power(pe_state *st, size_t i)
{
    size_t a = (size_t)1 << (clog2(i) - 1), b = i - a, c = a - b;
    const ckks_ciphertext *ta = st->T[a], *tb = st->T[b];
    ckks_ciphertext *out = st->T[i], *tmp = NULL;
    hecnn_status s = ckks_ciphertext_new(&tmp, st->ctx);
    if (s) return s;
    const unsigned lev = (unsigned)pow_level(st, a); /* <= level of T_b */
    if (a == b) {
        s = ckks_square_relin(st->ev, out, ta);
    } else {
        s = drop_copy(st, tmp, tb, lev);
        if (!s) s = ckks_mul_relin(st->ev, out, ta, tmp);
    }
    const double sp = ckks_ciphertext_scale(out);
    if (!s) s = ckks_add(st->ev, out, out, out);
    if (!s) {
        if (c == 0) {
            s = ckks_add_const(st->ev, out, out, -1.0);
        } else {
            const ckks_ciphertext *tc = st->T[c];
            s = drop_copy(st, tmp, tc, lev);
            if (!s) s = ckks_mul_const(st->ev, tmp, tmp, 1.0, sp / ckks_ciphertext_scale(tc));
            if (!s) s = ckks_ciphertext_set_scale(tmp, sp);
            if (!s) s = ckks_sub(st->ev, out, out, tmp);
        }
    }
    if (!s) s = ckks_rescale(st->ev, out, out);
    ckks_ciphertext_free(tmp);
    return s;
}

/* Choose the baby-step size by dry runs; fills st->n1, st->need, counts. */
static hecnn_status plan(pe_state *st, const double *c, size_t deg, unsigned L, unsigned D)
{
    size_t maxpow = (size_t)1 << (D ? D - 1 : 0);
    if (maxpow < deg) maxpow = deg;
    st->maxpow = maxpow;
    st->L = L;
    bool *best_need = hecnn_calloc(maxpow + 1, 1);
    st->need = hecnn_calloc(maxpow + 1, 1);
    if (!best_need || !st->need) {
        hecnn_free(best_need);
        hecnn_free(st->need);
        st->need = NULL;
        return hecnn_fail(HECNN_ERR_NO_MEMORY, "polynomial plan");
    }
    double best_cost = INFINITY;
    size_t best_n1 = 0;
    unsigned best_mults = 0, best_consts = 0;
    for (unsigned l = 1; l <= (D > 1 ? D : 1); l++) {
        memset(st->need, 0, maxpow + 1);
        st->n1 = (size_t)1 << l;
        st->sim = true;
        st->mults = st->const_mults = 0;
        st->infeasible = false;
        hecnn_status s = eval_rec(st, c, deg, L - D + 1, 0, NULL);
        if (s) {
            hecnn_free(best_need);
            return s;
        }
        if (st->infeasible) continue;
        unsigned powers = 0;
        for (size_t i = 2; i <= maxpow; i++) powers += st->need[i];
        unsigned mults = st->mults + powers;
        double cost = mults + 0.05 * st->const_mults;
        if (cost < best_cost) {
            best_cost = cost;
            best_n1 = st->n1;
            best_mults = mults;
            best_consts = st->const_mults;
            memcpy(best_need, st->need, maxpow + 1);
        }
    }
    hecnn_free(st->need);
    st->need = best_need;
    if (!best_n1) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "no evaluation plan for degree %zu", deg);
    st->n1 = best_n1;
    st->mults = best_mults;
    st->const_mults = best_consts;
    st->sim = false;
    return HECNN_OK;
}

/* Largest |log2(s_i / q_(level of T_i))| over the planned powers when T_1 has scale s1. */
static double power_drift_bits(const pe_state *st, const ckks_context *ctx, double s1)
{
    double *sc = hecnn_calloc(st->maxpow + 1, sizeof *sc);
    if (!sc) return INFINITY;
    sc[1] = s1;
    double worst = fabs(log2(s1 / (double)ckks_context_q(ctx, st->L)));
    for (size_t i = 2; i <= st->maxpow; i++) {
        if (!st->need[i]) continue;
        size_t a = (size_t)1 << (clog2(i) - 1), b = i - a;
        const unsigned lev = (unsigned)pow_level(st, a);
        sc[i] = sc[a] * sc[b] / (double)ckks_context_q(ctx, lev);
        worst = fmax(worst, fabs(log2(sc[i] / (double)ckks_context_q(ctx, lev - 1))));
    }
    hecnn_free(sc);
    return worst;
}

unsigned ckks_poly_mul_count(const ckks_poly *p)
{
    size_t deg = ckks_poly_degree(p);
    unsigned D = clog2(deg + 1);
    pe_state st = {0};
    if (deg == 0 || plan(&st, p->c, deg, D, D)) {
        hecnn_free(st.need);
        return 0;
    }
    hecnn_free(st.need);
    return st.mults;
}

unsigned ckks_poly_levels_used(const ckks_context *ctx, const ckks_poly *p, unsigned level, double scale)
{
    const size_t deg = ckks_poly_degree(p);
    const unsigned D = clog2(deg + 1);
    if (deg == 0 || level <= D) return D;
    pe_state st = {.ctx = ctx};
    if (plan(&st, p->c, deg, level, D)) return D;
    double drift = power_drift_bits(&st, ctx, scale * (p->b - p->a) / 2);
    hecnn_free(st.need);
    return drift > 10 ? D + 1 : D;
}

hecnn_status ckks_poly_evaluate(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *in,
                                const ckks_poly *p, double target_scale)
{
    if (!ev || !out || !in || !p) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    const ckks_context *ctx = ckks_evaluator_context(ev);
    const unsigned L = ckks_ciphertext_level(in);
    const double sin_ = ckks_ciphertext_scale(in);
    if (target_scale == 0) target_scale = sin_;
    if (!(target_scale > 0) || !isfinite(target_scale))
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "target scale %g", target_scale);
    const size_t deg = ckks_poly_degree(p);
    const unsigned D = clog2(deg + 1);
    if (L < D) return hecnn_fail(HECNN_ERR_LEVEL_MISMATCH, "degree %zu needs %u levels, input at level %u", deg, D, L);
    if (ckks_ciphertext_degree(in) != 1)
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "input must be relinearized");

    pe_state st = {.ev = ev, .ctx = ctx};
    hecnn_status s = HECNN_OK;
    const double alpha = 2.0 / (p->b - p->a), beta = -(p->a + p->b) / (p->b - p->a);

    if (deg == 0) {
        /* constant: in * 0 + c_0 at the target scale, level L (no level used) */
        s = ckks_mul_const(ev, out, in, 0.0, target_scale / sin_);
        if (!s) s = ckks_ciphertext_set_scale(out, target_scale);
        if (!s) s = ckks_add_const(ev, out, out, p->c[0]);
        return s;
    }
    /* T_1 = alpha x + beta. Folding alpha into the scale is free, but the power basis scales
     * then drift as s_1^(2^k) / (q ... q): when that drifts far from the primes, spend one level
     * on a constant multiplication that puts T_1 at the nominal scale q_(L-1). */
    unsigned L1 = L;
    double s1 = sin_ / alpha;
    if ((s = plan(&st, p->c, deg, L1, D))) return s;
    if (power_drift_bits(&st, ctx, s1) > 10 && L > D) {
        hecnn_free(st.need);
        st.need = NULL;
        L1 = L - 1;
        s1 = (double)ckks_context_q(ctx, L - 1);
        if ((s = plan(&st, p->c, deg, L1, D))) return s;
    }
    st.T = hecnn_calloc(st.maxpow + 1, sizeof *st.T);
    if (!st.T) {
        hecnn_free(st.need);
        return hecnn_fail(HECNN_ERR_NO_MEMORY, "power basis");
    }
    st.need[1] = true;
    for (size_t i = 1; i <= st.maxpow && !s; i++)
        if (st.need[i]) s = ckks_ciphertext_new(&st.T[i], ctx);
    ckks_ciphertext *res = NULL;
    if (!s) s = ckks_ciphertext_new(&res, ctx);
    if (L1 == L) {
        if (!s) s = ckks_ciphertext_copy(st.T[1], in);
        if (!s && alpha != 1.0) s = ckks_ciphertext_set_scale(st.T[1], s1);
    } else {
        const double cs = s1 * (double)ckks_context_q(ctx, L) / sin_;
        if (!s) s = ckks_mul_const(ev, st.T[1], in, alpha, cs);
        if (!s) s = ckks_rescale(ev, st.T[1], st.T[1]);
        if (!s) s = ckks_ciphertext_set_scale(st.T[1], s1);
    }
    if (!s && beta != 0.0) s = ckks_add_const(ev, st.T[1], st.T[1], beta);
    for (size_t i = 2; i <= st.maxpow && !s; i++)
        if (st.need[i]) s = gen_power(&st, i);
    const unsigned out_level = L1 - D;
    if (!s) s = eval_rec(&st, p->c, deg, out_level + 1, target_scale * (double)ckks_context_q(ctx, out_level + 1), res);
    if (!s) s = ckks_rescale(ev, res, res);
    if (!s) s = ckks_ciphertext_set_scale(res, target_scale);
    if (!s) s = ckks_ciphertext_copy(out, res);
    ckks_ciphertext_free(res);
    for (size_t i = 1; i <= st.maxpow; i++) ckks_ciphertext_free(st.T[i]);
    hecnn_free(st.T);
    hecnn_free(st.need);
    return s;
}

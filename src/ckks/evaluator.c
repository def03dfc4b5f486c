/* Homomorphic operations. Every operation checks parameter ids, levels, scales and keys first;
 * results are written through a temporary when the output aliases an input whose layout changes. */
#include <math.h>
#include <string.h>

#include "ckks/internal.h"
#include "ring/rns_kernels.h"

hecnn_status ckks_evaluator_new(ckks_evaluator **out, const ckks_context *ctx, const ckks_eval_keys *keys)
{
    if (!out || !ctx) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    if (keys && keys->ctx->param_id != ctx->param_id) return hecnn_fail(HECNN_ERR_PARAMS_MISMATCH, "keys of another context");
    *out = hecnn_calloc(1, sizeof **out);
    if (!*out) return hecnn_fail(HECNN_ERR_NO_MEMORY, "evaluator");
    (*out)->ctx = ctx;
    (*out)->keys = keys;
    return HECNN_OK;
}

void ckks_evaluator_free(ckks_evaluator *ev) { hecnn_free(ev); }
const ckks_context *ckks_evaluator_context(const ckks_evaluator *ev) { return ev->ctx; }

static hecnn_status check_ct(const ckks_evaluator *ev, const ckks_ciphertext *ct)
{
    if (!ct || !ct->data) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL or empty ciphertext");
    if (ct->ctx->param_id != ev->ctx->param_id) return hecnn_fail(HECNN_ERR_PARAMS_MISMATCH, "ciphertext of another context");
    return HECNN_OK;
}

static hecnn_status check_args(const ckks_evaluator *ev, const ckks_ciphertext *out, const ckks_ciphertext *a)
{
    if (!ev || !out) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    if (out->ctx->param_id != ev->ctx->param_id) return hecnn_fail(HECNN_ERR_PARAMS_MISMATCH, "output of another context");
    return check_ct(ev, a);
}

static hecnn_status check_pair(const ckks_evaluator *ev, const ckks_ciphertext *out, const ckks_ciphertext *a,
                               const ckks_ciphertext *b)
{
    hecnn_status st = check_args(ev, out, a);
    if (!st) st = check_ct(ev, b);
    if (st) return st;
    if (a->level != b->level) return hecnn_fail(HECNN_ERR_LEVEL_MISMATCH, "levels %u and %u differ", a->level, b->level);
    return HECNN_OK;
}

/* Destination for a result of (degree, level): `out` itself, or `tmp` when out aliases an input
 * and its layout would change. end_output() moves tmp into out. */
static hecnn_status begin_output(ckks_ciphertext *out, ckks_ciphertext *tmp, ckks_ciphertext **dst, unsigned degree,
                                 unsigned level, bool alias)
{
    const size_t need = ((size_t)degree + 1) * ((size_t)level + 1);
    if (alias && (need > out->capacity || level != out->level || degree != out->degree)) {
        *tmp = (ckks_ciphertext){.ctx = out->ctx};
        *dst = tmp;
    } else {
        *dst = out;
    }
    return ct_reserve(*dst, degree, level);
}

static void end_output(ckks_ciphertext *out, ckks_ciphertext *dst, double scale, size_t slots)
{
    if (dst != out) {
        hecnn_free(out->data);
        out->data = dst->data;
        out->capacity = dst->capacity;
        out->degree = dst->degree;
        out->level = dst->level;
        out->seeded = false;
    }
    out->scale = scale;
    out->slots = slots;
}

static hecnn_status add_sub(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a,
                            const ckks_ciphertext *b, bool subtract)
{
    hecnn_status st = check_pair(ev, out, a, b);
    if (st) return st;
    if (!scales_equal(a->scale, b->scale))
        return hecnn_fail(HECNN_ERR_SCALE_MISMATCH, "scales 2^%.4f and 2^%.4f differ", log2(a->scale), log2(b->scale));
    const unsigned deg = a->degree > b->degree ? a->degree : b->degree, level = a->level;
    const double scale = a->scale;
    const size_t slots = a->slots > b->slots ? a->slots : b->slots;
    ckks_ciphertext tmp, *dst;
    if ((st = begin_output(out, &tmp, &dst, deg, level, out == a || out == b))) return st;
    rns_basis basis;
    rlwe_basis_q(&ev->ctx->rlwe, &basis, level);
    for (unsigned c = 0; c <= deg; c++) {
        uint64_t *o = ct_comp(dst, c);
        const bool in_a = c <= a->degree, in_b = c <= b->degree;
        if (in_a && in_b) {
            if (subtract) rns_sub(&basis, o, ct_comp(a, c), ct_comp(b, c));
            else rns_add(&basis, o, ct_comp(a, c), ct_comp(b, c));
        } else if (in_a) {
            if (o != ct_comp(a, c)) memcpy(o, ct_comp(a, c), basis.limbs * basis.n * 8);
        } else if (subtract) {
            rns_neg(&basis, o, ct_comp(b, c));
        } else if (o != ct_comp(b, c)) {
            memcpy(o, ct_comp(b, c), basis.limbs * basis.n * 8);
        }
    }
    end_output(out, dst, scale, slots);
    return HECNN_OK;
}

hecnn_status ckks_add(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a, const ckks_ciphertext *b)
{
    return add_sub(ev, out, a, b, false);
}

hecnn_status ckks_sub(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a, const ckks_ciphertext *b)
{
    return add_sub(ev, out, a, b, true);
}

hecnn_status ckks_negate(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a)
{
    hecnn_status st = check_args(ev, out, a);
    if (st) return st;
    ckks_ciphertext tmp, *dst;
    const double scale = a->scale;
    const size_t slots = a->slots;
    if ((st = begin_output(out, &tmp, &dst, a->degree, a->level, out == a))) return st;
    rns_basis basis;
    rlwe_basis_q(&ev->ctx->rlwe, &basis, a->level);
    for (unsigned c = 0; c <= a->degree; c++) rns_neg(&basis, ct_comp(dst, c), ct_comp(a, c));
    end_output(out, dst, scale, slots);
    return HECNN_OK;
}

static hecnn_status check_plain(const ckks_evaluator *ev, const ckks_ciphertext *a, const ckks_plaintext *p)
{
    if (!p || !p->data) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL or empty plaintext");
    if (p->ctx->param_id != ev->ctx->param_id) return hecnn_fail(HECNN_ERR_PARAMS_MISMATCH, "plaintext of another context");
    if (p->level < a->level)
        return hecnn_fail(HECNN_ERR_LEVEL_MISMATCH, "plaintext level %u below ciphertext level %u", p->level, a->level);
    return HECNN_OK;
}

/* mode 0: add, 1: sub, 2: mul */
static hecnn_status plain_op(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a,
                             const ckks_plaintext *p, int mode)
{
    hecnn_status st = check_args(ev, out, a);
    if (!st) st = check_plain(ev, a, p);
    if (st) return st;
    if (mode != 2 && !scales_equal(a->scale, p->scale))
        return hecnn_fail(HECNN_ERR_SCALE_MISMATCH, "scales 2^%.4f and 2^%.4f differ", log2(a->scale), log2(p->scale));
    const double scale = mode == 2 ? a->scale * p->scale : a->scale;
    const size_t slots = a->slots > p->slots ? a->slots : p->slots;
    ckks_ciphertext tmp, *dst;
    if ((st = begin_output(out, &tmp, &dst, a->degree, a->level, out == a))) return st;
    rns_basis basis;
    rlwe_basis_q(&ev->ctx->rlwe, &basis, a->level);
    const size_t size = basis.limbs * basis.n * 8;
    for (unsigned c = 0; c <= a->degree; c++) {
        uint64_t *o = ct_comp(dst, c);
        if (mode == 2) rns_mul(&basis, o, ct_comp(a, c), p->data);
        else if (c == 0 && mode == 0) rns_add(&basis, o, ct_comp(a, c), p->data);
        else if (c == 0) rns_sub(&basis, o, ct_comp(a, c), p->data);
        else if (o != ct_comp(a, c)) memcpy(o, ct_comp(a, c), size);
    }
    end_output(out, dst, scale, slots);
    return HECNN_OK;
}

hecnn_status ckks_add_plain(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a, const ckks_plaintext *b)
{
    return plain_op(ev, out, a, b, 0);
}

hecnn_status ckks_sub_plain(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a, const ckks_plaintext *b)
{
    return plain_op(ev, out, a, b, 1);
}

hecnn_status ckks_mul_plain(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a, const ckks_plaintext *b)
{
    return plain_op(ev, out, a, b, 2);
}

/* The constant re + im * X^(N/2) (X^(N/2) evaluates to i in every slot) at `level`, in NTT form;
 * both parts already multiplied by their scale. Returns NULL on allocation failure. */
static uint64_t *complex_constant_ntt(const ckks_context *ctx, double re, double im, unsigned level)
{
    const size_t n = ctx->rlwe.n;
    uint64_t *poly = hecnn_calloc((size_t)(level + 1) * n, 8);
    if (!poly) return NULL;
    uint64_t r[CKKS_MAX_PRIMES], m[CKKS_MAX_PRIMES];
    ckks_const_residues(ctx, r, re, level);
    ckks_const_residues(ctx, m, im, level);
    for (unsigned k = 0; k <= level; k++) {
        poly[(size_t)k * n] = r[k];
        poly[(size_t)k * n + n / 2] = m[k];
    }
    rns_basis b;
    rlwe_basis_q(&ctx->rlwe, &b, level);
    rns_ntt(&b, poly);
    return poly;
}

hecnn_status ckks_add_const(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a, double complex c)
{
    hecnn_status st = check_args(ev, out, a);
    if (st) return st;
    if (!isfinite(creal(c)) || !isfinite(cimag(c))) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "constant not finite");
    if (out != a && (st = ckks_ciphertext_copy(out, a))) return st;
    rns_basis basis;
    rlwe_basis_q(&ev->ctx->rlwe, &basis, a->level);
    if (cimag(c) == 0) {
        uint64_t r[CKKS_MAX_PRIMES];
        ckks_const_residues(ev->ctx, r, creal(c) * out->scale, out->level);
        rns_add_scalar(&basis, ct_comp(out, 0), ct_comp(out, 0), r);
    } else {
        uint64_t *k = complex_constant_ntt(ev->ctx, creal(c) * out->scale, cimag(c) * out->scale, out->level);
        if (!k) return hecnn_fail(HECNN_ERR_NO_MEMORY, "constant");
        rns_add(&basis, ct_comp(out, 0), ct_comp(out, 0), k);
        hecnn_free(k);
    }
    out->seeded = false;
    return HECNN_OK;
}

hecnn_status ckks_mul_const(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a, double complex c,
                            double const_scale)
{
    hecnn_status st = check_args(ev, out, a);
    if (st) return st;
    if (!isfinite(creal(c)) || !isfinite(cimag(c))) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "constant not finite");
    if (const_scale == 0) const_scale = (double)ev->ctx->rlwe.tables[a->level].mod.q;
    if (!(const_scale > 0) || !isfinite(const_scale)) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "const_scale must be > 0");
    if (out != a && (st = ckks_ciphertext_copy(out, a))) return st;
    rns_basis basis;
    rlwe_basis_q(&ev->ctx->rlwe, &basis, out->level);
    if (cimag(c) == 0) {
        uint64_t r[CKKS_MAX_PRIMES];
        ckks_const_residues(ev->ctx, r, creal(c) * const_scale, out->level);
        for (unsigned k = 0; k <= out->degree; k++) rns_mul_scalar(&basis, ct_comp(out, k), ct_comp(out, k), r);
    } else {
        uint64_t *k = complex_constant_ntt(ev->ctx, creal(c) * const_scale, cimag(c) * const_scale, out->level);
        if (!k) return hecnn_fail(HECNN_ERR_NO_MEMORY, "constant");
        for (unsigned j = 0; j <= out->degree; j++) rns_mul(&basis, ct_comp(out, j), ct_comp(out, j), k);
        hecnn_free(k);
    }
    out->scale *= const_scale;
    out->seeded = false;
    return HECNN_OK;
}

hecnn_status ckks_mul_integer(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a, int64_t k)
{
    hecnn_status st = check_args(ev, out, a);
    if (st) return st;
    if (out != a && (st = ckks_ciphertext_copy(out, a))) return st;
    rns_basis basis;
    rlwe_basis_q(&ev->ctx->rlwe, &basis, out->level);
    uint64_t r[CKKS_MAX_PRIMES];
    for (unsigned i = 0; i <= out->level; i++) r[i] = from_signed(k, ev->ctx->rlwe.tables[i].mod.q);
    for (unsigned c = 0; c <= out->degree; c++) rns_mul_scalar(&basis, ct_comp(out, c), ct_comp(out, c), r);
    out->seeded = false;
    return HECNN_OK;
}

hecnn_status ckks_dot_integer(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *const *in,
                              const int64_t *k, size_t count, bool accumulate)
{
    if (!ev || !out || (!in && count) || (!k && count)) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    if (!count && !accumulate) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "empty combination");
    const ckks_ciphertext *ref = count ? in[0] : out;
    hecnn_status st = check_args(ev, out, ref);
    if (st) return st;
    for (size_t j = 0; j < count; j++) {
        if ((st = check_ct(ev, in[j]))) return st;
        if (in[j] == out) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "output aliases input %zu", j);
        if (in[j]->degree != 1) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "input %zu has degree %u", j, in[j]->degree);
        if (in[j]->level != ref->level)
            return hecnn_fail(HECNN_ERR_LEVEL_MISMATCH, "input %zu at level %u, input 0 at %u", j, in[j]->level, ref->level);
        if (fabs(in[j]->scale / ref->scale - 1) > 0x1p-40)
            return hecnn_fail(HECNN_ERR_SCALE_MISMATCH, "input %zu at scale 2^%.3f, input 0 at 2^%.3f", j,
                              log2(in[j]->scale), log2(ref->scale));
    }
    if (accumulate) {
        if (out->degree != 1 || out->level != ref->level)
            return hecnn_fail(HECNN_ERR_LEVEL_MISMATCH, "accumulator at level %u, inputs at %u", out->level, ref->level);
        if (fabs(out->scale / ref->scale - 1) > 0x1p-40)
            return hecnn_fail(HECNN_ERR_SCALE_MISMATCH, "accumulator scale differs from the inputs'");
    } else {
        if ((st = ct_reserve(out, 1, ref->level))) return st;
        out->scale = ref->scale;
        out->slots = ref->slots;
    }
    const size_t n = ev->ctx->rlwe.n;
    /* Montgomery: weights pre-multiplied by 2^64, sums of REDC_TERMS products reduced once */
    uint64_t w[REDC_TERMS];
    for (unsigned i = 0; i <= ref->level; i++) {
        const modulus *m = &ev->ctx->rlwe.tables[i].mod;
        for (unsigned c = 0; c < 2; c++) {
            uint64_t *o = ct_comp(out, c) + (size_t)i * n;
            if (!accumulate) memset(o, 0, n * 8);
            for (size_t j0 = 0; j0 < count; j0 += REDC_TERMS) {
                const size_t t = count - j0 < REDC_TERMS ? count - j0 : REDC_TERMS;
                const uint64_t *src[REDC_TERMS];
                for (size_t u = 0; u < t; u++) {
                    w[u] = mul_mod(from_signed(k[j0 + u], m->q), m->r_mod, m);
                    src[u] = ct_comp(in[j0 + u], c) + (size_t)i * n;
                }
                for (size_t x = 0; x < n; x++) {
                    u128 s = 0;
                    for (size_t u = 0; u < t; u++) s += (u128)w[u] * src[u][x];
                    o[x] = add_mod(o[x], redc128(s, m), m->q);
                }
            }
        }
    }
    out->seeded = false;
    return HECNN_OK;
}

/* X^k in NTT form is pointwise: the forward NTT evaluates at psi^(2 brv(i) + 1) in slot i, so slot
 * brv(m) is multiplied by psi^(k (2m + 1)) = psi^k (psi^2k)^m, from the twiddle root (no NTT). For
 * k = j N/2 (1, i, -1, -i in the slots) that is psi^k (-1)^(jm): one constant on each half of the
 * limb, m being odd exactly in the upper half. Otherwise one table per limb, shared by all
 * components. */
hecnn_status ckks_mul_monomial(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a, int64_t k)
{
    hecnn_status st = check_args(ev, out, a);
    if (st) return st;
    const ckks_context *ctx = ev->ctx;
    const size_t n = ctx->rlwe.n, half = n / 2;
    const int64_t two_n = 2 * (int64_t)n;
    const uint64_t e = (uint64_t)(k % two_n + (k % two_n < 0 ? two_n : 0));
    if (out != a && (st = ckks_ciphertext_copy(out, a))) return st;
    if (e == 0) return HECNN_OK;
    const unsigned level = out->level, log_n = ctx->rlwe.log_n;
    const rns_kernels *kern = rns_kernels_active();
    if (e % half == 0) {
        const bool odd_j = (e / half) & 1;
        for (unsigned l = 0; l <= level; l++) {
            const ntt_table *t = &ctx->rlwe.tables[l];
            const uint64_t q = t->mod.q, w0 = pow_mod(t->psi, e, &t->mod), w1 = odd_j ? neg_mod(w0, q) : w0;
            const uint64_t p0 = shoup_precompute(w0, q), p1 = shoup_precompute(w1, q);
            for (unsigned c = 0; c <= out->degree; c++) {
                uint64_t *x = ct_comp(out, c) + (size_t)l * n;
                kern->mul_scalar(x, x, half, w0, p0, q);
                kern->mul_scalar(x + half, x + half, half, w1, p1, q);
            }
        }
        out->seeded = false;
        return HECNN_OK;
    }
    uint64_t *w = hecnn_alloc((size_t)(level + 1) * n * 8);
    size_t *rev = hecnn_alloc(n * sizeof *rev);
    if (!w || !rev) {
        hecnn_free(w);
        hecnn_free(rev);
        return hecnn_fail(HECNN_ERR_NO_MEMORY, "monomial");
    }
    for (size_t m = 0; m < n; m++) {
        size_t i = 0;
        for (unsigned b = 0; b < log_n; b++) i |= ((m >> b) & 1) << (log_n - 1 - b);
        rev[m] = i;
    }
    for (unsigned l = 0; l <= level; l++) {
        const ntt_table *t = &ctx->rlwe.tables[l];
        uint64_t *wl = w + (size_t)l * n;
        uint64_t x = pow_mod(t->psi, e, &t->mod);
        const uint64_t step = mul_mod(x, x, &t->mod);
        for (size_t m = 0; m < n; m++) {
            wl[rev[m]] = x;
            x = mul_mod(x, step, &t->mod);
        }
    }
    rns_basis basis;
    rlwe_basis_q(&ctx->rlwe, &basis, level);
    for (unsigned c = 0; c <= out->degree; c++) rns_mul(&basis, ct_comp(out, c), ct_comp(out, c), w);
    hecnn_free(w);
    hecnn_free(rev);
    out->seeded = false;
    return HECNN_OK;
}

hecnn_status ckks_mul_i(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a)
{
    if (!ev) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    return ckks_mul_monomial(ev, out, a, (int64_t)(ev->ctx->rlwe.n / 2));
}

hecnn_status ckks_mul(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a, const ckks_ciphertext *b)
{
    hecnn_status st = check_pair(ev, out, a, b);
    if (st) return st;
    if (a->degree != 1 || b->degree != 1) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "mul needs degree-1 inputs (relinearize first)");
    const unsigned level = a->level;
    const double scale = a->scale * b->scale;
    const size_t slots = a->slots > b->slots ? a->slots : b->slots;
    ckks_ciphertext tmp = {.ctx = out->ctx}, *dst = &tmp;
    if (out != a && out != b) dst = out;
    if ((st = ct_reserve(dst, 2, level))) return st;
    const size_t n = ev->ctx->rlwe.n;
    const uint64_t *a0 = ct_comp(a, 0), *a1 = ct_comp(a, 1), *b0 = ct_comp(b, 0), *b1 = ct_comp(b, 1);
    uint64_t *d0 = ct_comp(dst, 0), *d1 = ct_comp(dst, 1), *d2 = ct_comp(dst, 2);
    const rns_kernels *kern = rns_kernels_active();
#pragma omp parallel for schedule(static)
    for (unsigned k = 0; k <= level; k++) {
        const modulus *m = &ev->ctx->rlwe.tables[k].mod;
        const size_t i = (size_t)k * n;
        kern->tensor(d0 + i, d1 + i, d2 + i, a0 + i, a1 + i, b0 + i, b1 + i, n, m);
    }
    end_output(out, dst, scale, slots);
    return HECNN_OK;
}

/* out = (a_0 + k_0, [a_1] + k_1) with (k_0, k_1) the key switch of component `from` of a under key:
 * relinearization switches a_2 and keeps a_1; a change of secret switches a_1 and drops it. */
static hecnn_status switch_component(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a,
                                     unsigned from, const ckks_switching_key *key)
{
    const unsigned level = a->level;
    const size_t words = (size_t)(level + 1) * ev->ctx->rlwe.n;
    uint64_t *k0 = hecnn_alloc(2 * words * 8);
    if (!k0) return hecnn_fail(HECNN_ERR_NO_MEMORY, "key switching");
    uint64_t *k1 = k0 + words;
    hecnn_status st = keyswitch(&ev->ctx->rlwe, k0, k1, ct_comp(a, from), level, &key->rlwe);
    const double scale = a->scale;
    const size_t slots = a->slots;
    ckks_ciphertext tmp, *dst;
    if (!st) st = begin_output(out, &tmp, &dst, 1, level, false);
    if (!st) {
        rns_basis basis;
        rlwe_basis_q(&ev->ctx->rlwe, &basis, level);
        /* a's first two components sit at the same offsets in out when out == a */
        rns_add(&basis, ct_comp(dst, 0), ct_comp(a, 0), k0);
        if (from == 2) rns_add(&basis, ct_comp(dst, 1), ct_comp(a, 1), k1);
        else memcpy(ct_comp(dst, 1), k1, words * 8);
        end_output(out, dst, scale, slots);
    }
    hecnn_free(k0);
    return st;
}

hecnn_status ckks_relinearize(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a)
{
    hecnn_status st = check_args(ev, out, a);
    if (st) return st;
    if (a->degree == 1) return ckks_ciphertext_copy(out, a);
    if (a->degree != 2) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "degree %u", a->degree);
    const ckks_switching_key *rk = ckks_eval_keys_relin(ev->keys);
    if (!rk) return hecnn_fail(HECNN_ERR_MISSING_KEY, "no relinearization key");
    return switch_component(ev, out, a, 2, rk);
}

hecnn_status ckks_mul_relin(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a, const ckks_ciphertext *b)
{
    if (!ev || !ckks_eval_keys_relin(ev->keys)) return hecnn_fail(HECNN_ERR_MISSING_KEY, "no relinearization key");
    ckks_ciphertext tmp = {.ctx = ev->ctx};
    hecnn_status st = ckks_mul(ev, &tmp, a, b);
    if (!st) st = ckks_relinearize(ev, out, &tmp);
    hecnn_free(tmp.data);
    return st;
}

hecnn_status ckks_square_relin(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a)
{
    return ckks_mul_relin(ev, out, a, a);
}

hecnn_status ckks_rescale(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a)
{
    hecnn_status st = check_args(ev, out, a);
    if (st) return st;
    if (a->level == 0) return hecnn_fail(HECNN_ERR_LEVEL_MISMATCH, "no level left to rescale");
    const ckks_context *ctx = ev->ctx;
    const unsigned level = a->level, deg = a->degree;
    const size_t n = ctx->rlwe.n;
    const uint64_t ql = ctx->rlwe.tables[level].mod.q;
    const double scale = a->scale / (double)ql;
    const size_t slots = a->slots;
    uint64_t *last = hecnn_alloc(((size_t)deg + 1) * n * 8);
    if (!last) return hecnn_fail(HECNN_ERR_NO_MEMORY, "rescale");
    for (unsigned c = 0; c <= deg; c++) {
        memcpy(last + (size_t)c * n, ct_comp(a, c) + (size_t)level * n, n * 8);
        ntt_inverse(&ctx->rlwe.tables[level], last + (size_t)c * n);
    }
    ckks_ciphertext tmp, *dst;
    if ((st = begin_output(out, &tmp, &dst, deg, level - 1, out == a))) {
        hecnn_free(last);
        return st;
    }
    /* out_i = (a_i - [a]_{q_l}) * q_l^-1 mod q_i, with [a]_{q_l} centered for rounding. */
    const rns_kernels *kern = rns_kernels_active();
    bool failed = false;
#pragma omp parallel
    {
        uint64_t *buf = hecnn_alloc(n * 8);
        if (!buf) failed = true;
#pragma omp for collapse(2) schedule(static)
        for (unsigned c = 0; c <= deg; c++)
            for (unsigned k = 0; k < level; k++) {
                if (!buf) continue;
                const ntt_table *t = &ctx->rlwe.tables[k];
                const uint64_t q = t->mod.q, ql_mod = ql % q;
                const uint64_t w = inv_mod(ql_mod, &t->mod), wp = shoup_precompute(w, q);
                kern->rescale_lift(buf, last + (size_t)c * n, n, ql, &t->mod);
                ntt_forward(t, buf);
                const uint64_t *x = ct_comp(a, c) + (size_t)k * n;
                uint64_t *o = dst->data + ((size_t)c * level + k) * n;
                kern->sub_mul_scalar(o, x, buf, n, w, wp, q);
            }
        hecnn_free(buf);
    }
    if (failed) {
        hecnn_free(last);
        if (dst != out) hecnn_free(dst->data);
        return hecnn_fail(HECNN_ERR_NO_MEMORY, "rescale scratch");
    }
    hecnn_free(last);
    end_output(out, dst, scale, slots);
    return HECNN_OK;
}

hecnn_status ckks_drop_level(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a, unsigned level)
{
    hecnn_status st = check_args(ev, out, a);
    if (st) return st;
    if (level > a->level) return hecnn_fail(HECNN_ERR_LEVEL_MISMATCH, "cannot raise level %u to %u", a->level, level);
    if (level == a->level) return ckks_ciphertext_copy(out, a);
    const size_t n = ev->ctx->rlwe.n, limb_bytes = ((size_t)level + 1) * n * 8;
    const double scale = a->scale;
    const size_t slots = a->slots;
    const unsigned deg = a->degree;
    if (out == a) {
        /* Compact in place: component c moves from c*(old+1) to c*(level+1) limbs, front to back. */
        for (unsigned c = 1; c <= deg; c++)
            memmove(out->data + (size_t)c * (level + 1) * n, out->data + (size_t)c * (a->level + 1) * n, limb_bytes);
        out->level = level;
        out->seeded = false;
        return HECNN_OK;
    }
    if ((st = ct_reserve(out, deg, level))) return st;
    for (unsigned c = 0; c <= deg; c++) memcpy(ct_comp(out, c), a->data + (size_t)c * (a->level + 1) * n, limb_bytes);
    out->scale = scale;
    out->slots = slots;
    return HECNN_OK;
}

hecnn_status ckks_match_level(const ckks_evaluator *ev, ckks_ciphertext *a, ckks_ciphertext *b)
{
    if (!a || !b) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    if (a->level > b->level) return ckks_drop_level(ev, a, a, b->level);
    if (b->level > a->level) return ckks_drop_level(ev, b, b, a->level);
    return HECNN_OK;
}

hecnn_status ckks_set_scale(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a, double scale)
{
    hecnn_status st = check_args(ev, out, a);
    if (st) return st;
    if (!(scale > 0) || !isfinite(scale)) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "scale must be > 0");
    if (a->level == 0) return hecnn_fail(HECNN_ERR_LEVEL_MISMATCH, "no level left to set the scale");
    const double factor = scale * (double)ev->ctx->rlwe.tables[a->level].mod.q / a->scale;
    if (factor < 1) return hecnn_fail(HECNN_ERR_SCALE_MISMATCH, "target scale too small for one rescale");
    if ((st = ckks_mul_const(ev, out, a, 1.0, factor))) return st;
    if ((st = ckks_rescale(ev, out, out))) return st;
    out->scale = scale;
    return HECNN_OK;
}

static hecnn_status galois_common(const ckks_evaluator *ev, ckks_ciphertext *const *outs, const ckks_ciphertext *a,
                                  const uint64_t *galois, size_t count)
{
    hecnn_status st = check_ct(ev, a);
    if (st) return st;
    if (a->degree != 1) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "rotate needs a degree-1 ciphertext");
    const ckks_context *ctx = ev->ctx;
    const size_t n = ctx->rlwe.n;
    const unsigned level = a->level;
    const ckks_switching_key **keys = hecnn_calloc(count ? count : 1, sizeof *keys);
    if (!keys) return hecnn_fail(HECNN_ERR_NO_MEMORY, "rotation");
    for (size_t i = 0; i < count && !st; i++) {
        if (!outs[i]) st = hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "output %zu is NULL", i);
        else if (outs[i]->ctx->param_id != ctx->param_id) st = hecnn_fail(HECNN_ERR_PARAMS_MISMATCH, "output of another context");
        else if (galois[i] != 1 && !(keys[i] = ckks_eval_keys_galois(ev->keys, galois[i])))
            st = hecnn_fail(HECNN_ERR_MISSING_KEY, "no Galois key for element %llu", (unsigned long long)galois[i]);
        else if (keys[i] && keys[i]->rlwe.max_level < level)
            st = hecnn_fail(HECNN_ERR_LEVEL_MISMATCH, "Galois key for level %u used at level %u", keys[i]->rlwe.max_level, level);
    }
    if (st) {
        hecnn_free(keys);
        return st;
    }
    rns_basis basis;
    rlwe_basis_q(&ctx->rlwe, &basis, level);
    const size_t limb_words = (size_t)(level + 1) * n;
    const rns_kernels *kern = rns_kernels_active();
    ks_decomposition dec = {0};
    bool need_dec = false, alias = false;
    for (size_t i = 0; i < count; i++) need_dec |= keys[i] != NULL, alias |= outs[i] == a;
    size_t *perm = hecnn_alloc(n * sizeof *perm);
    uint64_t *scratch = hecnn_alloc(limb_words * 8);
    if (!perm || !scratch) st = hecnn_fail(HECNN_ERR_NO_MEMORY, "rotation");
    /* A single automorphism permutes c1 before decomposing (level + 1 limbs); hoisting shares one
     * decomposition and permutes its digits per rotation instead. */
    const bool permute_first = count == 1 && need_dec;
    if (!st && permute_first) {
        galois_ntt_permutation(perm, ctx->rlwe.log_n, galois[0]);
        for (unsigned k = 0; k <= level; k++) kern->permute(scratch + (size_t)k * n, ct_comp(a, 1) + (size_t)k * n, perm, n);
        st = ks_decompose(&ctx->rlwe, &ctx->rlwe.special[KS_ALL_P], &dec, scratch, level);
    } else if (!st && need_dec) {
        st = ks_decompose(&ctx->rlwe, &ctx->rlwe.special[KS_ALL_P], &dec, ct_comp(a, 1), level);
    }
    /* Results go straight to the outputs, or through temporaries when an output is the input. */
    uint64_t *res = !st && alias ? hecnn_alloc(count * 2 * limb_words * 8) : NULL;
    if (!st && alias && !res) st = hecnn_fail(HECNN_ERR_NO_MEMORY, "rotation");
    for (size_t i = 0; i < count && !st; i++)
        if (!alias && (st = ct_reserve(outs[i], 1, level))) break;
    for (size_t i = 0; i < count && !st; i++) {
        uint64_t *r0 = alias ? res + i * 2 * limb_words : outs[i]->data, *r1 = r0 + limb_words;
        if (galois[i] == 1) {
            memcpy(r0, ct_comp(a, 0), 2 * limb_words * 8);
            continue;
        }
        if (!permute_first) galois_ntt_permutation(perm, ctx->rlwe.log_n, galois[i]);
        if ((st = ks_apply(&ctx->rlwe, r0, r1, &dec, permute_first ? NULL : perm, &keys[i]->rlwe))) break;
        /* r0 += sigma(c0) */
        for (unsigned k = 0; k <= level; k++) {
            kern->permute(scratch + (size_t)k * n, ct_comp(a, 0) + (size_t)k * n, perm, n);
            kern->add(r0 + (size_t)k * n, r0 + (size_t)k * n, scratch + (size_t)k * n, n, ctx->rlwe.tables[k].mod.q);
        }
    }
    const double scale = a->scale;
    const size_t slots = a->slots;
    for (size_t i = 0; i < count && !st; i++) {
        if (alias) {
            if ((st = ct_reserve(outs[i], 1, level))) break;
            memcpy(outs[i]->data, res + i * 2 * limb_words, 2 * limb_words * 8);
        }
        outs[i]->scale = scale;
        outs[i]->slots = slots;
    }
    ks_decomposition_free(&dec);
    hecnn_free(res);
    hecnn_free(perm);
    hecnn_free(scratch);
    hecnn_free(keys);
    return st;
}

hecnn_status ckks_apply_galois(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a, uint64_t galois)
{
    hecnn_status st = check_args(ev, out, a);
    if (st) return st;
    if (!(galois & 1) || galois >= 2 * ev->ctx->rlwe.n)
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "Galois element %llu invalid", (unsigned long long)galois);
    return galois_common(ev, &out, a, &galois, 1);
}

hecnn_status ckks_rotate(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a, int steps)
{
    hecnn_status st = check_args(ev, out, a);
    if (st) return st;
    uint64_t g = ckks_galois_element_rotation(ev->ctx, steps);
    return galois_common(ev, &out, a, &g, 1);
}

hecnn_status ckks_conjugate(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a)
{
    hecnn_status st = check_args(ev, out, a);
    if (st) return st;
    uint64_t g = ckks_galois_element_conjugate(ev->ctx);
    return galois_common(ev, &out, a, &g, 1);
}

hecnn_status ckks_rotate_hoisted(const ckks_evaluator *ev, ckks_ciphertext *const *outs, const ckks_ciphertext *a,
                                 const int *steps, size_t count)
{
    if (!ev || !outs || (count && !steps)) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    uint64_t *g = hecnn_alloc((count ? count : 1) * sizeof *g);
    if (!g) return hecnn_fail(HECNN_ERR_NO_MEMORY, "rotation");
    for (size_t i = 0; i < count; i++) g[i] = ckks_galois_element_rotation(ev->ctx, steps[i]);
    hecnn_status st = galois_common(ev, outs, a, g, count);
    hecnn_free(g);
    return st;
}

hecnn_status ckks_switch_key(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a,
                             const ckks_switching_key *key)
{
    hecnn_status st = check_args(ev, out, a);
    if (st) return st;
    if (!key) return hecnn_fail(HECNN_ERR_MISSING_KEY, "no switching key");
    if (key->ctx->param_id != ev->ctx->param_id) return hecnn_fail(HECNN_ERR_PARAMS_MISMATCH, "key of another context");
    if (a->degree != 1) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "key switching needs a degree-1 ciphertext");
    return switch_component(ev, out, a, 1, key);
}

hecnn_status ckks_mod_raise(const ckks_evaluator *ev, ckks_ciphertext *out, const ckks_ciphertext *a, unsigned level)
{
    hecnn_status st = check_args(ev, out, a);
    if (st) return st;
    const ckks_context *ctx = ev->ctx;
    if (level >= ctx->rlwe.n_q) return hecnn_fail(HECNN_ERR_LEVEL_MISMATCH, "level %u > max %u", level, ctx->rlwe.n_q - 1);
    const unsigned deg = a->degree;
    const size_t n = ctx->rlwe.n;
    const uint64_t q0 = ctx->rlwe.tables[0].mod.q;
    uint64_t *low = hecnn_alloc(((size_t)deg + 1) * n * 8);
    if (!low) return hecnn_fail(HECNN_ERR_NO_MEMORY, "mod raise");
    for (unsigned c = 0; c <= deg; c++) {
        memcpy(low + (size_t)c * n, ct_comp(a, c), n * 8);
        ntt_inverse(&ctx->rlwe.tables[0], low + (size_t)c * n);
    }
    const double scale = a->scale;
    const size_t slots = a->slots;
    ckks_ciphertext tmp, *dst;
    if ((st = begin_output(out, &tmp, &dst, deg, level, out == a))) {
        hecnn_free(low);
        return st;
    }
#pragma omp parallel for collapse(2) schedule(static)
    for (unsigned c = 0; c <= deg; c++)
        for (unsigned k = 0; k <= level; k++) {
            const ntt_table *t = &ctx->rlwe.tables[k];
            const uint64_t q = t->mod.q;
            uint64_t *o = ct_comp(dst, c) + (size_t)k * n;
            const uint64_t *x = low + (size_t)c * n;
            for (size_t i = 0; i < n; i++) {
                /* centred representative of x mod q0, reduced mod q */
                o[i] = x[i] > q0 / 2 ? sub_mod(x[i] % q, q0 % q, q) : x[i] % q;
            }
            ntt_forward(t, o);
        }
    hecnn_free(low);
    end_output(out, dst, scale, slots);
    return HECNN_OK;
}

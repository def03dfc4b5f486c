/* CKKS bootstrapping: ScaleDown, sparse-secret encapsulation and ModRaise, SubSum (sparse
 * slots), CoeffsToSlots, EvalMod, SlotsToCoeffs.
 *
 * Values and scales. After ModRaise the plaintext is t + q_0 I (t = Delta m + e). The raised
 * ciphertext is declared at scale q_0, so its slots read F v / q_0 (v: coefficient pairs).
 * CoeffsToSlots multiplies by F^-1 B / (2 R gap): with the real/imaginary split (ct + conj ct)
 * the slots hold x = t_k / (q_0 R), |x| <= 1, at scale q_(its level). EvalMod returns
 * (t_k / q_0 mod 1) q_0 / Delta = m_k exactly as values for SlotsToCoeffs, whose product is F,
 * and whose last plaintext scale lands the output on the default scale. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "circuits/circuits_internal.h"
#include "circuits/dft.h"
#include "circuits/evalmod.h"
#include "circuits/lintrans_internal.h"
#include "ckks/internal.h"

#define MAX_DFT_LEVELS 8
#ifndef C2S_BOOST
#define C2S_BOOST 4 /* log2 of the intermediate CoeffsToSlots gain */
#endif
#define S2C_MARGIN 10
#ifndef C2S_BITS
#define C2S_BITS 56
#endif /* bits of SlotsToCoeffs input scale above the values' needs */

/* Diagnostics: when set, called with each intermediate ciphertext (not exported). */
void (*boot_trace)(const char *stage, const ckks_ciphertext *ct, void *arg);
void *boot_trace_arg;
#define TRACE(name, c) \
    do { \
        if (boot_trace) boot_trace(name, c, boot_trace_arg); \
    } while (0)

struct ckks_bootstrapper {
    const ckks_context *ctx;
    ckks_boot_params bp;
    size_t n;                 /* slots */
    bool full;                /* n == N/2: EvalMod on the real and imaginary parts separately */
    unsigned top, l_c2s, l_em, out_level;
    ckks_lintrans *c2s[MAX_DFT_LEVELS], *s2c[MAX_DFT_LEVELS];
    evalmod em;
    double s_em;              /* scale of EvalMod's output (SlotsToCoeffs' input) */
    uint64_t subsum[32];
    size_t n_subsum;
    double log2_fail;
    struct spare_workspace *spare;
};

/* One linear-transform workspace kept from one bootstrap to the next (hundreds of MiB at N = 2^16:
 * faulting it in afresh costs a tenth of a second each time); a concurrent bootstrap uses its own. */
struct spare_workspace {
    pthread_mutex_t lock;
    bool busy;
    lt_workspace ws;
};

struct ckks_boot_keys {
    const ckks_context *ctx;
    ckks_eval_keys *evk;          /* relin + Galois, level-reduced */
    ckks_switching_key *to_sparse;  /* dense -> ephemeral sparse, level 0 */
    ckks_switching_key *to_dense;   /* ephemeral sparse -> dense, top level */
};

/* ---- presets ----------------------------------------------------------------------------- */

static void fill(unsigned *dst, unsigned *pos, unsigned count, unsigned bits)
{
    for (unsigned i = 0; i < count; i++) dst[(*pos)++] = bits;
}

hecnn_status ckks_boot_preset_params(ckks_params_literal *ckks, ckks_boot_params *boot, ckks_boot_preset preset)
{
    if (!ckks || !boot) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    memset(ckks, 0, sizeof *ckks);
    memset(boot, 0, sizeof *boot);
    unsigned pos = 0;
    ckks->secret = CKKS_SECRET_TERNARY;
    ckks->sigma = 3.2;
    boot->mod1 = CKKS_MOD1_COS_DOUBLE_ANGLE;
    boot->log_message_ratio = 8;
    boot->ephemeral_hamming_weight = 32;
    boot->k = 15;
    boot->mod1_degree = 54;
    boot->double_angle = 2;
    switch (preset) {
    case CKKS_BOOT_N16_FULL:
    case CKKS_BOOT_N16_SPARSE:
        /* q_0 60 | residual 9 x 40 | SlotsToCoeffs 3 x 39 | EvalMod 8 x 60 (even cosine of degree 54
         * + 2 double angles) | CoeffsToSlots 4 x 56;
         * P = 10 x 50 (covers the largest digit, 457 bits; below 2^50 the IFMA kernels apply), dnum 3:
         * log QP = 1741 <= 1747 */
        ckks->log_n = 16;
        ckks->log_scale = 40;
        fill(ckks->log_q, &pos, 1, 60);
        fill(ckks->log_q, &pos, 9, 40);
        fill(ckks->log_q, &pos, 3, 39);
        fill(ckks->log_q, &pos, 8, 60);
        fill(ckks->log_q, &pos, 4, C2S_BITS);
        ckks->n_q = pos;
        ckks->n_p = 10;
        for (unsigned i = 0; i < 10; i++) ckks->log_p[i] = 50;
        ckks->dnum = 3;
        boot->log_slots = preset == CKKS_BOOT_N16_FULL ? 15 : 12;
        boot->c2s_levels = 4;
        boot->s2c_levels = 3;
        break;
    case CKKS_BOOT_TEST_N12_FULL:
    case CKKS_BOOT_TEST_N12_SPARSE:
    case CKKS_BOOT_TEST_N12_DEEP:
        /* insecure (N = 2^12), for tests: q_0 60 | residual 2 x 40 | S2C 2 x 45 | EvalMod 8 x 60 |
         * C2S 3 x 56; sparse: 2^9 slots. DEEP: residual 6 x 40 (20 primes) and dnum 5, so a digit
         * (at most 4 primes, 240 bits) stays below P (244 bits). */
        ckks->log_n = 12;
        ckks->log_scale = 40;
        ckks->allow_insecure = true;
        fill(ckks->log_q, &pos, 1, 60);
        fill(ckks->log_q, &pos, preset == CKKS_BOOT_TEST_N12_DEEP ? 6 : 2, 40);
        fill(ckks->log_q, &pos, 2, 45);
        fill(ckks->log_q, &pos, 8, 60);
        fill(ckks->log_q, &pos, 3, 56);
        ckks->n_q = pos;
        ckks->n_p = 4;
        for (unsigned i = 0; i < 4; i++) ckks->log_p[i] = 61;
        ckks->dnum = preset == CKKS_BOOT_TEST_N12_DEEP ? 5 : 4;
        boot->log_slots = preset == CKKS_BOOT_TEST_N12_SPARSE ? 9 : 11;
        boot->c2s_levels = 3;
        boot->s2c_levels = 2;
        break;
    default:
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "unknown bootstrapping preset %d", (int)preset);
    }
    return HECNN_OK;
}

/* ---- failure probability ------------------------------------------------------------------ */

/* log2 P(S > x) for S the sum of m independent uniforms on [-1/2, 1/2] (Irwin–Hall), exact
 * alternating sum evaluated in long double from the near end of the support. */
static double log2_irwin_hall_tail(unsigned m, double x)
{
    const long double half = (long double)m / 2;
    long double y = half - (long double)x; /* P(S > x) = P(S' < y), S' = sum of m U(0,1) */
    if (y <= 0) return -INFINITY;
    if (y >= half) return 0; /* not a tail */
    /* F(y) = (1/m!) sum_k (-1)^k C(m,k) (y-k)^m for y < m/2; terms computed in log space */
    long double sum = 0, logfact = lgammal((long double)m + 1);
    for (unsigned k = 0; k <= (unsigned)floorl(y) && k <= m; k++) {
        long double lc = lgammal((long double)m + 1) - lgammal((long double)k + 1) - lgammal((long double)(m - k) + 1);
        long double term = expl(lc + (long double)m * logl(y - (long double)k) - logfact);
        sum += (k & 1) ? -term : term;
    }
    if (!(sum > 0)) return -INFINITY;
    return (double)(logl(sum) / logl(2.0L));
}

/* ---- construction ----------------------------------------------------------------------- */

static void default_split(unsigned *out, unsigned levels, unsigned stages)
{
    for (unsigned i = 0; i < levels; i++) out[i] = stages / levels + (i < stages % levels ? 1 : 0);
}

static hecnn_status to_lintrans(ckks_lintrans **out, const ckks_context *ctx, const diag_matrix *m, unsigned level,
                                double scale)
{
    size_t nd = diag_matrix_count(m);
    size_t *offs = hecnn_alloc(nd * sizeof *offs);
    const long double complex **dp = hecnn_alloc(nd * sizeof *dp);
    if (!offs || !dp) {
        hecnn_free(offs);
        hecnn_free(dp);
        return hecnn_fail(HECNN_ERR_NO_MEMORY, "DFT factors");
    }
    diag_matrix_offsets(m, offs);
    for (size_t i = 0; i < nd; i++) dp[i] = m->d[offs[i]];
    hecnn_status st = lt_build(out, ctx, m->n, nd, offs, NULL, dp, level, scale, 0);
    hecnn_free(offs);
    hecnn_free(dp);
    return st;
}

/* n-slot matrix A -> 2n-slot [A; c A] on n-periodic inputs */
static int widen_rows(diag_matrix *out, const diag_matrix *a, ldcomplex c)
{
    const size_t n = a->n;
    if (diag_matrix_init(out, 2 * n)) return -1;
    for (size_t k = 0; k < n; k++) {
        if (!a->d[k]) continue;
        ldcomplex *d = hecnn_alloc(2 * n * sizeof *d);
        if (!d) return -1;
        for (size_t j = 0; j < 2 * n; j++) d[j] = a->d[k][j % n] * (j < n ? 1 : c);
        out->d[k] = d;
    }
    return 0;
}

/* n-slot matrix B -> 2n-slot matrix reading y = in[0..n) + i in[n..2n) (output n-periodic) */
static int widen_cols(diag_matrix *out, const diag_matrix *b)
{
    const size_t n = b->n, n2 = 2 * n;
    if (diag_matrix_init(out, n2)) return -1;
    for (size_t k = 0; k < n; k++) {
        if (!b->d[k]) continue;
        ldcomplex *d0 = hecnn_calloc(n2, sizeof *d0), *d1 = hecnn_calloc(n2, sizeof *d1);
        if (!d0 || !d1) {
            hecnn_free(d0);
            hecnn_free(d1);
            return -1;
        }
        for (size_t j = 0; j < n2; j++) {
            const bool low = (j + k) % n2 < n;
            d0[j] = b->d[k][j % n] * (low ? 1 : I);
            d1[j] = b->d[k][j % n] * (low ? I : 1);
        }
        out->d[k] = d0;
        out->d[k + n] = d1;
    }
    return 0;
}

hecnn_status ckks_bootstrapper_new(ckks_bootstrapper **out, const ckks_context *ctx, const ckks_boot_params *bp)
{
    if (!out || !ctx || !bp) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    const unsigned log_n = ctx->rlwe.log_n;
    if (bp->log_slots < 1 || bp->log_slots > log_n - 1)
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "log_slots %u outside 1..%u", bp->log_slots, log_n - 1);
    if (bp->c2s_levels < 1 || bp->c2s_levels > MAX_DFT_LEVELS || bp->s2c_levels < 1 || bp->s2c_levels > MAX_DFT_LEVELS ||
        bp->c2s_levels > bp->log_slots || bp->s2c_levels > bp->log_slots)
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "DFT levels %u / %u for %u stages", bp->c2s_levels, bp->s2c_levels,
                          bp->log_slots);
    if (bp->log_message_ratio < 1 || bp->log_message_ratio > 40)
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "message ratio 2^%u", bp->log_message_ratio);
    if (!bp->ephemeral_hamming_weight && ctx->params.secret != CKKS_SECRET_SPARSE_TERNARY)
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "a dense main secret needs sparse-secret encapsulation");
    unsigned c2s_st[MAX_DFT_LEVELS], s2c_st[MAX_DFT_LEVELS];
    bool given = false;
    for (unsigned i = 0; i < bp->c2s_levels; i++) given |= bp->c2s_stages[i] != 0;
    if (given) memcpy(c2s_st, bp->c2s_stages, sizeof c2s_st);
    else default_split(c2s_st, bp->c2s_levels, bp->log_slots);
    given = false;
    for (unsigned i = 0; i < bp->s2c_levels; i++) given |= bp->s2c_stages[i] != 0;
    if (given) memcpy(s2c_st, bp->s2c_stages, sizeof s2c_st);
    else default_split(s2c_st, bp->s2c_levels, bp->log_slots);

    ckks_bootstrapper *bt = hecnn_calloc(1, sizeof *bt);
    if (bt) bt->spare = hecnn_calloc(1, sizeof *bt->spare);
    if (!bt || !bt->spare) {
        hecnn_free(bt);
        return hecnn_fail(HECNN_ERR_NO_MEMORY, "bootstrapper");
    }
    pthread_mutex_init(&bt->spare->lock, NULL);
    bt->ctx = ctx;
    bt->bp = *bp;
    memcpy(bt->bp.c2s_stages, c2s_st, sizeof c2s_st);
    memcpy(bt->bp.s2c_stages, s2c_st, sizeof s2c_st);
    bt->n = (size_t)1 << bp->log_slots;
    bt->full = bp->log_slots == log_n - 1;
    const size_t n = bt->n, gap = ctx->rlwe.n / (2 * n);
    hecnn_status st = evalmod_init(&bt->em, bp);
    if (st) {
        hecnn_free(bt);
        return st;
    }
    bt->top = ctx->rlwe.n_q - 1;
    const unsigned depth = bp->c2s_levels + bt->em.depth + bp->s2c_levels;
    if (depth > bt->top) {
        ckks_bootstrapper_free(bt);
        return hecnn_fail(HECNN_ERR_LEVEL_MISMATCH, "bootstrapping needs %u levels, the chain has %u", depth, bt->top);
    }
    bt->l_c2s = bt->top - bp->c2s_levels;
    bt->l_em = bt->l_c2s - bt->em.depth;
    bt->out_level = bt->l_em - bp->s2c_levels;
    for (size_t k = 0; (gap >> k) > 1; k++)
        bt->subsum[bt->n_subsum++] = ckks_galois_element_rotation(ctx, (int)(n << k));

    /* failure: some |u_k| > k (beyond the neighbourhoods EvalMod is fitted on), u_k the sum of
     * h + 1 uniforms in [-1/2, 1/2], over the 2n coefficients that reach EvalMod (two tails).
     * SubSum does not widen it: on the kept coefficients the trace is gap times I_k itself. */
    const unsigned h = bp->ephemeral_hamming_weight ? bp->ephemeral_hamming_weight : ctx->params.hamming_weight;
    bt->log2_fail = log2_irwin_hall_tail(h + 1, (double)bp->k) + 1 + log2(2.0 * (double)n);

    /* CoeffsToSlots: F^-1 B / (2 R gap), in c2s_levels factors. The first factor also multiplies
     * by 2^C2S_BOOST and the last divides it back: the intermediate plaintexts are then large
     * against the rounding noise of each rescale and key switch (only the last one counts). */
    diag_matrix f[MAX_DFT_LEVELS] = {{0}};
    if (dft_factors(f, n, true, c2s_st, bp->c2s_levels)) {
        ckks_bootstrapper_free(bt);
        return hecnn_fail(HECNN_ERR_NO_MEMORY, "CoeffsToSlots factors");
    }
    const double boost = bp->c2s_levels > 1 ? ldexp(1.0, C2S_BOOST) : 1.0;
    diag_matrix_scale(&f[0], (long double)boost / (2.0L * (long double)bt->em.range * (long double)gap));
    if (bp->c2s_levels > 1) diag_matrix_scale(&f[bp->c2s_levels - 1], 1.0L / (long double)boost);
    if (!bt->full) { /* the last factor also writes -i w into the upper half of 2n slots */
        diag_matrix w;
        if (widen_rows(&w, &f[bp->c2s_levels - 1], -I)) st = hecnn_fail(HECNN_ERR_NO_MEMORY, "CoeffsToSlots");
        diag_matrix_free(&f[bp->c2s_levels - 1]);
        f[bp->c2s_levels - 1] = w;
    }
    /* plaintext scales: q_level (scale-neutral), the last one putting x at scale q_(l_c2s) */
    const double s_raise = (double)ckks_context_q(ctx, 0);
    for (unsigned i = 0; i < bp->c2s_levels && !st; i++) {
        const unsigned lev = bt->top - i;
        double ps = (double)ckks_context_q(ctx, lev);
        if (i + 1 == bp->c2s_levels) ps = (double)ckks_context_q(ctx, bt->l_c2s) * ps / s_raise;
        st = to_lintrans(&bt->c2s[i], ctx, &f[i], lev, ps);
    }
    for (unsigned i = 0; i < bp->c2s_levels; i++) diag_matrix_free(&f[i]);
    if (st) {
        ckks_bootstrapper_free(bt);
        return st;
    }

    /* SlotsToCoeffs: F B^-1. Its input (the coefficients, about 2^-(log_slots + 1)/2 of the slot
     * values) arrives at scale s_em = default * 2^((log_slots + 1)/2 + S2C_MARGIN); the plaintext
     * scales bring it down evenly to exactly the default scale at the output. */
    if (dft_factors(f, n, false, s2c_st, bp->s2c_levels)) {
        ckks_bootstrapper_free(bt);
        return hecnn_fail(HECNN_ERR_NO_MEMORY, "SlotsToCoeffs factors");
    }
    if (!bt->full) {
        diag_matrix w;
        if (widen_cols(&w, &f[0])) st = hecnn_fail(HECNN_ERR_NO_MEMORY, "SlotsToCoeffs");
        diag_matrix_free(&f[0]);
        f[0] = w;
    }
    bt->s_em = ctx->default_scale * ldexp(1.0, (int)(bp->log_slots + 1) / 2 + S2C_MARGIN);
    const double step = pow(ctx->default_scale / bt->s_em, 1.0 / bp->s2c_levels);
    double cur = bt->s_em;
    for (unsigned i = 0; i < bp->s2c_levels && !st; i++) {
        const unsigned lev = bt->l_em - i;
        const double q = (double)ckks_context_q(ctx, lev);
        double ps = q * step;
        if (i + 1 == bp->s2c_levels) ps = ctx->default_scale * q / cur;
        cur = cur * ps / q;
        st = to_lintrans(&bt->s2c[i], ctx, &f[i], lev, ps);
    }
    for (unsigned i = 0; i < bp->s2c_levels; i++) diag_matrix_free(&f[i]);
    if (st) {
        ckks_bootstrapper_free(bt);
        return st;
    }
    if (hecnn_log_enabled()) {
        for (unsigned i = 0; i < bp->c2s_levels; i++)
            hecnn_log("C2S %u (level %u, %u stages): %zu diagonals, baby step %zu: %zu babies, %zu giants", i,
                    bt->c2s[i]->level, c2s_st[i], bt->c2s[i]->n_diags, bt->c2s[i]->n1, bt->c2s[i]->n_babies,
                    bt->c2s[i]->n_giants);
        for (unsigned i = 0; i < bp->s2c_levels; i++)
            hecnn_log("S2C %u (level %u, %u stages): %zu diagonals, baby step %zu: %zu babies, %zu giants", i,
                    bt->s2c[i]->level, s2c_st[i], bt->s2c[i]->n_diags, bt->s2c[i]->n1, bt->s2c[i]->n_babies,
                    bt->s2c[i]->n_giants);
        hecnn_log("EvalMod: %u products per call, depth %u", ckks_poly_mul_count(bt->em.poly) + bt->em.double_angle, bt->em.depth);
    }
    *out = bt;
    return HECNN_OK;
}

void ckks_bootstrapper_free(ckks_bootstrapper *bt)
{
    if (!bt) return;
    for (unsigned i = 0; i < MAX_DFT_LEVELS; i++) {
        ckks_lintrans_free(bt->c2s[i]);
        ckks_lintrans_free(bt->s2c[i]);
    }
    evalmod_free(&bt->em);
    if (bt->spare) {
        lt_workspace_free(&bt->spare->ws);
        pthread_mutex_destroy(&bt->spare->lock);
        hecnn_free(bt->spare);
    }
    hecnn_free(bt);
}

unsigned ckks_bootstrapper_output_level(const ckks_bootstrapper *bt) { return bt->out_level; }
unsigned ckks_bootstrapper_depth(const ckks_bootstrapper *bt) { return bt->top - bt->out_level; }
size_t ckks_bootstrapper_slots(const ckks_bootstrapper *bt) { return bt->n; }
double ckks_bootstrapper_log2_failure(const ckks_bootstrapper *bt) { return bt->log2_fail; }

size_t ckks_bootstrapper_bytes(const ckks_bootstrapper *bt)
{
    size_t b = 0;
    const ckks_lintrans *all[2 * MAX_DFT_LEVELS];
    size_t m = 0;
    for (unsigned i = 0; i < bt->bp.c2s_levels; i++) all[m++] = bt->c2s[i];
    for (unsigned i = 0; i < bt->bp.s2c_levels; i++) all[m++] = bt->s2c[i];
    for (size_t i = 0; i < m; i++)
        b += all[i]->coef ? all[i]->n_diags * 2 * all[i]->slots * sizeof(int64_t)
                          : all[i]->n_diags * (size_t)(all[i]->level + 1) * bt->ctx->rlwe.n * 8;
    return b;
}

/* ---- key plan ------------------------------------------------------------------------------- */

typedef struct need_set {
    ckks_key_need *v;
    size_t n, cap;
} need_set;

static int need_add(need_set *s, uint64_t g, unsigned level)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].galois == g) {
            if (level > s->v[i].max_level) s->v[i].max_level = level;
            return 0;
        }
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        ckks_key_need *v = hecnn_alloc(cap * sizeof *v);
        if (!v) return -1;
        if (s->n) memcpy(v, s->v, s->n * sizeof *v);
        hecnn_free(s->v);
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = (ckks_key_need){g, level};
    return 0;
}

static int cmp_need(const void *a, const void *b)
{
    uint64_t x = ((const ckks_key_need *)a)->galois, y = ((const ckks_key_need *)b)->galois;
    return x < y ? -1 : x > y;
}

static int collect_needs(const ckks_bootstrapper *bt, need_set *s)
{
    if (need_add(s, 0, bt->l_c2s)) return -1; /* relinearization: EvalMod starts at l_c2s */
    for (size_t i = 0; i < bt->n_subsum; i++)
        if (need_add(s, bt->subsum[i], bt->top)) return -1;
    /* conjugation: the real/imaginary split at l_c2s, and ckks_bootstrap_pair's split one level
     * above the output (served by the same key, which works at every level below its own) */
    if (need_add(s, ckks_galois_element_conjugate(bt->ctx), bt->out_level + 1)) return -1;
    if (need_add(s, ckks_galois_element_conjugate(bt->ctx), bt->l_c2s)) return -1;
    const ckks_lintrans *all[2 * MAX_DFT_LEVELS];
    size_t m = 0;
    for (unsigned i = 0; i < bt->bp.c2s_levels; i++) all[m++] = bt->c2s[i];
    for (unsigned i = 0; i < bt->bp.s2c_levels; i++) all[m++] = bt->s2c[i];
    for (size_t i = 0; i < m; i++) {
        size_t c = ckks_lintrans_galois_elements(all[i], NULL, 0);
        uint64_t *g = hecnn_alloc((c ? c : 1) * sizeof *g);
        if (!g) return -1;
        ckks_lintrans_galois_elements(all[i], g, c);
        for (size_t j = 0; j < c; j++)
            if (need_add(s, g[j], all[i]->level)) {
                hecnn_free(g);
                return -1;
            }
        hecnn_free(g);
    }
    qsort(s->v, s->n, sizeof *s->v, cmp_need);
    return 0;
}

size_t ckks_bootstrapper_key_plan(const ckks_bootstrapper *bt, ckks_key_need *out, size_t cap)
{
    need_set s = {0};
    if (collect_needs(bt, &s)) {
        hecnn_free(s.v);
        return 0;
    }
    for (size_t i = 0; i < s.n && i < cap && out; i++) out[i] = s.v[i];
    size_t n = s.n;
    hecnn_free(s.v);
    return n;
}

/* ---- keys ------------------------------------------------------------------------------------ */

static hecnn_status boot_keys_generate(ckks_boot_keys **out, const ckks_bootstrapper *bt, const ckks_secret_key *sk,
                                       bool compact)
{
    if (!out || !bt || !sk) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    if (sk->ctx->param_id != bt->ctx->param_id) return hecnn_fail(HECNN_ERR_PARAMS_MISMATCH, "key of another context");
    ckks_boot_keys *k = hecnn_calloc(1, sizeof *k);
    if (!k) return hecnn_fail(HECNN_ERR_NO_MEMORY, "bootstrapping keys");
    k->ctx = bt->ctx;
    need_set s = {0};
    hecnn_status st = HECNN_OK;
    if (collect_needs(bt, &s)) st = hecnn_fail(HECNN_ERR_NO_MEMORY, "key plan");
    if (!st) st = ckks_eval_keys_new(&k->evk, bt->ctx);
    for (size_t i = 0; i < s.n && !st; i++) {
        ckks_switching_key *key = NULL;
        st = s.v[i].galois ? ckks_galois_key_generate(&key, sk, s.v[i].galois, s.v[i].max_level)
                           : ckks_relin_key_generate(&key, sk, s.v[i].max_level);
        /* compacted one by one, so that the full key set never sits in memory */
        if (!st && compact && s.v[i].galois) st = rlwe_switching_key_compact_trusted(&key->rlwe);
        if (!st) st = ckks_eval_keys_add(k->evk, key);
        else ckks_switching_key_free(key);
    }
    hecnn_free(s.v);
    if (!st && bt->bp.ephemeral_hamming_weight) {
        ckks_secret_key *eph = NULL;
        st = ckks_secret_key_generate_sparse(&eph, bt->ctx, bt->bp.ephemeral_hamming_weight);
        /* the sparse secret only ever encrypts under q_0 p_0 p_1 (160 bits): see docs/BOOTSTRAPPING.md */
        if (!st) st = switching_key_generate_level0(&k->to_sparse, sk, eph);
        if (!st) st = ckks_switching_key_generate_between(&k->to_dense, eph, sk, bt->top);
        if (!st && compact) st = rlwe_switching_key_compact_trusted(&k->to_dense->rlwe);
        ckks_secret_key_free(eph);
    }
    if (st) {
        ckks_boot_keys_free(k);
        return st;
    }
    *out = k;
    return HECNN_OK;
}

hecnn_status ckks_boot_keys_assemble(ckks_boot_keys **out, ckks_eval_keys *evk, ckks_switching_key *to_sparse,
                                     ckks_switching_key *to_dense)
{
    hecnn_status st = HECNN_OK;
    if (!out || !evk) st = hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    else if ((to_sparse && ckks_switching_key_galois_element(to_sparse) != CKKS_SWITCH_SECRET) ||
             (to_dense && ckks_switching_key_galois_element(to_dense) != CKKS_SWITCH_SECRET))
        st = hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "encapsulation keys must switch secrets");
    else if ((to_sparse && to_sparse->ctx->param_id != evk->ctx->param_id) ||
             (to_dense && to_dense->ctx->param_id != evk->ctx->param_id))
        st = hecnn_fail(HECNN_ERR_PARAMS_MISMATCH, "keys of different contexts");
    ckks_boot_keys *k = st ? NULL : hecnn_calloc(1, sizeof *k);
    if (!st && !k) st = hecnn_fail(HECNN_ERR_NO_MEMORY, "bootstrapping keys");
    if (st) {
        ckks_eval_keys_free(evk);
        ckks_switching_key_free(to_sparse);
        ckks_switching_key_free(to_dense);
        if (out) *out = NULL;
        return st;
    }
    k->ctx = evk->ctx;
    k->evk = evk;
    k->to_sparse = to_sparse;
    k->to_dense = to_dense;
    *out = k;
    return HECNN_OK;
}

void ckks_boot_keys_free(ckks_boot_keys *keys)
{
    if (!keys) return;
    ckks_eval_keys_free(keys->evk);
    ckks_switching_key_free(keys->to_sparse);
    ckks_switching_key_free(keys->to_dense);
    hecnn_free(keys);
}

const ckks_eval_keys *ckks_boot_keys_eval_keys(const ckks_boot_keys *keys) { return keys->evk; }

size_t ckks_boot_keys_count(const ckks_boot_keys *keys)
{
    return ckks_eval_keys_count(keys->evk) + (keys->to_sparse != NULL) + (keys->to_dense != NULL);
}

size_t ckks_boot_keys_bytes(const ckks_boot_keys *keys, bool seeded)
{
    size_t b = 1 + eval_keys_serialized_bytes(keys->evk, seeded); /* the flags byte, the key set */
    if (keys->to_sparse) b += ckks_switching_key_bytes(keys->to_sparse, seeded);
    if (keys->to_dense) b += ckks_switching_key_bytes(keys->to_dense, seeded);
    return b;
}

hecnn_status ckks_boot_keys_generate(ckks_boot_keys **out, const ckks_bootstrapper *bt, const ckks_secret_key *sk)
{
    return boot_keys_generate(out, bt, sk, false);
}

hecnn_status ckks_boot_keys_generate_compact(ckks_boot_keys **out, const ckks_bootstrapper *bt,
                                             const ckks_secret_key *sk)
{
    return boot_keys_generate(out, bt, sk, true);
}

size_t ckks_boot_keys_memory_bytes(const ckks_boot_keys *keys)
{
    size_t b = 0;
    for (size_t i = 0; i < ckks_eval_keys_count(keys->evk); i++) b += ckks_switching_key_memory_bytes(ckks_eval_keys_at(keys->evk, i));
    return b + ckks_switching_key_memory_bytes(keys->to_sparse) + ckks_switching_key_memory_bytes(keys->to_dense);
}

hecnn_status ckks_boot_keys_compact(ckks_boot_keys *keys)
{
    if (!keys) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL keys");
    /* the relinearization key serves every EvalMod product: it stays whole */
    hecnn_status st = ckks_eval_keys_compact(keys->evk, false);
    if (!st && keys->to_dense) st = ckks_switching_key_compact(keys->to_dense);
    return st;
}

hecnn_status ckks_boot_keys_save(const ckks_boot_keys *keys, bool seeded, FILE *f)
{
    if (!keys || !f) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    uint8_t flags = (keys->to_sparse != NULL) | (keys->to_dense != NULL) << 1;
    if (fwrite(&flags, 1, 1, f) != 1) return hecnn_fail(HECNN_ERR_IO, "write");
    hecnn_status st = HECNN_OK;
    if (keys->to_sparse) st = ckks_switching_key_save(keys->to_sparse, seeded, f);
    if (!st && keys->to_dense) st = ckks_switching_key_save(keys->to_dense, seeded, f);
    if (!st) st = ckks_eval_keys_save(keys->evk, seeded, f);
    return st;
}

static hecnn_status boot_keys_load(const ckks_context *ctx, ckks_boot_keys **out, FILE *f, bool compact)
{
    if (!ctx || !out || !f) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    uint8_t flags;
    if (fread(&flags, 1, 1, f) != 1) return hecnn_fail(HECNN_ERR_BAD_FORMAT, "truncated bootstrapping keys");
    if (flags > 3) return hecnn_fail(HECNN_ERR_BAD_FORMAT, "bootstrapping key flags %u", flags);
    ckks_boot_keys *k = hecnn_calloc(1, sizeof *k);
    if (!k) return hecnn_fail(HECNN_ERR_NO_MEMORY, "bootstrapping keys");
    k->ctx = ctx;
    hecnn_status st = HECNN_OK;
    if (flags & 1) st = ckks_switching_key_load(ctx, &k->to_sparse, f);
    if (!st && (flags & 2)) st = ckks_switching_key_load(ctx, &k->to_dense, f);
    /* compacted as ckks_boot_keys_compact does: the Galois keys and the sparse-to-dense key */
    if (!st && compact && k->to_dense && swk_has_seed(&k->to_dense->rlwe))
        st = rlwe_switching_key_compact_trusted(&k->to_dense->rlwe);
    if (!st) st = compact ? ckks_eval_keys_load_compact(ctx, &k->evk, f, false) : ckks_eval_keys_load(ctx, &k->evk, f);
    if (!st && ((k->to_sparse && ckks_switching_key_galois_element(k->to_sparse) != CKKS_SWITCH_SECRET) ||
                (k->to_dense && ckks_switching_key_galois_element(k->to_dense) != CKKS_SWITCH_SECRET)))
        st = hecnn_fail(HECNN_ERR_BAD_FORMAT, "encapsulation key of the wrong kind");
    if (st) {
        ckks_boot_keys_free(k);
        return st;
    }
    *out = k;
    return HECNN_OK;
}

hecnn_status ckks_boot_keys_load(const ckks_context *ctx, ckks_boot_keys **out, FILE *f)
{
    return boot_keys_load(ctx, out, f, false);
}

hecnn_status ckks_boot_keys_load_compact(const ckks_context *ctx, ckks_boot_keys **out, FILE *f)
{
    return boot_keys_load(ctx, out, f, true);
}

/* ---- the bootstrap --------------------------------------------------------------------------- */

/* The factors, each followed by a rescale except the last one when !last_rescale. */
static hecnn_status apply_dft(const ckks_evaluator *ev, ckks_ciphertext *ct, ckks_lintrans *const *lt, unsigned levels,
                              lt_workspace *ws, bool last_rescale)
{
    hecnn_status st = HECNN_OK;
    static const char *names[MAX_DFT_LEVELS] = {"dft_0", "dft_1", "dft_2", "dft_3", "dft_4", "dft_5", "dft_6", "dft_7"};
    for (unsigned i = 0; i < levels && !st; i++) {
        st = lt[i]->coef ? lt_apply_fast_ws(ev, ct, ct, lt[i], ws) : ckks_lintrans_apply(ev, ct, ct, lt[i]);
        if (!st && (last_rescale || i + 1 < levels)) st = ckks_rescale(ev, ct, ct);
        if (!st) TRACE(names[i], ct);
    }
    return st;
}

/* The bootstrap, its output values multiplied by `gain` (exact: folded into EvalMod's declared
 * scale); with !final_rescale it stops before SlotsToCoeffs' last rescale: out is at output
 * level + 1 with scale default * q_(output level + 1). */
static hecnn_status bootstrap(const ckks_bootstrapper *bt, const ckks_boot_keys *keys, ckks_ciphertext *out,
                              const ckks_ciphertext *in, double gain, bool final_rescale)
{
    if (!bt || !keys || !out || !in) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    const ckks_context *ctx = bt->ctx;
    if (in->ctx->param_id != ctx->param_id || keys->ctx->param_id != ctx->param_id)
        return hecnn_fail(HECNN_ERR_PARAMS_MISMATCH, "ciphertext or keys of another context");
    if (in->degree != 1) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "bootstrap needs a relinearized ciphertext");
    if (in->slots != bt->n)
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "ciphertext has %zu slots, the bootstrapper %zu", in->slots, bt->n);
    if (bt->bp.ephemeral_hamming_weight && (!keys->to_sparse || !keys->to_dense))
        return hecnn_fail(HECNN_ERR_MISSING_KEY, "encapsulation keys missing");
    ckks_evaluator *ev = NULL;
    hecnn_status st = ckks_evaluator_new(&ev, ctx, keys->evk);
    if (st) return st;
    lt_workspace ws = {0};
    pthread_mutex_lock(&bt->spare->lock);
    const bool own_spare = !bt->spare->busy;
    if (own_spare) {
        bt->spare->busy = true;
        ws = bt->spare->ws;
    }
    pthread_mutex_unlock(&bt->spare->lock);
    ckks_ciphertext *ct = NULL, *tmp = NULL, *im = NULL;
    if ((st = ckks_ciphertext_new(&ct, ctx)) || (st = ckks_ciphertext_new(&tmp, ctx)) ||
        (st = ckks_ciphertext_new(&im, ctx)))
        goto done;

    /* 1. ScaleDown: level 0, scale raised by an integer towards q_0 / 2^ratio */
    const double q0 = (double)ckks_context_q(ctx, 0), target = ldexp(q0, -(int)bt->bp.log_message_ratio);
    if ((st = ckks_drop_level(ev, ct, in, 0))) goto done;
    double delta = in->scale;
    if (delta < target / 2) {
        double k = floor(target / delta);
        if (k > 9.0e18) k = 9.0e18;
        if ((st = ckks_mul_integer(ev, ct, ct, (int64_t)k))) goto done;
        delta *= k;
    }
    /* 2. encapsulation and ModRaise */
    if (bt->bp.ephemeral_hamming_weight && (st = ckks_switch_key(ev, ct, ct, keys->to_sparse))) goto done;
    if ((st = ckks_mod_raise(ev, ct, ct, bt->top))) goto done;
    if (bt->bp.ephemeral_hamming_weight && (st = ckks_switch_key(ev, ct, ct, keys->to_dense))) goto done;
    ct->scale = q0;
    TRACE("raised", ct);
    /* 3. SubSum: keep the coefficients of Z[X^gap] (times gap) */
    for (size_t i = 0; i < bt->n_subsum && !st; i++) {
        st = ckks_apply_galois(ev, tmp, ct, bt->subsum[i]);
        if (!st) st = ckks_add(ev, ct, ct, tmp);
    }
    if (st) goto done;
    /* 4. CoeffsToSlots, then the real and imaginary parts */
    if ((st = apply_dft(ev, ct, bt->c2s, bt->bp.c2s_levels, &ws, true))) goto done;
    TRACE("c2s", ct);
    if ((st = ckks_conjugate(ev, tmp, ct))) goto done;
    if (bt->full) {
        if ((st = ckks_sub(ev, im, ct, tmp)) || (st = ckks_mul_const(ev, im, im, -I, 1.0))) goto done;
    }
    if ((st = ckks_add(ev, ct, ct, tmp))) goto done;
    /* x = (u - shift) / R: the cosine's polynomial is even in x */
    if (bt->em.shift != 0) {
        const double sh = -bt->em.shift / bt->em.range;
        if ((st = ckks_add_const(ev, ct, ct, sh)) || (bt->full && (st = ckks_add_const(ev, im, im, sh)))) goto done;
    }
    TRACE("c2s_re", ct);
    if (bt->full) TRACE("c2s_im", im);
    /* 5. EvalMod: values m_k = (t_k / q_0 mod 1) q_0 / Delta, at scale q_(l_em) */
    const double factor = q0 / delta * gain, s_em = bt->s_em;
    if (bt->full && hecnn_get_threads() >= 2) {
        /* the real and imaginary parts on one thread each (inner parallel regions run serially) */
        hecnn_status s1 = HECNN_OK, s2 = HECNN_OK;
#pragma omp parallel sections num_threads(2) if (ctx->rlwe.n >= 8192)
        {
#pragma omp section
            s1 = evalmod_eval(ev, ct, ct, &bt->em, factor, s_em);
#pragma omp section
            s2 = evalmod_eval(ev, im, im, &bt->em, factor, s_em);
        }
        if ((st = s1 ? s1 : s2)) goto done;
    } else {
        if ((st = evalmod_eval(ev, ct, ct, &bt->em, factor, s_em))) goto done;
        if (bt->full && (st = evalmod_eval(ev, im, im, &bt->em, factor, s_em))) goto done;
    }
    TRACE("evalmod_re", ct);
    if (bt->full) {
        TRACE("evalmod_im", im);
        if ((st = ckks_mul_const(ev, im, im, I, 1.0)) || (st = ckks_add(ev, ct, ct, im))) goto done;
    }
    /* 6. SlotsToCoeffs */
    if ((st = apply_dft(ev, ct, bt->s2c, bt->bp.s2c_levels, &ws, final_rescale))) goto done;
    ct->slots = bt->n;
    ct->scale = ctx->default_scale;
    if (!final_rescale) ct->scale *= (double)ckks_context_q(ctx, bt->out_level + 1);
    TRACE("s2c", ct);
    st = ckks_ciphertext_copy(out, ct);
done:
    ckks_ciphertext_free(ct);
    ckks_ciphertext_free(tmp);
    ckks_ciphertext_free(im);
    ckks_evaluator_free(ev);
    if (own_spare) {
        pthread_mutex_lock(&bt->spare->lock);
        bt->spare->ws = ws;
        bt->spare->busy = false;
        pthread_mutex_unlock(&bt->spare->lock);
    } else {
        lt_workspace_free(&ws);
    }
    return st;
}

hecnn_status ckks_bootstrap(const ckks_bootstrapper *bt, const ckks_boot_keys *keys, ckks_ciphertext *out,
                            const ckks_ciphertext *in)
{
    return bootstrap(bt, keys, out, in, 1.0, true);
}

/* ---- two real messages in one bootstrap ------------------------------------------------------ */

/* z = a + i b (exact: ckks_mul_i is a monomial product); one bootstrap returning z / 2: the 1/2 is
 * folded into EvalMod's declared scale, so ModRaise and EvalMod see z itself and their error is
 * halved with it (halving z's declared scale before the bootstrap would not do: ScaleDown brings
 * every message to the same scale, and the split would double the error: 1 bit at N = 2^16). The
 * bootstrap stops before SlotsToCoeffs' last rescale; then z + conj z and -i (z - conj z) with one
 * conjugation, each rescaled to the output level: the sum meets that rounding once, and the
 * conjugation's key-switching noise arrives at scale default * q. */
hecnn_status ckks_bootstrap_pair(const ckks_bootstrapper *bt, const ckks_boot_keys *keys, ckks_ciphertext *out_a,
                                 ckks_ciphertext *out_b, const ckks_ciphertext *in_a, const ckks_ciphertext *in_b)
{
    if (!bt || !keys || !out_a || !in_a) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    if (!in_b != !out_b) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "out_b must be given exactly when in_b is");
    if (out_a == out_b) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "out_a and out_b are the same ciphertext");
    const ckks_context *ctx = bt->ctx;
    if (in_a->ctx->param_id != ctx->param_id || (in_b && in_b->ctx->param_id != ctx->param_id) ||
        keys->ctx->param_id != ctx->param_id || out_a->ctx->param_id != ctx->param_id ||
        (out_b && out_b->ctx->param_id != ctx->param_id))
        return hecnn_fail(HECNN_ERR_PARAMS_MISMATCH, "ciphertext or keys of another context");
    if (!in_a->data || (in_b && !in_b->data)) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "empty ciphertext");
    if (in_b) {
        if (in_a->level != in_b->level)
            return hecnn_fail(HECNN_ERR_LEVEL_MISMATCH, "pair at levels %u and %u", in_a->level, in_b->level);
        if (!scales_equal(in_a->scale, in_b->scale))
            return hecnn_fail(HECNN_ERR_SCALE_MISMATCH, "pair at scales 2^%.4f and 2^%.4f", log2(in_a->scale),
                              log2(in_b->scale));
        if (in_a->slots != in_b->slots)
            return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "pair of %zu and %zu slots", in_a->slots, in_b->slots);
        if (in_b->degree != 1) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "bootstrap needs a relinearized ciphertext");
    }
    ckks_evaluator *ev = NULL;
    hecnn_status st = ckks_evaluator_new(&ev, ctx, keys->evk);
    if (st) return st;
    ckks_ciphertext *z = NULL, *c = NULL;
    if ((st = ckks_ciphertext_new(&z, ctx)) || (st = ckks_ciphertext_new(&c, ctx))) goto done;
    if (in_b) {
        if ((st = ckks_mul_i(ev, z, in_b)) || (st = ckks_add(ev, z, z, in_a))) goto done;
    } else if ((st = ckks_ciphertext_copy(z, in_a))) {
        goto done;
    }
    if ((st = bootstrap(bt, keys, z, z, 0.5, false))) goto done;
    if ((st = ckks_conjugate(ev, c, z))) goto done;
    /* the inputs are read: the outputs may alias them now */
    if (out_b) {
        const int64_t minus_i = 3 * (int64_t)(ctx->rlwe.n / 2);
        if ((st = ckks_sub(ev, out_b, z, c)) || (st = ckks_mul_monomial(ev, out_b, out_b, minus_i)) ||
            (st = ckks_rescale(ev, out_b, out_b)))
            goto done;
        out_b->scale = ctx->default_scale;
    }
    if ((st = ckks_add(ev, out_a, z, c)) || (st = ckks_rescale(ev, out_a, out_a))) goto done;
    out_a->scale = ctx->default_scale;
done:
    ckks_ciphertext_free(z);
    ckks_ciphertext_free(c);
    ckks_evaluator_free(ev);
    return st;
}

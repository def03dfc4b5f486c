/* Public-key and secret-key encryption, decryption. */
#include <math.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "ckks/internal.h"

static hecnn_status check_pt(const ckks_context *ctx, const ckks_plaintext *pt)
{
    if (!pt || !pt->data) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "empty plaintext");
    if (pt->ctx->param_id != ctx->param_id) return hecnn_fail(HECNN_ERR_PARAMS_MISMATCH, "plaintext of another context");
    return HECNN_OK;
}

static hecnn_status small_ntt(const rns_basis *b, uint64_t *out, prng *p, int kind, double sigma)
{
    int8_t *small = hecnn_alloc(b->n);
    if (!small) return hecnn_fail(HECNN_ERR_NO_MEMORY, "sample");
    if (kind) sample_gaussian(p, small, b->n, sigma);
    else sample_ternary(p, small, b->n);
    rns_from_small(b, out, small);
    hecnn_secure_free(small, b->n);
    rns_ntt(b, out);
    return HECNN_OK;
}

hecnn_status ckks_encrypt_pk_derand(const ckks_context *ctx, ckks_ciphertext *ct, const ckks_plaintext *pt,
                                    const ckks_public_key *pk, const uint8_t seed[CKKS_SEED_BYTES])
{
    if (!ctx || !ct || !pk || !seed) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    hecnn_status st = check_pt(ctx, pt);
    if (st) return st;
    if (pk->ctx->param_id != ctx->param_id || ct->ctx->param_id != ctx->param_id)
        return hecnn_fail(HECNN_ERR_PARAMS_MISMATCH, "key or ciphertext of another context");
    const unsigned level = pt->level;
    const size_t n = ctx->rlwe.n, limbs = level + 1;
    rns_basis b;
    rlwe_basis_q(&ctx->rlwe, &b, level);
    uint64_t *u = hecnn_alloc(limbs * n * 8), *e = hecnn_alloc(limbs * n * 8);
    prng pu = {0}, pe = {0};
    if (!u || !e) st = hecnn_fail(HECNN_ERR_NO_MEMORY, "encryption");
    if (!st && (prng_init(&pu, seed, DOMAIN_EPHEMERAL, 0) || prng_init(&pe, seed, DOMAIN_ERROR, 0)))
        st = hecnn_fail(HECNN_ERR_RANDOM, "AES-CTR init");
    if (!st) st = ct_reserve(ct, 1, level);
    if (!st) {
        uint64_t *c0 = ct_comp(ct, 0), *c1 = ct_comp(ct, 1);
        small_ntt(&b, u, &pu, 0, 0);
        rns_mul(&b, c0, pk->b, u);
        rns_mul(&b, c1, pk->a, u);
        small_ntt(&b, e, &pe, 1, ctx->params.sigma);
        rns_add(&b, c0, c0, e);
        small_ntt(&b, e, &pe, 1, ctx->params.sigma);
        rns_add(&b, c1, c1, e);
        rns_add(&b, c0, c0, pt->data);
        ct->scale = pt->scale;
        ct->slots = pt->slots;
    }
    prng_free(&pu);
    prng_free(&pe);
    hecnn_secure_free(u, u ? limbs * n * 8 : 0);
    hecnn_secure_free(e, e ? limbs * n * 8 : 0);
    return st;
}

hecnn_status ckks_encrypt_pk(const ckks_context *ctx, ckks_ciphertext *ct, const ckks_plaintext *pt,
                             const ckks_public_key *pk)
{
    uint8_t seed[CKKS_SEED_BYTES];
    if (random_os_seed(seed)) return hecnn_fail(HECNN_ERR_RANDOM, "getrandom failed");
    hecnn_status st = ckks_encrypt_pk_derand(ctx, ct, pt, pk, seed);
    hecnn_secure_wipe(seed, sizeof seed);
    return st;
}

hecnn_status ckks_encrypt_sk_derand(const ckks_context *ctx, ckks_ciphertext *ct, const ckks_plaintext *pt,
                                    const ckks_secret_key *sk, const uint8_t seed[CKKS_SEED_BYTES])
{
    if (!ctx || !ct || !sk || !seed) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    hecnn_status st = check_pt(ctx, pt);
    if (st) return st;
    if (sk->ctx->param_id != ctx->param_id || ct->ctx->param_id != ctx->param_id)
        return hecnn_fail(HECNN_ERR_PARAMS_MISMATCH, "key or ciphertext of another context");
    /* seeds[0] names c1 (stored); seeds[1] the error (secret: wiped on every path) */
    uint8_t seeds[2][CKKS_SEED_BYTES];
    if (prng_derive_seeds(seeds, seed)) return hecnn_fail(HECNN_ERR_RANDOM, "AES-CTR init");
    const unsigned level = pt->level;
    rns_basis b;
    rlwe_basis_q(&ctx->rlwe, &b, level);
    uint64_t *c0 = NULL, *c1 = NULL;
    prng pe = {0};
    if (!(st = ct_reserve(ct, 1, level))) {
        c0 = ct_comp(ct, 0), c1 = ct_comp(ct, 1);
        if (sample_uniform(seeds[0], 0, &b, c1) || prng_init(&pe, seeds[1], DOMAIN_ERROR, 0))
            st = hecnn_fail(HECNN_ERR_RANDOM, "AES-CTR init");
    }
    if (!st) st = small_ntt(&b, c0, &pe, 1, ctx->params.sigma);
    prng_free(&pe);
    if (!st) {
        const size_t n = ctx->rlwe.n;
        for (size_t k = 0; k <= level; k++) {
            const modulus *m = &ctx->rlwe.tables[k].mod;
            for (size_t i = k * n; i < (k + 1) * n; i++)
                c0[i] = add_mod(sub_mod(c0[i], mul_mod(c1[i], sk->rlwe.ntt[i], m), m->q), pt->data[i], m->q);
        }
        ct->scale = pt->scale;
        ct->slots = pt->slots;
        ct->seeded = true;
        memcpy(ct->seed, seeds[0], CKKS_SEED_BYTES);
    }
    hecnn_secure_wipe(seeds, sizeof seeds);
    return st;
}

hecnn_status ckks_encrypt_sk(const ckks_context *ctx, ckks_ciphertext *ct, const ckks_plaintext *pt,
                             const ckks_secret_key *sk)
{
    uint8_t seed[CKKS_SEED_BYTES];
    if (random_os_seed(seed)) return hecnn_fail(HECNN_ERR_RANDOM, "getrandom failed");
    hecnn_status st = ckks_encrypt_sk_derand(ctx, ct, pt, sk, seed);
    hecnn_secure_wipe(seed, sizeof seed);
    return st;
}

hecnn_status ckks_decrypt(const ckks_context *ctx, ckks_plaintext *pt, const ckks_ciphertext *ct,
                          const ckks_secret_key *sk)
{
    if (!ctx || !pt || !ct || !sk || !ct->data) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL or empty argument");
    if (ct->ctx->param_id != ctx->param_id || sk->ctx->param_id != ctx->param_id || pt->ctx->param_id != ctx->param_id)
        return hecnn_fail(HECNN_ERR_PARAMS_MISMATCH, "objects of different parameter sets");
    const unsigned level = ct->level;
    rns_basis b;
    rlwe_basis_q(&ctx->rlwe, &b, level);
    hecnn_status st = pt_reserve(pt, level);
    if (st) return st;
    /* Horner: m = c0 + s (c1 + s c2) */
    const size_t n = ctx->rlwe.n;
    for (size_t k = 0; k <= level; k++) {
        const modulus *m = &ctx->rlwe.tables[k].mod;
        const uint64_t *s = sk->rlwe.ntt + k * n;
        for (size_t i = 0; i < n; i++) {
            uint64_t acc = ct_comp(ct, ct->degree)[k * n + i];
            for (int c = (int)ct->degree - 1; c >= 0; c--)
                acc = add_mod(mul_mod(acc, s[i], m), ct_comp(ct, (unsigned)c)[k * n + i], m->q);
            pt->data[k * n + i] = acc;
        }
    }
    pt->scale = ct->scale;
    pt->slots = ct->slots;
    return HECNN_OK;
}

/* ---- flooded decryption ---- */

double ckks_error_estimate_log2(const ckks_context *ctx, const ckks_ciphertext *ct)
{
    if (!ctx) return NAN;
    const double n = (double)ctx->rlwe.n, sigma = ctx->params.sigma > 0 ? ctx->params.sigma : 3.2;
    /* a fresh public-key encryption: v e_pk + e0 + e1 s, v and s ternary (variance 2/3) */
    if (ct && ct->level == ctx->rlwe.n_q - 1) return log2(sigma * sqrt(4 * n / 3 + 1));
    /* a rescale's rounding: r0 + r1 s, r uniform in [-1/2, 1/2] (variance 1/12) */
    return log2(sqrt((1 + 2 * n / 3) / 12));
}

double ckks_flood_bits_default(const ckks_context *ctx)
{
    return ctx ? CKKS_FLOOD_STAT_SEC / 2.0 + ctx->rlwe.log_n / 2.0 + 1 : NAN;
}

double ckks_flood_sigma_log2(const ckks_context *ctx, const ckks_ciphertext *ct, const ckks_flood_options *opt)
{
    const double bits = opt && opt->flood_bits != 0 ? opt->flood_bits : ckks_flood_bits_default(ctx);
    const double err = opt && opt->log2_error != 0 ? opt->log2_error : ckks_error_estimate_log2(ctx, ct);
    return bits + err;
}

double ckks_flood_slot_stddev(const ckks_context *ctx, const ckks_ciphertext *ct, const ckks_flood_options *opt)
{
    if (!ctx || !ct) return NAN;
    /* decoding sums `slots` coefficients (each with its imaginary partner) into a slot */
    return exp2(ckks_flood_sigma_log2(ctx, ct, opt)) * sqrt((double)ct->slots) / ct->scale;
}

/* The flooding noise is secret until added: its sampler does not branch on it nor index memory by it
 * (tests/ct_secret.c), so it uses its own logarithm and sine/cosine (fixed polynomials, no tables)
 * instead of libm's, which do both. */

/* log(u) for u in [2^-53, 1]: u = m 2^e with m in [sqrt(1/2), sqrt(2)) (the exponent's bits, a
 * masked halving), log(m) = 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.1716: its series to s^25
 * (the next term is below 2^-66). */
static double ct_log(double u)
{
    uint64_t bits;
    memcpy(&bits, &u, 8);
    uint64_t mb = (bits & 0x000fffffffffffffull) | 0x3ff0000000000000ull; /* m in [1, 2) */
    const uint64_t big = mb > 0x3ff6a09e667f3bcdull;                            /* m > sqrt(2): 0 or 1 */
    mb -= big << 52;                                                             /* then m / 2 */
    const double e = (double)((int64_t)(bits >> 52 & 0x7ff) - 1023 + (int64_t)big);
    double m;
    memcpy(&m, &mb, 8);
    const double sx = (m - 1) / (m + 1), w = sx * sx;
    double poly = 1.0 / 25;
    for (int k = 23; k >= 1; k -= 2) poly = poly * w + 1.0 / k;
    return e * M_LN2 + 2 * sx * poly;
}

/* cos(x) and sin(x) for |x| <= pi: Taylor series to x^30 and x^29 (the next terms are below 2^-61). */
static void ct_sincos(double x, double *c, double *sn)
{
    const double w = x * x;
    double pc = 1, ps = 1;
    for (int k = 30; k >= 2; k -= 2) pc = 1 - pc * w / (double)(k * (k - 1));
    for (int k = 29; k >= 3; k -= 2) ps = 1 - ps * w / (double)(k * (k - 1));
    *c = pc;
    *sn = x * ps;
}

/* sqrt(x) for x >= 0 by the instruction: the libm call's error path (x < 0) is a branch on x. */
static double ct_sqrt(double x)
{
#if defined(__SSE2__)
    return _mm_cvtsd_f64(_mm_sqrt_sd(_mm_setzero_pd(), _mm_set_sd(x)));
#else
    return sqrt(x);
#endif
}

/* A standard normal pair by Box-Muller from two 53-bit uniforms (u1 in (0, 1]: tails to 8.6 sigma),
 * the angle taken in [-pi, pi) (a half turn from [0, 2 pi): the same pair, negated). */
static void normal_pair(prng *p, double *z0, double *z1)
{
    /* through int64_t: an unsigned conversion may test the top bit with a branch */
    const double u1 = (double)(int64_t)((prng_u64(p) >> 11) + 1) * 0x1p-53, u2 = (double)(int64_t)(prng_u64(p) >> 11) * 0x1p-53;
    const double r = ct_sqrt(-2 * ct_log(u1));
    double c, sn;
    ct_sincos(2 * M_PI * (u2 - 0.5), &c, &sn);
    *z0 = r * c;
    *z1 = r * sn;
}

/* round(x) half away from zero for |x| < 2^62, without a branch: x + copysign(1/2, x) truncated, or
 * x itself from 2^52 on (already an integer, where adding 1/2 could round). */
static int64_t ct_round(double x)
{
    const double ax = fabs(x);
    const int64_t small = (int64_t)(x + copysign(0.5, x)), large = (int64_t)x;
    const int64_t is_large = -(int64_t)(ax >= 0x1p52);
    return small ^ ((small ^ large) & is_large);
}

/* v mod q in [0, q) for |v| < 2^63, without a branch or a division: |v| by its sign mask, Barrett,
 * then q - r selected for a negative v. */
static uint64_t ct_from_signed(int64_t v, const modulus *m)
{
    const uint64_t sign = (uint64_t)(v >> 63), a = ((uint64_t)v ^ sign) - sign;
    const uint64_t r = reduce64(a, m);
    return r ^ ((r ^ neg_mod(r, m->q)) & sign);
}

hecnn_status ckks_decrypt_flooded_derand(const ckks_context *ctx, ckks_plaintext *pt, const ckks_ciphertext *ct,
                                         const ckks_secret_key *sk, const ckks_flood_options *opt,
                                         const uint8_t seed[CKKS_SEED_BYTES])
{
    if (!ctx || !pt || !ct || !sk || !seed) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    if (opt && (!isfinite(opt->flood_bits) || opt->flood_bits < 0 || opt->flood_bits > 64))
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "flood_bits %g: need (0, 64], or 0 for the default", opt ? opt->flood_bits : 0.0);
    if (opt && !isfinite(opt->log2_error))
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "log2_error is not finite");
    if (ct->ctx->param_id != ctx->param_id) return hecnn_fail(HECNN_ERR_PARAMS_MISMATCH, "ciphertext of another context");
    const double log_sigma = ckks_flood_sigma_log2(ctx, ct, opt);
    double log_q = 0;
    for (unsigned k = 0; k <= ct->level; k++) log_q += log2((double)ctx->rlwe.tables[k].mod.q);
    /* 8 sigma (2^3) must stay under Q/4 so that the noise never wraps; the sampler draws int64 */
    if (log_sigma + 3 > log_q - 2 || log_sigma > 58)
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT,
                          "flooding sigma 2^%.1f is too large for a ciphertext modulus of %.0f bits (at most 2^%.1f)",
                          log_sigma, log_q, fmin(log_q - 5, 58));
    hecnn_status st = ckks_decrypt(ctx, pt, ct, sk);
    if (st) return st;
    const size_t n = ctx->rlwe.n, limbs = (size_t)ct->level + 1;
    const double sigma = exp2(log_sigma);
    int64_t *noise = hecnn_alloc(n * sizeof *noise);
    uint64_t *poly = hecnn_alloc(limbs * n * 8);
    prng p = {0};
    if (!noise || !poly) st = hecnn_fail(HECNN_ERR_NO_MEMORY, "flooding noise");
    else if (prng_init(&p, seed, DOMAIN_FLOOD, 0)) st = hecnn_fail(HECNN_ERR_RANDOM, "AES-CTR init");
    if (!st) {
        for (size_t i = 0; i < n; i += 2) {
            double z0, z1;
            normal_pair(&p, &z0, &z1);
            noise[i] = ct_round(z0 * sigma);
            noise[i + 1] = ct_round(z1 * sigma);
        }
        for (size_t k = 0; k < limbs; k++)
            for (size_t i = 0; i < n; i++) poly[k * n + i] = ct_from_signed(noise[i], &ctx->rlwe.tables[k].mod);
        rns_basis b;
        rlwe_basis_q(&ctx->rlwe, &b, ct->level);
        rns_ntt(&b, poly);
        rns_add(&b, pt->data, pt->data, poly);
    }
    prng_free(&p);
    hecnn_secure_free(noise, noise ? n * sizeof *noise : 0);
    hecnn_secure_free(poly, poly ? limbs * n * 8 : 0);
    /* never hand out the unflooded decryption */
    if (st) hecnn_secure_wipe(pt->data, limbs * n * 8);
    return st;
}

hecnn_status ckks_decrypt_flooded(const ckks_context *ctx, ckks_plaintext *pt, const ckks_ciphertext *ct,
                                  const ckks_secret_key *sk, const ckks_flood_options *opt)
{
    uint8_t seed[CKKS_SEED_BYTES];
    if (random_os_seed(seed)) return hecnn_fail(HECNN_ERR_RANDOM, "getrandom failed");
    hecnn_status st = ckks_decrypt_flooded_derand(ctx, pt, ct, sk, opt, seed);
    hecnn_secure_wipe(seed, sizeof seed);
    return st;
}

/* Parameter validation and the immutable context. */
#include <math.h>
#include <omp.h>
#include <openssl/evp.h>
#include <string.h>

#include "ckks/internal.h"
#include "math/primes.h"

unsigned ckks_max_log_qp_128(unsigned log_n)
{
    /* HomomorphicEncryption.org standard, ternary secret, classical 128-bit; 2^16 and 2^17
     * as extended by OpenFHE's table. */
    static const unsigned table[18] = {[10] = 27, [11] = 54, [12] = 109, [13] = 218,
                                       [14] = 438, [15] = 881, [16] = 1747, [17] = 3523};
    return log_n < 18 ? table[log_n] : 0;
}

static void fill(unsigned *dst, unsigned count, unsigned bits)
{
    for (unsigned i = 0; i < count; i++) dst[i] = bits;
}

hecnn_status ckks_params_preset(ckks_params_literal *out, ckks_preset preset)
{
    if (!out) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "output is NULL");
    *out = (ckks_params_literal){.secret = CKKS_SECRET_TERNARY, .sigma = 3.2};
    switch (preset) {
    case CKKS_PRESET_N13: /* log QP = 60 + 2x40 + 60 = 200 <= 218 */
        *out = (ckks_params_literal){.log_n = 13, .n_q = 3, .n_p = 1, .log_scale = 40, .sigma = 3.2};
        out->log_q[0] = 60, fill(out->log_q + 1, 2, 40), out->log_p[0] = 60;
        break;
    case CKKS_PRESET_N14: /* 58 + 7x40 + 2x50 = 438 <= 438 */
        *out = (ckks_params_literal){.log_n = 14, .n_q = 8, .n_p = 2, .log_scale = 40, .sigma = 3.2};
        out->log_q[0] = 58, fill(out->log_q + 1, 7, 40), fill(out->log_p, 2, 50);
        break;
    case CKKS_PRESET_N15: /* 60 + 16x40 + 3x60 = 880 <= 881 */
        *out = (ckks_params_literal){.log_n = 15, .n_q = 17, .n_p = 3, .log_scale = 40, .sigma = 3.2};
        out->log_q[0] = 60, fill(out->log_q + 1, 16, 40), fill(out->log_p, 3, 60);
        break;
    case CKKS_PRESET_N16: /* OpenFHE's benchmark shape: 60 + 24x50 + 8x60 = 1740 <= 1747 */
        *out = (ckks_params_literal){.log_n = 16, .n_q = 25, .n_p = 8, .dnum = 3, .log_scale = 50, .sigma = 3.2};
        out->log_q[0] = 60, fill(out->log_q + 1, 24, 50), fill(out->log_p, 8, 60);
        break;
    default:
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "unknown preset %d", (int)preset);
    }
    return HECNN_OK;
}

static hecnn_status validate(const ckks_params_literal *p)
{
    if (p->log_n < 4 || p->log_n > 17)
        return hecnn_fail(HECNN_ERR_INVALID_PARAMS, "log_n = %u outside 4..17", p->log_n);
    if (p->n_q < 1 || p->n_q > CKKS_MAX_PRIMES || p->n_p < 1 || p->n_p > CKKS_MAX_PRIMES)
        return hecnn_fail(HECNN_ERR_INVALID_PARAMS, "need 1..%d q primes and 1..%d special primes",
                          CKKS_MAX_PRIMES, CKKS_MAX_PRIMES);
    for (unsigned i = 0; i < p->n_q + p->n_p; i++) {
        unsigned b = i < p->n_q ? p->log_q[i] : p->log_p[i - p->n_q];
        if (b < p->log_n + 3 || b < 17 || b > 61)
            return hecnn_fail(HECNN_ERR_INVALID_PARAMS, "prime %u has %u bits: need %u..61", i, b,
                              p->log_n + 3 > 17 ? p->log_n + 3 : 17);
    }
    if (p->dnum > p->n_q) return hecnn_fail(HECNN_ERR_INVALID_PARAMS, "dnum %u > n_q %u", p->dnum, p->n_q);
    if (p->log_scale < 1 || p->log_scale > 60)
        return hecnn_fail(HECNN_ERR_INVALID_PARAMS, "log_scale %u outside 1..60", p->log_scale);
    if (p->secret != CKKS_SECRET_TERNARY && p->secret != CKKS_SECRET_SPARSE_TERNARY)
        return hecnn_fail(HECNN_ERR_INVALID_PARAMS, "unknown secret distribution");
    if (p->secret == CKKS_SECRET_SPARSE_TERNARY &&
        (p->hamming_weight < 1 || p->hamming_weight > ((size_t)1 << p->log_n)))
        return hecnn_fail(HECNN_ERR_INVALID_PARAMS, "hamming weight %u outside 1..N", p->hamming_weight);
    if (!(p->sigma >= 0 && p->sigma <= 20)) return hecnn_fail(HECNN_ERR_INVALID_PARAMS, "sigma %g outside [0, 20]", p->sigma);
    if (!p->allow_insecure && !ckks_sigma_standard(p->sigma))
        return hecnn_fail(HECNN_ERR_INSECURE_PARAMS, "error sigma %g is not the HE standard's 3.19..3.2: set allow_insecure",
                          p->sigma);
    return HECNN_OK;
}

static uint64_t compute_param_id(const ckks_context *ctx)
{
    /* SHA-256 over a canonical little-endian description: N, primes, dnum, secret, sigma. */
    uint8_t buf[8 * (2 * CKKS_MAX_PRIMES + 8)];
    size_t len = 0;
    uint64_t words[2 * CKKS_MAX_PRIMES + 8];
    size_t w = 0;
    words[w++] = ctx->rlwe.log_n;
    words[w++] = ctx->rlwe.n_q;
    words[w++] = ctx->rlwe.n_p;
    for (unsigned i = 0; i < ctx->rlwe.n_q + ctx->rlwe.n_p; i++) words[w++] = ctx->rlwe.tables[i].mod.q;
    words[w++] = ctx->rlwe.dnum;
    words[w++] = ctx->params.secret;
    words[w++] = ctx->params.hamming_weight;
    uint64_t sigma_bits;
    memcpy(&sigma_bits, &ctx->params.sigma, 8);
    words[w++] = sigma_bits;
    for (size_t i = 0; i < w; i++)
        for (int b = 0; b < 8; b++) buf[len++] = (uint8_t)(words[i] >> (8 * b));
    uint8_t digest[32];
    unsigned dlen = 0;
    EVP_Digest(buf, len, digest, &dlen, EVP_sha256(), NULL);
    uint64_t id = 0;
    for (int b = 0; b < 8; b++) id |= (uint64_t)digest[b] << (8 * b);
    return id;
}

hecnn_status ckks_context_new(ckks_context **out, const ckks_params_literal *params)
{
    if (!out || !params) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    hecnn_status st = validate(params);
    if (st) return st;

    ckks_context *ctx = hecnn_calloc(1, sizeof *ctx);
    if (!ctx) return hecnn_fail(HECNN_ERR_NO_MEMORY, "context");
    ctx->params = *params;
    if (ctx->params.sigma == 0) ctx->params.sigma = 3.2;
    ctx->default_scale = ldexp(1.0, (int)params->log_scale);

    /* Primes: for each requested size, the largest unused NTT prime below 2^bits. */
    const unsigned n_q = params->n_q, total = n_q + params->n_p;
    const uint64_t n = (uint64_t)1 << params->log_n;
    uint64_t primes[2 * CKKS_MAX_PRIMES];
    ctx->log_qp = 0;
    for (unsigned i = 0; i < total; i++) {
        unsigned bits = i < n_q ? params->log_q[i] : params->log_p[i - n_q];
        primes[i] = prime_below((uint64_t)1 << bits, 2 * n, primes, i);
        if (!primes[i]) {
            ckks_context_free(ctx);
            return hecnn_fail(HECNN_ERR_INVALID_PARAMS, "no NTT-friendly %u-bit prime left for N=%llu", bits,
                              (unsigned long long)n);
        }
        ctx->log_qp += log2((double)primes[i]);
    }
    unsigned bound = ckks_max_log_qp_128(params->log_n);
    if (!params->allow_insecure) {
        if (params->secret != CKKS_SECRET_TERNARY) {
            ckks_context_free(ctx);
            return hecnn_fail(HECNN_ERR_INSECURE_PARAMS,
                              "sparse secrets are not covered by the HE standard; set allow_insecure");
        }
        if (!bound || ctx->log_qp > bound) {
            st = hecnn_fail(HECNN_ERR_INSECURE_PARAMS, "log QP = %.1f exceeds the 128-bit bound %u for N = 2^%u",
                              ctx->log_qp, bound, params->log_n);
            ckks_context_free(ctx);
            return st;
        }
    }
    /* the ring: NTT tables, digits (the special primes must cover the largest), ModDown constants */
    st = rlwe_context_init(&ctx->rlwe, params->log_n, primes, n_q, params->n_p, params->dnum, ctx->params.sigma);
    if (st) {
        ckks_context_free(ctx);
        return st;
    }
    ctx->params.dnum = ctx->rlwe.dnum;

    /* encoder: exp(2 pi i k / 2N) and the rotation group 5^j mod 2N */
    ctx->roots = hecnn_alloc(2 * n * sizeof(double complex));
    ctx->rot_group = hecnn_alloc(n / 2 * 8);
    if (!ctx->roots || !ctx->rot_group) {
        ckks_context_free(ctx);
        return hecnn_fail(HECNN_ERR_NO_MEMORY, "context tables");
    }
    for (size_t k = 0; k < 2 * n; k++) {
        double angle = 2 * M_PI * (double)k / (double)(2 * n);
        ctx->roots[k] = cos(angle) + I * sin(angle);
    }
    uint64_t g = 1;
    for (size_t j = 0; j < n / 2; j++) {
        ctx->rot_group[j] = g;
        g = (g * 5) & (2 * n - 1);
    }
    ctx->param_id = compute_param_id(ctx);
    *out = ctx;
    return HECNN_OK;
}

void ckks_context_free(ckks_context *ctx)
{
    if (!ctx) return;
    rlwe_context_clear(&ctx->rlwe);
    hecnn_free(ctx->roots);
    hecnn_free(ctx->rot_group);
    hecnn_free(ctx);
}

size_t ckks_context_n(const ckks_context *ctx) { return ctx->rlwe.n; }
size_t ckks_context_max_slots(const ckks_context *ctx) { return ctx->rlwe.n / 2; }
unsigned ckks_context_max_level(const ckks_context *ctx) { return ctx->rlwe.n_q - 1; }
double ckks_context_default_scale(const ckks_context *ctx) { return ctx->default_scale; }
uint64_t ckks_context_param_id(const ckks_context *ctx) { return ctx->param_id; }
uint64_t ckks_context_q(const ckks_context *ctx, unsigned i) { return i < ctx->rlwe.n_q ? ctx->rlwe.tables[i].mod.q : 0; }
uint64_t ckks_context_p(const ckks_context *ctx, unsigned i)
{
    return i < ctx->rlwe.n_p ? ctx->rlwe.tables[ctx->rlwe.n_q + i].mod.q : 0;
}
unsigned ckks_context_n_p(const ckks_context *ctx) { return ctx->rlwe.n_p; }
unsigned ckks_context_dnum(const ckks_context *ctx) { return ctx->rlwe.dnum; }
double ckks_context_log_qp(const ckks_context *ctx) { return ctx->log_qp; }
const ckks_params_literal *ckks_context_params(const ckks_context *ctx) { return &ctx->params; }

void hecnn_set_threads(int threads) { omp_set_num_threads(threads > 0 ? threads : omp_get_num_procs()); }
int hecnn_get_threads(void) { return omp_get_max_threads(); }
const char *hecnn_simd_name(void) { return ntt_kernels_active()->name; }

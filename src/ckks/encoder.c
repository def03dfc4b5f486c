/* Canonical-embedding encoder: the special FFT over the rotation group 5^j mod 2N.
 * Slot j of a plaintext with n slots is m(zeta^(5^j)), zeta = exp(i pi / N); with n < N/2
 * the polynomial lives in Z[X^(N/2n)] and the slot vector repeats N/(2n) times. */
#include <math.h>
#include <string.h>

#include "ckks/internal.h"

static void bit_reverse_array(double complex *v, size_t n)
{
    for (size_t i = 1, j = 0; i < n; i++) {
        size_t bit = n >> 1;
        for (; j & bit; bit >>= 1) j ^= bit;
        j ^= bit;
        if (i < j) {
            double complex t = v[i];
            v[i] = v[j];
            v[j] = t;
        }
    }
}

/* coefficients (as n complex numbers) -> slot values */
static void special_fft(const ckks_context *ctx, double complex *v, size_t n)
{
    const size_t m = 2 * ctx->rlwe.n;
    bit_reverse_array(v, n);
    for (size_t len = 2; len <= n; len <<= 1) {
        const size_t half = len >> 1, lenq = len << 2, stride = m / lenq;
        for (size_t i = 0; i < n; i += len)
            for (size_t j = 0; j < half; j++) {
                double complex u = v[i + j];
                double complex w = v[i + j + half] * ctx->roots[(ctx->rot_group[j] % lenq) * stride];
                v[i + j] = u + w;
                v[i + j + half] = u - w;
            }
    }
}

/* slot values -> coefficients (inverse of special_fft, including the 1/n) */
static void special_ifft(const ckks_context *ctx, double complex *v, size_t n)
{
    const size_t m = 2 * ctx->rlwe.n;
    for (size_t len = n; len >= 2; len >>= 1) {
        const size_t half = len >> 1, lenq = len << 2, stride = m / lenq;
        for (size_t i = 0; i < n; i += len)
            for (size_t j = 0; j < half; j++) {
                double complex u = v[i + j] + v[i + j + half];
                double complex w = (v[i + j] - v[i + j + half]) * ctx->roots[(lenq - ctx->rot_group[j] % lenq) * stride];
                v[i + j] = u;
                v[i + j + half] = w;
            }
    }
    bit_reverse_array(v, n);
    for (size_t i = 0; i < n; i++) v[i] /= (double)n;
}

/* round(x) mod q for any finite x, exactly: x = mant * 2^exp with |mant| < 2^53. */
static uint64_t double_to_residue(double x, const modulus *m)
{
    double r = round(x);
    if (fabs(r) < 9.2e18) return from_signed((int64_t)r, m->q);
    int e;
    double mant = frexp(r, &e); /* r = mant * 2^e, 0.5 <= |mant| < 1 */
    int64_t mi = (int64_t)ldexp(mant, 53);
    uint64_t res = from_signed(mi, m->q);
    return mul_mod(res, pow_mod(2, (uint64_t)(e - 53), m), m);
}

void ckks_const_residues(const ckks_context *ctx, uint64_t *out, double value, unsigned level)
{
    for (unsigned k = 0; k <= level; k++) out[k] = double_to_residue(value, &ctx->rlwe.tables[k].mod);
}

static hecnn_status check_slots(const ckks_context *ctx, size_t *slots, size_t count)
{
    if (*slots == 0) *slots = ctx->rlwe.n / 2;
    if (*slots > ctx->rlwe.n / 2 || (*slots & (*slots - 1)))
        return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "slots = %zu: need a power of two <= N/2 = %zu", *slots, ctx->rlwe.n / 2);
    if (count > *slots) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "%zu values for %zu slots", count, *slots);
    return HECNN_OK;
}

hecnn_status ckks_encode(const ckks_context *ctx, ckks_plaintext *pt, const double complex *values, size_t count,
                         size_t slots, unsigned level, double scale)
{
    if (!ctx || !pt || (!values && count)) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    if (pt->ctx->param_id != ctx->param_id) return hecnn_fail(HECNN_ERR_PARAMS_MISMATCH, "plaintext of another context");
    if (level >= ctx->rlwe.n_q) return hecnn_fail(HECNN_ERR_LEVEL_MISMATCH, "level %u > max %u", level, ctx->rlwe.n_q - 1);
    if (!(scale > 0) || !isfinite(scale)) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "scale must be > 0");
    hecnn_status st = check_slots(ctx, &slots, count);
    if (st) return st;
    for (size_t i = 0; i < count; i++)
        if (!isfinite(creal(values[i])) || !isfinite(cimag(values[i])))
            return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "value %zu is not finite", i);

    double complex *v = hecnn_calloc(slots, sizeof *v);
    if (!v) return hecnn_fail(HECNN_ERR_NO_MEMORY, "encoder buffer");
    if ((st = pt_reserve(pt, level))) {
        hecnn_free(v);
        return st;
    }
    memcpy(v, values, count * sizeof *v);
    special_ifft(ctx, v, slots);

    const size_t n = ctx->rlwe.n, gap = n / (2 * slots);
    memset(pt->data, 0, (size_t)(level + 1) * n * 8);
    for (unsigned k = 0; k <= level; k++) {
        const modulus *m = &ctx->rlwe.tables[k].mod;
        uint64_t *limb = pt->data + (size_t)k * n;
        for (size_t i = 0; i < slots; i++) {
            limb[i * gap] = double_to_residue(creal(v[i]) * scale, m);
            limb[n / 2 + i * gap] = double_to_residue(cimag(v[i]) * scale, m);
        }
    }
    hecnn_free(v);
    rns_basis b;
    rlwe_basis_q(&ctx->rlwe, &b, level);
    rns_ntt(&b, pt->data);
    pt->scale = scale;
    pt->slots = slots;
    return HECNN_OK;
}

hecnn_status ckks_encode_real(const ckks_context *ctx, ckks_plaintext *pt, const double *values, size_t count,
                              size_t slots, unsigned level, double scale)
{
    if (!values && count) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL values");
    double complex *v = hecnn_alloc((count ? count : 1) * sizeof *v);
    if (!v) return hecnn_fail(HECNN_ERR_NO_MEMORY, "encoder buffer");
    for (size_t i = 0; i < count; i++) v[i] = values[i];
    hecnn_status st = ckks_encode(ctx, pt, v, count, slots, level, scale);
    hecnn_free(v);
    return st;
}

/* Balanced mixed-radix (Garner) reconstruction from the first `k` limbs: exact digits, then
 * a Horner sum in long double without cancellation. */
static long double crt_centered(const uint64_t *res, const ckks_context *ctx, unsigned k, uint64_t inv[3][3])
{
    int64_t digit[3];
    uint64_t q[3];
    for (unsigned j = 0; j < k; j++) q[j] = ctx->rlwe.tables[j].mod.q;
    for (unsigned j = 0; j < k; j++) {
        const modulus *m = &ctx->rlwe.tables[j].mod;
        uint64_t x = res[j];
        for (unsigned i = 0; i < j; i++) x = mul_mod(sub_mod(x, from_signed(digit[i], q[j]), q[j]), inv[i][j], m);
        digit[j] = to_centered(x, q[j]);
    }
    long double v = (long double)digit[k - 1];
    for (int j = (int)k - 2; j >= 0; j--) v = v * (long double)q[j] + (long double)digit[j];
    return v;
}

hecnn_status ckks_decode(const ckks_context *ctx, double complex *out, const ckks_plaintext *pt)
{
    if (!ctx || !out || !pt) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    if (pt->ctx->param_id != ctx->param_id) return hecnn_fail(HECNN_ERR_PARAMS_MISMATCH, "plaintext of another context");
    const size_t n = ctx->rlwe.n, slots = pt->slots, gap = n / (2 * slots);
    const unsigned k = pt->level + 1 < 3 ? pt->level + 1 : 3;
    uint64_t *coef = hecnn_alloc((size_t)k * n * 8);
    if (!coef) return hecnn_fail(HECNN_ERR_NO_MEMORY, "decoder buffer");
    memcpy(coef, pt->data, (size_t)k * n * 8);
    rns_basis b;
    rlwe_basis_q(&ctx->rlwe, &b, k - 1);
    rns_intt(&b, coef);
    uint64_t inv[3][3] = {{0}};
    for (unsigned i = 0; i < k; i++)
        for (unsigned j = i + 1; j < k; j++) inv[i][j] = inv_mod(ctx->rlwe.tables[i].mod.q % ctx->rlwe.tables[j].mod.q, &ctx->rlwe.tables[j].mod);
    for (size_t i = 0; i < slots; i++) {
        uint64_t re[3], im[3];
        for (unsigned j = 0; j < k; j++) {
            re[j] = coef[(size_t)j * n + i * gap];
            im[j] = coef[(size_t)j * n + n / 2 + i * gap];
        }
        out[i] = (double)(crt_centered(re, ctx, k, inv) / pt->scale) + I * (double)(crt_centered(im, ctx, k, inv) / pt->scale);
    }
    hecnn_free(coef);
    special_fft(ctx, out, slots);
    return HECNN_OK;
}

hecnn_status ckks_decode_real(const ckks_context *ctx, double *out, const ckks_plaintext *pt)
{
    if (!pt || !out) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    double complex *v = hecnn_alloc(pt->slots * sizeof *v);
    if (!v) return hecnn_fail(HECNN_ERR_NO_MEMORY, "decoder buffer");
    hecnn_status st = ckks_decode(ctx, v, pt);
    if (!st)
        for (size_t i = 0; i < pt->slots; i++) out[i] = creal(v[i]);
    hecnn_free(v);
    return st;
}

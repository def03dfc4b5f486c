/* Plaintext and ciphertext handles. */
#include <math.h>
#include <string.h>

#include "ckks/internal.h"

hecnn_status pt_reserve(ckks_plaintext *pt, unsigned level)
{
    size_t limbs = (size_t)level + 1;
    if (limbs > pt->capacity) {
        uint64_t *d = hecnn_alloc(limbs * pt->ctx->rlwe.n * 8);
        if (!d) return hecnn_fail(HECNN_ERR_NO_MEMORY, "plaintext of %zu limbs", limbs);
        hecnn_free(pt->data);
        pt->data = d;
        pt->capacity = limbs;
    }
    pt->level = level;
    return HECNN_OK;
}

hecnn_status ct_reserve(ckks_ciphertext *ct, unsigned degree, unsigned level)
{
    size_t limbs = ((size_t)degree + 1) * ((size_t)level + 1);
    if (limbs > ct->capacity) {
        uint64_t *d = hecnn_alloc(limbs * ct->ctx->rlwe.n * 8);
        if (!d) return hecnn_fail(HECNN_ERR_NO_MEMORY, "ciphertext of %zu limbs", limbs);
        hecnn_free(ct->data);
        ct->data = d;
        ct->capacity = limbs;
    }
    ct->degree = degree;
    ct->level = level;
    ct->seeded = false;
    return HECNN_OK;
}

hecnn_status ckks_plaintext_new(ckks_plaintext **out, const ckks_context *ctx)
{
    if (!out || !ctx) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = hecnn_calloc(1, sizeof **out);
    if (!*out) return hecnn_fail(HECNN_ERR_NO_MEMORY, "plaintext");
    (*out)->ctx = ctx;
    (*out)->scale = 1;
    (*out)->slots = ctx->rlwe.n / 2;
    return HECNN_OK;
}

void ckks_plaintext_free(ckks_plaintext *pt)
{
    if (!pt) return;
    hecnn_free(pt->data);
    hecnn_free(pt);
}

unsigned ckks_plaintext_level(const ckks_plaintext *pt) { return pt->level; }
double ckks_plaintext_scale(const ckks_plaintext *pt) { return pt->scale; }
size_t ckks_plaintext_slots(const ckks_plaintext *pt) { return pt->slots; }

hecnn_status ckks_ciphertext_new(ckks_ciphertext **out, const ckks_context *ctx)
{
    if (!out || !ctx) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = hecnn_calloc(1, sizeof **out);
    if (!*out) return hecnn_fail(HECNN_ERR_NO_MEMORY, "ciphertext");
    (*out)->ctx = ctx;
    (*out)->scale = 1;
    (*out)->degree = 1;
    (*out)->slots = ctx->rlwe.n / 2;
    return HECNN_OK;
}

void ckks_ciphertext_free(ckks_ciphertext *ct)
{
    if (!ct) return;
    hecnn_free(ct->data);
    hecnn_free(ct);
}

hecnn_status ckks_ciphertext_copy(ckks_ciphertext *dst, const ckks_ciphertext *src)
{
    if (!dst || !src) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    if (dst == src) return HECNN_OK;
    if (dst->ctx->param_id != src->ctx->param_id) return hecnn_fail(HECNN_ERR_PARAMS_MISMATCH, "copy across contexts");
    hecnn_status st = ct_reserve(dst, src->degree, src->level);
    if (st) return st;
    memcpy(dst->data, src->data, ((size_t)src->degree + 1) * (src->level + 1) * src->ctx->rlwe.n * 8);
    dst->scale = src->scale;
    dst->slots = src->slots;
    dst->seeded = src->seeded;
    memcpy(dst->seed, src->seed, sizeof dst->seed);
    return HECNN_OK;
}

unsigned ckks_ciphertext_level(const ckks_ciphertext *ct) { return ct->level; }
double ckks_ciphertext_scale(const ckks_ciphertext *ct) { return ct->scale; }
size_t ckks_ciphertext_slots(const ckks_ciphertext *ct) { return ct->slots; }
unsigned ckks_ciphertext_degree(const ckks_ciphertext *ct) { return ct->degree; }

hecnn_status ckks_ciphertext_set_scale(ckks_ciphertext *ct, double scale)
{
    if (!ct || !(scale > 0) || !isfinite(scale)) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "scale must be > 0");
    ct->scale = scale;
    return HECNN_OK;
}

bool scales_equal(double a, double b) { return fabs(a - b) <= ldexp(fabs(a) > fabs(b) ? fabs(a) : fabs(b), -40); }

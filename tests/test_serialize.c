/* Serialization: bit-exact round trips of every object type, seeded sizes, and rejection of
 * malformed input with the right status (layout in docs/FORMATS.md). */
#include <complex.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "ckks/internal.h"
#include "common/check.h"
#include "hecnn/hecnn.h"

#define HDR 32 /* header bytes */
#define DG 32  /* the SHA-256 that ends every object */

typedef struct blob {
    char *data;
    size_t len;
} blob;

static ckks_params_literal small_params(unsigned n_q)
{
    ckks_params_literal p = {.log_n = 6, .n_q = n_q, .n_p = 1, .log_scale = 40, .allow_insecure = true};
    p.log_q[0] = 60;
    for (unsigned i = 1; i < n_q; i++) p.log_q[i] = 40;
    p.log_p[0] = 60;
    return p;
}

typedef struct fixture {
    ckks_context *ctx, *other; /* `other`: another parameter set */
    ckks_secret_key *sk;
    ckks_public_key *pk;
    ckks_eval_keys *keys;
    size_t slots;
    unsigned top;
} fixture;

static FILE *mem_in(const void *data, size_t len)
{
    if (!len) return fopen("/dev/null", "rb");
    return fmemopen((void *)data, len, "rb");
}

static FILE *mem_out(blob *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    FILE *f = open_memstream(&b->data, &b->len);
    if (!f) abort();
    return f;
}

static void put64(void *p, uint64_t v)
{
    uint8_t *b = p;
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
}
static void put32(void *p, uint32_t v)
{
    uint8_t *b = p;
    for (int i = 0; i < 4; i++) b[i] = (uint8_t)(v >> (8 * i));
}
static uint64_t get64(const void *p)
{
    const uint8_t *b = p;
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | b[i];
    return v;
}

static void sha256(const void *data, size_t len, uint8_t out[32])
{
    unsigned n = 0;
    if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 || n != 32) abort();
}

/* Recompute the digest that ends the object data[0, len), as its writer would: a patched object
 * then fails on what the patch broke, not on its checksum. A key set's digest covers its header,
 * its count and its keys' digests; its keys are resealed first (as far as their size fields walk). */
static void reseal(int evk, uint8_t *d, size_t len)
{
    if (len < HDR + DG) return;
    if (!evk) {
        sha256(d, len - DG, d + len - DG);
        return;
    }
    uint8_t *list = malloc(HDR + 8 + len);
    memcpy(list, d, HDR + 8);
    size_t n = HDR + 8;
    for (size_t off = HDR + 8; off + HDR + DG <= len - DG;) {
        const uint64_t size = get64(d + off + 24);
        if (size < HDR + DG || size > len - DG - off) break;
        sha256(d + off, size - DG, d + off + size - DG);
        memcpy(list + n, d + off + size - DG, DG);
        n += DG;
        off += size;
    }
    sha256(list, n, d + len - DG);
    free(list);
}

enum kind { K_PARAMS, K_PT, K_CT, K_SK, K_PK, K_SWK, K_EVK, K_COUNT };
static const char *kind_name[K_COUNT] = {"params", "plaintext", "ciphertext", "secret key", "public key", "switching key",
                                         "eval keys"};

/* Load `len` bytes as `kind` under ctx; frees whatever was loaded; returns the status. */
static hecnn_status load_as(const ckks_context *ctx, enum kind kind, const void *data, size_t len)
{
    FILE *f = mem_in(data, len);
    if (!f) abort();
    hecnn_status st = HECNN_ERR_UNSUPPORTED;
    switch (kind) {
    case K_PARAMS: {
        ckks_params_literal p;
        st = ckks_params_load(&p, f);
        break;
    }
    case K_PT: {
        ckks_plaintext *pt;
        ckks_plaintext_new(&pt, ctx);
        st = ckks_plaintext_load(ctx, pt, f);
        ckks_plaintext_free(pt);
        break;
    }
    case K_CT: {
        ckks_ciphertext *ct;
        ckks_ciphertext_new(&ct, ctx);
        st = ckks_ciphertext_load(ctx, ct, f);
        ckks_ciphertext_free(ct);
        break;
    }
    case K_SK: {
        ckks_secret_key *sk = (void *)1;
        st = ckks_secret_key_load(ctx, &sk, f);
        if (st) CHECK(sk == NULL);
        ckks_secret_key_free(sk);
        break;
    }
    case K_PK: {
        ckks_public_key *pk = (void *)1;
        st = ckks_public_key_load(ctx, &pk, f);
        if (st) CHECK(pk == NULL);
        ckks_public_key_free(pk);
        break;
    }
    case K_SWK: {
        ckks_switching_key *k = (void *)1;
        st = ckks_switching_key_load(ctx, &k, f);
        if (st) CHECK(k == NULL);
        ckks_switching_key_free(k);
        break;
    }
    case K_EVK: {
        ckks_eval_keys *k = (void *)1;
        st = ckks_eval_keys_load(ctx, &k, f);
        if (st) CHECK(k == NULL);
        ckks_eval_keys_free(k);
        break;
    }
    default:
        break;
    }
    fclose(f);
    return st;
}

/* The loader rejects `b` patched at `off` with `v64` (8 bytes) with `want`, and the detail names `word`. */
static void expect_patched64(const ckks_context *ctx, enum kind kind, const blob *b, size_t off, uint64_t v, hecnn_status want,
                             const char *word)
{
    char *d = malloc(b->len);
    memcpy(d, b->data, b->len);
    put64(d + off, v);
    reseal(kind == K_EVK, (uint8_t *)d, b->len);
    hecnn_status st = load_as(ctx, kind, d, b->len);
    CHECK_MSG(st == want, "%s patched at %zu with %llu: got %s, want %s (%s)", kind_name[kind], off, (unsigned long long)v,
              hecnn_status_name(st), hecnn_status_name(want), hecnn_last_error_detail());
    if (word && st == want) CHECK_MSG(strstr(hecnn_last_error_detail(), word), "detail '%s' lacks '%s'", hecnn_last_error_detail(), word);
    free(d);
}

static void expect_patched32(const ckks_context *ctx, enum kind kind, const blob *b, size_t off, uint32_t v, hecnn_status want,
                             const char *word)
{
    char *d = malloc(b->len);
    memcpy(d, b->data, b->len);
    put32(d + off, v);
    reseal(kind == K_EVK, (uint8_t *)d, b->len);
    hecnn_status st = load_as(ctx, kind, d, b->len);
    CHECK_MSG(st == want, "%s patched at %zu with %u: got %s, want %s (%s)", kind_name[kind], off, v, hecnn_status_name(st),
              hecnn_status_name(want), hecnn_last_error_detail());
    if (word && st == want) CHECK_MSG(strstr(hecnn_last_error_detail(), word), "detail '%s' lacks '%s'", hecnn_last_error_detail(), word);
    free(d);
}

/* Packed storage: a coefficient mod q_k takes the bytes of q_k's bit length. */
static size_t coeff_bytes(const ckks_context *ctx, unsigned k) { return (size_t)(64 - __builtin_clzll(ckks_context_q(ctx, k)) + 7) / 8; }

/* Byte offset of limb `limb` in a stored polynomial over q_0.., and the size of one over q_0..q_level. */
static size_t limb_offset(const ckks_context *ctx, unsigned limb)
{
    size_t off = 0;
    for (unsigned k = 0; k < limb; k++) off += ckks_context_n(ctx) * coeff_bytes(ctx, k);
    return off;
}
static size_t poly_bytes(const ckks_context *ctx, unsigned level) { return limb_offset(ctx, level + 1); }

/* Overwrite the stored coefficient at `off` (limb k's width) with v (truncated to that width). */
static void expect_patched_coeff(const ckks_context *ctx, enum kind kind, const blob *b, size_t off, unsigned k, uint64_t v,
                                 hecnn_status want, const char *word)
{
    char *d = malloc(b->len);
    memcpy(d, b->data, b->len);
    for (size_t c = 0; c < coeff_bytes(ctx, k); c++) d[off + c] = (char)(v >> (8 * c));
    reseal(kind == K_EVK, (uint8_t *)d, b->len);
    hecnn_status st = load_as(ctx, kind, d, b->len);
    CHECK_MSG(st == want, "%s coefficient at %zu set to %llu: got %s, want %s (%s)", kind_name[kind], off, (unsigned long long)v,
              hecnn_status_name(st), hecnn_status_name(want), hecnn_last_error_detail());
    if (word && st == want) CHECK_MSG(strstr(hecnn_last_error_detail(), word), "detail '%s' lacks '%s'", hecnn_last_error_detail(), word);
    free(d);
}

/* Header checks common to every loader, and truncation at the given prefix lengths. */
static void expect_header_checks(const fixture *fx, enum kind kind, const blob *b, size_t trunc_step)
{
    const ckks_context *ctx = fx->ctx;
    CHECK_MSG(load_as(ctx, kind, b->data, b->len) == HECNN_OK, "%s: intact blob: %s", kind_name[kind], hecnn_last_error_detail());
    CHECK(load_as(ctx, kind, b->data, 0) == HECNN_ERR_BAD_FORMAT); /* empty file */
    char *d = malloc(b->len);
    memcpy(d, b->data, b->len);
    d[0] = 'X'; /* magic */
    CHECK(load_as(ctx, kind, d, b->len) == HECNN_ERR_BAD_FORMAT);
    CHECK(strstr(hecnn_last_error_detail(), "magic"));
    memcpy(d, b->data, b->len);
    d[5] = 1; /* the magic's NUL */
    CHECK(load_as(ctx, kind, d, b->len) == HECNN_ERR_BAD_FORMAT);
    memcpy(d, b->data, b->len);
    d[6] = 4; /* version */
    CHECK(load_as(ctx, kind, d, b->len) == HECNN_ERR_BAD_FORMAT);
    for (char v = 1; v <= 2; v++) { /* an earlier build's version: refused, and said so */
        d[6] = v;
        CHECK(load_as(ctx, kind, d, b->len) == HECNN_ERR_BAD_FORMAT);
        CHECK(strstr(hecnn_last_error_detail(), v == 1 ? "version 1" : "version 2"));
        CHECK(strstr(hecnn_last_error_detail(), "write the object again"));
    }
    memcpy(d, b->data, b->len);
    d[7] = 1; /* version, high byte */
    CHECK(load_as(ctx, kind, d, b->len) == HECNN_ERR_BAD_FORMAT);
    memcpy(d, b->data, b->len);
    d[12] = 1; /* reserved */
    CHECK(load_as(ctx, kind, d, b->len) == HECNN_ERR_BAD_FORMAT);
    memcpy(d, b->data, b->len);
    for (int t = 0; t < 10; t++) { /* every other type, and unknown ones */
        if (t == (int)kind + 1) continue;
        d[8] = (char)t;
        CHECK(load_as(ctx, kind, d, b->len) == HECNN_ERR_BAD_FORMAT);
    }
    memcpy(d, b->data, b->len);
    d[9] = 1; /* type, high byte */
    CHECK(load_as(ctx, kind, d, b->len) == HECNN_ERR_BAD_FORMAT);
    /* every other loader refuses this object */
    for (int k = 0; k < K_COUNT; k++)
        if (k != (int)kind) CHECK_MSG(load_as(ctx, (enum kind)k, b->data, b->len) != HECNN_OK, "%s loaded as %s", kind_name[kind], kind_name[k]);
    if (kind != K_PARAMS) {
        /* another context's parameter id */
        CHECK(load_as(fx->other, kind, b->data, b->len) == HECNN_ERR_PARAMS_MISMATCH);
        memcpy(d, b->data, b->len);
        d[16] ^= 1;
        CHECK(load_as(ctx, kind, d, b->len) == HECNN_ERR_PARAMS_MISMATCH);
    } else {
        memcpy(d, b->data, b->len);
        d[16] = 1; /* params carry parameter id 0 */
        CHECK(load_as(ctx, kind, d, b->len) == HECNN_ERR_BAD_FORMAT);
    }
    /* the size field lies */
    const uint64_t size = get64(b->data + 24);
    CHECK(size == b->len);
    expect_patched64(ctx, kind, b, 24, size + 1, HECNN_ERR_BAD_FORMAT, "size");
    expect_patched64(ctx, kind, b, 24, size - 1, HECNN_ERR_BAD_FORMAT, "size");
    expect_patched64(ctx, kind, b, 24, 0, HECNN_ERR_BAD_FORMAT, NULL);
    expect_patched64(ctx, kind, b, 24, UINT64_MAX, HECNN_ERR_BAD_FORMAT, NULL);
    expect_patched64(ctx, kind, b, 24, size << 20, HECNN_ERR_BAD_FORMAT, NULL);
    /* truncated: every prefix (step 1) or a sample of them, and the last few bytes */
    size_t bad = 0;
    for (size_t len = 0; len < b->len; len += (len + 8 >= b->len || len < 2 * HDR) ? 1 : trunc_step)
        if (load_as(ctx, kind, b->data, len) != HECNN_ERR_BAD_FORMAT) {
            if (!bad++) fprintf(stderr, "%s truncated to %zu bytes: %s\n", kind_name[kind], len, hecnn_last_error_detail());
        }
    CHECK_MSG(bad == 0, "%s: %zu truncations not rejected", kind_name[kind], bad);
    free(d);
}

/* Whether byte `off` of key set b lies in the header of one of its keys. */
static bool in_key_header(const blob *b, size_t off)
{
    for (size_t k = HDR + 8; k + HDR + DG <= b->len - DG; k += get64(b->data + k + 24))
        if (off >= k && off < k + HDR) return true;
    return false;
}

/* Damage: a flipped bit anywhere after the header (every byte near the ends, every `stride`-th in
 * between) is refused as a checksum mismatch; inside a key set, a key's own header is refused by
 * its header checks (magic, version, type, parameter id) or its checksum. A file cut short
 * anywhere in its checksum is refused as truncated. */
static void expect_damage_refused(const fixture *fx, enum kind kind, const blob *b, size_t stride)
{
    uint8_t *d = malloc(b->len);
    size_t bad = 0, tried = 0;
    for (size_t off = HDR; off < b->len; off += (off < 2 * HDR + 64 || off + 2 * DG >= b->len) ? 1 : stride, tried++) {
        memcpy(d, b->data, b->len);
        d[off] ^= (uint8_t)(1u << (off % 8));
        const hecnn_status st = load_as(fx->ctx, kind, d, b->len);
        const bool ok = kind == K_EVK && in_key_header(b, off)
                            ? st != HECNN_OK
                            : st == HECNN_ERR_BAD_FORMAT && strstr(hecnn_last_error_detail(), "checksum mismatch");
        if (!ok && !bad++)
            fprintf(stderr, "%s with bit %zu of byte %zu flipped: %s (%s)\n", kind_name[kind], off % 8, off, hecnn_status_name(st),
                    hecnn_last_error_detail());
    }
    CHECK_MSG(bad == 0, "%s: %zu of %zu flipped bits not refused as a checksum mismatch", kind_name[kind], bad, tried);
    for (size_t cut = 1; cut <= DG; cut += DG - 1) {
        CHECK(load_as(fx->ctx, kind, b->data, b->len - cut) == HECNN_ERR_BAD_FORMAT);
        CHECK_MSG(strstr(hecnn_last_error_detail(), "truncated"), "%s cut by %zu: %s", kind_name[kind], cut, hecnn_last_error_detail());
    }
    free(d);
}

static void test_params(fixture *fx)
{
    blob b = {0}, b2 = {0};
    for (int preset = 0; preset < CKKS_PRESET_COUNT; preset++) {
        ckks_params_literal p, q;
        CHECK(ckks_params_preset(&p, (ckks_preset)preset) == HECNN_OK);
        FILE *f = mem_out(&b);
        CHECK(ckks_params_save(&p, f) == HECNN_OK);
        fclose(f);
        CHECK(b.len == HDR + 40 + 4 * (p.n_q + p.n_p) + DG);
        f = mem_in(b.data, b.len);
        CHECK(ckks_params_load(&q, f) == HECNN_OK);
        fclose(f);
        CHECK(q.log_n == p.log_n && q.n_q == p.n_q && q.n_p == p.n_p && q.dnum == p.dnum && q.log_scale == p.log_scale);
        CHECK(q.secret == p.secret && q.hamming_weight == p.hamming_weight && q.allow_insecure == p.allow_insecure);
        CHECK(memcmp(&q.sigma, &p.sigma, sizeof q.sigma) == 0);
        CHECK(memcmp(q.log_q, p.log_q, p.n_q * sizeof *p.log_q) == 0 && memcmp(q.log_p, p.log_p, p.n_p * sizeof *p.log_p) == 0);
    }
    /* the test literal: a context rebuilt from the file has the same parameter id */
    ckks_params_literal p = small_params(3), q;
    p.secret = CKKS_SECRET_SPARSE_TERNARY;
    p.hamming_weight = 16;
    p.sigma = 3.19;
    FILE *f = mem_out(&b);
    CHECK(ckks_params_save(&p, f) == HECNN_OK);
    fclose(f);
    f = mem_in(b.data, b.len);
    CHECK(ckks_params_load(&q, f) == HECNN_OK);
    fclose(f);
    CHECK(q.secret == CKKS_SECRET_SPARSE_TERNARY && q.hamming_weight == 16 && q.sigma == 3.19 && q.allow_insecure);
    p = small_params(3);
    f = mem_out(&b);
    CHECK(ckks_params_save(&p, f) == HECNN_OK);
    fclose(f);
    f = mem_in(b.data, b.len);
    CHECK(ckks_params_load(&q, f) == HECNN_OK);
    fclose(f);
    ckks_context *c2;
    CHECK(ckks_context_new(&c2, &q) == HECNN_OK);
    CHECK(ckks_context_param_id(c2) == ckks_context_param_id(fx->ctx));
    ckks_context_free(c2);

    expect_header_checks(fx, K_PARAMS, &b, 1);
    expect_damage_refused(fx, K_PARAMS, &b, 1);
    /* metadata out of range */
    expect_patched32(fx->ctx, K_PARAMS, &b, HDR + 0, 3, HECNN_ERR_BAD_FORMAT, "log_n");
    expect_patched32(fx->ctx, K_PARAMS, &b, HDR + 0, 18, HECNN_ERR_BAD_FORMAT, "log_n");
    expect_patched32(fx->ctx, K_PARAMS, &b, HDR + 4, 0, HECNN_ERR_BAD_FORMAT, "n_q");
    expect_patched32(fx->ctx, K_PARAMS, &b, HDR + 4, 65, HECNN_ERR_BAD_FORMAT, "n_q");
    expect_patched32(fx->ctx, K_PARAMS, &b, HDR + 4, UINT32_MAX, HECNN_ERR_BAD_FORMAT, "n_q");
    expect_patched32(fx->ctx, K_PARAMS, &b, HDR + 8, 0, HECNN_ERR_BAD_FORMAT, "n_p");
    expect_patched32(fx->ctx, K_PARAMS, &b, HDR + 12, 4, HECNN_ERR_BAD_FORMAT, "dnum");
    expect_patched32(fx->ctx, K_PARAMS, &b, HDR + 16, 0, HECNN_ERR_BAD_FORMAT, "log_scale");
    expect_patched32(fx->ctx, K_PARAMS, &b, HDR + 20, 2, HECNN_ERR_BAD_FORMAT, "secret");
    expect_patched32(fx->ctx, K_PARAMS, &b, HDR + 24, 65, HECNN_ERR_BAD_FORMAT, "hamming");
    expect_patched32(fx->ctx, K_PARAMS, &b, HDR + 28, 2, HECNN_ERR_BAD_FORMAT, "flags");
    expect_patched64(fx->ctx, K_PARAMS, &b, HDR + 32, 0x7ff8000000000000ull, HECNN_ERR_BAD_FORMAT, "sigma"); /* NaN */
    expect_patched64(fx->ctx, K_PARAMS, &b, HDR + 32, 0xbff0000000000000ull, HECNN_ERR_BAD_FORMAT, "sigma"); /* -1 */
    /* an insecure error width from a file, even one that sets allow_insecure (as b does) */
    double weak[] = {0.01, 5e-324, 1, 3.21, 20, INFINITY};
    for (size_t i = 0; i < sizeof weak / sizeof *weak; i++) {
        uint64_t u;
        memcpy(&u, &weak[i], 8);
        expect_patched64(fx->ctx, K_PARAMS, &b, HDR + 32, u, HECNN_ERR_BAD_FORMAT, "sigma");
    }
    {
        double ok = 3.19;
        uint64_t u;
        memcpy(&u, &ok, 8);
        expect_patched64(fx->ctx, K_PARAMS, &b, HDR + 32, u, HECNN_OK, NULL);
        /* nor does the writer produce one */
        ckks_params_literal w = small_params(3);
        w.sigma = 0.01;
        f = mem_out(&b2);
        CHECK(ckks_params_save(&w, f) == HECNN_ERR_INSECURE_PARAMS);
        fclose(f);
        w.sigma = NAN;
        f = mem_out(&b2);
        CHECK(ckks_params_save(&w, f) == HECNN_ERR_INVALID_PARAMS);
        fclose(f);
    }
    expect_patched32(fx->ctx, K_PARAMS, &b, HDR + 40, 16, HECNN_ERR_BAD_FORMAT, "bits");
    expect_patched32(fx->ctx, K_PARAMS, &b, HDR + 40 + 12, 62, HECNN_ERR_BAD_FORMAT, "bits");
    /* a sparse secret needs a hamming weight */
    expect_patched32(fx->ctx, K_PARAMS, &b, HDR + 20, 1, HECNN_ERR_BAD_FORMAT, "hamming");
    /* saving nonsense is refused rather than written */
    p.n_q = 0;
    f = mem_out(&b);
    CHECK(ckks_params_save(&p, f) == HECNN_ERR_INVALID_PARAMS);
    fclose(f);
    free(b.data);
    free(b2.data);
}

static void random_values(double complex *v, size_t n)
{
    for (size_t i = 0; i < n; i++) v[i] = test_rng_uniform(-1, 1) + I * test_rng_uniform(-1, 1);
}

static double max_err(const fixture *fx, const ckks_ciphertext *ct, const double complex *want, const ckks_secret_key *sk)
{
    ckks_plaintext *pt;
    ckks_plaintext_new(&pt, fx->ctx);
    double complex *have = malloc(fx->slots * sizeof *have);
    double err = INFINITY;
    if (!ckks_decrypt(fx->ctx, pt, ct, sk) && !ckks_decode(fx->ctx, have, pt)) {
        err = 0;
        for (size_t i = 0; i < ckks_ciphertext_slots(ct); i++) err = fmax(err, cabs(have[i] - want[i]));
    }
    free(have);
    ckks_plaintext_free(pt);
    return err;
}

static bool ct_equal(const ckks_ciphertext *a, const ckks_ciphertext *b)
{
    if (a->level != b->level || a->degree != b->degree || a->slots != b->slots || a->seeded != b->seeded) return false;
    if (memcmp(&a->scale, &b->scale, sizeof a->scale)) return false;
    if (a->seeded && memcmp(a->seed, b->seed, CKKS_SEED_BYTES)) return false;
    return !memcmp(a->data, b->data, ((size_t)a->degree + 1) * (a->level + 1) * a->ctx->rlwe.n * 8);
}

static bool swk_equal(const ckks_switching_key *ka, const ckks_switching_key *kb)
{
    const rlwe_switching_key *a = &ka->rlwe, *b = &kb->rlwe;
    return a->galois == b->galois && a->max_level == b->max_level && a->digits == b->digits && a->limbs == b->limbs &&
           !memcmp(a->data, b->data, (size_t)a->digits * 2 * a->limbs * a->ctx->n * 8);
}

static void test_plaintext(fixture *fx)
{
    const size_t n = fx->ctx->rlwe.n;
    double complex v[32], w[32];
    random_values(v, 32);
    ckks_plaintext *pt, *back;
    ckks_plaintext_new(&pt, fx->ctx);
    ckks_plaintext_new(&back, fx->ctx);
    CHECK(ckks_encode(fx->ctx, pt, v, 16, 16, 1, 0x1p35) == HECNN_OK);
    blob b = {0};
    FILE *f = mem_out(&b);
    CHECK(ckks_plaintext_save(pt, f) == HECNN_OK);
    fclose(f);
    CHECK(b.len == HDR + 24 + poly_bytes(fx->ctx, 1) + DG);
    f = mem_in(b.data, b.len);
    CHECK(ckks_plaintext_load(fx->ctx, back, f) == HECNN_OK);
    fclose(f);
    CHECK(back->level == 1 && back->scale == 0x1p35 && back->slots == 16);
    CHECK(!memcmp(back->data, pt->data, 2 * n * 8));
    CHECK(ckks_decode(fx->ctx, w, back) == HECNN_OK);
    double err = 0;
    for (size_t i = 0; i < 16; i++) err = fmax(err, cabs(w[i] - v[i]));
    CHECK_MSG(err < 1e-6, "plaintext decode error %g", err);

    expect_header_checks(fx, K_PT, &b, 13);
    expect_damage_refused(fx, K_PT, &b, 1);
    expect_patched32(fx->ctx, K_PT, &b, HDR + 0, 3, HECNN_ERR_BAD_FORMAT, "level");
    expect_patched32(fx->ctx, K_PT, &b, HDR + 4, 1, HECNN_ERR_BAD_FORMAT, "reserved");
    expect_patched64(fx->ctx, K_PT, &b, HDR + 8, 0x7ff8000000000000ull, HECNN_ERR_BAD_FORMAT, "scale");
    expect_patched64(fx->ctx, K_PT, &b, HDR + 16, 12, HECNN_ERR_BAD_FORMAT, "slots");
    expect_patched64(fx->ctx, K_PT, &b, HDR + 16, 0, HECNN_ERR_BAD_FORMAT, "slots");
    expect_patched64(fx->ctx, K_PT, &b, HDR + 16, 64, HECNN_ERR_BAD_FORMAT, "slots");
    /* coefficient >= modulus in each limb */
    const size_t last = b.len - DG - coeff_bytes(fx->ctx, 1);
    expect_patched_coeff(fx->ctx, K_PT, &b, HDR + 24, 0, ckks_context_q(fx->ctx, 0), HECNN_ERR_BAD_FORMAT, "modulus");
    expect_patched_coeff(fx->ctx, K_PT, &b, last, 1, ckks_context_q(fx->ctx, 1), HECNN_ERR_BAD_FORMAT, "modulus");
    expect_patched_coeff(fx->ctx, K_PT, &b, last, 1, ckks_context_q(fx->ctx, 1) - 1, HECNN_OK, NULL);
    /* a failed load leaves the destination untouched */
    char *d = malloc(b.len);
    memcpy(d, b.data, b.len);
    put64(d + b.len - DG - 8, UINT64_MAX);
    f = mem_in(d, b.len);
    CHECK(ckks_plaintext_load(fx->ctx, back, f) == HECNN_ERR_BAD_FORMAT);
    fclose(f);
    CHECK(back->level == 1 && !memcmp(back->data, pt->data, 2 * n * 8));
    free(d);
    free(b.data);
    ckks_plaintext_free(pt);
    ckks_plaintext_free(back);
}

static void test_ciphertext(fixture *fx)
{
    const size_t n = fx->ctx->rlwe.n, slots = fx->slots;
    const unsigned top = fx->top;
    double complex *v = malloc(slots * sizeof *v), *v2 = malloc(slots * sizeof *v2);
    random_values(v, slots);
    for (size_t i = 0; i < slots; i++) v2[i] = v[i] * v[i];
    ckks_plaintext *pt;
    ckks_ciphertext *ct, *back;
    ckks_plaintext_new(&pt, fx->ctx);
    ckks_ciphertext_new(&ct, fx->ctx);
    ckks_ciphertext_new(&back, fx->ctx);
    CHECK(ckks_encode(fx->ctx, pt, v, slots, slots, top, ckks_context_default_scale(fx->ctx)) == HECNN_OK);
    blob b = {0}, b2 = {0};

    /* public-key encryption: stored in full */
    CHECK(ckks_encrypt_pk(fx->ctx, ct, pt, fx->pk) == HECNN_OK);
    FILE *f = mem_out(&b);
    CHECK(ckks_ciphertext_save(ct, f) == HECNN_OK);
    fclose(f);
    const size_t full = HDR + 32 + 2 * poly_bytes(fx->ctx, top) + DG;
    CHECK(b.len == full);
    f = mem_in(b.data, b.len);
    CHECK(ckks_ciphertext_load(fx->ctx, back, f) == HECNN_OK);
    fclose(f);
    CHECK(ct_equal(ct, back));
    CHECK(max_err(fx, back, v, fx->sk) < 1e-6);
    expect_header_checks(fx, K_CT, &b, 29);
    expect_damage_refused(fx, K_CT, &b, 1);
    expect_patched32(fx->ctx, K_CT, &b, HDR + 0, top + 1, HECNN_ERR_BAD_FORMAT, "level");
    expect_patched32(fx->ctx, K_CT, &b, HDR + 0, UINT32_MAX, HECNN_ERR_BAD_FORMAT, "level");
    expect_patched32(fx->ctx, K_CT, &b, HDR + 4, 0, HECNN_ERR_BAD_FORMAT, "degree");
    expect_patched32(fx->ctx, K_CT, &b, HDR + 4, 3, HECNN_ERR_BAD_FORMAT, "degree");
    expect_patched64(fx->ctx, K_CT, &b, HDR + 8, 0x7ff8000000000000ull, HECNN_ERR_BAD_FORMAT, "scale"); /* NaN */
    expect_patched64(fx->ctx, K_CT, &b, HDR + 8, 0x7ff0000000000000ull, HECNN_ERR_BAD_FORMAT, "scale"); /* inf */
    expect_patched64(fx->ctx, K_CT, &b, HDR + 8, 0, HECNN_ERR_BAD_FORMAT, "scale");
    expect_patched64(fx->ctx, K_CT, &b, HDR + 8, 0xbff0000000000000ull, HECNN_ERR_BAD_FORMAT, "scale"); /* -1 */
    expect_patched64(fx->ctx, K_CT, &b, HDR + 16, 3, HECNN_ERR_BAD_FORMAT, "slots");
    expect_patched64(fx->ctx, K_CT, &b, HDR + 16, 2 * slots, HECNN_ERR_BAD_FORMAT, "slots");
    expect_patched64(fx->ctx, K_CT, &b, HDR + 16, 1ull << 63, HECNN_ERR_BAD_FORMAT, "slots");
    expect_patched32(fx->ctx, K_CT, &b, HDR + 24, 4, HECNN_ERR_BAD_FORMAT, "flags");
    expect_patched32(fx->ctx, K_CT, &b, HDR + 28, 1, HECNN_ERR_BAD_FORMAT, "reserved");
    expect_patched32(fx->ctx, K_CT, &b, HDR + 24, 1, HECNN_ERR_BAD_FORMAT, "size"); /* claims seeded, is full */
    for (unsigned limb = 0; limb <= top; limb++) {
        const uint64_t q = ckks_context_q(fx->ctx, limb);
        const size_t c0 = HDR + 32 + limb_offset(fx->ctx, limb) + 5 * coeff_bytes(fx->ctx, limb),
                     c1 = c0 + poly_bytes(fx->ctx, top);
        expect_patched_coeff(fx->ctx, K_CT, &b, c0, limb, q, HECNN_ERR_BAD_FORMAT, "modulus");
        expect_patched_coeff(fx->ctx, K_CT, &b, c1, limb, q + 1, HECNN_ERR_BAD_FORMAT, "modulus");
        expect_patched_coeff(fx->ctx, K_CT, &b, c1, limb, UINT64_MAX, HECNN_ERR_BAD_FORMAT, "modulus");
        expect_patched_coeff(fx->ctx, K_CT, &b, c1, limb, q - 1, HECNN_OK, NULL);
    }
    /* a failed load leaves the destination untouched */
    char *d = malloc(b.len);
    memcpy(d, b.data, b.len);
    put64(d + b.len - DG - 8, UINT64_MAX);
    f = mem_in(d, b.len);
    CHECK(ckks_ciphertext_load(fx->ctx, back, f) == HECNN_ERR_BAD_FORMAT);
    fclose(f);
    CHECK(ct_equal(ct, back));
    free(d);

    /* symmetric encryption: c1 stored as its seed, about half the size */
    CHECK(ckks_encrypt_sk(fx->ctx, ct, pt, fx->sk) == HECNN_OK);
    f = mem_out(&b);
    CHECK(ckks_ciphertext_save(ct, f) == HECNN_OK);
    fclose(f);
    const size_t seeded = HDR + 32 + 32 + poly_bytes(fx->ctx, top) + DG;
    CHECK(b.len == seeded);
    f = mem_in(b.data, b.len);
    CHECK(ckks_ciphertext_load(fx->ctx, back, f) == HECNN_OK);
    fclose(f);
    CHECK(back->seeded && ct_equal(ct, back));
    CHECK(max_err(fx, back, v, fx->sk) < 1e-6);
    f = mem_out(&b2); /* saving the reloaded ciphertext gives the same bytes */
    CHECK(ckks_ciphertext_save(back, f) == HECNN_OK);
    fclose(f);
    CHECK(b2.len == b.len && !memcmp(b2.data, b.data, b.len));
    expect_header_checks(fx, K_CT, &b, 17);
    expect_damage_refused(fx, K_CT, &b, 1);
    expect_patched32(fx->ctx, K_CT, &b, HDR + 4, 2, HECNN_ERR_BAD_FORMAT, "seeded");
    expect_patched32(fx->ctx, K_CT, &b, HDR + 24, 0, HECNN_ERR_BAD_FORMAT, "size"); /* claims full, is seeded */
    {
        char *z = malloc(b.len); /* all-zero seed */
        memcpy(z, b.data, b.len);
        memset(z + HDR + 32, 0, 32);
        CHECK(load_as(fx->ctx, K_CT, z, b.len) == HECNN_ERR_BAD_FORMAT);
        /* another seed loads but no longer decrypts */
        z[HDR + 32] = 1;
        reseal(0, (uint8_t *)z, b.len);
        FILE *g = mem_in(z, b.len);
        CHECK(ckks_ciphertext_load(fx->ctx, back, g) == HECNN_OK);
        fclose(g);
        CHECK(max_err(fx, back, v, fx->sk) > 1);
        free(z);
    }

    /* a ciphertext changed after encryption is no longer seeded, and one whose flag is stale
     * (c1 no longer the seed's expansion) is written in full */
    ckks_evaluator *ev;
    CHECK(ckks_evaluator_new(&ev, fx->ctx, fx->keys) == HECNN_OK);
    CHECK(ckks_encrypt_sk(fx->ctx, ct, pt, fx->sk) == HECNN_OK);
    CHECK(ckks_add(ev, ct, ct, ct) == HECNN_OK);
    f = mem_out(&b);
    CHECK(ckks_ciphertext_save(ct, f) == HECNN_OK);
    fclose(f);
    CHECK(b.len == full);
    CHECK(ckks_encrypt_sk(fx->ctx, ct, pt, fx->sk) == HECNN_OK);
    ct_comp(ct, 1)[3] ^= 1;
    f = mem_out(&b);
    CHECK(ckks_ciphertext_save(ct, f) == HECNN_OK);
    fclose(f);
    CHECK(b.len == full);
    f = mem_in(b.data, b.len);
    CHECK(ckks_ciphertext_load(fx->ctx, back, f) == HECNN_OK);
    fclose(f);
    CHECK(!back->seeded && !memcmp(back->data, ct->data, 2 * (top + 1) * n * 8));

    /* degree 2 (product before relinearization) at a lower level, then relinearized */
    CHECK(ckks_encrypt_pk(fx->ctx, ct, pt, fx->pk) == HECNN_OK);
    CHECK(ckks_drop_level(ev, ct, ct, top - 1) == HECNN_OK);
    CHECK(ckks_mul(ev, ct, ct, ct) == HECNN_OK);
    f = mem_out(&b);
    CHECK(ckks_ciphertext_save(ct, f) == HECNN_OK);
    fclose(f);
    CHECK(b.len == HDR + 32 + 3 * poly_bytes(fx->ctx, top - 1) + DG);
    f = mem_in(b.data, b.len);
    CHECK(ckks_ciphertext_load(fx->ctx, back, f) == HECNN_OK);
    fclose(f);
    CHECK(ct_equal(ct, back) && back->degree == 2 && back->level == top - 1);
    CHECK(max_err(fx, back, v2, fx->sk) < 1e-5);
    CHECK(ckks_relinearize(ev, back, back) == HECNN_OK);
    CHECK(ckks_rescale(ev, back, back) == HECNN_OK);
    CHECK(max_err(fx, back, v2, fx->sk) < 1e-5);
    expect_header_checks(fx, K_CT, &b, 41);

    /* small ciphertext (level 0, 4 slots, seeded): every prefix is rejected */
    CHECK(ckks_encode(fx->ctx, pt, v, 4, 4, 0, 0x1p30) == HECNN_OK);
    CHECK(ckks_encrypt_sk(fx->ctx, ct, pt, fx->sk) == HECNN_OK);
    f = mem_out(&b);
    CHECK(ckks_ciphertext_save(ct, f) == HECNN_OK);
    fclose(f);
    CHECK(b.len == HDR + 32 + 32 + n * 8 + DG);
    expect_header_checks(fx, K_CT, &b, 1);
    f = mem_in(b.data, b.len);
    CHECK(ckks_ciphertext_load(fx->ctx, back, f) == HECNN_OK);
    fclose(f);
    CHECK(back->slots == 4 && back->level == 0 && back->scale == 0x1p30 && max_err(fx, back, v, fx->sk) < 1e-4);
    /* a handle of another context is refused */
    ckks_ciphertext *alien;
    ckks_ciphertext_new(&alien, fx->other);
    f = mem_in(b.data, b.len);
    CHECK(ckks_ciphertext_load(fx->ctx, alien, f) == HECNN_ERR_PARAMS_MISMATCH);
    fclose(f);
    ckks_ciphertext_free(alien);

    ckks_evaluator_free(ev);
    free(b.data);
    free(b2.data);
    free(v);
    free(v2);
    ckks_plaintext_free(pt);
    ckks_ciphertext_free(ct);
    ckks_ciphertext_free(back);
}

static void test_secret_key(fixture *fx)
{
    const size_t n = fx->ctx->rlwe.n;
    blob b = {0};
    FILE *f = mem_out(&b);
    CHECK(ckks_secret_key_save(fx->sk, f) == HECNN_OK);
    fclose(f);
    CHECK(b.len == HDR + 8 + n + DG);
    ckks_secret_key *sk;
    f = mem_in(b.data, b.len);
    CHECK(ckks_secret_key_load(fx->ctx, &sk, f) == HECNN_OK);
    fclose(f);
    CHECK(!memcmp(sk->rlwe.small, fx->sk->rlwe.small, n));
    CHECK(!memcmp(sk->rlwe.ntt, fx->sk->rlwe.ntt, (size_t)(fx->ctx->rlwe.n_q + fx->ctx->rlwe.n_p) * n * 8));
    /* encrypt with the original, decrypt with the reloaded key */
    double complex v[32];
    random_values(v, 32);
    ckks_plaintext *pt;
    ckks_ciphertext *ct;
    ckks_plaintext_new(&pt, fx->ctx);
    ckks_ciphertext_new(&ct, fx->ctx);
    ckks_encode(fx->ctx, pt, v, 32, 32, fx->top, 0x1p40);
    CHECK(ckks_encrypt_pk(fx->ctx, ct, pt, fx->pk) == HECNN_OK);
    CHECK(max_err(fx, ct, v, sk) < 1e-6);
    ckks_secret_key_free(sk);

    expect_header_checks(fx, K_SK, &b, 1);
    expect_damage_refused(fx, K_SK, &b, 1);
    expect_patched64(fx->ctx, K_SK, &b, HDR, n * 2, HECNN_ERR_BAD_FORMAT, "coefficients");
    expect_patched64(fx->ctx, K_SK, &b, HDR, UINT64_MAX, HECNN_ERR_BAD_FORMAT, "coefficients");
    char *d = malloc(b.len);
    const int bad[] = {2, 0x7f, 0x80, 0xfe};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        memcpy(d, b.data, b.len);
        d[HDR + 8 + 17] = (char)bad[i];
        reseal(0, (uint8_t *)d, b.len);
        CHECK(load_as(fx->ctx, K_SK, d, b.len) == HECNN_ERR_BAD_FORMAT);
        CHECK(strstr(hecnn_last_error_detail(), "{-1, 0, 1}"));
    }
    memcpy(d, b.data, b.len);
    d[HDR + 8 + 17] = (char)0xff; /* -1 is fine */
    reseal(0, (uint8_t *)d, b.len);
    CHECK(load_as(fx->ctx, K_SK, d, b.len) == HECNN_OK);
    free(d);
    free(b.data);
    ckks_plaintext_free(pt);
    ckks_ciphertext_free(ct);
}

static void test_public_key(fixture *fx)
{
    const size_t n = fx->ctx->rlwe.n, nq = fx->ctx->rlwe.n_q;
    blob b = {0}, b2 = {0};
    FILE *f = mem_out(&b);
    CHECK(ckks_public_key_save(fx->pk, f) == HECNN_OK);
    fclose(f);
    CHECK(b.len == HDR + 8 + 32 + poly_bytes(fx->ctx, (unsigned)nq - 1) + DG); /* seeded */
    ckks_public_key *pk;
    f = mem_in(b.data, b.len);
    CHECK(ckks_public_key_load(fx->ctx, &pk, f) == HECNN_OK);
    fclose(f);
    CHECK(!memcmp(pk->a, fx->pk->a, nq * n * 8) && !memcmp(pk->b, fx->pk->b, nq * n * 8));
    CHECK(!memcmp(pk->seed, fx->pk->seed, 32));
    f = mem_out(&b2);
    CHECK(ckks_public_key_save(pk, f) == HECNN_OK);
    fclose(f);
    CHECK(b2.len == b.len && !memcmp(b.data, b2.data, b.len));
    double complex v[32];
    random_values(v, 32);
    ckks_plaintext *pt;
    ckks_ciphertext *ct;
    ckks_plaintext_new(&pt, fx->ctx);
    ckks_ciphertext_new(&ct, fx->ctx);
    ckks_encode(fx->ctx, pt, v, 32, 32, fx->top, 0x1p40);
    CHECK(ckks_encrypt_pk(fx->ctx, ct, pt, pk) == HECNN_OK);
    CHECK(max_err(fx, ct, v, fx->sk) < 1e-6);
    expect_header_checks(fx, K_PK, &b, 23);
    expect_damage_refused(fx, K_PK, &b, 1);
    expect_patched32(fx->ctx, K_PK, &b, HDR, 0, HECNN_ERR_BAD_FORMAT, "size");
    expect_patched32(fx->ctx, K_PK, &b, HDR, 2, HECNN_ERR_BAD_FORMAT, "flags");
    expect_patched32(fx->ctx, K_PK, &b, HDR + 4, (uint32_t)nq - 1, HECNN_ERR_BAD_FORMAT, "limbs");
    expect_patched_coeff(fx->ctx, K_PK, &b, HDR + 8 + 32 + limb_offset(fx->ctx, (unsigned)nq - 1), (unsigned)nq - 1,
                         ckks_context_q(fx->ctx, (unsigned)nq - 1), HECNN_ERR_BAD_FORMAT, "modulus");

    /* a key whose uniform half is not its seed's expansion is written in full */
    pk->a[0] ^= 1;
    f = mem_out(&b);
    CHECK(ckks_public_key_save(pk, f) == HECNN_OK);
    fclose(f);
    CHECK(b.len == HDR + 8 + 2 * poly_bytes(fx->ctx, (unsigned)nq - 1) + DG);
    ckks_public_key *pk2;
    f = mem_in(b.data, b.len);
    CHECK(ckks_public_key_load(fx->ctx, &pk2, f) == HECNN_OK);
    fclose(f);
    CHECK(!memcmp(pk->a, pk2->a, nq * n * 8) && !memcmp(pk->b, pk2->b, nq * n * 8));
    expect_header_checks(fx, K_PK, &b, 37);
    expect_damage_refused(fx, K_PK, &b, 3);
    expect_patched64(fx->ctx, K_PK, &b, b.len - DG - 8, UINT64_MAX, HECNN_ERR_BAD_FORMAT, "modulus");
    ckks_public_key_free(pk2);
    ckks_public_key_free(pk);
    ckks_plaintext_free(pt);
    ckks_ciphertext_free(ct);
    free(b.data);
    free(b2.data);
}

static void test_switching_keys(fixture *fx)
{
    const ckks_switching_key *relin = ckks_eval_keys_relin(fx->keys);
    if (!relin) {
        CHECK(relin != NULL);
        return;
    }
    const size_t seeded = ckks_switching_key_bytes(relin, true), full = ckks_switching_key_bytes(relin, false);
    const double ratio = (double)seeded / (double)full;
    CHECK_MSG(ratio > 0.49 && ratio < 0.51, "seeded/full = %zu/%zu = %.3f", seeded, full, ratio);
    blob b = {0}, bf = {0};
    FILE *f = mem_out(&b);
    CHECK(ckks_switching_key_save(relin, true, f) == HECNN_OK);
    fclose(f);
    CHECK(b.len == seeded);
    f = mem_out(&bf);
    CHECK(ckks_switching_key_save(relin, false, f) == HECNN_OK);
    fclose(f);
    CHECK(bf.len == full);
    ckks_switching_key *k1, *k2;
    f = mem_in(b.data, b.len);
    CHECK(ckks_switching_key_load(fx->ctx, &k1, f) == HECNN_OK);
    fclose(f);
    f = mem_in(bf.data, bf.len);
    CHECK(ckks_switching_key_load(fx->ctx, &k2, f) == HECNN_OK);
    fclose(f);
    CHECK(swk_equal(k1, relin) && swk_equal(k2, relin));
    /* a key loaded in full has no known seed: its seeded size and save are the full ones */
    CHECK(ckks_switching_key_bytes(k1, true) == seeded);
    CHECK(ckks_switching_key_bytes(k2, true) == full);
    blob b3 = {0};
    f = mem_out(&b3);
    CHECK(ckks_switching_key_save(k2, true, f) == HECNN_OK);
    fclose(f);
    CHECK(b3.len == full && !memcmp(b3.data, bf.data, full));
    f = mem_out(&b3);
    CHECK(ckks_switching_key_save(k1, true, f) == HECNN_OK);
    fclose(f);
    CHECK(b3.len == seeded && !memcmp(b3.data, b.data, seeded));
    ckks_switching_key_free(k1);
    ckks_switching_key_free(k2);
    free(b3.data);
    b3 = (blob){0};

    /* a Galois key at a lower level */
    ckks_switching_key *g;
    const uint8_t seed[CKKS_SEED_BYTES] = {9};
    const uint64_t gal = ckks_galois_element_rotation(fx->ctx, 3);
    CHECK(ckks_switching_key_generate_derand(&g, fx->sk, gal, 1, seed) == HECNN_OK);
    f = mem_out(&b3);
    CHECK(ckks_switching_key_save(g, true, f) == HECNN_OK);
    fclose(f);
    CHECK(b3.len == ckks_switching_key_bytes(g, true) && b3.len < ckks_switching_key_bytes(g, false));
    f = mem_in(b3.data, b3.len);
    CHECK(ckks_switching_key_load(fx->ctx, &k1, f) == HECNN_OK);
    fclose(f);
    CHECK(swk_equal(k1, g) && k1->rlwe.max_level == 1 && ckks_switching_key_galois_element(k1) == gal);
    ckks_switching_key_free(k1);
    ckks_switching_key_free(g);
    free(b3.data);
    b3 = (blob){0};

    /* a key from a sparse secret to the main one (bootstrapping's encapsulation) */
    ckks_secret_key *sparse;
    CHECK(ckks_secret_key_generate_sparse_derand(&sparse, fx->ctx, 8, seed) == HECNN_OK);
    CHECK(ckks_switching_key_generate_between_derand(&g, sparse, fx->sk, fx->top, seed) == HECNN_OK);
    f = mem_out(&b3);
    CHECK(ckks_secret_key_save(sparse, f) == HECNN_OK);
    CHECK(ckks_switching_key_save(g, true, f) == HECNN_OK);
    fclose(f);
    f = mem_in(b3.data, b3.len);
    ckks_secret_key *sparse2;
    CHECK(ckks_secret_key_load(fx->ctx, &sparse2, f) == HECNN_OK);
    CHECK(ckks_switching_key_load(fx->ctx, &k1, f) == HECNN_OK);
    fclose(f);
    CHECK(!memcmp(sparse2->rlwe.small, sparse->rlwe.small, fx->ctx->rlwe.n));
    CHECK(swk_equal(k1, g) && ckks_switching_key_galois_element(k1) == CKKS_SWITCH_SECRET);
    {
        /* the reloaded key switches a ciphertext under the sparse secret to the main one */
        double complex v[32];
        random_values(v, 32);
        ckks_plaintext *pt;
        ckks_ciphertext *ct;
        ckks_evaluator *ev;
        ckks_plaintext_new(&pt, fx->ctx);
        ckks_ciphertext_new(&ct, fx->ctx);
        CHECK(ckks_evaluator_new(&ev, fx->ctx, NULL) == HECNN_OK);
        ckks_encode(fx->ctx, pt, v, 32, 32, fx->top, 0x1p40);
        CHECK(ckks_encrypt_sk(fx->ctx, ct, pt, sparse2) == HECNN_OK);
        CHECK(ckks_switch_key(ev, ct, ct, k1) == HECNN_OK);
        CHECK(max_err(fx, ct, v, fx->sk) < 1e-5);
        ckks_evaluator_free(ev);
        ckks_ciphertext_free(ct);
        ckks_plaintext_free(pt);
    }
    ckks_switching_key_free(k1);
    ckks_switching_key_free(g);
    ckks_secret_key_free(sparse);
    ckks_secret_key_free(sparse2);
    free(b3.data);

    const size_t n = fx->ctx->rlwe.n;
    for (int pass = 0; pass < 2; pass++) {
        blob *x = pass ? &bf : &b;
        expect_header_checks(fx, K_SWK, x, 97);
        expect_damage_refused(fx, K_SWK, x, 3);
        expect_patched64(fx->ctx, K_SWK, x, HDR, 4, HECNN_ERR_BAD_FORMAT, "Galois");          /* even */
        expect_patched64(fx->ctx, K_SWK, x, HDR, CKKS_SWITCH_SECRET, HECNN_OK, NULL);        /* secret switch */
        expect_patched64(fx->ctx, K_SWK, x, HDR, 2 * n + 1, HECNN_ERR_BAD_FORMAT, "Galois");  /* >= 2N */
        expect_patched64(fx->ctx, K_SWK, x, HDR, UINT64_MAX, HECNN_ERR_BAD_FORMAT, "Galois");
        expect_patched64(fx->ctx, K_SWK, x, HDR, 5, HECNN_OK, NULL); /* a Galois key: same shape */
        expect_patched32(fx->ctx, K_SWK, x, HDR + 8, fx->top + 1, HECNN_ERR_BAD_FORMAT, "level");
        expect_patched32(fx->ctx, K_SWK, x, HDR + 8, fx->top - 1, HECNN_ERR_BAD_FORMAT, "digits");
        expect_patched32(fx->ctx, K_SWK, x, HDR + 12, 0, HECNN_ERR_BAD_FORMAT, "digits");
        expect_patched32(fx->ctx, K_SWK, x, HDR + 12, UINT32_MAX, HECNN_ERR_BAD_FORMAT, "digits");
        expect_patched32(fx->ctx, K_SWK, x, HDR + 16, 2, HECNN_ERR_BAD_FORMAT, "flags");
        expect_patched32(fx->ctx, K_SWK, x, HDR + 16, pass ? 1 : 0, HECNN_ERR_BAD_FORMAT, "size");
        expect_patched32(fx->ctx, K_SWK, x, HDR + 20, 99, HECNN_ERR_BAD_FORMAT, "limbs");
        expect_patched64(fx->ctx, K_SWK, x, x->len - DG - 8, ckks_context_p(fx->ctx, 0), HECNN_ERR_BAD_FORMAT, "modulus");
        expect_patched64(fx->ctx, K_SWK, x, x->len - DG - 8, ckks_context_p(fx->ctx, 0) - 1, HECNN_OK, NULL);
    }
    free(b.data);
    free(bf.data);
}

static void test_eval_keys(fixture *fx)
{
    const size_t count = ckks_eval_keys_count(fx->keys);
    if (count < 3) {
        CHECK(count >= 3);
        return;
    }
    blob bs = {0}, bf = {0};
    FILE *f = mem_out(&bs);
    CHECK(ckks_eval_keys_save(fx->keys, true, f) == HECNN_OK);
    fclose(f);
    f = mem_out(&bf);
    CHECK(ckks_eval_keys_save(fx->keys, false, f) == HECNN_OK);
    fclose(f);
    size_t want_s = HDR + 8 + DG, want_f = HDR + 8 + DG;
    for (size_t i = 0; i < count; i++) {
        want_s += ckks_switching_key_bytes(ckks_eval_keys_at(fx->keys, i), true);
        want_f += ckks_switching_key_bytes(ckks_eval_keys_at(fx->keys, i), false);
    }
    CHECK(bs.len == want_s && bf.len == want_f);
    CHECK_MSG((double)bs.len / (double)bf.len < 0.51, "eval keys seeded %zu vs %zu", bs.len, bf.len);
    for (int pass = 0; pass < 2; pass++) {
        blob *x = pass ? &bf : &bs;
        ckks_eval_keys *keys;
        f = mem_in(x->data, x->len);
        CHECK(ckks_eval_keys_load(fx->ctx, &keys, f) == HECNN_OK);
        fclose(f);
        if (!keys) {
            CHECK(keys != NULL);
            return;
        }
        CHECK(ckks_eval_keys_count(keys) == count);
        for (size_t i = 0; i < count; i++) CHECK(swk_equal(ckks_eval_keys_at(keys, i), ckks_eval_keys_at(fx->keys, i)));
        /* the loaded set evaluates: relinearized product and a rotation */
        ckks_evaluator *ev;
        CHECK(ckks_evaluator_new(&ev, fx->ctx, keys) == HECNN_OK);
        const size_t slots = fx->slots;
        double complex *v = malloc(slots * sizeof *v), *w = malloc(slots * sizeof *w);
        random_values(v, slots);
        ckks_plaintext *pt;
        ckks_ciphertext *ct, *out;
        ckks_plaintext_new(&pt, fx->ctx);
        ckks_ciphertext_new(&ct, fx->ctx);
        ckks_ciphertext_new(&out, fx->ctx);
        ckks_encode(fx->ctx, pt, v, slots, slots, fx->top, 0x1p40);
        CHECK(ckks_encrypt_pk(fx->ctx, ct, pt, fx->pk) == HECNN_OK);
        CHECK(ckks_mul_relin(ev, out, ct, ct) == HECNN_OK);
        CHECK(ckks_rescale(ev, out, out) == HECNN_OK);
        for (size_t i = 0; i < slots; i++) w[i] = v[i] * v[i];
        CHECK(max_err(fx, out, w, fx->sk) < 1e-5);
        CHECK(ckks_rotate(ev, out, ct, 1) == HECNN_OK);
        for (size_t i = 0; i < slots; i++) w[i] = v[(i + 1) % slots];
        CHECK(max_err(fx, out, w, fx->sk) < 1e-5);
        CHECK(ckks_conjugate(ev, out, ct) == HECNN_OK);
        for (size_t i = 0; i < slots; i++) w[i] = conj(v[i]);
        CHECK(max_err(fx, out, w, fx->sk) < 1e-5);
        ckks_evaluator_free(ev);
        ckks_eval_keys_free(keys);
        ckks_plaintext_free(pt);
        ckks_ciphertext_free(ct);
        ckks_ciphertext_free(out);
        free(v);
        free(w);

        /* the keys after the count load one by one */
        f = mem_in(x->data, x->len);
        fseek(f, HDR + 8, SEEK_SET);
        for (size_t i = 0; i < count; i++) {
            ckks_switching_key *k;
            CHECK(ckks_switching_key_load(fx->ctx, &k, f) == HECNN_OK);
            if (k) CHECK(swk_equal(k, ckks_eval_keys_at(fx->keys, i)));
            ckks_switching_key_free(k);
        }
        CHECK(fseek(f, DG, SEEK_CUR) == 0 && fgetc(f) == EOF); /* the set's own digest, then nothing */
        fclose(f);

        expect_header_checks(fx, K_EVK, x, 211);
        expect_damage_refused(fx, K_EVK, x, 7);
        expect_patched64(fx->ctx, K_EVK, x, HDR, count + 1, HECNN_ERR_BAD_FORMAT, NULL);
        expect_patched64(fx->ctx, K_EVK, x, HDR, count - 1, HECNN_ERR_BAD_FORMAT, "count");
        expect_patched64(fx->ctx, K_EVK, x, HDR, 0, HECNN_ERR_BAD_FORMAT, "count");
        expect_patched64(fx->ctx, K_EVK, x, HDR, UINT64_MAX, HECNN_ERR_BAD_FORMAT, "keys");
        expect_patched64(fx->ctx, K_EVK, x, HDR, fx->ctx->rlwe.n + 3, HECNN_ERR_BAD_FORMAT, "keys");
        /* a switching key of another context inside the set */
        expect_patched64(fx->ctx, K_EVK, x, HDR + 8 + 16, 12345, HECNN_ERR_PARAMS_MISMATCH, NULL);
        /* the second key's galois element made equal to the third's: a duplicate */
        const size_t k0 = ckks_switching_key_bytes(ckks_eval_keys_at(fx->keys, 0), pass == 0);
        const size_t k1 = ckks_switching_key_bytes(ckks_eval_keys_at(fx->keys, 1), pass == 0);
        const uint64_t g2 = ckks_eval_keys_at(fx->keys, 2)->rlwe.galois;
        expect_patched64(fx->ctx, K_EVK, x, HDR + 8 + k0 + HDR, g2, HECNN_ERR_BAD_FORMAT, "two keys");
        /* a key's size field growing past the set */
        expect_patched64(fx->ctx, K_EVK, x, HDR + 8 + k0 + k1 + 24, UINT64_MAX, HECNN_ERR_BAD_FORMAT, NULL);
    }
    /* an empty set round-trips */
    ckks_eval_keys *empty, *back;
    CHECK(ckks_eval_keys_new(&empty, fx->ctx) == HECNN_OK);
    f = mem_out(&bs);
    CHECK(ckks_eval_keys_save(empty, true, f) == HECNN_OK);
    fclose(f);
    CHECK(bs.len == HDR + 8 + DG);
    f = mem_in(bs.data, bs.len);
    CHECK(ckks_eval_keys_load(fx->ctx, &back, f) == HECNN_OK);
    fclose(f);
    CHECK(back && ckks_eval_keys_count(back) == 0);
    expect_header_checks(fx, K_EVK, &bs, 1);
    expect_damage_refused(fx, K_EVK, &bs, 1);
    ckks_eval_keys_free(back);
    ckks_eval_keys_free(empty);
    free(bs.data);
    free(bf.data);
}

/* Write failures: a full output stream reports HECNN_ERR_IO. */
static void test_io_errors(fixture *fx)
{
    char small[40];
    FILE *f = fmemopen(small, sizeof small, "wb");
    setvbuf(f, NULL, _IONBF, 0);
    CHECK(ckks_public_key_save(fx->pk, f) == HECNN_ERR_IO);
    fclose(f);
    f = fopen("/dev/full", "wb");
    if (f) {
        setvbuf(f, NULL, _IONBF, 0);
        CHECK(ckks_secret_key_save(fx->sk, f) == HECNN_ERR_IO);
        CHECK(ckks_eval_keys_save(fx->keys, true, f) == HECNN_ERR_IO);
        fclose(f);
    }
    /* reading from a write-only stream is an I/O error, not a format error */
    f = fopen("/dev/null", "wb");
    if (f) {
        ckks_secret_key *sk;
        CHECK(ckks_secret_key_load(fx->ctx, &sk, f) == HECNN_ERR_IO);
        fclose(f);
    }
    CHECK(ckks_secret_key_save(NULL, stdout) == HECNN_ERR_INVALID_ARGUMENT);
    CHECK(ckks_secret_key_load(fx->ctx, NULL, stdin) == HECNN_ERR_INVALID_ARGUMENT);
    CHECK(ckks_switching_key_bytes(NULL, true) == 0);
}

int main(void)
{
    test_rng_seed(7);
    fixture fx = {0};
    ckks_params_literal p = small_params(3), p2 = small_params(2);
    REQUIRE(ckks_context_new(&fx.ctx, &p) == HECNN_OK);
    REQUIRE(ckks_context_new(&fx.other, &p2) == HECNN_OK);
    const uint8_t s1[CKKS_SEED_BYTES] = {1}, s2[CKKS_SEED_BYTES] = {2};
    REQUIRE(ckks_secret_key_generate_derand(&fx.sk, fx.ctx, s1) == HECNN_OK);
    REQUIRE(ckks_public_key_generate_derand(&fx.pk, fx.sk, s2) == HECNN_OK);
    const int steps[] = {1, 2, -1};
    REQUIRE(ckks_eval_keys_generate(&fx.keys, fx.sk, true, steps, 3, true) == HECNN_OK);
    fx.slots = ckks_context_max_slots(fx.ctx);
    fx.top = ckks_context_max_level(fx.ctx);

    test_params(&fx);
    test_plaintext(&fx);
    test_ciphertext(&fx);
    test_secret_key(&fx);
    test_public_key(&fx);
    test_switching_keys(&fx);
    test_eval_keys(&fx);
    test_io_errors(&fx);

    ckks_eval_keys_free(fx.keys);
    ckks_public_key_free(fx.pk);
    ckks_secret_key_free(fx.sk);
    ckks_context_free(fx.other);
    ckks_context_free(fx.ctx);
    return check_summary();
}

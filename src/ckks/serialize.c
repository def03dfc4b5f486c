/* Serialization of parameters, plaintexts, ciphertexts and keys. Byte layout: docs/FORMATS.md.
 *
 * Loaders treat their input as hostile: header, then metadata, then the size the metadata
 * implies are checked against the context before anything is allocated, so an allocation is
 * never sized by an unchecked length field; then every coefficient is checked against its
 * modulus. Every object ends with the SHA-256 of its bytes: loaders hash as they read and
 * return (or go on to expand seeds, rebuild NTT forms) only once it matches; a body that fails
 * a check is read to its end, so that damage is reported as a checksum mismatch, not as
 * whatever field it happened to hit. A failed load leaves the destination object untouched. */
#include <math.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "ckks/internal.h"
#include "util/fileheader.h"
#include "util/le.h"

/* Version 3: every object ends with a SHA-256 of its bytes (a key set: of its header, count and
 * its keys' digests). Version 2 (no checksum) and version 1 (8 bytes a coefficient) are refused
 * with a message that says so. */
#define FORMAT_VERSION 3
#define HEADER_BYTES 32
#define DIGEST_BYTES 32
/* magic "HECNN\0" and a 16-bit version (util/fileheader.h), then type, reserved bytes, parameter id, size */
static const file_format FORMAT = {.magic = "HECNN", .magic_bytes = 6, .version_bytes = 2, .version = FORMAT_VERSION,
                                   .oldest = 1, .what = "a hecnn object", .name = "object format"};

enum object_type {
    OBJ_PARAMS = 1,
    OBJ_PLAINTEXT = 2,
    OBJ_CIPHERTEXT = 3,
    OBJ_SECRET_KEY = 4,
    OBJ_PUBLIC_KEY = 5,
    OBJ_SWITCHING_KEY = 6,
    OBJ_EVAL_KEYS = 7,
};

/* Metadata sizes (bytes after the header, before the payload). */
#define META_PARAMS 40
#define META_PLAINTEXT 24
#define META_CIPHERTEXT 32
#define META_SECRET_KEY 8
#define META_PUBLIC_KEY 8
#define META_SWITCHING_KEY 24
#define META_EVAL_KEYS 8

#define FLAG_SEEDED 1u

static const char *type_name(unsigned t)
{
    static const char *names[] = {"?", "parameter set", "plaintext", "ciphertext", "secret key", "public key",
                                  "switching key", "eval key set"};
    return t < sizeof names / sizeof *names ? names[t] : "unknown";
}


#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HOST_LITTLE_ENDIAN 1
#else
#define HOST_LITTLE_ENDIAN 0
#endif

/* ---- writing ---- */

typedef struct writer {
    FILE *f;
    hecnn_status st;
    uint64_t written;
    EVP_MD_CTX *md; /* SHA-256 of what was written since w_begin */
} writer;

static void w_begin(writer *w, FILE *f)
{
    *w = (writer){.f = f, .md = EVP_MD_CTX_new()};
    if (!w->md || EVP_DigestInit_ex(w->md, EVP_sha256(), NULL) != 1) w->st = hecnn_fail(HECNN_ERR_UNSUPPORTED, "SHA-256 unavailable");
}

static void w_bytes(writer *w, const void *p, size_t len)
{
    if (w->st || !len) return;
    if (fwrite(p, 1, len, w->f) != len) {
        w->st = hecnn_fail(HECNN_ERR_IO, "write failed after %llu bytes", (unsigned long long)w->written);
        return;
    }
    if (EVP_DigestUpdate(w->md, p, len) != 1) w->st = hecnn_fail(HECNN_ERR_UNSUPPORTED, "SHA-256 failed");
    w->written += len;
}

/* Writes the digest of the object (itself not hashed), copies it to `digest` if not NULL, and
 * ends the writer. */
static hecnn_status w_end(writer *w, uint8_t digest[DIGEST_BYTES])
{
    uint8_t d[DIGEST_BYTES];
    unsigned len = 0;
    if (!w->st && (EVP_DigestFinal_ex(w->md, d, &len) != 1 || len != DIGEST_BYTES))
        w->st = hecnn_fail(HECNN_ERR_UNSUPPORTED, "SHA-256 failed");
    if (!w->st && fwrite(d, 1, DIGEST_BYTES, w->f) != DIGEST_BYTES)
        w->st = hecnn_fail(HECNN_ERR_IO, "write failed after %llu bytes", (unsigned long long)w->written);
    if (!w->st && digest) memcpy(digest, d, DIGEST_BYTES);
    EVP_MD_CTX_free(w->md);
    w->md = NULL;
    return w->st;
}

static void w_header(writer *w, unsigned type, uint64_t param_id, uint64_t size)
{
    uint8_t h[HEADER_BYTES] = {0};
    file_header_put(h, &FORMAT);
    le_put16(h + 8, (uint16_t)type);
    /* bytes 10..15 reserved, zero */
    le_put64(h + 16, param_id);
    le_put64(h + 24, size);
    w_bytes(w, h, sizeof h);
}

/* Bytes of one stored coefficient modulo tab's prime: its bit length, rounded up. */
static unsigned coeff_bytes(const ntt_table *tab) { return (tab->mod.bits + 7) / 8; }

/* Bytes of a stored polynomial over b. */
static uint64_t poly_bytes(const rns_basis *b)
{
    uint64_t bytes = 0;
    for (size_t k = 0; k < b->limbs; k++) bytes += (uint64_t)b->n * coeff_bytes(b->tab[k]);
    return bytes;
}

/* One limb of n coefficients, each in coeff_bytes little-endian bytes. */
static void w_limb(writer *w, const uint64_t *limb, size_t n, const ntt_table *tab)
{
    const unsigned bytes = coeff_bytes(tab);
    uint8_t buf[8 * 512 + 8];
    for (size_t i = 0; i < n && !w->st; i += 512) {
        const size_t take = n - i < 512 ? n - i : 512;
        for (size_t j = 0; j < take; j++) {
#if HOST_LITTLE_ENDIAN
            memcpy(buf + j * bytes, &limb[i + j], 8); /* the bytes above `bytes` are zero; the next overwrites them */
#else
            for (unsigned c = 0; c < bytes; c++) buf[j * bytes + c] = (uint8_t)(limb[i + j] >> (8 * c));
#endif
        }
        w_bytes(w, buf, take * bytes);
    }
}

static void w_poly(writer *w, const uint64_t *data, const rns_basis *b)
{
    for (size_t k = 0; k < b->limbs; k++) w_limb(w, data + k * b->n, b->n, b->tab[k]);
}

/* ---- reading ---- */

/* One object being read: its running SHA-256 and, once its header is accepted, the bytes left
 * before its digest. */
typedef struct reader {
    FILE *f;
    EVP_MD_CTX *md;
    const char *what;              /* the object, for messages */
    uint64_t size, left;
    bool body;                     /* header accepted: a failure is checked against the digest */
    bool short_read;               /* end of input or a stream error: no digest to check */
    uint8_t digest[DIGEST_BYTES];  /* the object's digest, once r_close accepted it */
} reader;

static hecnn_status r_open(reader *r, FILE *f, const char *what)
{
    *r = (reader){.f = f, .what = what, .md = EVP_MD_CTX_new()};
    if (!r->md || EVP_DigestInit_ex(r->md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(r->md);
        r->md = NULL;
        return hecnn_fail(HECNN_ERR_UNSUPPORTED, "SHA-256 unavailable");
    }
    return HECNN_OK;
}

/* Reads len bytes, unhashed. */
static hecnn_status r_raw(reader *r, void *p, size_t len, const char *what)
{
    if (!len) return HECNN_OK;
    size_t got = fread(p, 1, len, r->f);
    if (got == len) return HECNN_OK;
    r->short_read = true;
    if (ferror(r->f)) return hecnn_fail(HECNN_ERR_IO, "read error in %s", what);
    if (got == 0 && !strcmp(what, "header")) return hecnn_fail(HECNN_ERR_BAD_FORMAT, "empty input: no header");
    return hecnn_fail(HECNN_ERR_BAD_FORMAT, "truncated %s: %zu of %zu bytes", what, got, len);
}

/* Reads and hashes len bytes of the object. */
static hecnn_status r_bytes(reader *r, void *p, size_t len, const char *what)
{
    if (r->body && len > r->left)
        return hecnn_fail(HECNN_ERR_BAD_FORMAT, "%s runs past its size field (%llu bytes)", r->what, (unsigned long long)r->size);
    hecnn_status st = r_raw(r, p, len, what);
    if (st) return st;
    if (EVP_DigestUpdate(r->md, p, len) != 1) return hecnn_fail(HECNN_ERR_UNSUPPORTED, "SHA-256 failed");
    if (r->body) r->left -= len;
    return HECNN_OK;
}

/* Reads the stored digest and compares it with the bytes read. */
static hecnn_status r_check_digest(reader *r)
{
    uint8_t stored[DIGEST_BYTES];
    unsigned len = 0;
    hecnn_status st = r_raw(r, stored, sizeof stored, "checksum");
    if (st) return st;
    if (EVP_DigestFinal_ex(r->md, r->digest, &len) != 1 || len != DIGEST_BYTES) return hecnn_fail(HECNN_ERR_UNSUPPORTED, "SHA-256 failed");
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    return HECNN_OK; /* fuzzing builds only (CMakeLists.txt, HECNN_FUZZ): reach the checks behind it */
#endif
    if (CRYPTO_memcmp(stored, r->digest, DIGEST_BYTES))
        return hecnn_fail(HECNN_ERR_BAD_FORMAT, "%s checksum mismatch: the object is damaged or was altered (the SHA-256 of its %llu "
                          "bytes is not the one stored)", r->what, (unsigned long long)r->size);
    return HECNN_OK;
}

/* Ends a read that returned `st`. Success: the digest must match. A format error inside the body:
 * the rest is read and hashed, so that damage is reported as a checksum mismatch (a well-formed
 * digest over a malformed object keeps the first error). Only then is the body to be trusted. */
static hecnn_status r_close(reader *r, hecnn_status st)
{
    if (!st) {
        st = r->left ? hecnn_fail(HECNN_ERR_BAD_FORMAT, "%s: %llu bytes before its checksum left unread", r->what,
                                  (unsigned long long)r->left)
                     : r_check_digest(r);
    } else if (st == HECNN_ERR_BAD_FORMAT && r->body && !r->short_read && r->md) {
        char first[256];
        snprintf(first, sizeof first, "%s", hecnn_last_error_detail());
        uint8_t *buf = hecnn_alloc(1 << 16);
        hecnn_status d = buf ? HECNN_OK : HECNN_ERR_NO_MEMORY;
        while (!d && r->left) {
            const size_t take = r->left < (1u << 16) ? (size_t)r->left : (1u << 16);
            d = r_bytes(r, buf, take, r->what);
        }
        if (!d) d = r_check_digest(r);
        hecnn_secure_free(buf, 1 << 16); /* it may have held secret-key bytes */
        if (d == HECNN_ERR_BAD_FORMAT && !r->short_read)
            st = hecnn_fail(d, "%s checksum mismatch: the object is damaged or was altered (it reads as: %.150s)", r->what, first);
        else
            st = hecnn_fail(st, "%s", first);
    }
    EVP_MD_CTX_free(r->md);
    r->md = NULL;
    return st;
}

typedef struct header {
    unsigned type;
    uint64_t param_id, size;
} header;

static const unsigned meta_bytes[] = {0, META_PARAMS, META_PLAINTEXT, META_CIPHERTEXT, META_SECRET_KEY, META_PUBLIC_KEY,
                                      META_SWITCHING_KEY, META_EVAL_KEYS};

/* Magic, version, type, reserved bytes, (with a context) the parameter id, and the size field
 * within [smallest object of the type, max_size]. Then the body begins. */
static hecnn_status r_header(reader *r, header *h, unsigned want_type, const ckks_context *ctx, uint64_t max_size)
{
    uint8_t b[HEADER_BYTES];
    hecnn_status st = r_bytes(r, b, sizeof b, "header");
    if (st) return st;
    st = file_header_check(b, sizeof b, &FORMAT,
                           le_get16(b + 6) == 1 ? " (packed polynomials, seeds expanded per limb, checksums); write the object again"
                                                : " (every object checksummed); write the object again");
    if (st) return st;
    h->type = le_get16(b + 8);
    if (h->type != want_type)
        return hecnn_fail(HECNN_ERR_BAD_FORMAT, "object is a %s (type %u), expected a %s", type_name(h->type), h->type,
                          type_name(want_type));
    for (int i = 10; i < 16; i++)
        if (b[i]) return hecnn_fail(HECNN_ERR_BAD_FORMAT, "reserved header byte %d is not zero", i);
    h->param_id = le_get64(b + 16);
    h->size = le_get64(b + 24);
    uint64_t want_id = ctx ? ctx->param_id : 0;
    if (h->param_id != want_id) {
        if (!ctx) return hecnn_fail(HECNN_ERR_BAD_FORMAT, "parameter file with a nonzero parameter id");
        return hecnn_fail(HECNN_ERR_PARAMS_MISMATCH, "%s made under parameter set %016llx, context is %016llx",
                          type_name(want_type), (unsigned long long)h->param_id, (unsigned long long)want_id);
    }
    const uint64_t min_size = HEADER_BYTES + meta_bytes[want_type] + DIGEST_BYTES;
    if (h->size < min_size || h->size > max_size)
        return hecnn_fail(HECNN_ERR_BAD_FORMAT, "%s size field says %llu bytes, outside %llu..%llu", type_name(want_type),
                          (unsigned long long)h->size, (unsigned long long)min_size, (unsigned long long)max_size);
    r->size = h->size;
    r->left = h->size - HEADER_BYTES - DIGEST_BYTES;
    r->body = true;
    return HECNN_OK;
}

static hecnn_status check_size(const header *h, uint64_t want)
{
    want += DIGEST_BYTES;
    if (h->size != want)
        return hecnn_fail(HECNN_ERR_BAD_FORMAT, "%s size field says %llu bytes, its metadata implies %llu",
                          type_name(h->type), (unsigned long long)h->size, (unsigned long long)want);
    return HECNN_OK;
}

/* Read a stored polynomial over b into dst, each coefficient checked below its limb's modulus. */
static hecnn_status r_poly(reader *r, uint64_t *dst, const rns_basis *b, const char *what)
{
    const size_t n = b->n;
    uint8_t buf[8 * 512 + 8] = {0};
    for (size_t k = 0; k < b->limbs; k++) {
        uint64_t *limb = dst + k * n;
        const uint64_t q = b->tab[k]->mod.q;
        const unsigned bytes = coeff_bytes(b->tab[k]);
        const uint64_t mask = bytes == 8 ? UINT64_MAX : ((uint64_t)1 << (8 * bytes)) - 1;
        for (size_t i = 0; i < n; i += 512) {
            const size_t take = n - i < 512 ? n - i : 512;
            hecnn_status st = r_bytes(r, buf, take * bytes, what);
            if (st) return st;
            for (size_t j = 0; j < take; j++) {
#if HOST_LITTLE_ENDIAN
                uint64_t v;
                memcpy(&v, buf + j * bytes, 8);
                v &= mask;
#else
                uint64_t v = 0;
                for (unsigned c = 0; c < bytes; c++) v |= (uint64_t)buf[j * bytes + c] << (8 * c);
                (void)mask;
#endif
                if (v >= q)
                    return hecnn_fail(HECNN_ERR_BAD_FORMAT, "%s: coefficient %zu of limb %zu is %llu, not below its modulus %llu",
                                      what, i + j, k, (unsigned long long)v, (unsigned long long)q);
                limb[i + j] = v;
            }
        }
    }
    return HECNN_OK;
}

static bool seed_is_zero(const uint8_t seed[CKKS_SEED_BYTES])
{
    uint8_t acc = 0;
    for (int i = 0; i < CKKS_SEED_BYTES; i++) acc |= seed[i];
    return acc == 0;
}

/* out = the uniform polynomial (seed, index) over basis b. */
static hecnn_status expand_uniform(uint64_t *out, const rns_basis *b, const uint8_t seed[CKKS_SEED_BYTES], uint64_t index)
{
    return sample_uniform(seed, (uint16_t)index, b, out) ? hecnn_fail(HECNN_ERR_RANDOM, "AES-CTR init") : HECNN_OK;
}

/* True when `data` (over basis b) is exactly the expansion of (seed, index). The seed of an
 * object whose uniform half is not known to come from it is all-zero (fresh allocations are
 * zeroed); checking the data as well guards against objects modified after generation. */
static hecnn_status matches_seed(bool *out, const uint64_t *data, const rns_basis *b,
                                 const uint8_t seed[CKKS_SEED_BYTES], uint64_t index)
{
    *out = false;
    if (seed_is_zero(seed)) return HECNN_OK;
    const size_t bytes = b->limbs * b->n * 8;
    uint64_t *tmp = hecnn_alloc(bytes);
    if (!tmp) return hecnn_fail(HECNN_ERR_NO_MEMORY, "seed check buffer");
    hecnn_status st = expand_uniform(tmp, b, seed, index);
    if (!st) *out = memcmp(tmp, data, bytes) == 0;
    hecnn_free(tmp);
    return st;
}

static bool is_pow2(uint64_t x) { return x && !(x & (x - 1)); }

/* The largest object of a type under ctx (an eval key set: unbounded), so that a size field that
 * lies cannot make a loader read far past the object. */
static uint64_t max_size(unsigned type, const ckks_context *ctx)
{
    rns_basis b;
    const uint64_t fixed = HEADER_BYTES + meta_bytes[type] + DIGEST_BYTES;
    switch (type) {
    case OBJ_PARAMS:
        return fixed + 8 * CKKS_MAX_PRIMES;
    case OBJ_PLAINTEXT:
        rlwe_basis_q(&ctx->rlwe, &b, ctx->rlwe.n_q - 1);
        return fixed + poly_bytes(&b);
    case OBJ_CIPHERTEXT:
        rlwe_basis_q(&ctx->rlwe, &b, ctx->rlwe.n_q - 1);
        return fixed + 3 * poly_bytes(&b);
    case OBJ_SECRET_KEY:
        return fixed + ctx->rlwe.n;
    case OBJ_PUBLIC_KEY:
        rlwe_basis_q(&ctx->rlwe, &b, ctx->rlwe.n_q - 1);
        return fixed + 2 * poly_bytes(&b);
    case OBJ_SWITCHING_KEY:
        rlwe_basis_qp(&ctx->rlwe, &b, ctx->rlwe.n_q - 1);
        return fixed + 2 * (uint64_t)((ctx->rlwe.n_q + ctx->rlwe.alpha - 1) / ctx->rlwe.alpha) * poly_bytes(&b);
    default:
        return UINT64_MAX;
    }
}

/* ---- parameters ---- */

hecnn_status ckks_params_save(const ckks_params_literal *p, FILE *f)
{
    if (!p || !f) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    if (p->n_q < 1 || p->n_q > CKKS_MAX_PRIMES || p->n_p < 1 || p->n_p > CKKS_MAX_PRIMES)
        return hecnn_fail(HECNN_ERR_INVALID_PARAMS, "n_q = %u, n_p = %u outside 1..%d", p->n_q, p->n_p, CKKS_MAX_PRIMES);
    if (!(p->sigma >= 0 && p->sigma <= 20)) return hecnn_fail(HECNN_ERR_INVALID_PARAMS, "sigma %g outside [0, 20]", p->sigma);
    if (!ckks_sigma_standard(p->sigma)) /* the loader would refuse it */
        return hecnn_fail(HECNN_ERR_INSECURE_PARAMS, "error sigma %g: a parameter file carries only the HE standard's 3.19..3.2",
                          p->sigma);
    writer w;
    w_begin(&w, f);
    const uint64_t size = HEADER_BYTES + META_PARAMS + 4 * ((uint64_t)p->n_q + p->n_p) + DIGEST_BYTES;
    w_header(&w, OBJ_PARAMS, 0, size);
    uint8_t m[META_PARAMS];
    le_put32(m + 0, p->log_n);
    le_put32(m + 4, p->n_q);
    le_put32(m + 8, p->n_p);
    le_put32(m + 12, p->dnum);
    le_put32(m + 16, p->log_scale);
    le_put32(m + 20, (uint32_t)p->secret);
    le_put32(m + 24, p->hamming_weight);
    le_put32(m + 28, p->allow_insecure ? 1 : 0);
    le_put64(m + 32, le_double_bits(p->sigma));
    w_bytes(&w, m, sizeof m);
    for (unsigned i = 0; i < p->n_q + p->n_p; i++) {
        uint8_t b[4];
        le_put32(b, i < p->n_q ? p->log_q[i] : p->log_p[i - p->n_q]);
        w_bytes(&w, b, 4);
    }
    return w_end(&w, NULL);
}

static hecnn_status params_read(reader *r, ckks_params_literal *out)
{
    header h;
    hecnn_status st = r_header(r, &h, OBJ_PARAMS, NULL, max_size(OBJ_PARAMS, NULL));
    if (st) return st;
    uint8_t m[META_PARAMS];
    if ((st = r_bytes(r, m, sizeof m, "params metadata"))) return st;
    ckks_params_literal p = {0};
    p.log_n = le_get32(m + 0);
    p.n_q = le_get32(m + 4);
    p.n_p = le_get32(m + 8);
    p.dnum = le_get32(m + 12);
    p.log_scale = le_get32(m + 16);
    uint32_t secret = le_get32(m + 20), flags = le_get32(m + 28);
    p.hamming_weight = le_get32(m + 24);
    p.sigma = le_bits_double(le_get64(m + 32));
    if (p.log_n < 4 || p.log_n > 17) return hecnn_fail(HECNN_ERR_BAD_FORMAT, "params: log_n = %u outside 4..17", p.log_n);
    if (p.n_q < 1 || p.n_q > CKKS_MAX_PRIMES || p.n_p < 1 || p.n_p > CKKS_MAX_PRIMES)
        return hecnn_fail(HECNN_ERR_BAD_FORMAT, "params: n_q = %u, n_p = %u outside 1..%d", p.n_q, p.n_p, CKKS_MAX_PRIMES);
    if (p.dnum > p.n_q) return hecnn_fail(HECNN_ERR_BAD_FORMAT, "params: dnum %u > n_q %u", p.dnum, p.n_q);
    if (p.log_scale < 1 || p.log_scale > 60)
        return hecnn_fail(HECNN_ERR_BAD_FORMAT, "params: log_scale %u outside 1..60", p.log_scale);
    if (secret > CKKS_SECRET_SPARSE_TERNARY) return hecnn_fail(HECNN_ERR_BAD_FORMAT, "params: unknown secret distribution %u", secret);
    p.secret = (ckks_secret_dist)secret;
    if (p.hamming_weight > (1u << p.log_n) || (p.secret == CKKS_SECRET_SPARSE_TERNARY && !p.hamming_weight))
        return hecnn_fail(HECNN_ERR_BAD_FORMAT, "params: hamming weight %u outside 1..N", p.hamming_weight);
    if (flags > 1) return hecnn_fail(HECNN_ERR_BAD_FORMAT, "params: unknown flags %#x", flags);
    p.allow_insecure = flags & 1;
    /* whatever the flags say: a file never selects a non-standard error width */
    if (!ckks_sigma_standard(p.sigma))
        return hecnn_fail(HECNN_ERR_BAD_FORMAT, "params: error sigma %g is not the HE standard's 3.19..3.2", p.sigma);
    if ((st = check_size(&h, HEADER_BYTES + META_PARAMS + 4 * ((uint64_t)p.n_q + p.n_p)))) return st;
    for (unsigned i = 0; i < p.n_q + p.n_p; i++) {
        uint8_t b[4];
        if ((st = r_bytes(r, b, 4, "params prime sizes"))) return st;
        uint32_t bits = le_get32(b);
        if (bits < 17 || bits > 61) return hecnn_fail(HECNN_ERR_BAD_FORMAT, "params: prime %u has %u bits, outside 17..61", i, bits);
        if (i < p.n_q) p.log_q[i] = bits;
        else p.log_p[i - p.n_q] = bits;
    }
    *out = p;
    return HECNN_OK;
}

hecnn_status ckks_params_load(ckks_params_literal *out, FILE *f)
{
    if (!out || !f) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    reader r;
    hecnn_status st = r_open(&r, f, "parameter set");
    if (st) return st;
    ckks_params_literal p;
    if (!(st = r_close(&r, params_read(&r, &p)))) *out = p;
    return st;
}

/* ---- plaintexts ---- */

hecnn_status ckks_plaintext_save(const ckks_plaintext *pt, FILE *f)
{
    if (!pt || !f || !pt->data) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL or empty plaintext");
    const ckks_context *ctx = pt->ctx;
    rns_basis b;
    rlwe_basis_q(&ctx->rlwe, &b, pt->level);
    writer w;
    w_begin(&w, f);
    w_header(&w, OBJ_PLAINTEXT, ctx->param_id, HEADER_BYTES + META_PLAINTEXT + poly_bytes(&b) + DIGEST_BYTES);
    uint8_t m[META_PLAINTEXT] = {0};
    le_put32(m + 0, pt->level);
    le_put64(m + 8, le_double_bits(pt->scale));
    le_put64(m + 16, pt->slots);
    w_bytes(&w, m, sizeof m);
    w_poly(&w, pt->data, &b);
    return w_end(&w, NULL);
}

/* Level, scale and slots shared by plaintexts and ciphertexts. */
static hecnn_status check_level_scale_slots(const ckks_context *ctx, uint32_t level, double scale, uint64_t slots,
                                            const char *what)
{
    if (level >= ctx->rlwe.n_q) return hecnn_fail(HECNN_ERR_BAD_FORMAT, "%s at level %u, context's top level is %u", what, level, ctx->rlwe.n_q - 1);
    /* normal, not only finite: a subnormal scale overflows 1 / scale in decoding (NaN values) */
    if (!(scale > 0) || !isnormal(scale))
        return hecnn_fail(HECNN_ERR_BAD_FORMAT, "%s scale %g is not a positive normal number", what, scale);
    if (!is_pow2(slots) || slots > ctx->rlwe.n / 2)
        return hecnn_fail(HECNN_ERR_BAD_FORMAT, "%s slots = %llu: need a power of two <= N/2 = %zu", what,
                          (unsigned long long)slots, ctx->rlwe.n / 2);
    return HECNN_OK;
}

/* What a plaintext or ciphertext loader reads before the object is verified and committed. */
typedef struct ct_read {
    uint64_t *data;
    uint32_t level, degree;
    double scale;
    uint64_t slots;
    bool seeded;
    uint8_t seed[CKKS_SEED_BYTES];
} ct_read;

static hecnn_status plaintext_read(reader *r, const ckks_context *ctx, ct_read *o)
{
    header h;
    hecnn_status st = r_header(r, &h, OBJ_PLAINTEXT, ctx, max_size(OBJ_PLAINTEXT, ctx));
    if (st) return st;
    uint8_t m[META_PLAINTEXT];
    if ((st = r_bytes(r, m, sizeof m, "plaintext metadata"))) return st;
    o->level = le_get32(m + 0);
    o->scale = le_bits_double(le_get64(m + 8));
    o->slots = le_get64(m + 16);
    if (le_get32(m + 4)) return hecnn_fail(HECNN_ERR_BAD_FORMAT, "plaintext: reserved field is not zero");
    if ((st = check_level_scale_slots(ctx, o->level, o->scale, o->slots, "plaintext"))) return st;
    const size_t limbs = (size_t)o->level + 1;
    rns_basis b;
    rlwe_basis_q(&ctx->rlwe, &b, o->level);
    if ((st = check_size(&h, HEADER_BYTES + META_PLAINTEXT + poly_bytes(&b)))) return st;
    o->data = hecnn_alloc(limbs * ctx->rlwe.n * 8);
    if (!o->data) return hecnn_fail(HECNN_ERR_NO_MEMORY, "plaintext of %zu limbs", limbs);
    return r_poly(r, o->data, &b, "plaintext");
}

hecnn_status ckks_plaintext_load(const ckks_context *ctx, ckks_plaintext *pt, FILE *f)
{
    if (!ctx || !pt || !f) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    if (pt->ctx->param_id != ctx->param_id) return hecnn_fail(HECNN_ERR_PARAMS_MISMATCH, "plaintext handle of another context");
    reader r;
    hecnn_status st = r_open(&r, f, "plaintext");
    if (st) return st;
    ct_read o = {0};
    if ((st = r_close(&r, plaintext_read(&r, ctx, &o)))) {
        hecnn_free(o.data);
        return st;
    }
    hecnn_free(pt->data);
    pt->data = o.data;
    pt->capacity = (size_t)o.level + 1;
    pt->level = o.level;
    pt->scale = o.scale;
    pt->slots = (size_t)o.slots;
    return HECNN_OK;
}

/* ---- ciphertexts ---- */

hecnn_status ckks_ciphertext_save_digest(const ckks_ciphertext *ct, FILE *f, uint8_t digest[32])
{
    if (!ct || !f || !ct->data) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL or empty ciphertext");
    const ckks_context *ctx = ct->ctx;
    rns_basis b;
    rlwe_basis_q(&ctx->rlwe, &b, ct->level);
    bool seeded = false;
    hecnn_status st;
    if (ct->seeded && ct->degree == 1 && (st = matches_seed(&seeded, ct_comp(ct, 1), &b, ct->seed, 0))) return st;
    const uint64_t poly = poly_bytes(&b);
    const uint64_t size =
        HEADER_BYTES + META_CIPHERTEXT + (seeded ? CKKS_SEED_BYTES + poly : ((uint64_t)ct->degree + 1) * poly) + DIGEST_BYTES;
    writer w;
    w_begin(&w, f);
    w_header(&w, OBJ_CIPHERTEXT, ctx->param_id, size);
    uint8_t m[META_CIPHERTEXT] = {0};
    le_put32(m + 0, ct->level);
    le_put32(m + 4, ct->degree);
    le_put64(m + 8, le_double_bits(ct->scale));
    le_put64(m + 16, ct->slots);
    le_put32(m + 24, seeded ? FLAG_SEEDED : 0);
    w_bytes(&w, m, sizeof m);
    if (seeded) w_bytes(&w, ct->seed, CKKS_SEED_BYTES);
    for (unsigned c = 0; c <= (seeded ? 0 : ct->degree); c++) w_poly(&w, ct_comp(ct, c), &b);
    return w_end(&w, digest);
}

hecnn_status ckks_ciphertext_save(const ckks_ciphertext *ct, FILE *f) { return ckks_ciphertext_save_digest(ct, f, NULL); }

static hecnn_status ciphertext_read(reader *r, const ckks_context *ctx, ct_read *o)
{
    header h;
    hecnn_status st = r_header(r, &h, OBJ_CIPHERTEXT, ctx, max_size(OBJ_CIPHERTEXT, ctx));
    if (st) return st;
    uint8_t m[META_CIPHERTEXT];
    if ((st = r_bytes(r, m, sizeof m, "ciphertext metadata"))) return st;
    o->level = le_get32(m + 0), o->degree = le_get32(m + 4);
    const uint32_t flags = le_get32(m + 24);
    o->scale = le_bits_double(le_get64(m + 8));
    o->slots = le_get64(m + 16);
    if ((st = check_level_scale_slots(ctx, o->level, o->scale, o->slots, "ciphertext"))) return st;
    if (o->degree < 1 || o->degree > 2) return hecnn_fail(HECNN_ERR_BAD_FORMAT, "ciphertext degree %u, need 1 or 2", o->degree);
    if (flags & ~FLAG_SEEDED) return hecnn_fail(HECNN_ERR_BAD_FORMAT, "ciphertext: unknown flags %#x", flags);
    if (le_get32(m + 28)) return hecnn_fail(HECNN_ERR_BAD_FORMAT, "ciphertext: reserved field is not zero");
    o->seeded = flags & FLAG_SEEDED;
    if (o->seeded && o->degree != 1) return hecnn_fail(HECNN_ERR_BAD_FORMAT, "seeded ciphertext of degree %u", o->degree);
    const size_t limb_coeffs = ((size_t)o->level + 1) * ctx->rlwe.n;
    rns_basis b;
    rlwe_basis_q(&ctx->rlwe, &b, o->level);
    const uint64_t poly = poly_bytes(&b);
    const uint64_t want = HEADER_BYTES + META_CIPHERTEXT + (o->seeded ? CKKS_SEED_BYTES + poly : ((uint64_t)o->degree + 1) * poly);
    if ((st = check_size(&h, want))) return st;
    if (o->seeded) {
        if ((st = r_bytes(r, o->seed, sizeof o->seed, "ciphertext seed"))) return st;
        if (seed_is_zero(o->seed)) return hecnn_fail(HECNN_ERR_BAD_FORMAT, "seeded ciphertext with an all-zero seed");
    }
    const size_t limbs = ((size_t)o->degree + 1) * (o->level + 1);
    o->data = hecnn_alloc(limbs * ctx->rlwe.n * 8);
    if (!o->data) return hecnn_fail(HECNN_ERR_NO_MEMORY, "ciphertext of %zu limbs", limbs);
    for (unsigned c = 0; c <= (o->seeded ? 0 : o->degree) && !st; c++)
        st = r_poly(r, o->data + (size_t)c * limb_coeffs, &b, "ciphertext");
    return st;
}

hecnn_status ckks_ciphertext_load_digest(const ckks_context *ctx, ckks_ciphertext *ct, FILE *f, uint8_t digest[32])
{
    if (!ctx || !ct || !f) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    if (ct->ctx->param_id != ctx->param_id) return hecnn_fail(HECNN_ERR_PARAMS_MISMATCH, "ciphertext handle of another context");
    reader r;
    hecnn_status st = r_open(&r, f, "ciphertext");
    if (st) return st;
    ct_read o = {0};
    st = r_close(&r, ciphertext_read(&r, ctx, &o));
    if (!st && o.seeded) { /* c1 from its seed, once the seed is known to be the one written */
        rns_basis b;
        rlwe_basis_q(&ctx->rlwe, &b, o.level);
        st = expand_uniform(o.data + ((size_t)o.level + 1) * ctx->rlwe.n, &b, o.seed, 0);
    }
    if (st) {
        hecnn_free(o.data);
        return st;
    }
    hecnn_free(ct->data);
    ct->data = o.data;
    ct->capacity = ((size_t)o.degree + 1) * (o.level + 1);
    ct->level = o.level;
    ct->degree = o.degree;
    ct->scale = o.scale;
    ct->slots = (size_t)o.slots;
    ct->seeded = o.seeded;
    memcpy(ct->seed, o.seed, sizeof o.seed);
    if (digest) memcpy(digest, r.digest, DIGEST_BYTES);
    return HECNN_OK;
}

hecnn_status ckks_ciphertext_load(const ckks_context *ctx, ckks_ciphertext *ct, FILE *f)
{
    return ckks_ciphertext_load_digest(ctx, ct, f, NULL);
}

/* ---- secret keys ---- */

hecnn_status ckks_secret_key_save(const ckks_secret_key *sk, FILE *f)
{
    if (!sk || !f) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    const ckks_context *ctx = sk->ctx;
    writer w;
    w_begin(&w, f);
    w_header(&w, OBJ_SECRET_KEY, ctx->param_id, HEADER_BYTES + META_SECRET_KEY + (uint64_t)ctx->rlwe.n + DIGEST_BYTES);
    uint8_t m[META_SECRET_KEY];
    le_put64(m, ctx->rlwe.n);
    w_bytes(&w, m, sizeof m);
    /* int8 in two's complement: 0x00, 0x01, 0xff; no staging buffer, so no copy to wipe (the
     * digest state is cleansed when freed) */
    w_bytes(&w, sk->rlwe.small, ctx->rlwe.n);
    return w_end(&w, NULL);
}

static hecnn_status secret_key_read(reader *r, const ckks_context *ctx, ckks_secret_key *sk)
{
    header h;
    hecnn_status st = r_header(r, &h, OBJ_SECRET_KEY, ctx, max_size(OBJ_SECRET_KEY, ctx));
    if (st) return st;
    uint8_t m[META_SECRET_KEY];
    if ((st = r_bytes(r, m, sizeof m, "secret key metadata"))) return st;
    const uint64_t n = le_get64(m);
    if (n != ctx->rlwe.n) return hecnn_fail(HECNN_ERR_BAD_FORMAT, "secret key of %llu coefficients, N = %zu", (unsigned long long)n, ctx->rlwe.n);
    if ((st = check_size(&h, HEADER_BYTES + META_SECRET_KEY + n))) return st;
    if ((st = r_bytes(r, sk->rlwe.small, ctx->rlwe.n, "secret key"))) return st;
    for (size_t i = 0; i < ctx->rlwe.n; i++)
        if (sk->rlwe.small[i] < -1 || sk->rlwe.small[i] > 1)
            return hecnn_fail(HECNN_ERR_BAD_FORMAT, "secret key coefficient %zu is not in {-1, 0, 1}", i);
    return HECNN_OK;
}

hecnn_status ckks_secret_key_load(const ckks_context *ctx, ckks_secret_key **out, FILE *f)
{
    if (!out || !ctx || !f) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    reader r;
    hecnn_status st = r_open(&r, f, "secret key");
    if (st) return st;
    ckks_secret_key *sk;
    st = secret_key_alloc(&sk, ctx);
    if (!st) st = secret_key_read(&r, ctx, sk);
    st = r_close(&r, st);
    if (!st) rlwe_secret_key_refresh_ntt(&sk->rlwe);
    if (st) {
        ckks_secret_key_free(sk); /* wipes what was read */
        return st;
    }
    *out = sk;
    return HECNN_OK;
}

/* ---- public keys ---- */

hecnn_status ckks_public_key_save(const ckks_public_key *pk, FILE *f)
{
    if (!pk || !f) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    const ckks_context *ctx = pk->ctx;
    rns_basis b;
    rlwe_basis_q(&ctx->rlwe, &b, ctx->rlwe.n_q - 1);
    bool seeded;
    hecnn_status st = matches_seed(&seeded, pk->a, &b, pk->seed, 0);
    if (st) return st;
    const uint64_t poly = poly_bytes(&b);
    const uint64_t size = HEADER_BYTES + META_PUBLIC_KEY + (seeded ? CKKS_SEED_BYTES + poly : 2 * poly) + DIGEST_BYTES;
    writer w;
    w_begin(&w, f);
    w_header(&w, OBJ_PUBLIC_KEY, ctx->param_id, size);
    uint8_t m[META_PUBLIC_KEY];
    le_put32(m, seeded ? FLAG_SEEDED : 0);
    le_put32(m + 4, ctx->rlwe.n_q);
    w_bytes(&w, m, sizeof m);
    if (seeded) w_bytes(&w, pk->seed, CKKS_SEED_BYTES);
    w_poly(&w, pk->b, &b);
    if (!seeded) w_poly(&w, pk->a, &b);
    return w_end(&w, NULL);
}

static hecnn_status public_key_read(reader *r, const ckks_context *ctx, ckks_public_key **out, bool *seeded)
{
    header h;
    hecnn_status st = r_header(r, &h, OBJ_PUBLIC_KEY, ctx, max_size(OBJ_PUBLIC_KEY, ctx));
    if (st) return st;
    uint8_t m[META_PUBLIC_KEY];
    if ((st = r_bytes(r, m, sizeof m, "public key metadata"))) return st;
    const uint32_t flags = le_get32(m), limbs = le_get32(m + 4);
    if (flags & ~FLAG_SEEDED) return hecnn_fail(HECNN_ERR_BAD_FORMAT, "public key: unknown flags %#x", flags);
    if (limbs != ctx->rlwe.n_q) return hecnn_fail(HECNN_ERR_BAD_FORMAT, "public key of %u limbs, context has %u", limbs, ctx->rlwe.n_q);
    *seeded = flags & FLAG_SEEDED;
    const size_t coeffs = (size_t)ctx->rlwe.n_q * ctx->rlwe.n;
    rns_basis b;
    rlwe_basis_q(&ctx->rlwe, &b, ctx->rlwe.n_q - 1);
    const uint64_t poly = poly_bytes(&b);
    if ((st = check_size(&h, HEADER_BYTES + META_PUBLIC_KEY + (*seeded ? CKKS_SEED_BYTES + poly : 2 * poly)))) return st;
    ckks_public_key *pk = *out = hecnn_calloc(1, sizeof *pk);
    if (!pk) return hecnn_fail(HECNN_ERR_NO_MEMORY, "public key");
    pk->ctx = ctx;
    if (*seeded) {
        if ((st = r_bytes(r, pk->seed, sizeof pk->seed, "public key seed"))) return st;
        if (seed_is_zero(pk->seed)) return hecnn_fail(HECNN_ERR_BAD_FORMAT, "seeded public key with an all-zero seed");
    }
    pk->b = hecnn_alloc(coeffs * 8);
    pk->a = hecnn_alloc(coeffs * 8);
    if (!pk->a || !pk->b) return hecnn_fail(HECNN_ERR_NO_MEMORY, "public key");
    if ((st = r_poly(r, pk->b, &b, "public key"))) return st;
    return *seeded ? HECNN_OK : r_poly(r, pk->a, &b, "public key");
}

hecnn_status ckks_public_key_load(const ckks_context *ctx, ckks_public_key **out, FILE *f)
{
    if (!out || !ctx || !f) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    reader r;
    hecnn_status st = r_open(&r, f, "public key");
    if (st) return st;
    ckks_public_key *pk = NULL;
    bool seeded = false;
    st = r_close(&r, public_key_read(&r, ctx, &pk, &seeded));
    if (!st && seeded) {
        rns_basis b;
        rlwe_basis_q(&ctx->rlwe, &b, ctx->rlwe.n_q - 1);
        st = expand_uniform(pk->a, &b, pk->seed, 0);
    }
    if (st) {
        ckks_public_key_free(pk);
        return st;
    }
    *out = pk;
    return HECNN_OK;
}

/* ---- switching keys ---- */

static uint64_t swk_size(const ckks_switching_key *k, bool seeded)
{
    rns_basis b;
    rlwe_basis_qp_special(&k->ctx->rlwe, &b, k->rlwe.max_level, swk_special(&k->rlwe));
    const uint64_t part = poly_bytes(&b);
    return HEADER_BYTES + META_SWITCHING_KEY + (seeded ? CKKS_SEED_BYTES + k->rlwe.digits * part : 2 * (uint64_t)k->rlwe.digits * part) +
           DIGEST_BYTES;
}

size_t ckks_switching_key_bytes(const ckks_switching_key *key, bool seeded)
{
    if (!key) return 0;
    return (size_t)swk_size(key, seeded && !seed_is_zero(key->rlwe.seed));
}

/* Whether `key` can be written seeded: its seed is known and regenerates every a_j. */
static hecnn_status swk_can_seed(bool *out, const ckks_switching_key *k)
{
    *out = k->rlwe.compact; /* compaction checked that the seed regenerates every a_j */
    if (k->rlwe.compact || seed_is_zero(k->rlwe.seed)) return HECNN_OK;
    rns_basis b;
    rlwe_basis_qp_special(&k->ctx->rlwe, &b, k->rlwe.max_level, swk_special(&k->rlwe));
    for (unsigned j = 0; j < k->rlwe.digits; j++) {
        hecnn_status st = matches_seed(out, swk_part(&k->rlwe, j, 1), &b, k->rlwe.seed, j);
        if (st || !*out) return st;
    }
    return HECNN_OK;
}

/* One complete switching-key object, its digest in `digest`. */
static hecnn_status swk_write(FILE *f, const ckks_switching_key *k, bool seeded, uint8_t digest[DIGEST_BYTES])
{
    const ckks_context *ctx = k->ctx;
    writer w;
    w_begin(&w, f);
    w_header(&w, OBJ_SWITCHING_KEY, ctx->param_id, swk_size(k, seeded));
    uint8_t m[META_SWITCHING_KEY];
    le_put64(m, k->rlwe.galois);
    le_put32(m + 8, k->rlwe.max_level);
    le_put32(m + 12, k->rlwe.digits);
    le_put32(m + 16, seeded ? FLAG_SEEDED : 0);
    le_put32(m + 20, (uint32_t)k->rlwe.limbs);
    w_bytes(&w, m, sizeof m);
    if (seeded) w_bytes(&w, k->rlwe.seed, CKKS_SEED_BYTES);
    /* limb by limb: a compact key's halves are unpacked or re-expanded into buf */
    uint64_t *buf = hecnn_alloc(ctx->rlwe.n * 8);
    if (!buf && !w.st) w.st = hecnn_fail(HECNN_ERR_NO_MEMORY, "switching key buffer");
    for (unsigned j = 0; j < k->rlwe.digits && !w.st; j++)
        for (unsigned half = 0; half < (seeded ? 1u : 2u) && !w.st; half++)
            for (size_t t = 0; t < k->rlwe.limbs && !w.st; t++) {
                const uint64_t *limb = half ? swk_a_limb(&k->rlwe, j, t, buf) : swk_b_limb(&k->rlwe, j, t, buf);
                if (!limb) w.st = hecnn_fail(HECNN_ERR_RANDOM, "AES-CTR init");
                else w_limb(&w, limb, ctx->rlwe.n, swk_limb_table(&k->rlwe, t));
            }
    hecnn_free(buf);
    return w_end(&w, digest);
}

hecnn_status ckks_switching_key_save(const ckks_switching_key *key, bool seeded, FILE *f)
{
    if (!key || !f) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    bool ok = false;
    hecnn_status st = seeded ? swk_can_seed(&ok, key) : HECNN_OK;
    if (st) return st;
    return swk_write(f, key, ok, NULL);
}

/* Header (its size at most `limit`), metadata, size check, allocation, the stored halves; a
 * seeded key's a_j are left for the caller to expand once the digest matched. */
static hecnn_status swk_read(reader *r, const ckks_context *ctx, uint64_t limit, ckks_switching_key **out, bool *seeded)
{
    header h;
    const uint64_t max = max_size(OBJ_SWITCHING_KEY, ctx);
    hecnn_status st = r_header(r, &h, OBJ_SWITCHING_KEY, ctx, max < limit ? max : limit);
    if (st) return st;
    uint8_t m[META_SWITCHING_KEY];
    if ((st = r_bytes(r, m, sizeof m, "switching key metadata"))) return st;
    const uint64_t galois = le_get64(m);
    const uint32_t max_level = le_get32(m + 8), digits = le_get32(m + 12), flags = le_get32(m + 16), limbs = le_get32(m + 20);
    if (max_level >= ctx->rlwe.n_q)
        return hecnn_fail(HECNN_ERR_BAD_FORMAT, "switching key for level %u, context's top level is %u", max_level, ctx->rlwe.n_q - 1);
    /* 0: relinearization, CKKS_SWITCH_SECRET: from one secret to another, odd: Galois */
    if (galois && galois != CKKS_SWITCH_SECRET && (!(galois & 1) || galois >= 2 * (uint64_t)ctx->rlwe.n))
        return hecnn_fail(HECNN_ERR_BAD_FORMAT, "Galois element %llu is not odd and below 2N = %zu", (unsigned long long)galois,
                          2 * ctx->rlwe.n);
    if (digits != (max_level + ctx->rlwe.alpha) / ctx->rlwe.alpha)
        return hecnn_fail(HECNN_ERR_BAD_FORMAT, "switching key of %u digits, level %u needs %u", digits, max_level,
                          (max_level + ctx->rlwe.alpha) / ctx->rlwe.alpha);
    /* every special prime; or those of a level-0 key between secrets (the encapsulation key) */
    const bool level0_p = galois == CKKS_SWITCH_SECRET && max_level == 0 && limbs == 1 + ctx->rlwe.special[KS_LEVEL0_P].n_p;
    if (limbs != max_level + 1 + ctx->rlwe.n_p && !level0_p)
        return hecnn_fail(HECNN_ERR_BAD_FORMAT, "switching key of %u limbs, level %u needs %u", limbs, max_level,
                          max_level + 1 + ctx->rlwe.n_p);
    if (flags & ~FLAG_SEEDED) return hecnn_fail(HECNN_ERR_BAD_FORMAT, "switching key: unknown flags %#x", flags);
    *seeded = flags & FLAG_SEEDED;
    rns_basis b;
    rlwe_basis_qp_special(&ctx->rlwe, &b, max_level, &ctx->rlwe.special[limbs == max_level + 1 + ctx->rlwe.n_p ? KS_ALL_P : KS_LEVEL0_P]);
    const uint64_t part = poly_bytes(&b);
    const uint64_t want = HEADER_BYTES + META_SWITCHING_KEY + (*seeded ? CKKS_SEED_BYTES + digits * part : 2 * (uint64_t)digits * part);
    if ((st = check_size(&h, want))) return st;
    uint8_t seed[CKKS_SEED_BYTES] = {0};
    if (*seeded) {
        if ((st = r_bytes(r, seed, sizeof seed, "switching key seed"))) return st;
        if (seed_is_zero(seed)) return hecnn_fail(HECNN_ERR_BAD_FORMAT, "seeded switching key with an all-zero seed");
    }
    ckks_switching_key *k;
    if ((st = switching_key_alloc(&k, ctx, galois, max_level, limbs - max_level - 1))) return st;
    memcpy(k->rlwe.seed, seed, sizeof seed);
    *out = k;
    for (unsigned j = 0; j < digits && !st; j++) {
        st = r_poly(r, swk_part(&k->rlwe, j, 0), &b, "switching key");
        if (!st && !*seeded) st = r_poly(r, swk_part(&k->rlwe, j, 1), &b, "switching key");
    }
    return st;
}

/* One switching-key object from f, at most `limit` bytes; its size and digest in *size, digest.
 * The key is returned only after its digest matched (streaming: hashed as it is read). */
static hecnn_status swk_load(const ckks_context *ctx, ckks_switching_key **out, FILE *f, uint64_t limit, uint64_t *size,
                             uint8_t digest[DIGEST_BYTES])
{
    *out = NULL;
    reader r;
    hecnn_status st = r_open(&r, f, "switching key");
    if (st) return st;
    ckks_switching_key *k = NULL;
    bool seeded = false;
    st = r_close(&r, swk_read(&r, ctx, limit, &k, &seeded));
    if (!st && seeded) {
        rns_basis b;
        rlwe_basis_qp_special(&ctx->rlwe, &b, k->rlwe.max_level, swk_special(&k->rlwe));
        for (unsigned j = 0; j < k->rlwe.digits && !st; j++) st = expand_uniform(swk_part(&k->rlwe, j, 1), &b, k->rlwe.seed, j);
    }
    if (st) {
        ckks_switching_key_free(k);
        return st;
    }
    if (size) *size = r.size;
    if (digest) memcpy(digest, r.digest, DIGEST_BYTES);
    *out = k;
    return HECNN_OK;
}

hecnn_status ckks_switching_key_load(const ckks_context *ctx, ckks_switching_key **out, FILE *f)
{
    if (!out || !ctx || !f) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    return swk_load(ctx, out, f, UINT64_MAX, NULL, NULL);
}

/* ---- evaluation key sets ---- *
 * The set's digest covers its header, its count and its keys' digests (each key covers its own
 * bytes): every byte is hashed once, and the keys stay loadable one by one. */

size_t eval_keys_serialized_bytes(const ckks_eval_keys *keys, bool seeded)
{
    size_t b = HEADER_BYTES + META_EVAL_KEYS + DIGEST_BYTES;
    for (size_t i = 0; i < ckks_eval_keys_count(keys); i++) b += ckks_switching_key_bytes(ckks_eval_keys_at(keys, i), seeded);
    return b;
}

hecnn_status ckks_eval_keys_save(const ckks_eval_keys *keys, bool seeded, FILE *f)
{
    if (!keys || !f) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    const size_t count = ckks_eval_keys_count(keys);
    bool *use_seed = hecnn_calloc(count ? count : 1, sizeof *use_seed);
    if (!use_seed) return hecnn_fail(HECNN_ERR_NO_MEMORY, "key set");
    uint64_t total = HEADER_BYTES + META_EVAL_KEYS + DIGEST_BYTES;
    hecnn_status st = HECNN_OK;
    for (size_t i = 0; i < count && !st; i++) {
        const ckks_switching_key *k = ckks_eval_keys_at(keys, i);
        if (seeded) st = swk_can_seed(&use_seed[i], k);
        total += swk_size(k, use_seed[i]);
    }
    if (!st) {
        writer w;
        w_begin(&w, f);
        w_header(&w, OBJ_EVAL_KEYS, keys->ctx->param_id, total);
        uint8_t m[META_EVAL_KEYS];
        le_put64(m, count);
        w_bytes(&w, m, sizeof m);
        for (size_t i = 0; i < count && !w.st; i++) {
            uint8_t d[DIGEST_BYTES];
            w.st = swk_write(f, ckks_eval_keys_at(keys, i), use_seed[i], d);
            if (!w.st && EVP_DigestUpdate(w.md, d, sizeof d) != 1) w.st = hecnn_fail(HECNN_ERR_UNSUPPORTED, "SHA-256 failed");
        }
        st = w_end(&w, NULL);
    }
    hecnn_free(use_seed);
    return st;
}

/* The keys, read while the set's size field has bytes left before its digest; `count` is
 * compared once the set's digest matched. */
static hecnn_status eval_keys_read(reader *r, const ckks_context *ctx, ckks_eval_keys *keys, bool compact_galois, bool compact_relin)
{
    header h;
    hecnn_status st = r_header(r, &h, OBJ_EVAL_KEYS, ctx, UINT64_MAX);
    if (st) return st;
    uint8_t m[META_EVAL_KEYS];
    if ((st = r_bytes(r, m, sizeof m, "key set metadata"))) return st;
    const uint64_t count = le_get64(m);
    uint64_t i = 0;
    for (; r->left; i++) {
        ckks_switching_key *k = NULL;
        uint64_t size = 0;
        uint8_t d[DIGEST_BYTES];
        if (r->left < HEADER_BYTES + META_SWITCHING_KEY + DIGEST_BYTES)
            return hecnn_fail(HECNN_ERR_BAD_FORMAT, "key set size field ends inside key %llu", (unsigned long long)i);
        if ((st = swk_load(ctx, &k, r->f, r->left, &size, d))) {
            char detail[200];
            snprintf(detail, sizeof detail, "%s", hecnn_last_error_detail());
            return hecnn_fail(st, "key set, key %llu: %s", (unsigned long long)i, detail);
        }
        r->left -= size;
        if (EVP_DigestUpdate(r->md, d, sizeof d) != 1) st = hecnn_fail(HECNN_ERR_UNSUPPORTED, "SHA-256 failed");
        else if ((!k->rlwe.galois && keys->relin) || (k->rlwe.galois && ckks_eval_keys_galois(keys, k->rlwe.galois)))
            st = hecnn_fail(HECNN_ERR_BAD_FORMAT, "key set holds two keys for Galois element %llu", (unsigned long long)k->rlwe.galois);
        /* read from a seeded file, the a halves are the seed's expansion */
        else if ((k->rlwe.galois ? compact_galois : compact_relin) && swk_has_seed(&k->rlwe))
            st = rlwe_switching_key_compact_trusted(&k->rlwe);
        if (st) {
            ckks_switching_key_free(k);
            return st;
        }
        if ((st = ckks_eval_keys_add(keys, k))) return st;
    }
    if ((st = r_close(r, HECNN_OK))) return st;
    if (count != i)
        return hecnn_fail(HECNN_ERR_BAD_FORMAT, "key set count says %llu keys, it holds %llu", (unsigned long long)count,
                          (unsigned long long)i);
    return HECNN_OK;
}

/* compact_galois / compact_relin: compact those keys that carry a seed as soon as they are read. */
static hecnn_status eval_keys_load(const ckks_context *ctx, ckks_eval_keys **out, FILE *f, bool compact_galois,
                                   bool compact_relin)
{
    if (!out || !ctx || !f) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    reader r;
    hecnn_status st = r_open(&r, f, "key set");
    if (st) return st;
    ckks_eval_keys *keys = NULL;
    if (!(st = ckks_eval_keys_new(&keys, ctx))) st = eval_keys_read(&r, ctx, keys, compact_galois, compact_relin);
    EVP_MD_CTX_free(r.md); /* r_close ran on success; the keys' digests cannot be re-read after a failure */
    if (st) {
        ckks_eval_keys_free(keys);
        return st;
    }
    *out = keys;
    return HECNN_OK;
}

hecnn_status ckks_eval_keys_load(const ckks_context *ctx, ckks_eval_keys **out, FILE *f)
{
    return eval_keys_load(ctx, out, f, false, false);
}

hecnn_status ckks_eval_keys_load_compact(const ckks_context *ctx, ckks_eval_keys **out, FILE *f, bool include_relin)
{
    return eval_keys_load(ctx, out, f, true, include_relin);
}

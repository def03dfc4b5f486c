/* The model as the server uses it: spanned conv kernels, revolver tiles, biases in the revolved
 * layout; plaintexts (plain mode) or the model provider's ciphertexts (encrypted mode). */
#include <complex.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "ckks/internal.h"
#include "nn/mnist_internal.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/fileheader.h"
#include "util/le.h"

#define PREP_VERSION 2u /* 2: the header and the whole file checksummed; 1 refused by name */
static const file_format PREP_FORMAT = {.magic = "HECNNEMD", .magic_bytes = 8, .version_bytes = 4, .version = PREP_VERSION,
                                        .oldest = 1, .what = "an encrypted hecnn MNIST model", .name = "encrypted model format"};
#define PREP_HEADER 96u
#define PREP_DIGEST 32u

static size_t conv_index(const hecnn_mnist_prepared *p, size_t q, size_t a, size_t b, size_t d)
{
    return ((q * 3 + a) * 3 + b) * p->deltas + d;
}

static size_t n_fc1(const hecnn_mnist_net *n) { return n->G1 * n->n_a; }
static size_t n_fc2(const hecnn_mnist_net *n) { return n->G2 * n->L2 * n->n_x2; }

static hecnn_status prep_alloc(hecnn_mnist_prepared **out, const hecnn_mnist_net *n, hecnn_mnist_mode mode)
{
    hecnn_mnist_prepared *p = hecnn_calloc(1, sizeof *p);
    if (!p) return hecnn_fail(HECNN_ERR_NO_MEMORY, "prepared model");
    p->net = n;
    p->mode = mode;
    p->deltas = mnist_conv_deltas(n);
    p->n_conv = HECNN_MNIST_KERNELS * 9 * p->deltas;
    const bool enc = mode == HECNN_MNIST_ENCRYPTED_MODEL;
    bool ok = true;
    if (enc) {
        ok &= (p->conv_ct = hecnn_calloc(p->n_conv, sizeof *p->conv_ct)) != NULL;
        ok &= (p->conv_bias_ct = hecnn_calloc(HECNN_MNIST_KERNELS, sizeof *p->conv_bias_ct)) != NULL;
        ok &= (p->fc1_ct = hecnn_calloc(n_fc1(n), sizeof *p->fc1_ct)) != NULL;
        ok &= (p->fc1_bias_ct = hecnn_calloc(n->n_x2, sizeof *p->fc1_bias_ct)) != NULL;
        ok &= (p->fc2_ct = hecnn_calloc(n_fc2(n), sizeof *p->fc2_ct)) != NULL;
    } else {
        ok &= (p->conv_pt = hecnn_calloc(p->n_conv, sizeof *p->conv_pt)) != NULL;
        ok &= (p->fc1_bias_pt = hecnn_calloc(n->n_x2, sizeof *p->fc1_bias_pt)) != NULL;
        ok &= (p->fc2_pt = hecnn_calloc(n_fc2(n), sizeof *p->fc2_pt)) != NULL;
    }
    *out = p;
    return ok ? HECNN_OK : hecnn_fail(HECNN_ERR_NO_MEMORY, "prepared model");
}

void hecnn_mnist_prepared_free(hecnn_mnist_prepared *p)
{
    if (!p) return;
    const hecnn_mnist_net *n = p->net;
    for (size_t i = 0; i < p->n_conv; i++) {
        if (p->conv_pt) ckks_plaintext_free(p->conv_pt[i]);
        if (p->conv_ct) ckks_ciphertext_free(p->conv_ct[i]);
    }
    for (size_t i = 0; p->conv_bias_ct && i < HECNN_MNIST_KERNELS; i++) ckks_ciphertext_free(p->conv_bias_ct[i]);
    for (size_t i = 0; p->fc1_ct && i < n_fc1(n); i++) ckks_ciphertext_free(p->fc1_ct[i]);
    for (size_t i = 0; p->fc1_giant && i < n_fc1(n) * n->nhp; i++) ckks_ciphertext_free(p->fc1_giant[i]);
    hecnn_free(p->fc1_giant);
    for (size_t i = 0; i < n->n_x2; i++) {
        if (p->fc1_bias_pt) ckks_plaintext_free(p->fc1_bias_pt[i]);
        if (p->fc1_bias_ct) ckks_ciphertext_free(p->fc1_bias_ct[i]);
    }
    for (size_t i = 0; i < n_fc2(n); i++) {
        if (p->fc2_pt) ckks_plaintext_free(p->fc2_pt[i]);
        if (p->fc2_ct) ckks_ciphertext_free(p->fc2_ct[i]);
    }
    hecnn_free(p->conv_pt);
    hecnn_free(p->conv_ct);
    hecnn_free(p->conv_bias_ct);
    hecnn_free(p->fc1_ct);
    hecnn_free(p->fc1_bias_pt);
    hecnn_free(p->fc1_bias_ct);
    hecnn_free(p->fc2_pt);
    hecnn_free(p->fc2_ct);
    ckks_plaintext_free(p->fc2_bias_pt);
    ckks_ciphertext_free(p->fc2_bias_ct);
    ckks_plaintext_free(p->mask0_fc1);
    ckks_plaintext_free(p->mask0_fc2);
    hecnn_mnist_model_free(p->model);
    hecnn_free(p);
}

hecnn_status hecnn_mnist_prepared_expand(hecnn_mnist_prepared *p, const ckks_evaluator *ev)
{
    if (!p || !ev) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    if (p->mode != HECNN_MNIST_ENCRYPTED_MODEL || p->fc1_giant) return HECNN_OK;
    const hecnn_mnist_net *n = p->net;
    const size_t count = n_fc1(n), nhp = n->nhp;
    ckks_ciphertext **g = hecnn_calloc(count * nhp, sizeof *g);
    if (!g) return hecnn_fail(HECNN_ERR_NO_MEMORY, "giant steps");
    int steps[64];
    for (size_t h = 0; h < nhp && h < 64; h++) steps[h] = mnist_step(n, (long)(h * n->nb1 * n->w));
    hecnn_status st = HECNN_OK;
    for (size_t i = 0; !st && i < count * nhp; i++) st = ckks_ciphertext_new(&g[i], n->ctx);
#pragma omp parallel for schedule(dynamic) num_threads(omp_get_max_threads())
    for (size_t i = 0; i < count; i++) {
        if (st) continue;
        hecnn_status s2 = ckks_rotate_hoisted(ev, g + i * nhp, p->fc1_ct[i], steps, nhp);
        if (s2) {
#pragma omp critical(mnist_expand_err)
            st = s2;
        }
    }
    if (st) {
        for (size_t i = 0; i < count * nhp; i++) ckks_ciphertext_free(g[i]);
        hecnn_free(g);
        return st;
    }
    p->fc1_giant = g;
    return HECNN_OK;
}

size_t hecnn_mnist_prepared_ciphertexts(const hecnn_mnist_prepared *p)
{
    if (!p || p->mode != HECNN_MNIST_ENCRYPTED_MODEL) return 0;
    size_t c = HECNN_MNIST_KERNELS + n_fc1(p->net) + p->net->n_x2 + n_fc2(p->net) + 1;
    for (size_t i = 0; i < p->n_conv; i++) c += p->conv_ct[i] != NULL;
    return c;
}

/* Public column-0 masks (both modes). */
static hecnn_status make_masks(hecnn_mnist_prepared *p)
{
    const hecnn_mnist_net *n = p->net;
    double *v = hecnn_calloc(n->S, sizeof *v);
    if (!v) return hecnn_fail(HECNN_ERR_NO_MEMORY, "mask");
    /* FC1's mask also halves: the halves of its complex accumulators are then z + conj(z) and
     * -i (z - conj(z)) exactly */
    for (size_t i = 0; i < n->m; i++) v[i * n->w] = 0.5;
    hecnn_status st = vr_encode_new(n->ctx, &p->mask0_fc1, v, n->lv_act1 - 1, vr_q(n->ctx, n->lv_act1 - 1));
    for (size_t i = 0; i < n->m; i++) v[i * n->w] = 1.0;
    if (!st) st = vr_encode_new(n->ctx, &p->mask0_fc2, v, n->lv_act2 - 1, vr_q(n->ctx, n->lv_act2 - 1));
    hecnn_free(v);
    return st;
}

/* One item of the model: S values, encoded at (level, scale), kept as a plaintext or encrypted. */
typedef struct item {
    ckks_plaintext **pt;
    ckks_ciphertext **ct;
    unsigned level;
    double scale;
    int kind; /* 0 conv, 1 conv bias, 2 fc1 tile, 3 fc1 bias, 4 fc2 tile, 5 fc2 bias */
    size_t a, b, c, d;
} item;

static void item_values(const hecnn_mnist_net *n, const hecnn_mnist_model *mdl, const item *it, double *v, double complex *cv)
{
    if (it->kind == 2) {
        mnist_fc1_tile_c(n, mdl, it->a, it->b, 0, cv, v);
        return;
    }
    switch (it->kind) {
    case 0: mnist_conv_mask(n, it->b, it->c, it->d, mdl->conv_w[it->a][it->b][it->c], v); break;
    case 1:
        memset(v, 0, n->S * sizeof *v);
        for (size_t i = 0; i < n->m; i++)
            for (size_t c = 0; c < n->w; c++)
                if (c % 32 < HECNN_MNIST_CONV_SIDE) v[i * n->w + c] = mdl->conv_b[it->a];
        break;
    case 3: mnist_fc1_bias(n, mdl, it->a, v); break;
    case 4: mnist_fc2_tile(n, mdl, it->a, it->b, it->c, v); break;
    default: mnist_fc2_bias(n, mdl, v); break;
    }
}

static hecnn_status build(hecnn_mnist_prepared *p, const hecnn_mnist_model *mdl, const ckks_public_key *pk)
{
    const hecnn_mnist_net *n = p->net;
    const bool enc = pk != NULL;
    const size_t cap = p->n_conv + HECNN_MNIST_KERNELS + n_fc1(n) + n->n_x2 + n_fc2(n) + 1;
    item *items = hecnn_calloc(cap, sizeof *items);
    if (!items) return hecnn_fail(HECNN_ERR_NO_MEMORY, "items");
    size_t k = 0;
    for (size_t q = 0; q < HECNN_MNIST_KERNELS; q++)
        for (size_t a = 0; a < 3; a++)
            for (size_t b = 0; b < 3; b++)
                for (size_t d = 0; d < p->deltas; d++) {
                    if (!mnist_conv_mask(n, a, b, d, 1, NULL)) continue;
                    const size_t idx = conv_index(p, q, a, b, d);
                    items[k++] = (item){.pt = enc ? NULL : &p->conv_pt[idx], .ct = enc ? &p->conv_ct[idx] : NULL,
                                        .level = n->lv_in, .scale = vr_q(n->ctx, n->lv_in), .kind = 0, .a = q, .b = a, .c = b, .d = d};
                }
    if (enc) {
        for (size_t q = 0; q < HECNN_MNIST_KERNELS; q++)
            items[k++] = (item){.ct = &p->conv_bias_ct[q], .level = n->lv_conv, .scale = n->scale, .kind = 1, .a = q};
        for (size_t g = 0; g < n->G1; g++)
            for (size_t beta = 0; beta < n->n_a; beta++)
                items[k++] = (item){.ct = &p->fc1_ct[g * n->n_a + beta], .level = n->lv_act1, .scale = vr_q(n->ctx, n->lv_act1),
                                    .kind = 2, .a = g, .b = beta};
    }
    for (size_t blk = 0; blk < n->n_x2; blk++)
        items[k++] = (item){.pt = enc ? NULL : &p->fc1_bias_pt[blk], .ct = enc ? &p->fc1_bias_ct[blk] : NULL, .level = n->lv_fc1,
                            .scale = n->scale, .kind = 3, .a = blk};
    for (size_t g = 0; g < n->G2; g++)
        for (size_t kk = 0; kk < n->L2; kk++)
            for (size_t beta = 0; beta < n->n_x2; beta++) {
                const size_t idx = (g * n->L2 + kk) * n->n_x2 + beta;
                items[k++] = (item){.pt = enc ? NULL : &p->fc2_pt[idx], .ct = enc ? &p->fc2_ct[idx] : NULL, .level = n->lv_act2,
                                    .scale = vr_q(n->ctx, n->lv_act2), .kind = 4, .a = g, .b = kk, .c = beta};
            }
    items[k++] = (item){.pt = enc ? NULL : &p->fc2_bias_pt, .ct = enc ? &p->fc2_bias_ct : NULL, .level = n->lv_out,
                        .scale = n->scale, .kind = 5};
    hecnn_status st = HECNN_OK;
#pragma omp parallel num_threads(omp_get_max_threads())
    {
        double *v = hecnn_alloc(n->S * sizeof *v);
        double complex *cv = hecnn_alloc(n->S * sizeof *cv);
        ckks_plaintext *pt = NULL;
        hecnn_status s2 = v && cv ? ckks_plaintext_new(&pt, n->ctx) : hecnn_fail(HECNN_ERR_NO_MEMORY, "values");
#pragma omp for schedule(dynamic)
        for (size_t i = 0; i < k; i++) {
            if (s2) continue;
            item_values(n, mdl, &items[i], v, cv);
            if (enc) {
                s2 = items[i].kind == 2 ? ckks_encode(n->ctx, pt, cv, n->S, n->S, items[i].level, items[i].scale)
                                        : ckks_encode_real(n->ctx, pt, v, n->S, n->S, items[i].level, items[i].scale);
                if (!s2) s2 = ckks_ciphertext_new(items[i].ct, n->ctx);
                if (!s2) s2 = ckks_encrypt_pk(n->ctx, *items[i].ct, pt, pk);
            } else {
                s2 = vr_encode_new(n->ctx, items[i].pt, v, items[i].level, items[i].scale);
            }
        }
        if (s2) {
#pragma omp critical(mnist_prep_err)
            st = s2;
        }
        ckks_plaintext_free(pt);
        hecnn_free(v);
        hecnn_free(cv);
    }
    hecnn_free(items);
    return st;
}

hecnn_status hecnn_mnist_prepare_plain(hecnn_mnist_prepared **out, const hecnn_mnist_net *n, const hecnn_mnist_model *mdl)
{
    if (!out || !n || !mdl) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    if (n->mode != HECNN_MNIST_PLAIN_MODEL) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "the plan is for an encrypted model");
    hecnn_mnist_prepared *p;
    hecnn_status st = prep_alloc(&p, n, HECNN_MNIST_PLAIN_MODEL);
    if (!st && !(p->model = hecnn_calloc(1, sizeof *p->model))) st = hecnn_fail(HECNN_ERR_NO_MEMORY, "model");
    if (!st) {
        memcpy(p->model, mdl, sizeof *mdl);
        memcpy(p->act1, mdl->act1, sizeof p->act1);
        memcpy(p->act2, mdl->act2, sizeof p->act2);
        st = make_masks(p);
    }
    if (!st) st = build(p, mdl, NULL);
    if (st) {
        hecnn_mnist_prepared_free(p);
        return st;
    }
    *out = p;
    return HECNN_OK;
}

hecnn_status hecnn_mnist_encrypt_model(hecnn_mnist_prepared **out, const hecnn_mnist_net *n, const hecnn_mnist_model *mdl,
                                       const ckks_public_key *pk)
{
    if (!out || !n || !mdl || !pk) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    if (n->mode != HECNN_MNIST_ENCRYPTED_MODEL) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "the plan is for a plaintext model");
    hecnn_mnist_prepared *p;
    hecnn_status st = prep_alloc(&p, n, HECNN_MNIST_ENCRYPTED_MODEL);
    if (!st) {
        memcpy(p->act1, mdl->act1, sizeof p->act1);
        memcpy(p->act2, mdl->act2, sizeof p->act2);
        st = make_masks(p);
    }
    if (!st) st = build(p, mdl, pk);
    if (st) {
        hecnn_mnist_prepared_free(p);
        return st;
    }
    *out = p;
    return HECNN_OK;
}

/* ---- the encrypted model file ------------------------------------------------------------------ *
 * Header (96 bytes): "HECNNEMD", u32 version, u32 width, u64 parameter id, u32 ciphertext count,
 * u32 conv deltas, 8 x f64 activation coefficients; then the SHA-256 of the header; then the
 * ciphertexts (format objects, each ending with its own SHA-256) in a fixed order (conv kernels
 * that exist, conv biases, FC1 tiles, FC1 biases, FC2 tiles, FC2 bias); then the SHA-256 of the
 * header's digest followed by the ciphertexts' digests, which binds every byte, their order and
 * number. The header is verified before any field of it is used, each ciphertext before it is
 * kept, and the whole before the model is returned. */


/* A fresh SHA-256; NULL when OpenSSL cannot give one. */
static EVP_MD_CTX *sha256_new(void)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        md = NULL;
    }
    return md;
}

static bool sha256_final(EVP_MD_CTX *md, uint8_t out[PREP_DIGEST])
{
    unsigned len = 0;
    return EVP_DigestFinal_ex(md, out, &len) == 1 && len == PREP_DIGEST;
}

/* The ciphertext slots of a prepared encrypted model, in file order, with their expected levels. */
static size_t prep_slots(hecnn_mnist_prepared *p, ckks_ciphertext ***slots, unsigned *levels, double *scales)
{
    const hecnn_mnist_net *n = p->net;
    size_t k = 0;
    for (size_t q = 0; q < HECNN_MNIST_KERNELS; q++)
        for (size_t a = 0; a < 3; a++)
            for (size_t b = 0; b < 3; b++)
                for (size_t d = 0; d < p->deltas; d++)
                    if (mnist_conv_mask(n, a, b, d, 1, NULL)) {
                        slots[k] = &p->conv_ct[conv_index(p, q, a, b, d)];
                        levels[k] = n->lv_in;
                        scales[k++] = vr_q(n->ctx, n->lv_in);
                    }
    for (size_t q = 0; q < HECNN_MNIST_KERNELS; q++) slots[k] = &p->conv_bias_ct[q], levels[k] = n->lv_conv, scales[k++] = n->scale;
    for (size_t i = 0; i < n_fc1(n); i++)
        slots[k] = &p->fc1_ct[i], levels[k] = n->lv_act1, scales[k++] = vr_q(n->ctx, n->lv_act1);
    for (size_t i = 0; i < n->n_x2; i++) slots[k] = &p->fc1_bias_ct[i], levels[k] = n->lv_fc1, scales[k++] = n->scale;
    for (size_t i = 0; i < n_fc2(n); i++)
        slots[k] = &p->fc2_ct[i], levels[k] = n->lv_act2, scales[k++] = vr_q(n->ctx, n->lv_act2);
    slots[k] = &p->fc2_bias_ct, levels[k] = n->lv_out, scales[k++] = n->scale;
    return k;
}

static size_t prep_slot_cap(const hecnn_mnist_prepared *p)
{
    return p->n_conv + HECNN_MNIST_KERNELS + n_fc1(p->net) + p->net->n_x2 + n_fc2(p->net) + 1;
}

hecnn_status hecnn_mnist_prepared_save(const hecnn_mnist_prepared *cp, FILE *f)
{
    if (!cp || !f) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    if (cp->mode != HECNN_MNIST_ENCRYPTED_MODEL) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "only an encrypted model is saved");
    hecnn_mnist_prepared *p = (hecnn_mnist_prepared *)cp;
    const size_t cap = prep_slot_cap(p);
    ckks_ciphertext ***slots = hecnn_calloc(cap, sizeof *slots);
    unsigned *levels = hecnn_calloc(cap, sizeof *levels);
    double *scales = hecnn_calloc(cap, sizeof *scales);
    EVP_MD_CTX *md = sha256_new();
    hecnn_status st = slots && levels && scales ? HECNN_OK : hecnn_fail(HECNN_ERR_NO_MEMORY, "slots");
    if (!st && !md) st = hecnn_fail(HECNN_ERR_UNSUPPORTED, "SHA-256 unavailable");
    size_t count = st ? 0 : prep_slots(p, slots, levels, scales);
    uint8_t h[PREP_HEADER + PREP_DIGEST] = {0}, d[PREP_DIGEST];
    if (!st) {
        file_header_put(h, &PREP_FORMAT);
        le_put32(h + 12, (uint32_t)p->net->w);
        le_put64(h + 16, ckks_context_param_id(p->net->ctx));
        le_put32(h + 24, (uint32_t)count);
        le_put32(h + 28, (uint32_t)p->deltas);
        for (int i = 0; i < 8; i++) {
            uint64_t u;
            memcpy(&u, i < 4 ? &p->act1[i] : &p->act2[i - 4], 8);
            le_put64(h + 32 + 8 * i, u);
        }
        if (EVP_Digest(h, PREP_HEADER, h + PREP_HEADER, NULL, EVP_sha256(), NULL) != 1 ||
            EVP_DigestUpdate(md, h + PREP_HEADER, PREP_DIGEST) != 1)
            st = hecnn_fail(HECNN_ERR_UNSUPPORTED, "SHA-256 failed");
        else if (fwrite(h, 1, sizeof h, f) != sizeof h)
            st = hecnn_fail(HECNN_ERR_IO, "cannot write the encrypted model");
    }
    for (size_t i = 0; !st && i < count; i++) {
        st = ckks_ciphertext_save_digest(*slots[i], f, d);
        if (!st && EVP_DigestUpdate(md, d, sizeof d) != 1) st = hecnn_fail(HECNN_ERR_UNSUPPORTED, "SHA-256 failed");
    }
    if (!st && !sha256_final(md, d)) st = hecnn_fail(HECNN_ERR_UNSUPPORTED, "SHA-256 failed");
    if (!st && fwrite(d, 1, sizeof d, f) != sizeof d) st = hecnn_fail(HECNN_ERR_IO, "cannot write the encrypted model");
    EVP_MD_CTX_free(md);
    hecnn_free(slots);
    hecnn_free(levels);
    hecnn_free(scales);
    return st;
}

hecnn_status hecnn_mnist_prepared_load(hecnn_mnist_prepared **out, const hecnn_mnist_net *n, FILE *f)
{
    if (!out || !n || !f) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    if (n->mode != HECNN_MNIST_ENCRYPTED_MODEL) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "the plan is for a plaintext model");
    uint8_t h[PREP_HEADER + PREP_DIGEST], d[PREP_DIGEST];
    const size_t got = fread(h, 1, sizeof h, f);
    if (ferror(f)) return hecnn_fail(HECNN_ERR_IO, "cannot read the encrypted model");
    const hecnn_status hst = file_header_check(h, got, &PREP_FORMAT, " (checksummed); encrypt the model again");
    if (hst) return hst;
    if (got != sizeof h) return hecnn_fail(HECNN_ERR_BAD_FORMAT, "encrypted model truncated in its header");
    /* the header's own digest before any field is used: damage there reads as damage */
    if (EVP_Digest(h, PREP_HEADER, d, NULL, EVP_sha256(), NULL) != 1) return hecnn_fail(HECNN_ERR_UNSUPPORTED, "SHA-256 failed");
    if (CRYPTO_memcmp(d, h + PREP_HEADER, PREP_DIGEST))
        return hecnn_fail(HECNN_ERR_BAD_FORMAT, "encrypted model checksum mismatch in its header: the file is damaged or was altered");
    const uint32_t width = le_get32(h + 12), count = le_get32(h + 24), deltas = le_get32(h + 28);
    const uint64_t pid = le_get64(h + 16);
    uint64_t act[8];
    for (int i = 0; i < 8; i++) act[i] = le_get64(h + 32 + 8 * i);
    if (pid != ckks_context_param_id(n->ctx))
        return hecnn_fail(HECNN_ERR_PARAMS_MISMATCH, "the model was encrypted under other CKKS parameters");
    if (width != n->w)
        return hecnn_fail(HECNN_ERR_BAD_FORMAT, "the model was encrypted for rows of %u slots, the batch uses %zu", width, n->w);
    EVP_MD_CTX *md = sha256_new();
    if (!md || EVP_DigestUpdate(md, d, sizeof d) != 1) {
        EVP_MD_CTX_free(md);
        return hecnn_fail(HECNN_ERR_UNSUPPORTED, "SHA-256 unavailable");
    }
    hecnn_mnist_prepared *p;
    hecnn_status st = prep_alloc(&p, n, HECNN_MNIST_ENCRYPTED_MODEL);
    if (!st && deltas != p->deltas) st = hecnn_fail(HECNN_ERR_BAD_FORMAT, "conv layout mismatch");
    for (int i = 0; !st && i < 8; i++) {
        double v;
        memcpy(&v, &act[i], 8);
        if (!isfinite(v) || fabs(v) > 1e6) st = hecnn_fail(HECNN_ERR_BAD_FORMAT, "activation coefficient %g", v);
        (i < 4 ? p->act1 : p->act2)[i % 4] = v;
    }
    const size_t cap = prep_slot_cap(p);
    ckks_ciphertext ***slots = hecnn_calloc(cap, sizeof *slots);
    unsigned *levels = hecnn_calloc(cap, sizeof *levels);
    double *scales = hecnn_calloc(cap, sizeof *scales);
    if (!st && (!slots || !levels || !scales)) st = hecnn_fail(HECNN_ERR_NO_MEMORY, "slots");
    const size_t want = st ? 0 : prep_slots(p, slots, levels, scales);
    if (!st && count != want) st = hecnn_fail(HECNN_ERR_BAD_FORMAT, "the model holds %u ciphertexts, this layout needs %zu", count, want);
    for (size_t i = 0; !st && i < want; i++) {
        st = ckks_ciphertext_new(slots[i], n->ctx);
        if (!st) st = ckks_ciphertext_load_digest(n->ctx, *slots[i], f, d);
        if (!st && EVP_DigestUpdate(md, d, sizeof d) != 1) st = hecnn_fail(HECNN_ERR_UNSUPPORTED, "SHA-256 failed");
        if (st == HECNN_ERR_BAD_FORMAT || st == HECNN_ERR_IO) {
            char detail[200];
            snprintf(detail, sizeof detail, "%s", hecnn_last_error_detail());
            st = hecnn_fail(HECNN_ERR_BAD_FORMAT, "encrypted model ciphertext %zu of %zu: %s", i, want, detail);
        }
        if (!st && (ckks_ciphertext_level(*slots[i]) != levels[i] || ckks_ciphertext_degree(*slots[i]) != 1 ||
                    fabs(ckks_ciphertext_scale(*slots[i]) / scales[i] - 1) > 1e-9))
            st = hecnn_fail(HECNN_ERR_BAD_FORMAT, "encrypted model ciphertext %zu has level %u / scale 2^%.3f, expected %u / 2^%.3f", i,
                            ckks_ciphertext_level(*slots[i]), log2(ckks_ciphertext_scale(*slots[i])), levels[i], log2(scales[i]));
    }
    if (!st) { /* the whole: the ciphertexts are the ones written, in their order */
        uint8_t stored[PREP_DIGEST];
        if (fread(stored, 1, sizeof stored, f) != sizeof stored)
            st = ferror(f) ? hecnn_fail(HECNN_ERR_IO, "cannot read the encrypted model")
                           : hecnn_fail(HECNN_ERR_BAD_FORMAT, "encrypted model truncated in its checksum");
        else if (!sha256_final(md, d))
            st = hecnn_fail(HECNN_ERR_UNSUPPORTED, "SHA-256 failed");
        else if (CRYPTO_memcmp(d, stored, sizeof d))
            st = hecnn_fail(HECNN_ERR_BAD_FORMAT, "encrypted model checksum mismatch: the file is damaged or was altered");
    }
    EVP_MD_CTX_free(md);
    if (!st) st = make_masks(p);
    hecnn_free(slots);
    hecnn_free(levels);
    hecnn_free(scales);
    if (st) {
        hecnn_mnist_prepared_free(p);
        return st;
    }
    *out = p;
    return HECNN_OK;
}

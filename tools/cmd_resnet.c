/* Graph models in a plan's packing (batched or single): data owner (model keygen, encrypt,
 * decrypt), server (model infer), and bench resnet, which runs the three in one process. See cmd_resnet.h; the files are
 * in docs/FORMATS.md ("Model key directory", "Plan batch file", "Model owner record"). */
#include "cmd_resnet.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "hecnn/hecnn.h"
#include "hecnn/graph.h"
#include "hecnn/plan.h"
#include "util/fileheader.h"
#include "util_bench.h"
#include "util_cifar.h"
#include "util_cli.h"
#include "util_json.h"

#define SERVER_DIR "server"
#define PLAN_FILE "plan"
#define BOOT_KEYS_FILE "boot.keys"
#define NET_KEYS_FILE "network.keys"
#define RECORD_SUFFIX ".record"
#define RECORD_KEY_FILE "images.record"
#define TEXT_MAX_BYTES 4096
#define MAX_BATCH (1u << 24) /* images per run: far beyond any slot count */

static double now_s(void) { return bench_seconds(CLOCK_MONOTONIC); }

/* ---- presets ------------------------------------------------------------------------------ */

/* n16: the 128-bit N = 2^16 full-slot bootstrapping chain; test: the insecure N = 2^12 chain with
 * six residual levels (tests, quick trials). */
static int preset_by_name(const char *s, ckks_boot_preset *out)
{
    if (!strcmp(s, "n16")) *out = CKKS_BOOT_N16_FULL;
    else if (!strcmp(s, "test")) *out = CKKS_BOOT_TEST_N12_DEEP;
    else {
        cli_error("--preset %.32s: choose n16 (128-bit, N = 2^16) or test (insecure, N = 2^12)", s);
        return -1;
    }
    return 0;
}

static const char *preset_name(ckks_boot_preset p) { return p == CKKS_BOOT_TEST_N12_DEEP ? "test" : "n16"; }

/* The context of a preset's literal; only the test preset may be insecure. */
static int preset_context(ckks_boot_preset p, ckks_params_literal *lit, ckks_context **ctx)
{
    lit->allow_insecure = p == CKKS_BOOT_TEST_N12_DEEP;
    hecnn_status st = ckks_context_new(ctx, lit);
    if (st) {
        cli_status_error(st, "cannot build the %s parameters", preset_name(p));
        return -1;
    }
    if (p == CKKS_BOOT_TEST_N12_DEEP)
        fprintf(stderr, "%s: note: preset test: insecure parameters (N = 2^12), for tests only\n", cli_command_prefix());
    return 0;
}

/* ---- small text records ("key value" lines after a magic line) ---------------------------- */

#define KV_MAX 8
#define KV_VALUE 80

/* Read `path` (at most TEXT_MAX_BYTES): its first line must be `magic`, then exactly the `n` keys
 * in order, each "key value" (value without spaces, < KV_VALUE bytes). 0 on success, else reported. */
/* keys[required..n-1] may be absent at the end (their values then read ""). */
static int kv_read(const char *path, const char *what, const char *magic, const char *const *keys, size_t n,
                   size_t required, char vals[][KV_VALUE])
{
    for (size_t i = required; i < n; i++) vals[i][0] = 0;
    cli_input in;
    if (cli_input_open(&in, path, false)) return -1;
    char buf[TEXT_MAX_BYTES + 1];
    const size_t got = fread(buf, 1, TEXT_MAX_BYTES + 1, in.f);
    const bool err = ferror(in.f) != 0;
    cli_input_close(&in);
    if (err) {
        cli_error("cannot read %s '%s': %s: read error", what, path, hecnn_status_name(HECNN_ERR_IO));
        return -1;
    }
    if (got > TEXT_MAX_BYTES || memchr(buf, 0, got)) {
        cli_error("'%s' is not a %s (larger than %d bytes, or binary)", path, what, TEXT_MAX_BYTES);
        return -1;
    }
    buf[got] = 0;
    char *line = buf;
    for (size_t i = 0; i <= n; i++) {
        if (i > required && !*line) break;
        char *nl = strchr(line, '\n');
        if (!nl) {
            cli_error("%s '%s' is truncated: %s missing", what, path, i ? keys[i - 1] : "its first line");
            return -1;
        }
        *nl = 0;
        if (i == 0) {
            if (strcmp(line, magic)) {
                cli_error("'%s' is not a %s: its first line is not '%s'", path, what, magic);
                return -1;
            }
        } else {
            const size_t klen = strlen(keys[i - 1]);
            const bool key_ok = !strncmp(line, keys[i - 1], klen) && line[klen] == ' ';
            const char *v = key_ok ? line + klen + 1 : "";
            if (!key_ok || !*v || strchr(v, ' ') || strlen(v) >= KV_VALUE) {
                cli_error("%s '%s': line %zu should be '%s VALUE', got '%.40s'", what, path, i + 1, keys[i - 1], line);
                return -1;
            }
            strcpy(vals[i - 1], v);
        }
        line = nl + 1;
    }
    if (*line) {
        cli_error("%s '%s': unexpected text after %s", what, path, keys[n - 1]);
        return -1;
    }
    return 0;
}

static int hex_nibble(char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; }

static bool parse_hex(const char *s, uint8_t *out, size_t bytes)
{
    if (strlen(s) != 2 * bytes) return false;
    for (size_t i = 0; i < bytes; i++) {
        const int hi = hex_nibble(s[2 * i]), lo = hex_nibble(s[2 * i + 1]);
        if (hi < 0 || lo < 0) return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static void hex(const uint8_t *d, size_t bytes, char *out)
{
    for (size_t i = 0; i < bytes; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static bool parse_u64_hex(const char *s, uint64_t *out)
{
    uint8_t b[8];
    if (!parse_hex(s, b, 8)) return false;
    *out = 0;
    for (int i = 0; i < 8; i++) *out = *out << 8 | b[i];
    return true;
}

static bool parse_size(const char *s, size_t lo, size_t hi, size_t *out)
{
    long v;
    if (!cli_parse_long(s, (long)lo, (long)hi, &v)) return false;
    *out = (size_t)v;
    return true;
}

/* ---- the plan record (DIR/plan, DIR/server/plan) ------------------------------------------- */

#define PLAN_MAGIC "hecnn-plan-record 1"
/* "layout" is optional (records before the single layout have none: batched); written for single only.
 * "boot-log-slots" is optional (absent: the preset's); written where the plan bootstraps fewer slots. */
static const char *const plan_keys[] = {"preset", "parameter-id", "model-sha256", "batch", "grid", "layout", "boot-log-slots"};
enum { PLAN_FIELDS = sizeof plan_keys / sizeof *plan_keys, PLAN_REQUIRED = 5 };

typedef struct plan_record {
    ckks_boot_preset preset;
    uint64_t param_id;
    uint8_t model[32];
    size_t batch;
    uint32_t grid;
    hecnn_plan_layout layout; /* AUTO until the plan chose */
    unsigned boot_log_slots;  /* the bootstrapper's slots (0 until chosen: hecnn_plan_boot_slots) */
} plan_record;

/* --layout NAME: single or batched ("" or auto: the plan's choice). */
static int layout_by_name(const char *s, hecnn_plan_layout *out)
{
    if (!*s || !strcmp(s, "auto")) *out = HECNN_LAYOUT_AUTO;
    else if (!strcmp(s, "single")) *out = HECNN_LAYOUT_SINGLE;
    else if (!strcmp(s, "batched")) *out = HECNN_LAYOUT_BATCHED;
    else {
        cli_error("--layout %.32s: choose single (one image a ciphertext) or batched", s);
        return -1;
    }
    return 0;
}

static void plan_record_write(FILE *f, const plan_record *r)
{
    char d[65];
    hex(r->model, 32, d);
    fprintf(f, "%s\npreset %s\nparameter-id %016llx\nmodel-sha256 %s\nbatch %zu\ngrid %u\n", PLAN_MAGIC, preset_name(r->preset),
            (unsigned long long)r->param_id, d, r->batch, r->grid);
    if (r->layout == HECNN_LAYOUT_SINGLE) fprintf(f, "layout %s\n", hecnn_plan_layout_name(r->layout));
    ckks_params_literal lit;
    ckks_boot_params bp;
    if (!ckks_boot_preset_params(&lit, &bp, r->preset) && r->boot_log_slots != bp.log_slots)
        fprintf(f, "boot-log-slots %u\n", r->boot_log_slots);
}

static int plan_record_read(const char *path, plan_record *r)
{
    char v[KV_MAX][KV_VALUE];
    if (kv_read(path, "plan record", PLAN_MAGIC, plan_keys, PLAN_FIELDS, PLAN_REQUIRED, v)) return -1;
    size_t grid = 0;
    const char *bad = NULL;
    if (!strcmp(v[0], "n16")) r->preset = CKKS_BOOT_N16_FULL;
    else if (!strcmp(v[0], "test")) r->preset = CKKS_BOOT_TEST_N12_DEEP;
    else bad = plan_keys[0];
    if (!bad && !parse_u64_hex(v[1], &r->param_id)) bad = plan_keys[1];
    if (!bad && !parse_hex(v[2], r->model, 32)) bad = plan_keys[2];
    if (!bad && !parse_size(v[3], 1, MAX_BATCH, &r->batch)) bad = plan_keys[3];
    if (!bad && !parse_size(v[4], 1, HECNN_GRAPH_MAX_DIM, &grid)) bad = plan_keys[4];
    if (!bad && (!*v[5] || !strcmp(v[5], "batched"))) r->layout = HECNN_LAYOUT_BATCHED;
    else if (!bad && !strcmp(v[5], "single")) r->layout = HECNN_LAYOUT_SINGLE;
    else if (!bad) bad = plan_keys[5];
    size_t log_slots = 0; /* absent: the preset's (setup_from_dir) */
    if (!bad && *v[6] && !parse_size(v[6], 1, 20, &log_slots)) bad = plan_keys[6];
    r->boot_log_slots = (unsigned)log_slots;
    if (bad) {
        cli_error("plan record '%s': bad %s", path, bad);
        return -1;
    }
    r->grid = (uint32_t)grid;
    return 0;
}

/* ---- model files -------------------------------------------------------------------------- */

static hecnn_status load_fn(void *arg, FILE *f) { return hecnn_graph_load(arg, f); }

static int load_model(const char *path, hecnn_graph **g, uint8_t digest[32])
{
    *g = NULL;
    if (cli_read_object(path, "model", false, true, load_fn, g)) {
        hecnn_graph_free(*g);
        *g = NULL;
        return -1;
    }
    hecnn_status st = hecnn_graph_digest(*g, digest);
    if (st) {
        cli_status_error(st, "cannot hash model '%s'", path);
        hecnn_graph_free(*g);
        *g = NULL;
        return -1;
    }
    return 0;
}

/* The model must take CIFAR images; its output size picks the data set (10: CIFAR-10, 100:
 * CIFAR-100 fine labels, 20: coarse). */
static int cifar_model(const hecnn_graph *g, const char *path, size_t *classes, cifar_kind *kind, bool *coarse)
{
    const hecnn_node *in = hecnn_graph_node(g, 0);
    if (!in || in->c != CIFAR_CHANNELS || in->h != CIFAR_SIDE || in->w != CIFAR_SIDE) {
        cli_error("model '%s' takes %ux%ux%u inputs, not CIFAR images (3x32x32)", path, in ? in->c : 0, in ? in->h : 0, in ? in->w : 0);
        return -1;
    }
    *classes = hecnn_graph_node_size(g, hecnn_graph_output(g));
    *coarse = *classes == 20;
    if (*classes == 10) *kind = CIFAR_10;
    else if (*classes == 100 || *classes == 20) *kind = CIFAR_100;
    else {
        cli_error("model '%s' has %zu outputs: CIFAR models have 10, 20 or 100", path, *classes);
        return -1;
    }
    return 0;
}

/* ---- the set-up every role shares: model, context, bootstrapper, plan ---------------------- */

typedef struct setup {
    hecnn_graph *g;
    uint8_t digest[32];
    size_t classes;
    cifar_kind kind;
    bool coarse;
    ckks_context *ctx;
    ckks_bootstrapper *bt;
    hecnn_plan *plan;
    plan_record rec;
} setup;

static void setup_free(setup *s)
{
    hecnn_plan_free(s->plan);
    ckks_bootstrapper_free(s->bt);
    ckks_context_free(s->ctx);
    hecnn_graph_free(s->g);
    memset(s, 0, sizeof *s);
}

/* Bootstrapper and plan for s->g on s->ctx (batch, grid, layout and, once chosen, the bootstrapper's
 * slots from s->rec; the preset's parameters bp otherwise). */
static int setup_plan(setup *s, const ckks_boot_params *bp)
{
    const hecnn_plan_options opt = {.batch = s->rec.batch, .grid = s->rec.grid, .layout = s->rec.layout};
    if (!s->rec.boot_log_slots) {
        const size_t slots = hecnn_plan_boot_slots(s->g, &opt, (size_t)1 << bp->log_slots);
        while (((size_t)1 << s->rec.boot_log_slots) < slots) s->rec.boot_log_slots++;
    }
    ckks_boot_params plan_bp = *bp;
    plan_bp.log_slots = s->rec.boot_log_slots;
    hecnn_status st = ckks_bootstrapper_new(&s->bt, s->ctx, &plan_bp);
    if (st) {
        cli_status_error(st, "cannot build the bootstrapper (2^%u slots)", plan_bp.log_slots);
        return -1;
    }
    if ((st = hecnn_plan_new(&s->plan, s->g, s->ctx, s->bt, &opt))) {
        cli_status_error(st, "cannot lay the model out for batches of %zu (layout %s)", s->rec.batch,
                         hecnn_plan_layout_name(s->rec.layout));
        return -1;
    }
    s->rec.layout = hecnn_plan_layout_of(s->plan);
    return 0;
}

/* From a key directory: DIR/plan, the model (its digest must be the plan's), DIR/params.hecnn
 * (its parameter id must be the plan's), bootstrapper and plan. */
static int setup_from_dir(setup *s, const char *dir, const char *model)
{
    memset(s, 0, sizeof *s);
    char *plan_path = cli_path_join(dir, PLAN_FILE), *params_path = cli_path_join(dir, CLI_KEY_FILE_PARAMS);
    int rc = -1;
    if (!plan_path || !params_path) {
        cli_error("out of memory");
        goto done;
    }
    if (plan_record_read(plan_path, &s->rec)) goto done;
    if (load_model(model, &s->g, s->digest) || cifar_model(s->g, model, &s->classes, &s->kind, &s->coarse)) goto done;
    if (memcmp(s->digest, s->rec.model, 32)) {
        char a[65], b[65];
        hex(s->digest, 32, a);
        hex(s->rec.model, 32, b);
        cli_error("model '%s' (SHA-256 %.16s...) is not the model the keys in '%s' were made for (SHA-256 %.16s...)", model, a, dir, b);
        goto done;
    }
    ckks_params_literal lit, want;
    ckks_boot_params bp;
    if (cli_load_params(params_path, &lit)) goto done;
    if (ckks_boot_preset_params(&want, &bp, s->rec.preset)) {
        cli_status_error(HECNN_ERR_INVALID_ARGUMENT, "preset %s", preset_name(s->rec.preset));
        goto done;
    }
    if (!s->rec.boot_log_slots) s->rec.boot_log_slots = bp.log_slots;
    if (lit.log_n != want.log_n || lit.n_q != want.n_q || lit.n_p != want.n_p) {
        cli_error("'%s' does not hold the %s preset's parameters (N = 2^%u, %u primes; expected 2^%u, %u)", params_path,
                  preset_name(s->rec.preset), lit.log_n, lit.n_q, want.log_n, want.n_q);
        goto done;
    }
    if (preset_context(s->rec.preset, &lit, &s->ctx)) goto done;
    if (ckks_context_param_id(s->ctx) != s->rec.param_id) {
        cli_error("'%s' holds other parameters than the plan record '%s' (parameter id %016llx, recorded %016llx)", params_path,
                  plan_path, (unsigned long long)ckks_context_param_id(s->ctx), (unsigned long long)s->rec.param_id);
        goto done;
    }
    rc = setup_plan(s, &bp);
done:
    free(plan_path);
    free(params_path);
    if (rc) setup_free(s);
    return rc;
}

/* ---- plan batch files --------------------------------------------------------------------- *
 * "HECNNPBF", version, kind, parameter id, model digest, source digest, batch, images, ciphertext
 * count, SHA-256 of the header; the ciphertexts; SHA-256 of the header's checksum followed by every
 * ciphertext's own checksum (the last 32 bytes of each object). */

#define PBF_VERSION 1u
static const file_format PBF_FORMAT = {.magic = "HECNNPBF", .magic_bytes = 8, .version_bytes = 4, .version = PBF_VERSION,
                                       .what = "a plan batch file (from 'hecnn model encrypt' or 'model infer')",
                                       .name = "batch file"};
#define PBF_HEADER 104u
#define PBF_MAX_CTS 65536u

enum { PBF_IMAGES = 1, PBF_SCORES = 2 };

typedef struct pbf_header {
    uint32_t kind;
    uint64_t param_id;
    uint8_t model[32];
    uint8_t source[32]; /* scores: SHA-256 of the image file they were computed from; images: 0 */
    uint32_t batch, images, cts;
} pbf_header;

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static void sha256(const void *data, size_t n, uint8_t out[32])
{
    unsigned len = 32;
    EVP_Digest(data, n, out, &len, EVP_sha256(), NULL);
}

static const char *kind_name(uint32_t k) { return k == PBF_IMAGES ? "encrypted images" : k == PBF_SCORES ? "encrypted scores" : "?"; }

typedef struct pbf_writer {
    FILE *f;
    EVP_MD_CTX *md; /* over the header's checksum and the ciphertexts' */
} pbf_writer;

static int pbf_write_header(pbf_writer *w, FILE *f, const pbf_header *h, const char *path)
{
    uint8_t b[PBF_HEADER + 32] = {0};
    file_header_put(b, &PBF_FORMAT);
    put_le(b + 12, h->kind, 4);
    put_le(b + 16, h->param_id, 8);
    memcpy(b + 24, h->model, 32);
    memcpy(b + 56, h->source, 32);
    put_le(b + 88, h->batch, 4);
    put_le(b + 92, h->images, 4);
    put_le(b + 96, h->cts, 4);
    sha256(b, PBF_HEADER, b + PBF_HEADER);
    w->f = f;
    w->md = EVP_MD_CTX_new();
    if (!w->md || EVP_DigestInit_ex(w->md, EVP_sha256(), NULL) != 1 || EVP_DigestUpdate(w->md, b + PBF_HEADER, 32) != 1) {
        cli_error("cannot write '%s': SHA-256 unavailable", path);
        return -1;
    }
    if (fwrite(b, 1, sizeof b, f) != sizeof b) {
        cli_error("cannot write '%s': %s", path, hecnn_status_name(HECNN_ERR_IO));
        return -1;
    }
    return 0;
}

/* One ciphertext, through memory: its checksum (its last 32 bytes) joins the file's. */
static int pbf_write_ct(pbf_writer *w, const ckks_ciphertext *ct, const char *path)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    hecnn_status st = m ? ckks_ciphertext_save(ct, m) : HECNN_ERR_NO_MEMORY;
    if (m && fclose(m) && !st) st = HECNN_ERR_NO_MEMORY;
    int rc = -1;
    if (st || len < 32) cli_status_error(st ? st : HECNN_ERR_IO, "cannot write '%s'", path);
    else if (EVP_DigestUpdate(w->md, buf + len - 32, 32) != 1) cli_error("cannot write '%s': SHA-256 failed", path);
    else if (fwrite(buf, 1, len, w->f) != len) cli_error("cannot write '%s': %s", path, hecnn_status_name(HECNN_ERR_IO));
    else rc = 0;
    free(buf);
    return rc;
}

static int pbf_write_end(pbf_writer *w, const char *path)
{
    uint8_t d[32];
    unsigned len = 0;
    const bool ok = EVP_DigestFinal_ex(w->md, d, &len) == 1 && fwrite(d, 1, 32, w->f) == 32;
    EVP_MD_CTX_free(w->md);
    w->md = NULL;
    if (!ok) cli_error("cannot write '%s': %s", path, hecnn_status_name(HECNN_ERR_IO));
    return ok ? 0 : -1;
}

typedef struct pbf_reader {
    cli_input in;
    bool open;
    const char *path;
    EVP_MD_CTX *md;
    size_t max_ct; /* largest ciphertext object under the context */
} pbf_reader;

static void pbf_close(pbf_reader *r)
{
    if (r->open) cli_input_close(&r->in);
    EVP_MD_CTX_free(r->md);
    memset(r, 0, sizeof *r);
}

/* Open and check the header: magic, version, checksum, kind, parameter id. */
static int pbf_open(pbf_reader *r, const char *path, const ckks_context *ctx, uint32_t kind, pbf_header *h)
{
    memset(r, 0, sizeof *r);
    r->path = path;
    if (cli_input_open(&r->in, path, false)) return -1;
    r->open = true;
    const char *bad = hecnn_status_name(HECNN_ERR_BAD_FORMAT);
    uint8_t b[PBF_HEADER + 32], d[32];
    const size_t got = fread(b, 1, sizeof b, r->in.f);
    if (file_header_check(b, got, &PBF_FORMAT, NULL)) {
        cli_error("cannot read '%s': %s: %s", path, bad, hecnn_last_error_detail());
        return -1;
    }
    if (got < sizeof b) {
        cli_error("cannot read '%s': %s: truncated in its header (%zu of %u bytes)", path, bad, got, PBF_HEADER + 32);
        return -1;
    }
    sha256(b, PBF_HEADER, d);
    if (memcmp(d, b + PBF_HEADER, 32)) {
        cli_error("cannot read '%s': %s: header checksum mismatch", path, bad);
        return -1;
    }
    h->kind = (uint32_t)get_le(b + 12, 4);
    h->param_id = get_le(b + 16, 8);
    memcpy(h->model, b + 24, 32);
    memcpy(h->source, b + 56, 32);
    h->batch = (uint32_t)get_le(b + 88, 4);
    h->images = (uint32_t)get_le(b + 92, 4);
    h->cts = (uint32_t)get_le(b + 96, 4);
    if (h->kind != kind) {
        cli_error("cannot read '%s': %s: the file holds %s, %s expected", path, bad, kind_name(h->kind), kind_name(kind));
        return -1;
    }
    if (h->param_id != ckks_context_param_id(ctx)) {
        cli_error("cannot read '%s': %s: the ciphertexts were made under other CKKS parameters than the keys", path,
                  hecnn_status_name(HECNN_ERR_PARAMS_MISMATCH));
        return -1;
    }
    if (h->batch == 0 || h->images == 0 || h->images > h->batch || h->cts == 0 || h->cts > PBF_MAX_CTS) {
        cli_error("cannot read '%s': %s: %u images in a batch of %u, %u ciphertexts: inconsistent", path, bad, h->images, h->batch, h->cts);
        return -1;
    }
    r->md = EVP_MD_CTX_new();
    if (!r->md || EVP_DigestInit_ex(r->md, EVP_sha256(), NULL) != 1 || EVP_DigestUpdate(r->md, b + PBF_HEADER, 32) != 1) {
        cli_error("cannot read '%s': SHA-256 unavailable", path);
        return -1;
    }
    /* a ciphertext at the top level, degree 2, 8 bytes a coefficient, bounds any object */
    r->max_ct = 96 + 3 * (ckks_context_max_level(ctx) + 1) * ckks_context_n(ctx) * 8;
    return 0;
}

/* The next ciphertext: its object is read whole (its size field bounded by the context), loaded
 * from memory, and its checksum joins the file's. */
static int pbf_read_ct(pbf_reader *r, const ckks_context *ctx, ckks_ciphertext *ct, size_t index)
{
    const char *bad = hecnn_status_name(HECNN_ERR_BAD_FORMAT);
    uint8_t head[32];
    if (fread(head, 1, 32, r->in.f) != 32) {
        cli_error("cannot read '%s': %s: truncated at ciphertext %zu", r->path, bad, index);
        return -1;
    }
    const uint64_t size = get_le(head + 24, 8);
    if (size < 64 + 32 || size > r->max_ct) {
        cli_error("cannot read '%s': %s: ciphertext %zu declares %llu bytes", r->path, bad, index, (unsigned long long)size);
        return -1;
    }
    uint8_t *buf = malloc(size);
    if (!buf) {
        cli_error("out of memory");
        return -1;
    }
    memcpy(buf, head, 32);
    int rc = -1;
    if (fread(buf + 32, 1, size - 32, r->in.f) != size - 32) {
        cli_error("cannot read '%s': %s: truncated at ciphertext %zu", r->path, bad, index);
        goto done;
    }
    FILE *m = fmemopen(buf, size, "rb");
    hecnn_status st = m ? ckks_ciphertext_load(ctx, ct, m) : HECNN_ERR_NO_MEMORY;
    if (m) fclose(m);
    if (st) {
        cli_status_error(st, "cannot read ciphertext %zu of '%s'", index, r->path);
        goto done;
    }
    if (EVP_DigestUpdate(r->md, buf + size - 32, 32) != 1) {
        cli_error("cannot read '%s': SHA-256 failed", r->path);
        goto done;
    }
    rc = 0;
done:
    free(buf);
    return rc;
}

/* The file's checksum, then its end. */
static int pbf_read_end(pbf_reader *r)
{
    const char *bad = hecnn_status_name(HECNN_ERR_BAD_FORMAT);
    uint8_t want[32], got[32];
    unsigned len = 0;
    if (fread(want, 1, 32, r->in.f) != 32) {
        cli_error("cannot read '%s': %s: truncated in its checksum", r->path, bad);
        return -1;
    }
    if (EVP_DigestFinal_ex(r->md, got, &len) != 1 || memcmp(want, got, 32)) {
        cli_error("cannot read '%s': %s: checksum mismatch (the ciphertexts' order or number changed)", r->path, bad);
        return -1;
    }
    if (fgetc(r->in.f) != EOF) {
        cli_error("cannot read '%s': %s: trailing bytes after the ciphertexts", r->path, bad);
        return -1;
    }
    return 0;
}

static ckks_ciphertext **cts_new(const ckks_context *ctx, size_t n)
{
    ckks_ciphertext **c = calloc(n ? n : 1, sizeof *c);
    for (size_t i = 0; c && i < n; i++)
        if (ckks_ciphertext_new(&c[i], ctx)) {
            for (size_t j = 0; j < i; j++) ckks_ciphertext_free(c[j]);
            free(c);
            return NULL;
        }
    return c;
}

static void cts_free(ckks_ciphertext **c, size_t n)
{
    for (size_t i = 0; c && i < n; i++) ckks_ciphertext_free(c[i]);
    free(c);
}

/* ---- the owner record --------------------------------------------------------------------- */

#define OWNER_MAGIC "hecnn-model-record 1"
static const char *const owner_keys[] = {"parameter-id", "model-sha256", "batch", "images", "offset", "images-sha256"};
enum { OWNER_FIELDS = sizeof owner_keys / sizeof *owner_keys };

typedef struct owner_record {
    uint64_t param_id;
    uint8_t model[32];
    size_t batch, images, offset;
    uint8_t sha256[32];
} owner_record;

static void owner_record_write(FILE *f, const owner_record *r)
{
    char m[65], s[65];
    hex(r->model, 32, m);
    hex(r->sha256, 32, s);
    fprintf(f, "%s\nparameter-id %016llx\nmodel-sha256 %s\nbatch %zu\nimages %zu\noffset %zu\nimages-sha256 %s\n", OWNER_MAGIC,
            (unsigned long long)r->param_id, m, r->batch, r->images, r->offset, s);
}

static int owner_record_read(const char *path, owner_record *r)
{
    char v[KV_MAX][KV_VALUE];
    if (kv_read(path, "owner record", OWNER_MAGIC, owner_keys, OWNER_FIELDS, OWNER_FIELDS, v)) return -1;
    const char *bad = NULL;
    if (!parse_u64_hex(v[0], &r->param_id)) bad = owner_keys[0];
    else if (!parse_hex(v[1], r->model, 32)) bad = owner_keys[1];
    else if (!parse_size(v[2], 1, MAX_BATCH, &r->batch)) bad = owner_keys[2];
    else if (!parse_size(v[3], 1, MAX_BATCH, &r->images)) bad = owner_keys[3];
    else if (!parse_size(v[4], 0, LONG_MAX, &r->offset)) bad = owner_keys[4];
    else if (!parse_hex(v[5], r->sha256, 32)) bad = owner_keys[5];
    if (bad) {
        cli_error("owner record '%s': bad %s", path, bad);
        return -1;
    }
    return 0;
}

/* ---- model keygen ------------------------------------------------------------------------- */

static size_t eval_keys_memory(const ckks_eval_keys *k)
{
    size_t b = 0;
    for (size_t i = 0; k && i < ckks_eval_keys_count(k); i++) b += ckks_switching_key_memory_bytes(ckks_eval_keys_at(k, i));
    return b;
}

static int make_dir(const char *dir, mode_t mode)
{
    struct stat sb;
    if (stat(dir, &sb) == 0) {
        if (S_ISDIR(sb.st_mode)) return 0;
        cli_error("'%s' exists and is not a directory", dir);
        return -1;
    }
    if (mkdir(dir, mode)) {
        cli_error("cannot create directory '%s': %s: %s", dir, hecnn_status_name(HECNN_ERR_IO), strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- memory budgets ------------------------------------------------------------------------ */

/* "8G", "8GiB", "512M", "65536" (powers of 1024) into bytes. */
static int parse_bytes(const char *s, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    const double v = strtod(s, &end);
    if (errno || end == s || !(v > 0)) return -1;
    double mult = 1;
    switch (*end) {
    case 'K': case 'k': mult = 0x1p10; end++; break;
    case 'M': case 'm': mult = 0x1p20; end++; break;
    case 'G': case 'g': mult = 0x1p30; end++; break;
    case 'T': case 't': mult = 0x1p40; end++; break;
    default: break;
    }
    if (mult > 1 && !strcmp(end, "iB")) end += 2;
    else if (*end == 'B' && end[1] == 0) end++;
    if (*end || v * mult >= 0x1p63) return -1;
    *out = (uint64_t)(v * mult);
    return 0;
}

/* The plan's memory schedule for --memory-budget (NULL: none) beside `held` bytes of keys and
 * ciphertexts, spilling to `scratch` when needed; refuses with the smallest budget that works. */
static int plan_memory(setup *s, const char *budget_s, const char *scratch, uint64_t held, hecnn_memory_schedule *out)
{
    uint64_t budget = 0;
    if (budget_s && parse_bytes(budget_s, &budget)) {
        cli_error("--memory-budget %.32s: a size such as 8G, 512M or a number of bytes", budget_s);
        return -1;
    }
    const hecnn_memory_options mo = {.budget = budget, .held = held, .scratch_dir = budget ? scratch : NULL};
    hecnn_status st = hecnn_plan_set_memory(s->plan, &mo, out);
    if (st == HECNN_ERR_NO_MEMORY) {
        cli_error("%s%s", hecnn_last_error_detail(), mo.scratch_dir ? "" : " (no scratch directory to spill to)");
        return -1;
    }
    if (st) {
        cli_status_error(st, "cannot plan the memory");
        return -1;
    }
    return 0;
}

static void print_memory(FILE *f, const char *budget_s, const hecnn_memory_schedule *m)
{
    if (!m->run_bytes) {
        fprintf(f, "memory: the run is not estimated for this layout; %.2f GiB held\n", m->fixed_bytes / 1073741824.0);
        return;
    }
    fprintf(f, "memory%s%s: %zu of %zu image groups at a time, stage outputs %s; estimated peak %.2f GiB (%.2f held, %.2f for the run)\n",
            budget_s ? " budget " : "", budget_s ? budget_s : "", m->chunk_groups, m->groups, m->spill ? "spilled" : "in memory",
            m->peak_bytes / 1073741824.0, m->fixed_bytes / 1073741824.0, m->run_bytes / 1073741824.0);
}

/* The directory part of a path ("." when it has none), for a default scratch directory. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

enum { KF_PARAMS, KF_SECRET, KF_PLAN, KF_S_PARAMS, KF_S_PLAN, KF_S_BOOT, KF_S_NET, KF_COUNT };

int cmd_model_keygen(int argc, char **argv)
{
    cli_protect_secrets(); /* it makes a secret key */
    const char *model = NULL, *out_dir = NULL, *preset_s = "n16", *layout_s = "";
    size_t batch = 0;
    unsigned grid = 0;
    bool force = false;
    const cli_opt opts[] = {
        {"model", CLI_OPT_STRING, &model, "FILE", "calibrated model file (hecnn model calibrate)", NULL},
        {"batch", CLI_OPT_SIZE, &batch, "B", "images per run", NULL},
        {"out-dir", CLI_OPT_STRING, &out_dir, "DIR", "key directory (DIR/server: what the server gets)", NULL},
        {"preset", CLI_OPT_STRING, &preset_s, "NAME", "n16 (128-bit, N = 2^16, default) or test (insecure N = 2^12, for tests)", NULL},
        {"grid", CLI_OPT_UINT, &grid, "G", "batched: side of one image's slot block (default: the image width)", NULL},
        {"layout", CLI_OPT_STRING, &layout_s, "NAME", "single (one image a ciphertext) or batched (default: the plan's choice, "
         "single for --batch 1 where the model fits)", NULL},
        {"force", CLI_OPT_FLAG, &force, NULL, "replace existing keys", NULL},
        {0},
    };
    const cli_command cmd = {
        "model keygen", "--model FILE --batch B --out-dir DIR [--preset n16|test] [--layout single|batched]",
        "Data owner: keys for running a model on batches of B encrypted images (batched or single layout). Writes\n"
        "DIR/params.hecnn, DIR/secret.key (keep it) and DIR/plan, and for the server DIR/server/params.hecnn,\n"
        "DIR/server/plan, DIR/server/boot.keys (bootstrapping) and DIR/server/network.keys (relinearization and\n"
        "exactly the rotations the model uses, each at its level). The plan record pins the model (SHA-256),\n"
        "the batch, the layout and the parameters for the other roles.",
        opts, 0};
    int rc = cli_parse(&cmd, argc, argv, NULL, NULL);
    if (rc) return rc == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    if (cli_require(&cmd, "model", model) || cli_require(&cmd, "out-dir", out_dir)) return CLI_EXIT_USAGE;
    if (batch == 0 || batch > MAX_BATCH) {
        cli_error("--batch B (1..%u) is required", MAX_BATCH);
        return CLI_EXIT_USAGE;
    }
    ckks_boot_preset preset;
    hecnn_plan_layout layout;
    if (preset_by_name(preset_s, &preset) || layout_by_name(layout_s, &layout)) return CLI_EXIT_USAGE;
    setup s = {0};
    ckks_secret_key *sk = NULL;
    ckks_boot_keys *boot = NULL;
    ckks_eval_keys *net = NULL;
    char *paths[KF_COUNT] = {0}, *server = NULL;
    cli_output outs[KF_COUNT] = {{0}};
    rc = CLI_EXIT_FAIL;
    if (load_model(model, &s.g, s.digest) || cifar_model(s.g, model, &s.classes, &s.kind, &s.coarse)) goto done;
    ckks_params_literal lit;
    ckks_boot_params bp;
    hecnn_status st = ckks_boot_preset_params(&lit, &bp, preset);
    if (st) {
        cli_status_error(st, "preset %s", preset_s);
        goto done;
    }
    if (preset_context(preset, &lit, &s.ctx)) goto done;
    s.rec = (plan_record){.preset = preset, .param_id = ckks_context_param_id(s.ctx), .batch = batch, .grid = grid, .layout = layout};
    memcpy(s.rec.model, s.digest, 32);
    const double t0 = now_s();
    if (setup_plan(&s, &bp)) goto done;
    s.rec.grid = grid ? grid : hecnn_graph_node(s.g, 0)->w;
    /* the paths, refusing to replace keys unless --force */
    server = cli_path_join(out_dir, SERVER_DIR);
    const char *names[KF_COUNT] = {CLI_KEY_FILE_PARAMS, CLI_KEY_FILE_SECRET, PLAN_FILE, CLI_KEY_FILE_PARAMS, PLAN_FILE, BOOT_KEYS_FILE,
                                   NET_KEYS_FILE};
    for (int i = 0; server && i < KF_COUNT; i++) {
        if (!(paths[i] = cli_path_join(i < KF_S_PARAMS ? out_dir : server, names[i]))) break;
        if (!force && cli_file_exists(paths[i])) {
            cli_error("'%s' already exists: keys are not replaced without --force", paths[i]);
            goto done;
        }
    }
    if (!server || !paths[KF_COUNT - 1]) {
        cli_error("out of memory");
        goto done;
    }
    if (make_dir(out_dir, 0700) || make_dir(server, 0755)) goto done;
    if ((st = ckks_secret_key_generate(&sk, s.ctx)) || (st = ckks_boot_keys_generate_compact(&boot, s.bt, sk)) ||
        (st = hecnn_plan_keys_generate(&net, s.plan, sk))) {
        cli_status_error(st, "cannot generate the keys");
        goto done;
    }
    const double keygen_s = now_s() - t0;
    /* every file is written and synced before any is renamed into place */
    for (int i = 0; i < KF_COUNT; i++) {
        if (cli_output_open(&outs[i], paths[i], i == KF_SECRET)) goto done;
        FILE *f = outs[i].f;
        st = HECNN_OK;
        switch (i) {
        case KF_PARAMS:
        case KF_S_PARAMS: st = ckks_params_save(&lit, f); break;
        case KF_SECRET: st = ckks_secret_key_save(sk, f); break;
        case KF_PLAN:
        case KF_S_PLAN: plan_record_write(f, &s.rec); break;
        case KF_S_BOOT: st = ckks_boot_keys_save(boot, true, f); break;
        default: st = ckks_eval_keys_save(net, true, f); break;
        }
        if (st) {
            cli_status_error(st, "cannot write '%s'", paths[i]);
            goto done;
        }
        if (cli_output_close(&outs[i])) goto done;
    }
    for (int i = 0; i < KF_COUNT; i++)
        if (cli_output_commit(&outs[i])) goto done;
    const hecnn_plan *p = s.plan;
    printf("model %s: batches of %zu images, %s layout (%zu per ciphertext, %zu input ciphertexts), preset %s, %zu bootstraps and "
           "%zu rotations a batch\n",
           model, batch, hecnn_plan_layout_name(hecnn_plan_layout_of(p)), hecnn_plan_images_per_ciphertext(p),
           hecnn_plan_input_ciphertexts(p), preset_s, hecnn_plan_bootstraps(p), hecnn_plan_rotations(p));
    printf("keys generated in %.1f s: bootstrapping %zu keys, %.1f MiB in memory; network %zu keys, %.1f MiB in memory\n", keygen_s,
           ckks_boot_keys_count(boot), (double)ckks_boot_keys_memory_bytes(boot) / 1048576.0, ckks_eval_keys_count(net),
           (double)eval_keys_memory(net) / 1048576.0);
    for (int i = 0; i < KF_COUNT; i++)
        printf("wrote %-40s %12llu bytes%s\n", paths[i], cli_file_size(paths[i]), i == KF_SECRET ? " (keep it private)" : "");
    rc = CLI_EXIT_OK;
done:
    for (int i = 0; i < KF_COUNT; i++) {
        if (rc) cli_output_abort(&outs[i]);
        free(paths[i]);
    }
    free(server);
    ckks_eval_keys_free(net);
    ckks_boot_keys_free(boot);
    ckks_secret_key_free(sk);
    setup_free(&s);
    return rc;
}

/* ---- model encrypt ------------------------------------------------------------------------ */

static int load_secret(const setup *s, const char *dir, ckks_secret_key **sk)
{
    char *path = cli_path_join(dir, CLI_KEY_FILE_SECRET);
    if (!path) {
        cli_error("out of memory");
        return -1;
    }
    const int rc = cli_load_secret_key(s->ctx, path, sk);
    free(path);
    return rc;
}

int cmd_model_encrypt(int argc, char **argv)
{
    cli_protect_secrets(); /* it holds a secret key */
    const char *dir = NULL, *model = NULL, *data = NULL, *out = NULL, *record = NULL;
    size_t offset = 0, count = 0;
    bool count_given = false;
    const cli_opt opts[] = {
        {"keys", CLI_OPT_STRING, &dir, "DIR", "key directory from 'hecnn model keygen' (not DIR/server)", NULL},
        {"model", CLI_OPT_STRING, &model, "FILE", "the model the keys were made for", NULL},
        {"data", CLI_OPT_STRING, &data, "FILE", "CIFAR binary file", NULL},
        {"offset", CLI_OPT_SIZE, &offset, "K", "first image (default 0)", NULL},
        {"count", CLI_OPT_SIZE, &count, "N", "images (1..batch; default: the batch)", &count_given},
        {"out", CLI_OPT_STRING, &out, "FILE", "the encrypted images", NULL},
        {"record", CLI_OPT_STRING, &record, "FILE", "owner record for 'model decrypt' (default: FILE.record beside --out)", NULL},
        {0},
    };
    const cli_command cmd = {
        "model encrypt", "--keys DIR --model FILE --data CIFAR_BIN [--offset K] [--count N] --out FILE",
        "Data owner: normalise CIFAR images with the model's input mean and std and encrypt one batch of them\n"
        "for 'hecnn model infer'. Also writes the owner record (model, counts, SHA-256 of --out) to --record,\n"
        "default OUT.record, and to DIR/images.record: 'model decrypt' checks the server's scores against it.",
        opts, 0};
    int rc = cli_parse(&cmd, argc, argv, NULL, NULL);
    if (rc) return rc == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    if (cli_require(&cmd, "keys", dir) || cli_require(&cmd, "model", model) || cli_require(&cmd, "data", data) ||
        cli_require(&cmd, "out", out))
        return CLI_EXIT_USAGE;
    if (count_given && count == 0) {
        cli_error("--count must be at least 1");
        return CLI_EXIT_USAGE;
    }
    setup s;
    if (setup_from_dir(&s, dir, model)) return CLI_EXIT_FAIL;
    rc = CLI_EXIT_FAIL;
    ckks_secret_key *sk = NULL;
    cifar_batch cb = {0};
    ckks_ciphertext **cts = NULL;
    const size_t n_cts = hecnn_plan_input_ciphertexts(s.plan);
    cli_output o = {0}, ro[2] = {{0}};
    char *rpath[2] = {0};
    pbf_writer w = {0};
    if (!count_given) count = s.rec.batch;
    if (count > s.rec.batch) {
        cli_error("--count %zu: the keys serve batches of %zu images (one batch a file)", count, s.rec.batch);
        goto done;
    }
    if (load_secret(&s, dir, &sk)) goto done;
    if (cifar_read(data, s.kind, s.coarse, offset, count, &cb)) goto done;
    cifar_normalise(cb.pixels, cb.n, hecnn_graph_input_mean(s.g), hecnn_graph_input_std(s.g));
    const size_t olen = strlen(out);
    if (!record && (rpath[0] = malloc(olen + sizeof RECORD_SUFFIX))) snprintf(rpath[0], olen + sizeof RECORD_SUFFIX, "%s%s", out, RECORD_SUFFIX);
    else if (record) rpath[0] = strdup(record);
    rpath[1] = cli_path_join(dir, RECORD_KEY_FILE);
    if (!rpath[0] || !rpath[1] || !(cts = cts_new(s.ctx, n_cts))) {
        cli_error("out of memory");
        goto done;
    }
    const double t0 = now_s();
    hecnn_status st = hecnn_plan_encrypt(s.plan, cts, cb.pixels, cb.n, NULL, sk);
    if (st) {
        cli_status_error(st, "cannot encrypt the images");
        goto done;
    }
    pbf_header h = {.kind = PBF_IMAGES, .param_id = s.rec.param_id, .batch = (uint32_t)s.rec.batch, .images = (uint32_t)cb.n,
                    .cts = (uint32_t)n_cts};
    memcpy(h.model, s.digest, 32);
    if (cli_output_open(&o, out, false) || pbf_write_header(&w, o.f, &h, out)) goto done;
    for (size_t i = 0; i < n_cts; i++)
        if (pbf_write_ct(&w, cts[i], out)) goto done;
    if (pbf_write_end(&w, out)) goto done;
    owner_record rec = {.param_id = s.rec.param_id, .batch = s.rec.batch, .images = cb.n, .offset = offset};
    memcpy(rec.model, s.digest, 32);
    /* the ciphertexts and their records are all written and synced before any is renamed */
    if (cli_output_close(&o) || cli_sha256_file(o.tmp, rec.sha256)) goto done;
    for (int i = 0; i < 2; i++) {
        if (cli_output_open(&ro[i], rpath[i], false)) goto done;
        owner_record_write(ro[i].f, &rec);
        if (cli_output_close(&ro[i])) goto done;
    }
    if (cli_output_commit(&o) || cli_output_commit(&ro[0]) || cli_output_commit(&ro[1])) goto done;
    printf("encrypted %zu images (%zu..%zu of %s) for batches of %zu in %.2f s: %s, %zu ciphertexts, %llu bytes\n", cb.n, offset,
           offset + cb.n - 1, data, s.rec.batch, now_s() - t0, out, n_cts, cli_file_size(out));
    printf("owner record (keep it to check the scores): %s, %s\n", rpath[0], rpath[1]);
    rc = CLI_EXIT_OK;
done:
    if (w.md) EVP_MD_CTX_free(w.md);
    if (rc) {
        cli_output_abort(&o);
        cli_output_abort(&ro[0]);
        cli_output_abort(&ro[1]);
    }
    free(rpath[0]);
    free(rpath[1]);
    cts_free(cts, n_cts);
    cifar_batch_free(&cb);
    ckks_secret_key_free(sk);
    setup_free(&s);
    return rc;
}

/* ---- model infer -------------------------------------------------------------------------- */

typedef struct progress_state {
    bool on;
    double t0, last;
} progress_state;

static void progress_cb(void *user, const char *stage, double done)
{
    progress_state *p = user;
    cli_job_progress(done);
    const double t = now_s();
    if (!p->on || (t - p->last < 1.0 && done < 1.0)) return;
    p->last = t;
    fprintf(stderr, "%s: %s %3.0f%%  %7.1f s\n", cli_command_prefix(), stage, 100 * done, t - p->t0);
}

static int check_file_model(const char *path, const pbf_header *h, const setup *s)
{
    if (memcmp(h->model, s->digest, 32)) {
        cli_error("'%s' was made for another model than the keys' (model SHA-256 differs): refusing it", path);
        return -1;
    }
    if (h->batch != s->rec.batch) {
        cli_error("'%s' holds a batch of %u images; the keys serve batches of %zu", path, h->batch, s->rec.batch);
        return -1;
    }
    return 0;
}

static hecnn_status boot_load_fn(void *arg, FILE *f)
{
    void **a = arg;
    return ckks_boot_keys_load_compact(a[0], (ckks_boot_keys **)a[1], f);
}

static hecnn_status net_load_fn(void *arg, FILE *f)
{
    void **a = arg;
    return ckks_eval_keys_load_compact(a[0], (ckks_eval_keys **)a[1], f, false);
}

/* Checkpoints for this run, named by what it computes: the SHA-256 of the digests of the images,
 * the keys and the plan record (the model is the record's, checked by digest). */
static int set_checkpoint(setup *s, const char *ckpt, const char *dir, const unsigned char images[32])
{
    static const char *const files[] = {NET_KEYS_FILE, BOOT_KEYS_FILE, PLAN_FILE};
    unsigned char all[4 * 32], id[32];
    memcpy(all, images, 32);
    for (size_t i = 0; i < 3; i++) {
        char *path = cli_path_join(dir, files[i]);
        const int bad = !path || cli_sha256_file(path, all + 32 * (i + 1));
        free(path);
        if (bad) return -1;
    }
    char hex[65];
    if (!EVP_Digest(all, sizeof all, id, NULL, EVP_sha256(), NULL)) {
        cli_error("SHA-256 failed");
        return -1;
    }
    for (size_t i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", id[i]);
    const hecnn_status st = hecnn_plan_set_checkpoint(s->plan, ckpt, hex);
    if (st) cli_status_error(st, "checkpoints in '%s'", ckpt);
    return st ? -1 : 0;
}

int cmd_model_infer(int argc, char **argv)
{
    const char *dir = NULL, *model = NULL, *in = NULL, *out = NULL;
    const char *budget_s = NULL, *scratch = NULL, *checkpoint = NULL;
    unsigned threads = 0;
    bool progress = false;
    const cli_opt opts[] = {
        {"keys", CLI_OPT_STRING, &dir, "DIR", "the server's key directory (DIR/server from 'hecnn model keygen')", NULL},
        {"checkpoint", CLI_OPT_STRING, &checkpoint, "DIR", "keep checkpoints in DIR (one group of images at a time): started "
         "again after a kill, with the same keys, model and images, the run resumes there", NULL},
        {"memory-budget", CLI_OPT_STRING, &budget_s, "SIZE", "keep the process under SIZE (8G, 512M, bytes): run groups of images in chunks, spill stage outputs", NULL},
        {"scratch", CLI_OPT_STRING, &scratch, "DIR", "where stage outputs may be spilled under a budget (default: the --out directory)", NULL},
        {"model", CLI_OPT_STRING, &model, "FILE", "the model the keys were made for", NULL},
        {"in", CLI_OPT_STRING, &in, "FILE", "encrypted images from 'hecnn model encrypt'", NULL},
        {"out", CLI_OPT_STRING, &out, "FILE", "encrypted scores for 'hecnn model decrypt'", NULL},
        {"threads", CLI_OPT_UINT, &threads, "T", "threads (default: all cores)", NULL},
        {"progress", CLI_OPT_FLAG, &progress, NULL, "progress lines on stderr", NULL},
        {0},
    };
    const cli_command cmd = {
        "model infer", "--keys DIR/server --model FILE --in FILE --out FILE [--memory-budget SIZE [--scratch DIR]] [--checkpoint DIR] [--progress] [--threads T]",
        "Server: run the model on a batch of encrypted images. Needs only public material (parameters, plan\n"
        "record, bootstrapping and network keys); the model, batch and parameters must be the plan's, and\n"
        "every key the plan uses is checked before the run.",
        opts, 0};
    int rc = cli_parse(&cmd, argc, argv, NULL, NULL);
    if (rc) return rc == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    if (cli_require(&cmd, "keys", dir) || cli_require(&cmd, "model", model) || cli_require(&cmd, "in", in) ||
        cli_require(&cmd, "out", out))
        return CLI_EXIT_USAGE;
    if (threads) hecnn_set_threads((int)threads);
    setup s;
    if (setup_from_dir(&s, dir, model)) return CLI_EXIT_FAIL;
    rc = CLI_EXIT_FAIL;
    ckks_boot_keys *boot = NULL;
    ckks_eval_keys *net = NULL;
    char *boot_path = cli_path_join(dir, BOOT_KEYS_FILE), *net_path = cli_path_join(dir, NET_KEYS_FILE),
         *scratch_dir = scratch ? strdup(scratch) : dir_of(out);
    const size_t n_in = hecnn_plan_input_ciphertexts(s.plan), n_out = hecnn_plan_output_ciphertexts(s.plan);
    ckks_ciphertext **cin = NULL, **cout = NULL;
    pbf_reader r = {0};
    pbf_writer w = {0};
    cli_output o = {0};
    hecnn_status st;
    if (!boot_path || !net_path || !scratch_dir) {
        cli_error("out of memory");
        goto done;
    }
    /* the budget is checked before anything large is read: keys and images count at their file sizes */
    hecnn_memory_schedule mem;
    const uint64_t held = cli_file_size(boot_path) + cli_file_size(net_path) + 2 * cli_file_size(in);
    if (plan_memory(&s, budget_s, scratch_dir, held, &mem)) goto done;
    if (budget_s || progress) print_memory(stderr, budget_s, &mem);
    const double t_load = now_s();
    void *na[2] = {s.ctx, &net}, *ba[2] = {s.ctx, &boot};
    if (cli_read_object(net_path, "network keys", false, true, net_load_fn, na)) goto done;
    if ((st = hecnn_plan_check_keys(s.plan, net))) {
        cli_status_error(st, "the network keys '%s' do not serve this plan (make them with 'hecnn model keygen')", net_path);
        goto done;
    }
    if (cli_read_object(boot_path, "bootstrapping keys", false, true, boot_load_fn, ba)) goto done;
    pbf_header h;
    if (pbf_open(&r, in, s.ctx, PBF_IMAGES, &h) || check_file_model(in, &h, &s)) goto done;
    if (h.cts != n_in) {
        cli_error("'%s' holds %u ciphertexts; the plan reads %zu", in, h.cts, n_in);
        goto done;
    }
    if (!(cin = cts_new(s.ctx, n_in)) || !(cout = cts_new(s.ctx, n_out))) {
        cli_error("out of memory");
        goto done;
    }
    for (size_t i = 0; i < n_in; i++)
        if (pbf_read_ct(&r, s.ctx, cin[i], i)) goto done;
    if (pbf_read_end(&r)) goto done;
    pbf_close(&r);
    pbf_header ho = {.kind = PBF_SCORES, .param_id = h.param_id, .batch = h.batch, .images = h.images, .cts = (uint32_t)n_out};
    memcpy(ho.model, h.model, 32);
    /* the scores name the image file they come from: the owner checks it against the record */
    if (cli_sha256_file(in, ho.source)) goto done;
    if (checkpoint && set_checkpoint(&s, checkpoint, dir, ho.source)) goto done;
    progress_state ps = {.on = progress, .t0 = now_s()};
    const double load_s = ps.t0 - t_load;
    hecnn_run_stats stats;
    st = hecnn_plan_run(s.plan, net, boot, cin, cout, progress_cb, &ps, cli_job_cancel_flag(), &stats);
    if (st) {
        cli_status_error(st, "inference failed");
        goto done;
    }
    const double run_s = now_s() - ps.t0;
    if (stats.chunks_resumed)
        printf("resumed %zu chunks from the checkpoints in %s (%.1f s in the earlier runs): %.1f s in all = %.3f s/image\n",
               stats.chunks_resumed, checkpoint, stats.seconds_resumed, run_s + stats.seconds_resumed,
               (run_s + stats.seconds_resumed) / (double)h.batch);
    if (cli_output_open(&o, out, false) || pbf_write_header(&w, o.f, &ho, out)) goto done;
    for (size_t i = 0; i < n_out; i++)
        if (pbf_write_ct(&w, cout[i], out)) goto done;
    if (pbf_write_end(&w, out) || cli_output_commit(&o)) goto done;
    printf("inferred %u images (batch of %u) in %.2f s = %.3f s/image (keys loaded in %.1f s; linear %.1f s, activations %.1f s, "
           "bootstrapping %.1f s, spilled outputs written and read %.1f s, %zu bootstraps, %zu rotations; %d threads, peak RSS "
           "%.0f MiB): %s\n",
           h.images, h.batch, run_s, run_s / (double)h.batch, load_s, stats.seconds_linear, stats.seconds_activation,
           stats.seconds_bootstrap, stats.seconds_spill, stats.bootstraps, stats.rotations, hecnn_get_threads(),
           bench_peak_rss_mib(), out);
    rc = CLI_EXIT_OK;
done:
    free(scratch_dir);
    if (w.md) EVP_MD_CTX_free(w.md);
    if (rc) cli_output_abort(&o);
    pbf_close(&r);
    cts_free(cin, n_in);
    cts_free(cout, n_out);
    free(boot_path);
    free(net_path);
    ckks_eval_keys_free(net);
    ckks_boot_keys_free(boot);
    setup_free(&s);
    return rc;
}

/* ---- model decrypt ------------------------------------------------------------------------ */

int cmd_model_decrypt(int argc, char **argv)
{
    cli_protect_secrets(); /* it holds a secret key */
    const char *dir = NULL, *model = NULL, *in = NULL, *data = NULL, *record = NULL, *out = NULL;
    size_t offset = 0;
    double flood_bits = 0;
    bool json = false, offset_given = false, flood_given = false;
    const cli_opt opts[] = {
        {"keys", CLI_OPT_STRING, &dir, "DIR", "key directory from 'hecnn model keygen' (not DIR/server)", NULL},
        {"model", CLI_OPT_STRING, &model, "FILE", "the model the keys were made for", NULL},
        {"in", CLI_OPT_STRING, &in, "FILE", "encrypted scores from 'hecnn model infer'", NULL},
        {"flood", CLI_OPT_DOUBLE, &flood_bits, "BITS", "flood the decryption: noise 2^BITS times the error estimate", &flood_given},
        {"data", CLI_OPT_STRING, &data, "FILE", "CIFAR binary file: also print labels and the accuracy", NULL},
        {"offset", CLI_OPT_SIZE, &offset, "K", "index of the first image in --data (default: the record's)", &offset_given},
        {"record", CLI_OPT_STRING, &record, "FILE", "owner record from 'model encrypt' (default: DIR/images.record)", NULL},
        {"json", CLI_OPT_FLAG, &json, NULL, "print JSON", NULL},
        {"out", CLI_OPT_STRING, &out, "FILE", "write there instead of stdout", NULL},
        {0},
    };
    const cli_command cmd = {
        "model decrypt", "--keys DIR --model FILE --in FILE [--record FILE] [--data CIFAR_BIN [--offset K]] [--json]",
        "Data owner: decrypt the class scores of a batch and print the predicted classes (with --data, the\n"
        "labels and the accuracy). The scores must come from the images of the owner record (--record, or\n"
        "DIR/images.record): model, parameters, counts and the SHA-256 of the image file are checked.\n"
        "Scores that leave the data owner should be flooded (--flood BITS, as 'hecnn decrypt'; docs/SECURITY.md).",
        opts, 0};
    int rc = cli_parse(&cmd, argc, argv, NULL, NULL);
    if (rc) return rc == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    if (cli_require(&cmd, "keys", dir) || cli_require(&cmd, "model", model) || cli_require(&cmd, "in", in)) return CLI_EXIT_USAGE;
    if (flood_given && !(flood_bits > 0 && flood_bits <= 64)) {
        cli_error("--flood %g: need 0 < BITS <= 64", flood_bits);
        return CLI_EXIT_USAGE;
    }
    const ckks_flood_options flood = {.flood_bits = flood_bits};
    setup s;
    if (setup_from_dir(&s, dir, model)) return CLI_EXIT_FAIL;
    rc = CLI_EXIT_FAIL;
    ckks_secret_key *sk = NULL;
    const size_t n_out = hecnn_plan_output_ciphertexts(s.plan);
    ckks_ciphertext **cts = NULL;
    double *scores = NULL;
    cifar_batch cb = {0};
    pbf_reader r = {0};
    cli_output o = {0};
    char *own_record = NULL;
    if (!record && !(record = own_record = cli_path_join(dir, RECORD_KEY_FILE))) {
        cli_error("out of memory");
        goto done;
    }
    owner_record rec;
    if (load_secret(&s, dir, &sk) || owner_record_read(record, &rec)) goto done;
    pbf_header h;
    if (pbf_open(&r, in, s.ctx, PBF_SCORES, &h) || check_file_model(in, &h, &s)) goto done;
    if (rec.param_id != h.param_id || memcmp(rec.model, h.model, 32) || rec.batch != h.batch || rec.images != h.images ||
        memcmp(rec.sha256, h.source, 32)) {
        cli_error("scores '%s' do not match the owner record '%s' (%s): refusing to decrypt (these are not the scores of "
                  "the images encrypted then)",
                  in, record,
                  rec.param_id != h.param_id            ? "other parameters"
                  : memcmp(rec.model, h.model, 32)      ? "another model"
                  : rec.batch != h.batch                ? "another batch size"
                  : rec.images != h.images              ? "another image count"
                                                        : "computed from another image file");
        goto done;
    }
    if (h.cts != n_out) {
        cli_error("'%s' holds %u ciphertexts; the plan's scores are %zu", in, h.cts, n_out);
        goto done;
    }
    if (!(cts = cts_new(s.ctx, n_out)) || !(scores = calloc(h.images * s.classes, sizeof *scores))) {
        cli_error("out of memory");
        goto done;
    }
    for (size_t i = 0; i < n_out; i++)
        if (pbf_read_ct(&r, s.ctx, cts[i], i)) goto done;
    if (pbf_read_end(&r)) goto done;
    hecnn_status st = flood_given ? hecnn_plan_decrypt_flooded(s.plan, scores, h.images, cts, sk, &flood)
                                  : hecnn_plan_decrypt(s.plan, scores, h.images, cts, sk);
    if (st) {
        cli_status_error(st, "cannot decrypt '%s'", in);
        goto done;
    }
    if (!offset_given) offset = rec.offset;
    if (data && cifar_read(data, s.kind, s.coarse, offset, h.images, &cb)) goto done;
    FILE *f = stdout;
    if (out) {
        if (cli_output_open(&o, out, false)) goto done;
        f = o.f;
    }
    const cli_score_print how = {.flood_bits = flood_given ? flood_bits : 0,
                                 .flood_stddev = flood_given && n_out ? ckks_flood_slot_stddev(s.ctx, cts[0], &flood) : 0};
    if (cli_print_scores(f, json, scores, h.images, s.classes, data ? cb.labels : NULL, offset, &how)) goto done;
    if (out && cli_output_commit(&o)) goto done;
    rc = CLI_EXIT_OK;
done:
    if (rc && out) cli_output_abort(&o);
    pbf_close(&r);
    cts_free(cts, n_out);
    free(scores);
    free(own_record);
    cifar_batch_free(&cb);
    ckks_secret_key_free(sk);
    setup_free(&s);
    return rc;
}

/* ---- bench resnet ------------------------------------------------------------------------- */

/* "model name" of /proc/cpuinfo, or "unknown". */
static void cpu_model(char *out, size_t cap)
{
    snprintf(out, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10)) continue;
        const char *v = strchr(line, ':');
        if (!v) break;
        v++;
        while (*v == ' ' || *v == '\t') v++;
        snprintf(out, cap, "%s", v);
        out[strcspn(out, "\n")] = 0;
        break;
    }
    fclose(f);
}

/* Median of three plain bootstraps with bt of a ciphertext of random values in the unit square
 * (every slot of bt). */
static hecnn_status measure_bootstrap(const setup *s, const ckks_bootstrapper *bt, const ckks_boot_keys *keys,
                                      const ckks_secret_key *sk, double *t_boot)
{
    const size_t n = ckks_bootstrapper_slots(bt);
    double complex *v = malloc(n * sizeof *v);
    ckks_plaintext *pt = NULL;
    ckks_ciphertext *ct = NULL, *out = NULL;
    hecnn_status st = v ? HECNN_OK : HECNN_ERR_NO_MEMORY;
    if (!st) st = ckks_plaintext_new(&pt, s->ctx);
    if (!st) st = ckks_ciphertext_new(&ct, s->ctx);
    if (!st) st = ckks_ciphertext_new(&out, s->ctx);
    unsigned long long seed = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; !st && i < n; i++) {
        double part[2];
        for (int k = 0; k < 2; k++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            part[k] = (double)(seed >> 11) * 0x1.0p-53 * 2 - 1;
        }
        v[i] = part[0] + I * part[1];
    }
    if (!st) st = ckks_encode(s->ctx, pt, v, n, n, 0, ckks_context_default_scale(s->ctx));
    if (!st) st = ckks_encrypt_sk(s->ctx, ct, pt, sk);
    double t[3];
    for (int r = 0; r < 3 && !st; r++) {
        const double t0 = now_s();
        st = ckks_bootstrap(bt, keys, out, ct);
        t[r] = now_s() - t0;
    }
    if (!st) *t_boot = bench_median(t, 3);
    free(v);
    ckks_plaintext_free(pt);
    ckks_ciphertext_free(ct);
    ckks_ciphertext_free(out);
    return st;
}

/* t_boot, the unit of the targets: the preset's bootstrap of every slot (bp), whatever the plan's
 * bootstrapper refreshes; a plan that bootstraps fewer slots has the reference built for the
 * measurement (its keys freed before the plan's are made). */
static hecnn_status measure_t_boot(const setup *s, const ckks_boot_params *bp, const ckks_secret_key *sk, double *t_boot)
{
    ckks_bootstrapper *bt = NULL;
    ckks_boot_keys *keys = NULL;
    hecnn_status st = ckks_bootstrapper_new(&bt, s->ctx, bp);
    if (!st) st = ckks_boot_keys_generate_compact(&keys, bt, sk);
    if (!st) st = measure_bootstrap(s, bt, keys, sk, t_boot);
    ckks_boot_keys_free(keys);
    ckks_bootstrapper_free(bt);
    return st;
}

int cmd_bench_resnet(int argc, char **argv)
{
    cli_protect_secrets(); /* it makes a secret key */
    const char *model = NULL, *data = NULL, *preset_s = "n16", *layout_s = "";
    size_t batch = 0, offset = 0;
    unsigned threads = 0;
    const char *budget_s = NULL, *scratch = ".";
    bool json = false, progress = false, plan_only = false;
    const cli_opt opts[] = {
        {"memory-budget", CLI_OPT_STRING, &budget_s, "SIZE", "keep the process under SIZE (8G, 512M, bytes)", NULL},
        {"scratch", CLI_OPT_STRING, &scratch, "DIR", "where stage outputs may be spilled under a budget (default: .)", NULL},
        {"plan-only", CLI_OPT_FLAG, &plan_only, NULL, "print the plan's costs and memory schedules, run nothing", NULL},
        {"model", CLI_OPT_STRING, &model, "FILE", "calibrated model file", NULL},
        {"data", CLI_OPT_STRING, &data, "FILE", "CIFAR binary file (test images)", NULL},
        {"progress", CLI_OPT_FLAG, &progress, NULL, "progress lines on stderr (a log for long runs)", NULL},
        {"batch", CLI_OPT_SIZE, &batch, "B", "images (one batch)", NULL},
        {"offset", CLI_OPT_SIZE, &offset, "K", "first image (default 0)", NULL},
        {"threads", CLI_OPT_UINT, &threads, "T", "threads (default: all cores)", NULL},
        {"json", CLI_OPT_FLAG, &json, NULL, "print JSON", NULL},
        {"preset", CLI_OPT_STRING, &preset_s, "NAME", "n16 (default: 128-bit, N = 2^16) or test (insecure N = 2^12)", NULL},
        {"layout", CLI_OPT_STRING, &layout_s, "NAME", "single or batched (default: the plan's choice, single for --batch 1 "
         "where the model fits)", NULL},
        {0},
    };
    const cli_command cmd = {
        "bench resnet", "--model FILE --data CIFAR_BIN --batch B [--offset K] [--threads T] [--json] [--progress] [--preset n16|test] "
        "[--layout single|batched] [--memory-budget SIZE [--scratch DIR]] [--plan-only]",
        "Encrypted inference of one batch of CIFAR images (batched or single layout), all roles in one process:\n"
        "seconds per image (run time / batch) and its split, bootstraps and rotations per image, peak RSS,\n"
        "key memory, t_boot (median of 3 plain bootstraps at the same thread count) and s/image / t_boot,\n"
        "and accuracy: encrypted argmax against the labels, against the plaintext simulation (argmax\n"
        "agreement, largest |logit difference|) and the exact-ReLU float accuracy on the same images.",
        opts, 0};
    int rc = cli_parse(&cmd, argc, argv, NULL, NULL);
    if (rc) return rc == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    if (cli_require(&cmd, "model", model) || cli_require(&cmd, "data", data)) return CLI_EXIT_USAGE;
    if (batch == 0 || batch > MAX_BATCH) {
        cli_error("--batch B (1..%u) is required", MAX_BATCH);
        return CLI_EXIT_USAGE;
    }
    ckks_boot_preset preset;
    hecnn_plan_layout layout;
    if (preset_by_name(preset_s, &preset) || layout_by_name(layout_s, &layout)) return CLI_EXIT_USAGE;
    if (threads) hecnn_set_threads((int)threads);
    setup s = {0};
    cifar_batch cb = {0};
    ckks_secret_key *sk = NULL;
    ckks_boot_keys *boot = NULL;
    ckks_eval_keys *net = NULL;
    ckks_ciphertext **cin = NULL, **cout = NULL;
    size_t n_in = 0, n_out = 0;
    double *enc = NULL, *sim = NULL, *exact = NULL;
    rc = CLI_EXIT_FAIL;
    if (load_model(model, &s.g, s.digest) || cifar_model(s.g, model, &s.classes, &s.kind, &s.coarse)) goto done;
    if (cifar_read(data, s.kind, s.coarse, offset, batch, &cb)) goto done;
    cifar_normalise(cb.pixels, cb.n, hecnn_graph_input_mean(s.g), hecnn_graph_input_std(s.g));
    ckks_params_literal lit;
    ckks_boot_params bp;
    hecnn_status st = ckks_boot_preset_params(&lit, &bp, preset);
    if (st) {
        cli_status_error(st, "preset %s", preset_s);
        goto done;
    }
    double t0 = now_s();
    if (preset_context(preset, &lit, &s.ctx)) goto done;
    s.rec = (plan_record){.preset = preset, .batch = batch, .layout = layout};
    if (setup_plan(&s, &bp)) goto done;
    const double setup_s = now_s() - t0;
    if (plan_only) {
        /* keys not counted: the schedules' own memory, fastest first, and the smallest */
        hecnn_memory_schedule m, least;
        if (plan_memory(&s, NULL, NULL, 0, &m)) goto done;
        printf("plan: batch %zu, %zu images per ciphertext, %.3f paired bootstraps and %.2f rotations per image, masks %.1f MiB, "
               "%zu network keys\n",
               batch, hecnn_plan_images_per_ciphertext(s.plan), (double)hecnn_plan_bootstraps(s.plan) / (double)batch,
               (double)hecnn_plan_rotations(s.plan) / (double)batch, hecnn_plan_bytes(s.plan) / 1048576.0,
               hecnn_plan_key_needs(s.plan, NULL, 0));
        print_memory(stdout, NULL, &m);
        for (int spill = 0; spill < 2 && m.run_bytes; spill++) {
            const hecnn_memory_options mo = {.budget = 1, .scratch_dir = spill ? scratch : NULL};
            if (hecnn_plan_set_memory(s.plan, &mo, &least) != HECNN_ERR_NO_MEMORY) goto done;
            printf("smallest budget %s spilling: %.2f GiB plus the keys\n", spill ? "with" : "without",
                   least.min_budget / 1073741824.0);
        }
        rc = CLI_EXIT_OK;
        goto done;
    }
    if ((st = ckks_secret_key_generate(&sk, s.ctx))) {
        cli_status_error(st, "cannot generate the keys");
        goto done;
    }
    double t_boot = 0;
    const bool sparse = s.rec.boot_log_slots != bp.log_slots;
    if (sparse && (st = measure_t_boot(&s, &bp, sk, &t_boot))) {
        cli_status_error(st, "cannot measure t_boot");
        goto done;
    }
    const double t_boot_rss = sparse ? bench_peak_rss_mib() : 0; /* the peak so far: the reference's */
    t0 = now_s();
    if ((st = ckks_boot_keys_generate_compact(&boot, s.bt, sk)) || (st = hecnn_plan_keys_generate(&net, s.plan, sk))) {
        cli_status_error(st, "cannot generate the keys");
        goto done;
    }
    const double keygen_s = now_s() - t0;
    const size_t boot_bytes = ckks_boot_keys_memory_bytes(boot), net_bytes = eval_keys_memory(net);
    if (!sparse && (st = measure_bootstrap(&s, s.bt, boot, sk, &t_boot))) {
        cli_status_error(st, "cannot measure t_boot");
        goto done;
    }
    n_in = hecnn_plan_input_ciphertexts(s.plan);
    n_out = hecnn_plan_output_ciphertexts(s.plan);
    hecnn_memory_schedule mem;
    const uint64_t ct_limb = 2 * (uint64_t)ckks_context_n(s.ctx) * 8; /* a limb of both halves */
    const uint64_t cts = ((uint64_t)n_in * (hecnn_plan_input_level(s.plan) + 1) + 2 * (uint64_t)n_out) * ct_limb;
    if (plan_memory(&s, budget_s, scratch, boot_bytes + net_bytes + cts, &mem)) goto done;
    if (!json) print_memory(stdout, budget_s, &mem);
    const size_t nc = s.classes;
    enc = calloc(batch * nc, sizeof *enc);
    sim = calloc(batch * nc, sizeof *sim);
    exact = calloc(batch * nc, sizeof *exact);
    if (!enc || !sim || !exact || !(cin = cts_new(s.ctx, n_in)) || !(cout = cts_new(s.ctx, n_out))) {
        cli_error("out of memory");
        goto done;
    }
    t0 = now_s();
    if ((st = hecnn_plan_encrypt(s.plan, cin, cb.pixels, batch, NULL, sk))) {
        cli_status_error(st, "cannot encrypt the images");
        goto done;
    }
    const double encrypt_s = now_s() - t0;
    hecnn_run_stats stats;
    t0 = now_s();
    progress_state ps = {.on = progress, .t0 = t0};
    if (progress) fprintf(stderr, "%s: t_boot %.2f s; running %zu images\n", cli_command_prefix(), t_boot, batch);
    if ((st = hecnn_plan_run(s.plan, net, boot, cin, cout, progress_cb, &ps, NULL, &stats))) {
        cli_status_error(st, "inference failed");
        goto done;
    }
    const double run_s = now_s() - t0;
    if ((st = hecnn_plan_decrypt(s.plan, enc, batch, cout, sk)) ||
        (st = hecnn_graph_infer(s.g, HECNN_INFER_APPROX, cb.pixels, batch, sim, NULL)) ||
        (st = hecnn_graph_infer(s.g, HECNN_INFER_EXACT, cb.pixels, batch, exact, NULL))) {
        cli_status_error(st, "cannot decrypt or simulate");
        goto done;
    }
    size_t ok_enc = 0, ok_exact = 0, agree = 0;
    double max_diff = 0, max_logit = 0;
    for (size_t i = 0; i < batch; i++) {
        const size_t e = cli_argmax(enc + i * nc, nc), a = cli_argmax(sim + i * nc, nc), x = cli_argmax(exact + i * nc, nc);
        ok_enc += e == cb.labels[i];
        ok_exact += x == cb.labels[i];
        agree += e == a;
        for (size_t c = 0; c < nc; c++) {
            max_diff = fmax(max_diff, fabs(enc[i * nc + c] - sim[i * nc + c]));
            max_logit = fmax(max_logit, fabs(sim[i * nc + c]));
        }
    }
    const double per_image = run_s / (double)batch, nb = (double)batch;
    char cpu[256];
    cpu_model(cpu, sizeof cpu);
    const double rss = bench_peak_rss_mib();
    if (json) {
        char d[65];
        hex(s.digest, 32, d);
        json_object *root = cli_json_object(), *split = cli_json_object();
        cli_json_add_string(root, "model", model);
        cli_json_add_string(root, "cpu", cpu);
        cli_json_add_string(root, "model_sha256", d);
        cli_json_add_string(root, "preset", preset_s);
        cli_json_add_string(root, "layout", hecnn_plan_layout_name(hecnn_plan_layout_of(s.plan)));
        cli_json_add_uint(root, "log_n", lit.log_n);
        cli_json_add_uint(root, "batch", batch);
        cli_json_add_uint(root, "offset", offset);
        cli_json_add_int(root, "threads", hecnn_get_threads());
        cli_json_add_uint(root, "images_per_ciphertext", hecnn_plan_images_per_ciphertext(s.plan));
        cli_json_add_uint(root, "input_ciphertexts", n_in);
        cli_json_add_number(root, "setup_s", "%.3f", setup_s);
        cli_json_add_number(root, "keygen_s", "%.3f", keygen_s);
        cli_json_add_number(root, "encrypt_s", "%.3f", encrypt_s);
        cli_json_add_number(root, "run_s", "%.3f", run_s);
        cli_json_add_number(root, "seconds_per_image", "%.4f", per_image);
        cli_json_add_number(split, "linear", "%.3f", stats.seconds_linear);
        cli_json_add_number(split, "activation", "%.3f", stats.seconds_activation);
        cli_json_add_number(split, "bootstrap", "%.3f", stats.seconds_bootstrap);
        cli_json_add_number(split, "other", "%.3f", stats.seconds_other);
        cli_json_add_number(split, "spill", "%.3f", stats.seconds_spill);
        cli_json_add(root, "split_s", split);
        cli_json_add_number(root, "bootstraps_per_image", "%.4f", (double)stats.bootstraps / nb);
        cli_json_add_uint(root, "bootstrap_slots", ckks_bootstrapper_slots(s.bt));
        cli_json_add_number(root, "rotations_per_image", "%.4f", (double)stats.rotations / nb);
        cli_json_add_number(root, "peak_rss_mib", "%.1f", rss);
        if (sparse) cli_json_add_number(root, "t_boot_peak_rss_mib", "%.1f", t_boot_rss);
        cli_json_add_uint(root, "key_bytes", boot_bytes + net_bytes);
        cli_json_add_uint(root, "boot_key_bytes", boot_bytes);
        cli_json_add_uint(root, "network_key_bytes", net_bytes);
        cli_json_add_number(root, "t_boot_s", "%.3f", t_boot);
        cli_json_add_number(root, "per_image_over_t_boot", "%.4f", per_image / t_boot);
        cli_json_add_number(root, "accuracy_encrypted", "%.6f", ok_enc / nb);
        cli_json_add_number(root, "accuracy_exact", "%.6f", ok_exact / nb);
        cli_json_add_number(root, "argmax_agreement", "%.6f", agree / nb);
        cli_json_add_number(root, "max_logit_diff", "%.6g", max_diff);
        cli_json_add_number(root, "max_logit", "%.6g", max_logit);
        cli_json_add_string(root, "memory_budget", budget_s);
        cli_json_add_uint(root, "chunk_groups", mem.chunk_groups);
        cli_json_add_uint(root, "groups", mem.groups);
        cli_json_add_bool(root, "spill", mem.spill);
        cli_json_add_number(root, "estimated_peak_mib", "%.1f", mem.peak_bytes / 1048576.0);
        if (cli_json_print(stdout, root, false)) goto done;
    } else {
        printf("ResNet batch: %s, preset %s (N = 2^%u), %s layout, batch %zu (images %zu..%zu of %s), %d threads, CPU %s\n", model,
               preset_s, lit.log_n, hecnn_plan_layout_name(hecnn_plan_layout_of(s.plan)), batch, offset, offset + batch - 1, data, hecnn_get_threads(), cpu);
        printf("  setup %.1f s, keygen %.1f s, encrypt %.2f s; keys %.1f MiB in memory (bootstrapping %.1f, network %.1f)\n", setup_s,
               keygen_s, encrypt_s, (double)(boot_bytes + net_bytes) / 1048576.0, (double)boot_bytes / 1048576.0,
               (double)net_bytes / 1048576.0);
        printf("  run %.2f s = %.3f s/image amortized: linear %.2f s, activations %.2f s, bootstrapping %.2f s, other %.2f s, "
               "spilled outputs written and read %.2f s\n",
               run_s, per_image, stats.seconds_linear, stats.seconds_activation, stats.seconds_bootstrap, stats.seconds_other,
               stats.seconds_spill);
        printf("  per image: %.3f bootstraps of %zu slots, %.2f rotations; peak RSS %.0f MiB\n", (double)stats.bootstraps / nb,
               ckks_bootstrapper_slots(s.bt), (double)stats.rotations / nb, rss);
        printf("  t_boot %.3f s (median of 3 bootstraps of %u slots, %d threads): s/image / t_boot = %.3f\n", t_boot,
               1u << bp.log_slots, hecnn_get_threads(), per_image / t_boot);
        if (sparse)
            printf("  (t_boot's reference bootstrapper, keys of its own, freed before the plan's: peak RSS %.0f MiB up to then)\n",
                   t_boot_rss);
        printf("  accuracy: encrypted %zu/%zu = %.2f %%, exact float %zu/%zu = %.2f %%; encrypted vs simulation: argmax agreement "
               "%zu/%zu, largest |logit difference| %.3g (logits up to %.3g)\n",
               ok_enc, batch, 100.0 * ok_enc / nb, ok_exact, batch, 100.0 * ok_exact / nb, agree, batch, max_diff, max_logit);
    }
    rc = CLI_EXIT_OK;
done:
    cts_free(cin, n_in);
    cts_free(cout, n_out);
    free(enc);
    free(sim);
    free(exact);
    ckks_eval_keys_free(net);
    ckks_boot_keys_free(boot);
    ckks_secret_key_free(sk);
    cifar_batch_free(&cb);
    setup_free(&s);
    return rc;
}

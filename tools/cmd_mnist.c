/* The MNIST commands: data owner (keygen-mnist, encrypt-images, decrypt-scores), model provider
 * (encrypt-model), server (infer), and the demo and benchmark that run all three in one process. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cmd_mnist.h"
#include "util_bench.h"
#include "hecnn/hecnn.h"
#include "hecnn/plan.h"
#include "util_cli.h"
#include "util_idx.h"
#include "util_json.h"

#define SAMPLE_IMAGES "mnist-sample-64-images-idx3-ubyte"
#define SAMPLE_LABELS "mnist-sample-64-labels-idx1-ubyte"
#define SHIPPED_MODEL "mnist_vr.hcnn"
#define DEFAULT_BATCH 256
/* decrypt-scores: flooding bits over the floor estimate (a rescale's rounding at level 0): logit noise
 * of standard deviation 2^-4.6 at N = 2^14, scale 2^36 (docs/SECURITY.md); and printed scores are
 * rounded to 2^-SCORE_ROUND_BITS of their range */
#define SCORE_FLOOD_BITS 20.0
#define SCORE_ROUND_BITS 10

static double now_s(void) { return bench_seconds(CLOCK_MONOTONIC); }

static bool is_dir(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* The shipped models/ folder: $HECNN_MODELS, ./models, or models/ beside or above the executable. */
static const char *models_dir(void)
{
    static char found[2 * PATH_MAX];
    if (found[0]) return found;
    const char *env = getenv("HECNN_MODELS");
    if (env && is_dir(env)) return snprintf(found, sizeof found, "%s", env), found;
    char probe[2 * PATH_MAX];
    snprintf(probe, sizeof probe, "models/%s", SHIPPED_MODEL);
    if (cli_file_exists(probe)) return snprintf(found, sizeof found, "models"), found;
    char exe[PATH_MAX];
    const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        for (int up = 0; up < 4; up++) {
            char *slash = strrchr(exe, '/');
            if (!slash) break;
            *slash = 0;
            snprintf(probe, sizeof probe, "%s/models/%s", exe, SHIPPED_MODEL);
            if (cli_file_exists(probe)) return snprintf(found, sizeof found, "%s/models", exe), found;
        }
    }
    return NULL;
}

/* A shipped file's path (malloc'ed) or NULL with a message. */
static char *shipped(const char *name)
{
    const char *dir = models_dir();
    if (!dir) {
        cli_error("cannot find the shipped models/ folder (with %s): run from the source tree, or set HECNN_MODELS", SHIPPED_MODEL);
        return NULL;
    }
    return cli_path_join(dir, name);
}

/* ---- key files ---------------------------------------------------------------------------- */

typedef struct keyset {
    ckks_context *ctx;
    ckks_secret_key *sk;
    ckks_public_key *pk;
    ckks_eval_keys *evk;
} keyset;

static void keyset_free(keyset *k)
{
    ckks_eval_keys_free(k->evk);
    ckks_public_key_free(k->pk);
    ckks_secret_key_free(k->sk);
    ckks_context_free(k->ctx);
    memset(k, 0, sizeof *k);
}

enum { NEED_SK = 1, NEED_PK = 2, NEED_EVK = 4, WANT_SK = 8 };

/* Paths: explicit options win over --keys DIR. */
static int keyset_load(keyset *k, const char *dir, const char *params, const char *sk, const char *pk, const char *evk, int need)
{
    memset(k, 0, sizeof *k);
    char *own[4] = {0};
    if (dir) {
        if (!params) params = own[0] = cli_path_join(dir, cli_key_file_names[CLI_KEY_PARAMS]);
        if (!sk) sk = own[1] = cli_path_join(dir, cli_key_file_names[CLI_KEY_SECRET]);
        if (!pk) pk = own[2] = cli_path_join(dir, cli_key_file_names[CLI_KEY_PUBLIC]);
        if (!evk) evk = own[3] = cli_path_join(dir, cli_key_file_names[CLI_KEY_EVAL]);
    }
    int rc = -1;
    if (!params) {
        cli_error("give --keys DIR (from 'hecnn keygen') or --params FILE");
        goto done;
    }
    if (cli_context(params, NULL, &k->ctx, NULL)) goto done;
    if ((need & WANT_SK) && sk && cli_file_exists(sk)) need |= NEED_SK;
    if (need & NEED_SK) {
        if (!sk) {
            cli_error("the secret key is needed: --keys DIR or --secret-key FILE");
            goto done;
        }
        if (cli_load_secret_key(k->ctx, sk, &k->sk)) goto done;
    }
    if ((need & NEED_PK) && !k->sk) {
        if (!pk) {
            cli_error("the public key is needed: --keys DIR or --public-key FILE");
            goto done;
        }
        if (cli_load_public_key(k->ctx, pk, &k->pk)) goto done;
    }
    if (need & NEED_EVK) {
        if (!evk) {
            cli_error("the evaluation keys are needed: --keys DIR or --eval-keys FILE");
            goto done;
        }
        if (cli_load_eval_keys(k->ctx, evk, &k->evk)) goto done;
    }
    rc = 0;
done:
    for (int i = 0; i < 4; i++) free(own[i]);
    if (rc) keyset_free(k);
    return rc;
}

static int check_mnist_context(const ckks_context *ctx)
{
    if (ckks_context_max_level(ctx) < 9 || ckks_context_max_slots(ctx) < 512) {
        cli_error("the key set's parameters have %u levels and %zu slots; the MNIST network needs 9 levels "
                  "(make keys with 'hecnn keygen-mnist' or 'hecnn keygen --params models/mnist_params.hecnn')",
                  ckks_context_max_level(ctx), ckks_context_max_slots(ctx));
        return -1;
    }
    return 0;
}

static int parse_mode(const char *s, hecnn_mnist_mode *mode, bool *both)
{
    if (both) *both = false;
    if (!s || !strcmp(s, "plain")) *mode = HECNN_MNIST_PLAIN_MODEL;
    else if (!strcmp(s, "encrypted")) *mode = HECNN_MNIST_ENCRYPTED_MODEL;
    else if (both && !strcmp(s, "both")) *mode = HECNN_MNIST_PLAIN_MODEL, *both = true;
    else {
        cli_error("--mode %.32s: choose plain, encrypted%s", s, both ? " or both" : "");
        return -1;
    }
    return 0;
}

/* ---- the network as a plan ------------------------------------------------------------------------ *
 * The MNIST model's graph (hecnn_mnist_to_graph) laid out by the rows packing (include/hecnn/plan.h).
 * The data owner's commands need the network's shape only: its graph then carries zero weights. */
typedef struct mnist_plan {
    hecnn_graph *g;
    hecnn_plan *plan;
    size_t rows, width, per_batch; /* images per batch, slots per row, ciphertexts per batch */
} mnist_plan;

static void mnist_plan_free(mnist_plan *mp)
{
    hecnn_plan_free(mp->plan);
    hecnn_graph_free(mp->g);
    memset(mp, 0, sizeof *mp);
}

static hecnn_status mnist_plan_new(mnist_plan *mp, const ckks_context *ctx, const hecnn_mnist_model *model, size_t batch,
                                   bool encrypted_weights)
{
    memset(mp, 0, sizeof *mp);
    hecnn_mnist_model *zero = model ? NULL : calloc(1, sizeof *zero);
    if (!model && !zero) return HECNN_ERR_NO_MEMORY;
    hecnn_status st = hecnn_mnist_to_graph(&mp->g, model ? model : zero);
    free(zero);
    const hecnn_plan_options opt = {.batch = batch ? batch : 1, .layout = HECNN_LAYOUT_ROWS, .encrypted_weights = encrypted_weights};
    if (!st) st = hecnn_plan_new(&mp->plan, mp->g, ctx, NULL, &opt);
    if (st) {
        mnist_plan_free(mp);
        return st;
    }
    mp->rows = hecnn_plan_images_per_ciphertext(mp->plan);
    mp->width = ckks_context_max_slots(ctx) / mp->rows;
    mp->per_batch = hecnn_plan_input_ciphertexts(mp->plan);
    return HECNN_OK;
}

/* The plan for batches in rows of `width` slots (from a file's header), or a message. */
static int mnist_plan_for_width(mnist_plan *mp, const ckks_context *ctx, const hecnn_mnist_model *model, size_t width,
                                bool encrypted_weights, const char *file)
{
    const size_t slots = ckks_context_max_slots(ctx);
    hecnn_status st = width && width <= slots ? mnist_plan_new(mp, ctx, model, slots / width, encrypted_weights) : HECNN_ERR_INVALID_ARGUMENT;
    if (!st && mp->width == width) return 0;
    if (!st) mnist_plan_free(mp);
    cli_error("'%s': %s: rows of %zu slots; the network's rows are a power of two from 32 to %zu slots", file,
              hecnn_status_name(HECNN_ERR_INVALID_ARGUMENT), width, slots / 16 < 1024 ? slots / 16 : 1024);
    return -1;
}

/* The plan's keys (hecnn_plan_key_needs), each only up to the level it is used at; held whole in
 * memory (hecnn_plan_keys_generate compacts the rotation keys: smaller, slower to use). */
static hecnn_status mnist_keys_generate(ckks_eval_keys **out, const hecnn_plan *plan, const ckks_context *ctx, const ckks_secret_key *sk)
{
    ckks_key_need need[256];
    const size_t n = hecnn_plan_key_needs(plan, need, 256);
    if (n > 256) return HECNN_ERR_UNSUPPORTED;
    hecnn_status st = ckks_eval_keys_new(out, ctx);
    for (size_t i = 0; !st && i < n; i++) {
        ckks_switching_key *k = NULL;
        st = need[i].galois ? ckks_galois_key_generate(&k, sk, need[i].galois, need[i].max_level)
                            : ckks_relin_key_generate(&k, sk, need[i].max_level);
        if (!st) st = ckks_eval_keys_add(*out, k);
    }
    if (st) {
        ckks_eval_keys_free(*out);
        *out = NULL;
    }
    return st;
}

/* ---- owner record -------------------------------------------------------------------------------- *
 * encrypt-images writes what the data owner must later check the server's scores against: the
 * layout, the counts and the digest of the ciphertext file (docs/FORMATS.md, "Owner record").
 * A text file of "key value" lines in this fixed order. */

#define RECORD_SUFFIX ".record"
#define RECORD_KEY_FILE "images.record"
#define RECORD_MAGIC "hecnn-owner-record 1"
#define RECORD_MAX_BYTES 4096

typedef struct owner_record {
    unsigned long long param_id;
    size_t slots, width, rows, per_batch, batches, images, offset;
    unsigned char sha256[32];
} owner_record;

static const char *const record_keys[] = {"parameter-id", "slots", "row-width", "images-per-batch", "ciphertexts-per-batch",
                                          "batches", "images", "offset", "images-sha256"};
enum { RECORD_FIELDS = sizeof record_keys / sizeof *record_keys };

static void record_write(FILE *f, const owner_record *r)
{
    fprintf(f, "%s\n%s %016llx\n", RECORD_MAGIC, record_keys[0], r->param_id);
    const size_t v[7] = {r->slots, r->width, r->rows, r->per_batch, r->batches, r->images, r->offset};
    for (int i = 0; i < 7; i++) fprintf(f, "%s %zu\n", record_keys[1 + i], v[i]);
    fprintf(f, "%s ", record_keys[8]);
    for (int i = 0; i < 32; i++) fprintf(f, "%02x", r->sha256[i]);
    fputc('\n', f);
}

static int hex_nibble(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Read and validate a record (bounded: RECORD_MAX_BYTES). 0 on success, else reported. */
static int record_read(const char *path, owner_record *r)
{
    cli_input in;
    if (cli_input_open(&in, path, false)) return -1;
    char buf[RECORD_MAX_BYTES + 1];
    const size_t n = fread(buf, 1, RECORD_MAX_BYTES + 1, in.f);
    const bool err = ferror(in.f) != 0;
    cli_input_close(&in);
    if (err) {
        cli_error("cannot read owner record '%s': %s: read error", path, hecnn_status_name(HECNN_ERR_IO));
        return -1;
    }
    if (n > RECORD_MAX_BYTES || memchr(buf, 0, n)) {
        cli_error("'%s' is not an owner record (larger than %d bytes, or binary)", path, RECORD_MAX_BYTES);
        return -1;
    }
    buf[n] = 0;
    memset(r, 0, sizeof *r);
    char *line = buf, *next;
    for (int i = -1; i < RECORD_FIELDS; i++, line = next) {
        char *nl = strchr(line, '\n');
        if (!nl) {
            cli_error("owner record '%s' is truncated: %s missing (write it again with 'hecnn encrypt-images')", path,
                      i < 0 ? "its first line" : record_keys[i]);
            return -1;
        }
        *nl = 0;
        next = nl + 1;
        if (i < 0) {
            if (strcmp(line, RECORD_MAGIC)) {
                cli_error("'%s' is not an owner record: its first line is not '%s'", path, RECORD_MAGIC);
                return -1;
            }
            continue;
        }
        const size_t klen = strlen(record_keys[i]);
        const char *val = line + klen + 1;
        bool ok = !strncmp(line, record_keys[i], klen) && line[klen] == ' ';
        if (ok && i == 0) {
            char *end;
            errno = 0;
            r->param_id = strtoull(val, &end, 16);
            ok = !errno && end == val + 16 && !*end;
        } else if (ok && i == 8) {
            ok = strlen(val) == 64;
            for (int j = 0; ok && j < 32; j++) {
                const int hi = hex_nibble(val[2 * j]), lo = hex_nibble(val[2 * j + 1]);
                ok = hi >= 0 && lo >= 0;
                r->sha256[j] = (unsigned char)(hi << 4 | lo);
            }
        } else if (ok) {
            long l;
            size_t *dst[7] = {&r->slots, &r->width, &r->rows, &r->per_batch, &r->batches, &r->images, &r->offset};
            ok = cli_parse_long(val, 0, LONG_MAX, &l);
            if (ok) *dst[i - 1] = (size_t)l;
        }
        if (!ok) {
            cli_error("owner record '%s': line %d should be '%s VALUE', got '%.40s'", path, i + 2, record_keys[i], line);
            return -1;
        }
    }
    if (*line) {
        cli_error("owner record '%s': unexpected text after %s", path, record_keys[RECORD_FIELDS - 1]);
        return -1;
    }
    return 0;
}

/* The scores' layout and counts against the owner's record: the server must not have changed them. */
static int record_check(const owner_record *r, const char *rpath, const ckks_context *ctx, const hecnn_vr_file_header *h,
                        const char *in)
{
    const char *what = NULL;
    size_t want = 0, got = 0;
    if (r->param_id != (unsigned long long)ckks_context_param_id(ctx)) {
        cli_error("owner record '%s' was made under other CKKS parameters than the keys", rpath);
        return -1;
    }
    if (r->slots != ckks_context_max_slots(ctx)) what = "slots per ciphertext", want = r->slots, got = ckks_context_max_slots(ctx);
    else if (h->width != r->width) what = "row width", want = r->width, got = h->width;
    else if (h->images != r->images) what = "image count", want = r->images, got = h->images;
    else if (h->batches != r->batches) what = "batch count", want = r->batches, got = h->batches;
    else if (r->rows != r->slots / r->width) what = "images per batch (in the record)", want = r->slots / r->width, got = r->rows;
    if (what) {
        cli_error("scores '%s' do not match the owner record '%s': %s %zu, the images were encrypted with %zu; "
                  "refusing to decrypt (the server changed the layout, or these are not the scores of those images)",
                  in, rpath, what, got, want);
        return -1;
    }
    return 0;
}

/* ---- keygen-mnist ------------------------------------------------------------------------------ */

int cmd_mnist_keygen(int argc, char **argv)
{
    cli_protect_secrets(); /* it holds a secret key */
    const char *out_dir = NULL, *mode_s = "encrypted";
    size_t batch = DEFAULT_BATCH;
    bool force = false;
    const cli_opt opts[] = {
        {"out-dir", CLI_OPT_STRING, &out_dir, "DIR", "directory for the key files", NULL},
        {"batch", CLI_OPT_SIZE, &batch, "M", "images per batch the keys serve (sets the row width; default 256)", NULL},
        {"mode", CLI_OPT_STRING, &mode_s, "MODE", "plain or encrypted (default: encrypted, which also serves plain)", NULL},
        {"force", CLI_OPT_FLAG, &force, NULL, "replace existing key files", NULL},
        {0},
    };
    const cli_command cmd = {"keygen-mnist", "--out-dir DIR [--batch M] [--mode plain|encrypted]",
                             "Keys for the MNIST network: its 128-bit parameter set (N = 2^14, 10 primes), a relinearization key\n"
                             "and exactly the rotation keys the network uses, each only up to the level it is used at.",
                             opts, 0};
    int rc = cli_parse(&cmd, argc, argv, NULL, NULL);
    if (rc) return rc == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    hecnn_mnist_mode mode;
    if (cli_require(&cmd, "out-dir", out_dir)) return CLI_EXIT_USAGE;
    if (parse_mode(mode_s, &mode, NULL)) return CLI_EXIT_USAGE;
    ckks_params_literal lit;
    hecnn_mnist_params(&lit);
    ckks_context *ctx = NULL;
    ckks_secret_key *sk = NULL;
    ckks_public_key *pk = NULL;
    ckks_eval_keys *keys = NULL;
    mnist_plan mp = {0};
    char *paths[CLI_KEY_FILES] = {0};
    rc = CLI_EXIT_FAIL;
    hecnn_status st = ckks_context_new(&ctx, &lit);
    if (!st) st = mnist_plan_new(&mp, ctx, NULL, batch, mode == HECNN_MNIST_ENCRYPTED_MODEL);
    if (!st) st = ckks_secret_key_generate(&sk, ctx);
    if (!st) st = ckks_public_key_generate(&pk, sk);
    if (!st) st = mnist_keys_generate(&keys, mp.plan, ctx, sk);
    if (st) {
        cli_status_error(st, "cannot generate the keys");
        goto done;
    }
    if (cli_key_dir_prepare(paths, out_dir, force)) goto done;
    if (cli_key_dir_write(paths, &lit, pk, keys, true, sk)) goto done;
    printf("MNIST keys for batches of %zu images (rows of %zu slots), %s model: relinearization, conjugation + %zu rotation keys\n",
           mp.rows, mp.width, mode == HECNN_MNIST_PLAIN_MODEL ? "plaintext" : "encrypted", ckks_eval_keys_count(keys) - 2);
    for (int i = 0; i < CLI_KEY_FILES; i++)
        printf("wrote %-32s %12llu bytes%s\n", paths[i], cli_file_size(paths[i]), i == CLI_KEY_SECRET ? " (keep it private)" : "");
    rc = CLI_EXIT_OK;
done:
    for (int i = 0; i < CLI_KEY_FILES; i++) free(paths[i]);
    mnist_plan_free(&mp);
    ckks_eval_keys_free(keys);
    ckks_public_key_free(pk);
    ckks_secret_key_free(sk);
    ckks_context_free(ctx);
    return rc;
}

/* ---- encrypt-images ------------------------------------------------------------------------------ */

int cmd_mnist_encrypt(int argc, char **argv)
{
    cli_protect_secrets(); /* it holds a secret key */
    const char *dir = NULL, *params = NULL, *sk_path = NULL, *pk_path = NULL, *images = NULL, *out = NULL, *record = NULL;
    size_t count = 0, offset = 0, batch = DEFAULT_BATCH;
    bool use_pk = false;
    const cli_opt opts[] = {
        {"keys", CLI_OPT_STRING, &dir, "DIR", "key directory from keygen (params.hecnn, secret.key or public.key)", NULL},
        {"params", CLI_OPT_STRING, &params, "FILE", "parameter file (instead of --keys)", NULL},
        {"secret-key", CLI_OPT_STRING, &sk_path, "FILE", "encrypt with the secret key (half-size ciphertexts)", NULL},
        {"public-key", CLI_OPT_STRING, &pk_path, "FILE", "encrypt with the public key", NULL},
        {"use-public-key", CLI_OPT_FLAG, &use_pk, NULL, "use the public key even when the secret key is at hand", NULL},
        {"images", CLI_OPT_STRING, &images, "FILE", "MNIST idx3 image file, plain or .gz (default: the shipped 64-digit sample)", NULL},
        {"count", CLI_OPT_SIZE, &count, "N", "images to encrypt (default: all from --offset)", NULL},
        {"offset", CLI_OPT_SIZE, &offset, "K", "first image (default 0)", NULL},
        {"batch", CLI_OPT_SIZE, &batch, "M", "images per batch, as the keys were made for (default 256)", NULL},
        {"out", CLI_OPT_STRING, &out, "FILE", "the encrypted batches", NULL},
        {"record", CLI_OPT_STRING, &record, "FILE", "the owner record for decrypt-scores (default: FILE.record beside --out)", NULL},
        {0},
    };
    const cli_command cmd = {"encrypt-images", "--keys DIR [--images FILE] [--count N] [--offset K] [--batch M] --out FILE",
                             "Data owner: encrypt 28x28 digits (pixels / 255), one image per matrix row, into batches of\n"
                             "ciphertexts (Volley Revolver encoding) for 'hecnn infer'. Also writes the owner record (layout,\n"
                             "counts, SHA-256 of --out) to --record, default OUT.record, and with --keys DIR to DIR/images.record:\n"
                             "decrypt-scores checks the server's scores against it.",
                             opts, 0};
    int rc = cli_parse(&cmd, argc, argv, NULL, NULL);
    if (rc) return rc == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    if (cli_require(&cmd, "out", out)) return CLI_EXIT_USAGE;
    char *own_images = NULL;
    if (!images && !(images = own_images = shipped(SAMPLE_IMAGES))) return CLI_EXIT_FAIL;
    keyset k;
    if (keyset_load(&k, dir, params, use_pk ? NULL : sk_path, pk_path, NULL, use_pk ? NEED_PK : (sk_path ? NEED_SK : WANT_SK | NEED_PK))) {
        free(own_images);
        return CLI_EXIT_FAIL;
    }
    double *px = NULL;
    size_t n_all = 0;
    mnist_plan mp = {0};
    ckks_ciphertext **cts = NULL;
    size_t per = 0;
    cli_output o = {0}, ro[2] = {{0}};
    char *rpath[2] = {0};
    rc = CLI_EXIT_FAIL;
    if (check_mnist_context(k.ctx)) goto done;
    const size_t olen = strlen(out);
    if (!record && (rpath[0] = malloc(olen + sizeof RECORD_SUFFIX))) snprintf(rpath[0], olen + sizeof RECORD_SUFFIX, "%s%s", out, RECORD_SUFFIX);
    else if (record) rpath[0] = strdup(record);
    if (dir) rpath[1] = cli_path_join(dir, RECORD_KEY_FILE);
    if (!rpath[0] || (dir && !rpath[1])) {
        cli_error("out of memory");
        goto done;
    }
    /* only the images asked for are read and converted */
    if (cli_idx_read_images(images, offset, count, &px, &count, &n_all)) goto done;
    if (offset >= n_all) {
        cli_error("--offset %zu: '%s' holds %zu images", offset, images, n_all);
        goto done;
    }
    hecnn_status st;
    if ((st = mnist_plan_new(&mp, k.ctx, NULL, batch, false))) {
        cli_status_error(st, "batch of %zu", batch);
        goto done;
    }
    const size_t m = mp.rows, nb = (count + m - 1) / m;
    per = mp.per_batch;
    cts = calloc(per, sizeof *cts);
    for (size_t i = 0; cts && i < per; i++)
        if (ckks_ciphertext_new(&cts[i], k.ctx)) goto done;
    if (!cts || cli_output_open(&o, out, false)) goto done;
    const hecnn_vr_file_header h = {HECNN_VR_FILE_IMAGES, mp.width, count, nb, per};
    if ((st = hecnn_vr_file_write_header(o.f, k.ctx, &h))) {
        cli_status_error(st, "cannot write '%s'", out);
        goto done;
    }
    const double t0 = now_s();
    for (size_t b = 0; b < nb; b++) {
        const size_t first = b * m, n = count - first < m ? count - first : m;
        st = hecnn_plan_encrypt(mp.plan, cts, px + first * HECNN_MNIST_PIXELS, n, k.sk ? NULL : k.pk, k.sk);
        for (size_t i = 0; !st && i < per; i++) st = ckks_ciphertext_save(cts[i], o.f);
        if (st) {
            cli_status_error(st, "cannot encrypt batch %zu", b);
            goto done;
        }
    }
    /* the ciphertexts and their records are all written and synced before any is renamed */
    owner_record rec = {ckks_context_param_id(k.ctx), ckks_context_max_slots(k.ctx), h.width, m, per, nb, count, offset, {0}};
    if (cli_output_close(&o) || cli_sha256_file(o.tmp, rec.sha256)) goto done;
    for (int i = 0; i < 2 && rpath[i]; i++) {
        if (cli_output_open(&ro[i], rpath[i], false)) goto done;
        record_write(ro[i].f, &rec);
        if (cli_output_close(&ro[i])) goto done;
    }
    if (cli_output_commit(&o)) goto done;
    for (int i = 0; i < 2 && rpath[i]; i++)
        if (cli_output_commit(&ro[i])) goto done;
    printf("encrypted %zu images (%zu..%zu of %s) in %zu batch%s of %zu (%zu ciphertexts each, %s key) in %.2f s: %s, %llu bytes\n",
           count, offset, offset + count - 1, images, nb, nb == 1 ? "" : "es", m, per, k.sk ? "secret" : "public", now_s() - t0, out,
           cli_file_size(out));
    printf("owner record (keep it to check the scores): %s%s%s\n", rpath[0], rpath[1] ? ", " : "", rpath[1] ? rpath[1] : "");
    rc = CLI_EXIT_OK;
done:
    if (rc) cli_output_abort(&o);
    for (int i = 0; i < 2; i++) {
        if (rc) cli_output_abort(&ro[i]);
        free(rpath[i]);
    }
    for (size_t i = 0; cts && i < per; i++) ckks_ciphertext_free(cts[i]);
    free(cts);
    mnist_plan_free(&mp);
    free(px);
    free(own_images);
    keyset_free(&k);
    return rc;
}

/* ---- decrypt-scores ------------------------------------------------------------------------------- */

/* The step scores are printed to: the power of two 2^-SCORE_ROUND_BITS of their range [-R, R]
 * (R the largest magnitude, rounded up to a power of two); 0 when every score is 0. */
static double score_step(const double *logits, size_t n)
{
    double r = 0;
    for (size_t i = 0; i < n * 10; i++) r = fmax(r, fabs(logits[i]));
    return r > 0 ? ldexp(1.0, (int)ceil(log2(2 * r)) - SCORE_ROUND_BITS) : 0;
}

/* Predictions from the (flooded) scores as decrypted; the scores printed rounded to `step`. */
int cmd_mnist_decrypt(int argc, char **argv)
{
    cli_protect_secrets(); /* it holds a secret key */
    const char *dir = NULL, *params = NULL, *sk_path = NULL, *in = NULL, *labels_path = NULL, *out = NULL, *record_path = NULL;
    size_t offset = 0;
    bool json = false, offset_given = false, no_flood = false;
    double flood_bits = SCORE_FLOOD_BITS;
    const cli_opt opts[] = {
        {"keys", CLI_OPT_STRING, &dir, "DIR", "key directory from keygen (params.hecnn, secret.key)", NULL},
        {"params", CLI_OPT_STRING, &params, "FILE", "parameter file (instead of --keys)", NULL},
        {"secret-key", CLI_OPT_STRING, &sk_path, "FILE", "the secret key (instead of --keys)", NULL},
        {"in", CLI_OPT_STRING, &in, "FILE", "encrypted scores from 'hecnn infer'", NULL},
        {"labels", CLI_OPT_STRING, &labels_path, "FILE", "MNIST idx1 labels: also print the accuracy", NULL},
        {"offset", CLI_OPT_SIZE, &offset, "K", "index of the first image in --labels (default: the record's, else 0)", &offset_given},
        {"record", CLI_OPT_STRING, &record_path, "FILE", "owner record from encrypt-images (default: DIR/images.record if present)", NULL},
        {"json", CLI_OPT_FLAG, &json, NULL, "print JSON", NULL},
        {"out", CLI_OPT_STRING, &out, "FILE", "write there instead of stdout", NULL},
        {"flood", CLI_OPT_DOUBLE, &flood_bits, "BITS", "flooding noise, 2^BITS times the error estimate (default 20)", NULL},
        {"no-flood", CLI_OPT_FLAG, &no_flood, NULL, "decrypt without flooding: UNSAFE if the scores are shared", NULL},
        {0},
    };
    const cli_command cmd = {"decrypt-scores",
                             "--keys DIR --in FILE [--record FILE] [--labels FILE [--offset K]] [--json] [--out FILE] [--flood BITS | --no-flood]",
                             "Data owner: decrypt the ten scores of every image and print the predicted digits. The scores'\n"
                             "layout and counts are checked against the owner record encrypt-images wrote (--record, or\n"
                             "DIR/images.record with --keys DIR): scores that disagree are refused.\n"
                             "The decryption is flooded (fresh noise 2^BITS times the error estimate; docs/SECURITY.md) and\n"
                             "the scores are printed rounded to 2^-10 of their range, so that the printed scores do not\n"
                             "reveal the decryption error, which depends on the secret key. --no-flood turns the flooding\n"
                             "off: unsafe if the scores leave the data owner.",
                             opts, 0};
    int rc = cli_parse(&cmd, argc, argv, NULL, NULL);
    if (rc) return rc == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    if (cli_require(&cmd, "in", in)) return CLI_EXIT_USAGE;
    if (!no_flood && !(flood_bits > 0 && flood_bits <= 64)) {
        cli_error("--flood %g: need 0 < BITS <= 64 (or --no-flood)", flood_bits);
        return CLI_EXIT_USAGE;
    }
    if (no_flood)
        fprintf(stderr, "%s: note: --no-flood: these scores carry the decryption error, which depends on the secret key; "
                        "do not share them\n", cli_command_prefix());
    const ckks_flood_options flood = {.flood_bits = flood_bits};
    double flood_sd = 0;
    keyset k;
    if (keyset_load(&k, dir, params, sk_path, NULL, NULL, NEED_SK)) return CLI_EXIT_FAIL;
    rc = CLI_EXIT_FAIL;
    mnist_plan mp = {0};
    ckks_ciphertext *ct = NULL;
    double *logits = NULL;
    uint8_t *labels = NULL;
    size_t n_labels = 0;
    cli_input fin = {0};
    cli_output o = {0};
    bool opened = false;
    char *own_record = NULL;
    if (check_mnist_context(k.ctx)) goto done;
    if (cli_input_open(&fin, in, false)) goto done;
    opened = true;
    hecnn_vr_file_header h;
    hecnn_status st = hecnn_vr_file_read_header(fin.f, k.ctx, HECNN_VR_FILE_SCORES, &h);
    if (st) {
        cli_status_error(st, "cannot read scores '%s'", in);
        goto done;
    }
    if (h.per_batch != 1) {
        cli_error("cannot read scores '%s': %s: %zu ciphertexts per batch; scores are one ciphertext per batch", in,
                  hecnn_status_name(HECNN_ERR_BAD_FORMAT), h.per_batch);
        goto done;
    }
    if (!record_path && dir) {
        own_record = cli_path_join(dir, RECORD_KEY_FILE);
        if (own_record && cli_file_exists(own_record)) record_path = own_record;
    }
    if (record_path) {
        owner_record r;
        if (record_read(record_path, &r) || record_check(&r, record_path, k.ctx, &h, in)) goto done;
        if (!offset_given) offset = r.offset;
    } else {
        fprintf(stderr, "%s: note: no owner record (--record FILE from encrypt-images): the scores' layout is not checked\n",
                cli_command_prefix());
    }
    if (mnist_plan_for_width(&mp, k.ctx, NULL, h.width, false, in)) goto done;
    if ((st = ckks_ciphertext_new(&ct, k.ctx))) {
        cli_status_error(st, "'%s'", in);
        goto done;
    }
    if (labels_path) {
        size_t total = 0;
        if (cli_idx_read_labels(labels_path, offset, h.images, &labels, &n_labels, &total)) goto done;
        if (n_labels < h.images) {
            cli_error("'%s' holds %zu labels; images %zu..%zu need more", labels_path, total, offset, offset + h.images - 1);
            goto done;
        }
    }
    const size_t m = mp.rows;
    /* grown batch by batch: memory follows the ciphertexts actually read, not the header's counts
     * (a pipe cannot be checked against its size) */
    size_t cap = 0;
    for (size_t b = 0; b < h.batches; b++) {
        const size_t n = h.images - b * m < m ? h.images - b * m : m;
        if ((b + 1) * m > cap) {
            const size_t nc = cap ? 2 * cap : m;
            double *nl = realloc(logits, nc * 10 * sizeof *nl);
            if (!nl) {
                cli_error("out of memory for the scores of %zu images", nc);
                goto done;
            }
            memset(nl + cap * 10, 0, (nc - cap) * 10 * sizeof *nl);
            logits = nl;
            cap = nc;
        }
        st = ckks_ciphertext_load(k.ctx, ct, fin.f);
        if (!st && no_flood) st = hecnn_plan_decrypt(mp.plan, logits + b * m * 10, n, &ct, k.sk);
        else if (!st) {
            st = hecnn_plan_decrypt_flooded(mp.plan, logits + b * m * 10, n, &ct, k.sk, &flood);
            flood_sd = fmax(flood_sd, ckks_flood_slot_stddev(k.ctx, ct, &flood));
        }
        if (st) {
            cli_status_error(st, "cannot decrypt batch %zu of '%s'", b, in);
            goto done;
        }
    }
    if (fgetc(fin.f) != EOF) {
        cli_error("'%s': trailing bytes after %zu batches", in, h.batches);
        goto done;
    }
    FILE *f = stdout;
    if (out) {
        if (cli_output_open(&o, out, false)) goto done;
        f = o.f;
    }
    const cli_score_print how = {.flood_bits = no_flood ? 0 : flood_bits, .flood_stddev = flood_sd,
                                 .step = score_step(logits, h.images)};
    if (cli_print_scores(f, json, logits, h.images, 10, labels, offset, &how)) goto done;
    if (out && cli_output_commit(&o)) goto done;
    rc = CLI_EXIT_OK;
done:
    if (rc && out) cli_output_abort(&o);
    if (opened) cli_input_close(&fin);
    ckks_ciphertext_free(ct);
    mnist_plan_free(&mp);
    free(logits);
    free(labels);
    free(own_record);
    keyset_free(&k);
    return rc;
}

/* ---- encrypt-model -------------------------------------------------------------------------------- */

int cmd_encrypt_model(int argc, char **argv)
{
    const char *dir = NULL, *params = NULL, *pk_path = NULL, *model_path = NULL, *out = NULL;
    size_t batch = DEFAULT_BATCH;
    const cli_opt opts[] = {
        {"keys", CLI_OPT_STRING, &dir, "DIR", "key directory (params.hecnn and public.key are used)", NULL},
        {"params", CLI_OPT_STRING, &params, "FILE", "parameter file (instead of --keys)", NULL},
        {"public-key", CLI_OPT_STRING, &pk_path, "FILE", "the data owner's public key (instead of --keys)", NULL},
        {"model", CLI_OPT_STRING, &model_path, "FILE", "weights file (default: the shipped models/mnist_vr.hcnn)", NULL},
        {"batch", CLI_OPT_SIZE, &batch, "M", "images per batch of the data owner's ciphertexts (default 256)", NULL},
        {"out", CLI_OPT_STRING, &out, "FILE", "the encrypted model", NULL},
        {0},
    };
    const cli_command cmd = {"encrypt-model", "--keys DIR [--model FILE] [--batch M] --out FILE",
                             "Model provider: span the convolution kernels (Kernelspanner), lay the dense weights out for the\n"
                             "revolver product, and encrypt them under the data owner's public key. The server then sees\n"
                             "neither the images nor the weights (the activation polynomials stay public, as in the seed).",
                             opts, 0};
    int rc = cli_parse(&cmd, argc, argv, NULL, NULL);
    if (rc) return rc == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    if (cli_require(&cmd, "out", out)) return CLI_EXIT_USAGE;
    char *own = NULL;
    if (!model_path && !(model_path = own = shipped(SHIPPED_MODEL))) return CLI_EXIT_FAIL;
    keyset k;
    /* the model provider never needs (and should not have) the secret key */
    if (keyset_load(&k, dir, params, NULL, pk_path, NULL, NEED_PK)) {
        free(own);
        return CLI_EXIT_FAIL;
    }
    rc = CLI_EXIT_FAIL;
    hecnn_mnist_model *model = NULL;
    mnist_plan mp = {0};
    hecnn_plan_weights *w = NULL;
    cli_output o = {0};
    if (check_mnist_context(k.ctx)) goto done;
    hecnn_status st = hecnn_mnist_model_load(&model, model_path);
    if (st) {
        cli_status_error(st, "cannot load model '%s'", model_path);
        goto done;
    }
    const double t0 = now_s();
    st = mnist_plan_new(&mp, k.ctx, model, batch, true);
    if (!st) st = hecnn_plan_weights_encrypt(&w, mp.plan, k.pk);
    if (st) {
        cli_status_error(st, "cannot encrypt the model");
        goto done;
    }
    if (cli_output_open(&o, out, false)) goto done;
    if ((st = hecnn_plan_weights_save(w, o.f))) {
        cli_status_error(st, "cannot write '%s'", out);
        goto done;
    }
    if (cli_output_commit(&o)) goto done;
    printf("encrypted %s into %zu ciphertexts for batches of %zu in %.2f s: %s, %llu bytes\n", model_path,
           hecnn_plan_weights_ciphertexts(w), mp.rows, now_s() - t0, out, cli_file_size(out));
    rc = CLI_EXIT_OK;
done:
    if (rc) cli_output_abort(&o);
    hecnn_plan_weights_free(w);
    mnist_plan_free(&mp);
    hecnn_mnist_model_free(model);
    free(own);
    keyset_free(&k);
    return rc;
}

/* ---- infer ---------------------------------------------------------------------------------------- */

typedef struct progress_state {
    bool on;
    size_t batch, batches;
    double t0;
} progress_state;

static void progress_cb(void *user, const char *stage, double done)
{
    progress_state *p = user;
    cli_job_progress(((double)p->batch + done) / (double)p->batches);
    if (!p->on) return;
    fprintf(stderr, "\r%s: batch %zu/%zu  %-10s %3.0f%%  %6.1f s", cli_command_prefix(), p->batch + 1, p->batches, stage, 100 * done,
            now_s() - p->t0);
    fflush(stderr);
}

/* hecnn_plan_run_batches' reader and writer for infer: the batches streamed from and to the files. */
typedef struct infer_io {
    const ckks_context *ctx;
    FILE *fin, *fout;
    size_t per;
    progress_state *ps;
    bool quiet, read_failed;
    double tb;
} infer_io;

static hecnn_status infer_read(void *user, size_t batch, ckks_ciphertext *const *cts)
{
    infer_io *io = user;
    io->ps->batch = batch;
    hecnn_status st = HECNN_OK;
    for (size_t i = 0; !st && i < io->per; i++) st = ckks_ciphertext_load(io->ctx, cts[i], io->fin);
    io->read_failed = st != HECNN_OK;
    io->tb = now_s();
    return st;
}

static hecnn_status infer_write(void *user, size_t batch, ckks_ciphertext *const *cts)
{
    infer_io *io = user;
    const hecnn_status st = ckks_ciphertext_save(cts[0], io->fout);
    if (!st && !io->quiet) {
        if (io->ps->on) fputc('\r', stderr);
        fprintf(stderr, "%s: batch %zu/%zu done in %.1f s%-30s\n", cli_command_prefix(), batch + 1, io->ps->batches, now_s() - io->tb, "");
    }
    return st;
}

int cmd_infer(int argc, char **argv)
{
    const char *dir = NULL, *params = NULL, *evk_path = NULL, *in = NULL, *out = NULL, *model_path = NULL, *enc_model = NULL,
               *mode_s = "encrypted";
    unsigned threads = 0;
    size_t batch = DEFAULT_BATCH;
    bool quiet = false, print_rot = false;
    const cli_opt opts[] = {
        {"keys", CLI_OPT_STRING, &dir, "DIR", "key directory (params.hecnn and eval.keys are used)", NULL},
        {"params", CLI_OPT_STRING, &params, "FILE", "parameter file (instead of --keys)", NULL},
        {"eval-keys", CLI_OPT_STRING, &evk_path, "FILE", "evaluation keys (instead of --keys)", NULL},
        {"in", CLI_OPT_STRING, &in, "FILE", "encrypted images from 'hecnn encrypt-images'", NULL},
        {"model", CLI_OPT_STRING, &model_path, "FILE", "plaintext weights file (the server holds the model)", NULL},
        {"encrypted-model", CLI_OPT_STRING, &enc_model, "FILE", "the model provider's encrypted model", NULL},
        {"out", CLI_OPT_STRING, &out, "FILE", "encrypted scores for 'hecnn decrypt-scores'", NULL},
        {"threads", CLI_OPT_UINT, &threads, "T", "threads (default: all cores)", NULL},
        {"quiet", CLI_OPT_FLAG, &quiet, NULL, "no progress on stderr", NULL},
        {"print-rotations", CLI_OPT_FLAG, &print_rot, NULL, "print the rotation steps the network needs (for 'hecnn keygen --rotations') and exit", NULL},
        {"batch", CLI_OPT_SIZE, &batch, "M", "with --print-rotations: images per batch (default 256)", NULL},
        {"mode", CLI_OPT_STRING, &mode_s, "MODE", "with --print-rotations: plain or encrypted (default, a superset)", NULL},
        {0},
    };
    const cli_command cmd = {"infer", "--keys DIR --in FILE (--model FILE | --encrypted-model FILE) --out FILE [--threads T]",
                             "Server: run the Volley Revolver CNN on every encrypted batch. Needs only public material: the\n"
                             "evaluation keys, the images' ciphertexts and the model (plaintext or encrypted).",
                             opts, 0};
    int rc = cli_parse(&cmd, argc, argv, NULL, NULL);
    if (rc) return rc == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    if (print_rot) {
        hecnn_mnist_mode mode;
        if (parse_mode(mode_s, &mode, NULL)) return CLI_EXIT_USAGE;
        ckks_params_literal lit;
        hecnn_mnist_params(&lit);
        ckks_context *ctx = NULL;
        mnist_plan mp = {0};
        hecnn_status st = ckks_context_new(&ctx, &lit);
        if (!st) st = mnist_plan_new(&mp, ctx, NULL, batch, mode == HECNN_MNIST_ENCRYPTED_MODEL);
        if (st) {
            cli_status_error(st, "cannot plan the network");
            ckks_context_free(ctx);
            return CLI_EXIT_FAIL;
        }
        /* the plan's keys are Galois elements: back to rotation steps in (-S/2, S/2] */
        ckks_key_need need[256];
        const size_t n = hecnn_plan_key_needs(mp.plan, need, 256), slots = ckks_context_max_slots(ctx);
        const uint64_t conj = ckks_galois_element_conjugate(ctx);
        bool first = true;
        for (size_t i = 0; i < n && i < 256; i++) {
            if (!need[i].galois || need[i].galois == conj) continue;
            for (size_t r = 1; r < slots; r++)
                if (ckks_galois_element_rotation(ctx, (int)r) == need[i].galois) {
                    printf("%s%ld", first ? "" : ",", r > slots / 2 ? (long)r - (long)slots : (long)r);
                    first = false;
                    break;
                }
        }
        printf("\n");
        mnist_plan_free(&mp);
        ckks_context_free(ctx);
        return CLI_EXIT_OK;
    }
    if (!in || !out || (!model_path == !enc_model)) {
        cli_error("--in FILE, --out FILE and one of --model FILE / --encrypted-model FILE are required (see 'hecnn infer --help')");
        return CLI_EXIT_USAGE;
    }
    if (threads) hecnn_set_threads((int)threads);
    keyset k;
    if (keyset_load(&k, dir, params, NULL, NULL, evk_path, NEED_EVK)) return CLI_EXIT_FAIL;
    rc = CLI_EXIT_FAIL;
    hecnn_mnist_model *model = NULL;
    mnist_plan mp = {0};
    hecnn_plan_weights *w = NULL;
    cli_input fin = {0}, fm = {0};
    bool in_open = false;
    cli_output o = {0};
    hecnn_status st;
    if (check_mnist_context(k.ctx)) goto done;
    if (cli_input_open(&fin, in, false)) goto done;
    in_open = true;
    hecnn_vr_file_header h;
    if ((st = hecnn_vr_file_read_header(fin.f, k.ctx, HECNN_VR_FILE_IMAGES, &h))) {
        cli_status_error(st, "cannot read images '%s'", in);
        goto done;
    }
    const double t_load = now_s();
    if (model_path && (st = hecnn_mnist_model_load(&model, model_path))) {
        cli_status_error(st, "cannot load model '%s'", model_path);
        goto done;
    }
    /* an encrypted model brings its weights: the plan needs the network's shape only */
    if (mnist_plan_for_width(&mp, k.ctx, model, h.width, enc_model != NULL, in)) goto done;
    if (h.per_batch != mp.per_batch) {
        cli_error("'%s': %zu ciphertexts per batch, the network reads %zu", in, h.per_batch, mp.per_batch);
        goto done;
    }
    if (model_path) {
        st = hecnn_plan_weights_plain(&w, mp.plan);
    } else {
        if (cli_input_open(&fm, enc_model, false)) goto done;
        st = hecnn_plan_weights_load(&w, mp.plan, fm.f);
        const bool trailing = !st && fgetc(fm.f) != EOF;
        cli_input_close(&fm);
        if (trailing) {
            cli_error("cannot load the model '%s': %s: trailing bytes after its %zu ciphertexts", enc_model,
                      hecnn_status_name(HECNN_ERR_BAD_FORMAT), hecnn_plan_weights_ciphertexts(w));
            goto done;
        }
    }
    if (st) {
        cli_status_error(st, "cannot load the model '%s'", model_path ? model_path : enc_model);
        goto done;
    }
    /* every key the plan needs must be present: say which is missing before hours of work */
    if ((st = hecnn_plan_check_keys(mp.plan, k.evk))) {
        cli_error("the evaluation keys lack a rotation or the relinearization key for batches of %zu (%s): make them with "
                  "'hecnn keygen-mnist --batch %zu' or 'hecnn keygen --rotations $(hecnn infer --print-rotations --batch %zu)'",
                  mp.rows, hecnn_last_error_detail(), mp.rows, mp.rows);
        goto done;
    }
    if (cli_output_open(&o, out, false)) goto done;
    hecnn_vr_file_header ho = {HECNN_VR_FILE_SCORES, h.width, h.images, h.batches, 1};
    if ((st = hecnn_vr_file_write_header(o.f, k.ctx, &ho))) {
        cli_status_error(st, "cannot write '%s'", out);
        goto done;
    }
    progress_state ps = {.on = !quiet && isatty(2), .batches = h.batches, .t0 = now_s()};
    const double prep_s = ps.t0 - t_load;
    infer_io io = {.ctx = k.ctx, .fin = fin.f, .fout = o.f, .per = mp.per_batch, .ps = &ps, .quiet = quiet};
    /* the library's loop: keys checked, weights prepared once, one batch read, run, written at a time */
    st = hecnn_plan_run_batches(mp.plan, w, k.evk, NULL, h.batches, infer_read, infer_write, &io, progress_cb, &ps, cli_job_cancel_flag(), NULL);
    if (st) {
        if (ps.on) fputc('\n', stderr);
        if (io.read_failed) cli_status_error(st, "cannot read batch %zu of '%s'", ps.batch, in);
        else cli_status_error(st, "inference failed on batch %zu", ps.batch);
        goto done;
    }
    if (fgetc(fin.f) != EOF) {
        cli_error("'%s': trailing bytes after %zu batches", in, h.batches);
        goto done;
    }
    if (cli_output_commit(&o)) goto done;
    const double total = now_s() - ps.t0;
    printf("inferred %zu images (%zu batch%s, %s model) in %.2f s = %.3f s/image (model prepared in %.2f s, %d threads, peak RSS %.0f MiB): %s\n",
           h.images, h.batches, h.batches == 1 ? "" : "es", enc_model ? "encrypted" : "plaintext", total, total / (double)h.images, prep_s,
           hecnn_get_threads(), bench_peak_rss_mib(), out);
    rc = CLI_EXIT_OK;
done:
    if (rc) cli_output_abort(&o);
    if (in_open) cli_input_close(&fin);
    hecnn_plan_weights_free(w);
    mnist_plan_free(&mp);
    hecnn_mnist_model_free(model);
    keyset_free(&k);
    return rc;
}

/* ---- in-process pipeline (demo, bench) -------------------------------------------------------------- */

typedef struct pipeline {
    ckks_context *ctx;
    ckks_secret_key *sk;
    ckks_public_key *pk;
    ckks_eval_keys *keys;
    mnist_plan mp;
    hecnn_plan_weights *w;
    double keygen_s, model_s;
} pipeline;

static void pipeline_free(pipeline *p)
{
    hecnn_plan_weights_free(p->w);
    mnist_plan_free(&p->mp);
    ckks_eval_keys_free(p->keys);
    ckks_public_key_free(p->pk);
    ckks_secret_key_free(p->sk);
    ckks_context_free(p->ctx);
    memset(p, 0, sizeof *p);
}

static hecnn_status pipeline_new(pipeline *p, const hecnn_mnist_model *model, hecnn_mnist_mode mode, size_t batch)
{
    memset(p, 0, sizeof *p);
    ckks_params_literal lit;
    hecnn_mnist_params(&lit);
    double t = now_s();
    hecnn_status st = ckks_context_new(&p->ctx, &lit);
    if (!st) st = mnist_plan_new(&p->mp, p->ctx, model, batch, mode == HECNN_MNIST_ENCRYPTED_MODEL);
    if (!st) st = ckks_secret_key_generate(&p->sk, p->ctx);
    if (!st) st = ckks_public_key_generate(&p->pk, p->sk);
    if (!st) st = mnist_keys_generate(&p->keys, p->mp.plan, p->ctx, p->sk);
    p->keygen_s = now_s() - t;
    t = now_s();
    if (!st) st = mode == HECNN_MNIST_PLAIN_MODEL ? hecnn_plan_weights_plain(&p->w, p->mp.plan)
                                                  : hecnn_plan_weights_encrypt(&p->w, p->mp.plan, p->pk);
    p->model_s = now_s() - t;
    if (st) pipeline_free(p);
    return st;
}

/* The data owner's side of hecnn_plan_run_batches in one process: batch b's images encrypted when
 * the library reads it, its scores decrypted when it writes them; their time is kept apart. */
typedef struct pipeline_io {
    pipeline *p;
    const double *px;
    size_t n, n_batches;
    bool repeat;  /* every batch encrypts the first images again (benchmark) */
    double *logits;
    progress_state *ps;
    double owner_s, owner_cpu;
} pipeline_io;

static size_t pipeline_first(const pipeline_io *io, size_t batch) { return io->repeat ? 0 : batch * io->p->mp.rows; }

static size_t pipeline_count(const pipeline_io *io, size_t batch)
{
    const size_t first = pipeline_first(io, batch), m = io->p->mp.rows;
    return io->n - first < m ? io->n - first : m;
}

static hecnn_status pipeline_read(void *user, size_t batch, ckks_ciphertext *const *cts)
{
    pipeline_io *io = user;
    const double t = now_s(), c = bench_cpu_seconds();
    io->ps->batch = batch;
    const hecnn_status st = hecnn_plan_encrypt(io->p->mp.plan, cts, io->px + pipeline_first(io, batch) * HECNN_MNIST_PIXELS,
                                               pipeline_count(io, batch), NULL, io->p->sk);
    io->owner_s += now_s() - t;
    io->owner_cpu += bench_cpu_seconds() - c;
    return st;
}

static hecnn_status pipeline_write(void *user, size_t batch, ckks_ciphertext *const *cts)
{
    pipeline_io *io = user;
    const double t = now_s(), c = bench_cpu_seconds();
    const size_t out = io->repeat ? 0 : batch * io->p->mp.rows;
    const hecnn_status st = hecnn_plan_decrypt(io->p->mp.plan, io->logits + out * 10, pipeline_count(io, batch), cts, io->p->sk);
    io->owner_s += now_s() - t;
    io->owner_cpu += bench_cpu_seconds() - c;
    return st;
}

/* Encrypt, infer, decrypt `n` images (or, with `repeat`, the first batch of them `batches` times:
 * logits of the last) through the library's batch loop; logits[n][10]. Returns the server's
 * seconds (wall and, if server_cpu, CPU): the run less the data owner's encryption and decryption
 * and the weights' one-time preparation for many batches (added to model_s). */
static hecnn_status pipeline_run_cpu(pipeline *p, const double *px, size_t n, size_t batches, bool repeat, double *logits,
                                     double *server_s, double *server_cpu, bool progress)
{
    const size_t m = p->mp.rows;
    if (!repeat) batches = (n + m - 1) / m;
    progress_state ps = {.on = progress && isatty(2), .batches = batches, .t0 = now_s()};
    pipeline_io io = {.p = p, .px = px, .n = n, .n_batches = batches, .repeat = repeat, .logits = logits, .ps = &ps};
    hecnn_run_stats stats = {0};
    const double t = now_s(), c = bench_cpu_seconds();
    const hecnn_status st = hecnn_plan_run_batches(p->mp.plan, p->w, p->keys, NULL, batches, pipeline_read, pipeline_write, &io,
                                                   progress_cb, &ps, NULL, &stats);
    *server_s = now_s() - t - io.owner_s - stats.seconds_other;
    if (server_cpu) *server_cpu = bench_cpu_seconds() - c - io.owner_cpu - stats.seconds_other * hecnn_get_threads();
    p->model_s += stats.seconds_other;
    if (ps.on) fprintf(stderr, "\r%60s\r", "");
    return st;
}

static hecnn_status pipeline_run(pipeline *p, const double *px, size_t n, double *logits, double *server_s, bool progress)
{
    return pipeline_run_cpu(p, px, n, 0, false, logits, server_s, NULL, progress);
}

static int argmax10(const double *s)
{
    int b = 0;
    for (int c = 1; c < 10; c++)
        if (s[c] > s[b]) b = c;
    return b;
}

/* ---- demo ------------------------------------------------------------------------------------------- */

int cmd_demo(int argc, char **argv)
{
    cli_protect_secrets(); /* it holds a secret key */
    const char *model_path = NULL, *images = NULL, *labels_path = NULL, *mode_s = "both";
    size_t count = 64;
    unsigned threads = 0;
    const cli_opt opts[] = {
        {"mode", CLI_OPT_STRING, &mode_s, "MODE", "plain, encrypted or both (default)", NULL},
        {"count", CLI_OPT_SIZE, &count, "N", "digits to classify (default 64: the shipped sample)", NULL},
        {"model", CLI_OPT_STRING, &model_path, "FILE", "weights (default: models/mnist_vr.hcnn)", NULL},
        {"images", CLI_OPT_STRING, &images, "FILE", "idx3 images (default: the shipped first 64 test digits)", NULL},
        {"labels", CLI_OPT_STRING, &labels_path, "FILE", "idx1 labels (default: the shipped sample's)", NULL},
        {"threads", CLI_OPT_UINT, &threads, "T", "threads (default: all cores)", NULL},
        {0},
    };
    const cli_command cmd = {"demo", "[--mode plain|encrypted|both] [--count N] [--model FILE]",
                             "Encrypted MNIST inference end to end in one process, with the three roles kept apart: the data\n"
                             "owner makes keys and encrypts the digits, the model provider encrypts the weights (encrypted\n"
                             "mode), the server classifies the ciphertexts, the data owner decrypts the scores.",
                             opts, 0};
    int rc = cli_parse(&cmd, argc, argv, NULL, NULL);
    if (rc) return rc == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    hecnn_mnist_mode mode;
    bool both;
    if (parse_mode(mode_s, &mode, &both)) return CLI_EXIT_USAGE;
    if (threads) hecnn_set_threads((int)threads);
    char *own[3] = {0};
    if (!model_path && !(model_path = own[0] = shipped(SHIPPED_MODEL))) return CLI_EXIT_FAIL;
    if (!images && !(images = own[1] = shipped(SAMPLE_IMAGES))) return free(own[0]), CLI_EXIT_FAIL;
    if (!labels_path && !(labels_path = own[2] = shipped(SAMPLE_LABELS))) return free(own[0]), free(own[1]), CLI_EXIT_FAIL;
    rc = CLI_EXIT_FAIL;
    hecnn_mnist_model *model = NULL;
    double *px = NULL, *plain = NULL, *logits = NULL;
    uint8_t *labels = NULL;
    size_t n_img = 0, n_lab = 0;
    hecnn_status st = hecnn_mnist_model_load(&model, model_path);
    if (st) {
        cli_status_error(st, "cannot load model '%s'", model_path);
        goto done;
    }
    size_t total = 0;
    if (cli_idx_read_images(images, 0, count, &px, &n_img, &total) || cli_idx_read_labels(labels_path, 0, n_img, &labels, &n_lab, &total))
        goto done;
    count = n_img;
    if (count > n_lab) {
        cli_error("%zu labels for %zu images", n_lab, count);
        goto done;
    }
    plain = malloc(count * 10 * sizeof *plain);
    logits = malloc(count * 10 * sizeof *logits);
    if (!plain || !logits) goto done;
    hecnn_mnist_infer_plain(model, px, count, plain);
    printf("hecnn demo: %zu MNIST digits, CNN of Volley Revolver (conv 4x3x3, x^3 act, FC 2704-64, x^3 act, FC 64-10)\n", count);
    ckks_params_literal lit;
    hecnn_mnist_params(&lit);
    printf("CKKS: N = 2^%u, %u primes, log QP = %u bits (128-bit secure), %d thread%s\n", lit.log_n, lit.n_q,
           lit.log_q[0] + (lit.n_q - 1) * lit.log_q[1] + lit.n_p * lit.log_p[0], hecnn_get_threads(), hecnn_get_threads() == 1 ? "" : "s");
    for (int pass = 0; pass < 2; pass++) {
        const hecnn_mnist_mode md = both ? (pass ? HECNN_MNIST_ENCRYPTED_MODEL : HECNN_MNIST_PLAIN_MODEL) : mode;
        if (!both && pass) break;
        pipeline p;
        if ((st = pipeline_new(&p, model, md, count))) {
            cli_status_error(st, "setup");
            goto done;
        }
        double server = 0;
        if ((st = pipeline_run(&p, px, count, logits, &server, true))) {
            cli_status_error(st, "inference");
            pipeline_free(&p);
            goto done;
        }
        size_t correct = 0, agree = 0;
        double err = 0;
        printf("\n%s model: batches of %zu images (%zu rotation keys), keys %.2f s, %s %.2f s\n",
               md == HECNN_MNIST_PLAIN_MODEL ? "plaintext" : "encrypted", p.mp.rows,
               ckks_eval_keys_count(p.keys) - 2, p.keygen_s, md == HECNN_MNIST_PLAIN_MODEL ? "model prepared" : "model encrypted",
               p.model_s);
        printf("predictions:");
        for (size_t i = 0; i < count; i++) {
            const int y = argmax10(logits + i * 10);
            correct += y == labels[i];
            agree += y == argmax10(plain + i * 10);
            for (int c = 0; c < 10; c++) err = fmax(err, fabs(logits[i * 10 + c] - plain[i * 10 + c]));
            printf("%s%d%s", i % 32 ? " " : "\n  ", y, y == labels[i] ? "" : "*");
        }
        printf("\n  (* = wrong)\naccuracy %zu/%zu = %.2f %%, agreement with plaintext inference %zu/%zu, largest logit error %.2e\n",
               correct, count, 100.0 * (double)correct / (double)count, agree, count, err);
        printf("server time %.2f s = %.3f s/image (peak RSS %.0f MiB)\n", server, server / (double)count, bench_peak_rss_mib());
        pipeline_free(&p);
    }
    rc = CLI_EXIT_OK;
done:
    hecnn_mnist_model_free(model);
    free(px);
    free(labels);
    free(plain);
    free(logits);
    for (int i = 0; i < 3; i++) free(own[i]);
    return rc;
}

/* ---- bench mnist ------------------------------------------------------------------------------------ */

typedef struct bench_result {
    double s_per_image, cpu_per_image, total_s, peak_mib, keygen_s, model_s;
    size_t images, batches, per_batch, keys;
    int ok;
} bench_result;

/* Run one configuration in a child process, so that its peak RSS is its own. */
static bench_result bench_one(const hecnn_mnist_model *model, hecnn_mnist_mode mode, size_t batch, size_t n_batches, int threads)
{
    bench_result r = {0};
    int fds[2];
    if (pipe(fds)) return r;
    fflush(stdout);
    const pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return r;
    }
    if (pid == 0) {
        close(fds[0]);
        hecnn_set_threads(threads);
        bench_result c = {0};
        pipeline p;
        if (!pipeline_new(&p, model, mode, batch)) {
            const size_t m = p.mp.rows, n = batch < m ? batch : m;
            double *px = calloc(n * HECNN_MNIST_PIXELS, sizeof *px), *lg = malloc(n * 10 * sizeof *lg);
            for (size_t i = 0; px && i < n * HECNN_MNIST_PIXELS; i++) px[i] = (double)((i * 2654435761u) % 256) / 255.0;
            double total = 0, cpu = 0;
            const bool ok = px && lg && !pipeline_run_cpu(&p, px, n, n_batches, true, lg, &total, &cpu, false);
            c = (bench_result){.s_per_image = total / (double)(n * n_batches), .cpu_per_image = cpu / (double)(n * n_batches),
                               .total_s = total, .peak_mib = bench_peak_rss_mib(),
                               .keygen_s = p.keygen_s, .model_s = p.model_s, .images = n * n_batches, .batches = n_batches,
                               .per_batch = m, .keys = ckks_eval_keys_count(p.keys), .ok = ok};
            free(px);
            free(lg);
            pipeline_free(&p);
        }
        ssize_t wr = write(fds[1], &c, sizeof c);
        (void)wr;
        close(fds[1]);
        _exit(0);
    }
    close(fds[1]);
    ssize_t got = read(fds[0], &r, sizeof r);
    close(fds[0]);
    waitpid(pid, NULL, 0);
    if (got != (ssize_t)sizeof r) r.ok = 0;
    return r;
}

typedef struct acc_result {
    size_t n, correct, plain_correct, agree;
    double max_err, seconds;
    int ok;
} acc_result;

static acc_result bench_accuracy(const hecnn_mnist_model *model, hecnn_mnist_mode mode, const double *px, const uint8_t *labels, size_t n,
                                 bool progress)
{
    acc_result a = {.n = n};
    pipeline p;
    if (pipeline_new(&p, model, mode, DEFAULT_BATCH)) return a;
    double *lg = malloc(n * 10 * sizeof *lg), *pl = malloc(n * 10 * sizeof *pl);
    if (lg && pl && !pipeline_run(&p, px, n, lg, &a.seconds, progress)) {
        hecnn_mnist_infer_plain(model, px, n, pl);
        for (size_t i = 0; i < n; i++) {
            const int y = argmax10(lg + i * 10), z = argmax10(pl + i * 10);
            a.correct += y == labels[i];
            a.plain_correct += z == labels[i];
            a.agree += y == z;
            for (int c = 0; c < 10; c++) a.max_err = fmax(a.max_err, fabs(lg[i * 10 + c] - pl[i * 10 + c]));
        }
        a.ok = 1;
    }
    free(lg);
    free(pl);
    pipeline_free(&p);
    return a;
}

int cmd_bench_mnist(int argc, char **argv)
{
    const char *model_path = NULL, *data = NULL, *mode_s = "both";
    unsigned threads = 0;
    size_t batches = 2, acc_count = 0;
    bool json = false, accuracy = false, skip_speed = false;
    const cli_opt opts[] = {
        {"json", CLI_OPT_FLAG, &json, NULL, "print JSON", NULL},
        {"threads", CLI_OPT_UINT, &threads, "T", "only this thread count (default: 1 and 2)", NULL},
        {"mode", CLI_OPT_STRING, &mode_s, "MODE", "plain, encrypted or both (default)", NULL},
        {"batches", CLI_OPT_SIZE, &batches, "K", "full batches in the throughput run (default 2)", NULL},
        {"model", CLI_OPT_STRING, &model_path, "FILE", "weights (default: models/mnist_vr.hcnn)", NULL},
        {"accuracy", CLI_OPT_FLAG, &accuracy, NULL, "also classify the MNIST test set encrypted (needs --data)", NULL},
        {"data", CLI_OPT_STRING, &data, "DIR", "folder with t10k-images-idx3-ubyte(.gz) and t10k-labels-idx1-ubyte(.gz)", NULL},
        {"count", CLI_OPT_SIZE, &acc_count, "N", "with --accuracy: only the first N test images", NULL},
        {"no-speed", CLI_OPT_FLAG, &skip_speed, NULL, "skip the timing runs", NULL},
        {0},
    };
    const cli_command cmd = {
        "bench mnist", "[--json] [--threads T] [--mode plain|encrypted|both] [--accuracy --data DIR [--count N]]",
        "Encrypted MNIST inference: amortized server seconds per image and peak RSS for one batch of 32\n"
        "images and for several full batches of 256, at 1 and 2 threads, with the model in the clear and\n"
        "encrypted (each configuration in its own process). --accuracy classifies the 10,000 test digits\n"
        "encrypted and compares with plaintext inference of the same weights. The test set: MNIST's\n"
        "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz (http://yann.lecun.com/exdb/mnist/ or any\n"
        "mirror, e.g. the ../shared/data/mnist folder of the project); plain or gzip-compressed.",
        opts, 0};
    int rc = cli_parse(&cmd, argc, argv, NULL, NULL);
    if (rc) return rc == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    hecnn_mnist_mode mode;
    bool both;
    if (parse_mode(mode_s, &mode, &both)) return CLI_EXIT_USAGE;
    if (accuracy && !data) {
        cli_error("--accuracy needs --data DIR with the MNIST test set (t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz); "
                  "get them from http://yann.lecun.com/exdb/mnist/ or a mirror (the project's ../shared/data/mnist has them)");
        return CLI_EXIT_USAGE;
    }
    char *own = NULL;
    if (!model_path && !(model_path = own = shipped(SHIPPED_MODEL))) return CLI_EXIT_FAIL;
    hecnn_mnist_model *model = NULL;
    hecnn_status st = hecnn_mnist_model_load(&model, model_path);
    free(own);
    if (st) {
        cli_status_error(st, "cannot load model");
        return CLI_EXIT_FAIL;
    }
    const int tlist[2] = {threads ? (int)threads : 1, 2};
    const int nt = threads ? 1 : 2;
    hecnn_mnist_mode modes[2] = {mode, HECNN_MNIST_ENCRYPTED_MODEL};
    const int nm = both ? 2 : 1;
    FILE *o = stdout;
    json_object *root = NULL, *runs = NULL;
    if (json) {
        root = cli_json_object();
        cli_json_add_string(root, "benchmark", "mnist");
        cli_json_add_string(root, "simd", hecnn_simd_name());
        runs = cli_json_array();
        cli_json_add(root, "runs", runs);
    } else printf("MNIST CNN (Volley Revolver), N = 2^14, 10 primes, 128-bit; server seconds per image, peak RSS per configuration\n"
                "%-10s %-7s %-6s %-8s %-10s %-10s %-10s %-9s %-8s %-8s\n", "model", "threads", "images", "batches", "s/image",
                "cpu s/img", "total s", "peak MiB", "rot keys", "model s");
    rc = CLI_EXIT_OK;
    for (int mi = 0; mi < nm && !skip_speed; mi++)
        for (int ti = 0; ti < nt; ti++)
            for (int shape = 0; shape < 2; shape++) {
                const size_t batch = shape ? DEFAULT_BATCH : 32, nbat = shape ? batches : 1;
                const bench_result r = bench_one(model, modes[mi], batch, nbat, tlist[ti]);
                const char *mname = modes[mi] == HECNN_MNIST_PLAIN_MODEL ? "plaintext" : "encrypted";
                if (!r.ok) {
                    cli_error("the %s-model run with %d threads failed", mname, tlist[ti]);
                    rc = CLI_EXIT_FAIL;
                    continue;
                }
                if (json) {
                    json_object *j = cli_json_object();
                    cli_json_add_string(j, "model", mname);
                    cli_json_add_int(j, "threads", tlist[ti]);
                    cli_json_add_uint(j, "images", r.images);
                    cli_json_add_uint(j, "batch_rows", r.per_batch);
                    cli_json_add_uint(j, "batches", r.batches);
                    cli_json_add_number(j, "s_per_image", "%.4f", r.s_per_image);
                    cli_json_add_number(j, "cpu_s_per_image", "%.4f", r.cpu_per_image);
                    cli_json_add_number(j, "total_s", "%.3f", r.total_s);
                    cli_json_add_number(j, "peak_rss_mib", "%.1f", r.peak_mib);
                    cli_json_add_uint(j, "rotation_keys", r.keys - 2);
                    cli_json_add_number(j, "keygen_s", "%.2f", r.keygen_s);
                    cli_json_add_number(j, "model_prep_s", "%.2f", r.model_s);
                    cli_json_append(runs, j);
                } else
                    printf("%-10s %-7d %-6zu %-8zu %-10.4f %-10.4f %-10.2f %-9.0f %-8zu %-8.2f\n", mname, tlist[ti], r.images, r.batches,
                           r.s_per_image, r.cpu_per_image, r.total_s, r.peak_mib, r.keys - 2, r.model_s);
                fflush(o);
            }
    if (accuracy) {
        char *ip = cli_path_join(data, "t10k-images-idx3-ubyte.gz"), *lp = cli_path_join(data, "t10k-labels-idx1-ubyte.gz");
        if (ip && !cli_file_exists(ip)) ip[strlen(ip) - 3] = 0;
        if (lp && !cli_file_exists(lp)) lp[strlen(lp) - 3] = 0;
        double *px = NULL;
        uint8_t *lab = NULL;
        size_t ni = 0, nl = 0, total = 0;
        bool bad = !ip || !lp || cli_idx_read_images(ip, 0, acc_count, &px, &ni, &total) ||
                   cli_idx_read_labels(lp, 0, ni, &lab, &nl, &total);
        if (!bad && ni != nl) {
            cli_error("%zu labels for %zu images", nl, ni);
            bad = true;
        }
        if (bad) {
            cli_error("cannot read the test set in '%s' (see --help: where to get it)", data);
            rc = CLI_EXIT_FAIL;
        } else {
            json_object *accs = NULL;
            if (json) {
                accs = cli_json_array();
                cli_json_add(root, "accuracy", accs);
            } else printf("\naccuracy over %zu test images (batches of 256, %d threads)\n%-10s %-9s %-9s %-9s %-12s %-8s\n", ni,
                        hecnn_get_threads(), "model", "accuracy", "plain", "agree", "max |err|", "s/image");
            for (int mi = 0; mi < nm; mi++) {
                const acc_result a = bench_accuracy(model, modes[mi], px, lab, ni, !json);
                const char *mname = modes[mi] == HECNN_MNIST_PLAIN_MODEL ? "plaintext" : "encrypted";
                if (!a.ok) {
                    cli_error("the %s-model accuracy run failed", mname);
                    rc = CLI_EXIT_FAIL;
                    continue;
                }
                if (json) {
                    json_object *j = cli_json_object();
                    cli_json_add_string(j, "model", mname);
                    cli_json_add_uint(j, "images", a.n);
                    cli_json_add_number(j, "accuracy", "%.6f", (double)a.correct / (double)a.n);
                    cli_json_add_number(j, "plaintext_accuracy", "%.6f", (double)a.plain_correct / (double)a.n);
                    cli_json_add_number(j, "agreement", "%.6f", (double)a.agree / (double)a.n);
                    cli_json_add_number(j, "max_logit_error", "%.3e", a.max_err);
                    cli_json_add_number(j, "s_per_image", "%.4f", a.seconds / (double)a.n);
                    cli_json_append(accs, j);
                } else
                    printf("%-10s %-9.4f %-9.4f %-9.4f %-12.3e %-8.4f\n", mname, (double)a.correct / (double)a.n,
                           (double)a.plain_correct / (double)a.n, (double)a.agree / (double)a.n, a.max_err, a.seconds / (double)a.n);
                fflush(o);
            }
        }
        free(px);
        free(lab);
        free(ip);
        free(lp);
    }
    if (json && cli_json_print(o, root, true)) rc = CLI_EXIT_FAIL;
    hecnn_mnist_model_free(model);
    return rc;
}

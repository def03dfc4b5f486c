/* `hecnn serve`: the server role as an HTTP service (libmicrohttpd, TLS through its GnuTLS support).
 * Clients register key sets and submit jobs; worker threads run them with the local tool's
 * commands (cmd_infer, cmd_model_infer) on the stored files. Protocol: docs/SERVER.md. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <microhttpd.h>
#include <openssl/rand.h>

#include "commands.h"
#include "hecnn/hecnn.h"
#include "serve.h"
#include "util_cli.h"

#define KEYSET_ID_LEN 64
#define JOB_ID_LEN 32

/* what a key set holds, per kind; names as `hecnn keygen-mnist` and `hecnn model keygen` write them */
static const char *const mnist_keyset_files[] = {"params.hecnn", "eval.keys", NULL};
static const char *const resnet_keyset_files[] = {"params.hecnn", "plan", "boot.keys", "network.keys", NULL};
static const char *const keyset_members[] = {"params.hecnn", "eval.keys", "plan", "boot.keys", "network.keys", NULL};
static const char *const job_members[] = {"model", "input", NULL};
#define JOB_RESULT "result"

/* job kinds: the command that runs them and the key set they need */
typedef struct job_kind {
    const char *name, *keyset_kind;
    uint64_t base_mem;
} job_kind;
static const job_kind job_kinds[] = {
    {"mnist-plain", "mnist", 640ull << 20},
    {"mnist-encrypted", "mnist", 640ull << 20},
    {"resnet", "resnet", 1ull << 30},
};

static const job_kind *find_kind(const char *name)
{
    for (size_t i = 0; i < sizeof job_kinds / sizeof *job_kinds; i++)
        if (name && !strcmp(job_kinds[i].name, name)) return &job_kinds[i];
    return NULL;
}

typedef struct queued_job {
    struct queued_job *next;
    char id[JOB_ID_LEN + 1];
    uint64_t mem;
} queued_job;

typedef struct worker {
    pthread_t thread;
    struct server *s;
    bool busy;
    char job[JOB_ID_LEN + 1];
    volatile int cancel;
    bool user_cancel;
    double progress;
} worker;

typedef struct token {
    char name[65], hash[65];
} token;

typedef struct metrics {
    uint64_t requests, upload_bytes, submitted, done, failed, cancelled, rejected_queue, rejected_memory, rejected_auth;
    uint64_t responses[500]; /* answers sent, by HTTP status 100..599 */
    double job_seconds;
} metrics;

typedef struct server {
    char *data, *tmpdir, *keysets_dir, *jobs_dir;
    sqlite3 *db;
    pthread_mutex_t lock;  /* the queue, workers, metrics and the store */
    pthread_cond_t cond;
    queued_job *head, *tail;
    size_t queued, queue_max, running;
    uint64_t memory_limit, reserved, max_upload;
    worker *workers;
    unsigned n_workers;
    bool stopping;
    token *tokens;
    size_t n_tokens;
    metrics m;
} server;

static int64_t now_unix(void) { return (int64_t)time(NULL); }

static void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void log_line(const char *fmt, ...)
{
    char ts[32];
    const time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    va_list ap;
    va_start(ap, fmt);
    flockfile(stderr);
    fprintf(stderr, "%s hecnn serve: ", ts);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    funlockfile(stderr);
    va_end(ap);
}

/* ---- the store (callers hold s->lock) ------------------------------------------------------ */

static sqlite3_stmt *prep(server *s, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        log_line("store: %s", sqlite3_errmsg(s->db));
        return NULL;
    }
    return st;
}

/* Run one statement with text (t) and integer (i) parameters, in order ("tti"). 0 on success. */
static int exec_sql(server *s, const char *sql, const char *types, ...)
{
    sqlite3_stmt *st = prep(s, sql);
    if (!st) return -1;
    va_list ap;
    va_start(ap, types);
    for (int i = 0; types[i]; i++) {
        if (types[i] == 't') sqlite3_bind_text(st, i + 1, va_arg(ap, const char *), -1, SQLITE_TRANSIENT);
        else sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
    }
    va_end(ap);
    const int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        log_line("store: %s", sqlite3_errmsg(s->db));
        return -1;
    }
    return 0;
}

typedef struct job_row {
    char id[JOB_ID_LEN + 1], client[65], keyset[KEYSET_ID_LEN + 1], kind[24], state[16], error[512];
    int64_t mem, bytes, created, started, finished;
} job_row;

static const char job_cols[] = "id, client, keyset, kind, state, coalesce(error, ''), mem, bytes, created, coalesce(started, 0), coalesce(finished, 0)";

static void copy_col(sqlite3_stmt *st, int col, char *out, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(out, cap, "%s", t ? (const char *)t : "");
}

static void read_job(sqlite3_stmt *st, job_row *r)
{
    copy_col(st, 0, r->id, sizeof r->id);
    copy_col(st, 1, r->client, sizeof r->client);
    copy_col(st, 2, r->keyset, sizeof r->keyset);
    copy_col(st, 3, r->kind, sizeof r->kind);
    copy_col(st, 4, r->state, sizeof r->state);
    copy_col(st, 5, r->error, sizeof r->error);
    r->mem = sqlite3_column_int64(st, 6);
    r->bytes = sqlite3_column_int64(st, 7);
    r->created = sqlite3_column_int64(st, 8);
    r->started = sqlite3_column_int64(st, 9);
    r->finished = sqlite3_column_int64(st, 10);
}

/* The job `id` of `client` (NULL: any client); 1 found, 0 not, -1 error. */
static int get_job(server *s, const char *id, const char *client, job_row *r)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT %s FROM jobs WHERE id = ?1 AND (?2 IS NULL OR client = ?2)", job_cols);
    sqlite3_stmt *st = prep(s, sql);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    if (client) sqlite3_bind_text(st, 2, client, -1, SQLITE_TRANSIENT);
    const int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) read_job(st, r);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* The key set `id` of `client`: its kind and bytes; 1 found, 0 not, -1 error. */
static int get_keyset(server *s, const char *id, const char *client, char kind[16], int64_t *bytes)
{
    sqlite3_stmt *st = prep(s, "SELECT kind, bytes FROM keysets WHERE id = ?1 AND client = ?2");
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, client, -1, SQLITE_TRANSIENT);
    const int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        copy_col(st, 0, kind, 16);
        *bytes = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static int64_t count_sql(server *s, const char *sql, const char *arg)
{
    sqlite3_stmt *st = prep(s, sql);
    if (!st) return -1;
    if (arg) sqlite3_bind_text(st, 1, arg, -1, SQLITE_TRANSIENT);
    const int64_t n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    return n;
}

/* ---- the queue and the workers ------------------------------------------------------------- */

static void enqueue(server *s, const char *id, uint64_t mem)
{
    queued_job *q = calloc(1, sizeof *q);
    if (!q) return;
    snprintf(q->id, sizeof q->id, "%s", id);
    q->mem = mem;
    if (s->tail) s->tail->next = q;
    else s->head = q;
    s->tail = q;
    s->queued++;
    pthread_cond_broadcast(&s->cond);
}

static bool dequeue_id(server *s, const char *id)
{
    for (queued_job **p = &s->head, *prev = NULL; *p; prev = *p, p = &(*p)->next) {
        if (strcmp((*p)->id, id)) continue;
        queued_job *q = *p;
        *p = q->next;
        if (s->tail == q) s->tail = prev;
        free(q);
        s->queued--;
        return true;
    }
    return false;
}

static worker *running_worker(server *s, const char *id)
{
    for (unsigned i = 0; i < s->n_workers; i++)
        if (s->workers[i].busy && !strcmp(s->workers[i].job, id)) return &s->workers[i];
    return NULL;
}

static void job_progress(void *user, double done)
{
    worker *w = user;
    pthread_mutex_lock(&w->s->lock);
    /* stages report their own fractions: shown never going back */
    if (done > w->progress) w->progress = done > 1 ? 1 : done;
    pthread_mutex_unlock(&w->s->lock);
}

static char *job_path(const server *s, const char *id, const char *name)
{
    char *dir = cli_path_join(s->jobs_dir, id);
    char *p = dir && name ? cli_path_join(dir, name) : NULL;
    if (!name) return dir;
    free(dir);
    return p;
}

/* Run one job with the local command; 0 on success, else the command's first error in err. */
static int run_job(server *s, worker *w, const job_row *r, char *err, size_t cap)
{
    char *ks = cli_path_join(s->keysets_dir, r->keyset);
    char *model = job_path(s, r->id, "model"), *in = job_path(s, r->id, "input"), *out = job_path(s, r->id, JOB_RESULT);
    int rc = CLI_EXIT_FAIL;
    cli_job job = {.progress = job_progress, .user = w, .cancel = &w->cancel};
    if (ks && model && in && out) {
        cli_job_set(&job);
        if (!strcmp(r->kind, "resnet")) {
            char *argv[] = {"model infer", "--keys", ks, "--model", model, "--in", in, "--out", out, NULL};
            rc = cmd_model_infer(9, argv);
        } else {
            const bool enc = !strcmp(r->kind, "mnist-encrypted");
            char *argv[] = {"infer", "--keys", ks, "--in", in, enc ? "--encrypted-model" : "--model", model, "--out", out, "--quiet", NULL};
            rc = cmd_infer(10, argv);
        }
        cli_job_set(NULL);
    } else {
        snprintf(job.error, sizeof job.error, "out of memory");
    }
    snprintf(err, cap, "%s", job.error[0] ? job.error : rc ? "the command failed" : "");
    free(ks), free(model), free(in), free(out);
    return rc;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    server *s = w->s;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        /* first in, first out; a job waits until its memory estimate fits beside the running ones */
        while (!s->stopping && !(s->head && (s->running == 0 || s->reserved + s->head->mem <= s->memory_limit)))
            pthread_cond_wait(&s->cond, &s->lock);
        if (s->stopping) break;
        queued_job *q = s->head;
        s->head = q->next;
        if (!s->head) s->tail = NULL;
        s->queued--;
        const uint64_t mem = q->mem;
        job_row r;
        const int found = get_job(s, q->id, NULL, &r);
        free(q);
        if (found != 1) continue;
        s->reserved += mem;
        s->running++;
        w->busy = true;
        snprintf(w->job, sizeof w->job, "%s", r.id);
        w->cancel = 0;
        w->user_cancel = false;
        w->progress = 0;
        exec_sql(s, "UPDATE jobs SET state = 'running', started = ?2 WHERE id = ?1", "ti", r.id, (int64_t)now_unix());
        pthread_mutex_unlock(&s->lock);

        log_line("job %s (%s, client %s) started", r.id, r.kind, r.client);
        const int64_t t0 = now_unix();
        char err[512];
        const int rc = run_job(s, w, &r, err, sizeof err);

        pthread_mutex_lock(&s->lock);
        s->reserved -= mem;
        s->running--;
        w->busy = false;
        const char *state = rc == 0 ? "done" : w->user_cancel ? "cancelled" : (w->cancel && s->stopping) ? "queued" : "failed";
        exec_sql(s, "UPDATE jobs SET state = ?2, error = ?3, finished = ?4 WHERE id = ?1", "ttti", r.id, state,
                 rc ? err : "", (int64_t)now_unix());
        if (!strcmp(state, "done")) s->m.done++;
        else if (!strcmp(state, "failed")) s->m.failed++;
        else if (!strcmp(state, "cancelled")) s->m.cancelled++;
        s->m.job_seconds += (double)(now_unix() - t0);
        log_line("job %s %s after %" PRId64 " s%s%s", r.id, state, now_unix() - t0, rc && !w->cancel ? ": " : "", rc && !w->cancel ? err : "");
        pthread_cond_broadcast(&s->cond);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* ---- HTTP ---------------------------------------------------------------------------------- */

enum route { R_OTHER, R_KEYSET_UPLOAD, R_JOB_SUBMIT };

typedef struct request {
    enum route route;
    bool authed, have_bundle;
    char client[65];
    bundle b;
    uint64_t received;
    unsigned status; /* an error found before or while reading the body */
    char err[256];
    const job_kind *kind;
    char keyset[KEYSET_ID_LEN + 1], keyset_kind[16];
    int64_t keyset_bytes;
} request;

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type, const char *body)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    const enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result reply_json(struct MHD_Connection *c, unsigned status, json_object *o)
{
    const enum MHD_Result ret = reply(c, status, "application/json", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return ret;
}

static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "error", json_object_new_string(msg));
    json_object_object_add(o, "status", json_object_new_int((int)status));
    return reply_json(c, status, o);
}

static bool is_hex_id(const char *s, size_t len)
{
    size_t i = 0;
    for (; s[i]; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    return i == len;
}

/* "Authorization: Bearer TOKEN": the client's name, or false */
static bool authenticate(server *s, struct MHD_Connection *c, char client[65])
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncmp(h, "Bearer ", 7) || !h[7] || strlen(h) > 512) return false;
    char hash[65];
    store_token_hash(h + 7, hash);
    for (size_t i = 0; i < s->n_tokens; i++)
        if (!strcmp(s->tokens[i].hash, hash)) return snprintf(client, 65, "%s", s->tokens[i].name), true;
    pthread_mutex_lock(&s->lock);
    bool found = false;
    sqlite3_stmt *st = prep(s, "SELECT name FROM clients WHERE token_sha256 = ?1");
    if (st) {
        sqlite3_bind_text(st, 1, hash, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) == SQLITE_ROW) copy_col(st, 0, client, 65), found = true;
        sqlite3_finalize(st);
    }
    if (!found) s->m.rejected_auth++;
    pthread_mutex_unlock(&s->lock);
    return found;
}

static json_object *job_json(server *s, const job_row *r)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(r->id));
    json_object_object_add(o, "kind", json_object_new_string(r->kind));
    json_object_object_add(o, "keyset", json_object_new_string(r->keyset));
    json_object_object_add(o, "state", json_object_new_string(r->state));
    double progress = !strcmp(r->state, "done") ? 1.0 : 0.0;
    const worker *w = running_worker(s, r->id);
    if (w) progress = w->progress;
    json_object_object_add(o, "progress", json_object_new_double(progress));
    json_object_object_add(o, "memory_estimate", json_object_new_int64(r->mem));
    json_object_object_add(o, "input_bytes", json_object_new_int64(r->bytes));
    json_object_object_add(o, "created", json_object_new_int64(r->created));
    if (r->started) json_object_object_add(o, "started", json_object_new_int64(r->started));
    if (r->finished) json_object_object_add(o, "finished", json_object_new_int64(r->finished));
    if (r->error[0]) json_object_object_add(o, "error", json_object_new_string(r->error));
    if (!strcmp(r->state, "queued")) {
        int pos = 0;
        for (const queued_job *q = s->head; q && strcmp(q->id, r->id); q = q->next) pos++;
        json_object_object_add(o, "queue_position", json_object_new_int(pos));
    }
    return o;
}

static enum MHD_Result finish_keyset_upload(server *s, struct MHD_Connection *c, request *q)
{
    uint8_t digest[32];
    if (bundle_finish(&q->b, digest)) return reply_error(c, q->b.http_status, "%s", q->b.err);
    const char *kind = NULL;
    const char *const *files = NULL;
    if (q->b.n == 2 && bundle_get(&q->b, "params.hecnn") && bundle_get(&q->b, "eval.keys")) kind = "mnist", files = mnist_keyset_files;
    else if (q->b.n == 4 && bundle_get(&q->b, "params.hecnn") && bundle_get(&q->b, "plan") && bundle_get(&q->b, "boot.keys") &&
             bundle_get(&q->b, "network.keys"))
        kind = "resnet", files = resnet_keyset_files;
    if (!kind)
        return reply_error(c, 400, "a key set is params.hecnn + eval.keys (MNIST) or params.hecnn + plan + boot.keys + network.keys (ResNet)");
    /* each file must be what its name says (docs/FORMATS.md): the jobs check the rest */
    static const struct { const char *name; uint8_t type; } types[] = {{"params.hecnn", 1}, {"eval.keys", 7}, {"network.keys", 7}};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        const bundle_member *m = bundle_get(&q->b, types[i].name);
        if (m && (m->head_n < 10 || memcmp(m->head, "HECNN\0", 6) || m->head[8] != types[i].type || m->head[9]))
            return reply_error(c, 400, "%s is not a hecnn object of type %u (docs/FORMATS.md)", types[i].name, types[i].type);
    }
    const bundle_member *plan = bundle_get(&q->b, "plan");
    if (plan && (plan->head_n < 10 || memcmp(plan->head, "hecnn-plan", 10)))
        return reply_error(c, 400, "plan is not a plan record (hecnn model keygen)");
    char id[65];
    serve_hex(digest, 32, id);
    char *dir = cli_path_join(s->keysets_dir, id);
    if (!dir) return reply_error(c, 500, "out of memory");
    struct stat sb;
    if (stat(dir, &sb)) {
        char *tmp[BUNDLE_MAX_MEMBERS];
        size_t n = 0;
        for (; files[n]; n++) tmp[n] = bundle_get(&q->b, files[n])->tmp;
        if (serve_install_dir(dir, files, tmp, n) && stat(dir, &sb)) {
            free(dir);
            return reply_error(c, 500, "cannot store the key set");
        }
        for (size_t i = 0; i < q->b.n; i++) free(q->b.m[i].tmp), q->b.m[i].tmp = NULL; /* moved (or left to the copy there) */
    }
    free(dir);
    pthread_mutex_lock(&s->lock);
    char k2[16];
    int64_t b2;
    const int exists = get_keyset(s, id, q->client, k2, &b2);
    const int rc = exists ? 0 : exec_sql(s, "INSERT INTO keysets(id, client, kind, bytes, created) VALUES(?1, ?2, ?3, ?4, ?5)", "tttii", id,
                                         q->client, kind, (int64_t)q->b.total, (int64_t)now_unix());
    pthread_mutex_unlock(&s->lock);
    if (exists < 0 || rc) return reply_error(c, 500, "cannot record the key set");
    log_line("key set %s (%s, %" PRIu64 " bytes) %s for client %s", id, kind, q->b.total, exists ? "already registered" : "registered",
             q->client);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(id));
    json_object_object_add(o, "kind", json_object_new_string(kind));
    json_object_object_add(o, "bytes", json_object_new_int64((int64_t)q->b.total));
    json_object_object_add(o, "created", json_object_new_boolean(!exists));
    return reply_json(c, exists ? 200 : 201, o);
}

static uint64_t estimate_memory(const job_kind *k, int64_t keyset_bytes, uint64_t model, uint64_t input)
{
    /* keys expand their seeds (x2), ciphertexts are read whole and the scores written beside
     * them, a plaintext model is encoded at every level it is used: a heuristic, with a base */
    return k->base_mem + 2 * (uint64_t)keyset_bytes + 3 * input + 8 * model;
}

/* 0 when a job may be queued, else the HTTP status (429, 503) with its message */
static unsigned admit(server *s, uint64_t mem, char *err, size_t cap)
{
    if (s->stopping) return snprintf(err, cap, "the server is shutting down"), 503;
    if (mem > s->memory_limit) {
        s->m.rejected_memory++;
        snprintf(err, cap, "the job needs about %" PRIu64 " MiB, over the server's memory limit of %" PRIu64 " MiB", mem >> 20,
                 s->memory_limit >> 20);
        return 503;
    }
    if (s->queued >= s->queue_max) {
        s->m.rejected_queue++;
        snprintf(err, cap, "the queue is full (%zu jobs waiting): retry later", s->queued);
        return 429;
    }
    return 0;
}

static enum MHD_Result finish_job_submit(server *s, struct MHD_Connection *c, request *q)
{
    uint8_t digest[32];
    if (bundle_finish(&q->b, digest)) return reply_error(c, q->b.http_status, "%s", q->b.err);
    const bundle_member *model = bundle_get(&q->b, "model"), *input = bundle_get(&q->b, "input");
    if (!model || !input || q->b.n != 2) return reply_error(c, 400, "a job is a bundle of two members: model and input");
    const uint64_t mem = estimate_memory(q->kind, q->keyset_bytes, model->size, input->size);
    uint8_t raw[JOB_ID_LEN / 2];
    char id[JOB_ID_LEN + 1], err[256];
    if (RAND_bytes(raw, sizeof raw) != 1) return reply_error(c, 500, "no randomness for a job id");
    serve_hex(raw, sizeof raw, id);
    pthread_mutex_lock(&s->lock);
    unsigned status = admit(s, mem, err, sizeof err);
    pthread_mutex_unlock(&s->lock);
    if (status) return reply_error(c, status, "%s", err);
    char *dir = cli_path_join(s->jobs_dir, id);
    char *tmp[2] = {model->tmp, input->tmp};
    if (!dir || serve_install_dir(dir, job_members, tmp, 2)) {
        free(dir);
        return reply_error(c, 500, "cannot store the job");
    }
    for (size_t i = 0; i < q->b.n; i++) free(q->b.m[i].tmp), q->b.m[i].tmp = NULL;
    pthread_mutex_lock(&s->lock);
    status = admit(s, mem, err, sizeof err);
    if (!status && exec_sql(s,
                            "INSERT INTO jobs(id, client, keyset, kind, state, mem, bytes, created) VALUES(?1, ?2, ?3, ?4, 'queued', ?5, ?6, ?7)",
                            "ttttiii", id, q->client, q->keyset, q->kind->name, (int64_t)mem, (int64_t)input->size, (int64_t)now_unix()))
        status = 500, snprintf(err, sizeof err, "cannot record the job");
    if (!status) {
        enqueue(s, id, mem);
        s->m.submitted++;
    }
    job_row r;
    json_object *o = !status && get_job(s, id, NULL, &r) == 1 ? job_json(s, &r) : NULL;
    pthread_mutex_unlock(&s->lock);
    if (status) {
        serve_remove_dir(dir);
        free(dir);
        return reply_error(c, status, "%s", err);
    }
    free(dir);
    log_line("job %s (%s) queued for client %s, memory estimate %" PRIu64 " MiB", id, q->kind->name, q->client, mem >> 20);
    if (!o) return reply_error(c, 500, "cannot read the job back");
    return reply_json(c, 202, o);
}

static enum MHD_Result metrics_reply(server *s, struct MHD_Connection *c)
{
    enum { CAP = 4096 + 500 * 48 };
    char *body = malloc(CAP);
    if (!body) return reply_error(c, 500, "out of memory");
    pthread_mutex_lock(&s->lock);
    const metrics m = s->m;
    int n = snprintf(body, CAP,
             "# HELP hecnn_http_requests_total HTTP requests received.\n# TYPE hecnn_http_requests_total counter\n"
             "hecnn_http_requests_total %" PRIu64 "\n"
             "# HELP hecnn_upload_bytes_total Request body bytes received.\n# TYPE hecnn_upload_bytes_total counter\n"
             "hecnn_upload_bytes_total %" PRIu64 "\n"
             "# HELP hecnn_auth_failures_total Requests with a missing or unknown token.\n# TYPE hecnn_auth_failures_total counter\n"
             "hecnn_auth_failures_total %" PRIu64 "\n"
             "# HELP hecnn_jobs_submitted_total Jobs accepted.\n# TYPE hecnn_jobs_submitted_total counter\n"
             "hecnn_jobs_submitted_total %" PRIu64 "\n"
             "# HELP hecnn_jobs_finished_total Jobs finished, by final state.\n# TYPE hecnn_jobs_finished_total counter\n"
             "hecnn_jobs_finished_total{state=\"done\"} %" PRIu64 "\nhecnn_jobs_finished_total{state=\"failed\"} %" PRIu64 "\n"
             "hecnn_jobs_finished_total{state=\"cancelled\"} %" PRIu64 "\n"
             "# HELP hecnn_jobs_rejected_total Jobs refused at submission.\n# TYPE hecnn_jobs_rejected_total counter\n"
             "hecnn_jobs_rejected_total{reason=\"queue_full\"} %" PRIu64 "\nhecnn_jobs_rejected_total{reason=\"memory\"} %" PRIu64 "\n"
             "# HELP hecnn_job_seconds_total Wall time of finished jobs.\n# TYPE hecnn_job_seconds_total counter\n"
             "hecnn_job_seconds_total %.0f\n"
             "# HELP hecnn_jobs_queued Jobs waiting.\n# TYPE hecnn_jobs_queued gauge\nhecnn_jobs_queued %zu\n"
             "# HELP hecnn_jobs_running Jobs running.\n# TYPE hecnn_jobs_running gauge\nhecnn_jobs_running %zu\n"
             "# HELP hecnn_workers Worker threads.\n# TYPE hecnn_workers gauge\nhecnn_workers %u\n"
             "# HELP hecnn_memory_reserved_bytes Memory estimates of the running jobs.\n# TYPE hecnn_memory_reserved_bytes gauge\n"
             "hecnn_memory_reserved_bytes %" PRIu64 "\n"
             "# HELP hecnn_memory_limit_bytes The --memory-limit.\n# TYPE hecnn_memory_limit_bytes gauge\nhecnn_memory_limit_bytes %" PRIu64 "\n",
             m.requests, m.upload_bytes, m.rejected_auth, m.submitted, m.done, m.failed, m.cancelled, m.rejected_queue, m.rejected_memory,
             m.job_seconds, s->queued, s->running, s->n_workers, s->reserved, s->memory_limit);
    pthread_mutex_unlock(&s->lock);
    n += snprintf(body + n, CAP - (size_t)n, "# HELP hecnn_http_responses_total Answers sent, by HTTP status.\n"
                                             "# TYPE hecnn_http_responses_total counter\n");
    for (unsigned i = 0; i < 500; i++)
        if (m.responses[i]) n += snprintf(body + n, CAP - (size_t)n, "hecnn_http_responses_total{code=\"%u\"} %" PRIu64 "\n", i + 100, m.responses[i]);
    const enum MHD_Result ret = reply(c, 200, "text/plain; version=0.0.4", body);
    free(body);
    return ret;
}

static enum MHD_Result list_reply(server *s, struct MHD_Connection *c, const char *client, bool jobs)
{
    json_object *arr = json_object_new_array();
    pthread_mutex_lock(&s->lock);
    char sql[256];
    if (jobs) snprintf(sql, sizeof sql, "SELECT %s FROM jobs WHERE client = ?1 ORDER BY seq", job_cols);
    else snprintf(sql, sizeof sql, "SELECT id, kind, bytes, created FROM keysets WHERE client = ?1 ORDER BY created");
    sqlite3_stmt *st = prep(s, sql);
    if (st) {
        sqlite3_bind_text(st, 1, client, -1, SQLITE_TRANSIENT);
        while (sqlite3_step(st) == SQLITE_ROW) {
            if (jobs) {
                job_row r;
                read_job(st, &r);
                json_object_array_add(arr, job_json(s, &r));
            } else {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "id", json_object_new_string((const char *)sqlite3_column_text(st, 0)));
                json_object_object_add(o, "kind", json_object_new_string((const char *)sqlite3_column_text(st, 1)));
                json_object_object_add(o, "bytes", json_object_new_int64(sqlite3_column_int64(st, 2)));
                json_object_object_add(o, "created", json_object_new_int64(sqlite3_column_int64(st, 3)));
                json_object_array_add(arr, o);
            }
        }
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&s->lock);
    json_object *o = json_object_new_object();
    json_object_object_add(o, jobs ? "jobs" : "keysets", arr);
    return reply_json(c, 200, o);
}

static enum MHD_Result keyset_reply(server *s, struct MHD_Connection *c, const char *client, const char *id, const char *method)
{
    char kind[16];
    int64_t bytes = 0;
    pthread_mutex_lock(&s->lock);
    const int found = get_keyset(s, id, client, kind, &bytes);
    if (found != 1) {
        pthread_mutex_unlock(&s->lock);
        return found < 0 ? reply_error(c, 500, "store error") : reply_error(c, 404, "no such key set");
    }
    if (!strcmp(method, "DELETE")) {
        sqlite3_stmt *st = prep(s, "SELECT count(*) FROM jobs WHERE keyset = ?1 AND client = ?2 AND state IN ('queued', 'running')");
        int64_t busy = 1;
        if (st) {
            sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(st, 2, client, -1, SQLITE_TRANSIENT);
            if (sqlite3_step(st) == SQLITE_ROW) busy = sqlite3_column_int64(st, 0);
            sqlite3_finalize(st);
        }
        if (busy) {
            pthread_mutex_unlock(&s->lock);
            return reply_error(c, 409, "the key set has queued or running jobs: cancel them first");
        }
        exec_sql(s, "DELETE FROM keysets WHERE id = ?1 AND client = ?2", "tt", id, client);
        /* other clients may hold the same bytes (content-addressed); their jobs too */
        const int64_t left = count_sql(s, "SELECT (SELECT count(*) FROM keysets WHERE id = ?1) + "
                                          "(SELECT count(*) FROM jobs WHERE keyset = ?1 AND state IN ('queued', 'running'))", id);
        if (left == 0) {
            char *dir = cli_path_join(s->keysets_dir, id);
            if (dir) serve_remove_dir(dir);
            free(dir);
        }
        pthread_mutex_unlock(&s->lock);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "deleted", json_object_new_string(id));
        return reply_json(c, 200, o);
    }
    pthread_mutex_unlock(&s->lock);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(id));
    json_object_object_add(o, "kind", json_object_new_string(kind));
    json_object_object_add(o, "bytes", json_object_new_int64(bytes));
    return reply_json(c, 200, o);
}

static enum MHD_Result job_reply(server *s, struct MHD_Connection *c, const char *client, const char *id, const char *action,
                                 const char *method)
{
    job_row r;
    pthread_mutex_lock(&s->lock);
    const int found = get_job(s, id, client, &r);
    if (found != 1) {
        pthread_mutex_unlock(&s->lock);
        return found < 0 ? reply_error(c, 500, "store error") : reply_error(c, 404, "no such job");
    }
    if (!action && !strcmp(method, "GET")) {
        json_object *o = job_json(s, &r);
        pthread_mutex_unlock(&s->lock);
        return reply_json(c, 200, o);
    }
    if (!action && !strcmp(method, "DELETE")) {
        if (running_worker(s, id)) {
            pthread_mutex_unlock(&s->lock);
            return reply_error(c, 409, "the job is running: cancel it first");
        }
        dequeue_id(s, id);
        exec_sql(s, "DELETE FROM jobs WHERE id = ?1", "t", id);
        char *dir = job_path(s, id, NULL);
        if (dir) serve_remove_dir(dir);
        free(dir);
        pthread_mutex_unlock(&s->lock);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "deleted", json_object_new_string(id));
        return reply_json(c, 200, o);
    }
    if (action && !strcmp(action, "cancel") && !strcmp(method, "POST")) {
        worker *w = running_worker(s, id);
        if (w) w->user_cancel = true, w->cancel = 1;
        else if (dequeue_id(s, id)) {
            exec_sql(s, "UPDATE jobs SET state = 'cancelled', finished = ?2 WHERE id = ?1", "ti", id, (int64_t)now_unix());
            s->m.cancelled++;
        } else {
            pthread_mutex_unlock(&s->lock);
            return reply_error(c, 409, "the job is %s: nothing to cancel", r.state);
        }
        get_job(s, id, NULL, &r);
        json_object *o = job_json(s, &r);
        if (w) json_object_object_add(o, "cancelling", json_object_new_boolean(1));
        pthread_mutex_unlock(&s->lock);
        return reply_json(c, 202, o);
    }
    pthread_mutex_unlock(&s->lock);
    if (action && !strcmp(action, "result") && !strcmp(method, "GET")) {
        if (strcmp(r.state, "done")) return reply_error(c, 409, "the job is %s: no result yet", r.state);
        char *path = job_path(s, id, JOB_RESULT);
        const int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
        free(path);
        struct stat sb;
        if (fd < 0 || fstat(fd, &sb)) {
            if (fd >= 0) close(fd);
            return reply_error(c, 500, "the result file is missing");
        }
        struct MHD_Response *resp = MHD_create_response_from_fd64((uint64_t)sb.st_size, fd);
        if (!resp) {
            close(fd);
            return MHD_NO;
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
        const enum MHD_Result ret = MHD_queue_response(c, 200, resp);
        MHD_destroy_response(resp);
        return ret;
    }
    if (action && strcmp(action, "result") && strcmp(action, "cancel")) return reply_error(c, 404, "no such resource");
    return reply_error(c, 405, "method %s not allowed here", method);
}

/* The first call of a request: route it, and for uploads check everything that can be checked
 * before the body arrives. */
static void begin(server *s, struct MHD_Connection *c, request *q, const char *url, const char *method)
{
    const bool post = !strcmp(method, "POST");
    if (post && !strcmp(url, "/v1/keysets")) q->route = R_KEYSET_UPLOAD;
    else if (post && !strcmp(url, "/v1/jobs")) q->route = R_JOB_SUBMIT;
    else return;
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    uint64_t len = 0;
    if (!(q->authed = authenticate(s, c, q->client))) q->status = 401, snprintf(q->err, sizeof q->err, "a valid bearer token is required");
    else if (!ct || strncmp(ct, BUNDLE_CONTENT_TYPE, strlen(BUNDLE_CONTENT_TYPE)) || (ct[strlen(BUNDLE_CONTENT_TYPE)] && ct[strlen(BUNDLE_CONTENT_TYPE)] != ';'))
        q->status = 415, snprintf(q->err, sizeof q->err, "uploads are bundles: Content-Type: %s", BUNDLE_CONTENT_TYPE);
    else if (cl && (!serve_parse_bytes(cl, &len) || len > s->max_upload))
        q->status = 413, snprintf(q->err, sizeof q->err, "the upload exceeds the server's limit of %" PRIu64 " bytes", s->max_upload);
    if (q->status || q->route != R_JOB_SUBMIT) goto body;
    q->kind = find_kind(MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "kind"));
    const char *ks = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "keyset");
    if (!q->kind) {
        q->status = 400, snprintf(q->err, sizeof q->err, "?kind= must be mnist-plain, mnist-encrypted or resnet");
        goto body;
    }
    if (!ks || !is_hex_id(ks, KEYSET_ID_LEN)) {
        q->status = 400, snprintf(q->err, sizeof q->err, "?keyset= must be a key set id (64 hex digits)");
        goto body;
    }
    snprintf(q->keyset, sizeof q->keyset, "%s", ks);
    pthread_mutex_lock(&s->lock);
    const int found = get_keyset(s, q->keyset, q->client, q->keyset_kind, &q->keyset_bytes);
    /* fail early when the queue is full, before the upload */
    char err[256];
    const unsigned adm = found == 1 ? admit(s, estimate_memory(q->kind, q->keyset_bytes, 0, len), err, sizeof err) : 0;
    pthread_mutex_unlock(&s->lock);
    if (found != 1) q->status = found < 0 ? 500 : 404, snprintf(q->err, sizeof q->err, "no such key set");
    else if (strcmp(q->keyset_kind, q->kind->keyset_kind))
        q->status = 400, snprintf(q->err, sizeof q->err, "a %s job needs a %s key set; this one is %s", q->kind->name, q->kind->keyset_kind,
                                  q->keyset_kind);
    else if (adm) q->status = adm, snprintf(q->err, sizeof q->err, "%s", err);
body:
    if (!q->status) {
        if (bundle_init(&q->b, s->tmpdir, q->route == R_KEYSET_UPLOAD ? keyset_members : job_members, s->max_upload))
            q->status = q->b.http_status, snprintf(q->err, sizeof q->err, "%s", q->b.err);
        else q->have_bundle = true;
    }
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method, const char *version,
                              const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    (void)version;
    server *s = cls;
    request *q = *con_cls;
    if (!q) {
        if (!(q = calloc(1, sizeof *q))) return MHD_NO;
        *con_cls = q;
        pthread_mutex_lock(&s->lock);
        s->m.requests++;
        pthread_mutex_unlock(&s->lock);
        begin(s, c, q, url, method);
        /* refuse at once what needs no body: the client may stop sending (Expect: 100-continue) */
        if (q->status && q->status != 422) return reply_error(c, q->status, "%s", q->err);
        return MHD_YES;
    }
    if (*upload_data_size) {
        const size_t n = *upload_data_size;
        *upload_data_size = 0;
        q->received += n;
        pthread_mutex_lock(&s->lock);
        s->m.upload_bytes += n;
        pthread_mutex_unlock(&s->lock);
        if (q->received > s->max_upload) return MHD_NO; /* a chunked upload past the limit: cut */
        if (q->route == R_OTHER) {
            if (q->received > 65536) return MHD_NO;
            return MHD_YES;
        }
        if (q->have_bundle && !q->status && bundle_feed(&q->b, (const uint8_t *)upload_data, n)) {
            q->status = q->b.http_status;
            snprintf(q->err, sizeof q->err, "%s", q->b.err);
            bundle_free(&q->b);
            q->have_bundle = false;
        }
        return MHD_YES;
    }
    if (q->status) return reply_error(c, q->status, "%s", q->err);
    if (q->route == R_KEYSET_UPLOAD) return finish_keyset_upload(s, c, q);
    if (q->route == R_JOB_SUBMIT) return finish_job_submit(s, c, q);

    const bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    if (!strcmp(url, "/health")) {
        if (!get) return reply_error(c, 405, "method %s not allowed here", method);
        json_object *o = json_object_new_object();
        pthread_mutex_lock(&s->lock);
        json_object_object_add(o, "status", json_object_new_string(s->stopping ? "stopping" : "ok"));
        json_object_object_add(o, "version", json_object_new_string(HECNN_VERSION_STRING));
        json_object_object_add(o, "queued", json_object_new_int64((int64_t)s->queued));
        json_object_object_add(o, "running", json_object_new_int64((int64_t)s->running));
        const bool stopping = s->stopping;
        pthread_mutex_unlock(&s->lock);
        return reply_json(c, stopping ? 503 : 200, o);
    }
    if (!strcmp(url, "/metrics")) return get ? metrics_reply(s, c) : reply_error(c, 405, "method %s not allowed here", method);
    if (strncmp(url, "/v1/", 4)) return reply_error(c, 404, "no such resource");
    char client[65];
    if (!authenticate(s, c, client)) return reply_error(c, 401, "a valid bearer token is required");
    const char *rest = url + 4;
    if (!strcmp(rest, "keysets") || !strcmp(rest, "jobs"))
        return get ? list_reply(s, c, client, rest[0] == 'j') : reply_error(c, 405, "method %s not allowed here", method);
    char id[80] = "", action[16] = "";
    if (!strncmp(rest, "keysets/", 8)) {
        if (strlen(rest + 8) >= sizeof id || !is_hex_id(rest + 8, KEYSET_ID_LEN)) return reply_error(c, 404, "no such key set");
        if (strcmp(method, "GET") && strcmp(method, "DELETE")) return reply_error(c, 405, "method %s not allowed here", method);
        return keyset_reply(s, c, client, rest + 8, method);
    }
    if (!strncmp(rest, "jobs/", 5)) {
        const char *p = rest + 5, *slash = strchr(p, '/');
        const size_t idlen = slash ? (size_t)(slash - p) : strlen(p);
        if (idlen >= sizeof id || (slash && strlen(slash + 1) >= sizeof action)) return reply_error(c, 404, "no such job");
        memcpy(id, p, idlen);
        id[idlen] = 0;
        if (slash) snprintf(action, sizeof action, "%s", slash + 1);
        if (!is_hex_id(id, JOB_ID_LEN)) return reply_error(c, 404, "no such job");
        return job_reply(s, c, client, id, slash ? action : NULL, method);
    }
    return reply_error(c, 404, "no such resource");
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    server *s = cls;
    /* every answer of a request that reached handle() by its status (libmicrohttpd's own answers,
     * such as 431 for headers over the limit, never get here) */
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_HTTP_STATUS);
    if (ci && ci->http_status >= 100 && ci->http_status < 600) {
        pthread_mutex_lock(&s->lock);
        s->m.responses[ci->http_status - 100]++;
        pthread_mutex_unlock(&s->lock);
    }
    request *q = *con_cls;
    if (!q) return;
    if (q->have_bundle) bundle_free(&q->b); /* a cut upload leaves nothing behind */
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && q->route != R_OTHER)
        log_line("upload from %s cut after %" PRIu64 " bytes: discarded", q->authed ? q->client : "(unauthenticated)", q->received);
    free(q);
    *con_cls = NULL;
}

/* ---- start, recovery, stop ----------------------------------------------------------------- */

static int make_dir(const char *p)
{
    if (mkdir(p, 0700) && errno != EEXIST) {
        cli_error("cannot create '%s': %s", p, strerror(errno));
        return -1;
    }
    return 0;
}

static bool row_exists(server *s, const char *sql, const char *id) { return count_sql(s, sql, id) > 0; }

/* After a crash: temporary files and half-made directories go, jobs that were queued or running
 * are queued again (in their order), orphans (files without a row) go. */
static void recover(server *s)
{
    serve_remove_dir(s->tmpdir);
    make_dir(s->tmpdir);
    size_t removed = 0, requeued = 0;
    for (int pass = 0; pass < 2; pass++) {
        const char *top = pass ? s->jobs_dir : s->keysets_dir;
        DIR *d = opendir(top);
        if (!d) continue;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            char *p = cli_path_join(top, e->d_name);
            if (!p) continue;
            const bool keep = pass ? row_exists(s, "SELECT count(*) FROM jobs WHERE id = ?1", e->d_name)
                                   : row_exists(s, "SELECT count(*) FROM keysets WHERE id = ?1", e->d_name);
            if (!keep || strstr(e->d_name, ".tmp-")) {
                serve_remove_dir(p);
                removed++;
            } else if (pass) { /* a job: its inputs and result, nothing else (the result's temporary file) */
                DIR *j = opendir(p);
                struct dirent *f;
                while (j && (f = readdir(j))) {
                    if (f->d_name[0] == '.' || !strcmp(f->d_name, "model") || !strcmp(f->d_name, "input") || !strcmp(f->d_name, JOB_RESULT))
                        continue;
                    char *fp = cli_path_join(p, f->d_name);
                    if (fp) unlink(fp), removed++;
                    free(fp);
                }
                if (j) closedir(j);
            }
            free(p);
        }
        closedir(d);
    }
    exec_sql(s, "UPDATE jobs SET state = 'queued' WHERE state = 'running'", "");
    sqlite3_stmt *st = prep(s, "SELECT id, mem FROM jobs WHERE state = 'queued' ORDER BY seq");
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        char id[JOB_ID_LEN + 1];
        copy_col(st, 0, id, sizeof id);
        char *in = job_path(s, id, "input");
        if (in && cli_file_exists(in)) enqueue(s, id, (uint64_t)sqlite3_column_int64(st, 1)), requeued++;
        else exec_sql(s, "UPDATE jobs SET state = 'failed', error = 'inputs lost' WHERE id = ?1", "t", id);
        free(in);
    }
    sqlite3_finalize(st);
    if (removed || requeued) log_line("recovered: %zu queued jobs, %zu leftover files removed", requeued, removed);
}

static int load_tokens(server *s, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        cli_error("cannot read the tokens file '%s': %s", path, strerror(errno));
        return -1;
    }
    char line[1024];
    size_t ln = 0;
    int rc = 0;
    while (fgets(line, sizeof line, f)) {
        ln++;
        char name[65], tok[600];
        if (line[0] == '#' || line[strspn(line, " \t\r\n")] == 0) continue;
        if (sscanf(line, "%64s %599s", name, tok) != 2 || strlen(tok) < 16) {
            cli_error("'%s' line %zu: expected 'NAME TOKEN' (a token of at least 16 characters)", path, ln);
            rc = -1;
            break;
        }
        token *t = realloc(s->tokens, (s->n_tokens + 1) * sizeof *t);
        if (!t) {
            rc = -1;
            break;
        }
        s->tokens = t;
        snprintf(t[s->n_tokens].name, sizeof t->name, "%s", name);
        store_token_hash(tok, t[s->n_tokens].hash);
        s->n_tokens++;
        explicit_bzero(tok, sizeof tok);
    }
    explicit_bzero(line, sizeof line);
    fclose(f);
    return rc;
}

static char *read_small_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = calloc(1, 1 << 20);
    const size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (buf && !n) free(buf), buf = NULL;
    return buf;
}

static int serve_token(int argc, char **argv)
{
    const char *data = NULL;
    const cli_opt opts[] = {
        {"data", CLI_OPT_STRING, &data, "DIR", "the server's data directory", NULL},
        {0},
    };
    const cli_command cmd = {"serve token", "add NAME | list | remove NAME --data DIR",
                             "Client tokens: 'add' prints a new token once (only its SHA-256 is stored); a client sees only\n"
                             "its own key sets and jobs.",
                             opts, 2};
    char *pos[2];
    size_t npos = 0;
    int rc = cli_parse(&cmd, argc, argv, pos, &npos);
    if (rc) return rc == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    if (cli_require(&cmd, "data", data)) return CLI_EXIT_USAGE;
    const bool add = npos == 2 && !strcmp(pos[0], "add"), del = npos == 2 && !strcmp(pos[0], "remove"), list = npos == 1 && !strcmp(pos[0], "list");
    if (!add && !del && !list) {
        cli_error("give add NAME, list or remove NAME (see 'hecnn serve token --help')");
        return CLI_EXIT_USAGE;
    }
    if ((add || del) && (strlen(pos[1]) > 64 || !pos[1][0] || strspn(pos[1], "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != strlen(pos[1]))) {
        cli_error("a client name is 1..64 characters of [A-Za-z0-9._-]");
        return CLI_EXIT_USAGE;
    }
    if (make_dir(data)) return CLI_EXIT_FAIL;
    char *dbp = cli_path_join(data, "hecnn.db");
    server s = {0};
    pthread_mutex_init(&s.lock, NULL);
    rc = CLI_EXIT_FAIL;
    if (!dbp || store_open(&s.db, dbp)) goto done;
    if (list) {
        sqlite3_stmt *st = prep(&s, "SELECT name, created FROM clients ORDER BY name");
        while (st && sqlite3_step(st) == SQLITE_ROW) printf("%s\n", (const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
        rc = CLI_EXIT_OK;
    } else if (del) {
        if (exec_sql(&s, "DELETE FROM clients WHERE name = ?1", "t", pos[1])) goto done;
        if (sqlite3_changes(s.db) == 0) {
            cli_error("no client '%s'", pos[1]);
            goto done;
        }
        rc = CLI_EXIT_OK;
    } else {
        uint8_t raw[32];
        char tok[65], hash[65];
        if (RAND_bytes(raw, sizeof raw) != 1) {
            cli_error("no randomness");
            goto done;
        }
        serve_hex(raw, sizeof raw, tok);
        store_token_hash(tok, hash);
        if (exec_sql(&s, "INSERT INTO clients(name, token_sha256, created) VALUES(?1, ?2, ?3)", "tti", pos[1], hash, (int64_t)now_unix())) {
            cli_error("cannot add client '%s' (does it exist already?)", pos[1]);
            goto done;
        }
        printf("%s\n", tok); /* shown once: only its hash is kept */
        explicit_bzero(tok, sizeof tok);
        explicit_bzero(raw, sizeof raw);
        rc = CLI_EXIT_OK;
    }
done:
    sqlite3_close(s.db);
    free(dbp);
    pthread_mutex_destroy(&s.lock);
    return rc;
}

int cmd_serve(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "token")) {
        argv[1] = "serve token";
        return serve_token(argc - 1, argv + 1);
    }
    const char *data = NULL, *listen_addr = "127.0.0.1", *cert = NULL, *key = NULL, *tokens = NULL, *mem_s = "8G", *upload_s = "16G",
               *port_file = NULL;
    unsigned port = 8080, workers = 1, threads = 0, timeout = 60, max_conn = 64;
    size_t queue_max = 16;
    const cli_opt opts[] = {
        {"data", CLI_OPT_STRING, &data, "DIR", "data directory: the store (hecnn.db), key sets, jobs (created if needed)", NULL},
        {"listen", CLI_OPT_STRING, &listen_addr, "ADDR", "IPv4 address to listen on (default 127.0.0.1)", NULL},
        {"port", CLI_OPT_UINT, &port, "PORT", "TCP port (default 8080; 0: any free port, printed)", NULL},
        {"port-file", CLI_OPT_STRING, &port_file, "FILE", "write the port listened on to FILE once ready", NULL},
        {"tls-cert", CLI_OPT_STRING, &cert, "FILE", "PEM certificate: serve HTTPS (with --tls-key)", NULL},
        {"tls-key", CLI_OPT_STRING, &key, "FILE", "PEM private key of the certificate", NULL},
        {"tokens", CLI_OPT_STRING, &tokens, "FILE", "client tokens, 'NAME TOKEN' per line (besides 'hecnn serve token add')", NULL},
        {"workers", CLI_OPT_UINT, &workers, "N", "jobs run at once (default 1; 0 queues without running)", NULL},
        {"threads", CLI_OPT_UINT, &threads, "T", "threads per job (default: all cores)", NULL},
        {"queue", CLI_OPT_SIZE, &queue_max, "N", "jobs waiting at most; more get 429 (default 16)", NULL},
        {"memory-limit", CLI_OPT_STRING, &mem_s, "SIZE", "memory for running jobs, by their estimates (default 8G)", NULL},
        {"max-upload", CLI_OPT_STRING, &upload_s, "SIZE", "largest request body (default 16G)", NULL},
        {"timeout", CLI_OPT_UINT, &timeout, "S", "idle connection timeout in seconds (default 60)", NULL},
        {"max-connections", CLI_OPT_UINT, &max_conn, "N", "connections at once (default 64)", NULL},
        {0},
    };
    const cli_command cmd = {"serve", "--data DIR [--port PORT] [--tls-cert FILE --tls-key FILE] [--workers N] [--memory-limit SIZE]",
                             "Server role as a network service: clients register key sets and submit jobs over HTTP(S); jobs\n"
                             "run as 'hecnn infer' and 'hecnn model infer' would. Never holds a secret key. Clients: tokens\n"
                             "from 'hecnn serve token add NAME --data DIR' or --tokens FILE. See docs/SERVER.md.",
                             opts, 0};
    int rc = cli_parse(&cmd, argc, argv, NULL, NULL);
    if (rc) return rc == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    server s = {.queue_max = queue_max, .n_workers = workers};
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (cli_require(&cmd, "data", data)) return CLI_EXIT_USAGE;
    if (!serve_parse_bytes(mem_s, &s.memory_limit) || !serve_parse_bytes(upload_s, &s.max_upload) || !s.max_upload) {
        cli_error("--memory-limit and --max-upload take a size: 512M, 24G, ...");
        return CLI_EXIT_USAGE;
    }
    if (port > 65535 || inet_pton(AF_INET, listen_addr, &addr.sin_addr) != 1 || !cert != !key || workers > 64 || !queue_max || !timeout) {
        cli_error("bad --listen, --port, --workers (0..64), --queue or --timeout, or only one of --tls-cert/--tls-key");
        return CLI_EXIT_USAGE;
    }
    if (cert && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        cli_error("this libmicrohttpd has no TLS support");
        return CLI_EXIT_FAIL;
    }
    if (threads) hecnn_set_threads((int)threads);
    setvbuf(stdout, NULL, _IOLBF, 0); /* the commands' summary lines, as they come */
    s.data = strdup(data);
    rc = CLI_EXIT_FAIL;
    char *dbp = NULL, *cert_pem = NULL, *key_pem = NULL;
    struct MHD_Daemon *d = NULL;
    pthread_mutex_init(&s.lock, NULL);
    pthread_cond_init(&s.cond, NULL);
    s.tmpdir = cli_path_join(data, "tmp");
    s.keysets_dir = cli_path_join(data, "keysets");
    s.jobs_dir = cli_path_join(data, "jobs");
    dbp = cli_path_join(data, "hecnn.db");
    if (!s.data || !s.tmpdir || !s.keysets_dir || !s.jobs_dir || !dbp) goto done;
    if (make_dir(data) || make_dir(s.keysets_dir) || make_dir(s.jobs_dir) || make_dir(s.tmpdir)) goto done;
    if (tokens && load_tokens(&s, tokens)) goto done;
    if (store_open(&s.db, dbp)) goto done;
    if (cert && (!(cert_pem = read_small_file(cert)) || !(key_pem = read_small_file(key)))) {
        cli_error("cannot read --tls-cert '%s' or --tls-key '%s'", cert, key);
        goto done;
    }
    recover(&s);
    /* signals go to sigwait below, not to the threads */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (workers && !(s.workers = calloc(workers, sizeof *s.workers))) goto done;
    unsigned started = 0;
    for (; started < workers; started++) {
        s.workers[started].s = &s;
        if (pthread_create(&s.workers[started].thread, NULL, worker_main, &s.workers[started])) break;
    }
    s.n_workers = started;
    const unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG | (cert ? MHD_USE_TLS : 0);
    if (cert)
        d = MHD_start_daemon(flags, 0, NULL, NULL, handle, &s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED,
                             completed, &s, MHD_OPTION_CONNECTION_TIMEOUT, timeout, MHD_OPTION_CONNECTION_LIMIT, max_conn,
                             MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)65536, MHD_OPTION_HTTPS_MEM_CERT, cert_pem,
                             MHD_OPTION_HTTPS_MEM_KEY, key_pem, MHD_OPTION_END);
    else
        d = MHD_start_daemon(flags, 0, NULL, NULL, handle, &s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED,
                             completed, &s, MHD_OPTION_CONNECTION_TIMEOUT, timeout, MHD_OPTION_CONNECTION_LIMIT, max_conn,
                             MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)65536, MHD_OPTION_END);
    if (!d) {
        cli_error("cannot listen on %s:%u (in use?)", listen_addr, port);
    } else {
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
        const unsigned bound = info ? info->port : port;
        if (!cert && strncmp(listen_addr, "127.", 4))
            log_line("warning: plain HTTP on %s: tokens and ciphertexts travel in the clear (give --tls-cert and --tls-key)", listen_addr);
        log_line("listening on %s://%s:%u (%u workers, queue %zu, memory limit %" PRIu64 " MiB, data %s)", cert ? "https" : "http",
                 listen_addr, bound, s.n_workers, s.queue_max, s.memory_limit >> 20, data);
        if (port_file) {
            cli_output o = {0};
            if (cli_output_open(&o, port_file, false) == 0) {
                fprintf(o.f, "%u\n", bound);
                cli_output_commit(&o);
            }
        }
        int sig = 0;
        sigwait(&sigs, &sig);
        log_line("signal %d: stopping (running jobs stay queued for the next start)", sig);
        rc = CLI_EXIT_OK;
    }
    pthread_mutex_lock(&s.lock);
    s.stopping = true;
    pthread_mutex_unlock(&s.lock);
    if (d) MHD_stop_daemon(d);
    pthread_mutex_lock(&s.lock);
    for (unsigned i = 0; i < s.n_workers; i++)
        if (s.workers[i].busy) s.workers[i].cancel = 1;
    pthread_cond_broadcast(&s.cond);
    pthread_mutex_unlock(&s.lock);
    for (unsigned i = 0; i < s.n_workers; i++) pthread_join(s.workers[i].thread, NULL);
done:
    while (s.head) {
        queued_job *q = s.head;
        s.head = q->next;
        free(q);
    }
    free(s.workers);
    sqlite3_close(s.db);
    if (key_pem) explicit_bzero(key_pem, strlen(key_pem));
    free(cert_pem), free(key_pem);
    free(s.tokens);
    free(s.data), free(s.tmpdir), free(s.keysets_dir), free(s.jobs_dir), free(dbp);
    pthread_cond_destroy(&s.cond);
    pthread_mutex_destroy(&s.lock);
    return rc;
}

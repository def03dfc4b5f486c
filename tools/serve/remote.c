/* `hecnn remote`: the data owner's client of `hecnn serve` (libcurl). Uploads are bundles
 * (serve.h) streamed from the files; the secret key is never read. The owner decrypts fetched
 * scores with the local commands (decrypt-scores, model decrypt). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "serve.h"
#include "util_cli.h"

#define RESPONSE_MAX (1u << 20)

typedef struct remote {
    const char *server, *cacert;
    char auth[700];
    long timeout;
} remote;

/* ---- a bundle as a request body ---- */

typedef struct src_member {
    const char *name;
    char *path;
    uint64_t size;
} src_member;

typedef struct bundle_src {
    src_member m[BUNDLE_MAX_MEMBERS];
    size_t n, cur;
    uint64_t total, left;
    uint8_t hdr[64];
    size_t hdr_n, hdr_off;
    FILE *f;
    int phase; /* 0 header of the bundle or member, 1 member data, 2 done */
    bool magic_done;
} bundle_src;

static int src_add(bundle_src *b, const char *name, const char *path)
{
    struct stat sb;
    if (stat(path, &sb) || !S_ISREG(sb.st_mode)) {
        cli_error("cannot read '%s': %s", path, errno ? strerror(errno) : "not a regular file");
        return -1;
    }
    b->m[b->n].name = name;
    b->m[b->n].path = strdup(path);
    b->m[b->n].size = (uint64_t)sb.st_size;
    b->total += 1 + strlen(name) + 8 + (uint64_t)sb.st_size;
    b->n++;
    return 0;
}

static void src_free(bundle_src *b)
{
    for (size_t i = 0; i < b->n; i++) free(b->m[i].path);
    if (b->f) fclose(b->f);
}

static void src_header(bundle_src *b)
{
    b->hdr_n = b->hdr_off = 0;
    if (!b->magic_done) {
        memcpy(b->hdr, BUNDLE_MAGIC, 8);
        b->hdr_n = 8;
        b->magic_done = true;
    }
    if (b->cur < b->n) {
        const size_t len = strlen(b->m[b->cur].name);
        b->hdr[b->hdr_n++] = (uint8_t)len;
        memcpy(b->hdr + b->hdr_n, b->m[b->cur].name, len);
        b->hdr_n += len;
        for (int i = 0; i < 8; i++) b->hdr[b->hdr_n++] = (uint8_t)(b->m[b->cur].size >> (8 * i));
    } else {
        b->hdr[b->hdr_n++] = 0;
    }
}

static size_t src_read(char *out, size_t size, size_t nitems, void *user)
{
    bundle_src *b = user;
    const size_t cap = size * nitems;
    size_t w = 0;
    while (w < cap && b->phase != 2) {
        if (b->hdr_off < b->hdr_n) {
            const size_t k = b->hdr_n - b->hdr_off < cap - w ? b->hdr_n - b->hdr_off : cap - w;
            memcpy(out + w, b->hdr + b->hdr_off, k);
            b->hdr_off += k, w += k;
            if (b->hdr_off < b->hdr_n) break;
            if (b->cur == b->n) {
                b->phase = 2;
                break;
            }
            if (!(b->f = fopen(b->m[b->cur].path, "rb"))) return CURL_READFUNC_ABORT;
            b->left = b->m[b->cur].size;
            b->phase = 1;
        }
        if (b->phase == 1) {
            const size_t want = b->left < cap - w ? (size_t)b->left : cap - w;
            const size_t got = want ? fread(out + w, 1, want, b->f) : 0;
            if (got != want) return CURL_READFUNC_ABORT; /* the file shrank */
            w += got, b->left -= got;
            if (!b->left) {
                fclose(b->f);
                b->f = NULL;
                b->cur++;
                b->phase = 0;
                src_header(b);
            }
        }
    }
    return w;
}

/* ---- requests ---- */

typedef struct response {
    CURL *curl;
    char *buf;
    size_t n;
    cli_output *out; /* a 200 body goes here */
    bool too_big;
} response;

static size_t on_data(char *p, size_t size, size_t nmemb, void *user)
{
    response *r = user;
    const size_t n = size * nmemb;
    long code = 0;
    curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &code);
    if (r->out && code == 200) return fwrite(p, 1, n, r->out->f) == n ? n : 0;
    if (r->n + n >= RESPONSE_MAX) {
        r->too_big = true;
        return 0;
    }
    char *nb = realloc(r->buf, r->n + n + 1);
    if (!nb) return 0;
    r->buf = nb;
    memcpy(r->buf + r->n, p, n);
    r->n += n;
    r->buf[r->n] = 0;
    return n;
}

/* One request; the HTTP status (0 after a transport failure, reported), the body in *json when it
 * parses as JSON. */
static long request(const remote *rm, const char *method, const char *path, bundle_src *body, cli_output *out, json_object **json)
{
    *json = NULL;
    CURL *c = curl_easy_init();
    if (!c) {
        cli_error("cannot start libcurl");
        return 0;
    }
    char url[2048];
    const size_t sl = strlen(rm->server);
    snprintf(url, sizeof url, "%.*s%s", (int)(sl && rm->server[sl - 1] == '/' ? sl - 1 : sl), rm->server, path);
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, rm->auth);
    if (body) {
        h = curl_slist_append(h, "Content-Type: " BUNDLE_CONTENT_TYPE);
        /* the server refuses what it can before the body (401, 413, 415, 429 queue full, ...): it
         * answers at once instead of "100 Continue" and no byte of the body is sent. Without it, a
         * refusal sent while the body is still in flight can be lost to the connection's reset
         * ("Failed sending data to the peer" instead of the 429 to retry on). */
        h = curl_slist_append(h, "Expect: 100-continue");
    }
    response r = {.curl = c, .out = out};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (rm->timeout) curl_easy_setopt(c, CURLOPT_TIMEOUT, rm->timeout);
    if (rm->cacert) curl_easy_setopt(c, CURLOPT_CAINFO, rm->cacert);
    if (body) {
        const uint64_t size = body->total;
        src_header(body);
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, src_read);
        curl_easy_setopt(c, CURLOPT_READDATA, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(size + 8 + 1));
    }
    const CURLcode cc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (cc != CURLE_OK && !(code && r.n)) {
        cli_error("%s %s: %s", method, url, curl_easy_strerror(cc));
        code = 0;
    }
    if (r.buf) *json = json_tokener_parse(r.buf);
    free(r.buf);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return code;
}

static const char *jstr(json_object *o, const char *key)
{
    json_object *v;
    return o && json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

/* "hecnn remote VERB: server: 404: no such job" */
static int server_error(long code, json_object *j)
{
    if (code) cli_error("server: %ld: %s", code, jstr(j, "error") ? jstr(j, "error") : "(no message)");
    json_object_put(j);
    return CLI_EXIT_FAIL;
}

static void print_json(json_object *j)
{
    printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
}

static int read_token(remote *rm, const char *token_file)
{
    char tok[600] = "";
    if (token_file) {
        FILE *f = fopen(token_file, "r");
        if (!f || !fgets(tok, sizeof tok, f)) {
            cli_error("cannot read the token file '%s'", token_file);
            if (f) fclose(f);
            return -1;
        }
        fclose(f);
    } else if (getenv("HECNN_TOKEN")) {
        snprintf(tok, sizeof tok, "%s", getenv("HECNN_TOKEN"));
    } else {
        cli_error("give --token-file FILE or set HECNN_TOKEN (from 'hecnn serve token add NAME')");
        return -1;
    }
    tok[strcspn(tok, "\r\n")] = 0;
    snprintf(rm->auth, sizeof rm->auth, "Authorization: Bearer %s", tok);
    explicit_bzero(tok, sizeof tok);
    return 0;
}

static bool file_in(const char *dir, const char *name)
{
    char *p = cli_path_join(dir, name);
    const bool ok = p && cli_file_exists(p);
    free(p);
    return ok;
}

/* the server's files of a key directory: MNIST (params.hecnn, eval.keys) or a model's DIR/server */
static int keyset_source(bundle_src *b, const char *dir)
{
    static const char *const mnist[] = {"params.hecnn", "eval.keys", NULL};
    static const char *const resnet[] = {"params.hecnn", "plan", "boot.keys", "network.keys", NULL};
    char *server_dir = cli_path_join(dir, "server");
    const char *d = dir;
    if (server_dir && file_in(server_dir, "network.keys")) d = server_dir;
    const char *const *names = file_in(d, "network.keys") ? resnet : mnist;
    int rc = 0;
    for (size_t i = 0; names[i] && !rc; i++) {
        char *p = cli_path_join(d, names[i]);
        rc = p ? src_add(b, names[i], p) : -1;
        free(p);
    }
    free(server_dir);
    return rc;
}

static void progress_bar(const char *state, double done, double t)
{
    char bar[31];
    const int fill = (int)(done * 30 + 0.5);
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
    bar[30] = 0;
    fprintf(stderr, "\r%s: [%s] %3.0f%%  %-9s %6.0f s", cli_command_prefix(), bar, 100 * done, state, t);
    fflush(stderr);
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int cmd_remote(int argc, char **argv)
{
    static const char *const verbs[] = {"upload-keys", "submit", "wait", "fetch", "status", "cancel", "delete", "list", NULL};
    const char *verb = argc > 1 ? argv[1] : NULL;
    size_t v = 0;
    for (; verb && verbs[v] && strcmp(verbs[v], verb); v++) {}
    static const char *const synopses[] = {"--keys DIR", "--keyset ID --kind KIND --model FILE --in FILE", "JOB [--interval S] [--timeout S] [--quiet]",
                                           "JOB --out FILE", "JOB", "JOB", "JOB", ""};
    if (!verb || !strcmp(verb, "--help") || !strcmp(verb, "-h") || !verbs[v]) {
        FILE *f = !verb || (verbs[v] == NULL && strcmp(verb, "--help") && strcmp(verb, "-h")) ? stderr : stdout;
        if (verb && f == stderr) cli_error("unknown verb '%.64s'", verb);
        fprintf(f, "usage: hecnn remote <verb> [options]   (hecnn remote <verb> --help)\n\n"
                   "  upload-keys --keys DIR                              register the server's keys of DIR (never the secret key)\n"
                   "  submit --keyset ID --kind K --model FILE --in FILE  queue a job (K: mnist-plain, mnist-encrypted, resnet)\n"
                   "  wait JOB                                            until the job ends, progress on stderr\n"
                   "  fetch JOB --out FILE                                the encrypted scores\n"
                   "  status JOB | cancel JOB | delete JOB | list\n\n"
                   "Every verb takes --server URL (or HECNN_SERVER) and --token-file FILE (or HECNN_TOKEN).\n");
        return f == stderr ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    const char *server = getenv("HECNN_SERVER"), *token_file = NULL, *cacert = NULL, *keys = NULL, *keyset = NULL, *kind = NULL,
               *model = NULL, *in = NULL, *out = NULL;
    double interval = 0.5, wait_timeout = 0;
    bool quiet = false;
    const cli_opt opts[] = {
        {"server", CLI_OPT_STRING, &server, "URL", "the service, e.g. https://host:8443 (default $HECNN_SERVER)", NULL},
        {"token-file", CLI_OPT_STRING, &token_file, "FILE", "the client's token (default $HECNN_TOKEN)", NULL},
        {"cacert", CLI_OPT_STRING, &cacert, "FILE", "CA certificate(s) to verify an HTTPS server with", NULL},
        {"keys", CLI_OPT_STRING, &keys, "DIR", "upload-keys: key directory (keygen-mnist's, or model keygen's DIR or DIR/server)", NULL},
        {"keyset", CLI_OPT_STRING, &keyset, "ID", "submit: the key set id upload-keys printed", NULL},
        {"kind", CLI_OPT_STRING, &kind, "KIND", "submit: mnist-plain, mnist-encrypted or resnet", NULL},
        {"model", CLI_OPT_STRING, &model, "FILE", "submit: the model (weights, encrypted model or graph)", NULL},
        {"in", CLI_OPT_STRING, &in, "FILE", "submit: encrypted images (encrypt-images, model encrypt)", NULL},
        {"out", CLI_OPT_STRING, &out, "FILE", "fetch: where the encrypted scores go", NULL},
        {"interval", CLI_OPT_DOUBLE, &interval, "S", "wait: seconds between polls (default 0.5)", NULL},
        {"timeout", CLI_OPT_DOUBLE, &wait_timeout, "S", "wait: give up after S seconds (default: never)", NULL},
        {"quiet", CLI_OPT_FLAG, &quiet, NULL, "wait: no progress bar", NULL},
        {0},
    };
    char name[32], synopsis[160];
    snprintf(name, sizeof name, "remote %s", verbs[v]);
    snprintf(synopsis, sizeof synopsis, "%s [--server URL] [--token-file FILE] [--cacert FILE]", synopses[v]);
    const cli_command cmd = {name, synopsis,
                             "Client of 'hecnn serve' (docs/SERVER.md). Prints ids and JSON on stdout.", opts, 1};
    char *pos[1];
    size_t npos = 0;
    int rc = cli_parse(&cmd, argc - 1, argv + 1, pos, &npos);
    if (rc) return rc == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    if (!server || strncmp(server, "http", 4) || strlen(server) > 1024) {
        cli_error("give --server http(s)://HOST:PORT (or set HECNN_SERVER)");
        return CLI_EXIT_USAGE;
    }
    const bool needs_job = v >= 2 && v <= 6;
    if (needs_job != (npos == 1) || (npos && (strlen(pos[0]) > 64 || strspn(pos[0], "0123456789abcdef") != strlen(pos[0])))) {
        cli_error(needs_job ? "give the job id (what submit printed)" : "unexpected argument");
        return CLI_EXIT_USAGE;
    }
    if ((v == 0 && cli_require(&cmd, "keys", keys)) ||
        (v == 1 && (cli_require(&cmd, "keyset", keyset) || cli_require(&cmd, "kind", kind) || cli_require(&cmd, "model", model) ||
                    cli_require(&cmd, "in", in))) ||
        (v == 3 && cli_require(&cmd, "out", out)))
        return CLI_EXIT_USAGE;
    if (interval < 0.05 || interval > 3600 || wait_timeout < 0) {
        cli_error("--interval takes 0.05..3600 seconds, --timeout a positive number");
        return CLI_EXIT_USAGE;
    }
    remote rm = {.server = server, .cacert = cacert};
    if (read_token(&rm, token_file)) return CLI_EXIT_FAIL;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = CLI_EXIT_FAIL;
    json_object *j = NULL;
    long code = 0;
    char path[512];
    bundle_src src = {0};
    switch (v) {
    case 0: /* upload-keys */
        if (keyset_source(&src, keys)) break;
        code = request(&rm, "POST", "/v1/keysets", &src, NULL, &j);
        if (code != 200 && code != 201) {
            rc = server_error(code, j);
            break;
        }
        printf("%s\n", jstr(j, "id"));
        json_object_put(j);
        rc = CLI_EXIT_OK;
        break;
    case 1: /* submit */
        if (strlen(keyset) > 64 || strlen(kind) > 32 || strspn(keyset, "0123456789abcdef") != strlen(keyset) ||
            strspn(kind, "abcdefghijklmnopqrstuvwxyz-") != strlen(kind)) {
            cli_error("--keyset is 64 hex digits, --kind mnist-plain, mnist-encrypted or resnet");
            rc = CLI_EXIT_USAGE;
            break;
        }
        if (src_add(&src, "model", model) || src_add(&src, "input", in)) break;
        snprintf(path, sizeof path, "/v1/jobs?keyset=%s&kind=%s", keyset, kind);
        code = request(&rm, "POST", path, &src, NULL, &j);
        if (code != 202) {
            rc = server_error(code, j);
            break;
        }
        printf("%s\n", jstr(j, "id"));
        json_object_put(j);
        rc = CLI_EXIT_OK;
        break;
    case 2: { /* wait */
        const double t0 = mono_s();
        const bool bar = !quiet;
        snprintf(path, sizeof path, "/v1/jobs/%s", pos[0]);
        for (;;) {
            code = request(&rm, "GET", path, NULL, NULL, &j);
            if (code != 200) {
                if (bar) fputc('\n', stderr);
                rc = server_error(code, j);
                break;
            }
            const char *state = jstr(j, "state");
            json_object *pv;
            const double done = json_object_object_get_ex(j, "progress", &pv) ? json_object_get_double(pv) : 0;
            if (bar) progress_bar(state ? state : "?", done, mono_s() - t0);
            if (state && (!strcmp(state, "done") || !strcmp(state, "failed") || !strcmp(state, "cancelled"))) {
                if (bar) fputc('\n', stderr);
                if (strcmp(state, "done")) cli_error("the job %s: %s", state, jstr(j, "error") ? jstr(j, "error") : "");
                else printf("done\n");
                rc = strcmp(state, "done") ? CLI_EXIT_FAIL : CLI_EXIT_OK;
                json_object_put(j);
                break;
            }
            json_object_put(j);
            if (wait_timeout > 0 && mono_s() - t0 > wait_timeout) {
                if (bar) fputc('\n', stderr);
                cli_error("still %s after %.0f s", state ? state : "?", wait_timeout);
                break;
            }
            struct timespec ts = {(time_t)interval, (long)((interval - (double)(time_t)interval) * 1e9)};
            nanosleep(&ts, NULL);
        }
        break;
    }
    case 3: { /* fetch */
        cli_output o = {0};
        if (cli_output_open(&o, out, false)) break;
        snprintf(path, sizeof path, "/v1/jobs/%s/result", pos[0]);
        code = request(&rm, "GET", path, NULL, &o, &j);
        if (code != 200) {
            cli_output_abort(&o);
            rc = server_error(code, j);
            break;
        }
        if (cli_output_commit(&o)) break;
        rc = CLI_EXIT_OK;
        break;
    }
    default: { /* status, cancel, delete, list */
        const char *method = v == 5 ? "POST" : v == 6 ? "DELETE" : "GET";
        if (v == 7) snprintf(path, sizeof path, "/v1/jobs");
        else snprintf(path, sizeof path, "/v1/jobs/%s%s", pos[0], v == 5 ? "/cancel" : "");
        code = request(&rm, method, path, NULL, NULL, &j);
        if (code < 200 || code > 299) {
            rc = server_error(code, j);
            break;
        }
        print_json(j);
        json_object_put(j);
        rc = CLI_EXIT_OK;
    }
    }
    src_free(&src);
    explicit_bzero(rm.auth, sizeof rm.auth);
    curl_global_cleanup();
    return rc;
}

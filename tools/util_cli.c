/* Shared helpers of the hecnn commands: messages, option parsing, value files, atomic writes,
 * loading and saving objects. See util_cli.h for the conventions. */
#include "util_cli.h"
#include "util_json.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/crypto.h>

/* ---- secrets ---- */

/* A crash must not write the secret key to a core file, nor may a ptrace-capable peer read it:
 * no core dumps and not dumpable. Best effort (a failure leaves the defaults, and is silent). */
void cli_protect_secrets(void)
{
    const struct rlimit none = {0, 0};
    (void)setrlimit(RLIMIT_CORE, &none);
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

/* ---- messages ---- */

/* per thread: `hecnn serve` runs commands in worker threads */
static _Thread_local char prefix[96] = "hecnn";
static _Thread_local cli_job *job;

void cli_job_set(cli_job *j) { job = j; }

void cli_job_progress(double done)
{
    if (job && job->progress) job->progress(job->user, done);
}

bool cli_job_cancelled(void) { return job && job->cancel && *job->cancel; }

const volatile int *cli_job_cancel_flag(void) { return job ? job->cancel : NULL; }

/* the first message of a job is its error */
static void job_note(const char *fmt, va_list ap, const char *suffix)
{
    if (!job || job->error[0]) return;
    int n = vsnprintf(job->error, sizeof job->error, fmt, ap);
    if (n >= 0 && (size_t)n < sizeof job->error && suffix) snprintf(job->error + n, sizeof job->error - (size_t)n, "%s", suffix);
}

void cli_set_command(const char *name)
{
    if (name && *name) snprintf(prefix, sizeof prefix, "hecnn %s", name);
    else snprintf(prefix, sizeof prefix, "hecnn");
}

const char *cli_command_prefix(void) { return prefix; }

void cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", prefix);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    va_start(ap, fmt);
    job_note(fmt, ap, NULL);
    va_end(ap);
}

void cli_status_error(hecnn_status st, const char *fmt, ...)
{
    /* the detail first: formatting below must not clobber it */
    char detail[256];
    snprintf(detail, sizeof detail, "%s", hecnn_last_error_detail());
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", prefix);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, ": %s: %s", hecnn_status_name(st), hecnn_status_message(st));
    if (detail[0]) fprintf(stderr, ": %s", detail);
    fputc('\n', stderr);
    va_end(ap);
    char suffix[512];
    snprintf(suffix, sizeof suffix, ": %s%s%s", hecnn_status_name(st), detail[0] ? ": " : "", detail);
    va_start(ap, fmt);
    job_note(fmt, ap, suffix);
    va_end(ap);
}

static void errno_error(const char *action, const char *path, int err)
{
    cli_error("cannot %s '%s': %s: %s", action, path, hecnn_status_name(HECNN_ERR_IO), strerror(err));
}

/* ---- options ---- */

bool cli_parse_long(const char *s, long lo, long hi, long *out)
{
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) return false;
    *out = v;
    return true;
}

static const char *kind_metavar(const cli_opt *o)
{
    if (o->metavar) return o->metavar;
    switch (o->kind) {
    case CLI_OPT_STRING: return "VALUE";
    case CLI_OPT_DOUBLE: return "X";
    case CLI_OPT_FLAG: return "";
    default: return "N";
    }
}

void cli_print_help(const cli_command *cmd, FILE *out)
{
    fprintf(out, "usage: hecnn %s %s\n", cmd->name, cmd->synopsis ? cmd->synopsis : "[options]");
    if (cmd->description) fprintf(out, "\n%s\n", cmd->description);
    fprintf(out, "\noptions:\n");
    for (const cli_opt *o = cmd->opts; o && o->name; o++) {
        char left[64];
        if (o->kind == CLI_OPT_FLAG) snprintf(left, sizeof left, "--%s", o->name);
        else snprintf(left, sizeof left, "--%s %s", o->name, kind_metavar(o));
        fprintf(out, "  %-24s %s\n", left, o->help ? o->help : "");
    }
    fprintf(out, "  %-24s %s\n", "--help", "show this help");
}

static int set_value(const cli_opt *o, const char *v)
{
    long l;
    switch (o->kind) {
    case CLI_OPT_STRING:
        *(const char **)o->value = v;
        return 0;
    case CLI_OPT_UINT:
        if (!cli_parse_long(v, 0, UINT_MAX > LONG_MAX ? LONG_MAX : (long)UINT_MAX, &l)) break;
        *(unsigned *)o->value = (unsigned)l;
        return 0;
    case CLI_OPT_SIZE:
        if (!cli_parse_long(v, 0, LONG_MAX, &l)) break;
        *(size_t *)o->value = (size_t)l;
        return 0;
    case CLI_OPT_INT:
        if (!cli_parse_long(v, INT_MIN, INT_MAX, &l)) break;
        *(int *)o->value = (int)l;
        return 0;
    case CLI_OPT_DOUBLE: {
        char *end;
        errno = 0;
        double d = strtod(v, &end);
        if (errno || *end || end == v || !isfinite(d)) break;
        *(double *)o->value = d;
        return 0;
    }
    case CLI_OPT_FLAG:
        break;
    }
    cli_error("invalid value '%.64s' for --%s: expected %s", v, o->name,
              o->kind == CLI_OPT_DOUBLE ? "a finite number" : o->kind == CLI_OPT_INT ? "an integer" : "a non-negative integer");
    return -1;
}

static bool looks_negative_number(const char *a) { return a[0] == '-' && ((a[1] >= '0' && a[1] <= '9') || a[1] == '.'); }

int cli_parse(const cli_command *cmd, int argc, char **argv, char **positional, size_t *n_positional)
{
    cli_set_command(cmd->name);
    size_t npos = 0;
    bool only_positional = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!only_positional && (!strcmp(a, "--help") || !strcmp(a, "-h"))) {
            cli_print_help(cmd, stdout);
            return CLI_PARSE_HELP;
        }
        if (!only_positional && !strcmp(a, "--")) {
            only_positional = true;
            continue;
        }
        if (!only_positional && a[0] == '-' && a[1] == '-') {
            const char *name = a + 2, *eq = strchr(name, '=');
            const size_t len = eq ? (size_t)(eq - name) : strlen(name);
            const cli_opt *o = cmd->opts;
            while (o && o->name && !(strlen(o->name) == len && !strncmp(o->name, name, len))) o++;
            if (!o || !o->name) {
                cli_error("unknown option '--%.*s' (see 'hecnn %s --help')", (int)(len > 64 ? 64 : len), name, cmd->name);
                return CLI_PARSE_ERROR;
            }
            if (o->kind == CLI_OPT_FLAG) {
                if (eq) {
                    cli_error("option --%s takes no value", o->name);
                    return CLI_PARSE_ERROR;
                }
                *(bool *)o->value = true;
            } else {
                const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
                if (!v) {
                    cli_error("option --%s needs a value (%s)", o->name, kind_metavar(o));
                    return CLI_PARSE_ERROR;
                }
                if (set_value(o, v)) return CLI_PARSE_ERROR;
            }
            if (o->given) *o->given = true;
            continue;
        }
        if (!only_positional && a[0] == '-' && a[1] && !looks_negative_number(a)) {
            cli_error("unknown option '%.64s' (see 'hecnn %s --help')", a, cmd->name);
            return CLI_PARSE_ERROR;
        }
        if (npos >= cmd->max_positional || !positional) {
            cli_error("unexpected argument '%.64s' (see 'hecnn %s --help')", a, cmd->name);
            return CLI_PARSE_ERROR;
        }
        positional[npos++] = argv[i];
    }
    if (n_positional) *n_positional = npos;
    return CLI_PARSE_OK;
}

int cli_require(const cli_command *cmd, const char *option, const void *value)
{
    if (value) return 0;
    const cli_opt *o = cmd->opts;
    while (o && o->name && strcmp(o->name, option)) o++;
    cli_error("--%s %s is required (see 'hecnn %s --help')", option, o && o->name ? kind_metavar(o) : "VALUE", cmd->name);
    return -1;
}

int cli_parse_int_list(const char *option, const char *s, int **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    size_t cap = 0;
    int *v = NULL;
    const char *p = s;
    if (!s || !*s) goto bad;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[64];
        if (!len || len >= sizeof item) goto bad;
        memcpy(item, p, len);
        item[len] = 0;
        long lo, hi;
        char *dots = strstr(item, "..");
        if (dots) {
            *dots = 0;
            if (!cli_parse_long(item, INT_MIN, INT_MAX, &lo) || !cli_parse_long(dots + 2, INT_MIN, INT_MAX, &hi) || hi < lo ||
                hi - lo > 1 << 20)
                goto bad;
        } else {
            if (!cli_parse_long(item, INT_MIN, INT_MAX, &lo)) goto bad;
            hi = lo;
        }
        for (long x = lo; x <= hi; x++) {
            if (*count == cap) {
                cap = cap ? 2 * cap : 16;
                int *nv = realloc(v, cap * sizeof *nv);
                if (!nv) {
                    free(v);
                    cli_error("out of memory");
                    return -1;
                }
                v = nv;
            }
            v[(*count)++] = (int)x;
        }
        p += len;
        if (*p == ',') {
            p++;
            if (!*p) goto bad;
        }
    }
    *out = v;
    return 0;
bad:
    free(v);
    *count = 0;
    cli_error("invalid list '%.64s' for --%s: comma-separated integers or ranges a..b, e.g. 1,2,4..7,-1", s ? s : "", option);
    return -1;
}

/* ---- files ---- */

bool cli_file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

int cli_sha256_file(const char *path, unsigned char digest[32])
{
    cli_input in;
    if (cli_input_open(&in, path, false)) return -1;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
    unsigned char buf[1 << 16];
    size_t got;
    while (ok && (got = fread(buf, 1, sizeof buf, in.f)) > 0) ok = EVP_DigestUpdate(md, buf, got) == 1;
    const bool read_error = ferror(in.f) != 0;
    unsigned len = 0;
    ok = ok && !read_error && EVP_DigestFinal_ex(md, digest, &len) == 1 && len == 32;
    EVP_MD_CTX_free(md);
    cli_input_close(&in);
    if (read_error) errno_error("read", path, EIO);
    else if (!ok) cli_error("cannot hash '%s': SHA-256 unavailable", path);
    return ok ? 0 : -1;
}

unsigned long long cli_file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (unsigned long long)sb.st_size : 0;
}

char *cli_path_join(const char *dir, const char *name)
{
    const size_t len = strlen(dir) + strlen(name) + 2;
    char *p = malloc(len);
    if (p) snprintf(p, len, "%s/%s", dir, name);
    return p;
}

const char *const cli_key_file_names[CLI_KEY_FILES] = {CLI_KEY_FILE_PARAMS, CLI_KEY_FILE_PUBLIC, CLI_KEY_FILE_EVAL,
                                                       CLI_KEY_FILE_SECRET};

int cli_key_dir_prepare(char *paths[CLI_KEY_FILES], const char *dir, bool force)
{
    struct stat sb;
    if (stat(dir, &sb) == 0) {
        if (!S_ISDIR(sb.st_mode)) {
            cli_error("'%s' exists and is not a directory", dir);
            return -1;
        }
    } else if (mkdir(dir, 0700)) {
        cli_error("cannot create directory '%s': %s: %s", dir, hecnn_status_name(HECNN_ERR_IO), strerror(errno));
        return -1;
    }
    for (int i = 0; i < CLI_KEY_FILES; i++) {
        if (!(paths[i] = cli_path_join(dir, cli_key_file_names[i]))) {
            cli_error("out of memory");
            return -1;
        }
        if (!force && cli_file_exists(paths[i])) {
            cli_error("'%s' already exists: keys are not replaced without --force", paths[i]);
            return -1;
        }
    }
    return 0;
}

int cli_key_dir_write(char *const paths[CLI_KEY_FILES], const ckks_params_literal *params, const ckks_public_key *pk,
                      const ckks_eval_keys *keys, bool seeded, const ckks_secret_key *sk)
{
    cli_output outs[CLI_KEY_FILES] = {{0}};
    int rc = -1;
    for (int i = 0; i < CLI_KEY_FILES; i++) {
        if (cli_output_open(&outs[i], paths[i], i == CLI_KEY_SECRET)) goto done;
        hecnn_status st;
        switch (i) {
        case CLI_KEY_PARAMS: st = ckks_params_save(params, outs[i].f); break;
        case CLI_KEY_PUBLIC: st = ckks_public_key_save(pk, outs[i].f); break;
        case CLI_KEY_EVAL: st = ckks_eval_keys_save(keys, seeded, outs[i].f); break;
        default: st = ckks_secret_key_save(sk, outs[i].f); break;
        }
        if (st) {
            cli_status_error(st, "cannot write '%s'", paths[i]);
            goto done;
        }
        if (cli_output_close(&outs[i])) goto done;
    }
    for (int i = 0; i < CLI_KEY_FILES; i++)
        if (cli_output_commit(&outs[i])) goto done;
    rc = 0;
done:
    for (int i = 0; i < CLI_KEY_FILES; i++) cli_output_abort(&outs[i]);
    return rc;
}

#define SECRET_BUF (64 * 1024)

/* What a path is, for messages: "a directory", "a symbolic link", ... */
static const char *file_kind(mode_t m)
{
    if (S_ISDIR(m)) return "a directory";
    if (S_ISLNK(m)) return "a symbolic link";
    if (S_ISCHR(m) || S_ISBLK(m)) return "a device";
    if (S_ISFIFO(m)) return "a named pipe";
    if (S_ISSOCK(m)) return "a socket";
    return "not a regular file";
}

int cli_output_open(cli_output *o, const char *path, bool secret)
{
    memset(o, 0, sizeof *o);
    /* the rename below would replace a link, device or pipe by a plain file: refuse instead */
    struct stat sb;
    if (lstat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
        cli_error("refusing to write '%s': it is %s, not a regular file (only regular files are replaced)", path,
                  file_kind(sb.st_mode));
        return -1;
    }
    const size_t len = strlen(path);
    o->path = malloc(len + 1);
    o->tmp = malloc(len + 16);
    if (!o->path || !o->tmp) {
        free(o->path);
        free(o->tmp);
        cli_error("out of memory");
        return -1;
    }
    memcpy(o->path, path, len + 1);
    snprintf(o->tmp, len + 16, "%s.tmp-XXXXXX", path);
    int fd = mkstemp(o->tmp); /* mode 0600 */
    if (fd < 0) {
        errno_error("create", path, errno);
        free(o->path);
        free(o->tmp);
        memset(o, 0, sizeof *o);
        return -1;
    }
    if (!secret) {
        mode_t mask = umask(0);
        umask(mask);
        (void)fchmod(fd, 0666 & ~mask);
    }
    o->f = fdopen(fd, "wb");
    if (!o->f) {
        errno_error("create", path, errno);
        close(fd);
        unlink(o->tmp);
        free(o->path);
        free(o->tmp);
        memset(o, 0, sizeof *o);
        return -1;
    }
    if (secret) {
        o->buf = malloc(SECRET_BUF);
        if (o->buf) {
            o->buf_size = SECRET_BUF;
            setvbuf(o->f, o->buf, _IOFBF, o->buf_size);
        } else {
            setvbuf(o->f, NULL, _IONBF, 0); /* nothing of the secret stays in a libc buffer */
        }
    }
    return 0;
}

static void wipe(void *p, size_t n) { OPENSSL_cleanse(p, n); } /* not removable as a dead store */

static void output_release(cli_output *o)
{
    if (o->buf) {
        wipe(o->buf, o->buf_size);
        free(o->buf);
    }
    free(o->path);
    free(o->tmp);
    memset(o, 0, sizeof *o);
}

void cli_output_abort(cli_output *o)
{
    if (!o->tmp) return;
    if (o->f) fclose(o->f);
    unlink(o->tmp);
    output_release(o);
}

int cli_output_close(cli_output *o)
{
    if (!o->tmp) return -1;
    if (o->closed) return 0;
    int err = 0;
    errno = 0;
    if (fflush(o->f) || ferror(o->f)) err = errno ? errno : EIO;
    if (!err && fsync(fileno(o->f))) err = errno;
    if (fclose(o->f) && !err) err = errno ? errno : EIO;
    o->f = NULL;
    if (err) {
        unlink(o->tmp);
        errno_error("write", o->path, err);
        output_release(o);
        return -1;
    }
    o->closed = true;
    return 0;
}

int cli_output_commit(cli_output *o)
{
    if (cli_output_close(o)) return -1;
    if (rename(o->tmp, o->path)) {
        int err = errno;
        unlink(o->tmp);
        errno_error("write", o->path, err);
        output_release(o);
        return -1;
    }
    /* make the rename durable: fsync the directory (best effort) */
    char *slash = strrchr(o->path, '/');
    if (slash) *slash = 0;
    int dfd = open(slash ? (*o->path ? o->path : "/") : ".", O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    output_release(o);
    return 0;
}

int cli_input_open(cli_input *in, const char *path, bool secret)
{
    memset(in, 0, sizeof *in);
    in->path = path;
    in->f = !strcmp(path, "-") ? stdin : fopen(path, "rb");
    if (!in->f) {
        errno_error("open", path, errno);
        return -1;
    }
    /* a directory opens but cannot be read: say so instead of a bare read error */
    struct stat sb;
    if (in->f != stdin && fstat(fileno(in->f), &sb) == 0 && S_ISDIR(sb.st_mode)) {
        cli_error("cannot read '%s': it is a directory, a file is expected", path);
        fclose(in->f);
        in->f = NULL;
        return -1;
    }
    if (secret && in->f != stdin) {
        in->buf = malloc(SECRET_BUF);
        if (in->buf) {
            in->buf_size = SECRET_BUF;
            setvbuf(in->f, in->buf, _IOFBF, in->buf_size);
        } else {
            setvbuf(in->f, NULL, _IONBF, 0);
        }
    }
    return 0;
}

void cli_input_close(cli_input *in)
{
    if (in->f && in->f != stdin) fclose(in->f);
    if (in->buf) {
        wipe(in->buf, in->buf_size);
        free(in->buf);
    }
    memset(in, 0, sizeof *in);
}

int cli_read_object(const char *path, const char *what, bool secret, bool whole, cli_io_fn fn, void *arg)
{
    cli_input in;
    if (cli_input_open(&in, path, secret)) return -1;
    hecnn_status st = fn(arg, in.f);
    int rc = 0;
    if (st) {
        cli_status_error(st, "cannot read %s '%s'", what, path);
        rc = -1;
    } else if (whole && fgetc(in.f) != EOF) {
        cli_error("cannot read %s '%s': %s: %s: trailing bytes after the %s", what, path, hecnn_status_name(HECNN_ERR_BAD_FORMAT),
                  hecnn_status_message(HECNN_ERR_BAD_FORMAT), what);
        rc = -1;
    }
    cli_input_close(&in);
    return rc;
}

int cli_write_object(const char *path, const char *what, bool secret, cli_io_fn fn, void *arg)
{
    cli_output o;
    if (cli_output_open(&o, path, secret)) return -1;
    hecnn_status st = fn(arg, o.f);
    if (st) {
        cli_status_error(st, "cannot write %s '%s'", what, path);
        cli_output_abort(&o);
        return -1;
    }
    return cli_output_commit(&o);
}

/* ---- numeric vectors ---- */

static int push_value(double complex **v, size_t *n, size_t *cap, double complex x)
{
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 1024;
        double complex *nv = realloc(*v, c * sizeof *nv);
        if (!nv) return -1;
        *v = nv;
        *cap = c;
    }
    (*v)[(*n)++] = x;
    return 0;
}

static bool parse_double(const char **p, double *out)
{
    char *end;
    errno = 0;
    double d = strtod(*p, &end);
    if (end == *p || errno == ERANGE || !isfinite(d)) return false;
    *out = d;
    *p = end;
    return true;
}

/* One text line into buf (NUL-terminated, without its newline). Returns 1 for a line, 0 at the end
 * of input, -1 for a line longer than cap - 1 bytes, -2 for a NUL byte (not text); *bytes counts
 * what was consumed. Bounded: never reads more than one line plus one byte. */
static int read_text_line(FILE *f, char *buf, size_t cap, size_t *bytes)
{
    size_t len = 0;
    int c;
    while ((c = getc(f)) != EOF) {
        (*bytes)++;
        if (c == '\n') break;
        if (c == 0) return -2;
        if (len + 1 >= cap) return -1;
        buf[len++] = (char)c;
    }
    buf[len] = 0;
    return c == EOF && len == 0 ? 0 : 1;
}

#define VALUE_LINE_MAX 256

int cli_read_values(const char *path, bool binary, size_t max_count, double complex **values, size_t *count, bool *any_imag)
{
    *values = NULL;
    *count = 0;
    if (any_imag) *any_imag = false;
    cli_input in;
    if (cli_input_open(&in, path, false)) return -1;
    double complex *v = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    if (binary) {
        unsigned char b[8];
        size_t got;
        while ((got = fread(b, 1, 8, in.f)) == 8) {
            uint64_t u = 0;
            for (int i = 7; i >= 0; i--) u = (u << 8) | b[i];
            double d;
            memcpy(&d, &u, 8);
            if (!isfinite(d)) {
                cli_error("cannot read values '%s': value %zu is not finite", path, n);
                rc = -1;
                break;
            }
            if (n == max_count) {
                cli_error("cannot read values '%s': more than %zu values do not fit (the most this command can use)", path, max_count);
                rc = -1;
                break;
            }
            if (push_value(&v, &n, &cap, d)) {
                cli_error("out of memory reading '%s'", path);
                rc = -1;
                break;
            }
        }
        if (!rc && ferror(in.f)) {
            errno_error("read", path, errno ? errno : EIO);
            rc = -1;
        } else if (!rc && got) {
            cli_error("cannot read values '%s': %zu trailing bytes: binary input is little-endian doubles (8 bytes each)", path, got);
            rc = -1;
        }
    } else {
        /* bounded: lines of at most VALUE_LINE_MAX bytes, and no more bytes in all than max_count
         * such lines (comments included) */
        char line[VALUE_LINE_MAX + 1];
        size_t lineno = 0, bytes = 0;
        const size_t max_bytes = (max_count < SIZE_MAX / VALUE_LINE_MAX - 1 ? max_count + 1 : SIZE_MAX / VALUE_LINE_MAX) * VALUE_LINE_MAX;
        int got;
        while ((got = read_text_line(in.f, line, sizeof line, &bytes)) != 0) {
            lineno++;
            if (got == -2) {
                cli_error("cannot read values '%s': line %zu holds a NUL byte: not a text file (binary doubles need --binary)", path,
                          lineno);
                rc = -1;
                break;
            }
            if (got == -1) {
                cli_error("cannot read values '%s': line %zu is longer than %d bytes", path, lineno, VALUE_LINE_MAX);
                rc = -1;
                break;
            }
            if (bytes > max_bytes) {
                cli_error("cannot read values '%s': more than %zu bytes of text for at most %zu values", path, max_bytes, max_count);
                rc = -1;
                break;
            }
            const char *p = line;
            while (*p == ' ' || *p == '\t') p++;
            if (!*p || *p == '\n' || *p == '\r' || *p == '#') continue;
            double re, im = 0;
            bool ok = parse_double(&p, &re);
            if (ok) {
                while (*p == ' ' || *p == '\t' || *p == ',') p++;
                if (*p && *p != '\n' && *p != '\r' && *p != '#') {
                    ok = parse_double(&p, &im);
                    if (ok && any_imag && im != 0) *any_imag = true;
                    while (*p == ' ' || *p == '\t') p++;
                    if (*p && *p != '\n' && *p != '\r' && *p != '#') ok = false;
                }
            }
            if (!ok) {
                const char *s = line;
                size_t l = strcspn(s, "\r\n");
                cli_error("cannot read values '%s': line %zu: expected a finite number or \"re im\", got '%.*s%s'", path, lineno,
                          (int)(l > 40 ? 40 : l), s, l > 40 ? "..." : "");
                rc = -1;
                break;
            }
            if (n == max_count) {
                cli_error("cannot read values '%s': more than %zu values do not fit (the most this command can use)", path, max_count);
                rc = -1;
                break;
            }
            if (push_value(&v, &n, &cap, re + I * im)) {
                cli_error("out of memory reading '%s'", path);
                rc = -1;
                break;
            }
        }
        if (!rc && ferror(in.f)) {
            errno_error("read", path, errno ? errno : EIO);
            rc = -1;
        }
    }
    cli_input_close(&in);
    if (rc) {
        free(v);
        return -1;
    }
    *values = v;
    *count = n;
    return 0;
}

int cli_write_values(const char *path, bool binary, bool with_imag, const double complex *values, size_t count)
{
    const bool to_stdout = !strcmp(path, "-");
    cli_output o = {0};
    FILE *f = stdout;
    if (!to_stdout) {
        if (cli_output_open(&o, path, false)) return -1;
        f = o.f;
    }
    for (size_t i = 0; i < count; i++) {
        if (binary) {
            double parts[2] = {creal(values[i]), cimag(values[i])};
            for (int k = 0; k < (with_imag ? 2 : 1); k++) {
                uint64_t u;
                memcpy(&u, &parts[k], 8);
                unsigned char b[8];
                for (int j = 0; j < 8; j++) b[j] = (unsigned char)(u >> (8 * j));
                fwrite(b, 1, 8, f);
            }
        } else if (with_imag) {
            fprintf(f, "%.17g %.17g\n", creal(values[i]), cimag(values[i]));
        } else {
            fprintf(f, "%.17g\n", creal(values[i]));
        }
    }
    if (to_stdout) {
        if (fflush(stdout) || ferror(stdout)) {
            errno_error("write", "<stdout>", errno ? errno : EIO);
            return -1;
        }
        return 0;
    }
    return cli_output_commit(&o);
}

/* ---- parameter sets ---- */

static const char *preset_names[CKKS_PRESET_COUNT] = {"n13", "n14", "n15", "n16"};

bool cli_preset_by_name(const char *name, ckks_preset *out)
{
    if (!name) return false;
    const char *s = (name[0] == 'n' || name[0] == 'N') ? name + 1 : name;
    for (int i = 0; i < CKKS_PRESET_COUNT; i++)
        if (!strcmp(s, preset_names[i] + 1)) {
            *out = (ckks_preset)i;
            return true;
        }
    return false;
}

const char *cli_preset_name(ckks_preset preset)
{
    return (unsigned)preset < CKKS_PRESET_COUNT ? preset_names[preset] : "?";
}

static hecnn_status load_params_fn(void *arg, FILE *f) { return ckks_params_load(arg, f); }

int cli_load_params(const char *path, ckks_params_literal *out)
{
    return cli_read_object(path, "parameter file", false, true, load_params_fn, out);
}

int cli_context(const char *params_path, const char *preset, ckks_context **ctx, ckks_params_literal *literal)
{
    *ctx = NULL;
    if (!params_path == !preset) {
        cli_error("give exactly one of --params FILE and --preset NAME (%s, %s, %s, %s)", preset_names[0], preset_names[1],
                  preset_names[2], preset_names[3]);
        return -1;
    }
    ckks_params_literal p;
    if (preset) {
        ckks_preset id;
        if (!cli_preset_by_name(preset, &id)) {
            cli_error("unknown preset '%.32s': choose %s, %s, %s or %s", preset, preset_names[0], preset_names[1], preset_names[2],
                      preset_names[3]);
            return -1;
        }
        ckks_params_preset(&p, id);
    } else if (cli_load_params(params_path, &p)) {
        return -1;
    }
    const bool flagged = p.allow_insecure;
    p.allow_insecure = false; /* the tool builds 128-bit secure contexts only */
    hecnn_status st = ckks_context_new(ctx, &p);
    if (st) {
        const char *src = params_path ? params_path : preset;
        if (st == HECNN_ERR_INSECURE_PARAMS && flagged)
            cli_status_error(st, "parameter file '%s' is marked insecure (for tests); the tool accepts only 128-bit secure parameters",
                             src);
        else
            cli_status_error(st, "cannot use parameters '%s'", src);
        return -1;
    }
    if (literal) *literal = p;
    return 0;
}

void cli_print_context(FILE *out, const ckks_context *ctx)
{
    const ckks_params_literal *p = ckks_context_params(ctx);
    const unsigned nq = ckks_context_max_level(ctx) + 1, np = ckks_context_n_p(ctx);
    fprintf(out, "  %-16s %zu (2^%u), %zu slots\n", "ring degree N", ckks_context_n(ctx), p->log_n, ckks_context_max_slots(ctx));
    fprintf(out, "  %-16s %u, bits:", "q primes", nq);
    for (unsigned i = 0; i < nq; i++) fprintf(out, " %u", p->log_q[i]);
    fprintf(out, " (levels 0..%u)\n", nq - 1);
    fprintf(out, "  %-16s %u, bits:", "special primes", np);
    for (unsigned i = 0; i < np; i++) fprintf(out, " %u", p->log_p[i]);
    fprintf(out, " (dnum %u)\n", ckks_context_dnum(ctx));
    const unsigned bound = ckks_max_log_qp_128(p->log_n);
    fprintf(out, "  %-16s %.1f bits (128-bit bound for N = 2^%u: %u)\n", "log QP", ckks_context_log_qp(ctx), p->log_n, bound);
    fprintf(out, "  %-16s 2^%u\n", "default scale", p->log_scale);
    if (p->secret == CKKS_SECRET_SPARSE_TERNARY)
        fprintf(out, "  %-16s sparse ternary, hamming weight %u\n", "secret", p->hamming_weight);
    else
        fprintf(out, "  %-16s ternary\n", "secret");
    fprintf(out, "  %-16s %.2f\n", "error sigma", p->sigma);
    fprintf(out, "  %-16s %016llx\n", "parameter id", (unsigned long long)ckks_context_param_id(ctx));
}

/* ---- keys and ciphertexts ---- */

typedef struct load_arg {
    const ckks_context *ctx;
    void *out;
} load_arg;

static hecnn_status load_sk_fn(void *arg, FILE *f)
{
    load_arg *a = arg;
    return ckks_secret_key_load(a->ctx, a->out, f);
}
static hecnn_status load_pk_fn(void *arg, FILE *f)
{
    load_arg *a = arg;
    return ckks_public_key_load(a->ctx, a->out, f);
}
static hecnn_status load_evk_fn(void *arg, FILE *f)
{
    load_arg *a = arg;
    return ckks_eval_keys_load(a->ctx, a->out, f);
}
static hecnn_status load_ct_fn(void *arg, FILE *f)
{
    load_arg *a = arg;
    return ckks_ciphertext_load(a->ctx, a->out, f);
}

int cli_load_secret_key(const ckks_context *ctx, const char *path, ckks_secret_key **out)
{
    load_arg a = {ctx, out};
    int rc = cli_read_object(path, "secret key", true, true, load_sk_fn, &a);
    if (rc) {
        ckks_secret_key_free(*out);
        *out = NULL;
    }
    return rc;
}

int cli_load_public_key(const ckks_context *ctx, const char *path, ckks_public_key **out)
{
    load_arg a = {ctx, out};
    int rc = cli_read_object(path, "public key", false, true, load_pk_fn, &a);
    if (rc) {
        ckks_public_key_free(*out);
        *out = NULL;
    }
    return rc;
}

int cli_load_eval_keys(const ckks_context *ctx, const char *path, ckks_eval_keys **out)
{
    load_arg a = {ctx, out};
    int rc = cli_read_object(path, "evaluation keys", false, true, load_evk_fn, &a);
    if (rc) {
        ckks_eval_keys_free(*out);
        *out = NULL;
    }
    return rc;
}

int cli_load_ciphertext(const ckks_context *ctx, const char *path, ckks_ciphertext *ct)
{
    load_arg a = {ctx, ct};
    return cli_read_object(path, "ciphertext", false, true, load_ct_fn, &a);
}

static hecnn_status save_params_fn(void *arg, FILE *f) { return ckks_params_save(arg, f); }
static hecnn_status save_sk_fn(void *arg, FILE *f) { return ckks_secret_key_save(arg, f); }
static hecnn_status save_pk_fn(void *arg, FILE *f) { return ckks_public_key_save(arg, f); }
static hecnn_status save_ct_fn(void *arg, FILE *f) { return ckks_ciphertext_save(arg, f); }
typedef struct evk_arg {
    const ckks_eval_keys *keys;
    bool seeded;
} evk_arg;
static hecnn_status save_evk_fn(void *arg, FILE *f)
{
    evk_arg *a = arg;
    return ckks_eval_keys_save(a->keys, a->seeded, f);
}

int cli_save_params(const char *path, const ckks_params_literal *params)
{
    return cli_write_object(path, "parameter file", false, save_params_fn, (void *)params);
}
int cli_save_secret_key(const char *path, const ckks_secret_key *sk)
{
    return cli_write_object(path, "secret key", true, save_sk_fn, (void *)sk);
}
int cli_save_public_key(const char *path, const ckks_public_key *pk)
{
    return cli_write_object(path, "public key", false, save_pk_fn, (void *)pk);
}
int cli_save_eval_keys(const char *path, const ckks_eval_keys *keys, bool seeded)
{
    evk_arg a = {keys, seeded};
    return cli_write_object(path, "evaluation keys", false, save_evk_fn, &a);
}
int cli_save_ciphertext(const char *path, const ckks_ciphertext *ct)
{
    return cli_write_object(path, "ciphertext", false, save_ct_fn, (void *)ct);
}

/* ---- scores ---- */

size_t cli_argmax(const double *v, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

int cli_print_scores(FILE *f, bool json, const double *scores, size_t n, size_t classes, const uint8_t *labels,
                     size_t offset, const cli_score_print *how)
{
    const double step = how ? how->step : 0;
    size_t correct = 0;
    for (size_t i = 0; labels && i < n; i++) correct += labels[i] == cli_argmax(scores + i * classes, classes);
    if (json) {
        json_object *root = cli_json_object(), *preds = cli_json_array();
        cli_json_add_uint(root, "images", n);
        cli_json_add_uint(root, "classes", classes);
        if (how && how->flood_bits > 0) {
            cli_json_add_number(root, "flood_bits", "%g", how->flood_bits);
            cli_json_add_number(root, "flood_stddev", "%.6g", how->flood_stddev);
        } else {
            cli_json_add_int(root, "flood_bits", 0);
        }
        cli_json_add_number(root, "rounding", "%.6g", step);
        for (size_t i = 0; i < n; i++) {
            const double *s = scores + i * classes;
            json_object *p = cli_json_object(), *sc = cli_json_array();
            cli_json_add_uint(p, "image", offset + i);
            cli_json_add_uint(p, "prediction", cli_argmax(s, classes));
            if (labels) cli_json_add_int(p, "label", labels[i]);
            for (size_t c = 0; c < classes; c++) cli_json_append(sc, cli_json_number("%.6f", step > 0 ? round(s[c] / step) * step : s[c]));
            cli_json_add(p, "scores", sc);
            cli_json_append(preds, p);
        }
        cli_json_add(root, "predictions", preds);
        if (labels) {
            cli_json_add_uint(root, "correct", correct);
            cli_json_add_number(root, "accuracy", "%.6f", n ? (double)correct / (double)n : 0.0);
        }
        return cli_json_print(f, root, true);
    }
    fprintf(f, "%-6s %-5s %-5s  scores (logits) for classes 0..%zu\n", "image", "pred", labels ? "label" : "", classes ? classes - 1 : 0);
    for (size_t i = 0; i < n; i++) {
        const double *s = scores + i * classes;
        const size_t best = cli_argmax(s, classes);
        fprintf(f, "%-6zu %-5zu ", offset + i, best);
        if (labels) fprintf(f, "%-5d", labels[i]);
        else fprintf(f, "%-5s", "");
        for (size_t c = 0; c < classes; c++) fprintf(f, " %8.3f", step > 0 ? round(s[c] / step) * step : s[c]);
        fprintf(f, "%s\n", labels && labels[i] != best ? "  (wrong)" : "");
    }
    if (labels) fprintf(f, "accuracy: %zu / %zu = %.2f %%\n", correct, n, n ? 100.0 * (double)correct / (double)n : 0.0);
    return 0;
}

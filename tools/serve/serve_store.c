/* The server's storage: bundles streamed to temporary files, atomic directories, the SQLite store. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "serve.h"

enum { B_MAGIC, B_NAMELEN, B_NAME, B_SIZE, B_DATA, B_END };

static int fail(bundle *b, int status, const char *msg)
{
    if (!b->http_status) {
        b->http_status = status;
        snprintf(b->err, sizeof b->err, "%s", msg);
    }
    return -1;
}

int bundle_init(bundle *b, const char *tmpdir, const char *const *allowed, uint64_t max_member)
{
    memset(b, 0, sizeof *b);
    b->tmpdir = tmpdir;
    b->allowed = allowed;
    b->max_member = max_member;
    b->fd = -1;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
        EVP_MD_CTX_free(md);
        return fail(b, 500, "SHA-256 unavailable");
    }
    b->md = md;
    return 0;
}

static bool name_ok(const bundle *b, const char *name)
{
    for (const char *const *a = b->allowed; *a; a++)
        if (!strcmp(*a, name)) return true;
    return false;
}

/* An object header (docs/FORMATS.md): "HECNN\0", version, type at offset 8; type 4 is a secret key. */
static bool is_secret_key(const uint8_t *h, size_t n)
{
    return n >= 10 && !memcmp(h, "HECNN\0", 6) && h[8] == 4 && h[9] == 0;
}

static int member_close(bundle *b)
{
    if (b->fd < 0) return 0;
    const int fd = b->fd;
    b->fd = -1;
    memcpy(b->m[b->n - 1].head, b->head, b->head_n);
    b->m[b->n - 1].head_n = b->head_n;
    if (is_secret_key(b->head, b->head_n)) {
        close(fd);
        return fail(b, 422, "refused: a secret key (object type 4); the server never holds one");
    }
    const int synced = fsync(fd);
    if (close(fd) || synced) return fail(b, 500, "cannot write the upload");
    return 0;
}

static int member_open(bundle *b)
{
    bundle_member *m = &b->m[b->n - 1];
    const size_t len = strlen(b->tmpdir) + 32;
    if (!(m->tmp = malloc(len))) return fail(b, 500, "out of memory");
    snprintf(m->tmp, len, "%s/up-XXXXXX", b->tmpdir);
    b->fd = mkstemp(m->tmp);
    if (b->fd < 0) {
        free(m->tmp);
        m->tmp = NULL;
        return fail(b, 500, "cannot create a temporary file");
    }
    b->head_n = 0;
    return 0;
}

static int member_write(bundle *b, const uint8_t *p, size_t n)
{
    while (b->head_n < sizeof b->head && n) {
        b->head[b->head_n++] = *p;
        /* refuse a secret key before storing it */
        if (is_secret_key(b->head, b->head_n)) return member_close(b);
        if (write(b->fd, p, 1) != 1) return fail(b, 500, "cannot write the upload");
        p++, n--;
    }
    while (n) {
        const ssize_t w = write(b->fd, p, n);
        if (w <= 0) {
            if (w < 0 && errno == EINTR) continue;
            return fail(b, 507, "cannot write the upload (disk full?)");
        }
        p += w, n -= (size_t)w;
    }
    return 0;
}

static int parse(bundle *b, const uint8_t *data, size_t n)
{
    while (n) {
        switch (b->state) {
        case B_MAGIC:
            b->buf[b->buf_n++] = *data++, n--;
            if (b->buf_n == 8 && !memcmp(b->buf, BUNDLE_MAGIC, 8)) b->state = B_NAMELEN, b->buf_n = 0;
            else if (b->buf_n == 10 || (b->buf_n == 8 && memcmp(b->buf, "HECNN\0", 6))) {
                if (is_secret_key(b->buf, b->buf_n))
                    return fail(b, 422, "refused: a secret key (object type 4); the server never holds one");
                return fail(b, 400, "not a bundle (magic HECNNBD1 expected; see docs/SERVER.md)");
            }
            break;
        case B_NAMELEN: {
            const uint8_t len = *data++;
            n--;
            if (len == 0) {
                b->state = B_END;
                break;
            }
            if (len > BUNDLE_NAME_MAX) return fail(b, 400, "bundle member name longer than 32 bytes");
            if (b->n == BUNDLE_MAX_MEMBERS) return fail(b, 400, "too many bundle members");
            b->left = len;
            b->buf_n = 0;
            b->n++;
            memset(&b->m[b->n - 1], 0, sizeof b->m[0]);
            b->state = B_NAME;
            break;
        }
        case B_NAME: {
            bundle_member *m = &b->m[b->n - 1];
            const char c = (char)*data++;
            n--;
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
                return fail(b, 400, "bad character in a bundle member name");
            m->name[b->buf_n++] = c;
            if (--b->left) break;
            m->name[b->buf_n] = 0;
            if (!name_ok(b, m->name)) {
                snprintf(b->err, sizeof b->err, "unexpected member '%s' in this upload", m->name);
                b->http_status = 400;
                return -1;
            }
            for (size_t i = 0; i + 1 < b->n; i++)
                if (!strcmp(b->m[i].name, m->name)) return fail(b, 400, "a bundle member appears twice");
            b->buf_n = 0;
            b->state = B_SIZE;
            break;
        }
        case B_SIZE:
            b->buf[b->buf_n++] = *data++, n--;
            if (b->buf_n < 8) break;
            b->left = 0;
            for (int i = 7; i >= 0; i--) b->left = b->left << 8 | b->buf[i];
            if (b->left > b->max_member) return fail(b, 413, "a bundle member exceeds the upload limit");
            b->m[b->n - 1].size = b->left;
            if (member_open(b)) return -1;
            b->state = B_DATA;
            if (!b->left && member_close(b)) return -1;
            if (!b->left) b->state = B_NAMELEN;
            break;
        case B_DATA: {
            const size_t k = b->left < n ? (size_t)b->left : n;
            if (member_write(b, data, k)) return -1;
            data += k, n -= k, b->left -= k;
            if (!b->left) {
                if (member_close(b)) return -1;
                b->state = B_NAMELEN;
            }
            break;
        }
        default:
            return fail(b, 400, "bytes after the end of the bundle");
        }
    }
    return 0;
}

int bundle_feed(bundle *b, const uint8_t *data, size_t n)
{
    if (b->http_status) return -1;
    if (!EVP_DigestUpdate(b->md, data, n)) return fail(b, 500, "SHA-256 failed");
    b->total += n;
    return parse(b, data, n);
}

int bundle_finish(bundle *b, uint8_t digest[32])
{
    if (b->http_status) return -1;
    if (b->state != B_END) return fail(b, 400, "truncated upload: the bundle is incomplete");
    unsigned len = 0;
    if (!EVP_DigestFinal_ex(b->md, digest, &len) || len != 32) return fail(b, 500, "SHA-256 failed");
    return 0;
}

const bundle_member *bundle_get(const bundle *b, const char *name)
{
    for (size_t i = 0; i < b->n; i++)
        if (!strcmp(b->m[i].name, name) && b->m[i].tmp) return &b->m[i];
    return NULL;
}

void bundle_free(bundle *b)
{
    if (b->fd >= 0) close(b->fd);
    b->fd = -1;
    for (size_t i = 0; i < b->n; i++) {
        if (b->m[i].tmp) unlink(b->m[i].tmp);
        free(b->m[i].tmp);
        b->m[i].tmp = NULL;
    }
    EVP_MD_CTX_free(b->md);
    b->md = NULL;
}

/* ---- files ---- */

void serve_sync_dir(const char *dir)
{
    const int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return;
    (void)fsync(fd);
    close(fd);
}

static void parent_of(const char *path, char *out, size_t cap)
{
    snprintf(out, cap, "%s", path);
    char *slash = strrchr(out, '/');
    if (slash && slash != out) *slash = 0;
    else snprintf(out, cap, "%s", slash ? "/" : ".");
}

void serve_remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char p[8192];
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

int serve_install_dir(const char *final, const char *const *names, char *const *tmp_paths, size_t n)
{
    char stage[4096], p[8192], parent[4096];
    snprintf(stage, sizeof stage, "%s.tmp-XXXXXX", final);
    if (!mkdtemp(stage)) return -1;
    for (size_t i = 0; i < n; i++) {
        snprintf(p, sizeof p, "%s/%s", stage, names[i]);
        if (rename(tmp_paths[i], p)) {
            serve_remove_dir(stage);
            return -1;
        }
    }
    serve_sync_dir(stage);
    if (rename(stage, final)) {
        serve_remove_dir(stage);
        return -1;
    }
    parent_of(final, parent, sizeof parent);
    serve_sync_dir(parent);
    return 0;
}

void serve_hex(const uint8_t *d, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) out[2 * i] = digits[d[i] >> 4], out[2 * i + 1] = digits[d[i] & 15];
    out[2 * n] = 0;
}

bool serve_parse_bytes(const char *s, uint64_t *out)
{
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    const unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *s == '-') return false;
    unsigned shift = 0;
    if (*end == 'K' || *end == 'k') shift = 10, end++;
    else if (*end == 'M' || *end == 'm') shift = 20, end++;
    else if (*end == 'G' || *end == 'g') shift = 30, end++;
    else if (*end == 'T' || *end == 't') shift = 40, end++;
    if (*end || (shift && v > (UINT64_MAX >> shift))) return false;
    *out = (uint64_t)v << shift;
    return true;
}

/* ---- the store ---- */

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=FULL;"
    "CREATE TABLE IF NOT EXISTS clients(name TEXT PRIMARY KEY, token_sha256 TEXT UNIQUE NOT NULL, created INTEGER);"
    "CREATE TABLE IF NOT EXISTS keysets(id TEXT NOT NULL, client TEXT NOT NULL, kind TEXT NOT NULL, bytes INTEGER,"
    " created INTEGER, PRIMARY KEY(id, client));"
    "CREATE TABLE IF NOT EXISTS jobs(seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, client TEXT NOT NULL,"
    " keyset TEXT NOT NULL, kind TEXT NOT NULL, state TEXT NOT NULL, error TEXT, mem INTEGER, bytes INTEGER,"
    " created INTEGER, started INTEGER, finished INTEGER);";

int store_open(sqlite3 **db, const char *path)
{
    *db = NULL;
    if (sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
        fprintf(stderr, "hecnn serve: cannot open the store '%s': %s\n", path, *db ? sqlite3_errmsg(*db) : "out of memory");
        sqlite3_close(*db);
        *db = NULL;
        return -1;
    }
    sqlite3_busy_timeout(*db, 10000);
    char *err = NULL;
    if (sqlite3_exec(*db, schema, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "hecnn serve: cannot set up the store '%s': %s\n", path, err ? err : "?");
        sqlite3_free(err);
        sqlite3_close(*db);
        *db = NULL;
        return -1;
    }
    return 0;
}

void store_token_hash(const char *token, char out[65])
{
    uint8_t d[32];
    unsigned len = 0;
    EVP_Digest(token, strlen(token), d, &len, EVP_sha256(), NULL);
    serve_hex(d, 32, out);
}

/* `hecnn serve` (the network service) and `hecnn remote` (its client).
 *
 * The server keeps key-set and job metadata in SQLite (DATA/hecnn.db) and their bytes in
 * DATA/keysets/<sha256>/ and DATA/jobs/<id>/; uploads stream to DATA/tmp/ and reach their place by
 * rename only once complete and synced, so a crash leaves either nothing or a whole object. Jobs run
 * the commands of the local tool (cmd_infer, cmd_model_infer) in worker threads. Protocol and walk-
 * through: docs/SERVER.md. */
#ifndef HECNN_TOOLS_SERVE_H
#define HECNN_TOOLS_SERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

/* `hecnn serve [token add|list|remove] ...` */
int cmd_serve(int argc, char **argv);
/* `hecnn remote upload-keys|submit|wait|fetch|status|cancel|delete ...` */
int cmd_remote(int argc, char **argv);

/* ---- bundles ------------------------------------------------------------------------------
 * Every upload is one bundle: the magic "HECNNBD1", then members, each a name length (1 byte,
 * 1..32), the name ([a-z0-9._-]), its size (8 bytes, little-endian) and its bytes; a zero name
 * length ends it, and nothing may follow. Content type application/vnd.hecnn.bundle. */
#define BUNDLE_MAGIC "HECNNBD1"
#define BUNDLE_CONTENT_TYPE "application/vnd.hecnn.bundle"
#define BUNDLE_MAX_MEMBERS 8
#define BUNDLE_NAME_MAX 32

typedef struct bundle_member {
    char name[BUNDLE_NAME_MAX + 1];
    char *tmp;      /* the member's file under the temporary folder (malloc'ed) */
    uint64_t size;
    uint8_t head[10]; /* its first bytes (an object's magic, version and type) */
    size_t head_n;
} bundle_member;

typedef struct bundle {
    const char *tmpdir;
    const char *const *allowed; /* member names accepted (NULL-terminated) */
    uint64_t max_member;
    int state;
    uint8_t buf[16];
    size_t buf_n;
    bundle_member m[BUNDLE_MAX_MEMBERS];
    size_t n;
    uint64_t left, total;
    uint8_t head[10];  /* first bytes of the current member: its object header */
    size_t head_n;
    int fd;
    void *md;          /* EVP_MD_CTX: SHA-256 of the whole upload */
    int http_status;   /* set with err on failure */
    char err[256];
} bundle;

/* 0 on success; -1 with b->http_status and b->err set. */
int bundle_init(bundle *b, const char *tmpdir, const char *const *allowed, uint64_t max_member);
int bundle_feed(bundle *b, const uint8_t *data, size_t n);
/* The upload ended: complete bundle, files synced, its SHA-256 in digest. */
int bundle_finish(bundle *b, uint8_t digest[32]);
const bundle_member *bundle_get(const bundle *b, const char *name);
/* Removes the members' remaining temporary files and frees everything. */
void bundle_free(bundle *b);

/* ---- files -------------------------------------------------------------------------------- */
/* fsync a directory (best effort) */
void serve_sync_dir(const char *dir);
/* Move the named temporary files into a new directory `final` (atomically: a staging directory
 * beside it, synced, renamed). 0 on success; on failure nothing is left at `final`. */
int serve_install_dir(const char *final, const char *const *names, char *const *tmp_paths, size_t n);
/* Remove a directory of plain files (one level). */
void serve_remove_dir(const char *dir);
void serve_hex(const uint8_t *d, size_t n, char *out);
/* "123", "64K", "512M", "24G" */
bool serve_parse_bytes(const char *s, uint64_t *out);

/* ---- the store ---------------------------------------------------------------------------- */
int store_open(sqlite3 **db, const char *path);
/* token files and `hecnn serve token`: SHA-256 of the token, hex */
void store_token_hash(const char *token, char out[65]);

#endif

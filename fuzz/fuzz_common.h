/* Shared by the loader harnesses: one tiny fixed context (N = 16, three 17..25-bit q primes,
 * one special prime; insecure on purpose so that an input is cheap), a fixed secret key, and
 * helpers to run a loader on the fuzz input through fmemopen.
 *
 * Every harness checks, for inputs its loader accepts, that saving and reloading is lossless
 * (save(load(x)) loads again and saves to the same bytes, up to the checksum), so a loader that
 * accepts something its writer cannot reproduce is a finding, not just a crash. The library of a
 * fuzzing build (HECNN_FUZZ) accepts wrong checksums, so that mutations reach the checks behind
 * them; the checksum itself is tested in tests/test_serialize.c.
 *
 * Seed corpus: run a harness with HECNN_FUZZ_SEED_DIR=dir to write valid objects there first. */
#ifndef HECNN_FUZZ_COMMON_H
#define HECNN_FUZZ_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hecnn/hecnn.h"

static ckks_context *fz_ctx;
static ckks_secret_key *fz_sk;
static ckks_public_key *fz_pk;

static inline void fz_die(const char *what, hecnn_status st)
{
    fprintf(stderr, "fuzz setup: %s: %s: %s\n", what, hecnn_status_name(st), hecnn_last_error_detail());
    abort();
}

static inline void fz_setup(void)
{
    if (fz_ctx) return;
    ckks_params_literal p = {.log_n = 4, .n_q = 3, .n_p = 1, .log_scale = 20, .allow_insecure = true};
    p.log_q[0] = 25, p.log_q[1] = 20, p.log_q[2] = 20, p.log_p[0] = 25;
    hecnn_status st;
    if ((st = ckks_context_new(&fz_ctx, &p))) fz_die("context", st);
    const uint8_t s1[CKKS_SEED_BYTES] = {1}, s2[CKKS_SEED_BYTES] = {2};
    if ((st = ckks_secret_key_generate_derand(&fz_sk, fz_ctx, s1))) fz_die("secret key", st);
    if ((st = ckks_public_key_generate_derand(&fz_pk, fz_sk, s2))) fz_die("public key", st);
}

/* fmemopen refuses a zero size on some libcs: an empty input reads from /dev/null instead. */
static inline FILE *fz_open(const uint8_t *data, size_t size)
{
    FILE *f = size ? fmemopen((void *)data, size, "rb") : fopen("/dev/null", "rb");
    if (!f) abort();
    return f;
}

/* Readers that take a path (tool-side readers, the MNIST weights file) or check that a stream is a
 * regular file: the input in an anonymous in-memory file, named /proc/self/fd/N in *path (nothing
 * touches the disk). Close the returned descriptor when done. */
static inline int fz_memfd(const uint8_t *data, size_t size, char path[static 64])
{
    const int fd = memfd_create("hecnn-fuzz", MFD_CLOEXEC);
    if (fd < 0) abort();
    for (size_t done = 0; done < size;) {
        const ssize_t w = write(fd, data + done, size - done);
        if (w <= 0) abort();
        done += (size_t)w;
    }
    if (lseek(fd, 0, SEEK_SET) != 0) abort();
    snprintf(path, 64, "/proc/self/fd/%d", fd);
    return fd;
}

typedef struct fz_buf {
    char *data;
    size_t len;
    FILE *f;
} fz_buf;

static inline FILE *fz_out(fz_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->f = open_memstream(&b->data, &b->len);
    if (!b->f) abort();
    return b->f;
}

static inline void fz_close(fz_buf *b) { fclose(b->f); }

static inline void fz_check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz invariant violated: %s (%s)\n", what, hecnn_last_error_detail());
        abort();
    }
}

static inline void fz_same(const fz_buf *a, const fz_buf *b, const char *what)
{
    fz_check(a->len == b->len && !memcmp(a->data, b->data, a->len), what);
}

/* Every object ends with a 32-byte SHA-256 of its bytes (docs/FORMATS.md). */
#define FZ_DIGEST 32

/* Loading then saving reproduces the input's object bytes (the input may carry trailing bytes),
 * up to the final checksum: fuzzing builds accept a wrong one, the writer writes the right one. */
static inline void fz_resaved(const fz_buf *b, const uint8_t *data, size_t size, const char *what)
{
    fz_check(b->len <= size && b->len >= FZ_DIGEST && !memcmp(b->data, data, b->len - FZ_DIGEST), what);
}

/* Write `b` as a seed file `name` under $HECNN_FUZZ_SEED_DIR (if set). */
static inline void fz_seed_file(const char *name, const fz_buf *b)
{
    const char *dir = getenv("HECNN_FUZZ_SEED_DIR");
    if (!dir) return;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(b->data, 1, b->len, f);
    fclose(f);
}

#endif

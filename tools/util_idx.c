/* MNIST idx files, bounded by the header and by the request (see util_idx.h). */
#include "util_idx.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "util_cli.h"

#define IDX_IMAGES_MAGIC 0x00000803u
#define IDX_LABELS_MAGIC 0x00000801u
#define IDX_SIDE 28
#define IDX_PIXELS (IDX_SIDE * IDX_SIDE)

static uint32_t be32(const unsigned char *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

typedef struct idx_file {
    const char *path;
    gzFile gz;
} idx_file;

static int idx_open(idx_file *f, const char *path, const char *what)
{
    f->path = path;
    f->gz = NULL;
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cli_error("cannot read %s '%s': %s: %s", what, path, hecnn_status_name(HECNN_ERR_IO), strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        cli_error("cannot read '%s': it is a directory, a file is expected", path);
        close(fd);
        return -1;
    }
    if (!(f->gz = gzdopen(fd, "rb"))) {
        cli_error("cannot read '%s': out of memory", path);
        close(fd);
        return -1;
    }
    return 0;
}

static void idx_close(idx_file *f)
{
    if (f->gz) gzclose_r(f->gz);
    f->gz = NULL;
}

/* Read exactly `len` bytes unless the data ends first: returns the bytes read, or -1 after a
 * reported error (a corrupt archive, a read error). */
static long long idx_read(idx_file *f, void *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        const unsigned step = len - done > (1u << 30) ? 1u << 30 : (unsigned)(len - done);
        const int got = gzread(f->gz, (unsigned char *)buf + done, step);
        if (got < 0) {
            int zerr;
            const char *msg = gzerror(f->gz, &zerr);
            cli_error("cannot read '%s': %s: %s", f->path, hecnn_status_name(zerr == Z_ERRNO ? HECNN_ERR_IO : HECNN_ERR_BAD_FORMAT),
                      zerr == Z_ERRNO ? strerror(errno) : msg);
            return -1;
        }
        if (got == 0) break;
        done += (size_t)got;
    }
    /* a gzip stream cut short reads as a short end: zlib tells it apart */
    int zerr;
    const char *msg = gzerror(f->gz, &zerr);
    if (done < len && zerr != Z_OK && zerr != Z_STREAM_END) {
        cli_error("cannot read '%s': %s: %s (a damaged or truncated gzip archive)", f->path, hecnn_status_name(HECNN_ERR_BAD_FORMAT),
                  msg);
        return -1;
    }
    return (long long)done;
}

/* Skip `len` bytes (decompressing through them when the file is compressed). */
static long long idx_skip(idx_file *f, size_t len)
{
    unsigned char buf[1 << 16];
    size_t done = 0;
    while (done < len) {
        const size_t step = len - done < sizeof buf ? len - done : sizeof buf;
        const long long got = idx_read(f, buf, step);
        if (got < 0) return -1;
        done += (size_t)got;
        if ((size_t)got < step) break;
    }
    return (long long)done;
}

/* The records offset .. offset + count - 1 (clipped to the declared count) of `rsize` bytes each,
 * after a header of `hsize` bytes whose first word is `magic`; the header's words go to hdr[]. */
static int idx_read_records(const char *path, uint32_t magic, size_t hsize, size_t rsize, const char *what, size_t offset,
                            size_t count, uint32_t hdr[4], unsigned char **data, size_t *n, size_t *total)
{
    *data = NULL;
    *n = 0;
    *total = 0;
    idx_file f;
    if (idx_open(&f, path, what)) return -1;
    int rc = -1;
    unsigned char h[16];
    const long long got = idx_read(&f, h, hsize);
    if (got < 0) goto done;
    if ((size_t)got < hsize || be32(h) != magic) {
        cli_error("'%s' is not an idx%u %s file (magic 0x%08x)", path, magic & 0xff, what, magic);
        goto done;
    }
    for (size_t i = 0; i < hsize / 4; i++) hdr[i] = be32(h + 4 * i);
    if (hsize == 16 && (hdr[2] != IDX_SIDE || hdr[3] != IDX_SIDE)) {
        cli_error("'%s' holds %ux%u images; MNIST needs %dx%d", path, hdr[2], hdr[3], IDX_SIDE, IDX_SIDE);
        goto done;
    }
    if (hdr[1] == 0) {
        cli_error("'%s': the header declares no %s", path, what);
        goto done;
    }
    *total = hdr[1];
    if (offset >= *total) {
        rc = 0;
        goto done;
    }
    const bool all = !count || count >= *total - offset;
    const size_t want = all ? *total - offset : count;
    if (want > CLI_IDX_MAX_RECORDS) {
        cli_error("'%s': %zu %s asked for; at most %zu are read at once (choose a part with --count and --offset)", path, want, what,
                  CLI_IDX_MAX_RECORDS);
        goto done;
    }
    const long long skipped = idx_skip(&f, offset * rsize);
    if (skipped < 0) goto done;
    /* grown as the data arrives: a header that overstates its count costs nothing */
    size_t have = 0, cap = 0;
    unsigned char *buf = NULL;
    if ((size_t)skipped == offset * rsize)
        while (have < want) {
            const size_t step = want - have < 4096 ? want - have : 4096;
            if (have + step > cap) {
                const size_t nc = cap * 2 > have + step ? cap * 2 : have + step;
                unsigned char *nb = realloc(buf, nc * rsize);
                if (!nb) {
                    free(buf);
                    cli_error("out of memory reading '%s'", path);
                    goto done;
                }
                buf = nb;
                cap = nc;
            }
            const long long r = idx_read(&f, buf + have * rsize, step * rsize);
            if (r < 0) {
                free(buf);
                goto done;
            }
            have += (size_t)r / rsize;
            if ((size_t)r < step * rsize) break;
        }
    if (have < want) {
        free(buf);
        cli_error("'%s': the header says %zu %s, the data ends after %zu (%s %zu..%zu were asked for)", path, *total, what,
                  (size_t)skipped / rsize + have, what, offset, offset + want - 1);
        goto done;
    }
    if (all) {
        unsigned char extra;
        const long long r = idx_read(&f, &extra, 1);
        if (r != 0) {
            free(buf);
            if (r > 0) cli_error("'%s': the header says %zu %s, the file holds more data after them", path, *total, what);
            goto done;
        }
    }
    *data = buf;
    *n = want;
    rc = 0;
done:
    idx_close(&f);
    return rc;
}

int cli_idx_read_images(const char *path, size_t offset, size_t count, double **pixels, size_t *n, size_t *total)
{
    *pixels = NULL;
    uint32_t hdr[4];
    unsigned char *d;
    if (idx_read_records(path, IDX_IMAGES_MAGIC, 16, IDX_PIXELS, "images", offset, count, hdr, &d, n, total)) return -1;
    if (!*n) return 0;
    double *px = malloc(*n * IDX_PIXELS * sizeof *px);
    if (!px) {
        free(d);
        cli_error("out of memory for %zu images", *n);
        *n = 0;
        return -1;
    }
    for (size_t i = 0; i < *n * IDX_PIXELS; i++) px[i] = d[i] / 255.0;
    free(d);
    *pixels = px;
    return 0;
}

int cli_idx_read_labels(const char *path, size_t offset, size_t count, uint8_t **labels, size_t *n, size_t *total)
{
    *labels = NULL;
    uint32_t hdr[4];
    unsigned char *d;
    if (idx_read_records(path, IDX_LABELS_MAGIC, 8, 1, "labels", offset, count, hdr, &d, n, total)) return -1;
    for (size_t i = 0; i < *n; i++)
        if (d[i] > 9) {
            cli_error("'%s': label %zu is %u; labels are digits 0..9", path, offset + i, d[i]);
            free(d);
            *n = 0;
            return -1;
        }
    *labels = d;
    return 0;
}

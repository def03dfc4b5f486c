/* libFuzzer harness for the tool's MNIST idx reader (tools/util_idx.c, compiled in; see
 * fuzz_common.h): the input, from an in-memory file, is read as images and as labels, whole and as
 * the record at offset 1, plain or gzip-compressed as the reader finds it. Whatever it returns is
 * consistent: a success reports nothing and returns the records asked for (pixels in [0, 1], digits
 * 0..9), a failure reports one error and returns nothing.
 *
 * cli_error is this harness's own (util_cli.c is not linked): it counts the reports, quietly.
 *
 * Seeds (HECNN_FUZZ_SEED_DIR): two images, three labels, and the images gzip-compressed. */
#include <stdarg.h>
#include <zlib.h>

#include "fuzz_common.h"
#include "util_idx.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
void cli_error(const char *fmt, ...);

static int reports;

void cli_error(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fz_check(line[0] != 0, "empty error report");
    reports++;
}

static void seed_gzip(const char *name, const uint8_t *raw, size_t len)
{
    z_stream z = {0};
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) abort();
    const size_t cap = deflateBound(&z, len);
    uint8_t *out = malloc(cap);
    if (!out) abort();
    z.next_in = (Bytef *)raw, z.avail_in = (uInt)len, z.next_out = out, z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) abort();
    fz_buf b = {.data = (char *)out, .len = z.total_out};
    fz_seed_file(name, &b);
    deflateEnd(&z);
    free(out);
}

static void write_seeds(void)
{
    if (!getenv("HECNN_FUZZ_SEED_DIR")) return;
    static uint8_t img[16 + 2 * 784];
    const uint8_t ih[16] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28};
    memcpy(img, ih, 16);
    for (size_t i = 0; i < 2 * 784; i++) img[16 + i] = (uint8_t)(i % 7 == 0 ? 255 : i % 3 ? 0 : i);
    fz_buf b = {.data = (char *)img, .len = sizeof img};
    fz_seed_file("images", &b);
    seed_gzip("images_gz", img, sizeof img);
    const uint8_t lab[8 + 3] = {0, 0, 8, 1, 0, 0, 0, 3, 7, 0, 9};
    b = (fz_buf){.data = (char *)lab, .len = sizeof lab};
    fz_seed_file("labels", &b);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    write_seeds();
    return 0;
}

static void read_images(const char *path, size_t offset, size_t count)
{
    reports = 0;
    double *px = (double *)1;
    size_t n = 99, total = 99;
    const int rc = cli_idx_read_images(path, offset, count, &px, &n, &total);
    if (rc) {
        fz_check(reports == 1 && px == NULL, "a failed image read reports once and returns nothing");
        return;
    }
    fz_check(reports == 0, "a successful image read reports nothing");
    fz_check(total > 0 && (offset >= total ? n == 0 : n == (count && count < total - offset ? count : total - offset)),
             "image count");
    fz_check((n == 0) == (px == NULL), "images returned");
    for (size_t i = 0; i < n * 784; i++) fz_check(px[i] >= 0 && px[i] <= 1, "pixel in [0, 1]");
    free(px);
}

static void read_labels(const char *path, size_t offset, size_t count)
{
    reports = 0;
    uint8_t *lab = (uint8_t *)1;
    size_t n = 99, total = 99;
    const int rc = cli_idx_read_labels(path, offset, count, &lab, &n, &total);
    if (rc) {
        fz_check(reports == 1 && lab == NULL, "a failed label read reports once and returns nothing");
        return;
    }
    fz_check(reports == 0, "a successful label read reports nothing");
    fz_check(total > 0 && (offset >= total ? n == 0 : n == (count && count < total - offset ? count : total - offset)),
             "label count");
    for (size_t i = 0; i < n; i++) fz_check(lab[i] <= 9, "label is a digit");
    free(lab);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    const int fd = fz_memfd(data, size, path);
    read_images(path, 0, 0);
    read_images(path, 1, 1);
    read_labels(path, 0, 0);
    read_labels(path, 1, 1);
    close(fd);
    return 0;
}

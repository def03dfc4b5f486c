/* libFuzzer harness for the tool's CIFAR reader (tools/util_cifar.c, compiled in; see
 * fuzz_common.h): the input, from an in-memory file, is read as CIFAR-10 (3,073-byte records) and
 * as CIFAR-100 (3,074-byte records, fine and coarse labels), whole and as the record at offset 1.
 * Whatever it returns is consistent: a success reports nothing and returns the records asked for
 * (pixels in [0, 1], labels below the class count), a failure reports one error and returns an
 * empty batch; cifar_count agrees with the file size.
 *
 * cli_error is this harness's own (util_cli.c is not linked): it counts the reports, quietly.
 *
 * Seeds (HECNN_FUZZ_SEED_DIR): two CIFAR-10 records, two CIFAR-100 records, one of each. */
#include <stdarg.h>

#include "fuzz_common.h"
#include "util_cifar.h"

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

static void seed_records(const char *name, cifar_kind kind, size_t n)
{
    const size_t rec = cifar_record_size(kind);
    uint8_t *b = calloc(n, rec);
    if (!b) abort();
    for (size_t i = 0; i < n; i++) {
        uint8_t *r = b + i * rec;
        r[0] = (uint8_t)(kind == CIFAR_100 ? (3 * i + 1) % 20 : (7 * i + 2) % 10);
        if (kind == CIFAR_100) r[1] = (uint8_t)((11 * i + 5) % 100);
        for (size_t j = rec - CIFAR_PIXELS; j < rec; j++) r[j] = (uint8_t)(j * 37 + i);
    }
    fz_buf out = {.data = (char *)b, .len = n * rec};
    fz_seed_file(name, &out);
    free(b);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    if (getenv("HECNN_FUZZ_SEED_DIR")) {
        seed_records("cifar10_two", CIFAR_10, 2);
        seed_records("cifar10_one", CIFAR_10, 1);
        seed_records("cifar100_two", CIFAR_100, 2);
        seed_records("cifar100_one", CIFAR_100, 1);
    }
    return 0;
}

static void read_records(const char *path, const uint8_t *data, size_t size, cifar_kind kind, bool coarse, size_t offset, size_t count)
{
    const size_t rec = cifar_record_size(kind), total = size / rec;
    reports = 0;
    size_t counted = 99;
    const int crc = cifar_count(path, kind, &counted);
    fz_check(crc ? reports == 1 : reports == 0 && size % rec == 0 && counted == total && total > 0,
             "cifar_count agrees with the file size and reports only failures, once");

    reports = 0;
    cifar_batch b = {.n = 99};
    const int rc = cifar_read(path, kind, coarse, offset, count, &b);
    if (rc) {
        fz_check(reports == 1 && b.n == 0 && !b.pixels && !b.labels, "a failed read reports once and returns nothing");
        return;
    }
    fz_check(reports == 0, "a successful read reports nothing");
    fz_check(!crc && offset < total && b.n == (count ? count : total - offset) && offset + b.n <= total, "record count");
    /* labels are the record's label byte (CIFAR-100: coarse first, then fine) and below the class
     * count, pixels its bytes / 255 */
    const unsigned classes = cifar_classes(kind, coarse);
    const size_t head = rec - CIFAR_PIXELS;
    for (size_t i = 0; i < b.n; i++) {
        const uint8_t *r = data + (offset + i) * rec;
        fz_check(b.labels[i] < classes && b.labels[i] == r[kind == CIFAR_100 && !coarse ? 1 : 0], "label");
        for (size_t j = 0; j < CIFAR_PIXELS; j++)
            fz_check(b.pixels[i * CIFAR_PIXELS + j] == r[head + j] / 255.0, "pixel = byte / 255");
    }
    cifar_batch_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    const int fd = fz_memfd(data, size, path);
    read_records(path, data, size, CIFAR_10, false, 0, 0);
    read_records(path, data, size, CIFAR_10, false, 1, 1);
    read_records(path, data, size, CIFAR_100, false, 0, 0);
    read_records(path, data, size, CIFAR_100, true, 1, 1);
    close(fd);
    return 0;
}

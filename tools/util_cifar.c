/* CIFAR-10 / CIFAR-100 binary reader (see util_cifar.h). */
#include "util_cifar.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util_cli.h"

const char *cifar_kind_name(cifar_kind kind) { return kind == CIFAR_100 ? "CIFAR-100" : "CIFAR-10"; }

size_t cifar_record_size(cifar_kind kind) { return (kind == CIFAR_100 ? 2u : 1u) + CIFAR_PIXELS; }

unsigned cifar_classes(cifar_kind kind, bool coarse) { return kind == CIFAR_100 ? (coarse ? 20u : 100u) : 10u; }

bool cifar_kind_by_name(const char *name, cifar_kind *out)
{
    if (!name) return false;
    static const char *const ten[] = {"cifar10", "CIFAR-10", "cifar-10", "10"};
    static const char *const hundred[] = {"cifar100", "CIFAR-100", "cifar-100", "100"};
    for (size_t i = 0; i < 4; i++) {
        if (!strcmp(name, ten[i])) return *out = CIFAR_10, true;
        if (!strcmp(name, hundred[i])) return *out = CIFAR_100, true;
    }
    return false;
}

int cifar_count(const char *path, cifar_kind kind, size_t *records)
{
    struct stat sb;
    if (stat(path, &sb)) {
        cli_error("cannot read %s data '%s': %s", cifar_kind_name(kind), path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(sb.st_mode)) {
        cli_error("cannot read %s data '%s': not a regular file", cifar_kind_name(kind), path);
        return -1;
    }
    const unsigned long long size = (unsigned long long)sb.st_size, rec = cifar_record_size(kind);
    const cifar_kind other = kind == CIFAR_10 ? CIFAR_100 : CIFAR_10;
    const unsigned long long orec = cifar_record_size(other);
    if (size == 0 || size % rec) {
        if (size && size % orec == 0)
            cli_error("'%s' (%llu bytes) is not a whole number of %llu-byte %s records; it looks like %s (%llu-byte "
                      "records): choose the data set that matches the model",
                      path, size, rec, cifar_kind_name(kind), cifar_kind_name(other), orec);
        else
            cli_error("'%s' (%llu bytes) is not a whole number of %llu-byte %s records", path, size, rec, cifar_kind_name(kind));
        return -1;
    }
    *records = (size_t)(size / rec);
    return 0;
}

void cifar_batch_free(cifar_batch *b)
{
    if (!b) return;
    free(b->pixels);
    free(b->labels);
    memset(b, 0, sizeof *b);
}

int cifar_read(const char *path, cifar_kind kind, bool coarse, size_t offset, size_t count, cifar_batch *out)
{
    memset(out, 0, sizeof *out);
    size_t total;
    if (cifar_count(path, kind, &total)) return -1;
    if (offset >= total) {
        cli_error("offset %zu is past the end of '%s' (%zu images)", offset, path, total);
        return -1;
    }
    if (!count) count = total - offset;
    if (count > total - offset) {
        cli_error("'%s' holds %zu images: %zu from offset %zu are not there", path, total, count, offset);
        return -1;
    }
    const size_t rec = cifar_record_size(kind), head = rec - CIFAR_PIXELS;
    FILE *f = fopen(path, "rb");
    unsigned char *buf = malloc(rec);
    out->pixels = malloc(count * CIFAR_PIXELS * sizeof *out->pixels);
    out->labels = malloc(count);
    int rc = -1;
    if (!f) {
        cli_error("cannot open %s data '%s': %s", cifar_kind_name(kind), path, strerror(errno));
        goto done;
    }
    if (!buf || !out->pixels || !out->labels) {
        cli_error("out of memory reading %zu images from '%s'", count, path);
        goto done;
    }
    /* fseeko: offsets past 2 GiB on any data set size */
    if (fseeko(f, (off_t)offset * (off_t)rec, SEEK_SET)) {
        cli_error("cannot seek in '%s': %s", path, strerror(errno));
        goto done;
    }
    for (size_t i = 0; i < count; i++) {
        if (fread(buf, 1, rec, f) != rec) {
            cli_error("cannot read '%s': short read at image %zu%s", path, offset + i, ferror(f) ? " (I/O error)" : " (file shrank?)");
            goto done;
        }
        /* CIFAR-100: coarse label first, then fine; both are checked whichever is used */
        const unsigned label = kind == CIFAR_100 ? buf[coarse ? 0 : 1] : buf[0];
        const unsigned bad = kind == CIFAR_10 ? (buf[0] >= 10 ? 1u : 0u) : buf[0] >= 20 ? 1u : buf[1] >= 100 ? 2u : 0u;
        if (bad) {
            cli_error("'%s': image %zu has %s label %u, out of range for %s (%u classes): is the file %s?", path, offset + i,
                      kind == CIFAR_10 ? "a" : bad == 1 ? "coarse" : "fine", buf[bad - 1], cifar_kind_name(kind),
                      kind == CIFAR_10 ? 10u : bad == 1 ? 20u : 100u, kind == CIFAR_10 ? "CIFAR-100" : "CIFAR-10");
            goto done;
        }
        out->labels[i] = (uint8_t)label;
        double *px = out->pixels + i * CIFAR_PIXELS;
        for (size_t j = 0; j < CIFAR_PIXELS; j++) px[j] = buf[head + j] / 255.0;
    }
    out->n = count;
    rc = 0;
done:
    if (f) fclose(f);
    free(buf);
    if (rc) cifar_batch_free(out);
    return rc;
}

void cifar_names_free(char **names, size_t count)
{
    if (!names) return;
    for (size_t i = 0; i < count; i++) free(names[i]);
    free(names);
}

int cifar_class_names(const char *data_path, cifar_kind kind, bool coarse, char ***names, size_t *count)
{
    *names = NULL;
    *count = 0;
    const char *file = kind == CIFAR_10 ? "batches.meta.txt" : coarse ? "coarse_label_names.txt" : "fine_label_names.txt";
    const char *slash = strrchr(data_path, '/');
    const size_t dlen = slash ? (size_t)(slash - data_path) : 1;
    const size_t len = dlen + strlen(file) + 2;
    char *path = malloc(len);
    if (!path) {
        cli_error("out of memory");
        return -1;
    }
    snprintf(path, len, "%.*s/%s", (int)dlen, slash ? data_path : ".", file);
    FILE *f = fopen(path, "r");
    if (!f) { /* optional */
        free(path);
        return 0;
    }
    const unsigned want = cifar_classes(kind, coarse);
    char **v = calloc(want, sizeof *v);
    char *line = NULL;
    size_t cap = 0, n = 0;
    ssize_t got;
    int rc = -1;
    if (!v) {
        cli_error("out of memory");
        goto done;
    }
    while ((got = getline(&line, &cap, f)) >= 0) {
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r' || line[got - 1] == ' ')) line[--got] = 0;
        if (!got) continue; /* blank lines (the CIFAR-10 file ends with some) */
        if (n == want) {
            cli_error("class names '%s': more than %u names", path, want);
            goto done;
        }
        if (!(v[n++] = strdup(line))) {
            cli_error("out of memory");
            goto done;
        }
    }
    if (n != want) {
        cli_error("class names '%s': %zu names, expected %u", path, n, want);
        goto done;
    }
    *names = v;
    *count = n;
    v = NULL;
    rc = 0;
done:
    cifar_names_free(v, want);
    free(line);
    fclose(f);
    free(path);
    return rc;
}

void cifar_normalise(double *pixels, size_t n, const double *mean, const double *std)
{
    const size_t plane = CIFAR_SIDE * CIFAR_SIDE;
    for (size_t i = 0; i < n; i++)
        for (size_t c = 0; c < CIFAR_CHANNELS; c++) {
            double *p = pixels + i * CIFAR_PIXELS + c * plane;
            const double m = mean ? mean[c] : 0, s = std ? std[c] : 1;
            for (size_t j = 0; j < plane; j++) p[j] = (p[j] - m) / s;
        }
}

/* CIFAR-10 / CIFAR-100 binary files (the "binary version" of the data sets), for the model
 * commands. The library reads no data sets; this is the tool's reader.
 *
 * CIFAR-10: 3,073-byte records = label, 3,072 pixels (R plane, G plane, B plane, 32x32 each).
 * CIFAR-100: 3,074-byte records = coarse label, fine label, 3,072 pixels.
 * Reads are bounded: only the records asked for are read. Every function here that can fail
 * prints one line on stderr (util_cli.h conventions) and returns non-zero. */
#ifndef HECNN_TOOLS_UTIL_CIFAR_H
#define HECNN_TOOLS_UTIL_CIFAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CIFAR_SIDE 32u
#define CIFAR_CHANNELS 3u
#define CIFAR_PIXELS (CIFAR_CHANNELS * CIFAR_SIDE * CIFAR_SIDE) /* 3,072 per image */

typedef enum cifar_kind { CIFAR_10 = 0, CIFAR_100 = 1 } cifar_kind;

/* "CIFAR-10" / "CIFAR-100"; record size in bytes (3,073 / 3,074). */
const char *cifar_kind_name(cifar_kind kind);
size_t cifar_record_size(cifar_kind kind);
/* Classes of the label read: 10; CIFAR-100: 100 fine, 20 coarse. */
unsigned cifar_classes(cifar_kind kind, bool coarse);
/* "cifar10" / "cifar100" (also "10", "100", "CIFAR-10", ...); false for anything else. */
bool cifar_kind_by_name(const char *name, cifar_kind *out);

/* Records in `path` as `kind`: the file size must be a whole, non-zero number of records (the
 * message says when it is a whole number of the other kind's records instead). */
int cifar_count(const char *path, cifar_kind kind, size_t *records);

typedef struct cifar_batch {
    size_t n;          /* images read */
    double *pixels;    /* n * CIFAR_PIXELS, in [0, 1], channel-major (c, row, col); malloc'ed */
    uint8_t *labels;   /* n labels (fine for CIFAR-100 unless coarse); malloc'ed */
} cifar_batch;

/* Read `count` records starting at record `offset` (count 0: all from offset). The range must
 * lie in the file; labels out of range for the kind are refused (a file of the other kind).
 * On failure *out is empty. */
int cifar_read(const char *path, cifar_kind kind, bool coarse, size_t offset, size_t count, cifar_batch *out);
void cifar_batch_free(cifar_batch *b);
/* In place: n images of pixels in [0, 1] to a model's input, (p - mean[c]) / std[c] (NULL: 0 and 1). */
void cifar_normalise(double *pixels, size_t n, const double *mean, const double *std);

/* Class names, one a line, from the file the data sets ship beside the binaries:
 * batches.meta.txt (CIFAR-10), fine_label_names.txt / coarse_label_names.txt (CIFAR-100), in the
 * folder of `data_path`. Returns 0 with *names NULL when the file is absent; with a file that
 * does not hold exactly the right number of names, a message and -1. Free with
 * cifar_names_free. */
int cifar_class_names(const char *data_path, cifar_kind kind, bool coarse, char ***names, size_t *count);
void cifar_names_free(char **names, size_t count);

#endif

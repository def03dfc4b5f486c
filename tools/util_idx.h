/* MNIST idx files for the commands (tools/), plain or gzip-compressed, read through zlib (a file
 * without the gzip magic is read as it is; nothing is forked).
 *
 * Only the header and the records asked for are read: records offset .. offset + count - 1 of the
 * file (count 0: all from offset), clipped to the count the header declares. So memory and time
 * follow the request, not the file: a small archive that inflates to gigabytes costs nothing
 * beyond what is asked for. The header is validated (magic, 28 x 28 images) before anything is
 * allocated, the data is read in bounded steps, and at most CLI_IDX_MAX_RECORDS are read at once.
 * Data that ends before the records asked for is an error naming the counts; when everything is
 * asked for, bytes after the declared records are an error too. Every failure is reported (one
 * line on stderr) and returns non-zero. */
#ifndef HECNN_TOOLS_UTIL_IDX_H
#define HECNN_TOOLS_UTIL_IDX_H

#include <stddef.h>
#include <stdint.h>

#define CLI_IDX_MAX_RECORDS ((size_t)1 << 18)

/* Images as n x 784 doubles in [0, 1] (pixel / 255), row-major. *total receives the count the
 * header declares (n is 0 when offset >= *total). Release *pixels with free(). */
int cli_idx_read_images(const char *path, size_t offset, size_t count, double **pixels, size_t *n, size_t *total);
/* Labels, each a digit 0..9 (anything else is an error naming it). Release *labels with free(). */
int cli_idx_read_labels(const char *path, size_t offset, size_t count, uint8_t **labels, size_t *n, size_t *total);

#endif

/* The one routine for the leading bytes of every hecnn binary file format (docs/FORMATS.md): a
 * magic string, then the format's version in little-endian. Writers put them with file_header_put;
 * readers check them with file_header_check before reading any other field, so that a file of
 * another kind, an earlier build's version, an unknown version and a header cut short are refused
 * the same way, with the same messages, in every format:
 *
 *   format          magic            version
 *   CKKS objects    "HECNN\0" (6)    16-bit   (src/ckks/serialize.c; type, parameter id and size follow)
 *   graph model     "HECNNGRF"       32-bit   (src/nn/graph_file.c)
 *   MNIST weights   "HECNNMDL"       32-bit   (src/nn/mnist_model.c)
 *   batch file      "HECNNVRB"       32-bit   (src/nn/mnist_io.c)
 *   encrypted MNIST "HECNNEMD"       32-bit   (src/nn/mnist_prepare.c)
 *   plan batches    "HECNNPBF"       32-bit   (tools/cmd_resnet.c)
 *
 * The bytes are those each format always had: nothing on disk changes. */
#ifndef HECNN_UTIL_FILEHEADER_H
#define HECNN_UTIL_FILEHEADER_H

#include <stddef.h>
#include <stdint.h>

#include "hecnn/status.h"

typedef struct file_format {
    const char *magic;      /* the file's first magic_bytes bytes */
    unsigned magic_bytes;   /* 6 or 8 */
    unsigned version_bytes; /* 2 or 4: the version's width, right after the magic */
    uint32_t version;       /* the version this build writes and reads */
    uint32_t oldest;        /* versions oldest..version-1 were written by earlier builds (0: none) */
    const char *what;       /* for a wrong magic: "a hecnn graph file" gives "not a hecnn graph file (bad magic)" */
    const char *name;       /* in the other messages: "graph file" */
} file_format;

/* Bytes of the magic and the version. */
static inline size_t file_header_bytes(const file_format *f) { return f->magic_bytes + f->version_bytes; }

/* Write the magic and the version to out (file_header_bytes of them). */
void file_header_put(uint8_t *out, const file_format *f);

/* Check the first `have` bytes of a file (have may be short): HECNN_OK when they start with the
 * magic and this build's version, else HECNN_ERR_BAD_FORMAT with a message naming the format:
 * "not WHAT (bad magic)" (also for fewer bytes than the magic), "NAME truncated in its header",
 * "NAME version V, written by an earlier build: this build reads version W" followed by `old`
 * (what changed and what to do, e.g. " (checksummed); write it again"; NULL: "; write it again")
 * for a version in oldest..version-1, "NAME version V, this build reads W" for any other. */
hecnn_status file_header_check(const uint8_t *in, size_t have, const file_format *f, const char *old);

#endif

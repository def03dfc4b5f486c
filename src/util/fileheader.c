/* The leading bytes of every binary file format (fileheader.h). */
#include "util/fileheader.h"

#include <string.h>

#include "util/error.h"
#include "util/le.h"

void file_header_put(uint8_t *out, const file_format *f)
{
    memcpy(out, f->magic, f->magic_bytes);
    if (f->version_bytes == 2) le_put16(out + f->magic_bytes, (uint16_t)f->version);
    else le_put32(out + f->magic_bytes, f->version);
}

hecnn_status file_header_check(const uint8_t *in, size_t have, const file_format *f, const char *old)
{
    if (have < f->magic_bytes || memcmp(in, f->magic, f->magic_bytes))
        return hecnn_fail(HECNN_ERR_BAD_FORMAT, "not %s (bad magic)", f->what);
    if (have < file_header_bytes(f)) return hecnn_fail(HECNN_ERR_BAD_FORMAT, "%s truncated in its header", f->name);
    const uint32_t v = f->version_bytes == 2 ? le_get16(in + f->magic_bytes) : le_get32(in + f->magic_bytes);
    if (v == f->version) return HECNN_OK;
    if (f->oldest && v >= f->oldest && v < f->version)
        return hecnn_fail(HECNN_ERR_BAD_FORMAT, "%s version %u, written by an earlier build: this build reads version %u%s", f->name, v,
                          f->version, old ? old : "; write it again");
    return hecnn_fail(HECNN_ERR_BAD_FORMAT, "%s version %u, this build reads %u", f->name, v, f->version);
}

/* Files of encrypted batches: a small header, then the ciphertexts batch after batch. */
#include <string.h>
#include <sys/stat.h>

#include "hecnn/nn.h"
#include "util/error.h"
#include "util/fileheader.h"

#define VRB_VERSION 1u
static const file_format VRB_FORMAT = {.magic = "HECNNVRB", .magic_bytes = 8, .version_bytes = 4, .version = VRB_VERSION,
                                       .what = "a hecnn batch file", .name = "batch file"};

static int put32(FILE *f, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    return fwrite(b, 1, 4, f) == 4 ? 0 : -1;
}
static int get32(FILE *f, uint32_t *v)
{
    uint8_t b[4];
    if (fread(b, 1, 4, f) != 4) return -1;
    *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return 0;
}

hecnn_status hecnn_vr_file_write_header(FILE *f, const ckks_context *ctx, const hecnn_vr_file_header *h)
{
    if (!f || !ctx || !h) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    const uint64_t pid = ckks_context_param_id(ctx);
    uint8_t head[12];
    file_header_put(head, &VRB_FORMAT);
    int bad = fwrite(head, 1, sizeof head, f) != sizeof head;
    bad |= put32(f, (uint32_t)h->kind) | put32(f, (uint32_t)pid) | put32(f, (uint32_t)(pid >> 32));
    bad |= put32(f, (uint32_t)h->width) | put32(f, (uint32_t)h->images) | put32(f, (uint32_t)h->batches) |
           put32(f, (uint32_t)h->per_batch);
    return bad ? hecnn_fail(HECNN_ERR_IO, "cannot write the batch file header") : HECNN_OK;
}

hecnn_status hecnn_vr_file_read_header(FILE *f, const ckks_context *ctx, hecnn_vr_file_kind kind, hecnn_vr_file_header *h)
{
    if (!f || !ctx || !h) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL argument");
    uint8_t head[12];
    uint32_t v[8];
    const hecnn_status st = file_header_check(head, fread(head, 1, sizeof head, f), &VRB_FORMAT, NULL);
    if (st) return st;
    v[0] = VRB_VERSION;
    for (int i = 1; i < 8; i++)
        if (get32(f, &v[i])) return hecnn_fail(HECNN_ERR_BAD_FORMAT, "batch file truncated in its header");
    if (v[1] != (uint32_t)kind)
        return hecnn_fail(HECNN_ERR_BAD_FORMAT, "batch file holds %s, expected %s", v[1] == HECNN_VR_FILE_IMAGES ? "images" : "scores",
                          kind == HECNN_VR_FILE_IMAGES ? "encrypted images" : "encrypted scores");
    if (((uint64_t)v[3] << 32 | v[2]) != ckks_context_param_id(ctx))
        return hecnn_fail(HECNN_ERR_PARAMS_MISMATCH, "the ciphertexts were made under other CKKS parameters");
    const size_t slots = ckks_context_max_slots(ctx);
    if (v[4] == 0 || (v[4] & (v[4] - 1)) || v[4] > slots) return hecnn_fail(HECNN_ERR_BAD_FORMAT, "row width %u", v[4]);
    const size_t rows = slots / v[4];
    if (v[6] == 0 || v[7] == 0 || v[7] > 4096 || v[5] > (uint64_t)v[6] * rows || v[5] + rows <= (uint64_t)v[6] * rows)
        return hecnn_fail(HECNN_ERR_BAD_FORMAT, "%u images in %u batches of %zu rows, %u ciphertexts each: inconsistent", v[5], v[6],
                          rows, v[7]);
    /* A regular file must hold what the header claims before anyone allocates by its counts: each
     * ciphertext takes at least 96 + N bytes (level 0, seeded, a byte per coefficient). */
    struct stat sb;
    const long pos = ftell(f);
    if (pos >= 0 && fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode)) {
        const uint64_t need = (uint64_t)v[6] * v[7] * (96 + (uint64_t)ckks_context_n(ctx));
        const uint64_t have = (uint64_t)sb.st_size > (uint64_t)pos ? (uint64_t)sb.st_size - (uint64_t)pos : 0;
        if (need > have)
            return hecnn_fail(HECNN_ERR_BAD_FORMAT,
                              "the header claims %u batches of %u ciphertexts, at least %llu bytes, but %llu follow it: "
                              "truncated, or the counts were altered",
                              v[6], v[7], (unsigned long long)need, (unsigned long long)have);
    }
    *h = (hecnn_vr_file_header){.kind = kind, .width = v[4], .images = v[5], .batches = v[6], .per_batch = v[7]};
    return HECNN_OK;
}

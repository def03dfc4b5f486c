/* The one file-header routine (src/util/fileheader.h): the bytes each format always had, and the
 * same refusals in every format (a wrong magic, a short header, an earlier build's version, an
 * unknown version). */
#include <string.h>

#include "common/check.h"
#include "hecnn/hecnn.h"
#include "util/fileheader.h"

static const file_format SHORT = {.magic = "HECNN", .magic_bytes = 6, .version_bytes = 2, .version = 3, .oldest = 1,
                                  .what = "a hecnn object", .name = "object format"};
static const file_format LONG = {.magic = "HECNNGRF", .magic_bytes = 8, .version_bytes = 4, .version = 1,
                                 .what = "a hecnn graph file", .name = "graph file"};

static int refused(const uint8_t *b, size_t have, const file_format *f, const char *old, const char *says)
{
    return file_header_check(b, have, f, old) == HECNN_ERR_BAD_FORMAT && strstr(hecnn_last_error_detail(), says) != NULL;
}

int main(void)
{
    uint8_t b[16];
    memset(b, 0xee, sizeof b);
    CHECK(file_header_bytes(&SHORT) == 8 && file_header_bytes(&LONG) == 12);
    file_header_put(b, &SHORT);
    CHECK(!memcmp(b, "HECNN\0\3\0", 8) && b[8] == 0xee); /* the magic's NUL, 16-bit version 3, nothing more */
    CHECK(file_header_check(b, 8, &SHORT, NULL) == HECNN_OK);
    CHECK(refused(b, 7, &SHORT, NULL, "object format truncated in its header"));
    CHECK(refused(b, 5, &SHORT, NULL, "not a hecnn object (bad magic)"));
    b[5] = 1; /* the NUL belongs to the magic */
    CHECK(refused(b, 8, &SHORT, NULL, "bad magic"));
    b[5] = 0;
    b[6] = 2; /* an earlier build's version: said so, with what changed */
    CHECK(refused(b, 8, &SHORT, " (checksums); write the object again",
                  "object format version 2, written by an earlier build: this build reads version 3 (checksums); write the object again"));
    CHECK(refused(b, 8, &SHORT, NULL, "version 3; write it again"));
    b[6] = 0; /* below the oldest known, and above this build's */
    CHECK(refused(b, 8, &SHORT, NULL, "object format version 0, this build reads 3"));
    b[6] = 4;
    CHECK(refused(b, 8, &SHORT, NULL, "object format version 4, this build reads 3"));

    file_header_put(b, &LONG);
    CHECK(!memcmp(b, "HECNNGRF\1\0\0\0", 12));
    CHECK(file_header_check(b, 12, &LONG, NULL) == HECNN_OK);
    CHECK(refused(b, 11, &LONG, NULL, "graph file truncated in its header"));
    b[0] = 'X';
    CHECK(refused(b, 12, &LONG, NULL, "not a hecnn graph file (bad magic)"));
    b[0] = 'H';
    b[11] = 1; /* no earlier versions known: a plain refusal */
    CHECK(refused(b, 12, &LONG, NULL, "graph file version 16777217, this build reads 1"));
    return check_summary();
}

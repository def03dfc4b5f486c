/* libFuzzer harness for the service's upload parser (tools/serve/serve_store.c, compiled in): the
 * input is fed as one upload, split at a point the input's first byte chooses (the parser must not
 * care how the body arrives). Whatever it decides is consistent: an accepted bundle has members
 * with allowed names, sizes within the limit, none a secret key, each in a temporary file of
 * exactly its size; a refusal carries a 4xx status and a reason; freeing leaves the temporary
 * folder empty.
 *
 * Seeds (HECNN_FUZZ_SEED_DIR): a bundle of two members, an empty bundle, a secret key member. */
#include <dirent.h>
#include <sys/stat.h>

#include "fuzz_common.h"
#include "serve.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const allowed[] = {"params.hecnn", "eval.keys", "boot.keys", NULL};
static char tmpdir[64];


static size_t put(uint8_t *p, const char *name, const uint8_t *data, size_t n)
{
    size_t k = 0;
    p[k++] = (uint8_t)strlen(name);
    memcpy(p + k, name, strlen(name));
    k += strlen(name);
    for (int i = 0; i < 8; i++) p[k++] = (uint8_t)((uint64_t)n >> (8 * i));
    memcpy(p + k, data, n);
    return k + n;
}

static void seed(const char *name, const uint8_t *b, size_t n)
{
    uint8_t *copy = malloc(n + 1); /* the first byte chooses the split */
    if (!copy) abort();
    copy[0] = 5;
    memcpy(copy + 1, b, n);
    fz_buf out = {.data = (char *)copy, .len = n + 1};
    fz_seed_file(name, &out);
    free(copy);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/hecnn-fuzz-bundle-XXXXXX");
    if (!mkdtemp(tmpdir)) abort();
    uint8_t b[512], obj[40];
    for (size_t i = 0; i < sizeof obj; i++) obj[i] = (uint8_t)(i * 13);
    memcpy(obj, "HECNN\0\3\0", 8);
    obj[8] = 1, obj[9] = 0;
    size_t n = 8;
    memcpy(b, BUNDLE_MAGIC, 8);
    n += put(b + n, "params.hecnn", obj, sizeof obj);
    obj[8] = 6;
    n += put(b + n, "eval.keys", obj, sizeof obj);
    b[n++] = 0;
    seed("two_members", b, n);
    seed("empty", b, 8);
    b[8 + 1 + 12 + 8 + 8] = 4; /* the first member's object type: a secret key */
    seed("secret_key", b, n);
    return 0;
}

static size_t entries(void)
{
    DIR *d = opendir(tmpdir);
    size_t n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const size_t split = size > 1 ? data[0] % size : 1;
    data++, size--;
    bundle b;
    fz_check(bundle_init(&b, tmpdir, allowed, 4096) == 0, "init failed");
    int rc = 0;
    if (split && split <= size) rc = bundle_feed(&b, data, split - 1);
    if (!rc) rc = bundle_feed(&b, data + (split ? split - 1 : 0), size - (split ? split - 1 : 0));
    uint8_t digest[32];
    if (!rc) rc = bundle_finish(&b, digest);
    if (rc) {
        fz_check(b.http_status >= 400 && b.http_status < 500, "a refusal without a 4xx status");
        fz_check(b.err[0] != 0, "a refusal without a reason");
    } else {
        for (size_t i = 0; i < b.n; i++) {
            const bundle_member *m = &b.m[i];
            bool named = false;
            for (size_t k = 0; allowed[k]; k++) named |= !strcmp(allowed[k], m->name);
            fz_check(named, "a member with a name not allowed");
            fz_check(m->size <= 4096, "a member over the limit");
            fz_check(!(m->head_n >= 10 && !memcmp(m->head, "HECNN\0", 6) && m->head[8] == 4 && m->head[9] == 0),
                     "a secret key accepted");
            struct stat st;
            fz_check(m->tmp && stat(m->tmp, &st) == 0 && (uint64_t)st.st_size == m->size, "a member's file is not its size");
        }
    }
    bundle_free(&b);
    fz_check(entries() == 0, "temporary files left behind");
    return 0;
}

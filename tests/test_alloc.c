/* The allocator: 64-byte alignment, overflow checks, and the large-block cache (best-fit reuse
 * with at most a quarter of slack, wiping frees that stay wiped in the cache). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "util/alloc.h"

#define MIB ((size_t)1 << 20)

static int all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++) acc |= p[i];
    return acc == 0;
}

int main(void)
{
    setenv("HECNN_ALLOC_CACHE_MB", "16", 1); /* read at the first large allocation */
    const size_t sizes[] = {1, 63, 64, 1000, 65536, MIB + 8};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = hecnn_alloc(sizes[i]);
        CHECK_MSG(p && (uintptr_t)p % 64 == 0, "%zu bytes: %p", sizes[i], p);
        memset(p, 1, sizes[i]);
        hecnn_free(p);
    }
    CHECK(hecnn_alloc(SIZE_MAX) == NULL);
    CHECK(hecnn_alloc(SIZE_MAX - 32) == NULL);
    CHECK(hecnn_calloc(SIZE_MAX / 2, 4) == NULL);
    hecnn_free(NULL);

    /* a freed large block serves a request it holds with at most a quarter to spare */
    uint8_t *a = hecnn_alloc(MIB);
    REQUIRE(a);
    hecnn_free(a);
    uint8_t *b = hecnn_alloc(MIB - 4096);
    CHECK_MSG(b == a, "a 1 MiB block serves 1 MiB - 4 KiB");
    hecnn_free(b);
    uint8_t *c = hecnn_alloc(MIB / 2);
    CHECK_MSG(c && c != a, "a 1 MiB block does not serve 512 KiB");
    /* the best fit among cached blocks: a (1 MiB) and d (1.2 MiB) */
    uint8_t *d = hecnn_alloc(MIB + MIB / 5);
    REQUIRE(d);
    hecnn_free(d);
    uint8_t *e = hecnn_alloc(MIB - MIB / 20);
    CHECK_MSG(e == a, "0.95 MiB goes to the 1 MiB block");
    uint8_t *f = hecnn_alloc(MIB + MIB / 10);
    CHECK_MSG(f == d, "1.1 MiB goes to the 1.2 MiB block");
    hecnn_free(c);
    hecnn_free(f);

    /* a wiping free leaves the cached block wiped */
    memset(e, 0x5a, MIB - MIB / 20);
    hecnn_secure_free(e, MIB - MIB / 20);
    uint8_t *g = hecnn_alloc(MIB - MIB / 20);
    CHECK(g == e && all_zero(g, MIB - MIB / 20));
    hecnn_free(g);
    hecnn_alloc_release_cache();
    return check_summary();
}

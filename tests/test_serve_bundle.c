/* The service's upload parser (tools/serve/serve_store.c): a bundle fed in any chunking gives the
 * same members and digest; every truncation, every mutation and a secret key are refused with a
 * 4xx status, never a crash; nothing is left in the temporary folder once a bundle is freed. */
#include <dirent.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/check.h"
#include "serve.h"

static const char *const allowed[] = {"params.hecnn", "eval.keys", NULL};
static char tmpdir[64];

static size_t put_member(uint8_t *p, const char *name, const uint8_t *data, size_t n)
{
    size_t k = 0;
    p[k++] = (uint8_t)strlen(name);
    memcpy(p + k, name, strlen(name));
    k += strlen(name);
    for (int i = 0; i < 8; i++) p[k++] = (uint8_t)((uint64_t)n >> (8 * i));
    memcpy(p + k, data, n);
    return k + n;
}

/* an object header of type t ("HECNN\0", version 3) followed by n - 10 bytes of filler */
static void object(uint8_t *p, size_t n, uint8_t type)
{
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(i * 7 + type);
    memcpy(p, "HECNN\0\3\0", 8);
    p[8] = type, p[9] = 0;
}

static size_t entries(void)
{
    DIR *d = opendir(tmpdir);
    size_t n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    if (d) closedir(d);
    return n;
}

/* Feed in chunks of 1..max_chunk bytes; 0 if the bundle is accepted, else its HTTP status. */
static int feed(const uint8_t *b, size_t n, size_t max_chunk, uint8_t digest[32], bundle *out, bool keep)
{
    bundle bd;
    CHECK(bundle_init(&bd, tmpdir, allowed, 1 << 20) == 0);
    int status = 0;
    for (size_t off = 0; off < n && !status;) {
        size_t k = 1 + (size_t)(test_rng_u64() % max_chunk);
        if (k > n - off) k = n - off;
        if (bundle_feed(&bd, b + off, k)) status = bd.http_status;
        off += k;
    }
    if (!status && bundle_finish(&bd, digest)) status = bd.http_status;
    if (keep && !status) *out = bd;
    else bundle_free(&bd);
    return status;
}

static bool file_is(const char *path, const uint8_t *data, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    uint8_t buf[4096];
    const size_t got = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return got == n && !memcmp(buf, data, n);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/hecnn-bundle-XXXXXX");
    REQUIRE(mkdtemp(tmpdir));
    test_rng_seed(11);
    uint8_t params[300], keys[2000], sk[600], b[4096], d[32], want[32];
    object(params, sizeof params, 1);
    object(keys, sizeof keys, 7);
    object(sk, sizeof sk, 4);
    size_t n = 8;
    memcpy(b, BUNDLE_MAGIC, 8);
    n += put_member(b + n, "params.hecnn", params, sizeof params);
    n += put_member(b + n, "eval.keys", keys, sizeof keys);
    b[n++] = 0;
    unsigned len = 0;
    EVP_Digest(b, n, want, &len, EVP_sha256(), NULL);

    /* any chunking: the same members and digest */
    for (size_t chunk = 1; chunk <= n; chunk = chunk * 3 + 1) {
        bundle bd;
        CHECK(feed(b, n, chunk, d, &bd, true) == 0);
        CHECK(!memcmp(d, want, 32));
        const bundle_member *p = bundle_get(&bd, "params.hecnn"), *k = bundle_get(&bd, "eval.keys");
        CHECK(p && k && p->size == sizeof params && k->size == sizeof keys && p->head_n == 10 && p->head[8] == 1);
        CHECK(p && k && file_is(p->tmp, params, sizeof params) && file_is(k->tmp, keys, sizeof keys));
        CHECK(!bundle_get(&bd, "plan"));
        bundle_free(&bd);
        CHECK(entries() == 0);
    }
    /* truncations (every one in the headers, then every 37th: each complete member costs an fsync)
     * are refused as bad requests */
    int bad = 0, tried = 0;
    for (size_t cut = 0; cut < n; cut += cut < 64 || cut > n - 64 ? 1 : 37, tried++) bad += feed(b, cut, 64, d, NULL, false) == 400;
    CHECK_MSG(bad == tried, "%d of %d truncations refused with 400", bad, tried);
    CHECK(entries() == 0);
    /* trailing bytes, a raw object, a secret key member, an oversized or unknown member */
    b[n] = 0;
    CHECK(feed(b, n + 1, 64, d, NULL, false) == 400);
    CHECK(feed(sk, sizeof sk, 64, d, NULL, false) == 422);
    CHECK(feed(params, sizeof params, 64, d, NULL, false) == 400);
    uint8_t s2[4096];
    size_t m = 8;
    memcpy(s2, BUNDLE_MAGIC, 8);
    m += put_member(s2 + m, "params.hecnn", params, sizeof params);
    m += put_member(s2 + m, "eval.keys", sk, sizeof sk);
    s2[m++] = 0;
    for (size_t chunk = 1; chunk < 40; chunk += 13) CHECK(feed(s2, m, chunk, d, NULL, false) == 422);
    s2[8 + 1 + 12] = 0xff, s2[8 + 1 + 12 + 7] = 0x7f; /* params.hecnn's size: 2^63 + ... */
    CHECK(feed(s2, m, 64, d, NULL, false) == 413);
    m = 8;
    m += put_member(s2 + m, "secret.key", params, sizeof params);
    CHECK(feed(s2, m, 64, d, NULL, false) == 400);
    m = 8;
    m += put_member(s2 + m, "params.hecnn", params, 10);
    m += put_member(s2 + m, "params.hecnn", params, 10);
    CHECK(feed(s2, m, 64, d, NULL, false) == 400);
    CHECK(entries() == 0);
    /* mutations: a status or acceptance, never a crash, never a leftover file */
    int refused = 0, accepted = 0;
    enum { MUTATIONS = 400 };
    for (int it = 0; it < MUTATIONS; it++) {
        uint8_t c[4096];
        memcpy(c, b, n);
        const int flips = 1 + (int)(test_rng_u64() % 4);
        for (int f = 0; f < flips; f++) c[test_rng_u64() % n] ^= (uint8_t)(1 + test_rng_u64() % 255);
        const int st = feed(c, n, 1 + (size_t)(test_rng_u64() % 200), d, NULL, false);
        if (st == 0) accepted++;
        else if (st >= 400 && st < 500) refused++;
    }
    CHECK_MSG(refused + accepted == MUTATIONS, "%d refused with 4xx, %d accepted", refused, accepted);
    CHECK(refused > 0);
    CHECK(entries() == 0);
    rmdir(tmpdir);
    return check_summary();
}

/* NTT: every SIMD path bit-identical to portable, INTT(NTT(a)) = a, NTT product = schoolbook.
 * Also: constant inputs (all 0, all q-1), primes at the kernels' bounds (just under 2^50, the
 * IFMA52 limit, just over it, just under 2^62), n at the SIMD fallback boundaries and up to
 * 2^17, no writes outside the array, and the HECNN_FORCE_ISA override. */
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "math/ntt.h"
#include "math/primes.h"
#include "util/alloc.h"

static void schoolbook_negacyclic(uint64_t *out, const uint64_t *a, const uint64_t *b, size_t n,
                                  const modulus *m)
{
    memset(out, 0, n * sizeof *out);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            uint64_t p = mul_mod(a[i], b[j], m);
            size_t k = i + j;
            if (k < n) out[k] = add_mod(out[k], p, m->q);
            else out[k - n] = sub_mod(out[k - n], p, m->q);
        }
}

static void check_prime(uint64_t q, unsigned log_n, int with_schoolbook)
{
    ntt_table t;
    size_t n = (size_t)1 << log_n;
    CHECK(ntt_table_init(&t, q, log_n) == 0);
    uint64_t *a = hecnn_alloc(n * 8), *b = hecnn_alloc(n * 8), *ref = hecnn_alloc(n * 8),
             *work = hecnn_alloc(n * 8), *prod = hecnn_alloc(n * 8);
    for (size_t i = 0; i < n; i++) {
        a[i] = test_rng_u64() % q;
        b[i] = test_rng_u64() % q;
    }
    /* the extremes of the input range too */
    a[0] = q - 1;
    a[n - 1] = 0;

    memcpy(ref, a, n * 8);
    ntt_forward_portable(&t, ref);
    for (int l = 0; l < SIMD_LEVEL_COUNT; l++) {
        const ntt_kernels *k = ntt_kernels_for((simd_level)l);
        if (!k) continue;
        memcpy(work, a, n * 8);
        k->forward(&t, work);
        CHECK_MSG(!memcmp(work, ref, n * 8), "forward %s differs from portable (q=%llu, n=%zu)", k->name,
                  (unsigned long long)q, n);
        int in_range = 1;
        for (size_t i = 0; i < n; i++) in_range &= work[i] < q;
        CHECK_MSG(in_range, "forward %s output not in [0,q)", k->name);
        k->inverse(&t, work);
        CHECK_MSG(!memcmp(work, a, n * 8), "inverse(forward) != id for %s (q=%llu, n=%zu)", k->name,
                  (unsigned long long)q, n);
        /* inverse alone vs portable inverse */
        memcpy(work, ref, n * 8);
        memcpy(prod, ref, n * 8);
        k->inverse(&t, work);
        ntt_inverse_portable(&t, prod);
        CHECK_MSG(!memcmp(work, prod, n * 8), "inverse %s differs from portable", k->name);
    }
    if (with_schoolbook) {
        schoolbook_negacyclic(prod, a, b, n, &t.mod);
        memcpy(work, a, n * 8);
        memcpy(ref, b, n * 8);
        ntt_forward(&t, work);
        ntt_forward(&t, ref);
        for (size_t i = 0; i < n; i++) work[i] = mul_mod(work[i], ref[i], &t.mod);
        ntt_inverse(&t, work);
        CHECK_MSG(!memcmp(work, prod, n * 8), "NTT product != schoolbook (q=%llu, n=%zu)",
                  (unsigned long long)q, n);
    }
    hecnn_free(a);
    hecnn_free(b);
    hecnn_free(ref);
    hecnn_free(work);
    hecnn_free(prod);
    ntt_table_free(&t);
}

/* Every available path on a fixed input, forward and inverse, against portable, with guard
 * words around the array to catch out-of-bounds writes. */
#define GUARD 16
static void check_fixed_input(const ntt_table *t, uint64_t value)
{
    const size_t n = t->n;
    const uint64_t q = t->mod.q, canary = 0xdeadbeefcafef00dull;
    uint64_t *buf = hecnn_alloc((n + 2 * GUARD) * 8), *ref = hecnn_alloc(n * 8), *iref = hecnn_alloc(n * 8);
    CHECK(buf && ref && iref);
    if (!buf || !ref || !iref) {
        hecnn_free(buf);
        hecnn_free(ref);
        hecnn_free(iref);
        return;
    }
    uint64_t *work = buf + GUARD;
    for (size_t i = 0; i < n; i++) ref[i] = iref[i] = value;
    ntt_forward_portable(t, ref);
    ntt_inverse_portable(t, iref);
    for (int l = 0; l < SIMD_LEVEL_COUNT; l++) {
        const ntt_kernels *k = ntt_kernels_for((simd_level)l);
        if (!k) continue;
        for (int dir = 0; dir < 2; dir++) {
            for (size_t i = 0; i < n + 2 * GUARD; i++) buf[i] = canary;
            for (size_t i = 0; i < n; i++) work[i] = value;
            (dir ? k->inverse : k->forward)(t, work);
            CHECK_MSG(!memcmp(work, dir ? iref : ref, n * 8), "%s %s of constant %llu differs (q=%llu, n=%zu)",
                      k->name, dir ? "inverse" : "forward", (unsigned long long)value, (unsigned long long)q, n);
            int guard_ok = 1;
            for (size_t i = 0; i < GUARD; i++) guard_ok &= buf[i] == canary && work[n + i] == canary;
            CHECK_MSG(guard_ok, "%s %s wrote outside the array (n=%zu)", k->name, dir ? "inverse" : "forward", n);
        }
    }
    hecnn_free(buf);
    hecnn_free(ref);
    hecnn_free(iref);
}

static void check_edges(uint64_t q, unsigned log_n)
{
    ntt_table t;
    CHECK_MSG(ntt_table_init(&t, q, log_n) == 0, "table init (q=%llu, log_n=%u)", (unsigned long long)q, log_n);
    check_fixed_input(&t, 0);
    check_fixed_input(&t, q - 1);
    check_fixed_input(&t, 1);
    ntt_table_free(&t);
}

/* HECNN_FORCE_ISA lowers the active level to the named one when the CPU has it. */
static void check_force_isa(void)
{
    const ntt_kernels *active = ntt_kernels_active();
    CHECK(active != NULL && active->level <= simd_cpu_level());
    const char *force = getenv("HECNN_FORCE_ISA");
    printf("active NTT kernels: %s (cpu level %d, HECNN_FORCE_ISA=%s)\n", active->name, (int)simd_cpu_level(),
           force ? force : "(unset)");
    if (!force || !*force) {
        CHECK(active->level == simd_cpu_level());
        return;
    }
    for (int l = 0; l < SIMD_LEVEL_COUNT; l++) {
        const ntt_kernels *k = ntt_kernels_for((simd_level)l);
        if (k && !strcmp(k->name, force))
            CHECK_MSG(active->level == (simd_level)l, "HECNN_FORCE_ISA=%s but %s is active", force, active->name);
    }
}

int main(void)
{
    test_rng_seed(1);
    CHECK(is_prime_u64(0xffffffff00000001ull));
    CHECK(!is_prime_u64(0xffffffff00000003ull));
    CHECK(!is_prime_u64(3215031751ull)); /* strong pseudoprime to bases 2,3,5,7 */
    check_force_isa();
    static const unsigned bits[] = {30, 40, 49, 50, 51, 55, 60, 61, 62};
    for (unsigned log_n = 3; log_n <= 16; log_n++) {
        uint64_t two_n = (uint64_t)2 << log_n;
        for (size_t b = 0; b < sizeof bits / sizeof bits[0]; b++) {
            uint64_t q = prime_below((uint64_t)1 << bits[b], two_n, NULL, 0);
            if (!q) continue;
            CHECK(q % two_n == 1 && is_prime_u64(q) && q < ((uint64_t)1 << bits[b]));
            check_prime(q, log_n, log_n <= 10);
        }
    }
    /* an uneven prime just under 2^50, the IFMA bound */
    check_prime(prime_below((uint64_t)1 << 50, (uint64_t)1 << 17, NULL, 0), 16, 0);
    /* the largest size */
    check_prime(prime_below((uint64_t)1 << 50, (uint64_t)1 << 18, NULL, 0), 17, 0);
    check_prime(prime_below((uint64_t)1 << 62, (uint64_t)1 << 18, NULL, 0), 17, 0);
    /* constant inputs and guard words: small n around the SIMD fallbacks (8 lanes x 2, 4 x 2),
     * a size that is blocked for cache, and the largest; primes at the multiplication bounds */
    static const unsigned edge_bits[] = {50, 51, 62};
    static const unsigned edge_log_n[] = {3, 4, 5, 6, 12, 13, 17};
    for (size_t b = 0; b < sizeof edge_bits / sizeof edge_bits[0]; b++)
        for (size_t i = 0; i < sizeof edge_log_n / sizeof edge_log_n[0]; i++) {
            uint64_t q = prime_below((uint64_t)1 << edge_bits[b], (uint64_t)2 << edge_log_n[i], NULL, 0);
            CHECK(q != 0);
            if (q) check_edges(q, edge_log_n[i]);
        }
    return check_summary();
}

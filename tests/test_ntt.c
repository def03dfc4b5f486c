/* NTT: every SIMD path bit-identical to portable, INTT(NTT(a)) = a, NTT product = schoolbook. */
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

int main(void)
{
    test_rng_seed(1);
    CHECK(is_prime_u64(0xffffffff00000001ull));
    CHECK(!is_prime_u64(0xffffffff00000003ull));
    CHECK(!is_prime_u64(3215031751ull)); /* strong pseudoprime to bases 2,3,5,7 */
    static const unsigned bits[] = {30, 40, 49, 50, 55, 60, 61};
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
    return check_summary();
}

/* NTT benchmark: median single-thread time of the forward and inverse negacyclic NTT for
 * n = 2^15 and 2^16, a ~50-bit prime (< 2^50, the IFMA52 range) and a ~60-bit prime, for every
 * SIMD level this CPU supports. Usage: bench_ntt [runs] (default 200, after a warm-up). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "math/ntt.h"
#include "math/primes.h"
#include "util/alloc.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_ms(void (*fn)(const ntt_table *, uint64_t *), const ntt_table *t, uint64_t *a,
                        double *samples, int runs)
{
    for (int i = 0; i < 20; i++) fn(t, a); /* warm-up: caches, clocks, page faults */
    for (int i = 0; i < runs; i++) {
        double t0 = now_ms();
        fn(t, a);
        samples[i] = now_ms() - t0;
    }
    qsort(samples, (size_t)runs, sizeof *samples, cmp_double);
    return samples[runs / 2];
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 200;
    if (runs < 1) runs = 1;
    double *samples = malloc((size_t)runs * sizeof *samples);
    if (!samples) return 1;
    static const unsigned log_ns[] = {16, 15};
    static const unsigned bits[] = {50, 60};
    printf("%-6s %-4s %-11s %12s %12s\n", "n", "bits", "path", "forward_ms", "inverse_ms");
    for (size_t i = 0; i < sizeof log_ns / sizeof log_ns[0]; i++) {
        size_t n = (size_t)1 << log_ns[i];
        for (size_t b = 0; b < sizeof bits / sizeof bits[0]; b++) {
            uint64_t q = prime_below((uint64_t)1 << bits[b], 2 * (uint64_t)n, NULL, 0);
            ntt_table t;
            if (!q || ntt_table_init(&t, q, log_ns[i]) != 0) {
                fprintf(stderr, "table init failed (n=%zu, %u bits)\n", n, bits[b]);
                return 1;
            }
            uint64_t *a = hecnn_alloc(n * sizeof *a);
            if (!a) return 1;
            uint64_t x = 0x9e3779b97f4a7c15ull;
            for (size_t j = 0; j < n; j++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                a[j] = x % q;
            }
            for (int l = 0; l < SIMD_LEVEL_COUNT; l++) {
                const ntt_kernels *k = ntt_kernels_for((simd_level)l);
                if (!k) continue;
                double f = median_ms(k->forward, &t, a, samples, runs);
                double v = median_ms(k->inverse, &t, a, samples, runs);
                const char *note = (l == SIMD_AVX512IFMA && !t.fwd_shoup52) ? " (q>=2^50: avx512 kernel)" : "";
                printf("2^%-4u %-4u %-11s %12.4f %12.4f%s\n", log_ns[i], bits[b], k->name, f, v, note);
                fflush(stdout);
            }
            hecnn_free(a);
            ntt_table_free(&t);
        }
    }
    free(samples);
    return 0;
}

#include "util_bench.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

double bench_seconds(clockid_t clock)
{
    struct timespec t;
    clock_gettime(clock, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

double bench_cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec +
           1e-6 * (double)ru.ru_stime.tv_usec;
}

double bench_peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *v, size_t n)
{
    if (!n) return 0;
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int bench_parse_options(bench_options *o, int argc, char **argv, const char *name, void (*usage)(FILE *))
{
    for (int i = 1; i < argc; i++) {
        const bool has_value = i + 1 < argc;
        if (!strcmp(argv[i], "--json")) o->json = true;
        else if (!strcmp(argv[i], "--cpu-time")) o->clock = CLOCK_PROCESS_CPUTIME_ID;
        else if (!strcmp(argv[i], "--whole-keys")) o->whole_keys = true;
        else if (!strcmp(argv[i], "--pair")) o->pair = true;
        else if (!strcmp(argv[i], "--threads") && has_value) o->threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && has_value) o->reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--preset") && has_value) o->preset = argv[++i];
        else if (!strcmp(argv[i], "--log-slots") && has_value) o->log_slots = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "hecnn %s: unknown option or missing value '%s'\n", name, argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (o->reps < 1 || o->reps > 1000 || o->threads < 0 || o->threads > 1024 || o->log_slots < 0 || o->log_slots > 20) {
        fprintf(stderr, "hecnn %s: --reps must be 1..1000, --threads 0..1024 and --log-slots 1..20 (0: the preset's)\n", name);
        usage(stderr);
        return 2;
    }
    return -1;
}

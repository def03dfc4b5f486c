/* Shared pieces of the benchmark commands (bench ckks | mnist | boot): clocks, medians, peak
 * memory, and the options every benchmark takes. */
#ifndef HECNN_TOOLS_UTIL_BENCH_H
#define HECNN_TOOLS_UTIL_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>

double bench_seconds(clockid_t clock);      /* CLOCK_MONOTONIC or CLOCK_PROCESS_CPUTIME_ID */
double bench_cpu_seconds(void);             /* user + system time of the process, all threads */
double bench_peak_rss_mib(void);            /* getrusage's ru_maxrss */
double bench_median(double *v, size_t n);   /* sorts v */

/* --json, --threads T, --reps R, --preset NAME, --cpu-time (process CPU time instead of wall
 * clock: steadier on a busy machine, meaningful for one thread), --help. */
typedef struct bench_options {
    bool json;
    int threads;           /* 0: run at 1 and 2 threads */
    int reps;
    clockid_t clock;
    const char *preset;    /* NULL unless given */
    bool whole_keys;       /* --whole-keys (bench boot): keys with their uniform halves, unpacked */
    bool pair;             /* --pair (bench boot): also two real ciphertexts through one bootstrap */
    int log_slots;         /* --log-slots L (bench boot): 2^L slots instead of the preset's (0: the preset's) */
} bench_options;

/* Returns -1 to go on, else the exit code (0 after --help, 2 after a usage error, reported). */
int bench_parse_options(bench_options *o, int argc, char **argv, const char *name, void (*usage)(FILE *));
static inline const char *bench_clock_name(const bench_options *o)
{
    return o->clock == CLOCK_MONOTONIC ? "wall" : "cpu";
}

#endif

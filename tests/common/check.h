/* Minimal test harness: CHECK records failures and goes on; TEST_MAIN prints the summary line
 * "N passed, N failed" and exits non-zero on any failure. */
#ifndef HECNN_TESTS_CHECK_H
#define HECNN_TESTS_CHECK_H

#include <stdio.h>
#include <stdlib.h>

extern int check_passed, check_failed;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (cond) {                                                                 \
            check_passed++;                                                         \
        } else {                                                                    \
            check_failed++;                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                           \
    } while (0)

#define CHECK_MSG(cond, ...)                                                  \
    do {                                                                      \
        if (cond) {                                                           \
            check_passed++;                                                   \
        } else {                                                              \
            check_failed++;                                                   \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                     \
            fputc('\n', stderr);                                              \
        }                                                                     \
    } while (0)

/* Abort the test program when a precondition of the remaining checks fails. */
#define REQUIRE(cond)                                                                  \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #cond); \
            check_failed++;                                                            \
            return check_summary();                                                    \
        }                                                                              \
    } while (0)

/* REQUIRE for functions returning void: skip the rest of the function. */
#define REQUIRE_VOID(cond)                                                             \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #cond); \
            check_failed++;                                                            \
            return;                                                                    \
        }                                                                              \
    } while (0)

int check_summary(void);

/* Deterministic test randomness (xoshiro256**), not for keys. */
void test_rng_seed(unsigned long long seed);
unsigned long long test_rng_u64(void);
double test_rng_uniform(double lo, double hi);

#endif

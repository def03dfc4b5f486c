/* NTT-friendly prime generation. */
#ifndef HECNN_MATH_PRIMES_H
#define HECNN_MATH_PRIMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Deterministic Miller–Rabin for all 64-bit integers. */
bool is_prime_u64(uint64_t n);

/* The largest prime p < upper with p = 1 mod 2n that is not in avoid[0..n_avoid); 0 if none
 * exists above 2^(bits(upper)-2). */
uint64_t prime_below(uint64_t upper, uint64_t two_n, const uint64_t *avoid, size_t n_avoid);

/* A primitive 2n-th root of unity mod q (q = 1 mod 2n), the smallest such root for determinism. */
uint64_t primitive_root_2n(uint64_t q, uint64_t two_n);

#endif

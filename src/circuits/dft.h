/* The homomorphic DFTs of bootstrapping, factorized into sparse-diagonal matrices.
 *
 * The encoder maps coefficient pairs v (n complex values) to slots z = F v with
 * F = S_n ... S_4 S_2 B (B: bit reversal, S_len: radix-2 butterflies with the twiddles of the
 * special FFT, diagonals at offsets 0 and +-len/2). CoeffsToSlots evaluates
 * S_2^-1 ... S_n^-1 z = B v (no bit reversal: EvalMod is slot-wise) and SlotsToCoeffs
 * evaluates S_n ... S_2 (B v) = F v. Consecutive stages are merged into one matrix per level;
 * each stage of the inverse carries its factor 1/2 so that the product is exactly F^-1 B. */
#ifndef HECNN_CIRCUITS_DFT_H
#define HECNN_CIRCUITS_DFT_H

#include <complex.h>
#include <stdbool.h>
#include <stddef.h>

/* A matrix acting on vectors of `n` slots as out[j] = sum_k d[k][j] in[(j + k) mod n];
 * d[k] == NULL for absent offsets. */
/* Entries in long double: the bootstrapping transforms need about 2^-50 relative accuracy on
 * data whose magnitude is set by the integer part of ModRaise. */
typedef long double complex ldcomplex;
typedef struct diag_matrix {
    size_t n;
    ldcomplex **d;   /* n pointers */
} diag_matrix;

int diag_matrix_init(diag_matrix *m, size_t n);
void diag_matrix_free(diag_matrix *m);
size_t diag_matrix_count(const diag_matrix *m);
/* out = a b (apply b first); out must not alias a or b. 0 on success. */
int diag_matrix_mul(diag_matrix *out, const diag_matrix *a, const diag_matrix *b);
void diag_matrix_scale(diag_matrix *m, ldcomplex c);
void diag_matrix_apply(const diag_matrix *m, ldcomplex *out, const ldcomplex *in);
/* Offsets present, ascending; returns the count. */
size_t diag_matrix_offsets(const diag_matrix *m, size_t *out);

/* Butterfly stage S_len (forward) or its inverse with the 1/2 (inverse = true) on n slots (the
 * twiddles exp(2 pi i (5^j mod 4 len) / (4 len)) do not depend on the ring degree). */
int dft_stage(diag_matrix *m, size_t n, size_t len, bool inverse);

/* The factors of CoeffsToSlots (inverse = true) or SlotsToCoeffs, merged per level:
 * levels[i] stages in level i, in the order of application; sum(levels) = log2(n).
 * CoeffsToSlots applies S_n^-1 first; SlotsToCoeffs applies S_2 first. out[0..count). */
int dft_factors(diag_matrix *out, size_t n, bool inverse, const unsigned *levels, size_t count);

/* Reference transforms in doubles (the encoder's special FFT on n slots). */
void dft_reference_forward(size_t n, ldcomplex *v); /* coefficients -> slots */
void dft_reference_inverse(size_t n, ldcomplex *v); /* slots -> coefficients (with 1/n) */
/* The twiddles of every stage (len = 2, 4, .., n at offset len/2 - 1: n - 1 in all), and the
 * inverse with them precomputed. */
ldcomplex *dft_twiddles_all(size_t n);
void dft_reference_inverse_tw(size_t n, ldcomplex *v, const ldcomplex *tw_all);

#endif

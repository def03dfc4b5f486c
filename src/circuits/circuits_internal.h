/* Internal helpers shared by the files of src/circuits. */
#ifndef HECNN_CIRCUITS_INTERNAL_H
#define HECNN_CIRCUITS_INTERNAL_H

#include <complex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hecnn/circuits.h"
#include "util/error.h"

struct ckks_poly {
    size_t len;       /* coefficients allocated: degree + 1 at creation */
    double *c;        /* Chebyshev coefficients */
    double a, b;
};

/* ceil(log2(x)) for x >= 1. */
static inline unsigned clog2(size_t x)
{
    unsigned r = 0;
    while (((size_t)1 << r) < x) r++;
    return r;
}

static inline bool is_pow2(size_t x) { return x && !(x & (x - 1)); }

/* Chebyshev coefficients of f on [a, b] from its values at the d + 1 Chebyshev nodes. */
void cheb_interpolate(double *c, size_t d, ckks_real_fn f, void *arg, double a, double b);
/* Clenshaw: sum c_i T_i(y), y already mapped to [-1, 1]. */
double cheb_clenshaw(const double *c, size_t d, double y);

#endif

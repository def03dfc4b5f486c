/* Precision statistics: bits of precision = -log2 |error|, per part. */
#include <math.h>
#include <stdlib.h>

#include "ckks/internal.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* min, mean, median, max of the bits in v (sorted in place). */
static void summarize(double *v, size_t n, double *mn, double *mean, double *median, double *mx)
{
    qsort(v, n, sizeof *v, cmp_double);
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += v[i];
    *mn = v[0];
    *mx = v[n - 1];
    *mean = sum / (double)n;
    *median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double bits_of(double err)
{
    /* cap at 53 bits: an exact match carries no more than double precision */
    return err <= 0x1p-53 ? 53.0 : -log2(err);
}

hecnn_status ckks_precision(ckks_precision_stats *out, const double complex *want, const double complex *have, size_t n)
{
    if (!out || !want || !have || n == 0) return hecnn_fail(HECNN_ERR_INVALID_ARGUMENT, "NULL or empty input");
    double *re = hecnn_alloc(n * sizeof *re), *im = hecnn_alloc(n * sizeof *im);
    if (!re || !im) {
        hecnn_free(re);
        hecnn_free(im);
        return hecnn_fail(HECNN_ERR_NO_MEMORY, "precision");
    }
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double er = fabs(creal(want[i]) - creal(have[i])), ei = fabs(cimag(want[i]) - cimag(have[i]));
        if (er > worst || isnan(er)) worst = isnan(er) ? INFINITY : er;
        if (ei > worst || isnan(ei)) worst = isnan(ei) ? INFINITY : ei;
        re[i] = isnan(er) ? -INFINITY : bits_of(er);
        im[i] = isnan(ei) ? -INFINITY : bits_of(ei);
    }
    summarize(re, n, &out->min_bits_real, &out->mean_bits_real, &out->median_bits_real, &out->max_bits_real);
    summarize(im, n, &out->min_bits_imag, &out->mean_bits_imag, &out->median_bits_imag, &out->max_bits_imag);
    out->max_abs_error = worst;
    hecnn_free(re);
    hecnn_free(im);
    return HECNN_OK;
}

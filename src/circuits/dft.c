/* Sparse-diagonal factorization of the CKKS special FFT (see dft.h). */
#include "circuits/dft.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

int diag_matrix_init(diag_matrix *m, size_t n)
{
    m->n = n;
    m->d = hecnn_calloc(n, sizeof *m->d);
    return m->d ? 0 : -1;
}

void diag_matrix_free(diag_matrix *m)
{
    if (!m || !m->d) return;
    for (size_t k = 0; k < m->n; k++) hecnn_free(m->d[k]);
    hecnn_free(m->d);
    m->d = NULL;
}

size_t diag_matrix_count(const diag_matrix *m)
{
    size_t c = 0;
    for (size_t k = 0; k < m->n; k++) c += m->d[k] != NULL;
    return c;
}

size_t diag_matrix_offsets(const diag_matrix *m, size_t *out)
{
    size_t c = 0;
    for (size_t k = 0; k < m->n; k++)
        if (m->d[k]) {
            if (out) out[c] = k;
            c++;
        }
    return c;
}

static ldcomplex *diag_get(diag_matrix *m, size_t k)
{
    if (!m->d[k]) m->d[k] = hecnn_calloc(m->n, sizeof **m->d);
    return m->d[k];
}

int diag_matrix_mul(diag_matrix *out, const diag_matrix *a, const diag_matrix *b)
{
    const size_t n = a->n;
    if (diag_matrix_init(out, n)) return -1;
    /* (a b)[j] = sum_k a_k[j] (b in)[j + k] = sum_k sum_l a_k[j] b_l[j + k] in[j + k + l] */
    for (size_t k = 0; k < n; k++) {
        if (!a->d[k]) continue;
        for (size_t l = 0; l < n; l++) {
            if (!b->d[l]) continue;
            ldcomplex *c = diag_get(out, (k + l) % n);
            if (!c) {
                diag_matrix_free(out);
                return -1;
            }
            const ldcomplex *ak = a->d[k], *bl = b->d[l];
            for (size_t j = 0; j < n; j++) c[j] += ak[j] * bl[(j + k) % n];
        }
    }
    /* drop diagonals that cancelled exactly */
    for (size_t k = 0; k < n; k++) {
        if (!out->d[k]) continue;
        bool nz = false;
        for (size_t j = 0; j < n && !nz; j++) nz = out->d[k][j] != 0;
        if (!nz) {
            hecnn_free(out->d[k]);
            out->d[k] = NULL;
        }
    }
    return 0;
}

void diag_matrix_scale(diag_matrix *m, ldcomplex c)
{
    for (size_t k = 0; k < m->n; k++)
        if (m->d[k])
            for (size_t j = 0; j < m->n; j++) m->d[k][j] *= c;
}

void diag_matrix_apply(const diag_matrix *m, ldcomplex *out, const ldcomplex *in)
{
    const size_t n = m->n;
    for (size_t j = 0; j < n; j++) out[j] = 0;
    for (size_t k = 0; k < n; k++)
        if (m->d[k])
            for (size_t j = 0; j < n; j++) out[j] += m->d[k][j] * in[(j + k) % n];
}

/* w[j] = exp(2 pi i (5^j mod 4 len) / (4 len)), j < len / 2 */
static ldcomplex *twiddles(size_t len)
{
    const size_t m = 4 * len, h = len / 2;
    const long double pi = 3.141592653589793238462643383279502884L;
    ldcomplex *w = hecnn_alloc((h ? h : 1) * sizeof *w);
    if (!w) return NULL;
    size_t g = 1;
    for (size_t j = 0; j < h; j++) {
        long double a = 2 * pi * (long double)g / (long double)m;
        w[j] = cosl(a) + I * sinl(a);
        g = (g * 5) % m;
    }
    return w;
}

int dft_stage(diag_matrix *m, size_t n, size_t len, bool inverse)
{
    if (diag_matrix_init(m, n)) return -1;
    const size_t h = len / 2;
    ldcomplex *d0 = diag_get(m, 0), *dp = diag_get(m, h % n), *dm = diag_get(m, (n - h) % n);
    ldcomplex *tw = twiddles(len);
    if (!d0 || !dp || !dm || !tw) {
        hecnn_free(tw);
        diag_matrix_free(m);
        return -1;
    }
    for (size_t p = 0; p < n; p++) {
        const size_t r = p % len;
        const bool lower = r < h;
        const ldcomplex w = tw[lower ? r : r - h];
        if (!inverse) {
            /* lower: in[p] + w in[p + h]; upper: in[p - h] - w in[p] */
            if (lower) {
                d0[p] += 1;
                dp[p] += w;
            } else {
                d0[p] += -w;
                dm[p] += 1;
            }
        } else {
            /* lower: (in[p] + in[p + h]) / 2; upper: (in[p - h] - in[p]) conj(w) / 2 */
            if (lower) {
                d0[p] += 0.5L;
                dp[p] += 0.5L;
            } else {
                d0[p] += -0.5L * conjl(w);
                dm[p] += 0.5L * conjl(w);
            }
        }
    }
    hecnn_free(tw);
    return 0;
}

int dft_factors(diag_matrix *out, size_t n, bool inverse, const unsigned *levels, size_t count)
{
    size_t logn = 0;
    while (((size_t)1 << logn) < n) logn++;
    size_t total = 0;
    for (size_t i = 0; i < count; i++) total += levels[i];
    if (total != logn) return -1;
    /* stages in order of application: inverse: len = n, n/2, ..., 2; forward: 2, 4, ..., n */
    size_t stage = 0;
    for (size_t i = 0; i < count; i++) {
        diag_matrix acc = {0};
        for (unsigned s = 0; s < levels[i]; s++, stage++) {
            size_t len = inverse ? n >> stage : (size_t)2 << stage;
            diag_matrix st, prod;
            if (dft_stage(&st, n, len, inverse)) goto fail;
            if (!acc.d) {
                acc = st;
                continue;
            }
            if (diag_matrix_mul(&prod, &st, &acc)) {
                diag_matrix_free(&st);
                goto fail;
            }
            diag_matrix_free(&st);
            diag_matrix_free(&acc);
            acc = prod;
        }
        out[i] = acc;
        continue;
    fail:
        diag_matrix_free(&acc);
        for (size_t j = 0; j < i; j++) diag_matrix_free(&out[j]);
        return -1;
    }
    return 0;
}

void dft_reference_forward(size_t n, ldcomplex *v)
{
    /* bit reversal, then the butterflies (the engine's special FFT) */
    for (size_t i = 1, j = 0; i < n; i++) {
        size_t bit = n >> 1;
        for (; j & bit; bit >>= 1) j ^= bit;
        j ^= bit;
        if (i < j) {
            ldcomplex t = v[i];
            v[i] = v[j];
            v[j] = t;
        }
    }
    for (size_t len = 2; len <= n; len <<= 1) {
        const size_t h = len / 2;
        ldcomplex *tw = twiddles(len);
        if (!tw) return;
        for (size_t i = 0; i < n; i += len)
            for (size_t j = 0; j < h; j++) {
                ldcomplex u = v[i + j], w = v[i + j + h] * tw[j];
                v[i + j] = u + w;
                v[i + j + h] = u - w;
            }
        hecnn_free(tw);
    }
}

ldcomplex *dft_twiddles_all(size_t n)
{
    ldcomplex *all = hecnn_alloc((n > 1 ? n - 1 : 1) * sizeof *all);
    if (!all) return NULL;
    for (size_t len = 2; len <= n; len <<= 1) {
        ldcomplex *tw = twiddles(len);
        if (!tw) {
            hecnn_free(all);
            return NULL;
        }
        memcpy(all + len / 2 - 1, tw, len / 2 * sizeof *tw);
        hecnn_free(tw);
    }
    return all;
}

void dft_reference_inverse_tw(size_t n, ldcomplex *v, const ldcomplex *tw_all)
{
    /* inverse butterflies (len = n .. 2, with 1/2 each), then bit reversal */
    for (size_t len = n; len >= 2; len >>= 1) {
        const size_t h = len / 2;
        const ldcomplex *tw = tw_all + h - 1;
        for (size_t i = 0; i < n; i += len)
            for (size_t j = 0; j < h; j++) {
                ldcomplex a = v[i + j], b = v[i + j + h];
                v[i + j] = 0.5L * (a + b);
                v[i + j + h] = 0.5L * (a - b) * conjl(tw[j]);
            }
    }
    for (size_t i = 1, j = 0; i < n; i++) {
        size_t bit = n >> 1;
        for (; j & bit; bit >>= 1) j ^= bit;
        j ^= bit;
        if (i < j) {
            ldcomplex x = v[i];
            v[i] = v[j];
            v[j] = x;
        }
    }
}

void dft_reference_inverse(size_t n, ldcomplex *v)
{
    ldcomplex *tw = dft_twiddles_all(n);
    if (!tw) return;
    dft_reference_inverse_tw(n, v, tw);
    hecnn_free(tw);
}

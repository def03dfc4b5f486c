#include "math/ntt.h"

#include <stdlib.h>

#include "math/primes.h"
#include "util/alloc.h"

static size_t bit_reverse(size_t x, unsigned bits)
{
    size_t r = 0;
    for (unsigned i = 0; i < bits; i++) r |= ((x >> i) & 1) << (bits - 1 - i);
    return r;
}

int ntt_table_init(ntt_table *t, uint64_t q, unsigned log_n)
{
    *t = (ntt_table){0};
    size_t n = (size_t)1 << log_n;
    if (q >= ((uint64_t)1 << 62) || (q - 1) % (2 * n) != 0) return -1;
    modulus_init(&t->mod, q);
    t->n = n;
    t->log_n = log_n;
    t->psi = primitive_root_2n(q, 2 * n);
    if (!t->psi) return -1;
    int ifma = q < ((uint64_t)1 << 50);
    t->fwd = hecnn_alloc(n * sizeof(uint64_t));
    t->fwd_shoup = hecnn_alloc(n * sizeof(uint64_t));
    t->inv = hecnn_alloc(n * sizeof(uint64_t));
    t->inv_shoup = hecnn_alloc(n * sizeof(uint64_t));
    if (ifma) {
        t->fwd_shoup52 = hecnn_alloc(n * sizeof(uint64_t));
        t->inv_shoup52 = hecnn_alloc(n * sizeof(uint64_t));
    }
    if (!t->fwd || !t->fwd_shoup || !t->inv || !t->inv_shoup ||
        (ifma && (!t->fwd_shoup52 || !t->inv_shoup52))) {
        ntt_table_free(t);
        return -1;
    }
    uint64_t psi_inv = inv_mod(t->psi, &t->mod);
    /* powers in natural order, then scatter to bit-reversed positions */
    uint64_t pw = 1, ipw = 1;
    for (size_t i = 0; i < n; i++) {
        size_t k = bit_reverse(i, log_n);
        t->fwd[k] = pw;
        t->inv[k] = ipw;
        pw = mul_mod(pw, t->psi, &t->mod);
        ipw = mul_mod(ipw, psi_inv, &t->mod);
    }
    for (size_t k = 0; k < n; k++) {
        t->fwd_shoup[k] = shoup_precompute(t->fwd[k], q);
        t->inv_shoup[k] = shoup_precompute(t->inv[k], q);
        if (ifma) {
            t->fwd_shoup52[k] = (uint64_t)(((u128)t->fwd[k] << 52) / q);
            t->inv_shoup52[k] = (uint64_t)(((u128)t->inv[k] << 52) / q);
        }
    }
    t->n_inv = inv_mod(n % q, &t->mod);
    t->n_inv_shoup = shoup_precompute(t->n_inv, q);
    t->n_inv_shoup52 = ifma ? (uint64_t)(((u128)t->n_inv << 52) / q) : 0;
    t->inv1_n_inv = mul_mod(t->inv[n > 1 ? 1 : 0], t->n_inv, &t->mod);
    t->inv1_n_inv_shoup = shoup_precompute(t->inv1_n_inv, q);
    t->inv1_n_inv_shoup52 = ifma ? (uint64_t)(((u128)t->inv1_n_inv << 52) / q) : 0;
    return 0;
}

void ntt_table_free(ntt_table *t)
{
    if (!t) return;
    hecnn_free(t->fwd);
    hecnn_free(t->fwd_shoup);
    hecnn_free(t->inv);
    hecnn_free(t->inv_shoup);
    hecnn_free(t->fwd_shoup52);
    hecnn_free(t->inv_shoup52);
    *t = (ntt_table){0};
}

/* Harvey's lazy Cooley–Tukey: values stay in [0, 4q) between stages (the conditional subtractions by
 * masks: no branch on the values, which may be secret). */
void ntt_forward_portable(const ntt_table *t, uint64_t *a)
{
    const uint64_t q = t->mod.q, two_q = 2 * q;
    const size_t n = t->n;
    size_t gap = n;
    for (size_t m = 1; m < n; m <<= 1) {
        gap >>= 1;
        for (size_t i = 0; i < m; i++) {
            const uint64_t w = t->fwd[m + i], wp = t->fwd_shoup[m + i];
            uint64_t *x = a + 2 * i * gap, *y = x + gap;
            for (size_t j = 0; j < gap; j++) {
                const uint64_t u = csub_mod(x[j], two_q);
                const uint64_t v = mul_shoup_lazy(y[j], w, wp, q);
                x[j] = u + v;
                y[j] = u - v + two_q;
            }
        }
    }
    for (size_t j = 0; j < n; j++) {
        a[j] = csub_mod(csub_mod(a[j], two_q), q);
    }
}

/* Gentleman–Sande with inputs and outputs of each stage in [0, 2q). */
void ntt_inverse_portable(const ntt_table *t, uint64_t *a)
{
    const uint64_t q = t->mod.q, two_q = 2 * q;
    const size_t n = t->n;
    size_t gap = 1;
    for (size_t m = n >> 1; m >= 1; m >>= 1) {
        for (size_t i = 0; i < m; i++) {
            const uint64_t w = t->inv[m + i], wp = t->inv_shoup[m + i];
            uint64_t *x = a + 2 * i * gap, *y = x + gap;
            for (size_t j = 0; j < gap; j++) {
                uint64_t u = x[j], v = y[j];
                x[j] = csub_mod(u + v, two_q);
                y[j] = mul_shoup_lazy(u - v + two_q, w, wp, q);
            }
        }
        gap <<= 1;
    }
    for (size_t j = 0; j < n; j++) a[j] = mul_shoup(a[j], t->n_inv, t->n_inv_shoup, q);
}

/* Word-size modular arithmetic for moduli q < 2^62 (so that lazy values in [0, 4q) fit). */
#ifndef HECNN_MATH_MODARITH_H
#define HECNN_MATH_MODARITH_H

#include <stdint.h>

__extension__ typedef unsigned __int128 u128;

/* A modulus with its Barrett constant floor(2^128 / q) (two words). */
typedef struct modulus {
    uint64_t q;
    uint64_t barrett_hi, barrett_lo;  /* floor(2^128 / q) = hi*2^64 + lo */
    uint64_t mont_neg_inv;            /* -q^-1 mod 2^64 (q odd) */
    uint64_t mu;                      /* floor(2^(2 bits) / q): Barrett for products of residues */
    uint64_t r_mod, r2_mod;           /* 2^64 mod q, 2^128 mod q: Montgomery factors */
    unsigned bits;
} modulus;

void modulus_init(modulus *m, uint64_t q);

static inline uint64_t mulhi64(uint64_t a, uint64_t b) { return (uint64_t)(((u128)a * b) >> 64); }

/* The reductions below never branch on the values (which may be secret: keys, errors, messages):
 * a conditional subtraction selects with the borrow's mask (tests/ct_secret.c checks under valgrind).
 *
 * x - q when x >= q, else x; for q < 2^62 and x < q + 2^63 (the borrow is the top bit of x - q). */
static inline uint64_t csub_mod(uint64_t x, uint64_t q)
{
    const uint64_t d = x - q;
    return d + (q & (0 - (d >> 63)));
}

static inline uint64_t add_mod(uint64_t a, uint64_t b, uint64_t q) { return csub_mod(a + b, q); }

static inline uint64_t sub_mod(uint64_t a, uint64_t b, uint64_t q)
{
    const uint64_t d = a - b;
    return d + (q & (0 - (d >> 63)));
}

/* q - a, or 0 for a = 0: (a | -a) has its top bit set exactly when a != 0 (a < 2^63). */
static inline uint64_t neg_mod(uint64_t a, uint64_t q) { return (q - a) & (0 - ((a | (0 - a)) >> 63)); }

/* x (< 2^128) mod q by Barrett with floor(2^128/q). */
static inline uint64_t reduce128(u128 x, const modulus *m)
{
    uint64_t xlo = (uint64_t)x, xhi = (uint64_t)(x >> 64);
    /* quotient estimate = floor(x * floor(2^128/q) / 2^128), off by at most 2 */
    u128 t = (u128)xlo * m->barrett_lo;
    u128 mid1 = (u128)xlo * m->barrett_hi;
    u128 mid2 = (u128)xhi * m->barrett_lo;
    u128 carry = (t >> 64) + (uint64_t)mid1 + (uint64_t)mid2;
    uint64_t qhat = (uint64_t)(carry >> 64) + (uint64_t)(mid1 >> 64) + (uint64_t)(mid2 >> 64) +
                    xhi * m->barrett_hi;
    return csub_mod(csub_mod(xlo - qhat * m->q, m->q), m->q);
}

/* x (< 2^64) mod q. */
static inline uint64_t reduce64(uint64_t x, const modulus *m)
{
    uint64_t qhat = mulhi64(x, m->barrett_hi);
    return csub_mod(x - qhat * m->q, m->q);
}

/* a * b mod q for a, b < q: Barrett with the quotient estimated from the top bits+1 bits of the
 * product (< 2^(2 bits)), two multiplications; off by at most 2q before the corrections. */
static inline uint64_t mul_mod(uint64_t a, uint64_t b, const modulus *m)
{
    const u128 x = (u128)a * b;
    const unsigned L = m->bits;
    const uint64_t top = (uint64_t)(x >> (L - 1));
    const uint64_t qhat = (uint64_t)(((u128)top * m->mu) >> (L + 1));
    return csub_mod(csub_mod((uint64_t)x - qhat * m->q, m->q), m->q);
}

/* Montgomery reduction: x * 2^-64 mod q in [0, q), for x < q * 2^64 (odd q < 2^63). Two multiplications
 * instead of Barrett's five: sums of products are accumulated in 128 bits and reduced once, with
 * one operand pre-multiplied by 2^64 (mont_neg_inv, r_mod). */
/* How many products of two residues below 2^61 may be summed before redc128: 7 * 2^61 * q < q * 2^64. */
#define REDC_TERMS 7

static inline uint64_t redc128(u128 x, const modulus *m)
{
    const uint64_t t = (uint64_t)x * m->mont_neg_inv;
    const u128 s = x + (u128)t * m->q;   /* < 2 q 2^64: no overflow for q < 2^63 */
    return csub_mod((uint64_t)(s >> 64), m->q);
}

/* Shoup: w' = floor(w * 2^64 / q) for a fixed operand w < q. */
static inline uint64_t shoup_precompute(uint64_t w, uint64_t q) { return (uint64_t)(((u128)w << 64) / q); }

/* a*w mod q in [0, 2q) for any a < 2^64. */
static inline uint64_t mul_shoup_lazy(uint64_t a, uint64_t w, uint64_t wp, uint64_t q)
{
    return a * w - mulhi64(a, wp) * q;
}

static inline uint64_t mul_shoup(uint64_t a, uint64_t w, uint64_t wp, uint64_t q)
{
    return csub_mod(mul_shoup_lazy(a, w, wp, q), q);
}

uint64_t pow_mod(uint64_t base, uint64_t exp, const modulus *m);
/* Inverse of a modulo a prime q (a != 0 mod q). */
uint64_t inv_mod(uint64_t a, const modulus *m);
/* Signed value reduced into [0, q). */
static inline uint64_t from_signed(int64_t v, uint64_t q)
{
    int64_t r = v % (int64_t)q;
    return (uint64_t)(r < 0 ? r + (int64_t)q : r);
}

/* Centered representative of a in (-q/2, q/2]. */
static inline int64_t to_centered(uint64_t a, uint64_t q)
{
    return (int64_t)a - (int64_t)(q & (0 - ((q / 2 - a) >> 63)));
}

#endif

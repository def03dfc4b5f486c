#include "math/modarith.h"

void modulus_init(modulus *m, uint64_t q)
{
    m->q = q;
    /* floor(2^128 / q): divide (2^128 - 1) and fix up, since 2^128 does not fit. */
    u128 all = ~(u128)0;
    u128 quot = all / q;
    if (all - quot * q == q - 1) quot += 1;
    m->barrett_hi = (uint64_t)(quot >> 64);
    m->barrett_lo = (uint64_t)quot;
    unsigned bits = 0;
    while (bits < 64 && (q >> bits)) bits++;
    m->bits = bits;
    /* Newton iteration for q^-1 mod 2^64 (q odd): each step doubles the correct low bits. */
    uint64_t inv = q;
    for (int i = 0; i < 6; i++) inv *= 2 - q * inv;
    m->mont_neg_inv = (q & 1) ? (uint64_t)0 - inv : 0;
    m->mu = bits >= 2 ? (uint64_t)(((u128)1 << (2 * bits)) / q) : 0;
    m->r_mod = reduce128((u128)1 << 64, m);
    m->r2_mod = mul_mod(m->r_mod, m->r_mod, m);
}

uint64_t pow_mod(uint64_t base, uint64_t exp, const modulus *m)
{
    uint64_t r = 1 % m->q, b = base % m->q;
    while (exp) {
        if (exp & 1) r = mul_mod(r, b, m);
        b = mul_mod(b, b, m);
        exp >>= 1;
    }
    return r;
}

uint64_t inv_mod(uint64_t a, const modulus *m) { return pow_mod(a, m->q - 2, m); }

#include "math/primes.h"

#include "math/modarith.h"

static uint64_t mulmod_plain(uint64_t a, uint64_t b, uint64_t n) { return (uint64_t)(((u128)a * b) % n); }

static uint64_t powmod_plain(uint64_t b, uint64_t e, uint64_t n)
{
    uint64_t r = 1 % n;
    b %= n;
    while (e) {
        if (e & 1) r = mulmod_plain(r, b, n);
        b = mulmod_plain(b, b, n);
        e >>= 1;
    }
    return r;
}

bool is_prime_u64(uint64_t n)
{
    static const uint64_t bases[] = {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37};
    if (n < 2) return false;
    for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++) {
        if (n == bases[i]) return true;
        if (n % bases[i] == 0) return false;
    }
    uint64_t d = n - 1;
    unsigned s = 0;
    while (!(d & 1)) {
        d >>= 1;
        s++;
    }
    for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++) {
        uint64_t x = powmod_plain(bases[i], d, n);
        if (x == 1 || x == n - 1) continue;
        bool composite = true;
        for (unsigned r = 1; r < s; r++) {
            x = mulmod_plain(x, x, n);
            if (x == n - 1) {
                composite = false;
                break;
            }
        }
        if (composite) return false;
    }
    return true;
}

uint64_t prime_below(uint64_t upper, uint64_t two_n, const uint64_t *avoid, size_t n_avoid)
{
    if (upper <= two_n + 1) return 0;
    unsigned bits = 0;
    while (bits < 64 && (upper >> bits)) bits++;
    uint64_t floor = bits >= 2 ? (uint64_t)1 << (bits - 2) : 1;
    /* candidates c = k * 2n + 1 < upper */
    uint64_t c = ((upper - 2) / two_n) * two_n + 1;
    for (; c > floor && c > two_n; c -= two_n) {
        if (!is_prime_u64(c)) continue;
        bool used = false;
        for (size_t i = 0; i < n_avoid; i++) used |= avoid[i] == c;
        if (!used) return c;
    }
    return 0;
}

uint64_t primitive_root_2n(uint64_t q, uint64_t two_n)
{
    /* g^((q-1)/2n) is a primitive 2n-th root iff its n-th power is -1 (2n is a power of two). */
    uint64_t best = 0;
    for (uint64_t g = 2; g < q; g++) {
        uint64_t r = powmod_plain(g, (q - 1) / two_n, q);
        if (powmod_plain(r, two_n / 2, q) != q - 1) continue;
        /* smallest of the primitive roots r^(odd) for a canonical choice */
        best = r;
        uint64_t r2 = mulmod_plain(r, r, q), cur = r;
        for (uint64_t k = 1; k < two_n; k += 2) {
            if (cur < best) best = cur;
            cur = mulmod_plain(cur, r2, q);
        }
        break;
    }
    return best;
}

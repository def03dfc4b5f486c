#include "common/check.h"

#include <stdint.h>

int check_passed, check_failed;

int check_summary(void)
{
    printf("%d passed, %d failed\n", check_passed, check_failed);
    return check_failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

static uint64_t rng_state[4] = {0x9e3779b97f4a7c15ull, 0xbf58476d1ce4e5b9ull, 0x94d049bb133111ebull, 1};

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void test_rng_seed(unsigned long long seed)
{
    uint64_t z = seed;
    for (int i = 0; i < 4; i++) {
        z += 0x9e3779b97f4a7c15ull;
        uint64_t x = z;
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
        rng_state[i] = x ^ (x >> 31);
    }
}

unsigned long long test_rng_u64(void)
{
    uint64_t *s = rng_state;
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

double test_rng_uniform(double lo, double hi)
{
    return lo + (hi - lo) * ((double)(test_rng_u64() >> 11) * 0x1.0p-53);
}

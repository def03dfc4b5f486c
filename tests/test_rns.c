/* RNS layer: basis conversion round trips, Galois automorphisms, samplers. */
#include <math.h>
#include <string.h>

#include "common/check.h"
#include "math/primes.h"
#include "ring/rns.h"
#include "util/alloc.h"

#define LOG_N 10
#define N (1u << LOG_N)

static ntt_table tables[12];

static void make_basis(rns_basis *b, size_t first, size_t count)
{
    b->n = N;
    b->limbs = count;
    for (size_t i = 0; i < count; i++) b->tab[i] = &tables[first + i];
}

static void test_baseconv(void)
{
    /* Q = 4 primes of 50 bits, P = 3 primes of 60 bits. Small integers x convert to x + u*Q with
     * 0 <= u < 4, and Q -> P -> Q comes back exactly when x is below P/8 (u = 0 after the first hop
     * cannot be guaranteed, so the check is on the set of allowed values). */
    rns_basis q, p;
    make_basis(&q, 0, 4);
    make_basis(&p, 4, 3);
    baseconv qp, pq;
    REQUIRE_VOID(baseconv_init(&qp, &q, &p, false) == 0);
    REQUIRE_VOID(baseconv_init(&pq, &p, &q, false) == 0);
    uint64_t *xq = hecnn_alloc(4 * N * 8), *xp = hecnn_alloc(3 * N * 8), *back = hecnn_alloc(4 * N * 8);
    int64_t *x = hecnn_alloc(N * 8);
    for (size_t i = 0; i < N; i++) {
        x[i] = (int64_t)(test_rng_u64() >> 2) * ((i & 1) ? 1 : -1);
        for (size_t k = 0; k < 4; k++) xq[k * N + i] = from_signed(x[i], q.tab[k]->mod.q);
    }
    baseconv_apply(&qp, xp, xq);
    /* Q mod p_k, to recognise x + u*Q */
    int ok = 1;
    for (size_t k = 0; k < 3; k++) {
        const modulus *m = &p.tab[k]->mod;
        uint64_t big_q = 1;
        for (size_t j = 0; j < 4; j++) big_q = mul_mod(big_q, q.tab[j]->mod.q % m->q, m);
        for (size_t i = 0; i < N; i++) {
            uint64_t want = from_signed(x[i], m->q);
            int found = 0;
            for (uint64_t u = 0; u <= 4; u++) found |= add_mod(want, mul_mod(u, big_q, m), m->q) == xp[k * N + i];
            ok &= found;
        }
    }
    CHECK_MSG(ok, "Q -> P conversion is x + u*Q with 0 <= u <= 4");
    /* prefix conversion equals the first limbs of the full one */
    uint64_t *prefix = hecnn_alloc(2 * N * 8);
    baseconv_apply_prefix(&qp, prefix, xq, 2);
    CHECK(!memcmp(prefix, xp, 2 * N * 8));
    /* exact integers below every prime product: P -> Q of x (as residues of x in P) recovers x + u*P */
    for (size_t i = 0; i < N; i++)
        for (size_t k = 0; k < 3; k++) xp[k * N + i] = from_signed(x[i] < 0 ? -x[i] : x[i], p.tab[k]->mod.q);
    baseconv_apply(&pq, back, xp);
    ok = 1;
    for (size_t k = 0; k < 4; k++) {
        const modulus *m = &q.tab[k]->mod;
        uint64_t big_p = 1;
        for (size_t j = 0; j < 3; j++) big_p = mul_mod(big_p, p.tab[j]->mod.q % m->q, m);
        for (size_t i = 0; i < N; i++) {
            uint64_t want = from_signed(x[i] < 0 ? -x[i] : x[i], m->q);
            int found = 0;
            for (uint64_t u = 0; u <= 3; u++) found |= add_mod(want, mul_mod(u, big_p, m), m->q) == back[k * N + i];
            ok &= found;
        }
    }
    CHECK_MSG(ok, "P -> Q conversion is x + u*P with 0 <= u <= 3");
    baseconv_free(&qp);
    baseconv_free(&pq);
    hecnn_free(xq), hecnn_free(xp), hecnn_free(back), hecnn_free(x), hecnn_free(prefix);
}

static void test_automorphism(void)
{
    /* NTT-domain permutation == coefficient-domain X -> X^g (with the sign of X^N = -1) */
    rns_basis b;
    make_basis(&b, 0, 2);
    uint64_t *a = hecnn_alloc(2 * N * 8), *ref = hecnn_alloc(2 * N * 8), *out = hecnn_alloc(2 * N * 8);
    size_t *perm = hecnn_alloc(N * sizeof *perm), *perm2 = hecnn_alloc(N * sizeof *perm2),
           *perm12 = hecnn_alloc(N * sizeof *perm12);
    static const uint64_t gs[] = {5, 25, 3, 2 * N - 1, 125, 7};
    for (size_t gi = 0; gi < sizeof gs / sizeof *gs; gi++) {
        const uint64_t g = gs[gi];
        for (size_t k = 0; k < 2; k++)
            for (size_t i = 0; i < N; i++) a[k * N + i] = test_rng_u64() % b.tab[k]->mod.q;
        memset(ref, 0, 2 * N * 8);
        for (size_t k = 0; k < 2; k++) {
            const uint64_t q = b.tab[k]->mod.q;
            for (size_t i = 0; i < N; i++) {
                uint64_t e = (i * g) % (2 * N);
                if (e < N) ref[k * N + e] = a[k * N + i];
                else ref[k * N + e - N] = neg_mod(a[k * N + i], q);
            }
        }
        rns_ntt(&b, a);
        galois_ntt_permutation(perm, LOG_N, g);
        rns_permute(&b, out, a, perm);
        rns_intt(&b, out);
        CHECK_MSG(!memcmp(out, ref, 2 * N * 8), "automorphism X -> X^%llu", (unsigned long long)g);
    }
    /* composition: sigma_5 then sigma_25 = sigma_125 */
    galois_ntt_permutation(perm, LOG_N, 5);
    galois_ntt_permutation(perm2, LOG_N, 25);
    galois_ntt_permutation(perm12, LOG_N, 125);
    int ok = 1;
    for (size_t i = 0; i < N; i++) ok &= perm[perm2[i]] == perm12[i];
    CHECK_MSG(ok, "sigma_25 after sigma_5 is sigma_125");
    hecnn_free(a), hecnn_free(ref), hecnn_free(out), hecnn_free(perm), hecnn_free(perm2), hecnn_free(perm12);
}

static void test_samplers(void)
{
    uint8_t seed[HECNN_SEED_BYTES];
    for (int i = 0; i < HECNN_SEED_BYTES; i++) seed[i] = (uint8_t)i;
    enum { M = 1 << 16 };
    int8_t *v = hecnn_alloc(M), *w = hecnn_alloc(M);
    prng p;
    REQUIRE_VOID(prng_init(&p, seed, DOMAIN_SECRET, 0) == 0);
    sample_ternary(&p, v, M);
    prng_free(&p);
    REQUIRE_VOID(prng_init(&p, seed, DOMAIN_SECRET, 0) == 0);
    sample_ternary(&p, w, M);
    prng_free(&p);
    CHECK_MSG(!memcmp(v, w, M), "same seed, same samples");
    /* known answer: the first ternary values of seed 0..31, floor(3 w / 2^64) - 1 of the AES-256-CTR
     * keystream's 64-bit words w (the constant-time sampler; checked with the openssl CLI) */
    static const int8_t kat[8] = {-1, 0, -1, -1, -1, 1, -1, 0};
    CHECK_MSG(!memcmp(v, kat, 8), "ternary known answer: %d %d %d %d %d %d %d %d", v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]);
    size_t count[3] = {0};
    for (size_t i = 0; i < M; i++) count[v[i] + 1]++;
    for (int c = 0; c < 3; c++) CHECK_MSG(fabs((double)count[c] / M - 1.0 / 3) < 0.01, "ternary frequency %zu", count[c]);

    REQUIRE_VOID(prng_init(&p, seed, DOMAIN_SECRET, 1) == 0);
    sample_sparse_ternary(&p, v, M, 192);
    prng_free(&p);
    size_t nonzero = 0, plus = 0;
    for (size_t i = 0; i < M; i++) nonzero += v[i] != 0, plus += v[i] == 1;
    CHECK(nonzero == 192);
    CHECK(plus > 60 && plus < 132);
    size_t low = 0; /* positions spread over the whole vector */
    for (size_t i = 0; i < M / 2; i++) low += v[i] != 0;
    CHECK_MSG(low > 60 && low < 132, "sparse ternary: %zu of 192 in the lower half", low);
    /* a length that is not a power of two (the sorting network pads it), every coefficient, none */
    static const size_t hs[3] = {0, 37, 100};
    for (int t = 0; t < 3; t++) {
        int8_t small[100];
        REQUIRE_VOID(prng_init(&p, seed, DOMAIN_SECRET, 2 + (uint64_t)t) == 0);
        sample_sparse_ternary(&p, small, 100, hs[t]);
        prng_free(&p);
        size_t nz = 0, bad = 0;
        for (size_t i = 0; i < 100; i++) nz += small[i] != 0, bad += small[i] < -1 || small[i] > 1;
        CHECK_MSG(nz == hs[t] && !bad, "sparse ternary, n = 100, h = %zu: %zu nonzero", hs[t], nz);
    }

    REQUIRE_VOID(prng_init(&p, seed, DOMAIN_ERROR, 0) == 0);
    sample_gaussian(&p, v, M, 3.2);
    prng_free(&p);
    double sum = 0, sq = 0;
    int max = 0;
    for (size_t i = 0; i < M; i++) {
        sum += v[i], sq += (double)v[i] * v[i];
        if (abs(v[i]) > max) max = abs(v[i]);
    }
    double mean = sum / M, sd = sqrt(sq / M - mean * mean);
    CHECK_MSG(fabs(mean) < 0.05 && fabs(sd - 3.2) < 0.1, "gaussian mean %.3f sd %.3f", mean, sd);
    CHECK(max <= 20);

    /* known answer: the first keystream word of the limb stream (seed 0..31, index 7, prime
     * 2^60 - 2^18 + 1), checked with the openssl CLI (IV 03 00 07 00 | prime LE | 00000000) */
    REQUIRE_VOID(prng_init_limb(&p, seed, 7, 1152921504606584833ULL) == 0);
    const uint64_t first = prng_u64(&p);
    prng_free(&p);
    CHECK_MSG(first == 0x7edc90bcdb9da8a9ULL, "limb stream known answer %016llx", (unsigned long long)first);

    /* uniform residues below q; other indices and other limbs differ */
    rns_basis b;
    make_basis(&b, 0, 2);
    uint64_t *u = hecnn_alloc(2 * N * 8), *u2 = hecnn_alloc(2 * N * 8);
    REQUIRE_VOID(sample_uniform(seed, 0, &b, u) == 0);
    REQUIRE_VOID(sample_uniform(seed, 1, &b, u2) == 0);
    CHECK(rns_in_range(&b, u));
    CHECK(memcmp(u, u2, 2 * N * 8) != 0);
    CHECK(memcmp(u, u + N, N * 8) != 0);
    /* each limb is word-by-word rejection sampling on its own stream, whatever the basis around it:
     * limb 5 of a 12-limb basis is the polynomial's limb over q_5 alone */
    rns_basis big, one;
    make_basis(&big, 0, 12);
    make_basis(&one, 5, 1);
    uint64_t *fast = hecnn_alloc(12 * N * 8), *slow = hecnn_alloc(12 * N * 8), *alone = hecnn_alloc(N * 8);
    REQUIRE_VOID(sample_uniform(seed, 9, &big, fast) == 0);
    REQUIRE_VOID(sample_uniform(seed, 9, &one, alone) == 0);
    for (size_t k = 0; k < 12; k++) {
        const uint64_t q = big.tab[k]->mod.q, mask = ((uint64_t)1 << big.tab[k]->mod.bits) - 1;
        REQUIRE_VOID(prng_init_limb(&p, seed, 9, q) == 0);
        for (size_t i = 0; i < N;) {
            const uint64_t v = prng_u64(&p) & mask;
            if (v < q) slow[k * N + i++] = v;
        }
        prng_free(&p);
    }
    CHECK_MSG(!memcmp(fast, slow, 12 * N * 8), "sample_uniform = word-by-word rejection per limb");
    CHECK_MSG(!memcmp(alone, fast + 5 * N, N * 8), "a limb does not depend on the basis around it");
    /* a prime just above 2^40 rejects about half of the words: the limb reads on past its first
     * n words of keystream */
    uint64_t q41 = ((uint64_t)1 << 40) + 1;
    while (!is_prime_u64(q41)) q41 += 2 * N;
    ntt_table t41;
    REQUIRE_VOID(ntt_table_init(&t41, q41, LOG_N) == 0);
    rns_basis b41 = {.limbs = 1, .n = N, .tab = {&t41}};
    REQUIRE_VOID(sample_uniform(seed, 3, &b41, fast) == 0);
    REQUIRE_VOID(prng_init_limb(&p, seed, 3, q41) == 0);
    size_t words = 0;
    for (size_t i = 0; i < N; words++) {
        const uint64_t v = prng_u64(&p) & (((uint64_t)1 << 41) - 1);
        if (v < q41) slow[i++] = v;
    }
    prng_free(&p);
    CHECK_MSG(words > N + N / 4, "rejections: %zu words for %u", words, N);
    CHECK_MSG(!memcmp(fast, slow, N * 8) && rns_in_range(&b41, fast), "rejection past the first n words");
    ntt_table_free(&t41);
    hecnn_free(fast), hecnn_free(slow), hecnn_free(alone);
    hecnn_free(v), hecnn_free(w), hecnn_free(u), hecnn_free(u2);
}

int main(void)
{
    test_rng_seed(7);
    uint64_t used[12];
    for (size_t i = 0; i < 12; i++) {
        used[i] = prime_below((uint64_t)1 << (i < 4 ? 50 : 60), 2 * N, used, i);
        if (ntt_table_init(&tables[i], used[i], LOG_N)) return 1;
    }
    test_baseconv();
    test_automorphism();
    test_samplers();
    for (size_t i = 0; i < 12; i++) ntt_table_free(&tables[i]);
    return check_summary();
}

/* RLWE layer on its own (no CKKS): the context's digit shape and ModDown constants, secret
 * sampling, and key switching with relinearization, Galois and secret-switching keys, whole and
 * compact: out0 + out1 s = d s' + small error. */
#include <string.h>

#include "common/check.h"
#include "math/primes.h"
#include "rlwe/rlwe.h"
#include "util/alloc.h"

#define LOG_N 10
#define N (1u << LOG_N)
#define N_Q 4
#define N_P 2

/* q: 50, 40, 40, 40 bits; p: two of p_bits (45: together they cover a digit of two q primes). */
static hecnn_status context_new(rlwe_context *ctx, unsigned dnum, unsigned p_bits)
{
    static const unsigned bits[N_Q + N_P] = {50, 40, 40, 40, 45, 45};
    uint64_t primes[N_Q + N_P];
    for (unsigned i = 0; i < N_Q + N_P; i++) {
        primes[i] = prime_below((uint64_t)1 << (i < N_Q ? bits[i] : p_bits), 2 * N, primes, i);
        if (!primes[i]) return HECNN_ERR_INVALID_PARAMS;
    }
    return rlwe_context_init(ctx, LOG_N, primes, N_Q, N_P, dnum, 3.2);
}

static void test_context(void)
{
    rlwe_context ctx;
    REQUIRE_VOID(context_new(&ctx, 0, 45) == HECNN_OK);
    /* dnum 0: ceil(n_q / n_p) = 2 digits of 2 primes */
    CHECK(ctx.n == N && ctx.dnum == 2 && ctx.alpha == 2);
    CHECK(ctx.special[KS_ALL_P].n_p == N_P && ctx.special[KS_LEVEL0_P].n_p >= 1 && ctx.special[KS_LEVEL0_P].n_p <= N_P);
    for (unsigned i = 0; i < N_Q; i++) {
        const modulus *m = &ctx.tables[i].mod;
        for (int v = KS_ALL_P; v <= KS_LEVEL0_P; v++)
            CHECK(mul_mod(ctx.special[v].p_mod_q[i], ctx.special[v].p_inv_mod_q[i], m) == 1);
    }
    rns_basis b;
    rlwe_basis_qp(&ctx, &b, 1);
    CHECK(b.limbs == 2 + N_P && b.tab[1] == &ctx.tables[1] && b.tab[2] == &ctx.tables[N_Q]);
    rlwe_context_clear(&ctx);
    /* dnum 3 cannot split 4 primes without an empty digit: 2 digits of 2 */
    REQUIRE_VOID(context_new(&ctx, 3, 45) == HECNN_OK);
    CHECK(ctx.dnum == 2 && ctx.alpha == 2);
    rlwe_context_clear(&ctx);
    /* one digit of 170 bits against P of 2 x 30 bits: refused */
    CHECK(context_new(&ctx, 1, 30) == HECNN_ERR_INVALID_PARAMS);
    rlwe_context_clear(&ctx);
}

static void test_secret(const rlwe_context *ctx)
{
    const uint8_t seed[HECNN_SEED_BYTES] = {5};
    rlwe_secret_key a, b;
    REQUIRE_VOID(rlwe_secret_key_init(&a, ctx) == HECNN_OK && rlwe_secret_key_init(&b, ctx) == HECNN_OK);
    CHECK(rlwe_secret_key_sample(&a, 0, seed) == HECNN_OK && rlwe_secret_key_sample(&b, 0, seed) == HECNN_OK);
    CHECK(!memcmp(a.small, b.small, N) && !memcmp(a.ntt, b.ntt, (size_t)(N_Q + N_P) * N * 8));
    CHECK(rlwe_secret_key_sample(&b, 32, seed) == HECNN_OK);
    size_t weight = 0;
    bool ternary = true;
    for (size_t i = 0; i < N; i++) {
        weight += b.small[i] != 0;
        ternary &= a.small[i] >= -1 && a.small[i] <= 1 && b.small[i] >= -1 && b.small[i] <= 1;
    }
    CHECK(weight == 32 && ternary);
    rlwe_secret_key_clear(&a);
    rlwe_secret_key_clear(&b);
    rlwe_secret_key_clear(&b); /* idempotent */
}

/* Largest |out0 + out1 s - d s'| over Q_level, centred, in coefficient form. */
static int64_t switch_error(const rlwe_context *ctx, const uint64_t *out0, const uint64_t *out1, const uint64_t *d,
                            const uint64_t *s, const uint64_t *s_new, unsigned level)
{
    rns_basis b;
    rlwe_basis_q(ctx, &b, level);
    const size_t words = (size_t)(level + 1) * N;
    uint64_t *x = hecnn_alloc(words * 8), *y = hecnn_alloc(words * 8);
    rns_mul(&b, x, out1, s);
    rns_add(&b, x, x, out0);
    rns_mul(&b, y, d, s_new);
    rns_sub(&b, x, x, y);
    rns_intt(&b, x);
    int64_t worst = 0;
    for (unsigned k = 0; k <= level; k++)
        for (size_t i = 0; i < N; i++) {
            int64_t e = to_centered(x[k * N + i], ctx->tables[k].mod.q);
            if (e < 0) e = -e;
            if (e > worst) worst = e;
        }
    hecnn_free(x);
    hecnn_free(y);
    return worst;
}

static void test_keyswitch(const rlwe_context *ctx)
{
    const uint8_t s_seed[HECNN_SEED_BYTES] = {1}, t_seed[HECNN_SEED_BYTES] = {2}, k_seed[HECNN_SEED_BYTES] = {3};
    rlwe_secret_key sk, other;
    REQUIRE_VOID(rlwe_secret_key_init(&sk, ctx) == HECNN_OK && rlwe_secret_key_init(&other, ctx) == HECNN_OK);
    REQUIRE_VOID(rlwe_secret_key_sample(&sk, 0, s_seed) == HECNN_OK && rlwe_secret_key_sample(&other, 16, t_seed) == HECNN_OK);
    const unsigned top = N_Q - 1;
    rns_basis bq;
    rlwe_basis_q(ctx, &bq, top);
    const size_t words = (size_t)N_Q * N;
    uint64_t *d = hecnn_alloc(words * 8), *s_new = hecnn_alloc(words * 8), *out = hecnn_alloc(4 * words * 8);
    size_t *perm = hecnn_alloc(N * sizeof *perm);
    const uint8_t d_seed[HECNN_SEED_BYTES] = {9};
    REQUIRE_VOID(d && s_new && out && perm && !sample_uniform(d_seed, 0, &bq, d));
    const uint64_t g = 5;
    for (int kind = 0; kind < 3; kind++) {
        /* relinearization (s^2), Galois (s(X^5)), from `other` to sk */
        rlwe_switching_key k;
        hecnn_status st;
        if (kind == 0) {
            st = rlwe_switching_key_generate(&k, &sk, 0, top, k_seed);
            rns_mul(&bq, s_new, sk.ntt, sk.ntt);
        } else if (kind == 1) {
            st = rlwe_switching_key_generate(&k, &sk, g, top, k_seed);
            galois_ntt_permutation(perm, LOG_N, g);
            rns_permute(&bq, s_new, sk.ntt, perm);
        } else {
            st = rlwe_switching_key_generate_between(&k, &other, &sk, top, KS_ALL_P, k_seed);
            memcpy(s_new, other.ntt, words * 8);
        }
        REQUIRE_VOID(st == HECNN_OK);
        CHECK(k.digits == 2 && k.limbs == N_Q + N_P && swk_special(&k) == &ctx->special[KS_ALL_P] && swk_has_seed(&k));
        for (unsigned level = 0; level <= top; level += top) {
            uint64_t *out0 = out, *out1 = out + words;
            CHECK(keyswitch(ctx, out0, out1, d, level, &k) == HECNN_OK);
            const int64_t err = switch_error(ctx, out0, out1, d, sk.ntt, s_new, level);
            CHECK_MSG(err < (1 << 12), "key %d at level %u: error %lld", kind, level, (long long)err);
            /* compact: the same result, bit for bit */
            if (level == top) {
                rlwe_switching_key c = k;
                c.data = hecnn_alloc(rlwe_switching_key_memory_bytes(&k));
                memcpy(c.data, k.data, rlwe_switching_key_memory_bytes(&k));
                REQUIRE_VOID(rlwe_switching_key_compact(&c) == HECNN_OK);
                CHECK(c.compact && rlwe_switching_key_memory_bytes(&c) < rlwe_switching_key_memory_bytes(&k) / 2);
                CHECK(keyswitch(ctx, out + 2 * words, out + 3 * words, d, level, &c) == HECNN_OK);
                CHECK(!memcmp(out, out + 2 * words, 2 * words * 8));
                rlwe_switching_key_clear(&c);
            }
        }
        rlwe_switching_key_clear(&k);
    }
    /* the level-0 encapsulation key: q_0 and the first special primes only */
    rlwe_switching_key k0;
    REQUIRE_VOID(rlwe_switching_key_generate_between(&k0, &other, &sk, 0, KS_LEVEL0_P, k_seed) == HECNN_OK);
    CHECK(k0.limbs == 1 + ctx->special[KS_LEVEL0_P].n_p && swk_special(&k0)->n_p == ctx->special[KS_LEVEL0_P].n_p);
    rlwe_switching_key_clear(&k0);
    /* refusals: a level above the top, an even Galois element, secrets of another ring */
    rlwe_switching_key bad = {0};
    CHECK(rlwe_switching_key_generate(&bad, &sk, 0, N_Q, k_seed) == HECNN_ERR_LEVEL_MISMATCH);
    CHECK(rlwe_switching_key_generate(&bad, &sk, 4, top, k_seed) == HECNN_ERR_INVALID_ARGUMENT);
    rlwe_context ring2;
    REQUIRE_VOID(context_new(&ring2, 0, 50) == HECNN_OK);
    rlwe_secret_key far;
    REQUIRE_VOID(rlwe_secret_key_init(&far, &ring2) == HECNN_OK && rlwe_secret_key_sample(&far, 0, t_seed) == HECNN_OK);
    CHECK(rlwe_switching_key_generate_between(&bad, &far, &sk, top, KS_ALL_P, k_seed) == HECNN_ERR_PARAMS_MISMATCH);
    rlwe_switching_key_clear(&bad);
    rlwe_secret_key_clear(&far);
    rlwe_context_clear(&ring2);
    hecnn_free(d);
    hecnn_free(s_new);
    hecnn_free(out);
    hecnn_free(perm);
    rlwe_secret_key_clear(&sk);
    rlwe_secret_key_clear(&other);
}

int main(void)
{
    test_context();
    rlwe_context ctx;
    REQUIRE(context_new(&ctx, 0, 45) == HECNN_OK);
    test_secret(&ctx);
    test_keyswitch(&ctx);
    rlwe_context_clear(&ctx);
    return check_summary();
}

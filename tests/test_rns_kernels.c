/* RNS kernels (ring/rns_kernels.h): every kernel at every SIMD level this CPU has, against the
 * portable kernel and against a reference written with mul_mod / add_mod only. Primes at the
 * kernels' bounds (below 2^50 for IFMA, 2^52 for IFMA basis-conversion targets, 2^60 for the
 * 30-bit pieces, and 61-bit ones for the scalar fallback), inputs 0 and q - 1, lengths that leave
 * vector tails, and guard words around every output. */
#include <string.h>

#include "common/check.h"
#include "math/primes.h"
#include "ring/rns_kernels.h"
#include "util/alloc.h"

#define GUARD 8
static const uint64_t canary = 0x5a5a5a5aa5a5a5a5ull;

/* A buffer of n words with GUARD canaries on each side. */
static uint64_t *guarded(size_t n)
{
    uint64_t *b = hecnn_alloc((n + 2 * GUARD) * 8);
    if (!b) return NULL;
    for (size_t i = 0; i < n + 2 * GUARD; i++) b[i] = canary;
    return b + GUARD;
}
static bool guards_ok(const uint64_t *p, size_t n)
{
    bool ok = true;
    for (size_t i = 0; i < GUARD; i++) ok &= p[-1 - (ptrdiff_t)i] == canary && p[n + i] == canary;
    return ok;
}
static void guarded_free(uint64_t *p)
{
    if (p) hecnn_free(p - GUARD);
}

/* Residues mod q: random, with runs of the extremes 0 and q - 1 (mode 1: all q - 1). */
static void fill(uint64_t *x, size_t n, uint64_t q, int mode)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t r = test_rng_u64() % q;
        if (mode == 1 || i % 11 == 3 || i % 13 == 5) r = q - 1;
        else if (i % 17 == 2) r = 0;
        else if (i % 19 == 7) r = 1;
        x[i] = r;
    }
}

static uint64_t prime_bits(unsigned bits, const uint64_t *avoid, size_t n_avoid)
{
    return prime_below((uint64_t)1 << bits, 2, avoid, n_avoid);
}

static const unsigned limb_bits[] = {17, 30, 40, 49, 50, 51, 52, 53, 59, 60, 61};
static const size_t lengths[] = {1, 5, 8, 13, 64, 100, 1024};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------------------------------- limb-wise kernels */

static void check_limb_kernels(uint64_t q, size_t n, int mode)
{
    modulus m;
    modulus_init(&m, q);
    uint64_t *x[8], *k0[8], *k1[8];
    uint64_t *a = hecnn_alloc(n * 8), *b = hecnn_alloc(n * 8), *c = hecnn_alloc(n * 8), *d = hecnn_alloc(n * 8);
    uint64_t *ref[3], *got[3];
    for (int j = 0; j < 3; j++) {
        ref[j] = hecnn_alloc(n * 8);
        got[j] = guarded(n);
    }
    for (int j = 0; j < 8; j++) {
        x[j] = hecnn_alloc(n * 8), k0[j] = hecnn_alloc(n * 8), k1[j] = hecnn_alloc(n * 8);
        fill(x[j], n, q, mode);
        fill(k0[j], n, q, mode);
        fill(k1[j], n, q, mode);
    }
    fill(a, n, q, mode), fill(b, n, q, mode), fill(c, n, q, mode), fill(d, n, q, mode);
    const uint64_t w = q - 1 - test_rng_u64() % (q / 2), wp = shoup_precompute(w, q);
    const uint64_t r_inv = inv_mod(m.r_mod, &m);

    for (int l = 0; l < SIMD_LEVEL_COUNT; l++) {
        const rns_kernels *k = rns_kernels_for((simd_level)l);
        if (!k) continue;
        const char *name = k->name;
#define EXPECT(what, j, expr)                                                                          \
    do {                                                                                               \
        bool same_ = guards_ok(got[j], n);                                                             \
        for (size_t i_ = 0; i_ < n; i_++) same_ &= got[j][i_] == (expr);                               \
        CHECK_MSG(same_, "%s %s (q=%llu, n=%zu, mode %d)", name, what, (unsigned long long)q, n, mode); \
    } while (0)
        k->add(got[0], a, b, n, q);
        EXPECT("add", 0, add_mod(a[i_], b[i_], q));
        k->sub(got[0], a, b, n, q);
        EXPECT("sub", 0, sub_mod(a[i_], b[i_], q));
        k->mul(got[0], a, b, n, &m);
        EXPECT("mul", 0, mul_mod(a[i_], b[i_], &m));
        k->mul_scalar(got[0], a, n, w, wp, q);
        EXPECT("mul_scalar", 0, mul_mod(a[i_], w, &m));
        k->sub_mul_scalar(got[0], a, b, n, w, wp, q);
        EXPECT("sub_mul_scalar", 0, mul_mod(sub_mod(a[i_], b[i_], q), w, &m));
        /* aliasing: out = x */
        memcpy(got[1], a, n * 8);
        k->add(got[1], got[1], b, n, q);
        EXPECT("add in place", 1, add_mod(a[i_], b[i_], q));
        k->tensor(got[0], got[1], got[2], a, b, c, d, n, &m);
        EXPECT("tensor d0", 0, mul_mod(a[i_], c[i_], &m));
        EXPECT("tensor d1", 1, add_mod(mul_mod(a[i_], d[i_], &m), mul_mod(b[i_], c[i_], &m), q));
        EXPECT("tensor d2", 2, mul_mod(b[i_], d[i_], &m));
        /* inner products of 1..REDC_TERMS digits, then accumulated */
        for (unsigned count = 1; count <= REDC_TERMS; count++) {
            for (size_t i = 0; i < n; i++) {
                uint64_t s0 = 0, s1 = 0;
                for (unsigned j = 0; j < count; j++) {
                    s0 = add_mod(s0, mul_mod(x[j][i], k0[j][i], &m), q);
                    s1 = add_mod(s1, mul_mod(x[j][i], k1[j][i], &m), q);
                }
                ref[0][i] = mul_mod(s0, r_inv, &m);
                ref[1][i] = mul_mod(s1, r_inv, &m);
            }
            const uint64_t *const *xs = (const uint64_t *const *)x;
            k->ip_redc(got[0], got[1], xs, (const uint64_t *const *)k0, (const uint64_t *const *)k1, count, n, &m,
                       false);
            char what[64];
            snprintf(what, sizeof what, "ip_redc of %u", count);
            EXPECT(what, 0, ref[0][i_]);
            EXPECT(what, 1, ref[1][i_]);
            memcpy(got[0], a, n * 8);
            memcpy(got[1], b, n * 8);
            k->ip_redc(got[0], got[1], xs, (const uint64_t *const *)k0, (const uint64_t *const *)k1, count, n, &m,
                       true);
            snprintf(what, sizeof what, "ip_redc of %u, accumulated", count);
            EXPECT(what, 0, add_mod(a[i_], ref[0][i_], q));
            EXPECT(what, 1, add_mod(b[i_], ref[1][i_], q));
        }
#undef EXPECT
    }
    for (int j = 0; j < 3; j++) {
        hecnn_free(ref[j]);
        guarded_free(got[j]);
    }
    for (int j = 0; j < 8; j++) hecnn_free(x[j]), hecnn_free(k0[j]), hecnn_free(k1[j]);
    hecnn_free(a), hecnn_free(b), hecnn_free(c), hecnn_free(d);
}

/* Rescaling lift: v mod q_l (q_l of ql_bits) to q, centered. */
static void check_rescale_lift(uint64_t q, unsigned ql_bits, size_t n)
{
    modulus m;
    modulus_init(&m, q);
    const uint64_t ql = prime_bits(ql_bits, &q, 1);
    uint64_t *v = hecnn_alloc(n * 8), *got = guarded(n);
    fill(v, n, ql, 0);
    if (n > 2) v[1] = ql / 2, v[2] = ql / 2 + 1;
    for (int l = 0; l < SIMD_LEVEL_COUNT; l++) {
        const rns_kernels *k = rns_kernels_for((simd_level)l);
        if (!k) continue;
        k->rescale_lift(got, v, n, ql, &m);
        bool same = guards_ok(got, n);
        for (size_t i = 0; i < n; i++) {
            const uint64_t r = v[i] % q, want = v[i] > ql / 2 ? sub_mod(r, ql % q, q) : r;
            same &= got[i] == want;
        }
        CHECK_MSG(same, "%s rescale_lift (q=%llu, ql=%llu, n=%zu)", k->name, (unsigned long long)q,
                  (unsigned long long)ql, n);
    }
    hecnn_free(v);
    guarded_free(got);
}

/* ModDown's correction: x - table[idx] for every index of the 16-entry table. */
static void check_sub_lookup(uint64_t q, size_t n)
{
    uint64_t table[RNS_LOOKUP_ENTRIES], *x = hecnn_alloc(n * 8), *got = guarded(n);
    uint8_t *idx = hecnn_alloc(n);
    fill(table, RNS_LOOKUP_ENTRIES, q, 0);
    table[0] = 0, table[1] = q - 1;
    fill(x, n, q, 0);
    for (size_t i = 0; i < n; i++) idx[i] = (uint8_t)((i * 7 + x[i]) % RNS_LOOKUP_ENTRIES);
    for (int l = 0; l < SIMD_LEVEL_COUNT; l++) {
        const rns_kernels *k = rns_kernels_for((simd_level)l);
        if (!k) continue;
        k->sub_lookup(got, x, idx, table, n, q);
        bool same = guards_ok(got, n);
        for (size_t i = 0; i < n; i++) same &= got[i] == sub_mod(x[i], table[idx[i]], q);
        memcpy(got, x, n * 8);
        k->sub_lookup(got, got, idx, table, n, q); /* in place */
        for (size_t i = 0; i < n; i++) same &= got[i] == sub_mod(x[i], table[idx[i]], q);
        CHECK_MSG(same, "%s sub_lookup (q=%llu, n=%zu)", k->name, (unsigned long long)q, n);
    }
    hecnn_free(x), hecnn_free(idx);
    guarded_free(got);
}

/* Permutations: Galois ones of the NTT layout (every aligned block of 8 maps onto one), a random
 * one (the gather path) and one that mixes both. */
static void check_permute(unsigned log_n)
{
    const size_t n = (size_t)1 << log_n;
    size_t *perm = hecnn_alloc(n * sizeof *perm);
    uint64_t *src = hecnn_alloc(n * 8), *got = guarded(n);
    for (size_t i = 0; i < n; i++) src[i] = test_rng_u64();
    for (int kind = 0; kind < 5; kind++) {
        if (kind < 3) {
            const uint64_t g = kind == 0 ? 5 : kind == 1 ? 2 * n - 1 : 25 % (2 * n);
            galois_ntt_permutation(perm, log_n, g);
        } else {
            for (size_t i = 0; i < n; i++) perm[i] = i;
            for (size_t i = n - 1; i > 0; i--) {
                const size_t j = test_rng_u64() % (i + 1), t = perm[i];
                perm[i] = perm[j], perm[j] = t;
            }
            if (kind == 4)
                for (size_t i = 0; i < n / 2; i++) perm[i] = (i & ~(size_t)7) | ((i * 5 + 3) & 7);
        }
        for (int l = 0; l < SIMD_LEVEL_COUNT; l++) {
            const rns_kernels *k = rns_kernels_for((simd_level)l);
            if (!k) continue;
            k->permute(got, src, perm, n);
            bool same = guards_ok(got, n);
            for (size_t i = 0; i < n; i++) same &= got[i] == src[perm[i]];
            CHECK_MSG(same, "%s permute (n=%zu, kind %d)", k->name, n, kind);
        }
    }
    hecnn_free(perm);
    hecnn_free(src);
    guarded_free(got);
}

/* ---------------------------------------------------------------- basis conversion */

static void check_baseconv(const unsigned *in_bits, size_t ni, const unsigned *out_bits, size_t no, size_t n,
                           bool times_r, int mode)
{
    uint64_t primes[2 * RNS_MAX_LIMBS];
    ntt_table *tabs = hecnn_calloc(ni + no, sizeof *tabs);
    REQUIRE_VOID(tabs != NULL);
    for (size_t i = 0; i < ni + no; i++) {
        primes[i] = prime_bits(i < ni ? in_bits[i] : out_bits[i - ni], primes, i);
        modulus_init(&tabs[i].mod, primes[i]);
        tabs[i].n = n;
    }
    rns_basis in = {.limbs = ni, .n = n}, out = {.limbs = no, .n = n};
    for (size_t i = 0; i < ni; i++) in.tab[i] = &tabs[i];
    for (size_t k = 0; k < no; k++) out.tab[k] = &tabs[ni + k];
    baseconv bc;
    REQUIRE_VOID(baseconv_init(&bc, &in, &out, times_r) == 0);
    uint64_t *x = hecnn_alloc(ni * n * 8), *y = hecnn_alloc(ni * n * 8), *ref = hecnn_alloc(no * n * 8);
    uint64_t *got = guarded(no * n);
    for (size_t i = 0; i < ni; i++) fill(x + i * n, n, primes[i], mode);
    /* reference: y_i = x_i (Q/q_i)^-1 mod q_i, out_k = sum_i y_i (Q/q_i) [2^64] mod t_k */
    for (size_t i = 0; i < ni; i++) {
        const modulus *mi = &tabs[i].mod;
        uint64_t hat = 1;
        for (size_t j = 0; j < ni; j++)
            if (j != i) hat = mul_mod(hat, primes[j] % mi->q, mi);
        const uint64_t hinv = inv_mod(hat, mi);
        for (size_t c = 0; c < n; c++) y[i * n + c] = mul_mod(x[i * n + c], hinv, mi);
    }
    for (size_t k = 0; k < no; k++) {
        const modulus *mk = &tabs[ni + k].mod;
        for (size_t c = 0; c < n; c++) ref[k * n + c] = 0;
        for (size_t i = 0; i < ni; i++) {
            uint64_t h = times_r ? mk->r_mod : 1;
            for (size_t j = 0; j < ni; j++)
                if (j != i) h = mul_mod(h, primes[j] % mk->q, mk);
            for (size_t c = 0; c < n; c++)
                ref[k * n + c] = add_mod(ref[k * n + c], mul_mod(y[i * n + c] % mk->q, h, mk), mk->q);
        }
    }
    const size_t block = rns_bc_block(ni);
    for (int l = 0; l < SIMD_LEVEL_COUNT; l++) {
        const rns_kernels *k = rns_kernels_for((simd_level)l);
        if (!k) continue;
        for (size_t n_out = no; n_out >= no - 1 && n_out > 0; n_out--) {
            for (size_t i = 0; i < no * n; i++) got[i] = canary;
            for (size_t c0 = 0; c0 < n; c0 += block) k->baseconv_block(&bc, got, x, n_out, c0, n - c0 < block ? n - c0 : block);
            bool same = guards_ok(got, no * n) && !memcmp(got, ref, n_out * n * 8);
            for (size_t i = n_out * n; i < no * n; i++) same &= got[i] == canary;
            CHECK_MSG(same, "%s baseconv %zu -> %zu of %zu limbs (in %u..%u bits, out %u..%u bits, n=%zu, times_r %d, mode %d)",
                      k->name, ni, n_out, no, in_bits[0], in_bits[ni - 1], out_bits[0], out_bits[no - 1], n, times_r,
                      mode);
        }
    }
    /* and through the public entry point (active kernels, blocks in parallel) */
    baseconv_apply(&bc, got, x);
    CHECK(!memcmp(got, ref, no * n * 8) && guards_ok(got, no * n));
    baseconv_free(&bc);
    hecnn_free(tabs);
    hecnn_free(x), hecnn_free(y), hecnn_free(ref);
    guarded_free(got);
}

static void check_baseconv_configs(void)
{
    /* key-switching digit 0 of the benchmark preset: q_0 (60 bits) and 8 x 50 bits -> 16 x 50 bits
     * and P = 8 x 60 bits; digit 1: 9 x 50 -> q_0, 50-bit ones and P */
    unsigned d0_in[9] = {60, 50, 50, 50, 50, 50, 50, 50, 50}, d0_out[24], d1_in[9], d1_out[17];
    for (int i = 0; i < 24; i++) d0_out[i] = i < 16 ? 50 : 60;
    for (int i = 0; i < 9; i++) d1_in[i] = 50;
    for (int i = 0; i < 17; i++) d1_out[i] = i == 0 ? 60 : i < 9 ? 50 : 60;
    /* ModDown: P (8 x 60 bits) -> Q (60 + 24 x 50 bits) */
    unsigned p_in[8] = {60, 60, 60, 60, 60, 60, 60, 60}, q_out[25];
    for (int i = 0; i < 25; i++) q_out[i] = i ? 50 : 60;
    /* every width, both ways, with more than 7 sources (several reductions per output) */
    unsigned mixed[COUNT(limb_bits)];
    for (size_t i = 0; i < COUNT(limb_bits); i++) mixed[i] = limb_bits[i];
    /* many sources: a block size that is not a power of two */
    unsigned many[40];
    for (int i = 0; i < 40; i++) many[i] = i % 3 ? 50 : 60;
    unsigned few_out[3] = {50, 52, 60};
    unsigned wide61[3] = {61, 61, 50}, narrow[2] = {40, 49};

    for (int mode = 0; mode < 2; mode++) {
        const size_t n_list[] = {1024, 200, 12};
        for (size_t s = 0; s < COUNT(n_list); s++) {
            const size_t n = n_list[s];
            check_baseconv(d0_in, 9, d0_out, 24, n, true, mode);
            check_baseconv(d1_in, 9, d1_out, 17, n, true, mode);
            check_baseconv(p_in, 8, q_out, 25, n, false, mode);
            check_baseconv(mixed, COUNT(mixed), mixed, COUNT(mixed), n, false, mode);
            check_baseconv(mixed, COUNT(mixed), mixed, COUNT(mixed), n, true, mode);
            check_baseconv(many, 40, few_out, 3, n, true, mode);
            check_baseconv(wide61, 3, mixed, COUNT(mixed), n, false, mode);
            check_baseconv(narrow, 2, wide61, 3, n, true, mode);
        }
    }
}

int main(void)
{
    test_rng_seed(7);
    const rns_kernels *active = rns_kernels_active();
    CHECK(active != NULL && active->level == ntt_kernels_active()->level);
    printf("active RNS kernels: %s; levels tested:", active->name);
    for (int l = 0; l < SIMD_LEVEL_COUNT; l++)
        if (rns_kernels_for((simd_level)l)) printf(" %s", rns_kernels_for((simd_level)l)->name);
    printf("\n");
    for (size_t b = 0; b < COUNT(limb_bits); b++) {
        const uint64_t q = prime_bits(limb_bits[b], NULL, 0);
        for (size_t s = 0; s < COUNT(lengths); s++)
            for (int mode = 0; mode < 2; mode++) check_limb_kernels(q, lengths[s], mode);
        static const unsigned ql_bits[] = {17, 50, 60, 61};
        for (size_t j = 0; j < COUNT(ql_bits); j++) check_rescale_lift(q, ql_bits[j], 1000);
        for (size_t s = 0; s < COUNT(lengths); s++) check_sub_lookup(q, lengths[s]);
    }
    for (unsigned log_n = 0; log_n <= 12; log_n++) check_permute(log_n);
    check_baseconv_configs();
    return check_summary();
}

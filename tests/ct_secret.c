/* Constant-time check (the ctgrind method): run under valgrind's memcheck by tests/check_ct.sh.
 *
 * The secret key, the seeds of secret randomness (secret key, encryption's ephemeral ternary and
 * errors, the samplers' streams) and the message are marked undefined with
 * VALGRIND_MAKE_MEM_UNDEFINED; memcheck then reports every conditional jump, and every memory
 * address, that depends on them ("Conditional jump or move depends on uninitialised value",
 * "Use of uninitialised value"), which is exactly a branch or a table look-up on a secret. Only
 * public outputs are marked defined again, where they become public: the public key, the
 * switching keys and the ciphertexts once made, the decrypted plaintext once decrypted (the owner
 * learns it), and the samplers' outputs after sampling, to check their distribution.
 *
 * Covered: secret key generation (uniform ternary and sparse ternary), public key and
 * relinearization key generation, public-key and secret-key encryption, decryption, flooded
 * decryption (its noise secret until added), and the
 * ternary, sparse ternary and Gaussian samplers, at N = 2^10 (insecure, made in code: small so that
 * memcheck's slowdown stays small). Not covered: the errors of key generation and of secret-key
 * encryption (their seed also names the public uniform half, which may be sampled by rejection),
 * encoding and decoding (floating point).
 *
 * Outside valgrind the requests do nothing and the program checks only that the results are
 * right. Exit status: 0, or 1 on a wrong result (valgrind's --error-exitcode reports the rest). */
#include <complex.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#else /* no valgrind: the test only checks results (tests/check_ct.sh skips then) */
#define VALGRIND_MAKE_MEM_UNDEFINED(p, len) ((void)(p), (void)(len))
#define VALGRIND_MAKE_MEM_DEFINED(p, len) ((void)(p), (void)(len))
#define RUNNING_ON_VALGRIND 0
#endif

#include "common/check.h"
#include "ckks/internal.h"
#include "hecnn/hecnn.h"
#include "ring/rns.h"

#define SECRET(p, len) VALGRIND_MAKE_MEM_UNDEFINED((p), (len))
#define PUBLIC(p, len) VALGRIND_MAKE_MEM_DEFINED((p), (len))

enum { LOG_N = 10, N = 1 << LOG_N, SPARSE_H = 32 };

static void public_ciphertext(const ckks_ciphertext *ct)
{
    PUBLIC(ct->data, (size_t)(ct->degree + 1) * (ct->level + 1) * N * 8);
}

static void public_switching_key(const ckks_switching_key *k)
{
    PUBLIC(k->rlwe.data, (size_t)k->rlwe.digits * 2 * k->rlwe.limbs * N * 8);
}

static void test_samplers(void)
{
    uint8_t seed[HECNN_SEED_BYTES] = {7, 7, 7};
    int8_t v[N];
    prng p;

    SECRET(seed, sizeof seed);
    REQUIRE_VOID(prng_init(&p, seed, DOMAIN_SECRET, 0) == 0);
    sample_ternary(&p, v, N);
    prng_free(&p);
    PUBLIC(v, sizeof v);
    size_t count[3] = {0};
    int in_range = 1;
    for (size_t i = 0; i < N; i++) {
        in_range &= v[i] >= -1 && v[i] <= 1;
        if (v[i] >= -1 && v[i] <= 1) count[v[i] + 1]++;
    }
    CHECK(in_range);
    for (int c = 0; c < 3; c++) CHECK_MSG(count[c] > N / 3 - 100 && count[c] < N / 3 + 100, "ternary count %zu", count[c]);

    REQUIRE_VOID(prng_init(&p, seed, DOMAIN_SECRET, 1) == 0);
    sample_sparse_ternary(&p, v, N, SPARSE_H);
    prng_free(&p);
    PUBLIC(v, sizeof v);
    size_t nonzero = 0;
    in_range = 1;
    for (size_t i = 0; i < N; i++) nonzero += v[i] != 0, in_range &= v[i] >= -1 && v[i] <= 1;
    CHECK(in_range);
    CHECK_MSG(nonzero == SPARSE_H, "sparse ternary: %zu nonzero", nonzero);

    REQUIRE_VOID(prng_init(&p, seed, DOMAIN_ERROR, 0) == 0);
    sample_gaussian(&p, v, N, 3.2);
    prng_free(&p);
    PUBLIC(v, sizeof v);
    double sq = 0;
    int max = 0;
    for (size_t i = 0; i < N; i++) {
        sq += (double)v[i] * v[i];
        if (abs(v[i]) > max) max = abs(v[i]);
    }
    CHECK_MSG(fabs(sqrt(sq / N) - 3.2) < 0.3 && max <= 20, "gaussian: rms %.3f, max %d", sqrt(sq / N), max);
}

static void test_keys_encrypt_decrypt(void)
{
    ckks_params_literal lit = {.log_n = LOG_N, .n_q = 3, .n_p = 1, .log_scale = 30, .allow_insecure = true};
    lit.log_q[0] = 40, lit.log_q[1] = 30, lit.log_q[2] = 30, lit.log_p[0] = 40;
    ckks_context *ctx = NULL;
    REQUIRE_VOID(ckks_context_new(&ctx, &lit) == HECNN_OK);
    const size_t limbs = ctx->rlwe.n_q + ctx->rlwe.n_p, slots = N / 2;

    /* secret keys from secret seeds; the key itself is marked secret again in case a step of its
     * making declassified it */
    uint8_t sk_seed[CKKS_SEED_BYTES] = {1}, sparse_seed[CKKS_SEED_BYTES] = {2};
    SECRET(sk_seed, sizeof sk_seed);
    SECRET(sparse_seed, sizeof sparse_seed);
    ckks_secret_key *sk = NULL, *sparse = NULL;
    REQUIRE_VOID(ckks_secret_key_generate_derand(&sk, ctx, sk_seed) == HECNN_OK);
    REQUIRE_VOID(ckks_secret_key_generate_sparse_derand(&sparse, ctx, SPARSE_H, sparse_seed) == HECNN_OK);
    SECRET(sk->rlwe.small, N);
    SECRET(sk->rlwe.ntt, limbs * N * 8);

    /* public key and relinearization key: public once made */
    const uint8_t pk_seed[CKKS_SEED_BYTES] = {3}, rk_seed[CKKS_SEED_BYTES] = {4};
    ckks_public_key *pk = NULL;
    ckks_switching_key *rk = NULL, *to_sparse = NULL;
    REQUIRE_VOID(ckks_public_key_generate_derand(&pk, sk, pk_seed) == HECNN_OK);
    PUBLIC(pk->b, (size_t)ctx->rlwe.n_q * N * 8);
    REQUIRE_VOID(ckks_switching_key_generate_derand(&rk, sk, 0, ctx->rlwe.n_q - 1, rk_seed) == HECNN_OK);
    public_switching_key(rk);
    REQUIRE_VOID(ckks_switching_key_generate_between_derand(&to_sparse, sk, sparse, ctx->rlwe.n_q - 1, rk_seed) == HECNN_OK);
    public_switching_key(to_sparse);

    /* the message is secret too: encoded in the clear (floating point), then marked */
    double complex *msg = malloc(slots * sizeof *msg), *out = malloc(slots * sizeof *out);
    REQUIRE_VOID(msg && out);
    for (size_t i = 0; i < slots; i++) msg[i] = test_rng_uniform(-1, 1) + I * test_rng_uniform(-1, 1);
    ckks_plaintext *pt = NULL, *dec = NULL;
    ckks_ciphertext *ct_pk = NULL, *ct_sk = NULL;
    REQUIRE_VOID(!ckks_plaintext_new(&pt, ctx) && !ckks_plaintext_new(&dec, ctx) && !ckks_ciphertext_new(&ct_pk, ctx) &&
                 !ckks_ciphertext_new(&ct_sk, ctx));
    REQUIRE_VOID(ckks_encode(ctx, pt, msg, slots, slots, ctx->rlwe.n_q - 1, ckks_context_default_scale(ctx)) == HECNN_OK);
    SECRET(pt->data, (size_t)(pt->level + 1) * N * 8);

    /* public-key encryption: its seed names the ephemeral ternary and both errors, all secret */
    uint8_t enc_seed[CKKS_SEED_BYTES] = {5};
    SECRET(enc_seed, sizeof enc_seed);
    REQUIRE_VOID(ckks_encrypt_pk_derand(ctx, ct_pk, pt, pk, enc_seed) == HECNN_OK);
    public_ciphertext(ct_pk);
    /* secret-key encryption: the seed also names the public uniform c1, so it stays defined */
    const uint8_t sym_seed[CKKS_SEED_BYTES] = {6};
    REQUIRE_VOID(ckks_encrypt_sk_derand(ctx, ct_sk, pt, sk, sym_seed) == HECNN_OK);
    public_ciphertext(ct_sk);

    /* decryption: the result is the owner's, public to it once computed */
    const ckks_ciphertext *cts[2] = {ct_pk, ct_sk};
    for (int c = 0; c < 2; c++) {
        REQUIRE_VOID(ckks_decrypt(ctx, dec, cts[c], sk) == HECNN_OK);
        PUBLIC(dec->data, (size_t)(dec->level + 1) * N * 8);
        REQUIRE_VOID(ckks_decode(ctx, out, dec) == HECNN_OK);
        double err = 0;
        for (size_t i = 0; i < slots; i++) err = fmax(err, cabs(out[i] - msg[i]));
        CHECK_MSG(err < 1e-4, "%s encryption: decrypted with error %g", c ? "secret-key" : "public-key", err);
    }

    /* flooded decryption: the flooding noise is secret until added (its seed marked), the result public */
    uint8_t flood_seed[CKKS_SEED_BYTES] = {8};
    SECRET(flood_seed, sizeof flood_seed);
    REQUIRE_VOID(ckks_decrypt_flooded_derand(ctx, dec, ct_pk, sk, NULL, flood_seed) == HECNN_OK);
    PUBLIC(dec->data, (size_t)(dec->level + 1) * N * 8);
    REQUIRE_VOID(ckks_decode(ctx, out, dec) == HECNN_OK);
    const double sd = ckks_flood_slot_stddev(ctx, ct_pk, NULL);
    double err = 0, sq = 0;
    for (size_t i = 0; i < slots; i++) err = fmax(err, cabs(out[i] - msg[i])), sq += creal(out[i] - msg[i]) * creal(out[i] - msg[i]);
    const double rms = sqrt(sq / (double)slots);
    CHECK_MSG(err < 8 * sd + 1e-4 && rms > 0.7 * sd && rms < 1.4 * sd, "flooded decryption: error %g, rms %g, stated %g", err, rms, sd);

    free(msg);
    free(out);
    ckks_plaintext_free(pt);
    ckks_plaintext_free(dec);
    ckks_ciphertext_free(ct_pk);
    ckks_ciphertext_free(ct_sk);
    ckks_switching_key_free(rk);
    ckks_switching_key_free(to_sparse);
    ckks_public_key_free(pk);
    ckks_secret_key_free(sparse);
    ckks_secret_key_free(sk);
    ckks_context_free(ctx);
}

int main(void)
{
    hecnn_set_threads(1);
    test_rng_seed(12);
    printf("constant time: %s, SIMD %s\n", RUNNING_ON_VALGRIND ? "under valgrind" : "not under valgrind (results only)",
           hecnn_simd_name());
    test_samplers();
    test_keys_encrypt_decrypt();
    return check_summary();
}

/* A short tour of the CKKS engine at 128-bit security (preset n14). */
#include "cmd_demo_ckks.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hecnn/hecnn.h"
#include "util_cli.h"

#define TRY(call)                                                                                        \
    do {                                                                                                 \
        hecnn_status st_ = (call);                                                                       \
        if (st_) {                                                                                       \
            fprintf(stderr, "hecnn demo-ckks: %s: %s: %s\n", #call, hecnn_status_name(st_), hecnn_last_error_detail()); \
            return 1;                                                                                    \
        }                                                                                                \
    } while (0)

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int cmd_demo_ckks(int argc, char **argv)
{
    cli_protect_secrets(); /* it holds a secret key */
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: hecnn demo-ckks\n  Encrypts 8192 values, computes x^2 + rotate(x, 1) - 0.5 homomorphically,\n"
               "  decrypts and prints the precision against the plaintext result.\n");
        return 0;
    }
    double t0 = seconds();
    ckks_params_literal params;
    ckks_context *ctx;
    TRY(ckks_params_preset(&params, CKKS_PRESET_N14));
    TRY(ckks_context_new(&ctx, &params));
    const size_t slots = ckks_context_max_slots(ctx);
    const unsigned top = ckks_context_max_level(ctx);
    printf("parameters: N = %zu, %zu slots, log QP = %.1f (128-bit bound %u), SIMD %s, %d threads\n",
           ckks_context_n(ctx), slots, ckks_context_log_qp(ctx), ckks_max_log_qp_128(params.log_n), hecnn_simd_name(),
           hecnn_get_threads());

    ckks_secret_key *sk;
    ckks_public_key *pk;
    ckks_eval_keys *keys;
    const int steps[] = {1};
    TRY(ckks_secret_key_generate(&sk, ctx));
    TRY(ckks_public_key_generate(&pk, sk));
    TRY(ckks_eval_keys_generate(&keys, sk, true, steps, 1, false));
    double t1 = seconds();
    printf("keys generated in %.2f s\n", t1 - t0);

    double *x = malloc(slots * sizeof *x), *want = malloc(slots * sizeof *want), *got = malloc(slots * sizeof *got);
    for (size_t i = 0; i < slots; i++) x[i] = sin(0.001 * (double)i);
    for (size_t i = 0; i < slots; i++) want[i] = x[i] * x[i] + x[(i + 1) % slots] - 0.5;

    ckks_plaintext *pt;
    ckks_ciphertext *ct, *sq, *rot;
    ckks_evaluator *ev;
    TRY(ckks_plaintext_new(&pt, ctx));
    TRY(ckks_ciphertext_new(&ct, ctx));
    TRY(ckks_ciphertext_new(&sq, ctx));
    TRY(ckks_ciphertext_new(&rot, ctx));
    TRY(ckks_evaluator_new(&ev, ctx, keys));
    TRY(ckks_encode_real(ctx, pt, x, slots, slots, top, ckks_context_default_scale(ctx)));
    TRY(ckks_encrypt_pk(ctx, ct, pt, pk));
    double t2 = seconds();
    TRY(ckks_square_relin(ev, sq, ct));
    TRY(ckks_rescale(ev, sq, sq));
    TRY(ckks_rotate(ev, rot, ct, 1));
    TRY(ckks_set_scale(ev, rot, rot, ckks_ciphertext_scale(sq)));
    TRY(ckks_add(ev, sq, sq, rot));
    TRY(ckks_add_const(ev, sq, sq, -0.5));
    double t3 = seconds();
    TRY(ckks_decrypt(ctx, pt, sq, sk));
    TRY(ckks_decode_real(ctx, got, pt));

    double complex *w = malloc(slots * sizeof *w), *g = malloc(slots * sizeof *g);
    for (size_t i = 0; i < slots; i++) w[i] = want[i], g[i] = got[i];
    ckks_precision_stats s;
    TRY(ckks_precision(&s, w, g, slots));
    printf("x = sin(0.001 i), computed x^2 + rotate(x, 1) - 0.5 on %zu encrypted slots in %.3f s\n", slots, t3 - t2);
    printf("slot 0..2: expected % .9f % .9f % .9f\n", want[0], want[1], want[2]);
    printf("           decrypted % .9f % .9f % .9f\n", got[0], got[1], got[2]);
    printf("precision: mean %.1f bits, worst slot %.1f bits, max error %.2e; level %u of %u left\n", s.mean_bits_real,
           s.min_bits_real, s.max_abs_error, ckks_ciphertext_level(sq), top);
    free(x), free(want), free(got), free(w), free(g);
    ckks_plaintext_free(pt);
    ckks_ciphertext_free(ct);
    ckks_ciphertext_free(sq);
    ckks_ciphertext_free(rot);
    ckks_evaluator_free(ev);
    ckks_eval_keys_free(keys);
    ckks_public_key_free(pk);
    ckks_secret_key_free(sk);
    ckks_context_free(ctx);
    return s.mean_bits_real >= 15 ? 0 : 1;
}

/* Benchmark of the CKKS primitives, in the OpenFHE configuration of ../shared/ANCHORS.md by default:
 * N = 2^16, 25 limbs (60 + 24 x 50 bits), 8 special primes of 60 bits, dnum = 3. */
#include "cmd_bench_ckks.h"
#include "util_bench.h"
#include "util_json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ckks/internal.h"
#include "hecnn/hecnn.h"
#include "math/ntt.h"

static clockid_t bench_clock = CLOCK_MONOTONIC;

static double now_ms(void) { return 1e3 * bench_seconds(bench_clock); }

#define MAX_FIGURES 32
typedef struct figures {
    const char *name[MAX_FIGURES];
    double value[MAX_FIGURES];
    int count;
} figures;

static void put(figures *f, const char *name, double v)
{
    if (f->count < MAX_FIGURES) {
        f->name[f->count] = name;
        f->value[f->count++] = v;
    }
}

/* Median of `reps` runs of STMT (after one warm-up run), in ms. */
#define TIME_MEDIAN(result, reps, STMT)                   \
    do {                                                  \
        double samples_[256];                             \
        int r_ = (reps) > 256 ? 256 : (reps);             \
        STMT;                                             \
        for (int i_ = 0; i_ < r_; i_++) {                 \
            double t0_ = now_ms();                        \
            STMT;                                         \
            samples_[i_] = now_ms() - t0_;                \
        }                                                 \
        (result) = bench_median(samples_, (size_t)r_);                  \
    } while (0)

static int fail(const char *what, hecnn_status st)
{
    fprintf(stderr, "hecnn bench ckks: %s: %s: %s\n", what, hecnn_status_name(st), hecnn_last_error_detail());
    return 1;
}

static int run(const ckks_params_literal *params, int threads, int reps, figures *f)
{
    hecnn_set_threads(threads);
    ckks_context *ctx;
    hecnn_status st = ckks_context_new(&ctx, params);
    if (st) return fail("context", st);
    const size_t n = ckks_context_n(ctx), slots = n / 2;
    const unsigned top = ckks_context_max_level(ctx);
    const double scale = ckks_context_default_scale(ctx);
    double ms;

    /* one NTT limb: a ~50-bit prime (q_1) and a 60-bit one (q_0) */
    uint64_t *limb = hecnn_alloc(n * 8);
    for (size_t i = 0; i < n; i++) limb[i] = (i * 0x9e3779b97f4a7c15ull) % ctx->rlwe.tables[1].mod.q;
    TIME_MEDIAN(ms, reps * 20, ntt_forward(&ctx->rlwe.tables[1], limb));
    put(f, "ntt_limb_50bit_ms", ms);
    TIME_MEDIAN(ms, reps * 20, ntt_inverse(&ctx->rlwe.tables[1], limb));
    put(f, "intt_limb_50bit_ms", ms);
    for (size_t i = 0; i < n; i++) limb[i] %= ctx->rlwe.tables[0].mod.q;
    TIME_MEDIAN(ms, reps * 20, ntt_forward(&ctx->rlwe.tables[0], limb));
    put(f, "ntt_limb_60bit_ms", ms);
    hecnn_free(limb);

    ckks_secret_key *sk;
    ckks_public_key *pk;
    ckks_switching_key *rk;
    double t0 = now_ms();
    if ((st = ckks_secret_key_generate(&sk, ctx))) return fail("secret key", st);
    if ((st = ckks_public_key_generate(&pk, sk))) return fail("public key", st);
    put(f, "keygen_sk_pk_ms", now_ms() - t0);
    t0 = now_ms();
    if ((st = ckks_relin_key_generate(&rk, sk, top))) return fail("relin key", st);
    put(f, "keygen_relin_ms", now_ms() - t0);
    ckks_eval_keys *keys;
    ckks_eval_keys_new(&keys, ctx);
    ckks_eval_keys_add(keys, rk);
    static const int steps[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    t0 = now_ms();
    for (int i = 0; i < 8; i++) {
        ckks_switching_key *gk;
        if ((st = ckks_galois_key_generate(&gk, sk, ckks_galois_element_rotation(ctx, steps[i]), top)))
            return fail("rotation key", st);
        ckks_eval_keys_add(keys, gk);
    }
    put(f, "keygen_rotation_ms", (now_ms() - t0) / 8);
    put(f, "relin_key_bytes", (double)ckks_switching_key_memory_bytes(rk));
    put(f, "relin_key_seeded_bytes", (double)ckks_switching_key_bytes(rk, true));

    ckks_evaluator *ev;
    ckks_evaluator_new(&ev, ctx, keys);
    double complex *v = malloc(slots * sizeof *v), *w = malloc(slots * sizeof *w);
    for (size_t i = 0; i < slots; i++) v[i] = sin((double)i) + I * cos((double)i);
    ckks_plaintext *pt;
    ckks_ciphertext *a, *b, *c, *outs[8];
    ckks_plaintext_new(&pt, ctx);
    ckks_ciphertext_new(&a, ctx);
    ckks_ciphertext_new(&b, ctx);
    ckks_ciphertext_new(&c, ctx);
    for (int i = 0; i < 8; i++) ckks_ciphertext_new(&outs[i], ctx);

    TIME_MEDIAN(ms, reps, ckks_encode(ctx, pt, v, slots, slots, top, scale));
    put(f, "encode_ms", ms);
    TIME_MEDIAN(ms, reps, ckks_encrypt_pk(ctx, a, pt, pk));
    put(f, "encrypt_pk_ms", ms);
    TIME_MEDIAN(ms, reps, ckks_encrypt_sk(ctx, b, pt, sk));
    put(f, "encrypt_sk_ms", ms);
    ckks_plaintext *dec;
    ckks_plaintext_new(&dec, ctx);
    TIME_MEDIAN(ms, reps, (ckks_decrypt(ctx, dec, a, sk), ckks_decode(ctx, w, dec)));
    put(f, "decrypt_decode_ms", ms);
    TIME_MEDIAN(ms, reps, ckks_add(ev, c, a, b));
    put(f, "add_ms", ms);
    TIME_MEDIAN(ms, reps, ckks_mul_plain(ev, c, a, pt));
    put(f, "mul_plain_ms", ms);
    TIME_MEDIAN(ms, reps, ckks_mul_relin(ev, c, a, b));
    put(f, "mul_relin_ms", ms);
    TIME_MEDIAN(ms, reps, ckks_rescale(ev, c, a));
    put(f, "rescale_ms", ms);
    TIME_MEDIAN(ms, reps, ckks_rotate(ev, c, a, 1));
    put(f, "rotate_ms", ms);
    TIME_MEDIAN(ms, reps, ckks_rotate_hoisted(ev, outs, a, steps, 8));
    put(f, "rotate_hoisted_8_ms", ms);
    TIME_MEDIAN(ms, reps, for (int i = 0; i < 8; i++) ckks_rotate(ev, outs[i], a, steps[i]));
    put(f, "rotate_8_not_hoisted_ms", ms);
    /* mult + relin at 13 limbs, as in ANCHORS */
    ckks_drop_level(ev, a, a, 12);
    ckks_drop_level(ev, b, b, 12);
    TIME_MEDIAN(ms, reps, ckks_mul_relin(ev, c, a, b));
    put(f, "mul_relin_13_limbs_ms", ms);
    put(f, "peak_rss_mib", bench_peak_rss_mib());

    for (int i = 0; i < 8; i++) ckks_ciphertext_free(outs[i]);
    ckks_ciphertext_free(a);
    ckks_ciphertext_free(b);
    ckks_ciphertext_free(c);
    ckks_plaintext_free(pt);
    ckks_plaintext_free(dec);
    free(v);
    free(w);
    ckks_evaluator_free(ev);
    ckks_eval_keys_free(keys);
    ckks_public_key_free(pk);
    ckks_secret_key_free(sk);
    ckks_context_free(ctx);
    return 0;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: hecnn bench ckks [--json] [--threads T] [--reps R] [--preset n13|n14|n15|n16] [--cpu-time]\n"
            "  Medians of the CKKS primitives (ms), key sizes (bytes) and peak RSS (MiB), at 1 and 2\n"
            "  threads unless --threads is given. Default preset n16: N = 2^16, 25 limbs, dnum 3.\n");
}

int cmd_bench_ckks(int argc, char **argv)
{
    bench_options o = {.reps = 5, .clock = CLOCK_MONOTONIC};
    int rc = bench_parse_options(&o, argc, argv, "bench ckks", usage);
    if (rc >= 0) return rc;
    static const char *const names[CKKS_PRESET_COUNT] = {"n13", "n14", "n15", "n16"};
    ckks_preset preset = CKKS_PRESET_N16;
    if (o.preset) {
        preset = CKKS_PRESET_COUNT;
        for (int p = 0; p < CKKS_PRESET_COUNT; p++)
            if (!strcmp(o.preset, names[p])) preset = (ckks_preset)p;
        if (preset == CKKS_PRESET_COUNT) {
            fprintf(stderr, "hecnn bench ckks: unknown preset '%s'\n", o.preset);
            usage(stderr);
            return 2;
        }
    }
    bench_clock = o.clock;
    const bool json = o.json;
    const int threads = o.threads, reps = o.reps;
    ckks_params_literal params;
    ckks_params_preset(&params, preset);
    ckks_context *probe; /* resolves the automatic dnum for the report */
    if (!ckks_context_new(&probe, &params)) {
        params.dnum = ckks_context_dnum(probe);
        ckks_context_free(probe);
    }
    const int thread_list[2] = {threads ? threads : 1, 2};
    const int runs = threads ? 1 : 2;
    figures f[2];
    memset(f, 0, sizeof f);
    for (int r = 0; r < runs; r++)
        if (run(&params, thread_list[r], reps, &f[r])) return 1;
    if (json) {
        json_object *root = cli_json_object(), *p = cli_json_object();
        cli_json_add_uint(p, "log_n", params.log_n);
        cli_json_add_uint(p, "limbs", params.n_q);
        cli_json_add_uint(p, "special_primes", params.n_p);
        cli_json_add_uint(p, "dnum", params.dnum);
        cli_json_add(root, "params", p);
        cli_json_add_string(root, "simd", hecnn_simd_name());
        for (int r = 0; r < runs; r++) {
            json_object *t = cli_json_object();
            for (int i = 0; i < f[r].count; i++) cli_json_add_number(t, f[r].name[i], "%.4f", f[r].value[i]);
            char key[32];
            snprintf(key, sizeof key, "threads_%d", thread_list[r]);
            cli_json_add(root, key, t);
        }
        if (cli_json_print(stdout, root, false)) return 1;
    } else {
        printf("CKKS primitives: N = 2^%u, %u limbs, %u special primes, dnum %u, SIMD %s, median of %d\n",
               params.log_n, params.n_q, params.n_p, params.dnum, hecnn_simd_name(), reps);
        printf("%-28s", "figure");
        for (int r = 0; r < runs; r++) printf("  %10s %d", "threads", thread_list[r]);
        printf("\n");
        for (int i = 0; i < f[0].count; i++) {
            printf("%-28s", f[0].name[i]);
            for (int r = 0; r < runs; r++) printf("  %12.3f", f[r].value[i]);
            printf("\n");
        }
    }
    return 0;
}

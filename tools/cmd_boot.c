/* `hecnn bench boot`: CKKS bootstrapping, the figures of issue 4 (see docs/BOOTSTRAPPING.md). */
#include "cmd_boot.h"
#include "util_bench.h"
#include "util_json.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hecnn/hecnn.h"

static int fail(const char *what, hecnn_status st)
{
    fprintf(stderr, "hecnn bench boot: %s: %s: %s\n", what, hecnn_status_name(st), hecnn_last_error_detail());
    return 1;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: hecnn bench boot [--json] [--threads T] [--reps R] [--preset full|sparse|test-full|test-sparse]\n"
            "                        [--cpu-time] [--whole-keys] [--pair] [--log-slots L]\n"
            "  Bootstraps random ciphertexts (values in the unit square) and reports the median time per\n"
            "  bootstrap at 1 and 2 threads (or T), the precision (mean and worst bits, the weaker of the\n"
            "  real and imaginary parts), levels left, keys (count, bytes in memory and seeded), peak RSS,\n"
            "  the failure probability and log QP. Default preset full: N = 2^16, 2^15 slots, dense\n"
            "  ternary secret, ephemeral h = 32. --cpu-time reports process CPU time (steadier on a busy\n"
            "  machine; not meaningful with several threads). The rotation keys are held compact (uniform\n"
            "  halves re-expanded from their seeds at each use, the other halves packed): 42 %% of the\n"
            "  memory of whole keys; --whole-keys holds them whole, for comparison. --pair also bootstraps\n"
            "  two real ciphertexts (the real parts, and a second real vector) as one with\n"
            "  ckks_bootstrap_pair and reports its time and precision (real parts of both halves).\n"
            "  --log-slots L bootstraps 2^L slots on the preset's parameters (a sparse packing).\n");
}

typedef struct run_result {
    int threads;
    double seconds, mean_bits, worst_bits, mean_bits_median;
    double pair_seconds, pair_mean_bits, pair_worst_bits; /* --pair */
} run_result;

int cmd_bench_boot(int argc, char **argv)
{
    bench_options o = {.reps = 3, .clock = CLOCK_MONOTONIC};
    int rc = bench_parse_options(&o, argc, argv, "bench boot", usage);
    if (rc >= 0) return rc;
    const char *preset_name = o.preset ? o.preset : "full";
    ckks_boot_preset preset;
    if (!strcmp(preset_name, "full")) preset = CKKS_BOOT_N16_FULL;
    else if (!strcmp(preset_name, "sparse")) preset = CKKS_BOOT_N16_SPARSE;
    else if (!strcmp(preset_name, "test-full")) preset = CKKS_BOOT_TEST_N12_FULL;
    else if (!strcmp(preset_name, "test-sparse")) preset = CKKS_BOOT_TEST_N12_SPARSE;
    else {
        fprintf(stderr, "hecnn bench boot: unknown preset '%s'\n", preset_name);
        usage(stderr);
        return 2;
    }
    const bool json = o.json;
    const int threads = o.threads, reps = o.reps;
    const clockid_t boot_clock = o.clock;
    const bool compact = !o.whole_keys;

    ckks_params_literal params;
    ckks_boot_params bp;
    hecnn_status st = ckks_boot_preset_params(&params, &bp, preset);
    if (st) return fail("preset", st);
    if (o.log_slots) bp.log_slots = (unsigned)o.log_slots;
    ckks_context *ctx = NULL;
    ckks_bootstrapper *bt = NULL;
    ckks_secret_key *sk = NULL;
    ckks_boot_keys *keys = NULL;
    if ((st = ckks_context_new(&ctx, &params))) return fail("context", st);
    double t0 = bench_seconds(CLOCK_MONOTONIC);
    if ((st = ckks_bootstrapper_new(&bt, ctx, &bp))) return fail("bootstrapper", st);
    const double setup_s = bench_seconds(CLOCK_MONOTONIC) - t0;
    if ((st = ckks_secret_key_generate(&sk, ctx))) return fail("secret key", st);
    t0 = bench_seconds(CLOCK_MONOTONIC);
    st = compact ? ckks_boot_keys_generate_compact(&keys, bt, sk) : ckks_boot_keys_generate(&keys, bt, sk);
    if (st) return fail("bootstrapping keys", st);
    const double keygen_s = bench_seconds(CLOCK_MONOTONIC) - t0;

    const size_t n = ckks_bootstrapper_slots(bt);
    double complex *v = malloc(n * sizeof *v), *w = malloc(n * sizeof *w);
    ckks_plaintext *pt = NULL;
    ckks_ciphertext *ct = NULL, *out = NULL;
    if (!v || !w || ckks_plaintext_new(&pt, ctx) || ckks_ciphertext_new(&ct, ctx) || ckks_ciphertext_new(&out, ctx))
        return fail("buffers", HECNN_ERR_NO_MEMORY);
    unsigned long long seed = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        double re = (double)(seed >> 11) * 0x1.0p-53 * 2 - 1;
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        double im = (double)(seed >> 11) * 0x1.0p-53 * 2 - 1;
        v[i] = re + I * im;
    }
    if ((st = ckks_encode(ctx, pt, v, n, n, 0, ckks_context_default_scale(ctx)))) return fail("encode", st);
    if ((st = ckks_encrypt_sk(ctx, ct, pt, sk))) return fail("encrypt", st);
    /* --pair: the real parts of v and a second real vector (the imaginary parts of v) */
    const bool pair = o.pair;
    double complex *va = NULL, *vb = NULL;
    ckks_ciphertext *ca = NULL, *cb = NULL, *out_b = NULL;
    if (pair) {
        va = malloc(n * sizeof *va);
        vb = malloc(n * sizeof *vb);
        if (!va || !vb || ckks_ciphertext_new(&ca, ctx) || ckks_ciphertext_new(&cb, ctx) || ckks_ciphertext_new(&out_b, ctx))
            return fail("buffers", HECNN_ERR_NO_MEMORY);
        for (size_t i = 0; i < n; i++) {
            va[i] = creal(v[i]);
            vb[i] = cimag(v[i]);
        }
        if ((st = ckks_encode(ctx, pt, va, n, n, 0, ckks_context_default_scale(ctx))) ||
            (st = ckks_encrypt_sk(ctx, ca, pt, sk)) ||
            (st = ckks_encode(ctx, pt, vb, n, n, 0, ckks_context_default_scale(ctx))) ||
            (st = ckks_encrypt_sk(ctx, cb, pt, sk)))
            return fail("encrypt pair", st);
    }

    const int thread_list[2] = {threads ? threads : 1, 2};
    const int runs = threads ? 1 : 2;
    run_result res[2];
    double *times = malloc((size_t)reps * sizeof *times), *bits = malloc((size_t)reps * sizeof *bits);
    if (!times || !bits) return fail("buffers", HECNN_ERR_NO_MEMORY);
    for (int r = 0; r < runs; r++) {
        hecnn_set_threads(thread_list[r]);
        res[r] = (run_result){.threads = thread_list[r], .worst_bits = INFINITY};
        double sum_bits = 0;
        for (int k = 0; k < reps; k++) {
            t0 = bench_seconds(boot_clock);
            if ((st = ckks_bootstrap(bt, keys, out, ct))) return fail("bootstrap", st);
            times[k] = bench_seconds(boot_clock) - t0;
            if ((st = ckks_decrypt(ctx, pt, out, sk)) || (st = ckks_decode(ctx, w, pt))) return fail("decrypt", st);
            ckks_precision_stats ps;
            ckks_precision(&ps, v, w, n);
            bits[k] = fmin(ps.mean_bits_real, ps.mean_bits_imag);
            sum_bits += bits[k];
            res[r].worst_bits = fmin(res[r].worst_bits, fmin(ps.min_bits_real, ps.min_bits_imag));
        }
        res[r].seconds = bench_median(times, (size_t)reps);
        res[r].mean_bits = sum_bits / reps;
        if (!pair) continue;
        res[r].pair_worst_bits = INFINITY;
        sum_bits = 0;
        for (int k = 0; k < reps; k++) {
            t0 = bench_seconds(boot_clock);
            if ((st = ckks_bootstrap_pair(bt, keys, out, out_b, ca, cb))) return fail("paired bootstrap", st);
            times[k] = bench_seconds(boot_clock) - t0;
            double mean = INFINITY;
            for (int h = 0; h < 2; h++) {
                if ((st = ckks_decrypt(ctx, pt, h ? out_b : out, sk)) || (st = ckks_decode(ctx, w, pt)))
                    return fail("decrypt", st);
                for (size_t i = 0; i < n; i++) w[i] = creal(w[i]);
                ckks_precision_stats ps;
                ckks_precision(&ps, h ? vb : va, w, n);
                mean = fmin(mean, ps.mean_bits_real);
                res[r].pair_worst_bits = fmin(res[r].pair_worst_bits, ps.min_bits_real);
            }
            sum_bits += mean;
        }
        res[r].pair_seconds = bench_median(times, (size_t)reps);
        res[r].pair_mean_bits = sum_bits / reps;
    }
    const size_t nkeys = ckks_boot_keys_count(keys);
    const double key_mib = (double)ckks_boot_keys_memory_bytes(keys) / 1048576.0,
                 key_seeded_mib = (double)ckks_boot_keys_bytes(keys, true) / 1048576.0;
    const double rss = bench_peak_rss_mib(), pre_mib = (double)ckks_bootstrapper_bytes(bt) / 1048576.0;
    const unsigned out_level = ckks_bootstrapper_output_level(bt), depth = ckks_bootstrapper_depth(bt);
    const double fail_log2 = ckks_bootstrapper_log2_failure(bt), log_qp = ckks_context_log_qp(ctx);

    rc = 0;
    if (json) {
        json_object *root = cli_json_object();
        cli_json_add_string(root, "preset", preset_name);
        cli_json_add_uint(root, "log_n", params.log_n);
        cli_json_add_uint(root, "slots", n);
        cli_json_add_number(root, "log_qp", "%.1f", log_qp);
        cli_json_add_uint(root, "log_qp_bound", ckks_max_log_qp_128(params.log_n));
        cli_json_add_string(root, "secret", "ternary");
        cli_json_add_uint(root, "ephemeral_hamming_weight", bp.ephemeral_hamming_weight);
        cli_json_add_string(root, "simd", hecnn_simd_name());
        cli_json_add_string(root, "clock", boot_clock == CLOCK_MONOTONIC ? "wall" : "cpu");
        cli_json_add_int(root, "reps", reps);
        cli_json_add_uint(root, "levels_left", out_level);
        cli_json_add_uint(root, "depth", depth);
        cli_json_add_number(root, "log2_failure", "%.1f", fail_log2);
        cli_json_add_uint(root, "keys", nkeys);
        cli_json_add_bool(root, "compact_keys", compact);
        cli_json_add_number(root, "key_bytes", "%.0f", key_mib * 1048576.0);
        cli_json_add_number(root, "key_bytes_seeded", "%.0f", key_seeded_mib * 1048576.0);
        cli_json_add_number(root, "precomputed_bytes", "%.0f", pre_mib * 1048576.0);
        cli_json_add_number(root, "keygen_s", "%.3f", keygen_s);
        cli_json_add_number(root, "setup_s", "%.3f", setup_s);
        cli_json_add_number(root, "peak_rss_mib", "%.1f", rss);
        for (int r = 0; r < runs; r++) {
            json_object *t = cli_json_object();
            cli_json_add_number(t, "seconds", "%.3f", res[r].seconds);
            cli_json_add_number(t, "mean_bits", "%.2f", res[r].mean_bits);
            cli_json_add_number(t, "worst_bits", "%.2f", res[r].worst_bits);
            if (pair) {
                cli_json_add_number(t, "pair_seconds", "%.3f", res[r].pair_seconds);
                cli_json_add_number(t, "pair_mean_bits", "%.2f", res[r].pair_mean_bits);
                cli_json_add_number(t, "pair_worst_bits", "%.2f", res[r].pair_worst_bits);
            }
            char key[32];
            snprintf(key, sizeof key, "threads_%d", res[r].threads);
            cli_json_add(root, key, t);
        }
        if (cli_json_print(stdout, root, false)) rc = 1;
    } else {
        printf("CKKS bootstrapping, preset %s: N = 2^%u, %zu slots, log QP %.1f (128-bit bound %u), SIMD %s\n", preset_name,
               params.log_n, n, log_qp, ckks_max_log_qp_128(params.log_n), hecnn_simd_name());
        printf("  depth %u, levels left %u, failure probability 2^%.1f per bootstrap\n", depth, out_level, fail_log2);
        printf("  keys: %zu (%s), %.1f MiB in memory, %.1f MiB seeded; generated in %.1f s\n", nkeys,
               compact ? "compact" : "whole", key_mib, key_seeded_mib, keygen_s);
        printf("  precomputed diagonals %.1f MiB (setup %.1f s); peak RSS %.1f MiB\n", pre_mib, setup_s, rss);
        for (int r = 0; r < runs; r++) {
            printf("  %d thread%s: %.3f s per bootstrap (%s, median of %d), precision mean %.2f bits, worst %.2f bits\n",
                   res[r].threads, res[r].threads > 1 ? "s" : "", res[r].seconds,
                   boot_clock == CLOCK_MONOTONIC ? "wall" : "cpu", reps, res[r].mean_bits, res[r].worst_bits);
            if (pair)
                printf("    paired (two real ciphertexts): %.3f s (%.3f s per ciphertext), precision mean %.2f bits, "
                       "worst %.2f bits (real parts, the weaker half)\n",
                       res[r].pair_seconds, res[r].pair_seconds / 2, res[r].pair_mean_bits, res[r].pair_worst_bits);
        }
    }
    free(times);
    free(bits);
    free(v);
    free(w);
    ckks_plaintext_free(pt);
    ckks_ciphertext_free(ct);
    ckks_ciphertext_free(out);
    ckks_ciphertext_free(ca);
    ckks_ciphertext_free(cb);
    ckks_ciphertext_free(out_b);
    free(va);
    free(vb);
    ckks_boot_keys_free(keys);
    ckks_secret_key_free(sk);
    ckks_bootstrapper_free(bt);
    ckks_context_free(ctx);
    return rc;
}

/* The data owner's commands: params, keygen, encrypt, decrypt. */
#include "cmd_keys.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util_cli.h"

#define PRESET_HELP "a 128-bit secure preset: n13, n14, n15 or n16"

/* ---- params ---- */

int cmd_params(int argc, char **argv)
{
    const char *preset = NULL, *params = NULL, *out = NULL;
    const cli_opt opts[] = {
        {"preset", CLI_OPT_STRING, &preset, "NAME", PRESET_HELP, NULL},
        {"params", CLI_OPT_STRING, &params, "FILE", "describe the parameter set in FILE", NULL},
        {"out", CLI_OPT_STRING, &out, "FILE", "write the parameter set to FILE", NULL},
        {0},
    };
    const cli_command cmd = {
        "params", "[--preset NAME | --params FILE] [--out FILE]",
        "Without options, list the presets. With --preset or --params, describe one parameter set;\n"
        "with --out, also write it as a parameter file for keygen, encrypt and decrypt.",
        opts, 0};
    int rc = cli_parse(&cmd, argc, argv, NULL, NULL);
    if (rc) return rc == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    if (!preset && !params) {
        if (out) {
            cli_error("--out needs --preset NAME or --params FILE");
            return CLI_EXIT_USAGE;
        }
        printf("%-6s %-8s %-8s %-18s %-8s %s\n", "preset", "N", "levels", "log QP (bound)", "scale", "dnum");
        for (int i = 0; i < CKKS_PRESET_COUNT; i++) {
            ckks_params_literal p;
            ckks_context *ctx;
            ckks_params_preset(&p, (ckks_preset)i);
            if (ckks_context_new(&ctx, &p)) {
                cli_status_error(HECNN_ERR_INVALID_PARAMS, "preset %s", cli_preset_name((ckks_preset)i));
                return CLI_EXIT_FAIL;
            }
            char qp[32];
            snprintf(qp, sizeof qp, "%.1f (%u)", ckks_context_log_qp(ctx), ckks_max_log_qp_128(p.log_n));
            printf("%-6s %-8zu 0..%-5u %-18s 2^%-6u %u\n", cli_preset_name((ckks_preset)i), ckks_context_n(ctx),
                   ckks_context_max_level(ctx), qp, p.log_scale, ckks_context_dnum(ctx));
            ckks_context_free(ctx);
        }
        return CLI_EXIT_OK;
    }
    ckks_context *ctx;
    ckks_params_literal lit;
    if (cli_context(params, preset, &ctx, &lit)) return CLI_EXIT_FAIL;
    printf("parameter set %s%s\n", preset ? "preset " : "", preset ? preset : params);
    cli_print_context(stdout, ctx);
    ckks_context_free(ctx);
    if (out) {
        if (cli_save_params(out, &lit)) return CLI_EXIT_FAIL;
        printf("wrote %s (%llu bytes)\n", out, cli_file_size(out));
    }
    return CLI_EXIT_OK;
}

/* ---- keygen ---- */

int cmd_keygen(int argc, char **argv)
{
    cli_protect_secrets(); /* it holds a secret key */
    const char *preset = NULL, *params = NULL, *out_dir = NULL, *rotations = NULL;
    bool conjugate = false, no_relin = false, full = false, force = false;
    const cli_opt opts[] = {
        {"preset", CLI_OPT_STRING, &preset, "NAME", PRESET_HELP, NULL},
        {"params", CLI_OPT_STRING, &params, "FILE", "a parameter file (from 'hecnn params --out')", NULL},
        {"out-dir", CLI_OPT_STRING, &out_dir, "DIR", "directory for the key files (created with mode 0700)", NULL},
        {"rotations", CLI_OPT_STRING, &rotations, "LIST", "Galois keys for these slot rotations: 1,2,-1,4..7 or 'pow2'", NULL},
        {"conjugate", CLI_OPT_FLAG, &conjugate, NULL, "also a key for complex conjugation", NULL},
        {"no-relin", CLI_OPT_FLAG, &no_relin, NULL, "no relinearization key (no ciphertext products)", NULL},
        {"full-keys", CLI_OPT_FLAG, &full, NULL, "store evaluation keys unseeded (twice the size)", NULL},
        {"force", CLI_OPT_FLAG, &force, NULL, "replace key files that already exist in DIR", NULL},
        {0},
    };
    const cli_command cmd = {
        "keygen", "(--preset NAME | --params FILE) --out-dir DIR [--rotations LIST] [--conjugate] [--no-relin]",
        "Generate a key set and write it to DIR:\n"
        "  " CLI_KEY_FILE_PARAMS "  the parameter set\n"
        "  " CLI_KEY_FILE_SECRET "    the secret key (mode 0600): keep it; only it decrypts\n"
        "  " CLI_KEY_FILE_PUBLIC "    the public encryption key\n"
        "  " CLI_KEY_FILE_EVAL "     relinearization and Galois keys for the server\n"
        "Public and evaluation keys are stored seeded (their uniform halves as 32-byte seeds).\n"
        "'pow2' asks for rotations by +-1, +-2, +-4, ... up to half the slots.",
        opts, 0};
    int rc = cli_parse(&cmd, argc, argv, NULL, NULL);
    if (rc) return rc == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    if (cli_require(&cmd, "out-dir", out_dir)) return CLI_EXIT_USAGE;
    ckks_context *ctx;
    ckks_params_literal lit;
    if (cli_context(params, preset, &ctx, &lit)) return CLI_EXIT_FAIL;

    int *steps = NULL;
    size_t n_steps = 0;
    rc = CLI_EXIT_FAIL;
    char *paths[CLI_KEY_FILES] = {0};
    ckks_secret_key *sk = NULL;
    ckks_public_key *pk = NULL;
    ckks_eval_keys *keys = NULL;
    if (rotations && !strcmp(rotations, "pow2")) {
        const size_t slots = ckks_context_max_slots(ctx);
        steps = malloc(2 * 64 * sizeof *steps);
        if (!steps) goto done;
        for (size_t k = 1; k < slots; k *= 2) {
            steps[n_steps++] = (int)k;
            steps[n_steps++] = -(int)k;
        }
    } else if (rotations && cli_parse_int_list("rotations", rotations, &steps, &n_steps)) {
        rc = CLI_EXIT_USAGE;
        goto done;
    }
    if (cli_key_dir_prepare(paths, out_dir, force)) goto done;
    hecnn_status st;
    if ((st = ckks_secret_key_generate(&sk, ctx))) {
        cli_status_error(st, "cannot generate the secret key");
        goto done;
    }
    if ((st = ckks_public_key_generate(&pk, sk))) {
        cli_status_error(st, "cannot generate the public key");
        goto done;
    }
    if ((st = ckks_eval_keys_generate(&keys, sk, !no_relin, steps, n_steps, conjugate))) {
        cli_status_error(st, "cannot generate the evaluation keys");
        goto done;
    }
    if (cli_key_dir_write(paths, &lit, pk, keys, !full, sk)) goto done;
    printf("parameter set %016llx: N = %zu, levels 0..%u, log QP %.1f (128-bit secure)\n",
           (unsigned long long)ckks_context_param_id(ctx), ckks_context_n(ctx), ckks_context_max_level(ctx),
           ckks_context_log_qp(ctx));
    printf("wrote %-28s %12llu bytes\n", paths[CLI_KEY_PARAMS], cli_file_size(paths[CLI_KEY_PARAMS]));
    printf("wrote %-28s %12llu bytes (mode 0600: keep it private)\n", paths[CLI_KEY_SECRET], cli_file_size(paths[CLI_KEY_SECRET]));
    printf("wrote %-28s %12llu bytes\n", paths[CLI_KEY_PUBLIC], cli_file_size(paths[CLI_KEY_PUBLIC]));
    const size_t count = ckks_eval_keys_count(keys);
    const bool relin = ckks_eval_keys_relin(keys) != NULL;
    printf("wrote %-28s %12llu bytes (%s%zu Galois key%s, %s)\n", paths[CLI_KEY_EVAL], cli_file_size(paths[CLI_KEY_EVAL]),
           relin ? "relinearization + " : "", count - relin, count - relin == 1 ? "" : "s", full ? "full" : "seeded");
    rc = CLI_EXIT_OK;
done:
    for (int i = 0; i < CLI_KEY_FILES; i++) free(paths[i]);
    free(steps);
    ckks_eval_keys_free(keys);
    ckks_public_key_free(pk);
    ckks_secret_key_free(sk);
    ckks_context_free(ctx);
    return rc;
}

/* ---- encrypt ---- */

/* log2 of q_0 * ... * q_level. */
static double log_q_level(const ckks_context *ctx, unsigned level)
{
    double s = 0;
    for (unsigned i = 0; i <= level; i++) s += log2((double)ckks_context_q(ctx, i));
    return s;
}

int cmd_encrypt(int argc, char **argv)
{
    cli_protect_secrets(); /* it holds a secret key */
    const char *preset = NULL, *params = NULL, *pk_path = NULL, *sk_path = NULL, *in = NULL, *out = NULL;
    bool binary = false, slots_given = false, level_given = false, scale_given = false;
    size_t slots = 0;
    unsigned level = 0, scale_bits = 0;
    const cli_opt opts[] = {
        {"params", CLI_OPT_STRING, &params, "FILE", "parameter file (from keygen)", NULL},
        {"preset", CLI_OPT_STRING, &preset, "NAME", "or a preset, instead of --params", NULL},
        {"public-key", CLI_OPT_STRING, &pk_path, "FILE", "encrypt with this public key", NULL},
        {"secret-key", CLI_OPT_STRING, &sk_path, "FILE", "or with the secret key (ciphertext half the size)", NULL},
        {"in", CLI_OPT_STRING, &in, "FILE", "values: one per line, \"re\" or \"re im\" ('-' for stdin)", NULL},
        {"binary", CLI_OPT_FLAG, &binary, NULL, "--in holds little-endian doubles (real values)", NULL},
        {"out", CLI_OPT_STRING, &out, "CT", "ciphertext file to write", NULL},
        {"slots", CLI_OPT_SIZE, &slots, "N", "slots to encode (power of two; default N/2)", &slots_given},
        {"level", CLI_OPT_UINT, &level, "L", "encryption level (default: the top level)", &level_given},
        {"scale-bits", CLI_OPT_UINT, &scale_bits, "B", "scale 2^B (default: the parameter set's)", &scale_given},
        {0},
    };
    const cli_command cmd = {"encrypt",
                             "--params FILE (--public-key FILE | --secret-key FILE) --in FILE --out CT [--binary] [--slots N]\n"
                             "       [--level L] [--scale-bits B]",
                             "Encrypt a vector of real or complex numbers into one ciphertext.", opts, 0};
    int rc = cli_parse(&cmd, argc, argv, NULL, NULL);
    if (rc) return rc == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    if (!pk_path == !sk_path) {
        cli_error("give exactly one of --public-key FILE and --secret-key FILE");
        return CLI_EXIT_USAGE;
    }
    if (cli_require(&cmd, "in", in) || cli_require(&cmd, "out", out)) return CLI_EXIT_USAGE;
    ckks_context *ctx;
    if (cli_context(params, preset, &ctx, NULL)) return CLI_EXIT_FAIL;
    rc = CLI_EXIT_FAIL;
    ckks_public_key *pk = NULL;
    ckks_secret_key *sk = NULL;
    ckks_plaintext *pt = NULL;
    ckks_ciphertext *ct = NULL;
    double complex *values = NULL;
    size_t count = 0;
    const size_t max_slots = ckks_context_max_slots(ctx);
    const unsigned top = ckks_context_max_level(ctx);
    if (!slots_given) slots = max_slots;
    if (!level_given) level = top;
    if (!scale_given) scale_bits = ckks_context_params(ctx)->log_scale;
    if (!slots || (slots & (slots - 1)) || slots > max_slots) {
        cli_error("--slots %zu: need a power of two <= N/2 = %zu", slots, max_slots);
        rc = CLI_EXIT_USAGE;
        goto done;
    }
    if (level > top) {
        cli_error("--level %u: the parameter set's levels are 0..%u", level, top);
        rc = CLI_EXIT_USAGE;
        goto done;
    }
    if (scale_bits < 1 || scale_bits > 120) {
        cli_error("--scale-bits %u: need 1..120", scale_bits);
        rc = CLI_EXIT_USAGE;
        goto done;
    }
    if (pk_path ? cli_load_public_key(ctx, pk_path, &pk) : cli_load_secret_key(ctx, sk_path, &sk)) goto done;
    if (cli_read_values(in, binary, slots, &values, &count, NULL)) goto done;
    if (!count) {
        cli_error("no values in '%s'", in);
        goto done;
    }
    if (count > slots) {
        cli_error("%zu values in '%s' do not fit in %zu slots%s", count, in, slots,
                  slots < max_slots ? " (raise --slots)" : "");
        goto done;
    }
    /* |coefficient| <= max |value| * scale; it must stay well below Q_level / 2 */
    double vmax = 0;
    for (size_t i = 0; i < count; i++) vmax = fmax(vmax, fmax(fabs(creal(values[i])), fabs(cimag(values[i]))));
    const double headroom = log_q_level(ctx, level) - 2 - scale_bits;
    if (vmax > 0 && log2(vmax) + 1 > headroom) {
        cli_error("values up to %g at scale 2^%u overflow the modulus at level %u (log2 Q = %.1f): lower --scale-bits, raise --level "
                  "or scale the data",
                  vmax, scale_bits, level, log_q_level(ctx, level));
        goto done;
    }
    hecnn_status st;
    if ((st = ckks_plaintext_new(&pt, ctx)) || (st = ckks_ciphertext_new(&ct, ctx)) ||
        (st = ckks_encode(ctx, pt, values, count, slots, level, ldexp(1.0, (int)scale_bits)))) {
        cli_status_error(st, "cannot encode '%s'", in);
        goto done;
    }
    st = pk ? ckks_encrypt_pk(ctx, ct, pt, pk) : ckks_encrypt_sk(ctx, ct, pt, sk);
    if (st) {
        cli_status_error(st, "cannot encrypt");
        goto done;
    }
    if (cli_save_ciphertext(out, ct)) goto done;
    printf("wrote %s: %zu values in %zu slots, level %u, scale 2^%u, %llu bytes\n", out, count, slots, level, scale_bits,
           cli_file_size(out));
    rc = CLI_EXIT_OK;
done:
    free(values);
    ckks_ciphertext_free(ct);
    ckks_plaintext_free(pt);
    ckks_secret_key_free(sk);
    ckks_public_key_free(pk);
    ckks_context_free(ctx);
    return rc;
}

/* ---- decrypt ---- */

/* Decrypting with the wrong key (or a corrupted ciphertext) gives coefficients uniform modulo Q;
 * decoded, nearly every slot is then larger than any value a valid ciphertext at this level and
 * scale can hold (Q / (2 scale), over the limbs the decoder reads). */
static bool looks_like_noise(const ckks_context *ctx, const ckks_plaintext *pt, const double complex *v, size_t slots)
{
    const unsigned limbs = ckks_plaintext_level(pt) + 1 < 3 ? ckks_plaintext_level(pt) + 1 : 3;
    const double log_bound = log_q_level(ctx, limbs - 1) - 1 - log2(ckks_plaintext_scale(pt));
    size_t big = 0;
    for (size_t i = 0; i < slots; i++) {
        const double m = fmax(fabs(creal(v[i])), fabs(cimag(v[i])));
        if (!isfinite(m) || (m > 0 && log2(m) > log_bound)) big++;
    }
    return slots && big * 10 >= slots * 9;
}

int cmd_decrypt(int argc, char **argv)
{
    cli_protect_secrets(); /* it holds a secret key */
    const char *preset = NULL, *params = NULL, *sk_path = NULL, *in = NULL, *out = NULL;
    bool binary = false, with_imag = false, no_check = false, count_given = false, flood_given = false;
    size_t count = 0;
    double flood_bits = 0;
    const cli_opt opts[] = {
        {"params", CLI_OPT_STRING, &params, "FILE", "parameter file (from keygen)", NULL},
        {"preset", CLI_OPT_STRING, &preset, "NAME", "or a preset, instead of --params", NULL},
        {"secret-key", CLI_OPT_STRING, &sk_path, "FILE", "the secret key", NULL},
        {"in", CLI_OPT_STRING, &in, "CT", "ciphertext file", NULL},
        {"out", CLI_OPT_STRING, &out, "FILE", "values, one per line ('-' for stdout)", NULL},
        {"count", CLI_OPT_SIZE, &count, "N", "write the first N values (default: all slots)", &count_given},
        {"binary", CLI_OPT_FLAG, &binary, NULL, "write little-endian doubles instead of text", NULL},
        {"complex", CLI_OPT_FLAG, &with_imag, NULL, "write \"re im\" (binary: re, im pairs)", NULL},
        {"no-check", CLI_OPT_FLAG, &no_check, NULL, "write the values even if they look like noise", NULL},
        {"flood", CLI_OPT_DOUBLE, &flood_bits, "BITS", "flood the decryption: noise 2^BITS times the error estimate", &flood_given},
        {0},
    };
    const cli_command cmd = {"decrypt", "--params FILE --secret-key FILE --in CT --out FILE [--count N] [--binary] [--complex] [--flood BITS]",
                             "Decrypt a ciphertext and write its slots. The result is refused when it looks like\n"
                             "decryption under the wrong key (nearly every slot beyond what the level can hold).\n"
                             "A decryption carries an error that depends on the secret key: values that leave the data\n"
                             "owner should be flooded (--flood BITS: fresh noise 2^BITS times the error estimate of a fresh\n"
                             "or rescaled ciphertext; 30 / 2 + log2(N) / 2 + 1 bits for 30 bits of statistical security,\n"
                             "docs/SECURITY.md). Off by default: the values are then exact up to the CKKS error.",
                             opts, 0};
    int rc = cli_parse(&cmd, argc, argv, NULL, NULL);
    if (rc) return rc == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    if (cli_require(&cmd, "secret-key", sk_path) || cli_require(&cmd, "in", in) || cli_require(&cmd, "out", out))
        return CLI_EXIT_USAGE;
    if (flood_given && !(flood_bits > 0 && flood_bits <= 64)) {
        cli_error("--flood %g: need 0 < BITS <= 64", flood_bits);
        return CLI_EXIT_USAGE;
    }
    const ckks_flood_options flood = {.flood_bits = flood_bits};
    ckks_context *ctx;
    if (cli_context(params, preset, &ctx, NULL)) return CLI_EXIT_FAIL;
    rc = CLI_EXIT_FAIL;
    ckks_secret_key *sk = NULL;
    ckks_plaintext *pt = NULL;
    ckks_ciphertext *ct = NULL;
    double complex *values = NULL;
    hecnn_status st;
    if ((st = ckks_plaintext_new(&pt, ctx)) || (st = ckks_ciphertext_new(&ct, ctx))) {
        cli_status_error(st, "cannot allocate");
        goto done;
    }
    if (cli_load_ciphertext(ctx, in, ct)) goto done;
    if (cli_load_secret_key(ctx, sk_path, &sk)) goto done;
    if ((st = flood_given ? ckks_decrypt_flooded(ctx, pt, ct, sk, &flood) : ckks_decrypt(ctx, pt, ct, sk))) {
        cli_status_error(st, "cannot decrypt '%s'", in);
        goto done;
    }
    if (flood_given)
        fprintf(stderr, "%s: note: flooded with %g bits: noise of standard deviation %.3g per slot\n", cli_command_prefix(),
                flood_bits, ckks_flood_slot_stddev(ctx, ct, &flood));
    const size_t slots = ckks_plaintext_slots(pt);
    if (!(values = malloc(slots * sizeof *values))) {
        cli_error("out of memory");
        goto done;
    }
    if ((st = ckks_decode(ctx, values, pt))) {
        cli_status_error(st, "cannot decode '%s'", in);
        goto done;
    }
    if (!no_check && looks_like_noise(ctx, pt, values, slots)) {
        cli_error("decrypting '%s' gives noise: wrong secret key or corrupted ciphertext (--no-check writes it anyway)", in);
        goto done;
    }
    if (!count_given) count = slots;
    if (count > slots) {
        cli_error("--count %zu: the ciphertext holds %zu slots", count, slots);
        rc = CLI_EXIT_USAGE;
        goto done;
    }
    if (cli_write_values(out, binary, with_imag, values, count)) goto done;
    rc = CLI_EXIT_OK;
done:
    free(values);
    ckks_ciphertext_free(ct);
    ckks_plaintext_free(pt);
    ckks_secret_key_free(sk);
    ckks_context_free(ctx);
    return rc;
}

/* libFuzzer harness for hecnn_mnist_prepared_load (the encrypted MNIST model, docs/MNIST.md; see
 * fuzz_common.h), under a small insecure context that the network accepts (N = 2^10, ten ciphertext
 * primes, row width 32). Each input is tried twice: as it is, and with its header digest (bytes
 * 96..127, always checked) recomputed, so that mutations reach the header's fields and the
 * ciphertexts behind them. The whole-file checksum at the end stays a real one: a mutated model is
 * refused there at the latest, after every ciphertext has been read and checked.
 *
 * Seeds (HECNN_FUZZ_SEED_DIR): the model's header and first ciphertexts (cut, "model_head"), and,
 * only when HECNN_FUZZ_FULL_SEED is set, the whole encrypted model (megabytes). */
#include <openssl/evp.h>

#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_PREP_HEADER 96

static ckks_context *em_ctx;
static hecnn_mnist_net *em_net;

static void write_seeds(const ckks_secret_key *sk)
{
    if (!getenv("HECNN_FUZZ_SEED_DIR")) return;
    hecnn_status st;
    ckks_public_key *pk;
    const uint8_t s2[CKKS_SEED_BYTES] = {4};
    if ((st = ckks_public_key_generate_derand(&pk, sk, s2))) fz_die("public key", st);
    hecnn_mnist_model *m = calloc(1, sizeof *m);
    if (!m) abort();
    double *w = (double *)m;
    for (size_t i = 0; i < sizeof *m / sizeof *w; i++) w[i] = (double)((int)(i * 37 % 17) - 8) / 64;
    hecnn_mnist_prepared *prep;
    if ((st = hecnn_mnist_encrypt_model(&prep, em_net, m, pk))) fz_die("encrypt model", st);
    fz_buf b;
    fz_out(&b);
    if ((st = hecnn_mnist_prepared_save(prep, b.f))) fz_die("save", st);
    fz_close(&b);
    if (getenv("HECNN_FUZZ_FULL_SEED")) fz_seed_file("model_full", &b);
    if (b.len > 64 * 1024) b.len = 64 * 1024;
    fz_seed_file("model_head", &b);
    free(b.data);
    hecnn_mnist_prepared_free(prep);
    free(m);
    ckks_public_key_free(pk);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    ckks_params_literal p = {.log_n = 10, .n_q = 10, .n_p = 1, .log_scale = 20, .allow_insecure = true};
    p.log_q[0] = 30, p.log_p[0] = 30;
    for (int i = 1; i < 10; i++) p.log_q[i] = 20;
    hecnn_status st;
    if ((st = ckks_context_new(&em_ctx, &p))) fz_die("context", st);
    if ((st = hecnn_mnist_net_new(&em_net, em_ctx, 32, HECNN_MNIST_ENCRYPTED_MODEL))) fz_die("net", st);
    ckks_secret_key *sk;
    const uint8_t s1[CKKS_SEED_BYTES] = {3};
    if ((st = ckks_secret_key_generate_derand(&sk, em_ctx, s1))) fz_die("secret key", st);
    write_seeds(sk);
    ckks_secret_key_free(sk);
    return 0;
}

static void one_input(const uint8_t *data, size_t size)
{
    hecnn_mnist_prepared *prep = NULL;
    FILE *f = fz_open(data, size);
    const hecnn_status st = hecnn_mnist_prepared_load(&prep, em_net, f);
    fclose(f);
    if (st) {
        fz_check(prep == NULL, "failed load left a model");
        return;
    }
    fz_check(hecnn_mnist_prepared_ciphertexts(prep) > 0, "a loaded model holds ciphertexts");
    hecnn_mnist_prepared_free(prep);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one_input(data, size);
    if (size >= FZ_PREP_HEADER + 32) {
        uint8_t *copy = malloc(size);
        if (!copy) abort();
        memcpy(copy, data, size);
        unsigned len = 0;
        if (EVP_Digest(copy, FZ_PREP_HEADER, copy + FZ_PREP_HEADER, &len, EVP_sha256(), NULL) != 1) abort();
        one_input(copy, size);
        free(copy);
    }
    return 0;
}

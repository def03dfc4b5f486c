/* libFuzzer harness for ckks_secret_key_load (see fuzz_common.h). */
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fz_setup();
    fz_buf b;
    fz_out(&b);
    ckks_secret_key_save(fz_sk, b.f);
    fz_close(&b);
    fz_seed_file("sk", &b);
    free(b.data);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ckks_secret_key *sk = NULL;
    FILE *f = fz_open(data, size);
    hecnn_status st = ckks_secret_key_load(fz_ctx, &sk, f);
    fclose(f);
    fz_check(st ? sk == NULL : sk != NULL, "output set exactly on success");
    if (!st) {
        fz_buf b;
        fz_out(&b);
        fz_check(ckks_secret_key_save(sk, b.f) == HECNN_OK, "save of loaded secret key");
        fz_close(&b);
        fz_resaved(&b, data, size, "secret key re-save differs from input");
        free(b.data);
        /* the loaded key encrypts and decrypts a value */
        const double v[2] = {1.5, -2};
        double out[8];
        ckks_plaintext *pt;
        ckks_ciphertext *ct;
        ckks_plaintext_new(&pt, fz_ctx);
        ckks_ciphertext_new(&ct, fz_ctx);
        fz_check(ckks_encode_real(fz_ctx, pt, v, 2, 2, 2, 1 << 15) == HECNN_OK, "encode");
        fz_check(ckks_encrypt_sk(fz_ctx, ct, pt, sk) == HECNN_OK, "encrypt with a loaded key");
        fz_check(ckks_decrypt(fz_ctx, pt, ct, sk) == HECNN_OK, "decrypt with a loaded key");
        fz_check(ckks_decode_real(fz_ctx, out, pt) == HECNN_OK, "decode");
        ckks_plaintext_free(pt);
        ckks_ciphertext_free(ct);
    }
    ckks_secret_key_free(sk);
    return 0;
}

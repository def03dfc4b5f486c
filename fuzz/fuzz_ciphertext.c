/* libFuzzer harness for ckks_ciphertext_load (see fuzz_common.h). */
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void seed_ct(const ckks_ciphertext *ct, const char *name)
{
    fz_buf b;
    fz_out(&b);
    ckks_ciphertext_save(ct, b.f);
    fz_close(&b);
    fz_seed_file(name, &b);
    free(b.data);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fz_setup();
    const double v[8] = {0.5, -1, 2, 0.25, 3, 1, 0, -0.5};
    ckks_plaintext *pt;
    ckks_ciphertext *ct;
    ckks_evaluator *ev;
    ckks_plaintext_new(&pt, fz_ctx);
    ckks_ciphertext_new(&ct, fz_ctx);
    ckks_evaluator_new(&ev, fz_ctx, NULL);
    ckks_encode_real(fz_ctx, pt, v, 8, 8, 2, 1 << 15);
    ckks_encrypt_pk(fz_ctx, ct, pt, fz_pk);
    seed_ct(ct, "ct_pk");
    ckks_mul(ev, ct, ct, ct);
    seed_ct(ct, "ct_degree2");
    ckks_encrypt_sk(fz_ctx, ct, pt, fz_sk);
    seed_ct(ct, "ct_seeded");
    ckks_encode_real(fz_ctx, pt, v, 2, 2, 0, 1 << 15);
    ckks_encrypt_sk(fz_ctx, ct, pt, fz_sk);
    seed_ct(ct, "ct_seeded_level0");
    ckks_evaluator_free(ev);
    ckks_ciphertext_free(ct);
    ckks_plaintext_free(pt);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ckks_ciphertext *ct;
    if (ckks_ciphertext_new(&ct, fz_ctx)) abort();
    FILE *f = fz_open(data, size);
    hecnn_status st = ckks_ciphertext_load(fz_ctx, ct, f);
    fclose(f);
    if (!st) {
        fz_buf b;
        fz_out(&b);
        fz_check(ckks_ciphertext_save(ct, b.f) == HECNN_OK, "save of loaded ciphertext");
        fz_close(&b);
        fz_resaved(&b, data, size, "ciphertext re-save differs from input");
        free(b.data);
        /* what loads decrypts and decodes (to noise, usually) without failing */
        ckks_plaintext *pt;
        double complex out[8];
        ckks_plaintext_new(&pt, fz_ctx);
        fz_check(ckks_decrypt(fz_ctx, pt, ct, fz_sk) == HECNN_OK, "decrypt of a loaded ciphertext");
        fz_check(ckks_decode(fz_ctx, out, pt) == HECNN_OK, "decode of a loaded ciphertext");
        ckks_plaintext_free(pt);
    }
    ckks_ciphertext_free(ct);
    return 0;
}

/* libFuzzer harness for ckks_public_key_load (see fuzz_common.h). */
#include "ckks/internal.h"
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fz_setup();
    fz_buf b;
    fz_out(&b);
    ckks_public_key_save(fz_pk, b.f);
    fz_close(&b);
    fz_seed_file("pk_seeded", &b);
    /* a full (unseeded) public key: reload the seeded one and change its uniform half, which
     * then no longer matches the seed, so it is written in full */
    FILE *f = fz_open((const uint8_t *)b.data, b.len);
    ckks_public_key *pk;
    if (ckks_public_key_load(fz_ctx, &pk, f)) abort();
    fclose(f);
    free(b.data);
    pk->a[0] = pk->a[0] ? pk->a[0] - 1 : 1;
    fz_out(&b);
    ckks_public_key_save(pk, b.f);
    fz_close(&b);
    fz_seed_file("pk_full", &b);
    free(b.data);
    ckks_public_key_free(pk);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ckks_public_key *pk = NULL;
    FILE *f = fz_open(data, size);
    hecnn_status st = ckks_public_key_load(fz_ctx, &pk, f);
    fclose(f);
    fz_check(st ? pk == NULL : pk != NULL, "output set exactly on success");
    if (!st) {
        fz_buf b;
        fz_out(&b);
        fz_check(ckks_public_key_save(pk, b.f) == HECNN_OK, "save of loaded public key");
        fz_close(&b);
        fz_resaved(&b, data, size, "public key re-save differs from input");
        free(b.data);
        const double v[2] = {1.5, -2};
        ckks_plaintext *pt;
        ckks_ciphertext *ct;
        ckks_plaintext_new(&pt, fz_ctx);
        ckks_ciphertext_new(&ct, fz_ctx);
        fz_check(ckks_encode_real(fz_ctx, pt, v, 2, 2, 2, 1 << 15) == HECNN_OK, "encode");
        fz_check(ckks_encrypt_pk(fz_ctx, ct, pt, pk) == HECNN_OK, "encrypt with a loaded key");
        ckks_plaintext_free(pt);
        ckks_ciphertext_free(ct);
    }
    ckks_public_key_free(pk);
    return 0;
}

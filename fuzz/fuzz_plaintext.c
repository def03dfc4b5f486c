/* libFuzzer harness for ckks_plaintext_load (see fuzz_common.h). */
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fz_setup();
    const double v[4] = {0.5, -1, 2, 0.25};
    for (unsigned level = 0; level < 3; level++) {
        ckks_plaintext *pt;
        ckks_plaintext_new(&pt, fz_ctx);
        ckks_encode_real(fz_ctx, pt, v, 4, 4, level, 1 << 15);
        fz_buf b;
        fz_out(&b);
        ckks_plaintext_save(pt, b.f);
        fz_close(&b);
        char name[32];
        snprintf(name, sizeof name, "pt_level%u", level);
        fz_seed_file(name, &b);
        free(b.data);
        ckks_plaintext_free(pt);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ckks_plaintext *pt;
    if (ckks_plaintext_new(&pt, fz_ctx)) abort();
    FILE *f = fz_open(data, size);
    hecnn_status st = ckks_plaintext_load(fz_ctx, pt, f);
    fclose(f);
    if (!st) {
        fz_buf b;
        fz_out(&b);
        fz_check(ckks_plaintext_save(pt, b.f) == HECNN_OK, "save of loaded plaintext");
        fz_close(&b);
        fz_resaved(&b, data, size, "plaintext re-save differs from input");
        free(b.data);
        double complex out[8];
        fz_check(ckks_plaintext_slots(pt) <= 8, "slots");
        fz_check(ckks_decode(fz_ctx, out, pt) == HECNN_OK, "decode of a loaded plaintext");
    }
    ckks_plaintext_free(pt);
    return 0;
}

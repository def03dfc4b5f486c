/* libFuzzer harness for ckks_params_load (see fuzz_common.h). */
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    for (int i = 0; i < CKKS_PRESET_COUNT; i++) {
        ckks_params_literal p;
        ckks_params_preset(&p, (ckks_preset)i);
        fz_buf b;
        fz_out(&b);
        ckks_params_save(&p, b.f);
        fz_close(&b);
        char name[32];
        snprintf(name, sizeof name, "preset%d", i);
        fz_seed_file(name, &b);
        free(b.data);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ckks_params_literal p;
    FILE *f = fz_open(data, size);
    hecnn_status st = ckks_params_load(&p, f);
    fclose(f);
    if (st) return 0;
    /* canonical: saving what was loaded reproduces the input's object bytes */
    fz_buf b;
    fz_out(&b);
    fz_check(ckks_params_save(&p, b.f) == HECNN_OK, "save of loaded params");
    fz_close(&b);
    fz_resaved(&b, data, size, "params re-save differs from input");
    free(b.data);
    /* small loaded parameter sets must build a context or fail cleanly */
    if (p.log_n <= 7 && p.n_q + p.n_p <= 6) {
        ckks_context *ctx = NULL;
        if (!ckks_context_new(&ctx, &p)) fz_check(ckks_context_n(ctx) == (size_t)1 << p.log_n, "context degree");
        ckks_context_free(ctx);
    }
    return 0;
}

/* libFuzzer harness for ckks_eval_keys_load (see fuzz_common.h). */
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fz_setup();
    const int steps[] = {1, -1};
    ckks_eval_keys *keys;
    if (ckks_eval_keys_generate(&keys, fz_sk, true, steps, 2, true)) abort();
    for (int seeded = 0; seeded < 2; seeded++) {
        fz_buf b;
        fz_out(&b);
        ckks_eval_keys_save(keys, seeded, b.f);
        fz_close(&b);
        fz_seed_file(seeded ? "keys_seeded" : "keys_full", &b);
        free(b.data);
    }
    ckks_eval_keys_free(keys);
    if (ckks_eval_keys_new(&keys, fz_ctx)) abort();
    fz_buf b;
    fz_out(&b);
    ckks_eval_keys_save(keys, true, b.f);
    fz_close(&b);
    fz_seed_file("keys_empty", &b);
    free(b.data);
    ckks_eval_keys_free(keys);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ckks_eval_keys *keys = NULL;
    FILE *f = fz_open(data, size);
    hecnn_status st = ckks_eval_keys_load(fz_ctx, &keys, f);
    fclose(f);
    fz_check(st ? keys == NULL : keys != NULL, "output set exactly on success");
    if (!st) {
        /* keys may come back in another order (relinearization key first), so the property is
         * that a saved set reloads to the same bytes */
        fz_buf b1, b2;
        fz_out(&b1);
        fz_check(ckks_eval_keys_save(keys, true, b1.f) == HECNN_OK, "save of loaded key set");
        fz_close(&b1);
        fz_check(b1.len <= size, "re-saved key set larger than its input");
        ckks_eval_keys *again = NULL;
        FILE *g = fz_open((const uint8_t *)b1.data, b1.len);
        fz_check(ckks_eval_keys_load(fz_ctx, &again, g) == HECNN_OK, "reload of a saved key set");
        fclose(g);
        fz_out(&b2);
        fz_check(ckks_eval_keys_save(again, true, b2.f) == HECNN_OK, "second save");
        fz_close(&b2);
        fz_same(&b1, &b2, "key set save/load/save is not stable");
        fz_check(ckks_eval_keys_count(again) == ckks_eval_keys_count(keys), "key count");
        free(b1.data);
        free(b2.data);
        ckks_eval_keys_free(again);
    }
    ckks_eval_keys_free(keys);
    return 0;
}

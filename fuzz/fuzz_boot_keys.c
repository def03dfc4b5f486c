/* libFuzzer harness for ckks_boot_keys_load / _load_compact (bootstrapping keys: flags, the
 * encapsulation pair, the evaluation key set; see fuzz_common.h). An accepted set saves to the
 * size ckks_boot_keys_bytes announces and reloads to the same bytes; whatever the compacting
 * loader returns is freed cleanly.
 *
 * Seeds (HECNN_FUZZ_SEED_DIR): with the encapsulation pair (seeded and full) and without it. */
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void save_seed(const ckks_boot_keys *k, bool seeded, const char *name)
{
    fz_buf b;
    fz_out(&b);
    hecnn_status st = ckks_boot_keys_save(k, seeded, b.f);
    if (st) fz_die("save", st);
    fz_close(&b);
    fz_seed_file(name, &b);
    free(b.data);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fz_setup();
    if (!getenv("HECNN_FUZZ_SEED_DIR")) return 0;
    const uint8_t seed[CKKS_SEED_BYTES] = {5};
    const int steps[] = {1, 2};
    ckks_secret_key *sparse;
    ckks_eval_keys *evk;
    ckks_switching_key *to_sparse, *to_dense;
    ckks_boot_keys *k;
    hecnn_status st;
    if ((st = ckks_secret_key_generate_sparse_derand(&sparse, fz_ctx, 4, seed))) fz_die("sparse key", st);
    if ((st = ckks_eval_keys_generate(&evk, fz_sk, true, steps, 2, true))) fz_die("eval keys", st);
    if ((st = ckks_switching_key_generate_between_derand(&to_sparse, fz_sk, sparse, 0, seed))) fz_die("to sparse", st);
    if ((st = ckks_switching_key_generate_between_derand(&to_dense, sparse, fz_sk, 2, seed))) fz_die("to dense", st);
    if ((st = ckks_boot_keys_assemble(&k, evk, to_sparse, to_dense))) fz_die("assemble", st);
    save_seed(k, true, "boot_seeded");
    save_seed(k, false, "boot_full");
    ckks_boot_keys_free(k);
    if ((st = ckks_eval_keys_generate(&evk, fz_sk, true, steps, 1, true))) fz_die("eval keys", st);
    if ((st = ckks_boot_keys_assemble(&k, evk, NULL, NULL))) fz_die("assemble", st);
    save_seed(k, true, "boot_no_encapsulation");
    ckks_boot_keys_free(k);
    ckks_secret_key_free(sparse);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ckks_boot_keys *k = NULL;
    FILE *f = fz_open(data, size);
    hecnn_status st = ckks_boot_keys_load_compact(fz_ctx, &k, f);
    fclose(f);
    fz_check(st ? k == NULL : k != NULL, "compact load: output set exactly on success");
    ckks_boot_keys_free(k);
    k = NULL;
    f = fz_open(data, size);
    st = ckks_boot_keys_load(fz_ctx, &k, f);
    fclose(f);
    fz_check(st ? k == NULL : k != NULL, "output set exactly on success");
    if (st) return 0;
    fz_buf b1, b2;
    fz_out(&b1);
    fz_check(ckks_boot_keys_save(k, true, b1.f) == HECNN_OK, "save of loaded keys");
    fz_close(&b1);
    fz_check(b1.len == ckks_boot_keys_bytes(k, true), "saved size is the announced size");
    fz_check(b1.len <= size, "re-saved keys larger than their input");
    ckks_boot_keys *again = NULL;
    f = fz_open((const uint8_t *)b1.data, b1.len);
    fz_check(ckks_boot_keys_load(fz_ctx, &again, f) == HECNN_OK, "reload of saved keys");
    fclose(f);
    fz_out(&b2);
    fz_check(ckks_boot_keys_save(again, true, b2.f) == HECNN_OK, "second save");
    fz_close(&b2);
    fz_same(&b1, &b2, "boot keys save/load/save is not stable");
    fz_check(ckks_boot_keys_count(again) == ckks_boot_keys_count(k), "key count");
    free(b1.data);
    free(b2.data);
    ckks_boot_keys_free(again);
    ckks_boot_keys_free(k);
    return 0;
}

/* libFuzzer harness for ckks_switching_key_load (see fuzz_common.h). */
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fz_setup();
    const uint8_t seed[CKKS_SEED_BYTES] = {3};
    const struct {
        uint64_t galois;
        unsigned level;
        bool seeded;
        const char *name;
    } keys[] = {{0, 2, true, "relin_seeded"},     {0, 2, false, "relin_full"},         {5, 1, true, "rot1_level1"},
                {31, 0, false, "conj_level0"},     {CKKS_SWITCH_SECRET, 2, true, "switch_seeded"}};
    ckks_secret_key *sparse;
    if (ckks_secret_key_generate_sparse_derand(&sparse, fz_ctx, 4, seed)) abort();
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        ckks_switching_key *k;
        hecnn_status st = keys[i].galois == CKKS_SWITCH_SECRET
                              ? ckks_switching_key_generate_between_derand(&k, sparse, fz_sk, keys[i].level, seed)
                              : ckks_switching_key_generate_derand(&k, fz_sk, keys[i].galois, keys[i].level, seed);
        if (st) abort();
        fz_buf b;
        fz_out(&b);
        ckks_switching_key_save(k, keys[i].seeded, b.f);
        fz_close(&b);
        fz_seed_file(keys[i].name, &b);
        free(b.data);
        ckks_switching_key_free(k);
    }
    ckks_secret_key_free(sparse);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ckks_switching_key *k = NULL;
    FILE *f = fz_open(data, size);
    hecnn_status st = ckks_switching_key_load(fz_ctx, &k, f);
    fclose(f);
    fz_check(st ? k == NULL : k != NULL, "output set exactly on success");
    if (!st) {
        /* a seeded input re-saves seeded, a full one in full (its seed is unknown) */
        fz_buf b;
        fz_out(&b);
        fz_check(ckks_switching_key_save(k, true, b.f) == HECNN_OK, "save of loaded switching key");
        fz_close(&b);
        fz_check(b.len == ckks_switching_key_bytes(k, true), "ckks_switching_key_bytes matches the bytes written");
        fz_resaved(&b, data, size, "switching key re-save differs from input");
        free(b.data);
        /* and it switches keys without failing */
        ckks_eval_keys *keys;
        ckks_evaluator *ev;
        ckks_plaintext *pt;
        ckks_ciphertext *ct;
        const uint64_t g = ckks_switching_key_galois_element(k);
        const unsigned level = ckks_switching_key_max_level(k);
        ckks_eval_keys_new(&keys, fz_ctx);
        fz_check(ckks_eval_keys_add(keys, k) == HECNN_OK, "add a loaded key");
        ckks_evaluator_new(&ev, fz_ctx, keys);
        ckks_plaintext_new(&pt, fz_ctx);
        ckks_ciphertext_new(&ct, fz_ctx);
        const double v[2] = {1.5, -2};
        ckks_encode_real(fz_ctx, pt, v, 2, 8, level, 1 << 15);
        ckks_encrypt_pk(fz_ctx, ct, pt, fz_pk);
        if (g == CKKS_SWITCH_SECRET)
            fz_check(ckks_switch_key(ev, ct, ct, ckks_eval_keys_galois(keys, g)) == HECNN_OK, "secret switch with a loaded key");
        else if (g) fz_check(ckks_apply_galois(ev, ct, ct, g) == HECNN_OK, "Galois with a loaded key");
        else fz_check(ckks_square_relin(ev, ct, ct) == HECNN_OK, "relinearize with a loaded key");
        ckks_ciphertext_free(ct);
        ckks_plaintext_free(pt);
        ckks_evaluator_free(ev);
        ckks_eval_keys_free(keys);
    }
    return 0;
}

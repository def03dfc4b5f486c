/* libFuzzer harness for the files of encrypted batches (images and scores, hecnn_vr_file_read_header
 * then the ciphertexts it announces, read as the tool reads them; see fuzz_common.h). The input is
 * read from an in-memory regular file, so the header's size check against the file runs too. An
 * accepted header is consistent; every ciphertext read after it decrypts.
 *
 * Seeds (HECNN_FUZZ_SEED_DIR): an images file (3 images in 2 batches of 2 ciphertexts) and a scores
 * file (1 batch of 1 ciphertext), under the shared tiny context. */
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void write_seed(const char *name, hecnn_vr_file_kind kind, size_t width, size_t images, size_t batches,
                       size_t per_batch)
{
    fz_buf b;
    fz_out(&b);
    const hecnn_vr_file_header h = {.kind = kind, .width = width, .images = images, .batches = batches, .per_batch = per_batch};
    hecnn_status st = hecnn_vr_file_write_header(b.f, fz_ctx, &h);
    if (st) fz_die("header", st);
    ckks_plaintext *pt;
    ckks_ciphertext *ct;
    ckks_plaintext_new(&pt, fz_ctx);
    ckks_ciphertext_new(&ct, fz_ctx);
    for (size_t i = 0; i < batches * per_batch; i++) {
        const double v[2] = {(double)i / 4, -0.5};
        if ((st = ckks_encode_real(fz_ctx, pt, v, 2, 2, (unsigned)(i % 3), 1 << 15))) fz_die("encode", st);
        if ((st = (i & 1 ? ckks_encrypt_pk(fz_ctx, ct, pt, fz_pk) : ckks_encrypt_sk(fz_ctx, ct, pt, fz_sk)))) fz_die("encrypt", st);
        if ((st = ckks_ciphertext_save(ct, b.f))) fz_die("save", st);
    }
    fz_close(&b);
    fz_seed_file(name, &b);
    free(b.data);
    ckks_ciphertext_free(ct);
    ckks_plaintext_free(pt);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fz_setup();
    if (getenv("HECNN_FUZZ_SEED_DIR")) {
        write_seed("images", HECNN_VR_FILE_IMAGES, 4, 3, 2, 2);
        write_seed("scores", HECNN_VR_FILE_SCORES, 8, 1, 1, 1);
    }
    return 0;
}

static void read_file(FILE *f, hecnn_vr_file_kind kind)
{
    rewind(f);
    hecnn_vr_file_header h;
    if (hecnn_vr_file_read_header(f, fz_ctx, kind, &h)) return;
    const size_t slots = ckks_context_max_slots(fz_ctx);
    fz_check(h.kind == kind && h.width && !(h.width & (h.width - 1)) && h.width <= slots, "header width");
    const size_t rows = slots / h.width;
    fz_check(h.batches && h.per_batch && h.images <= h.batches * rows && h.images + rows > h.batches * rows, "header counts");
    ckks_ciphertext *ct;
    ckks_plaintext *pt;
    ckks_ciphertext_new(&ct, fz_ctx);
    ckks_plaintext_new(&pt, fz_ctx);
    for (size_t i = 0; i < h.batches * h.per_batch; i++) {
        if (ckks_ciphertext_load(fz_ctx, ct, f)) break;
        fz_check(ckks_decrypt(fz_ctx, pt, ct, fz_sk) == HECNN_OK, "decrypt of a loaded ciphertext");
    }
    ckks_plaintext_free(pt);
    ckks_ciphertext_free(ct);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    const int fd = fz_memfd(data, size, path);
    FILE *f = fdopen(fd, "rb");
    if (!f) abort();
    read_file(f, HECNN_VR_FILE_IMAGES);
    read_file(f, HECNN_VR_FILE_SCORES);
    fclose(f);
    return 0;
}

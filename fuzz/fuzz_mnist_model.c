/* libFuzzer harness for hecnn_mnist_model_read / _load (the plain MNIST weights file, docs/MNIST.md;
 * see fuzz_common.h). In fuzzing builds this loader, like the CKKS loaders, computes its checksum but
 * accepts a wrong one (CMakeLists.txt, HECNN_FUZZ), so mutations reach the checks behind it without
 * re-signing: inputs are whole models of 0.7-1.4 MB, and each SHA-256 over one costs about a
 * millisecond. An accepted model runs the plain inference. One input in eight (by a byte of its own)
 * also goes through the file loader, which must agree with the memory reader, and one in eight (by
 * another byte), if float64, is saved and must come back as the same bytes up to the checksum: each
 * file written or read costs megabytes of fresh pages, most of an execution otherwise.
 *
 * Seeds (HECNN_FUZZ_SEED_DIR): a float64 and a float32 model of small deterministic weights. */
#include <math.h>
#include <openssl/evp.h>

#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_MODEL_HEADER 64

static uint64_t rd64le(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static void sign(uint8_t *buf, size_t size)
{
    unsigned len = 0;
    if (size < 32 || EVP_Digest(buf, size - 32, buf + size - 32, &len, EVP_sha256(), NULL) != 1) abort();
}

static void write_seeds(void)
{
    if (!getenv("HECNN_FUZZ_SEED_DIR")) return;
    hecnn_mnist_model *m = calloc(1, sizeof *m);
    if (!m) abort();
    double *w = (double *)m;
    for (size_t i = 0; i < sizeof *m / sizeof *w; i++) w[i] = (double)((int)(i * 37 % 17) - 8) / 64;
    char path[64];
    const int fd = fz_memfd(NULL, 0, path);
    hecnn_status st = hecnn_mnist_model_save(m, path);
    if (st) fz_die("save", st);
    const off_t size = lseek(fd, 0, SEEK_END);
    uint8_t *b = malloc((size_t)size);
    if (!b || pread(fd, b, (size_t)size, 0) != size) abort();
    close(fd);
    fz_buf out = {.data = (char *)b, .len = (size_t)size};
    fz_seed_file("model_f64", &out);
    /* the same weights as float32: dtype 1, payload halved, values narrowed, signed again */
    const size_t params = (size_t)rd64le(b + 56) / 8, total32 = FZ_MODEL_HEADER + params * 4 + 32;
    uint8_t *c = malloc(total32);
    if (!c) abort();
    memcpy(c, b, FZ_MODEL_HEADER);
    c[20] = 1, c[21] = c[22] = c[23] = 0;
    const uint64_t payload = params * 4;
    for (int i = 0; i < 8; i++) c[56 + i] = (uint8_t)(payload >> (8 * i));
    for (size_t i = 0; i < params; i++) {
        uint64_t u = rd64le(b + FZ_MODEL_HEADER + 8 * i);
        double d;
        memcpy(&d, &u, 8);
        const float f = (float)d;
        uint32_t v;
        memcpy(&v, &f, 4);
        for (int k = 0; k < 4; k++) c[FZ_MODEL_HEADER + 4 * i + k] = (uint8_t)(v >> (8 * k));
    }
    sign(c, total32);
    out = (fz_buf){.data = (char *)c, .len = total32};
    fz_seed_file("model_f32", &out);
    free(c);
    free(b);
    free(m);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    write_seeds();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hecnn_mnist_model *m = NULL;
    const hecnn_status st = hecnn_mnist_model_read(&m, data, size);
    fz_check(st == HECNN_OK || m == NULL, "failed read left a model");
    if (size == 0 || data[size / 2] % 8 == 0) { /* the file loader agrees with the memory reader */
        char path[64];
        const int fd = fz_memfd(data, size, path);
        hecnn_mnist_model *l = NULL;
        const hecnn_status lst = hecnn_mnist_model_load(&l, path);
        close(fd);
        fz_check((st == HECNN_OK) == (lst == HECNN_OK), "load and read disagree");
        fz_check(st || !memcmp(m, l, sizeof *m), "load and read give different weights");
        hecnn_mnist_model_free(l);
    }
    if (st) return 0;
    double pixels[HECNN_MNIST_PIXELS], logits[HECNN_MNIST_CLASSES];
    for (int i = 0; i < HECNN_MNIST_PIXELS; i++) pixels[i] = (double)(i % 5) / 4;
    hecnn_mnist_infer_plain(m, pixels, 1, logits);
    if (data[20] == 2 && data[size / 3] % 8 == 0) { /* float64: saving reproduces the input, its checksum aside */
        char path[64];
        const int sfd = fz_memfd(NULL, 0, path);
        fz_check(hecnn_mnist_model_save(m, path) == HECNN_OK, "save of a loaded model");
        const off_t n = lseek(sfd, 0, SEEK_END);
        uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
        if (!b || pread(sfd, b, (size_t)n, 0) != n) abort();
        close(sfd);
        fz_check((size_t)n == size && !memcmp(b, data, size - 32), "model re-save differs from input");
        free(b);
    }
    hecnn_mnist_model_free(m);
    return 0;
}

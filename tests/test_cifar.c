/* The tool's CIFAR reader (tools/util_cifar.c) on small synthetic files: CIFAR-10 (3,073-byte
 * records) and CIFAR-100 (3,074-byte records, fine and coarse labels), bounded reads with offset and
 * count, pixel order and scale, files of the wrong record size or with impossible labels refused,
 * and the class-name files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/check.h"
#include "util_cifar.h"

static char dir[64];

static char *path_of(const char *name)
{
    static char p[2][128];
    static int k;
    k ^= 1;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

/* Pixel byte of image i, channel c, row r, column x: a pattern that tells them apart. */
static unsigned char px(size_t i, unsigned c, unsigned r, unsigned x) { return (unsigned char)(i * 31 + c * 7 + r * 3 + x * 5); }

/* n records of `kind`; label of image i: i % 10 (CIFAR-10), coarse i % 20 and fine (i * 7) % 100. */
static void write_cifar(const char *name, cifar_kind kind, size_t n, size_t extra_bytes, unsigned bad_label_at)
{
    FILE *f = fopen(path_of(name), "wb");
    REQUIRE_VOID(f);
    for (size_t i = 0; i < n; i++) {
        if (kind == CIFAR_10) {
            fputc(i == bad_label_at ? 12 : (int)(i % 10), f);
        } else {
            fputc((int)(i % 20), f);
            fputc(i == bad_label_at ? 100 : (int)((i * 7) % 100), f);
        }
        for (unsigned c = 0; c < 3; c++)
            for (unsigned r = 0; r < 32; r++)
                for (unsigned x = 0; x < 32; x++) fputc(px(i, c, r, x), f);
    }
    for (size_t j = 0; j < extra_bytes; j++) fputc(0, f);
    fclose(f);
}

static int check_pixels(const cifar_batch *b, size_t first)
{
    for (size_t i = 0; i < b->n; i++)
        for (unsigned c = 0; c < 3; c++)
            for (unsigned r = 0; r < 32; r += 7)
                for (unsigned x = 0; x < 32; x += 5)
                    if (b->pixels[i * CIFAR_PIXELS + c * 1024 + r * 32 + x] != px(first + i, c, r, x) / 255.0) return 0;
    return 1;
}

static void test_cifar10(void)
{
    write_cifar("c10.bin", CIFAR_10, 7, 0, ~0u);
    size_t total = 0;
    CHECK(cifar_count(path_of("c10.bin"), CIFAR_10, &total) == 0 && total == 7);
    cifar_batch b;
    CHECK(cifar_read(path_of("c10.bin"), CIFAR_10, false, 2, 3, &b) == 0);
    CHECK(b.n == 3 && b.labels[0] == 2 && b.labels[2] == 4);
    CHECK(check_pixels(&b, 2));
    cifar_batch_free(&b);
    /* count 0: everything from the offset */
    CHECK(cifar_read(path_of("c10.bin"), CIFAR_10, false, 5, 0, &b) == 0);
    CHECK(b.n == 2 && b.labels[1] == 6 && check_pixels(&b, 5));
    cifar_batch_free(&b);
    /* out of the file */
    CHECK(cifar_read(path_of("c10.bin"), CIFAR_10, false, 7, 1, &b) != 0 && b.n == 0 && !b.pixels);
    CHECK(cifar_read(path_of("c10.bin"), CIFAR_10, false, 5, 3, &b) != 0 && b.n == 0);
    CHECK(cifar_read(path_of("missing.bin"), CIFAR_10, false, 0, 1, &b) != 0);
    /* a byte too many, an empty file, an impossible label */
    write_cifar("c10x.bin", CIFAR_10, 3, 1, ~0u);
    CHECK(cifar_count(path_of("c10x.bin"), CIFAR_10, &total) != 0);
    CHECK(cifar_read(path_of("c10x.bin"), CIFAR_10, false, 0, 1, &b) != 0);
    write_cifar("empty.bin", CIFAR_10, 0, 0, ~0u);
    CHECK(cifar_count(path_of("empty.bin"), CIFAR_10, &total) != 0);
    write_cifar("c10l.bin", CIFAR_10, 4, 0, 3);
    CHECK(cifar_read(path_of("c10l.bin"), CIFAR_10, false, 0, 3, &b) == 0 && b.n == 3); /* the bad record is not read */
    cifar_batch_free(&b);
    CHECK(cifar_read(path_of("c10l.bin"), CIFAR_10, false, 0, 4, &b) != 0);
    /* CIFAR-10 options of CIFAR-100 */
    CHECK(cifar_record_size(CIFAR_10) == 3073 && cifar_record_size(CIFAR_100) == 3074);
    CHECK(cifar_classes(CIFAR_10, false) == 10 && cifar_classes(CIFAR_100, false) == 100 && cifar_classes(CIFAR_100, true) == 20);
    cifar_kind k;
    CHECK(cifar_kind_by_name("cifar100", &k) && k == CIFAR_100 && cifar_kind_by_name("cifar10", &k) && k == CIFAR_10);
    CHECK(!cifar_kind_by_name("mnist", &k));
}

static void test_cifar100(void)
{
    write_cifar("c100.bin", CIFAR_100, 6, 0, ~0u);
    size_t total = 0;
    CHECK(cifar_count(path_of("c100.bin"), CIFAR_100, &total) == 0 && total == 6);
    /* the wrong record size either way */
    CHECK(cifar_count(path_of("c100.bin"), CIFAR_10, &total) != 0);
    CHECK(cifar_count(path_of("c10.bin"), CIFAR_100, &total) != 0);
    cifar_batch b;
    CHECK(cifar_read(path_of("c100.bin"), CIFAR_10, false, 0, 1, &b) != 0);
    CHECK(cifar_read(path_of("c100.bin"), CIFAR_100, false, 1, 4, &b) == 0);
    CHECK(b.n == 4 && b.labels[0] == 7 && b.labels[3] == 28 && check_pixels(&b, 1));
    cifar_batch_free(&b);
    CHECK(cifar_read(path_of("c100.bin"), CIFAR_100, true, 1, 4, &b) == 0);
    CHECK(b.n == 4 && b.labels[0] == 1 && b.labels[3] == 4 && check_pixels(&b, 1));
    cifar_batch_free(&b);
    write_cifar("c100l.bin", CIFAR_100, 2, 0, 1);
    CHECK(cifar_read(path_of("c100l.bin"), CIFAR_100, false, 0, 2, &b) != 0);
    CHECK(cifar_read(path_of("c100l.bin"), CIFAR_100, true, 0, 2, &b) != 0); /* fine label 100 is refused either way */
}

static void write_text(const char *name, const char *text)
{
    FILE *f = fopen(path_of(name), "w");
    REQUIRE_VOID(f);
    fputs(text, f);
    fclose(f);
}

static void test_names(void)
{
    char **names = NULL;
    size_t n = 0;
    /* absent: no names, no error */
    CHECK(cifar_class_names(path_of("c10.bin"), CIFAR_10, false, &names, &n) == 0 && !names && n == 0);
    write_text("batches.meta.txt", "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n");
    CHECK(cifar_class_names(path_of("c10.bin"), CIFAR_10, false, &names, &n) == 0 && n == 10);
    CHECK(names && !strcmp(names[0], "airplane") && !strcmp(names[9], "truck"));
    cifar_names_free(names, n);
    write_text("coarse_label_names.txt", "a\nb\nc\n");
    CHECK(cifar_class_names(path_of("c100.bin"), CIFAR_100, true, &names, &n) != 0 && !names);
    unlink(path_of("coarse_label_names.txt"));
    unlink(path_of("batches.meta.txt"));
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/hecnn_test_cifar_XXXXXX");
    REQUIRE(mkdtemp(dir));
    test_cifar10();
    test_cifar100();
    test_names();
    const char *files[] = {"c10.bin", "c10x.bin", "empty.bin", "c10l.bin", "c100.bin", "c100l.bin"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) unlink(path_of(files[i]));
    rmdir(dir);
    return check_summary();
}

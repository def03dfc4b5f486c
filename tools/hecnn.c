/* hecnn: one command-line tool with a verb per role (data owner, model provider, server).
 * `hecnn <command> [options]`, `hecnn <command> --help`, `hecnn --help`, `hecnn --version`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "hecnn/hecnn.h"
#include "serve.h"
#include "util_cli.h"

typedef int (*command_fn)(int argc, char **argv);

typedef struct command {
    const char *name;
    command_fn fn;
    const char *summary;
} command;

typedef struct group {
    const char *title;
    const command *commands;
} group;

static const command owner_commands[] = {
    {"params", cmd_params, "list the parameter presets, describe one, write a parameter file"},
    {"keygen", cmd_keygen, "generate secret, public and evaluation keys"},
    {"encrypt", cmd_encrypt, "encrypt a vector of numbers"},
    {"decrypt", cmd_decrypt, "decrypt a ciphertext to numbers"},
    {"keygen-mnist", cmd_mnist_keygen, "keys for the MNIST network: its parameter set, exactly the keys it needs"},
    {"encrypt-images", cmd_mnist_encrypt, "encrypt MNIST images for inference"},
    {"decrypt-scores", cmd_mnist_decrypt, "decrypt class scores to labels"},
    {"remote", cmd_remote, "client of 'hecnn serve': upload-keys | submit | wait | fetch | status | cancel | delete"},
    {NULL, NULL, NULL},
};
static const command provider_commands[] = {
    {"encrypt-model", cmd_encrypt_model, "encrypt a model's weights"},
    {"model", cmd_model, "network graphs: model import | info | eval | calibrate"},
    {NULL, NULL, NULL},
};
static const command server_commands[] = {
    {"infer", cmd_infer, "run the CNN on encrypted images"},
    {"serve", cmd_serve, "the server role as an HTTP(S) service: key sets, jobs, workers (docs/SERVER.md)"},
    {NULL, NULL, NULL},
};
static const command demo_commands[] = {
    {"demo", cmd_demo, "encrypted inference end to end, in one process"},
    {"demo-ckks", cmd_demo_ckks, "a small CKKS computation with its precision"},
    {"bench", NULL, "benchmarks: bench ckks | bench mnist | bench boot | bench resnet"},
    {NULL, NULL, NULL},
};
static const group groups[] = {
    {"data owner", owner_commands},
    {"model provider", provider_commands},
    {"server", server_commands},
    {"demonstrations and benchmarks", demo_commands},
};

static const command bench_commands[] = {
    {"ckks", cmd_bench_ckks, "CKKS primitives: medians, key sizes, peak memory"},
    {"mnist", cmd_bench_mnist, "encrypted MNIST inference: latency and throughput"},
    {"boot", cmd_bench_boot, "bootstrapping"},
    {"resnet", cmd_bench_resnet, "encrypted CIFAR ResNet inference of one batch (batched packing)"},
    {NULL, NULL, NULL},
};

static void print_help(FILE *out)
{
    fprintf(out, "hecnn %s: privacy-preserving CNN inference on CKKS-encrypted images\n\n", HECNN_VERSION_STRING);
    fprintf(out, "usage: hecnn <command> [options]\n");
    fprintf(out, "       hecnn <command> --help\n");
    fprintf(out, "       hecnn --version\n");
    for (size_t g = 0; g < sizeof groups / sizeof *groups; g++) {
        fprintf(out, "\n%s:\n", groups[g].title);
        for (const command *c = groups[g].commands; c->name; c++)
            fprintf(out, "  %-16s %s\n", c->name, c->summary);
    }
    fprintf(out, "\nKeys, ciphertexts and parameter files use the format in docs/FORMATS.md.\n");
}

static void print_bench_help(FILE *out)
{
    fprintf(out, "usage: hecnn bench <benchmark> [options]\n       hecnn bench <benchmark> --help\n\nbenchmarks:\n");
    for (const command *c = bench_commands; c->name; c++)
        fprintf(out, "  %-16s %s\n", c->name, c->summary);
}

static const command *find(const command *table, const char *name)
{
    for (const command *c = table; c->name; c++)
        if (!strcmp(c->name, name)) return c;
    return NULL;
}

static const command *find_any(const char *name)
{
    for (size_t g = 0; g < sizeof groups / sizeof *groups; g++) {
        const command *c = find(groups[g].commands, name);
        if (c) return c;
    }
    return NULL;
}

static int run(const command *c, const char *full_name, int argc, char **argv)
{
    cli_set_command(full_name);
    return c->fn(argc, argv);
}

static int bench(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        print_bench_help(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    const command *c = find(bench_commands, argv[1]);
    if (!c) {
        cli_set_command("bench");
        cli_error("unknown benchmark '%.64s' (see 'hecnn bench --help')", argv[1]);
        return CLI_EXIT_USAGE;
    }
    char name[32];
    snprintf(name, sizeof name, "bench %s", c->name);
    return run(c, name, argc - 1, argv + 1);
}

static void log_to_stderr(void *user, const char *line)
{
    (void)user;
    fprintf(stderr, "%s\n", line);
}

int main(int argc, char **argv)
{
    /* the library prints nothing by itself; these variables ask for its diagnostics */
    if (getenv("HECNN_PROFILE") || getenv("HECNN_BOOT_VERBOSE")) hecnn_set_log_callback(log_to_stderr, NULL);
    if (argc < 2) {
        print_help(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *verb = argv[1];
    if (!strcmp(verb, "--help") || !strcmp(verb, "-h") || !strcmp(verb, "help")) {
        if (!strcmp(verb, "help") && argc > 2) { /* hecnn help <command> */
            char *sub[] = {argv[2], "--help", NULL};
            if (!strcmp(argv[2], "bench")) return bench(2, sub);
            const command *c = find_any(argv[2]);
            if (c) return run(c, c->name, 2, sub);
        }
        print_help(stdout);
        return CLI_EXIT_OK;
    }
    if (!strcmp(verb, "--version") || !strcmp(verb, "-V") || !strcmp(verb, "version")) {
        printf("hecnn %s (NTT kernels: %s; object format version 3)\n", HECNN_VERSION_STRING, hecnn_simd_name());
        return CLI_EXIT_OK;
    }
    if (!strcmp(verb, "bench")) return bench(argc - 1, argv + 1);
    const command *c = find_any(verb);
    if (!c) {
        fprintf(stderr, "hecnn: unknown command '%.64s' (see 'hecnn --help')\n", verb);
        return CLI_EXIT_USAGE;
    }
    return run(c, c->name, argc - 1, argv + 1);
}

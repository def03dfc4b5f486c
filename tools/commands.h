/* Every `hecnn` command, as dispatched by tools/hecnn.c.
 *
 * A command is `int cmd_x(int argc, char **argv)`: argv[0] is its name ("encrypt"; for bench
 * subcommands the subcommand, "ckks"), its options follow; it returns 0 on success, 1 after a
 * failure it reported on stderr, 2 after a usage error (see util_cli.h for shared helpers).
 */
#ifndef HECNN_TOOLS_COMMANDS_H
#define HECNN_TOOLS_COMMANDS_H

#include "cmd_keys.h" /* params, keygen, encrypt, decrypt */
#include "cmd_model.h" /* model import | info | eval | calibrate */
#include "cmd_resnet.h" /* model keygen | encrypt | infer | decrypt, bench resnet */

/* data owner, MNIST: images to ciphertexts, ciphertexts of scores to labels */
int cmd_mnist_encrypt(int argc, char **argv);   /* hecnn encrypt-images */
int cmd_mnist_decrypt(int argc, char **argv);   /* hecnn decrypt-scores */
int cmd_mnist_keygen(int argc, char **argv);    /* hecnn keygen-mnist */
/* model provider */
int cmd_encrypt_model(int argc, char **argv);   /* hecnn encrypt-model */
/* server */
int cmd_infer(int argc, char **argv);           /* hecnn infer */
/* end-to-end demonstrations */
int cmd_demo(int argc, char **argv);            /* hecnn demo */
int cmd_demo_ckks(int argc, char **argv);       /* hecnn demo-ckks */
/* benchmarks: hecnn bench ckks | mnist | boot */
int cmd_bench_ckks(int argc, char **argv);
int cmd_bench_mnist(int argc, char **argv);
int cmd_bench_boot(int argc, char **argv);

#endif

/* The MNIST commands (Volley Revolver CNN, seed 002) for the three roles, the demo and the
 * benchmark. Key files are the ones `hecnn keygen` writes in its --out-dir (params.hecnn,
 * secret.key, public.key, eval.keys); --keys DIR points at such a directory. */
#ifndef HECNN_TOOLS_CMD_MNIST_H
#define HECNN_TOOLS_CMD_MNIST_H

/* data owner: `hecnn encrypt-images --keys DIR [--images FILE] [--count N] [--offset K] [--batch M] --out FILE` */
int cmd_mnist_encrypt(int argc, char **argv);
/* data owner: `hecnn decrypt-scores --keys DIR --in FILE [--labels FILE] [--json] [--out FILE]` */
int cmd_mnist_decrypt(int argc, char **argv);
/* data owner: `hecnn keygen-mnist --out-dir DIR [--batch M] [--mode plain|encrypted]`: the MNIST
 * parameter set and exactly the keys the network needs, each at the level it is used at. */
int cmd_mnist_keygen(int argc, char **argv);
/* model provider: `hecnn encrypt-model --keys DIR [--model FILE] [--batch M] --out FILE` */
int cmd_encrypt_model(int argc, char **argv);
/* server: `hecnn infer --keys DIR --in FILE (--model FILE | --encrypted-model FILE) --out FILE` */
int cmd_infer(int argc, char **argv);
/* `hecnn bench mnist [--json] [--threads T] [--data DIR] [--accuracy] [--mode M]` */
int cmd_bench_mnist(int argc, char **argv);
/* `hecnn demo [--mode plain|encrypted|both] [--count N] [--model FILE]` */
int cmd_demo(int argc, char **argv);

#endif

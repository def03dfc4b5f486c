/* Graph models in the batched packing (include/hecnn/plan.h): the three roles over a shared model
 * key directory, and the benchmark.
 *   model keygen  --model M --batch B --out-dir DIR [--preset n16|test] [--grid G] [--force]
 *   model encrypt --keys DIR --model M --data CIFAR_BIN [--offset K] [--count N] --out FILE
 *   model infer   --keys DIR/server --model M --in FILE --out FILE [--progress] [--threads T]
 *   model decrypt --keys DIR --model M --in FILE [--data CIFAR_BIN [--offset K]] [--json]
 *   bench resnet  --model M --data CIFAR_BIN --batch B [--offset K] [--threads T] [--json] [--preset n16|test]
 * Key directory: DIR/{params.hecnn, secret.key, plan} for the data owner, DIR/server/{params.hecnn,
 * plan, boot.keys, network.keys} for the server (no secret there). Files: docs/FORMATS.md. */
#ifndef HECNN_TOOLS_CMD_RESNET_H
#define HECNN_TOOLS_CMD_RESNET_H

int cmd_model_keygen(int argc, char **argv);
int cmd_model_encrypt(int argc, char **argv);
int cmd_model_infer(int argc, char **argv);
int cmd_model_decrypt(int argc, char **argv);
int cmd_bench_resnet(int argc, char **argv);

#endif

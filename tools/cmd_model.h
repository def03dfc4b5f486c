/* `hecnn model <subcommand>`: network graphs (include/hecnn/graph.h) as model files.
 *   model import    --fheon DIR --arch resnet20|resnet34 [--shortcut B|A] --out FILE
 *   model info      --model FILE
 *   model eval      --model FILE --data CIFAR_BIN [--count N] [--offset K] [--mode exact|approx] [--json]
 *   model calibrate --model FILE (--data TRAIN_BIN [--data ...] | --absmax FILE) --margin M --degree D --out FILE
 * Everything runs in the clear (float64 reference inference and its plaintext simulation of the
 * encrypted ReLUs); no keys are involved. The encrypted roles (model keygen | encrypt | infer |
 * decrypt) are in cmd_resnet.h; `hecnn model` dispatches to both. */
#ifndef HECNN_TOOLS_CMD_MODEL_H
#define HECNN_TOOLS_CMD_MODEL_H

/* dispatches to the subcommands below on argv[1] */
int cmd_model(int argc, char **argv);
int cmd_model_import(int argc, char **argv);
int cmd_model_info(int argc, char **argv);
int cmd_model_eval(int argc, char **argv);
int cmd_model_calibrate(int argc, char **argv);

#endif

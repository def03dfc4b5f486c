/* bench_resnet: encrypted ResNet inference of one CIFAR batch (see `hecnn bench resnet --help`). */
#include "cmd_resnet.h"

int main(int argc, char **argv) { return cmd_bench_resnet(argc, argv); }

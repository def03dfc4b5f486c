/* bench_boot: CKKS bootstrapping at N = 2^16 (see `hecnn bench boot --help`). */
#include "cmd_boot.h"

int main(int argc, char **argv) { return cmd_bench_boot(argc, argv); }

/* bench_ckks: the CKKS primitives at N = 2^16 (see `hecnn bench ckks --help`). */
#include "cmd_bench_ckks.h"

int main(int argc, char **argv) { return cmd_bench_ckks(argc, argv); }

#ifndef HECNN_TOOLS_CMD_BENCH_CKKS_H
#define HECNN_TOOLS_CMD_BENCH_CKKS_H

/* `hecnn bench ckks [--json] [--threads T] [--reps R] [--preset n13..n16]`: medians of the CKKS
 * primitives at 1 and 2 threads (or T), key sizes and peak RSS. */
int cmd_bench_ckks(int argc, char **argv);

#endif

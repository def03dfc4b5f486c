#ifndef HECNN_TOOLS_CMD_BOOT_H
#define HECNN_TOOLS_CMD_BOOT_H

/* `hecnn bench boot [--json] [--threads T] [--reps R] [--preset full|sparse|test-full|test-sparse]
 * [--cpu-time]`: CKKS bootstrapping at N = 2^16 (2^15 slots by default): time per bootstrap at 1
 * and 2 threads (or T), precision (mean and worst bits), levels left, key count and bytes, peak
 * RSS, failure probability, log QP. */
int cmd_bench_boot(int argc, char **argv);

#endif

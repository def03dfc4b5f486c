/* Benchmark of encrypted MNIST inference (`hecnn bench mnist`): seconds per image and peak RSS for
 * one batch of 32 images and for full batches of 256, at 1 and 2 threads, with the model in the
 * clear and encrypted; --accuracy --data DIR classifies the MNIST test set (see --help). */
#include "cmd_mnist.h"
#include "util_cli.h"

int main(int argc, char **argv)
{
    cli_set_command("bench mnist");
    return cmd_bench_mnist(argc, argv);
}

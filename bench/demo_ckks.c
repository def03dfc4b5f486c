/* demo_ckks: the CKKS tour of `hecnn demo-ckks`, as a standalone program. */
#include "cmd_demo_ckks.h"

int main(int argc, char **argv) { return cmd_demo_ckks(argc, argv); }

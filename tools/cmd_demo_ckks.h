#ifndef HECNN_TOOLS_CMD_DEMO_CKKS_H
#define HECNN_TOOLS_CMD_DEMO_CKKS_H

/* `hecnn demo-ckks`: encrypt a vector, compute x^2 + rot(x, 1) - 0.5 on it, decrypt, print precision. */
int cmd_demo_ckks(int argc, char **argv);

#endif

/* The data owner's commands: parameter sets, key generation, encryption and decryption of
 * numeric vectors. */
#ifndef HECNN_TOOLS_CMD_KEYS_H
#define HECNN_TOOLS_CMD_KEYS_H

/* `hecnn params [--preset NAME | --params FILE] [--out FILE]` */
int cmd_params(int argc, char **argv);
/* `hecnn keygen --preset NAME|--params FILE --out-dir DIR [--rotations LIST] [--conjugate] [--no-relin]` */
int cmd_keygen(int argc, char **argv);
/* `hecnn encrypt --params FILE --public-key FILE|--secret-key FILE --in FILE --out CT ...` */
int cmd_encrypt(int argc, char **argv);
/* `hecnn decrypt --params FILE --secret-key FILE --in CT --out FILE ...` */
int cmd_decrypt(int argc, char **argv);

/* The file names keygen writes in its output directory: CLI_KEY_FILE_* in util_cli.h. */

#endif

/* Keeps the command library non-empty before any command exists. */
int hecnn_cmds_placeholder(void);
int hecnn_cmds_placeholder(void) { return 0; }

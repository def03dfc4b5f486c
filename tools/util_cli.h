/* Shared helpers for the `hecnn` commands (tools/cmd_*.c).
 *
 * A command is `int cmd_x(int argc, char **argv)`: argv[0] is the command's name ("encrypt",
 * "bench ckks"), its options follow. It returns CLI_EXIT_OK, CLI_EXIT_FAIL after a failure it has
 * reported, or CLI_EXIT_USAGE after a usage error.
 *
 * Every helper below that can fail prints one line on stderr and returns non-zero, so callers
 * only propagate. The line names the command, what failed, and for library failures the status
 * name, its message and the library's detail:
 *   hecnn encrypt: cannot read 'x.ct': HECNN_ERR_BAD_FORMAT: malformed, truncated or
 *   out-of-range data: truncated ciphertext: 100 of 65536 bytes
 * Files are written atomically (a temporary file in the same directory, then rename), so a
 * failure never leaves a partial file nor destroys the previous one; every command writes through
 * cli_output_open, which refuses to replace anything but a regular file (a symbolic link, device,
 * pipe or directory is left as it is, with a message). Inputs that are directories are named. Secret material is never
 * printed; secret files are created with mode 0600 and their stdio buffers are wiped. */
#ifndef HECNN_TOOLS_UTIL_CLI_H
#define HECNN_TOOLS_UTIL_CLI_H

#include <complex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "hecnn/hecnn.h"

#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2

/* ---- secrets ----------------------------------------------------------------------------- */
/* No core dumps, not dumpable: the first call of every command that loads or creates a secret key. */
void cli_protect_secrets(void);

/* ---- messages ---------------------------------------------------------------------------- */
/* The prefix of every message, "hecnn <command>"; cli_parse sets it from the command's name. */
void cli_set_command(const char *name);
const char *cli_command_prefix(void);
/* "hecnn CMD: <message>" */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "hecnn CMD: <message>: STATUS_NAME: status message[: detail]" */
void cli_status_error(hecnn_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- jobs (hecnn serve) ------------------------------------------------------------------ */
/* A command run by a server worker thread: progress in [0, 1] goes to `progress`, a nonzero
 * *cancel stops the run at its next check (reported as a failure), and the first error message
 * is kept in `error`. Set per thread (NULL: a plain command); the hooks are no-ops without one. */
typedef struct cli_job {
    void (*progress)(void *user, double done);
    void *user;
    const volatile int *cancel;
    char error[512];
} cli_job;
void cli_job_set(cli_job *job);
void cli_job_progress(double done);
bool cli_job_cancelled(void);
const volatile int *cli_job_cancel_flag(void);

/* ---- options ----------------------------------------------------------------------------- */
typedef enum cli_opt_kind {
    CLI_OPT_FLAG,    /* bool *, set to true */
    CLI_OPT_STRING,  /* const char ** */
    CLI_OPT_UINT,    /* unsigned * (decimal, whole string) */
    CLI_OPT_SIZE,    /* size_t * */
    CLI_OPT_INT,     /* int * */
    CLI_OPT_DOUBLE,  /* double *, finite */
} cli_opt_kind;

typedef struct cli_opt {
    const char *name;     /* long name without the dashes: "params" for --params */
    cli_opt_kind kind;
    void *value;
    const char *metavar;  /* shown in the help ("FILE", "N"); NULL for flags */
    const char *help;     /* one line */
    bool *given;          /* optional: set when the option appears */
} cli_opt;

typedef struct cli_command {
    const char *name;         /* "encrypt", "bench ckks" */
    const char *synopsis;     /* usage line after "hecnn NAME " */
    const char *description;  /* printed by --help before the options; may be NULL */
    const cli_opt *opts;      /* terminated by an entry with name == NULL */
    size_t max_positional;    /* positional arguments accepted (0: none) */
} cli_command;

enum { CLI_PARSE_OK = 0, CLI_PARSE_HELP = 1, CLI_PARSE_ERROR = -1 };

/* Parse argv[1..argc-1] as "--name VALUE", "--name=VALUE", "--flag", "--help"/"-h"; "--" ends
 * the options. Positional arguments go to positional[] (at most cmd->max_positional; both may be
 * NULL when none are accepted). Returns CLI_PARSE_OK, CLI_PARSE_HELP (help printed on stdout:
 * return CLI_EXIT_OK) or CLI_PARSE_ERROR (message printed: return CLI_EXIT_USAGE). */
int cli_parse(const cli_command *cmd, int argc, char **argv, char **positional, size_t *n_positional);
/* Index of the first largest of n values (a predicted class). */
size_t cli_argmax(const double *v, size_t n);
/* How a decrypt command prints scores: the flooding it applied (0 bits: none) and the rounding step
 * of the printed scores (0: none); both are stated in the JSON output. */
typedef struct cli_score_print {
    double flood_bits, flood_stddev, step;
} cli_score_print;
/* Scores of n images (classes each, predicted class = first largest score), with labels and
 * accuracy when labels are given; a table, or JSON. 0, or -1 when the JSON could not be built or
 * written (reported). */
int cli_print_scores(FILE *f, bool json, const double *scores, size_t n, size_t classes, const uint8_t *labels,
                     size_t offset, const cli_score_print *how);

/* A required option: 0 when `value` is set, else a usage error naming the option (and its
 * metavar from cmd's table) and -1. */
int cli_require(const cli_command *cmd, const char *option, const void *value);
void cli_print_help(const cli_command *cmd, FILE *out);

/* Whole-string decimal parsing; false on junk, overflow or out of [lo, hi]. */
bool cli_parse_long(const char *s, long lo, long hi, long *out);
/* Comma-separated integers with ranges "a..b" (e.g. "1,2,4..7,-1"); *out is malloc'ed. */
int cli_parse_int_list(const char *option, const char *s, int **out, size_t *count);

/* ---- numeric vectors --------------------------------------------------------------------- */
/* Text: one value per line, "re" or "re im" (blank lines and lines starting with '#' skipped);
 * binary: little-endian IEEE-754 doubles, real values only. "-" reads stdin. Values must be
 * finite. *values is malloc'ed (free()); *any_imag tells whether an imaginary part was given.
 * Reading is bounded: more than max_count values (what the command can use), a text line over
 * 256 bytes, more than (max_count + 1) x 256 bytes of text or a NUL byte in text is an error
 * (so `--in /dev/zero` fails at once instead of growing without limit). */
int cli_read_values(const char *path, bool binary, size_t max_count, double complex **values, size_t *count, bool *any_imag);
/* Text: "%.17g" per line, or "re im" with `with_imag`; binary: little-endian doubles (re, or
 * re and im interleaved with `with_imag`). Written atomically; "-" writes stdout. */
int cli_write_values(const char *path, bool binary, bool with_imag, const double complex *values, size_t count);

/* ---- files ------------------------------------------------------------------------------- */
typedef struct cli_output {
    FILE *f;
    char *path, *tmp;
    char *buf;            /* private stdio buffer for secrets, wiped on close */
    size_t buf_size;
    bool closed;          /* written and synced, not yet renamed (cli_output_close) */
} cli_output;
/* Open a temporary file next to `path` (mode 0600 when `secret`, else 0666 minus umask). Refuses
 * (reported, -1) when `path` exists and is not a regular file (lstat: links are not followed). */
int cli_output_open(cli_output *o, const char *path, bool secret);
/* Flush, fsync and close the temporary file without renaming it yet: to write several files
 * all or nothing, close them all, then commit them all. On failure the temporary is removed. */
int cli_output_close(cli_output *o);
/* Close (if still open) and rename onto the target; on failure the temporary file is removed
 * and the target untouched. */
int cli_output_commit(cli_output *o);
/* Remove the temporary file; the target is untouched (no-op on a released output). */
void cli_output_abort(cli_output *o);

typedef struct cli_input {
    FILE *f;
    const char *path;
    char *buf;
    size_t buf_size;
} cli_input;
int cli_input_open(cli_input *in, const char *path, bool secret);
void cli_input_close(cli_input *in);

/* Read or write one object through `fn` with the conventions above; `what` names it in
 * messages. With `whole`, bytes after the object are an error. */
typedef hecnn_status (*cli_io_fn)(void *arg, FILE *f);
int cli_read_object(const char *path, const char *what, bool secret, bool whole, cli_io_fn fn, void *arg);
int cli_write_object(const char *path, const char *what, bool secret, cli_io_fn fn, void *arg);
/* SHA-256 of a file's bytes (bounded by nothing but the file: use on files this process wrote).
 * 0 on success, else reported. */
int cli_sha256_file(const char *path, unsigned char digest[32]);
/* Size of a file in bytes, or 0 if it cannot be stat'ed. */
unsigned long long cli_file_size(const char *path);
/* "dir/name", malloc'd (NULL when out of memory). */
char *cli_path_join(const char *dir, const char *name);

/* A key directory as keygen writes it: the file names, in the order of cli_key_dir_write. */
#define CLI_KEY_FILE_PARAMS "params.hecnn"
#define CLI_KEY_FILE_PUBLIC "public.key"
#define CLI_KEY_FILE_EVAL "eval.keys"
#define CLI_KEY_FILE_SECRET "secret.key"
enum { CLI_KEY_PARAMS, CLI_KEY_PUBLIC, CLI_KEY_EVAL, CLI_KEY_SECRET, CLI_KEY_FILES };
extern const char *const cli_key_file_names[CLI_KEY_FILES];
/* Create dir (mode 0700) if needed and fill paths[] (free each); refuses to replace existing
 * keys unless force. 0 on success, else reported. */
int cli_key_dir_prepare(char *paths[CLI_KEY_FILES], const char *dir, bool force);
/* Write the four files; all are written and synced before any is renamed into place, so a
 * failure leaves the directory as it was. The secret key gets mode 0600. 0 on success. */
int cli_key_dir_write(char *const paths[CLI_KEY_FILES], const ckks_params_literal *params, const ckks_public_key *pk,
                      const ckks_eval_keys *keys, bool seeded, const ckks_secret_key *sk);
bool cli_file_exists(const char *path);

/* ---- parameter sets and keys ------------------------------------------------------------- */
/* "n13" .. "n16" (also "N13", "13"); false for an unknown name. */
bool cli_preset_by_name(const char *name, ckks_preset *out);
const char *cli_preset_name(ckks_preset preset);
/* The context from a parameter file or a preset (exactly one non-NULL). The tool only builds
 * 128-bit secure contexts: a file flagged allow_insecure is accepted only if it is secure
 * anyway. `literal` (optional) receives the parameters. */
int cli_context(const char *params_path, const char *preset, ckks_context **ctx, ckks_params_literal *literal);
/* Human-readable summary of a context (no secrets; one "  key  value" line each). */
void cli_print_context(FILE *out, const ckks_context *ctx);

int cli_load_params(const char *path, ckks_params_literal *out);
int cli_load_secret_key(const ckks_context *ctx, const char *path, ckks_secret_key **out);
int cli_load_public_key(const ckks_context *ctx, const char *path, ckks_public_key **out);
int cli_load_eval_keys(const ckks_context *ctx, const char *path, ckks_eval_keys **out);
int cli_load_ciphertext(const ckks_context *ctx, const char *path, ckks_ciphertext *ct);
int cli_save_params(const char *path, const ckks_params_literal *params);
int cli_save_secret_key(const char *path, const ckks_secret_key *sk);
int cli_save_public_key(const char *path, const ckks_public_key *pk);
int cli_save_eval_keys(const char *path, const ckks_eval_keys *keys, bool seeded);
int cli_save_ciphertext(const char *path, const ckks_ciphertext *ct);

#endif

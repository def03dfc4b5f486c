/* hecnn — status codes shared by every fallible public function. */
#ifndef HECNN_STATUS_H
#define HECNN_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

/* 0 is success; every other value names one class of failure. */
typedef enum hecnn_status {
    HECNN_OK = 0,
    HECNN_ERR_INVALID_ARGUMENT,  /* a NULL, out-of-range or inconsistent argument */
    HECNN_ERR_INVALID_PARAMS,    /* a parameter literal that cannot build a context */
    HECNN_ERR_INSECURE_PARAMS,   /* log QP above the HE-standard 128-bit bound for N */
    HECNN_ERR_PARAMS_MISMATCH,   /* object made under another parameter set */
    HECNN_ERR_LEVEL_MISMATCH,    /* operands at different levels, or no level left */
    HECNN_ERR_SCALE_MISMATCH,    /* operands at different scales */
    HECNN_ERR_MISSING_KEY,       /* relinearization or Galois key not provided */
    HECNN_ERR_BAD_FORMAT,        /* malformed, truncated or out-of-range serialized data */
    HECNN_ERR_IO,                /* a file could not be opened, read or written */
    HECNN_ERR_NO_MEMORY,         /* allocation failed */
    HECNN_ERR_RANDOM,            /* the OS random source or the XOF failed */
    HECNN_ERR_UNSUPPORTED,       /* valid request this build or CPU cannot serve */
    HECNN_ERR_CANCELLED,         /* the caller asked a running operation to stop */
    HECNN_STATUS_COUNT
} hecnn_status;

/* Stable identifier, e.g. "HECNN_ERR_BAD_FORMAT". Never NULL. */
const char *hecnn_status_name(hecnn_status status);
/* One-sentence human explanation. Never NULL. */
const char *hecnn_status_message(hecnn_status status);

/* Detail of the last failure in this thread ("" when none): which argument, which limit. */
const char *hecnn_last_error_detail(void);

/* The library prints nothing by itself: diagnostics (profiles, bootstrapping layouts) go to this
 * callback, one line without its newline per call, from any thread. NULL (the default) drops them. */
typedef void (*hecnn_log_fn)(void *user, const char *line);
void hecnn_set_log_callback(hecnn_log_fn fn, void *user);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif

#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>

static const struct {
    const char *name, *message;
} status_text[HECNN_STATUS_COUNT] = {
    [HECNN_OK] = {"HECNN_OK", "success"},
    [HECNN_ERR_INVALID_ARGUMENT] = {"HECNN_ERR_INVALID_ARGUMENT", "invalid argument"},
    [HECNN_ERR_INVALID_PARAMS] = {"HECNN_ERR_INVALID_PARAMS", "invalid parameter set"},
    [HECNN_ERR_INSECURE_PARAMS] = {"HECNN_ERR_INSECURE_PARAMS",
                                   "parameters below 128-bit security by the HomomorphicEncryption.org table"},
    [HECNN_ERR_PARAMS_MISMATCH] = {"HECNN_ERR_PARAMS_MISMATCH", "object belongs to another parameter set"},
    [HECNN_ERR_LEVEL_MISMATCH] = {"HECNN_ERR_LEVEL_MISMATCH", "level mismatch or no level left"},
    [HECNN_ERR_SCALE_MISMATCH] = {"HECNN_ERR_SCALE_MISMATCH", "scale mismatch"},
    [HECNN_ERR_MISSING_KEY] = {"HECNN_ERR_MISSING_KEY", "required evaluation key is missing"},
    [HECNN_ERR_BAD_FORMAT] = {"HECNN_ERR_BAD_FORMAT", "malformed, truncated or out-of-range data"},
    [HECNN_ERR_IO] = {"HECNN_ERR_IO", "input/output error"},
    [HECNN_ERR_NO_MEMORY] = {"HECNN_ERR_NO_MEMORY", "out of memory"},
    [HECNN_ERR_RANDOM] = {"HECNN_ERR_RANDOM", "random source failure"},
    [HECNN_ERR_UNSUPPORTED] = {"HECNN_ERR_UNSUPPORTED", "unsupported by this build or CPU"},
    [HECNN_ERR_CANCELLED] = {"HECNN_ERR_CANCELLED", "cancelled by the caller"},
};

const char *hecnn_status_name(hecnn_status s)
{
    return (unsigned)s < HECNN_STATUS_COUNT ? status_text[s].name : "HECNN_ERR_UNKNOWN";
}

const char *hecnn_status_message(hecnn_status s)
{
    return (unsigned)s < HECNN_STATUS_COUNT ? status_text[s].message : "unknown status";
}

static _Thread_local char last_detail[256];

const char *hecnn_last_error_detail(void) { return last_detail; }

hecnn_status hecnn_fail(hecnn_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_detail, sizeof last_detail, fmt, ap);
    va_end(ap);
    return status;
}

static hecnn_log_fn log_fn;
static void *log_user;

void hecnn_set_log_callback(hecnn_log_fn fn, void *user)
{
    log_user = user;
    log_fn = fn;
}

bool hecnn_log_enabled(void) { return log_fn != NULL; }

void hecnn_log(const char *fmt, ...)
{
    const hecnn_log_fn fn = log_fn;
    if (!fn) return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fn(log_user, line);
}

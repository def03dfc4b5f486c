/* Recording the detail of a failure for hecnn_last_error_detail(). */
#ifndef HECNN_UTIL_ERROR_H
#define HECNN_UTIL_ERROR_H

#include <stdbool.h>

#include "hecnn/status.h"

/* Record a printf-style detail for this thread and return `status` (for `return fail(...)`). */
hecnn_status hecnn_fail(hecnn_status status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A diagnostic line for the log callback (hecnn_set_log_callback); nothing when none is set. */
void hecnn_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
bool hecnn_log_enabled(void);

#endif

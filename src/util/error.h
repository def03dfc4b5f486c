/* Recording the detail of a failure for hecnn_last_error_detail(). */
#ifndef HECNN_UTIL_ERROR_H
#define HECNN_UTIL_ERROR_H

#include "hecnn/status.h"

/* Record a printf-style detail for this thread and return `status` (for `return fail(...)`). */
hecnn_status hecnn_fail(hecnn_status status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif

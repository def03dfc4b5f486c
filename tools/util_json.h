/* JSON output of the commands' --json modes, built with json-c (tool side only: the library does
 * not depend on it), so that every string that comes from outside (paths, the CPU's name, class
 * names) is escaped. Numbers keep the printf format each command chose: the formatted text is what
 * is printed, so figures keep their precision; a non-finite number is printed as null.
 *
 * The add helpers never fail on their own: out of memory (or a NULL parent) is remembered and
 * reported by cli_json_print, which prints nothing then. */
#ifndef HECNN_TOOLS_UTIL_JSON_H
#define HECNN_TOOLS_UTIL_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <json.h>

json_object *cli_json_object(void);
json_object *cli_json_array(void);
/* `v` formatted by `fmt` (one double conversion, e.g. "%.4f"); null when v is not finite. */
json_object *cli_json_number(const char *fmt, double v);

/* Add to an object (key) or append to an array; `value` is owned by the parent afterwards. */
void cli_json_add(json_object *obj, const char *key, json_object *value);
void cli_json_append(json_object *arr, json_object *value);
void cli_json_add_number(json_object *obj, const char *key, const char *fmt, double v);
void cli_json_add_int(json_object *obj, const char *key, int64_t v);
void cli_json_add_uint(json_object *obj, const char *key, uint64_t v);
void cli_json_add_string(json_object *obj, const char *key, const char *s);  /* NULL: "" */
void cli_json_add_bool(json_object *obj, const char *key, bool v);

/* Print `root` and a newline on f, indented (pretty) or on one line, then free it. Returns 0, or
 * reports (cli_error) a failure to build or write it and returns -1. */
int cli_json_print(FILE *f, json_object *root, bool pretty);

#endif

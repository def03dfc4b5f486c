/* JSON output of the commands (util_json.h): a thin layer over json-c. */
#include "util_json.h"

#include <math.h>

#include "util_cli.h"

/* Set when a value could not be made or added (out of memory); cli_json_print reports it. */
static bool json_failed;

static json_object *made(json_object *o)
{
    if (!o) json_failed = true;
    return o;
}

json_object *cli_json_object(void) { return made(json_object_new_object()); }
json_object *cli_json_array(void) { return made(json_object_new_array()); }

json_object *cli_json_number(const char *fmt, double v)
{
    if (!isfinite(v)) return made(json_object_new_null());
    char text[64];
    /* fmt is always one of the commands' literal formats with a single double conversion */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    const int len = snprintf(text, sizeof text, fmt, v);
#pragma GCC diagnostic pop
    if (len <= 0 || (size_t)len >= sizeof text) {
        json_failed = true;
        return NULL;
    }
    return made(json_object_new_double_s(v, text));
}

void cli_json_add(json_object *obj, const char *key, json_object *value)
{
    if (!obj || !value || !json_object_is_type(obj, json_type_object) || json_object_object_add(obj, key, value)) {
        json_object_put(value);
        json_failed = true;
    }
}

void cli_json_append(json_object *arr, json_object *value)
{
    if (!arr || !value || !json_object_is_type(arr, json_type_array) || json_object_array_add(arr, value)) {
        json_object_put(value);
        json_failed = true;
    }
}

void cli_json_add_number(json_object *obj, const char *key, const char *fmt, double v)
{
    cli_json_add(obj, key, cli_json_number(fmt, v));
}
void cli_json_add_int(json_object *obj, const char *key, int64_t v) { cli_json_add(obj, key, made(json_object_new_int64(v))); }
void cli_json_add_uint(json_object *obj, const char *key, uint64_t v) { cli_json_add(obj, key, made(json_object_new_uint64(v))); }
void cli_json_add_string(json_object *obj, const char *key, const char *s)
{
    cli_json_add(obj, key, made(json_object_new_string(s ? s : "")));
}
void cli_json_add_bool(json_object *obj, const char *key, bool v) { cli_json_add(obj, key, made(json_object_new_boolean(v))); }

int cli_json_print(FILE *f, json_object *root, bool pretty)
{
    int flags = JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE;
    if (pretty) flags |= JSON_C_TO_STRING_PRETTY;
    const char *text = root && !json_failed ? json_object_to_json_string_ext(root, flags) : NULL;
    int rc = 0;
    if (!text) {
        cli_error("cannot build the JSON output: out of memory");
        rc = -1;
    } else if (fputs(text, f) == EOF || fputc('\n', f) == EOF || fflush(f)) {
        cli_error("cannot write the JSON output");
        rc = -1;
    }
    json_object_put(root);
    json_failed = false;
    return rc;
}

/* The library prints nothing by itself: its diagnostics reach the log callback, and only it. */
#include <string.h>

#include "common/check.h"
#include "hecnn/hecnn.h"

static int lines;
static char last[512];

static void collect(void *user, const char *line)
{
    CHECK(user == &lines);
    lines++;
    strncpy(last, line, sizeof last - 1);
}

static int make_bootstrapper(void)
{
    ckks_params_literal lit;
    ckks_boot_params bp;
    ckks_context *ctx = NULL;
    ckks_bootstrapper *bt = NULL;
    int ok = ckks_boot_preset_params(&lit, &bp, CKKS_BOOT_TEST_N12_SPARSE) == HECNN_OK &&
             ckks_context_new(&ctx, &lit) == HECNN_OK && ckks_bootstrapper_new(&bt, ctx, &bp) == HECNN_OK;
    ckks_bootstrapper_free(bt);
    ckks_context_free(ctx);
    return ok;
}

int main(void)
{
    /* no callback: nothing is delivered (and nothing printed) */
    CHECK(make_bootstrapper());
    CHECK(lines == 0);
    /* a callback receives the bootstrapper's layout, one line per call, without newlines */
    hecnn_set_log_callback(collect, &lines);
    CHECK(make_bootstrapper());
    CHECK(lines >= 3);
    CHECK(strstr(last, "EvalMod") != NULL && strchr(last, '\n') == NULL);
    /* removed again */
    hecnn_set_log_callback(NULL, NULL);
    const int before = lines;
    CHECK(make_bootstrapper());
    CHECK(lines == before);
    return check_summary();
}

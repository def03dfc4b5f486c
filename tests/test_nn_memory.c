/* Memory schedules of the batched packing (hecnn_plan_set_memory): on a small ResNet-shaped network
 * (two stages, two groups of images merging into one) at insecure test parameters (N = 2^12), the run
 * in chunks of one group and with spilled stage outputs gives scores bit-identical to the run over the
 * whole batch; each run's allocations stay under the schedule's estimate; a killed run's spill
 * directory is never read and is reclaimed; a budget below every schedule is refused with the
 * smallest that works. */
#include <dirent.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/check.h"
#include "common/nn_graphs.h"
#include "hecnn/graph.h"
#include "hecnn/plan.h"
#include "nn/plan_internal.h"
#include "util/alloc.h"

#define SIDE 8
#define BATCH 40 /* 32 images per ciphertext: two groups */
#define CLASSES 3

/* input 2x8x8 -> conv 4 -> relu -> conv/2 8 -> relu -> pool -> dense 3 */
static hecnn_graph *two_stage_net(void)
{
    hecnn_graph *g = NULL;
    if (hecnn_graph_new(&g, 2, SIDE, SIDE)) return NULL;
    double w[8 * 4 * 9], b[8];
    size_t c1 = 0, r1 = 0, c2 = 0, r2 = 0, p = 0, d = 0;
    test_random_fill(w, 4 * 2 * 9, 0.3);
    test_random_fill(b, 4, 0.1);
    CHECK(hecnn_graph_conv2d(g, &c1, 0, 4, 3, 1, 1, w, b) == HECNN_OK);
    CHECK(hecnn_graph_relu(g, &r1, c1) == HECNN_OK);
    test_random_fill(w, 8 * 4 * 9, 0.2);
    test_random_fill(b, 8, 0.1);
    CHECK(hecnn_graph_conv2d(g, &c2, r1, 8, 3, 2, 1, w, b) == HECNN_OK);
    CHECK(hecnn_graph_relu(g, &r2, c2) == HECNN_OK);
    CHECK(hecnn_graph_avgpool(g, &p, r2, SIDE / 2) == HECNN_OK);
    test_random_fill(w, CLASSES * 8, 0.5);
    test_random_fill(b, CLASSES, 0.1);
    CHECK(hecnn_graph_dense(g, &d, p, CLASSES, w, b) == HECNN_OK);
    return g;
}

static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}

typedef struct fixture {
    hecnn_plan *plan;
    const ckks_eval_keys *keys;
    const ckks_boot_keys *boot;
    const ckks_secret_key *sk;
    ckks_ciphertext **in, **out;
} fixture;

/* Run under the plan's current schedule: the scores, and the bytes allocated beyond what was live;
 * time goes to spilling exactly when the schedule spills. */
static void run(const fixture *f, double *scores, size_t *run_peak, bool spilled)
{
    size_t live = 0, peak = 0;
    hecnn_alloc_release_cache();
    hecnn_alloc_stats(&live, NULL);
    hecnn_alloc_reset_peak();
    hecnn_run_stats stats;
    const hecnn_status st = hecnn_plan_run(f->plan, f->keys, f->boot, f->in, f->out, NULL, NULL, NULL, &stats);
    CHECK_MSG(st == HECNN_OK, "%s: %s", hecnn_status_name(st), hecnn_last_error_detail());
    CHECK_MSG(spilled ? stats.seconds_spill > 0 : stats.seconds_spill == 0, "%s run: %g s spilling",
              spilled ? "spilled" : "in-memory", stats.seconds_spill);
    hecnn_alloc_stats(NULL, &peak);
    *run_peak = peak - live;
    CHECK(hecnn_plan_decrypt(f->plan, scores, BATCH, f->out, f->sk) == HECNN_OK);
}

/* A progress callback that cancels the run after `after` nodes. */
typedef struct stopper {
    volatile int cancel;
    size_t nodes, after;
} stopper;

static void stop_after(void *user, const char *stage, double done)
{
    (void)stage;
    (void)done;
    stopper *s = user;
    if (++s->nodes == s->after) s->cancel = 1;
}

/* Checkpoints in dir: a run cancelled after the first chunk of stage 0 keeps it; another run id is
 * refused; the same id resumes it and gives `base` to the bit, then removes its files; a damaged
 * checkpoint file is an error, not a crash. */
static void test_checkpoints(const fixture *f, const char *dir, const double *base)
{
    double got[BATCH * CLASSES];
    hecnn_run_stats stats;
    /* stage 0 runs one group at a time: input, conv, relu (3 nodes); stop in the second group */
    stopper stop = {.after = 4};
    CHECK(hecnn_plan_set_checkpoint(f->plan, dir, "run-a") == HECNN_OK);
    hecnn_status st = hecnn_plan_run(f->plan, f->keys, f->boot, f->in, f->out, stop_after, &stop, &stop.cancel, NULL);
    CHECK_MSG(st == HECNN_ERR_CANCELLED, "%s", hecnn_status_name(st));
    char path[700];
    snprintf(path, sizeof path, "%s/d0_g0.done", dir);
    CHECK(access(path, F_OK) == 0);
    snprintf(path, sizeof path, "%s/d0_g1.done", dir);
    CHECK(access(path, F_OK) != 0);
    CHECK(hecnn_plan_set_checkpoint(f->plan, dir, "run-b") == HECNN_OK);
    st = hecnn_plan_run(f->plan, f->keys, f->boot, f->in, f->out, NULL, NULL, NULL, NULL);
    CHECK_MSG(st == HECNN_ERR_INVALID_ARGUMENT && strstr(hecnn_last_error_detail(), "another run"), "%s",
              hecnn_status_name(st));
    CHECK(hecnn_plan_set_checkpoint(f->plan, dir, "run-a") == HECNN_OK);
    st = hecnn_plan_run(f->plan, f->keys, f->boot, f->in, f->out, NULL, NULL, NULL, &stats);
    CHECK_MSG(st == HECNN_OK, "%s: %s", hecnn_status_name(st), hecnn_last_error_detail());
    CHECK(stats.chunks_resumed == 1 && stats.seconds_resumed > 0 && stats.seconds_spill > 0);
    CHECK(stats.bootstraps == hecnn_plan_bootstraps(f->plan) && stats.rotations == hecnn_plan_rotations(f->plan));
    CHECK(hecnn_plan_decrypt(f->plan, got, BATCH, f->out, f->sk) == HECNN_OK);
    CHECK(memcmp(got, base, sizeof got) == 0);
    CHECK_MSG(access(dir, F_OK) != 0, "%s left behind", dir);
    /* a damaged stage output */
    stop = (stopper){.after = 4};
    st = hecnn_plan_run(f->plan, f->keys, f->boot, f->in, f->out, stop_after, &stop, &stop.cancel, NULL);
    CHECK(st == HECNN_ERR_CANCELLED);
    snprintf(path, sizeof path, "%s/n2_0.ct", dir);
    FILE *fp = fopen(path, "r+b");
    CHECK(fp != NULL);
    if (fp) {
        fseek(fp, 100, SEEK_SET);
        fputc(0x5a ^ fgetc(fp), fp);
        fclose(fp);
    }
    st = hecnn_plan_run(f->plan, f->keys, f->boot, f->in, f->out, NULL, NULL, NULL, NULL);
    CHECK_MSG(st == HECNN_ERR_BAD_FORMAT, "%s: %s", hecnn_status_name(st), hecnn_last_error_detail());
    fprintf(stderr, "memory: a damaged checkpoint: %s\n", hecnn_last_error_detail());
    CHECK(hecnn_plan_set_checkpoint(f->plan, NULL, NULL) == HECNN_OK);
    /* what a user does then: remove the directory */
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));)
        if (e->d_name[0] != '.') {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    if (d) closedir(d);
    CHECK(rmdir(dir) == 0);
}

int main(void)
{
    test_rng_seed(21);
    hecnn_graph *g = two_stage_net();
    REQUIRE(g);
    const size_t per = 2 * SIDE * SIDE;
    double *images = malloc(BATCH * per * sizeof *images);
    test_random_fill(images, BATCH * per, 1.5);
    test_calibrate(g, images, BATCH);

    ckks_params_literal lit;
    ckks_boot_params bp;
    ckks_context *ctx = NULL;
    ckks_bootstrapper *bt = NULL;
    REQUIRE(ckks_boot_preset_params(&lit, &bp, CKKS_BOOT_TEST_N12_DEEP) == HECNN_OK);
    REQUIRE(ckks_context_new(&ctx, &lit) == HECNN_OK);
    REQUIRE(ckks_bootstrapper_new(&bt, ctx, &bp) == HECNN_OK);
    hecnn_plan *plan = NULL;
    const hecnn_plan_options opt = {.batch = BATCH, .grid = SIDE};
    REQUIRE(hecnn_plan_new(&plan, g, ctx, bt, &opt) == HECNN_OK);
    uint8_t seed[CKKS_SEED_BYTES] = {21};
    ckks_secret_key *sk = NULL;
    ckks_eval_keys *keys = NULL;
    ckks_boot_keys *boot = NULL;
    REQUIRE(ckks_secret_key_generate_derand(&sk, ctx, seed) == HECNN_OK);
    REQUIRE(hecnn_plan_keys_generate(&keys, plan, sk) == HECNN_OK);
    REQUIRE(ckks_boot_keys_generate(&boot, bt, sk) == HECNN_OK);
    const size_t n_in = hecnn_plan_input_ciphertexts(plan), n_out = hecnn_plan_output_ciphertexts(plan);
    ckks_ciphertext *in[4] = {0}, *out[CLASSES] = {0};
    /* the second stage multiplexes two channels per ciphertext: 3 scores in 2 ciphertexts */
    REQUIRE(n_in == 4 && n_out == 2);
    for (size_t i = 0; i < n_in; i++) CHECK(ckks_ciphertext_new(&in[i], ctx) == HECNN_OK);
    for (size_t i = 0; i < n_out; i++) CHECK(ckks_ciphertext_new(&out[i], ctx) == HECNN_OK);
    CHECK(hecnn_plan_encrypt(plan, in, images, BATCH, NULL, sk) == HECNN_OK);
    const fixture f = {plan, keys, boot, sk, in, out};

    /* no budget: the whole batch at once */
    hecnn_memory_schedule whole;
    CHECK(hecnn_plan_set_memory(plan, &(hecnn_memory_options){0}, &whole) == HECNN_OK);
    CHECK(whole.groups == 2 && whole.chunk_groups == 2 && !whole.spill && whole.run_bytes > 0);
    double base[BATCH * CLASSES], got[BATCH * CLASSES];
    size_t used = 0;
    run(&f, base, &used, false);
    CHECK_MSG(used <= whole.run_bytes, "the run allocated %zu bytes, the estimate %llu", used,
              (unsigned long long)whole.run_bytes);
    fprintf(stderr, "memory: whole batch: estimate %.1f MiB, allocated %.1f MiB\n", whole.run_bytes / 1048576.0,
            used / 1048576.0);

    /* one group at a time (forced through the packing: on a network this small the bootstrap's own
     * workspace dominates every estimate), the same scores to the bit */
    uint64_t est = 0;
    REQUIRE(plan->ops->schedule(plan, 1, false, NULL, true, &est) == HECNN_OK);
    run(&f, got, &used, false);
    CHECK(memcmp(got, base, sizeof got) == 0);
    CHECK_MSG(used <= est, "the run allocated %zu bytes, the estimate %llu", used, (unsigned long long)est);
    fprintf(stderr, "memory: chunks of one group: estimate %.1f MiB, allocated %.1f MiB\n", est / 1048576.0, used / 1048576.0);

    /* spilled stage outputs; a killed run's directory in the scratch directory is never read */
    char scratch[] = "/tmp/hecnn-test-memory-XXXXXX";
    REQUIRE(mkdtemp(scratch));
    char stale[256], junk[300];
    snprintf(stale, sizeof stale, "%s/hecnn-spill-killed", scratch);
    CHECK(mkdir(stale, 0700) == 0);
    snprintf(junk, sizeof junk, "%s/lock", stale);
    FILE *fj = fopen(junk, "w");
    if (fj) fclose(fj);
    for (int k = 0; k < 8; k++) { /* names a run would use, holding garbage */
        snprintf(junk, sizeof junk, "%s/n2_%d.ct", stale, k);
        if ((fj = fopen(junk, "w"))) {
            fputs("not a ciphertext", fj);
            fclose(fj);
        }
    }
    REQUIRE(plan->ops->schedule(plan, 1, true, scratch, true, &est) == HECNN_OK);
    run(&f, got, &used, true);
    CHECK(memcmp(got, base, sizeof got) == 0);
    CHECK_MSG(used <= est, "the run allocated %zu bytes, the estimate %llu", used, (unsigned long long)est);
    fprintf(stderr, "memory: spilled, chunks of one group: estimate %.1f MiB, allocated %.1f MiB\n", est / 1048576.0,
            used / 1048576.0);
    CHECK_MSG(count_entries(scratch) == 0, "%zu entries left in the scratch directory", count_entries(scratch));
    char ckdir[300];
    snprintf(ckdir, sizeof ckdir, "%s/checkpoints", scratch);
    test_checkpoints(&f, ckdir, base);
    /* a scratch directory that is gone: a clear I/O error, no crash */
    CHECK(rmdir(scratch) == 0);
    const hecnn_status st = hecnn_plan_run(plan, keys, boot, in, out, NULL, NULL, NULL, NULL);
    CHECK_MSG(st == HECNN_ERR_IO, "%s", hecnn_status_name(st));

    /* the planner: no limit takes the fastest schedule; a budget below every schedule is refused with
     * the smallest that works, which then works */
    hecnn_memory_schedule again, refused, tight;
    CHECK(hecnn_plan_set_memory(plan, &(hecnn_memory_options){0}, &again) == HECNN_OK);
    CHECK(again.chunk_groups == 2 && !again.spill && again.run_bytes == whole.run_bytes);
    CHECK(again.fixed_bytes >= hecnn_plan_bytes(plan) + ckks_bootstrapper_bytes(bt));
    CHECK(hecnn_plan_set_memory(plan, &(hecnn_memory_options){.budget = 1 << 20}, &refused) == HECNN_ERR_NO_MEMORY);
    CHECK(strstr(hecnn_last_error_detail(), "the smallest that works") != NULL);
    CHECK(refused.min_budget > 1 << 20 && refused.min_budget <= whole.peak_bytes);
    CHECK(hecnn_plan_set_memory(plan, &(hecnn_memory_options){.budget = refused.min_budget}, &tight) == HECNN_OK);
    CHECK(tight.peak_bytes <= refused.min_budget && tight.min_budget == refused.min_budget);
    const hecnn_memory_options held = {.budget = whole.peak_bytes, .held = 1ull << 40};
    CHECK(hecnn_plan_set_memory(plan, &held, NULL) == HECNN_ERR_NO_MEMORY);

    for (size_t i = 0; i < n_in; i++) ckks_ciphertext_free(in[i]);
    for (size_t i = 0; i < n_out; i++) ckks_ciphertext_free(out[i]);
    ckks_eval_keys_free(keys);
    ckks_boot_keys_free(boot);
    ckks_secret_key_free(sk);
    hecnn_plan_free(plan);
    ckks_bootstrapper_free(bt);
    ckks_context_free(ctx);
    hecnn_graph_free(g);
    free(images);
    return check_summary();
}

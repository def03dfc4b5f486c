/* `hecnn model import | info | eval | calibrate`: network graphs as model files, imported from
 * weight CSVs, described, evaluated in the clear on CIFAR, and calibrated for the encrypted run
 * (each ReLU's input range from training images, and its polynomial). See cmd_model.h. */
#include "cmd_model.h"
#include "cmd_resnet.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hecnn/circuits.h"
#include "hecnn/graph.h"
#include "util_bench.h"
#include "util_cifar.h"
#include "util_cli.h"
#include "util_json.h"
#include "util_resnet.h"

#define CHUNK 50 /* images per hecnn_graph_infer call: bounded memory, stats accumulate */

static double now_s(void) { return bench_seconds(CLOCK_MONOTONIC); }

static const char *op_name(hecnn_op op)
{
    static const char *const names[HECNN_OP_COUNT] = {"input", "conv2d", "batchnorm", "dense", "avgpool", "add", "relu", "poly"};
    return (unsigned)op < HECNN_OP_COUNT ? names[op] : "?";
}

/* ---- model files -------------------------------------------------------------------------- */

static hecnn_status load_fn(void *arg, FILE *f) { return hecnn_graph_load(arg, f); }
static hecnn_status save_fn(void *arg, FILE *f) { return hecnn_graph_save(arg, f); }

static int load_model(const char *path, hecnn_graph **g)
{
    *g = NULL;
    if (cli_read_object(path, "model", false, true, load_fn, g)) {
        hecnn_graph_free(*g);
        *g = NULL;
        return -1;
    }
    return 0;
}

static int save_model(const char *path, const hecnn_graph *g) { return cli_write_object(path, "model", false, save_fn, (void *)g); }

static void digest_hex(const hecnn_graph *g, char hex[65])
{
    uint8_t d[32];
    if (hecnn_graph_digest(g, d)) {
        snprintf(hex, 65, "(unavailable)");
        return;
    }
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

static size_t param_count(const hecnn_graph *g)
{
    size_t n = 0;
    for (size_t i = 0; i < hecnn_graph_node_count(g); i++) {
        const hecnn_node *nd = hecnn_graph_node(g, i);
        n += nd->n_weight + nd->n_bias + (nd->op == HECNN_OP_POLY && nd->coeff ? nd->degree + 1 : 0);
    }
    return n;
}

/* ReLU counts: total, with a range, with an approximation. */
static void relu_counts(const hecnn_graph *g, size_t *n, size_t *ranged, size_t *approx)
{
    *n = *ranged = *approx = 0;
    for (size_t i = 0; i < hecnn_graph_node_count(g); i++) {
        const hecnn_node *nd = hecnn_graph_node(g, i);
        if (nd->op != HECNN_OP_RELU) continue;
        ++*n;
        if (nd->range > 0) ++*ranged;
        if (nd->coeff && nd->degree > 0) ++*approx;
    }
}

/* The model must take CIFAR images (3 x 32 x 32) and output class scores. */
static int check_cifar_model(const hecnn_graph *g, const char *path, size_t *classes)
{
    const hecnn_node *in = hecnn_graph_node(g, 0);
    if (!in || in->c != CIFAR_CHANNELS || in->h != CIFAR_SIDE || in->w != CIFAR_SIDE) {
        cli_error("model '%s' takes %ux%ux%u inputs, not CIFAR images (3x32x32)", path, in ? in->c : 0, in ? in->h : 0,
                  in ? in->w : 0);
        return -1;
    }
    *classes = hecnn_graph_node_size(g, hecnn_graph_output(g));
    return 0;
}

/* The data set for a model with `classes` outputs: --dataset wins, else 10 -> CIFAR-10,
 * 100 -> CIFAR-100 fine, 20 -> CIFAR-100 coarse. */
static int pick_dataset(const char *name, size_t classes, bool *coarse, cifar_kind *kind)
{
    if (name) {
        if (!cifar_kind_by_name(name, kind)) {
            cli_error("--dataset %.32s: choose cifar10 or cifar100", name);
            return -1;
        }
    } else if (classes == 10) {
        *kind = CIFAR_10;
    } else if (classes == 100 || classes == 20) {
        *kind = CIFAR_100;
        if (classes == 20) *coarse = true;
    } else {
        cli_error("the model has %zu outputs: give --dataset cifar10 or cifar100", classes);
        return -1;
    }
    if (*coarse && *kind != CIFAR_100) {
        cli_error("--coarse applies to CIFAR-100 only");
        return -1;
    }
    if (cifar_classes(*kind, *coarse) != classes) {
        cli_error("the model has %zu outputs, %s%s has %u classes", classes, cifar_kind_name(*kind), *coarse ? " (coarse labels)" : "",
                  cifar_classes(*kind, *coarse));
        return -1;
    }
    return 0;
}

/* ---- import ------------------------------------------------------------------------------- */

int cmd_model_import(int argc, char **argv)
{
    const char *dir = NULL, *arch_s = NULL, *sc_s = "B", *out = NULL;
    const cli_opt opts[] = {
        {"fheon", CLI_OPT_STRING, &dir, "DIR", "FHEON-style weight CSV directory (BN folded; see models/README.md)", NULL},
        {"arch", CLI_OPT_STRING, &arch_s, "ARCH", "resnet20 (16/32/64, 10 classes) or resnet34 (16/32/64/128, 100 classes)", NULL},
        {"shortcut", CLI_OPT_STRING, &sc_s, "B|A", "downsampling shortcuts: B = 1x1 conv CSVs (FHEON), A = zero-padded identity", NULL},
        {"out", CLI_OPT_STRING, &out, "FILE", "the model file to write", NULL},
        {0},
    };
    const cli_command cmd = {
        "model import", "--fheon DIR --arch resnet20|resnet34 [--shortcut B|A] --out FILE",
        "Build a CIFAR ResNet graph from one-row weight CSVs in FHEON's layout (layer0_conv1_weight.csv, ...)\n"
        "and write it as a model file. The input normalisation is FHEON's unless the directory holds\n"
        "input_mean.csv and input_std.csv. Option-A shortcuts (akamaster's ResNets, via\n"
        "models/export_resnet.py) become 1x1 stride-2 convolutions with 0/1 weights.",
        opts, 0};
    int rc = cli_parse(&cmd, argc, argv, NULL, NULL);
    if (rc) return rc == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    if (cli_require(&cmd, "fheon", dir) || cli_require(&cmd, "arch", arch_s) || cli_require(&cmd, "out", out)) return CLI_EXIT_USAGE;
    resnet_arch arch;
    if (!resnet_arch_by_name(arch_s, &arch)) {
        cli_error("--arch %.32s: choose resnet20 or resnet34", arch_s);
        return CLI_EXIT_USAGE;
    }
    resnet_shortcut sc;
    if (!strcmp(sc_s, "B") || !strcmp(sc_s, "b")) sc = RESNET_SHORTCUT_B;
    else if (!strcmp(sc_s, "A") || !strcmp(sc_s, "a")) sc = RESNET_SHORTCUT_A;
    else {
        cli_error("--shortcut %.32s: choose B (1x1 convolutions) or A (zero-padded identity)", sc_s);
        return CLI_EXIT_USAGE;
    }
    hecnn_graph *g = NULL;
    bool file_norm = false;
    if (resnet_import_csv(dir, arch, sc, &g, &file_norm)) return CLI_EXIT_FAIL;
    rc = CLI_EXIT_FAIL;
    if (save_model(out, g)) goto done;
    char hex[65];
    digest_hex(g, hex);
    size_t nr, ranged, approx;
    relu_counts(g, &nr, &ranged, &approx);
    printf("imported %s (option-%s shortcuts) from %s: %zu nodes, %zu ReLUs, %zu parameters, %zu classes\n",
           resnet_shape_of(arch)->name, sc == RESNET_SHORTCUT_A ? "A" : "B", dir, hecnn_graph_node_count(g), nr, param_count(g),
           hecnn_graph_node_size(g, hecnn_graph_output(g)));
    const double *m = hecnn_graph_input_mean(g), *s = hecnn_graph_input_std(g);
    printf("input normalisation (%s): mean %g %g %g, std %g %g %g\n", file_norm ? "input_mean.csv, input_std.csv" : "FHEON's",
           m[0], m[1], m[2], s[0], s[1], s[2]);
    printf("wrote %s (%llu bytes, SHA-256 %s)\n", out, cli_file_size(out), hex);
    rc = CLI_EXIT_OK;
done:
    hecnn_graph_free(g);
    return rc;
}

/* ---- info --------------------------------------------------------------------------------- */

int cmd_model_info(int argc, char **argv)
{
    const char *path = NULL;
    bool quiet = false;
    const cli_opt opts[] = {
        {"model", CLI_OPT_STRING, &path, "FILE", "model file", NULL},
        {"summary", CLI_OPT_FLAG, &quiet, NULL, "only the summary, not the node table", NULL},
        {0},
    };
    const cli_command cmd = {"model info", "--model FILE [--summary]",
                             "Describe a model file: its nodes and shapes, parameter count, input normalisation,\n"
                             "ReLU calibration and approximations, and its SHA-256 digest.",
                             opts, 0};
    int rc = cli_parse(&cmd, argc, argv, NULL, NULL);
    if (rc) return rc == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    if (cli_require(&cmd, "model", path)) return CLI_EXIT_USAGE;
    hecnn_graph *g;
    if (load_model(path, &g)) return CLI_EXIT_FAIL;
    const size_t n = hecnn_graph_node_count(g);
    if (!quiet) {
        printf("%5s  %-9s %-11s %-14s %-12s %10s  %s\n", "node", "op", "inputs", "shape (c,h,w)", "k/stride/pad", "params", "ReLU range / approx");
        for (size_t i = 0; i < n; i++) {
            const hecnn_node *nd = hecnn_graph_node(g, i);
            char ins[32] = "-", shape[32], ksp[32] = "", extra[64] = "";
            if (nd->op == HECNN_OP_ADD) snprintf(ins, sizeof ins, "%u, %u", nd->in[0], nd->in[1]);
            else if (nd->op != HECNN_OP_INPUT) snprintf(ins, sizeof ins, "%u", nd->in[0]);
            snprintf(shape, sizeof shape, "%u x %u x %u", nd->c, nd->h, nd->w);
            if (nd->op == HECNN_OP_CONV2D) snprintf(ksp, sizeof ksp, "%u/%u/%u", nd->k, nd->stride, nd->pad);
            else if (nd->op == HECNN_OP_AVGPOOL) snprintf(ksp, sizeof ksp, "%u", nd->k);
            if (nd->op == HECNN_OP_RELU) {
                if (nd->range > 0) snprintf(extra, sizeof extra, "%.4g", nd->range);
                else snprintf(extra, sizeof extra, "not calibrated");
                if (nd->coeff && nd->degree) {
                    const size_t l = strlen(extra);
                    snprintf(extra + l, sizeof extra - l, " / degree %zu", nd->degree);
                }
            } else if (nd->op == HECNN_OP_POLY) {
                snprintf(extra, sizeof extra, "degree %zu", nd->degree);
            }
            printf("%5zu  %-9s %-11s %-14s %-12s %10zu  %s\n", i, op_name(nd->op), ins, shape, ksp, nd->n_weight + nd->n_bias, extra);
        }
        printf("\n");
    }
    size_t nr, ranged, approx;
    relu_counts(g, &nr, &ranged, &approx);
    const hecnn_node *in = hecnn_graph_node(g, 0);
    const double *m = hecnn_graph_input_mean(g), *s = hecnn_graph_input_std(g);
    char hex[65];
    digest_hex(g, hex);
    printf("model        %s (%llu bytes)\n", path, cli_file_size(path));
    printf("nodes        %zu\n", n);
    printf("input        %u x %u x %u, normalised by mean", in->c, in->h, in->w);
    for (unsigned c = 0; c < in->c && c < 8; c++) printf(" %g", m[c]);
    printf(", std");
    for (unsigned c = 0; c < in->c && c < 8; c++) printf(" %g", s[c]);
    printf("\noutput       %zu values (node %zu)\n", hecnn_graph_node_size(g, hecnn_graph_output(g)), hecnn_graph_output(g));
    printf("parameters   %zu\n", param_count(g));
    printf("ReLUs        %zu: %zu with a range, %zu with an approximation%s\n", nr, ranged, approx,
           nr && ranged == nr && approx == nr ? " (ready for approx / encrypted inference)" : ranged < nr ? " (run 'hecnn model calibrate')" : "");
    printf("SHA-256      %s\n", hex);
    hecnn_graph_free(g);
    return CLI_EXIT_OK;
}

/* ---- eval --------------------------------------------------------------------------------- */

int cmd_model_eval(int argc, char **argv)
{
    const char *path = NULL, *data = NULL, *mode_s = "exact", *dataset = NULL;
    size_t count = 0, offset = 0;
    bool json = false, coarse = false, per_class = false;
    const cli_opt opts[] = {
        {"model", CLI_OPT_STRING, &path, "FILE", "model file", NULL},
        {"data", CLI_OPT_STRING, &data, "FILE", "CIFAR binary file (test_batch.bin, test.bin)", NULL},
        {"count", CLI_OPT_SIZE, &count, "N", "images (default: all from --offset)", NULL},
        {"offset", CLI_OPT_SIZE, &offset, "K", "first image (default 0)", NULL},
        {"mode", CLI_OPT_STRING, &mode_s, "MODE", "exact (ReLU = max(x, 0)) or approx (the encrypted run's polynomials, simulated)", NULL},
        {"dataset", CLI_OPT_STRING, &dataset, "NAME", "cifar10 or cifar100 (default: from the model's outputs)", NULL},
        {"coarse", CLI_OPT_FLAG, &coarse, NULL, "CIFAR-100: score the coarse labels (default: fine)", NULL},
        {"per-class", CLI_OPT_FLAG, &per_class, NULL, "also print the accuracy per class", NULL},
        {"json", CLI_OPT_FLAG, &json, NULL, "print JSON", NULL},
        {0},
    };
    const cli_command cmd = {
        "model eval", "--model FILE --data CIFAR_BIN [--count N] [--offset K] [--mode exact|approx] [--json]",
        "Plaintext accuracy of a model on CIFAR images (float64 reference inference). In approx mode each\n"
        "ReLU is range * p(x / range), as the encrypted run computes it; the command also runs the exact\n"
        "network and reports the agreement of the two argmaxes, the largest |logit difference| and, per\n"
        "ReLU, the images that pushed some input outside its range (target: 0).",
        opts, 0};
    int rc = cli_parse(&cmd, argc, argv, NULL, NULL);
    if (rc) return rc == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    if (cli_require(&cmd, "model", path) || cli_require(&cmd, "data", data)) return CLI_EXIT_USAGE;
    bool approx;
    if (!strcmp(mode_s, "exact")) approx = false;
    else if (!strcmp(mode_s, "approx")) approx = true;
    else {
        cli_error("--mode %.32s: choose exact or approx", mode_s);
        return CLI_EXIT_USAGE;
    }
    hecnn_graph *g;
    if (load_model(path, &g)) return CLI_EXIT_FAIL;
    rc = CLI_EXIT_FAIL;
    const size_t nodes = hecnn_graph_node_count(g);
    size_t classes, total, nr, ranged, napprox;
    cifar_kind kind;
    double *in = NULL, *out_e = NULL, *out_a = NULL, *absmax = NULL;
    size_t *oor = NULL, *class_n = NULL, *class_ok = NULL;
    char **names = NULL;
    size_t n_names = 0;
    if (check_cifar_model(g, path, &classes) || pick_dataset(dataset, classes, &coarse, &kind)) goto done;
    relu_counts(g, &nr, &ranged, &napprox);
    if (approx && (ranged < nr || napprox < nr)) {
        cli_error("model '%s': %zu of %zu ReLUs lack a range or an approximation: run 'hecnn model calibrate' first", path,
                  nr - (ranged < napprox ? ranged : napprox), nr);
        goto done;
    }
    if (cifar_count(data, kind, &total)) goto done;
    if (offset >= total) {
        cli_error("--offset %zu is past the end of '%s' (%zu images)", offset, data, total);
        goto done;
    }
    if (!count) count = total - offset;
    if (count > total - offset) {
        cli_error("'%s' holds %zu images: --count %zu from --offset %zu are not there", data, total, count, offset);
        goto done;
    }
    if (per_class && cifar_class_names(data, kind, coarse, &names, &n_names)) goto done;
    const unsigned ncls = cifar_classes(kind, coarse);
    in = malloc((size_t)CHUNK * CIFAR_PIXELS * sizeof *in);
    out_e = malloc((size_t)CHUNK * classes * sizeof *out_e);
    out_a = malloc((size_t)CHUNK * classes * sizeof *out_a);
    absmax = calloc(nodes, sizeof *absmax);
    oor = calloc(nodes, sizeof *oor);
    class_n = calloc(ncls, sizeof *class_n);
    class_ok = calloc(ncls, sizeof *class_ok);
    if (!in || !out_e || !out_a || !absmax || !oor || !class_n || !class_ok) {
        cli_error("out of memory");
        goto done;
    }
    hecnn_infer_stats stats = {absmax, oor};
    size_t correct_e = 0, correct_a = 0, agree = 0;
    double max_diff = 0, t_exact = 0, t_approx = 0;
    for (size_t doneimg = 0; doneimg < count; doneimg += CHUNK) {
        const size_t m = count - doneimg < CHUNK ? count - doneimg : CHUNK;
        cifar_batch b;
        if (cifar_read(data, kind, coarse, offset + doneimg, m, &b)) goto done;
        memcpy(in, b.pixels, m * CIFAR_PIXELS * sizeof *in);
        cifar_normalise(in, m, hecnn_graph_input_mean(g), hecnn_graph_input_std(g));
        double t0 = now_s();
        hecnn_status st = hecnn_graph_infer(g, HECNN_INFER_EXACT, in, m, out_e, NULL);
        double t1 = now_s();
        t_exact += t1 - t0;
        if (!st && approx) {
            st = hecnn_graph_infer(g, HECNN_INFER_APPROX, in, m, out_a, &stats);
            t_approx += now_s() - t1;
        }
        if (st) {
            cli_status_error(st, "inference failed on images %zu..%zu", offset + doneimg, offset + doneimg + m - 1);
            cifar_batch_free(&b);
            goto done;
        }
        for (size_t i = 0; i < m; i++) {
            const double *e = out_e + i * classes, *a = out_a + i * classes;
            const unsigned lab = b.labels[i];
            const size_t pe = cli_argmax(e, classes);
            class_n[lab]++;
            if (pe == lab) correct_e++;
            if (approx) {
                const size_t pa = cli_argmax(a, classes);
                if (pa == lab) correct_a++, class_ok[lab]++;
                if (pa == pe) agree++;
                for (size_t k = 0; k < classes; k++) {
                    const double d = fabs(a[k] - e[k]);
                    if (!(d <= max_diff)) max_diff = d; /* NaN propagates to the report */
                }
            } else if (pe == lab) {
                class_ok[lab]++;
            }
        }
        cifar_batch_free(&b);
    }
    size_t oor_total = 0, oor_max = 0;
    for (size_t i = 0; i < nodes; i++)
        if (hecnn_graph_node(g, i)->op == HECNN_OP_RELU) {
            oor_total += oor[i];
            if (oor[i] > oor_max) oor_max = oor[i];
        }
    const double n_d = (double)count;
    if (json) {
        json_object *root = cli_json_object();
        cli_json_add_string(root, "model", path);
        cli_json_add_string(root, "data", data);
        char dataset[64];
        snprintf(dataset, sizeof dataset, "%s%s", cifar_kind_name(kind), coarse ? " coarse" : "");
        cli_json_add_string(root, "dataset", dataset);
        cli_json_add_uint(root, "offset", offset);
        cli_json_add_uint(root, "images", count);
        cli_json_add_string(root, "mode", mode_s);
        json_object *e = cli_json_object();
        cli_json_add_uint(e, "correct", correct_e);
        cli_json_add_number(e, "accuracy", "%.6f", correct_e / n_d);
        cli_json_add_number(e, "seconds", "%.3f", t_exact);
        cli_json_add(root, "exact", e);
        if (approx) {
            json_object *a = cli_json_object(), *ag = cli_json_object(), *ranges = cli_json_array();
            cli_json_add_uint(a, "correct", correct_a);
            cli_json_add_number(a, "accuracy", "%.6f", correct_a / n_d);
            cli_json_add_number(a, "seconds", "%.3f", t_approx);
            cli_json_add(root, "approx", a);
            cli_json_add_uint(ag, "images", agree);
            cli_json_add_number(ag, "fraction", "%.6f", agree / n_d);
            cli_json_add(root, "agreement", ag);
            cli_json_add_number(root, "max_logit_diff", "%.6g", max_diff);
            cli_json_add_uint(root, "out_of_range_total", oor_total);
            cli_json_add_uint(root, "out_of_range_max", oor_max);
            size_t r = 0;
            for (size_t i = 0; i < nodes; i++) {
                const hecnn_node *nd = hecnn_graph_node(g, i);
                if (nd->op != HECNN_OP_RELU) continue;
                json_object *o = cli_json_object();
                cli_json_add_uint(o, "relu", ++r);
                cli_json_add_uint(o, "node", i);
                cli_json_add_number(o, "range", "%.6g", nd->range);
                cli_json_add_number(o, "absmax", "%.6g", absmax[i]);
                cli_json_add_uint(o, "images", oor[i]);
                cli_json_append(ranges, o);
            }
            cli_json_add(root, "out_of_range", ranges);
        }
        if (per_class) {
            json_object *pc = cli_json_array();
            for (unsigned c = 0; c < ncls; c++) {
                json_object *o = cli_json_object();
                cli_json_add_uint(o, "class", c);
                cli_json_add_string(o, "name", names ? names[c] : "");
                cli_json_add_uint(o, "images", class_n[c]);
                cli_json_add_uint(o, "correct", class_ok[c]);
                cli_json_append(pc, o);
            }
            cli_json_add(root, "per_class", pc);
        }
        if (cli_json_print(stdout, root, true)) goto done;
    } else {
        printf("%s, %zu images from %zu (%s%s)\n", data, count, offset, cifar_kind_name(kind), coarse ? ", coarse labels" : "");
        printf("exact:  %zu/%zu correct (%.2f %%), %.1f s (%.2f ms/image)\n", correct_e, count, 100.0 * correct_e / n_d, t_exact,
               1e3 * t_exact / n_d);
        if (approx) {
            printf("approx: %zu/%zu correct (%.2f %%), %.1f s (%.2f ms/image)\n", correct_a, count, 100.0 * correct_a / n_d, t_approx,
                   1e3 * t_approx / n_d);
            printf("agreement of approx with exact: %zu/%zu (%.2f %%); largest |logit difference| %.4g\n", agree, count,
                   100.0 * agree / n_d, max_diff);
            printf("out of range (images with some ReLU input beyond the range): %zu in all, at most %zu at one ReLU\n", oor_total,
                   oor_max);
            if (oor_total) {
                printf("%6s %6s %12s %12s\n", "relu", "node", "range", "images");
                size_t r = 0;
                for (size_t i = 0; i < nodes; i++) {
                    const hecnn_node *nd = hecnn_graph_node(g, i);
                    if (nd->op != HECNN_OP_RELU) continue;
                    r++;
                    if (oor[i]) printf("%6zu %6zu %12.5g %12zu\n", r, i, nd->range, oor[i]);
                }
            }
        }
        if (per_class) {
            printf("%-20s %8s %8s %8s\n", "class", "images", "correct", "%");
            for (unsigned c = 0; c < ncls; c++) {
                char label[32];
                snprintf(label, sizeof label, "%u", c);
                printf("%-20s %8zu %8zu %8.2f\n", names ? names[c] : label, class_n[c], class_ok[c],
                       class_n[c] ? 100.0 * class_ok[c] / class_n[c] : 0.0);
            }
        }
    }
    rc = CLI_EXIT_OK;
done:
    cifar_names_free(names, n_names);
    free(in);
    free(out_e);
    free(out_a);
    free(absmax);
    free(oor);
    free(class_n);
    free(class_ok);
    hecnn_graph_free(g);
    return rc;
}

/* ---- calibrate ---------------------------------------------------------------------------- */

static double relu_fn(double x, void *arg)
{
    (void)arg;
    return x > 0 ? x : 0;
}

/* Chebyshev interpolant of max(y, 0) on [-1, 1] of degree `degree`: its odd part is exactly y / 2
 * (c_1 = 1/2), so the other odd coefficients, rounding noise, are set to 0. *out malloc'ed;
 * *used is the degree kept (the last nonzero coefficient). */
static int relu_cheb(size_t degree, double **out, size_t *used, double *max_err)
{
    ckks_poly *p = NULL;
    hecnn_status st = ckks_poly_interpolate(&p, relu_fn, NULL, -1.0, 1.0, degree);
    if (st) {
        cli_status_error(st, "cannot interpolate max(y, 0) at degree %zu", degree);
        return -1;
    }
    const double *c = ckks_poly_coeffs(p);
    double *v = malloc((degree + 1) * sizeof *v);
    if (!v) {
        ckks_poly_free(p);
        cli_error("out of memory");
        return -1;
    }
    for (size_t i = 0; i <= degree; i++) v[i] = (i & 1) && i != 1 ? 0.0 : c[i];
    size_t d = degree;
    while (d > 0 && v[d] == 0) d--;
    ckks_poly *q = NULL;
    if ((st = ckks_poly_new(&q, v, d, -1.0, 1.0))) {
        ckks_poly_free(p);
        free(v);
        cli_status_error(st, "cannot build the approximation");
        return -1;
    }
    *max_err = ckks_poly_max_error(q, relu_fn, NULL, 20001);
    ckks_poly_free(q);
    ckks_poly_free(p);
    *out = v;
    *used = d;
    return 0;
}

/* All values of a repeatable string option ("--data X", "--data=X") in argv, stopping at "--";
 * values of the other options (those that take one) are skipped. */
static size_t collect_repeated(int argc, char **argv, const cli_opt *opts, const char *name, const char **vals, size_t max)
{
    size_t n = 0;
    const size_t len = strlen(name);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) break;
        if (a[0] != '-' || a[1] != '-') continue;
        const char *nm = a + 2, *eq = strchr(nm, '=');
        const size_t l = eq ? (size_t)(eq - nm) : strlen(nm);
        if (l == len && !strncmp(nm, name, len)) {
            const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
            if (v && n < max) vals[n] = v;
            if (v) n++;
            continue;
        }
        for (const cli_opt *o = opts; o->name; o++)
            if (strlen(o->name) == l && !strncmp(o->name, nm, l)) {
                if (o->kind != CLI_OPT_FLAG && !eq) i++;
                break;
            }
    }
    return n;
}

/* Absmax file: "# hecnn model calibrate absmax, NODES nodes" then "node absmax" per ReLU. */
static int write_absmax(const char *file, const hecnn_graph *g, const double *absmax)
{
    cli_output o;
    if (cli_output_open(&o, file, false)) return -1;
    fprintf(o.f, "# hecnn model calibrate: largest |ReLU input| per ReLU node; %zu nodes\n", hecnn_graph_node_count(g));
    for (size_t i = 0; i < hecnn_graph_node_count(g); i++)
        if (hecnn_graph_node(g, i)->op == HECNN_OP_RELU) fprintf(o.f, "%zu %.17g\n", i, absmax[i]);
    return cli_output_commit(&o);
}

static int read_absmax(const char *file, const hecnn_graph *g, double *absmax)
{
    FILE *f = fopen(file, "r");
    if (!f) {
        cli_error("cannot read absmax file '%s'", file);
        return -1;
    }
    const size_t nodes = hecnn_graph_node_count(g);
    char line[256];
    size_t got = 0, lineno = 0, nr = 0, nn = 0;
    int rc = -1;
    for (size_t i = 0; i < nodes; i++) absmax[i] = -1;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (line[0] == '#') {
            if (sscanf(line, "# hecnn model calibrate: largest |ReLU input| per ReLU node; %zu nodes", &nn) == 1 && nn != nodes) {
                cli_error("absmax file '%s' is for a model of %zu nodes, this one has %zu", file, nn, nodes);
                goto done;
            }
            continue;
        }
        size_t id;
        double v;
        char tail;
        if (sscanf(line, "%zu %lf %c", &id, &v, &tail) != 2 || !isfinite(v) || v < 0 || id >= nodes ||
            hecnn_graph_node(g, id)->op != HECNN_OP_RELU || absmax[id] >= 0) {
            cli_error("absmax file '%s', line %zu: expected \"RELU_NODE ABSMAX\" for a ReLU of this model, once", file, lineno);
            goto done;
        }
        absmax[id] = v;
        got++;
    }
    for (size_t i = 0; i < nodes; i++) nr += hecnn_graph_node(g, i)->op == HECNN_OP_RELU;
    if (got != nr) {
        cli_error("absmax file '%s' covers %zu of the model's %zu ReLUs", file, got, nr);
        goto done;
    }
    rc = 0;
done:
    fclose(f);
    return rc;
}

#define MAX_DATA 16

int cmd_model_calibrate(int argc, char **argv)
{
    const char *path = NULL, *data1 = NULL, *out = NULL, *dataset = NULL, *absmax_in = NULL, *absmax_out = NULL;
    size_t count = 0, degree = 0;
    double margin = 0;
    bool coarse = false, margin_given = false, degree_given = false;
    const cli_opt opts[] = {
        {"model", CLI_OPT_STRING, &path, "FILE", "model file", NULL},
        {"data", CLI_OPT_STRING, &data1, "FILE", "CIFAR training file (repeat for more; never test images)", NULL},
        {"count", CLI_OPT_SIZE, &count, "N", "first N images of each --data file (default: all)", NULL},
        {"dataset", CLI_OPT_STRING, &dataset, "NAME", "cifar10 or cifar100 (default: from the model's outputs)", NULL},
        {"margin", CLI_OPT_DOUBLE, &margin, "M", "range = largest |ReLU input| seen * M (M >= 1)", &margin_given},
        {"degree", CLI_OPT_SIZE, &degree, "D", "degree of the Chebyshev interpolant of max(y, 0) on [-1, 1]", &degree_given},
        {"absmax", CLI_OPT_STRING, &absmax_in, "FILE", "take the largest |ReLU inputs| from FILE (--save-absmax) instead of --data", NULL},
        {"save-absmax", CLI_OPT_STRING, &absmax_out, "FILE", "also write the largest |ReLU inputs| to FILE", NULL},
        {"out", CLI_OPT_STRING, &out, "FILE", "the calibrated model file", NULL},
        {0},
    };
    const cli_command cmd = {
        "model calibrate", "--model FILE (--data TRAIN_BIN [--data ...] | --absmax FILE) [--count N] --margin M --degree D --out FILE",
        "Calibrate a model for the encrypted run: exact inference on training images records the largest\n"
        "|input| of each ReLU; its range becomes that times the margin, and its approximation the Chebyshev\n"
        "interpolant of max(y, 0) on [-1, 1] of degree D (the encrypted run computes range * p(x / range)).",
        opts, 0};
    int rc = cli_parse(&cmd, argc, argv, NULL, NULL);
    if (rc) return rc == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    const char *files[MAX_DATA];
    const size_t nfiles = collect_repeated(argc, argv, opts, "data", files, MAX_DATA);
    if (cli_require(&cmd, "model", path) || cli_require(&cmd, "out", out) ||
        cli_require(&cmd, "margin", margin_given ? &margin : NULL) || cli_require(&cmd, "degree", degree_given ? &degree : NULL))
        return CLI_EXIT_USAGE;
    if (!nfiles == !absmax_in) {
        cli_error("give --data TRAIN_BIN (one or more) or --absmax FILE, not both (see 'hecnn model calibrate --help')");
        return CLI_EXIT_USAGE;
    }
    if (nfiles > MAX_DATA) {
        cli_error("at most %d --data files", MAX_DATA);
        return CLI_EXIT_USAGE;
    }
    if (!(margin >= 1.0) || margin > 1e6) {
        cli_error("--margin %g: must be at least 1 (the range must cover what calibration saw)", margin);
        return CLI_EXIT_USAGE;
    }
    if (degree < 2 || degree > HECNN_GRAPH_MAX_POLY) {
        cli_error("--degree %zu: must be in 2..%u", degree, HECNN_GRAPH_MAX_POLY);
        return CLI_EXIT_USAGE;
    }
    hecnn_graph *g;
    if (load_model(path, &g)) return CLI_EXIT_FAIL;
    rc = CLI_EXIT_FAIL;
    const size_t nodes = hecnn_graph_node_count(g);
    size_t classes, images = 0;
    cifar_kind kind;
    double *in = NULL, *outv = NULL, *absmax = NULL, *cheb = NULL;
    double t0 = now_s();
    absmax = calloc(nodes, sizeof *absmax);
    if (!absmax) {
        cli_error("out of memory");
        goto done;
    }
    if (absmax_in) {
        if (read_absmax(absmax_in, g, absmax)) goto done;
    } else {
        if (check_cifar_model(g, path, &classes) || pick_dataset(dataset, classes, &coarse, &kind)) goto done;
        size_t totals[MAX_DATA];
        for (size_t f = 0; f < nfiles; f++) {
            if (cifar_count(files[f], kind, &totals[f])) goto done;
            if (count > totals[f]) {
                cli_error("'%s' holds %zu images, fewer than --count %zu", files[f], totals[f], count);
                goto done;
            }
        }
        in = malloc((size_t)CHUNK * CIFAR_PIXELS * sizeof *in);
        outv = malloc((size_t)CHUNK * classes * sizeof *outv);
        if (!in || !outv) {
            cli_error("out of memory");
            goto done;
        }
        hecnn_infer_stats stats = {absmax, NULL};
        for (size_t f = 0; f < nfiles; f++) {
            const size_t nf = count ? count : totals[f];
            for (size_t d = 0; d < nf; d += CHUNK) {
                const size_t m = nf - d < CHUNK ? nf - d : CHUNK;
                cifar_batch b;
                if (cifar_read(files[f], kind, coarse, d, m, &b)) goto done;
                memcpy(in, b.pixels, m * CIFAR_PIXELS * sizeof *in);
                cifar_batch_free(&b);
                cifar_normalise(in, m, hecnn_graph_input_mean(g), hecnn_graph_input_std(g));
                hecnn_status st = hecnn_graph_infer(g, HECNN_INFER_EXACT, in, m, outv, &stats);
                if (st) {
                    cli_status_error(st, "inference failed on '%s' images %zu..%zu", files[f], d, d + m - 1);
                    goto done;
                }
            }
            images += nf;
        }
        /* the stats hold each ReLU's input bound at the ReLU node itself (graph.h) */
        if (absmax_out && write_absmax(absmax_out, g, absmax)) goto done;
    }
    size_t used;
    double err;
    if (relu_cheb(degree, &cheb, &used, &err)) goto done;
    printf("%s: largest |ReLU input| over %s; range = absmax * %g; max(y, 0) on [-1, 1] by its Chebyshev "
           "interpolant of degree %zu (last nonzero term T_%zu, max error %.3g on [-1, 1], so %.3g * range at each ReLU)\n",
           path, absmax_in ? absmax_in : "the training images", margin, degree, used, err, err);
    if (!absmax_in) printf("calibration images: %zu from %zu file%s, %.1f s\n", images, nfiles, nfiles == 1 ? "" : "s", now_s() - t0);
    printf("%6s %6s %-16s %12s %12s\n", "relu", "node", "shape", "absmax", "range");
    size_t r = 0;
    for (size_t i = 0; i < nodes; i++) {
        const hecnn_node *nd = hecnn_graph_node(g, i);
        if (nd->op != HECNN_OP_RELU) continue;
        r++;
        /* a ReLU whose input stayed 0 (dead) still needs a positive range */
        const double range = absmax[i] > 0 ? absmax[i] * margin : 1e-6;
        hecnn_status st = hecnn_graph_set_relu_range(g, i, range);
        if (!st) st = hecnn_graph_set_relu_approx(g, i, cheb, used);
        if (st) {
            cli_status_error(st, "cannot set the range of ReLU node %zu", i);
            goto done;
        }
        char shape[32];
        snprintf(shape, sizeof shape, "%u x %u x %u", nd->c, nd->h, nd->w);
        printf("%6zu %6zu %-16s %12.5g %12.5g%s\n", r, i, shape, absmax[i], range, absmax[i] > 0 ? "" : "  (input always 0)");
    }
    if (!r) {
        cli_error("model '%s' has no ReLU to calibrate", path);
        goto done;
    }
    if (save_model(out, g)) goto done;
    char hex[65];
    digest_hex(g, hex);
    printf("wrote %s (%llu bytes, SHA-256 %s)\n", out, cli_file_size(out), hex);
    rc = CLI_EXIT_OK;
done:
    free(in);
    free(outv);
    free(absmax);
    free(cheb);
    hecnn_graph_free(g);
    return rc;
}

/* ---- dispatch ----------------------------------------------------------------------------- */

typedef struct subcommand {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} subcommand;

static const subcommand subs[] = {
    {"import", cmd_model_import, "build a model file from weight CSVs (FHEON layout: ResNet-20, ResNet-34)"},
    {"info", cmd_model_info, "nodes, shapes, parameters, calibration and digest of a model file"},
    {"eval", cmd_model_eval, "plaintext accuracy on CIFAR (exact, or simulating the encrypted ReLUs)"},
    {"calibrate", cmd_model_calibrate, "ReLU ranges from training images and their polynomial approximations"},
    {"keygen", cmd_model_keygen, "data owner: keys for encrypted inference of a model on batches of images"},
    {"encrypt", cmd_model_encrypt, "data owner: encrypt a batch of CIFAR images for 'model infer'"},
    {"infer", cmd_model_infer, "server: run the model on encrypted images"},
    {"decrypt", cmd_model_decrypt, "data owner: decrypt the scores, predicted classes and accuracy"},
};

static void model_help(FILE *f)
{
    fprintf(f, "usage: hecnn model <subcommand> [options]\n       hecnn model <subcommand> --help\n\nsubcommands:\n");
    for (size_t i = 0; i < sizeof subs / sizeof *subs; i++) fprintf(f, "  %-16s %s\n", subs[i].name, subs[i].summary);
}

int cmd_model(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        model_help(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof subs / sizeof *subs; i++)
        if (!strcmp(argv[1], subs[i].name)) return subs[i].fn(argc - 1, argv + 1);
    cli_set_command("model");
    cli_error("unknown subcommand '%.64s' (see 'hecnn model --help')", argv[1]);
    return CLI_EXIT_USAGE;
}

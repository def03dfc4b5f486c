/* The tool's ResNet importer (tools/util_resnet.c) on a synthetic FHEON-style CSV directory: the
 * full ResNet-20 tensor set with values from a fixed generator. Checks the graph's structure, that
 * chosen weights land in the right node at the right position, the input normalisation (FHEON's,
 * or input_mean.csv / input_std.csv), option-A shortcuts, that inference runs, and that short,
 * long, malformed, non-finite and missing CSVs are refused. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/check.h"
#include "hecnn/hecnn.h"
#include "util_resnet.h"

static char dir[64];

/* The value at index i of tensor number t: a fixed LCG-style hash in [-0.125, 0.125). */
static double val(unsigned t, size_t i)
{
    uint64_t x = (uint64_t)(t + 1) * 6364136223846793005ull + (uint64_t)i * 1442695040888963407ull;
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 32;
    return ((double)(x >> 11) / 9007199254740992.0 - 0.5) / 4;
}

typedef struct tensor {
    char name[80];
    size_t count;
} tensor;

static tensor tensors[64];
static unsigned n_tensors;

static void add_tensor(const char *stem, const char *what, size_t count)
{
    snprintf(tensors[n_tensors].name, sizeof tensors[n_tensors].name, "%s_%s", stem, what);
    tensors[n_tensors++].count = count;
}

static unsigned tensor_id(const char *name)
{
    for (unsigned t = 0; t < n_tensors; t++)
        if (!strcmp(tensors[t].name, name)) return t;
    return ~0u;
}

static void list_resnet20(void)
{
    n_tensors = 0;
    add_tensor("layer0_conv1", "weight", 16 * 3 * 9);
    add_tensor("layer0_conv1", "bias", 16);
    const unsigned w[3] = {16, 32, 64};
    char stem[64];
    for (unsigned L = 0; L < 3; L++)
        for (unsigned B = 0; B < 3; B++) {
            const unsigned cin = (B == 0 && L > 0) ? w[L - 1] : w[L];
            snprintf(stem, sizeof stem, "layer%u_block%u_conv1", L + 1, B + 1);
            add_tensor(stem, "weight", (size_t)w[L] * cin * 9);
            add_tensor(stem, "bias", w[L]);
            snprintf(stem, sizeof stem, "layer%u_block%u_conv2", L + 1, B + 1);
            add_tensor(stem, "weight", (size_t)w[L] * w[L] * 9);
            add_tensor(stem, "bias", w[L]);
            if (B == 0 && L > 0) {
                snprintf(stem, sizeof stem, "layer%u_block%u_shortcut", L + 1, B + 1);
                add_tensor(stem, "weight", (size_t)w[L] * cin);
                add_tensor(stem, "bias", w[L]);
            }
        }
    add_tensor("layer_fc", "weight", 640);
    add_tensor("layer_fc", "bias", 10);
}

static char *path_of(const char *name)
{
    static char p[2][160];
    static int k;
    k ^= 1;
    snprintf(p[k], sizeof p[k], "%s/%s.csv", dir, name);
    return p[k];
}

/* Tensor t, with `drop` values left out and `junk` (if any) in place of value 3. */
static void write_tensor(unsigned t, size_t drop, const char *junk)
{
    FILE *f = fopen(path_of(tensors[t].name), "w");
    REQUIRE_VOID(f);
    for (size_t i = 0; i + drop < tensors[t].count; i++) {
        if (i) fputc(',', f);
        if (junk && i == 3) fputs(junk, f);
        else fprintf(f, "%.17g", val(t, i));
    }
    fputs("\r\n", f);
    fclose(f);
}

static void write_all(void)
{
    for (unsigned t = 0; t < n_tensors; t++) write_tensor(t, 0, NULL);
}

static const hecnn_node *conv_number(const hecnn_graph *g, unsigned k, size_t *id)
{
    for (size_t i = 0; i < hecnn_graph_node_count(g); i++) {
        const hecnn_node *nd = hecnn_graph_node(g, i);
        if (nd->op == HECNN_OP_CONV2D && k-- == 0) return *id = i, nd;
    }
    return NULL;
}

/* The weights of conv number k equal tensor `name` at a few positions. */
static int conv_has(const hecnn_graph *g, unsigned k, const char *name)
{
    size_t id;
    const hecnn_node *nd = conv_number(g, k, &id);
    char wn[80], bn[80];
    snprintf(wn, sizeof wn, "%s_weight", name);
    snprintf(bn, sizeof bn, "%s_bias", name);
    const unsigned tw = tensor_id(wn), tb = tensor_id(bn);
    if (!nd || tw == ~0u || tb == ~0u || nd->n_weight != tensors[tw].count || nd->n_bias != tensors[tb].count) return 0;
    const size_t nw = nd->n_weight, picks[4] = {0, 1, nw / 2 + 3, nw - 1};
    for (int i = 0; i < 4; i++)
        if (nd->weight[picks[i]] != val(tw, picks[i])) return 0;
    return nd->bias[0] == val(tb, 0) && nd->bias[nd->n_bias - 1] == val(tb, nd->n_bias - 1);
}

static void test_import_b(void)
{
    write_all();
    hecnn_graph *g = NULL;
    bool file_norm = true;
    REQUIRE_VOID(resnet_import_csv(dir, RESNET_20, RESNET_SHORTCUT_B, &g, &file_norm) == 0);
    CHECK(!file_norm);
    /* input, stem conv + relu, 9 blocks of conv, relu, conv, add, relu (+ 2 shortcuts), pool, dense */
    CHECK(hecnn_graph_node_count(g) == 1 + 2 + 9 * 5 + 2 + 2);
    size_t nconv = 0, nrelu = 0, nadd = 0;
    for (size_t i = 0; i < hecnn_graph_node_count(g); i++) {
        const hecnn_node *nd = hecnn_graph_node(g, i);
        nconv += nd->op == HECNN_OP_CONV2D;
        nrelu += nd->op == HECNN_OP_RELU;
        nadd += nd->op == HECNN_OP_ADD;
    }
    CHECK(nconv == 21 && nrelu == 19 && nadd == 9);
    /* conv order: stem, then per block conv1, conv2 (, shortcut) */
    CHECK(conv_has(g, 0, "layer0_conv1"));
    CHECK(conv_has(g, 1, "layer1_block1_conv1"));
    CHECK(conv_has(g, 6, "layer1_block3_conv2"));
    CHECK(conv_has(g, 7, "layer2_block1_conv1"));
    CHECK(conv_has(g, 9, "layer2_block1_shortcut"));
    CHECK(conv_has(g, 20, "layer3_block3_conv2"));
    size_t id;
    const hecnn_node *c = conv_number(g, 7, &id);
    CHECK(c && c->k == 3 && c->stride == 2 && c->pad == 1 && c->c == 32 && c->h == 16);
    const hecnn_node *sc = conv_number(g, 9, &id);
    CHECK(sc && sc->k == 1 && sc->stride == 2 && sc->pad == 0 && sc->c == 32 && sc->h == 16);
    /* the shortcut reads the block input (the ReLU before layer2_block1_conv1) and feeds the add */
    size_t c7id;
    const hecnn_node *c7 = conv_number(g, 7, &c7id);
    CHECK(c7 && sc && sc->in[0] == c7->in[0] && hecnn_graph_node(g, sc->in[0])->op == HECNN_OP_RELU);
    const hecnn_node *add = hecnn_graph_node(g, id + 1);
    size_t c8id;
    conv_number(g, 8, &c8id);
    CHECK(add && add->op == HECNN_OP_ADD && add->in[0] == c8id && add->in[1] == id);
    /* head */
    const size_t out = hecnn_graph_output(g);
    const hecnn_node *fc = hecnn_graph_node(g, out), *pool = hecnn_graph_node(g, out - 1);
    const unsigned tfw = tensor_id("layer_fc_weight"), tfb = tensor_id("layer_fc_bias");
    CHECK(pool->op == HECNN_OP_AVGPOOL && pool->k == 8 && pool->c == 64 && pool->h == 1);
    CHECK(fc->op == HECNN_OP_DENSE && fc->c * fc->h * fc->w == 10 && fc->n_weight == 640);
    CHECK(fc->weight[0] == val(tfw, 0) && fc->weight[64 * 3 + 5] == val(tfw, 64 * 3 + 5) && fc->bias[9] == val(tfb, 9));
    const double *m = hecnn_graph_input_mean(g), *s = hecnn_graph_input_std(g);
    CHECK(m[0] == 0.4914 && m[2] == 0.4465 && s[1] == 0.1994 && s[2] == 0.2010);
    /* it runs */
    double *x = malloc(3072 * sizeof *x), y[10];
    REQUIRE_VOID(x);
    for (int i = 0; i < 3072; i++) x[i] = sin(i * 0.01);
    CHECK(hecnn_graph_infer(g, HECNN_INFER_EXACT, x, 1, y, NULL) == HECNN_OK);
    bool finite = true;
    for (int i = 0; i < 10; i++) finite &= isfinite(y[i]) != 0;
    CHECK(finite);
    free(x);
    hecnn_graph_free(g);
}

static void test_import_a(void)
{
    /* option A: no shortcut files needed; a normalisation from the directory */
    unlink(path_of("layer2_block1_shortcut_weight"));
    unlink(path_of("layer2_block1_shortcut_bias"));
    hecnn_graph *g = NULL;
    CHECK(resnet_import_csv(dir, RESNET_20, RESNET_SHORTCUT_B, &g, NULL) != 0 && !g);
    FILE *f = fopen(path_of("input_mean"), "w");
    REQUIRE_VOID(f);
    fputs("0.485,0.456,0.406\n", f);
    fclose(f);
    CHECK(resnet_import_csv(dir, RESNET_20, RESNET_SHORTCUT_A, &g, NULL) != 0); /* mean without std */
    REQUIRE_VOID((f = fopen(path_of("input_std"), "w")));
    fputs("0.229,0.224,0.225\n", f);
    fclose(f);
    bool file_norm = false;
    REQUIRE_VOID(resnet_import_csv(dir, RESNET_20, RESNET_SHORTCUT_A, &g, &file_norm) == 0);
    CHECK(file_norm && hecnn_graph_input_mean(g)[1] == 0.456 && hecnn_graph_input_std(g)[2] == 0.225);
    CHECK(hecnn_graph_node_count(g) == 52);
    size_t id;
    const hecnn_node *sc = conv_number(g, 9, &id);
    REQUIRE_VOID(sc && sc->k == 1 && sc->stride == 2 && sc->pad == 0 && sc->n_weight == 32 * 16);
    /* out channel o = in channel o - 8 (akamaster pads planes / 4 on each side) */
    int ok = 1;
    for (unsigned o = 0; o < 32; o++)
        for (unsigned i = 0; i < 16; i++) ok &= sc->weight[o * 16 + i] == (o == i + 8 ? 1.0 : 0.0);
    CHECK(ok);
    for (unsigned o = 0; o < 32; o++) ok &= sc->bias == NULL || sc->bias[o] == 0;
    CHECK(ok);
    const hecnn_node *sc3 = conv_number(g, 16, &id); /* layer3: conv 14, 15, shortcut 16 */
    CHECK(sc3 && sc3->k == 1 && sc3->c == 64 && sc3->weight[16 * 32 + 0] == 1.0 && sc3->weight[47 * 32 + 31] == 1.0 &&
          sc3->weight[15 * 32 + 0] == 0.0);
    hecnn_graph_free(g);
    unlink(path_of("input_mean"));
    unlink(path_of("input_std"));
    write_all();
}

static void test_refused(void)
{
    hecnn_graph *g = NULL;
    const unsigned t = tensor_id("layer2_block2_conv1_weight");
    write_tensor(t, 1, NULL); /* one value short */
    CHECK(resnet_import_csv(dir, RESNET_20, RESNET_SHORTCUT_B, &g, NULL) != 0 && !g);
    write_tensor(t, 0, "0.5,0.25"); /* one value too many */
    CHECK(resnet_import_csv(dir, RESNET_20, RESNET_SHORTCUT_B, &g, NULL) != 0);
    write_tensor(t, 0, "abc");
    CHECK(resnet_import_csv(dir, RESNET_20, RESNET_SHORTCUT_B, &g, NULL) != 0);
    write_tensor(t, 0, "nan");
    CHECK(resnet_import_csv(dir, RESNET_20, RESNET_SHORTCUT_B, &g, NULL) != 0);
    write_tensor(t, 0, "1e999");
    CHECK(resnet_import_csv(dir, RESNET_20, RESNET_SHORTCUT_B, &g, NULL) != 0);
    write_tensor(t, 0, "");
    CHECK(resnet_import_csv(dir, RESNET_20, RESNET_SHORTCUT_B, &g, NULL) != 0);
    write_tensor(t, 0, "1e-320"); /* an underflow to a denormal is a number */
    CHECK(resnet_import_csv(dir, RESNET_20, RESNET_SHORTCUT_B, &g, NULL) == 0 && g);
    hecnn_graph_free(g);
    g = NULL;
    write_tensor(t, 0, NULL);
    FILE *f = fopen(path_of(tensors[t].name), "a"); /* a second row */
    REQUIRE_VOID(f);
    fputs("1,2\n", f);
    fclose(f);
    CHECK(resnet_import_csv(dir, RESNET_20, RESNET_SHORTCUT_B, &g, NULL) != 0);
    write_tensor(t, 0, NULL);
    unlink(path_of("layer_fc_bias"));
    CHECK(resnet_import_csv(dir, RESNET_20, RESNET_SHORTCUT_B, &g, NULL) != 0);
    write_all();
    CHECK(resnet_import_csv(dir, RESNET_34, RESNET_SHORTCUT_B, &g, NULL) != 0 && !g); /* ResNet-20 files are not ResNet-34 */
    CHECK(resnet_import_csv("/nonexistent/dir", RESNET_20, RESNET_SHORTCUT_B, &g, NULL) != 0);
    CHECK(resnet_import_csv(dir, RESNET_20, RESNET_SHORTCUT_B, &g, NULL) == 0);
    hecnn_graph_free(g);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/hecnn_test_resnet_XXXXXX");
    REQUIRE(mkdtemp(dir));
    list_resnet20();
    resnet_arch a;
    CHECK(resnet_arch_by_name("resnet34", &a) && a == RESNET_34 && !resnet_arch_by_name("resnet50", &a));
    test_import_b();
    test_import_a();
    test_refused();
    for (unsigned t = 0; t < n_tensors; t++) unlink(path_of(tensors[t].name));
    unlink(path_of("input_mean"));
    unlink(path_of("input_std"));
    rmdir(dir);
    return check_summary();
}

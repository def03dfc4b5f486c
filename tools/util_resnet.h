/* CIFAR ResNets as hecnn graphs, from FHEON's weight CSVs (the tool's importer; the library
 * reads no foreign formats).
 *
 * Architecture (BasicBlocks, BN folded into the convolutions, every conv with a bias):
 *   stem: conv3x3 pad 1 -> ReLU
 *   block: conv3x3 (stride s, pad 1) -> ReLU -> conv3x3 (pad 1) -> add shortcut -> ReLU
 *   shortcut: identity, or on the first block of stages 2+ (stride 2, channels doubled):
 *     option B: 1x1 stride-2 conv with bias (FHEON's layer{L}_block1_shortcut_{weight,bias}.csv);
 *     option A: x[:, :, ::2, ::2] zero-padded in channels (cout - cin) / 2 on each side, as in
 *       akamaster's ResNets, expressed as a 1x1 stride-2 conv (pad 0) with 0/1 weights.
 *   head: global average pooling, dense.
 * resnet20: widths 16/32/64, blocks 3/3/3, 10 classes (32x32 -> 8x8);
 * resnet34: widths 16/32/64/128, blocks 3/4/6/3, 100 classes (32x32 -> 4x4).
 *
 * CSV layout (FHEON python/exporting_weights.py): one file per tensor, one row of comma-separated
 * decimals, PyTorch C order: conv [out][in][k][k], FC [out][in], bias [out]. Names:
 * layer0_conv1_{weight,bias}.csv, layer{L}_block{B}_conv{1,2}_{weight,bias}.csv,
 * layer{L}_block1_shortcut_{weight,bias}.csv (option B), layer_fc_{weight,bias}.csv. Optional
 * input_mean.csv / input_std.csv (3 values each) override FHEON's input normalisation. */
#ifndef HECNN_TOOLS_UTIL_RESNET_H
#define HECNN_TOOLS_UTIL_RESNET_H

#include <stdbool.h>
#include <stddef.h>

#include "hecnn/graph.h"

typedef enum resnet_arch { RESNET_20 = 0, RESNET_34 = 1 } resnet_arch;
typedef enum resnet_shortcut { RESNET_SHORTCUT_B = 0, RESNET_SHORTCUT_A = 1 } resnet_shortcut;

#define RESNET_MAX_STAGES 4

typedef struct resnet_shape {
    const char *name;                   /* "resnet20" */
    unsigned stages;
    unsigned width[RESNET_MAX_STAGES];  /* channels per stage */
    unsigned blocks[RESNET_MAX_STAGES];
    unsigned classes;
} resnet_shape;

const resnet_shape *resnet_shape_of(resnet_arch arch);
bool resnet_arch_by_name(const char *name, resnet_arch *out);

/* FHEON's normalisation, x = (p - mean) / std for pixels p in [0, 1]. */
extern const double resnet_fheon_mean[3], resnet_fheon_std[3];

/* One CSV row of exactly `expect` finite values into *values (malloc'ed). Messages name the file,
 * the count found and the shape expected (`shape`, e.g. "[16,3,3,3]"). */
int resnet_csv_read(const char *path, size_t expect, const char *shape, double **values);

/* Build the graph from a CSV directory. *used_file_norm tells whether input_mean.csv /
 * input_std.csv set the normalisation (else FHEON's). 0 on success, else reported. */
int resnet_import_csv(const char *dir, resnet_arch arch, resnet_shortcut shortcut, hecnn_graph **out, bool *used_file_norm);

#endif

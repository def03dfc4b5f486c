#!/usr/bin/python3
"""Export a CIFAR ResNet state_dict (akamaster's pytorch_resnet_cifar10 layout) to weight CSVs in
FHEON's layout, with BatchNorm folded, for `hecnn model import --fheon DIR --shortcut A`.

    /usr/bin/python3 models/export_resnet.py \
        --checkpoint /work/shared/weights/akamaster-resnet20/resnet20-12fca82f.th --out DIR \
        [--check N --data /work/shared/data/cifar10/test_batch.bin]

Written per tensor: one row of comma-separated "%.17g" decimals, PyTorch C order
(conv [out][in][k][k], FC [out][in], bias [out]), named layer0_conv1_{weight,bias}.csv,
layer{L}_block{B}_conv{1,2}_{weight,bias}.csv, layer_fc_{weight,bias}.csv; plus input_mean.csv
and input_std.csv (the normalisation the network was trained with). akamaster's shortcuts are
option A (x[:, :, ::2, ::2] zero-padded by planes // 4 channels on each side): they have no
weights, and the importer builds them (--shortcut A).

BN folding (eval mode): s = gamma / sqrt(var + eps), W' = W * s[out], b' = beta - mean * s.

--check N runs the folded network (plain PyTorch ops on the exported values, option-A shortcut as
akamaster writes it) and the unfolded one on the first N images of a CIFAR-10 file, and prints
both accuracies and the largest logit difference between them: a check of the folding.
"""
import argparse
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
EPS = 1e-5  # nn.BatchNorm2d default, as akamaster trains


def load_state_dict(path):
    # legacy pickled checkpoint: {'best_prec1': ..., 'state_dict': {'module.conv1.weight': ...}}
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
    except TypeError:  # torch without weights_only
        ck = torch.load(path, map_location="cpu")
    sd = ck["state_dict"] if isinstance(ck, dict) and "state_dict" in ck else ck
    return {k[len("module."):] if k.startswith("module.") else k: v.detach().double() for k, v in sd.items()}


def fold(sd, conv, bn):
    w = sd[conv + ".weight"]
    s = sd[bn + ".weight"] / torch.sqrt(sd[bn + ".running_var"] + EPS)
    b = sd[bn + ".bias"] - sd[bn + ".running_mean"] * s
    if conv + ".bias" in sd:
        b = b + sd[conv + ".bias"] * s
    return w * s.reshape(-1, 1, 1, 1), b


def stages(sd):
    """[(L, number of blocks)] from the state_dict's keys."""
    out = []
    L = 1
    while any(k.startswith("layer%d." % L) for k in sd):
        n = 0
        while ("layer%d.%d.conv1.weight" % (L, n)) in sd:
            n += 1
        out.append((L, n))
        L += 1
    return out


def export(sd, folder):
    os.makedirs(folder, exist_ok=True)

    def write(name, t):
        v = t.reshape(-1).numpy()
        if not np.all(np.isfinite(v)):
            sys.exit("export_resnet: %s has non-finite values" % name)
        with open(os.path.join(folder, name + ".csv"), "w") as f:
            f.write(",".join("%.17g" % x for x in v) + "\n")

    layers = {}
    w, b = fold(sd, "conv1", "bn1")
    layers["layer0_conv1"] = (w, b)
    for L, n in stages(sd):
        for B in range(n):
            p = "layer%d.%d." % (L, B)
            for c in (1, 2):
                layers["layer%d_block%d_conv%d" % (L, B + 1, c)] = fold(sd, p + "conv%d" % c, p + "bn%d" % c)
            if p + "shortcut.0.weight" in sd:
                sys.exit("export_resnet: %s has an option-B shortcut; only option A (no weights) is supported" % p)
    layers["layer_fc"] = (sd["linear.weight"], sd["linear.bias"])
    for name, (w, b) in layers.items():
        write(name + "_weight", w)
        write(name + "_bias", b)
    write("input_mean", torch.tensor(MEAN, dtype=torch.float64))
    write("input_std", torch.tensor(STD, dtype=torch.float64))
    return layers


def option_a(x, planes):
    return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4), "constant", 0)


def forward_folded(layers, sd, x):
    w, b = layers["layer0_conv1"]
    x = F.relu(F.conv2d(x, w, b, padding=1))
    for L, n in stages(sd):
        for B in range(n):
            stride = 2 if (L > 1 and B == 0) else 1
            w1, b1 = layers["layer%d_block%d_conv1" % (L, B + 1)]
            w2, b2 = layers["layer%d_block%d_conv2" % (L, B + 1)]
            y = F.relu(F.conv2d(x, w1, b1, stride=stride, padding=1))
            y = F.conv2d(y, w2, b2, padding=1)
            sc = option_a(x, w1.shape[0]) if (stride != 1 or x.shape[1] != w1.shape[0]) else x
            x = F.relu(y + sc)
    x = F.avg_pool2d(x, x.shape[3]).flatten(1)
    w, b = layers["layer_fc"]
    return F.linear(x, w, b)


def forward_bn(sd, x):
    def bn(x, p):
        return F.batch_norm(x, sd[p + ".running_mean"], sd[p + ".running_var"], sd[p + ".weight"], sd[p + ".bias"], False, 0.0, EPS)

    x = F.relu(bn(F.conv2d(x, sd["conv1.weight"], padding=1), "bn1"))
    for L, n in stages(sd):
        for B in range(n):
            p = "layer%d.%d." % (L, B)
            stride = 2 if (L > 1 and B == 0) else 1
            planes = sd[p + "conv1.weight"].shape[0]
            y = F.relu(bn(F.conv2d(x, sd[p + "conv1.weight"], stride=stride, padding=1), p + "bn1"))
            y = bn(F.conv2d(y, sd[p + "conv2.weight"], padding=1), p + "bn2")
            sc = option_a(x, planes) if (stride != 1 or x.shape[1] != planes) else x
            x = F.relu(y + sc)
    x = F.avg_pool2d(x, x.shape[3]).flatten(1)
    return F.linear(x, sd["linear.weight"], sd["linear.bias"])


def read_cifar10(path, n):
    raw = np.fromfile(path, dtype=np.uint8, count=3073 * n)
    if raw.size != 3073 * n:
        sys.exit("export_resnet: %s holds fewer than %d CIFAR-10 records" % (path, n))
    raw = raw.reshape(n, 3073)
    labels = raw[:, 0].astype(np.int64)
    px = raw[:, 1:].reshape(n, 3, 32, 32).astype(np.float64) / 255.0
    px = (px - np.array(MEAN).reshape(1, 3, 1, 1)) / np.array(STD).reshape(1, 3, 1, 1)
    return torch.from_numpy(px), torch.from_numpy(labels)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--out", required=True, help="folder for the CSVs")
    ap.add_argument("--check", type=int, default=0, metavar="N", help="compare folded and unfolded on N images")
    ap.add_argument("--data", help="CIFAR-10 binary for --check")
    a = ap.parse_args()
    sd = load_state_dict(a.checkpoint)
    layers = export(sd, a.out)
    print("wrote %d tensors to %s (%s; option-A shortcuts: import with --shortcut A)" % (2 * len(layers), a.out,
          "/".join("%d blocks" % n for _, n in stages(sd))))
    if a.check:
        if not a.data:
            sys.exit("export_resnet: --check needs --data")
        x, y = read_cifar10(a.data, a.check)
        with torch.no_grad():
            lf = forward_folded(layers, sd, x)
            lb = forward_bn(sd, x)
        print("first %d images: folded %.2f %%, unfolded %.2f %%, largest |logit difference| %.3g" % (
            a.check, 100.0 * (lf.argmax(1) == y).double().mean().item(), 100.0 * (lb.argmax(1) == y).double().mean().item(),
            (lf - lb).abs().max().item()))


if __name__ == "__main__":
    main()

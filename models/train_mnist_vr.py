#!/usr/bin/python3
"""Train the Volley Revolver MNIST CNN (seed 002, Table 3) and export it in hecnn's model format.

Network: conv 4 kernels 3x3, stride 1, no padding (28x28 -> 4x26x26 = 2704) -> degree-3 polynomial
activation -> fully connected 2704 -> 64 -> degree-3 polynomial activation -> fully connected 64 -> 10.
The activation coefficients are trained with the weights (as in the seed). Pixels are scaled by 1/255.

Run with Debian's python3 (python3-torch, python3-numpy):

    /usr/bin/python3 models/train_mnist_vr.py --data ../shared/data/mnist --out models/mnist_vr.hcnn
    /usr/bin/python3 models/train_mnist_vr.py --import-csv ../shared/weights/volley-revolver-mnist/CNNweightsMNIST.csv \
        --data ../shared/data/mnist --out models/mnist_vr_seed.hcnn

The data folder holds the idx files (gzip or plain): train-npm10k-{images-idx3,labels-idx1}-ubyte(.gz)
for training (or train-{images-idx3,labels-idx1}-ubyte for the full 60,000) and
t10k-{images-idx3,labels-idx1}-ubyte(.gz) for the test accuracy.

File format (little endian; docs/MNIST.md): 64-byte header, float32 payload, SHA-256 of all before it.
"""
import argparse
import gzip
import hashlib
import os
import struct
import sys

import numpy as np

MAGIC = b"HECNNMDL"
VERSION = 1
ARCH_VR_MNIST = 1
DTYPE_F32 = 1
HEADER_SIZE = 64
DIMS = dict(in_h=28, in_w=28, conv_out=4, kernel=3, stride=1, fc1_out=64, classes=10, act_degree=3)


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    return arr.reshape(dims)


def find(data_dir, names):
    for n in names:
        for ext in ("", ".gz"):
            p = os.path.join(data_dir, n + ext)
            if os.path.exists(p):
                return p
    sys.exit("missing %s in %s (see docs/MNIST.md: 'Getting the data')" % (" or ".join(names), data_dir))


def load_split(data_dir, split):
    if split == "train":
        img = find(data_dir, ["train-npm10k-images-idx3-ubyte", "train-images-idx3-ubyte"])
        lab = find(data_dir, ["train-npm10k-labels-idx1-ubyte", "train-labels-idx1-ubyte"])
    else:
        img = find(data_dir, ["t10k-images-idx3-ubyte"])
        lab = find(data_dir, ["t10k-labels-idx1-ubyte"])
    x = read_idx(img).astype(np.float32) / 255.0
    y = read_idx(lab).astype(np.int64)
    return x, y


def write_model(path, conv_w, conv_b, act1, fc1_w, fc1_b, act2, fc2_w, fc2_b):
    """conv_w [4][3][3], fc1_w [64][2704] with input index ch*676 + r*26 + c, fc2_w [10][64]."""
    parts = [np.asarray(conv_w, np.float32).reshape(4, 3, 3), np.asarray(conv_b, np.float32).reshape(4),
             np.asarray(act1, np.float32).reshape(4), np.asarray(fc1_w, np.float32).reshape(64, 2704),
             np.asarray(fc1_b, np.float32).reshape(64), np.asarray(act2, np.float32).reshape(4),
             np.asarray(fc2_w, np.float32).reshape(10, 64), np.asarray(fc2_b, np.float32).reshape(10)]
    payload = b"".join(p.astype("<f4").tobytes() for p in parts)
    d = DIMS
    header = MAGIC + struct.pack("<IIII", VERSION, ARCH_VR_MNIST, HEADER_SIZE, DTYPE_F32)
    header += struct.pack("<8I", d["in_h"], d["in_w"], d["conv_out"], d["kernel"], d["stride"], d["fc1_out"],
                          d["classes"], d["act_degree"])
    header += struct.pack("<Q", len(payload))
    header += b"\0" * (HEADER_SIZE - len(header))
    assert len(header) == HEADER_SIZE
    body = header + payload
    with open(path, "wb") as f:
        f.write(body + hashlib.sha256(body).digest())


def poly(x, c):
    return c[0] + x * (c[1] + x * (c[2] + x * c[3]))


def forward_np(x, m):
    """Plaintext reference in float64, x: [n, 28, 28] in [0, 1]."""
    conv_w, conv_b, act1, fc1_w, fc1_b, act2, fc2_w, fc2_b = [np.asarray(t, np.float64) for t in m]
    n = x.shape[0]
    out = np.zeros((n, 4, 26, 26))
    for a in range(3):
        for b in range(3):
            out += conv_w[None, :, a, b, None, None] * x[:, None, a:a + 26, b:b + 26]
    out += conv_b[None, :, None, None]
    h = poly(out, act1).reshape(n, 2704)
    h = poly(h @ fc1_w.T + fc1_b, act2)
    return h @ fc2_w.T + fc2_b


def import_csv(path):
    """The seed's Keras weights (14 lines): conv kernel (3,3,1,4), conv bias, act1 c0..c3, dense kernel
    (2704, 64) with Keras' channels-last flatten (r, c, ch), dense bias, act2 c0..c3, dense kernel (64, 10),
    dense bias."""
    with open(path) as f:
        rows = [np.array([float(v) for v in line.strip().split(",") if v], np.float64)
                for line in f if line.strip()]
    if [len(r) for r in rows] != [36, 4, 1, 1, 1, 1, 173056, 64, 1, 1, 1, 1, 640, 10]:
        sys.exit("unexpected CSV shape: %s" % [len(r) for r in rows])
    conv_w = rows[0].reshape(3, 3, 1, 4).transpose(3, 2, 0, 1).reshape(4, 3, 3)
    conv_b = rows[1]
    act1 = np.concatenate(rows[2:6])
    k1 = rows[6].reshape(26, 26, 4, 64)                      # (r, c, ch) flatten, then out
    fc1_w = k1.transpose(3, 2, 0, 1).reshape(64, 2704)        # -> [out][ch*676 + r*26 + c]
    fc1_b = rows[7]
    act2 = np.concatenate(rows[8:12])
    fc2_w = rows[12].reshape(64, 10).T
    fc2_b = rows[13]
    return conv_w, conv_b, act1, fc1_w, fc1_b, act2, fc2_w, fc2_b


def train(args):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    xtr, ytr = load_split(args.data, "train")
    xte, yte = load_split(args.data, "test")

    # Least-squares degree-3 fit of ReLU on [-4, 4] as the starting activation.
    grid = np.linspace(-4, 4, 401)
    init = np.polynomial.polynomial.polyfit(grid, np.maximum(grid, 0), 3)

    class Poly(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Parameter(torch.tensor(init, dtype=torch.float32))

        def forward(self, x):
            c = self.c
            return c[0] + x * (c[1] + x * (c[2] + x * c[3]))

    class Net(nn.Module):
        """Batch normalisation after the conv and FC1 (folded into their weights at export: the
        exported network is exactly the one of Table 3)."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3)
            self.bn1 = nn.BatchNorm2d(4)
            self.act1 = Poly()
            self.fc1 = nn.Linear(2704, 64)
            self.bn2 = nn.BatchNorm1d(64)
            self.act2 = Poly()
            self.drop = nn.Dropout(args.dropout)
            self.fc2 = nn.Linear(64, 10)

        def forward(self, x):
            h = self.act1(self.bn1(self.conv(x))).flatten(1)
            return self.fc2(self.drop(self.act2(self.bn2(self.fc1(self.drop(h))))))

    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=args.lr, weight_decay=1e-5)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs)
    xt = torch.tensor(xtr[:, None])
    yt = torch.tensor(ytr)
    n = xt.shape[0]
    for epoch in range(args.epochs):
        net.train()
        perm = torch.randperm(n)
        total, correct, loss_sum = 0, 0, 0.0
        for i in range(0, n, args.batch):
            idx = perm[i:i + args.batch]
            xb = xt[idx]
            if args.augment:
                # small random affine maps per digit (rotation, scale, shift): 10,000 digits are few
                b = xb.shape[0]
                ang = (torch.rand(b) - 0.5) * (2 * np.pi * 12 / 360)
                sc = 1 + (torch.rand(b) - 0.5) * 0.2
                tx, ty = (torch.rand(b) - 0.5) * 0.2, (torch.rand(b) - 0.5) * 0.2
                theta = torch.stack([torch.stack([sc * torch.cos(ang), -sc * torch.sin(ang), tx], 1),
                                     torch.stack([sc * torch.sin(ang), sc * torch.cos(ang), ty], 1)], 1)
                grid = F.affine_grid(theta, xb.shape, align_corners=False)
                xb = F.grid_sample(xb, grid, align_corners=False, padding_mode="zeros")
            out = net(xb)
            loss = F.cross_entropy(out, yt[idx])
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            loss_sum += float(loss) * len(idx)
            correct += int((out.argmax(1) == yt[idx]).sum())
            total += len(idx)
        sched.step()
        net.eval()
        with torch.no_grad():
            acc = float((net(torch.tensor(xte[:, None])).argmax(1).numpy() == yte).mean())
        print("epoch %2d  loss %.4f  train acc %.4f  test acc %.4f" % (epoch + 1, loss_sum / total, correct / total, acc),
              flush=True)
    g = lambda t: t.detach().numpy().astype(np.float64)

    def fold(weight, bias, bn):
        k = g(bn.weight) / np.sqrt(g(bn.running_var) + bn.eps)
        w = g(weight) * k.reshape((-1,) + (1,) * (weight.dim() - 1))
        return w, (g(bias) - g(bn.running_mean)) * k + g(bn.bias)

    conv_w, conv_b = fold(net.conv.weight, net.conv.bias, net.bn1)
    fc1_w, fc1_b = fold(net.fc1.weight, net.fc1.bias, net.bn2)
    return (conv_w.reshape(4, 3, 3), conv_b, g(net.act1.c), fc1_w, fc1_b, g(net.act2.c), g(net.fc2.weight), g(net.fc2.bias))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--import-csv", help="convert the seed's published CSV weights instead of training")
    ap.add_argument("--epochs", type=int, default=45)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--dropout", type=float, default=0.05)
    ap.add_argument("--no-augment", dest="augment", action="store_false")
    args = ap.parse_args()
    model = import_csv(args.import_csv) if args.import_csv else train(args)
    # Round to float32 first: the accuracy printed is the one of the exported file.
    model = tuple(np.asarray(t, np.float32).astype(np.float64) for t in model)
    write_model(args.out, *model)
    try:
        xte, yte = load_split(args.data, "test")
        logits = forward_np(xte, model)
        print("exported %s: plaintext test accuracy %.4f (float64 reference)" % (args.out, (logits.argmax(1) == yte).mean()))
        pre = forward_np(xte, model)
        print("largest |logit| %.3f" % np.abs(pre).max())
    except SystemExit:
        print("exported %s (no test set found for the accuracy check)" % args.out)


if __name__ == "__main__":
    main()

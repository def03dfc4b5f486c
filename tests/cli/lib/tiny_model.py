# The tiny CIFAR-shaped models and data of the model role tests (resnet_roles.sh, bench_resnet.sh),
# written into the folder argv[1]: raw.hg, raw2.hg (the same network, other weights), raw1x1.hg (a
# 1x1 convolution: no rotations for kernel taps) -- each input 3x32x32 (mean 0.5, std 0.25) -> conv
# 3->2 -> ReLU (uncalibrated) -> global average pool -> dense 10, in the model file layout of
# docs/FORMATS.md ("Network graph") -- and CIFAR-10 files train.bin (16 images), test.bin (8), and a
# CIFAR-100 file test100.bin (8), deterministic.
import hashlib, os, random, struct, sys
t = sys.argv[1]
rng = random.Random(20261203)

def model(path, seed_shift, k=3):
    r = random.Random(7 + seed_shift)
    u32 = lambda *v: struct.pack("<%dI" % len(v), *v)
    f64 = lambda v: struct.pack("<%dd" % len(v), *v)
    out = b"HECNNGRF" + u32(1, 32, 5, 3, 32, 32) + f64([0.5, 0.5, 0.5]) + f64([0.25, 0.25, 0.25])
    def node(op, inp, c, h, w, k, s, p, wt, b):
        return u32(op, inp, 0, c, h, w, k, s, p, len(wt), len(b), 0) + f64([0.0]) + f64(wt) + f64(b)
    conv_w = [r.uniform(-0.3, 0.3) for _ in range(2 * 3 * k * k)]
    out += node(1, 0, 2, 32, 32, k, 1, k // 2, conv_w, [0.05, -0.05])
    out += node(6, 1, 2, 32, 32, 0, 0, 0, [], [])
    out += node(4, 2, 2, 1, 1, 32, 0, 0, [], [])
    out += node(3, 3, 10, 1, 1, 0, 0, 0, [r.uniform(-2, 2) for _ in range(20)], [r.uniform(-0.1, 0.1) for _ in range(10)])
    out += hashlib.sha256(out).digest()
    open(path, "wb").write(out)

model(os.path.join(t, "raw.hg"), 0)
model(os.path.join(t, "raw2.hg"), 1)
model(os.path.join(t, "raw1x1.hg"), 2, 1)  # a 1x1 convolution: no rotations for kernel taps
def cifar(name, n, labels, size=3073):
    # each image a brightness per channel plus noise: the pooled features, and so the classes, vary
    with open(os.path.join(t, name), "wb") as f:
        for i in range(n):
            px = bytearray()
            for c in range(3):
                b = rng.randrange(256)
                px += bytes(min(255, max(0, b + rng.randrange(-40, 41))) for _ in range(1024))
            f.write(bytes(labels(i)) + bytes(px))
cifar("train.bin", 16, lambda i: [i % 10])
cifar("test.bin", 8, lambda i: [(3 * i) % 10])
cifar("test100.bin", 8, lambda i: [i % 20, i], 3074)

#!/usr/bin/env bash
# MNIST commands on bad input: a wrong-size image file, ciphertexts made under other parameters,
# a truncated or altered model file, a truncated ciphertext file, missing keys. Each must fail with
# a non-zero exit (not a crash) and a message naming the problem.
# Usage: mnist_bad_input.sh HECNN SOURCE_DIR
set -u
HECNN=${1:?usage: mnist_bad_input.sh HECNN SOURCE_DIR}
SRC=${2:?usage: mnist_bad_input.sh HECNN SOURCE_DIR}
M=$SRC/models
export HECNN_MODELS=$M
. "$(dirname "$0")/lib/common.sh"

# keys for the MNIST parameters (one rotation is enough: nothing here gets to evaluate) and for n13
run "$HECNN" keygen --params "$M/mnist_params.hecnn" --out-dir "$T/k" --rotations 1
run "$HECNN" keygen --preset n13 --out-dir "$T/k13" --rotations 1
run "$HECNN" encrypt-images --keys "$T/k" --count 3 --batch 32 --out "$T/img.ct"

# wrong-size image files: 27x27 images, pixels missing, not an idx file
python3 - "$T" <<'PY' 2>/dev/null || printf '\x00\x00\x08\x03\x00\x00\x00\x02\x00\x00\x00\x1b\x00\x00\x00\x1b' > "$1/small.idx"
import struct, sys
t = sys.argv[1]
open(t + "/small.idx", "wb").write(struct.pack(">IIII", 0x803, 2, 27, 27) + bytes(2 * 27 * 27))
open(t + "/short.idx", "wb").write(struct.pack(">IIII", 0x803, 5, 28, 28) + bytes(3 * 784))
open(t + "/junk.idx", "wb").write(b"not an image file at all")
PY
expect 1 "28x28" "$HECNN" encrypt-images --keys "$T/k" --images "$T/small.idx" --out "$T/x.ct"
expect 1 "header says 5 images" "$HECNN" encrypt-images --keys "$T/k" --images "$T/short.idx" --out "$T/x.ct"
expect 1 "not an idx3" "$HECNN" encrypt-images --keys "$T/k" --images "$T/junk.idx" --out "$T/x.ct"
expect 1 "cannot read images" "$HECNN" encrypt-images --keys "$T/k" --images "$T/missing.idx" --out "$T/x.ct"
[ -e "$T/x.ct" ] && bad "a failed encrypt-images left $T/x.ct" || ok

# parameters without the network's depth, and ciphertexts under other parameters
expect 1 "needs 9 levels" "$HECNN" encrypt-images --keys "$T/k13" --out "$T/x.ct"
expect 1 "other CKKS parameters|PARAMS_MISMATCH|needs 9 levels" "$HECNN" decrypt-scores --keys "$T/k13" --in "$T/img.ct"
cp "$T/k13/params.hecnn" "$T/k13p"
mkdir -p "$T/mix" && cp "$T/k/"* "$T/mix/" && cp "$T/k13/eval.keys" "$T/mix/eval.keys"
expect 1 "eval|PARAMS_MISMATCH|another" "$HECNN" infer --keys "$T/mix" --in "$T/img.ct" --model "$M/mnist_vr.hcnn" --out "$T/r.ct"
# images file where scores are expected, and the other way round
expect 1 "holds images" "$HECNN" decrypt-scores --keys "$T/k" --in "$T/img.ct"

# truncated and altered model files
head -c 1000 "$M/mnist_vr.hcnn" > "$T/trunc.hcnn"
expect 1 "truncated" "$HECNN" infer --keys "$T/k" --in "$T/img.ct" --model "$T/trunc.hcnn" --out "$T/r.ct"
expect 1 "truncated" "$HECNN" encrypt-model --keys "$T/k" --model "$T/trunc.hcnn" --out "$T/em"
cp "$M/mnist_vr.hcnn" "$T/bit.hcnn"
printf '\x55' | dd of="$T/bit.hcnn" bs=1 seek=4000 conv=notrunc 2>/dev/null
expect 1 "checksum" "$HECNN" infer --keys "$T/k" --in "$T/img.ct" --model "$T/bit.hcnn" --out "$T/r.ct"
[ -e "$T/r.ct" ] && bad "a failed infer left $T/r.ct" || ok

# truncated ciphertext files
# (a ciphertext cut inside its body: mnist_roles.sh, which has the keys to get that far)
head -c 20 "$T/img.ct" > "$T/t2.ct"
expect 1 "truncated" "$HECNN" infer --keys "$T/k" --in "$T/t2.ct" --model "$M/mnist_vr.hcnn" --out "$T/r.ct"

# keys that lack the network's rotations: named before any work
expect 1 "lack a rotation" "$HECNN" infer --keys "$T/k" --in "$T/img.ct" --model "$M/mnist_vr.hcnn" --out "$T/r.ct"
# usage errors
expect 2 "required" "$HECNN" infer --keys "$T/k" --in "$T/img.ct"
expect 2 "--mode" "$HECNN" demo --mode sideways
expect 2 "needs --data" "$HECNN" bench mnist --accuracy

summary

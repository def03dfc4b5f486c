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
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
run() {
    if "$@" >"$T/out" 2>"$T/err"; then ok; else bad "exit $? from: $* :: $(cat "$T/err")"; fi
}
# must_fail RC PATTERN CMD...: exit status RC and stderr matching PATTERN
must_fail() {
    local want=$1 pattern=$2
    shift 2
    "$@" >"$T/out" 2>"$T/err"
    local rc=$?
    if [ $rc -ne "$want" ]; then bad "exit $rc (want $want) from: $* :: $(cat "$T/err")"; return; fi
    if grep -Eq -- "$pattern" "$T/err"; then ok; else bad "stderr of '$*' lacks /$pattern/: $(cat "$T/err")"; fi
}
if "$HECNN" encrypt-images --help 2>&1 | grep -q "not built"; then
    echo "SKIP: the MNIST commands are not linked into $HECNN"
    exit 0
fi

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
must_fail 1 "28x28" "$HECNN" encrypt-images --keys "$T/k" --images "$T/small.idx" --out "$T/x.ct"
must_fail 1 "header says 5 images" "$HECNN" encrypt-images --keys "$T/k" --images "$T/short.idx" --out "$T/x.ct"
must_fail 1 "not an idx3" "$HECNN" encrypt-images --keys "$T/k" --images "$T/junk.idx" --out "$T/x.ct"
must_fail 1 "cannot read images" "$HECNN" encrypt-images --keys "$T/k" --images "$T/missing.idx" --out "$T/x.ct"
[ -e "$T/x.ct" ] && bad "a failed encrypt-images left $T/x.ct" || ok

# parameters without the network's depth, and ciphertexts under other parameters
must_fail 1 "needs 9 levels" "$HECNN" encrypt-images --keys "$T/k13" --out "$T/x.ct"
must_fail 1 "other CKKS parameters|PARAMS_MISMATCH|needs 9 levels" "$HECNN" decrypt-scores --keys "$T/k13" --in "$T/img.ct"
cp "$T/k13/params.hecnn" "$T/k13p"
mkdir -p "$T/mix" && cp "$T/k/"* "$T/mix/" && cp "$T/k13/eval.keys" "$T/mix/eval.keys"
must_fail 1 "eval|PARAMS_MISMATCH|another" "$HECNN" infer --keys "$T/mix" --in "$T/img.ct" --model "$M/mnist_vr.hcnn" --out "$T/r.ct"
# images file where scores are expected, and the other way round
must_fail 1 "holds images" "$HECNN" decrypt-scores --keys "$T/k" --in "$T/img.ct"

# truncated and altered model files
head -c 1000 "$M/mnist_vr.hcnn" > "$T/trunc.hcnn"
must_fail 1 "truncated" "$HECNN" infer --keys "$T/k" --in "$T/img.ct" --model "$T/trunc.hcnn" --out "$T/r.ct"
must_fail 1 "truncated" "$HECNN" encrypt-model --keys "$T/k" --model "$T/trunc.hcnn" --out "$T/em"
cp "$M/mnist_vr.hcnn" "$T/bit.hcnn"
printf '\x55' | dd of="$T/bit.hcnn" bs=1 seek=4000 conv=notrunc 2>/dev/null
must_fail 1 "checksum" "$HECNN" infer --keys "$T/k" --in "$T/img.ct" --model "$T/bit.hcnn" --out "$T/r.ct"
[ -e "$T/r.ct" ] && bad "a failed infer left $T/r.ct" || ok

# truncated ciphertext files
# (a ciphertext cut inside its body: mnist_roles.sh, which has the keys to get that far)
head -c 20 "$T/img.ct" > "$T/t2.ct"
must_fail 1 "truncated" "$HECNN" infer --keys "$T/k" --in "$T/t2.ct" --model "$M/mnist_vr.hcnn" --out "$T/r.ct"

# keys that lack the network's rotations: named before any work
must_fail 1 "lack a rotation" "$HECNN" infer --keys "$T/k" --in "$T/img.ct" --model "$M/mnist_vr.hcnn" --out "$T/r.ct"
# usage errors
must_fail 2 "required" "$HECNN" infer --keys "$T/k" --in "$T/img.ct"
must_fail 2 "--mode" "$HECNN" demo --mode sideways
must_fail 2 "needs --data" "$HECNN" bench mnist --accuracy

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]

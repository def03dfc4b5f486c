#!/usr/bin/env bash
# The three roles as separate commands exchanging files, at the real 128-bit parameters:
# data owner (keygen, encrypt-images, decrypt-scores), server (infer with the plaintext model).
# 20 shipped digits in one batch of 32 (the shipped weights get 19 of them right in plaintext).
# Also: scores decrypted with another secret key are refused.
# Usage: mnist_roles.sh HECNN SOURCE_DIR
set -u
HECNN=${1:?usage: mnist_roles.sh HECNN SOURCE_DIR}
SRC=${2:?usage: mnist_roles.sh HECNN SOURCE_DIR}
M=$SRC/models
export HECNN_MODELS=$M
. "$(dirname "$0")/lib/common.sh"

# data owner: keys with exactly the rotations the server will use
ROT=$("$HECNN" infer --print-rotations --batch 32 --mode plain) || bad "infer --print-rotations"
if "$HECNN" keygen-mnist --help >/dev/null 2>&1; then
    run "$HECNN" keygen-mnist --out-dir "$T/k" --batch 32 --mode plain
else
    run "$HECNN" keygen --params "$M/mnist_params.hecnn" --out-dir "$T/k" --rotations "$ROT" --conjugate
fi
run "$HECNN" encrypt-images --keys "$T/k" --count 20 --batch 32 --out "$T/img.ct"
# the server gets no secret key
mkdir -p "$T/server" && cp "$T/k/params.hecnn" "$T/k/eval.keys" "$T/server/"
run "$HECNN" infer --keys "$T/server" --in "$T/img.ct" --model "$M/mnist_vr.hcnn" --out "$T/res.ct" --quiet
grep -q "inferred 20 images" "$T/out" && ok || bad "infer output: $(cat "$T/out")"
run "$HECNN" decrypt-scores --keys "$T/k" --in "$T/res.ct" --labels "$M/mnist-sample-64-labels-idx1-ubyte" --json --out "$T/s.json"
n=$(grep -c '"prediction"' "$T/s.json")
[ "$n" = 20 ] && ok || bad "$n predictions in the JSON"
acc=$(sed -n 's/.*"correct": \([0-9]*\).*/\1/p' "$T/s.json")
[ -n "$acc" ] && [ "$acc" -ge 18 ] && ok || bad "only ${acc:-?}/20 digits right: $(cat "$T/s.json")"
run "$HECNN" decrypt-scores --keys "$T/k" --in "$T/res.ct"
grep -q "^19 " "$T/out" && ok || bad "text output lacks image 19"

# a truncated ciphertext file fails cleanly and leaves no output
head -c 2000000 "$T/img.ct" > "$T/cut.ct"
"$HECNN" infer --keys "$T/server" --in "$T/cut.ct" --model "$M/mnist_vr.hcnn" --out "$T/cut.res" --quiet >"$T/out" 2>"$T/err"
rc=$?
[ $rc -eq 1 ] && grep -Eq "BAD_FORMAT|truncated" "$T/err" && [ ! -e "$T/cut.res" ] && ok || bad "cut ciphertext: exit $rc: $(cat "$T/err")"

# scores under another key (same parameters) are detected, not printed as garbage
run "$HECNN" keygen --params "$M/mnist_params.hecnn" --out-dir "$T/other" --rotations 1
"$HECNN" decrypt-scores --keys "$T/other" --in "$T/res.ct" >"$T/out" 2>"$T/err"
rc=$?
[ $rc -eq 1 ] && grep -q "does not decrypt under this secret key" "$T/err" && ok || bad "other key: exit $rc: $(cat "$T/err")"

summary

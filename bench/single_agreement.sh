#!/usr/bin/env bash
# Issue 10's accuracy check: a model in the single layout on CIFAR test images, one image per
# encrypted run through the three roles (model keygen once, then per image model encrypt, model
# infer, model decrypt), each encrypted class compared with the plaintext simulation's
# (`model eval --mode approx`, the same polynomials) and with the label.
# Usage: bench/single_agreement.sh HECNN MODEL CIFAR_TEST_BIN WORKDIR [COUNT [OFFSET]]
#   (defaults: 32 images from 0; data: ../shared/data/cifar10/test_batch.bin, see the README).
# CIFAR-10 models (10 classes, 3,073-byte records). Resumable: WORKDIR/results.tsv gets one line
# per image done (image, label, encrypted class, the simulation's class where it agrees else
# "other", agreement 1/0, seconds of the server's run); a rerun skips those and goes on with the
# same keys (WORKDIR/keys), refusing a WORKDIR made for another model or preset. A run of N = 2^16 takes about 10 minutes an image on 2 cores: start it
# in the background, e.g. `nohup bench/single_agreement.sh build/hecnn ... > agreement.log &`.
# Threads: OMP_NUM_THREADS (default 2). PRESET=test runs the insecure N = 2^12 preset (a quick check).
set -euo pipefail
usage="usage: single_agreement.sh HECNN MODEL CIFAR_TEST_BIN WORKDIR [COUNT [OFFSET]]"
HECNN=$(realpath "$(command -v "${1:?$usage}")")
MODEL=$(realpath "${2:?$usage}")
DATA=${3:?$usage}
WORK=${4:?$usage}
COUNT=${5:-32}
OFFSET=${6:-0}
if [ ! -f "$DATA" ]; then
    echo "single_agreement.sh: no CIFAR file '$DATA' (the CIFAR-10 test batch, test_batch.bin:" \
        "see the README's data section, or ../shared/data/cifar10/)" >&2
    exit 1
fi
DATA=$(realpath "$DATA")
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} OMP_WAIT_POLICY=passive
mkdir -p "$WORK"
ID="model-sha256 $(sha256sum "$MODEL" | cut -d' ' -f1) preset ${PRESET:-n16}"
if [ -f "$WORK/run.id" ] && [ "$(cat "$WORK/run.id")" != "$ID" ]; then
    echo "single_agreement.sh: '$WORK' holds a run of another model or preset ($(cat "$WORK/run.id")): use another WORKDIR" >&2
    exit 1
fi
echo "$ID" >"$WORK/run.id"
K=$WORK/keys
R=$WORK/results.tsv
if [ ! -f "$K/plan" ]; then
    rm -rf "$K"
    "$HECNN" model keygen --model "$MODEL" --batch 1 --layout single --preset "${PRESET:-n16}" --out-dir "$K" >"$WORK/keygen.out"
fi
[ -f "$R" ] || printf 'image\tlabel\tencrypted\tsimulated\tagree\tserver_s\n' >"$R"
# the simulation's class of image i: the label set to the encrypted class, then `model eval` says
# whether the simulation scores it correct (a CIFAR-10 record: 1 label byte, then 3072 pixel bytes)
simulated_agrees() {
    python3 - "$DATA" "$1" "$2" "$WORK/relabel.bin" <<'PY'
import sys
data, i, cls, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rec = 3073
with open(data, "rb") as f:
    f.seek(i * rec)
    r = bytearray(f.read(rec))
r[0] = cls
open(out, "wb").write(bytes(r))
PY
    "$HECNN" model eval --model "$MODEL" --data "$WORK/relabel.bin" --count 1 --mode approx --json |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["approx"]["correct"])'
}
for ((i = OFFSET; i < OFFSET + COUNT; i++)); do
    awk -F'\t' -v i="$i" '$1 == i { found = 1 } END { exit !found }' "$R" && continue
    "$HECNN" model encrypt --keys "$K" --model "$MODEL" --data "$DATA" --offset "$i" --count 1 --out "$WORK/img.pbf" >/dev/null
    t0=$(date +%s.%N)
    "$HECNN" model infer --keys "$K/server" --model "$MODEL" --in "$WORK/img.pbf" --out "$WORK/scores.pbf" >"$WORK/infer.out"
    secs=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { printf "%.1f", a - b }')
    "$HECNN" model decrypt --keys "$K" --model "$MODEL" --in "$WORK/scores.pbf" --data "$DATA" --offset "$i" --json >"$WORK/dec.json"
    read -r label enc classes < <(python3 -c 'import json, sys; p = json.load(open(sys.argv[1]))["predictions"][0]; print(p["label"], p["prediction"], len(p["scores"]))' "$WORK/dec.json")
    if [ "$classes" != 10 ]; then
        echo "single_agreement.sh: the model has $classes outputs: this check reads CIFAR-10 (10 classes)" >&2
        exit 1
    fi
    agree=$(simulated_agrees "$i" "$enc")
    sim=$([ "$agree" = 1 ] && echo "$enc" || echo other)
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$i" "$label" "$enc" "$sim" "$agree" "$secs" >>"$R"
    echo "image $i: label $label, encrypted $enc, simulation $([ "$agree" = 1 ] && echo agrees || echo differs), ${secs} s"
done
awk -F'\t' 'NR > 1 { n++; a += $5; c += ($2 == $3) } END { printf "%d images: %d agree with the simulation, %d correct\n", n, a, c }' "$R"

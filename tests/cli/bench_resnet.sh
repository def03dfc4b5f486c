#!/usr/bin/env bash
# hecnn bench resnet at the insecure test preset (N = 2^12) on the tiny model of lib/tiny_model.py:
# every reported field is there, the encrypted argmax agrees with the plaintext simulation on every
# image and the logits differ by CKKS noise only; bad options are refused.
# Usage: bench_resnet.sh HECNN SOURCE_DIR
set -u
HECNN=${1:?usage: bench_resnet.sh HECNN SOURCE_DIR}
. "$(dirname "$0")/lib/common.sh"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} OMP_WAIT_POLICY=passive

if ! command -v python3 >/dev/null; then
    echo "SKIP: python3 is needed to make the tiny model and images"
    exit 0
fi
python3 "$(dirname "$0")/lib/tiny_model.py" "$T"
run "$HECNN" model calibrate --model "$T/raw.hg" --data "$T/train.bin" --margin 1.5 --degree 7 --out "$T/m.hg"
run "$HECNN" bench resnet --model "$T/m.hg" --data "$T/test.bin" --batch 4 --offset 2 --threads 2 --preset test --json
python3 - "$T/out" <<'PY' && ok || bad "bench resnet JSON: $(cat "$T/out")"
import json, sys
r = json.load(open(sys.argv[1]))
for k in ("seconds_per_image", "split_s", "bootstraps_per_image", "rotations_per_image", "peak_rss_mib", "key_bytes",
          "t_boot_s", "per_image_over_t_boot", "cpu", "threads", "accuracy_encrypted", "accuracy_exact"):
    assert k in r, k
assert r["batch"] == 4 and r["offset"] == 2 and r["threads"] == 2 and r["log_n"] == 12
assert r["argmax_agreement"] == 1.0, r["argmax_agreement"]
assert r["max_logit_diff"] < 1e-3 * r["max_logit"], (r["max_logit_diff"], r["max_logit"])
# the tiny model's one ReLU runs on the deep input (encrypted above a bootstrap's output level): none
assert r["bootstraps_per_image"] == 0 and r["t_boot_s"] > 0 and r["key_bytes"] > 0
assert r["chunk_groups"] == r["groups"] and r["spill"] is False and r["estimated_peak_mib"] > 0
PY
run "$HECNN" bench resnet --model "$T/m.hg" --data "$T/test.bin" --batch 4 --preset test --plan-only
grep -q "smallest budget with spilling" "$T/out" && ok || bad "bench resnet --plan-only: $(cat "$T/out")"
expect 2 "preset" "$HECNN" bench resnet --model "$T/m.hg" --data "$T/test.bin" --batch 4 --preset n99
expect 2 "batch" "$HECNN" bench resnet --model "$T/m.hg" --data "$T/test.bin"
expect 1 "No such file" "$HECNN" bench resnet --model "$T/none.hg" --data "$T/test.bin" --batch 4 --preset test
expect 1 "ReLU|calibrat" "$HECNN" bench resnet --model "$T/raw.hg" --data "$T/test.bin" --batch 4 --preset test
summary

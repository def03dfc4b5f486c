#!/usr/bin/env bash
# The single layout through the tool at the insecure test preset (N = 2^12): 'model keygen --batch 1
# --layout single' records the layout in the plan record, and encrypt -> infer -> decrypt give the
# plaintext simulation's class; a batch of one takes the single layout by default, --layout batched
# keeps the batched one (its record has no layout line, as records made before the single layout),
# 'bench resnet --batch 1 --layout single' reports it; bad layouts and bad records are refused.
# Usage: resnet_single.sh HECNN SOURCE_DIR
set -u
HECNN=${1:?usage: resnet_single.sh HECNN SOURCE_DIR}
. "$(dirname "$0")/lib/common.sh"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} OMP_WAIT_POLICY=passive

if ! command -v python3 >/dev/null; then
    echo "SKIP: python3 is needed to make the tiny model and images"
    exit 0
fi
python3 "$(dirname "$0")/lib/tiny_model.py" "$T"
run "$HECNN" model calibrate --model "$T/raw.hg" --data "$T/train.bin" --margin 1.5 --degree 7 --out "$T/m.hg"

K=$T/keys
run "$HECNN" model keygen --model "$T/m.hg" --batch 1 --layout single --out-dir "$K" --preset test
grep -q "single layout" "$T/out" && ok || bad "keygen does not name the layout: $(cat "$T/out")"
grep -q "^layout single$" "$K/plan" && grep -q "^layout single$" "$K/server/plan" && ok || bad "plan record: $(cat "$K/plan")"
run "$HECNN" model encrypt --keys "$K" --model "$T/m.hg" --data "$T/test.bin" --offset 3 --out "$T/img.pbf"
cp -r "$K/server" "$T/srv"
run "$HECNN" model infer --keys "$T/srv" --model "$T/m.hg" --in "$T/img.pbf" --out "$T/sc.pbf"
grep -q "inferred 1 images" "$T/out" && ok || bad "infer summary: $(cat "$T/out")"
run "$HECNN" model decrypt --keys "$K" --model "$T/m.hg" --in "$T/sc.pbf" --data "$T/test.bin" --json
cp "$T/out" "$T/dec.json"
python3 - "$T" <<'PY'
import json, sys
t = sys.argv[1]
pred = [p["prediction"] for p in json.load(open(t + "/dec.json"))["predictions"]]
assert len(pred) == 1, pred
data = bytearray(open(t + "/test.bin", "rb").read())
data[3 * 3073] = pred[0]
open(t + "/relabel.bin", "wb").write(bytes(data))
PY
run "$HECNN" model eval --model "$T/m.hg" --data "$T/relabel.bin" --offset 3 --count 1 --mode approx --json
python3 -c 'import json, sys; sys.exit(json.load(open(sys.argv[1]))["approx"]["correct"] != 1)' "$T/out" && ok || bad "decrypted class differs from the simulation: $(cat "$T/out") / $(cat "$T/dec.json")"

# the default for a batch of one is single; --layout batched writes a record without a layout line
run "$HECNN" model keygen --model "$T/m.hg" --batch 1 --out-dir "$T/k2" --preset test
grep -q "^layout single$" "$T/k2/plan" && ok || bad "default layout for a batch of one: $(cat "$T/k2/plan")"
run "$HECNN" model keygen --model "$T/m.hg" --batch 1 --layout batched --out-dir "$T/k3" --preset test
grep -q "batched layout" "$T/out" && ! grep -q "^layout" "$T/k3/plan" && ok || bad "batched record: $(cat "$T/k3/plan")"
# a single-layout image file is refused by batched keys (another plan, other ciphertexts)
must_fail "." "$HECNN" model infer --keys "$T/k3/server" --model "$T/m.hg" --in "$T/img.pbf" --out "$T/x"
expect 2 "layout" "$HECNN" model keygen --model "$T/m.hg" --batch 1 --layout diagonal --out-dir "$T/k4" --preset test
sed -i 's/^layout single$/layout diagonal/' "$T/k2/server/plan"
expect 1 "bad layout" "$HECNN" model infer --keys "$T/k2/server" --model "$T/m.hg" --in "$T/img.pbf" --out "$T/x"
# the bootstrapper's slots: absent, the preset's; out of range refused; others than the keys' refused
cp "$T/k2/plan" "$T/plan.orig"
printf 'boot-log-slots 99\n' >>"$T/k2/plan"
expect 1 "bad boot-log-slots" "$HECNN" model encrypt --keys "$T/k2" --model "$T/m.hg" --data "$T/test.bin" --out "$T/x"
cp "$K/server/plan" "$T/srvplan.orig"
printf 'boot-log-slots 10\n' >>"$K/server/plan"
expect 1 "do not serve this plan" "$HECNN" model infer --keys "$K/server" --model "$T/m.hg" --in "$T/img.pbf" --out "$T/x"
cp "$T/srvplan.orig" "$K/server/plan"
cp "$T/plan.orig" "$T/k2/plan"
printf 'layout single\n' >>"$T/k2/plan"
expect 1 "should be 'boot-log-slots VALUE'" "$HECNN" model encrypt --keys "$T/k2" --model "$T/m.hg" --data "$T/test.bin" --out "$T/x"

run "$HECNN" bench resnet --model "$T/m.hg" --data "$T/test.bin" --batch 1 --layout single --threads 2 --preset test --json
python3 - "$T/out" <<'PY' && ok || bad "bench resnet JSON: $(cat "$T/out")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["layout"] == "single" and r["batch"] == 1 and r["images_per_ciphertext"] == 1, r
assert r["argmax_agreement"] == 1.0, r["argmax_agreement"]
assert r["max_logit_diff"] < 1e-3 * r["max_logit"], (r["max_logit_diff"], r["max_logit"])
# the model's one ReLU runs on the deep input (encrypted at a bootstrap's output level + 1): no bootstrap
assert r["bootstraps_per_image"] == 0, r["bootstraps_per_image"]
PY
expect 2 "layout" "$HECNN" bench resnet --model "$T/m.hg" --data "$T/test.bin" --batch 1 --layout x --preset test

summary

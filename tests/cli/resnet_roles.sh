#!/usr/bin/env bash
# hecnn model keygen -> encrypt -> infer -> decrypt at the insecure test preset (N = 2^12), on a tiny
# model and data made here: lib/tiny_model.py writes a CIFAR-shaped graph file (conv 3->2, ReLU,
# global pool, dense 10) and small CIFAR files, 'hecnn model calibrate' fits its ReLU. The decrypted
# classes must be the plaintext simulation's ('model eval --mode approx' on a copy of the images
# labelled with them). Also the refusals: no secret key in DIR/server, another
# model, missing and incomplete keys, the wrong file kind, a truncated or altered file, a wrong
# record size, scores checked against the owner record, bad options.
# Usage: resnet_roles.sh HECNN SOURCE_DIR
set -u
HECNN=${1:?usage: resnet_roles.sh HECNN SOURCE_DIR}
. "$(dirname "$0")/lib/common.sh"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} OMP_WAIT_POLICY=passive

if ! command -v python3 >/dev/null; then
    echo "SKIP: python3 is needed to make the tiny model and images"
    exit 0
fi
python3 "$(dirname "$0")/lib/tiny_model.py" "$T"
[ -f "$T/test.bin" ] && ok || bad "the synthetic data were not made"

# calibrate the tiny models (ranges from the training images, degree-7 ReLU)
run "$HECNN" model calibrate --model "$T/raw.hg" --data "$T/train.bin" --margin 1.5 --degree 7 --out "$T/m.hg"
run "$HECNN" model calibrate --model "$T/raw2.hg" --data "$T/train.bin" --margin 1.5 --degree 7 --out "$T/m2.hg"
run "$HECNN" model calibrate --model "$T/raw1x1.hg" --data "$T/train.bin" --margin 1.5 --degree 7 --out "$T/m1.hg"

K=$T/keys
run "$HECNN" model keygen --model "$T/m.hg" --batch 4 --out-dir "$K" --preset test
grep -q "bootstrapping .* keys, .* MiB in memory; network .* keys" "$T/out" && ok || bad "keygen lacks key sizes: $(cat "$T/out")"
grep -q "insecure" "$T/err" && ok || bad "keygen does not say the test preset is insecure: $(cat "$T/err")"
for f in params.hecnn secret.key plan server/params.hecnn server/plan server/boot.keys server/network.keys; do
    [ -s "$K/$f" ] && ok || bad "keygen did not write $f"
done
[ ! -e "$K/server/secret.key" ] && ok || bad "the server directory holds the secret key"
[ "$(stat -c %a "$K/secret.key")" = 600 ] && ok || bad "secret.key mode $(stat -c %a "$K/secret.key")"
grep -q "^batch 4$" "$K/server/plan" && grep -q "^preset test$" "$K/server/plan" && ok || bad "plan record: $(cat "$K/server/plan")"
expect 1 "already exists" "$HECNN" model keygen --model "$T/m.hg" --batch 4 --out-dir "$K" --preset test

# the owner encrypts images 2..5, the server runs them, the owner decrypts
run "$HECNN" model encrypt --keys "$K" --model "$T/m.hg" --data "$T/test.bin" --offset 2 --out "$T/img.pbf"
[ -s "$T/img.pbf.record" ] && [ -s "$K/images.record" ] && ok || bad "encrypt wrote no owner record"
cp -r "$K/server" "$T/srv"   # what the server holds: no secret key
run "$HECNN" model infer --keys "$T/srv" --model "$T/m.hg" --in "$T/img.pbf" --out "$T/sc.pbf" --progress
grep -q "node" "$T/err" && ok || bad "infer --progress printed no progress: $(cat "$T/err")"
grep -q "inferred 4 images" "$T/out" && ok || bad "infer summary: $(cat "$T/out")"
# memory budgets: one too small is refused before the keys are read, naming the smallest that works;
# one that fits gives the same scores, byte for byte
expect 1 "the smallest that works is" "$HECNN" model infer --keys "$T/srv" --model "$T/m.hg" --in "$T/img.pbf" --out "$T/x" --memory-budget 1M
expect 1 "memory-budget lots" "$HECNN" model infer --keys "$T/srv" --model "$T/m.hg" --in "$T/img.pbf" --out "$T/x" --memory-budget lots
run "$HECNN" model infer --keys "$T/srv" --model "$T/m.hg" --in "$T/img.pbf" --out "$T/sc2.pbf" --memory-budget 64G --scratch "$T"
grep -q "estimated peak" "$T/err" && ok || bad "infer --memory-budget printed no schedule: $(cat "$T/err")"
cmp -s "$T/sc.pbf" "$T/sc2.pbf" && ok || bad "scores under a memory budget differ"
# checkpoints: the same scores, the directory gone after; one that holds another run's is refused
run "$HECNN" model infer --keys "$T/srv" --model "$T/m.hg" --in "$T/img.pbf" --out "$T/sc3.pbf" --checkpoint "$T/ck"
cmp -s "$T/sc.pbf" "$T/sc3.pbf" && ok || bad "scores with checkpoints differ"
[ ! -e "$T/ck" ] && ok || bad "a completed run left its checkpoints: $(ls "$T/ck")"
mkdir "$T/ck2" && printf 'hecnn-checkpoint 1\nrun elsewhere\n' > "$T/ck2/run.id"
expect 1 "another run's checkpoints" "$HECNN" model infer --keys "$T/srv" --model "$T/m.hg" --in "$T/img.pbf" --out "$T/x" --checkpoint "$T/ck2"
[ -s "$T/ck2/run.id" ] && [ ! -e "$T/x" ] && ok || bad "a refused checkpoint directory was changed, or scores written"
run "$HECNN" model decrypt --keys "$K" --model "$T/m.hg" --in "$T/sc.pbf" --data "$T/test.bin" --json
cp "$T/out" "$T/dec.json"
grep -q '"images": 4' "$T/dec.json" && grep -q '"accuracy"' "$T/dec.json" && grep -q '"image": 2,' "$T/dec.json" && ok ||
    bad "decrypt JSON: $(cat "$T/dec.json")"

# the decrypted classes are the plaintext simulation's: label images 2..5 with them, then the
# simulation must score 4/4
python3 - "$T" <<'PY'
import json, sys
t = sys.argv[1]
pred = [p["prediction"] for p in json.load(open(t + "/dec.json"))["predictions"]]
data = bytearray(open(t + "/test.bin", "rb").read())
for i, p in enumerate(pred):
    data[(2 + i) * 3073] = p
open(t + "/relabel.bin", "wb").write(bytes(data))
PY
run "$HECNN" model eval --model "$T/m.hg" --data "$T/relabel.bin" --offset 2 --count 4 --mode approx --json
python3 -c 'import json, sys; sys.exit(json.load(open(sys.argv[1]))["approx"]["correct"] != 4)' "$T/out" && ok || bad "decrypted classes differ from the simulation: $(cat "$T/out") / $(cat "$T/dec.json")"
run "$HECNN" model decrypt --keys "$K" --model "$T/m.hg" --in "$T/sc.pbf"
grep -Eq "^2 +[0-9]" "$T/out" && ok || bad "decrypt table: $(cat "$T/out")"
run "$HECNN" model decrypt --keys "$K" --model "$T/m.hg" --in "$T/sc.pbf" --flood 20
grep -Eq "^5 +[0-9]" "$T/out" && ok || bad "flooded decrypt table: $(cat "$T/out")"
expect 2 "flood" "$HECNN" model decrypt --keys "$K" --model "$T/m.hg" --in "$T/sc.pbf" --flood 0

# refusals
expect 1 "not the model the keys" "$HECNN" model infer --keys "$T/srv" --model "$T/m2.hg" --in "$T/img.pbf" --out "$T/x"
expect 1 "not the model the keys" "$HECNN" model encrypt --keys "$K" --model "$T/m2.hg" --data "$T/test.bin" --out "$T/x"
mv "$T/srv/boot.keys" "$T/boot.keys"
expect 1 "boot\.keys" "$HECNN" model infer --keys "$T/srv" --model "$T/m.hg" --in "$T/img.pbf" --out "$T/x"
mv "$T/boot.keys" "$T/srv/boot.keys"
cp "$T/srv/network.keys" "$T/net.keys"
rm "$T/srv/network.keys"
expect 1 "network\.keys" "$HECNN" model infer --keys "$T/srv" --model "$T/m.hg" --in "$T/img.pbf" --out "$T/x"
# the network keys of a 1x1 model lack this plan's rotations: the missing key is named
run "$HECNN" model keygen --model "$T/m1.hg" --batch 4 --out-dir "$T/k1" --preset test
cp "$T/k1/server/network.keys" "$T/srv/network.keys"
expect 1 "MISSING_KEY.*(rotation|relinearization) key" "$HECNN" model infer --keys "$T/srv" --model "$T/m.hg" --in "$T/img.pbf" --out "$T/x"
cp "$T/net.keys" "$T/srv/network.keys"
expect 1 "secret\.key" "$HECNN" model decrypt --keys "$T/srv" --model "$T/m.hg" --in "$T/sc.pbf"
expect 1 "holds encrypted scores, encrypted images expected" "$HECNN" model infer --keys "$T/srv" --model "$T/m.hg" --in "$T/sc.pbf" --out "$T/x"
expect 1 "holds encrypted images, encrypted scores expected" "$HECNN" model decrypt --keys "$K" --model "$T/m.hg" --in "$T/img.pbf"
head -c 5000 "$T/img.pbf" >"$T/short.pbf"
expect 1 "truncated" "$HECNN" model infer --keys "$T/srv" --model "$T/m.hg" --in "$T/short.pbf" --out "$T/x"
head -c 100 "$T/img.pbf" >"$T/short.pbf"
expect 1 "truncated in its header" "$HECNN" model infer --keys "$T/srv" --model "$T/m.hg" --in "$T/short.pbf" --out "$T/x"
cp "$T/img.pbf" "$T/bad.pbf"
printf '\x05' | dd of="$T/bad.pbf" bs=1 seek=88 conv=notrunc 2>/dev/null   # the batch size
expect 1 "header checksum mismatch" "$HECNN" model infer --keys "$T/srv" --model "$T/m.hg" --in "$T/bad.pbf" --out "$T/x"
expect 1 "not a plan batch file" "$HECNN" model infer --keys "$T/srv" --model "$T/m.hg" --in "$T/m.hg" --out "$T/x"
[ ! -e "$T/x" ] && ok || bad "a refused run left an output"
# scores of other images than the record's are refused
run "$HECNN" model encrypt --keys "$K" --model "$T/m.hg" --data "$T/test.bin" --offset 4 --count 2 --out "$T/img2.pbf"
expect 1 "do not match the owner record" "$HECNN" model decrypt --keys "$K" --model "$T/m.hg" --in "$T/sc.pbf"
run "$HECNN" model decrypt --keys "$K" --model "$T/m.hg" --in "$T/sc.pbf" --record "$T/img.pbf.record"
# data of the wrong record size, counts out of the file, bad options
expect 1 "CIFAR|record" "$HECNN" model encrypt --keys "$K" --model "$T/m.hg" --data "$T/test100.bin" --out "$T/x"
expect 1 "." "$HECNN" model encrypt --keys "$K" --model "$T/m.hg" --data "$T/test.bin" --offset 6 --out "$T/x"
expect 1 "batches of 4" "$HECNN" model encrypt --keys "$K" --model "$T/m.hg" --data "$T/test.bin" --count 5 --out "$T/x"
expect 2 "preset" "$HECNN" model keygen --model "$T/m.hg" --batch 4 --out-dir "$T/k2" --preset n99
expect 2 "batch" "$HECNN" model keygen --model "$T/m.hg" --out-dir "$T/k2" --preset test
expect 1 "plan.*No such file" "$HECNN" model infer --keys "$T" --model "$T/m.hg" --in "$T/img.pbf" --out "$T/x"
printf 'hecnn-plan-record 1\npreset test\n' >"$T/k1/server/plan"
expect 1 "truncated" "$HECNN" model infer --keys "$T/k1/server" --model "$T/m.hg" --in "$T/img.pbf" --out "$T/x"

summary

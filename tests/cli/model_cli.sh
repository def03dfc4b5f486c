#!/usr/bin/env bash
# hecnn model import | info | eval | calibrate on synthetic data made here: a full FHEON-style
# ResNet-20 CSV directory with small pseudo-random weights, small CIFAR-10 test/train files and a
# CIFAR-100 file. Also every bad input: short, malformed and non-finite CSVs, missing files, the
# wrong data set, wrong record sizes, out-of-file ranges, bad options, a damaged model file.
# Usage: model_cli.sh HECNN SOURCE_DIR
set -u
HECNN=${1:?usage: model_cli.sh HECNN SOURCE_DIR}
. "$(dirname "$0")/lib/common.sh"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} OMP_WAIT_POLICY=passive

if ! command -v python3 >/dev/null; then
    echo "SKIP: python3 is needed to make the synthetic weights and images"
    exit 0
fi
python3 - "$T" <<'PY'
import os, random, sys
t = sys.argv[1]
rng = random.Random(20261203)
w = os.path.join(t, "w")
os.makedirs(w)
def tensor(name, n, scale):
    with open(os.path.join(w, name + ".csv"), "w") as f:
        f.write(",".join(repr(rng.uniform(-scale, scale)) for _ in range(n)) + "\n")
def conv(stem, cout, cin, k):
    tensor(stem + "_weight", cout * cin * k * k, 1.5 / (cin * k * k) ** 0.5)
    tensor(stem + "_bias", cout, 0.1)
conv("layer0_conv1", 16, 3, 3)
widths = [16, 32, 64]
for L in range(3):
    for B in range(3):
        cin = widths[L - 1] if (L and not B) else widths[L]
        conv("layer%d_block%d_conv1" % (L + 1, B + 1), widths[L], cin, 3)
        conv("layer%d_block%d_conv2" % (L + 1, B + 1), widths[L], widths[L], 3)
        if L and not B:
            conv("layer%d_block1_shortcut" % (L + 1), widths[L], cin, 1)
tensor("layer_fc_weight", 640, 0.3)
tensor("layer_fc_bias", 10, 0.1)
def cifar(name, n, labels):
    with open(os.path.join(t, name), "wb") as f:
        for i in range(n):
            f.write(bytes(labels(i)) + bytes(rng.randrange(256) for _ in range(3072)))
cifar("test10.bin", 24, lambda i: [i % 10])
cifar("train10a.bin", 20, lambda i: [(3 * i) % 10])
cifar("train10b.bin", 16, lambda i: [(7 * i) % 10])
cifar("test100.bin", 6, lambda i: [i % 20, (9 * i) % 100])
with open(os.path.join(t, "batches.meta.txt"), "w") as f:
    f.write("\n".join(["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]) + "\n\n")
PY
[ -f "$T/w/layer_fc_bias.csv" ] && ok || bad "the synthetic data were not made"
W=$T/w

# import, info
run "$HECNN" model import --fheon "$W" --arch resnet20 --out "$T/m.hg"
grep -q "52 nodes, 19 ReLUs, 271690 parameters, 10 classes" "$T/out" && ok || bad "import summary: $(cat "$T/out")"
grep -q "(FHEON's): mean 0.4914 0.4822 0.4465" "$T/out" && ok || bad "import normalisation: $(cat "$T/out")"
run "$HECNN" model info --model "$T/m.hg"
grep -q "^parameters   271690" "$T/out" && grep -q "19: 0 with a range" "$T/out" && grep -Eq "^SHA-256      [0-9a-f]{64}$" "$T/out" && ok ||
    bad "info: $(tail -8 "$T/out")"
grep -Eq "^ +21  conv2d +17 +32 x 16 x 16 +1/2/0 +544 " "$T/out" && ok || bad "info lacks the layer2 shortcut: $(sed -n 20,25p "$T/out")"

# eval, exact
run "$HECNN" model eval --model "$T/m.hg" --data "$T/test10.bin" --count 10 --offset 4
grep -Eq "^exact: +[0-9]+/10 correct" "$T/out" && ok || bad "eval: $(cat "$T/out")"
run "$HECNN" model eval --model "$T/m.hg" --data "$T/test10.bin" --json --per-class
grep -q '"images": 24' "$T/out" && grep -q '"name": "truck"' "$T/out" && ok || bad "eval --json: $(cat "$T/out")"
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$T/out" && ok || bad "eval --json is not JSON"
# paths are escaped in the JSON: a model and data set under a name with a quote, a backslash, a
# newline and a tab must come back unchanged from a JSON parser
q=$T/$'we"ird\\na\tme\nx'
mkdir -p "$q" && cp "$T/m.hg" "$T/test10.bin" "$q/"
run "$HECNN" model eval --model "$q/m.hg" --data "$q/test10.bin" --count 2 --json
/usr/bin/python3 -m json.tool "$T/out" >/dev/null && ok || bad "eval --json with an odd path is not JSON: $(cat "$T/out")"
/usr/bin/python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); sys.exit(r["model"] != sys.argv[2] + "/m.hg" or r["data"] != sys.argv[2] + "/test10.bin")' \
    "$T/out" "$q" && ok || bad "eval --json does not give the paths back: $(cat "$T/out")"
expect 1 "lack a range.*calibrate" "$HECNN" model eval --model "$T/m.hg" --data "$T/test10.bin" --mode approx

# calibrate: two training files, a table of 19 ReLUs; the --absmax route gives the same model
run "$HECNN" model calibrate --model "$T/m.hg" --data "$T/train10a.bin" --data="$T/train10b.bin" --margin 1.5 --degree 31 \
    --save-absmax "$T/abs.txt" --out "$T/cal.hg"
grep -q "calibration images: 36 from 2 files" "$T/out" && ok || bad "calibrate: $(head -3 "$T/out")"
[ "$(grep -Ec '^ +[0-9]+ +[0-9]+ (16|32|64) x' "$T/out")" = 19 ] && ok || bad "calibrate table: $(cat "$T/out")"
d1=$(sed -n 's/.*SHA-256 \([0-9a-f]*\)).*/\1/p' "$T/out")
run "$HECNN" model calibrate --model "$T/m.hg" --absmax "$T/abs.txt" --margin 1.5 --degree 31 --out "$T/cal2.hg"
d2=$(sed -n 's/.*SHA-256 \([0-9a-f]*\)).*/\1/p' "$T/out")
[ -n "$d1" ] && [ "$d1" = "$d2" ] && ok || bad "--absmax gave another model: '$d1' vs '$d2'"
cmp -s "$T/cal.hg" "$T/cal2.hg" && ok || bad "--absmax model file differs"
run "$HECNN" model info --model "$T/cal.hg" --summary
grep -q "19: 19 with a range, 19 with an approximation" "$T/out" && ok || bad "calibrated info: $(cat "$T/out")"
# approx on the calibration images themselves: nothing out of range, the same argmax nearly always
run "$HECNN" model eval --model "$T/cal.hg" --data "$T/train10a.bin" --mode approx --json
grep -q '"out_of_range_total": 0,' "$T/out" && ok || bad "approx on the calibration images went out of range: $(cat "$T/out")"
grep -q '"max_logit_diff"' "$T/out" && grep -q '"agreement"' "$T/out" && ok || bad "approx JSON: $(cat "$T/out")"
# a margin of 1 on one file, evaluated on other images: the out-of-range counts are reported
run "$HECNN" model calibrate --model "$T/m.hg" --data "$T/train10b.bin" --count 2 --margin 1 --degree 15 --out "$T/tight.hg"
run "$HECNN" model eval --model "$T/tight.hg" --data "$T/test10.bin" --mode approx
grep -Eq "^out of range .*: [1-9][0-9]* in all" "$T/out" && grep -Eq "^ +relu +node +range +images" "$T/out" && ok ||
    bad "tight ranges not reported out of range: $(cat "$T/out")"

# option-A shortcuts and a normalisation from the directory (the akamaster route)
mkdir "$T/wa" && cp "$W"/*.csv "$T/wa/" && rm "$T/wa/"*shortcut*
echo "0.485,0.456,0.406" > "$T/wa/input_mean.csv"
echo "0.229,0.224,0.225" > "$T/wa/input_std.csv"
expect 1 "layer2_block1_shortcut_weight.csv" "$HECNN" model import --fheon "$T/wa" --arch resnet20 --out "$T/a.hg"
run "$HECNN" model import --fheon "$T/wa" --arch resnet20 --shortcut A --out "$T/a.hg"
grep -q "option-A" "$T/out" && grep -q "mean 0.485 0.456 0.406" "$T/out" && ok || bad "option A import: $(cat "$T/out")"

# bad weights: each refused with the file named, and no model written
cp -r "$W" "$T/wb"
f=$T/wb/layer2_block2_conv1_weight.csv
sed -i 's/,[^,]*$//' "$f"
expect 1 "layer2_block2_conv1_weight.csv': 9215 values, expected 9216 for shape \[32,32,3,3\]" \
    "$HECNN" model import --fheon "$T/wb" --arch resnet20 --out "$T/bad.hg"
cp "$W/layer2_block2_conv1_weight.csv" "$f" && sed -i 's/^[^,]*,/0.1,nan,/' "$f"
expect 1 "layer2_block2_conv1_weight.csv': value 2 is not a finite number: 'nan'" \
    "$HECNN" model import --fheon "$T/wb" --arch resnet20 --out "$T/bad.hg"
cp "$W/layer2_block2_conv1_weight.csv" "$f" && sed -i 's/^[^,]*,/0.1;0.2,/' "$f"
expect 1 "layer2_block2_conv1_weight.csv': unexpected ';'" "$HECNN" model import --fheon "$T/wb" --arch resnet20 --out "$T/bad.hg"
cp "$W/layer2_block2_conv1_weight.csv" "$f" && rm "$T/wb/layer_fc_bias.csv"
expect 1 "cannot read weights '.*layer_fc_bias.csv'" "$HECNN" model import --fheon "$T/wb" --arch resnet20 --out "$T/bad.hg"
expect 1 "cannot read weights '.*layer2_block4_conv1_weight.csv'" "$HECNN" model import --fheon "$W" --arch resnet34 --out "$T/bad.hg"
expect 1 "not a directory" "$HECNN" model import --fheon "$T/nowhere" --arch resnet20 --out "$T/bad.hg"
[ -e "$T/bad.hg" ] && bad "a failed import left $T/bad.hg" || ok

# bad data
head -c 5000 "$T/test10.bin" > "$T/cut.bin"
expect 1 "not a whole number of 3073-byte CIFAR-10 records" "$HECNN" model eval --model "$T/m.hg" --data "$T/cut.bin"
expect 1 "looks like CIFAR-100" "$HECNN" model eval --model "$T/m.hg" --data "$T/test100.bin"
expect 1 "looks like CIFAR-100" "$HECNN" model calibrate --model "$T/m.hg" --data "$T/test100.bin" --margin 2 --degree 15 --out "$T/bad.hg"
expect 1 "offset 24 is past the end" "$HECNN" model eval --model "$T/m.hg" --data "$T/test10.bin" --offset 24
expect 1 "holds 24 images: --count 5 from --offset 20" "$HECNN" model eval --model "$T/m.hg" --data "$T/test10.bin" --offset 20 --count 5
expect 1 "fewer than --count 30" "$HECNN" model calibrate --model "$T/m.hg" --data "$T/train10a.bin" --count 30 --margin 2 --degree 15 --out "$T/bad.hg"
expect 1 "cannot read CIFAR-10 data '.*missing.bin'" "$HECNN" model eval --model "$T/m.hg" --data "$T/missing.bin"
python3 -c 'import sys; open(sys.argv[1], "wb").write(bytes([11]) + bytes(3072))' "$T/badlabel.bin"
expect 1 "label 11, out of range for CIFAR-10" "$HECNN" model eval --model "$T/m.hg" --data "$T/badlabel.bin"
expect 1 "CIFAR-100 only" "$HECNN" model eval --model "$T/m.hg" --data "$T/test10.bin" --coarse
expect 1 "the model has 10 outputs, CIFAR-100 has 100 classes" "$HECNN" model eval --model "$T/m.hg" --data "$T/test100.bin" --dataset cifar100
printf 'x\n' > "$T/abs-bad.txt"
expect 1 "absmax file .* line 1" "$HECNN" model calibrate --model "$T/m.hg" --absmax "$T/abs-bad.txt" --margin 2 --degree 15 --out "$T/bad.hg"
head -n 5 "$T/abs.txt" > "$T/abs-short.txt"
expect 1 "covers 4 of the model's 19 ReLUs" "$HECNN" model calibrate --model "$T/m.hg" --absmax "$T/abs-short.txt" --margin 2 --degree 15 --out "$T/bad.hg"
[ -e "$T/bad.hg" ] && bad "a failed calibrate left $T/bad.hg" || ok

# damaged model files
head -c 3000 "$T/m.hg" > "$T/trunc.hg"
must_fail "cannot read model '.*trunc.hg'" "$HECNN" model info --model "$T/trunc.hg"
cp "$T/cal.hg" "$T/flip.hg"
printf '\x55' | dd of="$T/flip.hg" bs=1 seek=5000 conv=notrunc 2>/dev/null
must_fail "cannot read model '.*flip.hg'" "$HECNN" model eval --model "$T/flip.hg" --data "$T/test10.bin"
must_fail "cannot read model" "$HECNN" model info --model "$T/test10.bin"

# usage errors
expect 2 "--out FILE is required" "$HECNN" model import --fheon "$W" --arch resnet20
expect 2 "--arch resnet50: choose resnet20 or resnet34" "$HECNN" model import --fheon "$W" --arch resnet50 --out "$T/x.hg"
expect 2 "--shortcut C" "$HECNN" model import --fheon "$W" --arch resnet20 --shortcut C --out "$T/x.hg"
expect 2 "--mode sideways" "$HECNN" model eval --model "$T/m.hg" --data "$T/test10.bin" --mode sideways
expect 2 "--margin 0.5: must be at least 1" "$HECNN" model calibrate --model "$T/m.hg" --data "$T/train10a.bin" --margin 0.5 --degree 15 --out "$T/x.hg"
expect 2 "--degree 1: must be in 2" "$HECNN" model calibrate --model "$T/m.hg" --data "$T/train10a.bin" --margin 2 --degree 1 --out "$T/x.hg"
expect 2 "--degree D is required" "$HECNN" model calibrate --model "$T/m.hg" --data "$T/train10a.bin" --margin 2 --out "$T/x.hg"
expect 2 "not both" "$HECNN" model calibrate --model "$T/m.hg" --data "$T/train10a.bin" --absmax "$T/abs.txt" --margin 2 --degree 15 --out "$T/x.hg"
expect 2 "not both" "$HECNN" model calibrate --model "$T/m.hg" --margin 2 --degree 15 --out "$T/x.hg"
expect 2 "unknown subcommand 'frobnicate'" "$HECNN" model frobnicate
expect 2 "usage: hecnn model" "$HECNN" model
run "$HECNN" model --help
grep -q "calibrate" "$T/out" && ok || bad "model --help: $(cat "$T/out")"
run "$HECNN" help model
run "$HECNN" model eval --help
grep -q -- "--mode MODE" "$T/out" && ok || bad "model eval --help: $(cat "$T/out")"

summary

#!/usr/bin/env bash
# A batched ResNet run too long for one sitting (ResNet-20 at batch 512: about 9 hours on 2 cores),
# through the three roles, resumable: model keygen and model encrypt once, then `model infer
# --checkpoint`, which picks up where a killed run stopped; model decrypt; and the argmax agreement
# with the plaintext simulation of the HE pipeline on the same images (`model eval --mode approx`).
# Usage: bench/batched_resumable.sh HECNN MODEL CIFAR_TEST_BIN WORKDIR BATCH [OFFSET]
#   (data: ../shared/data/cifar10/test_batch.bin or cifar100/test.bin, see the README).
# Each invocation first measures t_boot (`hecnn bench boot`, median of 3 full-slot bootstraps at the
# same threads) into WORKDIR/tboot.tsv with the CPU model, since a resumed run may span machines;
# WORKDIR/infer.log collects the server's lines, WORKDIR/rss.tsv its peak RSS (kB) per sitting.
# When the run completes, WORKDIR/summary.txt holds seconds per image (this and earlier sittings'
# time on the network), its ratio to the median t_boot, the largest peak RSS, and the agreement.
# Rerun the same command to resume; a WORKDIR made for another model, batch, offset or preset is
# refused. Start it in the background:
#   nohup bench/batched_resumable.sh build/hecnn models/resnet20_fheon.hgraph DATA /work/b512 512 > b512.log &
# Threads: OMP_NUM_THREADS (default 2). PRESET=test runs the insecure N = 2^12 preset (a quick check).
# BUDGET=8G runs the server under `--memory-budget 8G` (spilling to WORKDIR/scratch-8G) on the same keys and
# images as the run without it in the same WORKDIR; its files carry the suffix -8G (scores-8G.pbf,
# summary-8G.txt, ...), so the two runs' times, peak RSS and scores (cmp) compare directly (issue 9).
set -euo pipefail
usage="usage: batched_resumable.sh HECNN MODEL CIFAR_TEST_BIN WORKDIR BATCH [OFFSET]"
HECNN=$(realpath "$(command -v "${1:?$usage}")")
MODEL=$(realpath "${2:?$usage}")
DATA=${3:?$usage}
WORK=${4:?$usage}
BATCH=${5:?$usage}
OFFSET=${6:-0}
PRESET=${PRESET:-n16}
if [ ! -f "$DATA" ]; then
    echo "batched_resumable.sh: no CIFAR file '$DATA' (test_batch.bin of CIFAR-10 or test.bin of CIFAR-100:" \
        "see the README's data section, or ../shared/data/)" >&2
    exit 1
fi
DATA=$(realpath "$DATA")
BUDGET=${BUDGET:-}
X=${BUDGET:+-$BUDGET} # the suffix of a budgeted run's files
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} OMP_WAIT_POLICY=passive
mkdir -p "$WORK"
ID="model-sha256 $(sha256sum "$MODEL" | cut -d' ' -f1) batch $BATCH offset $OFFSET preset $PRESET data $(basename "$DATA")"
if [ -f "$WORK/run.id" ] && [ "$(cat "$WORK/run.id")" != "$ID" ]; then
    echo "batched_resumable.sh: '$WORK' holds another run ($(cat "$WORK/run.id")): use another WORKDIR" >&2
    exit 1
fi
echo "$ID" >"$WORK/run.id"
K=$WORK/keys
cpu=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
boot_preset=$([ "$PRESET" = test ] && echo test-full || echo full)
tboot=$("$HECNN" bench boot --preset "$boot_preset" --threads "$OMP_NUM_THREADS" --reps 3 --json |
    /usr/bin/env python3 -c 'import json, sys; print(json.load(sys.stdin)["threads_" + sys.argv[1]]["seconds"])' "$OMP_NUM_THREADS")
printf '%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$cpu" "$OMP_NUM_THREADS" "$tboot" >>"$WORK/tboot.tsv"
echo "t_boot $tboot s ($cpu, $OMP_NUM_THREADS threads)"
if [ ! -f "$K/plan" ]; then
    rm -rf "$K"
    "$HECNN" model keygen --model "$MODEL" --batch "$BATCH" --preset "$PRESET" --out-dir "$K" >"$WORK/keygen.out"
fi
if [ ! -f "$WORK/img.pbf" ]; then
    "$HECNN" model encrypt --keys "$K" --model "$MODEL" --data "$DATA" --offset "$OFFSET" --count "$BATCH" \
        --out "$WORK/img.tmp.pbf" >/dev/null
    mv "$WORK/img.tmp.pbf.record" "$WORK/img.pbf.record" 2>/dev/null || true
    mv "$WORK/img.tmp.pbf" "$WORK/img.pbf"
fi
# each sitting's peak RSS of the server (GNU time, Debian package 'time', when present)
timed=()
budget=()
[ -n "$BUDGET" ] && mkdir -p "$WORK/scratch$X" && budget=(--memory-budget "$BUDGET" --scratch "$WORK/scratch$X")
[ -x /usr/bin/time ] && timed=(/usr/bin/time -a -o "$WORK/rss$X.tsv" -f "$(date -u +%FT%TZ)\t%M")
if [ ! -f "$WORK/scores$X.pbf" ]; then
    if ! "${timed[@]}" "$HECNN" model infer --keys "$K/server" --model "$MODEL" --in "$WORK/img.pbf" --out "$WORK/scores$X.pbf" \
        "${budget[@]}" --checkpoint "$WORK/checkpoints$X" --progress 2>>"$WORK/progress$X.log" | tee -a "$WORK/infer$X.log"; then
        tail -n 1 "$WORK/progress$X.log" >&2 # the server's reason
        exit 1
    fi
fi
"$HECNN" model decrypt --keys "$K" --model "$MODEL" --in "$WORK/scores$X.pbf" --data "$DATA" --offset "$OFFSET" --json >"$WORK/dec$X.json"
# agreement: the records relabelled with the encrypted classes, scored by the simulation
/usr/bin/env python3 - "$DATA" "$OFFSET" "$WORK/dec$X.json" "$WORK/relabel$X.bin" <<'PY'
import json, sys
data, off, dec, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
preds = json.load(open(dec))["predictions"]
classes = len(preds[0]["scores"])
rec, at = (3073, 0) if classes == 10 else (3074, 1)  # CIFAR-100: coarse, fine label, pixels
with open(data, "rb") as f:
    f.seek(off * rec)
    raw = bytearray(f.read(rec * len(preds)))
for k, p in enumerate(preds):
    raw[k * rec + at] = p["prediction"]
open(out, "wb").write(bytes(raw))
PY
"$HECNN" model eval --model "$MODEL" --data "$WORK/relabel$X.bin" --count "$BATCH" --mode approx --json >"$WORK/eval$X.json"
/usr/bin/env python3 - "$WORK" "$BATCH" "$X" <<'PY' | tee "$WORK/summary$X.txt"
import json, os, statistics, sys
work, batch, x = sys.argv[1], int(sys.argv[2]), sys.argv[3]
dec = json.load(open(f"{work}/dec{x}.json"))
agree = json.load(open(f"{work}/eval{x}.json"))["approx"]["correct"]
tb = [float(l.split("\t")[3]) for l in open(f"{work}/tboot.tsv")]
cpus = sorted({l.split("\t")[1] for l in open(f"{work}/tboot.tsv")})
total = None
for line in open(f"{work}/infer{x}.log"):
    if line.startswith("resumed "):
        total = float(line.split(": ")[1].split(" s in all")[0])
    elif line.startswith("inferred ") and total is None:
        total = float(line.split(" in ")[1].split(" s")[0])
t = statistics.median(tb)
print(f"batch {batch}{' under a memory budget of ' + x[1:] if x else ''}: {total:.1f} s on the network = {total / batch:.2f} s/image = {total / batch / t:.2f} x t_boot "
      f"(median t_boot {t:.2f} s of {len(tb)} sittings; CPU {', '.join(cpus)})")
rss_file = f"{work}/rss{x}.tsv"  # a killed sitting may leave a 'terminated by signal' line, or none
rss = [int(l.split("\t")[1]) for l in open(rss_file) if "\t" in l] if os.path.exists(rss_file) else []
if rss:
    print(f"server peak RSS {max(rss) / 1024:.0f} MiB (largest of {len(rss)} sittings)")
print(f"encrypted accuracy {dec.get('accuracy')}; agreement with the simulation {agree}/{batch} = {100 * agree / batch:.2f} %")
PY

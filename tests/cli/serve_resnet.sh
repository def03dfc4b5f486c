#!/usr/bin/env bash
# A graph model (batched packing) through `hecnn serve`: the tiny CIFAR-shaped model of
# resnet_roles.sh at the insecure test preset; the service's scores are the local `hecnn model
# infer`'s, byte for byte, and decrypt with `hecnn model decrypt`. A running job is cancelled.
# Usage: serve_resnet.sh HECNN SOURCE_DIR
set -u
HECNN=${1:?usage: serve_resnet.sh HECNN SOURCE_DIR}
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/serve.sh"

python3 "$(dirname "$0")/lib/tiny_model.py" "$T"
run "$HECNN" model calibrate --model "$T/raw.hg" --data "$T/train.bin" --margin 1.5 --degree 7 --out "$T/m.hg"
K=$T/keys
run "$HECNN" model keygen --model "$T/m.hg" --batch 4 --out-dir "$K" --preset test
run "$HECNN" model encrypt --keys "$K" --model "$T/m.hg" --data "$T/test.bin" --offset 2 --out "$T/img.pbf"
run "$HECNN" model infer --keys "$K/server" --model "$T/m.hg" --in "$T/img.pbf" --out "$T/local.pbf"

export HECNN_TOKEN=$("$HECNN" serve token add owner --data "$T/d")
start_server "$T/d" --workers 1 || { summary; exit 1; }
KS=$("$HECNN" remote upload-keys --keys "$K" 2>"$T/err") && ok || bad "upload-keys: $(cat "$T/err")"
[ "$(ls "$T/d/keysets/$KS" | tr '\n' ' ')" = "boot.keys network.keys params.hecnn plan " ] && ok || bad "key set: $(ls "$T/d/keysets/$KS")"
expect 1 "400: a mnist-plain job needs a mnist key set" "$HECNN" remote submit --keyset "$KS" --kind mnist-plain --model "$T/m.hg" --in "$T/img.pbf"
J=$("$HECNN" remote submit --keyset "$KS" --kind resnet --model "$T/m.hg" --in "$T/img.pbf") && ok || bad "submit"
timeout 300 "$HECNN" remote wait "$J" --quiet >/dev/null 2>"$T/err" && ok || bad "wait: $(cat "$T/err")"
run "$HECNN" remote fetch "$J" --out "$T/remote.pbf"
cmp -s "$T/local.pbf" "$T/remote.pbf" && ok || bad "the service's scores differ from the local model infer's"
run "$HECNN" model decrypt --keys "$K" --model "$T/m.hg" --in "$T/remote.pbf" --record "$T/img.pbf.record" --json
grep -q '"images": 4' "$T/out" && ok || bad "decrypt: $(cat "$T/out")"

# cancel a running job: it stops at the next node
J2=$("$HECNN" remote submit --keyset "$KS" --kind resnet --model "$T/m.hg" --in "$T/img.pbf") && ok || bad "submit 2"
for _ in $(seq 300); do
    [ "$(job_state "$J2")" = running ] && break
    sleep 0.05
done
run "$HECNN" remote cancel "$J2"
for _ in $(seq 300); do
    [ "$(job_state "$J2")" = cancelled ] && break
    sleep 0.1
done
[ "$(job_state "$J2")" = cancelled ] && ok || bad "job 2 is $(job_state "$J2") after cancel"
expect 1 "409: the job is cancelled: no result" "$HECNN" remote fetch "$J2" --out "$T/x.pbf"
stop_server
summary

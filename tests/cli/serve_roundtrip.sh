#!/usr/bin/env bash
# The server role through `hecnn serve` and `hecnn remote`, against the local commands: keys
# uploaded (streamed: the server's memory does not grow by the keys' 200 MB), a job with the model
# in the clear gives byte for byte the scores of a local `hecnn infer`, a job with the provider's
# encrypted model decrypts to the right digits; status, cancel (nothing left to cancel: 409),
# delete; HTTPS with a self-signed certificate. 20 shipped digits in one batch of 32.
# Usage: serve_roundtrip.sh HECNN SOURCE_DIR
set -u
HECNN=${1:?usage: serve_roundtrip.sh HECNN SOURCE_DIR}
SRC=${2:?usage: serve_roundtrip.sh HECNN SOURCE_DIR}
M=$SRC/models
export HECNN_MODELS=$M
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/serve.sh"

# data owner and model provider, locally; the local server role for reference
run "$HECNN" keygen-mnist --out-dir "$T/k" --batch 32
run "$HECNN" encrypt-images --keys "$T/k" --count 20 --batch 32 --out "$T/img.ct"
run "$HECNN" encrypt-model --keys "$T/k" --batch 32 --out "$T/model.enc"
mkdir -p "$T/server" && cp "$T/k/params.hecnn" "$T/k/eval.keys" "$T/server/"
run "$HECNN" infer --keys "$T/server" --in "$T/img.ct" --model "$M/mnist_vr.hcnn" --out "$T/local.ct" --quiet

"$HECNN" serve token add owner --data "$T/d" > "$T/token" && ok || bad "token add"
start_server "$T/d" --workers 1 || { summary; exit 1; }
R=("$HECNN" remote --token-file "$T/token")
rss() { sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$SPID/status"; }
rss0=$(rss)
KS=$("$HECNN" remote upload-keys --keys "$T/k" --token-file "$T/token" 2>"$T/err") && ok || bad "upload-keys: $(cat "$T/err")"
rss1=$(rss)
keys_kb=$(($(stat -c %s "$T/k/eval.keys") / 1024))
[ $((rss1 - rss0)) -lt $((keys_kb / 4)) ] && ok || bad "the upload of $keys_kb kB grew the server's peak RSS from $rss0 to $rss1 kB"
[ ! -e "$T/d/keysets/$KS/secret.key" ] && [ ! -e "$T/d/keysets/$KS/public.key" ] && ok || bad "more than the server's keys uploaded: $(ls "$T/d/keysets/$KS")"

# model in the clear: the same bytes as the local infer
J=$("$HECNN" remote submit --token-file "$T/token" --keyset "$KS" --kind mnist-plain --model "$M/mnist_vr.hcnn" --in "$T/img.ct") && ok || bad "submit"
timeout 300 "$HECNN" remote wait "$J" --token-file "$T/token" --interval 0.2 >"$T/out" 2>"$T/err" && ok || bad "wait: $(cat "$T/err")"
grep -q '\[##############################\] 100%' "$T/err" && ok || bad "no progress bar: $(tail -c 300 "$T/err")"
run "$HECNN" remote fetch "$J" --token-file "$T/token" --out "$T/remote.ct"
cmp -s "$T/local.ct" "$T/remote.ct" && ok || bad "the service's scores differ from the local infer's"
run "$HECNN" decrypt-scores --keys "$T/k" --in "$T/remote.ct" --labels "$M/mnist-sample-64-labels-idx1-ubyte" --json --out "$T/s.json"
acc=$(sed -n 's/.*"correct": \([0-9]*\).*/\1/p' "$T/s.json")
[ -n "$acc" ] && [ "$acc" -ge 18 ] && ok || bad "only ${acc:-?}/20 digits right"
run "$HECNN" remote status "$J" --token-file "$T/token"
grep -q '"state": "done"' "$T/out" && grep -q '"progress": 1' "$T/out" && ok || bad "status: $(cat "$T/out")"
expect 1 "409: the job is done: nothing to cancel" "$HECNN" remote cancel "$J" --token-file "$T/token"

# the model encrypted by its provider
J2=$("$HECNN" remote submit --token-file "$T/token" --keyset "$KS" --kind mnist-encrypted --model "$T/model.enc" --in "$T/img.ct") && ok || bad "submit encrypted"
timeout 300 "$HECNN" remote wait "$J2" --token-file "$T/token" --quiet >/dev/null 2>"$T/err" && ok || bad "wait: $(cat "$T/err")"
run "$HECNN" remote fetch "$J2" --token-file "$T/token" --out "$T/remote2.ct"
run "$HECNN" decrypt-scores --keys "$T/k" --in "$T/remote2.ct" --labels "$M/mnist-sample-64-labels-idx1-ubyte" --json --out "$T/s2.json"
acc=$(sed -n 's/.*"correct": \([0-9]*\).*/\1/p' "$T/s2.json")
[ -n "$acc" ] && [ "$acc" -ge 18 ] && ok || bad "encrypted model: only ${acc:-?}/20 digits right"
# a job that fails says why
J3=$("$HECNN" remote submit --token-file "$T/token" --keyset "$KS" --kind mnist-plain --model "$M/mnist_vr.hcnn" --in "$T/k/params.hecnn") && ok || bad "submit bad input"
expect 1 "the job failed: .*cannot read images" timeout 120 "$HECNN" remote wait "$J3" --token-file "$T/token" --quiet
run "$HECNN" remote delete "$J3" --token-file "$T/token"
[ ! -e "$T/d/jobs/$J3" ] && ok || bad "a deleted job's files remain"
stop_server

# HTTPS (a self-signed certificate), the same store: the results are still there
if command -v openssl >/dev/null; then
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/tls.key" -out "$T/tls.crt" -days 1 -subj /CN=127.0.0.1 \
        -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1
    start_server "$T/d" --workers 0 --tls-cert "$T/tls.crt" --tls-key "$T/tls.key" || { summary; exit 1; }
    export HECNN_SERVER=https://127.0.0.1:$PORT
    run "$HECNN" remote fetch "$J" --token-file "$T/token" --out "$T/tls.ct" --cacert "$T/tls.crt"
    cmp -s "$T/local.ct" "$T/tls.ct" && ok || bad "scores over HTTPS differ"
    must_fail "certificate|SSL" "$HECNN" remote status "$J" --token-file "$T/token"
    stop_server
fi
summary

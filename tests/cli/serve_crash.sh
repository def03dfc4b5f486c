#!/usr/bin/env bash
# hecnn serve killed with SIGKILL: during an upload (its partial file is discarded at the next
# start, no key set is recorded), with a job queued and with a job running (both run again from
# their stored inputs after the restart, to the same scores), after jobs finished (their results
# stay fetchable). Half-made folders and temporary files are removed at start.
# Usage: serve_crash.sh HECNN SOURCE_DIR
set -u
HECNN=${1:?usage: serve_crash.sh HECNN SOURCE_DIR}
SRC=${2:?usage: serve_crash.sh HECNN SOURCE_DIR}
M=$SRC/models
export HECNN_MODELS=$M
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/serve.sh"

run "$HECNN" keygen-mnist --out-dir "$T/k" --batch 32 --mode plain
run "$HECNN" encrypt-images --keys "$T/k" --count 20 --batch 32 --out "$T/img.ct"
export HECNN_TOKEN=$("$HECNN" serve token add owner --data "$T/d")
start_server "$T/d" --workers 0 || { summary; exit 1; }

# killed during an upload
bundle "$T/keys.b" params.hecnn "$T/k/params.hecnn" eval.keys "$T/k/eval.keys"
http POST /v1/keysets --token "$HECNN_TOKEN" --ctype application/vnd.hecnn.bundle --body "$T/keys.b" --send 100000000 --hold 20 >/dev/null &
UP=$!
for _ in $(seq 300); do
    [ "$(du -sk "$T/d/tmp" | cut -f1)" -gt 20000 ] && break
    sleep 0.1
done
[ "$(du -sk "$T/d/tmp" | cut -f1)" -gt 20000 ] && ok || bad "the upload never reached the disk"
kill9_server
kill "$UP" 2>/dev/null
wait "$UP" 2>/dev/null
mkdir -p "$T/d/keysets/abc.tmp-123456" && echo x > "$T/d/keysets/abc.tmp-123456/eval.keys"
start_server "$T/d" --workers 0 || { summary; exit 1; }
[ -z "$(ls "$T/d/tmp")" ] && [ -z "$(ls "$T/d/keysets")" ] && ok || bad "leftovers after restart: $(ls "$T/d/tmp" "$T/d/keysets")"
http GET /v1/keysets --token "$HECNN_TOKEN" | grep -q '"keysets":\[\]' && ok || bad "a cut upload was recorded"

# killed with a job queued
KS=$("$HECNN" remote upload-keys --keys "$T/k") && ok || bad "upload-keys"
A=$("$HECNN" remote submit --keyset "$KS" --kind mnist-plain --model "$M/mnist_vr.hcnn" --in "$T/img.ct") && ok || bad "submit A"
kill9_server
start_server "$T/d" --workers 1 || { summary; exit 1; }
timeout 300 "$HECNN" remote wait "$A" --quiet >/dev/null 2>"$T/err" && ok || bad "job A after the restart: $(cat "$T/err")"
run "$HECNN" remote fetch "$A" --out "$T/a.ct"

# killed with a job running
B=$("$HECNN" remote submit --keyset "$KS" --kind mnist-plain --model "$M/mnist_vr.hcnn" --in "$T/img.ct") && ok || bad "submit B"
for _ in $(seq 300); do
    [ "$(job_state "$B")" = running ] && break
    sleep 0.1
done
sleep 2
[ "$(job_state "$B")" = running ] && ok || bad "job B is $(job_state "$B"), not running"
kill9_server
[ ! -e "$T/d/jobs/$B/result" ] && ok || bad "job B has a result before it ended"
echo partial > "$T/d/jobs/$B/result.tmp-XXXXXX"
start_server "$T/d" --workers 1 || { summary; exit 1; }
[ ! -e "$T/d/jobs/$B/result.tmp-XXXXXX" ] && ok || bad "a temporary result survived the restart"
timeout 300 "$HECNN" remote wait "$B" --quiet >/dev/null 2>"$T/err" && ok || bad "job B after the restart: $(cat "$T/err")"
run "$HECNN" remote fetch "$B" --out "$T/b.ct"
cmp -s "$T/a.ct" "$T/b.ct" && ok || bad "the rerun job's scores differ"

# killed after: the results are still there, intact
kill9_server
start_server "$T/d" --workers 1 || { summary; exit 1; }
for j in "$A" "$B"; do
    run "$HECNN" remote fetch "$j" --out "$T/again.ct"
    cmp -s "$T/a.ct" "$T/again.ct" && ok || bad "job $j's result changed across restarts"
done
run "$HECNN" decrypt-scores --keys "$T/k" --in "$T/b.ct" --labels "$M/mnist-sample-64-labels-idx1-ubyte" --json --out "$T/s.json"
acc=$(sed -n 's/.*"correct": \([0-9]*\).*/\1/p' "$T/s.json")
[ -n "$acc" ] && [ "$acc" -ge 18 ] && ok || bad "only ${acc:-?}/20 digits right"
grep -q "recovered: 1 queued jobs" "$T/serve.log" && ok || bad "no recovery line in the log"
stop_server
summary

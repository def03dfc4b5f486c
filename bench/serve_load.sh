#!/usr/bin/env bash
# The service under load with real inference (issue 11's "Load" target; docs/BENCHMARKS.md,
# "hecnn serve"): `hecnn serve` on 127.0.0.1 with a memory limit and a bounded queue; C concurrent
# clients (processes, each with its own token) each register the key set, wait for one another,
# then submit their share of J jobs through `hecnn remote`, retrying the queue's intended 429s with
# back-off (jittered, doubling, at most 8 s), and wait for, fetch and decrypt every result. Checks:
#  - every result is byte for byte the local run's on the same input file (`hecnn model infer` /
#    `hecnn infer`: the service runs the very command on the very files, and the server role is
#    deterministic), and decrypts (with the owner's secret key, unflooded) to the same scores and
#    classes as the local result; the inputs are K distinct encryptions, so a result handed to the
#    wrong job would not match;
#  - the server's peak RSS (VmHWM, /proc/PID/status) stays under --memory-limit;
#  - every HTTP answer is 2xx or an intended 429 (queue full): the server's own count by status
#    (hecnn_http_responses_total at /metrics) and every client call's; the server's 429s are the
#    ones the clients saw; all J jobs done, none failed; the server exits 0 on SIGTERM.
# Kinds: resnet (default): the tiny CIFAR-shaped graph model of the tests (tests/cli/lib/
# tiny_model.py) at the insecure test preset (N = 2^12), batch 4: about 2 s a job on one core, the
# cheapest real job the service runs. mnist: the MNIST network at its 128-bit parameters
# (N = 2^14), batch 32: about 30 s a job on one core (64 jobs on 2 cores: 16 minutes and more).
# Usage: bench/serve_load.sh HECNN [--clients 16] [--jobs 64] [--inputs 4] [--workers 4]
#   [--queue 8] [--memory-limit SIZE] [--kind resnet|mnist] [--timeout S] [--min-429 N] [--json]
# --jobs is the total (a multiple of --clients); --memory-limit defaults to 2560M (resnet: 2 jobs'
# estimates fit, not 3) or 2600M (mnist); --timeout bounds the client phase (default 900 s);
# --min-429 fails the run unless at least N submissions met a full queue; --json prints the summary
# as JSON on stdout (the report then goes to stderr). Exit status 0 only when every check passes.
# Threads: OMP_NUM_THREADS (default 1) for the local runs; the service runs each job on 1 thread.
set -euo pipefail
usage() { sed -n 's/^# Usage: //p; s/^#   /  /p' "$0" | head -2 >&2; exit 2; }
[ $# -ge 1 ] || usage
HECNN=$(realpath "$1")
shift
SRC=$(cd "$(dirname "$0")/.." && pwd)
CLIENTS=16 JOBS=64 INPUTS=4 WORKERS=4 QUEUE=8 MEMLIMIT='' KIND=resnet TIMEOUT=900 MIN429=0 JSON=0
while [ $# -gt 0 ]; do
    case $1 in
    --clients) CLIENTS=$2 ;;
    --jobs) JOBS=$2 ;;
    --inputs) INPUTS=$2 ;;
    --workers) WORKERS=$2 ;;
    --queue) QUEUE=$2 ;;
    --memory-limit) MEMLIMIT=$2 ;;
    --kind) KIND=$2 ;;
    --timeout) TIMEOUT=$2 ;;
    --min-429) MIN429=$2 ;;
    --json) JSON=1; shift; continue ;;
    *) usage ;;
    esac
    shift 2
done
[ "$KIND" = resnet ] || [ "$KIND" = mnist ] || usage
[ "$CLIENTS" -ge 1 ] && [ "$JOBS" -ge "$CLIENTS" ] && [ $((JOBS % CLIENTS)) -eq 0 ] && [ "$INPUTS" -ge 1 ] || usage
PER=$((JOBS / CLIENTS))
[ -n "$MEMLIMIT" ] || MEMLIMIT=$([ "$KIND" = resnet ] && echo 2560M || echo 2600M)
limit_kib() { # SIZE (512M, 2G, bytes) -> KiB
    local v=${1%[KkMmGg]} u=${1: -1}
    case $u in K | k) echo "$v" ;; M | m) echo $((v * 1024)) ;; G | g) echo $((v * 1048576)) ;; *) echo $(($1 / 1024)) ;; esac
}
LIMIT_KIB=$(limit_kib "$MEMLIMIT")
export HECNN_MODELS=$SRC/models OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OMP_WAIT_POLICY=passive
# with --json the report goes to stderr and only the JSON to stdout
if [ "$JSON" = 1 ]; then exec 3>&1 1>&2; else exec 3>/dev/null; fi
T=$(mktemp -d)
SPID='' SAMPLER=''
cleanup() {
    [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null
    [ -n "$SPID" ] && kill -9 "$SPID" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
now() { date +%s.%N; }
since() { awk -v a="$(now)" -v b="$1" 'BEGIN { printf "%.1f", a - b }'; }
say() { echo "serve_load: $*"; }
# q CMD...: run quietly (the test preset's notes), but show the errors of a failure
q() { "$@" >/dev/null 2>"$T/qerr" || { say "FAIL: $*: $(cat "$T/qerr")"; exit 1; }; }

# ---- the data owner's keys and inputs and the local reference results, once ----
t_setup=$(now)
H=$HECNN
if [ "$KIND" = resnet ]; then
    what="the tiny CIFAR-shaped graph model of the tests, preset test (N = 2^12, insecure), batch 4"
    python3 "$SRC/tests/cli/lib/tiny_model.py" "$T"
    q "$H" model calibrate --model "$T/raw.hg" --data "$T/train.bin" --margin 1.5 --degree 7 --out "$T/model"
    q "$H" model keygen --model "$T/model" --batch 4 --out-dir "$T/k" --preset test
    for ((k = 0; k < INPUTS; k++)); do # K encryptions (fresh randomness each) of 4 of the 8 test images
        q "$H" model encrypt --keys "$T/k" --model "$T/model" --data "$T/test.bin" --offset $((k % 5)) --out "$T/in$k" --record "$T/in$k.record"
        q "$H" model infer --keys "$T/k/server" --model "$T/model" --in "$T/in$k" --out "$T/local$k"
        q "$H" model decrypt --keys "$T/k" --model "$T/model" --in "$T/local$k" --record "$T/in$k.record" --json --out "$T/dec$k"
    done
    SERVE_KIND=resnet
else
    what="the MNIST network, 128-bit parameters (N = 2^14), batch 32, model in the clear"
    cp "$SRC/models/mnist_vr.hcnn" "$T/model"
    q "$H" keygen-mnist --out-dir "$T/k" --batch 32 --mode plain
    mkdir -p "$T/ks" && cp "$T/k/params.hecnn" "$T/k/eval.keys" "$T/ks/"
    for ((k = 0; k < INPUTS; k++)); do # K encryptions of 32 of the 64 shipped digits
        q "$H" encrypt-images --keys "$T/k" --count 32 --offset $((k * 8 % 33)) --batch 32 --out "$T/in$k" --record "$T/in$k.record"
        q "$H" infer --keys "$T/ks" --in "$T/in$k" --model "$T/model" --out "$T/local$k" --quiet
        q "$H" decrypt-scores --keys "$T/k" --in "$T/local$k" --record "$T/in$k.record" --no-flood --json --out "$T/dec$k"
    done
    SERVE_KIND=mnist-plain
fi
t_setup=$(since "$t_setup")
keys_mb=$(du -smL "$([ "$KIND" = resnet ] && echo "$T/k/server" || echo "$T/ks")" | cut -f1)

# ---- the service ----
for ((i = 0; i < CLIENTS; i++)); do
    echo "load$i $(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
done >"$T/tokens"
"$H" serve --data "$T/d" --port 0 --port-file "$T/port" --tokens "$T/tokens" --workers "$WORKERS" --threads 1 \
    --queue "$QUEUE" --memory-limit "$MEMLIMIT" >"$T/serve.out" 2>"$T/serve.log" &
SPID=$!
for _ in $(seq 300); do
    [ -s "$T/port" ] && break
    kill -0 "$SPID" 2>/dev/null || break
    sleep 0.1
done
[ -s "$T/port" ] || { say "FAIL: the server did not start: $(tail -5 "$T/serve.log")"; exit 1; }
PORT=$(cat "$T/port")
export HECNN_SERVER=http://127.0.0.1:$PORT
metrics() { # the service's /metrics (bash's /dev/tcp: no client to start)
    exec 5<>"/dev/tcp/127.0.0.1/$PORT" || return 1
    printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&5
    cat <&5
    exec 5<&-
}
metric() { awk -v k="$1" '$1 == k { print $2; exit }'; }
proc_kib() { sed -n "s/^$1:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$SPID/status" 2>/dev/null; }
# sampler: jobs running and memory reserved (the admission's view), the server's RSS
(
    while kill -0 "$SPID" 2>/dev/null; do
        m=$(metrics 2>/dev/null) || break
        echo "$(echo "$m" | metric hecnn_jobs_running) $(echo "$m" | metric hecnn_memory_reserved_bytes) $(proc_kib VmRSS)"
        sleep 0.25
    done >"$T/samples"
) &
SAMPLER=$!

say "kind $KIND: $what"
say "$CLIENTS clients x $PER jobs = $JOBS jobs, $INPUTS distinct inputs; hecnn serve --workers $WORKERS --threads 1 --queue $QUEUE --memory-limit $MEMLIMIT; key set $keys_mb MB, registered by every client; client phase bounded at $TIMEOUT s"
say "setup (keys, model, $INPUTS inputs and their local runs): $t_setup s"

# ---- the clients ----
DEADLINE=$(($(date +%s) + TIMEOUT))
# rcall DIR VERB ARGS...: one `hecnn remote` call; stdout passed on; "VERB STATUS" appended to
# DIR/calls (2xx on success, else the status the client reports, or ERR); DIR/last the status
rcall() {
    local dir=$1 verb=$2 code
    shift 2
    if "$H" remote "$verb" "$@" 2>"$dir/err"; then
        code=2xx
    else
        code=$(sed -n 's/.*server: \([0-9][0-9][0-9]\): .*/\1/p' "$dir/err" | head -1)
        if [ "$code" = 429 ] && grep -q 'the queue is full' "$dir/err"; then :; else
            echo "$verb: $(head -c 300 "$dir/err")" >>"$dir/errors"
        fi
        code=${code:-ERR}
    fi
    echo "$verb $code" >>"$dir/calls"
    echo "$code" >"$dir/last"
    [ "$code" = 2xx ]
}
client() {
    set +e
    local i=$1 dir=$T/c$1 ks j k id delay ids=()
    mkdir -p "$dir"
    export HECNN_TOKEN
    HECNN_TOKEN=$(sed -n "s/^load$i //p" "$T/tokens")
    ks=$(rcall "$dir" upload-keys --keys "$T/k") || { touch "$T/ready.$i"; return; }
    touch "$T/ready.$i"
    while [ "$(find "$T" -maxdepth 1 -name 'ready.*' | wc -l)" -lt "$CLIENTS" ]; do sleep 0.05; done
    for ((j = 0; j < PER; j++)); do
        k=$(((i + j) % INPUTS)) delay=1 id=
        while ! id=$(rcall "$dir" submit --keyset "$ks" --kind "$SERVE_KIND" --model "$T/model" --in "$T/in$k"); do
            [ "$(cat "$dir/last")" = 429 ] && [ "$(date +%s)" -lt "$DEADLINE" ] || break
            sleep "$(awk -v d="$delay" -v r="$RANDOM" 'BEGIN { printf "%.2f", d * (0.5 + r / 32768) }')"
            delay=$((delay < 8 ? delay * 2 : 8))
        done
        [ -n "$id" ] || { echo "$i $j $k - not-submitted" >>"$dir/results"; continue; }
        ids[j]=$id
    done
    for ((j = 0; j < PER; j++)); do
        id=${ids[j]:-}
        [ -n "$id" ] || continue
        k=$(((i + j) % INPUTS))
        local left=$((DEADLINE - $(date +%s)))
        if ! rcall "$dir" wait "$id" --quiet --interval 0.5 --timeout $((left > 1 ? left : 1)) >/dev/null; then
            echo "$i $j $k $id not-done" >>"$dir/results"
            continue
        fi
        if ! rcall "$dir" fetch "$id" --out "$dir/r$j"; then
            echo "$i $j $k $id not-fetched" >>"$dir/results"
            continue
        fi
        local verdict=ok
        cmp -s "$dir/r$j" "$T/local$k" || verdict=ciphertext-differs
        if [ "$KIND" = resnet ]; then
            "$H" model decrypt --keys "$T/k" --model "$T/model" --in "$dir/r$j" --record "$T/in$k.record" --json --out "$dir/d$j" 2>"$dir/decrypt.err"
        else
            "$H" decrypt-scores --keys "$T/k" --in "$dir/r$j" --record "$T/in$k.record" --no-flood --json --out "$dir/d$j" 2>"$dir/decrypt.err"
        fi
        cmp -s "$dir/d$j" "$T/dec$k" || verdict="$verdict,decryption-differs"
        rcall "$dir" delete "$id" >/dev/null || verdict="$verdict,not-deleted"
        echo "$i $j $k $id $verdict" >>"$dir/results"
    done
}
t0=$(now)
cpids=()
for ((i = 0; i < CLIENTS; i++)); do
    client "$i" &
    cpids+=($!)
done
for p in "${cpids[@]}"; do wait "$p" || true; done
wall=$(since "$t0")

# ---- the server's view, then stop it ----
m=$(metrics)
hwm=$(proc_kib VmHWM)
kill "$SAMPLER" 2>/dev/null || true
wait "$SAMPLER" 2>/dev/null || true
SAMPLER=
kill "$SPID"
srv_rc=0
wait "$SPID" || srv_rc=$?
SPID=

# ---- the verdict ----
fails=()
cat "$T"/c*/results >"$T/results" 2>/dev/null || true
cat "$T"/c*/calls >"$T/calls" 2>/dev/null || true
n_ok=$(awk '$5 == "ok"' "$T/results" | wc -l)
[ "$n_ok" -eq "$JOBS" ] || fails+=("$((JOBS - n_ok)) of $JOBS jobs not ok: $(awk '$5 != "ok" { print "client " $1 " job " $2 ": " $5 }' "$T/results" | head -5 | paste -sd';')")
c429=$(awk '$2 == 429' "$T/calls" | wc -l)
c2xx=$(awk '$2 == "2xx"' "$T/calls" | wc -l)
cother=$(awk '$2 != 429 && $2 != "2xx"' "$T/calls" | wc -l)
[ "$cother" -eq 0 ] || fails+=("$cother client calls failed otherwise: $(cat "$T"/c*/errors 2>/dev/null | head -3 | paste -sd';')")
bad429=$(cat "$T"/c*/errors 2>/dev/null | grep -c ': 429: ' || true)
[ "$bad429" -eq 0 ] || fails+=("$bad429 answers 429 not for a full queue")
codes=$(echo "$m" | sed -n 's/^hecnn_http_responses_total{code="\([0-9]*\)"} \([0-9]*\).*/\1 \2/p')
s2xx=$(echo "$codes" | awk '$1 >= 200 && $1 < 300 { n += $2 } END { print n + 0 }')
s429=$(echo "$codes" | awk '$1 == 429 { n += $2 } END { print n + 0 }')
sother=$(echo "$codes" | awk '($1 < 200 || $1 >= 300) && $1 != 429 { printf "%s%s x %s", sep, $1, $2; sep = ", " }')
[ -z "$sother" ] || fails+=("the server answered $sother")
[ "$s429" -eq "$c429" ] || fails+=("the server sent $s429 answers 429, the clients saw $c429")
[ "$c429" -ge "$MIN429" ] || fails+=("only $c429 answers 429 (wanted at least $MIN429: the queue was never full)")
done_n=$(echo "$m" | metric 'hecnn_jobs_finished_total{state="done"}')
failed_n=$(echo "$m" | metric 'hecnn_jobs_finished_total{state="failed"}')
[ "${done_n:-0}" -eq "$JOBS" ] && [ "${failed_n:-0}" -eq 0 ] || fails+=("the server finished ${done_n:-?} jobs done, ${failed_n:-?} failed")
[ -n "$hwm" ] && [ "$hwm" -lt "$LIMIT_KIB" ] || fails+=("the server's peak RSS ${hwm:-?} KiB is not under the limit $LIMIT_KIB KiB")
[ "$srv_rc" -eq 0 ] || fails+=("the server exited with status $srv_rc on SIGTERM: $(grep -v '^20..-' "$T/serve.log" | tail -5 | paste -sd';')")
max_running=$(awk '$1 > m { m = $1 } END { print m + 0 }' "$T/samples")
max_reserved=$(awk '$2 > m { m = $2 } END { printf "%d", m / 1048576 }' "$T/samples")
estimate=$(sed -n '/memory estimate/{s/.*memory estimate \([0-9]*\) MiB.*/\1/p;q}' "$T/serve.log")
job_s=$(echo "$m" | metric hecnn_job_seconds_total)
# the commands' own summary lines (the service's stdout): inference and key loading per job
per_job=$(sed -n 's/^inferred .* in \([0-9.]*\) s = .*/\1/p' "$T/serve.out" |
    awk '{ s += $1; if (NR == 1 || $1 < lo) lo = $1; if ($1 > hi) hi = $1 } END { if (NR) printf "%d runs, %.2f s mean (%.2f..%.2f)", NR, s / NR, lo, hi }')
keys_s=$(sed -n 's/.*keys loaded in \([0-9.]*\) s.*/\1/p' "$T/serve.out" | awk '{ s += $1 } END { if (NR) printf "%.2f", s / NR }')
cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(getconf _NPROCESSORS_ONLN) cores"
commit=$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo unknown)
load=$(cut -d' ' -f1-3 /proc/loadavg)

say "jobs ok: $n_ok of $JOBS (each done, fetched, byte-identical to the local run's result on the same input, and decrypting to the same scores and classes)"
say "HTTP: clients $c2xx calls 2xx, $c429 answers 429 (queue full, retried), $cother other; server answers: $s2xx 2xx, $s429 429${sother:+, $sother}"
say "wall: $wall s for the client phase (key uploads, submissions with retries, waits, fetches, decryptions); jobs' wall time in the service ${job_s:-?} s in all (whole seconds each)"
say "the command inside the service: inference ${per_job:-?}${keys_s:+, keys loaded in $keys_s s mean}"
say "server peak RSS (VmHWM) $((hwm / 1024)) MiB, limit $((LIMIT_KIB / 1024)) MiB; memory estimate ${estimate:-?} MiB a job; at most $max_running jobs running at once ($max_reserved MiB reserved)"
say "cpu: $cpu, load average $load; OMP threads per job 1; commit $commit"
status=PASS
[ ${#fails[@]} -eq 0 ] || status=FAIL
for f in "${fails[@]}"; do say "FAIL: $f"; done
say "$status"
jstr() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"; }
{
    printf '{"status": %s, "kind": %s, "clients": %d, "jobs": %d, "inputs": %d, "workers": %d, "queue": %d, ' \
        "$(jstr $status)" "$(jstr $KIND)" "$CLIENTS" "$JOBS" "$INPUTS" "$WORKERS" "$QUEUE"
    printf '"jobs_ok": %d, "http_429": %d, "client_calls_2xx": %d, "client_calls_other": %d, "server_2xx": %d, "server_429": %d, ' \
        "$n_ok" "$c429" "$c2xx" "$cother" "$s2xx" "$s429"
    printf '"wall_s": %s, "setup_s": %s, "job_seconds": %s, "inference": %s, "peak_rss_kib": %d, "memory_limit_kib": %d, "estimate_mib": %s, ' \
        "$wall" "$t_setup" "${job_s:-0}" "$(jstr "${per_job:-}")" "${hwm:-0}" "$LIMIT_KIB" "${estimate:-null}"
    printf '"max_running": %d, "cpu": %s, "load": %s, "commit": %s, "failures": [' "$max_running" "$(jstr "$cpu")" "$(jstr "$load")" "$(jstr "$commit")"
    sep=
    for f in "${fails[@]}"; do printf '%s%s' "$sep" "$(jstr "$f")"; sep=', '; done
    printf ']}\n'
} >&3
[ "$status" = PASS ]

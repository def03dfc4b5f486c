#!/usr/bin/env bash
# The service's cost over a local run, on loopback (docs/BENCHMARKS.md, "hecnn serve"):
#  1. one MNIST batch of 256 images (plaintext model): `hecnn infer` locally, then through
#     `hecnn serve` (upload-keys, submit + wait + fetch): wall times, the overhead, and the server's
#     peak RSS before and after the key upload (uploads are streamed: it should not grow by the keys);
#  2. 16 concurrent clients against the HTTP layer (a --workers 0 service, so that no inference
#     competes): each submits jobs (the same 256-image ciphertext file) and polls their status;
#     submissions per second and the latency of status requests (median, 99th percentile).
# Usage: bench/serve_overhead.sh HECNN [MNIST_IMAGES_IDX]   (default: ../shared/data/mnist, else
# the 64 shipped digits in a batch of 256). Threads: OMP_NUM_THREADS (default 1).
set -euo pipefail
HECNN=$(realpath "${1:?usage: serve_overhead.sh HECNN [IMAGES]}")
SRC=$(cd "$(dirname "$0")/.." && pwd)
IMAGES=${2:-$SRC/../shared/data/mnist/t10k-images-idx3-ubyte.gz}
export HECNN_MODELS=$SRC/models OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OMP_WAIT_POLICY=passive
T=$(mktemp -d)
SPID=
trap '[ -n "$SPID" ] && kill "$SPID" 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
now() { date +%s.%N; }
since() { awk -v a="$(now)" -v b="$1" 'BEGIN { printf "%.3f", a - b }'; }
img=()
[ -f "$IMAGES" ] && img=(--images "$IMAGES")
"$HECNN" keygen-mnist --out-dir "$T/k" --batch 256 --mode plain >/dev/null
"$HECNN" encrypt-images --keys "$T/k" "${img[@]}" --count $([ ${#img[@]} -gt 0 ] && echo 256 || echo 64) --batch 256 --out "$T/img.ct" >/dev/null
t0=$(now)
"$HECNN" infer --keys "$T/k" --in "$T/img.ct" --model "$SRC/models/mnist_vr.hcnn" --out "$T/local.ct" --quiet >"$T/local.out"
t_local=$(since $t0)
# the command's own inference time (its summary line), locally and inside the service
run_s() { sed -n 's/^inferred .* in \([0-9.]*\) s = .*/\1/p' "$1" | tail -1; }

export HECNN_TOKEN=$("$HECNN" serve token add bench --data "$T/d")
start() {
    rm -f "$T/port"
    "$HECNN" serve --data "$T/d" --port 0 --port-file "$T/port" "$@" 2>>"$T/serve.log" >>"$T/serve.out" &
    SPID=$!
    while [ ! -s "$T/port" ]; do sleep 0.05; done
    export HECNN_SERVER=http://127.0.0.1:$(cat "$T/port")
}
hwm() { sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$SPID/status"; }
start --workers 1
rss0=$(hwm)
t0=$(now)
KS=$("$HECNN" remote upload-keys --keys "$T/k")
t_upload=$(since $t0)
rss1=$(hwm)
t0=$(now)
J=$("$HECNN" remote submit --keyset "$KS" --kind mnist-plain --model "$SRC/models/mnist_vr.hcnn" --in "$T/img.ct")
t_submit=$(since $t0)
"$HECNN" remote wait "$J" --quiet --interval 0.1 >/dev/null
t_wait=$(since $t0)
"$HECNN" remote fetch "$J" --out "$T/remote.ct"
t_remote=$(since $t0)
cmp -s "$T/local.ct" "$T/remote.ct" && same=yes || same=NO
kill "$SPID"; wait "$SPID" 2>/dev/null || true; SPID=
inf_local=$(run_s "$T/local.out")
inf_server=$(run_s "$T/serve.out")
echo "local: $(cat "$T/local.out")"
keys_mb=$(($(stat -c %s "$T/k/eval.keys") / 1048576))
printf 'batch of 256 (%s): local infer %.2f s; service submit %.2f s, submit..done %.2f s, submit..fetched %.2f s: overhead %.2f s (%.1f %%); scores identical: %s\n' \
    "$([ ${#img[@]} -gt 0 ] && echo 256 images || echo 64 images)" "$t_local" "$t_submit" "$t_wait" "$t_remote" \
    "$(awk -v a="$t_remote" -v b="$t_local" 'BEGIN { print a - b }')" "$(awk -v a="$t_remote" -v b="$t_local" 'BEGIN { print 100 * (a - b) / b }')" "$same"
printf 'the command itself (its summary line): %.2f s locally, %.2f s in the service; service overhead (submit..fetched minus the in-service command): %.2f s\n' \
    "$inf_local" "$inf_server" "$(awk -v a="$t_remote" -v b="$inf_server" 'BEGIN { print a - b }')"
printf 'key upload: %d MiB in %.2f s; server peak RSS %d -> %d MiB\n' "$keys_mb" "$t_upload" $((rss0 / 1024)) $((rss1 / 1024))

# 16 clients against the HTTP layer
start --workers 0 --queue 100000
python3 - "$(cat "$T/port")" "$HECNN_TOKEN" "$KS" "$T/img.ct" "$SRC/models/mnist_vr.hcnn" <<'PY'
import http.client, struct, sys, threading, time
port, token, ks, img, model = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
def member(name, data): return bytes([len(name)]) + name.encode() + struct.pack("<Q", len(data)) + data
body = b"HECNNBD1" + member("model", open(model, "rb").read()) + member("input", open(img, "rb").read()) + b"\0"
H = {"Authorization": "Bearer " + token}
CLIENTS, JOBS, POLLS = 16, 4, 50
subs, lat, errors = [], [], []
lock = threading.Lock()
def client():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    ids = []
    for _ in range(JOBS):
        t = time.perf_counter()
        c.request("POST", f"/v1/jobs?keyset={ks}&kind=mnist-plain", body, dict(H, **{"Content-Type": "application/vnd.hecnn.bundle"}))
        r = c.getresponse(); d = r.read()
        with lock: subs.append(time.perf_counter() - t)
        if r.status != 202: errors.append(r.status); continue
        ids.append(d.split(b'"id":"')[1][:32].decode())
    for i in range(POLLS):
        t = time.perf_counter()
        c.request("GET", "/v1/jobs/" + ids[i % len(ids)], headers=H)
        r = c.getresponse(); r.read()
        with lock: lat.append(time.perf_counter() - t)
        if r.status != 200: errors.append(r.status)
    for j in ids:
        c.request("DELETE", "/v1/jobs/" + j, headers=H); c.getresponse().read()
t0 = time.perf_counter()
th = [threading.Thread(target=client) for _ in range(CLIENTS)]
[t.start() for t in th]; [t.join() for t in th]
wall = time.perf_counter() - t0
subs.sort(); lat.sort()
q = lambda v, p: v[min(len(v) - 1, int(p * len(v)))] * 1000
print(f"16 clients: {len(subs)} submissions of {len(body) / 1e6:.1f} MB ({len(subs) / sum(subs) * CLIENTS:.1f}/s aggregate; median {q(subs, .5):.0f} ms, "
      f"p99 {q(subs, .99):.0f} ms), {len(lat)} status requests (median {q(lat, .5):.1f} ms, p99 {q(lat, .99):.1f} ms), "
      f"{len(errors)} errors, {wall:.1f} s in all")
PY
echo "cpu: $(sed -n "s/^model name[[:space:]]*: //p" /proc/cpuinfo | head -1), $(getconf _NPROCESSORS_ONLN) cores, load average $(cut -d" " -f1-3 /proc/loadavg); OMP_NUM_THREADS=$OMP_NUM_THREADS; commit $(git -C "$SRC" rev-parse --short HEAD)"

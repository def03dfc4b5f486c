# Shared by tests/cli/serve_*.sh (after common.sh): a `hecnn serve` on 127.0.0.1 at a free port,
# stopped when the script ends. start_server DATA [OPTIONS...] sets SPID, PORT and HECNN_SERVER.
SPID=
trap 'stop_server >/dev/null 2>&1; rm -rf "$T"' EXIT
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OMP_WAIT_POLICY=passive
start_server() {
    local data=$1
    shift
    rm -f "$T/port"
    "$HECNN" serve --data "$data" --port 0 --port-file "$T/port" "$@" >>"$T/serve.log" 2>&1 &
    SPID=$!
    for _ in $(seq 200); do
        [ -s "$T/port" ] && break
        kill -0 "$SPID" 2>/dev/null || break
        sleep 0.1
    done
    PORT=$(cat "$T/port" 2>/dev/null)
    [ -n "$PORT" ] || { bad "the server did not start: $(tail -5 "$T/serve.log")"; return 1; }
    export HECNN_SERVER=http://127.0.0.1:$PORT
}
# stop_server: SIGTERM; the service must exit 0 (under ASan: no leak, no error report)
stop_server() {
    [ -n "$SPID" ] || return 0
    kill "$SPID" 2>/dev/null
    timeout 60 tail --pid="$SPID" -f /dev/null 2>/dev/null
    kill -9 "$SPID" 2>/dev/null
    wait "$SPID" 2>/dev/null
    local rc=$?
    SPID=
    [ $rc -eq 0 ] && ok || bad "the service exited with status $rc: $(grep -v '^20..-' "$T/serve.log" | tail -20)"
}
kill9_server() {
    kill -9 "$SPID" 2>/dev/null
    wait "$SPID" 2>/dev/null
    SPID=
}
# http METHOD PATH [options of lib/http.py]: prints "STATUS BODY" on stdout
http() { python3 "$(dirname "${BASH_SOURCE[0]}")/http.py" "$PORT" "$@"; }
# status_is WANT METHOD PATH [...]: the response's status must be WANT
status_is() {
    local want=$1
    shift
    local got
    got=$(http "$@")
    [ "${got%% *}" = "$want" ] && ok || bad "$* -> $got (want $want)"
}
# bundle OUT NAME FILE [NAME FILE...]: an upload bundle (docs/SERVER.md)
bundle() {
    python3 - "$@" <<'PY'
import struct, sys
out, args = sys.argv[1], sys.argv[2:]
with open(out, "wb") as f:
    f.write(b"HECNNBD1")
    for name, path in zip(args[0::2], args[1::2]):
        data = open(path, "rb").read()
        f.write(bytes([len(name)]) + name.encode() + struct.pack("<Q", len(data)) + data)
    f.write(b"\0")
PY
}
# job_state ID: the job's state from the service
job_state() { "$HECNN" remote status "$1" 2>/dev/null | sed -n 's/.*"state": "\([a-z]*\)".*/\1/p'; }

#!/usr/bin/env bash
# Commands that hold a secret key turn core dumps off before touching any file; a command that holds
# none leaves the limit alone. Each reads its parameter file from a FIFO, so it blocks in open() after
# its first statements, and its core limit is read from /proc meanwhile.
# Usage: secrets_core.sh HECNN SOURCE_DIR
set -u
HECNN=${1:?usage: secrets_core.sh HECNN SOURCE_DIR}
. "$(dirname "$0")/lib/common.sh"
if [ "$(ulimit -Hc)" = 0 ]; then
    echo "core dumps are off for this shell already: nothing to observe"
    summary
    exit
fi
ulimit -c unlimited 2>/dev/null || ulimit -c "$(ulimit -Hc)"
# an AddressSanitizer build turns core dumps off by itself unless told not to
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}disable_coredump=0"
run "$HECNN" params --preset n13 --out "$T/params.hecnn"

# core_limit WANT CMD...: CMD (with FIFO $T/fifo as its parameter file) runs with core limit WANT
core_limit() {
    local want=$1
    shift
    rm -f "$T/fifo"
    mkfifo "$T/fifo"
    "$@" >"$T/out" 2>"$T/err" &
    local pid=$! i state=""
    for i in $(seq 200); do # until it waits for the FIFO's writer (10 s at most)
        state=$(cat "/proc/$pid/wchan" 2>/dev/null) || break
        [ "$state" = wait_for_partner ] && break
        sleep 0.05
    done
    local limit
    limit=$(awk '/^Max core file size/ {print $5}' "/proc/$pid/limits" 2>/dev/null)
    timeout 10 cp "$T/params.hecnn" "$T/fifo" 2>/dev/null
    wait "$pid" 2>/dev/null
    if [ "$state" != wait_for_partner ]; then bad "never opened its parameter file: $*"; return; fi
    [ "$limit" = "$want" ] && ok || bad "core limit '$limit', want '$want': $*"
}
core_limit 0 "$HECNN" keygen --params "$T/fifo" --out-dir "$T/k"
core_limit 0 "$HECNN" encrypt --params "$T/fifo" --secret-key "$T/k/secret.key" --in /dev/null --out "$T/ct"
core_limit 0 "$HECNN" decrypt --params "$T/fifo" --secret-key "$T/k/secret.key" --in "$T/ct" --out "$T/v"
core_limit 0 "$HECNN" encrypt-images --params "$T/fifo" --secret-key "$T/k/secret.key" --out "$T/img"
core_limit 0 "$HECNN" decrypt-scores --params "$T/fifo" --secret-key "$T/k/secret.key" --in "$T/img"
# the control: no secret, no change
core_limit unlimited "$HECNN" params --params "$T/fifo"
summary

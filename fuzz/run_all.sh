#!/usr/bin/env bash
# Run every loader harness for SECONDS (default 30) from a build directory that holds them.
# Writes corpus/<name>/ and fuzz-<name>.log there; exits non-zero if any harness failed.
set -u
secs=${1:-30}
status=0
for h in params plaintext ciphertext secret_key public_key switching_key eval_keys graph; do
    bin=./fuzz_$h
    [ -x "$bin" ] || { echo "missing $bin (build it first)" >&2; status=1; continue; }
    mkdir -p "corpus/$h" "seeds/$h"
    HECNN_FUZZ_SEED_DIR="seeds/$h" "$bin" -runs=0 "seeds/$h" >/dev/null 2>&1
    if "$bin" -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=4096 "corpus/$h" "seeds/$h" >"fuzz-$h.log" 2>&1; then
        echo "$h: ok, $(grep -o 'number_of_executed_units: [0-9]*' "fuzz-$h.log" | grep -o '[0-9]*') runs"
    else
        echo "$h: FAILED (see fuzz-$h.log)"
        status=1
    fi
done
exit $status

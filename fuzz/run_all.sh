#!/usr/bin/env bash
# Run every harness (fuzz/harnesses.txt) for SECONDS each (default 30) from a build directory that
# holds them: over the generated seeds, the committed corpus and corpus/<name>/ (which grows there).
# Writes fuzz-<name>.log; exits non-zero if any harness failed. fuzz/smoke.sh is the test command's
# shorter run.
set -u
secs=${1:-30}
root=$(cd "$(dirname "$0")/.." && pwd)
# UBSan reports are recoverable in clang's default build: stop at the first one (known ones are
# listed in fuzz/ubsan.supp).
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$root/fuzz/ubsan.supp"
source "$root/fuzz/len_flag.sh"
status=0
while read -r h; do
    bin=./fuzz_$h
    [ -x "$bin" ] || { echo "missing $bin (build it first)" >&2; status=1; continue; }
    mkdir -p "corpus/$h" "seeds/$h"
    HECNN_FUZZ_SEED_DIR="seeds/$h" "$bin" -runs=0 "seeds/$h" >/dev/null 2>&1
    len=$(len_flag "seeds/$h" "$root/fuzz/corpus/$h")
    if "$bin" -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=4096 $len "corpus/$h" "seeds/$h" "$root/fuzz/corpus/$h" >"fuzz-$h.log" 2>&1; then
        echo "$h: ok, $(grep -o 'number_of_executed_units: [0-9]*' "fuzz-$h.log" | grep -o '[0-9]*') runs"
    else
        echo "$h: FAILED (see fuzz-$h.log)"
        status=1
    fi
done < "$root/fuzz/harnesses.txt"
exit $status

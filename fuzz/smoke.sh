#!/usr/bin/env bash
# Smoke run of every harness (fuzz/harnesses.txt) for about TOTAL seconds in all (default 60), from
# the build directory BUILD that holds them (see fuzz/README.md): each harness first writes its
# generated seeds (HECNN_FUZZ_SEED_DIR; not encrypted_model), then fuzzes over those and the committed corpus
# fuzz/corpus/<name>/ (read only: new inputs go to BUILD/fuzz-work/<name>/). Prints one line per
# harness; exits non-zero if any harness is missing or finds anything (crash, sanitizer report,
# leak, timeout, out of memory). Logs: BUILD/fuzz-<name>.log.
set -u
build=${1:?usage: fuzz/smoke.sh BUILD [TOTAL_SECONDS]}
total=${2:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$build" || exit 1
mapfile -t names < "$root/fuzz/harnesses.txt"
each=$(( total / ${#names[@]} ))
(( each < 2 )) && each=2
# UBSan reports are recoverable in clang's default build: stop at the first one (known ones are
# listed in fuzz/ubsan.supp).
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$root/fuzz/ubsan.supp"
source "$root/fuzz/len_flag.sh"
status=0
for src in "$root"/fuzz/fuzz_*.c; do
    n=$(basename "$src" .c)
    grep -qx "${n#fuzz_}" "$root/fuzz/harnesses.txt" || { echo "fuzz ${n#fuzz_}: NOT LISTED in fuzz/harnesses.txt"; status=1; }
done
for h in "${names[@]}"; do
    bin=./fuzz_$h
    if [[ ! -x $bin ]]; then echo "fuzz $h: MISSING $bin"; status=1; continue; fi
    rm -rf "fuzz-work/$h" "fuzz-seeds/$h"
    mkdir -p "fuzz-work/$h" "fuzz-seeds/$h"
    # the encrypted model's generator encrypts a whole model (seconds): its committed head is enough
    [[ $h == encrypted_model ]] || HECNN_FUZZ_SEED_DIR="fuzz-seeds/$h" "$bin" -runs=0 "fuzz-seeds/$h" >/dev/null 2>&1
    corpus=("$root/fuzz/corpus/$h")
    [[ -d ${corpus[0]} ]] || corpus=()
    len=$(len_flag "fuzz-seeds/$h" "${corpus[@]}")
    if "$bin" -max_total_time="$each" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 $len \
            "fuzz-work/$h" "fuzz-seeds/$h" "${corpus[@]}" >"fuzz-$h.log" 2>&1; then
        runs=$(grep -o 'number_of_executed_units: [0-9]*' "fuzz-$h.log" | grep -o '[0-9]*$')
        echo "fuzz $h: ok, ${runs:-?} runs in ${each} s, no finding"
    else
        echo "fuzz $h: FAILED (log: $build/fuzz-$h.log)"
        grep -m3 -E 'ERROR|invariant|SUMMARY' "fuzz-$h.log" | sed 's/^/    /'
        status=1
    fi
done
exit $status

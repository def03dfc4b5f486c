#!/usr/bin/env bash
# The issue's long run of one harness: RUNS executions in all (default 10^7) split over JOBS
# processes (default 1; each runs RUNS / JOBS), from the build directory BUILD that holds the
# harnesses (see fuzz/README.md), over the generated seeds, the committed corpus and
# BUILD/long-work/<name>/ (which grows). Then merges (libFuzzer -merge=1) what the run found over the
# seeds and the committed corpus into BUILD/long-found/<name>/found-<sha1 prefix>: the candidates for
# fuzz/corpus/<name>/. Prints one line: executions, seconds, coverage, result. Logs:
# BUILD/long-<name>[-<job>].log. Exits non-zero on a finding (the crashing input is in BUILD).
set -u
build=${1:?usage: fuzz/long_run.sh BUILD HARNESS [RUNS] [JOBS]}
h=${2:?usage: fuzz/long_run.sh BUILD HARNESS [RUNS] [JOBS]}
runs=${3:-10000000}
jobs=${4:-1}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$build" || exit 1
bin=./fuzz_$h
[[ -x $bin ]] || { echo "long run $h: MISSING $bin (build it first)" >&2; exit 1; }
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$root/fuzz/ubsan.supp"
mkdir -p "long-work/$h" "long-seeds/$h"
HECNN_FUZZ_SEED_DIR="long-seeds/$h" "$bin" -runs=0 "long-seeds/$h" >/dev/null 2>&1
source "$root/fuzz/len_flag.sh"
len=$(len_flag "long-seeds/$h" "$root/fuzz/corpus/$h")
start=$(date +%s)
status=0
for ((j = 0; j < jobs; j++)); do
    log=long-$h.log
    ((jobs > 1)) && log=long-$h-$j.log
    "$bin" -runs=$((runs / jobs)) -print_final_stats=1 -rss_limit_mb=4096 $len \
        "long-work/$h" "long-seeds/$h" "$root/fuzz/corpus/$h" >"$log" 2>&1 &
done
for ((j = 0; j < jobs; j++)); do wait -n || status=1; done
secs=$(($(date +%s) - start))
logs=(long-"$h"*.log)
executed=$(cat "${logs[@]}" | grep -o 'number_of_executed_units: [0-9]*' | awk '{s += $2} END {print s + 0}')
cov=$(grep -h -E '^#[0-9]+.*(DONE|INITED)' "${logs[@]}" | tail -n 1 | grep -o 'cov: [0-9]* ft: [0-9]* corp: [0-9]*')
if ((status)); then
    echo "long run $h: FINDING after $executed executions in $secs s (logs: $build/long-$h*.log)"
    exit 1
fi
# what the run added over the seeds and the committed corpus
rm -rf "long-merge/$h" "long-found/$h"
mkdir -p "long-merge/$h" "long-found/$h"
cp "long-seeds/$h"/* "$root/fuzz/corpus/$h"/* "long-merge/$h"/ 2>/dev/null
before=$(ls "long-merge/$h" | sort)
"$bin" -merge=1 -rss_limit_mb=4096 $len "long-merge/$h" "long-work/$h" >"long-merge-$h.log" 2>&1
comm -13 <(echo "$before") <(ls "long-merge/$h" | sort) | while read -r f; do
    cp "long-merge/$h/$f" "long-found/$h/found-$(sha1sum <"long-merge/$h/$f" | cut -c1-16)"
done
found=$(ls "long-found/$h" | wc -l)
echo "long run $h: $executed executions in $secs s, $cov, no finding; $found new inputs in $build/long-found/$h"

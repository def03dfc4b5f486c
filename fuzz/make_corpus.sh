#!/usr/bin/env bash
# Regenerates the committed seed corpus fuzz/corpus/<name>/ from the harnesses' own generators
# (HECNN_FUZZ_SEED_DIR, see each fuzz_*.c), using the harnesses built in BUILD. Objects larger than
# 1 MB are left out (the float64 MNIST model: fuzz/smoke.sh and run_all.sh generate it at each run).
# Inputs a long run found that add coverage (found-*, see fuzz/README.md) are kept.
set -eu
build=${1:?usage: fuzz/make_corpus.sh BUILD}
root=$(cd "$(dirname "$0")/.." && pwd)
while read -r h; do
    dir=$root/fuzz/corpus/$h
    mkdir -p "$dir"
    find "$dir" -type f ! -name 'found-*' -delete
    HECNN_FUZZ_SEED_DIR="$dir" "$build/fuzz_$h" -runs=0 "$dir" >/dev/null 2>&1
    find "$dir" -type f -size +1M -delete
    echo "$h: $(ls "$dir" | wc -l) seeds, $(du -sk "$dir" | cut -f1) KiB"
done < "$root/fuzz/harnesses.txt"

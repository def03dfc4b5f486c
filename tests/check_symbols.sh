#!/usr/bin/env bash
# Every symbol the shared library exports carries a public prefix (ckks_, hecnn_); everything else
# stays hidden. Usage: check_symbols.sh path/to/libhecnn.so
set -euo pipefail
lib=$1
exported=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ {print $3}')
[[ -n "$exported" ]] || { echo "no exported symbols found in $lib"; exit 1; }
# .gomp_critical_user_* are the locks GCC emits for named OpenMP critical sections.
bad=$(grep -Ev '^(ckks_|hecnn_|\.gomp_critical_user_|_init$|_fini$|_edata$|_end$|__bss_start$)' <<<"$exported" || true)
count=$(wc -l <<<"$exported")
if [[ -n "$bad" ]]; then
  echo "unprefixed exported symbols:"
  echo "$bad"
  echo "0 passed, 1 failed"
  exit 1
fi
echo "$count exported symbols, all prefixed"
echo "1 passed, 0 failed"

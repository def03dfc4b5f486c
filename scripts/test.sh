#!/usr/bin/env bash
# The test command: installs build dependencies, then builds and runs the whole ctest suite twice,
# once optimized and once with AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
jobs=$(nproc)
for variant in release asan; do
  dir=build-ci-$variant
  flags=(-DCMAKE_BUILD_TYPE=Release)
  [[ $variant == asan ]] && flags+=(-DHECNN_SANITIZE=ON)
  echo "== $variant build"
  cmake -S . -B "$dir" "${flags[@]}" >/dev/null
  cmake --build "$dir" -j"$jobs" >/dev/null
  echo "== $variant tests"
  (cd "$dir" && UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j"$jobs")
done

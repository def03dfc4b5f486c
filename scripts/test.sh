#!/usr/bin/env bash
# The test command: installs build dependencies, then builds and runs the whole ctest suite twice,
# once optimized and once with AddressSanitizer + UndefinedBehaviorSanitizer; then builds the
# libFuzzer harnesses with clang and runs each over its committed corpus, about a minute in all
# (fuzz/smoke.sh; HECNN_FUZZ_SECONDS sets the total, 0 skips it).
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
fuzz_secs=${HECNN_FUZZ_SECONDS:-60}
if ((fuzz_secs > 0)); then
  dir=build-ci-fuzz
  echo "== fuzz build (clang, libFuzzer + ASan + UBSan)"
  cmake -S . -B "$dir" -DCMAKE_C_COMPILER=clang -DHECNN_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_C_FLAGS="-O1 -g -fsanitize=fuzzer-no-link,address,undefined" >/dev/null
  mapfile -t harnesses < <(sed 's/^/fuzz_/' fuzz/harnesses.txt)
  cmake --build "$dir" -j"$jobs" --target "${harnesses[@]}" >/dev/null
  echo "== fuzz smoke run (${fuzz_secs} s in all)"
  fuzz/smoke.sh "$dir" "$fuzz_secs"
fi

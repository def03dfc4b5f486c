#!/usr/bin/env bash
# Installs what hecnn needs to build on Debian 12 (compiler, CMake, pkg-config, OpenSSL, zlib and json-c
# headers (json-c: the tool's --json output), OpenMP runtime; libmicrohttpd, SQLite and libcurl for
# `hecnn serve` and `hecnn remote`), valgrind (the constant-time test),
# and what the test command's fuzzing smoke run needs: clang with its libFuzzer and sanitizer runtimes
# (libclang-rt-dev: only recommended by clang, so named here) and clang's OpenMP runtime (libomp-dev).
# Python/PyTorch are only needed to retrain models: pass --with-training to install them too.
set -euo pipefail
packages=(build-essential cmake pkg-config libssl-dev zlib1g-dev libjson-c-dev python3 clang libclang-rt-dev libomp-dev valgrind
          libmicrohttpd-dev libsqlite3-dev libcurl4-openssl-dev)
[[ "${1:-}" == "--with-training" ]] && packages+=(python3-torch python3-numpy)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  echo "setup: installing ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

#!/usr/bin/env bash
# `cmake --install` into a temporary prefix: the shared and static library, the headers, hecnn.pc,
# the CMake package (hecnn::hecnn), the tool and the systemd unit example; then a small C program
# outside the tree, built against the installed library through pkg-config (shared, and static
# with --static), encrypts and decrypts a number. Needs the build folder (the third argument ctest
# passes) with the libraries built.
# Usage: install_pkgconfig.sh HECNN SOURCE_DIR BUILD_DIR
set -u
HECNN=${1:?usage: install_pkgconfig.sh HECNN SOURCE_DIR BUILD_DIR}
SRC=${2:?usage: install_pkgconfig.sh HECNN SOURCE_DIR BUILD_DIR}
BUILD=${3:-$(dirname "$HECNN")}
. "$(dirname "$0")/lib/common.sh"
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive

P=$T/prefix
run cmake --install "$BUILD" --prefix "$P"
for f in bin/hecnn include/hecnn/hecnn.h share/hecnn/systemd/hecnn-serve.service; do
    [ -e "$P/$f" ] && ok || bad "not installed: $f"
done
pc=$(find "$P" -name hecnn.pc | head -1)
cfg=$(find "$P" -name hecnnConfig.cmake | head -1)
so=$(find "$P" -name 'libhecnn.so.0' | head -1)
a=$(find "$P" -name libhecnn.a | head -1)
[ -n "$pc" ] && [ -n "$cfg" ] && [ -n "$so" ] && [ -n "$a" ] && ok || bad "missing: pc=$pc cfg=$cfg so=$so a=$a"
"$P/bin/hecnn" --version >"$T/out" 2>&1 && grep -q "^hecnn " "$T/out" && ok || bad "installed hecnn: $(cat "$T/out")"

mkdir -p "$T/app"
cat > "$T/app/app.c" <<'C'
#include <math.h>
#include <stdio.h>
#include <hecnn/hecnn.h>

int main(void)
{
    ckks_params_literal lit;
    ckks_context *ctx = NULL;
    ckks_secret_key *sk = NULL;
    ckks_plaintext *pt = NULL;
    ckks_ciphertext *ct = NULL;
    const double in[4] = {3.5, -1.25, 0.5, 2.0};
    double out[4096];
    hecnn_status st = ckks_params_preset(&lit, CKKS_PRESET_N13);
    if (!st) st = ckks_context_new(&ctx, &lit);
    if (!st) st = ckks_secret_key_generate(&sk, ctx);
    if (!st) st = ckks_plaintext_new(&pt, ctx);
    if (!st) st = ckks_ciphertext_new(&ct, ctx);
    if (!st) st = ckks_encode_real(ctx, pt, in, 4, 4, ckks_context_max_level(ctx), 0x1p30);
    if (!st) st = ckks_encrypt_sk(ctx, ct, pt, sk);
    if (!st) st = ckks_decrypt(ctx, pt, ct, sk);
    if (!st) st = ckks_decode_real(ctx, out, pt);
    double err = 0;
    for (int i = 0; !st && i < 4; i++) err = fmax(err, fabs(out[i] - in[i]));
    printf("hecnn %s: status %s, max error %.2e\n", HECNN_VERSION_STRING, hecnn_status_name(st), err);
    ckks_ciphertext_free(ct);
    ckks_plaintext_free(pt);
    ckks_secret_key_free(sk);
    ckks_context_free(ctx);
    return st || err > 1e-3;
}
C
export PKG_CONFIG_PATH=$(dirname "$pc")
# a sanitizer build installs an instrumented library: the program links the runtimes too
SAN=()
grep -q '^HECNN_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt" 2>/dev/null && SAN=(-fsanitize=address,undefined)
run pkg-config --exists hecnn
(cd "$T/app" && cc -std=c17 -Wall -Werror app.c -o app "${SAN[@]}" $(pkg-config --cflags --libs hecnn) -lm -Wl,-rpath,"$(dirname "$so")") >"$T/out" 2>&1 \
    && ok || bad "cannot build against the installed library: $(cat "$T/out")"
"$T/app/app" >"$T/out" 2>&1 && grep -q "status HECNN_OK" "$T/out" && ok || bad "app: $(cat "$T/out")"
ldd "$T/app/app" | grep -q "$(dirname "$so")/libhecnn.so.0" && ok || bad "the app does not use the installed libhecnn.so"
(cd "$T/app" && cc -std=c17 app.c -o app-static "${SAN[@]}" $(pkg-config --static --cflags hecnn) \
    "$(dirname "$a")/libhecnn.a" $(pkg-config --static --libs-only-other --libs-only-l hecnn | sed 's/-lhecnn//') -lm) >"$T/out" 2>&1 \
    && ok || bad "cannot link the static library: $(cat "$T/out")"
[ -x "$T/app/app-static" ] && "$T/app/app-static" >"$T/out" 2>&1 && ok || bad "static app: $(cat "$T/out")"
# the CMake package
cat > "$T/app/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.20)
project(app C)
find_package(hecnn 0.1 REQUIRED)
add_executable(app-cmake app.c)
target_link_libraries(app-cmake PRIVATE hecnn::hecnn m)
CM
if cmake -S "$T/app" -B "$T/app/b" -DCMAKE_PREFIX_PATH="$P" -DCMAKE_C_FLAGS="${SAN[*]}" >"$T/out" 2>&1 && cmake --build "$T/app/b" >>"$T/out" 2>&1; then
    "$T/app/b/app-cmake" >"$T/out" 2>&1 && grep -q "status HECNN_OK" "$T/out" && ok || bad "cmake app: $(cat "$T/out")"
else
    bad "find_package(hecnn): $(tail -20 "$T/out")"
fi
summary

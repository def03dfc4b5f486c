#!/usr/bin/env bash
# The tool against hostile input (issue 12): every bad input must fail with a non-zero exit (not a
# crash) and a message naming the problem, and must not destroy files already written. Fast: n13
# keys and the MNIST parameters with one rotation key (nothing here runs the network).
# Usage: tool_hostile.sh HECNN SOURCE_DIR
set -u
HECNN=${1:?usage: tool_hostile.sh HECNN SOURCE_DIR}
SRC=${2:?usage: tool_hostile.sh HECNN SOURCE_DIR}
M=$SRC/models
export HECNN_MODELS=$M
. "$(dirname "$0")/lib/common.sh"

run "$HECNN" keygen --preset n13 --out-dir "$T/k13"
run "$HECNN" keygen --params "$M/mnist_params.hecnn" --out-dir "$T/k" --rotations 1
E13=(encrypt --preset n13 --secret-key "$T/k13/secret.key")

# 1. an out-of-range label is named (it was read after its buffer was freed)
printf '\x00\x00\x08\x01\x00\x00\x00\x04\x0c\x01\x02\x03' > "$T/badlab.idx"
must_fail "label 0 is 12" "$HECNN" demo --labels "$T/badlab.idx" --count 4

# 8. idx files are read as far as asked: a header that overstates its count (or an archive that
# inflates to gigabytes) costs only what --count asks for; the header is checked first
python3 - "$T" <<'PY'
import gzip, struct, sys
t = sys.argv[1]
img = bytes(range(256)) * 4
open(t + "/over.idx", "wb").write(struct.pack(">IIII", 0x803, 0xFFFFFFFF, 28, 28) + img[:784] * 5)
with gzip.open(t + "/over.idx.gz", "wb") as g:
    g.write(struct.pack(">IIII", 0x803, 0xFFFFFFFF, 28, 28) + img[:784] * 5)
open(t + "/dims.idx", "wb").write(struct.pack(">IIII", 0x803, 0xFFFFFFFF, 60000, 60000))
with gzip.open(t + "/two.idx.gz", "wb") as g:
    g.write(struct.pack(">IIII", 0x803, 2, 28, 28) + img[:784] * 2)
lab = struct.pack(">II", 0x801, 0xFFFFFFFF) + bytes([7, 2, 1])
open(t + "/over-lab.idx", "wb").write(lab)
PY
run "$HECNN" encrypt-images --keys "$T/k" --images "$T/over.idx" --count 3 --batch 32 --out "$T/o.ct"
grep -q "encrypted 3 images" "$T/out" && ok || bad "over.idx: $(cat "$T/out")"
run "$HECNN" encrypt-images --keys "$T/k" --images "$T/over.idx.gz" --offset 2 --count 3 --batch 32 --out "$T/o.ct"
must_fail "header says 4294967295 images, the data ends after 5" "$HECNN" encrypt-images --keys "$T/k" --images "$T/over.idx.gz" \
    --offset 2 --count 4 --batch 32 --out "$T/o.ct"
must_fail "at most 262144 are read at once" "$HECNN" encrypt-images --keys "$T/k" --images "$T/over.idx" --batch 32 --out "$T/o.ct"
must_fail "60000x60000 images; MNIST needs 28x28" "$HECNN" encrypt-images --keys "$T/k" --images "$T/dims.idx" --out "$T/o.ct"
run "$HECNN" encrypt-images --keys "$T/k" --images "$T/two.idx.gz" --batch 32 --out "$T/o.ct"
grep -q "encrypted 2 images" "$T/out" && ok || bad "two.idx.gz: $(cat "$T/out")"
head -c 200 "$T/two.idx.gz" > "$T/cut.idx.gz"
must_fail "truncated gzip|unexpected end" "$HECNN" encrypt-images --keys "$T/k" --images "$T/cut.idx.gz" --batch 32 --out "$T/o.ct"
must_fail "is a directory" "$HECNN" encrypt-images --keys "$T/k" --images "$T/k" --batch 32 --out "$T/o.ct"
must_fail "Is a directory" "$HECNN" encrypt-model --keys "$T/k" --model "$T/k" --out "$T/o.em"

# 7. value input is bounded by what the command can use
# (a build without the bound reads these 50 MB whole and fails for another reason)
head -c 50000000 /dev/zero | must_fail "NUL byte" "$HECNN" "${E13[@]}" --in - --out "$T/z.ct"
head -c 50000000 /dev/zero | must_fail "more than 4096 values" "$HECNN" "${E13[@]}" --in - --binary --out "$T/z.ct"
if [ -z "${SKIP_UNBOUNDED:-}" ]; then
    must_fail "NUL byte" timeout 60 "$HECNN" "${E13[@]}" --in /dev/zero --out "$T/z.ct"
    must_fail "more than 4096 values" timeout 60 "$HECNN" "${E13[@]}" --in /dev/zero --binary --out "$T/z.ct"
fi
yes '' | head -c 50000000 | must_fail "more than [0-9]+ bytes" "$HECNN" "${E13[@]}" --in - --out "$T/z.ct"
head -c 300 /dev/zero | tr '\0' 1 > "$T/long.txt"
must_fail "longer than 256 bytes" "$HECNN" "${E13[@]}" --in "$T/long.txt" --out "$T/z.ct"
[ -e "$T/z.ct" ] && bad "a failed encrypt left $T/z.ct" || ok

# 11. a directory where a file is expected
must_fail "is a directory" "$HECNN" "${E13[@]}" --in "$T/k13" --out "$T/z.ct"
must_fail "is a directory" "$HECNN" decrypt-scores --keys "$T/k" --in "$T/k"
must_fail "is a directory" "$HECNN" encrypt --params "$T/k13" --secret-key "$T/k13/secret.key" --in /dev/null --out "$T/z.ct"

# 10, 11. the encrypted model: a truncation keeps its reason, a trailing byte is named
run "$HECNN" encrypt-images --keys "$T/k" --count 3 --batch 32 --out "$T/img.ct"
run "$HECNN" encrypt-model --keys "$T/k" --batch 32 --out "$T/em.ct"
head -c 1000000 "$T/em.ct" > "$T/em-cut.ct"
must_fail "ciphertext [0-9]+ of [0-9]+: .*truncated" "$HECNN" infer --keys "$T/k" --in "$T/img.ct" --encrypted-model "$T/em-cut.ct" --out "$T/r.ct"
printf 'x' >> "$T/em.ct"
must_fail "trailing bytes after its [0-9]+ ciphertexts" "$HECNN" infer --keys "$T/k" --in "$T/img.ct" --encrypted-model "$T/em.ct" --out "$T/r.ct"
rm -f "$T/em.ct" "$T/em-cut.ct"
[ -e "$T/r.ct" ] && bad "a failed infer left $T/r.ct" || ok

# 12. --out never replaces a symbolic link, a device or a pipe; a regular file is replaced whole
seq 1 8 > "$T/v.txt"
echo precious > "$T/target"
ln -s "$T/target" "$T/link"
must_fail "symbolic link" "$HECNN" "${E13[@]}" --in "$T/v.txt" --out "$T/link"
[ -L "$T/link" ] && [ "$(cat "$T/target")" = precious ] && ok || bad "encrypt --out replaced a symlink or its target"
must_fail "symbolic link" "$HECNN" encrypt-images --keys "$T/k" --count 2 --batch 32 --out "$T/link"
[ -L "$T/link" ] && [ "$(cat "$T/target")" = precious ] && ok || bad "encrypt-images --out replaced a symlink or its target"
mkfifo "$T/fifo"
must_fail "named pipe" "$HECNN" "${E13[@]}" --in "$T/v.txt" --out "$T/fifo"
[ -p "$T/fifo" ] && ok || bad "encrypt --out replaced a named pipe"
must_fail "directory" "$HECNN" "${E13[@]}" --in "$T/v.txt" --out "$T/k13"
mkdir -p "$T/keysym" && ln -s "$T/target" "$T/keysym/secret.key"
must_fail "symbolic link" "$HECNN" keygen --preset n13 --out-dir "$T/keysym" --force
[ -L "$T/keysym/secret.key" ] && [ "$(cat "$T/target")" = precious ] && ok || bad "keygen --force replaced a symlink"
ls "$T/keysym" | grep -q tmp && bad "keygen left a temporary file" || ok
run "$HECNN" "${E13[@]}" --in "$T/v.txt" --out "$T/target"
[ "$(head -c 5 "$T/target")" = "HECNN" ] && ok || bad "encrypt did not replace a regular file"

summary

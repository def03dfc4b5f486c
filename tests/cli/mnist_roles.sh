#!/usr/bin/env bash
# The three roles as separate commands exchanging files, at the real 128-bit parameters:
# data owner (keygen, encrypt-images, decrypt-scores), server (infer with the plaintext model).
# 20 shipped digits in one batch of 32 (the shipped weights get 19 of them right in plaintext).
# Also: scores decrypted with another secret key are refused.
# Usage: mnist_roles.sh HECNN SOURCE_DIR
set -u
HECNN=${1:?usage: mnist_roles.sh HECNN SOURCE_DIR}
SRC=${2:?usage: mnist_roles.sh HECNN SOURCE_DIR}
M=$SRC/models
export HECNN_MODELS=$M
. "$(dirname "$0")/lib/common.sh"

# data owner: keys with exactly the rotations the server will use
ROT=$("$HECNN" infer --print-rotations --batch 32 --mode plain) || bad "infer --print-rotations"
if "$HECNN" keygen-mnist --help >/dev/null 2>&1; then
    run "$HECNN" keygen-mnist --out-dir "$T/k" --batch 32 --mode plain
else
    run "$HECNN" keygen --params "$M/mnist_params.hecnn" --out-dir "$T/k" --rotations "$ROT" --conjugate
fi
run "$HECNN" encrypt-images --keys "$T/k" --count 20 --batch 32 --out "$T/img.ct"
# the server gets no secret key
mkdir -p "$T/server" && cp "$T/k/params.hecnn" "$T/k/eval.keys" "$T/server/"
run "$HECNN" infer --keys "$T/server" --in "$T/img.ct" --model "$M/mnist_vr.hcnn" --out "$T/res.ct" --quiet
grep -q "inferred 20 images" "$T/out" && ok || bad "infer output: $(cat "$T/out")"
run "$HECNN" decrypt-scores --keys "$T/k" --in "$T/res.ct" --labels "$M/mnist-sample-64-labels-idx1-ubyte" --json --out "$T/s.json"
n=$(grep -c '"prediction"' "$T/s.json")
[ "$n" = 20 ] && ok || bad "$n predictions in the JSON"
acc=$(sed -n 's/.*"correct": \([0-9]*\).*/\1/p' "$T/s.json")
[ -n "$acc" ] && [ "$acc" -ge 18 ] && ok || bad "only ${acc:-?}/20 digits right: $(cat "$T/s.json")"
run "$HECNN" decrypt-scores --keys "$T/k" --in "$T/res.ct"
grep -q "^19 " "$T/out" && ok || bad "text output lacks image 19"
# flooded by default (docs/SECURITY.md), scores rounded to 2^-10 of their range: the same digits as
# an unflooded decryption; --no-flood warns
grep -q '"flood_bits": 20,' "$T/s.json" && grep -q '"rounding": 0.125,' "$T/s.json" && ok || bad "flooding fields: $(head -5 "$T/s.json")"
run "$HECNN" decrypt-scores --keys "$T/k" --in "$T/res.ct" --json --no-flood --out "$T/n.json"
grep -q "no-flood.*do not share them" "$T/err" && ok || bad "--no-flood note: $(cat "$T/err")"
[ "$(grep -o '"prediction": [0-9]' "$T/s.json")" = "$(grep -o '"prediction": [0-9]' "$T/n.json")" ] && ok || bad "flooding changed a digit"
expect 2 "need 0 < BITS <= 64" "$HECNN" decrypt-scores --keys "$T/k" --in "$T/res.ct" --flood 0

# a truncated ciphertext file fails cleanly and leaves no output
head -c 2000000 "$T/img.ct" > "$T/cut.ct"
"$HECNN" infer --keys "$T/server" --in "$T/cut.ct" --model "$M/mnist_vr.hcnn" --out "$T/cut.res" --quiet >"$T/out" 2>"$T/err"
rc=$?
[ $rc -eq 1 ] && grep -Eq "BAD_FORMAT|truncated" "$T/err" && [ ! -e "$T/cut.res" ] && ok || bad "cut ciphertext: exit $rc: $(cat "$T/err")"

# scores under another key (same parameters) are detected, not printed as garbage
run "$HECNN" keygen --params "$M/mnist_params.hecnn" --out-dir "$T/other" --rotations 1
"$HECNN" decrypt-scores --keys "$T/other" --in "$T/res.ct" >"$T/out" 2>"$T/err"
rc=$?
[ $rc -eq 1 ] && grep -q "does not decrypt under this secret key" "$T/err" && ok || bad "other key: exit $rc: $(cat "$T/err")"

# hostile scores files (issue 12): each is refused with a reason, never decrypted into wrong digits
# patch FILE OFFSET BYTES...: overwrite bytes (given as hex pairs) in place
patch() {
    local f=$1 off=$2 hex
    shift 2
    hex=$(printf '\\x%s' "$@")
    printf "$hex" | dd of="$f" bs=1 seek="$off" conv=notrunc 2>/dev/null
}
# patch_ct FILE OFFSET HEX: the same inside the first ciphertext of a batch file (OFFSET from its
# start, at byte 40), re-sealing the object's trailing SHA-256 when its format has one (version >= 3):
# a server can recompute a checksum, so the checks below must hold without it
patch_ct() {
    python3 - "$@" <<'PY'
import hashlib, struct, sys
path, off, data = sys.argv[1], 40 + int(sys.argv[2]), bytes.fromhex(sys.argv[3])
b = bytearray(open(path, "rb").read())
b[off:off + len(data)] = data
version, size = struct.unpack_from("<H", b, 40 + 6)[0], struct.unpack_from("<Q", b, 40 + 24)[0]
if version >= 3:
    b[40 + size - 32:40 + size] = hashlib.sha256(b[40:40 + size - 32]).digest()
open(path, "wb").write(b)
PY
}
# the batch header is 40 bytes (width at 24, images 28, batches 32, ciphertexts per batch 36); the
# first ciphertext follows, its scale at 40 + 40 and its slots at 40 + 48
printf '\x00\x00\x08\x01\x00\x00\x00\x14\x0c' > "$T/badlab.idx" && head -c 19 /dev/zero >> "$T/badlab.idx"
must_fail "label 0 is 12" "$HECNN" decrypt-scores --keys "$T/k" --in "$T/res.ct" --labels "$T/badlab.idx"
cp "$T/res.ct" "$T/slots.ct" && patch_ct "$T/slots.ct" 48 0010
must_fail "has 4096 slots" "$HECNN" decrypt-scores --keys "$T/k" --in "$T/slots.ct"
cp "$T/res.ct" "$T/scale.ct" && patch_ct "$T/scale.ct" 40 0100000000000000
must_fail "scale .*not a positive normal number" "$HECNN" decrypt-scores --keys "$T/k" --in "$T/scale.ct"
cp "$T/res.ct" "$T/count.ct" && patch "$T/count.ct" 28 00 00 00 c0 00 00 00 06
must_fail "claims 100663296 batches" "$HECNN" decrypt-scores --keys "$T/k" --in "$T/count.ct"
cp "$T/res.ct" "$T/per.ct" && patch "$T/per.ct" 36 02
must_fail "2 ciphertexts per batch" "$HECNN" decrypt-scores --keys "$T/k" --in "$T/per.ct"
# the owner record (issue 12, item 5): encrypt-images wrote it beside its output and into the key
# directory, with the digest of the ciphertexts; decrypt-scores refuses scores whose layout or counts
# disagree with it (a changed row width shifts scores between images and decrypts cleanly)
[ -f "$T/img.ct.record" ] && cmp -s "$T/img.ct.record" "$T/k/images.record" && ok || bad "no owner record beside img.ct and in the keys"
grep -q "^images-sha256 $(sha256sum "$T/img.ct" | cut -c1-64)\$" "$T/img.ct.record" && ok || bad "record digest: $(cat "$T/img.ct.record")"
grep -q "^row-width 256\$" "$T/img.ct.record" && grep -q "^images 20\$" "$T/img.ct.record" && ok || bad "record: $(cat "$T/img.ct.record")"
cp "$T/res.ct" "$T/width.ct" && patch "$T/width.ct" 24 80 00
must_fail "row width 128, the images were encrypted with 256" "$HECNN" decrypt-scores --keys "$T/k" --in "$T/width.ct"
must_fail "row width 128" "$HECNN" decrypt-scores --params "$T/k/params.hecnn" --secret-key "$T/k/secret.key" --in "$T/width.ct" \
    --record "$T/img.ct.record"
run "$HECNN" encrypt-images --params "$T/k/params.hecnn" --public-key "$T/k/public.key" --count 21 --batch 32 --out "$T/img21.ct" \
    --record "$T/r21"
must_fail "image count 20, the images were encrypted with 21" "$HECNN" decrypt-scores --keys "$T/k" --in "$T/res.ct" --record "$T/r21"
printf 'hecnn-owner-record 1\nslots 8192\n' > "$T/rbad"
must_fail "line 2 should be 'parameter-id" "$HECNN" decrypt-scores --keys "$T/k" --in "$T/res.ct" --record "$T/rbad"
echo kept > "$T/kept.txt"
must_fail "slots" "$HECNN" decrypt-scores --keys "$T/k" --in "$T/slots.ct" --out "$T/kept.txt"
[ "$(cat "$T/kept.txt")" = kept ] && ok || bad "a failed decrypt-scores replaced its --out"

summary

#!/usr/bin/env bash
# Option handling of params/keygen/encrypt/decrypt and the dispatcher: usage errors exit 2 with
# a message, failures exit 1, nothing already on disk is lost, insecure parameter files are
# refused.  Usage: keys_options.sh HECNN SOURCE_DIR
set -u
HECNN=${1:?usage: keys_options.sh HECNN SOURCE_DIR}
. "$(dirname "$0")/lib/common.sh"

# ---- dispatcher ----
expect 2 "usage: hecnn" "$HECNN"
expect 2 "unknown command 'frobnicate'" "$HECNN" frobnicate
expect 2 "unknown benchmark" "$HECNN" bench nope
run "$HECNN" bench --help
grep -q "ckks" "$T/out" && ok || bad "bench --help lists no ckks"
# every command answers --help
for c in params keygen keygen-mnist encrypt decrypt encrypt-images decrypt-scores encrypt-model infer demo demo-ckks; do
    run "$HECNN" "$c" --help
done

# ---- option parsing ----
expect 2 "unknown option '--bogus'" "$HECNN" keygen --bogus
expect 2 "unknown option '-x'" "$HECNN" encrypt -x
expect 2 "needs a value" "$HECNN" keygen --preset
expect 2 "out-dir" "$HECNN" keygen --preset n13
expect 2 "\-\-out-dir DIR is required" "$HECNN" keygen-mnist
expect 2 "\-\-in FILE is required" "$HECNN" encrypt --preset n13 --public-key a --out c
expect 2 "\-\-secret-key FILE is required" "$HECNN" decrypt --preset n13 --in a --out b
expect 2 "\-\-out FILE is required" "$HECNN" encrypt-model --keys x
expect 2 "takes no value" "$HECNN" keygen --preset n13 --out-dir "$T/k" --conjugate=yes
expect 2 "invalid value 'abc' for --slots" "$HECNN" encrypt --preset n13 --public-key a --in b --out c --slots abc
expect 2 "invalid value '-1' for --level" "$HECNN" encrypt --preset n13 --public-key a --in b --out c --level -1
expect 2 "unexpected argument 'stray'" "$HECNN" decrypt stray
expect 2 "exactly one of --public-key" "$HECNN" encrypt --preset n13 --public-key a --secret-key b --in c --out d
expect 2 "exactly one of --public-key" "$HECNN" encrypt --preset n13 --in c --out d
expect 1 "exactly one of --params" "$HECNN" keygen --out-dir "$T/k"
expect 1 "exactly one of --params" "$HECNN" keygen --preset n13 --params x --out-dir "$T/k"
expect 1 "unknown preset 'n99'" "$HECNN" keygen --preset n99 --out-dir "$T/k"
expect 2 "invalid list" "$HECNN" keygen --preset n13 --out-dir "$T/k" --rotations 1,,2
expect 2 "invalid list" "$HECNN" keygen --preset n13 --out-dir "$T/k" --rotations 5..1
[ ! -e "$T/k" ] && ok || bad "a refused keygen created its directory"

# ---- params ----
run "$HECNN" params
grep -q "^n16" "$T/out" && ok || bad "params lists no n16"
run "$HECNN" params --preset n13 --out "$T/p13"
grep -q "parameter id" "$T/out" && ok || bad "params shows no parameter id"
run "$HECNN" params --params "$T/p13"
expect 2 "needs --preset" "$HECNN" params --out "$T/p"
# an insecure parameter file (N = 2^10 with the n13 primes, flagged allow_insecure) is refused;
# the same file without the flag as well
cp "$T/p13" "$T/insecure"
printf '\x0a' | dd of="$T/insecure" bs=1 seek=32 conv=notrunc 2>/dev/null
printf '\x01' | dd of="$T/insecure" bs=1 seek=60 conv=notrunc 2>/dev/null
reseal "$T/insecure"
expect 1 "marked insecure" "$HECNN" keygen --params "$T/insecure" --out-dir "$T/ki"
printf '\x00' | dd of="$T/insecure" bs=1 seek=60 conv=notrunc 2>/dev/null
reseal "$T/insecure"
expect 1 "INSECURE_PARAMS" "$HECNN" keygen --params "$T/insecure" --out-dir "$T/ki"
# not resealed: the same edit reads as damage
printf '\x01' | dd of="$T/insecure" bs=1 seek=60 conv=notrunc 2>/dev/null
expect 1 "checksum mismatch" "$HECNN" keygen --params "$T/insecure" --out-dir "$T/ki"
# a tiny error width (the public key would then hide nothing), flagged allow_insecure or not
cp "$T/p13" "$T/sigma"
printf '\x7b\x14\xae\x47\xe1\x7a\x84\x3f' | dd of="$T/sigma" bs=1 seek=64 conv=notrunc 2>/dev/null # 0.01
reseal "$T/sigma"
expect 1 "sigma" "$HECNN" keygen --params "$T/sigma" --out-dir "$T/ks"
printf '\x01' | dd of="$T/sigma" bs=1 seek=60 conv=notrunc 2>/dev/null
reseal "$T/sigma"
expect 1 "sigma" "$HECNN" keygen --params "$T/sigma" --out-dir "$T/ks"
[ ! -e "$T/ks/secret.key" ] && ok || bad "keygen wrote keys under sigma 0.01"
# a secure file flagged allow_insecure is fine: the tool builds it as secure
cp "$T/p13" "$T/flagged"
printf '\x01' | dd of="$T/flagged" bs=1 seek=60 conv=notrunc 2>/dev/null
reseal "$T/flagged"
run "$HECNN" params --params "$T/flagged"

# ---- keygen never loses keys ----
run "$HECNN" keygen --params "$T/p13" --out-dir "$T/k" --no-relin
sum1=$(cat "$T/k/secret.key" "$T/k/public.key" | cksum)
expect 1 "already exists.*--force" "$HECNN" keygen --preset n13 --out-dir "$T/k"
[ "$(cat "$T/k/secret.key" "$T/k/public.key" | cksum)" = "$sum1" ] && ok || bad "refused keygen changed the keys"
run "$HECNN" keygen --preset n13 --out-dir "$T/k" --force --rotations 3
[ "$(cat "$T/k/secret.key" "$T/k/public.key" | cksum)" != "$sum1" ] && ok || bad "--force did not replace the keys"
grep -q "1 Galois key" "$T/out" && ok || bad "keygen summary: $(cat "$T/out")"
ls "$T/k" | grep -q tmp && bad "temporary files left in $T/k" || ok
touch "$T/notadir"
expect 1 "not a directory" "$HECNN" keygen --preset n13 --out-dir "$T/notadir"

# ---- outputs are atomic: a failed encrypt keeps the previous ciphertext ----
printf '1\n2\n' >"$T/v.txt"
run "$HECNN" encrypt --preset n13 --public-key "$T/k/public.key" --in "$T/v.txt" --out "$T/x.ct"
sum2=$(cksum <"$T/x.ct")
printf '1\nzz\n' >"$T/junk.txt"
expect 1 "line 2" "$HECNN" encrypt --preset n13 --public-key "$T/k/public.key" --in "$T/junk.txt" --out "$T/x.ct"
[ "$(cksum <"$T/x.ct")" = "$sum2" ] && ok || bad "failed encrypt changed the existing ciphertext"
expect 1 "cannot create '$T/nodir/x.ct'" "$HECNN" encrypt --preset n13 --public-key "$T/k/public.key" --in "$T/v.txt" --out "$T/nodir/x.ct"
expect 2 "levels are 0..2" "$HECNN" encrypt --preset n13 --public-key "$T/k/public.key" --in "$T/v.txt" --out "$T/y.ct" --level 3
expect 2 "power of two" "$HECNN" encrypt --preset n13 --public-key "$T/k/public.key" --in "$T/v.txt" --out "$T/y.ct" --slots 6
expect 2 "holds 4096 slots" "$HECNN" decrypt --preset n13 --secret-key "$T/k/secret.key" --in "$T/x.ct" --out "$T/y.txt" --count 5000
expect 1 "cannot write|cannot create" "$HECNN" decrypt --preset n13 --secret-key "$T/k/secret.key" --in "$T/x.ct" --out "$T/nodir/y.txt"
ls "$T" | grep -q '\.tmp-' && bad "temporary files left in $T" || ok

# ---- a damaged file is refused as such, whatever it is: one flipped bit, or cut short ----
flip() { # flip FILE OFFSET: a copy FILE.bad with one bit of byte OFFSET flipped
    cp "$1" "$1.bad"
    local b
    b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
    printf "\\$(printf %03o $((b ^ 16)))" | dd of="$1.bad" bs=1 seek="$2" conv=notrunc 2>/dev/null
}
flip "$T/x.ct" 3000
expect 1 "checksum mismatch" "$HECNN" decrypt --preset n13 --secret-key "$T/k/secret.key" --in "$T/x.ct.bad" --out "$T/y.txt"
flip "$T/k/secret.key" 100
expect 1 "checksum mismatch" "$HECNN" decrypt --preset n13 --secret-key "$T/k/secret.key.bad" --in "$T/x.ct" --out "$T/y.txt"
flip "$T/k/public.key" 40
expect 1 "checksum mismatch" "$HECNN" encrypt --preset n13 --public-key "$T/k/public.key.bad" --in "$T/v.txt" --out "$T/y.ct"
flip "$T/p13" 50
expect 1 "checksum mismatch" "$HECNN" params --params "$T/p13.bad"
head -c 1000 "$T/x.ct" >"$T/x.ct.cut"
expect 1 "truncated" "$HECNN" decrypt --preset n13 --secret-key "$T/k/secret.key" --in "$T/x.ct.cut" --out "$T/y.txt"

summary

#!/usr/bin/env bash
# keygen -> encrypt -> decrypt round trips at preset n13, and bad inputs that must fail with a
# non-zero exit and a message naming the problem.  Usage: keys_roundtrip.sh HECNN SOURCE_DIR
set -u
HECNN=${1:?usage: keys_roundtrip.sh HECNN SOURCE_DIR}
. "$(dirname "$0")/lib/common.sh"
# close A B TOL: the first columns of two files agree within TOL, line by line
close() {
    if awk -v tol="$3" 'NR == FNR { a[FNR] = $1; na = FNR; next }
        { nb = FNR; d = a[FNR] - $1; if (d < 0) d = -d; if (d > tol || a[FNR] == "") { bad = 1 } }
        END { exit (bad || na != nb) }' "$1" "$2"; then ok; else bad "values differ beyond $3: $1 vs $2"; fi
}
# close_complex A B TOL: "re im" lines agree within TOL
close_complex() {
    if awk -v tol="$3" 'NR == FNR { r[FNR] = $1; i[FNR] = ($2 == "" ? 0 : $2); na = FNR; next }
        { nb = FNR; d = r[FNR] - $1; e = i[FNR] - $2; if (d < 0) d = -d; if (e < 0) e = -e; if (d > tol || e > tol) bad = 1 }
        END { exit (bad || na != nb) }' "$1" "$2"; then ok; else bad "complex values differ beyond $3: $1 vs $2"; fi
}

# ---- help and version ----
run "$HECNN" --help
grep -q "keygen" "$T/out" && ok || bad "--help lists no keygen"
run "$HECNN" --version
grep -q "hecnn" "$T/out" && ok || bad "--version"
for c in keygen encrypt decrypt params; do
    run "$HECNN" "$c" --help
    grep -q "usage: hecnn $c" "$T/out" && ok || bad "$c --help has no usage line"
done
run "$HECNN" help encrypt
grep -q -- "--public-key" "$T/out" && ok || bad "help encrypt"

# ---- keys ----
run "$HECNN" keygen --preset n13 --out-dir "$T/k1" --rotations 1,-1 --conjugate
for f in params.hecnn secret.key public.key eval.keys; do
    [ -s "$T/k1/$f" ] && ok || bad "keygen did not write $f"
done
mode=$(stat -c %a "$T/k1/secret.key")
[ "$mode" = 600 ] && ok || bad "secret key mode $mode"
run "$HECNN" keygen --preset n13 --out-dir "$T/k2"
P1=(--params "$T/k1/params.hecnn")
P2=(--params "$T/k2/params.hecnn")

# ---- round trips ----
cat >"$T/v.txt" <<'VALUES'
# a comment, then a blank line

1.5
-2.25
3.125
0.001
-1000.75
42
VALUES
grep -v '^#' "$T/v.txt" | grep -v '^$' >"$T/want.txt"
n=$(wc -l <"$T/want.txt")
run "$HECNN" encrypt "${P1[@]}" --public-key "$T/k1/public.key" --in "$T/v.txt" --out "$T/pk.ct"
run "$HECNN" decrypt "${P1[@]}" --secret-key "$T/k1/secret.key" --in "$T/pk.ct" --out "$T/pk.txt" --count "$n"
close "$T/want.txt" "$T/pk.txt" 1e-6
# flooded decryption (docs/SECURITY.md): the values to within the noise the note states (2e-5 at
# 10 bits here), and never twice the same; absurd widths are usage errors
run "$HECNN" decrypt "${P1[@]}" --secret-key "$T/k1/secret.key" --in "$T/pk.ct" --out "$T/f1.txt" --count "$n" --flood 10
grep -q "flooded with 10 bits: noise of standard deviation" "$T/err" && ok || bad "no flooding note: $(cat "$T/err")"
close "$T/want.txt" "$T/f1.txt" 3e-4
run "$HECNN" decrypt "${P1[@]}" --secret-key "$T/k1/secret.key" --in "$T/pk.ct" --out "$T/f2.txt" --count "$n" --flood 10
cmp -s "$T/f1.txt" "$T/f2.txt" && bad "two flooded decryptions are equal" || ok
expect 2 "need 0 < BITS <= 64" "$HECNN" decrypt "${P1[@]}" --secret-key "$T/k1/secret.key" --in "$T/pk.ct" --out "$T/f3.txt" --flood 0
expect 2 "need 0 < BITS <= 64" "$HECNN" decrypt "${P1[@]}" --secret-key "$T/k1/secret.key" --in "$T/pk.ct" --out "$T/f3.txt" --flood 65
# symmetric encryption: seeded, about half the size
run "$HECNN" encrypt "${P1[@]}" --secret-key "$T/k1/secret.key" --in "$T/v.txt" --out "$T/sk.ct"
run "$HECNN" decrypt "${P1[@]}" --secret-key "$T/k1/secret.key" --in "$T/sk.ct" --out "$T/sk.txt" --count "$n"
close "$T/want.txt" "$T/sk.txt" 1e-6
pk_size=$(stat -c %s "$T/pk.ct")
sk_size=$(stat -c %s "$T/sk.ct")
[ $((sk_size * 2)) -lt $((pk_size + 200)) ] && ok || bad "seeded ciphertext $sk_size vs $pk_size bytes"
# all slots by default; the tail is zero
run "$HECNN" decrypt "${P1[@]}" --secret-key "$T/k1/secret.key" --in "$T/pk.ct" --out "$T/all.txt"
[ "$(wc -l <"$T/all.txt")" = 4096 ] && ok || bad "default count is not N/2"
tail -n 1 "$T/all.txt" | awk '{ exit !($1 < 1e-6 && $1 > -1e-6) }' && ok || bad "unused slot not zero"
# complex values, a lower level, fewer slots, another scale
printf '1 2\n-0.5 0.25\n3\n' >"$T/c.txt"
printf '1 2\n-0.5 0.25\n3 0\n' >"$T/cwant.txt"
run "$HECNN" encrypt "${P1[@]}" --public-key "$T/k1/public.key" --in "$T/c.txt" --out "$T/c.ct" --slots 4 --level 1 --scale-bits 35
run "$HECNN" decrypt "${P1[@]}" --secret-key "$T/k1/secret.key" --in "$T/c.ct" --out "$T/c.out" --complex --count 3
close_complex "$T/cwant.txt" "$T/c.out" 1e-6
# binary values in and out (1.5, -2.25, 42 as little-endian doubles); stdin and stdout
printf '\x00\x00\x00\x00\x00\x00\xf8\x3f\x00\x00\x00\x00\x00\x00\x02\xc0\x00\x00\x00\x00\x00\x00\x45\x40' >"$T/v.bin"
printf '1.5\n-2.25\n42\n' >"$T/bwant.txt"
run "$HECNN" encrypt "${P1[@]}" --public-key "$T/k1/public.key" --in "$T/v.bin" --binary --out "$T/b.ct"
run "$HECNN" decrypt "${P1[@]}" --secret-key "$T/k1/secret.key" --in "$T/b.ct" --out "$T/b.out" --binary --count 3
[ "$(stat -c %s "$T/b.out")" = 24 ] && ok || bad "binary output size"
od -An -tf8 -v "$T/b.out" | tr -s ' ' '\n' | grep -v '^$' >"$T/b.txt"
close "$T/bwant.txt" "$T/b.txt" 1e-6
"$HECNN" encrypt --preset n13 --public-key "$T/k1/public.key" --in - --out "$T/s.ct" <"$T/v.txt" >/dev/null 2>"$T/err" && ok || bad "encrypt from stdin: $(cat "$T/err")"
"$HECNN" decrypt --preset n13 --secret-key "$T/k1/secret.key" --in "$T/s.ct" --out - --count "$n" >"$T/s.txt" 2>"$T/err" && ok || bad "decrypt to stdout"
close "$T/want.txt" "$T/s.txt" 1e-6

# ---- bad inputs ----
must_fail "cannot open '$T/missing.ct'.*No such file" \
    "$HECNN" decrypt "${P1[@]}" --secret-key "$T/k1/secret.key" --in "$T/missing.ct" --out "$T/x.txt"
must_fail "cannot open.*missing.key" \
    "$HECNN" encrypt "${P1[@]}" --public-key "$T/missing.key" --in "$T/v.txt" --out "$T/x.ct"
must_fail "cannot open.*nothere" "$HECNN" keygen --params "$T/nothere" --out-dir "$T/k9"
# truncated ciphertexts: inside the header, the metadata, the seed, the coefficients
for cut in 0 5 31 40 70 100 1000 $((pk_size / 2)) $((pk_size - 1)); do
    head -c "$cut" "$T/pk.ct" >"$T/trunc.ct"
    must_fail "HECNN_ERR_BAD_FORMAT" \
        "$HECNN" decrypt "${P1[@]}" --secret-key "$T/k1/secret.key" --in "$T/trunc.ct" --out "$T/x.txt"
done
[ ! -e "$T/x.txt" ] && ok || bad "a failed decrypt left an output file"
# trailing garbage
cat "$T/pk.ct" "$T/v.txt" >"$T/long.ct"
must_fail "trailing" "$HECNN" decrypt "${P1[@]}" --secret-key "$T/k1/secret.key" --in "$T/long.ct" --out "$T/x.txt"
# another key set of the same preset: same parameter id, wrong secret key -> noise, refused
must_fail "wrong secret key" "$HECNN" decrypt "${P2[@]}" --secret-key "$T/k2/secret.key" --in "$T/pk.ct" --out "$T/x.txt"
must_fail "wrong secret key" "$HECNN" decrypt "${P2[@]}" --secret-key "$T/k2/secret.key" --in "$T/sk.ct" --out "$T/x.txt"
# another parameter set: refused by parameter id
run "$HECNN" params --preset n14 --out "$T/n14.params"
must_fail "PARAMS_MISMATCH" "$HECNN" decrypt --params "$T/n14.params" --secret-key "$T/k1/secret.key" --in "$T/pk.ct" --out "$T/x.txt"
must_fail "PARAMS_MISMATCH" "$HECNN" encrypt --params "$T/n14.params" --public-key "$T/k1/public.key" --in "$T/v.txt" --out "$T/x.ct"
# corrupted key files: a secret coefficient out of {-1,0,1}, a public coefficient >= its modulus,
# a flipped magic byte, a wrong file given as key
cp "$T/k1/secret.key" "$T/bad.key"
printf '\x07' | dd of="$T/bad.key" bs=1 seek=200 conv=notrunc 2>/dev/null
must_fail "BAD_FORMAT.*secret key coefficient" \
    "$HECNN" decrypt "${P1[@]}" --secret-key "$T/bad.key" --in "$T/pk.ct" --out "$T/x.txt"
cp "$T/k1/public.key" "$T/badpk.key"
printf '\xff\xff\xff\xff\xff\xff\xff\xff' | dd of="$T/badpk.key" bs=1 seek=1000 conv=notrunc 2>/dev/null
must_fail "BAD_FORMAT.*modulus" "$HECNN" encrypt "${P1[@]}" --public-key "$T/badpk.key" --in "$T/v.txt" --out "$T/x.ct"
cp "$T/k1/secret.key" "$T/magic.key"
printf 'X' | dd of="$T/magic.key" bs=1 seek=0 conv=notrunc 2>/dev/null
must_fail "magic" "$HECNN" decrypt "${P1[@]}" --secret-key "$T/magic.key" --in "$T/pk.ct" --out "$T/x.txt"
must_fail "expected a secret key" "$HECNN" decrypt "${P1[@]}" --secret-key "$T/k1/public.key" --in "$T/pk.ct" --out "$T/x.txt"
must_fail "expected a parameter set" "$HECNN" decrypt --params "$T/k1/secret.key" --secret-key "$T/k1/secret.key" --in "$T/pk.ct" --out "$T/x.txt"
# bad values
printf '1\nfoo\n' >"$T/junk.txt"
must_fail "line 2" "$HECNN" encrypt "${P1[@]}" --public-key "$T/k1/public.key" --in "$T/junk.txt" --out "$T/x.ct"
printf '1\nnan\n' >"$T/nan.txt"
must_fail "line 2" "$HECNN" encrypt "${P1[@]}" --public-key "$T/k1/public.key" --in "$T/nan.txt" --out "$T/x.ct"
: >"$T/empty.txt"
must_fail "no values" "$HECNN" encrypt "${P1[@]}" --public-key "$T/k1/public.key" --in "$T/empty.txt" --out "$T/x.ct"
printf '1e300\n' >"$T/huge.txt"
must_fail "overflow" "$HECNN" encrypt "${P1[@]}" --public-key "$T/k1/public.key" --in "$T/huge.txt" --out "$T/x.ct"
must_fail "do not fit" "$HECNN" encrypt "${P1[@]}" --public-key "$T/k1/public.key" --in "$T/v.txt" --out "$T/x.ct" --slots 2
printf 'abc' >"$T/odd.bin"
must_fail "trailing bytes" "$HECNN" encrypt "${P1[@]}" --public-key "$T/k1/public.key" --in "$T/odd.bin" --binary --out "$T/x.ct"
[ ! -e "$T/x.ct" ] && ok || bad "a failed encrypt left an output file"

summary

# Shared by the tool tests in tests/cli/*.sh: a scratch folder, counters and assertions.
# Source it after setting HECNN; end the script with `summary`.
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
# run CMD...: must succeed
run() {
    if "$@" >"$T/out" 2>"$T/err"; then ok; else bad "exit $? from: $* :: $(cat "$T/err")"; fi
}
# expect RC PATTERN CMD...: exit status exactly RC and stderr matching PATTERN
expect() {
    local want=$1 pattern=$2
    shift 2
    "$@" >"$T/out" 2>"$T/err"
    local rc=$?
    if [ $rc -ne "$want" ]; then bad "exit $rc (want $want) from: $* :: $(cat "$T/err")"; return; fi
    if grep -Eq -- "$pattern" "$T/err"; then ok; else bad "stderr of '$*' lacks /$pattern/: $(cat "$T/err")"; fi
}
# must_fail PATTERN CMD...: a non-zero exit that is not a crash, and stderr matching PATTERN
must_fail() {
    local pattern=$1
    shift
    "$@" >"$T/out" 2>"$T/err"
    local rc=$?
    if [ $rc -eq 0 ]; then bad "succeeded: $*"; return; fi
    if [ $rc -ge 128 ]; then bad "crashed (signal $((rc - 128))): $*"; return; fi
    if grep -Eq -- "$pattern" "$T/err"; then ok; else bad "stderr of '$*' lacks /$pattern/: $(cat "$T/err")"; fi
}
# reseal FILE: recompute the SHA-256 that ends a hecnn object (one object, not a key set) after a
# deliberate edit, so that the edit is judged on its own and not as damage
reseal() {
    local n
    n=$(($(stat -c %s "$1") - 32))
    head -c "$n" "$1" | openssl dgst -sha256 -binary | dd of="$1" bs=1 seek="$n" conv=notrunc 2>/dev/null
}
summary() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
}

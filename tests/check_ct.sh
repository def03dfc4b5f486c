#!/usr/bin/env bash
# Constant-time check: runs CT_SECRET (tests/ct_secret.c) under valgrind's memcheck, which reports
# every branch and memory address that depends on the secrets the program marks undefined; any
# report fails. Once per SIMD level valgrind can run (portable and AVX2: it has no AVX-512).
# Exit 77 (skipped) only when valgrind is not installed (scripts/setup.sh installs it).
# Usage: check_ct.sh CT_SECRET
set -u
bin=${1:?usage: check_ct.sh CT_SECRET}
if ! command -v valgrind >/dev/null; then
    echo "SKIP: valgrind is not installed (scripts/setup.sh installs it); the constant-time check did not run"
    exit 77
fi
status=0
for isa in portable avx2; do
    echo "== HECNN_FORCE_ISA=$isa"
    HECNN_FORCE_ISA=$isa OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive \
        valgrind -q --tool=memcheck --error-exitcode=1 --track-origins=yes "$bin" || status=1
done
exit $status

#!/usr/bin/env bash
# The service under load with real inference, scaled down (bench/serve_load.sh; its full run, 16
# clients and 64 jobs, is issue 11's load target in docs/BENCHMARKS.md): 4 clients, each with its
# own token, register the key set and submit 2 jobs each of the tiny graph model at the test preset
# at once into a queue of 1 beside 2 workers, so that some submissions meet a full queue (429) and
# are retried with back-off. Every result must be byte for byte the local `model infer`'s on the same
# input and decrypt to the same scores; the server's peak RSS must stay under --memory-limit; every
# answer must be 2xx or an intended 429, at least one 429; the server exits 0 on SIGTERM.
# Usage: serve_load.sh HECNN SOURCE_DIR
set -u
HECNN=${1:?usage: serve_load.sh HECNN SOURCE_DIR}
SRC=${2:?usage: serve_load.sh HECNN SOURCE_DIR}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec bash "$SRC/bench/serve_load.sh" "$HECNN" --clients 4 --jobs 8 --inputs 2 --workers 2 --queue 1 --memory-limit 2560M \
    --timeout 240 --min-429 1

#!/usr/bin/env bash
# One allocator in the library: every allocation goes through src/util/alloc.c (hecnn_alloc,
# hecnn_calloc, hecnn_free, hecnn_secure_free), so that secrets can be freed through the wiping path.
# Fails on a raw malloc/calloc/realloc/free call anywhere else under src/.
set -u
src="${1:?usage: check_allocator.sh SOURCE_DIR}/src"
hits=$(grep -rnE '(^|[^A-Za-z0-9_.>])(malloc|calloc|realloc|free|aligned_alloc|posix_memalign|strdup)\(' "$src" \
         --include='*.c' --include='*.h' | grep -v "^$src/util/alloc.c:" | grep -vE ':[0-9]+:\s*(/\*|\*|//)')
if [ -n "$hits" ]; then
  echo "raw allocation outside src/util/alloc.c:"
  echo "$hits"
  echo "0 passed, 1 failed"
  exit 1
fi
echo "1 passed, 0 failed"

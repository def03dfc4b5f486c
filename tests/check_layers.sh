#!/usr/bin/env bash
# The layering of docs/ARCHITECTURE.md: a file under src/<layer>/ includes headers of its own layer
# and the layers below it only (util < math < ring < rlwe < ckks < circuits < nn). Public headers
# count as the layer that implements them. Fails on an include from a higher layer, or from a
# header this script cannot place (a new folder or public header: add it below).
# Usage: check_layers.sh SOURCE_DIR
set -u
root="${1:?usage: check_layers.sh SOURCE_DIR}"
layers=(util math ring rlwe ckks circuits nn)
declare -A rank
for i in "${!layers[@]}"; do rank[${layers[$i]}]=$i; done
declare -A public=([status.h]=util [ckks.h]=ckks [circuits.h]=circuits [graph.h]=nn [nn.h]=nn [plan.h]=nn [hecnn.h]=nn)

bad=0
files=0
for layer in "${layers[@]}"; do
  [ -d "$root/src/$layer" ] || { echo "missing layer folder src/$layer"; bad=1; continue; }
  while IFS= read -r file; do
    files=$((files + 1))
    while IFS=: read -r line header; do
      dir=${header%%/*}
      [ "$dir" = "$header" ] && dir=$layer # a header named without a folder: the file's own
      if [ "$dir" = hecnn ]; then
        owner=${public[${header#hecnn/}]:-}
      else
        owner=$dir
      fi
      if [ -z "$owner" ] || [ -z "${rank[$owner]:-}" ]; then
        echo "${file#"$root"/}:$line: \"$header\" belongs to no known layer"
        bad=1
      elif [ "${rank[$owner]}" -gt "${rank[$layer]}" ]; then
        echo "${file#"$root"/}:$line: $layer includes \"$header\" from the higher layer $owner"
        bad=1
      fi
    done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$file" | sed -E 's/^([0-9]+):.*"([^"]+)".*/\1:\2/')
  done < <(find "$root/src/$layer" -type f \( -name '*.c' -o -name '*.h' \) | sort)
done
if [ "$bad" -ne 0 ]; then
  echo "0 passed, 1 failed"
  exit 1
fi
echo "$files files, every include from the same layer or below"
echo "1 passed, 0 failed"

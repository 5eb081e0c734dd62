#!/usr/bin/env bash
# Peak memory of `abliterate ablate` on a generated Qwen3.5-shaped BF16 model (default 2 GB), measured with
# GNU time; a plain `cat` copy of the same files gives the disk-bound floor for comparison.
# Usage: scripts/measure-ablate-rss.sh [SIZE_GB] [CHUNK_MB] [METHOD]   (needs /usr/bin/time: Debian package `time`)
# METHOD: standard (default, the plain --direction edit) or norm-preserving (the same edit as a recipe that
# keeps every written vector's norm; its column norms are accumulated in the same pass as rᵀW).
# Everything generated is deleted at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_GB="${1:-2}"
CHUNK_MB="${2:-32}"
METHOD="${3:-standard}"
if [ ! -x /usr/bin/time ]; then
  echo "measure-ablate-rss: /usr/bin/time is missing; install the Debian package 'time' (apt-get install -y time)" >&2
  exit 2
fi
WORK="$(mktemp -d "${TMPDIR:-/tmp}/ablate-rss.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

node node_modules/tsx/dist/cli.mjs scripts/measure-ablate-rss.ts "$WORK" "$(awk "BEGIN { printf \"%d\", $SIZE_GB * 1e9 }")"
sync

RECIPE_ARGS=()
if [ "$METHOD" != "standard" ]; then
  echo "{\"method\": \"$METHOD\", \"direction\": 0, \"components\": {\"embed\": 1, \"attn\": 1, \"mlp\": 1}}" >"$WORK/recipe.json"
  RECIPE_ARGS=(--recipe "$WORK/recipe.json")
fi
/usr/bin/time -v node bin/abliterate.mjs ablate --model "$WORK/model" --direction "$WORK/direction.json" "${RECIPE_ARGS[@]}" \
  --out "$WORK/out" --chunk-mb "$CHUNK_MB" >"$WORK/ablate.stdout" 2>"$WORK/ablate.stderr"
cat "$WORK/ablate.stdout"
PEAK_KB="$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$WORK/ablate.stderr")"
WALL="$(awk -F': ' '/Elapsed \(wall clock\)/ { print $2 }' "$WORK/ablate.stderr")"
CPU_USER="$(awk -F': ' '/User time/ { print $2 }' "$WORK/ablate.stderr")"
CPU_SYSTEM="$(awk -F': ' '/System time/ { print $2 }' "$WORK/ablate.stderr")"
rm -rf "$WORK/out"
sync

mkdir -p "$WORK/copy"
START="$(date +%s.%N)"
for file in "$WORK"/model/*; do
  [ -f "$file" ] && cat "$file" >"$WORK/copy/$(basename "$file")"
done
sync
END="$(date +%s.%N)"

BYTES="$(du -sb "$WORK/model" | cut -f1)"
echo "model:            $(awk "BEGIN { printf \"%.2f GB\", $BYTES / 1e9 }") (BF16, Qwen3.5-shaped, 2 shards), chunk ${CHUNK_MB} MiB, method ${METHOD}"
echo "ablate peak RSS:  $(awk "BEGIN { printf \"%.1f MB\", $PEAK_KB / 1024 }")"
echo "ablate wall time: $WALL (CPU: user ${CPU_USER} s, system ${CPU_SYSTEM} s)"
echo "cat copy time:    $(awk "BEGIN { printf \"%.1f s\", $END - $START }") (same files, page cache as warm as for the ablation)"
echo "load average:     $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"

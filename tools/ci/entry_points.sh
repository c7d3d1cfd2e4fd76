#!/usr/bin/env bash
# Runs every documented entry point (tools/ci/entry_points.tsv: example, arguments) from the
# release example binaries, in order, into a fresh runs folder, and prints a Markdown table
# of exit codes and wall seconds. Fails if any entry point fails.
#
#   bash tools/ci/entry_points.sh [target/release/examples] [runs folder]
#
# In the table file, `{runs}` stands for the runs folder (fresh unless given).
set -uo pipefail
cd "$(dirname "$0")/../.."
bin_dir=${1:-target/release/examples}
runs=${2:-$(mktemp -d)}
mkdir -p "$runs"
failures=0
count=0
echo "| example | arguments | exit | seconds |"
echo "| --- | --- | --- | --- |"
while IFS=$'\t' read -r example args; do
  [[ -z "$example" || "$example" == \#* ]] && continue
  count=$((count + 1))
  args=${args//\{runs\}/$runs}
  log="$runs/$example.$count.log"
  start=$(date +%s.%N)
  # shellcheck disable=SC2086
  "$bin_dir/$example" $args >"$log" 2>&1 </dev/null
  rc=$?
  end=$(date +%s.%N)
  secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
  echo "| $example | \`${args//$runs/runs}\` | $rc | $secs |"
  if [[ $rc -ne 0 ]]; then
    failures=$((failures + 1))
    echo "--- last lines of $log:" >&2
    tail -n 20 "$log" >&2
  fi
done < tools/ci/entry_points.tsv
echo
echo "entry points run: $count, failing: $failures"
[[ $failures -eq 0 ]]

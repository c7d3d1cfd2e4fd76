#!/usr/bin/env bash
# Runs every bad flag / file input listed in tools/ci/bad_inputs.tsv against the release
# example binaries and checks that each one is refused: non-zero exit, a message on stderr
# that contains the expected words, and no output folder written. Prints a Markdown table
# (example, arguments, exit code, seconds, first line of the message).
#
#   bash tools/ci/bad_inputs.sh [target/release/examples] [a trained model folder]
#
# In the table file, `{out}` stands for a fresh folder path that must not exist after the
# run, `{bad}` for a folder of prepared bad files (made below) and `{model}` for a valid
# classifier checkpoint folder (the second argument, e.g. quickstart's model; rows that
# need it are skipped, and say so, when it is not given).
set -uo pipefail
# Users see errors without a backtrace (capturing one makes anyhow reports take seconds).
export RUST_BACKTRACE=0
cd "$(dirname "$0")/../.."
bin_dir=${1:-target/release/examples}
model=${2:-}
table=tools/ci/bad_inputs.tsv
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Prepared bad files.
bad="$work/bad"
mkdir -p "$bad/not_a_model" "$bad/classifier_dir" "$bad/emptydir"
printf 'x' > "$bad/afile"
printf 'not json' > "$bad/not_a_model/config.json"
# A 136-byte .npy whose header declares a (100000, 100000) f32 array (40 GB).
python3 - "$bad/huge.npy" <<'PY'
import struct, sys
header = "{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000), }"
header = header.ljust(136 - 10 - 1) + "\n"
with open(sys.argv[1], "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
PY
printf 'garbage' > "$bad/garbage.npy"
printf '\x08\x02\x12\x03abc' > "$bad/garbage.onnx"
printf '{"conv_channels":[4,8]}' > "$bad/classifier_dir/config.json"

failures=0
count=0
echo "| example | arguments | exit | seconds | message |"
echo "| --- | --- | --- | --- | --- |"
while IFS=$'\t' read -r example args expect; do
  [[ -z "$example" || "$example" == \#* ]] && continue
  if [[ "$args" == *"{model}"* && -z "$model" ]]; then
    echo "| $example | \`$args\` | skipped | | no model folder given |"
    continue
  fi
  count=$((count + 1))
  out="$work/out$count"
  args=${args//\{model\}/$model}
  args=${args//\{out\}/$out}
  args=${args//\{bad\}/$bad}
  start=$(date +%s.%N)
  # shellcheck disable=SC2086
  "$bin_dir/$example" $args >"$work/stdout" 2>"$work/stderr" </dev/null
  rc=$?
  end=$(date +%s.%N)
  secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
  msg=$(grep -v '^\s*$' "$work/stderr" | head -n 1 | cut -c1-160 | sed 's/|/\\|/g')
  verdict=""
  [[ $rc -eq 0 ]] && verdict="exit 0"
  grep -qiF -- "$expect" "$work/stderr" || verdict="$verdict; message lacks '$expect'"
  [[ -e "$out" ]] && verdict="$verdict; wrote $out"
  if [[ -n "$verdict" ]]; then
    failures=$((failures + 1))
    msg="FAIL ($verdict): $msg"
  fi
  echo "| $example | \`${args//$work/…}\` | $rc | $secs | $msg |"
done < "$table"
echo
echo "bad inputs tried: $count, not refused cleanly: $failures"
[[ $failures -eq 0 ]]

#!/bin/bash
# AVX2 vs AVX-512 paths of the matrix-free projector in one tomo_timing binary, alternating
# (NETINV_TOMO_SIMD forces the path). Prints one line per process: round, path, threads,
# the 1-minute load average, and tomo_timing's JSON line (SIRT, matrix-free, 3 repeats;
# 20 iterations at 128 / 256 px, 10 at 512 px).
#
#   tools/perf/simd_ab.sh target/tomo_table_bin/tomo_timing-<commit> THREADS ROUNDS > out.log
#   python3 tools/perf/simd_ab_summary.py out.log
BIN=$1; THREADS=$2; ROUNDS=$3
for r in $(seq 1 "$ROUNDS"); do
  for spec in "128 90 20" "256 360 20" "512 720 10"; do
    set -- $spec
    for simd in avx2 avx512; do
      out=$(NETINV_TOMO_SIMD=$simd "$BIN" --size "$1" --angles "$2" --iterations "$3" \
        --operator matrix-free --threads "$THREADS" --repeats 3)
      echo "round=$r simd=$simd threads=$THREADS load=$(cut -d' ' -f1 /proc/loadavg) $out"
    done
  done
done

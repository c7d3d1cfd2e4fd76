"""Summarises logs of tools/perf/simd_ab.sh: per size and path the median over rounds of
the process CPU time and the wall time per SIRT iteration, and AVX-512 / AVX2.

    python3 tools/perf/simd_ab_summary.py results/perf/simd_ab_1t.log [more logs]
"""

import json
import statistics
import sys


def main():
    rows = {}
    for path in sys.argv[1:]:
        for line in open(path):
            if " {" not in line:
                continue
            head, js = line.split(" {", 1)
            tags = dict(kv.split("=") for kv in head.split())
            d = json.loads("{" + js)
            key = (int(tags["threads"]), d["size"], d["angles"])
            d["load"] = float(tags["load"])
            rows.setdefault(key, {}).setdefault(tags["simd"], []).append(d)
    print("| threads | case | AVX2 CPU / wall (ms) | AVX-512 CPU / wall (ms) | AVX-512 / AVX2 "
          "(1 thread: CPU, 2 threads: wall) | rounds | load (1 min) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for (threads, n, angles), by in sorted(rows.items()):
        med = {
            p: (1e3 * statistics.median(r["cpu_s_per_iter"] for r in rs),
                1e3 * statistics.median(r["wall_s_per_iter"] for r in rs))
            for p, rs in by.items()
        }
        loads = [r["load"] for rs in by.values() for r in rs]
        a, b = med.get("avx2"), med.get("avx512")
        if not a or not b:
            continue
        k = 0 if threads == 1 else 1
        print(f"| {threads} | sirt-iter/{n}px-{angles}ang | {a[0]:.2f} / {a[1]:.2f} | "
              f"{b[0]:.2f} / {b[1]:.2f} | {b[k] / a[k]:.2f}x | {len(by['avx2'])} | "
              f"{min(loads):.1f}-{max(loads):.1f} |")


if __name__ == "__main__":
    main()

"""Regenerates the CNN table of docs/performance.md: netinv-small beside PyTorch, one run.

From the repository root:

    python3 tools/perf/models_table.py [--rounds 3] [--source HEAD|worktree] [--cases a,b]

Builds `benches/models_timing.rs` (`cargo bench --bench models_timing --no-run`, the
executable taken from cargo's JSON messages) from a `git archive` export of `--source`
(default HEAD, so uncommitted edits are not measured; `--source worktree` builds the work
tree, and the caption then says -dirty if it is), then runs `--rounds` alternating rounds.
In every round, for every case (`train-epoch`, `invert-b10`, `invert-bn-b200`,
`train-step`; see the binary's doc), four separate processes run in an order rotated from
round to round: PyTorch (`tools/perf/torch_models.py`) at 1 and 2 threads
(`torch.set_num_threads`, `OMP_NUM_THREADS`) and netinv at 1 and 2 threads
(`RAYON_NUM_THREADS`, which sizes candle's pool and so the custom ops' threads).

Figures are medians over rounds of each process's median over its repeats, per epoch or per
step. 1-thread comparisons use process CPU time (robust to a busy machine), 2-thread ones
wall time (meaningful only on a quiet machine: before every process the script waits, up to
`--max-wait` s, until other processes use at most `--quiet-limit` cores, and records what
they used). The netinv processes also print a hash of their result's bits; the table says
whether 1 and 2 threads gave the same bits.

Writes the markdown between `<!-- models_table:begin -->` and `<!-- models_table:end -->`
in docs/performance.md and every raw measurement to results/perf/models_table.json
(`--from-json FILE` rewrites the markdown from such a file without measuring), and prints
the verdict on issue 19's targets.
"""

import argparse
import datetime
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tomo_table as tt  # noqa: E402  (snapshot, CPU model, load and quiet helpers)

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "performance.md"
JSON_OUT = ROOT / "results" / "perf" / "models_table.json"
BEGIN, END = "<!-- models_table:begin -->", "<!-- models_table:end -->"

# case: (repeats, steps per repeat, description)
CASES = {
    "train-epoch": (3, 1, "training epoch (`train_classifier` defaults: SGD, batch 64, 8,000 digits, no eval)"),
    "invert-b10": (5, 40, "inversion step, batch 10 (frozen net, Adam on x, clamp)"),
    "invert-bn-b200": (5, 10, "inversion step, BN net, batch 200 (per-image BN prior, backward to x)"),
    "train-step": (5, 20, "training step, batch 64 (plain SGD)"),
}
# Issue 19's targets.
TARGET_1T = {"train-epoch": 0.85, "invert-b10": 0.6, "invert-bn-b200": 0.6}
TARGET_2T_OVER_1T = {"train-epoch": 0.6, "invert-bn-b200": 0.6}


def build(src, tag):
    """Builds models_timing from the tree at `src`; returns a private copy's path."""
    env = dict(os.environ, CARGO_TARGET_DIR=str(ROOT / "target"))
    out = subprocess.run(
        ["cargo", "bench", "--bench", "models_timing", "--no-run", "--message-format=json"],
        cwd=src, env=env, check=True, stdout=subprocess.PIPE, text=True,
    ).stdout
    exe = None
    for line in out.splitlines():
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            continue
        if (
            msg.get("reason") == "compiler-artifact"
            and msg.get("target", {}).get("name") == "models_timing"
            and msg.get("executable")
        ):
            exe = msg["executable"]
    if exe is None:
        sys.exit("models_table: cargo did not report a models_timing executable")
    private = ROOT / "target" / "models_table_bin" / f"models_timing-{tag}"
    private.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(exe, private)
    return str(private)


def measurements(exe, python, torch_script, cases):
    jobs = []
    for case in cases:
        repeats, steps, _ = CASES[case]
        common = ["--case", case, "--repeats", str(repeats), "--steps", str(steps)]
        for threads in (1, 2):
            env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
            jobs.append((case, f"torch-{threads}t",
                         [python, torch_script, *common, "--threads", str(threads)], env))
        for threads in (1, 2):
            env = {"RAYON_NUM_THREADS": str(threads), "CANDLE_NUM_THREADS": str(threads)}
            jobs.append((case, f"netinv-{threads}t", [exe, "--bench", *common], env))
    return jobs


def summarise(raw):
    table = {}
    for m in raw:
        table.setdefault(m["case"], {}).setdefault(m["key"], []).append(m["result"])
    out = {}
    for case, keys in table.items():
        out[case] = {}
        for key, results in keys.items():
            out[case][key] = {
                "cpu_s": statistics.median(statistics.median(r["cpu_s"]) for r in results),
                "wall_s": statistics.median(statistics.median(r["wall_s"]) for r in results),
                "rounds": len(results),
                "bits": sorted({r["bits"] for r in results if "bits" in r}),
                "threads_reported": sorted({r["threads"] for r in results}),
            }
    return out


def fmt_t(s, per):
    if per == "epoch":
        return f"{s:.2f} s"
    v = 1e3 * s
    return f"{v:.1f} ms" if v >= 10 else f"{v:.2f} ms"


def verdict(summary):
    lines = []
    for case, target in TARGET_1T.items():
        s = summary.get(case)
        if not s or "torch-1t" not in s or "netinv-1t" not in s:
            continue
        r = s["netinv-1t"]["cpu_s"] / s["torch-1t"]["cpu_s"]
        lines.append(f"{case}: 1 thread CPU {r:.2f}x PyTorch "
                     f"({'met' if r <= target else 'missed'}, target <= {target}x)")
    for case, target in TARGET_2T_OVER_1T.items():
        s = summary.get(case)
        if not s or "netinv-2t" not in s or "netinv-1t" not in s:
            continue
        r = s["netinv-2t"]["wall_s"] / s["netinv-1t"]["wall_s"]
        lines.append(f"{case}: 2 threads wall {r:.2f}x the 1-thread wall "
                     f"({'met' if r <= target else 'missed'}, target <= {target}x)")
    for case, s in summary.items():
        b1, b2 = s.get("netinv-1t", {}).get("bits"), s.get("netinv-2t", {}).get("bits")
        if b1 and b2:
            same = b1 == b2 and len(b1) == 1
            lines.append(f"{case}: result bits at 1 and 2 threads "
                         f"{'identical' if same else 'DIFFER'} ({b1[0]} / {b2[0]})")
    return lines


def markdown(data):
    meta, summary = data["meta"], data["summary"]
    fmt_load = lambda l: "/".join(f"{v:.2f}" for v in l) if l else "n/a"  # noqa: E731
    L = [
        f"Generated by `tools/perf/models_table.py` on {meta['date']}: CPU {meta['cpu_model']}, "
        f"{meta['cores']} cores, commit {meta['commit']}, {meta['rustc']}, PyTorch "
        f"{meta['torch_version']}; load average (1/5/15 min) {fmt_load(meta['loadavg_start'])} "
        f"at the start, {fmt_load(meta['loadavg_end'])} at the end; other processes used "
        f"{tt.fmt_cores(meta)} during the measurements (median, max; before each process the "
        f"script waited, at most {meta['max_wait_s']:g} s, until they used <= "
        f"{meta['quiet_limit']} cores); {meta['rounds']} alternating rounds, "
        f"{meta['elapsed_s'] / 60:.1f} min. Raw measurements: `results/perf/models_table.json`. "
        "Command:",
        "",
        "```text",
        meta["command"],
        "```",
        "",
        "Medians over rounds of each process's median over its repeats. CPU: process CPU time "
        "(all threads); wall: elapsed time. 1-thread ratios compare CPU times, 2-thread ones "
        "wall times; \"2t / 1t\" is netinv's 2-thread wall time over its own 1-thread wall time. "
        "Bits: whether netinv's result (weights, images or image gradient) had the same bits "
        "at 1 and 2 threads.",
        "",
        "| case | PyTorch 1 thread CPU | netinv 1 thread CPU | ratio | PyTorch 2 threads wall "
        "| netinv 1 thread wall | netinv 2 threads wall (CPU) | netinv 2t / 1t | netinv / "
        "PyTorch at 2 threads | bits 1t = 2t |",
        "| --- " * 10 + "|",
    ]
    for case in CASES:
        s = summary.get(case)
        if not s or "torch-1t" not in s or "netinv-1t" not in s:
            continue
        per = "epoch" if case == "train-epoch" else "step"
        t1, t2, n1, n2 = s["torch-1t"], s["torch-2t"], s["netinv-1t"], s["netinv-2t"]
        r1 = n1["cpu_s"] / t1["cpu_s"]
        r21 = n2["wall_s"] / n1["wall_s"]
        bold = lambda r, t: f"**{r:.2f}x**" if t is not None and r <= t else f"{r:.2f}x"  # noqa: E731
        same = n1["bits"] == n2["bits"] and len(n1["bits"]) == 1
        L.append("| " + " | ".join([
            f"{case}: {CASES[case][2]}",
            fmt_t(t1["cpu_s"], per),
            fmt_t(n1["cpu_s"], per),
            bold(r1, TARGET_1T.get(case)),
            fmt_t(t2["wall_s"], per),
            fmt_t(n1["wall_s"], per),
            f"{fmt_t(n2['wall_s'], per)} ({fmt_t(n2['cpu_s'], per)})",
            bold(r21, TARGET_2T_OVER_1T.get(case)),
            f"{n2['wall_s'] / t2['wall_s']:.2f}x",
            "yes" if same else "**no**",
        ]) + " |")
    L += ["", "Issue 19's targets (1 thread: epoch <= 0.85x PyTorch, inversion <= 0.6x; 2 "
          "threads: epoch and BN batch-200 inversion <= 0.6x the 1-thread wall time), from this "
          "table:", ""]
    L += [f"- {line}" for line in verdict(summary)]
    return "\n".join(L)


def write_doc(md):
    text = DOC.read_text()
    if BEGIN not in text or END not in text:
        sys.exit(f"models_table: markers {BEGIN} / {END} not found in {DOC}")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(head + BEGIN + "\n" + md + "\n" + END + tail)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cases", help="comma-separated subset of " + ",".join(CASES))
    ap.add_argument("--source", default="HEAD",
                    help="commit to measure (git archive export; default HEAD) or 'worktree'")
    ap.add_argument("--quiet-limit", type=float, default=0.5)
    ap.add_argument("--max-wait", type=float, default=120)
    default_py = "/work/venv/bin/python" if Path("/work/venv/bin/python").exists() else sys.executable
    ap.add_argument("--python", default=default_py, help="Python with PyTorch")
    ap.add_argument("--from-json", type=Path, help="rewrite the markdown from this file only")
    ap.add_argument("--no-write", action="store_true", help="print, do not write files")
    a = ap.parse_args()

    if a.from_json:
        md = markdown(json.loads(a.from_json.read_text()))
        print(md)
        if not a.no_write:
            write_doc(md)
        return

    cases = [c for c in CASES if not a.cases or c in a.cases.split(",")]
    command = "python3 tools/perf/models_table.py" + "".join(" " + shlex.quote(x) for x in sys.argv[1:])
    start = datetime.datetime.now(datetime.timezone.utc)
    load_start = tt.loadavg()
    if a.source == "worktree":
        src, (commit, dirty) = ROOT, tt.git_commit()
    else:
        (src, commit), dirty = tt.snapshot(a.source), []
    print(f"models_table: building models_timing at {commit} in {src}", file=sys.stderr)
    exe = build(src, commit)
    torch_script = str(ROOT / "tools" / "perf" / "torch_models.py")
    jobs = measurements(exe, a.python, torch_script, cases)
    raw = []
    for r in range(a.rounds):
        for case, key, cmd, env in tt.rotated(jobs, r):
            before, waited = tt.wait_for_quiet(a.quiet_limit, a.max_wait)
            res = tt.run_json(cmd, src if cmd[0] == exe else ROOT, env)
            raw.append({"round": r, "case": case, "key": key, "command": cmd, "env": env,
                        "other_cores_before": before, "waited_s": waited,
                        "loadavg": tt.loadavg(), "result": res})
            oc = res["other_cores"]
            print(f"round {r} {case:15} {key:10} cpu {statistics.median(res['cpu_s']):.4f} s  "
                  f"wall {statistics.median(res['wall_s']):.4f} s  bits {res.get('bits', '-')}  "
                  f"other cores {'n/a' if oc is None else f'{oc:.2f}'} (waited {waited:.0f} s)",
                  file=sys.stderr)
    end = datetime.datetime.now(datetime.timezone.utc)
    others = [m["result"]["other_cores"] for m in raw if m["result"]["other_cores"] is not None]
    torch_v = [m["result"].get("torch") for m in raw if m["key"].startswith("torch")]
    meta = {
        "date": start.strftime("%Y-%m-%d %H:%M") + "-" + end.strftime("%H:%M UTC"),
        "cpu_model": tt.cpu_model(),
        "cores": os.cpu_count(),
        "commit": commit,
        "source": a.source,
        "dirty_paths": dirty,
        "rustc": tt.sh(["rustc", "-V"]).strip().split(" (")[0],
        "torch_version": torch_v[0] if torch_v else None,
        "loadavg_start": load_start,
        "loadavg_end": tt.loadavg(),
        "other_cores_median": statistics.median(others) if others else None,
        "other_cores_max": max(others) if others else None,
        "quiet_limit": a.quiet_limit,
        "max_wait_s": a.max_wait,
        "rounds": a.rounds,
        "elapsed_s": (end - start).total_seconds(),
        "command": command,
    }
    data = {"meta": meta, "summary": summarise(raw), "raw": raw}
    md = markdown(data)
    print(md)
    for line in verdict(data["summary"]):
        print("verdict:", line, file=sys.stderr)
    if not a.no_write:
        JSON_OUT.parent.mkdir(parents=True, exist_ok=True)
        JSON_OUT.write_text(json.dumps(data, indent=1) + "\n")
        write_doc(md)
        print(f"models_table: wrote {DOC.relative_to(ROOT)} and {JSON_OUT.relative_to(ROOT)}",
              file=sys.stderr)


if __name__ == "__main__":
    main()

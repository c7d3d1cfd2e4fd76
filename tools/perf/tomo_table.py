"""Regenerates the tomography and SSIM tables of docs/performance.md: netinv beside ASTRA
and scikit-image, one run.

From the repository root:

    python3 tools/perf/tomo_table.py [--rounds 3] [--csr auto|on|off] [--no-fbp] [--no-ssim]
        [--sizes 128,256] [--simd avx2]

Builds `benches/tomo_timing.rs` (`cargo bench --bench tomo_timing --no-run`, the executable
taken from cargo's JSON messages) from a `git archive` export of `--source` (default HEAD,
so uncommitted edits in the work tree are not measured; `--source worktree` builds the work
tree and the caption then says -dirty), then runs `--rounds` alternating rounds. In every round,
for every size (128 px / 90 angles, 256 / 360, 512 / 720; `ceil(sqrt(2) N) + 2` detectors),
each measurement is a separate process, and the order of the processes is rotated from
round to round so that no tool always runs first or last:

* ASTRA 2.5 CPU SIRT (`tools/perf/astra_sirt.py`, `OMP_NUM_THREADS=1`; ASTRA's CPU
  algorithms are single-threaded), process CPU time and wall time;
* netinv SIRT with `RayTransform` (matrix-free Joseph) at 1 rayon thread and at 2;
* netinv SIRT with `CsrOperator` at 1 and 2 threads (`--csr auto`: only while
  MemAvailable is at least 1.5x the matrix's estimated peak, about 8.5 GB at 512 px);
* unless `--no-fbp`: FBP at 256 / 360, ASTRA FBP, scikit-image `iradon`, netinv at 1 / 2;
* unless `--no-ssim`: SSIM of a 512x512 f32 pair (Gaussian 11x11 and scikit-image's 7x7
  box), scikit-image's `structural_similarity` and netinv-metrics' `ssim`, 1 thread.

The projector runs the fastest SIMD path of the CPU unless `--simd` forces one (it sets
`NETINV_TOMO_SIMD` for netinv's processes); the caption names the path used.

`sirt` times are per iteration of a whole `iterations`-iteration run from zero, weights
included (ASTRA's `run(20)` / 20). Figures are medians over rounds of each process's own
median over its repeats. Ratios compare netinv's 1-thread process CPU time, and its
2-thread wall time, with ASTRA's 1-thread process CPU time (ASTRA has no second thread;
its CPU time is its best-case wall time on a quiet machine). Peak RSS is each process's
`VmHWM` (ASTRA's includes Python and numpy, reported beside the resident set after the
imports).

Writes the markdown between `<!-- tomo_table:begin -->` and `<!-- tomo_table:end -->`, and
the SSIM table between `<!-- ssim_table:begin -->` and `<!-- ssim_table:end -->`, in
docs/performance.md and every raw measurement to results/perf/tomo_table.json
(`--from-json FILE` rewrites the markdown from such a file without measuring), and prints
the verdict on issue 19's targets.
"""

import argparse
import datetime
import json
import os
import re
import shlex
import shutil
import statistics
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "performance.md"
JSON_OUT = ROOT / "results" / "perf" / "tomo_table.json"
BEGIN, END = "<!-- tomo_table:begin -->", "<!-- tomo_table:end -->"
SSIM_BEGIN, SSIM_END = "<!-- ssim_table:begin -->", "<!-- ssim_table:end -->"

SIZES = [(128, 90, 20, 5), (256, 360, 20, 3), (512, 720, 20, 1)]  # N, angles, iters, repeats
FBP_SIZE = (256, 360, 5)  # N, angles, repeats
# algorithm, image size, calls per repeat, repeats
SSIM_CASES = [("ssim", 512, 20, 5), ("ssim-uniform7", 512, 20, 5)]
SSIM_LABELS = {
    "ssim": "Gaussian 11x11, sigma 1.5: Wang 2004",
    "ssim-uniform7": "7x7 box, sample covariance: scikit-image's default",
}
TARGET_SSIM = 0.5  # netinv <= 0.5x scikit-image
# Peak RSS of a CSR SIRT process measured at 256 px / 360 angles (1.07 GB); nonzeros grow
# as N^3 (angles, detectors and pixels per ray each grow as N).
CSR_PEAK_256 = 1.07e9

# Issue 19's targets for SIRT with RayTransform.
TARGET_CPU_1T = 0.4
TARGET_WALL_2T = 0.22
TARGET_RSS_512 = 100e6


def detectors(n):
    # ceil(sqrt(2) n) + 2, in integers (exact for any n).
    import math

    return math.isqrt(2 * n * n - 1) + 1 + 2


def sh(cmd, **kw):
    return subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True, **kw).stdout


def git_commit():
    commit = sh(["git", "rev-parse", "--short", "HEAD"]).strip()
    dirty = [
        line[3:]
        for line in sh(["git", "status", "--porcelain", "--untracked-files=no"]).splitlines()
    ]
    return commit + ("-dirty" if dirty else ""), dirty


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine() or "unknown CPU"


def mem_available():
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def loadavg():
    try:
        return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return None


def snapshot(rev):
    """Exports commit `rev` (`git archive`) to <tmp>/netinv_tomo_table_src/<sha>; returns its
    path and the short commit, so the measured code is exactly that commit even while the
    work tree is being edited. Not under target/: cargo does not check the mtimes of
    sources inside its target directory (a changed file there was reported Fresh)."""
    sha = sh(["git", "rev-parse", "--verify", rev + "^{commit}"]).strip()
    short = sh(["git", "rev-parse", "--short", sha]).strip()
    dest = Path(tempfile.gettempdir()) / "netinv_tomo_table_src" / sha
    if not (dest / "Cargo.toml").exists():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "archive", sha], cwd=ROOT, check=True, stdout=subprocess.PIPE
        ).stdout
        # -m: files get the extraction time, not the commit's, so cargo (whose fingerprints
        # compare source mtimes with the shared target directory's artifacts) rebuilds
        # netinv's crates instead of reusing another snapshot's build.
        subprocess.run(["tar", "-x", "-m", "-C", str(dest)], input=archive, check=True)
    return dest, short


def build(src, tag):
    """Builds the timing binary from the tree at `src` (the shared target directory keeps
    the dependencies' builds); returns the executable's path."""
    env = dict(os.environ, CARGO_TARGET_DIR=str(ROOT / "target"))
    out = subprocess.run(
        ["cargo", "bench", "--bench", "tomo_timing", "--no-run", "--message-format=json"],
        cwd=src,
        env=env,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    exe = None
    for line in out.splitlines():
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            continue
        if (
            msg.get("reason") == "compiler-artifact"
            and msg.get("target", {}).get("name") == "tomo_timing"
            and msg.get("executable")
        ):
            exe = msg["executable"]
    if exe is None:
        sys.exit("tomo_table: cargo did not report a tomo_timing executable")
    # A private copy: the shared target directory's executable has the same name for every
    # tree (cargo's hashes do not depend on the workspace path), so a build of the work
    # tree during the run would replace it.
    private = ROOT / "target" / "tomo_table_bin" / f"tomo_timing-{tag}"
    private.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(exe, private)
    return str(private)


def busy_seconds():
    """CPU seconds spent by the whole machine (all cores, not idle or iowait) since boot,
    from /proc/stat, or None elsewhere."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def other_load(seconds=1.0):
    """Cores used by other processes over `seconds` (this script sleeps meanwhile)."""
    b0 = busy_seconds()
    if b0 is None:
        return None
    time.sleep(seconds)
    return max(0.0, (busy_seconds() - b0) / seconds)


def wait_for_quiet(limit, max_wait):
    """Waits (up to `max_wait` s) until other processes use at most `limit` cores over a
    1-second sample; returns the last sample and the time waited."""
    t0 = time.monotonic()
    load = other_load()
    while load is not None and load > limit and time.monotonic() - t0 < max_wait:
        load = other_load()
    return load, time.monotonic() - t0


def run_json(cmd, cwd, env):
    """Runs one measurement process; returns its JSON line plus `other_cores`: the cores
    the rest of the machine used meanwhile (machine busy time from /proc/stat minus the
    child's own user + system time, over the child's wall time)."""
    full_env = dict(os.environ, **env)
    r0, b0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), busy_seconds(), time.monotonic()
    p = subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True)
    wall = time.monotonic() - t0
    b1, r1 = busy_seconds(), resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        sys.exit(f"tomo_table: {shlex.join(cmd)} failed ({p.returncode}):\n{p.stderr}")
    res = json.loads(p.stdout.strip().splitlines()[-1])
    child = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    res["process_wall_s"] = wall
    res["process_cpu_s"] = child
    res["other_cores"] = None if b0 is None else max(0.0, (b1 - b0 - child) / wall)
    return res


ONE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def measurements(exe, python, csr_sizes, fbp, ssim, simd_env):
    """Every (case, key, command, env) of one round, in a fixed base order."""
    jobs = []
    for n, angles, iters, repeats in SIZES:
        det = detectors(n)
        case = f"sirt/{n}px-{angles}ang"
        common = ["--size", str(n), "--angles", str(angles), "--iterations", str(iters)]
        common += ["--repeats", str(repeats)]
        astra = [python, "tools/perf/astra_sirt.py", *common, "--detectors", str(det)]
        jobs.append((case, "astra", astra, ONE_THREAD_ENV))
        ops = ["matrix-free"] + (["csr"] if n in csr_sizes else [])
        for op in ops:
            for threads in (1, 2):
                cmd = [exe, "--bench", *common, "--operator", op, "--threads", str(threads)]
                jobs.append((case, f"{op}-{threads}t", cmd, simd_env))
    if fbp:
        n, angles, repeats = FBP_SIZE
        det = detectors(n)
        case = f"fbp/{n}px-{angles}ang"
        common = ["--size", str(n), "--angles", str(angles), "--repeats", str(repeats)]
        for algo, key in (("fbp", "astra"), ("iradon", "skimage-iradon")):
            cmd = [python, "tools/perf/astra_sirt.py", *common, "--detectors", str(det)]
            jobs.append((case, key, cmd + ["--algorithm", algo], ONE_THREAD_ENV))
        for threads in (1, 2):
            cmd = [exe, "--bench", *common, "--algorithm", "fbp", "--operator", "matrix-free"]
            jobs.append(
                (case, f"matrix-free-{threads}t", cmd + ["--threads", str(threads)], simd_env)
            )
    if ssim:
        for algo, n, calls, repeats in SSIM_CASES:
            case = f"{algo}/{n}px"
            common = ["--size", str(n), "--iterations", str(calls), "--repeats", str(repeats)]
            common += ["--algorithm", algo]
            jobs.append((case, "skimage", [python, "tools/perf/astra_sirt.py", *common],
                         ONE_THREAD_ENV))
            jobs.append((case, "netinv-1t", [exe, "--bench", *common, "--threads", "1"], {}))
    return jobs


def rotated(jobs, r):
    """Round r's order: within each case the tools are rotated by r, and every other
    round is reversed, so each tool runs early and late across rounds."""
    by_case = {}
    for job in jobs:
        by_case.setdefault(job[0], []).append(job)
    out = []
    for case_jobs in by_case.values():
        k = r % len(case_jobs)
        case_jobs = case_jobs[k:] + case_jobs[:k]
        if r % 2 == 1:
            case_jobs = case_jobs[::-1]
        out.extend(case_jobs)
    return out


def summarise(raw):
    """Medians over rounds: {case: {key: {cpu, wall, rss, ...}}}."""
    table = {}
    for m in raw:
        table.setdefault(m["case"], {}).setdefault(m["key"], []).append(m["result"])
    out = {}
    for case, keys in table.items():
        out[case] = {}
        for key, results in keys.items():
            rss = [r["peak_rss_bytes"] for r in results if r.get("peak_rss_bytes")]
            out[case][key] = {
                "cpu_s": statistics.median(r["cpu_s_per_iter"] for r in results),
                "wall_s": statistics.median(r["wall_s_per_iter"] for r in results),
                "peak_rss_bytes": max(rss) if rss else None,
                "rounds": len(results),
            }
            base = [r.get("rss_after_import_bytes") for r in results]
            if any(base):
                out[case][key]["rss_after_import_bytes"] = max(b for b in base if b)
    return out


def ms(s):
    v = 1e3 * s
    return f"{v:.1f}" if v >= 100 else f"{v:.2f}" if v >= 10 else f"{v:.3f}"


def mb(b):
    if b is None:
        return "-"
    return f"{b / 1e9:.2f} GB" if b >= 1e9 else f"{b / 1e6:.0f} MB"


def ratio(a, b, bold_at=None):
    r = a / b
    s = f"{r:.2f}x"
    return f"**{s}**" if bold_at is not None and r <= bold_at else s


def verdict(summary):
    lines, ok_all = [], True
    for n, angles, _, _ in SIZES:
        case = f"sirt/{n}px-{angles}ang"
        s = summary.get(case, {})
        if "astra" not in s or "matrix-free-1t" not in s:
            continue
        a = s["astra"]["cpu_s"]
        r1 = s["matrix-free-1t"]["cpu_s"] / a
        r2 = s["matrix-free-2t"]["wall_s"] / a
        ok1, ok2 = r1 <= TARGET_CPU_1T, r2 <= TARGET_WALL_2T
        ok_all &= ok1 and ok2
        lines.append(
            f"{n} px / {angles} angles: 1 thread CPU {r1:.2f}x "
            f"({'met' if ok1 else 'missed'}, target <= {TARGET_CPU_1T}x), "
            f"2 threads wall {r2:.2f}x ({'met' if ok2 else 'missed'}, target <= {TARGET_WALL_2T}x)"
        )
        if n == 512:
            rss = s["matrix-free-1t"]["peak_rss_bytes"]
            if rss is not None:
                ok = rss < TARGET_RSS_512
                ok_all &= ok
                lines.append(
                    f"512 px / 720 angles peak RSS (RayTransform, 1 thread): {mb(rss)} "
                    f"({'met' if ok else 'missed'}, target < 100 MB)"
                )
    return lines, ok_all


def max_wait(meta):
    if meta.get("max_wait_s") is not None:
        return meta["max_wait_s"]
    m = re.search(r"--max-wait[ =](\S+)", meta.get("command", ""))
    return float(m.group(1)) if m else 120.0


def fmt_cores(meta):
    med, mx = meta.get("other_cores_median"), meta.get("other_cores_max")
    if med is None:
        return "an unknown number of cores"
    return f"{med:.2f} / {mx:.2f} cores"


def markdown(data):
    meta, summary = data["meta"], data["summary"]
    L = []
    load0, load1 = meta["loadavg_start"], meta["loadavg_end"]
    fmt_load = lambda l: "/".join(f"{v:.2f}" for v in l) if l else "n/a"  # noqa: E731
    simd = meta.get("simd")
    simd_text = (
        f", projector SIMD path `{simd}`" + (" (forced by `--simd`)" if meta.get("simd_forced") else "")
        if simd
        else ""
    )
    L.append(
        f"Generated by `tools/perf/tomo_table.py` on {meta['date']}: CPU {meta['cpu_model']}, "
        f"{meta['cores']} cores, commit {meta['commit']}, {meta['rustc']}{simd_text}, ASTRA "
        f"{meta['astra_version']}; load average (1/5/15 min) {fmt_load(load0)} at the start, "
        f"{fmt_load(load1)} at the end; other processes used {fmt_cores(meta)} during the "
        f"measurements (median, max; before each measurement the script waited, at most "
        f"{max_wait(meta):g} s, until they used <= {meta.get('quiet_limit', '?')} cores); "
        f"{meta['rounds']} alternating rounds, {meta['elapsed_s'] / 60:.1f} "
        f"min. Raw measurements: `results/perf/tomo_table.json`. Command:"
    )
    L.append("")
    L.append("```text")
    L.append(meta["command"])
    L.append("```")
    L.append("")
    L.append(
        "SIRT, milliseconds per iteration (a whole 20-iteration run from zero, weights "
        "included, / 20), medians over rounds; at 2 threads the process CPU time of the same "
        "run is given in brackets (wall near CPU / 2 means both threads ran). Ratios: netinv's 1-thread process CPU time and "
        "its 2-thread wall time over ASTRA's 1-thread process CPU time. Peak RSS: the "
        "process's `VmHWM` at 1 thread (ASTRA's includes Python, numpy and ASTRA: "
        f"{mb(meta.get('astra_rss_after_import_bytes'))} right after the imports)."
    )
    L.append("")
    L.append(
        "| case | ASTRA CPU (wall) | `RayTransform` 1 thread CPU | ratio | `RayTransform` "
        "2 threads wall (CPU) | ratio | `CsrOperator` 1 thread CPU | ratio | `CsrOperator` 2 "
        "threads wall (CPU) | ratio | peak RSS ASTRA / `RayTransform` / `CsrOperator` |"
    )
    L.append("| --- " * 11 + "|")
    for n, angles, _, _ in SIZES:
        case = f"sirt/{n}px-{angles}ang"
        s = summary.get(case)
        if not s or "astra" not in s:
            continue
        a = s["astra"]
        row = [f"sirt-iter/{n}px-{angles}ang", f"{ms(a['cpu_s'])} ({ms(a['wall_s'])})"]
        for op in ("matrix-free", "csr"):
            one, two = s.get(f"{op}-1t"), s.get(f"{op}-2t")
            if one is None:
                row += ["-", "-", "-", "-"]
                continue
            bold1 = TARGET_CPU_1T if op == "matrix-free" else None
            bold2 = TARGET_WALL_2T if op == "matrix-free" else None
            row += [ms(one["cpu_s"]), ratio(one["cpu_s"], a["cpu_s"], bold1)]
            row += [f"{ms(two['wall_s'])} ({ms(two['cpu_s'])})"]
            row += [ratio(two["wall_s"], a["cpu_s"], bold2)]
        csr = s.get("csr-1t")
        row.append(
            f"{mb(a['peak_rss_bytes'])} / {mb(s['matrix-free-1t']['peak_rss_bytes'])} / "
            f"{mb(csr['peak_rss_bytes']) if csr else '-'}"
        )
        L.append("| " + " | ".join(row) + " |")
    fcase = f"fbp/{FBP_SIZE[0]}px-{FBP_SIZE[1]}ang"
    if fcase in summary:
        f = summary[fcase]
        a = f["astra"]
        L.append("")
        L.append(
            "FBP (Ram-Lak), milliseconds per reconstruction, medians over rounds; ratios over "
            "ASTRA's 1-thread CPU time as above; scikit-image `iradon` (ramp filter, linear "
            f"interpolation, {data['meta'].get('skimage_version', '?')}) on the same sinogram."
        )
        L.append("")
        L.append(
            "| case | ASTRA CPU (wall) | scikit-image `iradon` CPU | ratio | `RayTransform` "
            "1 thread CPU | ratio | `RayTransform` 2 threads wall (CPU) | ratio | peak RSS ASTRA / "
            "iradon / `RayTransform` |"
        )
        L.append("| --- " * 9 + "|")
        sk, one, two = f["skimage-iradon"], f["matrix-free-1t"], f["matrix-free-2t"]
        L.append(
            "| "
            + " | ".join(
                [
                    f"fbp/{FBP_SIZE[0]}px-{FBP_SIZE[1]}ang",
                    f"{ms(a['cpu_s'])} ({ms(a['wall_s'])})",
                    ms(sk["cpu_s"]),
                    ratio(sk["cpu_s"], a["cpu_s"]),
                    ms(one["cpu_s"]),
                    ratio(one["cpu_s"], a["cpu_s"]),
                    f"{ms(two['wall_s'])} ({ms(two['cpu_s'])})",
                    ratio(two["wall_s"], a["cpu_s"]),
                    f"{mb(a['peak_rss_bytes'])} / {mb(sk['peak_rss_bytes'])} / "
                    f"{mb(one['peak_rss_bytes'])}",
                ]
            )
            + " |"
        )
    lines, ok_all = verdict(summary)
    L.append("")
    L.append(
        "Issue 19's targets for SIRT with `RayTransform` (1 thread CPU <= 0.4x ASTRA, 2 threads "
        "wall <= 0.22x, peak RSS < 100 MB at 512 px / 720 angles), from this table:"
    )
    L.append("")
    for line in lines:
        L.append(f"- {line}")
    if meta.get("skipped"):
        L.append("")
        L.append(f"Not measured in this run: {meta['skipped']}.")
    return "\n".join(L)


def ssim_markdown(data):
    """The SSIM block, or None if the run has no SSIM measurements."""
    meta, summary = data["meta"], data["summary"]
    cases = [(a, n) for a, n, _, _ in SSIM_CASES if f"{a}/{n}px" in summary]
    if not cases:
        return None
    calls, repeats = SSIM_CASES[0][2], SSIM_CASES[0][3]
    L = [
        f"Generated by `tools/perf/tomo_table.py` in the run of the tomography table below "
        f"({meta['date']}, CPU {meta['cpu_model']}, commit {meta['commit']}, "
        f"{meta['rounds']} alternating rounds; load and command there; raw measurements in "
        f"`results/perf/tomo_table.json`). Two 512x512 f32 images (a smooth pattern and a "
        f"seeded noisy copy), 1 thread, process CPU time per call: medians over rounds of "
        f"each process's median over {repeats} repeats of {calls} calls. scikit-image "
        f"{meta.get('skimage_version', '?')} `structural_similarity` on the f32 images "
        f"(`OMP_NUM_THREADS=1`), netinv-metrics `ssim` (computes in f64).",
        "",
        "| case | scikit-image CPU (ms) | netinv CPU (ms) | ratio netinv / scikit-image |",
        "| --- | --- | --- | --- |",
    ]
    verdicts = []
    for algo, n in cases:
        s = summary[f"{algo}/{n}px"]
        sk, ours = s["skimage"]["cpu_s"], s["netinv-1t"]["cpu_s"]
        r = ours / sk
        L.append(
            f"| `{algo}/{n}px` ({SSIM_LABELS[algo]}) | {ms(sk)} | {ms(ours)} | "
            f"{ratio(ours, sk, TARGET_SSIM)} |"
        )
        ok = r <= TARGET_SSIM
        verdicts.append(
            f"`{algo}/{n}px`: {r:.2f}x scikit-image ({'met' if ok else 'missed'}, "
            f"target <= {TARGET_SSIM}x)"
        )
    L.append("")
    L.append("The SSIM goal (netinv <= 0.5x scikit-image at 1 thread), from this table:")
    L.append("")
    L.extend(f"- {v}" for v in verdicts)
    return "\n".join(L)


def replace_block(text, begin, end, md):
    if begin not in text or end not in text:
        sys.exit(f"tomo_table: markers {begin} / {end} not found in {DOC}")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return head + begin + "\n" + md + "\n" + end + tail


def write_doc(md, ssim_md=None):
    text = replace_block(DOC.read_text(), BEGIN, END, md)
    if ssim_md is not None:
        text = replace_block(text, SSIM_BEGIN, SSIM_END, ssim_md)
    tmp = DOC.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(DOC)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--csr", choices=["auto", "on", "off"], default="auto")
    ap.add_argument("--no-fbp", action="store_true", help="skip the FBP rows")
    ap.add_argument("--no-ssim", action="store_true", help="skip the SSIM rows")
    ap.add_argument(
        "--simd",
        choices=["portable", "avx2", "avx512"],
        help="force the projector's SIMD path (NETINV_TOMO_SIMD; default: the fastest)",
    )
    ap.add_argument("--sizes", help="comma-separated subset of 128,256,512 (default all)")
    ap.add_argument(
        "--source",
        default="HEAD",
        help="commit to measure (exported with git archive; default HEAD), or 'worktree' "
        "to build the work tree as it is (the caption then says -dirty if it is)",
    )
    ap.add_argument(
        "--quiet-limit",
        type=float,
        default=0.5,
        help="before each measurement wait until other processes use at most this many "
        "cores (1-second samples; default 0.5)",
    )
    ap.add_argument("--max-wait", type=float, default=120, help="seconds to wait for quiet")
    default_py = "/work/venv/bin/python" if Path("/work/venv/bin/python").exists() else sys.executable
    ap.add_argument("--python", default=default_py, help="Python with astra-toolbox 2.5")
    ap.add_argument(
        "--exe",
        type=Path,
        help="skip the build: use target/tomo_table_bin/tomo_timing-<commit>, built by an "
        "earlier run of this script from the same --source",
    )
    ap.add_argument("--from-json", type=Path, help="rewrite the markdown from this file only")
    ap.add_argument("--no-write", action="store_true", help="print, do not write files")
    a = ap.parse_args()

    global SIZES
    if a.sizes:
        keep = {int(v) for v in a.sizes.split(",")}
        SIZES = [s for s in SIZES if s[0] in keep]

    if a.from_json:
        data = json.loads(a.from_json.read_text())
        md, ssim_md = markdown(data), ssim_markdown(data)
        print(md)
        if ssim_md:
            print("\n" + ssim_md)
        if not a.no_write:
            write_doc(md, ssim_md)
        return

    command = "python3 tools/perf/tomo_table.py" + "".join(
        " " + shlex.quote(x) for x in sys.argv[1:]
    )
    start = datetime.datetime.now(datetime.timezone.utc)
    load_start = loadavg()
    if a.source == "worktree":
        src, (commit, dirty) = ROOT, git_commit()
    else:
        (src, commit), dirty = snapshot(a.source), []
    print(f"tomo_table: building tomo_timing at {commit} in {src}", file=sys.stderr)
    if a.exe:
        # A binary this script built earlier from the same --source (target/tomo_table_bin/
        # tomo_timing-<commit>): no build while the machine should be quiet.
        exe = str(a.exe.resolve())
        if not exe.endswith(f"tomo_timing-{commit}"):
            sys.exit(f"tomo_table: --exe {exe} is not tomo_timing-{commit} (the --source's build)")
    else:
        exe = build(src, commit)
    if not (src / "tools" / "perf" / "astra_sirt.py").exists():
        src_py = ROOT  # a commit from before the ASTRA script existed
    else:
        src_py = src

    csr_sizes, skipped = [], []
    avail = mem_available()
    for n, angles, _, _ in SIZES:
        need = CSR_PEAK_256 * (n / 256) ** 3
        if a.csr == "on" or (a.csr == "auto" and avail is not None and avail >= 1.5 * need):
            csr_sizes.append(n)
        else:
            skipped.append(f"`CsrOperator` at {n} px (needs about {mb(need)})")

    simd_env = {"NETINV_TOMO_SIMD": a.simd} if a.simd else {}
    jobs = measurements(exe, a.python, csr_sizes, not a.no_fbp, not a.no_ssim, simd_env)
    raw = []
    for r in range(a.rounds):
        for case, key, cmd, env in rotated(jobs, r):
            before, waited = wait_for_quiet(a.quiet_limit, a.max_wait)
            cwd = src_py if cmd[0] == a.python else src
            res = run_json(cmd, cwd, env)
            raw.append({"round": r, "case": case, "key": key, "command": cmd, "env": env,
                        "other_cores_before": before, "waited_s": waited,
                        "loadavg": loadavg(), "result": res})
            oc = res["other_cores"]
            print(
                f"round {r} {case:22} {key:16} cpu {ms(res['cpu_s_per_iter']):>8} ms  "
                f"wall {ms(res['wall_s_per_iter']):>8} ms  rss {mb(res.get('peak_rss_bytes')):>8}  "
                f"other cores {'n/a' if oc is None else f'{oc:.2f}'} (waited {waited:.0f} s)",
                file=sys.stderr,
            )
    end = datetime.datetime.now(datetime.timezone.utc)
    astra_results = [m["result"] for m in raw if m["key"] == "astra"]
    sk = [m["result"] for m in raw if m["key"] in ("skimage-iradon", "skimage")]
    simd_paths = sorted({m["result"]["simd"] for m in raw if m["result"].get("simd")})
    others = [m["result"]["other_cores"] for m in raw if m["result"]["other_cores"] is not None]
    meta = {
        "date": start.strftime("%Y-%m-%d %H:%M") + "-" + end.strftime("%H:%M UTC"),
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "commit": commit,
        "source": a.source,
        "dirty_paths": dirty,
        "rustc": sh(["rustc", "-V"]).strip().split(" (")[0],
        "simd": " / ".join(simd_paths) or None,
        "simd_forced": bool(a.simd),
        "astra_version": astra_results[0]["version"] if astra_results else None,
        "skimage_version": sk[0]["version"] if sk else None,
        "astra_rss_after_import_bytes": max(
            (r["rss_after_import_bytes"] for r in astra_results if r.get("rss_after_import_bytes")),
            default=None,
        ),
        "loadavg_start": load_start,
        "loadavg_end": loadavg(),
        "other_cores_median": statistics.median(others) if others else None,
        "other_cores_max": max(others) if others else None,
        "quiet_limit": a.quiet_limit,
        "max_wait_s": a.max_wait,
        "rounds": a.rounds,
        "elapsed_s": (end - start).total_seconds(),
        "command": command,
        "executable": os.path.relpath(exe, ROOT),
        "mem_available_bytes": avail,
        "skipped": "; ".join(skipped),
    }
    data = {"meta": meta, "summary": summarise(raw), "raw": raw}
    md, ssim_md = markdown(data), ssim_markdown(data)
    print(md)
    if ssim_md:
        print("\n" + ssim_md)
    lines, _ = verdict(data["summary"])
    for line in lines:
        print("verdict:", line, file=sys.stderr)
    if not a.no_write:
        JSON_OUT.parent.mkdir(parents=True, exist_ok=True)
        tmp = JSON_OUT.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        tmp.replace(JSON_OUT)
        write_doc(md, ssim_md)
        print(f"tomo_table: wrote {DOC.relative_to(ROOT)} and {JSON_OUT.relative_to(ROOT)}",
              file=sys.stderr)


if __name__ == "__main__":
    main()

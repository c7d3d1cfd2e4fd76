"""Print the docs tables of the CT ablation (examples/ct_ablation.rs) from its output folder.

Usage: python3 tools/ct/ablation_tables.py results/ct_ablation [summary|tuning]

`summary` (default): recomputes from per_image.json, independently of the Rust code, every
arm's mean PSNR and every paired difference per setting over all classifier seeds and
digits, with the crossed bootstrap 95% interval (2,000 resamples; each draws the seeds with
replacement, then the digits with replacement, one digit draw shared by every seed since
every seed reconstructs the same digits; splitmix64 seeded with 2026, index = draw % n;
the percentile interval of the sorted means, entries floor(0.025 B) and ceil(0.975 B) - 1)
and the Student-t 95% interval over the per-seed means (n_seeds - 1 degrees of freedom).
The same numbers come from netinv::ct::study::ablation::summarize_ablation (summary.json);
the script checks that they agree to 1e-9.
`tuning`: every arm's chosen candidate per classifier seed and setting (tuning.json).
Only the standard library is needed.
"""
import json
import math
import os
import sys

ARMS = ["sirt100", "sirt88", "full", "priors_only", "class_only"]
PAIRS = [("full", "priors_only"), ("full", "class_only"), ("full", "sirt100"),
         ("full", "sirt88"), ("priors_only", "sirt88"), ("sirt88", "sirt100")]
REPS = 2000
BOOT_SEED = 2026
MASK = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed):
        self.s = seed & MASK

    def next(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & MASK
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def index(self, n):
        return self.next() % n


def crossed_bootstrap(d):
    s, n = len(d), len(d[0])
    rng = SplitMix64(BOOT_SEED)
    means = []
    for _ in range(REPS):
        seeds = [rng.index(s) for _ in range(s)]
        digits = [rng.index(n) for _ in range(n)]
        acc = 0.0
        for k in seeds:
            row = d[k]
            for i in digits:
                acc += row[i]
        means.append(acc / (s * n))
    means.sort()
    return means[int(math.floor(0.025 * REPS))], means[min(int(math.ceil(0.975 * REPS)) - 1, REPS - 1)]


def t_cdf(t, df):
    """P(T <= t) for t >= 0 by Simpson integration of the density."""
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    m = 20000
    h = t / m
    f = lambda x: c * (1 + x * x / df) ** (-(df + 1) / 2)
    acc = f(0) + f(t) + sum((4 if k % 2 else 2) * f(k * h) for k in range(1, m))
    return 0.5 + acc * h / 3


def t_quantile_975(df):
    if df == 1:
        return math.tan(math.pi * 0.475)
    if df == 2:
        p = 0.975
        return (2 * p - 1) / math.sqrt(2 * p * (1 - p))
    lo, hi = 0.0, 20.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_cdf(mid, df) < 0.975 else (lo, mid)
    return (lo + hi) / 2


def summary_row(name, angles, noise, d):
    n = len(d[0])
    seed_means = [sum(v) / len(v) for v in d]
    total = sum(sum(v) for v in d)
    mean = total / (len(d) * n)
    if len(d) > 1:
        m = sum(seed_means) / len(seed_means)
        sd = math.sqrt(sum((x - m) ** 2 for x in seed_means) / (len(d) - 1))
        half = t_quantile_975(len(d) - 1) * sd / math.sqrt(len(d))
        t_ci = (m - half, m + half)
    else:
        t_ci = None
    return {"name": name, "n_angles": angles, "noise_i0": noise, "mean": mean,
            "boot_ci": crossed_bootstrap(d), "t_ci": t_ci, "seed_means": seed_means,
            "positive": sum(1 for v in d for x in v if x > 0)}


def noise_name(noise):
    return "none" if noise is None else f"{noise:.0e}".replace("e+0", "e").replace("e+", "e")


def line(r):
    diff = " - " in r["name"]
    num = (lambda v: f"{v:+.2f}") if diff else (lambda v: f"{v:.2f}")
    t = "-" if r["t_ci"] is None else f"[{num(r['t_ci'][0])}, {num(r['t_ci'][1])}]"
    return (f"| {noise_name(r['noise_i0'])} | {r['n_angles']} | {r['name']} | {num(r['mean'])} | "
            f"[{num(r['boot_ci'][0])}, {num(r['boot_ci'][1])}] | {t} | "
            + ", ".join(num(v) for v in r["seed_means"]) + " |")


def summarize(rows):
    angles = sorted({r["n_angles"] for r in rows})
    noises, seeds, digits = [], set(), set()
    for r in rows:
        if r["noise_i0"] not in noises:
            noises.append(r["noise_i0"])
        seeds.add(r["classifier_seed"])
        digits.add(r["image"])
    seeds, digits = sorted(seeds), sorted(digits)
    psnr = {(r["classifier_seed"], r["arm"], r["image"], r["n_angles"], r["noise_i0"]): r["psnr"]
            for r in rows}
    present = {(r["arm"], r["n_angles"], r["noise_i0"]) for r in rows}
    out = []
    for a in angles:
        for noise in noises:
            grid = lambda arm: [[psnr[(s, arm, i, a, noise)] for i in digits] for s in seeds]
            for arm in ARMS:
                if (arm, a, noise) in present:
                    out.append(summary_row(arm, a, noise, grid(arm)))
            for x, y in PAIRS:
                if (x, a, noise) in present and (y, a, noise) in present:
                    gx, gy = grid(x), grid(y)
                    d = [[p - q for p, q in zip(u, v)] for u, v in zip(gx, gy)]
                    out.append(summary_row(f"{x} - {y}", a, noise, d))
    return out


def check_against_rust(ours, folder):
    path = os.path.join(folder, "summary.json")
    if not os.path.exists(path):
        return
    theirs = json.load(open(path))
    assert len(theirs) == len(ours), "summary.json has another number of rows"
    for o, t in zip(ours, theirs):
        assert o["name"] == t["name"] and o["n_angles"] == t["n_angles"], (o["name"], t["name"])
        vals = [(o["mean"], t["mean"])] + list(zip(o["boot_ci"], t["boot_ci"]))
        vals += list(zip(o["seed_means"], t["seed_means"]))
        if o["t_ci"] is not None:
            vals += list(zip(o["t_ci"], t["t_ci"]))
        for u, v in vals:
            assert abs(u - v) < 1e-9, (o["name"], o["n_angles"], u, v)


def print_summary(folder):
    rows = json.load(open(os.path.join(folder, "per_image.json")))
    out = summarize(rows)
    check_against_rust(out, folder)
    seeds = sorted({r["classifier_seed"] for r in rows})
    digits = len({r["image"] for r in rows})
    print(f"\nPSNR (dB) over {len(seeds)} classifier seeds x {digits} test digits; differences paired "
          "per seed and digit:\n")
    print("| noise | angles | arm or difference | mean | 95% CI, crossed bootstrap | "
          "95% CI, t over seed means | seed means |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in out:
        print(line(r))


def print_tuning(folder):
    tuning = json.load(open(os.path.join(folder, "tuning.json")))
    print("\nChosen candidate per arm (validation PSNR of the choice; of candidate 0, the shipped "
          "default, in brackets):\n")
    print("| noise | angles | seed | arm | candidate | optimizer, lr | TV | L2 | BN | val PSNR (default) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    key = lambda t: (t["n_angles"], t["noise_i0"] is not None, t["noise_i0"] or 0, t["classifier_seed"])
    for t in sorted(tuning, key=key):
        for arm in t["arms"]:
            c = arm["scores"][arm["chosen"]]
            d = arm["scores"][0]
            print(f"| {noise_name(t['noise_i0'])} | {t['n_angles']} | {t['classifier_seed']} | "
                  f"{arm['arm']} | {arm['chosen']} | {c['optimizer']} {c['lr']:.3g} | {c['tv']:.2g} | "
                  f"{c['l2']:.2g} | {c['bn']:.2g} | {c['val_psnr']:.2f} ({d['val_psnr']:.2f}) |")


def main():
    folder = sys.argv[1]
    what = sys.argv[2] if len(sys.argv) > 2 else "summary"
    if what == "summary":
        print_summary(folder)
    elif what == "tuning":
        print_tuning(folder)
    else:
        sys.exit(f"unknown table {what!r}: summary or tuning")


if __name__ == "__main__":
    main()

"""Pivot ct_study's results.json into markdown tables (method x angle count) per noise level.

Usage: python3 tools/ct/pivot_results.py runs/ct_study/results.json [psnr|ssim|mse]
       python3 tools/ct/pivot_results.py runs/ct_study/per_image.json paired
`paired`: per-image PSNR differences (mean and 95% CI half-width, 1.96 sd / sqrt n) of the
hybrid arms against SIRT-100, and of pg_class against pg_priors on the same digits.
Only the standard library is needed.
"""
import json
import sys


def label(row):
    mode = row["label_mode"]
    return row["method"] if mode == "none" else f"{row['method']} ({mode})"


# Arm indices of ct_study's ARMS table.
ARMS = {1: "sirt100", 3: "tv_pdhg", 5: "sirt_inv (predicted)", 6: "sirt_inv_priors_only",
        7: "sirt_inv_class_only", 8: "pg_priors", 9: "pg_class"}
PAIRS = [(5, 1), (6, 1), (7, 1), (5, 6), (3, 1), (9, 8)]


def mean_ci(values):
    n = len(values)
    m = sum(values) / n
    if n < 2:
        return m, float("nan")
    var = sum((v - m) ** 2 for v in values) / (n - 1)
    return m, 1.96 * (var / n) ** 0.5


def paired(per_image):
    noises = sorted({r["noise_i0"] for r in per_image}, key=lambda n: -1 if n is None else -n)
    angles = sorted({r["n_angles"] for r in per_image})
    psnr = {(r["arm"], r["image"], r["n_angles"], r["noise_i0"]): r["psnr"] for r in per_image}
    for noise in noises:
        name = "none" if noise is None else f"{noise:.0e}"
        print(f"\nPSNR difference in dB, mean (95% CI), paired per digit, noise I0 = {name}:\n")
        print("| difference | " + " | ".join(str(a) for a in angles) + " |")
        print("| --- |" + " --- |" * len(angles))
        for a_arm, b_arm in PAIRS:
            cells = []
            for a in angles:
                d = [psnr[(a_arm, i, a, noise)] - psnr[(b_arm, i, a, noise)]
                     for (arm, i, na, nz) in psnr
                     if arm == a_arm and na == a and nz == noise and (b_arm, i, a, noise) in psnr]
                cells.append("-" if not d else "%+.2f (%.2f)" % mean_ci(d))
            print(f"| {ARMS[a_arm]} - {ARMS[b_arm]} | " + " | ".join(cells) + " |")


def main():
    rows = json.load(open(sys.argv[1]))
    metric = sys.argv[2] if len(sys.argv) > 2 else "psnr"
    if metric == "paired":
        paired(rows)
        return
    digits = {"psnr": 2, "ssim": 3, "mse": 4}[metric]
    noises = sorted({r["noise_i0"] for r in rows}, key=lambda n: -1 if n is None else -n)
    angles = sorted({r["n_angles"] for r in rows})
    methods = []
    for r in rows:
        if label(r) not in methods:
            methods.append(label(r))
    for noise in noises:
        name = "none" if noise is None else f"{noise:.0e}"
        print(f"\n{metric.upper()} mean (95% CI half-width), noise I0 = {name}:\n")
        print("| method | " + " | ".join(str(a) for a in angles) + " |")
        print("| --- |" + " --- |" * len(angles))
        for m in methods:
            cells = []
            for a in angles:
                hit = [r for r in rows if label(r) == m and r["n_angles"] == a and r["noise_i0"] == noise]
                if hit:
                    r = hit[0]
                    cells.append(f"{r[metric + '_mean']:.{digits}f} ({r[metric + '_ci95']:.{digits}f})")
                else:
                    cells.append("-")
            print(f"| {m} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Reference values for netinv-metrics, written down from scikit-image 0.26.

Generates the image pairs of crates/netinv-metrics/tests/reference.rs with a formula that
Rust recomputes bit-identically (only +, -, *, / in f64, rounded once to f32, plus a
64-bit LCG for noise), evaluates scikit-image's SSIM (Wang 2004 Gaussian setting and the
7x7 uniform default), MSE and PSNR on them, and writes

    crates/netinv-metrics/tests/data/skimage_reference.json

The JSON also stores an FNV-1a hash of each image's f32 bit patterns so the Rust test
proves it rebuilt exactly the images that scikit-image saw.

Run from the repository root:

    /work/venv/bin/python tools/metrics/ssim_reference.py

scikit-image receives the f32 images promoted to f64 (exact), so its arithmetic is f64 like
netinv's; the script also prints how far scikit-image's own f32 path is from that.
"""

import json
import math
import os
import sys

import numpy as np
import scipy
import skimage
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

MASK64 = (1 << 64) - 1
LCG_MUL = 6364136223846793005
LCG_INC = 1442695040888963407
FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3

OUT = os.path.join("crates", "netinv-metrics", "tests", "data", "skimage_reference.json")


def lcg_uniforms(seed, n):
    """n uniforms in [0, 1) from the top 24 bits of a 64-bit LCG (exact in f32 and f64)."""
    s = seed & MASK64
    out = []
    for _ in range(n):
        s = (s * LCG_MUL + LCG_INC) & MASK64
        out.append((s >> 40) / 16777216.0)
    return out


def bump(u, v, cu, cv, s):
    du = u - cu
    dv = v - cv
    return 1.0 / (1.0 + (du * du + dv * dv) / s)


def smooth(rows, cols, variant):
    """Two rational bumps and a ramp, values in about [0.1, 1]; variant 1 is a shifted copy."""
    if variant == 0:
        p = (0.1, 0.3, 0.4, 0.05, 0.7, 0.65, 0.02)
    else:
        p = (0.12, 0.32, 0.38, 0.05, 0.68, 0.66, 0.025)
    img = np.empty((rows, cols), dtype=np.float32)
    for r in range(rows):
        u = r / rows
        for c in range(cols):
            v = c / cols
            val = (
                p[0]
                + 0.5 * bump(u, v, p[1], p[2], p[3])
                + 0.3 * bump(u, v, p[4], p[5], p[6])
                + 0.1 * (u * v)
            )
            img[r, c] = np.float32(val)
    return img


def add_noise(img, amplitude, seed):
    rows, cols = img.shape
    noise = lcg_uniforms(seed, rows * cols)
    out = np.empty_like(img)
    for r in range(rows):
        for c in range(cols):
            val = float(img[r, c]) + amplitude * (noise[r * cols + c] - 0.5)
            out[r, c] = np.float32(val)
    return out


def pure_noise(rows, cols, seed):
    noise = lcg_uniforms(seed, rows * cols)
    return np.array(noise, dtype=np.float64).reshape(rows, cols).astype(np.float32)


def constant(rows, cols, value):
    return np.full((rows, cols), np.float32(value), dtype=np.float32)


def affine(img, scale, offset):
    """f32(offset + scale * x) per pixel."""
    out = np.empty_like(img)
    for r in range(img.shape[0]):
        for c in range(img.shape[1]):
            out[r, c] = np.float32(offset + scale * float(img[r, c]))
    return out


def fnv1a(img):
    h = FNV_OFFSET
    for b in img.astype(np.float32).ravel(order="C").view(np.uint32).tolist():
        h = ((h ^ b) * FNV_PRIME) & MASK64
    return f"{h:016x}"


def make_pair(kind, rows, cols, seed):
    """The image pair of one case; the Rust test has the same function."""
    if kind == "smooth":
        return smooth(rows, cols, 0), smooth(rows, cols, 1)
    if kind == "noisy":
        a = smooth(rows, cols, 0)
        return a, add_noise(a, 0.3, seed)
    if kind == "uncorrelated":
        return pure_noise(rows, cols, seed), pure_noise(rows, cols, seed + 1)
    if kind == "inverted":
        a = smooth(rows, cols, 0)
        return a, affine(a, -1.0, 1.0)
    if kind == "constant-equal":
        return constant(rows, cols, 0.25), constant(rows, cols, 0.25)
    if kind == "constant-different":
        return constant(rows, cols, 0.25), constant(rows, cols, 0.6)
    if kind == "range255":
        a = smooth(rows, cols, 0)
        return affine(a, 255.0, 0.0), affine(add_noise(a, 0.3, seed), 255.0, 0.0)
    raise ValueError(kind)


def ssim_or_none(x, y, data_range, **kw):
    try:
        return float(structural_similarity(x, y, data_range=data_range, **kw))
    except ValueError:
        return None  # image smaller than the window


GAUSS = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
UNIFORM7 = dict(win_size=7)  # scikit-image's defaults: uniform window, sample covariance


def finite_or_none(x):
    return None if math.isinf(x) else float(x)


def main():
    sizes = [(8, 8), (11, 11), (16, 16), (31, 17), (64, 64), (128, 128), (256, 256)]
    specs = []
    for rows, cols in sizes:
        for kind in ("smooth", "noisy"):
            specs.append((kind, rows, cols, 1000 + rows * 7 + cols, 1.0))
    specs += [
        ("uncorrelated", 31, 17, 77, 1.0),
        ("inverted", 64, 64, 0, 1.0),
        ("constant-equal", 16, 16, 0, 1.0),
        ("constant-different", 16, 16, 0, 1.0),
        ("range255", 64, 64, 4242, 255.0),
        ("range255", 11, 11, 4243, 255.0),
    ]
    cases = []
    worst_f32 = 0.0
    for kind, rows, cols, seed, data_range in specs:
        a32, b32 = make_pair(kind, rows, cols, seed)
        a, b = a32.astype(np.float64), b32.astype(np.float64)
        sg = ssim_or_none(a, b, data_range, **GAUSS)
        su = ssim_or_none(a, b, data_range, **UNIFORM7)
        for value, kw in ((sg, GAUSS), (su, UNIFORM7)):
            if value is not None:
                v32 = ssim_or_none(a32, b32, data_range, **kw)
                worst_f32 = max(worst_f32, abs(v32 - value))
        with np.errstate(divide="ignore"):
            psnr = peak_signal_noise_ratio(a, b, data_range=data_range)
        cases.append(
            {
                "name": f"{kind}-{rows}x{cols}",
                "kind": kind,
                "rows": rows,
                "cols": cols,
                "seed": seed,
                "data_range": data_range,
                "hash_reference": fnv1a(a32),
                "hash_estimate": fnv1a(b32),
                "ssim_gaussian": sg,
                "ssim_uniform7": su,
                "mse": float(mean_squared_error(a, b)),
                "psnr": finite_or_none(psnr),
            }
        )
        print(f"{cases[-1]['name']:>28}: gauss {sg}  uniform7 {su}  psnr {psnr}")

    # Per-pixel maps (full=True) on one small case.
    kind, rows, cols, seed = "noisy", 16, 16, 1000 + 16 * 7 + 16
    a32, b32 = make_pair(kind, rows, cols, seed)
    a, b = a32.astype(np.float64), b32.astype(np.float64)
    _, map_g = structural_similarity(a, b, data_range=1.0, full=True, **GAUSS)
    _, map_u = structural_similarity(a, b, data_range=1.0, full=True, **UNIFORM7)
    maps = {
        "kind": kind,
        "rows": rows,
        "cols": cols,
        "seed": seed,
        "gaussian": [float(x) for x in map_g.ravel()],
        "uniform7": [float(x) for x in map_u.ravel()],
    }

    doc = {
        "generator": "tools/metrics/ssim_reference.py",
        "versions": {
            "scikit-image": skimage.__version__,
            "scipy": scipy.__version__,
            "numpy": np.__version__,
            "python": sys.version.split()[0],
        },
        "cases": cases,
        "ssim_map": maps,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"wrote {OUT} ({len(cases)} cases)")
    print(f"max |skimage f32 path - skimage f64 path| = {worst_f32:.3e}")


if __name__ == "__main__":
    main()

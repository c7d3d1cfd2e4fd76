#!/usr/bin/env python3
"""Time scikit-image's metrics on 512x512 images at 1 thread, in process CPU time.

The counterpart of the Rust bench `benches/metrics.rs` (ssim/512px, ssim-uniform7/512px,
mse/512px). Run from the repository root, in the same session as the Rust bench:

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
        /work/venv/bin/python tools/metrics/bench_skimage.py

Prints, per case, the CPU time per call (time.process_time) as the median and the minimum
over batches of repeated calls. scikit-image works in the input's float type, so SSIM is
timed on f32 inputs (what netinv takes) and on f64 inputs (netinv's internal precision).
"""

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import skimage  # noqa: E402
from skimage.metrics import mean_squared_error, structural_similarity  # noqa: E402

SIZE = 512
BATCHES = 15


def image_pair(size, seed):
    """A smooth image in [0, 1] and a noisy copy (as benches/metrics.rs; same recipe,
    numpy's generator instead of Rust's, which does not change the timing)."""
    rng = np.random.default_rng(seed)
    u = (np.arange(size, dtype=np.float32) / size)[:, None]
    v = (np.arange(size, dtype=np.float32) / size)[None, :]
    ref = (0.5 + 0.4 * np.sin(6.0 * u) * np.cos(4.0 * v)).astype(np.float32)
    est = np.clip(ref + 0.2 * (rng.random((size, size), dtype=np.float32) - 0.5), 0.0, 1.0)
    return ref, est.astype(np.float32)


def cpu_time_per_call(fn, calls):
    """Median and min over BATCHES of (process CPU time of `calls` calls) / calls."""
    fn()  # warm-up
    per_call = []
    for _ in range(BATCHES):
        t0 = time.process_time()
        for _ in range(calls):
            fn()
        per_call.append((time.process_time() - t0) / calls)
    return statistics.median(per_call), min(per_call)


def main():
    x32, y32 = image_pair(SIZE, 42)
    x64, y64 = x32.astype(np.float64), y32.astype(np.float64)
    gauss = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)
    cases = [
        ("ssim/512px (Gaussian, f32 input)", lambda: structural_similarity(x32, y32, **gauss), 10),
        ("ssim/512px (Gaussian, f64 input)", lambda: structural_similarity(x64, y64, **gauss), 10),
        ("ssim-uniform7/512px (f32 input)", lambda: structural_similarity(x32, y32, data_range=1.0), 10),
        ("ssim-uniform7/512px (f64 input)", lambda: structural_similarity(x64, y64, data_range=1.0), 10),
        ("mse/512px (f32 input)", lambda: mean_squared_error(x32, y32), 100),
    ]
    print(f"scikit-image {skimage.__version__}, numpy {np.__version__}, "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, {BATCHES} batches")
    for name, fn, calls in cases:
        med, best = cpu_time_per_call(fn, calls)
        print(f"{name:<36} median {med * 1e3:8.3f} ms   min {best * 1e3:8.3f} ms  "
              f"(CPU time per call, {calls} calls per batch)")


if __name__ == "__main__":
    main()

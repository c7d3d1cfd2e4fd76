"""One timing of ASTRA 2.5's CPU SIRT or FBP (or scikit-image's iradon), for tomo_table.py.

`tools/perf/tomo_table.py` starts this script as a separate process for every ASTRA
measurement, alternating with netinv's `benches/tomo_timing.rs`, with the same geometry:

    OMP_NUM_THREADS=1 /work/venv/bin/python tools/perf/astra_sirt.py \
        --size 256 --angles 360 --detectors 365 --iterations 20 --repeats 3 [--algorithm sirt]

and prints one JSON line: process CPU seconds and wall seconds per iteration (each repeat is
a whole `astra.algorithm.run(alg, iterations)` from zero, ASTRA's SIRT weights included;
the median over repeats and every repeat), and the peak resident set of this process
(`VmHWM` of /proc/self/status, so Python, numpy and the ASTRA library are included; the
resident set right after the imports is reported beside it). `--algorithm fbp` times one
ASTRA `FBP` run (`ram-lak`, its default filter) per repeat, `--algorithm iradon` one
`skimage.transform.iradon` (ramp filter) on the same sinogram. `--algorithm ssim` (Gaussian
11x11 window, sigma 1.5, population covariance, as netinv's `SsimConfig::gaussian`) and
`ssim-uniform7` (scikit-image's default 7x7 box, sample covariance) time
`skimage.metrics.structural_similarity` instead: `iterations` calls per repeat on a
`size` x `size` f32 pair (a smooth image and a seeded noisy copy, the recipe of
`benches/metrics.rs` with numpy's generator), figures per call; no ASTRA work.

Geometry as netinv's: a `size` x `size` volume of unit pixels, `detectors` unit detectors,
`angles` angles spread uniformly over a half turn, the `linear` (Joseph) projector, a
seeded uniform random image and its sinogram.
"""

import argparse
import json
import time

t_import = time.perf_counter()
import astra  # noqa: E402
import numpy as np  # noqa: E402


def vm_hwm_bytes(field="VmHWM"):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def timed(fn, repeats, per_call):
    cpu, wall = [], []
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        cpu.append((time.process_time() - c0) / per_call)
        wall.append((time.perf_counter() - w0) / per_call)
    return cpu, wall


def image_pair(size, seed):
    """A smooth image in [0, 1] and a noisy copy, f32 (tools/metrics/bench_skimage.py)."""
    rng = np.random.default_rng(seed)
    u = (np.arange(size, dtype=np.float32) / size)[:, None]
    v = (np.arange(size, dtype=np.float32) / size)[None, :]
    ref = (0.5 + 0.4 * np.sin(6.0 * u) * np.cos(4.0 * v)).astype(np.float32)
    est = np.clip(ref + 0.2 * (rng.random((size, size), dtype=np.float32) - 0.5), 0.0, 1.0)
    return ref, est.astype(np.float32)


def time_ssim(a, rss_after_import):
    import skimage
    from skimage.metrics import structural_similarity

    x, y = image_pair(a.size, 42 + a.seed)
    if a.algorithm == "ssim":
        kw = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)
    else:
        kw = dict(data_range=1.0)
    value = float(structural_similarity(x, y, **kw))  # also the warm-up call

    def work():
        for _ in range(a.iterations):
            structural_similarity(x, y, **kw)

    cpu, wall = timed(work, a.repeats, a.iterations)
    print(json.dumps({
        "tool": "skimage",
        "version": skimage.__version__,
        "algorithm": a.algorithm,
        "size": a.size,
        "iterations": a.iterations,
        "repeats": a.repeats,
        "threads": 1,
        "value": value,
        "cpu_s_per_iter": float(np.median(cpu)),
        "wall_s_per_iter": float(np.median(wall)),
        "cpu_s_per_iter_runs": cpu,
        "wall_s_per_iter_runs": wall,
        "rss_after_import_bytes": rss_after_import,
        "peak_rss_bytes": vm_hwm_bytes(),
    }))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--angles", type=int, default=0, help="required except for ssim")
    ap.add_argument("--detectors", type=int, default=0, help="required except for ssim")
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--algorithm", choices=["sirt", "fbp", "iradon", "ssim", "ssim-uniform7"], default="sirt"
    )
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rss_after_import = vm_hwm_bytes("VmRSS")
    if a.algorithm.startswith("ssim"):
        return time_ssim(a, rss_after_import)
    if a.detectors <= 0 or a.angles <= 0:
        ap.error("--angles and --detectors are required (positive integers)")

    n = a.size
    vol = astra.create_vol_geom(n, n)
    angles = np.linspace(0, np.pi, a.angles, endpoint=False)
    pg = astra.create_proj_geom("parallel", 1.0, a.detectors, angles)
    pid = astra.create_projector("linear", pg, vol)
    img = np.random.default_rng(a.seed).random((n, n)).astype(np.float32)
    sino_id, sino = astra.create_sino(img, pid)

    per_call = 1
    if a.algorithm in ("sirt", "fbp"):
        rec_id = astra.data2d.create("-vol", vol, 0.0)
        cfg = astra.astra_dict("SIRT" if a.algorithm == "sirt" else "FBP")
        cfg["ProjectorId"] = pid
        cfg["ProjectionDataId"] = sino_id
        cfg["ReconstructionDataId"] = rec_id
        if a.algorithm == "sirt":
            per_call = a.iterations

            def work():
                # Each repeat starts from zero, as netinv's Sirt::reconstruct does.
                astra.data2d.store(rec_id, 0.0)
                alg = astra.algorithm.create(cfg)
                astra.algorithm.run(alg, a.iterations)
                astra.algorithm.delete(alg)
        else:

            def work():
                alg = astra.algorithm.create(cfg)
                astra.algorithm.run(alg)
                astra.algorithm.delete(alg)
    else:
        from skimage.transform import iradon

        sino_t = np.ascontiguousarray(sino.T)  # skimage: [detectors, angles]
        theta = np.degrees(angles)

        def work():
            iradon(sino_t, theta=theta, output_size=n, filter_name="ramp", circle=False)

    cpu, wall = timed(work, a.repeats, per_call)
    out = {
        "tool": "skimage" if a.algorithm == "iradon" else "astra",
        "version": astra.__version__,
        "algorithm": a.algorithm,
        "size": n,
        "angles": a.angles,
        "detectors": a.detectors,
        "iterations": per_call,
        "repeats": a.repeats,
        "threads": 1,
        "cpu_s_per_iter": float(np.median(cpu)),
        "wall_s_per_iter": float(np.median(wall)),
        "cpu_s_per_iter_runs": cpu,
        "wall_s_per_iter_runs": wall,
        "rss_after_import_bytes": rss_after_import,
        "peak_rss_bytes": vm_hwm_bytes(),
    }
    if a.algorithm == "iradon":
        import skimage

        out["version"] = skimage.__version__
    print(json.dumps(out))


if __name__ == "__main__":
    main()

"""Reconstruction quality of scikit-image's `iradon` (and ASTRA CPU) beside netinv-tomo.

First run the Rust example, which writes truth.npy, sino.npy, angles.npy and our
reconstructions to its output folder:

    cargo run --release --example ct_reconstruct -- --out out/ct
    /work/venv/bin/python tools/tomo/compare_quality.py out/ct

Metrics: MSE, PSNR (data range 1) and SSIM (Gaussian window sigma 1.5, population
covariance, data range 1, as netinv-metrics' default) against the truth, on images
clipped to [0, 1] for the scikit-image rows.

scikit-image uses its own projector (`radon`, pixel-driven, `circle=False`), so its rows
reconstruct skimage's own sinogram of the same truth at the same angles, with the same
Poisson noise model (I0 and attenuation scale from metrics.json, numpy-seeded noise). The
ASTRA rows reconstruct our very sinogram (sino.npy) with ASTRA's CPU FBP and SIRT-100.
"""

import json
import os
import sys

import astra
import numpy as np
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity
from skimage.transform import iradon, radon


def metrics(truth, rec):
    return (
        mean_squared_error(truth, rec),
        peak_signal_noise_ratio(truth, rec, data_range=1.0),
        structural_similarity(truth, rec, data_range=1.0, gaussian_weights=True, sigma=1.5,
                              use_sample_covariance=False),
    )


def main(out):
    truth = np.load(os.path.join(out, "truth.npy")).astype(np.float64)
    sino = np.load(os.path.join(out, "sino.npy"))
    angles = np.load(os.path.join(out, "angles.npy")).astype(np.float64)
    report = json.load(open(os.path.join(out, "metrics.json")))
    args = report["args"]
    n = truth.shape[0]
    rows = []
    # scikit-image: its own projector and the same noise model.
    theta = np.degrees(angles)
    clean = radon(truth, theta=theta, circle=False)
    if args["i0"] > 0:
        scale = args["attenuation_scale"] or 4.0 / n
        rng = np.random.default_rng(args["seed"])
        counts = rng.poisson(args["i0"] * np.exp(-scale * clean))
        noisy = -np.log(np.maximum(counts, 1) / args["i0"]) / scale
    else:
        noisy = clean
    for filt in ("ramp", "shepp-logan", "hann"):
        rec = iradon(noisy, theta=theta, filter_name=filt, circle=False, output_size=n)
        rows.append((f"skimage iradon ({filt})", metrics(truth, np.clip(rec, 0, 1))))
    # ASTRA CPU on our sinogram.
    vol = astra.create_vol_geom(n, n)
    pg = astra.create_proj_geom("parallel", float(report["geometry"]["det_spacing"]),
                                sino.shape[1], angles)
    pid = astra.create_projector("linear", pg, vol)
    for name, alg_name, iters, opts in (("ASTRA FBP (ram-lak)", "FBP", 1, {}),
                                        ("ASTRA SIRT-100 [0,1]", "SIRT", 100,
                                         {"MinConstraint": 0.0, "MaxConstraint": 1.0})):
        sid = astra.data2d.create("-sino", pg, sino)
        rid = astra.data2d.create("-vol", vol, 0.0)
        cfg = astra.astra_dict(alg_name)
        cfg.update(ProjectorId=pid, ProjectionDataId=sid, ReconstructionDataId=rid, option=opts)
        alg = astra.algorithm.create(cfg)
        astra.algorithm.run(alg, iters)
        rows.append((name, metrics(truth, astra.data2d.get(rid))))
    for m in report["methods"]:
        rows.append((f"netinv {m['name']}", (m["mse"], m["psnr"], m["ssim"])))
    print("| method | MSE | PSNR (dB) | SSIM |")
    print("| --- | --- | --- | --- |")
    for name, (mse, psnr, ssim) in rows:
        print(f"| {name} | {mse:.5f} | {psnr:.2f} | {ssim:.4f} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "out/ct_reconstruct")

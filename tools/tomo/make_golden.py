"""Generate the ASTRA golden files for netinv-tomo's tests.

Run from the repository root:

    /work/venv/bin/python tools/tomo/make_golden.py

It writes small .npy files to crates/netinv-tomo/tests/data/ (< 1 MB in all). Each case
`<name>` has `<name>_image.npy` (f32 [rows, cols]), `<name>_angles.npy` (f32 radians),
`<name>_meta.npy` (f64 [n_det, det_spacing]), `<name>_sino.npy` (ASTRA CPU `linear`
projection of the image), and where listed `<name>_sirt100.npy` / `<name>_sirt100box.npy`
(ASTRA CPU `SIRT`, 100 iterations, from zero, without / with the box [0, 1]) and
`<name>_fbp_<filter>.npy` (ASTRA CPU `FBP`).
"""

import os

import astra
import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "crates", "netinv-tomo", "tests", "data")


def phantom(rows, cols, rng):
    """A smooth-edged test object: a few ellipses plus mild noise, values in [0, 1]."""
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float64)
    y = (y + 0.5) / rows * 2 - 1
    x = (x + 0.5) / cols * 2 - 1
    img = np.zeros((rows, cols))
    img[(x / 0.8) ** 2 + (y / 0.9) ** 2 <= 1] = 0.6
    img[((x - 0.25) / 0.25) ** 2 + ((y + 0.2) / 0.35) ** 2 <= 1] = 1.0
    img[((x + 0.3) / 0.2) ** 2 + ((y - 0.3) / 0.15) ** 2 <= 1] = 0.2
    img += 0.1 * rng.random((rows, cols))
    return np.clip(img, 0, 1).astype(np.float32)


def run_case(name, rows, cols, angles, n_det, spacing, sirt=False, fbp=()):
    rng = np.random.default_rng(len(name) * 7919 + rows)
    img = phantom(rows, cols, rng)
    angles = np.asarray(angles, dtype=np.float32)
    vol = astra.create_vol_geom(rows, cols)
    pg = astra.create_proj_geom("parallel", float(spacing), int(n_det), angles.astype(np.float64))
    pid = astra.create_projector("linear", pg, vol)
    sid, sino = astra.create_sino(img, pid)
    astra.data2d.delete(sid)
    save = lambda suffix, a: np.save(os.path.join(OUT, f"{name}_{suffix}.npy"), a)
    save("image", img)
    save("angles", angles)
    save("meta", np.array([n_det, spacing], dtype=np.float64))
    save("sino", sino.astype(np.float32))
    if sirt:
        for suffix, box in (("sirt100", None), ("sirt100box", (0.0, 1.0))):
            sino_id = astra.data2d.create("-sino", pg, sino)
            rec_id = astra.data2d.create("-vol", vol, 0.0)
            cfg = astra.astra_dict("SIRT")
            cfg["ProjectorId"] = pid
            cfg["ProjectionDataId"] = sino_id
            cfg["ReconstructionDataId"] = rec_id
            if box is not None:
                cfg["option"] = {"MinConstraint": box[0], "MaxConstraint": box[1]}
            alg = astra.algorithm.create(cfg)
            astra.algorithm.run(alg, 100)
            save(suffix, astra.data2d.get(rec_id).astype(np.float32))
            astra.algorithm.delete(alg)
            astra.data2d.delete([sino_id, rec_id])
    for filt in fbp:
        sino_id = astra.data2d.create("-sino", pg, sino)
        rec_id = astra.data2d.create("-vol", vol, 0.0)
        cfg = astra.astra_dict("FBP")
        cfg["ProjectorId"] = pid
        cfg["ProjectionDataId"] = sino_id
        cfg["ReconstructionDataId"] = rec_id
        cfg["option"] = {"FilterType": filt}
        alg = astra.algorithm.create(cfg)
        astra.algorithm.run(alg)
        save(f"fbp_{filt}", astra.data2d.get(rec_id).astype(np.float32))
        astra.algorithm.delete(alg)
        astra.data2d.delete([sino_id, rec_id])
    astra.projector.delete(pid)


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(4)
    # 1. square, uniform angles over [0, pi), detector count = image size
    run_case("sq16", 16, 16, np.linspace(0, np.pi, 20, endpoint=False), 16, 1.0,
             sirt=True, fbp=("ram-lak",))
    # 2. non-uniform angles over [0, 2 pi), more detectors, spacing < 1
    run_case("nu32", 32, 32, np.sort(rng.uniform(0, 2 * np.pi, 37)), 45, 0.8, sirt=True)
    # 3. rectangular image, spacing > 1, angles including 0, pi/2, pi and negatives
    angles = np.concatenate([[0.0, np.pi / 2, np.pi, -0.4, 3.0], rng.uniform(-np.pi, np.pi, 20)])
    run_case("rect", 12, 20, angles, 19, 1.3, sirt=True)
    # 4. FBP: 32x32, 64 uniform angles over [0, pi), 48 detectors, all four filters
    run_case("fbp32", 32, 32, np.linspace(0, np.pi, 64, endpoint=False), 48, 1.0,
             sirt=False, fbp=("ram-lak", "shepp-logan", "cosine", "hann"))
    # 5. FBP with detector spacing != 1
    run_case("fbp32s", 32, 32, np.linspace(0, np.pi, 50, endpoint=False), 30, 1.5,
             sirt=False, fbp=("ram-lak",))
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files, {total} bytes, to {os.path.abspath(OUT)}")


if __name__ == "__main__":
    main()

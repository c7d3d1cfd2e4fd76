"""Time ASTRA 2.5's CPU algorithms at the sizes of netinv-tomo's benches.

Run at one thread, in process CPU time:

    OMP_NUM_THREADS=1 /work/venv/bin/python tools/tomo/astra_timing.py

Prints one line per measurement: name, milliseconds of process CPU time per call (the
median of `repeats` runs), and wall-clock milliseconds.
"""

import time

import astra
import numpy as np


def timed(fn, repeats):
    cpu, wall = [], []
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return 1e3 * float(np.median(cpu)), 1e3 * float(np.median(wall))


def setup(n, n_angles, n_det):
    vol = astra.create_vol_geom(n, n)
    angles = np.linspace(0, np.pi, n_angles, endpoint=False)
    pg = astra.create_proj_geom("parallel", 1.0, n_det, angles)
    pid = astra.create_projector("linear", pg, vol)
    rng = np.random.default_rng(0)
    img = rng.random((n, n)).astype(np.float32)
    return vol, pg, pid, img


def sirt_per_iteration(n, n_angles, n_det, iters, repeats):
    vol, pg, pid, img = setup(n, n_angles, n_det)
    _, sino = astra.create_sino(img, pid)
    sino_id = astra.data2d.create("-sino", pg, sino)
    rec_id = astra.data2d.create("-vol", vol, 0.0)
    cfg = astra.astra_dict("SIRT")
    cfg["ProjectorId"] = pid
    cfg["ProjectionDataId"] = sino_id
    cfg["ReconstructionDataId"] = rec_id
    alg = astra.algorithm.create(cfg)
    cpu, wall = timed(lambda: astra.algorithm.run(alg, iters), repeats)
    return cpu / iters, wall / iters


def main():
    print(f"astra {astra.__version__}")
    vol, pg, pid, img = setup(128, 90, 183)
    _, sino = astra.create_sino(img, pid)
    print("project/128px-90ang cpu %.3f ms wall %.3f ms" % timed(lambda: astra.create_sino(img, pid), 20))
    print("backproject/128px-90ang cpu %.3f ms wall %.3f ms" % timed(lambda: astra.create_backprojection(sino, pid), 20))
    print("sirt-iter/128px-90ang cpu %.3f ms wall %.3f ms" % sirt_per_iteration(128, 90, 183, 20, 5))
    print("sirt-iter/256px-360ang cpu %.3f ms wall %.3f ms" % sirt_per_iteration(256, 360, 363, 5, 3))
    vol, pg, pid, img = setup(256, 360, 363)
    _, sino = astra.create_sino(img, pid)
    sino_id = astra.data2d.create("-sino", pg, sino)
    rec_id = astra.data2d.create("-vol", vol, 0.0)
    cfg = astra.astra_dict("FBP")
    cfg["ProjectorId"] = pid
    cfg["ProjectionDataId"] = sino_id
    cfg["ReconstructionDataId"] = rec_id
    alg = astra.algorithm.create(cfg)
    print("fbp/256px-360ang cpu %.3f ms wall %.3f ms" % timed(lambda: astra.algorithm.run(alg), 5))


if __name__ == "__main__":
    main()

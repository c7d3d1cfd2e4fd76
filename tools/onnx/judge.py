"""Scores inversions written by examples/invert_onnx with the independent judge that
make_fixtures.py trained (a differently built CNN, noise- and shift-augmented, run through
onnxruntime).

    /work/venv-onnx/bin/python tools/onnx/judge.py --judge /work/onnx-runs/judge/judge.onnx RUN_DIR...

Reads RUN_DIR/images.npy ([n, H, W] or [n, C, H, W]) and RUN_DIR/targets.json. 3x32x32
colour images are turned into 28x28 grey digits the judge can read: the channel mean,
the 2 px border cropped, rescaled to [0, 1] per image (the colour digits are bright strokes
on a dark background). Prints and writes RUN_DIR/judge.json (atomically).
"""
import argparse
import json
import os

import numpy as np
import onnxruntime as ort


def to_judge_input(images):
    if images.ndim == 3:
        images = images[:, None]
    n, c, h, w = images.shape
    if c == 3 and (h, w) == (32, 32):
        g = images.mean(axis=1, keepdims=True)[:, :, 2:30, 2:30]
        lo = g.min(axis=(1, 2, 3), keepdims=True)
        hi = g.max(axis=(1, 2, 3), keepdims=True)
        return ((g - lo) / np.maximum(hi - lo, 1e-6)).astype(np.float32)
    if (c, h, w) != (1, 28, 28):
        raise SystemExit(f"the judge reads 1x28x28 or 3x32x32 images, got {images.shape}")
    return images.astype(np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--judge", default="/work/onnx-runs/judge/judge.onnx")
    ap.add_argument("runs", nargs="+")
    args = ap.parse_args()
    sess = ort.InferenceSession(args.judge, providers=["CPUExecutionProvider"])
    for run in args.runs:
        images = np.load(os.path.join(run, "images.npy"))
        with open(os.path.join(run, "targets.json")) as f:
            targets = json.load(f)
        logits = sess.run(None, {"input": to_judge_input(images)})[0]
        pred = logits.argmax(1).tolist()
        hits = int(sum(p == t for p, t in zip(pred, targets)))
        out = {"judge": args.judge, "targets": targets, "judge_predictions": pred, "judge_hits": hits, "n": len(targets)}
        tmp = os.path.join(run, ".judge.json.tmp")
        with open(tmp, "w") as f:
            json.dump(out, f, indent=2)
        os.replace(tmp, os.path.join(run, "judge.json"))
        print(f"{run}: judge {hits} / {len(targets)}  predictions {pred}")


if __name__ == "__main__":
    main()

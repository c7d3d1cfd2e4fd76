#!/usr/bin/env python3
"""PyTorch reference for netinv's classifier training (examples/train_classifier.rs).

Same net (netinv-small: conv 1->16 3x3 pad 1, ReLU, max-pool 2; conv 16->32 3x3 pad 1,
ReLU, max-pool 2; linear 1568->128, ReLU; linear 128->10), same data (the embedded
8,000 / 2,000 digits read from crates/netinv-data/data/*.gz), same batch size, optimiser,
per-step cosine schedule and FGSM loss (a*J(x) + (1-a)*J(x'), a = 0.5) as the Rust
trainer. Timing: one thread (torch.set_num_threads(1)), process CPU time per epoch
(time.process_time), training steps only; evaluation is timed separately.

Usage (from the repository root):
    OMP_NUM_THREADS=1 /work/venv/bin/python tools/models/train_torch.py \
        --optimizer sgd --epochs 3 [--adversarial fgsm --epsilon 0.1] [--json out.json]
"""
import argparse
import gzip
import json
import math
import struct
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA = Path(__file__).resolve().parents[2] / "crates" / "netinv-data" / "data"


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    assert zero == 0 and dtype == 0x08, path
    dims = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(split):
    prefix = "train" if split == "train" else "t10k"
    x = read_idx(DATA / f"{prefix}-images-idx3-ubyte.gz").astype(np.float32) / 255.0
    y = read_idx(DATA / f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64)
    return torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y)


class NetinvSmall(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc1 = nn.Linear(1568, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def fgsm(model, x, y, eps):
    x = x.clone().requires_grad_(True)
    loss = F.cross_entropy(model(x), y)
    (g,) = torch.autograd.grad(loss, x)
    return (x + eps * g.sign()).clamp(0, 1).detach()


def shift_batch(x, s, gen):
    """Translate every image by a random (dy, dx) in [-s, s]^2, filling with zeros."""
    out = torch.zeros_like(x)
    shifts = torch.randint(-s, s + 1, (len(x), 2), generator=gen)
    h, w = x.shape[-2:]
    for i, (dy, dx) in enumerate(shifts.tolist()):
        out[i, :, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
            x[i, :, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def accuracy(model, x, y, eps=None):
    model.eval()
    correct = 0
    for i in range(0, len(x), 500):
        xb, yb = x[i : i + 500], y[i : i + 500]
        if eps is not None:
            xb = fgsm(model, xb, yb, eps)
        with torch.no_grad():
            correct += (model(xb).argmax(1) == yb).sum().item()
    model.train()
    return correct / len(x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    ap.add_argument("--lr", type=float)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--adversarial", choices=["none", "fgsm"], default="none")
    ap.add_argument("--epsilon", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shift", type=int, default=0, help="random translation augmentation (pixels)")
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    xtr, ytr = load("train")
    xte, yte = load("test")
    model = NetinvSmall()
    if args.optimizer == "sgd":
        lr = args.lr or 0.05
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=args.weight_decay)
    else:
        lr = args.lr or 1e-3
        opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=args.weight_decay)
    steps_per_epoch = math.ceil(len(xtr) / args.batch_size)
    total = steps_per_epoch * args.epochs
    gen = torch.Generator().manual_seed(args.seed)
    epochs = []
    step = 0
    for epoch in range(1, args.epochs + 1):
        order = torch.randperm(len(xtr), generator=gen)
        t0 = time.process_time()
        loss_sum, correct = 0.0, 0
        for i in range(0, len(xtr), args.batch_size):
            idx = order[i : i + args.batch_size]
            xb, yb = xtr[idx], ytr[idx]
            if args.shift > 0:
                xb = shift_batch(xb, args.shift, gen)
            for group in opt.param_groups:  # per-step cosine schedule, as in the Rust trainer
                group["lr"] = 0.5 * lr * (1 + math.cos(math.pi * step / total))
            if args.adversarial == "fgsm":
                xv = xb.clone().requires_grad_(True)
                logits = model(xv)
                clean = F.cross_entropy(logits, yb)
                (g,) = torch.autograd.grad(clean, xv, retain_graph=True)
                xa = (xb + args.epsilon * g.sign()).clamp(0, 1)
                loss = 0.5 * clean + 0.5 * F.cross_entropy(model(xa), yb)
            else:
                logits = model(xb)
                loss = F.cross_entropy(logits, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            loss_sum += loss.item() * len(idx)
            correct += (logits.argmax(1) == yb).sum().item()
        seconds = time.process_time() - t0
        test_acc = accuracy(model, xte, yte)
        with_eval = time.process_time() - t0
        epochs.append(
            dict(epoch=epoch, train_loss=loss_sum / len(xtr), train_accuracy=correct / len(xtr),
                 test_accuracy=test_acc, seconds=seconds)
        )
        print(f"epoch {epoch:2d}: train loss {loss_sum / len(xtr):.4f}, test acc {test_acc:.4f}, "
              f"{seconds:.2f} s CPU, {with_eval:.2f} s CPU incl. eval", flush=True)
    final = dict(test_accuracy=accuracy(model, xte, yte),
                 fgsm_accuracy=accuracy(model, xte, yte, args.epsilon))
    print(f"final: {final}; torch {torch.__version__}, threads {torch.get_num_threads()}")
    if args.json:
        Path(args.json).write_text(json.dumps(dict(config=vars(args), epochs=epochs, final=final), indent=2))


if __name__ == "__main__":
    main()

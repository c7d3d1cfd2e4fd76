"""PyTorch anchor of `benches/models_timing.rs`: the same four cases, the same JSON line.

    OMP_NUM_THREADS=1 python tools/perf/torch_models.py --case train-epoch|train-step|invert-b10|invert-bn-b200 \
        --threads 1 [--repeats 5] [--steps 20]

- `train-epoch`: one epoch of `tools/models/train_torch.py`'s defaults as the Rust trainer
  runs them (netinv-small, SGD lr 0.05 momentum 0.9, per-step cosine schedule over the one
  epoch, batch 64, random 2-pixel shifts, the 8,000 embedded training digits, no evaluation);
- `train-step`: batch 64 of uniform images, cross-entropy, backward, plain SGD lr 0.01;
- `invert-b10`: x [10, 1, 28, 28] requires grad, frozen net, cross-entropy to 0..9, backward,
  Adam on x (lr 0.05), clamp to [0, 1];
- `invert-bn-b200`: x [200, 1, 28, 28], frozen net with BatchNorm2d after each conv (eval
  mode), cross-entropy plus netinv's per-image BN-statistics prior (weight 0.01: for each BN
  layer and image, the L2 distance of the per-image mean and biased variance of the layer's
  input from the running ones, sqrt(. + 1e-12)), backward to x, no update.

Each repeat (a whole epoch after one untimed warm-up epoch, or `--steps` steps after 3
untimed warm-up steps) is timed in process CPU
time (`time.process_time`, all threads) and wall time (`time.perf_counter`); the output is
one JSON line `{"case", "threads", "per", "cpu_s": [...], "wall_s": [...], "torch"}` with
per-epoch or per-step figures.
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from train_torch import NetinvSmall, load, shift_batch  # noqa: E402


class NetinvSmallBn(nn.Module):
    """netinv-small with BatchNorm2d after each convolution (before the ReLU)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(32)
        self.fc1 = nn.Linear(1568, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward_with_stats(self, x):
        stats = []
        for conv, bn in ((self.conv1, self.bn1), (self.conv2, self.bn2)):
            z = conv(x)
            stats.append((z.mean((2, 3)), z.var((2, 3), unbiased=False), bn))
            x = F.max_pool2d(F.relu(bn(z)), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc2(x), stats


def bn_prior(stats, weight):
    total = 0.0
    for mean, var, bn in stats:
        total = total + ((mean - bn.running_mean).pow(2).sum(1) + 1e-12).sqrt()
        total = total + ((var - bn.running_var).pow(2).sum(1) + 1e-12).sqrt()
    return weight * total


def make(case):
    """Returns (run(n), unit) for the case."""
    torch.manual_seed(0)
    if case == "train-epoch":
        xtr, ytr = load("train")
        batch, lr0 = 64, 0.05

        def epoch(_n):
            torch.manual_seed(0)
            model = NetinvSmall()
            opt = torch.optim.SGD(model.parameters(), lr=lr0, momentum=0.9)
            gen = torch.Generator().manual_seed(0)
            order = torch.randperm(len(xtr), generator=gen)
            total = math.ceil(len(xtr) / batch)
            for step, i in enumerate(range(0, len(xtr), batch)):
                idx = order[i : i + batch]
                xb = shift_batch(xtr[idx], 2, gen)
                for group in opt.param_groups:
                    group["lr"] = 0.5 * lr0 * (1 + math.cos(math.pi * step / total))
                loss = F.cross_entropy(model(xb), ytr[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()

        return epoch, "epoch"
    if case == "train-step":
        net = NetinvSmall()
        x, y = torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,))
        opt = torch.optim.SGD(net.parameters(), lr=0.01)

        def steps(n):
            for _ in range(n):
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(net(x), y).backward()
                opt.step()

        return steps, "step"
    if case == "invert-b10":
        frozen = NetinvSmall().eval()
        for p in frozen.parameters():
            p.requires_grad_(False)
        x = (0.5 + 0.2 * torch.randn(10, 1, 28, 28)).requires_grad_(True)
        targets = torch.arange(10)
        opt = torch.optim.Adam([x], lr=0.05)

        def steps(n):
            for _ in range(n):
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(frozen(x), targets).backward()
                opt.step()
                with torch.no_grad():
                    x.clamp_(0.0, 1.0)

        return steps, "step"
    if case == "invert-bn-b200":
        frozen = NetinvSmallBn().eval()
        for p in frozen.parameters():
            p.requires_grad_(False)
        x = torch.rand(200, 1, 28, 28).requires_grad_(True)
        targets = torch.arange(200) % 10

        def steps(n):
            for _ in range(n):
                x.grad = None
                logits, stats = frozen.forward_with_stats(x)
                loss = F.cross_entropy(logits, targets, reduction="mean") + bn_prior(stats, 0.01).sum()
                loss.backward()

        return steps, "step"
    sys.exit(f"unknown --case {case}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    run, unit = make(a.case)
    n = 1 if unit == "epoch" else a.steps
    # untimed warm-up: 3 steps, or one whole epoch (PyTorch's first epoch in a process costs
    # nearly twice the later ones: allocator, oneDNN primitive caches, lazy initialisation)
    run(3 if unit == "step" else 1)
    cpu, wall = [], []
    for _ in range(a.repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        run(n)
        cpu.append((time.process_time() - c0) / n)
        wall.append((time.perf_counter() - w0) / n)
    print(json.dumps({"case": a.case, "threads": torch.get_num_threads(), "per": unit,
                      "cpu_s": cpu, "wall_s": wall, "torch": torch.__version__}))


if __name__ == "__main__":
    main()

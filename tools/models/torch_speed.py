"""PyTorch reference timings for netinv-small (compare with `cargo bench --bench models`).

Times, at 1 thread in process CPU time (time.process_time):
- train-step/netinv-small-b64: forward + cross-entropy + backward + plain SGD update
  (lr 0.01) on a batch of 64 images;
- invert-step/netinv-small-b10: x [10, 1, 28, 28] requires grad, forward through a frozen
  net (requires_grad False on every weight), cross-entropy to targets 0..9, backward to x,
  Adam update of x (lr 0.05) and clamp to [0, 1].

Usage: /work/venv/bin/python tools/models/torch_speed.py [--threads 1] [--seconds 3]
Prints one JSON object with milliseconds per step (best of 5 rounds of mean step time).
"""

import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class NetinvSmall(nn.Module):
    """conv 1->16 3x3 pad 1, ReLU, pool 2; conv 16->32, ReLU, pool 2; 1568->128->10."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc1 = nn.Linear(1568, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


def time_steps(step, seconds):
    """Best over 5 rounds of the mean CPU time per step, in ms (each round ~seconds/5)."""
    for _ in range(5):
        step()  # warm-up
    best = float("inf")
    for _ in range(5):
        n = 0
        t0 = time.process_time()
        while True:
            step()
            n += 1
            elapsed = time.process_time() - t0
            if elapsed >= seconds / 5:
                break
        best = min(best, 1e3 * elapsed / n)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    net = NetinvSmall()
    x64 = torch.rand(64, 1, 28, 28)
    y64 = torch.randint(0, 10, (64,))
    opt = torch.optim.SGD(net.parameters(), lr=0.01)

    def train_step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x64), y64)
        loss.backward()
        opt.step()

    frozen = NetinvSmall().eval()
    for p in frozen.parameters():
        p.requires_grad_(False)
    x10 = (0.5 + 0.2 * torch.randn(10, 1, 28, 28)).requires_grad_(True)
    targets = torch.arange(10)
    inv_opt = torch.optim.Adam([x10], lr=0.05)

    def invert_step():
        inv_opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(frozen(x10), targets)
        loss.backward()
        inv_opt.step()
        with torch.no_grad():
            x10.clamp_(0.0, 1.0)

    out = {
        "torch": torch.__version__,
        "threads": args.threads,
        "train_step_b64_ms": time_steps(train_step, args.seconds),
        "invert_step_b10_ms": time_steps(invert_step, args.seconds),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()

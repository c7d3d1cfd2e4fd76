"""PyTorch's time for the inversion step that examples/invert_onnx runs, on the fixture
architectures with the fixtures' weights (read from the .onnx initializers), 1 thread,
process CPU time.

    /work/venv-onnx/bin/python tools/onnx/bench_torch.py [--steps 50] [--jitter 2]

One step: (rolled) batch of 10 images -> model -> cross-entropy (mean) + 1e-3 squared TV
+ 1e-4 ||x||^2 (both summed) -> backward to the images -> Adam (lr 0.05) -> clamp to [0, 1].
"""
import argparse
import time

import numpy as np
import onnx
import onnx.numpy_helper
import torch
import torch.nn.functional as F

import common as c

torch.set_num_threads(1)


def load_weights(model, name):
    """Copies the .onnx initializers whose names are the module's parameter names (the
    legacy exporter keeps them); returns how many of the module's tensors were filled."""
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(f"{c.FIXTURES}/{name}.onnx").graph.initializer}
    state = model.state_dict()
    filled = 0
    for k in state:
        if k in inits and tuple(inits[k].shape) == tuple(state[k].shape):
            state[k] = torch.from_numpy(inits[k].copy())
            filled += 1
    model.load_state_dict(state)
    return filled, len(state)


def step_time(model, shape, steps, jitter, norm):
    g = torch.Generator().manual_seed(0)
    x = (0.5 + 0.2 * torch.randn((10,) + shape, generator=g)).requires_grad_(True)
    t = torch.arange(10)
    opt = torch.optim.Adam([x], lr=0.05)
    mean = torch.tensor(c.COLOR_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(c.COLOR_STD).view(1, 3, 1, 1)
    rng = np.random.default_rng(0)

    def one():
        opt.zero_grad()
        xin = x
        if jitter:
            dy, dx = rng.integers(-jitter, jitter + 1, size=2).tolist()
            xin = torch.roll(x, (dy, dx), (2, 3))
        if norm:
            xin = (xin - mean) / std
        tv = ((x[:, :, :, 1:] - x[:, :, :, :-1]) ** 2).sum() + ((x[:, :, 1:] - x[:, :, :-1]) ** 2).sum()
        loss = F.cross_entropy(model(xin), t) + 1e-3 * tv + 1e-4 * (x ** 2).sum()
        loss.backward()
        opt.step()
        with torch.no_grad():
            x.clamp_(0, 1)

    for _ in range(5):
        one()
    t0 = time.process_time()
    for _ in range(steps):
        one()
    return 1e3 * (time.process_time() - t0) / steps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--jitter", type=int, default=2)
    args = ap.parse_args()
    nets = [("lenet", c.LeNet(), (1, 28, 28), False),
            ("resnet_bn", c.ResNet(), (1, 28, 28), False),
            ("color32", c.ColorNet(), (3, 32, 32), True)]
    for name, model, shape, norm in nets:
        filled, total = load_weights(model, name)
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        ms = step_time(model, shape, args.steps, args.jitter, norm)
        print(f"{name}: {ms:.2f} ms CPU per step (batch 10, 1 thread, jitter {args.jitter}; {filled}/{total} tensors from the .onnx)")


if __name__ == "__main__":
    main()

"""Shared pieces of the tools/onnx scripts: the embedded digits, the fixture nets and
their training (torch, CPU, seeded)."""
import gzip
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(ROOT, "crates", "netinv-data", "data")
FIXTURES = os.path.join(ROOT, "crates", "netinv-onnx", "tests", "fixtures")
# The coloured 3x32x32 digits are normalised per channel with these (stored as metadata).
COLOR_MEAN = [0.45, 0.40, 0.35]
COLOR_STD = [0.30, 0.30, 0.30]


def read_idx(name):
    """An IDX file of the embedded digits as a numpy array (images scaled to [0, 1])."""
    with gzip.open(os.path.join(DATA, name), "rb") as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)
    return data


def digits(split):
    """(images [n, 1, 28, 28] float32 in [0, 1], labels [n] int64) of 'train' or 't10k'."""
    x = read_idx(f"{split}-images-idx3-ubyte.gz").astype(np.float32) / 255.0
    y = read_idx(f"{split}-labels-idx1-ubyte.gz").astype(np.int64)
    return x[:, None], y


def colour_digits(x, seed):
    """3x32x32 coloured digits: each digit padded by 2 px, a bright random foreground
    colour on a dark random background colour (seeded), values in [0, 1]."""
    rng = np.random.default_rng(seed)
    n = x.shape[0]
    fg = rng.uniform(0.55, 1.0, size=(n, 3, 1, 1)).astype(np.float32)
    bg = rng.uniform(0.0, 0.35, size=(n, 3, 1, 1)).astype(np.float32)
    d = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    return (bg * (1.0 - d) + fg * d).astype(np.float32)


def normalise(x):
    m = np.array(COLOR_MEAN, dtype=np.float32).reshape(1, 3, 1, 1)
    s = np.array(COLOR_STD, dtype=np.float32).reshape(1, 3, 1, 1)
    return ((x - m) / s).astype(np.float32)


class LeNet(nn.Module):
    """LeNet-5 style: conv 5x5, max-pool, conv 5x5, max-pool, three linear layers; the
    flatten is written as x.view(x.size(0), -1) so the export carries Shape / Gather /
    Unsqueeze / Concat / Reshape."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 6, 5, padding=2)
        self.c2 = nn.Conv2d(6, 16, 5)
        self.f1 = nn.Linear(16 * 5 * 5, 120)
        self.f2 = nn.Linear(120, 84)
        self.f3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.max_pool2d(F.relu(self.c2(x)), 2)
        x = x.view(x.size(0), -1)
        return self.f3(F.relu(self.f2(F.relu(self.f1(x)))))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.a = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.ab = nn.BatchNorm2d(cout)
        self.b = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bb = nn.BatchNorm2d(cout)
        self.skip = None
        if stride != 1 or cin != cout:
            self.skip = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.bb(self.b(F.relu(self.ab(self.a(x)))))
        return F.relu(y + (x if self.skip is None else self.skip(x)))


class ResNet(nn.Module):
    """A small residual net: stem conv + BN, an identity block, a stride-2 block with a
    1x1 projection, global average pooling, one linear layer."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.sb = nn.BatchNorm2d(16)
        self.b1 = Block(16, 16, 1)
        self.b2 = Block(16, 32, 2)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = F.relu(self.sb(self.stem(x)))
        x = self.b2(self.b1(x))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class ColorNet(nn.Module):
    """3x32x32: conv, LeakyReLU, average pooling, conv, Tanh, average pooling, Dropout,
    two linear layers."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 16, 3, padding=1)
        self.c2 = nn.Conv2d(16, 16, 3, padding=1)
        self.drop = nn.Dropout(0.2)
        self.f1 = nn.Linear(16 * 8 * 8, 32)
        self.f2 = nn.Linear(32, 10)

    def forward(self, x):
        x = F.avg_pool2d(F.leaky_relu(self.c1(x), 0.1), 2)
        x = F.avg_pool2d(torch.tanh(self.c2(x)), 2)
        x = self.drop(torch.flatten(x, 1))
        return self.f2(self.drop(F.leaky_relu(self.f1(x), 0.1)))


class OpZoo(nn.Module):
    """Not trained: exercises the operators the three classifiers do not use (grouped,
    dilated and strided convolutions, 3x3 max-pooling with padding, average pooling with
    padding, Pad, Clip, Sigmoid, GELU, Transpose, Concat, Slice, MatMul, ReduceMean,
    Softmax / LogSoftmax, Sub / Div)."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(2, 8, 3, padding=1)
        self.g = nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=4)
        self.s = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=2)
        self.m = nn.Parameter(torch.randn(8, 6) * 0.3)

    def forward(self, x):
        x = F.pad(x, (1, 2, 0, 1), value=0.25)[:, :, :, 1:-2]
        x = torch.clamp(self.c1(x[:, :, :-1]), -1.5, 2.0)
        y = torch.sigmoid(self.g(x)) - 0.5
        z = F.gelu(self.s(x + y))
        z = F.max_pool2d(z, 3, stride=2, padding=1)
        w = F.avg_pool2d(z, 3, stride=1, padding=1, count_include_pad=False)
        h = torch.cat([z, w / 2.0], 1).mean(dim=(2,))  # [b, 16, w]
        h = h.transpose(1, 2) @ torch.cat([self.m, self.m], 0)  # [b, w, 6]
        h = h.mean(1) + torch.softmax(h, -1).sum(1) + F.log_softmax(h, -1)[:, 0]
        return h


def train(model, x, y, epochs, seed, lr=1e-3, batch=64):
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=g)
        for i in range(0, len(xt), batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            F.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    model.eval()
    return model


def accuracy(model, x, y):
    with torch.no_grad():
        return float((model(torch.from_numpy(x)).argmax(1).numpy() == y).mean())

"""Trains small digit classifiers with PyTorch, exports them to ONNX and writes the parity
fixtures of crates/netinv-onnx (fixed inputs, onnxruntime logits, PyTorch input gradients).

    /work/venv-onnx/bin/python tools/onnx/make_fixtures.py [--judge-dir DIR]

Per model NAME it writes into crates/netinv-onnx/tests/fixtures/:
  NAME.onnx            the exported model (batch dimension dynamic)
  NAME.input.npy       float32 [4, C, H, W]: fixed inputs (test digits; the model's own
                       input space, i.e. normalised for the colour net)
  NAME.logits.npy      float32 [4, classes]: onnxruntime's outputs on the inputs
  NAME.target.npy      int64 [4]: the class whose logit is differentiated
  NAME.grad.npy        float32 [4, C, H, W]: PyTorch's d(sum_i logit[i, target[i]]) / d input
  resnet_bn.bn_mean.npy / .bn_var.npy: every BatchNorm input's batch statistics
Models: lenet (opset 13, folded by the exporter), resnet_bn (opset 17, BatchNorm nodes
kept: do_constant_folding=False), resnet (the same weights, exporter's default folding),
color32 (opset 18, 3x32x32, normalisation in the metadata), opzoo (untrained operator mix).
The independent judge (a differently built CNN trained with noise and shift augmentation)
goes to --judge-dir as judge.onnx. Everything is seeded; torch uses 2 threads.
"""
import argparse
import json
import os

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn
import torch.nn.functional as F

import common as c

torch.set_num_threads(2)


def insert_dropout(m):
    """torch drops eval-mode Dropout from the export; other exporters (tf2onnx, Keras)
    keep an inference Dropout node. Insert one after the Flatten, with its ratio input and
    its (unused) mask output, as those files carry it."""
    g = m.graph
    for i, n in enumerate(g.node):
        if n.op_type != "Flatten":
            continue
        out, new = n.output[0], n.output[0] + "_dropout"
        for other in g.node:
            for k, name in enumerate(other.input):
                if name == out:
                    other.input[k] = new
        g.initializer.append(onnx.helper.make_tensor("dropout_ratio", onnx.TensorProto.FLOAT, [], [0.2]))
        g.node.insert(i + 1, onnx.helper.make_node("Dropout", [out, "dropout_ratio"], [new, "dropout_mask"], name="dropout0"))
        return
    raise ValueError("no Flatten node")


def export(model, shape, name, opset, fold=True, metadata=None, dropout=False):
    path = os.path.join(c.FIXTURES, f"{name}.onnx")
    x = torch.zeros((1,) + tuple(shape))
    torch.onnx.export(model, (x,), path, dynamo=False, opset_version=opset,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                      do_constant_folding=fold)
    m = onnx.load(path)
    if dropout:
        insert_dropout(m)
    for k, v in (metadata or {}).items():
        e = m.metadata_props.add()
        e.key, e.value = k, v
    onnx.checker.check_model(m)
    onnx.save(m, path)
    return path


def write_bn_stats(model, inputs, name):
    """The batch mean and biased variance over (batch, h, w) of every BatchNorm2d input,
    in execution order, concatenated: NAME.bn_mean.npy / NAME.bn_var.npy."""
    means, variances = [], []

    def hook(_module, args, _out):
        z = args[0].detach()
        means.append(z.mean(dim=(0, 2, 3)))
        variances.append(z.var(dim=(0, 2, 3), unbiased=False))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        model(torch.from_numpy(inputs))
    for h in handles:
        h.remove()
    base = os.path.join(c.FIXTURES, name)
    np.save(base + ".bn_mean.npy", torch.cat(means).numpy().astype(np.float32))
    np.save(base + ".bn_var.npy", torch.cat(variances).numpy().astype(np.float32))


def write_parity(model, path, name, inputs, targets):
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    logits = sess.run(None, {"input": inputs})[0].astype(np.float32)
    x = torch.from_numpy(inputs.copy()).requires_grad_(True)
    out = model(x)
    out.gather(1, torch.from_numpy(targets)[:, None]).sum().backward()
    with torch.no_grad():
        gap = float(np.abs(out.numpy() - logits).max())
    base = os.path.join(c.FIXTURES, name)
    np.save(base + ".input.npy", inputs.astype(np.float32))
    np.save(base + ".logits.npy", logits)
    np.save(base + ".target.npy", targets.astype(np.int64))
    np.save(base + ".grad.npy", x.grad.numpy().astype(np.float32))
    nodes = sorted({n.op_type for n in onnx.load(path).graph.node})
    print(f"{name}: {os.path.getsize(path)} bytes, ops {nodes}, torch-vs-ort max |diff| {gap:.2e}")


class Judge(nn.Module):
    """The independent judge: 5x5 stride-2 convolutions with ELU and a linear head (no
    pooling, no BatchNorm), unlike every fixture net."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 32, 5, stride=2, padding=2)
        self.c2 = nn.Conv2d(32, 64, 5, stride=2, padding=2)
        self.f = nn.Linear(64 * 7 * 7, 10)

    def forward(self, x):
        return self.f(F.elu(self.c2(F.elu(self.c1(x)))).flatten(1))


def train_judge(x, y, seed, epochs=6):
    """Adam with Gaussian noise (sigma 0.3 on half of each batch) and random shifts of up
    to 2 px: a judge that does not accept arbitrary textures as digits so easily."""
    torch.manual_seed(seed)
    judge = Judge()
    opt = torch.optim.Adam(judge.parameters(), lr=1e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=g)
        for i in range(0, len(xt), 64):
            idx = perm[i:i + 64]
            xb = xt[idx].clone()
            dy, dx = torch.randint(-2, 3, (2,), generator=g).tolist()
            xb = torch.roll(xb, (dy, dx), (2, 3))
            half = len(xb) // 2
            xb[:half] = (xb[:half] + 0.3 * torch.randn(xb[:half].shape, generator=g)).clamp(0, 1)
            opt.zero_grad()
            F.cross_entropy(judge(xb), yt[idx]).backward()
            opt.step()
    return judge.eval()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--judge-dir", default="/work/onnx-runs/judge")
    args = ap.parse_args()
    os.makedirs(c.FIXTURES, exist_ok=True)
    xtr, ytr = c.digits("train")
    xte, yte = c.digits("t10k")
    pick = np.array([0, 1, 2, 3])
    targets = yte[pick]
    report = {}

    lenet = c.train(c.LeNet(), xtr, ytr, epochs=4, seed=1)
    report["lenet"] = c.accuracy(lenet, xte, yte)
    write_parity(lenet, export(lenet, (1, 28, 28), "lenet", 13), "lenet", xte[pick], targets)

    torch.manual_seed(2)
    resnet = c.train(c.ResNet(), xtr, ytr, epochs=3, seed=2)
    report["resnet"] = c.accuracy(resnet, xte, yte)
    write_parity(resnet, export(resnet, (1, 28, 28), "resnet_bn", 17, fold=False), "resnet_bn", xte[pick], targets)
    write_parity(resnet, export(resnet, (1, 28, 28), "resnet", 17), "resnet", xte[pick], targets)
    write_bn_stats(resnet, xte[pick], "resnet_bn")

    ctr = c.normalise(c.colour_digits(xtr, seed=3))
    cte = c.normalise(c.colour_digits(xte, seed=4))
    torch.manual_seed(3)
    color = c.train(c.ColorNet(), ctr, ytr, epochs=4, seed=3)
    report["color32"] = c.accuracy(color, cte, yte)
    meta = {"mean": ",".join(map(str, c.COLOR_MEAN)), "std": ",".join(map(str, c.COLOR_STD))}
    write_parity(color, export(color, (3, 32, 32), "color32", 18, metadata=meta, dropout=True), "color32", cte[pick], targets)

    torch.manual_seed(4)
    zoo = c.OpZoo().eval()
    zin = torch.randn(4, 2, 16, 16, generator=torch.Generator().manual_seed(5)).numpy()
    write_parity(zoo, export(zoo, (2, 16, 16), "opzoo", 18), "opzoo", zin, np.array([0, 1, 2, 5]))

    os.makedirs(args.judge_dir, exist_ok=True)
    judge = train_judge(xtr, ytr, seed=6)
    report["judge"] = c.accuracy(judge, xte, yte)
    path = os.path.join(args.judge_dir, "judge.onnx")
    torch.onnx.export(judge, (torch.zeros(1, 1, 28, 28),), path, dynamo=False, opset_version=17,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    print("test accuracy (2,000 held-out digits):", json.dumps(report))
    total = sum(os.path.getsize(os.path.join(c.FIXTURES, f)) for f in os.listdir(c.FIXTURES))
    print(f"fixtures: {total} bytes in all")


if __name__ == "__main__":
    main()

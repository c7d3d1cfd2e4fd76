"""PyTorch reference for the `vae-train-step/b64` bench of netinv-interp.

The same VAE as `netinv_interp::Vae` with `VaeConfig::default()` (latent 16, channels 16 / 32):
conv3x3(1->16) -> maxpool2 + relu -> conv3x3(16->32) -> maxpool2 + relu -> linear mu / logvar;
decoder linear -> relu -> [32, 7, 7] -> nearest upsample x2 -> conv3x3(32->16) -> relu ->
upsample x2 -> conv3x3(16->1) -> logits; loss = BCE-with-logits (sum over pixels) + KL, both
averaged over the batch; Adam lr 1e-3. One step = noise draw, forward, loss, backward, Adam.

Usage (1 thread, process CPU time, like the Rust bench):
    /work/venv/bin/python tools/interp/torch_vae_step.py [--steps 300]
"""

import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Vae(nn.Module):
    def __init__(self, latent=16, c1=16, c2=32):
        super().__init__()
        self.c2 = c2
        self.enc1 = nn.Conv2d(1, c1, 3, padding=1)
        self.enc2 = nn.Conv2d(c1, c2, 3, padding=1)
        self.mu = nn.Linear(c2 * 49, latent)
        self.logvar = nn.Linear(c2 * 49, latent)
        self.fc = nn.Linear(latent, c2 * 49)
        self.dec1 = nn.Conv2d(c2, c1, 3, padding=1)
        self.dec2 = nn.Conv2d(c1, 1, 3, padding=1)

    def loss(self, x, eps):
        h = F.relu(F.max_pool2d(self.enc1(x), 2))
        h = F.relu(F.max_pool2d(self.enc2(h), 2)).flatten(1)
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + torch.exp(0.5 * logvar) * eps
        h = F.relu(self.fc(z)).view(-1, self.c2, 7, 7)
        h = F.relu(self.dec1(F.interpolate(h, scale_factor=2, mode="nearest")))
        logits = self.dec2(F.interpolate(h, scale_factor=2, mode="nearest"))
        b = x.shape[0]
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / b
        kl = 0.5 * torch.sum(torch.exp(logvar) + mu**2 - 1.0 - logvar) / b
        return recon + kl


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = Vae()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(64, 1, 28, 28)

    def step():
        eps = torch.randn(64, 16)
        opt.zero_grad(set_to_none=True)
        loss = model.loss(x, eps)
        loss.backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    t0 = time.process_time()
    for _ in range(args.steps):
        step()
    dt = (time.process_time() - t0) / args.steps
    print(f"torch {torch.__version__}: vae-train-step b64, 1 thread: {dt * 1e3:.3f} ms CPU per step")


if __name__ == "__main__":
    main()

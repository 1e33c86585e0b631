#!/usr/bin/env python3
"""The PyTorch side of `cargo bench -p edgegen --bench gan`: edgegen's DCGAN
as the twin package defines it (twin/pytorch, `edgegen_twin.gan.GAN`,
unconditional), at the issue's reference shapes:
z = 64; G Linear 64 -> 128x7x7 (BN, ReLU), ConvT 128 -> 64 (BN, ReLU),
ConvT 64 -> 1, tanh, each ConvT k4 s2 p1; D Conv 1 -> 64 (LeakyReLU 0.2),
Conv 64 -> 128 (BN, LeakyReLU 0.2), Linear 6272 -> 1; non-saturating loss,
Adam 2e-4 betas (0.5, 0.999) for both, batch 128. The step is PyTorch's
DCGAN example's: D on real, D on G(z).detach(), step D; D on G(z), step G.
Data held in one tensor (no DataLoader), so the time is the model's.

  python3 bench/pytorch_gan.py --data ../shared/datasets/mnist --epochs 1 --threads 2 [--max-train N] [--json]

Prints per-epoch training seconds and their median, and the same scaled to
the full 60,000 images when --max-train cuts the epoch short. Also writes
--samples FILE (a .npy of 1,000 generated images in [0, 1]) when asked.
Needs `pip install torch`; used by benchmarks only, never by tests.
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "twin", "pytorch"))
from edgegen_twin import data  # noqa: E402
from edgegen_twin.gan import GAN, disc_loss, gen_loss  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-train", type=int, default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--samples", default=None)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    tx, _, _, _, shape = data.mnist(a.data)
    train = (torch.from_numpy(tx) * 2 - 1).view(-1, *shape)
    if a.max_train:
        train = train[:a.max_train]
    gan = GAN({"image_shape": shape, "latent": 64, "n_classes": 0, "g_width": 128, "d_width": 64})
    g, d = gan.gen, gan.disc
    og = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    od = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    secs = []
    for epoch in range(a.epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(len(train))
        dl = gl = 0.0
        for i in range(0, len(train), 128):
            x = train[perm[i:i + 128]]
            n = len(x)
            z = torch.randn(n, 64)
            fake = g(z)
            od.zero_grad()
            ld = disc_loss("ns", d(x), d(fake.detach()))
            ld.backward()
            od.step()
            og.zero_grad()
            lg = gen_loss("ns", d(fake))
            lg.backward()
            og.step()
            dl += ld.item() * n
            gl += lg.item() * n
        secs.append(time.perf_counter() - t0)
        if not a.json:
            print(f"epoch {epoch + 1}: d_loss {dl / len(train):.3f}  g_loss {gl / len(train):.3f}  {secs[-1]:.2f} s")
    if a.samples:
        g.eval()
        with torch.no_grad():
            s = (g(torch.randn(1000, 64)) + 1) / 2
        np.save(a.samples, s.clamp(0, 1).view(1000, 784).numpy())
    med = statistics.median(secs)
    out = {"torch": torch.__version__, "threads": a.threads, "images": len(train), "epoch_seconds": secs,
           "median_epoch_seconds": med, "median_full_epoch_seconds": med * 60000 / len(train)}
    print(json.dumps(out) if a.json else f"median epoch {med:.2f} s ({out['median_full_epoch_seconds']:.1f} s per 60,000 images)")


if __name__ == "__main__":
    main()

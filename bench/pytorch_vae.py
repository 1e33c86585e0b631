#!/usr/bin/env python3
"""The PyTorch side of `cargo bench -p edgegen --bench vae`: edgegen's VAE as
the twin package defines it (twin/pytorch, `edgegen_twin.vae.VAE`), at
PyTorch's own VAE example's shapes and recipe (examples/vae/main.py:
784-400-20, ReLU, Bernoulli, Adam 1e-3, batch 128), with the data held in
one tensor instead of a torchvision DataLoader, so that the time is the
model's and not the loader's (a stricter baseline than the example as
published).

  python3 bench/pytorch_vae.py --data ../shared/datasets/mnist --epochs 10 --threads 2 [--json]

Prints per-epoch training seconds (without the test pass), their median, and
the test loss per image after the last epoch: BCE summed over pixels plus
KL, z sampled once, averaged over the 10,000 test images (the twin's and
edgegen's loss; the example sums it over the batch where these average).
Needs `pip install torch`; used by benchmarks only, never by tests.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "twin", "pytorch"))
from edgegen_twin import data  # noqa: E402
from edgegen_twin.vae import VAE  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    tx, _, vx, _, shape = data.mnist(a.data)
    train, test = torch.from_numpy(tx), torch.from_numpy(vx)
    model = VAE({"image_shape": shape, "latent": 20, "n_classes": 0, "hidden": [400]})
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    secs, losses = [], []
    for epoch in range(a.epochs):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(len(train))
        total = 0.0
        for i in range(0, len(train), 128):
            x = train[perm[i:i + 128]]
            opt.zero_grad()
            loss = model.loss(x)
            loss.backward()
            total += loss.item() * len(x)
            opt.step()
        secs.append(time.perf_counter() - t0)
        model.eval()
        with torch.no_grad():
            tl = 0.0
            for i in range(0, len(test), 128):
                x = test[i:i + 128]
                tl += model.loss(x).item() * len(x)
            tl /= len(test)
        losses.append(tl)
        if not a.json:
            print(f"epoch {epoch + 1}: train {total / len(train):.3f}  test {tl:.3f}  {secs[-1]:.2f} s")
    out = {"torch": torch.__version__, "threads": a.threads, "epoch_seconds": secs,
           "median_epoch_seconds": statistics.median(secs), "test_loss_nats": losses[-1]}
    print(json.dumps(out) if a.json else f"median epoch {out['median_epoch_seconds']:.3f} s, test loss {losses[-1]:.2f}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The PyTorch twin of `edgegen train vae`: PyTorch's own VAE example
(examples/vae/main.py: 784-400-20, ReLU, Bernoulli, Adam 1e-3, batch 128),
with the data held in one tensor instead of a torchvision DataLoader, so that
the time is the model's and not the loader's (this makes PyTorch faster than
the example as published, i.e. a stricter baseline).

  python3 bench/pytorch_vae.py --data ../shared/datasets/mnist --epochs 10 --threads 2 [--json]

Prints per-epoch training seconds (without the test pass), their median, and
the test loss per image after the last epoch, defined as in the example:
BCE summed over pixels plus KL, z sampled once, averaged over the 10,000 test images.
Needs `pip install torch`; used by benchmarks only, never by tests.
"""
import argparse
import gzip
import json
import os
import statistics
import struct
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        return mu + torch.randn_like(std) * std

    def decode(self, z):
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z))))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


def loss_function(recon_x, x, mu, logvar):
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


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
    load = lambda s: torch.from_numpy(idx(os.path.join(a.data, s)).astype(np.float32) / 255.0).view(-1, 784)
    train, test = load("train-images-idx3-ubyte.gz"), load("t10k-images-idx3-ubyte.gz")
    model = VAE()
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
            recon, mu, logvar = model(x)
            loss = loss_function(recon, x, mu, logvar)
            loss.backward()
            total += loss.item()
            opt.step()
        secs.append(time.perf_counter() - t0)
        model.eval()
        with torch.no_grad():
            tl = 0.0
            for i in range(0, len(test), 128):
                x = test[i:i + 128]
                recon, mu, logvar = model(x)
                tl += loss_function(recon, x, mu, logvar).item()
            tl /= len(test)
        losses.append(tl)
        if not a.json:
            print(f"epoch {epoch + 1}: train {total / len(train):.3f}  test {tl:.3f}  {secs[-1]:.2f} s")
    out = {"torch": torch.__version__, "threads": a.threads, "epoch_seconds": secs,
           "median_epoch_seconds": statistics.median(secs), "test_loss_nats": losses[-1]}
    print(json.dumps(out) if a.json else f"median epoch {out['median_epoch_seconds']:.3f} s, test loss {losses[-1]:.2f}")


if __name__ == "__main__":
    main()

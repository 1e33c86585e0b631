#!/usr/bin/env python3
"""The PyTorch side of `cargo bench -p edgegen --bench text` and
`--bench text_step`: edgegen's text transformer as the twin package
defines it (twin/pytorch, `edgegen_twin.text.Transformer`), at nanoGPT's
CPU "baby" config: a byte-level GPT (pre-norm GPT-2 blocks, GELU tanh
form, LayerNorm with biases, tied input and output embeddings), 4 layers,
4 heads, dim 128, context 64, batch 12, 2000 iterations; AdamW betas
(0.9, 0.99), weight decay 0.1 on matrices only, lr 1e-3 with 100 warm-up
steps then cosine to 1e-4; no dropout; init N(0, 0.02), the residual
projections N(0, 0.02 / sqrt(2 L)). The first 90% of the file trains, the
last 10% validates. Batches are drawn at random offsets, as nanoGPT does.

  python3 bench/pytorch_text.py --data ../shared/datasets/text/tinyshakespeare.txt --threads 2 [--iters 2000] [--json]

Prints the training seconds (the iterations alone; evaluation excluded)
and the final validation loss in nats per byte over --eval-batches random
batches. Needs `pip install torch`; used by benchmarks only, never by tests.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "twin", "pytorch"))
from edgegen_twin.text import Transformer  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=2000)
    ap.add_argument("--eval-batches", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    data = np.frombuffer(open(a.data, "rb").read(), dtype=np.uint8)
    cut = int(0.9 * len(data))
    train, val = torch.from_numpy(data[:cut].astype(np.int64)), torch.from_numpy(data[cut:].astype(np.int64))
    b, t = 12, 64

    def batch(d):
        ix = torch.randint(len(d) - t - 1, (b,))
        return torch.stack([d[i:i + t] for i in ix]), torch.stack([d[i + 1:i + 1 + t] for i in ix])

    m = Transformer({"transformer": {"vocab": 256, "context": t, "dim": 128, "layers": 4, "heads": 4,
                                     "kv_heads": 4, "ffn": 512, "n_classes": 0, "tied": True}})
    decay = [p for p in m.parameters() if p.dim() >= 2]
    rest = [p for p in m.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.99))

    def lr_at(it):
        if it < 100:
            return 1e-3 * (it + 1) / 100
        p = (it - 100) / max(1, a.iters - 100)
        return 1e-4 + 0.5 * (1e-3 - 1e-4) * (1 + math.cos(math.pi * min(p, 1.0)))

    t0 = time.perf_counter()
    for it in range(a.iters):
        for g in opt.param_groups:
            g["lr"] = lr_at(it)
        x, y = batch(train)
        loss = m(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        if not a.json and (it % 200 == 0 or it == a.iters - 1):
            print(f"iter {it}: loss {loss.item():.4f}")
    secs = time.perf_counter() - t0
    m.eval()
    with torch.no_grad():
        val_loss = sum(m(*batch(val)).item() for _ in range(a.eval_batches)) / a.eval_batches
    out = {"torch": torch.__version__, "threads": a.threads, "iters": a.iters, "train_seconds": secs,
           "ms_per_iter": 1e3 * secs / a.iters, "val_loss_nats": val_loss, "bits_per_byte": val_loss / math.log(2)}
    print(json.dumps(out) if a.json else f"{secs:.1f} s training ({out['ms_per_iter']:.1f} ms/iter), val loss {val_loss:.4f} nats")


if __name__ == "__main__":
    main()

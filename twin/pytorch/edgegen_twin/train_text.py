"""Trains edgegen's byte-level text transformer in PyTorch, on one CPU or
GPU or under torchrun, into a folder edgegen imports:

    python -m edgegen_twin.train_text --data ../shared/datasets/text/tinyshakespeare.txt -o out/text-twin
    torchrun --nproc_per_node 2 -m edgegen_twin.train_text --data ... -o out/text-twin
    edgegen import out/text-twin/weights.safetensors --config out/text-twin/config.json -o runs/text-twin

Bytes are the vocabulary (256); the last tenth of the file is held out.
Each step takes `--batch` windows of `--context + 1` bytes at random
offsets (each rank its own), AdamW (weight decay on matrices only, as
edgegen decays them: embeddings too, norms and biases not), a cosine
schedule with warm-up, and global-norm clipping. Outputs as
`train_vae`'s.
"""

import math
import time

import numpy as np
import torch

from .run import Run, adamw, cosine_step, load_init, parser, step_flags
from .text import Transformer


def main():
    ap = parser(__doc__, "a text file (bytes)", 12, 1e-3)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=0)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--context", type=int, default=64)
    ap.add_argument("--ffn", type=int, default=0, help="default 4 dim")
    ap.add_argument("--untied", action="store_true")
    step_flags(ap)
    a = ap.parse_args()
    r = Run(a.output, a.batch)

    raw = np.frombuffer(open(a.data, "rb").read(), dtype=np.uint8).astype(np.int64)
    cut = len(raw) - len(raw) // 10
    train, val = torch.from_numpy(raw[:cut]), torch.from_numpy(raw[cut:])
    t = a.context
    model_cfg = {
        "transformer": {
            "vocab": 256, "context": t, "dim": a.dim, "layers": a.layers, "heads": a.heads,
            "kv_heads": a.kv_heads or a.heads, "ffn": a.ffn or 4 * a.dim, "n_classes": 0,
            "tied": not a.untied,
        },
        "vocab": "bytes",
    }
    config = {
        "family": "text",
        "model": model_cfg,
        "train": {
            "data": a.data, "batch": a.batch, "seed": a.seed, "lr": a.lr,
            "warmup_steps": a.warmup_steps, "weight_decay": a.weight_decay, "clip": a.clip,
            "schedule": "cosine",
            "text": {
                "layers": a.layers, "heads": a.heads, "kv_heads": a.kv_heads or a.heads,
                "dim": a.dim, "context": t, "iters": a.iters,
            },
        },
    }
    torch.manual_seed(a.seed)
    model = Transformer(model_cfg)
    if a.init:
        load_init(model, a.init)
    model = model.to(r.device)
    net = r.wrap(model)
    opt = adamw(model, a, (0.9, 0.95))
    gen = torch.Generator().manual_seed(a.seed * 1000 + r.rank)

    def windows(src, n, g):
        i = torch.randint(len(src) - t - 1, (n,), generator=g)
        x = torch.stack([src[j:j + t] for j in i])
        y = torch.stack([src[j + 1:j + t + 1] for j in i])
        return x.to(r.device), y.to(r.device)

    per_rank = a.batch // r.world
    t0, total, n = time.time(), 0.0, 0
    for step in range(1, a.iters + 1):
        x, y = windows(train, per_rank, gen)
        loss = net(x, y)
        cosine_step(opt, model, loss, step, a)
        total, n = total + loss.item(), n + 1
        if step % a.eval_interval == 0 or step == a.iters:
            model.eval()
            with torch.no_grad():
                g = torch.Generator().manual_seed(12345)
                vl = sum(model(*windows(val, 32, g)).item() for _ in range(8)) / 8
            model.train()
            train_loss = r.mean(total, n)
            r.log({"step": step, "train_loss_nats": train_loss, "val_loss_nats": vl,
                   "bits_per_byte": vl / math.log(2), "seconds": time.time() - t0})
            total, n = 0.0, 0
            r.save(model, config)
    r.close()


if __name__ == "__main__":
    main()

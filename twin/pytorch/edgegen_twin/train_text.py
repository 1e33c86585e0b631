"""Trains edgegen's text transformer in PyTorch, on one CPU or
GPU or under torchrun, into a folder edgegen imports:

    python -m edgegen_twin.train_text --data ../shared/datasets/text/tinyshakespeare.txt -o out/text-twin
    torchrun --nproc_per_node 2 -m edgegen_twin.train_text --data ... -o out/text-twin
    edgegen import out/text-twin/weights.safetensors --config out/text-twin/config.json -o runs/text-twin

The data is read as edgegen reads it: a text file, or a folder of classes
(one `.txt` file, or one sub-folder of them, per class; the model is then
conditional on the class). `--vocab` is `bytes` (256 symbols) or `chars`
(the corpus's characters); the last `--val-frac` of each text is held out
and scored as edgegen's validation scores it. Each step takes `--batch`
windows of `--context + 1` symbols at random offsets (each rank its
own), AdamW with edgegen's betas (0.9, 0.99) and weight decay on matrices
only (embeddings too, norms and biases not, as edgegen decays them), a
cosine schedule with warm-up, and global-norm clipping. Outputs as
`train_vae`'s.
"""

import math
import time

import torch
from torch.nn import functional as F

from . import data
from .run import Run, adamw, cosine_step, parser, step_flags
from .text import Transformer


@torch.no_grad()
def val_loss(model, val, t, chars, labelled, device, per=64):
    """edgegen's validation (`train::text::val_loss`): nats per symbol over
    every symbol of each class's held-out text but the first, in windows of
    the context that do not overlap, and bits per UTF-8 byte of those
    symbols."""
    wins = []
    for k, s in enumerate(val):
        at = 0
        while at + 1 < len(s):
            n = min(t, len(s) - 1 - at)
            wins.append((k, at, n))
            at += n
    nats, symbols, nbytes, i = 0.0, 0, 0, 0
    while i < len(wins):
        n, b = wins[i][2], 1
        while b < per and i + b < len(wins) and wins[i + b][2] == n == t:
            b += 1
        group = wins[i:i + b]
        x = torch.stack([val[k][at:at + n] for k, at, _ in group]).to(device)
        y = torch.stack([val[k][at + 1:at + 1 + n] for k, at, _ in group]).to(device)
        lab = torch.tensor([k for k, _, _ in group], device=device) if labelled else None
        logits = model.logits(x, lab)
        nats += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum").item()
        symbols += y.numel()
        nbytes += y.numel() if chars is None else sum(len(chars[c].encode("utf-8")) for c in y.flatten().tolist())
        i += b
    return nats / max(symbols, 1), nats / math.log(2) / max(nbytes, 1)


def main():
    ap = parser(__doc__, "a text file (bytes)", 12, 1e-3)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=0)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--context", type=int, default=64)
    ap.add_argument("--ffn", type=int, default=0, help="default 4 dim")
    ap.add_argument("--untied", action="store_true")
    ap.add_argument("--vocab", choices=["bytes", "chars"], default="bytes",
                    help="bytes (256 symbols) or the corpus's characters")
    ap.add_argument("--val-frac", type=float, default=0.1, help="the end of each text held out")
    step_flags(ap)
    a = ap.parse_args()
    r = Run(a.output, a.batch)

    classes, texts = data.text_classes(a.data)
    chars = data.vocabulary(a.vocab, texts)
    train, val = [], []
    for text in texts:
        tr, va = data.split_text(text, a.val_frac)
        train.append(torch.from_numpy(data.encode(tr, chars)))
        val.append(torch.from_numpy(data.encode(va, chars)))
    t = a.context
    for name, tr, va in zip(classes or [a.data], train, val):
        if len(tr) <= t or len(va) < 2:
            raise SystemExit(f"{name}: {len(tr)} symbols to train on and {len(va)} to validate; "
                             f"expected more than --context {t}, and at least 2")
    model_cfg = {
        "transformer": {
            "vocab": 256 if chars is None else len(chars), "context": t, "dim": a.dim,
            "layers": a.layers, "heads": a.heads, "kv_heads": a.kv_heads or a.heads,
            "ffn": a.ffn or 4 * a.dim, "n_classes": len(classes), "tied": not a.untied,
        },
        "vocab": a.vocab,
    }
    if chars is not None:
        model_cfg["chars"] = chars
    if classes:
        model_cfg["classes"] = classes
    config = {
        "family": "text",
        "model": model_cfg,
        "classes": classes,
        "train": {
            "data": a.data, "batch": a.batch, "seed": a.seed, "lr": a.lr, "beta2": 0.99,
            "val_frac": a.val_frac,
            "warmup_steps": a.warmup_steps, "weight_decay": a.weight_decay, "clip": a.clip,
            "schedule": "cosine",
            "text": {
                "vocab": a.vocab, "layers": a.layers, "heads": a.heads,
                "kv_heads": a.kv_heads or a.heads, "dim": a.dim, "context": t, "iters": a.iters,
            },
        },
    }
    model, net = r.build(lambda: Transformer(model_cfg), a.seed, a.init)
    opt = adamw(model, a, (0.9, 0.99))
    gen = torch.Generator().manual_seed(a.seed * 1000 + r.rank)

    def window_sampler(src):
        """A draw of `n` windows of `src` starting anywhere a whole one
        fits, every start equally likely across the classes (as edgegen
        draws them), with each window's class. The start counts and their
        running sums are the same at every step, so they are made once."""
        starts = torch.tensor([len(s) - t for s in src])
        ends = starts.cumsum(0)
        total = int(starts.sum())

        def draw(n, g):
            i = torch.randint(total, (n,), generator=g)
            ks = torch.searchsorted(ends, i, right=True)
            at = i - (ends[ks] - starts[ks])
            x = torch.stack([src[k][j:j + t] for k, j in zip(ks.tolist(), at.tolist())])
            y = torch.stack([src[k][j + 1:j + t + 1] for k, j in zip(ks.tolist(), at.tolist())])
            labels = ks.to(r.device) if classes else None
            return x.to(r.device), y.to(r.device), labels
        return draw

    per_rank = a.batch // r.world
    windows = window_sampler(train)
    t0, total, n = time.time(), 0.0, 0
    for step in range(1, a.iters + 1):
        x, y, lab = windows(per_rank, gen)
        loss = net(x, y, lab)
        cosine_step(opt, model, loss, step, a)
        total, n = total + loss.item(), n + 1
        if step % a.eval_interval == 0 or step == a.iters:
            model.eval()
            vl, bpb = val_loss(model, val, t, chars, bool(classes), r.device)
            model.train()
            # edgegen's metric names, so `edgegen curves` draws both runs.
            r.log({"iter": step, "train_loss": r.mean(total, n), "val_loss_nats": vl,
                   "bits_per_byte": bpb, "seconds": time.time() - t0})
            total, n = 0.0, 0
            r.save(model, config)
    r.close()


if __name__ == "__main__":
    main()

"""Trains edgegen's conditional mu-law GRU in PyTorch, on one CPU or GPU or
under torchrun, into a folder edgegen imports:

    python -m edgegen_twin.train_audio --data ../shared/datasets/audio/fsdd -o out/audio-twin
    torchrun --nproc_per_node 2 -m edgegen_twin.train_audio --data ... -o out/audio-twin
    edgegen import out/audio-twin/weights.safetensors --config out/audio-twin/config.json -o runs/audio-twin

Clips are 8 kHz mono 16-bit WAV files named as FSDD's
`{digit}_{speaker}_{take}.wav` (the digit is the class); takes 0 to 4 are
held out, FSDD's test set. Each step takes `--batch` windows of
`--window + 1` codes at random places in random training clips (each rank
its own), from a zero state; AdamW, a cosine schedule with warm-up,
global-norm clipping. Outputs as `train_vae`'s.
"""

import math
import os
import time
import wave

import numpy as np
import torch

from .audio import Audio, mulaw_encode
from .run import Run, adamw, cosine_step, parser, step_flags


def clips(folder):
    """`[(codes, digit, take)]` of a folder of FSDD-named WAV files."""
    out = []
    for name in sorted(os.listdir(folder)):
        parts = name[:-4].split("_") if name.endswith(".wav") else []
        if len(parts) != 3 or not parts[0].isdigit() or not parts[2].isdigit():
            continue
        with wave.open(os.path.join(folder, name)) as w:
            if w.getframerate() != 8000 or w.getnchannels() != 1 or w.getsampwidth() != 2:
                raise SystemExit(f"{name}: expected 8 kHz mono 16-bit PCM")
            x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
        if len(x) > 2:
            out.append((mulaw_encode(x), int(parts[0]), int(parts[2])))
    if not out:
        raise SystemExit(f"{folder}: no FSDD-named WAV files")
    return out


def main():
    ap = parser(__doc__, "a folder of FSDD-named 8 kHz WAV files", 16, 2e-3)
    ap.add_argument("--embed", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--window", type=int, default=256)
    step_flags(ap)
    a = ap.parse_args()
    r = Run(a.output, a.batch)

    every = clips(a.data)
    train = [c for c in every if c[2] > 4 and len(c[0]) > a.window + 1]
    test = [c for c in every if c[2] <= 4]
    if not train:
        raise SystemExit(f"{a.data}: no training clip (takes 5 and up) longer than --window {a.window}")
    model_cfg = {"rnn": {"vocab": 256, "embed": a.embed, "hidden": a.hidden, "n_classes": 10},
                 "sample_rate": 8000, "classes": [str(d) for d in range(10)]}
    config = {
        "family": "audio",
        "model": model_cfg,
        "classes": model_cfg["classes"],
        "train": {
            "data": a.data, "batch": a.batch, "seed": a.seed, "lr": a.lr,
            "warmup_steps": a.warmup_steps, "weight_decay": a.weight_decay, "clip": a.clip,
            "schedule": "cosine",
            "audio": {"conditional": True, "embed": a.embed, "hidden": a.hidden,
                      "window": a.window, "iters": a.iters},
        },
    }
    model, net = r.build(lambda: Audio(model_cfg), a.seed, a.init)
    opt = adamw(model, a, (0.9, 0.99))
    rng = np.random.default_rng(a.seed * 1000 + r.rank)
    per_rank, w = a.batch // r.world, a.window

    def batch(pool, n):
        xs, ys, ls = [], [], []
        for i in rng.integers(0, len(pool), size=n):
            codes, digit, _ = pool[i]
            s = rng.integers(0, len(codes) - w - 1 + 1)
            xs.append(codes[s:s + w])
            ys.append(codes[s + 1:s + w + 1])
            ls.append(digit)
        f = lambda v: torch.from_numpy(np.stack(v) if isinstance(v[0], np.ndarray) else np.array(v)).to(r.device)
        return f(xs), f(ys), f(ls)

    t0, total, n = time.time(), 0.0, 0
    for step in range(1, a.iters + 1):
        x, y, lab = batch(train, per_rank)
        loss = net(x, y, lab)
        cosine_step(opt, model, loss, step, a)
        total, n = total + loss.item(), n + 1
        if step % a.eval_interval == 0 or step == a.iters:
            model.eval()
            with torch.no_grad():
                nats = count = 0.0
                for codes, digit, _ in test:
                    c = torch.from_numpy(codes[None]).to(r.device)
                    lab = torch.tensor([digit], device=r.device)
                    logits, _ = model.logits(c[:, :-1], lab)
                    nats += torch.nn.functional.cross_entropy(logits[0], c[0, 1:], reduction="sum").item()
                    count += c.shape[1] - 1
            model.train()
            # edgegen's metric names, so `edgegen curves` draws both runs.
            r.log({"iter": step, "train_bits": r.mean(total, n) / math.log(2),
                   "test_bits_per_sample": nats / max(count, 1) / math.log(2), "seconds": time.time() - t0})
            total, n = 0.0, 0
            r.save(model, config)
    r.close()


if __name__ == "__main__":
    main()

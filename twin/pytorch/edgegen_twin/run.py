"""What every training script of the twin shares: one process or many
under torchrun (DistributedDataParallel over gloo on CPUs, NCCL on GPUs),
and rank 0's outputs, each written to a temporary file then renamed so an
interrupted run keeps its last whole checkpoint: `weights.safetensors`
(edgegen's tensor names, f32), `config.json` (edgegen's run-folder form)
and `metrics.jsonl`."""

import argparse
import json
import math
import os

import numpy as np
import torch
import torch.distributed as dist


class Run:
    def __init__(self, out, batch):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        if self.world > 1:
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        self.rank = dist.get_rank() if self.world > 1 else 0
        local = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = torch.device(f"cuda:{local}" if torch.cuda.is_available() else "cpu")
        if batch % self.world:
            raise SystemExit(f"--batch {batch}: must split evenly across {self.world} ranks")
        self.out = out
        if self.rank == 0:
            os.makedirs(out, exist_ok=True)
            open(os.path.join(out, "metrics.jsonl"), "w").close()

    def wrap(self, model):
        """The model as training calls it: through DistributedDataParallel
        with several ranks, which synchronizes gradients in `forward`."""
        if self.world > 1:
            return torch.nn.parallel.DistributedDataParallel(model)
        return model

    def build(self, make, seed, init=None):
        """`(model, net)`: `make()` under `seed` (the same initial weights
        on every rank), started from `init` (weights `edgegen export
        --safetensors` wrote) when given, moved to this rank's device;
        `net` is the model as training calls it ([`wrap`])."""
        torch.manual_seed(seed)
        model = make()
        if init:
            load_init(model, init)
        model = model.to(self.device)
        return model, self.wrap(model)

    def mean(self, total, n):
        """`total / n` summed over every rank."""
        s = torch.tensor([float(total), float(n)])
        if self.world > 1:
            dist.all_reduce(s)
        return s[0].item() / max(s[1].item(), 1.0)

    def log(self, row):
        if self.rank == 0:
            row = dict(row, world_size=self.world)
            with open(os.path.join(self.out, "metrics.jsonl"), "a") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)

    def save(self, model, config):
        if self.rank != 0:
            return
        from . import io

        state = model.edgegen_state_dict() if hasattr(model, "edgegen_state_dict") else model.state_dict()
        arrays = {n: t.detach().cpu().numpy().astype(np.float32) for n, t in state.items()}
        tmp = os.path.join(self.out, "weights.safetensors.tmp")
        io.save(tmp, arrays, config)
        os.replace(tmp, os.path.join(self.out, "weights.safetensors"))
        tmp = os.path.join(self.out, "config.json.tmp")
        with open(tmp, "w") as f:
            json.dump(config, f, indent=2)
        os.replace(tmp, os.path.join(self.out, "config.json"))

    def close(self):
        if self.world > 1:
            dist.destroy_process_group()


def load_init(model, path):
    """Starts `model` from weights `edgegen export --safetensors` wrote."""
    from . import io

    state = {n: torch.from_numpy(v) for n, v in io.load(path).items()}
    if hasattr(model, "load_edgegen_state_dict"):
        model.load_edgegen_state_dict(state)
    else:
        model.load_state_dict(state)


def parser(doc, data_help, batch, lr):
    """The flags every training script has: data, output, batch, rate,
    seed."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help=data_help)
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--batch", type=int, default=batch, help="global batch, split across ranks")
    ap.add_argument("--lr", type=float, default=lr)
    ap.add_argument("--seed", type=int, default=1)
    return ap


def step_flags(ap):
    """The flags of a run counted in steps (text and audio): AdamW with a
    cosine schedule, clipping, evaluation interval, a start."""
    ap.add_argument("--iters", type=int, default=2000)
    ap.add_argument("--warmup-steps", type=int, default=100)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--eval-interval", type=int, default=200)
    ap.add_argument("--init", help="weights to start from (edgegen export --safetensors)")


def adamw(model, a, betas):
    """AdamW decaying matrices only (embeddings too, as edgegen's text and
    audio families do; not norms or biases)."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                              {"params": rest, "weight_decay": 0.0}], lr=a.lr, betas=betas)


def cosine_step(opt, model, loss, step, a):
    """One optimizer step at `step`'s rate: linear warm-up, then a cosine
    decay to a tenth of the peak (edgegen's `cosine` schedule), the
    gradient clipped to global norm `a.clip`."""
    lr = a.lr * min(1.0, step / max(a.warmup_steps, 1))
    if step > a.warmup_steps:
        frac = (step - a.warmup_steps) / max(a.iters - a.warmup_steps, 1)
        lr = a.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
    for g in opt.param_groups:
        g["lr"] = lr
    opt.zero_grad()
    loss.backward()
    if a.clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
    opt.step()

"""What every training script of the twin shares: one process or many
under torchrun (DistributedDataParallel over gloo on CPUs, NCCL on GPUs),
and rank 0's outputs, each written to a temporary file then renamed so an
interrupted run keeps its last whole checkpoint: `weights.safetensors`
(edgegen's tensor names, f32), `config.json` (edgegen's run-folder form)
and `metrics.jsonl`."""

import json
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

        arrays = {n: t.detach().cpu().numpy().astype(np.float32) for n, t in model.state_dict().items()}
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

    model.load_state_dict({n: torch.from_numpy(v) for n, v in io.load(path).items()})

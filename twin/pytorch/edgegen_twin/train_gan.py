"""Trains edgegen's conditional DCGAN in PyTorch, on one CPU or GPU or
under torchrun, into a folder edgegen imports:

    python -m edgegen_twin.train_gan --data ../shared/datasets/mnist --conditional -o out/gan-twin
    torchrun --nproc_per_node 2 -m edgegen_twin.train_gan --data ... -o out/gan-twin
    edgegen import out/gan-twin/weights.safetensors --config out/gan-twin/config.json -o runs/gan-twin

As edgegen trains it: the non-saturating loss (`--loss hinge` for the
hinge), Adam 2e-4 with beta1 0.5 for both networks (`--d-lr` for the two
time-scale rule), `--spectral-norm` for SNGAN's discriminator, and a
moving average of the generator (`--ema`, 0.999, its decay warming up as
`(1 + t) / (10 + t)` over the generator's steps) whose batch-norm statistics are recomputed after each epoch as the mean of
16 batches' statistics on fresh noise (what edgegen samples and exports).
With several ranks, each rank's gradients are averaged after every
backward (what DistributedDataParallel does; here by hand, since the
discriminator runs twice per step). Outputs as `train_vae`'s.
"""

import copy
import time

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler

from . import data
from .gan import GAN, disc_loss, gen_loss, without_counters
from .run import Run, parser


def average_grads(module, world):
    if world > 1:
        for p in module.parameters():
            if p.grad is not None:
                dist.all_reduce(p.grad)
                p.grad /= world


def recalibrate(ema, z_dim, k, n, device, batches=16):
    """The moving average's batch-norm statistics as the mean of `batches`
    batches' (mean, unbiased variance) on fresh noise."""
    norms = [ema.bn[0], ema.bn[1]]
    for b in norms:
        b.reset_running_stats()
        b.momentum = None  # a cumulative average of the batches' statistics
    ema.train()
    with torch.no_grad():
        for _ in range(batches):
            z = torch.randn(n, z_dim, device=device)
            y = torch.randint(0, max(k, 1), (n,), device=device)
            ema(z, y if k else None)
    for b in norms:
        b.momentum = 0.1
    ema.eval()


def main():
    ap = parser(__doc__, "an MNIST-style IDX folder", 128, 2e-4)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--latent", type=int, default=64)
    ap.add_argument("--g-width", type=int, default=128)
    ap.add_argument("--d-width", type=int, default=64)
    ap.add_argument("--d-hidden", type=int, default=512,
                    help="a hidden dense layer of this width in the discriminator, 0 for none")
    ap.add_argument("--conditional", action="store_true")
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--loss", choices=["ns", "hinge"], default="ns")
    ap.add_argument("--d-lr", type=float, default=None, help="the discriminator's rate [default: --lr]")
    ap.add_argument("--spectral-norm", action="store_true",
                    help="spectral norm in the discriminator in place of its batch norm")
    ap.add_argument("--max-train", type=int, default=0)
    a = ap.parse_args()
    r = Run(a.output, a.batch)
    tx, ty, _, _, shape = data.mnist(a.data)
    if a.max_train:
        tx, ty = tx[: a.max_train], ty[: a.max_train]
    k = 10 if a.conditional else 0
    model_cfg = {"image_shape": shape, "latent": a.latent, "n_classes": k,
                 "g_width": a.g_width, "d_width": a.d_width, "spectral_norm": a.spectral_norm}
    if a.d_hidden:
        # edgegen stores it only when set.
        model_cfg["d_hidden"] = a.d_hidden
    config = {
        "family": "gan",
        "model": model_cfg,
        "classes": [str(d) for d in range(10)] if k else [],
        "train": {
            "data": a.data, "epochs": a.epochs, "batch": a.batch, "seed": a.seed,
            "lr": a.lr, "beta1": 0.5, "beta2": 0.999,
            "gan": {"conditional": a.conditional, "latent": a.latent, "g_width": a.g_width,
                    "d_width": a.d_width, "loss": a.loss, "d_lr": a.d_lr, "ema": a.ema,
                    "spectral_norm": a.spectral_norm, "d_hidden": a.d_hidden},
        },
    }
    torch.manual_seed(a.seed)
    gan = GAN(model_cfg).to(r.device)
    g, d = gan.gen, gan.disc
    ema = copy.deepcopy(g) if a.ema > 0 else None
    opt_g = torch.optim.Adam(g.parameters(), lr=a.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=a.d_lr or a.lr, betas=(0.5, 0.999))
    train = TensorDataset(torch.from_numpy(tx).view(-1, *shape), torch.from_numpy(ty))
    sampler = DistributedSampler(train, shuffle=True, seed=a.seed) if r.world > 1 else None
    loader = DataLoader(train, batch_size=a.batch // r.world, sampler=sampler,
                        shuffle=sampler is None, drop_last=True)
    noise = torch.Generator(device=r.device).manual_seed(a.seed * 1000 + r.rank)
    steps = 0
    for epoch in range(1, a.epochs + 1):
        if sampler is not None:
            sampler.set_epoch(epoch)
        t0, dl, gl, n = time.time(), 0.0, 0.0, 0
        for x, y in loader:
            x, y = x.to(r.device) * 2 - 1, y.to(r.device)
            b = len(x)
            yc = y if k else None
            yf = torch.randint(0, max(k, 1), (b,), device=r.device, generator=noise) if k else None
            z = torch.randn(b, a.latent, device=r.device, generator=noise)
            # Discriminator: real up, fake down.
            fake = g(z, yf).detach()
            d.power_iteration()
            loss_d = disc_loss(a.loss, d(x, yc), d(fake, yf))
            opt_d.zero_grad()
            loss_d.backward()
            average_grads(d, r.world)
            opt_d.step()
            # Generator: fool the discriminator.
            d.power_iteration()
            loss_g = gen_loss(a.loss, d(g(z, yf), yf))
            opt_g.zero_grad()
            loss_g.backward()
            average_grads(g, r.world)
            opt_g.step()
            steps += 1
            if ema is not None:
                decay = min(a.ema, (1.0 + steps) / (10.0 + steps))
                with torch.no_grad():
                    for e, p in zip(ema.parameters(), g.parameters()):
                        e.mul_(decay).add_(p, alpha=1.0 - decay)
            dl, gl, n = dl + loss_d.item(), gl + loss_g.item(), n + 1
        if ema is not None:
            recalibrate(ema, a.latent, k, a.batch // r.world, r.device)
        r.log({"epoch": epoch, "d_loss": r.mean(dl, n), "g_loss": r.mean(gl, n),
               "seconds": time.time() - t0})
        state = without_counters(gan.state_dict())
        if ema is not None:
            state.update({"ema.gen." + n_: t for n_, t in without_counters(ema.state_dict()).items()})
        r.save(_State(state), config)
    r.close()


class _State:
    """What `Run.save` writes: a state dict already in edgegen's names."""

    def __init__(self, state):
        self.state = state

    def edgegen_state_dict(self):
        return self.state


if __name__ == "__main__":
    main()

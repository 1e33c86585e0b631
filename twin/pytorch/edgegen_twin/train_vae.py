"""Trains edgegen's VAE in PyTorch, on one CPU or GPU or under torchrun
(DistributedDataParallel, a DistributedSampler, rank 0 writing), into a
folder edgegen imports:

    python -m edgegen_twin.train_vae --data ../shared/datasets/mnist -o out/vae-twin
    torchrun --nproc_per_node 2 -m edgegen_twin.train_vae --data ... -o out/vae-twin
    edgegen import out/vae-twin/weights.safetensors --config out/vae-twin/config.json -o runs/vae-twin

The folder gets `weights.safetensors` (edgegen's tensor names, f32),
`config.json` (edgegen's run-folder form: family, model, train) and
`metrics.jsonl` (per epoch: train and test loss per image, seconds).
`--init FILE` starts from weights `edgegen export --safetensors` wrote.
"""

import time

import torch
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler

from . import data
from .run import Run, parser
from .vae import VAE


def main():
    ap = parser(__doc__, "an MNIST-style IDX folder", 128, 1e-3)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--hidden", type=int, nargs="+", default=[400])
    ap.add_argument("--latent", type=int, default=20)
    ap.add_argument("--conditional", action="store_true")
    ap.add_argument("--max-train", type=int, default=0)
    ap.add_argument("--init", help="weights to start from (edgegen export --safetensors)")
    a = ap.parse_args()

    r = Run(a.output, a.batch)

    tx, ty, vx, vy, shape = data.mnist(a.data)
    if a.max_train:
        tx, ty = tx[: a.max_train], ty[: a.max_train]
    k = 10 if a.conditional else 0
    model_cfg = {
        "image_shape": shape,
        "hidden": a.hidden,
        "latent": a.latent,
        "n_classes": k,
        "likelihood": "bernoulli",
        "activation": "relu",
        "label_every_layer": a.conditional,
    }
    config = {
        "family": "vae",
        "model": model_cfg,
        "train": {
            "data": a.data,
            "epochs": a.epochs,
            "batch": a.batch,
            "seed": a.seed,
            "lr": a.lr,
            "beta1": 0.9,
            "beta2": 0.999,
            "vae": {
                "conditional": a.conditional,
                "latent": a.latent,
                "hidden": a.hidden,
                "label_every_layer": a.conditional,
            },
        },
    }
    model, net = r.build(lambda: VAE(model_cfg), a.seed, a.init)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr, betas=(0.9, 0.999))
    train = TensorDataset(torch.from_numpy(tx), torch.from_numpy(ty))
    sampler = DistributedSampler(train, shuffle=True, seed=a.seed) if r.world > 1 else None
    loader = DataLoader(train, batch_size=a.batch // r.world, sampler=sampler, shuffle=sampler is None)
    test_x, test_y = torch.from_numpy(vx).to(r.device), torch.from_numpy(vy).to(r.device)
    for epoch in range(1, a.epochs + 1):
        if sampler is not None:
            sampler.set_epoch(epoch)
        net.train()
        t0, total, n = time.time(), 0.0, 0
        for x, y in loader:
            x, y = x.to(r.device), y.to(r.device)
            loss = net(x, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(x)
            n += len(x)
        train_loss, seconds = r.mean(total, n), time.time() - t0
        model.eval()
        with torch.no_grad():
            torch.manual_seed(a.seed + epoch)
            test = sum(model.loss(test_x[i:i + 1000], test_y[i:i + 1000]).item() * len(test_x[i:i + 1000])
                       for i in range(0, len(test_x), 1000)) / len(test_x)
        r.log({"epoch": epoch, "train_loss": train_loss, "test_loss": test, "seconds": seconds})
        r.save(model, config)
    r.close()


if __name__ == "__main__":
    main()

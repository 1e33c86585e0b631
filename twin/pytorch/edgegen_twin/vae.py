"""edgegen's VAE in PyTorch, with its names (`enc.{i}`, `enc.mu`,
`enc.logvar`, `dec.{i}`, `dec.{i}.label`) and its arithmetic: an MLP encoder
of `[x, onehot(y)]` to `(mu, logvar)`, a mirrored decoder of
`[z, onehot(y)]` whose layers after the first add a per-class bias when
`label_every_layer`, Bernoulli logits out; loss = BCE summed over pixels
+ KL, per image (host/src/models/vae.rs).
"""

import torch
from torch import nn
from torch.nn import functional as F

from .nn import Dense, activation


class VAE(nn.Module):
    def __init__(self, model):
        super().__init__()
        c, h, w = model["image_shape"]
        self.d, self.z, self.k = c * h * w, model["latent"], model["n_classes"]
        if model.get("likelihood", "bernoulli") != "bernoulli":
            raise ValueError("the twin's VAE has the Bernoulli likelihood only")
        self.act = activation(model.get("activation", "relu"))
        hidden = model["hidden"]
        self.enc = nn.Module()
        inp = self.d + self.k
        for i, width in enumerate(hidden):
            self.enc.add_module(str(i), Dense(inp, width))
            inp = width
        self.enc.add_module("mu", Dense(inp, self.z))
        self.enc.add_module("logvar", Dense(inp, self.z))
        self.n_enc = len(hidden)
        self.dec = nn.Module()
        inp = self.z + self.k
        widths = list(reversed(hidden)) + [self.d]
        for i, width in enumerate(widths):
            label = self.k if model.get("label_every_layer", False) and i > 0 else 0
            self.dec.add_module(str(i), Dense(inp, width, label_classes=label))
            inp = width
        self.n_dec = len(widths)

    def _cond(self, v, y):
        if self.k == 0:
            return v
        return torch.cat([v, F.one_hot(y, self.k).to(v.dtype)], dim=1)

    def encode(self, x, y=None):
        h = self._cond(x, y)
        for i in range(self.n_enc):
            h = self.act(getattr(self.enc, str(i))(h))
        return self.enc.mu(h), self.enc.logvar(h)

    def decode(self, z, y=None):
        """Logits of the pixels."""
        h = self._cond(z, y)
        for i in range(self.n_dec):
            h = getattr(self.dec, str(i))(h, y)
            if i + 1 < self.n_dec:
                h = self.act(h)
        return h

    def forward(self, x, y=None):
        """The training loss ([`loss`]): DistributedDataParallel synchronizes
        gradients through `forward`."""
        return self.loss(x, y)

    def loss(self, x, y=None):
        """Mean over the batch of BCE (summed over pixels) + KL."""
        mu, logvar = self.encode(x, y)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        logits = self.decode(z, y)
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)
        return (rec + kl).mean()

"""edgegen's DCGAN in PyTorch, with its names (`gen.fc`, `gen.bn.{0,1}`,
`gen.up.{0,1}`, `disc.conv.{0,1}`, `disc.bn.1`, `disc.fc`, `disc.embed`)
and its arithmetic (host/src/models/gan.rs):

- generator: `[z, onehot(y)] -> dense -> (C0, H/4, W/4)` (BN, ReLU)
  `-> ConvT k4 s2 p1` (BN, ReLU) `-> ConvT k4 s2 p1 -> tanh`, images in
  [-1, 1] (pixels are `(x + 1) / 2`);
- discriminator: `Conv k4 s2 p1` (LeakyReLU 0.2) `-> Conv k4 s2 p1` (BN,
  LeakyReLU 0.2) `= phi -> dense`, plus `<embed(y), phi>` when conditional
  (a projection discriminator). With `d_hidden`, a dense layer `disc.hidden`
  (LeakyReLU 0.2) sits between phi and the heads, which read its output in
  phi's place. With `spectral_norm`, the batch norm goes
  and both convolutions and the dense layers use `W / sigma`
  (host/src/nn/spectral.rs): buffers `{layer}.sn_u`, `.sn_v`, `.sn_sigma`,
  one power iteration per [`Discriminator.power_iteration`], which the
  training script calls where edgegen iterates (before D's update and
  before G's).

Batch norms are PyTorch's (momentum 0.1, eps 1e-5, unbiased running
variance), as edgegen's are; their `num_batches_tracked` counters are not
part of edgegen's files, and `edgegen_state_dict` leaves them out.
"""

import torch
from torch import nn
from torch.nn import functional as F

from .nn import Dense


class Generator(nn.Module):
    def __init__(self, model):
        super().__init__()
        c, h, w = model["image_shape"]
        self.z, self.k = model["latent"], model["n_classes"]
        c0 = model["g_width"]
        self.shape0 = (c0, h // 4, w // 4)
        self.fc = Dense(self.z + self.k, c0 * (h // 4) * (w // 4))
        self.bn = nn.ModuleList([nn.BatchNorm2d(c0), nn.BatchNorm2d(c0 // 2)])
        self.up = nn.ModuleList([
            nn.ConvTranspose2d(c0, c0 // 2, 4, 2, 1),
            nn.ConvTranspose2d(c0 // 2, c, 4, 2, 1),
        ])

    def forward(self, z, y=None):
        if self.k:
            z = torch.cat([z, F.one_hot(y, self.k).to(z.dtype)], dim=1)
        x = self.fc(z).view(-1, *self.shape0)
        x = self.up[0](F.relu(self.bn[0](x)))
        x = self.up[1](F.relu(self.bn[1](x)))
        return torch.tanh(x)


class Discriminator(nn.Module):
    def __init__(self, model):
        super().__init__()
        c, h, w = model["image_shape"]
        d0, self.k = model["d_width"], model["n_classes"]
        phi = 2 * d0 * (h // 4) * (w // 4)
        self.sn = model.get("spectral_norm", False)
        self.conv = nn.ModuleList([nn.Conv2d(c, d0, 4, 2, 1), nn.Conv2d(d0, 2 * d0, 4, 2, 1)])
        self.bn = None if self.sn else nn.ModuleDict({"1": nn.BatchNorm2d(2 * d0)})
        hidden = model.get("d_hidden", 0)
        self.hidden = Dense(phi, hidden) if hidden else None
        feat = hidden or phi
        self.fc = Dense(feat, 1)
        self.embed = nn.Embedding(self.k, feat) if self.k else None
        if self.sn:
            for layer in self._normalized():
                rows = layer.weight.shape[0]
                cols = layer.weight[0].numel()
                # edgegen's start: u a random unit vector, v zero, sigma 1.
                u = torch.randn(rows)
                layer.register_buffer("sn_u", u / u.norm().clamp_min(1e-12))
                layer.register_buffer("sn_v", torch.zeros(cols))
                layer.register_buffer("sn_sigma", torch.ones(1))

    def _normalized(self):
        hidden = [self.hidden] if self.hidden is not None else []
        return [self.conv[0], self.conv[1], *hidden, self.fc]

    @torch.no_grad()
    def power_iteration(self):
        """One power iteration per normalized weight, from the stored `u`:
        `v = W^T u / |.|`, then `u = W v / |.|` (`SpectralNorm::iterate`).
        Nothing without spectral norm."""
        if not self.sn:
            return
        for layer in self._normalized():
            w = layer.weight.flatten(1)
            v = w.t() @ layer.sn_u
            layer.sn_v.copy_(v / v.norm().clamp_min(1e-12))
            u = w @ layer.sn_v
            layer.sn_u.copy_(u / u.norm().clamp_min(1e-12))

    def _weight(self, layer):
        """`W / sigma` with `sigma = u^T W v` (u and v constants to the
        gradient, as PyTorch's `spectral_norm` and edgegen have them); the
        layer's own weight without spectral norm."""
        if not self.sn:
            return layer.weight
        sigma = (layer.sn_u @ (layer.weight.flatten(1) @ layer.sn_v)).clamp_min(1e-12)
        with torch.no_grad():
            layer.sn_sigma.copy_(sigma.reshape(1))
        return layer.weight / sigma

    def forward(self, x, y=None):
        c0, c1 = self.conv
        h = F.leaky_relu(F.conv2d(x, self._weight(c0), c0.bias, 2, 1), 0.2)
        h = F.conv2d(h, self._weight(c1), c1.bias, 2, 1)
        if self.bn is not None:
            h = self.bn["1"](h)
        f = F.leaky_relu(h, 0.2).flatten(1)
        if self.hidden is not None:
            f = F.leaky_relu(F.linear(f, self._weight(self.hidden), self.hidden.bias), 0.2)
        out = F.linear(f, self._weight(self.fc), self.fc.bias)[:, 0]
        if self.embed is not None:
            out = out + (self.embed(y) * f).sum(1)
        return out


class GAN(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.gen = Generator(model)
        self.disc = Discriminator(model)
        # DCGAN's initialization, as edgegen's `Gan::init`: weights (the
        # projection embedding too, so that it starts small) N(0, 0.02),
        # batch norms' scales 1 + N(0, 0.02), biases 0.
        for name, p in self.named_parameters():
            with torch.no_grad():
                if name.endswith(".bias"):
                    p.zero_()
                elif ".bn." in name:
                    p.normal_(1.0, 0.02)
                else:
                    p.normal_(0.0, 0.02)


def disc_loss(kind, real, fake):
    """The discriminator's loss on real and generated scores, a mean over
    each batch: `ns` (non-saturating) or `hinge` (train/gan.rs `Loss`)."""
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def gen_loss(kind, fake):
    """The generator's loss on the scores of its images."""
    return -fake.mean() if kind == "hinge" else F.softplus(-fake).mean()


def without_counters(state):
    """A state dict without batch norms' `num_batches_tracked`."""
    return {n: t for n, t in state.items() if not n.endswith("num_batches_tracked")}

"""edgegen's DCGAN in PyTorch, with its names (`gen.fc`, `gen.bn.{0,1}`,
`gen.up.{0,1}`, `disc.conv.{0,1}`, `disc.bn.1`, `disc.fc`, `disc.embed`)
and its arithmetic (host/src/models/gan.rs):

- generator: `[z, onehot(y)] -> dense -> (C0, H/4, W/4)` (BN, ReLU)
  `-> ConvT k4 s2 p1` (BN, ReLU) `-> ConvT k4 s2 p1 -> tanh`, images in
  [-1, 1] (pixels are `(x + 1) / 2`);
- discriminator: `Conv k4 s2 p1` (LeakyReLU 0.2) `-> Conv k4 s2 p1` (BN,
  LeakyReLU 0.2) `= phi -> dense`, plus `<embed(y), phi>` when conditional
  (a projection discriminator).

Batch norms are PyTorch's (momentum 0.1, eps 1e-5, unbiased running
variance), as edgegen's are; their `num_batches_tracked` counters are not
part of edgegen's files, and `edgegen_state_dict` leaves them out. The
spectrally normalized discriminator is not in the twin yet.
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
        self.conv = nn.ModuleList([nn.Conv2d(c, d0, 4, 2, 1), nn.Conv2d(d0, 2 * d0, 4, 2, 1)])
        self.bn = nn.ModuleDict({"1": nn.BatchNorm2d(2 * d0)})
        self.fc = Dense(phi, 1)
        self.embed = nn.Embedding(self.k, phi) if self.k else None

    def forward(self, x, y=None):
        h = F.leaky_relu(self.conv[0](x), 0.2)
        phi = F.leaky_relu(self.bn["1"](self.conv[1](h)), 0.2).flatten(1)
        out = self.fc(phi)[:, 0]
        if self.embed is not None:
            out = out + (self.embed(y) * phi).sum(1)
        return out


class GAN(nn.Module):
    def __init__(self, model):
        super().__init__()
        if model.get("spectral_norm", False):
            raise ValueError("spectral_norm: the twin's discriminator has its batch norm only so far")
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


def without_counters(state):
    """A state dict without batch norms' `num_batches_tracked`."""
    return {n: t for n, t in state.items() if not n.endswith("num_batches_tracked")}

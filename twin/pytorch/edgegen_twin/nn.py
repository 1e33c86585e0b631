"""Layers shared by the twin's families, named as edgegen names them."""

import math

import torch
from torch import nn
from torch.nn import functional as F


def activation(name):
    """edgegen's hidden activations by name (GELU in its tanh form; a
    leaky ReLU's slope is 0.2, `Activation::LEAKY_SLOPE`)."""
    table = {
        "relu": F.relu,
        "leaky_relu": lambda x: F.leaky_relu(x, 0.2),
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
        "gelu": lambda x: F.gelu(x, approximate="tanh"),
        "softplus": F.softplus,
    }
    if name not in table:
        raise ValueError(f"activation {name!r}: expected one of {sorted(table)}")
    return table[name]


class Dense(nn.Module):
    """`y = x W^T + b`, W `[out, in]` (`{name}.weight`, `{name}.bias`),
    initialized as PyTorch's `nn.Linear` (and edgegen's `Linear::init`):
    uniform in +-1/sqrt(in). With `label_classes`, a per-class bias
    `{name}.label.weight` `[K, out]`, zero at first, added to the output."""

    def __init__(self, inp, out, label_classes=0):
        super().__init__()
        bound = 1.0 / math.sqrt(inp)
        self.weight = nn.Parameter(torch.empty(out, inp).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(out).uniform_(-bound, bound))
        self.label = nn.Embedding(label_classes, out) if label_classes else None
        if self.label is not None:
            nn.init.zeros_(self.label.weight)

    def forward(self, x, y=None):
        h = F.linear(x, self.weight, self.bias)
        if self.label is not None:
            h = h + self.label(y)
        return h

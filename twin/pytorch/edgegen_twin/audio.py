"""edgegen's audio model in PyTorch, with its names (`tok_embd`,
`cls_embd`, `gru.weight_ih`, `gru.bias_ih`, `gru.weight_hh`, `gru.bias_hh`,
`output`) and its arithmetic (host/src/models/rnn.rs, nn/gru.rs): each
8-bit mu-law code embedded, plus the clip's class embedding, into a GRU
(PyTorch's cell, gates `[r; z; n]`), then a linear head over the 256
codes. The GRU is `torch.nn.GRU`; edgegen drops its `_l0` suffixes, which
`edgegen_state_dict` and `load_edgegen_state_dict` map.
"""

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .nn import Dense

#: edgegen's GRU names and nn.GRU's.
_GRU = {
    "gru.weight_ih": "gru.weight_ih_l0",
    "gru.bias_ih": "gru.bias_ih_l0",
    "gru.weight_hh": "gru.weight_hh_l0",
    "gru.bias_hh": "gru.bias_hh_l0",
}


class Audio(nn.Module):
    def __init__(self, model):
        super().__init__()
        m = model["rnn"]
        v, e, h, k = m["vocab"], m["embed"], m["hidden"], m["n_classes"]
        self.k = k
        self.tok_embd = nn.Embedding(v, e)
        self.cls_embd = nn.Embedding(k, e) if k else None
        self.gru = nn.GRU(e, h, batch_first=True)
        self.output = Dense(h, v)

    def logits(self, codes, labels=None, h0=None):
        """`(B, T, 256)` logits of the next code after each of `(B, T)`
        codes, and the final state."""
        x = self.tok_embd(codes)
        if self.cls_embd is not None:
            x = x + self.cls_embd(labels)[:, None, :]
        out, h = self.gru(x, h0)
        return self.output(out), h

    def forward(self, codes, targets, labels=None):
        """Mean cross-entropy of the next code, in nats."""
        logits, _ = self.logits(codes, labels)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))

    def edgegen_state_dict(self):
        inv = {v: k for k, v in _GRU.items()}
        return {inv.get(n, n): t for n, t in self.state_dict().items()}

    def load_edgegen_state_dict(self, arrays):
        self.load_state_dict({_GRU.get(n, n): t for n, t in arrays.items()})


def mulaw_encode(x):
    """edgegen's 8-bit mu-law: `y = sign(x) ln(1 + 255 |x|) / ln 256`,
    `q = floor((y + 1) / 2 * 255 + 0.5)` (host/src/data/audio.rs)."""
    x = np.clip(x.astype(np.float32), -1.0, 1.0)
    y = np.sign(x) * np.log1p(255.0 * np.abs(x)) / np.log(256.0)
    return np.clip(np.floor((y + 1.0) * 0.5 * 255.0 + 0.5), 0, 255).astype(np.int64)

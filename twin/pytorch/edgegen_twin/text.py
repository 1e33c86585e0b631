"""edgegen's text transformer in PyTorch, with its names (llama.cpp's:
`token_embd`, `position_embd`, `class_embd`, `blk.{i}.attn_norm`,
`blk.{i}.attn_qkv`, `blk.{i}.attn_output`, `blk.{i}.ffn_norm`,
`blk.{i}.ffn_up`, `blk.{i}.ffn_down`, `output_norm`, `output`) and its
arithmetic (host/src/models/transformer.rs): GPT-2's pre-norm block,
`x += attn_output(attn(LN(x)))`, `x += ffn_down(gelu_tanh(ffn_up(LN(x))))`;
one fused QKV projection of `C + 2 Ckv` outputs, Q then K then V, query
head h reading key/value head `h / (H / Hkv)`; scores scaled by
`1/sqrt(C/H)`, causal; LayerNorm eps 1e-5; the output projection is the
token embedding when tied, without a bias.
"""

import math

import torch
from torch import nn
from torch.nn import functional as F

from .nn import Dense


class Norm(nn.Module):
    """LayerNorm with edgegen's names (`weight`, `bias`) and eps."""

    def __init__(self, c):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))

    def forward(self, x):
        return F.layer_norm(x, x.shape[-1:], self.weight, self.bias, 1e-5)


class Block(nn.Module):
    def __init__(self, c, f, heads, kv_heads):
        super().__init__()
        self.heads, self.kv_heads, self.hd = heads, kv_heads, c // heads
        self.attn_norm = Norm(c)
        self.attn_qkv = Dense(c, c + 2 * kv_heads * self.hd)
        self.attn_output = Dense(c, c)
        self.ffn_norm = Norm(c)
        self.ffn_up = Dense(c, f)
        self.ffn_down = Dense(f, c)

    def forward(self, x):
        b, t, c = x.shape
        qkv = self.attn_qkv(self.attn_norm(x))
        ckv = self.kv_heads * self.hd
        q, k, v = qkv.split([c, ckv, ckv], dim=-1)
        q = q.view(b, t, self.heads, self.hd).transpose(1, 2)
        k = k.view(b, t, self.kv_heads, self.hd).transpose(1, 2)
        v = v.view(b, t, self.kv_heads, self.hd).transpose(1, 2)
        group = self.heads // self.kv_heads
        if group > 1:
            k = k.repeat_interleave(group, dim=1)
            v = v.repeat_interleave(group, dim=1)
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.attn_output(att.transpose(1, 2).reshape(b, t, c))
        h = F.gelu(self.ffn_up(self.ffn_norm(x)), approximate="tanh")
        return x + self.ffn_down(h)


class Transformer(nn.Module):
    def __init__(self, model):
        super().__init__()
        m = model["transformer"]
        v, t, c, f, k = m["vocab"], m["context"], m["dim"], m["ffn"], m["n_classes"]
        heads = m["heads"]
        kv = m.get("kv_heads", 0) or heads
        self.context, self.k, self.tied = t, k, m.get("tied", False)
        self.token_embd = nn.Embedding(v, c)
        self.position_embd = nn.Embedding(t, c)
        self.class_embd = nn.Embedding(k, c) if k else None
        self.blk = nn.ModuleList([Block(c, f, heads, kv) for _ in range(m["layers"])])
        self.output_norm = Norm(c)
        self.output = None if self.tied else nn.Linear(c, v, bias=False)
        # edgegen's initialization (`Transformer::init`, nanoGPT's): weights
        # N(0, 0.02), the two residual projections N(0, 0.02 / sqrt(2 L)),
        # biases 0, norms' scales 1.
        resid = 0.02 / math.sqrt(2 * m["layers"])
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith(".bias"):
                    p.zero_()
                elif "_norm." in name:
                    p.fill_(1.0)
                elif name.endswith("attn_output.weight") or name.endswith("ffn_down.weight"):
                    p.normal_(0.0, resid)
                else:
                    p.normal_(0.0, 0.02)

    def logits(self, tokens, labels=None):
        """`(B, T, V)` logits of `(B, T)` symbols (and `(B,)` labels)."""
        t = tokens.shape[1]
        x = self.token_embd(tokens) + self.position_embd.weight[:t]
        if self.class_embd is not None:
            x = x + self.class_embd(labels)[:, None, :]
        for b in self.blk:
            x = b(x)
        x = self.output_norm(x)
        w = self.token_embd.weight if self.tied else self.output.weight
        return F.linear(x, w)

    def forward(self, tokens, targets, labels=None):
        """Mean cross-entropy of next-symbol prediction, in nats."""
        logits = self.logits(tokens, labels)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))

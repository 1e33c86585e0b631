"""The tensors each edgegen family stores: names and shapes, from a run
folder's config.json, as edgegen's host crate lays them out
(`host/src/models/*.rs`, `nn/*.rs`). PyTorch's own conventions hold:
a linear weight is `[out, in]`, a convolution's `[out, in, k, k]`, a
transposed convolution's `[in, out, k, k]`, a batch norm keeps
`running_mean` and `running_var` as buffers, a GRU `weight_ih` and
`weight_hh` of `[3H, in]`.

`tensors(config)` returns `[(name, shape, kind)]` with kind "param" or
"buffer", in edgegen's order. A test holds it to what `edgegen import`
expects for every family (`host/tests/twin.rs`).
"""


def _linear(name, inp, out):
    return [(f"{name}.weight", [out, inp]), (f"{name}.bias", [out])]


def vae(model):
    """A VAE: encoder, the mu and logvar heads, decoder (the label embedded
    into every decoder layer after the first when `label_every_layer`)."""
    c, h, w = model["image_shape"]
    d, z, k = c * h * w, model["latent"], model["n_classes"]
    hidden = model["hidden"]
    t, inp = [], d + k
    for i, width in enumerate(hidden):
        t += _linear(f"enc.{i}", inp, width)
        inp = width
    t += [
        ("enc.mu.weight", [z, inp]),
        ("enc.logvar.weight", [z, inp]),
        ("enc.mu.bias", [z]),
        ("enc.logvar.bias", [z]),
    ]
    inp = z + k
    for i, width in enumerate(list(reversed(hidden)) + [d]):
        t += _linear(f"dec.{i}", inp, width)
        if model.get("label_every_layer", False) and i > 0:
            t.append((f"dec.{i}.label.weight", [k, width]))
        inp = width
    return [(n, s, "param") for n, s in t], []


def gan(model, train):
    """A DCGAN: the generator (dense, two transposed 4x4 stride-2
    convolutions, batch norms), the discriminator (two 4x4 stride-2
    convolutions, a batch norm or spectral norms, dense, a projection
    embedding when conditional) and, when the run keeps one, the moving
    average of the generator (`ema.` + each of its tensors)."""
    c, h, w = model["image_shape"]
    z, k = model["latent"], model["n_classes"]
    c0, d0 = model["g_width"], model["d_width"]
    c1, h0, w0 = c0 // 2, h // 4, w // 4
    sn = model.get("spectral_norm", False)
    hidden = model.get("d_hidden", 0)
    gen = (
        _linear("gen.fc", z + k, c0 * h0 * w0)
        + [("gen.bn.0.weight", [c0]), ("gen.bn.0.bias", [c0])]
        + [("gen.up.0.weight", [c0, c1, 4, 4]), ("gen.up.0.bias", [c1])]
        + [("gen.bn.1.weight", [c1]), ("gen.bn.1.bias", [c1])]
        + [("gen.up.1.weight", [c1, c, 4, 4]), ("gen.up.1.bias", [c])]
    )
    phi = 2 * d0 * h0 * w0
    disc = [("disc.conv.0.weight", [d0, c, 4, 4]), ("disc.conv.0.bias", [d0])]
    disc += [("disc.conv.1.weight", [2 * d0, d0, 4, 4]), ("disc.conv.1.bias", [2 * d0])]
    if not sn:
        disc += [("disc.bn.1.weight", [2 * d0]), ("disc.bn.1.bias", [2 * d0])]
    # The heads read the hidden layer's features, when there is one.
    feat = hidden or phi
    if hidden:
        disc += _linear("disc.hidden", phi, hidden)
    disc += _linear("disc.fc", feat, 1)
    if k > 0:
        disc.append(("disc.embed.weight", [k, feat]))
    gen_buffers = []
    for name, ch in [("gen.bn.0", c0), ("gen.bn.1", c1)]:
        gen_buffers += [(f"{name}.running_mean", [ch]), (f"{name}.running_var", [ch])]
    buffers = list(gen_buffers)
    if sn:
        for name, rows, cols in [
            ("disc.conv.0", d0, c * 16),
            ("disc.conv.1", 2 * d0, d0 * 16),
        ] + ([("disc.hidden", hidden, phi)] if hidden else []) + [("disc.fc", 1, feat)]:
            buffers += [(f"{name}.sn_u", [rows]), (f"{name}.sn_v", [cols]), (f"{name}.sn_sigma", [1])]
    else:
        buffers += [("disc.bn.1.running_mean", [2 * d0]), ("disc.bn.1.running_var", [2 * d0])]
    if train.get("gan", {}).get("ema", 0.0) > 0.0:
        buffers += [("ema." + n, s) for n, s in gen + gen_buffers]
    params = [(n, s, "param") for n, s in gen + disc]
    return params, [(n, s, "buffer") for n, s in buffers]


def text(model):
    """The byte-level transformer, llama.cpp's tensor names: token,
    position and (conditional) class embeddings, blocks of LayerNorm,
    fused QKV (`C + 2 kv_heads * C / heads` outputs), output projection,
    LayerNorm and GELU MLP, then the final norm and, unless tied to the
    token embedding, the output matrix."""
    m = model["transformer"]
    v, t, c, f, k = m["vocab"], m["context"], m["dim"], m["ffn"], m["n_classes"]
    heads = m["heads"]
    kv = m.get("kv_heads", 0) or heads
    qkv = c + 2 * kv * (c // heads)
    out = [("token_embd.weight", [v, c]), ("position_embd.weight", [t, c])]
    if k > 0:
        out.append(("class_embd.weight", [k, c]))
    for i in range(m["layers"]):
        b = f"blk.{i}"
        out += [(f"{b}.attn_norm.weight", [c]), (f"{b}.attn_norm.bias", [c])]
        out += _linear(f"{b}.attn_qkv", c, qkv)
        out += _linear(f"{b}.attn_output", c, c)
        out += [(f"{b}.ffn_norm.weight", [c]), (f"{b}.ffn_norm.bias", [c])]
        out += _linear(f"{b}.ffn_up", c, f)
        out += _linear(f"{b}.ffn_down", f, c)
    out += [("output_norm.weight", [c]), ("output_norm.bias", [c])]
    if not m.get("tied", False):
        out.append(("output.weight", [v, c]))
    return [(n, s, "param") for n, s in out], []


def audio(model):
    """The mu-law GRU: code and (conditional) class embeddings, one GRU
    layer (PyTorch's gate order and names), and the output layer."""
    m = model["rnn"]
    v, e, hid, k = m["vocab"], m["embed"], m["hidden"], m["n_classes"]
    out = [("tok_embd.weight", [v, e])]
    if k > 0:
        out.append(("cls_embd.weight", [k, e]))
    out += [
        ("gru.weight_ih", [3 * hid, e]),
        ("gru.bias_ih", [3 * hid]),
        ("gru.weight_hh", [3 * hid, hid]),
        ("gru.bias_hh", [3 * hid]),
    ]
    out += _linear("output", hid, v)
    return [(n, s, "param") for n, s in out], []


def tensors(config):
    """`[(name, shape, kind)]` of the model a run folder's config.json
    (a dict: "family", "model", "train") describes."""
    family, model = config["family"], config["model"]
    if family == "vae":
        params, buffers = vae(model)
    elif family == "gan":
        params, buffers = gan(model, config.get("train", {}))
    elif family == "text":
        params, buffers = text(model)
    elif family == "audio":
        params, buffers = audio(model)
    else:
        raise ValueError(f"family {family!r}: the twin has vae, gan, text and audio")
    return params + buffers

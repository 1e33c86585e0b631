#!/usr/bin/env python3
"""Parity of the PyTorch twin (twin/pytorch) with edgegen, for the same
weights and inputs. Needs torch and onnxruntime (`pip install torch`);
a benchmark script, never a test.

    python3 bench/twin_parity.py RUN_DIR [--edgegen target/release/edgegen] [--n 256]

RUN_DIR is an edgegen run folder (trained by edgegen, or imported from the
twin). The script writes its weights with `edgegen export --safetensors`,
loads them into the twin, exports edgegen's ONNX graphs at f32 (which
`edgegen validate` holds to edgegen's host engine and runtime to 1e-4), and
prints the largest differences between the twin's outputs and ONNX
Runtime's on the same random inputs. VAE: the decoder's pixels from
latents and labels, the encoder's (mu, logvar) from images. Text: the
logits at every position of random sequences as long as the context,
through the ONNX decode step with its KV cache carried. Audio: the
logits and the state after every code of random sequences, through the
ONNX GRU step with its state carried. GAN: the generator's pixels (its
moving average when the run keeps one, batch norms in eval mode; edgegen's
export folds them) from noise and labels.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnxruntime as ort
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "twin", "pytorch"))
from edgegen_twin import io  # noqa: E402
from edgegen_twin.audio import Audio  # noqa: E402
from edgegen_twin.gan import Generator  # noqa: E402
from edgegen_twin.text import Transformer  # noqa: E402
from edgegen_twin.vae import VAE  # noqa: E402


def run(cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def inputs_of(sess):
    return {i.name: i for i in sess.get_inputs()}


def twin(cls, config, w):
    """The twin model `cls` of `config` in float64, eval mode, with the
    weights of `w`."""
    model = cls(config["model"]).double()
    state = {n: torch.from_numpy(v.astype(np.float64)) for n, v in io.load(w).items()}
    if hasattr(model, "load_edgegen_state_dict"):
        model.load_edgegen_state_dict(state)
    else:
        model.load_state_dict(state)
    return model.eval()


def session(a, d, part_args, name):
    """ONNX Runtime on edgegen's f32 export of the run (`part_args`: extra
    export flags)."""
    onnx = os.path.join(d, f"{name}.onnx")
    run([a.edgegen, "export", a.run, *part_args, "--onnx", onnx])
    return ort.InferenceSession(onnx, providers=["CPUExecutionProvider"])


def text(a, config, w, d, rng):
    model = twin(Transformer, config, w)
    sess = session(a, d, [], "text")
    ins = inputs_of(sess)
    n, t = min(a.n, 16), model.context
    tokens = rng.integers(0, model.token_embd.num_embeddings, size=(n, t))
    labels = rng.integers(0, max(model.k, 1), size=n)
    with torch.no_grad():
        want = model.logits(torch.from_numpy(tokens), torch.from_numpy(labels) if model.k else None).numpy()
    shape = [s if isinstance(s, int) else n for s in ins["past_k"].shape]
    past_k, past_v = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
    worst = 0.0
    for pos in range(t):
        feed = {"token": tokens[:, pos].astype(np.int64), "position": np.array([pos], np.int64),
                "past_k": past_k, "past_v": past_v}
        if model.k:
            feed["label"] = labels.astype(np.int64)
        logits, past_k, past_v = sess.run(None, feed)
        worst = max(worst, float(np.abs(logits - want[:, pos, :]).max()))
    return {"family": "text", "sequences": n, "positions": t, "logits_max_abs": worst}


def audio(a, config, w, d, rng):
    model = twin(Audio, config, w)
    sess = session(a, d, [], "audio")
    n, t = min(a.n, 16), 200
    codes = rng.integers(0, 256, size=(n, t))
    labels = rng.integers(0, max(model.k, 1), size=n)
    with torch.no_grad():
        want, _ = model.logits(torch.from_numpy(codes), torch.from_numpy(labels) if model.k else None)
        want = want.numpy()
    h = np.zeros((n, model.gru.hidden_size), np.float32)
    worst = 0.0
    for i in range(t):
        logits, h = sess.run(None, {"code": codes[:, i].astype(np.int64),
                                    "label": labels.astype(np.int64), "h": h})
        worst = max(worst, float(np.abs(logits - want[:, i, :]).max()))
    return {"family": "audio", "sequences": n, "steps": t, "logits_max_abs": worst}


def gan(a, config, w, d, rng):
    arrays = io.load(w)
    ema = any(n.startswith("ema.gen.") for n in arrays)
    prefix = "ema.gen." if ema else "gen."
    g = Generator(config["model"]).double()
    missing, unexpected = g.load_state_dict({n[len(prefix):]: torch.from_numpy(v.astype(np.float64))
                                             for n, v in arrays.items() if n.startswith(prefix)}, strict=False)
    if unexpected or any(not m.endswith("num_batches_tracked") for m in missing):
        raise SystemExit(f"{a.run}: the generator's weights do not fit: {missing} {unexpected}")
    g.eval()
    sess = session(a, d, [], "gan")
    z = rng.standard_normal((a.n, g.z)).astype(np.float32)
    y = rng.integers(0, max(g.k, 1), size=a.n)
    feeds = {"z": z}
    if "label" in inputs_of(sess):
        feeds["label"] = y.astype(np.int64)
    with torch.no_grad():
        want = ((g(torch.from_numpy(z).double(), torch.from_numpy(y) if g.k else None) + 1) / 2)
        want = want.reshape(a.n, -1).numpy()
    got = sess.run(None, feeds)[0].reshape(a.n, -1)
    return {"family": "gan", "n": a.n, "moving_average": ema, "pixels_max_abs": float(np.abs(got - want).max())}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--edgegen", default="target/release/edgegen")
    ap.add_argument("--n", type=int, default=256)
    a = ap.parse_args()
    config = io.read_config(os.path.join(a.run, "config.json"))
    if config["family"] not in ("vae", "gan", "text", "audio"):
        raise SystemExit(f"{a.run}: a {config['family']} run; the twin has VAE, GAN, text and audio models")
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as d:
        w = os.path.join(d, "w.safetensors")
        run([a.edgegen, "export", a.run, "--safetensors", w])
        if config["family"] in ("text", "audio", "gan"):
            check = {"text": text, "audio": audio, "gan": gan}[config["family"]]
            print(json.dumps(check(a, config, w, d, rng)))
            return
        model = twin(VAE, config, w)
        k = config["model"]["n_classes"]
        report = {"family": "vae", "n": a.n}
        for part in ["decoder", "encoder"]:
            sess = session(a, d, ["--part", part], part)
            names = inputs_of(sess)
            y = rng.integers(0, max(k, 1), size=a.n)
            feeds = {}
            if part == "decoder":
                z = rng.standard_normal((a.n, model.z)).astype(np.float32)
                feeds[next(n for n in names if n.startswith("z"))] = z
                with torch.no_grad():
                    want = torch.sigmoid(model.decode(torch.from_numpy(z).double(),
                                                      torch.from_numpy(y) if k else None)).numpy()
            else:
                x = rng.random((a.n, model.d)).astype(np.float32)
                feeds[next(n for n in names if n.startswith("x"))] = x
                with torch.no_grad():
                    mu, logvar = model.encode(torch.from_numpy(x).double(), torch.from_numpy(y) if k else None)
                    want = np.concatenate([mu.numpy(), logvar.numpy()], axis=1)
            for n, i in names.items():
                if n not in feeds:
                    feeds[n] = (y if "int" in i.type else np.eye(k, dtype=np.float32)[y]).astype(
                        np.int64 if "int" in i.type else np.float32)
            got = np.concatenate([o.reshape(a.n, -1) for o in sess.run(None, feeds)], axis=1)
            report[f"{part}_max_abs"] = float(np.abs(got - want).max())
        print(json.dumps(report))


if __name__ == "__main__":
    main()

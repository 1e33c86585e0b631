"""Reading and writing the files edgegen exchanges, with numpy only: a run
folder's config.json, and a safetensors file of f32 tensors under
edgegen's names (what `edgegen import` takes and `edgegen export
--safetensors` writes).

    python -m edgegen_twin.io random CONFIG.json OUT.safetensors [SEED]

writes random weights for the model CONFIG.json describes (a test of the
naming contract, and a start for a model trained from scratch).
"""

import json
import sys

import numpy as np
from safetensors.numpy import load_file, save_file

from . import layout

#: The metadata edgegen writes and reads beside the tensors.
FORMAT_KEY, FORMAT = "edgegen.weights", "1"


def read_config(path):
    """A run folder's config.json, as a dict."""
    with open(path) as f:
        return json.load(f)


def save(path, arrays, config):
    """Writes `arrays` (name -> array) as f32 safetensors, with the family
    and model config in the metadata, after checking them against the
    layout `config` describes."""
    want = {n: s for n, s, _ in layout.tensors(config)}
    problems = [f"missing: {n} {s}" for n, s in want.items() if n not in arrays]
    problems += [f"unexpected: {n}" for n in arrays if n not in want]
    problems += [
        f"{n}: {list(a.shape)}, expected {want[n]}"
        for n, a in arrays.items()
        if n in want and list(a.shape) != want[n]
    ]
    if problems:
        raise ValueError("the tensors do not match the config:\n  " + "\n  ".join(problems))
    meta = {
        FORMAT_KEY: FORMAT,
        "family": config["family"],
        "model": json.dumps(config["model"]),
    }
    save_file({n: np.ascontiguousarray(a, dtype=np.float32) for n, a in arrays.items()}, path, metadata=meta)


def load(path):
    """The tensors of a safetensors file (name -> f32 array)."""
    return load_file(path)


def random_weights(config, seed=0):
    """Small random weights for every tensor of the model: normal times
    0.1, batch norms' scales near 1 and their running variances positive,
    spectral norms' estimates of sigma 1."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape, _ in layout.tensors(config):
        a = rng.normal(0.0, 0.1, size=shape).astype(np.float32)
        if name.endswith("running_var") or name.endswith("sn_sigma"):
            a = 1.0 + np.abs(a)
        elif ".bn." in name and name.endswith(".weight"):
            a = 1.0 + a
        out[name] = a
    return out


def main(argv):
    if len(argv) >= 3 and argv[0] == "random":
        config = read_config(argv[1])
        seed = int(argv[3]) if len(argv) > 3 else 0
        save(argv[2], random_weights(config, seed), config)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""edgegen's model families for PyTorch: the same hyperparameters, tensor
names and layouts as edgegen, so that a checkpoint moves between the two
without renaming (`edgegen import`, `edgegen export --safetensors`).

- `layout` (pure Python, no torch) is the contract: the names and shapes
  of every tensor a family stores, computed from a run folder's
  config.json as edgegen computes them;
- `io` reads and writes those files with numpy and safetensors;
- `vae`, `gan`, `text` and `audio` are the models (torch), `train_vae`,
  `train_gan`, `train_text` and `train_audio` their training scripts for
  one device or `torchrun`, `run` what those share.
"""

from . import io, layout

__all__ = ["io", "layout"]

"""Steering vectors: a direction per layer added to the hidden states at inference.

Extraction (as repeng's PCA of differences, no training): for each pair, the mean
hidden state over the reply tokens under a good stimulus minus the same under a bad
one; per layer, the first principal direction of those differences (uncentred, so
the mean difference counts), signed so the differences project positively on it.
Stimuli: ``instruction`` (the chosen reply after RAHF's good vs bad instruction, the
differences RAHF's SCIT step 2 uses) or ``reply`` (chosen vs rejected reply).

The stored vector is the direction times the mean projection of the differences:
coefficient 1 adds one typical good-minus-bad difference at every position.
A vector file is a safetensors file (one tensor per layer) with its metadata.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from preflab.models.hidden import check_layers, decoder_layers

STIMULI = ("instruction", "reply")


@dataclass
class SteeringVector:
    """Per-layer vectors (layer l: added to the output of decoder block l)."""

    model: str
    layers: dict[int, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def hidden_size(self) -> int:
        return len(next(iter(self.layers.values())))

    def save(self, path: str | Path) -> Path:
        from safetensors.numpy import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({f"layer.{k}": np.ascontiguousarray(v, dtype=np.float32)
                   for k, v in self.layers.items()}, str(path),
                  metadata={"preflab": json.dumps({"model": self.model, "meta": self.meta})})
        return path

    @classmethod
    def load(cls, path: str | Path) -> SteeringVector:
        from safetensors import SafetensorError, safe_open

        if not Path(path).is_file():
            raise ValueError(f"{path}: no such steering vector file")
        try:
            with safe_open(str(path), framework="numpy") as f:
                info = json.loads((f.metadata() or {}).get("preflab", "null"))
                layers = {int(k.split(".", 1)[1]): f.get_tensor(k)
                          for k in f.keys()}  # noqa: SIM118 (not iterable)
        except (OSError, ValueError, SafetensorError) as e:
            raise ValueError(f"{path}: not a steering vector file ({e})") from None
        if not isinstance(info, dict) or not layers:
            raise ValueError(f"{path}: not a steering vector file written by preflab "
                             "(no 'preflab' metadata or no layers)")
        return cls(info["model"], dict(sorted(layers.items())), info.get("meta", {}))

    def check(self, model: Any) -> None:
        """Refuse a model of another depth or width than the vector's."""
        check_layers(model, list(self.layers), last=False)
        width = model.get_input_embeddings().weight.shape[-1]
        if width != self.hidden_size:
            raise ValueError(f"the steering vector (from {self.model}) has width "
                             f"{self.hidden_size}, the model {width}")


def pca_direction(diffs: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(unit direction, mean projection, share of the differences' second moment it
    explains) of differences [N, H]: the first right singular vector, uncentred."""
    diffs = np.asarray(diffs, dtype=np.float64)
    if diffs.ndim != 2 or len(diffs) < 2:
        raise ValueError(f"need at least 2 difference vectors, got shape {diffs.shape}")
    _, s, vt = np.linalg.svd(diffs, full_matrices=False)
    direction = vt[0]
    proj = diffs @ direction
    if proj.mean() < 0:
        direction, proj = -direction, -proj
    explained = float(s[0] ** 2 / max((s ** 2).sum(), 1e-30))
    return direction, float(proj.mean()), explained


def steering_from_differences(model: str, diffs: np.ndarray, layers: Sequence[int],
                              **meta: Any) -> SteeringVector:
    """A vector from per-pair differences [pairs, layers, H]."""
    vectors, info = {}, {}
    for j, layer in enumerate(layers):
        direction, scale, explained = pca_direction(diffs[:, j])
        agree = float(np.mean(diffs[:, j] @ direction > 0))
        vectors[layer] = (direction * scale).astype(np.float32)
        info[str(layer)] = {"scale": round(scale, 4), "explained": round(explained, 4),
                            "pairs_projecting_positive": round(agree, 4)}
    return SteeringVector(model, vectors, {**meta, "n_pairs": len(diffs),
                                           "layers": info})


@contextmanager
def steered(model: Any, vector: SteeringVector | None, coeff: float = 1.0) -> Iterator[None]:
    """Within the block, decoder block l adds ``coeff * vector[l]`` to its output at
    every position. ``vector=None`` or ``coeff=0`` changes nothing."""
    if vector is None or coeff == 0:
        yield
        return
    vector.check(model)
    blocks = decoder_layers(model)
    param = next(model.parameters())
    adds = {layer: coeff * torch.as_tensor(v, dtype=param.dtype, device=param.device)
            for layer, v in vector.layers.items()}

    def hook_for(add: torch.Tensor) -> Any:
        def hook(module: Any, inputs: Any, output: Any) -> Any:
            if isinstance(output, tuple):
                return (output[0] + add, *tuple(output[1:]))
            return output + add
        return hook

    handles = [blocks[layer - 1].register_forward_hook(hook_for(add))
               for layer, add in adds.items()]
    try:
        yield
    finally:
        for h in handles:
            h.remove()



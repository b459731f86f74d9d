"""Checkpoints that survive interruptions and carry everything needed to resume or predict.

A checkpoint holds the model's weights, its :class:`~fruitlib.models.ModelSpec` (backbone, class
names, image size, normalisation), the run's parameters and the training state. It is written to a
temporary file and renamed into place, so Ctrl-C or a killed process never leaves a half-written file.
It is read with ``weights_only=True``: loading a checkpoint cannot run code.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .errors import FruitlibError
from .files import atomic_save
from .models import FruitNet, ModelSpec, build_model
from .weights import load_into, load_state_dict_file

REQUIRED = ("model", "spec", "params")


def save_checkpoint(
    path: str | os.PathLike, model: FruitNet, params: dict, training: dict | None = None, weights: dict | None = None
) -> Path:
    """Write atomically (see :func:`~fruitlib.files.atomic_save`): an interruption keeps the previous file.

    ``weights``: a state dict of ``model`` saved earlier (e.g. its best epoch's) instead of its current one.
    """
    state = {
        "model": weights if weights is not None else model.state_dict(),
        "spec": model.spec.to_dict(),
        "params": params,
        "training": training,
    }
    return atomic_save(state, path)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a fruitlib checkpoint; anything else is rejected with one line."""
    state = load_state_dict_file(path, "checkpoint")
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise FruitlibError(
            f"{path} is not a fruitlib checkpoint (no {', '.join(missing)}): "
            "pass the model.pt written by 'python -m fruitlib train'"
        )
    return state


def model_from_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> FruitNet:
    """Rebuild the network described in a checkpoint and load its weights (in eval mode)."""
    state = load_checkpoint(path)
    spec = ModelSpec(**state["spec"])
    model = build_model(
        spec.classes,
        spec.backbone,
        pretrained=False,
        image_size=spec.image_size,
        dropout=state["params"].get("dropout", False),
    )  # trains on as it was trained
    load_into(model, state["model"], path, f"a {spec.backbone} with {len(spec.classes)} classes")
    model.spec = spec
    return model.to(device).eval()

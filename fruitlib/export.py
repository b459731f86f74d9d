"""Export a trained model to ONNX and check that the export answers like the original."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch

from .files import writing
from .models import FruitNet


def to_onnx(model: FruitNet, path: str | os.PathLike) -> Path:
    """Write ``model`` as ONNX taking a batch of normalised ``3 x S x S`` images, giving logits."""
    model.eval()
    size = model.spec.image_size
    example = torch.zeros(1, 3, size, size, device=next(model.parameters()).device)
    with writing(path, "the ONNX model"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter is chatty
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=False,
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
        )
    return Path(path)


def onnx_logits(path: str | os.PathLike, x: torch.Tensor) -> np.ndarray:
    """Run an exported model with ONNX Runtime on the CPU."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"image": x.cpu().numpy()})[0]


@torch.inference_mode()
def check(model: FruitNet, path: str | os.PathLike, x: torch.Tensor) -> dict:
    """The export at ``path`` against ``model`` on ``x``: the largest logit difference, and whether both give the same
    predicted class for every image."""
    expected = model.eval()(x).cpu().numpy()
    got = onnx_logits(path, x)
    return {
        "max_abs_diff": float(np.abs(expected - got).max()),
        "same_predictions": bool((expected.argmax(1) == got.argmax(1)).all()),
    }

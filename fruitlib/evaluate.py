"""Scores and predictions: accuracy, per-class precision/recall/F1, confusion matrix, top-k guesses."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from .augment import view_for
from .cache import stage_runner
from .data import decode, stored_size
from .engines import Runner
from .errors import FruitlibError
from .models import FruitNet


@torch.inference_mode()
def predict_images(
    model: FruitNet,
    images: torch.Tensor,
    labels: torch.Tensor,
    device: str | torch.device = "cpu",
    batch_size: int = 64,
    stages: Runner | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Softmax probabilities and labels for decoded uint8 photos, each seen through the model's evaluation view.

    The stages run on the engine of :func:`fruitlib.cache.stage_runner` (ONNX Runtime on a CPU, through an export
    that is not kept unless it was already), then the head. ``stages``: that runner, made once by the caller to
    score several splits with one export; made here when not given.
    """
    spec = model.spec
    view = view_for(spec)
    model.eval().to(device)
    stages = stages if stages is not None else stage_runner(model, len(model.stages), device, keep=False)
    probs = [
        torch.softmax(model.classify(stages(view.batch(images[i : i + batch_size]).to(device)).flatten(1)), 1)
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(probs).cpu().numpy(), labels.numpy()


def score(
    model: FruitNet,
    images: torch.Tensor,
    labels: torch.Tensor,
    device: str | torch.device = "cpu",
    predictions: bool = False,
    stages: Runner | None = None,
) -> dict:
    """:func:`report` of ``model`` on decoded photos, through the whole network; with ``predictions``, also the
    class index it gives each photo, in order (``predicted``). ``stages``: see :func:`predict_images`."""
    probs, labels = predict_images(model, images, labels, device, stages=stages)
    predicted = probs.argmax(1)
    scores = report(labels, predicted, model.spec.classes)
    return scores | {"predicted": predicted.tolist()} if predictions else scores


def report(labels: np.ndarray, predicted: np.ndarray, classes: list[str]) -> dict:
    """Accuracy, per-class precision/recall/F1/support and the confusion matrix (rows: true class)."""
    ids = list(range(len(classes)))
    precision, recall, f1, support = precision_recall_fscore_support(labels, predicted, labels=ids, zero_division=0)
    per_class = {
        c: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for c, p, r, f, s in zip(classes, precision, recall, f1, support)
    }
    return {
        "accuracy": float(np.mean(labels == predicted)),
        "n_images": int(len(labels)),
        "per_class": per_class,
        "confusion": confusion_matrix(labels, predicted, labels=ids).tolist(),
    }


def top_confusions(confusion: list[list[int]], classes: list[str], k: int = 4) -> pd.DataFrame:
    """The ``k`` largest off-diagonal cells of a confusion matrix (rows: true class): which mistakes are commonest."""
    matrix = np.array(confusion)
    np.fill_diagonal(matrix, 0)
    cells = zip(*np.unravel_index(np.argsort(-matrix, axis=None, kind="stable")[:k], matrix.shape))
    return pd.DataFrame(
        [
            {
                "true": classes[t],
                "predicted": classes[p],
                "photos": int(matrix[t, p]),
                "share of the true class": float(matrix[t, p] / max(np.sum(confusion[t]), 1)),
            }
            for t, p in cells
            if matrix[t, p] > 0
        ]
    )


def load_photo(path: str | os.PathLike, model: FruitNet) -> torch.Tensor:
    """One photo prepared exactly as in evaluation; a bad file is a one-line error."""
    try:
        image = decode(path, stored_size(model.spec.image_size))
    except FileNotFoundError as error:
        raise FruitlibError(f"image {path} does not exist") from error
    except Exception as error:
        raise FruitlibError(f"{path} is not a readable image ({type(error).__name__}): pass a JPEG or PNG") from error
    return view_for(model.spec)(image)


@torch.inference_mode()
def top_k(model: FruitNet, paths: list[str | os.PathLike], k: int = 3) -> list[list[tuple[str, float]]]:
    """The ``k`` most likely classes, with probabilities, for each photo."""
    model.eval()
    device = next(model.parameters()).device
    x = torch.stack([load_photo(p, model) for p in paths]).to(device)
    probs = torch.softmax(model(x), 1).cpu()
    values, indices = probs.topk(min(k, probs.shape[1]), dim=1)
    return [[(model.spec.classes[i], float(v)) for v, i in zip(vs, ids)] for vs, ids in zip(values, indices)]

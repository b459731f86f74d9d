"""fruitlib's default recogniser, chosen by measurement on the train and validation splits (never on test).

Candidates: each offline backbone (EfficientNet-Lite0/1/2) at a few image sizes, 0 to 4 augmented views of
each training photo through the frozen network, and heads on the pooled features: fruitlib's linear head
trained by AdamW for 10, 30 or 100 epochs, and a logistic regression (scikit-learn, standardised features). Two scores
each, because 111 validation photos cannot tell settings a point apart (one photo is 0.9 points):

* **val**: trained on the whole train split, scored on the validation split;
* **cv**: burst-grouped 5-fold cross-validation inside the train split (1,142 photos, each scored once, near-
  duplicate photos kept in one fold so that a fold never holds the twin of a training photo).

Beside them, the seconds a default ``fruitlib train`` would spend in the frozen network: its passes over
train (one per view), validation and test photos at the images per second measured here. The default is the
best ``cv`` whose seconds fit BUDGET_S (two-thirds of the 45-s target, leaving the rest for start-up, decoding
and the head, and a margin for slower CPUs); the best ``cv`` at any cost is the fixed-feature candidate for the
``accurate`` preset, which ``choose_settings.py --accurate`` weighs against fine-tuning the last stage. The
script prints both; the table of 2026-12-02 is in ``benchmarks/results/2026-12-02.md``.

    .venv/bin/python benchmarks/choose_defaults.py --data ../shared/data/GroceryStoreDataset
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import StratifiedGroupKFold
from torch.utils.data import TensorDataset

from fruitlib import explore
from fruitlib.cache import cached_activations, load_split
from fruitlib.data import find_data, make_splits, scan
from fruitlib.models import Tail, build_model
from fruitlib.train import fit

CANDIDATES = [
    ("efficientnet_lite0", 224),
    ("efficientnet_lite0", 260),
    ("efficientnet_lite1", 240),
    ("efficientnet_lite2", 224),
    ("efficientnet_lite2", 260),
    ("efficientnet_lite2", 300),
]
VIEWS = (0, 1, 2, 4)
FOLDS = 5
BUDGET_S = 30


def features(backbone: str, size: int, catalog, most_views: int) -> dict:
    """Pooled frozen features: ``train`` as a list (view 0 = centre crop, then augmented views), ``val``, and the
    seconds of one pass per photo (measured on the first augmented view of the training photos, cold)."""
    model = build_model(catalog.classes, backbone, True, "frozen", image_size=size)
    train, val = (load_split(catalog, split, size, progress=False) for split in ("train", "val"))
    stop = len(model.stages)
    views = [cached_activations(model, train.images, stop, 0, progress=False).flatten(1).float()]
    began = time.perf_counter()
    views += [cached_activations(model, train.images, stop, 1, progress=False).flatten(1).float()]
    per_photo = (time.perf_counter() - began) / len(train.labels)
    views += [
        cached_activations(model, train.images, stop, v, progress=False).flatten(1).float()
        for v in range(2, most_views + 1)
    ]
    groups = explore.bursts(views[0].numpy())  # near-duplicate bursts kept in one fold; the same folds for all
    folds = list(StratifiedGroupKFold(FOLDS, shuffle=True, random_state=0).split(views[0], train.labels, groups))
    return {
        "model": model,
        "train": views,
        "train_y": train.labels,
        "per_photo": per_photo,
        "folds": folds,
        "val": cached_activations(model, val.images, stop, 0, progress=False).flatten(1).float(),
        "val_y": val.labels,
    }


def linear_head(epochs: int):
    """fruitlib's frozen-mode head (AdamW, lr 1e-3, batch 64, cosine decay) trained afresh for ``epochs``."""

    def train(model, train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor) -> np.ndarray:
        torch.manual_seed(0)
        model.head.reset_parameters()
        module = Tail(model, len(model.stages))
        fit(
            module,
            TensorDataset(train_x[:, :, None, None], train_y),
            None,
            epochs=epochs,
            seed=0,
            device="cpu",
            progress=False,
        )
        with torch.inference_mode():
            return module.eval()(test_x[:, :, None, None]).argmax(1).numpy()

    return train


def logistic(model, train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor) -> np.ndarray:
    return explore.probe(train_x.numpy(), train_y.numpy()).predict(test_x.numpy())


HEADS = {f"linear head, {n} epochs": linear_head(n) for n in (10, 30, 100)} | {"logistic regression": logistic}


def scores(found: dict, views: int, head) -> tuple[float, float]:
    """(validation accuracy, grouped cross-validation accuracy) of ``head`` trained on views 0..``views``."""
    x, y, model = found["train"], found["train_y"], found["model"]
    stack = lambda rows: (torch.cat([v[rows] for v in x[: views + 1]]), y[rows].repeat(views + 1))  # noqa: E731
    val = float((head(model, *stack(np.arange(len(y))), found["val"]) == found["val_y"].numpy()).mean())
    right = sum(int((head(model, *stack(keep), x[0][held]) == y[held].numpy()).sum()) for keep, held in found["folds"])
    return val, right / len(y)


def markdown(table: pd.DataFrame) -> str:
    """A table as Markdown, for a results file in benchmarks/results/."""
    lines = [" | ".join(table.columns), " | ".join("---" for _ in table.columns)]
    lines += [" | ".join(str(v) for v in row) for row in table.itertuples(index=False)]
    return "\n".join(f"| {line} |" for line in lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data")
    parser.add_argument("--test-photos", type=int, default=1117, help="photos of the test split a default run scores")
    args = parser.parse_args()
    catalog = make_splits(scan(find_data(args.data), "coarse", "Fruit"), 0.2, 0)
    n_train, n_val = (len(catalog.split(s)) for s in ("train", "val"))
    rows = []
    for backbone, size in CANDIDATES:
        found = features(backbone, size, catalog, max(VIEWS))
        for views in VIEWS:
            passes = (views + 1) * n_train + n_val + args.test_photos
            for name, head in HEADS.items():
                val, cv = scores(found, views, head)
                rows.append(
                    {
                        "backbone": backbone,
                        "size": size,
                        "views": views,
                        "head": name,
                        "val": 100 * val,
                        "cv": 100 * cv,
                        "network s": passes * found["per_photo"],
                        "img/s": 1 / found["per_photo"],
                    }
                )
                print(" ".join(f"{v:.1f}" if isinstance(v, float) else str(v) for v in rows[-1].values()), flush=True)
    table = pd.DataFrame(rows).round(1)
    print(f"\nval: {n_val} photos; cv: {n_train} photos in {FOLDS} burst-grouped folds\n")
    print(markdown(table))
    best = table.sort_values(["cv", "val"], ascending=False)
    for name, rows in (
        ("default", best[best["network s"] <= BUDGET_S]),
        ("fixed-feature candidate for the accurate preset", best),
    ):
        print(f"\n{name}: " + ", ".join(f"{k} {v}" for k, v in rows.iloc[0].items()))


if __name__ == "__main__":
    main()

"""The series' recipes, defined once: notebook 04's two transfer recipes, notebook 05's scratch run, and the
recogniser of notebook 06 (a fixed feature extractor at the article's image size).

Notebooks 04, 05 and 06 build their runs here from the same parameters, so a notebook opened on its own (Colab,
Kaggle) trains exactly the runs of the notebook that owns them when they are missing, and loads them when they are
there. Each run lives in ``<runs>/<owner>/<recipe>-seed<N>``: ``04/frozen-seed0``, ``04/finetune-seed0``,
``05/scratch-seed0``, ``06/ship-seed0``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from .run import RunConfig, RunResult, finished, load_run, train_run

OWNER = {"frozen": "04", "finetune": "04", "scratch": "05", "ship": "06"}  # the notebook that owns each recipe's runs


@dataclasses.dataclass(frozen=True)
class Settings:
    """What the recipes share: the parameters of notebooks 04, 05 and 06 (same names, same defaults)."""

    data_dir: str | None = None
    backbone: str = "auto"
    weights: str | None = None
    image_size: int = 64
    epochs: int = 5
    batch_size: int = 64
    views: int = 2  # augmented views per photo whose frozen activations are cached (transfer recipes)
    finetune_mode: str = "last"  # "last": the last stage and the head; "full": the whole network
    lr: float | None = None  # the transfer head's rate (None: fruitlib's default)
    backbone_lr: float | None = None  # the rate of the pretrained stages that train (None: fruitlib's default)
    scratch_lr: float | None = None  # every layer's rate from scratch (None: fruitlib's default)
    ship_size: int = 224  # the recogniser of notebook 06: a fixed feature extractor at the article's image size,
    ship_views: int = 2  # with its own views and epochs (chosen on validation: benchmarks/results/)
    ship_epochs: int = 10
    device: str = "auto"


def config(recipe: str, seed: int, settings: Settings, runs: str = "../runs") -> RunConfig:
    """The RunConfig of ``recipe`` (frozen, finetune, scratch or ship) for ``seed``, in its owner's run folder."""
    if recipe not in OWNER:
        raise ValueError(f"recipe must be one of {', '.join(OWNER)}, not {recipe!r}")
    s = settings
    common = dict(
        data=s.data_dir,
        out=f"{runs}/{OWNER[recipe]}/{recipe}-seed{seed}",
        backbone=s.backbone,
        weights=s.weights,
        epochs=s.epochs,
        image_size=s.image_size,
        batch_size=s.batch_size,
        seed=seed,
        device=s.device,
    )
    if recipe == "frozen":
        return RunConfig(**common, mode="frozen", views=s.views, lr=s.lr)
    if recipe == "ship":
        return RunConfig(
            **common | {"image_size": s.ship_size, "epochs": s.ship_epochs}, mode="frozen", views=s.ship_views, lr=s.lr
        )
    if recipe == "finetune":
        return RunConfig(**common, mode=s.finetune_mode, views=s.views, lr=s.lr, backbone_lr=s.backbone_lr)
    return RunConfig(**common, scratch=True, mode="full", lr=s.scratch_lr)


def train_or_load(recipe: str, seeds: list[int], settings: Settings, runs: str = "../runs") -> list[RunResult]:
    """The runs of ``recipe``, one per seed: loaded where a finished run with these settings exists, else trained
    (with one line saying so, naming the notebook that owns them)."""
    configs = [config(recipe, seed, settings, runs) for seed in seeds]
    missing = [c.out for c in configs if not finished(c)]
    if missing:
        print(
            f"{len(missing)} of the {len(configs)} runs of recipe {recipe!r} (notebook {OWNER[recipe]}) are not "
            f"in {Path(missing[0]).parent} with these settings: training them now, as that notebook does"
        )
    return [train_run(c, overwrite=True, progress=False) if c.out in missing else load_run(c.out) for c in configs]


def correct(runs: list[RunResult], labels: np.ndarray) -> np.ndarray:
    """One row per run, one column per test photo: whether the run recognised it (from ``metrics.json``)."""
    return np.array([np.asarray(r.metrics["test"]["predicted"]) == labels for r in runs])

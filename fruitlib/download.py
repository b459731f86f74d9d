"""Fetch what an offline machine needs, once, online: the Grocery Store Dataset (MIT licence) at a pinned commit,
its listings checked against known checksums, and torchvision's ImageNet ResNet weights, checked by their hash.

A download goes to a temporary name beside its destination and is renamed into place only once verified, so an
interrupted or damaged one is never taken for data.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import urllib.request
import zipfile
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .errors import FruitlibError
from .files import CAUSES, failed_write, remove_stale_temporaries, writing
from .weights import resnet_weights_enum

REPOSITORY = "https://github.com/marcusklasson/GroceryStoreDataset"
COMMIT = "fc80ba90f803d79d0383df52c5a4ac5de99ff6fc"  # master on 2023-09-08, the data's last change in 2019
ARCHIVE = f"{REPOSITORY}/archive/{COMMIT}.zip"
# SHA-256 of the files that define the splits and classes, at COMMIT (dataset/...)
LISTINGS = {
    "classes.csv": "6e1115adf36741498034165778a3300cd11f24c419e32a60d0a5057dd92998c1",
    "train.txt": "b6d6a4d25fc2a7604f4bbd4e8010516f3bb643f727fc60ef5fca042edd01294f",
    "val.txt": "a2a2bdf8ce34196c1a1dd554bd67e780793aab9363dd40d6cf50fe2d168a78b6",
    "test.txt": "9a464934780665c0024db405571c0dd2d149488a245f476557de7f1c31cf8a93",
}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def verify_grocery(root: Path) -> None:
    """Check the listings of an unpacked copy against :data:`LISTINGS`, and that every photo they list is there."""
    base = root / "dataset"
    for name, expected in LISTINGS.items():
        if not (base / name).is_file() or sha256(base / name) != expected:
            raise FruitlibError(
                f"{base / name} is missing or not the file of commit {COMMIT[:7]}: the download is "
                "damaged or the upstream changed; nothing was kept, try again"
            )
    for name in ("train.txt", "val.txt", "test.txt"):
        for line in (base / name).read_text().splitlines():
            if line.strip() and not (base / line.split(",")[0].strip()).is_file():
                raise FruitlibError(f"{name} lists {line.split(',')[0]}, which the download lacks: try again")


def checked(dest: Path) -> Path:
    """``dest`` once :func:`verify_grocery` passes; a copy that fails it is not repaired: it must go."""
    try:
        verify_grocery(dest)
    except FruitlibError as error:
        raise FruitlibError(
            f"{dest} is not a complete copy of commit {COMMIT[:7]} ({str(error).split(':')[0]}): "
            "delete it, or point FRUITLIB_DATA at a good copy, and run again"
        ) from None
    return dest


def _download(url: str, dest: Path, what: str) -> None:
    with urllib.request.urlopen(url, timeout=30) as response, open(dest, "wb") as f:
        size = int(response.headers.get("Content-Length", 0)) or None
        with tqdm(total=size, unit="B", unit_scale=True, desc=what) as bar:
            while chunk := response.read(1 << 20):
                f.write(chunk)
                bar.update(len(chunk))


def fetch_grocery(dest: Path, url: str = ARCHIVE) -> Path:
    """Download, unpack and verify the Grocery Store Dataset into ``dest``; one-line error offline."""
    dest = Path(dest)
    if dest.is_dir():  # an earlier download (renamed into place only once verified), or a clone: check it again
        return checked(dest)
    with writing(dest.parent, "the data set's folder"):
        dest.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(dest.parent, marker=".partial")  # what a killed download left
    partial = dest.with_name(f".{dest.name}.partial{os.getpid()}")  # same file system: the rename is atomic
    try:
        partial.mkdir()
        _download(url, partial / "archive.zip", "Grocery Store Dataset")
        with zipfile.ZipFile(partial / "archive.zip") as zipped:
            zipped.extractall(partial)
        unpacked = next(p for p in partial.iterdir() if p.is_dir())
        verify_grocery(unpacked)
        os.replace(unpacked, dest)
    except (OSError, http.client.HTTPException, zipfile.BadZipFile, StopIteration) as error:
        if dest.is_dir():  # another process finished the same download first
            return checked(dest)
        if isinstance(error, OSError) and error.errno in CAUSES:  # the disk failed, not the network
            raise failed_write(dest, error, "the data set") from None
        raise FruitlibError(
            f"no data at {dest} and the download failed ({type(error).__name__}): "
            f"git clone {REPOSITORY} {dest}, or set FRUITLIB_DATA to your copy "
            "(see data/README.md)"
        ) from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return dest


def fetch_resnet(name: str, folder: Path) -> Path:
    """torchvision's ImageNet weights of ``name`` into ``folder``, checked against the hash in their file name."""
    url = resnet_weights_enum(name).url
    dest = folder / url.rsplit("/", 1)[-1]
    prefix = dest.stem.rsplit("-", 1)[-1]  # resnet50-0676ba61.pth: the first digits of its SHA-256
    if dest.is_file() and sha256(dest).startswith(prefix):
        return dest
    with writing(folder, "the weights' folder"):
        folder.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, str(dest), hash_prefix=prefix, progress=True)  # temporary file, then moved
    except (OSError, http.client.HTTPException, RuntimeError) as error:  # offline, cut short, or a hash mismatch
        dest.unlink(missing_ok=True)
        if isinstance(error, OSError) and error.errno in CAUSES:  # the disk failed, not the network
            raise failed_write(dest, error, "the weights") from None
        raise FruitlibError(f"could not fetch {url} ({type(error).__name__}: {error}): check the connection") from None
    return dest


def prepare_offline(folder: Path, data: bool, resnets: list[str]) -> list[str]:
    """Fetch the data set and/or ResNet weights into ``folder``; the environment lines that make machines use them."""
    folder = Path(folder).resolve()
    lines = []
    if data:
        root = fetch_grocery(folder / "GroceryStoreDataset")
        lines.append(f"export FRUITLIB_DATA={root}")
    for name in resnets:
        fetch_resnet(name, folder / "weights")
    if resnets:
        lines.append(f"export FRUITLIB_WEIGHTS={folder / 'weights'}")
    return lines

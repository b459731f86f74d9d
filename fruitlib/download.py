"""Fetch the default data set (Grocery Store Dataset, MIT licence) when it is missing and we are online."""
from __future__ import annotations

import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from tqdm.auto import tqdm

from .errors import FruitlibError

REPOSITORY = "https://github.com/marcusklasson/GroceryStoreDataset"
ARCHIVE = f"{REPOSITORY}/archive/refs/heads/master.zip"


def fetch_grocery(dest: Path, url: str = ARCHIVE) -> Path:
    """Download and unpack the Grocery Store Dataset into ``dest`` with a progress bar; one-line error offline."""
    try:
        with tempfile.TemporaryDirectory() as tmp:
            archive = Path(tmp) / "grocery.zip"
            with urllib.request.urlopen(url, timeout=30) as response, open(archive, "wb") as f:
                size = int(response.headers.get("Content-Length", 0)) or None
                with tqdm(total=size, unit="B", unit_scale=True, desc="Grocery Store Dataset") as bar:
                    while chunk := response.read(1 << 20):
                        f.write(chunk)
                        bar.update(len(chunk))
            with zipfile.ZipFile(archive) as zipped:
                zipped.extractall(tmp)
            unpacked = next(p for p in Path(tmp).iterdir() if p.is_dir())
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(unpacked), dest)
    except (OSError, zipfile.BadZipFile, StopIteration) as error:
        raise FruitlibError(f"no data at {dest} and the download failed ({type(error).__name__}): "
                            f"git clone {REPOSITORY} {dest}, or set FRUITLIB_DATA to your copy "
                            "(see data/README.md)") from None
    return dest

"""Shared fixtures: an isolated cache and environment, tiny generated photo sets, a tiny trained run.

Every image the tests use is generated here (PIL, a few dozen pixels), never copied into the repository.
"""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

os.environ.setdefault("MPLBACKEND", "Agg")
# Tiny tensors gain nothing from several threads, and on a busy CPU (CI, shared machines) waiting for a
# second thread makes each small operation 10x slower. Subprocesses (the CLI tests) inherit the setting.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

# Three colours far apart, so a tiny frozen network separates the classes in a couple of epochs.
COLOURS = {"apple": (205, 35, 40), "banana": (235, 215, 50), "kiwi": (60, 150, 45)}
GROCERY_HEADER = (
    "Class Name (str),Class ID (int),Coarse Class Name (str),Coarse Class ID (int),"
    "Iconic Image Path (str),Product Description Path (str)"
)
# (category, coarse name, coarse id, fine name or None, fine id)
GROCERY_CLASSES = [
    ("Fruit", "Apple", 0, "Golden-Delicious", 0),
    ("Fruit", "Apple", 0, "Granny-Smith", 1),
    ("Fruit", "Banana", 1, None, 2),
    ("Fruit", "Kiwi", 2, None, 3),
    ("Vegetables", "Carrot", 3, None, 4),
    ("Vegetables", "Potato", 4, None, 5),
]
GROCERY_COLOURS = {
    "Golden-Delicious": (230, 200, 60),
    "Granny-Smith": (120, 200, 60),
    "Banana": (240, 230, 40),
    "Kiwi": (90, 70, 40),
    "Carrot": (240, 120, 20),
    "Potato": (180, 150, 110),
}
GROCERY_COUNTS = {"train": 4, "val": 2}
MISSING_LISTED = "train/Fruit/Kiwi/Kiwi_099.jpg"  # listed in train.txt, not on disk


def make_photo(
    path: Path, colour: tuple[int, int, int], seed: int, size: tuple[int, int] = (40, 30), fmt: str | None = None
) -> Path:
    """A ``size`` (width, height) photo of one colour with Gaussian noise, saved as JPEG unless ``fmt`` says."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour, float) + rng.normal(0, 18, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format=fmt, quality=92)
    return path


def make_folder_data(root: Path, per_class: int = 6) -> Path:
    for c, (name, colour) in enumerate(COLOURS.items()):
        for i in range(per_class):
            make_photo(root / name / f"{name}_{i:02d}.jpg", colour, seed=100 * c + i)
    return root


def make_grocery_data(root: Path, counts: dict[str, int] = GROCERY_COUNTS) -> Path:
    """A Grocery Store Dataset clone in miniature: classes.csv, train.txt, val.txt (and test.txt if ``counts`` says)."""
    base = root / "dataset"
    base.mkdir(parents=True)
    rows = [GROCERY_HEADER]
    listings = {split: [] for split in counts}
    for category, coarse, coarse_id, fine, fine_id in GROCERY_CLASSES:
        name = fine or coarse
        folder = f"{category}/{coarse}/{fine}" if fine else f"{category}/{coarse}"
        rows.append(
            f"{name},{fine_id},{coarse},{coarse_id},/iconic-images-and-descriptions/{folder}/{name}_Iconic.jpg,"
            f"/iconic-images-and-descriptions/{folder}/{name}_Description.txt"
        )
        for split, n in counts.items():
            for i in range(1, n + 1):
                relative = f"{split}/{folder}/{name}_{i:03d}.jpg"
                offset = {"train": 0, "val": 50, "test": 80}[split]
                make_photo(base / relative, GROCERY_COLOURS[name], seed=10 * fine_id + i + offset)
                listings[split].append(f"{relative}, {fine_id}, {coarse_id}")
    listings["train"].append(f"{MISSING_LISTED}, 3, 2")
    (base / "classes.csv").write_text("\n".join(rows) + "\n")
    for split, lines in listings.items():
        (base / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(autouse=True)
def isolated(tmp_path_factory, monkeypatch):
    """Point every cache at a fresh temporary folder, clear the data/weights variables, forbid downloads."""
    cache = tmp_path_factory.mktemp("fruitlib-cache")
    monkeypatch.setenv("FRUITLIB_CACHE", str(cache))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch-home")))  # no user hub checkpoints
    monkeypatch.delenv("FRUITLIB_DATA", raising=False)
    monkeypatch.delenv("FRUITLIB_WEIGHTS", raising=False)
    base = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("XDG_DATA_HOME", str(base / "xdg-data"))  # platformdirs' user folders, never the real ones
    monkeypatch.setenv("XDG_CACHE_HOME", str(base / "xdg-cache"))
    calls = []

    def offline(url, *args, **kwargs):
        url = getattr(url, "full_url", url)  # urlopen may get a Request
        calls.append(url)
        raise OSError(f"tests are offline: refusing to download {url}")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    monkeypatch.setattr(urllib.request, "urlopen", offline)  # e.g. fruitlib.download, even when CI is online
    return {"cache": cache, "download_attempts": calls}


@pytest.fixture
def folder_data(tmp_path) -> Path:
    """3 classes x 6 noisy 40x30 JPEGs, one sub-folder per class."""
    return make_folder_data(tmp_path / "fruit")


@pytest.fixture
def grocery_data(tmp_path) -> Path:
    """A miniature Grocery Store clone: 4 fruit varieties (3 coarse classes), 2 vegetables, train+val only."""
    return make_grocery_data(tmp_path / "GroceryStoreDataset")


@pytest.fixture
def grocery_data_with_test(tmp_path) -> Path:
    """The miniature Grocery Store clone with a test split too (3 photos per variety)."""
    return make_grocery_data(tmp_path / "GroceryStoreDataset", GROCERY_COUNTS | {"test": 3})


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """One tiny training run (EfficientNet-Lite0, 32 px, 2 epochs) shared read-only by several tests.

    Returns (run folder, data folder). Copy the run folder before changing anything in it.
    """
    from fruitlib.run import RunConfig, train_run

    base = tmp_path_factory.mktemp("tiny-run")
    data = make_folder_data(base / "fruit")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FRUITLIB_CACHE", str(base / "cache"))
        mp.delenv("FRUITLIB_DATA", raising=False)
        mp.delenv("FRUITLIB_WEIGHTS", raising=False)
        cfg = RunConfig(
            data=str(data),
            out=str(base / "run"),
            backbone="efficientnet_lite0",
            epochs=2,
            image_size=32,
            batch_size=8,
            views=1,
            device="cpu",
        )
        train_run(cfg, progress=False)
    return base / "run", data


def one_line(message: str) -> bool:
    return bool(message.strip()) and "\n" not in message.strip() and "Traceback" not in message

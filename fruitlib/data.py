"""Find a fruit data set, list its photos, split them, and turn photos into tensors.

Two layouts are understood:

* a **Grocery Store Dataset** clone (``dataset/train.txt`` ...): its official splits are used;
* a **folder-per-class** root (``root/<class>/**/<image>``): split stratified and seeded.

Listing and splitting never decode an image; decoding happens once, in :mod:`fruitlib.cache`.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageOps
from sklearn.model_selection import train_test_split
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from .config import CATEGORIES, LABELS
from .errors import FruitlibError
from .files import checkout

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
DEFAULT_DATA = Path("data") / "GroceryStoreDataset"


def download_folder() -> Path:
    """Where the default data set is downloaded: the checkout's ``data/``, else the user's data folder."""
    import platformdirs

    home = checkout()
    return home / DEFAULT_DATA if home else platformdirs.user_data_path("fruitlib") / DEFAULT_DATA.name


@dataclass
class Catalog:
    """The photos of a data set: one row per image, with its class and split."""

    root: Path
    layout: str  # "grocery" or "folders"
    classes: list[str]
    table: pd.DataFrame  # columns: path, class_name, label, split
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    def has(self, name: str) -> bool:
        """Whether the split ``name`` has any photos (a Grocery Store copy may lack ``test``)."""
        return bool((self.table["split"] == name).any())

    def split(self, name: str) -> pd.DataFrame:
        """The rows of one split (``train``, ``val`` or ``test``), or every row (``all``)."""
        rows = self.table if name == "all" else self.table[self.table["split"] == name]
        if rows.empty:
            have = sorted(set(self.table["split"]) - {""})
            raise FruitlibError(f"split '{name}' has no images in {self.root}; available: {', '.join(have)}")
        return rows.reset_index(drop=True)


def find_data(path: str | os.PathLike | None = None) -> Path:
    """Locate the data: an explicit path, else ``$FRUITLIB_DATA``, else ``data/GroceryStoreDataset``.

    A relative path is tried from the working directory, then from the checkout's root: notebooks run in
    ``notebooks/``, while ``FRUITLIB_DATA=../shared/... make test`` was typed in the root. A missing default data
    set is downloaded when online (:mod:`fruitlib.download`) into :func:`download_folder`.
    """
    home = checkout()
    if path is not None or os.environ.get("FRUITLIB_DATA"):
        where = Path(path if path is not None else os.environ["FRUITLIB_DATA"]).expanduser()
        how = "the path given" if path is not None else "FRUITLIB_DATA"
        for candidate in (where, *([home / where] if home else [])):
            if candidate.is_dir():
                return candidate.resolve()
        raise FruitlibError(f"data folder {where} ({how}) does not exist: fix the path, or see data/README.md")
    for where in (Path.cwd() / DEFAULT_DATA, Path.cwd().parent / DEFAULT_DATA, download_folder()):
        if where.is_dir():
            return where.resolve()
    from .download import fetch_grocery

    return fetch_grocery(download_folder())


def scan(root: str | os.PathLike, labels: str = "coarse", category: str = "Fruit", min_classes: int = 2) -> Catalog:
    """List the images under ``root`` (either layout) without decoding them; training needs ``min_classes`` 2,
    scoring new photos needs one class (:func:`relabel` numbers them as the model does)."""
    root = Path(root)
    if not root.is_dir():
        raise FruitlibError(f"data folder {root} does not exist: pass an existing folder, or see data/README.md")
    for base in (root, root / "dataset"):
        if (base / "train.txt").is_file() and (base / "classes.csv").is_file():
            return _with_labels(_scan_grocery(root, base, labels, category), min_classes)
    return _with_labels(_scan_folders(root), min_classes)


def _scan_grocery(root: Path, base: Path, labels: str, category: str) -> Catalog:
    if labels not in LABELS:
        raise FruitlibError(f"labels must be 'coarse' or 'fine', not '{labels}'")
    if category not in CATEGORIES:
        raise FruitlibError(f"category must be one of {', '.join(CATEGORIES)}, not '{category}'")
    names = pd.read_csv(base / "classes.csv")
    fine = dict(zip(names.iloc[:, 1], names.iloc[:, 0]))
    coarse = dict(zip(names.iloc[:, 3], names.iloc[:, 2]))
    rows, skipped = [], []
    for split in ("train", "val", "test"):
        listing = base / f"{split}.txt"
        if not listing.is_file():
            continue
        for line in listing.read_text().splitlines():
            parts = [p.strip() for p in line.split(",")]
            if len(parts) != 3 or Path(parts[0]).parts[1:2] != (category,):
                continue
            path = base / parts[0]
            if not path.is_file():
                skipped.append((str(path), f"listed in {split}.txt but missing"))
                continue
            name = fine[int(parts[1])] if labels == "fine" else coarse[int(parts[2])]
            rows.append((str(path), name, split))
    if not rows:
        raise FruitlibError(f"no {category} images found in {root}: is it a complete clone? See data/README.md")
    return Catalog(root, "grocery", [], pd.DataFrame(rows, columns=["path", "class_name", "split"]), skipped)


def _scan_folders(root: Path) -> Catalog:
    rows, skipped = [], []
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    for class_dir in class_dirs:
        found = 0
        for path in sorted(class_dir.rglob("*")):
            if not path.is_file():
                continue
            if any(p.startswith(".") for p in path.relative_to(root).parts):
                skipped.append((str(path), "hidden file"))
                continue
            if path.suffix.lower() not in IMAGE_EXTENSIONS:
                skipped.append((str(path), "not an image file"))
                continue
            rows.append((str(path), class_dir.name, ""))
            found += 1
        if not found:
            skipped.append((str(class_dir), "class folder has no images"))
    if not rows:
        raise FruitlibError(f"no images found in {root}: expected one sub-folder of photos per class")
    return Catalog(root, "folders", [], pd.DataFrame(rows, columns=["path", "class_name", "split"]), skipped)


def _with_labels(catalog: Catalog, min_classes: int = 2) -> Catalog:
    """Number the classes alphabetically; a data set to train on needs two classes or more."""
    classes = sorted(catalog.table["class_name"].unique())
    if len(classes) < min_classes:
        raise FruitlibError(f"{catalog.root} has {len(classes)} class with images; a classifier needs at least 2")
    return relabel(replace(catalog, classes=classes), classes)


def relabel(catalog: Catalog, classes: list[str]) -> Catalog:
    """Number the photos' classes as in ``classes`` (a model's); a class not among them is a one-line error."""
    unknown = sorted(set(map(str, catalog.table["class_name"])) - set(classes))
    if unknown:
        raise FruitlibError(
            f"{catalog.root} has classes the model does not know: {', '.join(unknown)}; it knows "
            f"{', '.join(classes)}: rename those folders or leave them out"
        )
    table = catalog.table.assign(label=catalog.table["class_name"].map({c: i for i, c in enumerate(classes)}))
    return replace(catalog, classes=list(classes), table=table[["path", "class_name", "label", "split"]])


def make_splits(catalog: Catalog, val_fraction: float = 0.2, seed: int = 0) -> Catalog:
    """Official splits for a Grocery Store clone; a stratified, seeded split for folders.

    Classes with fewer than two photos cannot be split: they are dropped and listed in ``skipped``.
    """
    if catalog.layout == "grocery":
        return catalog
    counts = catalog.table["class_name"].value_counts()
    tiny = sorted(counts[counts < 2].index)
    table = catalog.table[~catalog.table["class_name"].isin(tiny)].reset_index(drop=True)
    skipped = catalog.skipped + [(c, "class has fewer than 2 images, too small to split") for c in tiny]
    if table["class_name"].nunique() < 2:
        raise FruitlibError(f"{catalog.root} needs at least 2 classes with 2 or more images each to split")
    n_classes = table["class_name"].nunique()
    n_val = max(n_classes, round(val_fraction * len(table)))
    if n_val >= len(table) - n_classes + 1:
        raise FruitlibError(f"{len(table)} images are too few to split {n_classes} classes: add photos")
    train_idx, _ = train_test_split(table.index, test_size=n_val, random_state=seed, stratify=table["label"])
    table["split"] = np.where(table.index.isin(train_idx), "train", "val")
    for _, rows in table.groupby("label"):  # sklearn can leave a small class beside big ones on one side only
        if rows["split"].nunique() == 1:
            table.loc[rows.index[seed % len(rows)], "split"] = "val" if rows["split"].iloc[0] == "train" else "train"
    return _with_labels(replace(catalog, table=table, skipped=skipped))


def limit_per_class(catalog: Catalog, per_class: int, seed: int = 0) -> Catalog:
    """Keep at most ``per_class`` training photos of each class (a seeded sample); other splits unchanged."""
    train = catalog.table[catalog.table["split"] == "train"]
    kept = train.sample(frac=1.0, random_state=seed).groupby("label").head(per_class)
    table = catalog.table[(catalog.table["split"] != "train") | catalog.table.index.isin(kept.index)]
    return replace(catalog, table=table.reset_index(drop=True))


def listing_digest(catalog: Catalog) -> str:
    """What a run's photos are: each one's path, class, split, size, modification and change times, hashed, as the
    cache keys decoded photos; a photo replaced, added or removed gives another digest (its pixels are not read)."""
    hasher = hashlib.sha1()
    for path, label, split in catalog.table[["path", "label", "split"]].itertuples(index=False):
        stat = os.stat(path)
        hasher.update(f"{path}|{label}|{split}|{stat.st_size}|{stat.st_mtime_ns}|{stat.st_ctime_ns}\n".encode())
    return hasher.hexdigest()[:16]


def write_manifest(catalog: Catalog, path: str | os.PathLike) -> Path:
    """Write the split as CSV (paths relative to the data root) so a run can be repeated exactly."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = catalog.table.assign(path=[os.path.relpath(p, catalog.root) for p in catalog.table["path"]])
    table.to_csv(path, index=False)
    return path


def read_manifest(path: str | os.PathLike, root: Path, classes: list[str]) -> Catalog:
    """The split written by :func:`write_manifest`, read back against ``root``; photos gone from it are an error."""
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)[["path", "class_name", "split"]]
    except (OSError, ValueError, KeyError) as error:  # missing, truncated, or not a split file
        raise FruitlibError(
            f"{path} cannot be read as a run's split ({type(error).__name__}): train the run anew (--overwrite)"
        ) from None
    table["path"] = [str(root / p) for p in table["path"]]
    missing = [p for p in table["path"] if not os.path.isfile(p)]
    if missing:
        raise FruitlibError(
            f"the data no longer match the run's split: {len(missing)} of its {len(table)} photos are "
            f"not in {root} (e.g. {missing[0]}); resume with the data it was trained on, or train anew"
        )
    layout = "grocery" if (root / "dataset" / "train.txt").is_file() or (root / "train.txt").is_file() else "folders"
    return relabel(Catalog(root, layout, [], table), classes)


def skipped_summary(skipped: list[tuple[str, str]]) -> str:
    """One line per reason, with a count and the first example."""
    by_reason: dict[str, list[str]] = {}
    for path, reason in skipped:
        by_reason.setdefault(reason, []).append(path)
    return "\n".join(f"skipped {len(p)} ({reason}), e.g. {p[0]}" for reason, p in by_reason.items())


# ----------------------------------------------------------------------------- decoding and datasets


def stored_size(image_size: int) -> int:
    """Side of the square kept per photo: a margin of 8/7 around the crop, as in Resize(256)+Crop(224)."""
    return round(image_size * 8 / 7)


def to_rgb(image: Image.Image) -> Image.Image:
    """Grey, palette, RGBA, CMYK and 16-bit images as 8-bit RGB (transparency onto white)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # 16 bits per pixel (0-65535), float in 0-1
        array = np.asarray(image, dtype=np.float64)
        scale = 255.0 if image.mode == "F" else 1 / 257  # the same brightness whatever the photo's own maximum
        image = Image.fromarray(np.clip(np.rint(array * scale), 0, 255).astype(np.uint8))
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA"):
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        return background
    return image.convert("RGB")


def decode(path: str | os.PathLike, size: int) -> torch.Tensor:
    """Read one photo as a ``3 x size x size`` uint8 tensor: EXIF-rotated, shorter side resized, centre-cropped.

    Raises ``OSError``/``ValueError``/``Image.DecompressionBombError`` for files that are not usable images.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked below, the same in every thread
        with Image.open(path) as image:
            limit = Image.MAX_IMAGE_PIXELS
            if limit and image.width * image.height > limit:
                raise Image.DecompressionBombError(f"{image.width}x{image.height} pixels, over PIL's limit of {limit}")
            image.draft("RGB", (size, size))  # JPEG: decode at a reduced scale when it is big enough
            image = to_rgb(ImageOps.exif_transpose(image))
    image = ImageOps.fit(image, (size, size), Image.Resampling.BILINEAR)
    return torch.from_numpy(np.array(image)).permute(2, 0, 1)  # channels-last: what OpenCV reads as is


class PhotoDataset(Dataset):
    """Labelled uint8 photos, seen through a view (:mod:`fruitlib.augment`) when one is given.

    ``dataset[i]`` is one photo as the network sees it and its label; ``dataset[[i, j, ...]]`` a whole batch,
    made faster (the view's colour and normalisation step runs once per batch): :func:`make_loader` does so.
    """

    def __init__(self, labels: torch.Tensor, view=None):
        self.labels, self.view = labels, view

    def __len__(self) -> int:
        return len(self.labels)

    def photo(self, i: int) -> torch.Tensor:
        raise NotImplementedError

    def __getitem__(self, index: int | list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(index, list):
            images = [self.photo(i) for i in index]
            return (self.view.batch(images) if self.view else torch.stack(images)), self.labels[index]
        image = self.photo(index)
        return (self.view(image) if self.view else image), self.labels[index]


class ImageTensorDataset(PhotoDataset):
    """Decoded photos held in memory (``N x 3 x S x S`` uint8)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, view=None):
        super().__init__(labels, view)
        self.images = images

    def photo(self, i: int) -> torch.Tensor:
        return self.images[i]


class ImagePathDataset(PhotoDataset):
    """Photos decoded from disk on every access, as the article does, kept to measure what caching saves."""

    def __init__(self, paths: list[str], labels: torch.Tensor, size: int, view=None):
        super().__init__(labels, view)
        self.paths, self.size = paths, size

    def photo(self, i: int) -> torch.Tensor:
        return decode(self.paths[i], self.size)


def make_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    sampler: Iterable[int] | None = None,
    **kwargs,
) -> DataLoader:
    """A ``DataLoader`` over ``dataset``; a :class:`PhotoDataset` is fetched a whole batch at a time.

    The batches, their order and their shuffling are those of ``DataLoader(dataset, batch_size, shuffle, ...)``;
    a ``sampler`` (the photos' order, e.g. one process's share of them) replaces ``shuffle``.
    """
    if not isinstance(dataset, PhotoDataset):
        return DataLoader(
            dataset, batch_size, shuffle if sampler is None else False, sampler, generator=generator, **kwargs
        )
    order = (
        sampler
        if sampler is not None
        else RandomSampler(dataset, generator=generator)
        if shuffle
        else SequentialSampler(dataset)
    )
    return DataLoader(
        dataset,
        sampler=BatchSampler(order, batch_size, drop_last=False),
        batch_size=None,
        generator=generator,
        **kwargs,
    )  # the generator also seeds workers, as in a DataLoader

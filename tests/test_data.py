"""fruitlib.data: finding and listing photos, both layouts, splits, decoding and transforms."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import PIL.Image
import pytest
import torch
from conftest import COLOURS, MISSING_LISTED, make_photo, one_line
from PIL import Image

from fruitlib import FruitlibError, data, files
from fruitlib.data import decode, find_data, make_splits, scan, write_manifest

# ----------------------------------------------------------------------------- folder-per-class layout


def test_scan_folders_lists_every_photo_with_alphabetical_labels(folder_data):
    catalog = scan(folder_data)
    assert catalog.layout == "folders"
    assert catalog.classes == sorted(COLOURS)
    assert len(catalog.table) == 18
    assert list(catalog.table.columns) == ["path", "class_name", "label", "split"]
    for label, name in enumerate(catalog.classes):
        rows = catalog.table[catalog.table["class_name"] == name]
        assert len(rows) == 6 and set(rows["label"]) == {label}
    assert all(Path(p).is_file() for p in catalog.table["path"])
    assert catalog.skipped == []


def test_hidden_and_non_image_files_are_skipped_with_a_reason(folder_data):
    (folder_data / "apple" / "notes.txt").write_text("not a photo")
    (folder_data / "apple" / ".DS_Store").write_bytes(b"\0\1\2")
    make_photo(folder_data / "kiwi" / ".ipynb_checkpoints" / "kiwi_00-checkpoint.jpg", COLOURS["kiwi"], 1)
    make_photo(folder_data / ".hidden_class" / "x.jpg", COLOURS["kiwi"], 2)  # a hidden folder is not a class
    catalog = scan(folder_data)
    assert len(catalog.table) == 18 and catalog.classes == sorted(COLOURS)
    listed = set(catalog.table["path"])
    assert not any("/." in p or "notes.txt" in p for p in listed)
    reasons = {Path(p).name: reason for p, reason in catalog.skipped}
    assert reasons["notes.txt"] == "not an image file"
    assert "hidden" in reasons[".DS_Store"]
    assert "hidden" in reasons["kiwi_00-checkpoint.jpg"]


def test_empty_class_folder_is_skipped(folder_data):
    (folder_data / "durian").mkdir()
    catalog = scan(folder_data)
    assert "durian" not in catalog.classes
    assert (str(folder_data / "durian"), "class folder has no images") in catalog.skipped


def test_class_too_small_to_split_is_dropped_with_a_reason(folder_data):
    make_photo(folder_data / "lonely" / "only.jpg", (10, 10, 200), 7)
    catalog = scan(folder_data)
    assert "lonely" in catalog.classes
    split = make_splits(catalog, seed=0)
    assert split.classes == sorted(COLOURS)  # relabelled 0..2 without the dropped class
    assert sorted(split.table["label"].unique()) == [0, 1, 2]
    assert "lonely" not in set(split.table["class_name"])
    [(what, reason)] = [s for s in split.skipped if s[0] == "lonely"]
    assert "fewer than 2" in reason


@pytest.mark.parametrize("how", ["scan", "find_data"])
def test_missing_folder_is_a_one_line_error(tmp_path, how):
    missing = tmp_path / "no-such-folder"
    with pytest.raises(FruitlibError) as error:
        scan(missing) if how == "scan" else find_data(missing)
    assert one_line(str(error.value)) and str(missing) in str(error.value)


def test_missing_folder_from_environment_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv("FRUITLIB_DATA", str(tmp_path / "gone"))
    with pytest.raises(FruitlibError, match="FRUITLIB_DATA") as error:
        find_data()
    assert one_line(str(error.value))


def test_find_data_prefers_explicit_path_then_environment(tmp_path, folder_data, monkeypatch):
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.setenv("FRUITLIB_DATA", str(other))
    assert find_data() == other.resolve()
    assert find_data(folder_data) == folder_data.resolve()


def test_no_data_anywhere_offline_is_a_one_line_error(tmp_path, monkeypatch, isolated):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(files, "PROJECT_ROOT", tmp_path)
    with pytest.raises(FruitlibError) as error:
        find_data()  # tries to download the default data set: refused by the offline fixture
    assert one_line(str(error.value)) and "FRUITLIB_DATA" in str(error.value)
    assert isolated["download_attempts"], "the download was not even tried"


def test_default_data_folder_is_found_from_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "data" / "GroceryStoreDataset").mkdir(parents=True)
    (tmp_path / "notebooks").mkdir()
    monkeypatch.setattr(files, "PROJECT_ROOT", tmp_path / "elsewhere")
    monkeypatch.chdir(tmp_path / "notebooks")  # notebooks run in notebooks/: the data is one level up
    assert find_data() == (tmp_path / "data" / "GroceryStoreDataset").resolve()


@pytest.mark.parametrize("content", ["nothing", "only-empty-classes", "only-text"])
def test_folder_without_images_is_a_one_line_error(tmp_path, content):
    root = tmp_path / "empty"
    root.mkdir()
    if content == "only-empty-classes":
        (root / "apple").mkdir()
        (root / "banana").mkdir()
    elif content == "only-text":
        (root / "apple").mkdir()
        (root / "apple" / "readme.txt").write_text("hi")
    with pytest.raises(FruitlibError) as error:
        scan(root)
    assert one_line(str(error.value)) and str(root) in str(error.value)


def test_a_single_class_is_an_error(tmp_path):
    for i in range(3):
        make_photo(tmp_path / "only" / "apple" / f"{i}.jpg", COLOURS["apple"], i)
    with pytest.raises(FruitlibError, match="at least 2"):
        scan(tmp_path / "only")


def test_new_photos_of_one_class_are_numbered_as_the_model_numbers_its_classes(tmp_path):
    from fruitlib.data import relabel

    for i in range(3):
        make_photo(tmp_path / "new" / "kiwi" / f"{i}.jpg", COLOURS["kiwi"], i)
    catalog = relabel(scan(tmp_path / "new", min_classes=1), ["apple", "banana", "kiwi"])
    assert catalog.classes == ["apple", "banana", "kiwi"] and catalog.split("all")["label"].tolist() == [2, 2, 2]
    with pytest.raises(FruitlibError, match="does not know: kiwi; it knows apple, banana") as error:
        relabel(catalog, ["apple", "banana"])
    assert one_line(str(error.value))


# ----------------------------------------------------------------------------- Grocery Store layout


def test_grocery_coarse_labels_official_splits_and_vegetables_filtered(grocery_data):
    catalog = scan(grocery_data)
    assert catalog.layout == "grocery"
    assert catalog.classes == ["Apple", "Banana", "Kiwi"]
    counts = catalog.table.groupby(["split", "class_name"]).size().to_dict()
    assert counts == {
        ("train", "Apple"): 8,
        ("train", "Banana"): 4,
        ("train", "Kiwi"): 4,
        ("val", "Apple"): 4,
        ("val", "Banana"): 2,
        ("val", "Kiwi"): 2,
    }
    assert not catalog.table["path"].str.contains("Vegetables").any()
    assert all(Path(p).is_file() for p in catalog.table["path"])
    apples = catalog.table[catalog.table["path"].str.contains("Granny-Smith")]
    assert set(apples["class_name"]) == {"Apple"} and set(apples["label"]) == {0}


def test_grocery_fine_labels(grocery_data):
    catalog = scan(grocery_data, labels="fine")
    assert catalog.classes == ["Banana", "Golden-Delicious", "Granny-Smith", "Kiwi"]
    granny = catalog.table[catalog.table["class_name"] == "Granny-Smith"]
    assert len(granny) == 6 and granny["path"].str.contains("/Granny-Smith/").all()
    assert set(granny["label"]) == {2}


def test_grocery_category_selection(grocery_data):
    catalog = scan(grocery_data, category="Vegetables")
    assert catalog.classes == ["Carrot", "Potato"]
    assert catalog.table["path"].str.contains("/Vegetables/").all()
    with pytest.raises(FruitlibError, match="no Packages images"):
        scan(grocery_data, category="Packages")
    with pytest.raises(FruitlibError, match="category"):
        scan(grocery_data, category="Meat")
    with pytest.raises(FruitlibError, match="labels"):
        scan(grocery_data, labels="medium")


def test_grocery_official_splits_kept_and_no_test_split(grocery_data):
    catalog = scan(grocery_data)
    assert make_splits(catalog, seed=5) is catalog  # official splits: never re-split
    assert len(catalog.split("train")) == 16 and len(catalog.split("val")) == 8
    with pytest.raises(FruitlibError, match="available: train, val") as error:
        catalog.split("test")
    assert one_line(str(error.value))


def test_grocery_missing_listed_file_is_reported_in_skipped(grocery_data):
    catalog = scan(grocery_data)
    missing = str(grocery_data / "dataset" / MISSING_LISTED)
    assert (missing, "listed in train.txt but missing") in catalog.skipped
    assert missing not in set(catalog.table["path"])


def test_grocery_found_from_root_or_dataset_folder(grocery_data):
    a, b = scan(grocery_data), scan(grocery_data / "dataset")
    assert a.layout == b.layout == "grocery"
    assert a.table["path"].tolist() == b.table["path"].tolist()


# ----------------------------------------------------------------------------- splits


def split_of(catalog) -> dict[str, str]:
    return dict(zip(catalog.table["path"], catalog.table["split"]))


def test_split_is_stratified_and_complete(folder_data):
    catalog = make_splits(scan(folder_data), val_fraction=0.25, seed=0)
    assert set(catalog.table["split"]) == {"train", "val"}
    assert len(catalog.table) == 18
    for name in catalog.classes:
        splits = catalog.table.loc[catalog.table["class_name"] == name, "split"]
        assert (splits == "train").sum() >= 1 and (splits == "val").sum() >= 1, name
    val = catalog.split("val")
    assert len(val) == round(0.25 * 18)
    assert set(val["path"]).isdisjoint(catalog.split("train")["path"])


def test_split_keeps_small_classes_on_both_sides_beside_big_ones(tmp_path):
    for name, n in (("fig", 2), ("lime", 3), ("melon", 12)):  # sklearn alone gives "fig" no validation photo
        for i in range(n):
            make_photo(tmp_path / "d" / name / f"{i}.jpg", COLOURS["apple"], i)
    catalog = scan(tmp_path / "d")
    for seed in range(3):
        split = make_splits(catalog, seed=seed)
        sides = split.table.groupby("class_name")["split"].apply(set).to_dict()
        assert sides == {"fig": {"train", "val"}, "lime": {"train", "val"}, "melon": {"train", "val"}}, seed
        assert split_of(split) == split_of(make_splits(catalog, seed=seed))


def test_split_is_seeded(folder_data):
    catalog = scan(folder_data)
    first, again = make_splits(catalog, seed=0), make_splits(catalog, seed=0)
    assert split_of(first) == split_of(again)
    assert split_of(make_splits(catalog, seed=1)) != split_of(first)


def test_split_never_decodes_an_image(folder_data, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("listing or splitting must not open an image")

    monkeypatch.setattr(data, "decode", forbidden)
    monkeypatch.setattr(PIL.Image, "open", forbidden)
    catalog = make_splits(scan(folder_data), seed=0)
    write_manifest(catalog, folder_data.parent / "split.csv")
    assert set(catalog.table["split"]) == {"train", "val"}


def test_too_few_images_to_split_is_an_error(tmp_path):
    for name in ("a", "b"):
        for i in range(2):
            make_photo(tmp_path / "d" / name / f"{i}.jpg", COLOURS["apple"], i)
    catalog = scan(tmp_path / "d")
    split = make_splits(catalog, val_fraction=0.5)
    assert (split.table["split"] == "val").sum() == 2
    with pytest.raises(FruitlibError, match="too few"):
        make_splits(catalog, val_fraction=0.9)


def test_limit_per_class_caps_training_photos_only(folder_data):
    catalog = make_splits(scan(folder_data), seed=0)
    limited = data.limit_per_class(catalog, 2, seed=0)
    train = limited.split("train")
    assert train.groupby("class_name").size().to_dict() == {name: 2 for name in COLOURS}
    assert limited.split("val")["path"].tolist() == catalog.split("val")["path"].tolist()
    assert set(train["path"]) <= set(catalog.split("train")["path"])
    again, other = data.limit_per_class(catalog, 2, seed=0), data.limit_per_class(catalog, 2, seed=1)
    assert again.split("train")["path"].tolist() == train["path"].tolist()
    assert set(other.split("train")["path"]) != set(train["path"])


def test_manifest_has_relative_paths(folder_data, tmp_path):
    catalog = make_splits(scan(folder_data), seed=3)
    path = write_manifest(catalog, tmp_path / "run" / "split.csv")
    manifest = pd.read_csv(path)
    assert list(manifest.columns) == ["path", "class_name", "label", "split"]
    assert len(manifest) == 18
    assert not any(os.path.isabs(p) for p in manifest["path"])
    assert all((folder_data / p).is_file() for p in manifest["path"])
    assert manifest["split"].tolist() == catalog.table["split"].tolist()
    assert manifest["path"].iloc[0].split(os.sep)[0] in COLOURS


def test_skipped_summary_groups_reasons():
    summary = data.skipped_summary(
        [
            ("a.txt", "not an image file"),
            ("b.txt", "not an image file"),
            ("c.jpg", "unreadable or truncated image (OSError)"),
        ]
    )
    assert summary.splitlines() == [
        "skipped 2 (not an image file), e.g. a.txt",
        "skipped 1 (unreadable or truncated image (OSError)), e.g. c.jpg",
    ]


# ----------------------------------------------------------------------------- decoding


def rgb_of(tensor: torch.Tensor) -> np.ndarray:
    return tensor.float().mean(dim=(1, 2)).numpy()


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "I;16", "LA", "RGB"])
def test_every_mode_decodes_to_three_channel_uint8(tmp_path, mode):
    if mode == "I;16":
        image = Image.fromarray(np.full((30, 40), 40000, dtype=np.uint16))
        image = image if image.mode.startswith("I") else image.convert("I;16")
    elif mode == "CMYK":
        image = Image.new("RGB", (40, 30), (200, 40, 40)).convert("CMYK")
    else:
        image = Image.new("RGB", (40, 30), (200, 40, 40)).convert(mode)
    path = tmp_path / ("photo.jpg" if mode in ("CMYK", "L", "RGB") else "photo.png")
    image.save(path)
    with Image.open(path) as check:
        assert check.mode == mode or (mode == "I;16" and check.mode.startswith("I"))
    tensor = decode(path, 16)
    assert tensor.shape == (3, 16, 16) and tensor.dtype == torch.uint8
    if mode in ("RGB", "RGBA", "P", "CMYK"):
        assert np.allclose(rgb_of(tensor), (200, 40, 40), atol=12)
    elif mode == "I;16":  # 40000 of 65535: a light grey, never clipped or wrapped dark
        assert (tensor == tensor[0]).all() and tensor.min() > 100
    else:
        grey = rgb_of(tensor)
        assert np.allclose(grey, grey[0], atol=1) and 60 < grey[0] < 130


def test_sixteen_bit_keeps_its_contrast(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 40).astype(np.uint16), (40, 1))
    Image.fromarray(ramp).save(tmp_path / "ramp.png")
    tensor = decode(tmp_path / "ramp.png", 40)
    assert tensor[0, :, 0].max() < 10 and tensor[0, :, -1].min() > 245


def test_a_dark_sixteen_bit_photo_stays_dark(tmp_path):
    Image.fromarray(np.full((30, 40), 1000, dtype=np.uint16)).save(tmp_path / "dark.png")  # 1000 of 65535
    assert decode(tmp_path / "dark.png", 16).unique().tolist() == [4]  # 1000 / 257, not stretched to white


def test_transparency_goes_onto_white(tmp_path):
    Image.new("RGBA", (20, 20), (255, 0, 0, 0)).save(tmp_path / "clear.png")
    assert (decode(tmp_path / "clear.png", 8) == 255).all()


def two_colour(width: int, height: int, left=(220, 20, 20), right=(20, 20, 220)) -> Image.Image:
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:, : width // 2] = left
    pixels[:, width // 2 :] = right
    return Image.fromarray(pixels)


def test_exif_orientation_is_applied(tmp_path):
    image = two_colour(40, 20)  # red left half, blue right half
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the camera was turned; show rotated 90 degrees clockwise
    image.save(tmp_path / "tagged.jpg", exif=exif, quality=95)
    image.save(tmp_path / "plain.jpg", quality=95)
    image.transpose(Image.Transpose.ROTATE_270).save(tmp_path / "rotated.jpg", quality=95)  # by hand
    tagged, plain, rotated = (decode(tmp_path / f"{n}.jpg", 16).float() for n in ("tagged", "plain", "rotated"))
    assert (tagged - rotated).abs().mean() < 4
    assert (tagged - plain).abs().mean() > 40
    # turned clockwise, the left (red) half ends on top
    assert tagged[0, :4].mean() > 150 and tagged[2, :4].mean() < 80
    assert tagged[2, -4:].mean() > 150 and tagged[0, -4:].mean() < 80


def test_aspect_ratio_is_kept_and_the_centre_cropped(tmp_path):
    pixels = np.zeros((40, 80, 3), np.uint8)
    pixels[:, :] = (20, 20, 220)  # blue margins, 20 px on each side
    pixels[:, 20:60] = (220, 20, 20)  # the red 40 x 40 middle
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    tensor = decode(tmp_path / "wide.png", 16)
    assert tensor.shape == (3, 16, 16)
    assert tensor[0].min() > 180 and tensor[2].max() < 80  # only the red middle: no squashing, no blue


def test_decode_reduces_large_jpeg_and_keeps_size(tmp_path):
    make_photo(tmp_path / "big.jpg", (10, 200, 10), 1, size=(640, 480))
    tensor = decode(tmp_path / "big.jpg", 36)
    assert tensor.shape == (3, 36, 36)
    assert np.allclose(rgb_of(tensor), (10, 200, 10), atol=12)


@pytest.mark.parametrize("kind", ["random-bytes", "truncated", "empty", "text"])
def test_bad_files_raise_the_documented_errors(tmp_path, kind):
    path = tmp_path / "bad.jpg"
    if kind == "random-bytes":
        path.write_bytes(np.random.default_rng(0).bytes(3000))
    elif kind == "truncated":
        make_photo(tmp_path / "good.jpg", (200, 40, 40), 1, size=(200, 150))
        whole = (tmp_path / "good.jpg").read_bytes()
        path.write_bytes(whole[: len(whole) // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    else:
        path.write_text("hello")
    with pytest.raises((OSError, ValueError, SyntaxError)):
        decode(path, 16)


@pytest.mark.parametrize("size", [(40, 30), (100, 100)])
def test_oversized_image_raises_decompression_bomb_error(tmp_path, monkeypatch, size):
    make_photo(tmp_path / "huge.jpg", (1, 2, 3), 0, size=size)
    monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", 1000)  # 1,200 px: over; 10,000 px: far over
    with pytest.raises(Image.DecompressionBombError):
        decode(tmp_path / "huge.jpg", 16)


def test_stored_size_leaves_a_margin_for_the_crop():
    assert data.stored_size(224) == 256
    assert data.stored_size(32) == 37


# ----------------------------------------------------------------------------- datasets (views: test_augment.py)


def test_path_and_tensor_datasets_agree(folder_data):
    catalog = scan(folder_data)
    paths = catalog.table["path"].tolist()[:4]
    labels = torch.tensor(catalog.table["label"].tolist()[:4])
    from_disk = data.ImagePathDataset(paths, labels, 20)
    in_memory = data.ImageTensorDataset(torch.stack([decode(p, 20) for p in paths]), labels)
    assert len(from_disk) == len(in_memory) == 4
    for i in range(4):
        (a, la), (b, lb) = from_disk[i], in_memory[i]
        assert torch.equal(a, b) and la == lb


def test_a_relative_fruitlib_data_also_works_from_notebooks(monkeypatch, tmp_path):
    # the user typed FRUITLIB_DATA=data/x in the project root; the notebook kernel runs in notebooks/
    project = tmp_path / "project"
    (project / "data" / "x").mkdir(parents=True)
    (project / "notebooks").mkdir()
    (project / "pyproject.toml").touch()  # a checkout
    monkeypatch.setattr(files, "PROJECT_ROOT", project)
    monkeypatch.chdir(project / "notebooks")
    monkeypatch.setenv("FRUITLIB_DATA", "data/x")
    assert data.find_data() == (project / "data" / "x").resolve()
    monkeypatch.setenv("FRUITLIB_DATA", "data/nowhere")
    with pytest.raises(FruitlibError, match="data/nowhere"):
        data.find_data()


def test_an_installed_package_downloads_into_the_users_data_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "PROJECT_ROOT", tmp_path / "site-packages")  # no checkout around the package
    assert files.checkout() is None
    assert data.download_folder() == Path(os.environ["XDG_DATA_HOME"]) / "fruitlib" / "GroceryStoreDataset"
    monkeypatch.setattr(files, "PROJECT_ROOT", Path(data.__file__).resolve().parents[1])
    assert data.download_folder() == files.checkout() / "data" / "GroceryStoreDataset"


def test_a_recorded_split_with_numbered_classes_reads_back(tmp_path):
    from fruitlib.data import read_manifest, write_manifest

    for name in ("0", "1"):
        for i in range(3):
            make_photo(tmp_path / "digits" / name / f"{i}.jpg", COLOURS["kiwi"], i)
    catalog = make_splits(scan(tmp_path / "digits"))
    write_manifest(catalog, tmp_path / "split.csv")
    again = read_manifest(tmp_path / "split.csv", catalog.root, catalog.classes)
    assert again.table["label"].tolist() == catalog.table["label"].tolist() and again.classes == ["0", "1"]
    (tmp_path / "split.csv").write_text("not, a split\n")
    with pytest.raises(FruitlibError, match="cannot be read as a run's split") as error:
        read_manifest(tmp_path / "split.csv", catalog.root, catalog.classes)
    assert one_line(str(error.value))

"""fruitlib.cache: photos decoded once, activations computed once, bad files skipped, stale entries rebuilt."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from conftest import make_photo

from fruitlib import FruitlibError, cache, device
from fruitlib.data import decode, make_splits, scan, stored_size
from fruitlib.models import build_model


@pytest.fixture
def count_decodes(monkeypatch):
    calls = []

    def counting(path, size):
        calls.append(str(path))
        return decode(path, size)

    monkeypatch.setattr(cache, "decode", counting)
    return calls


def cache_files(pattern: str = "*.pt") -> list[Path]:
    return sorted(cache.cache_dir().glob(pattern))


def test_cache_folder_is_the_temporary_one(isolated):
    assert cache.cache_dir() == isolated["cache"]
    assert Path.home() / ".cache" not in cache.cache_dir().parents


def test_load_split_decodes_once_then_hits_the_cache(folder_data, count_decodes):
    catalog = make_splits(scan(folder_data), seed=0)
    first = cache.load_split(catalog, "train", 32, progress=False)
    n_train = len(catalog.split("train"))
    assert len(count_decodes) == n_train
    assert first.images.shape == (n_train, 3, stored_size(32), stored_size(32)) and first.images.dtype == torch.uint8
    assert first.labels.tolist() == catalog.split("train")["label"].tolist()
    assert first.paths == catalog.split("train")["path"].tolist()
    assert len(cache_files("images-*.pt")) == 1
    second = cache.load_split(catalog, "train", 32, progress=False)
    assert len(count_decodes) == n_train  # nothing decoded the second time
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)
    cache.load_split(catalog, "train", 64, progress=False)  # another size is another entry
    assert len(count_decodes) == 2 * n_train and len(cache_files("images-*.pt")) == 2


def test_a_changed_file_triggers_a_rebuild(folder_data, count_decodes):
    catalog = make_splits(scan(folder_data), seed=0)
    before = cache.load_split(catalog, "val", 32, progress=False)
    changed = Path(before.paths[0])
    stat = changed.stat()
    make_photo(changed, (0, 0, 255), seed=99, size=(60, 45))  # new content, new size
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    decoded = len(count_decodes)
    after = cache.load_split(catalog, "val", 32, progress=False)
    assert len(count_decodes) == 2 * decoded
    assert after.images[0, 2].float().mean() > 200 and before.images[0, 2].float().mean() < 150
    assert torch.equal(after.images[1:], before.images[1:])


def test_a_touched_file_with_the_same_size_triggers_a_rebuild(folder_data, count_decodes):
    paths = scan(folder_data).table["path"].tolist()[:3]
    cache.load_images(paths, 20, progress=False)
    os.utime(paths[0], ns=(0, Path(paths[0]).stat().st_mtime_ns + 10**9))
    cache.load_images(paths, 20, progress=False)
    assert len(count_decodes) == 6


def test_a_file_replaced_with_the_same_size_and_modification_time_is_decoded_again(tmp_path, count_decodes):
    path = tmp_path / "photo.bmp"  # uncompressed: the same dimensions give the same file size
    PIL.Image.new("RGB", (40, 30), (220, 20, 20)).save(path)
    before = path.stat()
    red = cache.load_images([str(path)], 20, progress=False)["images"]
    time.sleep(0.05)  # the change time moves on (it cannot be set back, unlike the modification time)
    PIL.Image.new("RGB", (40, 30), (20, 20, 220)).save(path)  # what cp -p, rsync or tar would leave
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    blue = cache.load_images([str(path)], 20, progress=False)["images"]
    assert len(count_decodes) == 2 and red[0, 0].float().mean() > 200 and blue[0, 2].float().mean() > 200


def test_a_new_decoder_version_means_new_entries(folder_data, count_decodes, monkeypatch):
    paths = scan(folder_data).table["path"].tolist()[:3]
    cache.load_images(paths, 20, progress=False)
    monkeypatch.setattr(cache, "DECODER", cache.DECODER + 1)
    cache.load_images(paths, 20, progress=False)
    assert len(count_decodes) == 6


def test_temporary_files_of_killed_writers_are_removed(isolated):
    from fruitlib.files import atomic_save

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = isolated["cache"] / f".images.pt.tmp{int(dead.stdout)}"
    young = isolated["cache"] / f".young.pt.tmp{int(dead.stdout)}"
    mine = isolated["cache"] / f".mine.pt.tmp{os.getpid()}"
    for path in (stale, young, mine):
        path.write_bytes(b"half a file")
    for path in (stale, mine):
        os.utime(path, (time.time() - 7200, time.time() - 7200))
    atomic_save({"x": 1}, isolated["cache"] / "entry.pt")
    assert not stale.exists() and young.exists() and mine.exists()  # a live writer's, or a recent one, stays


def test_photos_that_make_pillow_raise_anything_are_skipped(folder_data, monkeypatch):
    import struct

    paths = scan(folder_data).table["path"].tolist()[:4]
    errors = {paths[0]: EOFError("no more data"), paths[1]: struct.error("unpack requires a buffer")}

    def fragile(path, size):
        if path in errors:
            raise errors[path]
        return decode(path, size)

    monkeypatch.setattr(cache, "decode", fragile)
    found = cache.decode_all(paths, 20, progress=False)
    assert found["keep"].tolist() == [2, 3]
    assert [reason for _, reason in found["skipped"]] == [
        "unreadable or truncated image (EOFError)",
        "unreadable or truncated image (struct.error)",
    ]


def test_decoding_threads_follow_the_affinity_and_the_container_quota(tmp_path):
    affinity = len(os.sched_getaffinity(0))
    assert device.usable_cores(tmp_path / "no-such-file") == affinity
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert device.usable_cores(tmp_path / "cpu.max") == affinity
    (tmp_path / "cpu.max").write_text("50000 100000\n")  # half a core: one thread
    assert device.usable_cores(tmp_path / "cpu.max") == 1


def test_a_corrupt_cache_file_is_rebuilt(folder_data, count_decodes):
    paths = scan(folder_data).table["path"].tolist()[:4]
    good = cache.load_images(paths, 20, progress=False)
    [entry] = cache_files("images-*.pt")
    entry.write_bytes(entry.read_bytes()[:100])  # truncated, as after a crash or a full disk
    again = cache.load_images(paths, 20, progress=False)
    assert len(count_decodes) == 8
    assert torch.equal(good["images"], again["images"])
    assert torch.load(entry, weights_only=True)["images"].shape == (4, 3, 20, 20)  # replaced by a good one


def test_no_cache_writes_nothing(folder_data, count_decodes):
    paths = scan(folder_data).table["path"].tolist()[:2]
    cache.load_images(paths, 20, progress=False, use_cache=False)
    cache.load_images(paths, 20, progress=False, use_cache=False)
    assert len(count_decodes) == 4 and cache_files() == []


def test_cached_leaves_no_temporary_file(isolated):
    value = cache.cached("thing", "abc", lambda: {"x": torch.arange(3)})
    assert torch.equal(value["x"], torch.arange(3))
    assert [p.name for p in isolated["cache"].iterdir()] == ["thing-abc.pt"]
    assert torch.equal(cache.cached("thing", "abc", lambda: 1 / 0)["x"], torch.arange(3))  # not made again


def test_an_interrupted_cache_write_leaves_nothing_behind(isolated, monkeypatch):
    def crash(obj, f, *args, **kwargs):
        f.write(b"half")  # atomic_save hands torch.save an open file
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        cache.cached("thing", "abc", lambda: {"x": torch.arange(3)})
    assert list(isolated["cache"].iterdir()) == []


def bad_folder(folder_data: Path) -> tuple[Path, Path]:
    corrupt = folder_data / "apple" / "corrupt.jpg"
    corrupt.write_bytes(np.random.default_rng(1).bytes(2000))
    make_photo(folder_data / "banana" / "whole.jpg", (230, 210, 60), 5, size=(200, 150))
    truncated = folder_data / "banana" / "truncated.jpg"
    whole = (folder_data / "banana" / "whole.jpg").read_bytes()
    truncated.write_bytes(whole[: len(whole) // 2])
    (folder_data / "banana" / "whole.jpg").unlink()
    return corrupt, truncated


def test_corrupt_and_truncated_photos_are_skipped_with_a_summary(folder_data, capsys):
    corrupt, truncated = bad_folder(folder_data)
    catalog = scan(folder_data)
    assert {str(corrupt), str(truncated)} <= set(catalog.table["path"])  # listing does not open files
    catalog.table["split"] = "train"
    loaded = cache.load_split(catalog, "train", 32, progress=False)
    assert len(loaded.labels) == len(loaded.images) == len(loaded.paths) == 18
    assert sorted(p for p, _ in loaded.skipped) == sorted([str(corrupt), str(truncated)])
    assert all("unreadable or truncated" in reason for _, reason in loaded.skipped)
    assert str(corrupt) not in loaded.paths and str(truncated) not in loaded.paths
    # labels still line up with the photos that were kept
    wanted = dict(zip(catalog.table["path"], catalog.table["label"]))
    assert loaded.labels.tolist() == [wanted[p] for p in loaded.paths]
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert len(lines) in (1, 2) and all(line.startswith("skipped ") for line in lines)  # grouped by reason
    assert sum(int(line.split()[1]) for line in lines) == 2 and "unreadable or truncated image" in out


def test_oversized_photos_are_skipped(folder_data, monkeypatch, capsys):
    make_photo(folder_data / "kiwi" / "a_bit_big.jpg", (1, 2, 3), 0, size=(50, 30))  # 1,500 px
    make_photo(folder_data / "kiwi" / "far_too_big.jpg", (1, 2, 3), 0, size=(100, 100))  # 10,000 px
    monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", 1300)  # the others are 1,200 px
    paths = scan(folder_data).table["path"].tolist()
    found = cache.decode_all(paths, 20, progress=False)
    assert len(found["images"]) == 18 and len(found["keep"]) == 18
    assert sorted(Path(p).name for p, _ in found["skipped"]) == ["a_bit_big.jpg", "far_too_big.jpg"]
    assert all("too large" in reason for _, reason in found["skipped"])


def test_nothing_readable_gives_an_empty_set(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    found = cache.decode_all([str(bad)], 20, progress=False)
    assert found["images"].shape == (0, 3, 20, 20) and found["keep"].tolist() == []


# ----------------------------------------------------------------------------- activations


@pytest.fixture(scope="module")
def lite0():
    return build_model(["a", "b", "c"], "efficientnet_lite0", image_size=32, mode="frozen")


@pytest.fixture
def photos(folder_data):
    paths = scan(folder_data).table["path"].tolist()[:5]
    return cache.load_images(paths, stored_size(32), progress=False)["images"]


def test_activations_are_cached_and_equal_a_direct_computation(lite0, photos, monkeypatch):
    stop = len(lite0.stages)
    first = cache.cached_activations(lite0, photos, stop, progress=False)
    assert first.shape == (5, lite0.head.in_features, 1, 1) and first.dtype == torch.float16
    direct = cache.activations(lite0, photos, stop, progress=False)
    assert torch.equal(first, direct)
    with torch.no_grad():  # and the same as running the network by hand on the centre crops
        from fruitlib.augment import eval_transform

        spec = lite0.spec
        x = torch.stack([eval_transform(32, spec.mean, spec.std)(p) for p in photos])
        by_hand = lite0.eval().features(x).mean(dim=(2, 3), keepdim=True)
    assert torch.allclose(first.float(), by_hand, atol=2e-2, rtol=1e-2)

    def forbidden(*args, **kwargs):
        raise AssertionError("activations recomputed although they are cached")

    monkeypatch.setattr(cache, "activations", forbidden)
    assert torch.equal(cache.cached_activations(lite0, photos, stop, progress=False), first)
    with pytest.raises(AssertionError, match="recomputed"):  # another view is another entry
        cache.cached_activations(lite0, photos, stop, view=1, progress=False)


def test_intermediate_activations_keep_their_spatial_shape(lite0, photos):
    x = cache.cached_activations(lite0, photos[:2], 3, progress=False)
    assert x.dim() == 4 and x.shape[0] == 2 and x.shape[2] > 1


def test_augmented_views_are_seeded_and_differ_from_the_eval_view(lite0, photos):
    stop = len(lite0.stages)
    view0 = cache.activations(lite0, photos, stop, view=0, progress=False)
    view1 = cache.activations(lite0, photos, stop, view=1, seed=0, progress=False)
    assert torch.equal(view1, cache.activations(lite0, photos, stop, view=1, seed=0, progress=False))
    assert not torch.equal(view1, view0)
    assert not torch.equal(view1, cache.activations(lite0, photos, stop, view=1, seed=1, progress=False))


def test_activations_leave_the_training_mode_alone(lite0, photos):
    lite0.train()
    cache.activations(lite0, photos[:1], 2, progress=False)
    assert lite0.training
    lite0.eval()


def test_changed_weights_mean_new_activations(photos):
    model = build_model(["a", "b"], "efficientnet_lite0", image_size=32, mode="frozen")
    stop = len(model.stages)
    before = cache.cached_activations(model, photos, stop, progress=False)
    with torch.no_grad():
        model.stages[0][0].weight.mul_(0.5)
    after = cache.cached_activations(model, photos, stop, progress=False)
    assert not torch.equal(before, after)
    assert len(cache_files("activations-*.pt")) == 2


def test_remember_computes_once_per_settings_and_version(isolated, monkeypatch):
    calls = []

    def make(value):
        def compute():
            calls.append(value)
            return {"history": {"val_acc": [0.5, value]}, "test": value}

        return compute

    first = cache.remember("nb-experiment", {"seed": 0, "photos": "abc"}, make(0.7))
    again = cache.remember("nb-experiment", {"photos": "abc", "seed": 0}, make(0.1))  # same settings, any order
    other = cache.remember("nb-experiment", {"seed": 1, "photos": "abc"}, make(0.6))
    assert first == again == {"history": {"val_acc": [0.5, 0.7]}, "test": 0.7} and other["test"] == 0.6
    assert calls == [0.7, 0.6]
    monkeypatch.setattr(cache, "__version__", "9.9.9")  # another fruitlib: computed again
    assert cache.remember("nb-experiment", {"seed": 0, "photos": "abc"}, make(0.2))["test"] == 0.2


def test_fingerprint_sees_every_value_and_the_shape():
    fingerprint = cache.fingerprint
    a = torch.zeros(2, 3, 64, 64, dtype=torch.uint8)
    b = a.clone()
    b[1, 2, 40, 40] = 1  # repr() of both tensors is the same
    assert repr(a) == repr(b) and fingerprint(a) != fingerprint(b) and fingerprint(a) == fingerprint(a.clone())
    assert fingerprint(torch.zeros(2, 3)) != fingerprint(torch.zeros(3, 2)) != fingerprint(torch.zeros(3, 2).double())
    assert fingerprint(torch.zeros(2, requires_grad=True)) == fingerprint(torch.zeros(2))


def test_remember_refuses_what_it_could_not_load_back(isolated):
    import numpy as np
    import pandas as pd

    for value in ({"x": np.float64(0.5)}, {"frame": pd.DataFrame({"a": [1]})}, {"array": np.zeros(2)}):
        with pytest.raises(FruitlibError, match="convert the result"):
            cache.remember("nb-bad", {"value": repr(value)}, lambda value=value: value)

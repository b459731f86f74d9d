"""The cache folder: a size limit, least-recently-used eviction, and ``python -m fruitlib cache``."""

from __future__ import annotations

import dataclasses
import os

import pytest
import torch

from fruitlib import FruitlibError, cache, cli, folder


@pytest.mark.parametrize(
    "text, size",
    [
        ("3GB", 3 * 2**30),
        ("500MB", 500 * 2**20),
        ("2G", 2 * 2**30),
        ("1.5GiB", int(1.5 * 2**30)),
        ("0", 0),
        ("4096", 4096),
    ],
)
def test_the_limit_reads_as_a_size(monkeypatch, text, size):
    monkeypatch.setenv("FRUITLIB_CACHE_LIMIT", text)
    assert folder.limit() == size


def test_a_limit_that_is_not_a_size_is_one_line(monkeypatch):
    monkeypatch.setenv("FRUITLIB_CACHE_LIMIT", "lots")
    with pytest.raises(FruitlibError, match="is not a size: write it as 3GB"):
        folder.limit()


def entry(path, size: int, age_s: float):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    then = path.stat().st_mtime - age_s
    os.utime(path, (then, then))
    return path


def test_eviction_removes_what_was_used_longest_ago_and_never_what_it_keeps(isolated, monkeypatch):
    monkeypatch.setenv("FRUITLIB_CACHE_LIMIT", "3KB")
    oldest = entry(isolated["cache"] / "images-a.pt", 1024, 300)
    middle = entry(isolated["cache"] / "onnx" / "b.onnx", 1024, 200)
    newest = entry(isolated["cache"] / "activations-c.pt", 1024, 100)
    kept = entry(isolated["cache"] / "images-d.pt", 1024, 400)  # the oldest, but just written
    assert folder.evict(keep=kept) == [oldest]
    assert {p for p in folder.entries()} == {middle, newest, kept}


def test_the_cache_stays_under_its_limit_and_a_hit_counts_as_a_use(isolated, monkeypatch):
    monkeypatch.setenv("FRUITLIB_CACHE_LIMIT", "40KB")
    for n in range(12):  # each entry is about 8 KB: far more than the limit in all
        cache.remember("limit", {"n": n}, lambda: {"x": torch.zeros(2000)})
        cache.remember("limit", {"n": 0}, lambda: pytest.fail("the entry used at every step was evicted"))
        assert sum(p.stat().st_size for p in folder.entries()) <= 40 * 2**10
    assert len(folder.entries()) < 12


def test_the_cache_command_shows_the_folder_and_clears_it(isolated, capsys):
    cache.remember("shown", {"n": 1}, lambda: {"x": torch.zeros(10)})
    assert cli.main(["cache"]) == 0
    out = capsys.readouterr().out
    assert str(isolated["cache"]) in out and "1 entries" in out and "shown" in out
    assert cli.main(["cache", "--clear"]) == 0
    assert "removed 1 entries" in capsys.readouterr().out and folder.entries() == []


def test_two_cold_runs_keep_the_cache_under_its_limit(isolated, folder_data, tmp_path, monkeypatch):
    from fruitlib.run import RunConfig, train_run

    def cold_run(n: int) -> None:  # another image size: photos, features and export all new to the cache
        cfg = RunConfig(data=str(folder_data), out=str(tmp_path / f"run{n}"), backbone="efficientnet_lite0", epochs=1)
        train_run(dataclasses.replace(cfg, image_size=24 + 8 * n, batch_size=8, views=1, device="cpu"), progress=False)

    def held() -> int:
        return sum(p.stat().st_size for p in folder.entries())

    monkeypatch.setenv("FRUITLIB_CACHE_LIMIT", "0")  # no limit: what one cold run leaves
    cold_run(1)
    first, one_run = folder.entries(), held()
    limit = int(1.5 * one_run)
    monkeypatch.setenv("FRUITLIB_CACHE_LIMIT", str(limit))
    for n in (2, 3):
        cold_run(n)
        assert held() <= limit
        assert (tmp_path / f"run{n}" / "metrics.json").is_file()
    assert set(first) - set(folder.entries())  # the first run's entries went first

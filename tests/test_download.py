"""Downloads for offline use, served from generated files: nothing leaves the machine."""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest
import torch
from conftest import make_grocery_data, one_line

from fruitlib import FruitlibError, cli, download


def zipped_clone(tmp_path: Path) -> bytes:
    """A miniature clone, zipped the way GitHub zips a commit: one top folder."""
    root = make_grocery_data(
        tmp_path / "clone" / f"GroceryStoreDataset-{download.COMMIT}", {"train": 2, "val": 1, "test": 1}
    )
    listed = root / "dataset" / "train.txt"  # drop the entry conftest lists without its photo
    listed.write_text("".join(line + "\n" for line in listed.read_text().splitlines() if "_099" not in line))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(root.rglob("*")):
            archive.write(path, path.relative_to(root.parent))
    return buffer.getvalue()


class Response(io.BytesIO):
    def __init__(self, payload: bytes, fail_after: int | None = None):
        super().__init__(payload)
        self.headers, self.fail_after = {"Content-Length": str(len(payload))}, fail_after

    def read(self, size: int = -1) -> bytes:
        if self.fail_after is not None and self.tell() >= self.fail_after:
            raise ConnectionResetError("the connection dropped")
        return super().read(min(size, self.fail_after or size) if size > 0 else size)


@pytest.fixture
def served(tmp_path, monkeypatch):
    """The zipped clone behind urlopen, with LISTINGS set to its files' checksums; returns what was asked for."""
    payload = zipped_clone(tmp_path)
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        listings = {
            Path(n).name: hashlib.sha256(archive.read(n)).hexdigest()
            for n in archive.namelist()
            if Path(n).parent.name == "dataset" and Path(n).name in download.LISTINGS
        }
    monkeypatch.setattr(download, "LISTINGS", listings)
    state = {"urls": [], "payload": payload, "fail_after": None}

    def urlopen(url, timeout=None):
        state["urls"].append(url)
        return Response(state["payload"], state["fail_after"])

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return state


def test_the_data_set_comes_from_the_pinned_commit_checked(served, tmp_path):
    dest = download.fetch_grocery(tmp_path / "kit" / "GroceryStoreDataset")
    assert served["urls"] == [f"{download.REPOSITORY}/archive/{download.COMMIT}.zip"]
    assert (dest / "dataset" / "train.txt").is_file() and not list((tmp_path / "kit").glob(".*"))
    assert download.fetch_grocery(dest) == dest and len(served["urls"]) == 1  # there and checked: no second download


def test_a_killed_download_leaves_nothing_behind_for_long(served, tmp_path):
    dead = int(
        subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout
    )
    kit = tmp_path / "kit"
    stale, young, growing = (kit / f".{name}.partial{dead}" for name in ("GroceryStoreDataset", "Other", "Third"))
    for folder in (stale, young, growing):
        (folder / "GroceryStoreDataset-half").mkdir(parents=True)
    for path in (stale / "GroceryStoreDataset-half", stale, growing):  # nothing in stale changed for two hours
        os.utime(path, (time.time() - 7200, time.time() - 7200))
    download.fetch_grocery(kit / "GroceryStoreDataset")
    assert not stale.exists()
    assert young.exists() and growing.exists()  # recent, or with a file still growing: maybe another machine's download


@pytest.mark.parametrize("damage", ["checksum", "interrupted", "cut short", "not a zip"])
def test_a_damaged_or_interrupted_download_is_never_taken_for_data(served, tmp_path, monkeypatch, damage):
    if damage == "checksum":
        monkeypatch.setitem(download.LISTINGS, "val.txt", "0" * 64)
    elif damage == "interrupted":
        served["fail_after"] = len(served["payload"]) // 2
    elif damage == "cut short":  # what http.client raises when a streamed body ends early
        monkeypatch.setattr(
            Response, "read", lambda self, size=-1: (_ for _ in ()).throw(http.client.IncompleteRead(b"", 100))
        )
    else:
        served["payload"] = b"<html>rate limited</html>"
    dest = tmp_path / "kit" / "GroceryStoreDataset"
    with pytest.raises(FruitlibError) as error:
        download.fetch_grocery(dest)
    assert one_line(str(error.value))
    assert not dest.exists() and list((tmp_path / "kit").iterdir()) == []  # no data, no partial folder left


def test_resnet_weights_are_checked_against_the_hash_in_their_name(tmp_path, monkeypatch):
    good = b"the real weights"
    prefix = hashlib.sha256(good).hexdigest()[:8]
    served = {"content": b"a proxy's error page", "fetches": 0}

    def fetch(url, dst, hash_prefix=None, progress=True):  # as torch.hub checks: the prefix of the SHA-256
        served["fetches"] += 1
        if not hashlib.sha256(served["content"]).hexdigest().startswith(hash_prefix):
            raise RuntimeError(f'invalid hash value (expected "{hash_prefix}")')
        Path(dst).write_bytes(served["content"])

    monkeypatch.setattr(torch.hub, "download_url_to_file", fetch)
    monkeypatch.setattr(
        download,
        "resnet_weights_enum",
        lambda name: type("Entry", (), {"url": f"https://download.pytorch.org/models/{name}-{prefix}.pth"}),
    )
    with pytest.raises(FruitlibError, match="could not fetch .*resnet18") as error:
        download.fetch_resnet("resnet18", tmp_path / "weights")
    assert one_line(str(error.value)) and not list((tmp_path / "weights").glob("*.pth"))
    served["content"] = good
    path = download.fetch_resnet("resnet18", tmp_path / "weights")
    assert path.name == f"resnet18-{prefix}.pth" and path.read_bytes() == good
    assert download.fetch_resnet("resnet18", tmp_path / "weights") == path and served["fetches"] == 2  # kept


def test_download_prints_the_two_variables_for_offline_machines(served, tmp_path, monkeypatch, capsys):
    def fetch(name: str, folder: Path) -> Path:  # fetch_resnet's checks are tested above
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.pth").write_bytes(b"weights")

    monkeypatch.setattr(download, "fetch_resnet", fetch)
    code = cli.main(["download", "--data", "--weights", "resnet18", "resnet50", "--to", str(tmp_path / "kit")])
    assert code == 0
    kit = (tmp_path / "kit").resolve()
    assert capsys.readouterr().out.splitlines() == [
        f"export FRUITLIB_DATA={kit / 'GroceryStoreDataset'}",
        f"export FRUITLIB_WEIGHTS={kit / 'weights'}",
    ]
    assert sorted(p.name for p in (kit / "weights").iterdir()) == ["resnet18.pth", "resnet50.pth"]


def test_download_with_nothing_asked_is_one_line(capsys, tmp_path):
    assert cli.main(["download", "--to", str(tmp_path)]) == 2
    assert "nothing to download" in capsys.readouterr().err

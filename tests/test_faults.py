"""Faults of the machine: a write that fails (read-only, disk full, permission) is one line naming the path and the
cause; the last good file stays, no temporary is left, and a cache that cannot be written does not stop a run.

Permissions are injected (CI runs as root, which ignores file modes); read-only and full file systems are real,
mounted inside ``unshare -m`` so that no mount outlives the test, where the machine allows it.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fruitlib import FruitlibError, files, plots

TORCH_FULL = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 4160 vs 4054")
FAULTS = [
    (OSError(errno.EROFS, "Read-only file system"), "the file system is read-only"),
    (OSError(errno.ENOSPC, "No space left on device"), "the disk is full"),
    (PermissionError(errno.EACCES, "Permission denied"), "permission denied"),
    (TORCH_FULL, "the disk is full"),
]


@pytest.mark.parametrize("fault, says", FAULTS, ids=["read-only", "full", "permission", "torch-full"])
def test_a_failed_save_is_one_line_and_keeps_the_last_good_file(tmp_path, monkeypatch, fault, says):
    path = tmp_path / "run" / "model.pt"
    files.atomic_save({"epoch": 1}, path)

    def failing_save(obj, f):
        f.write(b"half a checkpoint")
        raise fault

    monkeypatch.setattr(files.torch, "save", failing_save)
    with pytest.raises(FruitlibError) as error:
        files.atomic_save({"epoch": 2}, path)
    message = str(error.value)
    assert "\n" not in message and str(path) in message and says in message
    monkeypatch.undo()
    assert torch.load(path) == {"epoch": 1}  # the last good checkpoint
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temporary left


def test_other_errors_pass_through_unchanged(tmp_path):
    with pytest.raises(RuntimeError, match="a bug"), files.writing(tmp_path):
        raise RuntimeError("a bug, not a write")


def test_a_figure_that_cannot_be_written_is_one_line(tmp_path, monkeypatch):
    def refused(self, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refused)
    with pytest.raises(FruitlibError, match="cannot write the figure .*: permission denied"):
        plots.save(plots.plt.figure(), "figure", tmp_path / "figures")


def test_a_cache_that_cannot_be_written_is_said_once_and_does_not_stop_the_work(tmp_path, monkeypatch):
    from fruitlib import cache

    monkeypatch.setenv("FRUITLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(cache, "UNWRITABLE", set())
    monkeypatch.setattr(files.torch, "save", lambda obj, f: (_ for _ in ()).throw(OSError(errno.EROFS, "ro")))
    with pytest.warns(UserWarning, match="cannot be written \\(the file system is read-only\\)") as said:
        values = [cache.remember("faults", {"n": n}, lambda n=n: {"n": n}) for n in range(3)]
    assert values == [{"n": 0}, {"n": 1}, {"n": 2}] and len(said) == 1
    assert not any(p.name.startswith(".") for p in (tmp_path / "cache").rglob("*"))


def mounted(tmp_path: Path, options: str, command: list[str], env: dict) -> subprocess.CompletedProcess:
    """``command`` with a fresh tmpfs (``options``) at ``tmp_path / 'mnt'``, in a mount namespace of its own."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare here: the real read-only and full-disk tests need it")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = f'mount -t tmpfs -o {options} tmpfs {mnt} && exec "$@"'
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", script, "sh", *command], capture_output=True, text=True, env=env, timeout=300
    )
    if "mount:" in done.stderr or "unshare:" in done.stderr:
        pytest.skip(f"this machine does not allow a private mount ({done.stderr.strip().splitlines()[0]})")
    return done


@pytest.fixture
def train_command(folder_data, tmp_path):
    env = os.environ | {"PYTHONWARNINGS": "default", "FRUITLIB_CACHE": str(tmp_path / "cache")}
    command = [
        sys.executable,
        "-m",
        "fruitlib",
        "train",
        "--data",
        str(folder_data),
        "--backbone",
        "efficientnet_lite0",
        "--image-size",
        "32",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--device",
        "cpu",
    ]
    return command, env


def test_train_into_a_read_only_folder_is_one_line(tmp_path, train_command):
    command, env = train_command
    done = mounted(tmp_path, "ro", [*command, "--out", str(tmp_path / "mnt" / "run")], env)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: cannot write the run folder {tmp_path / 'mnt' / 'run'}: the file system is read-only; free some "
        "space or choose a folder you can write to"
    )


def test_a_disk_that_fills_during_training_is_one_line_and_leaves_no_torn_file(tmp_path, train_command):
    command, env = train_command
    out = tmp_path / "mnt" / "run"
    done = mounted(tmp_path, "size=1m", [*command, "--out", str(out)], env)  # a checkpoint is 13 MB
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: cannot write {out / 'model.pt'}: ") and "disk is full" in last


def test_a_read_only_cache_leaves_the_run_to_train_without_it(tmp_path, train_command):
    command, env = train_command
    env = env | {"FRUITLIB_CACHE": str(tmp_path / "mnt")}
    done = mounted(tmp_path, "ro", [*command, "--out", str(tmp_path / "run")], env)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("cannot be written (the file system is read-only)") == 1
    assert (tmp_path / "run" / "metrics.json").is_file()

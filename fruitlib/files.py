"""Files fruitlib writes, and where it runs from: atomic saves, leftovers of killed writers, the checkout."""

from __future__ import annotations

import errno
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from .errors import FruitlibError

PROJECT_ROOT = Path(__file__).resolve().parents[1]  # the checkout, when fruitlib runs from one (else site-packages)


def checkout() -> Path | None:
    """The repository fruitlib runs from (an editable install or the source tree), or None for an installed package."""
    return (
        PROJECT_ROOT if (PROJECT_ROOT / "pyproject.toml").is_file() and (PROJECT_ROOT / "notebooks").is_dir() else None
    )


CAUSES = {
    errno.EROFS: "the file system is read-only",
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}


TORCH_WRITE_FAILED = ("inline_container", "PytorchStreamWriter", "file write failed")  # torch.save's own words


def cause(error: BaseException) -> str:
    """What stopped a write, in words: read-only, disk full, permission denied, or the system's own message.

    ``torch.save`` reports a full disk as a RuntimeError of its zip writer ("unexpected pos ..."), not an OSError.
    """
    if isinstance(error, OSError):
        return CAUSES.get(error.errno, error.strerror or str(error))
    return "the disk is full or the file could not be written (PyTorch's writer stopped)"


def failed_write(path: str | os.PathLike, error: BaseException, what: str = "") -> FruitlibError:
    """The one line for a write to ``path`` that ``error`` stopped: the path, the cause, and what to do."""
    return FruitlibError(
        f"cannot write {what + ' ' if what else ''}{path}: {cause(error)}; free some space or choose a folder "
        "you can write to"
    )


@contextmanager
def writing(path: str | os.PathLike, what: str = "") -> Iterator[None]:
    """Turn a failed write under ``path`` into one line that names the path, the cause and what to do.

    OSError, and the RuntimeError ``torch.save`` raises when a write fails, become a FruitlibError; anything else
    passes through. What was there before is the writer's to keep (:func:`atomic_save` keeps it).
    """
    try:
        yield
    except (OSError, RuntimeError) as error:
        if isinstance(error, RuntimeError) and not any(s in str(error) for s in TORCH_WRITE_FAILED):
            raise
        raise failed_write(path, error, what) from None


def atomic_save(obj: object, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file in the same folder, flushed to disk, then renamed over ``path``.

    Ctrl-C, a killed process or a full disk leaves the previous file intact and no half-written one; a write that
    fails (read-only, disk full, permission) raises a one-line FruitlibError naming the path and the cause.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path.parent)
        try:
            with open(tmp, "wb") as f:
                torch.save(obj, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return path


def remove_stale_temporaries(folder: Path, older_than_s: float = 3600.0, marker: str = ".tmp") -> None:
    """Delete the ``.NAME.tmpPID`` files (``marker``: or download folders ``.NAME.partialPID``) of writers killed
    mid-write (SIGKILL, power loss): those whose process is gone and that nothing has changed for an hour (a live
    writer on another machine sharing the folder is never that slow; a download folder counts its files' changes)."""
    for tmp in folder.glob(f".*{marker}*"):
        pid = tmp.name.rsplit(marker, 1)[1]
        try:
            touched = max(p.stat().st_mtime for p in [tmp, *(tmp.iterdir() if tmp.is_dir() else [])])
            if not pid.isdigit() or time.time() - touched < older_than_s or _alive(int(pid)):
                continue
            if tmp.is_dir():
                shutil.rmtree(tmp)
            else:
                tmp.unlink()
        except OSError:  # gone meanwhile, or not ours to delete
            pass


def _alive(pid: int) -> bool:
    import psutil  # os.kill(pid, 0) would send Ctrl-C on Windows

    return psutil.pid_exists(pid)

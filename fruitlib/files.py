"""Files fruitlib writes, and where it runs from: atomic saves, leftovers of killed writers, the checkout."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import torch

PROJECT_ROOT = Path(__file__).resolve().parents[1]  # the checkout, when fruitlib runs from one (else site-packages)


def checkout() -> Path | None:
    """The repository fruitlib runs from (an editable install or the source tree), or None for an installed package."""
    return (
        PROJECT_ROOT if (PROJECT_ROOT / "pyproject.toml").is_file() and (PROJECT_ROOT / "notebooks").is_dir() else None
    )


def atomic_save(obj: object, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file in the same folder, flushed to disk, then renamed over ``path``.

    Ctrl-C, a killed process or a full disk leaves the previous file intact and no half-written one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
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

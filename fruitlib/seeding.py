"""Process-wide settings that training changes, scoped: set on the way in, as they were on the way out.

Python's, NumPy's and torch's global random numbers, and whether the CPU flushes tiny floats to zero, belong to
the whole process. Code that changes them does it in these blocks, so a caller's later draws never depend on
what fruitlib did in between (or on what the cache held).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Python's, NumPy's and torch's global random numbers (every device's) start from ``seed``."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@contextmanager
def seeded(seed: int, device: torch.device | None = None) -> Iterator[None]:
    """Inside, the global random numbers start from ``seed`` (:func:`seed_everything`); afterwards Python's,
    NumPy's, the CPU's and ``device``'s (a GPU) continue as if the block had not run."""
    gpus = (
        [device.index if device.index is not None else torch.cuda.current_device()]
        if device and device.type == "cuda"
        else []
    )
    python, numpy = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=gpus):
        seed_everything(seed)
        try:
            yield
        finally:
            random.setstate(python)
            np.random.set_state(numpy)


def denormals_flushed_now() -> bool:
    """Whether this thread's CPU flushes denormal floats to zero (torch can set this, but has no getter for it)."""
    return bool(torch.tensor(1e-38) / 100 == 0)  # 1e-40 is a denormal float32


@contextmanager
def denormals_flushed() -> Iterator[None]:
    """Inside, denormal floats (tiny gradients late in training) count as zero where the CPU supports it, which
    keeps each step at full speed; afterwards the setting is as it was."""
    before = denormals_flushed_now()
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(before)

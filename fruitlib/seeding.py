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
    """Python's, NumPy's and torch's global random numbers, every device's, start from ``seed``: for a script that
    owns its process. Library code uses :func:`seeded`."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def device_generator(device: torch.device | None) -> torch.Generator | None:
    """The global generator of a GPU (CUDA or Apple's mps) that draws on ``device``; None for the CPU."""
    if device is None or device.type not in ("cuda", "mps"):
        return None
    if device.type == "mps":
        return torch.mps._get_default_mps_generator()  # the one torch.mps.manual_seed and get_rng_state use
    return torch.cuda.default_generators[device.index if device.index is not None else torch.cuda.current_device()]


@contextmanager
def seeded(seed: int, device: torch.device | None = None) -> Iterator[None]:
    """Inside, Python's, NumPy's and torch's CPU random numbers, and ``device``'s where it is a GPU, start from
    ``seed``; afterwards they continue as if the block had not run. Other devices' random numbers are not touched."""
    generators = [torch.random.default_generator] + [g for g in [device_generator(device)] if g is not None]
    python, numpy, states = random.getstate(), np.random.get_state(), [g.get_state() for g in generators]
    random.seed(seed)
    np.random.seed(seed)
    for generator in generators:
        generator.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(python)
        np.random.set_state(numpy)
        for generator, state in zip(generators, states):
            generator.set_state(state)


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

"""Where training runs and how to use it: the device, the cores a process may use, layout and precision."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import torch

CPU_MAX = Path("/sys/fs/cgroup/cpu.max")  # a container's CPU quota (cgroup v2): "max 100000" or "200000 100000"


def usable_cores(cpu_max: Path = CPU_MAX) -> int:
    """The cores this process may use: its CPU affinity, within a container's CPU quota."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = cpu_max.read_text().split()
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):  # no cgroup v2 quota here
        pass
    return cores


def pick_device(device: str = "auto") -> torch.device:
    """``auto`` picks cuda, then Apple's mps, then the CPU."""
    if device != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def loader_workers(device: torch.device) -> int:
    """Processes that augment training photos: none on the CPU, where they would take cores from the network, up to
    8 beside a GPU (one fewer than the usable cores), which one process cannot keep busy. ``benchmarks/bench.py``
    ("CPU settings", "GPU settings") measures the choice.

    Workers hand batches over in shared memory: with under 2 GiB free there (Docker's default is 64 MiB), none.
    """
    if device.type != "cuda":
        return 0
    try:
        shared = shutil.disk_usage("/dev/shm").free
    except OSError:
        shared = 0
    return min(8, usable_cores() - 1) if shared >= 2 * 2**30 else 0


def memory_format(device: torch.device) -> torch.memory_format:
    """channels_last on the CPU and CUDA (``benchmarks/bench.py`` measures both layouts); elsewhere PyTorch's
    default layout."""
    return torch.channels_last if device.type in ("cpu", "cuda") else torch.contiguous_format


def native_bf16(device: torch.device) -> bool:
    """Mixed precision in bfloat16 on GPUs that compute it natively (Ampere and newer); elsewhere float32.

    (Older cards such as Colab's T4 would emulate it, slower than float32.)
    """
    return device.type == "cuda" and torch.cuda.get_device_capability(device)[0] >= 8

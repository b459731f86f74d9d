"""Data-parallel training with PyTorch's own engine: ``torchrun --nproc-per-node N -m fruitlib train ...``.

torchrun starts N processes and tells each its rank and the world size (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``); :func:`session` joins them into one process group (NCCL on CUDA, gloo on CPUs). Each process
then trains the same model on its own share of every batch, and ``DistributedDataParallel`` averages the
gradients, so every process takes the same step. ``--batch-size`` stays the *global* batch: each process takes
``batch_size / N`` photos of it, so the learning rates chosen for one process still hold (see README, "More than
one GPU or machine"). Only rank 0 writes files. Without torchrun nothing here does anything.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset, DistributedSampler

from .device import pick_device
from .errors import FruitlibError


@dataclass(frozen=True)
class World:
    """This process's place among those training together: its rank, and how many there are."""

    rank: int = 0
    size: int = 1
    active: bool = False  # started by torchrun (even as one process): gradients are averaged, batches shared out

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes run files, checkpoints and figures, and prints."""
        return self.rank == 0


def world() -> World:
    """The process group this process belongs to, or a world of one."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), active=True)
    return World()


@contextmanager
def session(device: str = "auto") -> Iterator[World]:
    """Join torchrun's processes for the duration of a command that runs on ``device`` (NCCL on CUDA, else gloo);
    without torchrun, a world of one."""
    if "WORLD_SIZE" not in os.environ or (dist.is_available() and dist.is_initialized()):
        yield world()
        return
    cuda = pick_device(device).type == "cuda"
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)) % torch.cuda.device_count())
    dist.init_process_group("nccl" if cuda else "gloo")
    try:
        yield world()
    finally:
        dist.destroy_process_group()


def own_device(device: torch.device, here: World) -> torch.device:
    """Under torchrun on GPUs, this process's own GPU (:func:`session` chose it from ``LOCAL_RANK``), whichever
    index was asked for; elsewhere ``device``. With more processes than GPUs, they take turns round the GPUs."""
    return torch.device("cuda", torch.cuda.current_device()) if here.active and device.type == "cuda" else device


def local_batch(batch_size: int, here: World) -> int:
    """Each process's share of the global batch; it must divide evenly, or the steps would not be one run's."""
    if batch_size % here.size:
        raise FruitlibError(
            f"--batch-size {batch_size} is the global batch and must divide evenly among the "
            f"{here.size} processes: e.g. {batch_size // here.size * here.size or here.size}"
        )
    return batch_size // here.size


def train_sampler(data: Dataset, seed: int, here: World) -> DistributedSampler:
    """A new seeded order of the photos every epoch (``set_epoch``), dealt out among the processes.

    Rank r takes places r, r + N, ... of the order, so the k-th batches of all processes together are the k-th
    global batch of that order. Where the photos do not divide evenly, a few are repeated to keep the steps in line.
    """
    return DistributedSampler(data, num_replicas=here.size, rank=here.rank, shuffle=True, seed=seed)


def start_epoch(sampler: DistributedSampler, generator: torch.Generator, seed: int, epoch: int, here: World) -> None:
    """This epoch's order of the photos, and random draws of this process's own (augmentations, dropout, loader
    workers): from the seed, the epoch and the rank alone, so that a resumed run draws the same.
    :func:`fruitlib.train.fit` calls it inside its :func:`fruitlib.seeding.seeded` block: the caller's random numbers
    are left as they were."""
    sampler.set_epoch(epoch)
    draws = seed * 1_000_000 + epoch * 1_000 + here.rank
    torch.manual_seed(draws)
    generator.manual_seed(draws)


def val_share(photos: int, here: World) -> range:
    """Every N-th photo from the rank's place: the processes together score each photo exactly once."""
    return range(here.rank, photos, here.size)


def total(values: list[float], here: World) -> list[float]:
    """The sums of ``values`` over all processes (loss sums, correct answers, photos seen)."""
    if not here.active:
        return values
    on = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"  # NCCL: GPU only
    summed = torch.tensor(values, dtype=torch.float64, device=on)
    dist.all_reduce(summed)
    return summed.tolist()


def parallel(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` inside ``DistributedDataParallel``; rank 0's buffers (batch-norm statistics) are sent to the others."""
    ids = [torch.cuda.current_device()] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def share_buffers(model: nn.Module, here: World) -> None:
    """Rank 0's buffers to every process. Each updates its batch-norm statistics from its own share of the last
    batch, so without this the processes would validate slightly different models, none of them the one saved."""
    if here.size > 1:
        for buffer in model.buffers():
            dist.broadcast(buffer, 0)


@contextmanager
def main_first(here: World) -> Iterator[None]:
    """Rank 0 does the work first (decoding, computing into the shared cache); the others then read what it left."""
    if here.active and not here.main:
        dist.barrier()
    yield
    if here.active and here.main:
        dist.barrier()


def barrier(here: World) -> None:
    """Wait until every process has come this far."""
    if here.active:
        dist.barrier()

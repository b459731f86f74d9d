"""The fit loop: train mode for training, eval mode for validation, every epoch.

Loss and accuracy are epoch means over every image; validation scores every image once (no shuffle,
no dropped batch). After each epoch a callback receives the full training state, so a checkpoint can
be written and a stopped run resumed exactly (on the CPU; on a GPU, loader workers draw their own
augmentations and GPU kernels are not bit-for-bit repeatable).

Images and convolution weights are channels-last on the CPU and on CUDA GPUs (:func:`fruitlib.device.memory_format`).
On a CUDA GPU also: bfloat16 mixed precision where the card has it natively, pinned memory, and loader workers
that augment photos in parallel (:func:`fruitlib.device.loader_workers`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import pandas as pd
import torch
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm.auto import tqdm

from .data import PhotoDataset, make_loader
from .device import loader_workers, memory_format, native_bf16, pick_device
from .distributed import (
    local_batch,
    own_device,
    parallel,
    share_buffers,
    start_epoch,
    total,
    train_sampler,
    val_share,
    world,
)
from .seeding import denormals_flushed, seeded

COLUMNS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "backbone_lr", "seconds"]


def make_optimizer(
    params: list[nn.Parameter] | list[dict], name: str, lr: float, weight_decay: float
) -> torch.optim.Optimizer:
    """``adamw`` (the default here) or ``sgd`` with momentum 0.9 (the article's choice); ``params`` may be groups."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def group_rates(optimizer: torch.optim.Optimizer) -> tuple[float, float]:
    """(the last group's rate, the first group's): the head's and the backbone's in :func:`fruitlib.models.param_groups`
    order. With a single group, the second is NaN.
    """
    groups = optimizer.param_groups
    return groups[-1]["lr"], groups[0]["lr"] if len(groups) > 1 else float("nan")


def run_epoch(
    model: nn.Module, loader: DataLoader, device: torch.device, optimizer: torch.optim.Optimizer | None = None
) -> tuple[float, float]:
    """One pass over ``loader``; trains when an optimizer is given. Returns (mean loss, accuracy)."""
    model.train(optimizer is not None)
    total_loss, correct, seen = 0.0, 0, 0
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=native_bf16(device))
    layout = memory_format(device)
    with torch.set_grad_enabled(optimizer is not None):
        for x, y in loader:
            x, y = x.to(device, torch.float32, non_blocking=True), y.to(device, non_blocking=True)
            if x.dim() == 4:
                x = x.contiguous(memory_format=layout)
            with autocast:
                logits = model(x)
            loss = nn.functional.cross_entropy(logits.float(), y)
            if optimizer is not None:
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            total_loss += loss.item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
    total_loss, correct, seen = total([total_loss, correct, seen], world())  # over every process under torchrun
    return total_loss / max(seen, 1), correct / max(seen, 1)


def restore(state: dict, opt: torch.optim.Optimizer, schedule: CosineAnnealingLR, shuffle: torch.Generator) -> list:
    """Put back what :func:`fit` gave ``on_epoch_end`` (optimiser, schedule, shuffling, random numbers) and return
    its history. Where the run now has more epochs than first planned, the rates follow the longer cosine from here.
    """
    opt.load_state_dict(state["optimizer"])
    t_max = schedule.T_max
    schedule.load_state_dict(state["scheduler"])
    if schedule.T_max != t_max:
        schedule.T_max = t_max
        for group, base in zip(opt.param_groups, schedule.base_lrs):
            group["lr"] = base * (1 + math.cos(math.pi * schedule.last_epoch / t_max)) / 2
    shuffle.set_state(state["shuffle_state"])
    torch.set_rng_state(state["rng_state"])
    return list(state["history"])


def loaders(
    train_data: Dataset,
    val_data: Dataset | None,
    batch_size: int,
    shuffle: torch.Generator,
    seed: int,
    device: torch.device,
) -> tuple[DataLoader, DataLoader | None, DistributedSampler | None]:
    """The training batches (shuffled by ``shuffle``), the validation batches (twice as large, in order) and, under
    torchrun, the sampler that deals each process its share of a ``seed``-ed order."""
    here = world()
    workers = loader_workers(device) if isinstance(train_data, PhotoDataset) else 0
    sampler = train_sampler(train_data, seed, here) if here.active else None
    train_loader = make_loader(
        train_data,
        local_batch(batch_size, here),
        shuffle=True,
        generator=shuffle,
        sampler=sampler,
        pin_memory=device.type == "cuda",
        num_workers=workers,
        persistent_workers=workers > 0,
    )
    if val_data is None:
        return train_loader, None, sampler
    val_loader = make_loader(val_data, 2 * local_batch(batch_size, here), sampler=val_share(len(val_data), here))
    return train_loader, val_loader, sampler


def fit(
    model: nn.Module,
    train_data: Dataset,
    val_data: Dataset | None,
    *,
    epochs: int,
    lr: float = 1e-3,
    batch_size: int = 64,
    optimizer: str = "adamw",
    weight_decay: float = 1e-4,
    seed: int = 0,
    device: str | torch.device = "auto",
    on_epoch_end: Callable[[dict], None] | None = None,
    resume: dict | None = None,
    progress: bool = True,
    groups: list[dict] | None = None,
) -> pd.DataFrame:
    """Train ``model``'s trainable parameters for ``epochs`` (cosine learning-rate decay); return the history.

    ``groups``: optimiser parameter groups with their own rates, the head's last (:func:`fruitlib.models.param_groups`);
    default: every trainable parameter at ``lr``. The history records the last group's rate as ``lr``, the first's
    as ``backbone_lr``.
    ``resume`` is a state given earlier to ``on_epoch_end``: training continues after its last epoch.
    The random numbers are seeded from ``seed`` inside and the caller's are left as they were
    (:mod:`fruitlib.seeding`).
    Under torchrun (:mod:`fruitlib.distributed`) each process trains on its share of every global batch of
    ``batch_size`` in a new seeded order each epoch, through ``DistributedDataParallel``, and validates its share.
    """
    here = world()
    device = own_device(pick_device(device) if isinstance(device, str) else device, here)
    with seeded(seed, device), denormals_flushed():
        model.to(device, memory_format=memory_format(device))
        params = groups if groups is not None else [p for p in model.parameters() if p.requires_grad]
        opt = make_optimizer(params, optimizer, lr, weight_decay)
        schedule = CosineAnnealingLR(opt, T_max=max(epochs, 1))
        shuffle = torch.Generator().manual_seed(seed)
        history = restore(resume, opt, schedule, shuffle) if resume is not None else []
        train_loader, val_loader, sampler = loaders(train_data, val_data, batch_size, shuffle, seed, device)
        trained = parallel(model, device) if here.active else model
        bar = tqdm(range(len(history), epochs), desc="epochs", disable=not progress)
        for epoch in bar:
            start = time.perf_counter()
            if sampler is not None:
                start_epoch(sampler, shuffle, seed, epoch, here)
            train_loss, train_acc = run_epoch(trained, train_loader, device, opt)
            rates = group_rates(opt)
            schedule.step()
            share_buffers(model, here)
            val_loss, val_acc = run_epoch(model, val_loader, device) if val_loader else (float("nan"), float("nan"))
            seconds = time.perf_counter() - start
            history.append(dict(zip(COLUMNS, [epoch + 1, train_loss, train_acc, val_loss, val_acc, *rates, seconds])))
            bar.set_postfix(train_loss=f"{train_loss:.3f}", val_acc=f"{val_acc:.3f}")
            if on_epoch_end is not None:
                on_epoch_end(
                    {
                        "history": history,
                        "optimizer": opt.state_dict(),
                        "scheduler": schedule.state_dict(),
                        "shuffle_state": shuffle.get_state(),
                        "rng_state": torch.get_rng_state(),
                    }
                )
    return pd.DataFrame(history, columns=COLUMNS)

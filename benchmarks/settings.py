"""The settings behind fruitlib's speed, measured: the "CPU settings" and "GPU settings" sections of
``benchmarks/bench.py``. Run on its own only as ``python benchmarks/settings.py --probe-openmp JOB``, the fresh
process that :func:`measure_openmp_wait` starts.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time

import torch
from items import DEFAULTS
from timing import backbone_forward_seconds, eval_batches, images_per_second, train_step_images_per_s
from torchvision.transforms import v2

from fruitlib.augment import PhotoView, num_threads, view_for
from fruitlib.data import Catalog, ImageTensorDataset, decode, make_loader, stored_size
from fruitlib.device import loader_workers, native_bf16
from fruitlib.models import build_model


def augment_images_per_s(view: PhotoView, images: torch.Tensor, batch_size: int = 64) -> dict:
    """fruitlib's training augmentation without a loader: the per-photo crops, then the per-batch colour step."""
    start = time.perf_counter()
    crops = view.crops(images)
    middle = time.perf_counter()
    for s in range(0, len(crops), batch_size):
        view.finish(crops[s : s + batch_size])
    end = time.perf_counter()
    return {
        "crop": len(images) / (middle - start),
        "batch": len(images) / (end - middle),
        "both": len(images) / (end - start),
    }


def torchvision_augment_images_per_s(spec, images: torch.Tensor, threads: list[int]) -> dict:
    """The same augmentation photo by photo with torchvision's v2 transforms (what fruitlib replaced), at each
    thread count: bilinear without antialiasing, as fruitlib resizes (a stored photo is at most 8/7 of its crop)."""
    augment = v2.Compose(
        [
            v2.RandomResizedCrop(spec.image_size, scale=(0.35, 1.0), antialias=False),
            v2.RandomHorizontalFlip(),
            v2.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(spec.mean, spec.std),
        ]
    )
    out = {}
    for t in threads:
        with num_threads(t):
            start = time.perf_counter()
            for image in images:
                augment(image)
            out[f"threads_{t}"] = len(images) / (time.perf_counter() - start)
    return out


# ----------------------------------------------------------------------------- the settings, measured


def measure_settings(
    model_full, images: torch.Tensor, n: int, batch_sizes: list[int], loader_workers: tuple[int, ...] = (0, 1, 2)
) -> dict:
    """CPU settings that matter, each measured: threads, batch size, channels_last (inference and training), grad
    mode, loader workers."""
    spec, threads = model_full.spec, torch.get_num_threads()
    cpu = torch.device("cpu")
    out: dict = {"images": n, "default_threads": threads}
    half = max(n // 2, 1)  # two rounds of n/2 photos per forward configuration
    batches = {b: eval_batches(images[:half], spec, b) for b in batch_sizes}
    thread_options = sorted({1, threads})
    configs = [(t, cl, b) for t in thread_options for cl in (False, True) for b in batch_sizes]
    speeds: dict = {c: [] for c in configs}
    for round_ in range(2):  # the second round in reverse order, best of two: less bias from drifting load
        for t, cl, b in configs if round_ == 0 else configs[::-1]:
            with num_threads(t):
                speeds[(t, cl, b)].append(half / backbone_forward_seconds(model_full, batches[b], cl, cpu))
    forward = [
        {"threads": t, "channels_last": cl, "batch_size": b, "images_per_s": max(v), "rounds": v}
        for (t, cl, b), v in speeds.items()
    ]
    out["frozen_forward"] = forward
    best = max(forward, key=lambda r: r["images_per_s"])
    default = (
        next(r for r in forward if r["threads"] == threads and r["channels_last"] and r["batch_size"] == 64)
        if 64 in batch_sizes
        else None
    )
    out["frozen_forward_best"], out["frozen_forward_fruitlib"] = best, default

    b = 64 if 64 in batch_sizes else batch_sizes[0]
    grads, rounds = ("inference", "no_grad", "grad"), {}
    for order in (grads, grads[::-1]):  # both orders, best of two, as above
        for g in order:
            rounds.setdefault(g, []).append(half / backbone_forward_seconds(model_full, batches[b], True, cpu, g))
    out["grad_mode_images_per_s"] = {g: max(v) for g, v in rounds.items()}

    augment = view_for(spec, train=True)
    steps = {}
    for t in thread_options:
        with num_threads(t):
            steps[f"threads_{t}"] = augment_images_per_s(augment, images[:n])
    out["augment_images_per_s"] = steps
    out["torchvision_v2_augment_images_per_s"] = torchvision_augment_images_per_s(spec, images[:n], thread_options)

    workers = {}
    data = ImageTensorDataset(images[:n], torch.zeros(n, dtype=torch.long), augment)
    for w in loader_workers:
        loader = make_loader(data, b, shuffle=True, num_workers=w)
        workers[f"workers_{w}"] = images_per_second(loader)[0]  # includes starting the workers, once per epoch
    out["augmented_loader_images_per_s"] = workers

    x, y = eval_batches(images[:32], spec, 32)[0], torch.zeros(32, dtype=torch.long)  # whole-network training
    steps: dict = {}
    for order in ((False, True), (True, False)):  # both orders, best of two
        for cl in order:
            fmt = torch.channels_last if cl else torch.contiguous_format
            model = copy.deepcopy(model_full).to(memory_format=fmt).train()
            speed = train_step_images_per_s(model, x.contiguous(memory_format=fmt), y, False, steps=2, warmup=1)
            steps.setdefault("channels_last" if cl else "contiguous", []).append(speed)
    out["train_step_images_per_s"] = {k: max(v) for k, v in steps.items()}
    return out


def probe_openmp(paths: list[str], backbone: str, classes: list[str], n: int) -> dict:
    """In this (fresh) process: frozen forward and per-photo augmentation, at torch's default threads."""
    model = build_model(classes, backbone, True, "frozen", image_size=DEFAULTS.image_size)
    images = torch.stack([decode(p, stored_size(DEFAULTS.image_size)) for p in paths[:n]])
    seconds = backbone_forward_seconds(model, eval_batches(images, model.spec, 64), True)
    augment = view_for(model.spec, train=True)
    return {
        "forward_images_per_s": len(images) / seconds,
        "augment_images_per_s": augment_images_per_s(augment, images)["both"],
        "torch_threads": torch.get_num_threads(),
    }


def measure_openmp_wait(paths: list[str], backbone: str, classes: list[str], n: int) -> dict:
    """OpenMP's wait policy is read once, when torch starts: compare it in two fresh processes.

    ACTIVE (libgomp's default) keeps idle threads spinning; PASSIVE puts them to sleep. On a busy CPU the
    spinning threads steal the cores that the working ones need.
    """
    out = {}
    for policy in ("default", "PASSIVE"):
        env = os.environ.copy()
        env.pop("OMP_WAIT_POLICY", None)
        if policy != "default":
            env["OMP_WAIT_POLICY"] = policy
        job = {"paths": paths, "backbone": backbone, "classes": classes, "n": n}
        done = subprocess.run(
            [sys.executable, __file__, "--probe-openmp", json.dumps(job)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        out[policy] = json.loads(done.stdout.strip().splitlines()[-1])
    out["inherited_OMP_WAIT_POLICY"] = os.environ.get("OMP_WAIT_POLICY")
    return out


def measure_decode_threads(paths: list[str], size: int, threads: int) -> dict:
    """decode() one photo after another at 1 and at all torch threads (what ImagePathDataset does)."""
    out = {}
    for t in sorted({1, threads}):
        with num_threads(t):
            start = time.perf_counter()
            for p in paths:
                decode(p, size)
            out[f"decode_threads_{t}"] = len(paths) / (time.perf_counter() - start)
    return out


def measure_gpu_settings(
    catalog: Catalog,
    name: str,
    images: torch.Tensor,
    labels: torch.Tensor,
    device: torch.device,
    size: int = 224,
    steps: int = 10,
) -> dict:
    """GPU settings of whole-network training at ``size`` px, each measured: bfloat16 autocast, channels_last
    and batch size of a training step; loader workers and pinned memory for augmented photos."""
    base = build_model(catalog.classes, name, False, "full", image_size=size)  # speed: any weights
    view = view_for(base.spec, train=True)  # base.spec.image_size is size
    out: dict = {
        "train_step": [],
        "photo_loader": [],
        "fruitlib": {
            "bf16_autocast": native_bf16(device),
            "channels_last": True,
            "pin_memory": True,
            "loader_workers": loader_workers(device),
        },
    }
    for bf16 in (False, True):
        for channels_last in (False, True):
            fmt = torch.channels_last if channels_last else torch.contiguous_format
            for batch in (64, 128):
                model = copy.deepcopy(base).to(device, memory_format=fmt).train()
                x = view.batch(images[:batch]).to(device).contiguous(memory_format=fmt)
                speed = train_step_images_per_s(model, x, labels[:batch].to(device), bf16, steps)
                out["train_step"].append(
                    {"bf16_autocast": bf16, "channels_last": channels_last, "batch_size": batch, "images_per_s": speed}
                )
                del model, x
    data = ImageTensorDataset(images, labels, view)
    for workers in sorted({0, 4, loader_workers(device)}):
        for pin in (False, True):
            loader = make_loader(
                data,
                DEFAULTS.batch_size,
                shuffle=True,
                generator=torch.Generator().manual_seed(0),
                num_workers=workers,
                pin_memory=pin,
                persistent_workers=workers > 0,
            )
            speeds = []
            for _ in range(2):  # as fit uses it: workers started once; the second epoch is the steady state
                start, seen = time.perf_counter(), 0
                for x, _ in loader:
                    x.to(device, non_blocking=True)
                    seen += len(x)
                torch.cuda.synchronize()
                speeds.append(seen / (time.perf_counter() - start))
            out["photo_loader"].append(
                {
                    "workers": workers,
                    "pin_memory": pin,
                    "first_epoch_images_per_s": speeds[0],
                    "images_per_s": speeds[1],
                }
            )
            del loader
    return out


if __name__ == "__main__" and sys.argv[1:2] == ["--probe-openmp"]:  # see measure_openmp_wait
    print(json.dumps(probe_openmp(**json.loads(sys.argv[2]))))

"""The settings behind fruitlib's speed, measured, and the timing helpers that the benchmark shares.

Part of ``benchmarks/bench.py`` (its "CPU settings" and "GPU settings" sections); run on its own only as
``python benchmarks/settings.py --probe-openmp JOB``, the fresh process that :func:`measure_openmp_wait` starts.
"""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time

import torch
from torch import nn
from torchvision.transforms import v2

from fruitlib.augment import PhotoView, eval_transform, num_threads, train_transform
from fruitlib.data import Catalog, ImageTensorDataset, decode, make_loader, stored_size
from fruitlib.models import build_model
from fruitlib.run import RunConfig
from fruitlib.train import loader_workers, make_optimizer, native_bf16

DEFAULTS = RunConfig()  # fruitlib's defaults: what `python -m fruitlib train` runs


# ----------------------------------------------------------------------------- timing helpers


def images_per_second(loader, n_batches: int | None = None) -> tuple[float, int, float]:
    """Iterate ``loader`` once (or ``n_batches`` of it): (images per second, images, seconds)."""
    seen, start = 0, time.perf_counter()
    for i, (x, _) in enumerate(loader):
        seen += len(x)
        if n_batches is not None and i + 1 >= n_batches:
            break
    seconds = time.perf_counter() - start
    return seen / seconds, seen, seconds


def eval_batches(images: torch.Tensor, spec, batch_size: int) -> list[torch.Tensor]:
    """The evaluation view of ``images``, float, in batches: what the backbone sees, prepared in advance."""
    view = eval_transform(spec.image_size, spec.mean, spec.std)
    return [view.batch(images[s:s + batch_size]) for s in range(0, len(images), batch_size)]


def augment_images_per_s(view: PhotoView, images: torch.Tensor, batch_size: int = 64) -> dict:
    """fruitlib's training augmentation without a loader: the per-photo crops, then the per-batch colour step."""
    start = time.perf_counter()
    crops = view.crops(images)
    middle = time.perf_counter()
    for s in range(0, len(crops), batch_size):
        view.finish(crops[s:s + batch_size])
    end = time.perf_counter()
    return {"crop": len(images) / (middle - start), "batch": len(images) / (end - middle),
            "both": len(images) / (end - start)}


def torchvision_augment_images_per_s(spec, images: torch.Tensor) -> float:
    """The same augmentation done photo by photo with torchvision's v2 transforms (what fruitlib replaced)."""
    augment = v2.Compose([v2.RandomResizedCrop(spec.image_size, scale=(0.35, 1.0), antialias=True),
                          v2.RandomHorizontalFlip(), v2.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2),
                          v2.ToDtype(torch.float32, scale=True), v2.Normalize(spec.mean, spec.std)])
    with num_threads(1):  # its fastest setting for one small photo
        start = time.perf_counter()
        for image in images:
            augment(image)
        return len(images) / (time.perf_counter() - start)


def backbone_forward_seconds(model, batches: list[torch.Tensor], channels_last: bool = True,
                             device: torch.device = torch.device("cpu"), grad: str = "inference") -> float:
    """Seconds for one forward pass of every stage (and the pooling) over prepared batches.

    ``grad``: ``inference`` (torch.inference_mode, fruitlib's choice for frozen stages), ``no_grad``, or
    ``grad`` (autograd records the graph, as it would for stages that are not frozen).
    """
    model.eval().to(device)
    context = {"inference": torch.inference_mode, "no_grad": torch.no_grad, "grad": torch.enable_grad}[grad]
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    with context():
        for x in batches if device.type == "cuda" else batches[:1]:  # warm-up: first-call costs; on a GPU also
            model.features(x.to(device).contiguous(memory_format=fmt))  # its clocks and a kernel choice per shape
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for x in batches:
            x = x.to(device).contiguous(memory_format=fmt)
            if grad == "grad":
                x.requires_grad_(True)
            model.features(x).mean(dim=(2, 3))
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start


# ----------------------------------------------------------------------------- the settings, measured


def measure_settings(model_full, images: torch.Tensor, n: int, batch_sizes: list[int],
                     loader_workers: tuple[int, ...] = (0, 1, 2)) -> dict:
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
    forward = [{"threads": t, "channels_last": cl, "batch_size": b, "images_per_s": max(v), "rounds": v}
               for (t, cl, b), v in speeds.items()]
    out["frozen_forward"] = forward
    best = max(forward, key=lambda r: r["images_per_s"])
    default = next(r for r in forward if r["threads"] == threads and r["channels_last"] and r["batch_size"] == 64) \
        if 64 in batch_sizes else None
    out["frozen_forward_best"], out["frozen_forward_fruitlib"] = best, default

    b = 64 if 64 in batch_sizes else batch_sizes[0]
    grads, rounds = ("inference", "no_grad", "grad"), {}
    for order in (grads, grads[::-1]):  # both orders, best of two, as above
        for g in order:
            rounds.setdefault(g, []).append(half / backbone_forward_seconds(model_full, batches[b], True, cpu, g))
    out["grad_mode_images_per_s"] = {g: max(v) for g, v in rounds.items()}

    augment = train_transform(spec.image_size, spec.mean, spec.std)
    steps = {}
    for t in thread_options:
        with num_threads(t):
            steps[f"threads_{t}"] = augment_images_per_s(augment, images[:n])
    out["augment_images_per_s"] = steps
    out["torchvision_v2_augment_images_per_s"] = torchvision_augment_images_per_s(spec, images[:n])

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
    augment = train_transform(model.spec.image_size, model.spec.mean, model.spec.std)
    return {"forward_images_per_s": len(images) / seconds,
            "augment_images_per_s": augment_images_per_s(augment, images)["both"],
            "torch_threads": torch.get_num_threads()}


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
        done = subprocess.run([sys.executable, __file__, "--probe-openmp", json.dumps(job)], env=env,
                              capture_output=True, text=True, check=True)
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


def train_step_images_per_s(model, x: torch.Tensor, y: torch.Tensor, bf16: bool, steps: int, warmup: int = 3) -> float:
    """Training steps (forward, backward, AdamW) per second on one batch already on its device, times its size."""
    optimizer = make_optimizer(list(model.parameters()), "adamw", 1e-4, 1e-4)
    gpu = x.device.type == "cuda"

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16 and gpu):
            loss = nn.functional.cross_entropy(model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(warmup):  # cuDNN picks its kernels, memory is allocated
        step()
    if gpu:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if gpu:
        torch.cuda.synchronize()
    return len(x) * steps / (time.perf_counter() - start)


def measure_gpu_settings(catalog: Catalog, name: str, images: torch.Tensor, labels: torch.Tensor,
                         device: torch.device, size: int = 224, steps: int = 10) -> dict:
    """GPU settings of whole-network training at ``size`` px, each measured: bfloat16 autocast, channels_last
    and batch size of a training step; loader workers and pinned memory for augmented photos."""
    base = build_model(catalog.classes, name, False, "full", image_size=size)  # speed: any weights
    view = train_transform(size, base.spec.mean, base.spec.std)
    out: dict = {"train_step": [], "photo_loader": [],
                 "fruitlib": {"bf16_autocast": native_bf16(device), "channels_last": True, "pin_memory": True,
                              "loader_workers": loader_workers(device)}}
    for bf16 in (False, True):
        for channels_last in (False, True):
            fmt = torch.channels_last if channels_last else torch.contiguous_format
            for batch in (64, 128):
                model = copy.deepcopy(base).to(device, memory_format=fmt).train()
                x = view.batch(images[:batch]).to(device).contiguous(memory_format=fmt)
                speed = train_step_images_per_s(model, x, labels[:batch].to(device), bf16, steps)
                out["train_step"].append({"bf16_autocast": bf16, "channels_last": channels_last, "batch_size": batch,
                                          "images_per_s": speed})
                del model, x
    data = ImageTensorDataset(images, labels, view)
    for workers in sorted({0, 4, loader_workers(device)}):
        for pin in (False, True):
            loader = make_loader(data, DEFAULTS.batch_size, shuffle=True, generator=torch.Generator().manual_seed(0),
                                 num_workers=workers, pin_memory=pin, persistent_workers=workers > 0)
            speeds = []
            for _ in range(2):  # as fit uses it: workers started once; the second epoch is the steady state
                start, seen = time.perf_counter(), 0
                for x, _ in loader:
                    x.to(device, non_blocking=True)
                    seen += len(x)
                torch.cuda.synchronize()
                speeds.append(seen / (time.perf_counter() - start))
            out["photo_loader"].append({"workers": workers, "pin_memory": pin, "first_epoch_images_per_s": speeds[0],
                                        "images_per_s": speeds[1]})
            del loader
    return out


def settings_summary(s: dict) -> list[str]:
    lines = []
    best, mine = s["frozen_forward_best"], s["frozen_forward_fruitlib"]
    lines.append(f"frozen forward, best: threads {best['threads']}, channels_last {best['channels_last']}, "
                 f"batch {best['batch_size']}: {best['images_per_s']:.0f} img/s")
    if mine:
        lines.append(f"frozen forward, fruitlib's choice (threads {mine['threads']}, channels_last on, batch 64): "
                     f"{mine['images_per_s']:.0f} img/s ({mine['images_per_s'] / best['images_per_s']:.0%} of best)")
    for key in ("threads", "channels_last", "batch_size"):
        by = {}
        for r in s["frozen_forward"]:
            by.setdefault(r[key], []).append(r["images_per_s"])
        lines.append(f"  {key}: " + ", ".join(f"{k} -> {sum(v) / len(v):.0f} img/s (mean)" for k, v in by.items()))
    g = s["grad_mode_images_per_s"]
    lines.append("grad mode for frozen stages: " + ", ".join(f"{k} {v:.0f}" for k, v in g.items()) + " img/s")
    lines.append("augmentation (no loader): " + ", ".join(
        f"{k}: crop per photo {v['crop']:.0f}, colour per batch {v['batch']:.0f}, both {v['both']:.0f}"
        for k, v in s["augment_images_per_s"].items()) + " img/s; the same with torchvision v2, photo by photo: "
        f"{s['torchvision_v2_augment_images_per_s']:.0f} img/s")
    if "train_step_images_per_s" in s:
        t = s["train_step_images_per_s"]
        lines.append(f"training step, whole network, float32, batch 32: channels_last {t['channels_last']:.0f}, "
                     f"contiguous {t['contiguous']:.0f} img/s (fit uses channels_last)")
    lines.append("augmented loader (whole-network training input): "
                 + ", ".join(f"{k} {v:.0f}" for k, v in s["augmented_loader_images_per_s"].items()) + " img/s")
    lines.append("decode one by one (ImagePathDataset): "
                 + ", ".join(f"{k} {v:.0f}" for k, v in s["decode_images_per_s"].items()) + " img/s")
    if "openmp_wait_policy" in s:
        w = s["openmp_wait_policy"]
        lines.append("OpenMP wait policy (fresh processes, default threads): " + ", ".join(
            f"{k}: forward {w[k]['forward_images_per_s']:.0f}, augmentation {w[k]['augment_images_per_s']:.0f} img/s"
            for k in ("default", "PASSIVE")))
    return lines


def gpu_settings_summary(g: dict) -> list[str]:
    steps = g["train_step"]
    best = max(steps, key=lambda r: r["images_per_s"])
    mine = next(r for r in steps if r["bf16_autocast"] and r["channels_last"] and r["batch_size"] == DEFAULTS.batch_size)
    lines = [f"training step, best: bf16 {best['bf16_autocast']}, channels_last {best['channels_last']}, "
             f"batch {best['batch_size']}: {best['images_per_s']:.0f} img/s",
             f"training step, fruitlib's choice (bf16, channels_last, batch {DEFAULTS.batch_size}): "
             f"{mine['images_per_s']:.0f} img/s ({mine['images_per_s'] / best['images_per_s']:.0%} of best)"]
    lines += ["  " + ", ".join(f"bf16 {r['bf16_autocast']}, cl {r['channels_last']}, batch {r['batch_size']}: "
                               f"{r['images_per_s']:.0f}" for r in steps)]
    lines.append("augmented photos to the GPU (224 px, 2nd epoch): " + ", ".join(
        f"{r['workers']} workers{' pinned' if r['pin_memory'] else ''} {r['images_per_s']:.0f}"
        for r in g["photo_loader"]) + f" img/s; fruitlib uses {g['fruitlib']['loader_workers']} workers, pinned")
    return lines


if __name__ == "__main__" and sys.argv[1:2] == ["--probe-openmp"]:  # see measure_openmp_wait
    print(json.dumps(probe_openmp(**json.loads(sys.argv[2]))))

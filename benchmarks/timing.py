"""How the benchmarks time things: a whole ``fruitlib train`` in a subprocess, loaders, forward passes, training steps,
and the machine they ran on. Each helper times one thing; the comparisons are made in ``items.py``."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import cv2
import torch
from torch import nn
from torch.utils.data import DataLoader

from fruitlib.augment import view_for
from fruitlib.cache import stage_runner
from fruitlib.train import make_optimizer


def timed_train(args: list[str], out: Path, cache: Path, env: dict[str, str] | None = None) -> dict:
    """Run ``fruitlib train --out out *args`` with ``$FRUITLIB_CACHE=cache``; its metrics and its resource use.

    Peak memory is the child's own peak RSS (``os.wait4``); the log is ``out``'s sibling ``<out>.log``.
    """
    command = [sys.executable, "-m", "fruitlib", "train", "--out", str(out), *args]
    log_path = out.with_name(out.name + ".log")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        start = time.perf_counter()
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=os.environ | {"FRUITLIB_CACHE": str(cache)} | (env or {})
        )
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:  # interrupted: do not leave the training run behind
            process.kill()
            process.wait()
            raise
        wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n" + log_path.read_text()[-3000:])
    rss = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)  # bytes on macOS, KiB on Linux
    return {
        "command": " ".join(command),
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_bytes": rss,
        "peak_rss_gib": rss / 2**30,
        "metrics": json.loads((out / "metrics.json").read_text()),
    }


@contextmanager
def fruitlib_cache(folder: Path):
    """Point fruitlib's on-disk cache (``$FRUITLIB_CACHE``) at ``folder`` inside the block."""
    before = os.environ.get("FRUITLIB_CACHE")
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["FRUITLIB_CACHE"] = str(folder)
    try:
        yield folder
    finally:
        if before is None:
            os.environ.pop("FRUITLIB_CACHE", None)
        else:
            os.environ["FRUITLIB_CACHE"] = before


def drop(folder: Path, pattern: str = "*.pt") -> None:
    """Empty (part of) a cache folder, so that the next measurement starts cold."""
    for path in folder.glob(pattern):
        path.unlink()


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
    view = view_for(spec)
    return [view.batch(images[s : s + batch_size]) for s in range(0, len(images), batch_size)]


def backbone_forward_seconds(
    model,
    batches: list[torch.Tensor],
    channels_last: bool = True,
    device: torch.device = torch.device("cpu"),  # noqa: B008 - a torch.device is immutable
    grad: str = "inference",
) -> float:
    """Seconds for one PyTorch forward pass of every stage (and the pooling) over prepared batches.

    ``grad``: ``inference`` (torch.inference_mode), ``no_grad``, or ``grad`` (autograd records the graph, as it
    would for stages that are not frozen).
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


def engine_forward_seconds(model, batches: list[torch.Tensor], device: torch.device) -> float:
    """One pass of fruitlib's engine for the frozen stages (ONNX Runtime on a CPU, PyTorch on a GPU) over prepared
    batches, after a warm-up batch (and the export, outside the timing)."""
    run = stage_runner(model, len(model.stages), device)
    run(batches[0].to(device))
    start = time.perf_counter()
    for x in batches:
        run(x.to(device))
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


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


class TimeCapped:
    """A loader that stops handing out batches once ``deadline`` (a ``perf_counter`` time) has passed."""

    def __init__(self, loader: DataLoader, deadline: float):
        self.loader, self.deadline, self.seen, self.complete = loader, deadline, 0, True

    def __iter__(self):
        self.seen, self.complete = 0, True
        for x, y in self.loader:
            yield x, y
            self.seen += len(y)
            if time.perf_counter() > self.deadline and self.seen < len(self.loader.dataset):
                self.complete = False
                return


def load_average() -> tuple[float, float, float]:
    """The 1, 5 and 15-minute load averages (NaN where the system does not report them)."""
    try:
        return os.getloadavg()
    except OSError:
        return (float("nan"),) * 3


def machine(device: torch.device) -> dict:
    """What the figures were measured on: CPU, cores, library versions, threads, device, load, environment."""
    cpuinfo = Path("/proc/cpuinfo")
    cpu = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in cpuinfo.read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        )
        if cpuinfo.exists()
        else platform.processor()
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "opencv": cv2.__version__,
        "parallel_backend": next(
            (
                line.split(":", 1)[1].strip()
                for line in torch.__config__.parallel_info().splitlines()
                if "parallel backend" in line
            ),
            "",
        ),
        "device": str(device),
        "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": load_average(),
        "environment": {
            k: os.environ.get(k)
            for k in (
                "OMP_NUM_THREADS",
                "OMP_WAIT_POLICY",
                "GOMP_SPINCOUNT",
                "MKL_NUM_THREADS",
                "CUDA_VISIBLE_DEVICES",
                "FRUITLIB_ENGINE",
            )
        },
    }

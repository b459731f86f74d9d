"""Frozen feature extraction, engine against engine: PyTorch eager, ONNX Runtime, OpenVINO (if installed).

For each backbone and image size: images per second through the frozen stages and the pooling (batch 64,
real photos of the train split, centre crop; best of two passes after a warm-up batch), the achieved share of
the CPU's peak FLOP rate, and the largest difference of each engine's features from PyTorch's (relative to the
largest feature). Prints a table and writes JSON. fruitlib runs the frozen stages on ONNX Runtime
(``fruitlib.engines``); OpenVINO (``pip install openvino``) is measured only to compare.

    .venv/bin/python benchmarks/engines.py --data ../shared/data/GroceryStoreDataset
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from fruitlib import engines, models
from fruitlib.augment import eval_transform
from fruitlib.cache import load_split
from fruitlib.data import find_data, make_splits, scan
from fruitlib.models import build_model

# FP32 FLOPs per cycle and core: two 256-bit FMA units (AMD Zen 2-4; Zen 4 runs AVX-512 on them), 8 lanes, 2 FLOPs
# each. Intel Xeons with two 512-bit FMA units reach 64: pass --flops-per-cycle 64 there.
FLOPS_PER_CYCLE = 32


def cpu_ghz() -> float:
    """The clock /proc/cpuinfo reports (under a hypervisor: the nominal one; turbo is not visible)."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("cpu MHz"):
            return float(line.split(":")[1]) / 1000
    return float("nan")


def flops_per_image(trunk: torch.nn.Module, size: int) -> float:
    """FLOPs (2 per multiply-add) of one image through ``trunk``, counted by torch's FlopCounterMode."""
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        trunk(torch.zeros(1, 3, size, size))
    return counter.get_total_flops()


def images_per_second(run, batches: list[torch.Tensor], rounds: int = 2) -> float:
    """Best of ``rounds`` passes over ``batches`` (one warm-up batch first)."""
    run(batches[0])
    best = float("inf")
    for _ in range(rounds):
        began = time.perf_counter()
        for x in batches:
            run(x)
        best = min(best, time.perf_counter() - began)
    return sum(len(x) for x in batches) / best


def openvino_runner(path: Path):
    """OpenVINO's CPU plugin on the same ONNX export, in float32 (its default on some CPUs is bfloat16)."""
    import openvino

    compiled = openvino.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return lambda x: torch.from_numpy(compiled(x.contiguous().numpy())[0].copy())


def runners(trunk: models.Trunk, size: int, path: Path) -> dict:
    """Every engine installed here, each as a function of a float batch."""
    found = {"pytorch eager, channels-last": engines.pytorch_runner(trunk)}
    engines.export(trunk, size, path)
    if importlib.util.find_spec("onnxruntime"):
        found["onnxruntime"] = engines.onnx_runner(path)
    if importlib.util.find_spec("openvino"):
        found["openvino"] = openvino_runner(path)
    return found


def measure(backbone: str, size: int, photos: torch.Tensor, peak: float, folder: Path) -> list[dict]:
    model = build_model(["a", "b"], backbone, True, "frozen", image_size=size).eval()
    spec = model.spec
    view = eval_transform(size, spec.mean, spec.std)
    batches = [view.batch(photos[i : i + 64]) for i in range(0, len(photos), 64)]
    trunk = models.Trunk(model, len(model.stages))
    flops = flops_per_image(trunk, size)
    with torch.inference_mode():
        reference = torch.cat([trunk(x) for x in batches[:2]])
    rows = []
    for name, run in runners(trunk, size, folder / f"{backbone}-{size}.onnx").items():
        got = torch.cat([run(x) for x in batches[:2]])
        speed = images_per_second(run, batches)
        rows.append(
            {
                "backbone": backbone,
                "size": size,
                "engine": name,
                "images_per_s": speed,
                "gflops_per_image": flops / 1e9,
                "share_of_peak": speed * flops / peak,
                "max_rel_diff": float((got - reference).abs().max() / reference.abs().max()),
            }
        )
        print(
            f"{backbone:<20}{size:>5}  {name:<30}{speed:>7.1f} img/s  {flops / 1e9:5.2f} GFLOP/img  "
            f"{rows[-1]['share_of_peak']:6.1%} of peak  features within {rows[-1]['max_rel_diff']:.1e}",
            flush=True,
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="data set (default: $FRUITLIB_DATA)")
    parser.add_argument(
        "--backbones", nargs="+", default=["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]
    )
    parser.add_argument("--sizes", nargs="+", type=int, default=[224])
    parser.add_argument("--photos", type=int, default=256, help="photos timed per configuration")
    parser.add_argument("--flops-per-cycle", type=int, default=FLOPS_PER_CYCLE)
    parser.add_argument("--out", default="benchmarks/engines.json")
    args = parser.parse_args()
    catalog = make_splits(scan(find_data(args.data), "coarse", "Fruit"), 0.2, 0)
    cores = len(os.sched_getaffinity(0))
    peak = cores * cpu_ghz() * 1e9 * args.flops_per_cycle
    print(
        f"{platform.processor() or platform.machine()}, {cores} cores at {cpu_ghz():.2f} GHz: peak "
        f"{peak / 1e9:.0f} GFLOP/s FP32 ({args.flops_per_cycle} FLOPs/cycle/core); torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes:
            photos = load_split(catalog, "train", size, progress=False).images[: args.photos]
            for backbone in args.backbones:
                rows += measure(backbone, size, photos, peak, Path(folder))
    Path(args.out).write_text(
        json.dumps(
            {"cores": cores, "ghz": cpu_ghz(), "peak_gflops": peak / 1e9, "torch": torch.__version__, "rows": rows},
            indent=2,
        )
    )
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()

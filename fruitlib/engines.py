"""Engines for the frozen stages: ONNX Runtime running an export of them, or PyTorch itself.

The frozen stages compute the same features every time, so any engine that computes them close enough to
PyTorch's answer may run them (``tests/test_engines.py`` checks the agreement; ``benchmarks/engines.py`` measures
the speed and the largest difference). On a CPU, fruitlib uses ONNX Runtime where it is installed; on a GPU, or
with ``FRUITLIB_ENGINE=pytorch``, PyTorch. The engine is recorded in each run's ``params.json``.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from .errors import FruitlibError
from .files import remove_stale_temporaries, writing
from .models import FruitNet, Trunk

ENGINES = ("onnxruntime", "pytorch")
Runner = Callable[[torch.Tensor], torch.Tensor]


def choose(device: torch.device) -> str:
    """``$FRUITLIB_ENGINE`` if set; else ONNX Runtime on a CPU where it is installed; else PyTorch."""
    wanted = os.environ.get("FRUITLIB_ENGINE")
    if wanted and wanted not in ENGINES:
        raise FruitlibError(f"FRUITLIB_ENGINE={wanted} is not an engine: use one of {', '.join(ENGINES)}")
    installed = all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime"))  # the export needs onnx
    if wanted == "onnxruntime" and not installed:
        raise FruitlibError("FRUITLIB_ENGINE=onnxruntime, but it is not installed: pip install onnx onnxruntime")
    if wanted:
        return wanted
    return "onnxruntime" if device.type == "cpu" and installed else "pytorch"


def export(trunk: Trunk, size: int, path: Path) -> Path:
    """``trunk`` as ONNX with a free batch dimension (written under a temporary name, then renamed)."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with writing(path, "the ONNX export"):
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path.parent)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the TorchScript-based exporter is chatty
                torch.onnx.export(
                    trunk.eval(),
                    (torch.zeros(1, 3, size, size),),
                    str(tmp),
                    dynamo=False,
                    input_names=["image"],
                    output_names=["features"],
                    dynamic_axes={"image": {0: "batch"}, "features": {0: "batch"}},
                )
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return path


def pytorch_runner(trunk: Trunk) -> Runner:
    """PyTorch eager, channels-last, inference mode."""
    trunk.eval().to(memory_format=torch.channels_last)

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return trunk(x.contiguous(memory_format=torch.channels_last))

    return run


def onnx_runner(path: Path) -> Runner:
    """ONNX Runtime on the CPU, with as many threads as torch uses; batches in, CPU tensors out."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda x: torch.from_numpy(session.run(None, {"image": x.cpu().contiguous().numpy()})[0])


def runner(model: FruitNet, stop: int, device: torch.device, export_path: Path | None) -> tuple[Runner, str]:
    """The frozen stages ``[0, stop)`` of ``model`` as a function of a float batch, and the engine's name.

    ``export_path``: where the ONNX export of those stages is kept (made if missing), named by their weights;
    None, or a folder that cannot be written: the export goes to a temporary folder, removed once it is loaded.
    """
    trunk = Trunk(model, stop)
    engine = choose(device)
    if engine == "pytorch":
        return pytorch_runner(trunk), engine
    if export_path is not None and not export_path.is_file():
        try:
            export(trunk, model.spec.image_size, export_path)
        except FruitlibError:  # a cache that cannot be written (cache.cached says so)
            export_path = None
    if export_path is None:
        with tempfile.TemporaryDirectory() as folder:  # ONNX Runtime reads the whole file when it opens it
            return onnx_runner(export(trunk, model.spec.image_size, Path(folder) / "stages.onnx")), engine
    return onnx_runner(export_path), engine

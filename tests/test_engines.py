"""fruitlib.engines: ONNX Runtime computes what PyTorch computes, is chosen where it should be, and is exported once."""

from __future__ import annotations

import pytest
import torch
from conftest import one_line

from fruitlib import FruitlibError, engines, models
from fruitlib.cache import stage_runner
from fruitlib.evaluate import predict_images
from fruitlib.models import build_model


def relative_gap(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("name, pretrained, stop", [("efficientnet_lite0", True, None), ("resnet18", False, 3)])
def test_onnx_runtime_gives_pytorchs_features(name, pretrained, stop, tmp_path):
    model = build_model(["a", "b"], name, pretrained, "frozen", image_size=64).eval()
    stop = stop or len(model.stages)
    x = torch.randn(5, 3, 64, 64)
    with torch.no_grad():
        expected = model.features(x, 0, stop)
        expected = expected.mean(dim=(2, 3), keepdim=True) if stop == len(model.stages) else expected
    onnx, engine = engines.runner(model, stop, torch.device("cpu"), tmp_path / "trunk.onnx")
    assert engine == "onnxruntime" and (tmp_path / "trunk.onnx").is_file()
    got = onnx(x)
    assert got.shape == expected.shape and relative_gap(got, expected) < 1e-4
    assert torch.allclose(engines.pytorch_runner(models.Trunk(model, stop))(x), expected, atol=1e-5)


def test_the_engine_is_onnx_runtime_on_a_cpu_and_pytorch_elsewhere_or_when_asked(monkeypatch):
    monkeypatch.delenv("FRUITLIB_ENGINE", raising=False)
    assert engines.choose(torch.device("cpu")) == "onnxruntime"
    assert engines.choose(torch.device("cuda")) == "pytorch"
    monkeypatch.setenv("FRUITLIB_ENGINE", "pytorch")
    assert engines.choose(torch.device("cpu")) == "pytorch"
    monkeypatch.setenv("FRUITLIB_ENGINE", "tensorrt")
    with pytest.raises(FruitlibError, match="not an engine") as error:
        engines.choose(torch.device("cpu"))
    assert one_line(str(error.value))


def test_without_onnx_runtime_pytorch_runs_the_stages(monkeypatch):
    monkeypatch.delenv("FRUITLIB_ENGINE", raising=False)
    monkeypatch.setattr(engines.importlib.util, "find_spec", lambda name: None)
    assert engines.choose(torch.device("cpu")) == "pytorch"
    monkeypatch.setenv("FRUITLIB_ENGINE", "onnxruntime")
    with pytest.raises(FruitlibError, match="pip install onnx onnxruntime"):
        engines.choose(torch.device("cpu"))


def test_the_export_is_made_once_per_weights(isolated):
    model = build_model(["a", "b"], "efficientnet_lite0", True, "frozen", image_size=32)
    stage_runner(model, len(model.stages))
    exports = sorted((isolated["cache"] / "onnx").glob("*.onnx"))
    made = exports[0].stat().st_ino  # an export written again is a new file (using it only touches its time)
    stage_runner(model, len(model.stages))
    assert sorted((isolated["cache"] / "onnx").glob("*.onnx")) == exports and exports[0].stat().st_ino == made
    with torch.no_grad():
        model.stages[-1][0]._project_conv.weight.mul_(2)  # other weights: another export
    stage_runner(model, len(model.stages))
    assert len(list((isolated["cache"] / "onnx").glob("*.onnx"))) == 2


def test_predictions_match_the_whole_network_in_pytorch(isolated):
    torch.manual_seed(0)
    model = build_model(["a", "b", "c"], "efficientnet_lite0", True, "frozen", image_size=32).eval()
    images = torch.randint(0, 256, (9, 3, 37, 37), dtype=torch.uint8)
    probs, labels = predict_images(model, images, torch.zeros(9, dtype=torch.long), batch_size=4)
    from fruitlib.augment import eval_transform

    with torch.no_grad():
        expected = torch.softmax(model(eval_transform(32, model.spec.mean, model.spec.std).batch(images)), 1)
    assert probs.shape == (9, 3) and abs(probs - expected.numpy()).max() < 1e-4


def test_scoring_a_trained_model_leaves_no_export_in_the_cache(isolated, monkeypatch):
    monkeypatch.delenv("FRUITLIB_ENGINE", raising=False)  # ONNX Runtime, which exports
    torch.manual_seed(0)
    model = build_model(["a", "b"], "efficientnet_lite0", False, "full", image_size=32)
    images, labels = torch.randint(0, 256, (4, 3, 40, 40), dtype=torch.uint8), torch.tensor([0, 1, 0, 1])
    probs, _ = predict_images(model, images, labels)
    assert not list(isolated["cache"].rglob("*.onnx"))  # used once: exported to a temporary folder, then removed
    assert probs.shape == (4, 2)
    stage_runner(model, len(model.stages))  # the features of a network are reused: that export is kept
    kept = list((isolated["cache"] / "onnx").glob("*.onnx"))
    predict_images(model, images, labels)  # and scoring uses it rather than export again
    assert list((isolated["cache"] / "onnx").glob("*.onnx")) == kept and len(kept) == 1

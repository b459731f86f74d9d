"""fruitlib.explain (Grad-CAM) and fruitlib.export (ONNX): shapes, ranges, and the export answering alike."""

from __future__ import annotations

import pytest
import torch

from fruitlib.explain import grad_cam
from fruitlib.models import build_model


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(["apple", "banana", "kiwi"], "efficientnet_lite0", mode="frozen", image_size=32).eval()


def test_grad_cam_maps_are_in_zero_one_at_input_size(model):
    x = torch.randn(2, 3, 32, 32)
    maps = grad_cam(model, x)
    assert maps.shape == (2, 32, 32) and not maps.requires_grad
    assert maps.min() >= 0 and maps.max() <= 1 + 1e-6
    peaks = maps.flatten(1).max(1).values
    assert all(abs(float(p) - 1) < 1e-5 or float(p) == 0 for p in peaks)  # scaled to a peak of 1 (or all zero)
    assert all(p.grad is None for p in model.parameters())  # explaining does not train


def test_grad_cam_follows_the_target_class(model):
    x = torch.randn(1, 3, 32, 32)
    maps = [grad_cam(model, x, torch.tensor([c])) for c in range(3)]
    assert not all(torch.allclose(maps[0], m) for m in maps[1:])


def test_onnx_export_answers_like_the_model(model, tmp_path):
    pytest.importorskip("onnxruntime")
    from fruitlib.export import check, to_onnx

    path = to_onnx(model, tmp_path / "model.onnx")
    assert path.is_file() and path.stat().st_size > 100_000
    result = check(model, path, torch.randn(3, 3, 32, 32))  # another batch size than the export's example
    assert result["same_predictions"] and result["max_abs_diff"] < 1e-3


@pytest.mark.parametrize("name", ["efficientnet_lite1", "efficientnet_lite2"])
def test_the_larger_lites_go_everywhere_a_backbone_goes(name, tmp_path):
    from fruitlib.checkpoint import model_from_checkpoint, save_checkpoint
    from fruitlib.export import check, to_onnx

    torch.manual_seed(0)
    model = build_model(["apple", "banana"], name, mode="frozen", image_size=32).eval()
    x = torch.randn(2, 3, 32, 32)
    save_checkpoint(tmp_path / "model.pt", model, {"backbone": name})
    loaded = model_from_checkpoint(tmp_path / "model.pt")
    with torch.no_grad():
        assert loaded.spec.backbone == name and torch.allclose(loaded(x), model(x), atol=1e-6)
    assert grad_cam(model, x).shape == (2, 32, 32)
    assert check(model, to_onnx(model, tmp_path / "m.onnx"), x)["same_predictions"]

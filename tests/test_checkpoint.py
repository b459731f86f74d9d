"""fruitlib.checkpoint: atomic saves, safe loading, one-line errors, identical predictions after a reload."""

from __future__ import annotations

import pytest
import torch
from conftest import one_line

from fruitlib import FruitlibError
from fruitlib.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from fruitlib.models import build_model

CLASSES = ["apple", "banana", "kiwi"]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    net = build_model(CLASSES, "efficientnet_lite0", mode="last", image_size=32)
    with torch.no_grad():
        net.head.weight.normal_()  # not the initial head: a reload must bring these back
    return net.eval()


def test_round_trip_keeps_spec_params_training_and_predictions(tmp_path, model):
    path = save_checkpoint(tmp_path / "run" / "model.pt", model, {"lr": 0.1, "seed": 3}, {"history": [{"epoch": 1}]})
    assert path == tmp_path / "run" / "model.pt" and path.is_file()
    state = load_checkpoint(path)
    assert state["params"] == {"lr": 0.1, "seed": 3} and state["training"] == {"history": [{"epoch": 1}]}
    assert state["spec"]["classes"] == CLASSES and state["spec"]["backbone"] == "efficientnet_lite0"
    again = model_from_checkpoint(path)
    assert not again.training
    assert again.spec == model.spec  # pretrained, image size, normalisation, weights source: all kept
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(again(x), model(x))
    assert [f.name for f in path.parent.iterdir()] == ["model.pt"]  # no temporary file left


def test_resnet_checkpoint_round_trip(tmp_path):
    net = build_model(["a", "b"], "resnet18", pretrained=False, mode="frozen").eval()
    model_path = save_checkpoint(tmp_path / "m.pt", net, {})
    again = model_from_checkpoint(model_path)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(again(x), net(x))


def test_failed_save_keeps_the_previous_checkpoint_and_leaves_no_temporary_file(tmp_path, model, monkeypatch):
    path = save_checkpoint(tmp_path / "model.pt", model, {"version": 1})
    before = path.read_bytes()
    real_save = torch.save

    def crash_half_way(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt  # Ctrl-C in the middle of writing

    monkeypatch.setattr(torch, "save", crash_half_way)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, model, {"version": 2})
    monkeypatch.setattr(torch, "save", real_save)
    assert path.read_bytes() == before
    assert load_checkpoint(path)["params"] == {"version": 1}
    assert sorted(f.name for f in tmp_path.iterdir()) == ["model.pt"]


def test_a_weights_file_is_not_a_checkpoint(tmp_path):
    torch.save({"weight": torch.zeros(2, 2)}, tmp_path / "weights.pt")
    with pytest.raises(FruitlibError, match="not a fruitlib checkpoint") as error:
        load_checkpoint(tmp_path / "weights.pt")
    assert one_line(str(error.value)) and "weights.pt" in str(error.value)
    with pytest.raises(FruitlibError, match="not a fruitlib checkpoint"):
        model_from_checkpoint(tmp_path / "weights.pt")


@pytest.mark.parametrize("content", [b"", b"garbage" * 50])
def test_unreadable_checkpoint(tmp_path, content):
    (tmp_path / "model.pt").write_bytes(content)
    with pytest.raises(FruitlibError) as error:
        model_from_checkpoint(tmp_path / "model.pt")
    assert one_line(str(error.value)) and str(tmp_path / "model.pt") in str(error.value)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(FruitlibError, match="does not exist"):
        load_checkpoint(tmp_path / "nothing.pt")


def test_checkpoint_whose_classes_do_not_match_its_weights(tmp_path, model):
    path = save_checkpoint(tmp_path / "model.pt", model, {})
    state = torch.load(path, weights_only=True)
    state["spec"]["classes"] = CLASSES + ["durian"]  # four class names, a three-output head
    torch.save(state, path)
    with pytest.raises(FruitlibError) as error:
        model_from_checkpoint(path)
    assert one_line(str(error.value)) and "head" in str(error.value) and str(path) in str(error.value)


def test_checkpoint_with_weights_of_another_backbone(tmp_path, model):
    path = save_checkpoint(tmp_path / "model.pt", model, {})
    state = torch.load(path, weights_only=True)
    state["spec"]["backbone"] = "resnet18"
    state["spec"]["image_size"] = 32
    torch.save(state, path)
    with pytest.raises(FruitlibError) as error:
        model_from_checkpoint(path)
    assert one_line(str(error.value))

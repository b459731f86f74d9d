"""fruitlib.weights: where ImageNet weights come from, and one-line errors for every bad weights file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from conftest import one_line

from fruitlib import FruitlibError
from fruitlib.models import build_model
from fruitlib.weights import (
    LITES,
    lite_weights_file,
    load_into,
    load_state_dict_file,
    resnet_weights_enum,
    resnet_weights_file,
)

URL50 = "https://download.pytorch.org/models/resnet50-0676ba61.pth"


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("w18") / "resnet18-f37072fd.pth"
    torch.manual_seed(2)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    return path


def test_resnet50_entry_is_the_articles_file():
    assert resnet_weights_enum("resnet50").url == URL50


def test_missing_resnet_weights_offline_name_the_file_the_url_and_the_way_out(isolated):
    with pytest.raises(FruitlibError) as error:
        resnet_weights_file("resnet50")
    message = str(error.value)
    assert one_line(message)
    assert "resnet50-0676ba61.pth" in message and URL50 in message and "efficientnet_lite0" in message
    assert set(isolated["download_attempts"]) == {URL50}  # a download was tried (and refused offline)
    with pytest.raises(FruitlibError, match="efficientnet_lite0"):
        build_model(["a", "b"], "resnet50", pretrained=True)


def test_no_download_when_asked_not_to(isolated):
    with pytest.raises(FruitlibError):
        resnet_weights_file("resnet18", download=False)
    assert isolated["download_attempts"] == []


def test_weights_found_in_fruitlib_weights_then_torch_hub(tmp_path, monkeypatch, isolated):
    hub = Path(torch.hub.get_dir())
    assert hub.parent.name.startswith("torch-home")  # the test's own TORCH_HOME, not the user's
    in_hub = hub / "checkpoints" / "resnet18-f37072fd.pth"
    in_hub.parent.mkdir(parents=True)
    in_hub.write_bytes(b"x")
    assert resnet_weights_file("resnet18") == in_hub
    mine = tmp_path / "mine" / "resnet18-f37072fd.pth"
    mine.parent.mkdir()
    mine.write_bytes(b"x")
    monkeypatch.setenv("FRUITLIB_WEIGHTS", str(mine.parent))
    assert resnet_weights_file("resnet18") == mine  # $FRUITLIB_WEIGHTS comes first
    assert resnet_weights_file("resnet18", in_hub) == in_hub  # an explicit path comes before both
    assert isolated["download_attempts"] == []


def test_explicit_missing_weights_file(tmp_path):
    with pytest.raises(FruitlibError) as error:
        build_model(["a", "b"], "resnet18", weights=tmp_path / "nope.pth")
    assert one_line(str(error.value)) and "nope.pth" in str(error.value)


def test_random_bytes_are_a_one_line_error_naming_the_file(tmp_path):
    path = tmp_path / "resnet18-garbage.pth"
    path.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(FruitlibError) as error:
        build_model(["a", "b"], "resnet18", weights=path)
    assert one_line(str(error.value)) and str(path) in str(error.value)


def test_truncated_weights_file(tmp_path, resnet18_file):
    path = tmp_path / "truncated.pth"
    data = resnet18_file.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FruitlibError, match="truncated") as error:
        build_model(["a", "b"], "resnet18", weights=path)
    assert one_line(str(error.value)) and str(path) in str(error.value)


def test_state_dict_of_another_architecture(resnet18_file):
    with pytest.raises(FruitlibError) as error:
        build_model(["a", "b"], "resnet34", weights=resnet18_file)
    message = str(error.value)
    assert one_line(message) and str(resnet18_file) in message and "resnet34" in message
    with pytest.raises(FruitlibError) as error:
        build_model(["a", "b"], "efficientnet_lite0", weights=resnet18_file, image_size=32)
    assert one_line(str(error.value))


def test_right_architecture_wrong_shapes(tmp_path, resnet18_file):
    state = torch.load(resnet18_file, weights_only=True)
    state["fc.weight"] = torch.zeros(10, 512)
    state["fc.bias"] = torch.zeros(10)
    torch.save(state, tmp_path / "ten-classes.pth")
    with pytest.raises(FruitlibError, match="size mismatch") as error:
        build_model(["a", "b"], "resnet18", weights=tmp_path / "ten-classes.pth")
    assert one_line(str(error.value))


def test_explicit_weights_are_loaded(resnet18_file):
    model = build_model(["a", "b"], "resnet18", weights=resnet18_file)
    state = torch.load(resnet18_file, weights_only=True)
    assert torch.equal(model.stages[1][0].conv1.weight, state["layer1.0.conv1.weight"])
    assert model.spec.weights_source == str(resnet18_file) and model.spec.pretrained


def test_files_that_are_not_state_dicts(tmp_path):
    torch.save([torch.zeros(2)], tmp_path / "list.pt")
    with pytest.raises(FruitlibError, match="does not hold a state dict"):
        load_state_dict_file(tmp_path / "list.pt", "weights file")
    torch.save({"f": np.float64(1.5).__class__}, tmp_path / "code.pt")  # a pickled class: refused unread
    with pytest.raises(FruitlibError, match="not a readable PyTorch file") as error:
        load_state_dict_file(tmp_path / "code.pt", "weights file")
    assert one_line(str(error.value))
    with pytest.raises(FruitlibError, match="does not exist"):
        load_state_dict_file(tmp_path / "missing.pt", "weights file")


def test_load_into_is_strict():
    layer = torch.nn.Linear(2, 2)
    with pytest.raises(FruitlibError) as error:
        load_into(layer, {"weight": torch.zeros(2, 2)}, "w.pth", "a layer")
    assert one_line(str(error.value)) and "bias" in str(error.value)


@pytest.mark.parametrize("name", LITES)
def test_lite_weights_ship_offline(name):
    path = lite_weights_file(name)
    assert path.is_file() and path.suffix == ".pth"
    assert "_conv_stem.weight" in load_state_dict_file(path, "weights file")

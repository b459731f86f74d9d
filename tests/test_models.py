"""fruitlib.models: every backbone builds, transfer modes freeze the right stages, auto picks sensibly."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from fruitlib import FruitlibError
from fruitlib.config import RESNETS
from fruitlib.models import (
    BACKBONES,
    IMAGENET_MEAN,
    IMAGENET_STD,
    MODES,
    LiteStage,
    backbone_network,
    build_model,
    count_parameters,
    imagenet_classifier,
    original_head,
    param_groups,
    resolve_backbone,
    set_mode,
    wrap,
)
from fruitlib.run import RunConfig, run_params
from fruitlib.weights import LITES

CLASSES = ["apple", "banana", "kiwi", "lime", "plum"]


@pytest.mark.parametrize("name", BACKBONES)
def test_every_backbone_builds_with_a_head_for_the_classes(name):
    pretrained = name in LITES  # resnets offline: random initialisation
    # the big resnets are built on the meta device: the same code, shapes only, no seconds of random init
    device = torch.device("cpu" if name == "resnet18" or name in LITES else "meta")
    with device:
        model = build_model(CLASSES, name, pretrained=pretrained, image_size=32)
        x = torch.randn(2, 3, 32, 32)
    assert model.spec.backbone == name and model.spec.classes == CLASSES and model.spec.pretrained == pretrained
    assert model.head.out_features == len(CLASSES)
    assert model.head.in_features == (512 if name in ("resnet18", "resnet34") else 2048 if name in RESNETS else 1280)
    model.eval()
    with torch.no_grad():
        out = model(x)
        assert model.embed(x[:1]).shape == (1, model.head.in_features)
    assert out.shape == (2, len(CLASSES))
    if device.type == "cpu":
        assert torch.isfinite(out).all()
    if name in RESNETS:
        assert len(model.stages) == 5 and model.spec.weights_source == "random initialisation"
        assert model.spec.mean == IMAGENET_MEAN and model.spec.std == IMAGENET_STD
    else:
        assert model.spec.weights_source.endswith(".pth")


@pytest.mark.parametrize("name", LITES)
def test_lite_pretrained_weights_are_really_loaded(name):
    a = build_model(CLASSES, name, pretrained=True, image_size=32)
    b = build_model(CLASSES, name, pretrained=True, image_size=32)
    c = build_model(CLASSES, name, pretrained=False, image_size=32)
    assert torch.equal(a.stages[0][0].weight, b.stages[0][0].weight)
    assert not torch.equal(a.stages[0][0].weight, c.stages[0][0].weight)


def test_features_by_stage_compose_to_the_whole():
    model = build_model(CLASSES, "resnet18", pretrained=False).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        middle = model.features(x, 0, 2)
        assert torch.allclose(model.features(middle, 2), model.features(x), atol=1e-5)
        assert torch.allclose(model.head(model.embed(middle, 2)), model(x), atol=1e-5)


@pytest.mark.parametrize("name", ["resnet18", "efficientnet_lite0"])
def test_modes_order_the_trainable_parameter_counts(name):
    model = build_model(CLASSES, name, pretrained=name != "resnet18", image_size=32)
    counts = {}
    for mode in MODES:
        set_mode(model, mode)
        counts[mode] = count_parameters(model)
    head = sum(p.numel() for p in model.head.parameters())
    total = counts["full"][1]
    assert counts["frozen"][0] == head
    assert head < counts["last"][0] < counts["full"][0] == total
    assert {c[1] for c in counts.values()} == {total}
    set_mode(model, "last")
    assert all(not p.requires_grad for p in model.stages[:-1].parameters())
    assert all(p.requires_grad for p in model.stages[-1].parameters())
    set_mode(model, "last", last_stages=2)
    assert count_parameters(model)[0] > counts["last"][0]


def test_default_mode_is_full_and_bad_mode_is_an_error():
    model = build_model(CLASSES, "resnet18", pretrained=False)
    assert count_parameters(model)[0] == count_parameters(model)[1]
    with pytest.raises(FruitlibError, match="mode must be one of"):
        set_mode(model, "half")


def test_unknown_backbone_is_a_one_line_error():
    with pytest.raises(FruitlibError, match="unknown backbone 'vgg16'") as error:
        build_model(CLASSES, "vgg16", pretrained=False)
    assert "\n" not in str(error.value)


def test_count_parameters():
    layer = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))  # 16 + 10 parameters
    layer[0].requires_grad_(False)
    assert count_parameters(layer) == (10, 26)


def bn_stats(module: nn.Module) -> list[torch.Tensor]:
    return [b.running_mean.clone() for b in module.modules() if isinstance(b, nn.BatchNorm2d)]


def one_training_step(model: nn.Module) -> None:
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.1)
    x, y = torch.randn(4, 3, 32, 32) * 3 + 1, torch.tensor([0, 1, 2, 3])
    nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()


@pytest.mark.parametrize("mode", MODES)
def test_frozen_stages_stay_in_eval_mode_and_keep_batchnorm_statistics(mode):
    torch.manual_seed(0)
    model = build_model(CLASSES, "resnet18", pretrained=False, mode=mode)
    model.train()
    n_frozen = {"frozen": 5, "last": 4, "full": 0}[mode]
    assert model.frozen_stages == n_frozen
    assert all(not s.training for s in model.stages[:n_frozen])
    assert all(s.training for s in model.stages[n_frozen:]) and model.head.training
    before = [bn_stats(s) for s in model.stages]
    weights = [s.state_dict()["0.weight" if i == 0 else "0.conv1.weight"].clone() for i, s in enumerate(model.stages)]
    one_training_step(model)
    for i, stage in enumerate(model.stages):
        unchanged = all(torch.equal(a, b) for a, b in zip(before[i], bn_stats(stage)))
        same_weights = torch.equal(weights[i], stage.state_dict()["0.weight" if i == 0 else "0.conv1.weight"])
        assert unchanged == same_weights == (i < n_frozen), (mode, i)
    model.eval()
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(not s.training for s in model.stages[:n_frozen])


def test_auto_falls_back_to_lite0_offline_and_says_so(isolated):
    name, why = resolve_backbone("auto")
    assert name == "efficientnet_lite0"
    assert "offline" in why and "EfficientNet-Lite0" in why
    model = build_model(["a", "b"], "auto", image_size=32)
    assert model.spec.backbone == "efficientnet_lite0" and model.spec.pretrained


@pytest.mark.parametrize("size, lite", [(64, 0), (224, 0), (232, 0), (240, 1), (250, 1), (260, 2), (300, 2)])
def test_offline_auto_takes_the_lite_trained_nearest_the_image_size(isolated, size, lite):
    name, why = resolve_backbone("auto", image_size=size)
    assert name == f"efficientnet_lite{lite}" and f"EfficientNet-Lite{lite}" in why


def test_auto_from_scratch_picks_the_same_network_as_transfer(isolated):
    cfg = RunConfig(scratch=True)
    assert (
        run_params(cfg)["backbone"]
        == resolve_backbone("auto", image_size=cfg.image_size)[0]
        == run_params(RunConfig())["backbone"]
    )
    assert resolve_backbone("resnet34") == ("resnet34", "chosen explicitly")


@pytest.fixture(scope="module")
def fake_resnet50_weights(tmp_path_factory):
    """A resnet50 state dict (random, not ImageNet) under the file name torchvision publishes."""
    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(1)
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), folder / "resnet50-0676ba61.pth")
    return folder


def test_auto_picks_resnet50_when_its_weights_are_in_fruitlib_weights(fake_resnet50_weights, monkeypatch, isolated):
    monkeypatch.setenv("FRUITLIB_WEIGHTS", str(fake_resnet50_weights))
    name, why = resolve_backbone("auto")
    assert name == "resnet50" and "found" in why
    model = build_model(["a", "b"], "auto", mode="frozen", image_size=64)
    assert model.spec.backbone == "resnet50" and model.spec.pretrained
    assert model.spec.weights_source == str(fake_resnet50_weights / "resnet50-0676ba61.pth")
    state = torch.load(fake_resnet50_weights / "resnet50-0676ba61.pth", weights_only=True)
    assert torch.equal(model.stages[0][0].weight, state["conv1.weight"])
    assert torch.equal(model.stages[4][0].conv1.weight, state["layer4.0.conv1.weight"])
    assert isolated["download_attempts"] == []


def test_imagenet_classifier_keeps_the_original_head():
    model = imagenet_classifier("efficientnet_lite0", image_size=32)
    assert len(model.spec.classes) == 1000 and model.head.out_features == 1000
    assert model.spec.classes[0] == "tench" and not model.training
    assert count_parameters(model)[0] == sum(p.numel() for p in model.head.parameters())
    state = torch.load(model.spec.weights_source, map_location="cpu", weights_only=True)
    assert torch.equal(model.head.weight, state["_fc.weight"])


def original_and_wrapped(name: str, dropout: bool):
    """The original network (ImageNet weights for Lite0, random for a ResNet offline) and its FruitNet twin."""
    net, source = backbone_network(name, name in LITES, image_size=64)
    model = wrap(name, net, [str(i) for i in range(1000)], source, image_size=64, dropout=dropout)
    model.head.load_state_dict(original_head(net).state_dict())
    return net.eval(), model.eval()


@pytest.mark.parametrize("name", ["resnet18", *LITES])
@pytest.mark.parametrize("dropout", [False, True])
def test_a_fruitnet_in_eval_mode_gives_the_original_networks_logits(name, dropout):
    net, model = original_and_wrapped(name, dropout)
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(x), net(x), atol=1e-5)


@pytest.mark.parametrize("name, rate", [("efficientnet_lite0", 0.2), ("efficientnet_lite2", 0.3)])
def test_lite_keeps_its_own_dropout_and_drop_connect_only_when_asked(name, rate):
    _, kept = original_and_wrapped(name, dropout=True)
    _, off = original_and_wrapped(name, dropout=False)
    assert kept.dropout.p == rate and off.dropout.p == 0.0
    rates = [r for stage in kept.stages if isinstance(stage, LiteStage) for r in stage.rates]
    assert rates[0] == 0.0 and rates == sorted(rates) and 0.18 < rates[-1] < 0.2  # linear in depth, up to 0.2
    assert all(r == 0 for stage in off.stages if isinstance(stage, LiteStage) for r in stage.rates)
    x = torch.randn(4, 3, 64, 64)
    with torch.no_grad():
        kept.train(), off.train()
        assert not torch.allclose(kept(x), kept(x))  # random: dropout and drop-connect are on
        assert torch.allclose(off(x), off(x))  # batch statistics only: the same twice


def test_param_groups_give_the_head_its_own_rate():
    model = build_model(CLASSES, "resnet18", pretrained=False, mode="last")
    groups = param_groups(model, lr=1e-3, backbone_lr=3e-4)
    assert [(g["name"], g["lr"]) for g in groups] == [("backbone", 3e-4), ("head", 1e-3)]
    assert sum(p.numel() for g in groups for p in g["params"]) == count_parameters(model)[0]
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in model.head.parameters()}
    frozen = param_groups(set_mode(model, "frozen"), lr=1e-3, backbone_lr=3e-4)
    assert [g["name"] for g in frozen] == ["head"]

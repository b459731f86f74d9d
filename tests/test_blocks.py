"""Fast checks of fruitlib.blocks: our blocks match torchvision's, and the measuring tools behave."""

import functools
import math

import pytest
import torch
import torchvision
from torchvision.models import resnet as tv

from fruitlib import blocks
from fruitlib.models import count_parameters


def tv_basic(in_ch: int, out_ch: int, stride: int) -> tv.BasicBlock:
    downsample = None
    if stride != 1 or in_ch != out_ch:
        downsample = torch.nn.Sequential(
            torch.nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), torch.nn.BatchNorm2d(out_ch)
        )
    return tv.BasicBlock(in_ch, out_ch, stride, downsample)


@functools.cache
def resnet50() -> torchvision.models.ResNet:
    return torchvision.models.resnet50(weights=None)


CASES = [  # (ours, theirs, input channels)
    (lambda: blocks.BasicBlock(16, 16), lambda: tv_basic(16, 16, 1), 16),
    (lambda: blocks.BasicBlock(16, 32, stride=2), lambda: tv_basic(16, 32, 2), 16),
    (lambda: blocks.Bottleneck(64, 64), lambda: resnet50().layer1[0], 64),
    (lambda: blocks.Bottleneck(256, 128, stride=2), lambda: resnet50().layer2[0], 256),
]


@pytest.mark.parametrize("make_ours, make_theirs, in_ch", CASES)
def test_blocks_match_torchvision(make_ours, make_theirs, in_ch):
    torch.manual_seed(0)
    ours, theirs = make_ours(), make_theirs()
    assert count_parameters(ours) == count_parameters(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict())  # strict: every name and shape must match
    x = torch.randn(2, in_ch, 12, 12)
    for mode in (False, True):  # eval (running stats) and train (batch stats)
        ours.train(mode), theirs.train(mode)
        with torch.no_grad():
            y_ours, y_theirs = ours(x), theirs(x)
        assert y_ours.shape == y_theirs.shape
        assert torch.allclose(y_ours, y_theirs, atol=1e-6)


def test_bottleneck_that_keeps_its_shape_has_no_projection():
    theirs = resnet50().layer1[1]  # 256 -> 64 -> 256, identity shortcut
    ours = blocks.Bottleneck(256, 64)
    assert ours.downsample is None and theirs.downsample is None
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(1, 256, 8, 8)
    assert torch.allclose(ours.eval()(x), theirs.eval()(x), atol=1e-6)


@pytest.mark.parametrize(
    "make",
    [
        lambda s: blocks.BasicBlock(8, 8, skip=s),
        lambda s: blocks.BasicBlock(8, 16, stride=2, skip=s),
        lambda s: blocks.Bottleneck(32, 8, skip=s),
    ],
)
def test_skip_false_removes_the_shortcut(make):
    torch.manual_seed(0)
    residual, plain = make(True).eval(), make(False).eval()
    assert plain.downsample is None
    plain.load_state_dict(residual.state_dict(), strict=False)  # the same convolutions, no projection
    x = torch.randn(2, residual.conv1.in_channels, 8, 8)
    with torch.no_grad():
        y_plain, y_res = plain(x), residual(x)
    assert y_plain.shape == y_res.shape
    assert not torch.allclose(y_plain, y_res)


def test_basic_block_computes_relu_of_body_plus_input():
    plain = blocks.BasicBlock(8, 8, skip=False).eval()
    residual = blocks.BasicBlock(8, 8).eval()
    residual.load_state_dict(plain.state_dict())
    x = torch.randn(2, 8, 8, 8)
    with torch.no_grad():
        body = plain.bn2(plain.conv2(torch.relu(plain.bn1(plain.conv1(x)))))
        assert torch.allclose(plain(x), torch.relu(body))
        assert torch.allclose(residual(x), torch.relu(body + x))


def test_resnet_stats():
    stats = [blocks.resnet_stats(name) for name in blocks.RESNETS]
    params = [s["params"] for s in stats]
    assert params == sorted(params) and len(set(params)) == len(params)
    assert stats[2]["params"] == 25_557_032  # resnet50
    assert [s["blocks"] for s in stats] == [8, 16, 16, 33, 50]
    assert all(s["flops"] == 2 * s["macs"] for s in stats)
    assert 4.0e9 < stats[2]["macs"] < 4.2e9  # the usual "4.1 GMACs" of ResNet-50 at 224 px
    small = blocks.resnet_stats("resnet50", image_size=112)
    assert small["params"] == stats[2]["params"] and small["macs"] < stats[2]["macs"] / 3
    with pytest.raises(ValueError):
        blocks.resnet_stats("resnet1000")


@pytest.mark.parametrize("skip", [False, True])
def test_deep_net_and_gradient_norms(skip):
    torch.manual_seed(0)
    net = blocks.DeepNet(depth=6, width=4, skip=skip, num_classes=5)
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 5, (8,))
    assert net(x).shape == (8, 5)
    assert all(b.skip == skip for b in net.blocks)
    norms = blocks.gradient_norms(net, x, y)
    assert len(norms) == 6
    assert all(math.isfinite(n) and n > 0 for n in norms)
    assert all(p.grad is None for p in net.parameters())  # leaves no gradients behind


def test_gradient_norms_on_a_torchvision_resnet():
    net = torchvision.models.resnet18(weights=None, num_classes=3)
    norms = blocks.gradient_norms(net, torch.randn(2, 3, 32, 32), torch.tensor([0, 2]))
    assert len(norms) == 8 and all(math.isfinite(n) for n in norms)


def test_stage_parameters_share_out_the_whole_network():
    for name in blocks.RESNETS:
        shares = blocks.stage_parameters(name)
        assert list(shares) == ["stem", "stage 1", "stage 2", "stage 3", "stage 4", "fc"]
        assert sum(shares.values()) == pytest.approx(1.0)
    assert max(blocks.stage_parameters("resnet50").items(), key=lambda kv: kv[1])[0] == "stage 4"
    assert max(blocks.stage_parameters("resnet152").items(), key=lambda kv: kv[1])[0] == "stage 3"  # its many blocks


def test_the_diagram_draws_both_blocks_with_the_shortcut_and_the_final_relu():
    fig = blocks.diagram()
    texts = [[t.get_text() for t in ax.texts] for ax in fig.axes]
    assert [ax.get_title() for ax in fig.axes] == [
        "basic block (ResNet-18, 34)",
        "bottleneck block (ResNet-50, 101, 152)",
    ]
    for words in texts:
        assert "+" in words and "ReLU" in words and any("shortcut" in w for w in words)
    convs = [sum(w.split(",")[0].endswith("conv") for w in words) for words in texts]  # layer boxes: "3x3 conv, 64"
    assert convs == [2, 3]

"""Residual blocks written from scratch, plus tools to measure ResNets and deep plain nets.

The blocks use torchvision's parameter names (``conv1``, ``bn1``, ..., ``downsample.0/.1``), so a
torchvision block's ``state_dict`` loads into ours unchanged. ``skip=False`` drops the shortcut and
turns a residual block into a "plain" one, for the degradation experiment of notebook 02.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .config import RESNETS
from .models import count_parameters, resnet_stages


def conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> tuple[nn.Conv2d, nn.BatchNorm2d]:
    """A bias-free convolution ("same" padding) and the batch norm that follows it."""
    conv = nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, bias=False)
    return conv, nn.BatchNorm2d(out_ch)


def shortcut(in_ch: int, out_ch: int, stride: int, skip: bool) -> nn.Sequential | None:
    """A 1x1 projection when the shape changes, else None (the identity, or no skip at all)."""
    if not skip or (stride == 1 and in_ch == out_ch):
        return None
    return nn.Sequential(*conv_bn(in_ch, out_ch, 1, stride))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions: ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`` (ResNet-18/34)."""

    expansion = 1

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, skip: bool = True):
        super().__init__()
        self.skip = skip
        self.conv1, self.bn1 = conv_bn(in_ch, out_ch, 3, stride)
        self.conv2, self.bn2 = conv_bn(out_ch, out_ch, 3)
        self.downsample = shortcut(in_ch, out_ch, stride, skip)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.skip:
            out = out + (x if self.downsample is None else self.downsample(x))
        return F.relu(out)


class Bottleneck(nn.Module):
    """1x1 reduce to ``mid_ch``, 3x3 at ``mid_ch``, 1x1 expand to ``mid_ch * expansion`` (ResNet-50+).

    As in torchvision (ResNet v1.5) the stride sits on the 3x3 convolution.
    """

    def __init__(self, in_ch: int, mid_ch: int, stride: int = 1, expansion: int = 4, skip: bool = True):
        super().__init__()
        self.skip, self.expansion = skip, expansion
        out_ch = mid_ch * expansion
        self.conv1, self.bn1 = conv_bn(in_ch, mid_ch, 1)
        self.conv2, self.bn2 = conv_bn(mid_ch, mid_ch, 3, stride)
        self.conv3, self.bn3 = conv_bn(mid_ch, out_ch, 1)
        self.downsample = shortcut(in_ch, out_ch, stride, skip)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.skip:
            out = out + (x if self.downsample is None else self.downsample(x))
        return F.relu(out)


def diagram() -> plt.Figure:
    """The basic and the bottleneck block drawn side by side: layers, the shortcut, the addition, the last ReLU."""
    designs = {
        "basic block (ResNet-18, 34)": (
            "x: 64 channels",
            ["3x3 conv, 64", "batch norm, ReLU", "3x3 conv, 64", "batch norm"],
        ),
        "bottleneck block (ResNet-50, 101, 152)": (
            "x: 256 channels",
            [
                "1x1 conv, 64 (reduce)",
                "batch norm, ReLU",
                "3x3 conv, 64",
                "batch norm, ReLU",
                "1x1 conv, 256 (expand)",
                "batch norm",
            ],
        ),
    }
    arrow = dict(arrowstyle="-|>", color="black", lw=1)
    fig, axes = plt.subplots(1, 2, figsize=(9, 5.5))
    for ax, (title, (top, layers)) in zip(axes, designs.items()):
        n = len(layers)
        ax.text(0, n + 1, top, ha="center", va="center", fontsize=10)
        for i, layer in enumerate(layers):  # F(x), top to bottom
            y = n - i
            ax.text(
                0,
                y,
                layer,
                ha="center",
                va="center",
                fontsize=9,
                bbox=dict(boxstyle="round,pad=0.35", fc="#dbe9f6" if "conv" in layer else "#f2f2f2", ec="grey"),
            )
            ax.annotate("", (0, y + 0.3), (0, y + 0.75), arrowprops=arrow)
        ax.annotate("", (0, 0.25), (0, 0.7), arrowprops=arrow)
        ax.text(0, 0, "+", ha="center", va="center", fontsize=13, bbox=dict(boxstyle="circle", fc="white", ec="black"))
        ax.plot([0, 1.3, 1.3], [n + 0.75, n + 0.75, 0], color="tab:red", lw=1.5)  # the shortcut, around F(x)
        ax.annotate("", (0.2, 0), (1.3, 0), arrowprops=dict(arrowstyle="-|>", color="tab:red", lw=1.5))
        ax.text(
            1.4,
            n / 2 + 0.5,
            "shortcut: x itself\n(a 1x1 conv + batch norm\nwhere the shape changes)",
            color="tab:red",
            fontsize=8,
            va="center",
        )
        ax.text(-1.5, n / 2 + 0.5, "F(x)", fontsize=11, va="center", color="tab:blue")
        ax.annotate("", (0, -0.75), (0, -0.25), arrowprops=arrow)
        ax.text(
            0,
            -1,
            "ReLU",
            ha="center",
            va="center",
            fontsize=9,
            bbox=dict(boxstyle="round,pad=0.35", fc="#f2f2f2", ec="grey"),
        )
        ax.annotate("", (0, -1.75), (0, -1.3), arrowprops=arrow)
        ax.text(0, -2.05, "y = relu(F(x) + x)", ha="center", va="center", fontsize=10)
        ax.set(xlim=(-1.8, 2.8), ylim=(-2.5, n + 1.5), title=title)
        ax.axis("off")
    fig.tight_layout()
    return fig


def stage_parameters(name: str) -> dict[str, float]:
    """Share of a torchvision ResNet's parameters in its stem, each of its four stages, and its final layer."""
    with torch.device("meta"):
        model = getattr(torchvision.models, name)(weights=None)
    stages, _ = resnet_stages(model)
    counts = {
        part: count_parameters(stage)[1]
        for part, stage in zip(["stem", "stage 1", "stage 2", "stage 3", "stage 4"], stages)
    }
    counts["fc"] = count_parameters(model.fc)[1]
    return {part: count / sum(counts.values()) for part, count in counts.items()}


def resnet_stats(name: str, image_size: int = 224) -> dict:
    """Blocks, parameters, FLOPs and MACs of one torchvision ResNet (``weights=None``) on one image.

    FLOPs come from ``torch.utils.flop_counter.FlopCounterMode``, which counts convolutions and matrix
    products only (2 FLOPs per multiply-accumulate; batch norm, ReLU and pooling are left out).
    The model is built on the ``meta`` device: nothing is allocated or downloaded.
    """
    if name not in RESNETS:
        raise ValueError(f"name must be one of {', '.join(RESNETS)}, not '{name}'")
    with torch.device("meta"):
        model = getattr(torchvision.models, name)(weights=None)
        x = torch.empty(1, 3, image_size, image_size)
    with FlopCounterMode(display=False) as counter:
        model(x)
    flops = counter.get_total_flops()
    blocks = sum(len(getattr(model, f"layer{i}")) for i in range(1, 5))
    return {"model": name, "blocks": blocks, "params": count_parameters(model)[1], "flops": flops, "macs": flops // 2}


class DeepNet(nn.Module):
    """A small CIFAR-style deep CNN: a 3x3 stem, ``depth`` BasicBlocks in three stages, pool, linear.

    The stages have ``width``, ``2*width`` and ``4*width`` channels; each later stage starts with a
    stride-2 block. With ``skip=False`` every block is plain, so the net has ``2*depth + 2`` layers
    stacked one after another; with ``skip=True`` it is the same net with shortcuts.
    """

    def __init__(self, depth: int = 18, width: int = 16, skip: bool = True, num_classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(*conv_bn(3, width, 3), nn.ReLU())
        blocks, in_ch = [], width
        for i in range(depth):
            stage = min(3 * i // depth, 2)
            out_ch = width * 2**stage
            blocks.append(BasicBlock(in_ch, out_ch, stride=2 if out_ch != in_ch else 1, skip=skip))
            in_ch = out_ch
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(in_ch, num_classes)
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def find_blocks(model: nn.Module) -> list[nn.Module]:
    """The residual-style blocks of a model, in order (``model.blocks`` if it has them)."""
    if isinstance(getattr(model, "blocks", None), nn.Sequential):
        return list(model.blocks)
    kinds = (BasicBlock, Bottleneck, torchvision.models.resnet.BasicBlock, torchvision.models.resnet.Bottleneck)
    return [m for m in model.modules() if isinstance(m, kinds)]


def gradient_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[float]:
    """The L2 norm of d(cross-entropy)/d(weights) of each block, for one batch, in training mode.

    Call it on a freshly built model to see how well the gradient reaches the early blocks at initialisation.
    The model's gradients are cleared before and after; its batch-norm statistics are updated once.
    """
    model.train()
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    norms = []
    for block in find_blocks(model):
        grads = [p.grad.flatten() for p in block.parameters() if p.grad is not None]
        norms.append(torch.cat(grads).norm().item())
    model.zero_grad(set_to_none=True)
    return norms

"""Backbones with a new head: ResNet-18..152 (torchvision) and EfficientNet-Lite0/1/2 (the offline stand-ins).

Every backbone becomes a :class:`FruitNet`: a sequence of *stages* (stem, ..., last stage), global
average pooling, dropout and a linear head for N classes. Transfer modes decide which stages train:
``frozen`` (fixed feature extractor: head only), ``last`` (last stage + head), ``full`` (everything).

EfficientNet-Lite was trained with its own regularisation, dropout 0.2 before the head and drop-connect in its
blocks (torchvision's ResNets have neither). ``dropout=True`` keeps both when the network is cut into stages;
the default leaves them off, as chosen on the validation split (``benchmarks/choose_settings.py``: the short
runs of the notebooks gained nothing from them, and training from scratch lost several points). Either way,
in eval mode a FruitNet computes exactly what the original network does (``tests/test_models.py``).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import torch
import torchvision.models as tvm
from torch import nn

from .config import MODES, RESNETS
from .errors import FruitlibError
from .weights import (
    LITES,
    lite_weights_file,
    load_into,
    load_state_dict_file,
    resnet_weights_enum,
    resnet_weights_file,
)

BACKBONES = (*RESNETS, *LITES)
LITE_NATIVE_SIZE = {"efficientnet_lite0": 224, "efficientnet_lite1": 240, "efficientnet_lite2": 260}  # trained at
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
LITE_MEAN, LITE_STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)


@dataclass
class ModelSpec:
    """All that is needed to rebuild a model and feed it images: saved in every checkpoint."""

    backbone: str
    classes: list[str]
    pretrained: bool
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    weights_source: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


class FruitNet(nn.Module):
    """stages -> global average pool -> dropout -> linear head. Frozen stages stay in eval mode while training."""

    def __init__(self, stages: list[nn.Module], feature_dim: int, spec: ModelSpec, dropout: float = 0.0):
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(feature_dim, len(spec.classes))
        self.spec = spec
        self.frozen_stages = 0

    def features(self, x: torch.Tensor, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Run stages ``start`` to ``stop`` (exclusive) on ``x``."""
        for stage in self.stages[start:stop]:
            x = stage(x)
        return x

    def embed(self, x: torch.Tensor, start: int = 0) -> torch.Tensor:
        """The pooled feature vector fed to the head."""
        return torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x, start), 1), 1)

    def classify(self, embedding: torch.Tensor) -> torch.Tensor:
        """Logits from pooled features: the backbone's dropout (active in training mode only), then the head."""
        return self.head(self.dropout(embedding))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.embed(x))

    def train(self, mode: bool = True) -> FruitNet:
        super().train(mode)
        for stage in self.stages[: self.frozen_stages]:
            stage.eval()  # frozen BatchNorm keeps its ImageNet statistics
        return self


class Trunk(nn.Module):
    """A FruitNet cut before stage ``stop``, the part before the cut: stages ``[0, stop)``, and when they are all of
    them, the average pool (``N x C x 1 x 1``). What the cache stores and the engines run (shares the weights)."""

    def __init__(self, model: FruitNet, stop: int):
        super().__init__()
        self.stages, self.pool = model.stages[:stop], stop >= len(model.stages)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = stage(x)
        return x.mean(dim=(2, 3), keepdim=True) if self.pool else x


class Tail(nn.Module):
    """A FruitNet cut before stage ``start``, the part after the cut: from a :class:`Trunk`'s output to the logits
    (what trains on cached activations; shares the weights)."""

    def __init__(self, model: FruitNet, start: int):
        super().__init__()
        self.model, self.start = model, start

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.classify(self.model.embed(x, self.start))


def set_mode(model: FruitNet, mode: str, last_stages: int = 1) -> FruitNet:
    """Freeze stages for ``frozen`` / ``last`` (the last ``last_stages`` train) / ``full`` fine-tuning."""
    if mode not in MODES:
        raise FruitlibError(f"mode must be one of {', '.join(MODES)}, not '{mode}'")
    n = len(model.stages)
    model.frozen_stages = {"frozen": n, "last": n - last_stages, "full": 0}[mode]
    for i, stage in enumerate(model.stages):
        stage.requires_grad_(i >= model.frozen_stages)
    model.head.requires_grad_(True)
    return model.train(model.training)


def param_groups(model: FruitNet, lr: float, backbone_lr: float | None) -> list[dict]:
    """Optimiser groups: the trainable stages (if any) at ``backbone_lr``, then the head at ``lr``.

    Fine-tuning gives the new, randomly initialised head a faster rate than the pretrained stages it sits on
    (a *discriminative* learning rate), so the head learns quickly while the pretrained features move gently.
    """
    head = [p for p in model.head.parameters() if p.requires_grad]
    body = [p for p in model.stages.parameters() if p.requires_grad]
    return ([{"name": "backbone", "params": body, "lr": backbone_lr}] if body else []) + [
        {"name": "head", "params": head, "lr": lr}
    ]


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def resnet_stages(net: tvm.ResNet) -> tuple[list[nn.Module], int]:
    """A torchvision ResNet's stem and four stages (``layer1`` to ``layer4``), and its feature width."""
    stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
    return [stem, net.layer1, net.layer2, net.layer3, net.layer4], net.fc.in_features


def _lite_network(name: str, image_size: int) -> nn.Module:
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name(name.replace("_", "-"), image_size=image_size)
    for layer in net.modules():  # TensorFlow's BatchNorm momentum 0.99 is PyTorch's 0.01: running statistics
        if isinstance(layer, nn.BatchNorm2d):  # would barely move in a short run; use PyTorch's usual 0.1
            layer.momentum = 0.1
    return net


class LiteStage(nn.Sequential):
    """MBConv blocks, each called with its drop-connect rate as EfficientNet's own forward does, then any layers.

    Drop-connect (stochastic depth) skips a block's residual branch for a random share of the photos of a
    training batch; the rate grows linearly with depth, from 0 to the network's ``drop_connect_rate``.
    """

    def __init__(self, blocks: list[nn.Module], rates: list[float], *after: nn.Module):
        super().__init__(*blocks, *after)
        self.rates = rates

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self):
            x = layer(x, drop_connect_rate=self.rates[i]) if i < len(self.rates) else layer(x)
        return x


def _lite_stages(net: nn.Module, dropout: bool) -> tuple[list[nn.Module], int]:
    """Stem, the MBConv stages (a new stage where channels change), the last one joined to the 1x1 head conv."""
    top = (net._global_params.drop_connect_rate or 0.0) if dropout else 0.0
    groups: list[list[int]] = []
    for i, block in enumerate(net._blocks):
        if not groups or block._block_args.input_filters != block._block_args.output_filters:
            groups.append([])
        groups[-1].append(i)
    stages = [nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6())]
    for group in groups:  # the rates of EfficientNet.extract_features: top * index / number of blocks
        after = (net._conv_head, net._bn1, nn.ReLU6()) if group is groups[-1] else ()
        stages.append(LiteStage([net._blocks[i] for i in group], [top * i / len(net._blocks) for i in group], *after))
    return stages, net._fc.in_features


def backbone_network(
    name: str, pretrained: bool, weights: str | os.PathLike | None = None, image_size: int = 224
) -> tuple[nn.Module, str]:
    """The original torchvision / EfficientNet-Lite network (1000-class head) and where its weights came from."""
    if name in RESNETS:
        net = tvm.get_model(name, weights=None)
        if not pretrained:
            return net, "random initialisation"
        path = resnet_weights_file(name, weights)
    elif name in LITES:
        net = _lite_network(name, image_size)
        if not pretrained:
            return net, "random initialisation"
        path = weights or lite_weights_file(name)
    else:
        raise FruitlibError(f"unknown backbone '{name}': choose one of {', '.join(BACKBONES)} or auto")
    load_into(net, load_state_dict_file(path, "weights file"), path, f"{name} ImageNet weights")
    return net, str(path)


def original_head(net: nn.Module) -> nn.Linear:
    """The 1000-class ImageNet layer of a network from :func:`backbone_network` (``fc``, or Lite's ``_fc``)."""
    return net.fc if isinstance(net, tvm.ResNet) else net._fc


def offline_lite(image_size: int) -> str:
    """The EfficientNet-Lite trained at the resolution nearest ``image_size`` (224, 240, 260 px: Lite0, 1, 2).

    EfficientNet scales width, depth and resolution together, so each variant is at its best near its own size.
    """
    return min(LITE_NATIVE_SIZE, key=lambda name: (abs(LITE_NATIVE_SIZE[name] - image_size), name))


def resolve_backbone(name: str, weights: str | os.PathLike | None = None, image_size: int = 224) -> tuple[str, str]:
    """``auto``: ResNet-50 when its ImageNet weights can be had, else :func:`offline_lite` of ``image_size``.

    Returns (name, why). The rule is the same for training from scratch, so that "auto" transfer and "auto"
    scratch runs compare the same architecture.
    """
    if name != "auto":
        if name not in BACKBONES:
            raise FruitlibError(f"unknown backbone '{name}': choose one of {', '.join(BACKBONES)} or auto")
        return name, "chosen explicitly"
    try:
        resnet_weights_file("resnet50", weights)
        return "resnet50", "auto: ResNet-50 ImageNet weights found"
    except FruitlibError:
        lite = offline_lite(image_size)
        return lite, (
            f"auto: no ResNet-50 ImageNet weights here (offline?), so the offline EfficientNet-Lite{lite[-1]} "
            "ImageNet weights stand in - not a ResNet"
        )


def normalisation(name: str) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """(mean, std) per RGB channel that a backbone's ImageNet weights expect (Lite: inputs in [-1, 1])."""
    return (IMAGENET_MEAN, IMAGENET_STD) if name in RESNETS else (LITE_MEAN, LITE_STD)


def wrap(
    name: str,
    net: nn.Module,
    classes: list[str],
    source: str = "",
    pretrained: bool = True,
    image_size: int = 224,
    dropout: bool = False,
) -> FruitNet:
    """``net`` (as :func:`backbone_network` returns it) cut into stages, with a new head for ``classes``.

    ``dropout``: keep the network's own dropout and drop-connect (EfficientNet-Lite's; ResNets have none).
    """
    if name in RESNETS:
        (stages, dim), rate = resnet_stages(net), 0.0
    else:
        (stages, dim), rate = _lite_stages(net, dropout), net._global_params.dropout_rate if dropout else 0.0
    spec = ModelSpec(name, list(classes), pretrained, image_size, *normalisation(name), source)
    return FruitNet(stages, dim, spec, rate)


def build_model(
    classes: list[str],
    backbone: str = "auto",
    pretrained: bool = True,
    mode: str = "full",
    weights: str | os.PathLike | None = None,
    image_size: int = 224,
    dropout: bool = False,
) -> FruitNet:
    """A backbone with a new head for ``classes``, frozen according to ``mode`` (``dropout``: see :func:`wrap`)."""
    name, _ = resolve_backbone(backbone, weights, image_size)
    net, source = backbone_network(name, pretrained, weights, image_size)
    return set_mode(wrap(name, net, classes, source, pretrained, image_size, dropout), mode)


def imagenet_classifier(
    backbone: str = "auto", weights: str | os.PathLike | None = None, image_size: int = 224
) -> FruitNet:
    """The pretrained network with its original 1000-class ImageNet head: what it "sees" before transfer."""
    name, _ = resolve_backbone(backbone, weights, image_size)
    net, source = backbone_network(name, True, weights, image_size)
    categories = resnet_weights_enum("resnet50").meta["categories"]  # the standard ImageNet-1k order
    model = wrap(name, net, categories, source, True, image_size)
    model.head.load_state_dict(original_head(net).state_dict())
    return set_mode(model, "frozen").eval()

"""Where does the model look? Grad-CAM on the last feature map (Selvaraju et al., 2017)."""

from __future__ import annotations

import torch
from torch import nn

from .models import FruitNet


def grad_cam(model: FruitNet, x: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
    """Heat maps in [0, 1], one per image of the batch ``x``, at the input's resolution.

    Each feature map of the last stage is weighted by the mean gradient of the class score
    (``target``, default: the predicted class) with respect to it; negative evidence is clipped.
    """
    model.eval()
    with torch.no_grad():
        maps = model.features(x)
    maps.requires_grad_(True)
    logits = model.classify(torch.flatten(nn.functional.adaptive_avg_pool2d(maps, 1), 1))
    target = logits.argmax(1) if target is None else target
    (grads,) = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), maps)
    cam = torch.relu((grads.mean(dim=(2, 3), keepdim=True) * maps).sum(1, keepdim=True))
    cam = nn.functional.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    peak = cam.flatten(1).max(1).values.clamp_min(1e-8)
    return (cam / peak[:, None, None]).detach()

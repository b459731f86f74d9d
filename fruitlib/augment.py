"""What the network sees of a decoded photo: a random augmented crop to train on, the centre crop to evaluate.

The augmentation is torchvision's recipe - ``RandomResizedCrop`` (its sampling), a horizontal flip, then
``ColorJitter`` of brightness, contrast and saturation, then ``Normalize`` - split in two steps as fastai does:

* per photo, :meth:`PhotoView.crop`: the box, resized in uint8 and channels-last (torch's fast path), flipped;
* per batch, :meth:`PhotoView.finish`: colour jitter and normalisation of all crops at once, in place
  (brightness, contrast and saturation are each a blend, so together they are one affine map per photo).

Done with ``torchvision.transforms.v2`` one operation at a time, the augmentation cost about 1 ms per 128-px
photo on our 2-core CPU, as much as decoding the JPEG, so caching decoded photos gained little; this way it costs
about 0.25 ms (``benchmarks/``: the settings section times both). ``tests/test_augment.py`` checks both steps against torchvision's functions.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F

GREY = torch.tensor([0.2989, 0.587, 0.114])  # torchvision's rgb_to_grayscale weights
TRIES = 10  # RandomResizedCrop's attempts at a box that fits, before it falls back to the centre


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run torch operations with ``n`` intra-op threads inside the block, then restore the setting.

    Per-photo work (decoding, crops, flips on one small image) gains nothing from several threads:
    waking them costs more than the work, and on a busy CPU a waiting thread can stall each small
    operation for milliseconds (measured: 3-10x slower, see ``benchmarks/``).
    """
    before = torch.get_num_threads()
    if n == before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def crop_box(height: int, width: int, scale: tuple[float, float], ratio: tuple[float, float],
             u: list[float]) -> tuple[int, int, int, int]:
    """``RandomResizedCrop``'s box (top, left, height, width) from ``2 * TRIES + 2`` uniform draws ``u``.

    Area a fraction in ``scale`` of the photo, aspect ratio log-uniform in ``ratio``; a box that does not fit
    is drawn again, up to ``TRIES`` times, then the whole photo is used, cut to the nearest allowed ratio.
    """
    area, log_lo, log_hi = height * width, math.log(ratio[0]), math.log(ratio[1])
    for k in range(TRIES):
        target = area * (scale[0] + (scale[1] - scale[0]) * u[2 * k])
        aspect = math.exp(log_lo + (log_hi - log_lo) * u[2 * k + 1])
        w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            return int(u[-2] * (height - h + 1)), int(u[-1] * (width - w + 1)), h, w
    aspect = width / height
    if aspect < ratio[0]:
        h, w = round(width / ratio[0]), width
    elif aspect > ratio[1]:
        h, w = height, round(height * ratio[1])
    else:
        h, w = height, width
    return (height - h) // 2, (width - w) // 2, h, w


def jitter_terms(pixels: torch.Tensor, factors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Brightness ``b``, then contrast ``c``, then saturation ``s`` of ``N x 3 x P`` pixels as ``y = k * x + t``.

    Each step is torchvision's blend of the image with black, with its mean grey, with its grey version, so
    together ``k = c b s`` per photo and ``t = c b (1 - s) grey(x) + (1 - c) b mean(grey(x))`` per pixel
    (``factors`` is ``N x 3``). torchvision clamps between the steps; here only the result is (they differ
    only at the extremes).
    """
    b, c, s = (f[:, None, None] for f in factors.unbind(1))
    grey = torch.matmul(GREY, pixels).unsqueeze(1)  # N x 1 x P
    mean = grey.mean(2, keepdim=True)
    return c * b * s, grey.mul_(c * b * (1 - s)).add_((1 - c) * b * mean)


class PhotoView:
    """A uint8 ``3 x S x S`` photo to a normalised float ``3 x size x size`` view, augmented when ``train``.

    ``view(image)`` does one photo, ``view.batch(images)`` several at once (faster: :meth:`finish` runs once).
    """

    def __init__(self, size: int, mean: tuple, std: tuple, train: bool, scale: tuple[float, float] = (0.35, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3), jitter: float = 0.2):
        self.size, self.train, self.scale, self.ratio, self.jitter = size, train, scale, ratio, jitter
        std_ = torch.tensor(std, dtype=torch.float32)[:, None]
        self.gain, self.shift = 1 / (255 * std_), -torch.tensor(mean, dtype=torch.float32)[:, None] / std_
        self.bounds = list(zip(self.shift[:, 0].tolist(), (self.shift + 255 * self.gain)[:, 0].tolist()))

    def __repr__(self) -> str:
        kind = f"train, scale={self.scale}, ratio={self.ratio}, jitter={self.jitter}" if self.train else "eval"
        return f"PhotoView(size={self.size}, {kind}, mean/std from the backbone)"

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return self.finish(self.crop(image)[None])[0]

    def batch(self, images: Sequence[torch.Tensor]) -> torch.Tensor:
        """The views of several photos as one ``N x 3 x size x size`` batch."""
        with torch_threads(1):
            crops = torch.stack([self.crop(image) for image in images])
        return self.finish(crops)

    def crop(self, image: torch.Tensor) -> torch.Tensor:
        """The uint8 ``3 x size x size`` crop of one photo: random box and flip to train, the centre to evaluate."""
        height, width = image.shape[-2:]
        if not self.train:
            top, left = (height - self.size) // 2, (width - self.size) // 2
            if min(top, left) < 0:
                raise ValueError(f"photo of {height}x{width} px is smaller than the {self.size}-px view")
            return image[:, top:top + self.size, left:left + self.size]
        with torch_threads(1):  # one small photo: threads would cost more than they save
            u = torch.rand(2 * TRIES + 3).tolist()  # box tries, box position, flip
            top, left, h, w = crop_box(height, width, self.scale, self.ratio, u[:-1])
            box = image[None, :, top:top + h, left:left + w]
            box = (box.flip(-1) if u[-1] < 0.5 else box).contiguous(memory_format=torch.channels_last)
            return F.interpolate(box, size=(self.size, self.size), mode="bilinear", antialias=True)[0]

    def finish(self, crops: torch.Tensor) -> torch.Tensor:
        """Normalised float views of ``N x 3 x size x size`` uint8 crops, colour-jittered when training."""
        n = len(crops)
        pixels = crops.to(torch.float32, copy=True).reshape(n, 3, -1)  # a copy: the steps below work in place
        if not (self.train and self.jitter):
            return pixels.mul_(self.gain).add_(self.shift).view(n, 3, self.size, self.size)  # (x / 255 - mean) / std
        k, t = jitter_terms(pixels, 1 - self.jitter + 2 * self.jitter * torch.rand(n, 3))
        pixels.mul_(k * self.gain).addcmul_(t, self.gain).add_(self.shift)  # jitter and normalise, in place
        for channel, (low, high) in enumerate(self.bounds):  # clamp to pixel values 0..255, normalised
            pixels[:, channel].clamp_(low, high)  # (one channel at a time: scalar bounds are the fast path)
        return pixels.view(n, 3, self.size, self.size)


def train_transform(image_size: int, mean: tuple, std: tuple) -> PhotoView:
    """Augmentation for training: a random crop of 35-100% of the photo, a flip, a little colour jitter."""
    return PhotoView(image_size, mean, std, train=True)


def eval_transform(image_size: int, mean: tuple, std: tuple) -> PhotoView:
    """The deterministic view used to evaluate: the centre crop, normalised like the backbone's inputs."""
    return PhotoView(image_size, mean, std, train=False)

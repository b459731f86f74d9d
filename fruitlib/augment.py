"""What the network sees of a decoded photo: a random augmented crop to train on, the centre crop to evaluate.

The augmentation is torchvision's recipe - ``RandomResizedCrop`` (its sampling, bilinear), a horizontal flip,
then ``ColorJitter`` of brightness, contrast and saturation, then ``Normalize`` - done in two steps:

* :meth:`PhotoView.crops`, per photo, in uint8 with OpenCV: the box resized and flipped;
* :meth:`PhotoView.finish`, per batch: the colour jitter, one 3 x 4 colour matrix per photo applied by OpenCV in
  uint8 (brightness, contrast and saturation are each a blend, so together they are one affine map), then the
  normalisation of the whole batch to float, channels-last (the memory layout fruitlib's networks run fastest in).

The two steps give torchvision's views (``tests/test_augment.py`` checks both against torchvision's functions),
at a fraction of its cost per photo: ``benchmarks/bench.py`` measures photos per second ("CPU settings"). The
resize is bilinear without antialiasing: a stored photo is at most 8/7 the size of its crop, too little shrinking
to alias.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import cv2
import numpy as np
import torch

GREY = np.array([0.2989, 0.587, 0.114])  # torchvision's rgb_to_grayscale weights
TRIES = 10  # RandomResizedCrop's attempts at a box that fits, before it falls back to the centre


@contextmanager
def num_threads(n: int) -> Iterator[None]:
    """Run torch and OpenCV operations with ``n`` threads inside the block, then restore the settings.

    Per-photo work (decoding, crops, colours of one small image) gains nothing from several threads: waking them
    costs more than the work, and on a busy CPU a waiting thread stalls each small operation (``benchmarks/bench.py``,
    "CPU settings", measures it). OpenCV kept to the calling thread also starts no thread pool, which
    ``DataLoader`` workers forked later could deadlock on.
    """
    before = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(n)
    cv2.setNumThreads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before[0])
        cv2.setNumThreads(before[1])


def crop_box(
    height: int, width: int, scale: tuple[float, float], ratio: tuple[float, float], u: list[float]
) -> tuple[int, int, int, int]:
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


def jitter_matrices(factors: np.ndarray, means: np.ndarray) -> np.ndarray:
    """Brightness ``b``, then contrast ``c``, then saturation ``s`` as one ``3 x 4`` colour matrix per photo.

    Each step is torchvision's blend of the image with black, with its mean grey, with its grey version, so
    together ``y = c b s x + c b (1 - s) grey(x) + (1 - c) b mean`` for every pixel ``x`` (an RGB column), where
    ``mean`` is the photo's mean grey level. ``factors`` is ``N x 3`` (b, c, s), ``means`` has ``N`` values;
    the matrices (``N x 3 x 4``) act on ``[r, g, b, 1]``. torchvision clamps between the steps; applied in uint8,
    these are clamped once, at the end (the two differ only at the extremes).
    """
    b, c, s = factors.T
    matrices = np.zeros((len(factors), 3, 4))
    matrices[:, :, :3] = (c * b * (1 - s))[:, None, None] * GREY  # the grey term, the same in every channel
    matrices[:, [0, 1, 2], [0, 1, 2]] += (c * b * s)[:, None]
    matrices[:, :, 3] = ((1 - c) * b * means)[:, None]
    return matrices


def pixels(image: torch.Tensor) -> np.ndarray:
    """A ``3 x H x W`` uint8 tensor as an ``H x W x 3`` array for OpenCV (no copy when it is channels-last)."""
    return np.ascontiguousarray(image.permute(1, 2, 0).numpy())


class PhotoView:
    """A uint8 ``3 x S x S`` photo to a normalised float ``3 x size x size`` view, augmented when ``train``.

    ``view(image)`` does one photo, ``view.batch(images)`` several at once (faster: the randomness is drawn and
    the normalisation done once per batch). Views are float, channels-last in memory. The random draws come from
    ``generator`` where one is given, else from torch's global random numbers (as a DataLoader's workers seed them).
    """

    def __init__(
        self,
        size: int,
        mean: tuple,
        std: tuple,
        train: bool,
        scale: tuple[float, float] = (0.35, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        jitter: float = 0.2,
    ):
        self.size, self.train, self.scale, self.ratio, self.jitter = size, train, scale, ratio, jitter
        std_ = torch.tensor(std, dtype=torch.float32)
        self.gain = (1 / (255 * std_)).repeat(size)  # per channel, repeated along a row of channels-last pixels
        self.shift = (-torch.tensor(mean, dtype=torch.float32) / std_).repeat(size)

    def __repr__(self) -> str:
        kind = (
            f"train, scale={self.scale}, ratio={self.ratio}, jitter={self.jitter}, OpenCV bilinear, uint8 colour"
            if self.train
            else "eval"
        )
        return f"PhotoView(size={self.size}, {kind}, mean/std from the backbone)"

    def __call__(self, image: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.batch([image], generator)[0]

    def batch(self, images: Sequence[torch.Tensor], generator: torch.Generator | None = None) -> torch.Tensor:
        """The views of several photos as one ``N x 3 x size x size`` batch."""
        return self.finish(self.crops(images, generator), generator)

    def crops(self, images: Sequence[torch.Tensor], generator: torch.Generator | None = None) -> np.ndarray:
        """The uint8 ``N x size x size x 3`` crops: random box and flip to train, the centre to evaluate."""
        out = np.empty((len(images), self.size, self.size, 3), np.uint8)
        # per photo: the box's tries, its place, the flip
        draws = torch.rand(len(images), 2 * TRIES + 3, generator=generator).tolist() if self.train else []
        with num_threads(1):  # one small photo at a time: threads would cost more than they save
            for i, image in enumerate(images):
                if self.train:
                    self._random_crop(pixels(image), draws[i], out[i])
                else:
                    out[i] = self._centre(pixels(image))
        return out

    def _centre(self, photo: np.ndarray) -> np.ndarray:
        height, width = photo.shape[:2]
        top, left = (height - self.size) // 2, (width - self.size) // 2
        if min(top, left) < 0:
            raise ValueError(f"photo of {height}x{width} px is smaller than the {self.size}-px view")
        return photo[top : top + self.size, left : left + self.size]

    def _random_crop(self, photo: np.ndarray, u: list[float], out: np.ndarray) -> None:
        top, left, h, w = crop_box(*photo.shape[:2], self.scale, self.ratio, u[:-1])
        cv2.resize(
            photo[top : top + h, left : left + w], (self.size, self.size), dst=out, interpolation=cv2.INTER_LINEAR
        )
        if u[-1] < 0.5:
            cv2.flip(out, 1, dst=out)

    def finish(self, crops: np.ndarray, generator: torch.Generator | None = None) -> torch.Tensor:
        """Normalised float views (``N x 3 x size x size``, channels-last) of :meth:`crops`, colour-jittered in
        place when training."""
        n = len(crops)
        if self.train and self.jitter:
            factors = (
                1 - self.jitter + 2 * self.jitter * torch.rand(n, 3, dtype=torch.float64, generator=generator).numpy()
            )
            with num_threads(1):
                means = np.array([cv2.mean(crop)[:3] for crop in crops]).reshape(n, 3) @ GREY
                for crop, matrix in zip(crops, jitter_matrices(factors, means)):
                    cv2.transform(crop, matrix, dst=crop)  # rounded, and clamped to 0..255
        x = torch.from_numpy(crops).to(torch.float32).view(n, self.size, 3 * self.size)
        x.mul_(self.gain).add_(self.shift)  # (x / 255 - mean) / std
        return x.view(n, self.size, self.size, 3).permute(0, 3, 1, 2)


def train_transform(image_size: int, mean: tuple, std: tuple) -> PhotoView:
    """Augmentation for training: a random crop of 35-100% of the photo, a flip, a little colour jitter."""
    return PhotoView(image_size, mean, std, train=True)


def eval_transform(image_size: int, mean: tuple, std: tuple) -> PhotoView:
    """The deterministic view used to evaluate: the centre crop, normalised like the backbone's inputs."""
    return PhotoView(image_size, mean, std, train=False)


def view_for(spec, train: bool = False) -> PhotoView:
    """The evaluation view (or, with ``train``, the augmentation) of a model's :class:`~fruitlib.models.ModelSpec`:
    its image size and normalisation."""
    return PhotoView(spec.image_size, spec.mean, spec.std, train=train)

"""fruitlib.augment: the training and evaluation views, checked against torchvision's own functions."""

from __future__ import annotations

import pytest
import torch
from torchvision import transforms as v1
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from fruitlib import augment
from fruitlib.augment import GREY, PhotoView, crop_box, eval_transform, jitter_matrices, train_transform
from fruitlib.data import ImageTensorDataset, make_loader

SCALE, RATIO = (0.35, 1.0), (3 / 4, 4 / 3)


def photo(height: int = 40, width: int = 40, seed: int = 0, channels_last: bool = True) -> torch.Tensor:
    image = torch.randint(
        0, 256, (1, 3, height, width), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8
    )
    return (image.contiguous(memory_format=torch.channels_last) if channels_last else image)[0]


@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("mean, std", [((0.5,) * 3, (0.5,) * 3), ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
def test_the_eval_view_is_torchvisions_centre_crop_and_normalisation(mean, std, channels_last):
    image = photo(37, 41, channels_last=channels_last)
    expected = v2.Compose([v2.CenterCrop(32), v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])(image)
    x = eval_transform(32, mean, std)(image)
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    assert torch.allclose(x, expected, atol=1e-5)


def test_a_photo_smaller_than_the_view_is_an_error():
    with pytest.raises(ValueError, match="smaller than the 32-px view"):
        eval_transform(32, (0.5,) * 3, (0.5,) * 3)(photo(20, 40))


@pytest.mark.parametrize("height, width", [(40, 40), (30, 50), (37, 37)])
def test_crop_boxes_follow_random_resized_crop(height, width):
    generator = torch.Generator().manual_seed(0)
    for _ in range(300):
        u = torch.rand(2 * augment.TRIES + 2, generator=generator).tolist()
        top, left, h, w = crop_box(height, width, SCALE, RATIO, u)
        assert 0 <= top <= height - h and 0 <= left <= width - w
        # rounding h and w to whole pixels moves area and ratio a little off the continuous ranges
        assert SCALE[0] * 0.9 <= h * w / (height * width) <= SCALE[1]
        assert RATIO[0] * 0.9 <= w / h <= RATIO[1] * 1.1


@pytest.mark.parametrize("height, width", [(10, 100), (100, 10)])
def test_when_no_box_fits_the_fallback_is_torchvisions(height, width):
    scale = (0.99, 1.0)  # a box of the whole photo's area at ratios 3/4..4/3 never fits a 10:1 photo
    expected = v1.RandomResizedCrop.get_params(torch.zeros(3, height, width), list(scale), list(RATIO))
    assert crop_box(height, width, scale, RATIO, [0.5] * (2 * augment.TRIES + 2)) == expected


def test_the_colour_matrices_are_torchvisions_brightness_contrast_saturation():
    image = torch.rand(2, 3, 16, 16) * 0.4 + 0.3  # mid-range: no step clamps, so the two must agree
    factors = torch.tensor([[1.15, 0.85, 1.2], [0.8, 1.2, 0.9]])
    expected = torch.stack(
        [
            TF.adjust_saturation(TF.adjust_contrast(TF.adjust_brightness(x, b), c), s)
            for x, (b, c, s) in zip(image, factors.tolist())
        ]
    )
    means = torch.einsum("c,nchw->n", torch.tensor(GREY, dtype=torch.float32), image) / (16 * 16)
    matrices = torch.tensor(jitter_matrices(factors.double().numpy(), means.double().numpy()), dtype=torch.float32)
    ones = torch.ones(2, 1, 16, 16)
    y = torch.einsum("nij,njhw->nihw", matrices, torch.cat([image, ones], 1))
    assert torch.allclose(y, expected, atol=1e-5)


def test_the_train_view_is_torchvisions_pipeline_on_the_same_draws():
    images = [photo(46, 46, seed) // 2 + 64 for seed in range(6)]  # mid-range: no step clamps
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    torch.manual_seed(3)
    x = train_transform(40, mean, std).batch(images)
    torch.manual_seed(3)  # the same draws: boxes and flips, then jitter factors
    draws, factors = torch.rand(6, 2 * augment.TRIES + 3).tolist(), 0.8 + 0.4 * torch.rand(6, 3, dtype=torch.float64)
    for image, u, (b, c, s), view in zip(images, draws, factors.tolist(), x):
        top, left, h, w = crop_box(46, 46, SCALE, RATIO, u[:-1])
        y = TF.resized_crop(image, top, left, h, w, [40, 40], antialias=False)
        y = (TF.horizontal_flip(y) if u[-1] < 0.5 else y).float() / 255
        expected = TF.normalize(TF.adjust_saturation(TF.adjust_contrast(TF.adjust_brightness(y, b), c), s), mean, std)
        error = (view - expected).abs() * torch.tensor(std)[:, None, None] * 255  # in grey levels
        # the resize and the colours are each rounded to uint8 (half a level), and the jitter can amplify by 1.7
        assert error.mean() < 1 and error.max() < 3


def test_the_train_view_is_random_seeded_and_in_range():
    view = train_transform(32, (0.5,) * 3, (0.5,) * 3)
    image = photo()
    torch.manual_seed(0)
    a, b = view(image), view(image)
    torch.manual_seed(0)
    assert not torch.equal(a, b) and torch.equal(view(image), a)
    assert a.shape == (3, 32, 32) and a.dtype == torch.float32
    assert a.min() >= -1 and a.max() <= 1  # pixel values 0..255 normalised with mean = std = 0.5


def test_the_train_view_flips_about_half_the_photos():
    image = torch.zeros(3, 32, 32, dtype=torch.uint8)
    image[:, :, :16] = 255  # left half white
    view = PhotoView(32, (0.0,) * 3, (1.0,) * 3, train=True, scale=(1.0, 1.0), ratio=(1.0, 1.0), jitter=0.0)
    torch.manual_seed(0)
    lefts = [view(image)[0, :, :8].mean().item() for _ in range(200)]
    flipped = sum(v < 0.5 for v in lefts)
    assert all(v in (0.0, 1.0) for v in lefts) and 70 < flipped < 130


def test_without_jitter_the_whole_photo_view_is_a_bilinear_resize():
    image = photo(40, 40)
    view = PhotoView(32, (0.0,) * 3, (1.0,) * 3, train=True, scale=(1.0, 1.0), ratio=(1.0, 1.0), jitter=0.0)
    expected = TF.resize(image, [32, 32], antialias=False).float() / 255  # photos are at most 8/7 the view's size
    torch.manual_seed(1)
    x = view(image)
    assert torch.allclose(x, expected, atol=1 / 255) or torch.allclose(x, expected.flip(-1), atol=1 / 255)


def test_a_batch_equals_the_views_of_each_photo():
    images = torch.stack([photo(37, 37, seed) for seed in range(5)])
    view = eval_transform(32, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    one_by_one = torch.stack([view(image) for image in images])
    dataset = ImageTensorDataset(images, torch.arange(5), view)
    fast = next(iter(make_loader(dataset, 5)))  # the whole batch at once
    plain = next(iter(torch.utils.data.DataLoader(dataset, batch_size=5)))  # photo by photo, default collate
    for x, y in (fast, plain):
        assert torch.equal(y, torch.arange(5)) and torch.allclose(x, one_by_one, atol=1e-6)


def test_make_loader_shuffles_like_a_data_loader():
    dataset = ImageTensorDataset(torch.zeros(10, 3, 4, 4, dtype=torch.uint8), torch.arange(10))
    ours = [y.tolist() for _, y in make_loader(dataset, 4, shuffle=True, generator=torch.Generator().manual_seed(3))]
    theirs = [
        y.tolist()
        for _, y in torch.utils.data.DataLoader(dataset, 4, shuffle=True, generator=torch.Generator().manual_seed(3))
    ]
    assert ours == theirs and [len(b) for b in ours] == [4, 4, 2]


def test_the_colour_jitter_changes_each_photo_of_a_batch_differently():
    image = photo(37, 37)
    view = PhotoView(32, (0.5,) * 3, (0.5,) * 3, train=True, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    torch.manual_seed(0)
    x = view.batch([image] * 4)  # one crop four times, flipped or not: only the jitter changes the mean
    assert len({round(m, 4) for m in x.mean(dim=(1, 2, 3)).tolist()}) == 4


@pytest.mark.parametrize("train", [True, False])
def test_views_are_float_and_channels_last(train):
    x = PhotoView(8, (0.5,) * 3, (0.5,) * 3, train=train).batch([photo(10, 10, channels_last=False)] * 3)
    assert x.shape == (3, 3, 8, 8) and x.dtype == torch.float32
    assert x.is_contiguous(memory_format=torch.channels_last)  # what fruitlib's networks run fastest in


def test_a_generator_draws_what_the_global_random_numbers_would():
    view = train_transform(32, (0.5,) * 3, (0.5,) * 3)
    photos = [photo(40, 48, seed) for seed in range(3)]
    torch.manual_seed(11)
    from_global = view.batch(photos)
    torch.manual_seed(0)
    from_generator = view.batch(photos, torch.Generator().manual_seed(11))
    assert torch.equal(from_generator, from_global)  # so features cached before generators were passed still hold
    torch.manual_seed(0)
    assert torch.equal(torch.rand(2), torch.rand(2, generator=torch.Generator().manual_seed(0)))  # global untouched

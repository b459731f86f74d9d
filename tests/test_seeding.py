"""Global state that fruitlib changes is scoped: the caller's random numbers and float modes come back as they were."""

from __future__ import annotations

import random

import numpy as np
import torch

from fruitlib import cache, explore, seeding
from fruitlib.models import build_model
from fruitlib.train import fit


def later_draws() -> tuple:
    return random.random(), float(np.random.rand()), torch.rand(3).tolist()


def test_seeded_starts_from_the_seed_and_leaves_the_caller_where_it_was():
    seeding.seed_everything(7)
    expected = later_draws()
    seeding.seed_everything(7)
    with seeding.seeded(1):
        inside = later_draws()
    assert later_draws() == expected
    with seeding.seeded(1):
        assert later_draws() == inside


def test_denormal_mode_is_restored():
    before = seeding.denormals_flushed_now()
    with seeding.denormals_flushed():
        pass
    assert seeding.denormals_flushed_now() == before


def test_fit_leaves_the_callers_random_numbers_and_float_mode_alone():
    data = torch.utils.data.TensorDataset(torch.randn(16, 4), torch.arange(16) % 2)
    model = torch.nn.Linear(4, 2)
    seeding.seed_everything(3)
    expected = later_draws()
    seeding.seed_everything(3)
    denormals = seeding.denormals_flushed_now()
    fit(model, data, data, epochs=1, batch_size=4, device="cpu", progress=False)
    assert later_draws() == expected and seeding.denormals_flushed_now() == denormals


def test_a_cache_hit_and_a_miss_leave_the_same_later_draws(isolated):
    torch.manual_seed(0)
    images = torch.randint(0, 256, (6, 3, 40, 40), dtype=torch.uint8)
    model = build_model(["a", "b"], "efficientnet_lite0", True, "frozen", image_size=32)
    after = []
    for _ in ("miss", "hit"):
        torch.manual_seed(5)
        first = cache.cached_activations(model, images, len(model.stages), view=1, seed=2, progress=False)
        after.append(torch.rand(4))
    assert torch.equal(after[0], after[1])
    torch.manual_seed(5)
    assert torch.equal(torch.rand(4), after[0])  # and the same as if the features had not been asked for at all
    torch.manual_seed(99)  # the features depend on their own seed, not on the global random numbers
    assert torch.equal(cache.activations(model, images, len(model.stages), view=1, seed=2, progress=False), first)


def test_random_twin_leaves_the_global_random_numbers_alone(isolated):
    torch.manual_seed(0)
    images = torch.randint(0, 256, (8, 3, 40, 40), dtype=torch.uint8)
    model = build_model(["a", "b"], "efficientnet_lite0", True, "frozen", image_size=32)
    torch.manual_seed(4)
    expected = torch.rand(3)
    torch.manual_seed(4)
    explore.random_twin(model, images, calibrate=8)
    assert torch.equal(torch.rand(3), expected)

"""fruitlib.train: the fit loop's history, modes, full validation, determinism and exact resumption."""

from __future__ import annotations

import copy

import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from fruitlib.augment import train_transform
from fruitlib.data import ImageTensorDataset
from fruitlib.device import loader_workers, memory_format, native_bf16, pick_device
from fruitlib.train import COLUMNS, fit, make_optimizer, run_epoch


def blobs(n: int, seed: int) -> TensorDataset:
    """Three separable Gaussian blobs in 8 dimensions."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = torch.randn(n, 8, generator=g) + 3 * nn.functional.one_hot(y, 8).float()
    return TensorDataset(x, y)


class Recorder(nn.Module):
    """A linear classifier that remembers, for every forward call, whether it was training and the batch size."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(8, 3)
        self.calls: list[tuple[bool, int, bool]] = []

    def forward(self, x):
        self.calls.append((self.training, len(x), torch.is_grad_enabled()))
        return self.linear(x)


class TinyConvNet(nn.Module):
    """Conv + BatchNorm + dropout: every source of randomness and state that resuming must restore."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 4, 3),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(0.3),
            nn.Linear(4, 3),
        )

    def forward(self, x):
        return self.body(x)


def photos(n: int, seed: int) -> ImageTensorDataset:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    images = torch.randint(0, 60, (n, 3, 14, 14), generator=g, dtype=torch.uint8) + 60 * labels.view(-1, 1, 1, 1).byte()
    return ImageTensorDataset(images, labels, train_transform(12, (0.5,) * 3, (0.5,) * 3))


def without_time(history: pd.DataFrame) -> pd.DataFrame:
    return history.drop(columns="seconds")


def test_history_has_one_row_per_epoch_and_all_columns():
    torch.manual_seed(0)
    history = fit(Recorder(), blobs(30, 0), blobs(9, 1), epochs=3, lr=0.05, batch_size=8, device="cpu", progress=False)
    assert list(history.columns) == COLUMNS
    assert history["epoch"].tolist() == [1, 2, 3]
    assert history[["train_loss", "val_loss"]].notna().all().all()
    assert history["lr"].iloc[0] == pytest.approx(0.05) and history["lr"].is_monotonic_decreasing  # cosine decay
    assert (history["seconds"] > 0).all()
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    assert history["val_acc"].iloc[-1] > 0.6


def test_losses_and_accuracies_are_means_over_every_item():
    """With a learning rate of 0 the model does not change: the epoch scores must equal a direct computation.

    10 training items in batches of 4 (4, 4, 2) and 13 validation items: a mean of batch means would differ.
    """
    torch.manual_seed(0)
    model, train, val = Recorder(), blobs(10, 2), blobs(13, 3)
    with torch.no_grad():
        model.linear.weight.mul_(3)
    history = fit(model, train, val, epochs=1, lr=0.0, weight_decay=0.0, batch_size=4, device="cpu", progress=False)
    with torch.no_grad():
        for data, prefix in ((train, "train"), (val, "val")):
            x, y = data.tensors
            logits = model.linear(x)
            assert history[f"{prefix}_loss"].iloc[0] == pytest.approx(
                nn.functional.cross_entropy(logits, y).item(), rel=1e-6
            )
            assert history[f"{prefix}_acc"].iloc[0] == pytest.approx((logits.argmax(1) == y).float().mean().item())
    batch_means = [
        nn.functional.cross_entropy(model.linear(x), y).item()
        for x, y in torch.utils.data.DataLoader(train, batch_size=4)
    ]
    assert history["train_loss"].iloc[0] != pytest.approx(sum(batch_means) / len(batch_means), rel=1e-3)


def test_train_mode_for_training_eval_mode_for_validation_every_item_scored():
    model = Recorder()
    fit(model, blobs(10, 0), blobs(13, 1), epochs=2, batch_size=4, device="cpu", progress=False)
    training = [(n, grad) for mode, n, grad in model.calls if mode]
    validation = [(n, grad) for mode, n, grad in model.calls if not mode]
    assert sum(n for n, _ in training) == 2 * 10 and all(grad for _, grad in training)
    assert sum(n for n, _ in validation) == 2 * 13 and not any(grad for _, grad in validation)
    # each epoch: all training batches first, then validation
    modes = [mode for mode, _, _ in model.calls]
    assert modes == [True] * 3 + [False] * 2 + [True] * 3 + [False] * 2


def test_no_validation_set():
    history = fit(Recorder(), blobs(8, 0), None, epochs=2, batch_size=4, device="cpu", progress=False)
    assert history["val_acc"].isna().all() and history["train_loss"].notna().all()


def run_fit(seed: int, epochs: int = 3, **kwargs) -> tuple[pd.DataFrame, dict]:
    torch.manual_seed(123)
    model = TinyConvNet()
    history = fit(
        model,
        photos(20, 0),
        photos(7, 1),
        epochs=epochs,
        lr=0.01,
        batch_size=6,
        seed=seed,
        device="cpu",
        progress=False,
        **kwargs,
    )
    return history, model.state_dict()


def test_same_seed_same_history_other_seed_other_history():
    a, weights_a = run_fit(seed=0)
    b, weights_b = run_fit(seed=0)
    c, _ = run_fit(seed=1)
    pd.testing.assert_frame_equal(without_time(a), without_time(b))
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    assert not without_time(a).equals(without_time(c))


def test_resume_gives_the_same_result_as_an_uninterrupted_run():
    whole, whole_weights = run_fit(seed=0, epochs=4)

    class Stop(Exception):
        pass

    saved = {}

    def stop_after_two(state: dict) -> None:
        if len(state["history"]) == 2:
            saved["state"] = copy.deepcopy(state)  # as written to a checkpoint
            saved["model"] = copy.deepcopy(model.state_dict())
            raise Stop

    torch.manual_seed(123)
    model = TinyConvNet()
    with pytest.raises(Stop):
        fit(
            model,
            photos(20, 0),
            photos(7, 1),
            epochs=4,
            lr=0.01,
            batch_size=6,
            seed=0,
            device="cpu",
            progress=False,
            on_epoch_end=stop_after_two,
        )
    assert set(saved["state"]) >= {"history", "optimizer", "scheduler", "shuffle_state", "rng_state"}

    torch.manual_seed(999)  # a fresh process: other random state, other initial weights
    fresh = TinyConvNet()
    fresh.load_state_dict(saved["model"])
    seen = []
    resumed = fit(
        fresh,
        photos(20, 0),
        photos(7, 1),
        epochs=4,
        lr=0.01,
        batch_size=6,
        seed=0,
        device="cpu",
        progress=False,
        resume=saved["state"],
        on_epoch_end=lambda s: seen.append(s["history"][-1]["epoch"]),
    )
    assert seen == [3, 4]
    assert resumed["epoch"].tolist() == [1, 2, 3, 4]
    pd.testing.assert_frame_equal(without_time(resumed), without_time(whole))
    final = fresh.state_dict()
    assert all(torch.equal(final[k], whole_weights[k]) for k in final)


def test_resuming_a_finished_run_trains_nothing():
    saved = {}
    history, _ = run_fit(seed=0, epochs=2, on_epoch_end=lambda s: saved.update(state=copy.deepcopy(s)))
    model = TinyConvNet()
    before = copy.deepcopy(model.state_dict())
    again = fit(
        model,
        photos(20, 0),
        photos(7, 1),
        epochs=2,
        lr=0.01,
        batch_size=6,
        device="cpu",
        progress=False,
        resume=saved["state"],
    )
    pd.testing.assert_frame_equal(again, history)
    assert all(torch.equal(before[k], model.state_dict()[k]) for k in before)


def test_only_trainable_parameters_change():
    torch.manual_seed(0)
    model = TinyConvNet()
    model.body[0].requires_grad_(False)
    frozen = model.body[0].weight.clone()
    head = model.body[-1].weight.clone()
    fit(model, photos(12, 0), None, epochs=1, batch_size=4, device="cpu", progress=False)
    assert torch.equal(model.body[0].weight, frozen) and not torch.equal(model.body[-1].weight, head)


def test_run_epoch_without_optimizer_does_not_learn():
    model = Recorder()
    before = model.linear.weight.clone()
    loss, acc = run_epoch(model, torch.utils.data.DataLoader(blobs(6, 0), batch_size=4), torch.device("cpu"))
    assert torch.equal(model.linear.weight, before) and loss > 0 and 0 <= acc <= 1 and not model.training


def test_optimizers_and_devices():
    params = [nn.Parameter(torch.zeros(2))]
    sgd = make_optimizer(params, "sgd", 0.1, 0.0)
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["momentum"] == 0.9
    assert isinstance(make_optimizer(params, "adamw", 0.1, 1e-4), torch.optim.AdamW)
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("auto").type in ("cpu", "cuda", "mps")


def test_convolutions_train_channels_last_and_the_cpu_needs_no_loader_workers():
    model = TinyConvNet()
    seen = []
    model.body[0].register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    fit(model, photos(12, 0), None, epochs=1, batch_size=6, device="cpu", progress=False)
    conv = model.body[0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert seen and all(x.is_contiguous(memory_format=torch.channels_last) for x in seen)
    cpu = torch.device("cpu")
    assert loader_workers(cpu) == 0 and not native_bf16(cpu)
    assert memory_format(cpu) == torch.channels_last and memory_format(torch.device("mps")) == torch.contiguous_format


class TwoPart(nn.Module):
    """A body and a head, like a FruitNet, for parameter groups."""

    def __init__(self):
        super().__init__()
        self.body, self.head = nn.Linear(8, 8), nn.Linear(8, 3)

    def forward(self, x):
        return self.head(torch.relu(self.body(x)))


def test_parameter_groups_train_at_their_own_rates_and_the_history_records_both():
    torch.manual_seed(0)
    model = TwoPart()
    before = copy.deepcopy(model.state_dict())
    groups = [
        {"name": "backbone", "params": list(model.body.parameters()), "lr": 1e-4},
        {"name": "head", "params": list(model.head.parameters()), "lr": 1e-2},
    ]
    history = fit(
        model, blobs(30, 0), blobs(9, 1), epochs=3, lr=0.5, batch_size=8, device="cpu", progress=False, groups=groups
    )
    assert history["lr"].iloc[0] == pytest.approx(1e-2) and history["backbone_lr"].iloc[0] == pytest.approx(1e-4)
    assert (history["lr"] / history["backbone_lr"]).round(6).eq(100).all()  # both decay on the same schedule
    moved = {k: (model.state_dict()[k] - before[k]).abs().max().item() for k in before}
    assert moved["head.weight"] > 10 * moved["body.weight"] > 0  # Adam's steps scale with the rate
    plain = fit(TwoPart(), blobs(30, 0), None, epochs=1, lr=0.05, batch_size=8, device="cpu", progress=False)
    assert plain["lr"].iloc[0] == pytest.approx(0.05) and plain["backbone_lr"].isna().all()  # one group: the head's

"""One training run from data folder to run folder: what ``python -m fruitlib train`` and the notebooks call.

A run folder holds ``params.json`` (every setting), ``split.csv`` (the exact split), ``model.pt``
(the last epoch saved, resumable: the first, then one per ``SAVE_EVERY_S`` seconds, and the last), ``best.pt``
(best validation accuracy), ``history.csv``, ``metrics.json``
and the figures ``curves.png`` and ``confusion.png``.

The validation split is for choosing (settings, the best epoch); where the data have a test split and
``RunConfig.test`` is set, the final model is scored on it too and ``metrics.json`` reports it beside the
validation score. Nothing in a run looks at the test scores.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from . import __version__, engines, plots
from .augment import view_for
from .cache import ImageSet, cached_activations, load_split, stage_runner
from .checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from .config import BACKBONE_SHARE, DEFAULT_EPOCHS, DEFAULT_LR, RunConfig
from .data import (
    Catalog,
    ImageTensorDataset,
    find_data,
    limit_per_class,
    listing_digest,
    make_splits,
    read_manifest,
    scan,
    write_manifest,
)
from .device import pick_device
from .distributed import World, barrier, local_batch, main_first, own_device, world
from .errors import FruitlibError
from .evaluate import score
from .files import writing
from .models import FruitNet, Tail, build_model, count_parameters, param_groups, resolve_backbone
from .seeding import seeded
from .train import fit

RECORDED = (
    "data_root",
    "photos",
    "world_size",
    "global_batch_size",
)  # in params.json beside the settings: how the run went
WHERE = ("out", "data")  # settings that say where a run and its photos were named from, not what the run is
RUN_FILES = (
    "params.json",
    "split.csv",
    "skipped.csv",
    "model.pt",
    "best.pt",
    "history.csv",
    "metrics.json",
    "curves.png",
    "confusion.png",
)
SAVE_EVERY_S = 5.0  # between the first and the last epoch, model.pt is rewritten at most this often


def config_of(params: dict) -> RunConfig:
    """The RunConfig saved in a run's ``params.json`` (resolved extras such as the reason are dropped)."""
    return RunConfig(**{k: v for k, v in params.items() if k in RunConfig.__dataclass_fields__})


@dataclass
class RunResult:
    model: FruitNet
    history: pd.DataFrame
    metrics: dict
    out: Path

    @property
    def config(self) -> RunConfig:
        return config_of(json.loads((self.out / "params.json").read_text()))


def training_data(
    model: FruitNet,
    train: ImageSet,
    val: ImageSet,
    cfg: RunConfig,
    device: torch.device,
    progress: bool,
    here: World = World(),  # noqa: B008 - World is a frozen dataclass
) -> tuple[nn.Module, Dataset, Dataset]:
    """What the fit loop trains and on what: cached activations when stages are frozen, else photos.

    Under torchrun the views are shared out among the processes, each computed once into the cache, then read."""
    spec, start = model.spec, model.frozen_stages
    if cfg.cache and start > 0:
        model.to(device)
        if here.size > 1:
            shares = [(train.images, v) for v in range(cfg.views + 1)] + [(val.images, 0)]
            for images, view in shares[here.rank :: here.size]:
                cached_activations(model, images, start, view, cfg.seed, device, progress)
            barrier(here)
        views = [
            cached_activations(model, train.images, start, v, cfg.seed, device, progress) for v in range(cfg.views + 1)
        ]
        train_ds = TensorDataset(torch.cat(views), train.labels.repeat(len(views)))
        val_ds = TensorDataset(cached_activations(model, val.images, start, 0, cfg.seed, device, progress), val.labels)
        return Tail(model, start), train_ds, val_ds
    train_ds = ImageTensorDataset(train.images, train.labels, view_for(spec, train=True))
    val_ds = ImageTensorDataset(val.images, val.labels, view_for(spec))
    return model, train_ds, val_ds


def resumed(saved: RunConfig, given: RunConfig, asked: set[str] | None, done: int, out: Path) -> RunConfig:
    """The saved run's settings with what a resume can honour of ``given``: more epochs, the data moved elsewhere,
    another device. Any other setting ``asked`` for (default: those that differ from RunConfig's defaults) that
    differs from the saved one is refused: the run would no longer be the one it continues."""
    default, honoured = RunConfig(), {"out", "data", "device", "test", "epochs"}
    for name in RunConfig.__dataclass_fields__.keys() - honoured:
        wanted = getattr(given, name)
        if (name in asked if asked is not None else wanted != getattr(default, name)) and wanted != getattr(
            saved, name
        ):
            raise FruitlibError(
                f"--resume continues {out} with its saved settings, and {name} is "
                f"{getattr(saved, name)!r} there, not {wanted!r}: drop the option, or train a new run "
                "(--out, --overwrite)"
            )
    epochs = given.epochs or saved.epochs
    if epochs < done:
        raise FruitlibError(f"{out} has trained {done} epochs already: resume with --epochs {done} or more")
    return dataclasses.replace(
        saved, data=given.data or saved.data, device=given.device, epochs=epochs, test=given.test
    )


def _start(
    cfg: RunConfig, out: Path, resume: bool, overwrite: bool, asked: set[str] | None = None, main: bool = True
) -> tuple[RunConfig, dict | None]:
    """Protect an existing run unless asked to resume it or overwrite it; on resume, reuse its settings and return
    its checkpoint. Only the ``main`` process deletes a replaced run's files."""
    checkpoint = out / "model.pt"
    if resume:
        if not checkpoint.is_file():
            raise FruitlibError(f"nothing to resume: {checkpoint} does not exist (train without --resume first)")
        state = load_checkpoint(checkpoint)
        made_by = state["params"].get("fruitlib")
        if made_by != __version__:
            raise FruitlibError(
                f"{checkpoint} was written by fruitlib {made_by}, this is {__version__}: its training "
                "state does not carry over; train again (--overwrite) or use that version"
            )
        saved = dataclasses.replace(config_of(state["params"]), data=state["params"]["data_root"])  # absolute
        return resumed(saved, cfg, asked, len(state["training"]["history"]), out), state
    if checkpoint.exists() and not overwrite:
        raise FruitlibError(
            f"{out} already holds a run: pass --resume to continue it, --overwrite to replace it, "
            "or choose another --out"
        )
    for name in RUN_FILES if checkpoint.exists() and main else ():
        (out / name).unlink(missing_ok=True)  # only the run's own files: anything else in the folder stays
    return cfg, None


def rates(cfg: RunConfig, mode: str) -> tuple[float, float | None]:
    """(head's learning rate, trained stages' rate) of a run in ``mode``; None where no stage trains."""
    lr = DEFAULT_LR if cfg.lr is None else cfg.lr
    if mode == "frozen":
        return lr, None
    share = BACKBONE_SHARE["scratch" if cfg.scratch else mode]
    return lr, lr * share if cfg.backbone_lr is None else cfg.backbone_lr


def run_params(cfg: RunConfig) -> dict:
    """The settings as saved in ``params.json``: the config with backbone, mode and learning rate resolved, and the
    engine that runs the frozen stages and scores the run (``engines.choose``: its features differ in the last
    float digits).

    fruitlib's version is saved too: a run made by another version is not reused (its results may differ).
    """
    name, why = resolve_backbone(cfg.backbone, cfg.weights, cfg.image_size)
    mode = cfg.mode or ("full" if cfg.scratch else "frozen")  # RunConfig refuses a frozen stage from scratch
    lr, backbone_lr = rates(cfg, mode)
    return json.loads(
        json.dumps(
            dataclasses.asdict(cfg)
            | {
                "backbone": name,
                "backbone_reason": why,
                "engine": engines.choose(pick_device(cfg.device)),
                "mode": mode,
                "epochs": cfg.epochs or DEFAULT_EPOCHS[mode],
                "lr": lr,
                "backbone_lr": backbone_lr,
                "fruitlib": __version__,
            }
        )
    )


def new_catalog(cfg: RunConfig) -> Catalog:
    """The photos of a new run: listed, split and limited as ``cfg`` says."""
    catalog = make_splits(scan(find_data(cfg.data), cfg.labels, cfg.category), cfg.val_fraction, cfg.seed)
    return limit_per_class(catalog, cfg.per_class, cfg.seed) if cfg.per_class is not None else catalog


def load_run(out: str | os.PathLike) -> RunResult:
    """A finished run folder as a :class:`RunResult` (model in eval mode on the CPU)."""
    out = Path(out)
    if not (out / "metrics.json").is_file():
        raise FruitlibError(f"{out} holds no finished run (no metrics.json): train it first")
    return RunResult(
        model_from_checkpoint(out / "model.pt"),
        pd.read_csv(out / "history.csv"),
        json.loads((out / "metrics.json").read_text()),
        out,
    )


def finished(cfg: RunConfig, params: dict | None = None) -> bool:
    """Whether ``cfg.out`` holds a finished run with exactly these settings and photos (what ``reuse`` loads).

    The settings are ``params`` (``run_params(cfg)`` when not given): the backbone and the engine as resolved here
    must be the run's. Where the folder and the photos were named from does not count (``out``, ``data``:
    ``../runs/04`` from a notebook is ``runs/04`` from the command line); what the photos are does (their
    listing's digest)."""
    out = Path(cfg.out)
    if not (out / "metrics.json").is_file() or not (out / "params.json").is_file():
        return False
    saved = json.loads((out / "params.json").read_text())
    wanted = {k: v for k, v in (params or run_params(cfg)).items() if k not in WHERE}
    same = {k: v for k, v in saved.items() if k not in RECORDED + WHERE} == wanted
    return same and saved.get("photos") == listing_digest(new_catalog(cfg))


def open_run(cfg: RunConfig, out: Path, params: dict, checkpoint: dict | None, here: World) -> tuple[Catalog, dict]:
    """The run's photos (a resumed run's own split, else a new one) and its ``params.json``: ``params`` with where
    the photos were and what they were. The main process writes both into the run folder ``out``."""
    if checkpoint is not None:  # the split it was trained on, not a new scan of what the folder holds now
        catalog = read_manifest(out / "split.csv", find_data(cfg.data), checkpoint["spec"]["classes"])
    else:
        catalog = new_catalog(cfg)
    params = params | {
        "data_root": str(catalog.root),  # where the photos were: evaluate's default data
        "photos": listing_digest(catalog),  # and what they were: reuse checks both
        "world_size": here.size,
        "global_batch_size": cfg.batch_size,
    }
    if here.main:
        with writing(out, "the run folder"):
            out.mkdir(parents=True, exist_ok=True)
            (out / "params.json").write_text(json.dumps(params, indent=2))
            if checkpoint is None:
                write_manifest(catalog, out / "split.csv")
    return catalog, params


def decode_splits(
    catalog: Catalog, cfg: RunConfig, out: Path, progress: bool, here: World
) -> tuple[ImageSet, ImageSet, ImageSet | None]:
    """The decoded train, val and (where asked for and present) test photos; the photos that could not be read are
    listed in the run folder's ``skipped.csv``."""
    with main_first(here):  # under torchrun, rank 0 decodes into the cache and the others read it
        train_set = load_split(catalog, "train", cfg.image_size, progress)
        val_set = load_split(catalog, "val", cfg.image_size, progress)
        test_set = load_split(catalog, "test", cfg.image_size, progress) if cfg.test and catalog.has("test") else None
    skipped = catalog.skipped + train_set.skipped + val_set.skipped + (test_set.skipped if test_set else [])
    if skipped and here.main:
        with writing(out / "skipped.csv"):
            pd.DataFrame(skipped, columns=["path", "reason"]).to_csv(out / "skipped.csv", index=False)
    return train_set, val_set, test_set


class Saver:
    """What :func:`fit` calls after each epoch: ``model.pt`` (resumable) after the first and the last epoch and at
    most once per ``SAVE_EVERY_S`` seconds between them, and ``best.pt`` whenever the validation accuracy beats
    the best so far. Only the main process saves."""

    def __init__(self, model: FruitNet, params: dict, out: Path, done: list[dict], main: bool):
        self.model, self.params, self.out, self.main = model, params, out, main
        self.best = max([h["val_acc"] for h in done], default=-1.0)
        self.best_weights, self.saved_at = None, -float("inf")

    def __call__(self, state: dict) -> None:
        if not self.main:
            return
        if state["history"][-1]["val_acc"] > self.best:
            self.best = state["history"][-1]["val_acc"]
            self.best_weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        if time.perf_counter() - self.saved_at >= SAVE_EVERY_S or len(state["history"]) == self.params["epochs"]:
            save_checkpoint(self.out / "model.pt", self.model, self.params, state)
            if self.best_weights is not None:
                save_checkpoint(self.out / "best.pt", self.model, self.params, weights=self.best_weights)
                self.best_weights = None
            self.saved_at = time.perf_counter()


def train_run(
    cfg: RunConfig,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    reuse: bool = False,
    asked: set[str] | None = None,
) -> RunResult:
    """Split, decode, build, train, evaluate and save one run; see the module docstring for the outputs.

    ``reuse`` (what the notebooks use, each in its own ``runs/NN`` folders): when ``cfg.out`` already holds a
    finished run with exactly these settings and data, load it instead; a run there with other settings is replaced.
    ``asked``: on ``resume``, the names of the settings the caller gave (the command line's options), checked
    against the saved run's; None: those that differ from RunConfig's defaults.
    Under torchrun every process calls this; rank 0 alone writes the run folder, and the others return their
    model and history with empty metrics. The caller's random numbers are left as they were.
    """
    out, here = Path(cfg.out), world()
    local_batch(cfg.batch_size, here)  # under torchrun, a global batch that cannot be shared out is refused first
    resolved = run_params(cfg)  # the backbone (which may probe the network) and the engine, resolved once
    if reuse and finished(cfg, resolved):
        return load_run(out)
    run_cfg, checkpoint = _start(cfg, out, resume, overwrite or reuse, asked, here.main)
    began = time.perf_counter()
    training = checkpoint["training"] if checkpoint else None
    progress = progress and here.main
    catalog, params = open_run(run_cfg, out, resolved if run_cfg == cfg else run_params(run_cfg), checkpoint, here)
    cfg, name, mode = run_cfg, params["backbone"], params["mode"]
    if progress:
        print(f"backbone: {name} ({params['backbone_reason']}); mode: {mode}; {len(catalog.classes)} classes")
    with seeded(cfg.seed):  # the new head's (and from scratch, every layer's) first weights
        model = build_model(catalog.classes, name, not cfg.scratch, mode, cfg.weights, cfg.image_size, cfg.dropout)
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
    device = own_device(pick_device(cfg.device), here)
    train_set, val_set, test_set = decode_splits(catalog, cfg, out, progress, here)
    module, train_ds, val_ds = training_data(model, train_set, val_set, cfg, device, progress, here)
    history = fit(
        module,
        train_ds,
        val_ds,
        epochs=params["epochs"],
        lr=params["lr"],
        batch_size=cfg.batch_size,
        optimizer=cfg.optimizer,
        seed=cfg.seed,
        device=device,
        on_epoch_end=Saver(model, params, out, training["history"] if training else [], here.main),
        resume=training,
        progress=progress,
        groups=param_groups(model, params["lr"], params["backbone_lr"]),
    )
    if not here.main:  # rank 0 scores the model and writes the results
        return RunResult(model, history, {}, out)
    with writing(out / "history.csv"):
        history.to_csv(out / "history.csv", index=False)
    metrics = finish(model, val_set, test_set, history, params, out, device) | {
        "n_train": len(train_set.labels),
        "seconds": round(time.perf_counter() - began, 1),
        "world_size": here.size,
        "global_batch_size": cfg.batch_size,
    }
    with writing(out / "metrics.json"):
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return RunResult(model, history, metrics, out)


def finish(
    model: FruitNet,
    val: ImageSet,
    test: ImageSet | None,
    history: pd.DataFrame,
    params: dict,
    out: Path,
    device: torch.device,
) -> dict:
    """Score the final model through the full network and draw the figures.

    Validation scores are flat (``val_accuracy``, ``n_val``, ``per_class``, ``confusion``); the test split's
    report (accuracy, n_images, per_class, confusion, and ``predicted``: the class index given to each test photo, in
    the split's order) is under ``test``, None where the data have no test split.
    """
    spec = model.spec
    stages = stage_runner(model, len(model.stages), device, keep=False)  # one export scores both splits
    scores = score(model, val.images, val.labels, device, stages=stages)
    trainable, total = count_parameters(model)
    plots.save(plots.training_curves({spec.backbone: history}, f"{out.name}"), "curves", out)
    plots.save(plots.confusion(scores["confusion"], spec.classes), "confusion", out)
    plots.plt.close("all")
    return {
        "val_accuracy": scores["accuracy"],
        "best_val_accuracy": float(history["val_acc"].max()),
        "classes": spec.classes,
        "backbone": spec.backbone,
        "pretrained": spec.pretrained,
        "weights_source": spec.weights_source,
        "mode": params["mode"],
        "epochs": int(history["epoch"].max()),
        "image_size": spec.image_size,
        "n_val": scores["n_images"],
        "trainable_params": trainable,
        "total_params": total,
        "per_class": scores["per_class"],
        "confusion": scores["confusion"],
        "test": score(model, test.images, test.labels, device, True, stages) if test is not None else None,
    }

"""The benchmark's items: each measures two things side by side, on the same machine, data and backbone, with
fruitlib's own functions, and returns their raw figures. ``report.py`` turns them into ratios and verdicts."""

from __future__ import annotations

import itertools
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch
from timing import drop, engine_forward_seconds, eval_batches, fruitlib_cache, images_per_second, timed_train
from torch.utils.data import TensorDataset

from fruitlib.augment import PhotoView, eval_transform, train_transform
from fruitlib.cache import load_split
from fruitlib.data import Catalog, ImagePathDataset, ImageTensorDataset, make_loader, stored_size
from fruitlib.models import build_model, param_groups
from fruitlib.run import DEFAULT_EPOCHS, DEFAULT_LR, RunConfig, rates, training_data
from fruitlib.seeding import seed_everything
from fruitlib.train import fit, make_optimizer, run_epoch

DEFAULTS = RunConfig()  # fruitlib's defaults: what `python -m fruitlib train` runs
FROZEN_EPOCHS = DEFAULT_EPOCHS["frozen"]  # the default run's head epochs
RECIPE = {"image_size": 224, "batch_size": 64, "lr": 1e-4, "momentum": 0.9, "epochs": 30}  # the article's
EPOCH_ROUNDS = 2  # item 1: epochs timed per loader, alternating decode / cache, after 2 warm-up batches each
RECIPE_VAL_POINTS = 4  # item 4: validation passes spread over the recipe's time, for its time to a target


def subset_data(catalog: Catalog, per_class: int, dest: Path) -> Path:
    """A tiny copy (symbolic links) of the data set, in its own layout: ``per_class`` photos per class and split."""
    rows = catalog.table[catalog.table["split"].isin(["train", "val", ""])]
    rows = rows.sort_values("path").groupby(["split", "class_name"]).head(per_class)
    if catalog.layout == "folders":
        for path, name in zip(rows["path"], rows["class_name"]):
            (dest / name).mkdir(parents=True, exist_ok=True)
            (dest / name / Path(path).name).symlink_to(path)
        return dest
    base = next(b for b in (catalog.root / "dataset", catalog.root) if (b / "train.txt").is_file())
    keep = {os.path.relpath(p, base) for p in rows["path"]}
    (dest / "dataset").mkdir(parents=True)
    shutil.copy(base / "classes.csv", dest / "dataset" / "classes.csv")
    for split in ("train", "val"):
        lines = [
            line for line in (base / f"{split}.txt").read_text().splitlines() if line.split(",")[0].strip() in keep
        ]
        (dest / "dataset" / f"{split}.txt").write_text("\n".join(lines) + "\n")
    for rel in keep:
        (dest / "dataset" / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / "dataset" / rel).symlink_to(base / rel)
    return dest


def item_default_run(data: Path, backbone: str, work: Path, extra: list[str]) -> dict:
    """5 (and 4): fruitlib's default transfer run in a subprocess, cold cache: wall time, peak RSS, accuracy."""
    out = work / "default-run"
    run = timed_train(["--data", str(data), "--backbone", backbone, *extra], out, work / "cache-default-run")
    metrics = run.pop("metrics")
    history = pd.read_csv(out / "history.csv")
    return run | {
        "cache": "cold",
        "inside_s": metrics["seconds"],
        "val_accuracy": metrics["val_accuracy"],
        "epochs": metrics["epochs"],
        "mode": metrics["mode"],
        "backbone": metrics["backbone"],
        "image_size": metrics["image_size"],
        "n_train": metrics["n_train"],
        "n_val": metrics["n_val"],
        "epoch_s": float(history["seconds"].mean()),
        "epoch_s_all": history["seconds"].tolist(),
    }


def item_pipeline(catalog: Catalog, size: int, spec, feature_dim: int, cache: Path) -> tuple[dict, object]:
    """1: images per second, JPEGs decoded every epoch vs the decoded-photo cache, through the same transform.

    Measured with fruitlib's training augmentation (what whole-network training reads every epoch) and with the
    evaluation view (what the frozen-feature pass reads); beside them, the loader over cached activations that
    the epochs of fruitlib's default (frozen) run read.
    """
    rows = catalog.split("train")
    labels = torch.tensor(rows["label"].to_numpy())
    views = {
        "augmented": train_transform(size, spec.mean, spec.std),
        "eval_view": eval_transform(size, spec.mean, spec.std),
    }
    result = {
        "images": len(rows),
        "image_size": size,
        "batch_size": DEFAULTS.batch_size,
        "loader_workers": 0,
        "torch_threads": torch.get_num_threads(),
    }
    with fruitlib_cache(cache):
        drop(cache)
        start = time.perf_counter()
        train = load_split(catalog, "train", size, progress=False)  # cold: decode once (threads) and save
        result["cache_build_images_per_s"] = len(train.labels) / (time.perf_counter() - start)
        start = time.perf_counter()
        train = load_split(catalog, "train", size, progress=False)  # warm: read the cache file
        result["cache_load_images_per_s"] = len(train.labels) / (time.perf_counter() - start)

    def loader(dataset):
        return make_loader(dataset, DEFAULTS.batch_size, shuffle=True, generator=torch.Generator().manual_seed(0))

    for view, transform in views.items():
        decoded = loader(ImagePathDataset(rows["path"].tolist(), labels, stored_size(size), transform))
        cached = loader(ImageTensorDataset(train.images, train.labels, transform))
        epochs = {"every": [], "once": []}
        for round_ in range(EPOCH_ROUNDS + 1):  # round 0 warms up (first-call costs, memory); then epochs alternate
            for key, data in (("every", decoded), ("once", cached)):
                if round_:
                    epochs[key].append(images_per_second(data)[0])
                else:
                    images_per_second(data, n_batches=2)
        every, once = (sum(v) / len(v) for v in epochs.values())
        result[view] = {
            "decode_every_epoch_images_per_s": every,
            "decoded_cache_images_per_s": once,
            "ratio": once / every,
            "epochs_images_per_s": epochs,
        }
    n = len(train.labels) * (DEFAULTS.views + 1)
    features = TensorDataset(
        torch.zeros(n, feature_dim, 1, 1, dtype=torch.float16), train.labels.repeat(DEFAULTS.views + 1)
    )
    result["cached_activations_images_per_s"] = images_per_second(loader(features))[0]
    return result, train


def frozen_transfer(catalog: Catalog, name: str, views: int, epochs: int, device: torch.device) -> dict:
    """Raw photos (or decoded ones, if cached) to a trained head with fruitlib's pieces; seconds per phase."""
    seed_everything(DEFAULTS.seed)  # as train_run does: the same head initialisation as the default run
    model = build_model(catalog.classes, name, True, "frozen", image_size=DEFAULTS.image_size)
    cfg = replace(DEFAULTS, views=views, epochs=epochs)
    times = {}
    start = time.perf_counter()
    train = load_split(catalog, "train", cfg.image_size, progress=False)
    val = load_split(catalog, "val", cfg.image_size, progress=False)
    times["decode_s"] = time.perf_counter() - start
    module, train_ds, val_ds = training_data(model, train, val, cfg, device, progress=False)
    times["features_s"] = time.perf_counter() - start - times["decode_s"]
    history = fit(
        module,
        train_ds,
        val_ds,
        epochs=epochs,
        lr=DEFAULT_LR,
        batch_size=cfg.batch_size,
        optimizer=cfg.optimizer,
        seed=cfg.seed,
        device=device,
        progress=False,
    )
    times["total_s"] = time.perf_counter() - start
    times["head_s"] = times["total_s"] - times["decode_s"] - times["features_s"]
    return times | {"views": views, "epochs": epochs, "val_accuracy": float(history["val_acc"].iloc[-1])}


def item_frozen(catalog: Catalog, name: str, epochs: int, cache: Path, device: torch.device) -> dict:
    """2: frozen-feature transfer from raw photos vs the floor, one engine pass over the same photos, prepared."""
    model = build_model(catalog.classes, name, True, "frozen", image_size=DEFAULTS.image_size)
    with fruitlib_cache(cache):
        train = load_split(catalog, "train", DEFAULTS.image_size, progress=False)
        val = load_split(catalog, "val", DEFAULTS.image_size, progress=False)
    images = torch.cat([train.images, val.images])
    batches = eval_batches(images, model.spec, 64)  # fruitlib's activations() batch size
    with fruitlib_cache(cache):
        floors = [engine_forward_seconds(model, batches, device)]
    del batches
    result = {"images": len(images), "n_train": len(train.labels), "n_val": len(val.labels)}
    with fruitlib_cache(cache):
        drop(cache)
        drop(cache, "onnx/*.onnx")  # cold: the export of the frozen stages is made again, inside the timing
        result["fixed_features_cold"] = frozen_transfer(catalog, name, 0, epochs, device)
        drop(cache, "activations-*.pt")  # decoded photos stay: a warm image cache, features recomputed
        result["fixed_features_warm_images"] = frozen_transfer(catalog, name, 0, epochs, device)
        batches = eval_batches(images, model.spec, 64)
        floors.append(engine_forward_seconds(model, batches, device))
    result["floor_s_each"] = floors
    result["floor_s"] = sum(floors) / len(floors)
    # fruitlib's default run (item 5) also passes views augmented copies of every training photo through the backbone
    result["default_run_backbone_passes"] = (result["n_train"] * (DEFAULTS.views + 1) + result["n_val"]) / len(images)
    return result


def item_last(catalog: Catalog, name: str, epochs: int, cache: Path, device: torch.device) -> dict:
    """3: last stage + head on cached activations vs the whole network, same epochs and the same learning rates
    (fruitlib's for ``mode="last"``): what trains is the one difference."""
    lr, backbone_lr = rates(DEFAULTS, "last")
    result = {
        "epochs": epochs,
        "image_size": DEFAULTS.image_size,
        "views": DEFAULTS.views,
        "lr": lr,
        "backbone_lr": backbone_lr,
    }
    with fruitlib_cache(cache):
        train = load_split(catalog, "train", DEFAULTS.image_size, progress=False)
        val = load_split(catalog, "val", DEFAULTS.image_size, progress=False)
        for mode in ("last", "full"):
            seed_everything(DEFAULTS.seed)
            model = build_model(catalog.classes, name, True, mode, image_size=DEFAULTS.image_size)
            drop(cache, "activations-*.pt")
            start = time.perf_counter()
            module, train_ds, val_ds = training_data(model, train, val, DEFAULTS, device, progress=False)
            prepare = time.perf_counter() - start
            history = fit(
                module,
                train_ds,
                val_ds,
                epochs=epochs,
                lr=lr,
                batch_size=DEFAULTS.batch_size,
                optimizer=DEFAULTS.optimizer,
                seed=DEFAULTS.seed,
                device=device,
                progress=False,
                groups=param_groups(model, lr, backbone_lr),
            )
            result[mode] = {
                "prepare_s": prepare,
                "epoch_s": float(history["seconds"].mean()),
                "epoch_s_all": history["seconds"].tolist(),
                "train_items_per_epoch": len(train_ds),
                "total_s": time.perf_counter() - start,
                "val_accuracy": float(history["val_acc"].iloc[-1]),
                "val_accuracy_all": history["val_acc"].tolist(),
            }
    return result


def endless(data, seed: int):
    """Batches of the recipe's size from ``data`` without end, shuffled anew for each pass."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        yield from make_loader(data, RECIPE["batch_size"], shuffle=True, generator=generator)


def item_recipe(catalog: Catalog, name: str, cap_s: float, device: torch.device, cache: Path) -> dict:
    """4: the article's recipe - whole network, 224 px, SGD 1e-4 momentum 0.9, batch 64, no augmentation - for
    ``cap_s`` seconds of training.

    Its batches alternate between photos decoded every time (the article's loader) and photos decoded once (the
    cache), the same view of the same photos, so that the one difference is caching. Validation passes (from the
    cache) spread over the time give its accuracy against the seconds it trained.
    """
    seed_everything(0)
    size = RECIPE["image_size"]
    model = build_model(catalog.classes, name, True, "full", image_size=size).to(device)
    view = PhotoView(size, model.spec.mean, model.spec.std, train=False)  # the whole photo: no augmentation
    with fruitlib_cache(cache):
        train = load_split(catalog, "train", size, progress=False)
        val = load_split(catalog, "val", size, progress=False)
    sources = {
        "decoded": ImagePathDataset(train.paths, train.labels, stored_size(size), view),  # readable photos
        "cached": ImageTensorDataset(train.images, train.labels, view),
    }
    batches = {key: endless(data, seed) for seed, (key, data) in enumerate(sources.items())}
    val_loader = make_loader(ImageTensorDataset(val.images, val.labels, view), RECIPE["batch_size"])
    optimizer = make_optimizer([p for p in model.parameters() if p.requires_grad], "sgd", RECIPE["lr"], 0.0)
    steps = {key: [] for key in sources}  # (images, seconds) of each training batch, decoding included
    points, trained_s, val_pass_s = [], 0.0, []
    for key in itertools.cycle(sources):
        start = time.perf_counter()
        batch = next(batches[key])
        run_epoch(model, [batch], device, optimizer)
        steps[key].append((len(batch[1]), time.perf_counter() - start))
        trained_s += steps[key][-1][1]
        if trained_s >= cap_s * (len(points) + 1) / RECIPE_VAL_POINTS:
            start = time.perf_counter()
            _, accuracy = run_epoch(model, val_loader, device)
            val_pass_s.append(time.perf_counter() - start)
            points.append(
                {
                    "train_s": trained_s,
                    "elapsed_s": trained_s + sum(val_pass_s),
                    "val_accuracy": accuracy,
                    "images": sum(n for s in steps.values() for n, _ in s),
                }
            )
            if len(points) == RECIPE_VAL_POINTS:
                break
    rate = {key: sum(n for n, _ in s) / sum(t for _, t in s) for key, s in steps.items()}
    n_train, val_s = len(train.labels), sum(val_pass_s) / len(val_pass_s)
    epoch_s = n_train / rate["decoded"] + val_s  # the article's epoch: a pass over the photos and one over val
    return {
        "image_size": size,
        "batch_size": RECIPE["batch_size"],
        "optimizer": "sgd",
        "lr": RECIPE["lr"],
        "momentum": RECIPE["momentum"],
        "n_train": n_train,
        "steps": steps,
        "images_per_s": rate,
        "batch_images_per_s": {key: [n / t for n, t in s] for key, s in steps.items()},
        "epoch_s": epoch_s,
        "cached_epoch_s": n_train / rate["cached"] + val_s,
        "val_pass_s": val_s,
        "points": points,
        "epochs_run": points[-1]["images"] / n_train,
        "time_to_model_s": RECIPE["epochs"] * epoch_s,
        "extrapolated_to_epochs": RECIPE["epochs"],
        "val_accuracy": points[-1]["val_accuracy"],
    }

#!/usr/bin/env python
"""fruitlib's speed and memory, measured: one command, a table on screen and a JSON file.

    python benchmarks/bench.py [--data PATH] [--backbone auto] [--quick] [--out benchmarks/results.json]

Every figure is a ratio of two things measured side by side in this one run, on the same machine, data
(the train split; validation photos where an accuracy is reported) and backbone. See benchmarks/README.md.
Timings live here, never in the tests. The settings sections and the timing helpers are in ``settings.py``.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import cv2
import pandas as pd
import torch
from torch.utils.data import DataLoader, TensorDataset

from fruitlib.augment import PhotoView, eval_transform, train_transform
from fruitlib.cache import load_split, stage_runner
from fruitlib.data import (Catalog, ImagePathDataset, ImageTensorDataset, find_data, make_loader, make_splits, scan,
                           stored_size)
from fruitlib.models import build_model, param_groups, resolve_backbone
from fruitlib.run import DEFAULT_LR, rates, training_data
from fruitlib.train import fit, make_optimizer, pick_device, run_epoch, seed_everything
from timing import timed_train
from settings import (DEFAULTS, eval_batches, gpu_settings_summary, images_per_second,
                      measure_decode_threads, measure_gpu_settings, measure_openmp_wait, measure_settings,
                      settings_summary)

RECIPE = {"image_size": 224, "batch_size": 64, "lr": 1e-4, "momentum": 0.9, "epochs": 30}  # the article's
EPOCH_ROUNDS = 2  # item 1: epochs timed per loader, alternating decode / cache, after 2 warm-up batches each
TARGETS = {"pipeline": 5.0, "frozen": 1.5, "last": 3.0, "last_acc_points": 2.0, "recipe": 20.0, "rss_gib": 4.0}
BEGAN = time.perf_counter()


# ----------------------------------------------------------------------------- helpers


def log(message: str) -> None:
    print(f"[{time.perf_counter() - BEGAN:6.0f} s] {message}", flush=True)


@contextmanager
def fruitlib_cache(folder: Path):
    """Point fruitlib's on-disk cache (``$FRUITLIB_CACHE``) at ``folder`` inside the block."""
    before = os.environ.get("FRUITLIB_CACHE")
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["FRUITLIB_CACHE"] = str(folder)
    try:
        yield folder
    finally:
        if before is None:
            os.environ.pop("FRUITLIB_CACHE", None)
        else:
            os.environ["FRUITLIB_CACHE"] = before


def drop(folder: Path, pattern: str = "*.pt") -> None:
    """Empty (part of) a cache folder, so that the next measurement starts cold."""
    for path in folder.glob(pattern):
        path.unlink()


class TimeCapped:
    """A loader that stops handing out batches once ``deadline`` (a ``perf_counter`` time) has passed."""

    def __init__(self, loader: DataLoader, deadline: float):
        self.loader, self.deadline, self.seen, self.complete = loader, deadline, 0, True

    def __iter__(self):
        self.seen, self.complete = 0, True
        for x, y in self.loader:
            yield x, y
            self.seen += len(y)
            if time.perf_counter() > self.deadline and self.seen < len(self.loader.dataset):
                self.complete = False
                return


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
        lines = [line for line in (base / f"{split}.txt").read_text().splitlines()
                 if line.split(",")[0].strip() in keep]
        (dest / "dataset" / f"{split}.txt").write_text("\n".join(lines) + "\n")
    for rel in keep:
        (dest / "dataset" / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / "dataset" / rel).symlink_to(base / rel)
    return dest


def load_average() -> tuple[float, float, float]:
    """The 1, 5 and 15-minute load averages (NaN where the system does not report them)."""
    try:
        return os.getloadavg()
    except OSError:
        return (float("nan"),) * 3


def machine(device: torch.device) -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() \
        else platform.processor()
    return {"cpu": cpu, "cores": os.cpu_count(),
            "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "opencv": cv2.__version__,
            "parallel_backend": next((line.split(":", 1)[1].strip() for line in
                                      torch.__config__.parallel_info().splitlines() if "parallel backend" in line), ""),
            "device": str(device), "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None,
            "python": platform.python_version(), "platform": platform.platform(),
            "load_average_at_start": load_average(),
            "environment": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT",
                                                           "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES")}}


# ----------------------------------------------------------------------------- the five figures


def item_default_run(data: Path, backbone: str, work: Path, extra: list[str]) -> dict:
    """5 (and 4): fruitlib's default transfer run in a subprocess, cold cache: wall time, peak RSS, accuracy."""
    out = work / "default-run"
    run = timed_train(["--data", str(data), "--backbone", backbone, *extra], out, work / "cache-default-run")
    metrics = run.pop("metrics")
    history = pd.read_csv(out / "history.csv")
    return run | {"cache": "cold", "inside_s": metrics["seconds"], "val_accuracy": metrics["val_accuracy"],
                  "epochs": metrics["epochs"], "mode": metrics["mode"], "backbone": metrics["backbone"],
                  "image_size": metrics["image_size"], "n_train": metrics["n_train"], "n_val": metrics["n_val"],
                  "epoch_s": float(history["seconds"].mean()), "epoch_s_all": history["seconds"].tolist()}


def item_pipeline(catalog: Catalog, size: int, cache: Path) -> tuple[dict, object]:
    """1: images per second, JPEGs decoded every epoch vs the decoded-photo cache, through the same transform.

    Measured with fruitlib's training augmentation (what whole-network training reads every epoch) and with the
    evaluation view (what the frozen-feature pass reads); beside them, the loader over cached activations that
    the epochs of fruitlib's default (frozen) run read.
    """
    rows = catalog.split("train")
    labels = torch.tensor(rows["label"].to_numpy())
    views = {"augmented": train_transform(size, SPEC["mean"], SPEC["std"]),
             "eval_view": eval_transform(size, SPEC["mean"], SPEC["std"])}
    result = {"images": len(rows), "image_size": size, "batch_size": DEFAULTS.batch_size, "loader_workers": 0,
              "torch_threads": torch.get_num_threads()}
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
        result[view] = {"decode_every_epoch_images_per_s": every, "decoded_cache_images_per_s": once,
                        "ratio": once / every, "epochs_images_per_s": epochs}
    n = len(train.labels) * (DEFAULTS.views + 1)
    features = TensorDataset(torch.zeros(n, SPEC["feature_dim"], 1, 1, dtype=torch.float16),
                             train.labels.repeat(DEFAULTS.views + 1))
    result["cached_activations_images_per_s"] = images_per_second(loader(features))[0]
    result["cached_activations_ratio"] = (result["cached_activations_images_per_s"]
                                          / result["augmented"]["decode_every_epoch_images_per_s"])
    result["ratio"] = result["augmented"]["ratio"]
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
    history = fit(module, train_ds, val_ds, epochs=epochs, lr=DEFAULT_LR, batch_size=cfg.batch_size,
                  optimizer=cfg.optimizer, seed=cfg.seed, device=device, progress=False)
    times["total_s"] = time.perf_counter() - start
    times["head_s"] = times["total_s"] - times["decode_s"] - times["features_s"]
    return times | {"views": views, "epochs": epochs, "val_accuracy": float(history["val_acc"].iloc[-1])}


def engine_forward_seconds(model, batches: list[torch.Tensor], device: torch.device) -> float:
    """The floor of item 2: one pass of fruitlib's engine for the frozen stages (ONNX Runtime on a CPU, PyTorch on a
    GPU) over batches already decoded and prepared, after a warm-up batch (and the export, outside the timing)."""
    run = stage_runner(model, len(model.stages), device)
    run(batches[0].to(device))
    start = time.perf_counter()
    for x in batches:
        run(x.to(device))
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def item_frozen(catalog: Catalog, name: str, epochs: int, cache: Path, device: torch.device) -> dict:
    """2: frozen-feature transfer from raw photos vs the floor, one engine pass over the same photos."""
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
    result["floor_s"] = floor = sum(floors) / len(floors)
    for key in ("fixed_features_cold", "fixed_features_warm_images"):
        result[key]["ratio"] = result[key]["total_s"] / floor
    # fruitlib's default run (item 5) also passes views augmented copies of every training photo through the backbone
    result["default_run_backbone_passes"] = (result["n_train"] * (DEFAULTS.views + 1) + result["n_val"]) / len(images)
    return result


def item_last(catalog: Catalog, name: str, epochs: int, cache: Path, device: torch.device) -> dict:
    """3: last stage + head on cached activations vs the whole network, same epochs, fruitlib's defaults."""
    result = {"epochs": epochs, "image_size": DEFAULTS.image_size, "views": DEFAULTS.views}
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
            lr, backbone_lr = rates(DEFAULTS, mode)  # fruitlib's rates for the mode
            history = fit(module, train_ds, val_ds, epochs=epochs, lr=lr, batch_size=DEFAULTS.batch_size,
                          optimizer=DEFAULTS.optimizer, seed=DEFAULTS.seed, device=device, progress=False,
                          groups=param_groups(model, lr, backbone_lr))
            result[mode] = {"prepare_s": prepare, "epoch_s": float(history["seconds"].mean()),
                            "epoch_s_all": history["seconds"].tolist(), "train_items_per_epoch": len(train_ds),
                            "total_s": time.perf_counter() - start, "lr": lr, "backbone_lr": backbone_lr,
                            "val_accuracy": float(history["val_acc"].iloc[-1]),
                            "val_accuracy_all": history["val_acc"].tolist()}
    result["ratio"] = result["full"]["epoch_s"] / result["last"]["epoch_s"]
    result["ratio_with_caching"] = result["full"]["total_s"] / result["last"]["total_s"]
    result["accuracy_gap_points"] = 100 * (result["full"]["val_accuracy"] - result["last"]["val_accuracy"])
    return result


def item_recipe(catalog: Catalog, name: str, epochs: int, cap_s: float, device: torch.device) -> dict:
    """4: the article's recipe - whole network, 224 px, JPEGs decoded every epoch, SGD 1e-4 momentum 0.9, batch 64."""
    seed_everything(0)
    model = build_model(catalog.classes, name, True, "full", image_size=RECIPE["image_size"])
    spec = model.spec
    to_input = PhotoView(RECIPE["image_size"], spec.mean, spec.std, train=False)  # the whole photo: no augmentation
    data = {}
    for split in ("train", "val"):
        rows = catalog.split(split)
        data[split] = ImagePathDataset(rows["path"].tolist(), torch.tensor(rows["label"].to_numpy()),
                                       RECIPE["image_size"], to_input)
    optimizer = make_optimizer([p for p in model.parameters() if p.requires_grad], "sgd", RECIPE["lr"], 0.0)
    model.to(device)
    shuffle = torch.Generator().manual_seed(0)
    deadline = time.perf_counter() + cap_s  # for all the epochs together: the last one may be cut short
    train_loader = TimeCapped(make_loader(data["train"], RECIPE["batch_size"], shuffle=True, generator=shuffle), deadline)
    val_loader = make_loader(data["val"], RECIPE["batch_size"])  # every photo once
    runs, trained = [], 0
    for epoch in range(epochs):
        start = time.perf_counter()
        train_loss, _ = run_epoch(model, train_loader, device, optimizer)
        train_s = time.perf_counter() - start
        trained += train_loader.seen
        start = time.perf_counter()
        _, val_acc = run_epoch(model, val_loader, device)
        runs.append({"train_s": train_s, "images": train_loader.seen, "complete": train_loader.complete,
                     "val_s": time.perf_counter() - start, "val_accuracy": val_acc, "train_loss": train_loss})
        if not train_loader.complete or time.perf_counter() > deadline:
            break
    n_train = len(data["train"])
    train_epoch = sum(r["train_s"] for r in runs) / trained * n_train  # seconds per full epoch, by images
    val_epoch = sum(r["val_s"] for r in runs) / len(runs)
    epoch_s = train_epoch + val_epoch
    measured_all = len(runs) >= RECIPE["epochs"] and runs[-1]["complete"]
    return {"image_size": RECIPE["image_size"], "batch_size": RECIPE["batch_size"], "optimizer": "sgd",
            "lr": RECIPE["lr"], "momentum": RECIPE["momentum"], "cache": "none (decoded every epoch)",
            "epochs_run": trained / n_train, "images_trained": trained,
            "complete_epochs": all(r["complete"] for r in runs),
            "runs": runs, "epoch_s": epoch_s, "train_epoch_s": train_epoch, "val_pass_s": val_epoch,
            "time_to_model_s": sum(r["train_s"] + r["val_s"] for r in runs[:RECIPE["epochs"]]) if measured_all
            else RECIPE["epochs"] * epoch_s, "extrapolated": not measured_all, "extrapolated_to_epochs": RECIPE["epochs"],
            "val_accuracy": runs[-1]["val_accuracy"]}


# ----------------------------------------------------------------------------- the table


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def table_rows(r: dict) -> list[dict]:
    rows = []

    def add(item, what, measured, ratio, target, ok, cache, note=""):
        rows.append({"item": item, "figure": what, "measured": measured, "ratio": ratio, "target": target,
                     "result": verdict(ok), "cache": cache, "note": note})

    p = r.get("pipeline")
    if p:
        a, e = p["augmented"], p["eval_view"]
        add("1", "data pipeline img/s, training augmentation",
            f"{a['decoded_cache_images_per_s']:.0f} cache vs {a['decode_every_epoch_images_per_s']:.0f} decode",
            f"{a['ratio']:.1f}x", f">= {TARGETS['pipeline']:.0f}x", a["ratio"] >= TARGETS["pipeline"], "warm",
            f"batch {p['batch_size']}, {p['image_size']} px, 0 loader workers, mean of {EPOCH_ROUNDS} epochs each "
            f"(cache: {', '.join(f'{v:.0f}' for v in a['epochs_images_per_s']['once'])}; decode: "
            f"{', '.join(f'{v:.0f}' for v in a['epochs_images_per_s']['every'])}); cache built once at "
            f"{p['cache_build_images_per_s']:.0f} img/s (cold), read back at {p['cache_load_images_per_s']:.0f} img/s")
        add("1b", "data pipeline img/s, evaluation view",
            f"{e['decoded_cache_images_per_s']:.0f} cache vs {e['decode_every_epoch_images_per_s']:.0f} decode",
            f"{e['ratio']:.1f}x", "info", None, "warm", "centre crop + normalise: what the frozen-feature pass reads")
        add("1c", "default run's epochs: cached activations",
            f"{p['cached_activations_images_per_s']:.0f} vs {a['decode_every_epoch_images_per_s']:.0f} decode",
            f"{p['cached_activations_ratio']:.0f}x", "info", None, "warm",
            "augmented views computed once; an epoch only reads them")
    f = r.get("frozen")
    if f:
        c = f["fixed_features_cold"]
        add("2", "frozen transfer, photos -> head (views 0) / floor",
            f"{c['total_s']:.1f} s vs {f['floor_s']:.1f} s", f"{c['ratio']:.2f}x", f"<= {TARGETS['frozen']}x",
            c["ratio"] <= TARGETS["frozen"], "cold",
            f"decode {c['decode_s']:.1f} + features {c['features_s']:.1f} + head {c['head_s']:.1f} s; "
            f"floor = 1 forward pass over the same {f['images']} photos, mean of "
            + " and ".join(f"{x:.1f}" for x in f["floor_s_each"]) + " s (before, after)"
            + ("; UNSTABLE: they differ by over 20% (a busy machine, or a GPU still warming up)"
               if max(f["floor_s_each"]) > max(1.2 * min(f["floor_s_each"]), min(f["floor_s_each"]) + 0.5) else ""))
        w = f["fixed_features_warm_images"]
        add("2b", "same, decoded photos already cached",
            f"{w['total_s']:.1f} s vs {f['floor_s']:.1f} s", f"{w['ratio']:.2f}x", "info", None, "warm photos",
            f"features {w['features_s']:.1f} + head {w['head_s']:.1f} s")
        dr = r.get("default_run")
        if dr:
            passes = f["default_run_backbone_passes"]
            ratio = dr["wall_s"] / f["floor_s"]
            add("2c", "fruitlib's default run, end to end / floor",
                f"{dr['wall_s']:.1f} s vs {f['floor_s']:.1f} s", f"{ratio:.2f}x", "info", None, "cold",
                f"item 5's `fruitlib train` (start-up, views={DEFAULTS.views}: {passes:.2f} backbone passes by design, "
                f"{dr['epochs']} epochs, plots): {ratio / passes:.2f}x the floor per pass")
    l_ = r.get("last")
    if l_:
        add("3", f"last stage on cached activations vs full, s/epoch ({l_['epochs']} ep)",
            f"{l_['last']['epoch_s']:.2f} s vs {l_['full']['epoch_s']:.1f} s", f"{l_['ratio']:.1f}x",
            f">= {TARGETS['last']:.0f}x", l_["ratio"] >= TARGETS["last"], "cold activations",
            f"with one-off caching ({l_['last']['prepare_s']:.1f} s): {l_['ratio_with_caching']:.1f}x")
        gap = l_["accuracy_gap_points"]
        add("3b", f"val accuracy after {l_['epochs']} epochs: last vs full",
            f"{l_['last']['val_accuracy']:.1%} vs {l_['full']['val_accuracy']:.1%}", f"{-gap:+.1f} pts",
            f"within {TARGETS['last_acc_points']:.0f} pts", gap <= TARGETS["last_acc_points"], "",
            "full ahead by more than the target is a fail; last ahead is a pass")
    rc, dr = r.get("recipe"), r.get("default_run")
    if rc and dr:
        ratio_epoch = rc["epoch_s"] / dr["epoch_s"]
        ratio_model = rc["time_to_model_s"] / dr["wall_s"]
        add("4", "article recipe vs fruitlib default: s/epoch",
            f"{rc['epoch_s']:.1f} s vs {dr['epoch_s']:.3f} s", f"{ratio_epoch:.0f}x", f">= {TARGETS['recipe']:.0f}x",
            ratio_epoch >= TARGETS["recipe"], "none vs cold",
            f"recipe epoch = train + val pass, {rc['image_size']} px; default epoch = head on cached features")
        add("4b", f"time to a finished model ({RECIPE['epochs']} vs {dr['epochs']} epochs)",
            f"{rc['time_to_model_s'] / 60:.0f} min vs {dr['wall_s']:.0f} s", f"{ratio_model:.0f}x",
            f">= {TARGETS['recipe']:.0f}x", ratio_model >= TARGETS["recipe"], "none vs cold",
            (f"recipe EXTRAPOLATED from {rc['epochs_run']:.2f} measured epoch(s)" if rc["extrapolated"]
             else f"recipe MEASURED: all {RECIPE['epochs']} epochs run")
            + "; default = whole `fruitlib train` wall time incl. start-up, decoding, features, plots")
        add("4c", "val accuracy beside those times",
            f"{rc['val_accuracy']:.1%} vs {dr['val_accuracy']:.1%}", "", "info", None, "",
            f"recipe after {rc['epochs_run']:.2f} epoch(s) actually run; default after {dr['epochs']} epochs")
    if dr:
        add("5", "peak RSS of the default transfer run",
            f"{dr['peak_rss_gib']:.2f} GiB", "", f"<= {TARGETS['rss_gib']:.0f} GiB",
            dr["peak_rss_gib"] <= TARGETS["rss_gib"], "cold", "subprocess `python -m fruitlib train`, wait4 ru_maxrss")
    return rows


def print_table(rows: list[dict]) -> None:
    cols = ("item", "figure", "measured", "ratio", "target", "result", "cache")
    widths = {c: max([len(c)] + [len(str(row[c])) for row in rows]) for c in cols}
    line = "  ".join(c.ljust(widths[c]) for c in cols)
    print("\n" + line + "\n" + "-" * len(line))
    for row in rows:
        print("  ".join(str(row[c]).ljust(widths[c]) for c in cols))
        if row["note"]:
            print(" " * (widths["item"] + 2) + "  " + row["note"])


# ----------------------------------------------------------------------------- main


SPEC: dict = {}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="data folder (default: $FRUITLIB_DATA, else data/GroceryStoreDataset)")
    parser.add_argument("--backbone", default="auto",
                        help="auto (fruitlib's default), efficientnet_lite0, resnet50 ...")
    parser.add_argument("--quick", action="store_true", help="tiny settings: a smoke test of the benchmark itself")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results.json"), help="JSON file")
    parser.add_argument("--device", default="auto", help="auto (fruitlib's default), cpu, cuda")
    parser.add_argument("--epochs", type=int, help="head epochs in item 2 (default: fruitlib's 10; quick 2)")
    parser.add_argument("--compare-epochs", type=int, help="epochs of each run in item 3 (default 2; quick 1)")
    parser.add_argument("--recipe-epochs", type=int, default=1, help="article-recipe epochs to time (item 4)")
    parser.add_argument("--recipe-cap", type=float, help="stop the recipe's epochs after this many seconds in all "
                                                         "and extrapolate (default: what is left of --budget)")
    parser.add_argument("--budget", type=float, default=540.0, help="seconds the whole benchmark aims at: the "
                        "article recipe (measured last) gets what the other items left, 20 s at least")
    parser.add_argument("--skip", nargs="*", default=[], choices=["settings", "gpu", "1", "2", "3", "4", "5"],
                        help="items to leave out (4 needs 5)")
    args = parser.parse_args(argv)

    device = pick_device(args.device)
    full_catalog = make_splits(scan(find_data(args.data)))
    name, why = resolve_backbone(args.backbone)
    work = Path(tempfile.mkdtemp(prefix="fruitlib-bench-"))
    data_root = full_catalog.root
    if args.quick:
        data_root = subset_data(full_catalog, 2, work / "data")
    catalog = make_splits(scan(data_root))
    frozen_epochs = args.epochs or (2 if args.quick else DEFAULTS.epochs)
    last_epochs = args.compare_epochs or (1 if args.quick else 2)
    n_settings = 64 if args.quick else 256
    batch_sizes = [32, 64] if args.quick else [32, 64, 128]

    info = machine(device)
    results: dict = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "date":
                     datetime.datetime.now().astimezone().isoformat(timespec="seconds"), "machine": info,
                     "data": str(data_root), "quick": args.quick, "backbone": name, "backbone_why": why,
                     "fruitlib_defaults": {k: getattr(DEFAULTS, k) for k in ("image_size", "batch_size", "epochs",
                                                                              "views", "optimizer")},
                     "n_train": len(catalog.split("train")), "n_val": len(catalog.split("val")), "errors": {},
                     "seconds_per_item": {}}
    log(f"{info['cpu']}, {info['cores']} cores, torch {info['torch']} ({info['torch_threads']} threads), "
        f"{device}; load average {info['load_average_at_start'][0]:.1f}")
    log(f"backbone {name} ({why}); {results['n_train']} train / {results['n_val']} val photos; work folder {work}")
    if info["load_average_at_start"][0] > 0.5 * (info["cores_usable"] or 1):
        log("WARNING: the machine is busy (load average above half the cores): timings will be slow and noisy")

    probe = build_model(catalog.classes, name, False, "frozen", image_size=DEFAULTS.image_size)  # its shapes only
    SPEC.update(mean=probe.spec.mean, std=probe.spec.std, feature_dim=probe.head.in_features)
    del probe

    out = Path(args.out)

    def save(partial: bool) -> None:
        """Write the JSON; after each item too, so that an interrupted run keeps what it measured."""
        done = {k: v for k, v in results.items() if v is not None}
        done["partial"], done["table"] = partial, table_rows(done)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(done, indent=2, default=str))

    def step(key: str, label: str, fn):
        if key in args.skip:
            return None
        log(f"{label} ...")
        start = time.perf_counter()
        try:
            value = fn()
        except Exception as error:  # one failed item is reported; the others still run
            import traceback

            results["errors"][key] = traceback.format_exc()
            log(f"{label} FAILED: {error}")
            return None
        results["seconds_per_item"][key] = time.perf_counter() - start
        log(f"{label} done")
        return value

    def stop(signum, frame):  # a terminated run still removes its temporary folder
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)

    shared_cache = work / "cache"
    try:
        for path in catalog.table["path"]:  # read every JPEG once: all figures see the OS file cache warm
            Path(path).read_bytes()
        quick_extra = ["--epochs", "2"] if args.quick else []
        results["default_run"] = step("5", "5. fruitlib's default transfer run (subprocess, cold cache)",
                                      lambda: item_default_run(data_root, args.backbone, work, quick_extra))
        save(partial=True)
        got = step("1", "1. data pipeline: decoded every epoch vs cache",
                   lambda: item_pipeline(catalog, DEFAULTS.image_size, shared_cache))
        if got:
            results["pipeline"] = got[0]
        save(partial=True)
        results["frozen"] = step("2", "2. frozen-feature transfer vs one forward pass",
                                 lambda: item_frozen(catalog, name, frozen_epochs, shared_cache, device))
        save(partial=True)
        results["last"] = step("3", "3. last stage on cached activations vs whole network",
                               lambda: item_last(catalog, name, last_epochs, shared_cache, device))
        save(partial=True)

        def settings():
            model = build_model(catalog.classes, name, True, "full", image_size=DEFAULTS.image_size)
            with fruitlib_cache(shared_cache):
                images = load_split(catalog, "train", DEFAULTS.image_size, progress=False).images
            n = min(n_settings, len(images))
            s = measure_settings(model, images, n, batch_sizes, (0, 1) if args.quick else (0, 1, 2))
            paths = catalog.split("train")["path"].tolist()[:n]
            s["decode_images_per_s"] = measure_decode_threads(paths, stored_size(DEFAULTS.image_size),
                                                              torch.get_num_threads())
            if not args.quick:  # two fresh processes: too slow for a smoke test
                s["openmp_wait_policy"] = measure_openmp_wait(paths, name, catalog.classes, n)
            return s

        results["settings"] = step("settings", "CPU settings, measured", settings)
        save(partial=True)

        def gpu_settings():
            with fruitlib_cache(shared_cache):
                train = load_split(catalog, "train", RECIPE["image_size"], progress=False)
            return measure_gpu_settings(catalog, name, train.images, train.labels, device, RECIPE["image_size"],
                                        2 if args.quick else 10)

        if device.type == "cuda":
            results["gpu_settings"] = step("gpu", "GPU settings, measured", gpu_settings)
            save(partial=True)
        recipe_cap = args.recipe_cap or (5.0 if args.quick else max(20.0, args.budget - (time.perf_counter() - BEGAN)))
        results["recipe_cap_s"] = recipe_cap
        results["recipe"] = step("4", f"4. the article's recipe (whole network, 224 px, decoded every epoch; "
                                      f"cut at {recipe_cap:.0f} s)",
                                 lambda: item_recipe(catalog, name, args.recipe_epochs, recipe_cap, device))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["machine"]["load_average_at_end"] = load_average()
    results["total_s"] = time.perf_counter() - BEGAN
    save(partial=False)
    results = {k: v for k, v in results.items() if v is not None}
    rows = table_rows(results)

    print_table(rows)
    if "settings" in results:
        print("\nCPU settings (measured on %d photos, %s px; forward: best of 2 rounds of half of them):"
              % (results["settings"]["images"], DEFAULTS.image_size))
        for line in settings_summary(results["settings"]):
            print("  " + line)
    if "gpu_settings" in results:
        print(f"\nGPU settings ({info['gpu']}, {RECIPE['image_size']} px, whole network):")
        for line in gpu_settings_summary(results["gpu_settings"]):
            print("  " + line)
    load = results["machine"]["load_average_at_end"][0]
    print(f"\nbackbone {name}; {results['n_train']} train photos; {info['cores']} cores; {info['gpu'] or 'no GPU'}; "
          f"load average "
          f"{info['load_average_at_start'][0]:.1f} -> {load:.1f}; total {results['total_s']:.0f} s"
          + ("; QUICK smoke test: figures not meaningful" if args.quick else ""))
    print("seconds per item: " + ", ".join(f"{k} {v:.0f}" for k, v in results["seconds_per_item"].items()))
    for key, trace in results["errors"].items():
        print(f"\nitem {key} failed:\n{trace}", file=sys.stderr)
    print(f"results written to {out}")
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())

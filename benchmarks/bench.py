#!/usr/bin/env python
"""fruitlib's speed and memory, measured: one command, a table on screen and a JSON file.

    python benchmarks/bench.py [--data PATH] [--backbone auto] [--quick] [--out benchmarks/results/bench-DATE.json]

Every figure is a ratio of two things measured side by side in this one run, on the same machine, data
(the train split; validation photos where an accuracy is reported) and backbone. See benchmarks/README.md; dated
results are in benchmarks/results/.
Timings live here, never in the tests. The parts: ``items.py`` (what is measured), ``timing.py`` (how),
``settings.py`` (the settings sections), ``report.py`` (ratios, verdicts, the table).
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import torch
from items import (
    DEFAULTS,
    FROZEN_EPOCHS,
    RECIPE,
    item_default_run,
    item_frozen,
    item_last,
    item_pipeline,
    item_recipe,
    subset_data,
)
from report import gpu_settings_summary, print_table, settings_summary, table_rows
from settings import measure_decode_threads, measure_gpu_settings, measure_openmp_wait, measure_settings
from timing import fruitlib_cache, load_average, machine

from fruitlib.cache import load_split
from fruitlib.data import find_data, make_splits, scan, stored_size
from fruitlib.device import pick_device
from fruitlib.models import build_model, resolve_backbone

BEGAN = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - BEGAN:6.0f} s] {message}", flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="data folder (default: $FRUITLIB_DATA, else data/GroceryStoreDataset)")
    parser.add_argument(
        "--backbone", default="auto", help="auto (fruitlib's default), efficientnet_lite0, resnet50 ..."
    )
    parser.add_argument("--quick", action="store_true", help="tiny settings: a smoke test of the benchmark itself")
    dated = Path(__file__).resolve().parent / "results" / f"bench-{datetime.date.today()}.json"
    parser.add_argument("--out", default=str(dated), help="JSON file")
    parser.add_argument("--device", default="auto", help="auto (fruitlib's default), cpu, cuda")
    parser.add_argument(
        "--epochs", type=int, help=f"head epochs in item 2 (default: fruitlib's {FROZEN_EPOCHS}; quick 2)"
    )
    parser.add_argument("--compare-epochs", type=int, help="epochs of each run in item 3 (default 2; quick 1)")
    parser.add_argument(
        "--recipe-cap",
        type=float,
        help="seconds of training for the article's recipe (item 4; default: what is left of --budget)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=600.0,
        help="seconds the whole benchmark aims at: the "
        "article recipe (measured last) trains for what the other items left, 60 s at least",
    )
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["settings", "gpu", "1", "2", "3", "4", "5"],
        help="items to leave out (4 needs 5)",
    )
    args = parser.parse_args(argv)

    device = pick_device(args.device)
    full_catalog = make_splits(scan(find_data(args.data)))
    name, why = resolve_backbone(args.backbone)
    work = Path(tempfile.mkdtemp(prefix="fruitlib-bench-"))
    data_root = full_catalog.root
    if args.quick:
        data_root = subset_data(full_catalog, 2, work / "data")
    catalog = make_splits(scan(data_root))
    frozen_epochs = args.epochs or (2 if args.quick else FROZEN_EPOCHS)
    last_epochs = args.compare_epochs or (1 if args.quick else 2)
    n_settings = 64 if args.quick else 128
    batch_sizes = [32, 64] if args.quick else [32, 64, 128]

    info = machine(device)
    results: dict = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": info,
        "data": str(data_root),
        "quick": args.quick,
        "backbone": name,
        "backbone_why": why,
        "fruitlib_defaults": {k: getattr(DEFAULTS, k) for k in ("image_size", "batch_size", "views", "optimizer")}
        | {"epochs": FROZEN_EPOCHS},
        "n_train": len(catalog.split("train")),
        "n_val": len(catalog.split("val")),
        "errors": {},
        "seconds_per_item": {},
    }
    log(
        f"{info['cpu']}, {info['cores']} cores, torch {info['torch']} ({info['torch_threads']} threads), "
        f"{device}; load average {info['load_average_at_start'][0]:.1f}"
    )
    log(f"backbone {name} ({why}); {results['n_train']} train / {results['n_val']} val photos; work folder {work}")
    if info["load_average_at_start"][0] > 0.5 * (info["cores_usable"] or 1):
        log("WARNING: the machine is busy (load average above half the cores): timings will be slow and noisy")

    probe = build_model(catalog.classes, name, False, "frozen", image_size=DEFAULTS.image_size)  # its shapes only

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
        results["default_run"] = step(
            "5",
            "5. fruitlib's default transfer run (subprocess, cold cache)",
            lambda: item_default_run(data_root, args.backbone, work, quick_extra),
        )
        save(partial=True)
        got = step(
            "1",
            "1. data pipeline: decoded every epoch vs cache",
            lambda: item_pipeline(catalog, DEFAULTS.image_size, probe.spec, probe.head.in_features, shared_cache),
        )
        if got:
            results["pipeline"] = got[0]
        save(partial=True)
        results["frozen"] = step(
            "2",
            "2. frozen-feature transfer vs one forward pass",
            lambda: item_frozen(catalog, name, frozen_epochs, shared_cache, device),
        )
        save(partial=True)
        results["last"] = step(
            "3",
            "3. last stage on cached activations vs whole network",
            lambda: item_last(catalog, name, last_epochs, shared_cache, device),
        )
        save(partial=True)

        def settings():
            model = build_model(catalog.classes, name, True, "full", image_size=DEFAULTS.image_size)
            with fruitlib_cache(shared_cache):
                images = load_split(catalog, "train", DEFAULTS.image_size, progress=False).images
            n = min(n_settings, len(images))
            s = measure_settings(model, images, n, batch_sizes, (0, 1) if args.quick else (0, 1, 2))
            paths = catalog.split("train")["path"].tolist()[:n]
            s["decode_images_per_s"] = measure_decode_threads(
                paths, stored_size(DEFAULTS.image_size), torch.get_num_threads()
            )
            if not args.quick:  # two fresh processes: too slow for a smoke test
                s["openmp_wait_policy"] = measure_openmp_wait(paths, name, catalog.classes, n)
            return s

        results["settings"] = step("settings", "CPU settings, measured", settings)
        save(partial=True)

        def gpu_settings():
            with fruitlib_cache(shared_cache):
                train = load_split(catalog, "train", RECIPE["image_size"], progress=False)
            return measure_gpu_settings(
                catalog, name, train.images, train.labels, device, RECIPE["image_size"], 2 if args.quick else 10
            )

        if device.type == "cuda":
            results["gpu_settings"] = step("gpu", "GPU settings, measured", gpu_settings)
            save(partial=True)
        recipe_cap = args.recipe_cap or (5.0 if args.quick else max(60.0, args.budget - (time.perf_counter() - BEGAN)))
        results["recipe_cap_s"] = recipe_cap
        results["recipe"] = step(
            "4",
            f"4. the article's recipe (whole network, 224 px, photos decoded every "
            f"batch and cached, alternating; {recipe_cap:.0f} s of training)",
            lambda: item_recipe(catalog, name, recipe_cap, device, shared_cache),
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["machine"]["load_average_at_end"] = load_average()
    results["total_s"] = time.perf_counter() - BEGAN
    save(partial=False)
    results = {k: v for k, v in results.items() if v is not None}
    rows = table_rows(results)

    print_table(rows)
    if "settings" in results:
        print(
            f"\nCPU settings (measured on {results['settings']['images']} photos, {DEFAULTS.image_size} px; forward: "
            "best of 2 rounds of half of them):"
        )
        for line in settings_summary(results["settings"]):
            print("  " + line)
    if "gpu_settings" in results:
        print(f"\nGPU settings ({info['gpu']}, {RECIPE['image_size']} px, whole network):")
        for line in gpu_settings_summary(results["gpu_settings"]):
            print("  " + line)
    load = results["machine"]["load_average_at_end"][0]
    print(
        f"\nbackbone {name}; {results['n_train']} train photos; {info['cores']} cores; {info['gpu'] or 'no GPU'}; "
        f"load average "
        f"{info['load_average_at_start'][0]:.1f} -> {load:.1f}; total {results['total_s']:.0f} s"
        + ("; QUICK smoke test: figures not meaningful" if args.quick else "")
    )
    print("seconds per item: " + ", ".join(f"{k} {v:.0f}" for k, v in results["seconds_per_item"].items()))
    for key, trace in results["errors"].items():
        print(f"\nitem {key} failed:\n{trace}", file=sys.stderr)
    print(f"results written to {out}")
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())

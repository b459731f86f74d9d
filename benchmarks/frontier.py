"""Test accuracy against seconds: whole ``fruitlib train`` runs, each cold (a cache of its own), on one machine.

Each configuration is one ``python -m fruitlib train`` in a subprocess; its wall time runs from process start to
the saved model and figures. Then ``python -m fruitlib evaluate --split test --json`` scores it on the test split
(95% Wilson interval), timed apart: the settings were chosen on the validation split before any of this ran. The
article's recipe (whole network at 224 px, JPEGs decoded every epoch, 30 epochs) is far too slow to run here: its
time is the extrapolation of ``bench.py`` (item 4b, from the JSON given), drawn as a line, its accuracy unknown.

    .venv/bin/python benchmarks/frontier.py --data ../shared/data/GroceryStoreDataset

About 10 minutes on a 2-core CPU. Writes ``benchmarks/frontier.png`` and ``benchmarks/frontier.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import matplotlib
import pandas as pd
from timing import timed_train

from fruitlib import stats

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LITE0 = ["--backbone", "efficientnet_lite0"]
OLD_DEFAULT = LITE0 + ["--image-size", "128", "--views", "2", "--epochs", "10"]
CONFIGS = {  # label: (train arguments beyond --data and --out, extra environment)
    "fruitlib 0.4's default (Lite0, 128 px, 2 views, 10 epochs) on PyTorch": (
        OLD_DEFAULT,
        {"FRUITLIB_ENGINE": "pytorch"},
    ),
    "the same on ONNX Runtime": (OLD_DEFAULT, {}),
    "Lite0, 224 px, centre crop only": (LITE0 + ["--views", "0"], {}),
    "default (Lite0, 224 px, 1 view, 100 epochs)": ([], {}),
    "fruitlib 0.6's preset (Lite1, 240 px, 4 views)": (
        ["--backbone", "efficientnet_lite1", "--image-size", "240", "--views", "4"],
        {},
    ),
    "--preset accurate (Lite0, 224 px, last stage trained, 2 views)": (["--preset", "accurate"], {}),
    "Lite2, 300 px, 4 views": (["--backbone", "efficientnet_lite2", "--image-size", "300", "--views", "4"], {}),
}
TARGET_S, TARGET_ACCURACY = 45, (76, 79)  # issue 11: the default >= 76% in <= 45 s; one setting >= 79%
RECIPE_JSON = "benchmarks/results/results-cpu-2026-11-30-opencv-augment.json"


def figure(table: pd.DataFrame, recipe_s: float | None, recipe_label: str):
    """Each configuration a point with its interval (named in the legend below), the targets dotted."""
    fig, ax = plt.subplots(figsize=(9, 6), layout="constrained")
    for row in table.itertuples():
        ax.errorbar(
            row.seconds,
            100 * row.test,
            yerr=[[100 * (row.test - row.low)], [100 * (row.high - row.test)]],
            fmt="o",
            capsize=3,
            label=f"{row.configuration}: {100 * row.test:.1f}% in {row.seconds:.0f} s",
        )
    for accuracy in TARGET_ACCURACY:
        ax.axhline(accuracy, color="grey", linestyle=":", linewidth=1)
    ax.axvline(TARGET_S, color="grey", linestyle=":", linewidth=1)
    if recipe_s:
        ax.axvline(recipe_s, color="grey", linestyle="--")
        ax.text(recipe_s, ax.get_ylim()[0] + 0.5, recipe_label, rotation=90, ha="right", va="bottom", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel(
        f"wall time of python -m fruitlib train, cold cache (s, log scale); dotted: the targets, "
        f"{TARGET_S} s and {' / '.join(map(str, TARGET_ACCURACY))}%"
    )
    ax.set_ylabel("test accuracy (%), 95% interval")
    ax.grid(alpha=0.3)
    fig.legend(loc="outside lower center", ncols=1, fontsize=8, frameon=False)
    return fig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--recipe-json", default=RECIPE_JSON, help="bench.py results with the recipe's time")
    parser.add_argument("--only", nargs="*", help="labels to run (default: all)")
    parser.add_argument("--out", default="benchmarks/frontier")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for i, (label, (extra, env)) in enumerate(CONFIGS.items()):
            if args.only and label not in args.only:
                continue
            out, cache = Path(work) / f"run{i}", Path(work) / f"cache{i}"
            run = timed_train(["--data", args.data, *extra], out, cache, env)
            began = time.perf_counter()
            test = json.loads(
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "fruitlib",
                        "evaluate",
                        "--checkpoint",
                        str(out / "model.pt"),
                        "--split",
                        "test",
                        "--json",
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                    env=os.environ | {"FRUITLIB_CACHE": str(cache)} | env,
                ).stdout
            )
            low, high = test["interval95"]
            rows.append(
                {
                    "configuration": label,
                    "seconds": round(run["wall_s"], 1),
                    "test": test["accuracy"],
                    "low": low,
                    "high": high,
                    "n_test": test["n_images"],
                    "evaluate s": round(time.perf_counter() - began, 1),
                    "val": run["metrics"]["val_accuracy"],
                    "peak_gib": round(run["peak_rss_gib"], 2),
                    "command": run["command"].split(" -m ", 1)[1],
                }
            )
            print(
                f"{label}: {stats.describe(test['accuracy'], test['n_images'])} in {run['wall_s']:.1f} s, "
                f"peak {run['peak_rss_gib']:.2f} GiB",
                flush=True,
            )
    recipe = json.loads(Path(args.recipe_json).read_text())["recipe"] if Path(args.recipe_json).is_file() else {}
    recipe_s = recipe.get("time_to_model_s")
    label = "article's recipe, 30 epochs extrapolated (accuracy not measured)"
    table = pd.DataFrame(rows)
    figure(table, recipe_s, label).savefig(f"{args.out}.png", dpi=120)
    Path(f"{args.out}.json").write_text(json.dumps({"rows": rows, "recipe_s": recipe_s}, indent=2))
    shown = table.assign(**{c: (100 * table[c]).round(1) for c in ("test", "low", "high", "val")})
    print(shown.drop(columns="command").to_string(index=False))
    if recipe_s:
        print(f"{label}: {recipe_s:.0f} s (from {args.recipe_json})")


if __name__ == "__main__":
    main()

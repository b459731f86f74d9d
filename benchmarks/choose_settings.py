"""The settings of the notebooks' equal-budget runs and of --preset accurate, chosen on the validation split.

Each candidate trains with three seeds (the 224-px SHIP ones with one); the table gives its mean, lowest and
highest validation accuracy. The test split is never scored.
Candidates: the fine-tuning rates (one rate for everything, or a head faster than the pretrained stage),
EfficientNet-Lite's own regularisation (dropout before the head, drop-connect in the blocks) kept or
left off, and the centre crop alone or augmented views for the 224-px frozen model of notebook 06.
With ``--accurate``, instead: the candidates for ``train --preset accurate`` at RunConfig's defaults (224 px,
DEFAULT_EPOCHS), fixed features against fine-tuning the last stage; the preset is the best mean over the seeds
(the faster on a tie).

    .venv/bin/python benchmarks/choose_settings.py --data ../shared/data/GroceryStoreDataset
    .venv/bin/python benchmarks/choose_settings.py --data ../shared/data/GroceryStoreDataset --accurate

About 15 minutes on a 2-core CPU (about 20 with ``--accurate``). Run folders go to a temporary folder, caches
to $FRUITLIB_CACHE.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import pandas as pd

from fruitlib import run, stats

BASE = run.RunConfig(backbone="efficientnet_lite0", image_size=64, epochs=5, views=2)
CANDIDATES = {
    "fixed features": dict(mode="frozen"),
    "fixed features, own dropout": dict(mode="frozen", dropout=True),
    "last stage, one rate 3e-4": dict(mode="last", lr=3e-4, backbone_lr=3e-4),
    "last stage, head 1e-3, stage 3e-4": dict(mode="last", lr=1e-3, backbone_lr=3e-4),
    "last stage, head 1e-3, stage 1e-4": dict(mode="last", lr=1e-3, backbone_lr=1e-4),
    "last stage, head 1e-3, stage 3e-4, own dropout": dict(mode="last", lr=1e-3, backbone_lr=3e-4, dropout=True),
    "scratch": dict(scratch=True, mode="full"),
    "scratch, own dropout": dict(scratch=True, mode="full", dropout=True),
}
SHIP = {  # one seed each: the 224-px frozen model costs a minute or two per run; 10 epochs, as notebook 06 trains it
    "224 px fixed features, centre crop only": dict(mode="frozen", image_size=224, views=0, epochs=10),
    "224 px fixed features, 2 augmented views": dict(mode="frozen", image_size=224, views=2, epochs=10),
}

ACCURATE = {  # at RunConfig's defaults otherwise: 224 px, 100 head epochs when frozen, 10 when the last stage trains
    "fixed features, Lite1 240 px, 4 views (fruitlib 0.6's preset)": dict(
        backbone="efficientnet_lite1", image_size=240, views=4
    ),
    "fixed features, Lite0 224 px, 4 views": dict(backbone="efficientnet_lite0", views=4),
    "last stage, Lite0 224 px, 2 views": dict(backbone="efficientnet_lite0", mode="last", views=2),
    "last stage, Lite1 240 px, 2 views": dict(backbone="efficientnet_lite1", image_size=240, mode="last", views=2),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--skip-ship", action="store_true", help="leave out the 224-px candidates")
    parser.add_argument("--ship-only", action="store_true", help="only the 224-px candidates")
    parser.add_argument("--accurate", action="store_true", help="only the candidates for --preset accurate")
    args = parser.parse_args()
    if args.accurate:
        base, grid = run.RunConfig(), [(name, settings, args.seeds) for name, settings in ACCURATE.items()]
    else:
        base = BASE
        grid = [] if args.ship_only else [(name, settings, args.seeds) for name, settings in CANDIDATES.items()]
        grid += [] if args.skip_ship else [(name, settings, args.seeds[:1]) for name, settings in SHIP.items()]
    rows, seconds = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, settings, seeds in grid:
            cfgs = [
                dataclasses.replace(base, data=args.data, out=str(Path(tmp) / "run"), seed=seed, test=False, **settings)
                for seed in seeds
            ]
            began = time.perf_counter()
            results = [run.train_run(cfg, overwrite=True, progress=False).metrics for cfg in cfgs]
            seconds[name] = (time.perf_counter() - began) / len(seeds)
            rows[name] = [m["val_accuracy"] for m in results]
            print(f"{name}: {', '.join(f'{s:.1%}' for s in rows[name])} ({seconds[name]:.0f} s a run)", flush=True)
    sizes = "fruitlib's defaults" if args.accurate else f"{BASE.image_size} px, {BASE.epochs} epochs"
    print(f"\nvalidation accuracy, {results[0]['n_val']} photos ({sizes} unless named)\n")
    table = stats.over_seeds(rows, results[0]["n_val"]).assign(**{"s a run": pd.Series(seconds).round(0)})
    print(table.to_string())
    if args.accurate:
        print("\naccurate preset:", table.sort_values(["mean %", "s a run"], ascending=[False, True]).index[0])


if __name__ == "__main__":
    main()

"""The settings of the notebooks' equal-budget runs, chosen on the validation split (never on test).

Each candidate trains with three seeds; the table gives its mean, lowest and highest validation accuracy.
Candidates: the fine-tuning rates (one rate for everything, or a head faster than the pretrained stage),
EfficientNet-Lite's own regularisation (dropout before the head, drop-connect in the blocks) kept or
left off, and the centre crop alone or augmented views for the 224-px frozen model of notebook 06.

    .venv/bin/python benchmarks/choose_settings.py --data ../shared/data/GroceryStoreDataset

About 15 minutes on a 2-core CPU. Its run folders go to a temporary folder, its caches to $FRUITLIB_CACHE.
"""
from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--skip-ship", action="store_true", help="leave out the 224-px candidates")
    parser.add_argument("--ship-only", action="store_true", help="only the 224-px candidates")
    args = parser.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        grid = [] if args.ship_only else [(name, settings, args.seeds) for name, settings in CANDIDATES.items()]
        grid += [] if args.skip_ship else [(name, settings, args.seeds[:1]) for name, settings in SHIP.items()]
        for name, settings, seeds in grid:
            cfgs = [dataclasses.replace(BASE, data=args.data, out=str(Path(tmp) / "run"), seed=seed, **settings)
                    for seed in seeds]
            results = [run.train_run(cfg, overwrite=True, progress=False).metrics for cfg in cfgs]
            rows[name] = [m["val_accuracy"] for m in results]
            print(f"{name}: {', '.join(f'{s:.1%}' for s in rows[name])}", flush=True)
    print(f"\nvalidation accuracy, {results[0]['n_val']} photos ({BASE.image_size} px, {BASE.epochs} epochs unless "
          "named)\n")
    print(stats.over_seeds(rows, results[0]["n_val"]).to_string())


if __name__ == "__main__":
    main()

"""``python -m fruitlib``: train, evaluate, predict, run the notebook series, download for offline use, and the cache.

Errors end the program with one line on stderr and a non-zero exit status, never a traceback; options that
contradict each other are refused before any work. Only the command that runs imports PyTorch and the other heavy
libraries, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import warnings
from pathlib import Path

from .config import (
    BACKBONE_SHARE,
    CATEGORIES,
    DEFAULT_EPOCHS,
    DEFAULT_LR,
    LABELS,
    MODES,
    OPTIMIZERS,
    PRESETS,
    RESNETS,
    RunConfig,
)
from .errors import FruitlibError

DEFAULTS = RunConfig()


class Parser(argparse.ArgumentParser):
    """argparse, but a bad option is one line (what is wrong, where the help is), as every other error."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def at_least_one(text: str) -> int:
    """An option's whole number of 1 or more (``--top-k``)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def given_options(args: argparse.Namespace) -> set[str]:
    """The RunConfig settings named on the command line (a preset names its own)."""
    given = {k for k, v in vars(args).items() if k in RunConfig.__dataclass_fields__ and v is not None}
    return given | (set(PRESETS[args.preset]) if args.preset else set()) | ({"cache"} if args.no_cache else set())


def train_config(args: argparse.Namespace) -> RunConfig:
    """The run's settings: RunConfig's defaults, then the ``--preset``'s, then every option given."""
    given = {k: v for k, v in vars(args).items() if k in RunConfig.__dataclass_fields__ and v is not None}
    return RunConfig(
        **(PRESETS[args.preset] if args.preset else {}) | given | {"cache": not args.no_cache, "test": bool(args.test)}
    )


def interrupted(out: Path) -> str:
    """What Ctrl-C left on disk, and what to do next."""
    from .checkpoint import load_checkpoint

    try:
        done = len(load_checkpoint(out / "model.pt")["training"]["history"])
    except (FruitlibError, TypeError, KeyError):
        return f"interrupted before an epoch was saved: {out} holds nothing to resume; train again (--overwrite)"
    return f"interrupted: {out}/model.pt holds the first {done} epoch(s); continue with --resume"


def contradictions(args: argparse.Namespace) -> None:
    """Refuse, in one line, options of ``train`` that cannot both hold (RunConfig refuses the settings that clash)."""
    if args.scratch and args.weights:
        raise FruitlibError("--scratch starts from random weights, so --weights would be ignored: give one of them")
    if args.no_cache and args.views is not None:
        raise FruitlibError("--views are augmented views whose frozen features are cached: drop --views or --no-cache")


def _train(args: argparse.Namespace) -> None:
    from . import stats
    from .distributed import session
    from .run import train_run

    contradictions(args)
    cfg = train_config(args)
    with session(cfg.device) as here:  # several processes under torchrun, else one
        try:
            result = train_run(cfg, resume=args.resume, overwrite=args.overwrite, asked=given_options(args))
        except KeyboardInterrupt:
            raise FruitlibError(interrupted(Path(cfg.out))) from None
    if not here.main:
        return
    m = result.metrics
    print(
        f"{m['backbone']} ({'pretrained' if m['pretrained'] else 'from scratch'}, {m['mode']}): "
        f"validation accuracy {m['val_accuracy']:.1%} on {m['n_val']} photos after {m['epochs']} epochs, "
        f"{m['seconds']:.0f} s; results in {result.out}"
    )
    if m["test"]:
        print(f"test accuracy {stats.describe(m['test']['accuracy'], m['test']['n_images'])}")
    else:
        print(
            f"once the settings are final, score the test split: python -m fruitlib evaluate --checkpoint "
            f"{result.out}/model.pt --split test"
        )


def _evaluate(args: argparse.Namespace) -> None:
    from . import stats
    from .cache import load_split
    from .checkpoint import load_checkpoint, model_from_checkpoint
    from .data import find_data, make_splits, read_manifest, relabel, scan
    from .evaluate import score

    params = load_checkpoint(args.checkpoint)["params"]
    model = model_from_checkpoint(args.checkpoint)
    trained_on = params.get("data_root") or params.get("data")
    root = find_data(args.data or trained_on)  # default: the data the model was trained on
    own = str(root) == params.get("data_root") or args.data is None
    split = args.split or ("val" if own else "all")  # new photos: every one of them
    recorded = Path(args.checkpoint).parent / "split.csv"
    if own and split != "all" and recorded.is_file():  # the run's own split, even if photos were added since
        catalog = read_manifest(recorded, root, model.spec.classes)
    else:
        catalog = scan(root, params.get("labels", "coarse"), params.get("category", "Fruit"), min_classes=1)
        if split != "all":
            catalog = make_splits(catalog, params.get("val_fraction", 0.2), params.get("seed", 0))
        catalog = relabel(catalog, model.spec.classes)
    with contextlib.redirect_stdout(sys.stderr if args.json else sys.stdout):  # --json: stdout holds only JSON
        images = load_split(catalog, split, model.spec.image_size, progress=not args.json)
    scores = score(model, images.images, images.labels)
    if args.json:
        print(json.dumps(scores | {"split": split, "interval95": stats.wilson(scores["accuracy"], scores["n_images"])}))
        return
    where = f"every photo of {root}" if split == "all" else f"{split} split of {root}"
    print(f"accuracy {stats.describe(scores['accuracy'], scores['n_images'])} ({where})")
    print(f"{'class':<18}{'precision':>10}{'recall':>8}{'f1':>7}{'n':>5}")
    for name, s in scores["per_class"].items():
        print(f"{name:<18}{s['precision']:>10.2f}{s['recall']:>8.2f}{s['f1']:>7.2f}{s['support']:>5}")


def _predict(args: argparse.Namespace) -> None:
    from .checkpoint import model_from_checkpoint
    from .evaluate import top_k

    model = model_from_checkpoint(args.checkpoint)
    for path, guesses in zip(args.images, top_k(model, args.images, args.top_k)):
        print(f"{path}: " + ", ".join(f"{name} {p:.1%}" for name, p in guesses))


def _series(args: argparse.Namespace) -> None:
    from .series import run_series

    run_series(args.out, args.params, args.only, args.notebooks)


def _download(args: argparse.Namespace) -> None:
    from .download import prepare_offline

    if not args.data and not args.weights:
        raise FruitlibError("nothing to download: pass --data, --weights resnet50 ..., or both")
    for line in prepare_offline(Path(args.to), args.data, args.weights or []):
        print(line)


def _cache(args: argparse.Namespace) -> None:
    from . import folder

    where, most = folder.cache_dir(), folder.limit()
    if args.clear:
        gone = folder.entries()
        for path in gone:
            path.unlink(missing_ok=True)
        print(f"cleared {where}: removed {len(gone)} entries")
        return
    kinds = folder.summary()
    total = sum(size for _, size in kinds.values())
    print(
        f"{where}: {total / 2**20:.0f} MB in {sum(n for n, _ in kinds.values())} entries; limit "
        + (f"{most / 2**20:.0f} MB (FRUITLIB_CACHE_LIMIT)" if most else "none")
    )
    for kind, (count, size) in sorted(kinds.items(), key=lambda k: -k[1][1]):
        print(f"  {kind:<14}{count:>5} entries {size / 2**20:>8.1f} MB")


def parser() -> argparse.ArgumentParser:
    top = Parser(prog="python -m fruitlib", description=__doc__.splitlines()[0])
    commands = top.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a fruit classifier into a run folder")
    train.add_argument(
        "--data",
        help="folder-per-class root or Grocery Store clone (default: $FRUITLIB_DATA, else data/GroceryStoreDataset)",
    )
    train.add_argument("--out", required=True, help="run folder for model.pt, metrics.json, history.csv, figures")
    train.add_argument(
        "--backbone",
        help="resnet18..resnet152, efficientnet_lite0/1/2, or auto (the default: "
        "ResNet-50 if its weights are here, else the Lite nearest the image size)",
    )
    train.add_argument(
        "--scratch", action="store_true", default=None, help="random initialisation instead of ImageNet weights"
    )
    train.add_argument("--mode", choices=MODES, help="what trains (default: frozen; full with --scratch)")
    train.add_argument("--weights", help="local ImageNet .pth file for the backbone (offline use)")
    train.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="named settings, before the options given: "
        + "; ".join(f"{k}: {' '.join(f'{n}={v}' for n, v in p.items())}" for k, p in PRESETS.items()),
    )
    epochs = f"{DEFAULT_EPOCHS['frozen']} for --mode frozen, else {DEFAULT_EPOCHS['full']}"
    for flag, default in (
        ("--epochs", epochs),
        ("--image-size", DEFAULTS.image_size),
        ("--batch-size", DEFAULTS.batch_size),
        ("--seed", DEFAULTS.seed),
        ("--views", DEFAULTS.views),
        ("--per-class", None),
    ):
        train.add_argument(flag, type=int, help=f"default: {default}" if default is not None else None)
    train.add_argument(
        "--lr", type=float, help=f"the new head's learning rate (default {DEFAULT_LR:g}; from scratch: every layer's)"
    )
    train.add_argument(
        "--backbone-lr",
        type=float,
        help=f"the rate of the pretrained stages that train (default: {BACKBONE_SHARE['last']:g} of --lr for "
        f"--mode last, {BACKBONE_SHARE['full']:g} for full)",
    )
    train.add_argument("--optimizer", choices=OPTIMIZERS, help=f"default: {DEFAULTS.optimizer}")
    train.add_argument("--labels", choices=LABELS, help=f"Grocery Store labels (default: {DEFAULTS.labels})")
    train.add_argument("--category", choices=CATEGORIES, help=f"default: {DEFAULTS.category}")
    train.add_argument("--device", help="auto (the default), cpu, cuda or mps")
    train.add_argument(
        "--dropout",
        action="store_true",
        default=None,
        help="keep EfficientNet-Lite's own dropout and drop-connect (ResNets have none)",
    )
    train.add_argument(
        "--test",
        action="store_true",
        help="score the test split too (default: no; score it once, "
        "when the settings are final: evaluate --split test)",
    )
    train.add_argument("--no-cache", action="store_true", help="run frozen layers every epoch (slow; to compare)")
    existing = train.add_mutually_exclusive_group()  # what to do with a run already in --out
    existing.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    existing.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    train.set_defaults(func=_train)

    evaluate = commands.add_parser("evaluate", help="score a saved model on a split")
    evaluate.add_argument("--checkpoint", required=True)
    evaluate.add_argument(
        "--data",
        help="photos to score: a folder of class sub-folders (named as the model's "
        "classes; some of them are enough) or a Grocery Store clone",
    )
    evaluate.add_argument(
        "--split",
        choices=["train", "val", "test", "all"],
        help="which photos: all of them (the default for --data other than the model's own), "
        "or a split of the training data (val, the default there; test: Grocery Store clones)",
    )
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.set_defaults(func=_evaluate)

    predict = commands.add_parser("predict", help="top-k classes for photos")
    predict.add_argument("--checkpoint", required=True)
    predict.add_argument("images", nargs="+")
    predict.add_argument("--top-k", type=at_least_one, default=3, help="how many guesses per photo (default 3)")
    predict.set_defaults(func=_predict)

    series = commands.add_parser("series", help="execute every notebook with papermill and regenerate figures/")
    series.add_argument("--out", default="runs/series", help="folder for the executed copies")
    series.add_argument("-f", "--params", help="YAML parameters, e.g. params/full.yaml")
    series.add_argument("--only", nargs="*", help="notebook name prefixes to run, e.g. 01 04")
    series.add_argument("--notebooks", help="the folder of numbered notebooks (default: the checkout's notebooks/)")
    series.set_defaults(func=_series)

    download = commands.add_parser(
        "download",
        help="once, online: fetch the data set and ResNet weights for "
        "offline machines, verified, and print where they are",
    )
    download.add_argument("--to", required=True, help="folder to fill (then copy it to a USB stick or a share)")
    download.add_argument("--data", action="store_true", help="the Grocery Store Dataset (about 120 MB unpacked)")
    download.add_argument(
        "--weights",
        nargs="+",
        choices=RESNETS,
        metavar="RESNET",
        help=f"ImageNet weights of these ResNets ({', '.join(RESNETS)})",
    )
    download.set_defaults(func=_download)

    cache = commands.add_parser("cache", help="what the cache folder holds ($FRUITLIB_CACHE, its size limit); --clear")
    cache.add_argument("--clear", action="store_true", help="remove every entry (they are made again when needed)")
    cache.set_defaults(func=_cache)
    return top


def one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning on the command line: one line, as errors are (no source line)."""
    print(f"warning: {message}", file=file or sys.stderr)


def main(argv: list[str] | None = None) -> int:
    warnings.showwarning = one_line_warning
    try:
        args = parser().parse_args(argv)
    except SystemExit as done:  # --help, or a bad option (its one line is printed)
        return int(done.code or 0)
    try:
        args.func(args)
    except FruitlibError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader stopped early (``| head``): stop quietly, as other command-line tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so that Python's own flush at exit is quiet
        return 1
    return 0

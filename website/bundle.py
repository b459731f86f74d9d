"""Pack the course for a classroom without internet: one zip with the website, the repository and the data.

    python website/bundle.py --data ../shared/data/GroceryStoreDataset [--weights resnet50-0676ba61.pth ...]

The archive (``build/fruit-course-VERSION.zip`` unless ``--out``) holds one folder, ``fruit-course/``:
``site/`` (the website, built first with ``make site``; opens from disk), ``course/`` (the repository's tracked
files: notebooks, answers, fruitlib, docs), ``data/<name>/`` (a copy of ``--data``), ``weights/`` (the ``--weights``
files, when given) and ``README.txt`` saying how to use it from a USB stick. It carries no Python packages.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

HOW_TO = """From ImageNet to fruit: the course, for a classroom without internet (fruitlib {version})

site/index.html   the course website: open it in a browser, straight from this folder; it needs no internet.
course/           the notebooks, their answers (solutions/), the library they share (fruitlib) and the docs.
{data_folder}the photos ({data_licence}).
{weights_line}
To run the notebooks, each machine needs Python 3.11 or later and fruitlib's packages (PyTorch and the others
listed in course/pyproject.toml). This archive does not carry them: PyTorch's wheels are large and differ by
operating system, Python version and GPU. Install them once while online (pip install -e "course[notebooks]"),
or make a wheelhouse for the classroom's platform on a machine online with
    pip download -d wheels "./course[notebooks]"
and install it offline with
    pip install --no-index --find-links wheels -e "course[notebooks]"
Then point fruitlib at the copies here (Windows: set instead of export, with the folder's path there):
    export FRUITLIB_DATA=$PWD/data/{data}
{weights_export}    jupyter lab course/notebooks/
"""


def tracked_files() -> list[Path]:
    """The repository's tracked files, as they are in the working tree."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / name for name in listed.split("\0") if name and (ROOT / name).is_file()]


def write(out: Path, readme: str, entries: list[tuple[Path, Path]]) -> None:
    """The zip, whole or not at all: it is written beside ``out`` and renamed into place when complete."""
    partial = out.with_name(out.name + ".partial")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("fruit-course/README.txt", readme)
            for source, name in entries:
                packed = source.suffix.lower() in (".jpg", ".jpeg", ".png", ".pth", ".zip", ".gz")  # no gain
                archive.write(
                    source, f"fruit-course/{name.as_posix()}", zipfile.ZIP_STORED if packed else zipfile.ZIP_DEFLATED
                )
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the data set folder to copy in (e.g. GroceryStoreDataset)")
    parser.add_argument("--weights", nargs="*", default=[], help="ImageNet weight files (.pth) to copy in")
    parser.add_argument("--site", default=str(ROOT / "site"), help="the built website (make site)")
    parser.add_argument("--out", help="the archive to write (default: build/fruit-course-VERSION.zip)")
    args = parser.parse_args()
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    data, site = Path(args.data).resolve(), Path(args.site)
    weights = [Path(w) for w in args.weights]
    if not (site / "index.html").is_file():
        sys.exit(f"make bundle: no website in {site}: run `make site` first")
    if not data.is_dir():
        sys.exit(
            f"make bundle: DATA={args.data} is not a folder: give the data set's folder, e.g. "
            "DATA=../shared/data/GroceryStoreDataset"
        )
    missing = [str(w) for w in weights if not w.is_file() or w.suffix != ".pth"]
    if missing:
        sys.exit(f"make bundle: WEIGHTS must be .pth files, and these are not: {' '.join(missing)}")
    out = Path(args.out or ROOT / "build" / f"fruit-course-{version}.zip")
    licence = "MIT licence: see its LICENSE" if (data / "LICENSE").is_file() else "see the data set's own licence"
    readme = HOW_TO.format(
        version=version,
        data=data.name,
        data_folder=f"data/{data.name}/".ljust(17) + " ",
        data_licence=licence,
        weights_line=f"weights/          ImageNet weights: {', '.join(w.name for w in weights)}.\n" if weights else "",
        weights_export="    export FRUITLIB_WEIGHTS=$PWD/weights\n" if weights else "",
    )
    entries = (
        [(p, Path("site") / p.relative_to(site)) for p in sorted(site.rglob("*")) if p.is_file()]
        + [(p, Path("course") / p.relative_to(ROOT)) for p in tracked_files()]
        + [(p, Path("data") / data.name / p.relative_to(data)) for p in sorted(data.rglob("*")) if p.is_file()]
        + [(w, Path("weights") / w.name) for w in weights]
    )
    try:
        write(out, readme, entries)
    except OSError as error:
        sys.exit(
            f"make bundle: could not write {out}: {error.strerror or error}; free some space there, or write "
            "it elsewhere with OUT=..."
        )
    print(
        f"bundle: {out} ({out.stat().st_size / 2**20:.0f} MiB): fruit-course/ with README.txt, site/, course/, "
        f"data/{data.name}/" + (f", weights/ ({len(weights)} files)" if weights else "") + f"; {len(entries) + 1} files"
    )


if __name__ == "__main__":
    main()

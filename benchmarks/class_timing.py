"""How long each notebook and answers notebook takes in class: cold (nothing cached) and live (after a first run).

The teaching plan (docs/teaching.md) says what runs before class and what runs live; this measures both on the
machine it runs on. It executes every notebook, then every answers notebook, with papermill into ``--out``
(never over the sources), once from an empty cache and ``runs/`` folder of its own, then once more with what the
first pass left: the second pass is what a class re-running the notebooks waits for.

    python benchmarks/class_timing.py --data DATA > benchmarks/results/class-timing-DATE.txt
    python benchmarks/class_timing.py --live-only   # after `make series`: the live pass alone, on this checkout's
                                                    # runs/ and cache (the notebooks may add runs there)

Run it on a quiet machine: every figure is a time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import papermill

ROOT = Path(__file__).resolve().parents[1]


def execute_all(folders: list[Path], out: Path, runs: Path) -> dict[str, float]:
    """Seconds each notebook of ``folders`` took, executed in order with its own folder as working directory."""
    seconds = {}
    for folder in folders:
        for notebook in sorted(folder.glob("[0-9][0-9]-*.ipynb")):
            began = time.perf_counter()
            papermill.execute_notebook(
                str(notebook), str(out / notebook.name), cwd=str(folder), kernel_name="python3", progress_bar=False
            )
            seconds[notebook.name] = time.perf_counter() - began
            print(f"  {notebook.name}: {seconds[notebook.name]:.0f} s", flush=True)
    return seconds


def report(passes: dict[str, dict[str, float]]) -> None:
    """One line per pass: the notebooks' seconds, the answers' seconds, and both together."""
    for name, table in passes.items():
        notebooks = sum(s for n, s in table.items() if not n.endswith("-answers.ipynb"))
        answers = sum(s for n, s in table.items() if n.endswith("-answers.ipynb"))
        print(f"{name}: notebooks {notebooks:.0f} s, answers {answers:.0f} s, in all {notebooks + answers:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("FRUITLIB_DATA"), help="the data set folder")
    parser.add_argument("--live-only", action="store_true", help="only the live pass, on the runs and cache there")
    args = parser.parse_args()
    if args.data:
        os.environ["FRUITLIB_DATA"] = str(Path(args.data).resolve())
    if args.live_only:
        with tempfile.TemporaryDirectory() as out:
            print(f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at the start")
            print("live (with the runs and cache of a run before class):")
            report({"live": execute_all([ROOT / "notebooks", ROOT / "solutions"], Path(out), ROOT / "runs")})
        return
    scratch = Path(tempfile.mkdtemp(prefix="class-timing-"))
    os.environ["FRUITLIB_CACHE"] = str(scratch / "cache")
    runs = ROOT / "runs"
    kept = runs.rename(scratch / "runs-kept") if runs.exists() else None  # the notebooks write ../runs
    folders = [ROOT / "notebooks", ROOT / "solutions"]
    try:
        print(f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at the start")
        print("cold (empty cache, no runs):")
        cold = execute_all(folders, scratch, runs)
        print("live (a second run, after the first):")
        live = execute_all(folders, scratch, runs)
        report({"cold": cold, "live": live})
    finally:
        shutil.rmtree(runs, ignore_errors=True)
        if kept:
            kept.rename(runs)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()

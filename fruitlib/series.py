"""Execute the numbered notebooks with papermill, in order, into a run folder (never over the sources)."""
from __future__ import annotations

import os
import time
from pathlib import Path

import yaml

from .data import PROJECT_ROOT
from .errors import FruitlibError

NOTEBOOKS = PROJECT_ROOT / "notebooks"


def notebook_parameters(params: dict, notebook: Path) -> dict:
    """Shared parameters plus the notebook's own section (keyed by its number, e.g. ``"04"``), only those it declares."""
    import papermill

    declared = papermill.inspect_notebook(str(notebook))
    number = notebook.name[:2]
    section = params.get(number) or (params.get(int(number)) if number.isdigit() else None)  # YAML reads 04 as 4
    wanted = {k: v for k, v in params.items() if not isinstance(v, dict)} | (section or {})
    return {k: v for k, v in wanted.items() if k in declared}


def run_series(out: str | os.PathLike = "runs/series", params_file: str | None = None,
               only: list[str] | None = None) -> list[Path]:
    """Run every ``notebooks/NN-*.ipynb`` (or those whose name starts with one of ``only``); print each run time."""
    import papermill

    params = yaml.safe_load(Path(params_file).read_text()) if params_file else {}
    if params_file and not isinstance(params, dict):
        raise FruitlibError(f"{params_file} must hold a YAML mapping of parameter names to values")
    notebooks = sorted(p for p in NOTEBOOKS.glob("[0-9][0-9]-*.ipynb") if not only or p.name[:2] in only)
    if not notebooks:
        raise FruitlibError(f"no notebooks found in {NOTEBOOKS} (for {only})")
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for notebook in notebooks:
        began = time.perf_counter()
        target = out / notebook.name
        try:
            papermill.execute_notebook(str(notebook), str(target), parameters=notebook_parameters(params, notebook),
                                       cwd=str(NOTEBOOKS), kernel_name="python3", progress_bar=False)
        except papermill.PapermillExecutionError as error:
            raise FruitlibError(f"{notebook.name} failed in cell {error.exec_count} ({error.ename}: "
                                f"{error.evalue}); see {target}") from None
        print(f"{notebook.name}: {time.perf_counter() - began:.0f} s -> {target}", flush=True)
        written.append(target)
    return written

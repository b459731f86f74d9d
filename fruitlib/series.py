"""Execute the numbered notebooks with papermill, in order, into a run folder (never over the sources)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import yaml

from .errors import FruitlibError
from .files import checkout, writing


def notebooks_folder(given: str | os.PathLike | None = None) -> Path:
    """The numbered notebooks: ``given``, else the checkout's ``notebooks/``; they do not ship with the package."""
    folder = Path(given) if given else (checkout() / "notebooks" if checkout() else None)
    if folder is None or not folder.is_dir():
        raise FruitlibError(
            f"no notebooks folder {folder or 'here'}: the notebooks come with the repository, not "
            "the package; clone it and run the series there, or pass --notebooks FOLDER"
        )
    return folder


def papermill_module():
    """papermill, or a one-line error saying which extra brings it."""
    try:
        import papermill
    except ImportError:
        raise FruitlibError("the series needs the notebook tools: pip install 'fruitlib[notebooks]'") from None
    return papermill


def notebook_parameters(params: dict, notebook: Path) -> dict:
    """Shared parameters plus the notebook's own section (keyed by its number, e.g. ``"04"``), only those it declares.

    A name in the notebook's own section that it does not declare is an error, never silently dropped.
    """
    declared = papermill_module().inspect_notebook(str(notebook))
    number = notebook.name[:2]
    section = params.get(number) or (params.get(int(number)) if number.isdigit() else None) or {}  # YAML: 04 is 4
    unknown = sorted(set(section) - set(declared))
    if unknown:
        raise FruitlibError(
            f'{notebook.name} has no parameter {", ".join(unknown)} (section "{number}" of the '
            f"parameters file); it declares: {', '.join(declared)}"
        )
    wanted = {k: v for k, v in params.items() if not isinstance(v, dict)} | section
    return {k: v for k, v in wanted.items() if k in declared}


def check_shared(params: dict, notebooks: list[Path]) -> None:
    """A shared parameter that no notebook declares is a typo: say so before anything runs."""
    declared = {name for notebook in notebooks for name in papermill_module().inspect_notebook(str(notebook))}
    unknown = sorted(k for k, v in params.items() if not isinstance(v, dict) and k not in declared)
    if unknown:
        raise FruitlibError(f"no notebook has a parameter {', '.join(unknown)}: check the parameters file")


def series_parameters(params: dict, notebooks: list[Path], every: list[Path]) -> dict[Path, dict]:
    """The parameters of each of ``notebooks``, every name checked (against ``every`` notebook) before any runs."""
    check_shared(params, every)
    return {notebook: notebook_parameters(params, notebook) for notebook in notebooks}


def run_series(
    out: str | os.PathLike = "runs/series",
    params_file: str | None = None,
    only: list[str] | None = None,
    folder: str | os.PathLike | None = None,
) -> list[Path]:
    """Run every ``NN-*.ipynb`` of :func:`notebooks_folder` (or those whose name starts with one of ``only``);
    print each run time."""
    papermill = papermill_module()
    source = notebooks_folder(folder)
    if params_file and not Path(params_file).is_file():
        raise FruitlibError(f"parameters file {params_file} does not exist: e.g. -f params/full.yaml")
    params = yaml.safe_load(Path(params_file).read_text()) if params_file else {}
    if params_file and not isinstance(params, dict):
        raise FruitlibError(f"{params_file} must hold a YAML mapping of parameter names to values")
    every = sorted(source.glob("[0-9][0-9]-*.ipynb"))
    notebooks = [p for p in every if not only or p.name[:2] in only]
    if not notebooks:
        raise FruitlibError(f"no notebooks found in {source} (for {only})")
    parameters = series_parameters(params, notebooks, every)
    out = Path(out).resolve()
    with writing(out, "the folder for the executed notebooks"):
        out.mkdir(parents=True, exist_ok=True)
    written = []
    for notebook in notebooks:
        began = time.perf_counter()
        target = out / notebook.name
        try:
            papermill.execute_notebook(
                str(notebook),
                str(target),
                parameters=parameters[notebook],
                cwd=str(source),
                kernel_name="python3",
                progress_bar=False,
            )
        except papermill.PapermillExecutionError as error:
            raise FruitlibError(
                f"{notebook.name} failed in cell {error.exec_count} ({error.ename}: {error.evalue}); see {target}"
            ) from None
        print(f"{notebook.name}: {time.perf_counter() - began:.0f} s -> {target}", flush=True)
        written.append(target)
    return written

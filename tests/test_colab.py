"""The notebooks' first code cell installs fruitlib on Colab or Kaggle, and does nothing where it is installed."""

from __future__ import annotations

import importlib.util
import shlex
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager
from packaging.requirements import Requirement

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]-*.ipynb"))


def first_code_cells() -> list[str]:
    cells = []
    for path in NOTEBOOKS:
        code = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        assert "parameters" in code[1].metadata.get("tags", []), f"{path.name}: the parameters cell comes second"
        cells.append(code[0].source)
    return cells


class Shell:
    """Records the magics a cell runs instead of running them."""

    def __init__(self):
        self.magics = []

    def run_line_magic(self, name: str, line: str, *args) -> None:
        self.magics.append((name, line))


def run_cell(source: str) -> list[tuple[str, str]]:
    shell = Shell()
    exec(TransformerManager().transform_cell(source), {"get_ipython": lambda: shell})
    return shell.magics


def test_every_notebook_opens_with_the_same_install_cell():
    cells = first_code_cells()
    assert len(cells) == 6 and len(set(cells)) == 1
    assert 'find_spec("fruitlib") is None' in cells[0]


def test_the_install_cell_does_nothing_where_fruitlib_is_installed():
    assert importlib.util.find_spec("fruitlib") is not None
    assert run_cell(first_code_cells()[0]) == []


def test_the_install_cell_installs_fruitlib_from_its_repository_where_it_is_missing(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "fruitlib" else real(name, *a))
    [(magic, line)] = run_cell(first_code_cells()[0])
    words = shlex.split(line)
    assert magic == "pip" and words[:2] == ["install", "--quiet"]
    requirement = Requirement(words[-1])
    assert requirement.name == "fruitlib" and requirement.url.startswith("git+https://github.com/")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_the_install_cell_prints_nothing_in_the_committed_outputs(path):
    code = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    assert code[0].outputs == []

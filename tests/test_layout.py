"""fruitlib's layout: each module imports only modules below it, never one that imports it back."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "fruitlib"


def imports() -> dict[str, set[str]]:
    """Each fruitlib module and the fruitlib modules it imports, at the top or inside a function."""
    graph = {}
    for path in PACKAGE.glob("*.py"):
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                found |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
        graph[path.stem] = found & {p.stem for p in PACKAGE.glob("*.py")}
    return graph


def test_no_module_imports_one_that_imports_it_back():
    try:
        order = list(TopologicalSorter(imports()).static_order())
    except CycleError as error:
        raise AssertionError(f"an import circle: {' -> '.join(error.args[1])}") from None
    assert order.index("device") < order.index("train") < order.index("run") < order.index("cli")


def test_device_and_file_helpers_need_nothing_of_the_rest():
    graph = imports()
    assert graph["device"] == set() and graph["files"] == {"errors"} and graph["config"] == {"errors"}

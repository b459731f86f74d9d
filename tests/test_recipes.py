"""fruitlib.recipes: the recipes of notebooks 04 and 05, defined once, trained where missing, loaded where present."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from fruitlib import recipes, run


def test_each_recipe_is_the_run_its_notebook_trains():
    settings = recipes.Settings(views=3, finetune_mode="full", lr=0.01, backbone_lr=0.002, scratch_lr=0.005)
    frozen, finetune, scratch = (recipes.config(r, 1, settings, "R") for r in ("frozen", "finetune", "scratch"))
    assert (frozen.out, frozen.mode, frozen.views, frozen.lr, frozen.seed) == (
        "R/04/frozen-seed1",
        "frozen",
        3,
        0.01,
        1,
    )
    assert (finetune.out, finetune.mode, finetune.backbone_lr) == ("R/04/finetune-seed1", "full", 0.002)
    assert (scratch.out, scratch.scratch, scratch.mode, scratch.lr) == ("R/05/scratch-seed1", True, "full", 0.005)
    assert {c.image_size for c in (frozen, finetune, scratch)} == {64} and {c.epochs for c in (frozen, scratch)} == {5}
    ship = recipes.config("ship", 0, settings, "R")
    assert (ship.out, ship.mode, ship.image_size, ship.views, ship.epochs) == ("R/06/ship-seed0", "frozen", 224, 2, 10)
    with pytest.raises(ValueError, match="recipe must be one of"):
        recipes.config("linear", 0, settings)


def test_the_notebooks_declare_the_recipe_settings_with_the_same_defaults():
    import papermill

    defaults = {f.name: f.default for f in recipes.Settings.__dataclass_fields__.values()}
    for number in ("04", "05", "06"):
        notebook = next((Path(__file__).parents[1] / "notebooks").glob(f"{number}-*.ipynb"))
        declared = {name: p["default"] for name, p in papermill.inspect_notebook(str(notebook)).items()}
        for name, default in defaults.items():
            assert name in declared, f"{notebook.name} does not declare the recipe setting {name}"
            value = ast.literal_eval(declared[name])
            assert value == default, f"{notebook.name}: {name} = {value!r}, not {default!r}"


def test_missing_runs_are_trained_and_said_then_loaded(tiny_run, tmp_path, capsys, monkeypatch):
    settings = recipes.Settings(
        data_dir=str(tiny_run[1]),
        backbone="efficientnet_lite0",
        image_size=32,
        epochs=1,
        batch_size=8,
        views=0,
        device="cpu",
    )
    first = recipes.train_or_load("frozen", [0], settings, str(tmp_path))
    assert "not in" in capsys.readouterr().out and (tmp_path / "04" / "frozen-seed0" / "metrics.json").is_file()
    monkeypatch.setattr(run, "fit", lambda *a, **k: pytest.fail("a finished run was trained again"))
    again = recipes.train_or_load("frozen", [0], settings, str(tmp_path))
    assert capsys.readouterr().out == "" and again[0].metrics == first[0].metrics


def test_correct_marks_each_photo_each_run_recognised():
    runs = [run.RunResult(None, None, {"test": {"predicted": p}}, None) for p in ([0, 1, 2], [0, 0, 2])]
    assert recipes.correct(runs, np.array([0, 1, 1])).tolist() == [[True, True, False], [True, False, False]]

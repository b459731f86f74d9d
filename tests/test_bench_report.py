"""The benchmark's verdicts (benchmarks/report.py) on made-up figures: no timing happens here."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
report = pytest.importorskip("report")


def test_a_verdict_passes_only_when_every_repeat_meets_the_target():
    assert report.judge([6.0, 7.0], 5.0) == "PASS"
    assert report.judge([4.0, 4.5], 5.0) == "FAIL"
    assert report.judge([4.5, 6.0], 5.0) == "UNSURE"
    assert report.judge([1.2, 1.4], 1.5, at_least=False) == "PASS"
    assert report.judge([1.4, 1.6], 1.5, at_least=False) == "UNSURE"


def frozen(total: float, floors: list[float]) -> dict:
    run = {"total_s": total, "decode_s": 1.0, "features_s": total - 2.0, "head_s": 1.0, "epochs": 100}
    return {
        "fixed_features_cold": run,
        "fixed_features_warm_images": run,
        "floor_s_each": floors,
        "floor_s": sum(floors) / len(floors),
        "images": 1253,
        "default_run_backbone_passes": 2.0,
    }


def test_a_floor_that_the_pipeline_beats_is_not_called_a_floor():
    assert report.frozen_rows(frozen(12.0, [10.0, 10.5]), None)[0]["result"] == "PASS"
    assert report.frozen_rows(frozen(16.0, [10.0, 11.0]), None)[0]["result"] == "UNSURE"
    assert report.frozen_rows(frozen(9.0, [10.0, 11.0]), None)[0]["result"] == "INVALID"


def recipe(accuracies: list[float], seconds: list[float]) -> dict:
    points = [
        {"elapsed_s": s, "val_accuracy": a, "images": 64 * (i + 1)} for i, (a, s) in enumerate(zip(accuracies, seconds))
    ]
    return {
        "images_per_s": {"decoded": 5.0, "cached": 5.1},
        "n_train": 1000,
        "val_pass_s": 4.0,
        "image_size": 224,
        "batch_images_per_s": {"decoded": [4.9, 5.1], "cached": [5.0, 5.2]},
        "cached_epoch_s": 200.0,
        "points": points,
        "time_to_model_s": 6000.0,
        "epochs_run": 0.3,
    }


DEFAULT = {"val_accuracy": 0.8, "wall_s": 40.0, "epoch_s": 0.1, "epoch_s_all": [0.1, 0.12], "epochs": 100}


def time_to_target(rc: dict) -> dict:
    return next(r for r in report.recipe_rows(rc, DEFAULT) if r["item"] == "4c")


def test_time_to_target_is_a_lower_bound_until_the_recipe_reaches_the_default_accuracy():
    short = time_to_target(recipe([0.1, 0.3], [100.0, 200.0]))
    assert (short["ratio"], short["result"]) == (">= 5.0x", "UNSURE")
    long = time_to_target(recipe([0.1, 0.3], [100.0, 1000.0]))
    assert (long["ratio"], long["result"]) == (">= 25.0x", "PASS")
    reached = time_to_target(recipe([0.5, 0.85], [100.0, 400.0]))
    assert (reached["ratio"], reached["result"]) == ("10x", "FAIL")

"""``python -m fruitlib``: train, evaluate --json, predict --top-k; errors are one line on stderr, no traceback.

Most checks call ``cli.main`` in-process (fast); a few run ``python -m fruitlib`` for real, one of them end to
end on the Grocery Store photos in ``../shared/data`` when they are there.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import COLOURS

from fruitlib import cli

REPO = Path(__file__).resolve().parents[1]
GROCERY = Path(__file__).resolve().parents[2] / "shared/data/GroceryStoreDataset"


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def python_m_fruitlib(*args: str, timeout: float = 120, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "fruitlib", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env,
    )


def assert_one_line_error(code: int, err: str, *words: str) -> None:
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    for word in words:
        assert word in lines[0], (word, lines[0])


def test_train_prints_a_summary_and_writes_the_run(capsys, folder_data, tmp_path):
    out = tmp_path / "run"
    code, stdout, _ = run_cli(
        capsys,
        "train",
        "--data",
        folder_data,
        "--out",
        out,
        "--backbone",
        "efficientnet_lite0",
        "--epochs",
        "1",
        "--image-size",
        "32",
        "--views",
        "0",
        "--device",
        "cpu",
    )
    assert code == 0
    assert "efficientnet_lite0 (pretrained, frozen): validation accuracy" in stdout and str(out) in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 1 and metrics["classes"] == sorted(COLOURS)
    assert json.loads((out / "params.json").read_text())["views"] == 0


def test_evaluate_json_is_one_object_with_the_scores(capsys, tiny_run):
    out, data = tiny_run
    code, stdout, _ = run_cli(capsys, "evaluate", "--checkpoint", out / "model.pt", "--data", data, "--json")
    assert code == 0
    scores = json.loads(stdout)  # the whole of stdout: one JSON object
    metrics = json.loads((out / "metrics.json").read_text())
    assert scores["n_images"] == metrics["n_val"]
    assert scores["accuracy"] == pytest.approx(metrics["val_accuracy"])
    assert set(scores["per_class"]) == set(COLOURS)
    assert sum(c["support"] for c in scores["per_class"].values()) == scores["n_images"]
    code, stdout, _ = run_cli(capsys, "evaluate", "--checkpoint", out / "model.pt", "--data", data, "--split", "train")
    assert code == 0 and stdout.startswith("accuracy ") and "(train split of " in stdout
    assert all(name in stdout for name in COLOURS)


def test_evaluate_json_stays_json_when_photos_are_skipped(capsys, grocery_data, tmp_path):
    out = tmp_path / "run"
    assert (
        cli.main(
            [
                "train",
                "--data",
                str(grocery_data),
                "--out",
                str(out),
                "--backbone",
                "efficientnet_lite0",
                "--epochs",
                "1",
                "--image-size",
                "32",
                "--views",
                "0",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    capsys.readouterr()
    broken = grocery_data / "dataset" / "val" / "Fruit" / "Banana" / "Banana_001.jpg"
    broken.write_bytes(b"not a jpeg any more")
    code, stdout, stderr = run_cli(
        capsys, "evaluate", "--checkpoint", out / "model.pt", "--data", grocery_data, "--json"
    )
    assert code == 0
    scores = json.loads(stdout)
    assert scores["n_images"] == 7 and scores["per_class"]["Banana"]["support"] == 1
    assert "skipped 1" in stderr  # the summary is still shown, beside the JSON


def test_train_reports_the_test_split_with_its_interval_and_takes_the_new_options(
    capsys, grocery_data_with_test, tmp_path
):
    out = tmp_path / "run"
    code, stdout, _ = run_cli(
        capsys,
        "train",
        "--data",
        grocery_data_with_test,
        "--out",
        out,
        "--backbone",
        "efficientnet_lite0",
        "--mode",
        "last",
        "--lr",
        "0.002",
        "--backbone-lr",
        "0.0005",
        "--dropout",
        "--test",
        "--epochs",
        "1",
        "--image-size",
        "32",
        "--views",
        "0",
        "--device",
        "cpu",
    )
    assert code == 0
    assert "\ntest accuracy " in stdout and "95% interval" in stdout and "12 photos" in stdout
    params = json.loads((out / "params.json").read_text())
    assert (params["lr"], params["backbone_lr"], params["dropout"]) == (0.002, 0.0005, True)
    code, stdout, _ = run_cli(capsys, "evaluate", "--checkpoint", out / "model.pt", "--split", "test", "--json")
    scores = json.loads(stdout)
    assert code == 0 and scores["n_images"] == 12
    low, high = scores["interval95"]
    assert low <= scores["accuracy"] <= high
    assert scores["accuracy"] == pytest.approx(json.loads((out / "metrics.json").read_text())["test"]["accuracy"])


def test_predict_top_k(capsys, tiny_run):
    out, data = tiny_run
    photos = [data / name / f"{name}_00.jpg" for name in sorted(COLOURS)]
    code, stdout, _ = run_cli(capsys, "predict", "--checkpoint", out / "model.pt", *photos, "--top-k", "2")
    assert code == 0
    lines = stdout.strip().splitlines()
    assert len(lines) == 3
    for photo, line in zip(photos, lines):
        assert line.startswith(f"{photo}: ")
        guesses = line.split(": ", 1)[1].split(", ")
        assert len(guesses) == 2
        names = [g.rsplit(" ", 1)[0] for g in guesses]
        probs = [float(g.rsplit(" ", 1)[1].rstrip("%")) for g in guesses]
        assert set(names) <= set(COLOURS) and probs == sorted(probs, reverse=True) and sum(probs) <= 100.05


def test_error_missing_data_folder(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "--data", tmp_path / "nowhere", "--out", tmp_path / "run")
    assert_one_line_error(code, err, "nowhere", "does not exist")


def test_error_bad_checkpoint(capsys, tmp_path, folder_data):
    bad = tmp_path / "model.pt"
    bad.write_bytes(np.random.default_rng(0).bytes(2000))
    code, _, err = run_cli(capsys, "evaluate", "--checkpoint", bad, "--data", folder_data)
    assert_one_line_error(code, err, str(bad))
    code, _, err = run_cli(
        capsys, "predict", "--checkpoint", tmp_path / "missing.pt", folder_data / "kiwi" / "kiwi_00.jpg"
    )
    assert_one_line_error(code, err, "missing.pt")


def test_error_missing_image(capsys, tiny_run, tmp_path):
    code, stdout, err = run_cli(capsys, "predict", "--checkpoint", tiny_run[0] / "model.pt", tmp_path / "ghost.jpg")
    assert_one_line_error(code, err, "ghost.jpg")
    assert stdout == ""


def test_error_resume_with_nothing_to_resume(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "--out", tmp_path / "never", "--resume")
    assert_one_line_error(code, err, "nothing to resume")


def test_error_existing_run_and_other_classes(capsys, tiny_run, grocery_data):
    out, data = tiny_run
    code, _, err = run_cli(capsys, "train", "--data", data, "--out", out)
    assert_one_line_error(code, err, "already holds a run")
    code, _, err = run_cli(capsys, "evaluate", "--checkpoint", out / "model.pt", "--data", grocery_data)
    assert_one_line_error(code, err, "Apple, Banana, Kiwi", "does not know")  # its names are capitalised
    code, _, err = run_cli(capsys, "evaluate", "--checkpoint", out / "model.pt", "--data", data, "--split", "test")
    assert_one_line_error(code, err, "test")


def test_interrupted_training_is_one_line_with_the_way_to_resume(capsys, monkeypatch, folder_data, tmp_path):
    from fruitlib import run

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run, "train_run", interrupted)
    code, _, err = run_cli(capsys, "train", "--data", folder_data, "--out", tmp_path / "run")
    assert_one_line_error(code, err, "before an epoch was saved", "nothing to resume")


def test_interrupted_training_says_which_epochs_are_on_disk(capsys, monkeypatch, tiny_run, tmp_path):
    from fruitlib import run

    out = tmp_path / "run"
    shutil.copytree(tiny_run[0], out)
    monkeypatch.setattr(run, "train_run", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    code, _, err = run_cli(capsys, "train", "--data", tiny_run[1], "--out", out, "--resume")
    epochs = len(pd.read_csv(out / "history.csv"))
    assert_one_line_error(code, err, f"holds the first {epochs} epoch(s)", "--resume", "model.pt")


def test_python_m_fruitlib_errors_without_traceback(tmp_path):
    done = python_m_fruitlib("train", "--data", tmp_path / "nowhere", "--out", tmp_path / "run")
    assert_one_line_error(done.returncode, done.stderr, "nowhere")
    assert done.stdout == ""


@pytest.mark.skipif(
    not GROCERY.is_dir(),
    reason=f"no Grocery Store photos at {GROCERY} (the shared data is cloned next to the repository in CI)",
)
def test_end_to_end_on_grocery_store_photos(tmp_path):
    began = time.perf_counter()
    out = tmp_path / "run"
    done = python_m_fruitlib(
        "train",
        "--data",
        GROCERY,
        "--out",
        out,
        "--backbone",
        "efficientnet_lite0",
        "--epochs",
        "2",
        "--image-size",
        "64",
        "--views",
        "0",
        "--device",
        "cpu",
        "--test",
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "validation accuracy" in done.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["classes"]) == 19 and metrics["n_val"] > 100

    done = python_m_fruitlib("evaluate", "--checkpoint", out / "model.pt", "--data", GROCERY, "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    scores = json.loads(done.stdout)
    assert scores["n_images"] == metrics["n_val"] and len(scores["per_class"]) == 19
    assert scores["accuracy"] > 0.3  # the commonest class is about 0.2
    assert scores["accuracy"] == pytest.approx(metrics["val_accuracy"])
    done = python_m_fruitlib("evaluate", "--checkpoint", out / "model.pt", "--split", "test", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    tested = json.loads(done.stdout)
    assert tested["n_images"] == metrics["test"]["n_images"] == 1117  # the official test split of the Fruit photos
    assert tested["accuracy"] == pytest.approx(metrics["test"]["accuracy"])

    split = pd.read_csv(out / "split.csv")
    photo = GROCERY / split.query("split == 'val'")["path"].iloc[0]
    done = python_m_fruitlib("predict", "--checkpoint", out / "model.pt", photo, "--top-k", "3", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    [line] = done.stdout.strip().splitlines()
    assert line.startswith(str(photo)) and len(line.split(": ", 1)[1].split(", ")) == 3
    print(f"end to end: {time.perf_counter() - began:.0f} s, accuracy {scores['accuracy']:.2f}")


def test_a_preset_sets_its_values_and_options_given_win():
    preset = cli.PRESETS["accurate"]
    cfg = cli.train_config(cli.parser().parse_args(["train", "--out", "x", "--preset", "accurate"]))
    assert all(getattr(cfg, k) == v for k, v in preset.items())
    cfg = cli.train_config(
        cli.parser().parse_args(["train", "--out", "x", "--preset", "accurate", "--views", "1", "--seed", "3"])
    )
    assert cfg.views == 1 and cfg.seed == 3 and cfg.backbone == preset["backbone"] and cfg.mode == preset["mode"]
    plain = cli.train_config(cli.parser().parse_args(["train", "--out", "x"]))
    assert plain == cli.RunConfig(out="x", test=False)  # RunConfig's defaults, but the test split only on request


def test_the_accurate_preset_is_a_candidate_its_search_tried(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    choose_settings = importlib.import_module("choose_settings")  # a broken script fails here, it is not skipped
    assert cli.PRESETS["accurate"] in choose_settings.ACCURATE.values()  # the search: benchmarks/results/


@pytest.mark.parametrize(
    "option, value, allowed",
    [
        ("--epochs", "0", "epochs must be at least 1"),
        ("--epochs", "-3", "epochs must be at least 1"),
        ("--image-size", "0", "image_size must be at least 32"),
        ("--batch-size", "0", "batch_size must be at least 1"),
        ("--per-class", "-1", "per_class must be at least 1"),
        ("--per-class", "0", "per_class must be at least 1"),
        ("--views", "-1", "views must be at least 0"),
        ("--seed", "-2", "seed must be at least 0"),
        ("--lr", "0", "lr must be above 0"),
        ("--backbone-lr=-1e-3", None, "backbone_lr must be at least 0"),
        ("--epochs", "ten", "--epochs: invalid int value"),
        ("--mode", "half", "--mode: invalid choice"),
        ("--device", "gpu", "device must be auto, cpu, cuda, cuda:N or mps"),
    ],
)
def test_every_bad_train_option_is_one_line_saying_what_is_allowed(
    capsys, folder_data, tmp_path, option, value, allowed
):
    given = [option] if value is None else [option, value]
    code, _, err = run_cli(capsys, "train", "--data", folder_data, "--out", tmp_path / "run", *given)
    assert_one_line_error(code, err, allowed)
    assert not (tmp_path / "run").exists()  # refused before anything was written


@pytest.mark.parametrize(
    "args, allowed",
    [
        (["predict", "--checkpoint", "{ckpt}", "--top-k", "0", "{photo}"], "--top-k: must be at least 1"),
        (["evaluate", "--checkpoint", "{ckpt}", "--split", "tests"], "--split: invalid choice"),
        (["evaluate"], "--checkpoint"),
        (["fly"], "invalid choice"),
    ],
)
def test_bad_options_of_the_other_commands_are_one_line(capsys, tiny_run, args, allowed):
    out, data = tiny_run
    photo = next((data / "apple").glob("*.jpg"))
    args = [a.format(ckpt=out / "model.pt", photo=photo) for a in args]
    code, _, err = run_cli(capsys, *args)
    assert_one_line_error(code, err, allowed)


def test_evaluate_scores_every_photo_of_a_new_folder_with_some_of_the_classes(capsys, tiny_run, tmp_path):
    out, data = tiny_run
    new = tmp_path / "new"
    for name in ("kiwi", "apple"):
        shutil.copytree(data / name, new / name)
    code, stdout, err = run_cli(capsys, "evaluate", "--checkpoint", out / "model.pt", "--data", new, "--json")
    assert code == 0, err
    scores = json.loads(stdout)
    assert scores["n_images"] == 12  # --split all is the default for a folder the model was not trained on
    assert scores["per_class"]["banana"]["support"] == 0 and scores["per_class"]["kiwi"]["support"] == 6
    code, stdout, _ = run_cli(capsys, "evaluate", "--checkpoint", out / "model.pt", "--json")
    assert json.loads(stdout)["n_images"] < 18  # its own data: the validation split
    code, stdout, _ = run_cli(capsys, "evaluate", "--checkpoint", out / "model.pt", "--split", "all", "--json")
    assert json.loads(stdout)["n_images"] == 18


def test_evaluate_refuses_only_classes_the_model_does_not_know(capsys, tiny_run, tmp_path):
    out, data = tiny_run
    new = tmp_path / "new"
    shutil.copytree(data / "kiwi", new / "kiwi")
    shutil.copytree(data / "apple", new / "mango")
    code, _, err = run_cli(capsys, "evaluate", "--checkpoint", out / "model.pt", "--data", new)
    assert_one_line_error(code, err, "mango", "does not know", "apple, banana, kiwi")


@pytest.mark.parametrize(
    "args, says",
    [
        (["--resume", "--overwrite"], "not allowed with argument --resume"),
        (["--scratch", "--weights", "resnet50.pth"], "--weights would be ignored"),
        (["--scratch", "--mode", "last"], "nothing to freeze"),
        (["--no-cache", "--views", "2"], "drop --views or --no-cache"),
    ],
)
def test_contradictory_train_options_are_refused_in_one_line_before_any_work(capsys, tmp_path, args, says):
    code, out, err = run_cli(capsys, "train", "--data", tmp_path / "no-such-data", "--out", tmp_path / "run", *args)
    assert code == 2 and says in err and len(err.strip().splitlines()) == 1 and out == ""
    assert not (tmp_path / "run").exists()  # refused before the data was looked for or the folder made


def test_help_answers_without_importing_torch():
    probe = "import sys; from fruitlib import cli; cli.main(['train', '--help']); print(sorted(sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    modules = set(done.stdout.split("\n")[-2].strip("[]").replace("'", "").split(", "))
    assert done.returncode == 0 and "--resume" in done.stdout
    assert modules.isdisjoint({"torch", "cv2", "sklearn", "matplotlib", "scipy"})


def test_the_command_lines_choices_are_the_configs():
    from fruitlib import config

    train = cli.parser()._subparsers._group_actions[0].choices["train"]
    actions = {a.dest: a for a in train._actions}
    assert tuple(actions["mode"].choices) == config.MODES
    assert tuple(actions["optimizer"].choices) == config.OPTIMIZERS
    assert tuple(actions["labels"].choices) == config.LABELS
    assert tuple(actions["category"].choices) == config.CATEGORIES


def test_a_reader_that_stops_early_gets_no_traceback(isolated):
    env = os.environ | {"PYTHONUNBUFFERED": "1"}  # every line written at once, so the closed pipe is met
    done = subprocess.Popen(
        [sys.executable, "-m", "fruitlib", "cache"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    done.stdout.close()  # as `| head` does once it has what it wants
    stderr = done.stderr.read().decode()
    assert done.wait(timeout=60) == 1 and stderr == ""

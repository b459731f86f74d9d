"""fruitlib.run: one training run into a run folder, protected, resumable, in every mode."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import COLOURS, MISSING_LISTED, make_folder_data, make_photo, one_line

from fruitlib import FruitlibError, engines, evaluate, run
from fruitlib.checkpoint import load_checkpoint, model_from_checkpoint
from fruitlib.run import RunConfig, train_run
from fruitlib.train import COLUMNS

OUTPUTS = [
    "model.pt",
    "best.pt",
    "metrics.json",
    "history.csv",
    "params.json",
    "split.csv",
    "curves.png",
    "confusion.png",
]


def photos_of_the_test_split(result) -> tuple:
    from fruitlib.cache import load_split
    from fruitlib.data import make_splits, scan

    catalog = make_splits(scan(result.config.data))
    photos = load_split(catalog, "test", result.config.image_size, progress=False)
    return photos.images, photos.labels


def config(data, out, **changes) -> RunConfig:
    settings = dict(
        data=str(data),
        out=str(out),
        backbone="efficientnet_lite0",
        epochs=2,
        image_size=32,
        batch_size=8,
        views=1,
        device="cpu",
    )
    return RunConfig(**(settings | changes))


def split_of(folder) -> list[tuple]:
    return list(pd.read_csv(folder / "split.csv")[["path", "label", "split"]].itertuples(index=False))


def history_of(folder) -> pd.DataFrame:
    return pd.read_csv(folder / "history.csv").drop(columns="seconds")


def test_a_run_writes_every_output(tiny_run):
    out, data = tiny_run
    for name in OUTPUTS:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["classes"] == sorted(COLOURS) and metrics["backbone"] == "efficientnet_lite0"
    assert metrics["pretrained"] is True and metrics["epochs"] == 2 and metrics["mode"] == "frozen"
    assert metrics["seconds"] > 0 and metrics["image_size"] == 32
    split = pd.read_csv(out / "split.csv")
    assert (
        metrics["n_val"] == (split["split"] == "val").sum() and metrics["n_train"] == (split["split"] == "train").sum()
    )
    assert metrics["val_accuracy"] >= 2 / 3  # three colours: learnable in two epochs
    assert metrics["val_accuracy"] * metrics["n_val"] == pytest.approx(
        round(metrics["val_accuracy"] * metrics["n_val"])
    )
    history = pd.read_csv(out / "history.csv")
    assert list(history.columns) == COLUMNS and history["epoch"].tolist() == [1, 2]
    assert metrics["best_val_accuracy"] == pytest.approx(history["val_acc"].max())
    params = json.loads((out / "params.json").read_text())
    assert params["backbone"] == "efficientnet_lite0" and params["mode"] == "frozen"
    assert params["lr"] == run.DEFAULT_LR and params["backbone_lr"] is None  # frozen: only the head trains
    assert params["epochs"] == 2 and params["seed"] == 0
    assert not any(os.path.isabs(p) for p in split["path"]) and all((data / p).is_file() for p in split["path"])
    state = load_checkpoint(out / "model.pt")
    assert len(state["training"]["history"]) == 2 and state["params"] == params
    assert load_checkpoint(out / "best.pt")["spec"]["classes"] == sorted(COLOURS)
    assert not any(p.name.startswith(".") for p in out.iterdir())  # no temporary files left


def test_the_saved_model_reproduces_the_reported_accuracy(tiny_run):
    from fruitlib.augment import eval_transform
    from fruitlib.cache import load_split
    from fruitlib.data import make_splits, scan

    out, data = tiny_run
    model = model_from_checkpoint(out / "model.pt")
    catalog = make_splits(scan(data), 0.2, 0)
    val = load_split(catalog, "val", 32, progress=False)
    assert val.paths == [str(data / p) for p in pd.read_csv(out / "split.csv").query("split == 'val'")["path"]]
    spec = model.spec
    with torch.no_grad():  # the whole network in plain PyTorch, not fruitlib's engine for the stages
        logits = model.eval()(eval_transform(32, spec.mean, spec.std).batch(val.images))
    metrics = json.loads((out / "metrics.json").read_text())
    assert float((logits.argmax(1) == val.labels).float().mean()) == pytest.approx(metrics["val_accuracy"])


def test_an_existing_run_is_not_overwritten(tiny_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(tiny_run[0], out)
    before = (out / "model.pt").read_bytes()
    with pytest.raises(FruitlibError, match="already holds a run") as error:
        train_run(config(tiny_run[1], out), progress=False)
    assert one_line(str(error.value)) and "--resume" in str(error.value) and "--overwrite" in str(error.value)
    assert (out / "model.pt").read_bytes() == before


def test_overwrite_replaces_the_run(tiny_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(tiny_run[0], out)
    (out / "notes.txt").write_text("the user's own file")
    result = train_run(config(tiny_run[1], out, epochs=1, seed=1), overwrite=True, progress=False)
    assert (out / "notes.txt").read_text() == "the user's own file"  # only the run's own files are replaced
    assert len(result.history) == 1 and json.loads((out / "params.json").read_text())["seed"] == 1
    assert len(load_checkpoint(out / "model.pt")["training"]["history"]) == 1
    assert all((out / name).is_file() for name in OUTPUTS)


def test_resume_after_an_interruption_finishes_the_remaining_epochs(folder_data, tmp_path, monkeypatch, tiny_run):
    whole = tiny_run[0]  # the same settings and photos (generated alike), never interrupted

    real_fit = run.fit

    def interrupted_fit(*args, on_epoch_end, **kwargs):
        def stop_after_one(state):
            on_epoch_end(state)  # the checkpoint of epoch 1 is written...
            if len(state["history"]) == 1:
                raise KeyboardInterrupt  # ...then Ctrl-C

        return real_fit(*args, on_epoch_end=stop_after_one, **kwargs)

    out = tmp_path / "interrupted"
    monkeypatch.setattr(run, "fit", interrupted_fit)
    with pytest.raises(KeyboardInterrupt):
        train_run(config(folder_data, out), progress=False)
    monkeypatch.setattr(run, "fit", real_fit)
    assert len(load_checkpoint(out / "model.pt")["training"]["history"]) == 1
    assert not (out / "metrics.json").exists()
    with pytest.raises(FruitlibError, match="already holds a run"):
        train_run(config(folder_data, out), progress=False)

    done_before = []
    monkeypatch.setattr(
        run, "fit", lambda *a, **k: done_before.append(len(k["resume"]["history"])) or real_fit(*a, **k)
    )
    result = train_run(RunConfig(out=str(out), device="cpu"), resume=True, progress=False)  # settings from the run
    assert done_before == [1]
    assert result.history["epoch"].tolist() == [1, 2]
    assert history_of(out)["epoch"].tolist() == [1, 2]
    assert split_of(out) == split_of(whole)
    pd.testing.assert_frame_equal(history_of(out), history_of(whole), atol=1e-6)
    assert json.loads((out / "metrics.json").read_text())["val_accuracy"] == pytest.approx(
        json.loads((whole / "metrics.json").read_text())["val_accuracy"]
    )
    a, b = load_checkpoint(out / "model.pt")["model"], load_checkpoint(whole / "model.pt")["model"]
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)


def interrupted_after_one_epoch(data, out, monkeypatch, **changes) -> Path:
    """A run of :func:`config` stopped by Ctrl-C after its first epoch's checkpoint."""
    real_fit = run.fit

    def interrupted_fit(*args, on_epoch_end, **kwargs):
        def stop(state):
            on_epoch_end(state)
            raise KeyboardInterrupt

        return real_fit(*args, on_epoch_end=stop, **kwargs)

    monkeypatch.setattr(run, "fit", interrupted_fit)
    with pytest.raises(KeyboardInterrupt):
        train_run(config(data, out, **changes), progress=False)
    monkeypatch.setattr(run, "fit", real_fit)
    return out


def test_resume_keeps_the_two_learning_rates_of_fine_tuning(folder_data, tmp_path, monkeypatch, tiny_run):
    whole = train_run(config(folder_data, tmp_path / "whole", mode="last"), progress=False)
    out = interrupted_after_one_epoch(folder_data, tmp_path / "interrupted", monkeypatch, mode="last")
    assert [
        len(g["params"]) > 0 for g in load_checkpoint(out / "model.pt")["training"]["optimizer"]["param_groups"]
    ] == [True, True]  # the stage's group and the head's
    resumed = train_run(RunConfig(out=str(out), device="cpu"), resume=True, progress=False)
    pd.testing.assert_frame_equal(history_of(out), history_of(whole.out), atol=1e-6)
    assert resumed.history["backbone_lr"].iloc[0] < resumed.history["lr"].iloc[0]


def test_resume_honours_more_epochs_on_the_longer_runs_schedule(folder_data, tmp_path, monkeypatch):
    out = interrupted_after_one_epoch(folder_data, tmp_path / "run", monkeypatch)
    result = train_run(RunConfig(out=str(out), device="cpu", epochs=3), resume=True, progress=False)
    assert result.history["epoch"].tolist() == [1, 2, 3]
    assert json.loads((out / "params.json").read_text())["epochs"] == 3
    longer = train_run(config(folder_data, tmp_path / "three", epochs=3), progress=False)
    assert result.history["lr"].iloc[1:].tolist() == pytest.approx(longer.history["lr"].iloc[1:].tolist())


def test_resume_works_in_the_folder_named_not_the_one_saved(folder_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    interrupted_after_one_epoch(folder_data, Path("run"), monkeypatch)  # saved as "run", relative to tmp_path
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # where "run" means another folder, which does not exist
    result = train_run(RunConfig(out=str(tmp_path / "run"), device="cpu"), resume=True, progress=False)
    assert result.history["epoch"].tolist() == [1, 2] and (tmp_path / "run" / "metrics.json").is_file()
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize(
    "given, refused",
    [
        ({"seed": 5}, "seed is 0 there, not 5"),
        ({"image_size": 64}, "image_size is 32 there, not 64"),
        ({"epochs": 1, "mode": None}, None),
    ],
)
def test_resume_refuses_settings_it_cannot_honour(folder_data, tmp_path, monkeypatch, given, refused):
    out = interrupted_after_one_epoch(folder_data, tmp_path / "run", monkeypatch)
    before = (out / "model.pt").read_bytes()
    if refused is None:  # as many epochs as done: nothing left to train, the run is finished
        assert len(train_run(RunConfig(out=str(out), device="cpu", **given), resume=True, progress=False).history) == 1
        return
    with pytest.raises(FruitlibError, match=refused) as error:
        train_run(RunConfig(out=str(out), device="cpu", **given), resume=True, progress=False)
    assert one_line(str(error.value)) and "--resume" in str(error.value)
    assert (out / "model.pt").read_bytes() == before  # nothing lost


def test_resume_reads_the_recorded_split_and_says_when_the_data_changed(folder_data, tmp_path, monkeypatch):
    out = interrupted_after_one_epoch(folder_data, tmp_path / "run", monkeypatch)
    split = (out / "split.csv").read_text()
    (folder_data / "apple" / "apple_00.jpg").rename(folder_data / "apple" / "renamed.jpg")  # a photo of the split goes
    with pytest.raises(FruitlibError, match="no longer match the run's split: 1 of its 18 photos") as error:
        train_run(RunConfig(out=str(out), device="cpu"), resume=True, progress=False)
    assert one_line(str(error.value)) and (out / "split.csv").read_text() == split
    (folder_data / "apple" / "renamed.jpg").rename(folder_data / "apple" / "apple_00.jpg")
    for i in range(3):  # new photos beside the old ones are not pulled into the split
        make_photo(folder_data / "kiwi" / f"new_{i}.jpg", COLOURS["kiwi"], seed=500 + i)
    train_run(RunConfig(out=str(out), device="cpu"), resume=True, progress=False)
    assert (out / "split.csv").read_text() == split


def test_resume_finds_data_that_moved_and_refuses_even_a_default_value_asked_for(folder_data, tmp_path, monkeypatch):
    from fruitlib import cli

    out = interrupted_after_one_epoch(folder_data, tmp_path / "run", monkeypatch, views=0)
    moved = folder_data.rename(tmp_path / "moved")
    with pytest.raises(FruitlibError, match=f"{folder_data} .*does not exist"):  # looked for where it was
        train_run(RunConfig(out=str(out), device="cpu"), resume=True, progress=False)
    code = cli.main(["train", "--out", str(out), "--resume", "--views", "1"])  # 1 is the default, 0 was saved
    assert code == 2
    result = train_run(RunConfig(out=str(out), data=str(moved), device="cpu"), resume=True, progress=False)
    assert result.history["epoch"].tolist() == [1, 2]
    assert json.loads((out / "params.json").read_text())["data_root"] == str(moved.resolve())


def test_a_run_of_another_fruitlib_version_is_not_resumed(tiny_run, tmp_path, monkeypatch):
    out = tmp_path / "old"
    shutil.copytree(tiny_run[0], out)
    monkeypatch.setattr(run, "__version__", "9.9.9")
    with pytest.raises(FruitlibError, match="written by fruitlib .* this is 9.9.9") as error:
        train_run(RunConfig(out=str(out), device="cpu"), resume=True, progress=False)
    assert one_line(str(error.value))
    assert (out / "model.pt").is_file() and (out / "metrics.json").is_file()  # nothing lost


def test_resume_with_nothing_to_resume(tmp_path):
    with pytest.raises(FruitlibError, match="nothing to resume") as error:
        train_run(RunConfig(out=str(tmp_path / "never")), resume=True, progress=False)
    assert one_line(str(error.value))


def test_scratch_trains_everything_from_random_weights(folder_data, tmp_path):
    result = train_run(config(folder_data, tmp_path / "scratch", scratch=True, epochs=1), progress=False)
    m = result.metrics
    assert m["pretrained"] is False and m["mode"] == "full" and m["weights_source"] == "random initialisation"
    assert m["trainable_params"] == m["total_params"]
    assert json.loads((tmp_path / "scratch" / "params.json").read_text())["lr"] == run.DEFAULT_LR
    with pytest.raises(FruitlibError, match="scratch"):
        train_run(config(folder_data, tmp_path / "bad", scratch=True, mode="frozen"), progress=False)


@pytest.mark.parametrize("mode", ["last", "full"])
def test_fine_tuning_modes(folder_data, tmp_path, tiny_run, mode):
    result = train_run(config(folder_data, tmp_path / mode, mode=mode, epochs=1), progress=False)
    frozen = json.loads((tiny_run[0] / "metrics.json").read_text())
    m = result.metrics
    assert m["mode"] == mode and len(result.history) == 1
    assert frozen["trainable_params"] < m["trainable_params"] <= m["total_params"] == frozen["total_params"]
    assert (m["trainable_params"] == m["total_params"]) == (mode == "full")
    assert (tmp_path / mode / "best.pt").is_file()
    assert result.history["train_loss"].notna().all()


def test_without_the_cache_the_frozen_stages_run_every_epoch(folder_data, tmp_path, isolated, tiny_run):
    result = train_run(config(folder_data, tmp_path / "slow", cache=False, epochs=1), progress=False)
    assert len(result.history) == 1 and result.metrics["mode"] == "frozen"
    assert not list(isolated["cache"].glob("activations-*"))  # nothing precomputed
    assert list(isolated["cache"].glob("images-*"))  # decoded photos are still cached
    assert split_of(tmp_path / "slow") == split_of(tiny_run[0])  # the same split as a cached run


def test_a_grocery_clone_uses_its_official_splits(grocery_data, tmp_path):
    out = tmp_path / "grocery"
    result = train_run(config(grocery_data, out, epochs=1, per_class=3), progress=False)
    split = pd.read_csv(out / "split.csv")
    assert split.groupby(["split", "class_name"]).size().to_dict() == {
        ("train", "Apple"): 3,
        ("train", "Banana"): 3,
        ("train", "Kiwi"): 3,  # per_class=3 caps training photos
        ("val", "Apple"): 4,
        ("val", "Banana"): 2,
        ("val", "Kiwi"): 2,
    }  # and leaves validation alone
    assert split["path"].str.startswith("dataset/").all()
    assert result.metrics["classes"] == ["Apple", "Banana", "Kiwi"]
    assert result.metrics["n_train"] == 9 and result.metrics["n_val"] == 8
    skipped = pd.read_csv(out / "skipped.csv")
    assert skipped["path"].str.endswith(MISSING_LISTED).any()


def test_the_test_split_is_scored_and_reported_apart_from_validation(grocery_data_with_test, tmp_path):
    result = train_run(config(grocery_data_with_test, tmp_path / "t", epochs=1, mode="last"), progress=False)
    test = result.metrics["test"]
    assert test["n_images"] == 3 * 4 and sum(test["per_class"][c]["support"] for c in test["per_class"]) == 12
    assert set(test) == {"accuracy", "n_images", "per_class", "confusion", "predicted"}
    images, labels = photos_of_the_test_split(result)
    scored = evaluate.score(model_from_checkpoint(tmp_path / "t" / "model.pt"), images, labels)
    assert scored["accuracy"] == pytest.approx(test["accuracy"])  # the saved model, through the whole network
    assert np.mean(np.array(test["predicted"]) == labels.numpy()) == pytest.approx(test["accuracy"])  # photo by photo
    assert result.metrics["n_val"] == 8 and (result.history["val_acc"].notna()).all()  # validation chooses
    assert json.loads((tmp_path / "t" / "metrics.json").read_text())["test"] == test


def test_without_a_test_split_there_is_no_test_score(tiny_run):
    assert json.loads((tiny_run[0] / "metrics.json").read_text())["test"] is None  # folder data have no test split


def test_pretrained_stages_fine_tune_slower_than_the_head(folder_data, tmp_path):
    result = train_run(config(folder_data, tmp_path / "last", epochs=1, mode="last"), progress=False)
    params = json.loads((tmp_path / "last" / "params.json").read_text())
    assert params["lr"] == run.DEFAULT_LR and params["backbone_lr"] == pytest.approx(
        run.DEFAULT_LR * run.BACKBONE_SHARE["last"]
    )
    assert result.history["backbone_lr"].iloc[0] == pytest.approx(params["backbone_lr"])
    assert result.history["backbone_lr"].iloc[0] < result.history["lr"].iloc[0]
    scratch = train_run(config(folder_data, tmp_path / "scratch", epochs=1, scratch=True), progress=False)
    assert scratch.history["backbone_lr"].iloc[0] == scratch.history["lr"].iloc[0]  # random weights: one rate


def test_reuse_loads_a_finished_run_with_the_same_settings(tiny_run, monkeypatch):
    out = tiny_run[0]  # only read: reuse loads it
    monkeypatch.setattr(run, "fit", lambda *a, **k: pytest.fail("a finished run was trained again"))
    cfg = config(tiny_run[1], out)
    result = train_run(cfg, reuse=True, progress=False)
    assert result.metrics == json.loads((out / "metrics.json").read_text())
    assert result.history["epoch"].tolist() == [1, 2] and not result.model.training


def test_finished_says_whether_reuse_would_load_the_run(tiny_run):
    assert run.finished(config(tiny_run[1], tiny_run[0]))
    assert not run.finished(config(tiny_run[1], tiny_run[0], epochs=1))  # other settings
    assert not run.finished(config(tiny_run[1], tiny_run[0].parent / "nothing-here"))


def test_the_engine_and_the_backbone_are_recorded_and_reuse_checks_them(tiny_run, monkeypatch):
    from fruitlib import engines

    params = json.loads((tiny_run[0] / "params.json").read_text())
    assert params["backbone"] == "efficientnet_lite0" and params["engine"] == engines.choose(torch.device("cpu"))
    other = next(e for e in engines.ENGINES if e != params["engine"])
    monkeypatch.setattr(engines, "choose", lambda device: other)  # features from another engine: another run
    assert not run.finished(config(tiny_run[1], tiny_run[0]))


def test_train_run_resolves_the_backbone_once(tiny_run, monkeypatch):
    calls = []
    resolve = run.resolve_backbone
    monkeypatch.setattr(run, "resolve_backbone", lambda *a: calls.append(a) or resolve(*a))
    train_run(config(tiny_run[1], tiny_run[0]), reuse=True, progress=False)
    assert len(calls) == 1


def test_finished_does_not_care_how_the_folder_and_the_data_were_named(tiny_run, monkeypatch):
    monkeypatch.chdir(tiny_run[0].parent)  # "run" from here, as "../run" from a notebook's folder
    assert run.finished(config(os.path.relpath(tiny_run[1]), "run"))


def test_reuse_with_other_settings_trains_again_in_place(tiny_run, tmp_path):
    out = tmp_path / "notebook-run"  # a notebook changed a parameter: its run folder is retrained, not refused
    shutil.copytree(tiny_run[0], out)
    result = train_run(config(tiny_run[1], out, epochs=1), reuse=True, progress=False)
    assert result.history["epoch"].tolist() == [1] and json.loads((out / "params.json").read_text())["epochs"] == 1


def test_reuse_trains_again_when_a_photo_was_replaced_with_the_same_name(tmp_path, monkeypatch):
    data = make_folder_data(tmp_path / "fruit")
    train_run(config(data, tmp_path / "run", epochs=1), progress=False)
    trained = []
    real_fit = run.fit
    monkeypatch.setattr(run, "fit", lambda *a, **k: trained.append(1) or real_fit(*a, **k))
    train_run(config(data, tmp_path / "run", epochs=1), reuse=True, progress=False)
    assert trained == []  # the same photos: loaded
    photo = data / "kiwi" / "kiwi_03.jpg"
    make_photo(photo, (250, 250, 250), seed=7, size=(50, 30))  # another photo under the same name
    train_run(config(data, tmp_path / "run", epochs=1), reuse=True, progress=False)
    assert trained == [1]


def test_a_run_made_by_another_fruitlib_version_is_not_reused(tiny_run, monkeypatch, tmp_path):
    out = tmp_path / "older"
    shutil.copytree(tiny_run[0], out)
    monkeypatch.setattr(run, "__version__", "0.0.1")  # as if the run had been made by this version, then upgraded
    trained = []
    real_fit = run.fit
    monkeypatch.setattr(run, "fit", lambda *a, **k: trained.append(1) or real_fit(*a, **k))
    train_run(config(tiny_run[1], out), reuse=True, progress=False)
    assert trained == [1] and json.loads((out / "params.json").read_text())["fruitlib"] == "0.0.1"


@pytest.mark.parametrize(
    "field, value, allowed",
    [
        ("epochs", 0, "epochs must be at least 1"),
        ("image_size", 16, "image_size must be at least 32"),
        ("per_class", 0, "per_class must be at least 1"),
        ("views", 1.5, "views must be at least 0"),
        ("lr", -1.0, "lr must be above 0"),
        ("val_fraction", 1.0, "val_fraction must be between 0 and 1"),
        ("optimizer", "adam", "optimizer must be one of adamw, sgd"),
        ("mode", "half", "mode must be one of"),
    ],
)
def test_a_run_config_refuses_what_no_run_could_use(field, value, allowed):
    with pytest.raises(FruitlibError, match=allowed):
        run.RunConfig(**{field: value})


def test_a_run_scores_its_splits_with_one_export(grocery_data_with_test, tmp_path, monkeypatch):
    monkeypatch.delenv("FRUITLIB_ENGINE", raising=False)  # ONNX Runtime, which exports
    made, export = [], engines.export
    monkeypatch.setattr(engines, "export", lambda trunk, size, path: made.append(path) or export(trunk, size, path))
    cfg = config(grocery_data_with_test, tmp_path / "run", scratch=True, mode="full", views=0, epochs=1, test=True)
    result = train_run(cfg, progress=False)
    assert result.metrics["test"] is not None and len(made) == 1  # validation and test: one export, not kept

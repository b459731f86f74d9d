"""fruitlib.plots: every figure draws from the data it is given and saves under its stable name."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from fruitlib import plots  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def history(offset: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "epoch": [1, 2, 3],
            "train_loss": [1.0, 0.6, 0.4],
            "val_loss": [1.1, 0.8, 0.7],
            "train_acc": [0.5, 0.7, 0.8 + offset],
            "val_acc": [0.4, 0.6, 0.7 + offset],
        }
    )


def test_training_curves_one_colour_per_run(tmp_path):
    fig = plots.training_curves({"frozen": history(0), "full": history(0.1)}, "two runs")
    loss, acc = fig.axes[:2]
    assert len(loss.lines) == len(acc.lines) == 4  # train + validation per run
    assert list(acc.lines[3].get_ydata()) == pytest.approx([0.4, 0.6, 0.8])
    path = plots.save(fig, "04-curves", tmp_path / "figures")
    assert path == tmp_path / "figures" / "04-curves.png"
    assert path.stat().st_size > 1000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_confusion_shows_the_counts():
    fig = plots.confusion([[3, 1], [0, 2]], ["apple", "kiwi"])
    ax = fig.axes[0]
    assert sorted(t.get_text() for t in ax.texts) == ["0", "1", "2", "3"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["apple", "kiwi"]
    assert "6 photos" in ax.get_title()


def test_image_grid_titles_and_colours():
    images = torch.zeros(7, 3, 8, 8, dtype=torch.uint8)
    fig = plots.image_grid(images, [f"photo {i}" for i in range(7)], ["green"] * 6 + ["red"], columns=3)
    assert len(fig.axes) == 9  # 3 rows of 3, two left empty
    titled = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in titled] == [f"photo {i}" for i in range(7)]
    assert titled[-1].title.get_color() == "red"


def test_heatmap_grid_lays_a_map_over_each_photo():
    fig = plots.heatmap_grid(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), torch.rand(2, 8, 8), ["a", "b"], columns=2)
    assert all(len(ax.images) == 2 for ax in fig.axes)


def test_accuracy_vs_data_labels_all_and_draws_the_baseline_and_the_seed_range():
    table = pd.DataFrame(
        {
            "per_class": [5, 5, 20, 20, 0, 0] * 2,
            "run": ["transfer"] * 6 + ["scratch"] * 6,
            "accuracy": [0.4, 0.5, 0.6, 0.62, 0.7, 0.72, 0.2, 0.22, 0.3, 0.31, 0.4, 0.41],
        }
    )
    ax = plots.accuracy_vs_data(table, {"always the commonest class": 0.25, "chance": 0.05}).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["5", "20", "all"]  # 0 is "all", drawn last
    assert any(np.allclose(line.get_ydata(), 0.25) for line in ax.lines)  # the commonest-class baseline
    assert any(np.allclose(line.get_ydata(), 0.05) for line in ax.lines)
    assert {"always the commonest class", "chance"} <= {t.get_text() for t in ax.get_legend().get_texts()}
    assert len(ax.collections) == 2  # one band (the range over seeds) per kind of run
    means = [line.get_ydata() for line in ax.lines if len(line.get_ydata()) == 3]
    assert any(np.allclose(m, [0.45, 0.61, 0.71]) for m in means)


def test_training_curves_have_whole_epoch_ticks():
    h = pd.DataFrame(
        {
            "epoch": [1, 2, 3, 4, 5],
            "train_loss": [1.0] * 5,
            "val_loss": [1.0] * 5,
            "train_acc": [0.5] * 5,
            "val_acc": [0.5] * 5,
        }
    )
    fig = plots.training_curves({"run": h})
    fig.canvas.draw()
    for ax in fig.axes[:2]:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks)


def test_image_grid_captions_never_overlap_the_photos():
    images = torch.zeros(12, 3, 8, 8, dtype=torch.uint8)
    fig = plots.image_grid(images, [f"Passion-Fruit\n-> Pomegranate {i}" for i in range(12)], columns=6)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    photos = [ax.get_window_extent(renderer) for ax in fig.axes if ax.images]
    for ax in fig.axes:
        if ax.get_title():
            caption = ax.title.get_window_extent(renderer)
            assert not any(caption.overlaps(photo) for photo in photos)


def test_photo_figures_are_saved_as_jpeg(tmp_path):
    images = torch.full((2, 3, 8, 8), 200, dtype=torch.uint8)
    plots.save(plots.image_grid(images, ["a", "b"]), "03-samples", tmp_path)
    assert (tmp_path / "03-samples.jpg").read_bytes()[:2] == b"\xff\xd8" and not (tmp_path / "03-samples.png").exists()


def test_figures_go_to_the_checkouts_figures_or_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fig = plots.training_curves({"run": history(0)})
    monkeypatch.setattr(plots, "checkout", lambda: tmp_path / "repo")
    plots.save(fig, "curves")
    monkeypatch.setattr(plots, "checkout", lambda: None)  # an installed package: figures/ where you are
    plots.save(fig, "curves")
    assert (tmp_path / "repo" / "figures" / "curves.png").is_file() and (tmp_path / "figures" / "curves.png").is_file()


def test_show_displays_the_saved_figure_once_with_its_alt_text(tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *objects: shown.extend(objects))
    fig = plots.training_curves({"frozen": history(0)})
    assert plots.show(fig, "Loss and accuracy per epoch.", "04-curves", tmp_path) is None  # a cell shows no path
    (image,) = shown
    assert image.data == (tmp_path / "04-curves.png").read_bytes()
    assert image._repr_png_()[1] == {"alt": "Loss and accuracy per epoch."}
    assert not plt.fignum_exists(fig.number)  # closed: the notebook does not show it a second time


def test_show_without_a_name_saves_nothing(tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *objects: shown.extend(objects))
    monkeypatch.chdir(tmp_path)
    plots.show(plots.image_grid(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), ["a", "b"]), "Two black squares.")
    assert shown[0].format == "jpeg" and list(tmp_path.iterdir()) == []

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
    return pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [1.0, 0.6, 0.4], "val_loss": [1.1, 0.8, 0.7],
                         "train_acc": [0.5, 0.7, 0.8 + offset], "val_acc": [0.4, 0.6, 0.7 + offset]})


def test_training_curves_one_colour_per_run(tmp_path):
    fig = plots.training_curves({"frozen": history(0), "full": history(0.1)}, "two runs")
    loss, acc = fig.axes[:2]
    assert len(loss.lines) == len(acc.lines) == 4  # train + validation per run
    assert list(acc.lines[3].get_ydata()) == pytest.approx([0.4, 0.6, 0.8])
    assert plots.save(fig, "04-curves", tmp_path / "figures") is None  # nothing for a notebook cell to print
    path = tmp_path / "figures" / "04-curves.png"
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


def test_heatmap_grid_and_accuracy_vs_data():
    fig = plots.heatmap_grid(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), torch.rand(2, 8, 8), ["a", "b"], columns=2)
    assert all(len(ax.images) == 2 for ax in fig.axes)
    table = pd.DataFrame({"per_class": [5, 10, 5, 10], "run": ["transfer", "transfer", "scratch", "scratch"],
                          "accuracy": [0.7, 0.8, 0.2, 0.3]})
    fig = plots.accuracy_vs_data(table)
    assert fig.axes[0].get_xscale() == "log"
    assert np.allclose(sorted(fig.axes[0].get_xticks()), [5, 10])


def test_photo_figures_are_saved_as_jpeg(tmp_path):
    images = torch.full((2, 3, 8, 8), 200, dtype=torch.uint8)
    plots.save(plots.image_grid(images, ["a", "b"]), "03-samples", tmp_path)
    assert (tmp_path / "03-samples.jpg").read_bytes()[:2] == b"\xff\xd8" and not (tmp_path / "03-samples.png").exists()

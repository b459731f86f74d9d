"""fruitlib.explore on tiny generated photos and feature arrays: each test runs in well under a second or two."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from fruitlib import explore, models  # noqa: E402
from fruitlib.data import Catalog  # noqa: E402


def make_catalog(rows: list[tuple[str, str]]) -> Catalog:
    table = pd.DataFrame(
        [(f"/x/{i}.jpg", c, s) for i, (c, s) in enumerate(rows)], columns=["path", "class_name", "split"]
    )
    classes = sorted(table["class_name"].unique())
    table["label"] = table["class_name"].map({c: i for i, c in enumerate(classes)})
    return Catalog(Path("/x"), "grocery", classes, table)


def bursts(
    centres: np.ndarray, bursts_per_class: int, shots: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Feature vectors in bursts: one random scene per burst (class centre + big spread), shots a hair apart."""
    x, y = [], []
    for c, centre in enumerate(centres):
        for _ in range(bursts_per_class):
            scene = centre + rng.normal(0, 2.5, len(centre))
            x.append(scene + rng.normal(0, 0.01, (shots, len(centre))))
            y += [c] * shots
    return np.concatenate(x) + 10, np.array(y)  # + 10: positive features, like pooled ReLU outputs


def test_class_counts_sorted_with_totals_and_shares():
    catalog = make_catalog(
        [("Apple", "train")] * 5 + [("Apple", "val")] * 2 + [("Kiwi", "train")] * 2 + [("Plum", "train")] * 1
    )
    counts = explore.class_counts(catalog)
    assert list(counts.index) == ["Apple", "Kiwi", "Plum"]
    assert list(counts.columns) == ["train", "val", "total", "share"]
    assert counts.loc["Apple"].tolist()[:3] == [5, 2, 7]
    assert counts.loc["Plum", "val"] == 0  # a class missing from a split shows as 0, not as a gap
    assert counts["share"].sum() == pytest.approx(1.0)


def test_image_sizes_read_the_header_only(tmp_path):
    paths = []
    for i, size in enumerate([(40, 30), (30, 40), (40, 30)]):
        path = tmp_path / f"{i}.png"
        Image.new("RGB", size, (i * 50, 0, 0)).save(path)
        paths.append(path)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(paths[0].read_bytes()[:60])  # header intact, pixels gone: decoding would fail
    sizes = explore.image_sizes(paths + [truncated])
    assert sizes.values.tolist() == [[40, 30], [30, 40], [40, 30], [40, 30]]


def test_colour_stats_of_pure_colours():
    red = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    red[:, 0] = 255
    grey = torch.full((1, 3, 4, 4), 128, dtype=torch.uint8)
    stats = explore.colour_stats(torch.cat([red, grey]), torch.tensor([0, 0, 1]), ["Red", "Grey"])
    assert stats.loc["Red", ["red", "green", "blue", "brightness", "saturation"]].tolist() == [1, 0, 0, 1, 1]
    assert stats.loc["Grey", "saturation"] == 0
    assert stats.loc["Grey", "brightness"] == pytest.approx(128 / 255, abs=1e-3)


def test_colour_histograms_are_shares_in_the_right_cell():
    images = torch.zeros(2, 3, 2, 2, dtype=torch.uint8)
    images[1, 0] = 255  # pure red: bin (3, 0, 0) of 4 x 4 x 4
    hist = explore.colour_histograms(images, bins=4)
    assert hist.shape == (2, 64)
    assert np.allclose(hist.sum(1), 1)
    assert hist[0, 0] == 1 and hist[1, 3 * 16] == 1


def test_per_class_indices_seeded_and_capped():
    labels = np.array([0] * 10 + [1] * 2 + [2] * 5)
    picked = explore.per_class_indices(labels, 3, seed=1)
    assert np.bincount(labels[picked]).tolist() == [3, 2, 3]
    assert picked == explore.per_class_indices(labels, 3, seed=1)
    assert picked != explore.per_class_indices(labels, 3, seed=2)


def test_nearest_cosine_and_excluding_self():
    reference = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    index, similarity = explore.nearest(np.array([[5.0, 0.1], [0.0, 2.0]]), reference)
    assert index.tolist() == [0, 1]
    assert similarity[1] == pytest.approx(1.0)  # cosine ignores length
    index, similarity = explore.nearest(reference)
    assert index.tolist() == [2, 2, 0] or index.tolist() == [2, 2, 1]  # never the row itself
    assert similarity[0] == pytest.approx(np.cos(np.pi / 4))


def test_knn_and_probe_on_separable_clusters():
    rng = np.random.default_rng(0)
    x, y = bursts(rng.normal(0, 1.5, (3, 16)), 4, 5, rng)
    assert explore.knn_accuracy(x, y, x, y, k=3) == 1.0
    assert explore.probe_accuracy(x, y, x, y) == 1.0


def test_probe_sample_weights_matter():
    x = np.array([[0.0], [0.1], [1.0], [1.1], [0.05]])
    y = np.array([0, 0, 1, 1, 1])  # the last point sits among the zeros
    heavy = np.array([1, 1, 1, 1, 100.0])
    assert explore.probe(x, y).predict([[0.05]])[0] == 0
    assert explore.probe(x, y, sample_weight=heavy).predict([[0.05]])[0] == 1


def test_project_2d_shapes_and_methods():
    x = np.random.default_rng(0).normal(size=(40, 8))
    pca = explore.project_2d(x, "pca")
    assert pca.shape == (40, 2) and np.allclose(pca, explore.project_2d(x, "pca"))
    assert explore.project_2d(x, "tsne").shape == (40, 2)
    with pytest.raises(ValueError, match="pca"):
        explore.project_2d(x, "umap")


def test_random_split_disjoint_and_stratified():
    labels = np.array([0] * 50 + [1] * 50)
    keep, held = explore.random_split(labels, 0.2, seed=0)
    assert len(held) == 20 and not set(keep) & set(held) and len(keep) + len(held) == 100
    assert np.bincount(labels[held]).tolist() == [10, 10]


def test_leakage_random_split_of_bursts_looks_better():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 1, (4, 16))
    train_x, train_y = bursts(centres, 6, 5, rng)
    val_x, val_y = bursts(centres, 3, 5, rng)  # other scenes of the same classes: no burst spans both
    table = explore.leakage(train_x, train_y, {"val": (val_x, val_y)}, threshold=0.99, seed=0)
    random, official = table.loc["random 80/20 of train"], table.loc["official train -> val"]
    grouped = table.loc["burst-grouped split of train"]
    assert random["near-duplicate share"] > 0.9 and official["near-duplicate share"] < 0.2
    assert grouped["near-duplicate share"] == 0  # no burst on both sides
    assert random["median similarity"] > official["median similarity"]
    assert random["probe accuracy"] == 1.0 and official["probe accuracy"] < 0.9  # the leak flatters the random split
    assert grouped["probe accuracy"] < random["probe accuracy"]
    assert random["train photos"] == 96 and random["held-out photos"] == 24 and official["held-out photos"] == 60
    assert grouped["train photos"] + grouped["held-out photos"] == 120


def test_bursts_join_chains_of_near_duplicates_and_grouped_splits_keep_them_whole():
    x = np.array([[1.0, 0.0], [0.995, 0.1], [0.98, 0.2], [0.0, 1.0], [0.1, 0.995], [-1.0, 0.2]])
    burst = explore.bursts(x, threshold=0.99)
    assert burst[0] == burst[1] == burst[2]  # 0-2 are not that close, but a chain joins them
    assert burst[3] == burst[4] and len({burst[0], burst[3], burst[5]}) == 3
    labels = np.repeat([0, 1], 40)
    groups = np.repeat(np.arange(16), 5)  # 8 bursts of 5 per class
    keep, held = explore.grouped_split(labels, groups, 0.2, seed=0)
    assert not set(groups[keep]) & set(groups[held]) and len(keep) + len(held) == 80
    assert set(labels[held]) == {0, 1}  # stratified: both classes held out


def test_importance_weights_follow_the_shift():
    rng = np.random.default_rng(0)
    source, target = rng.normal(0, 1, (300, 3)), rng.normal(0, 1, (300, 3))
    target[:, 0] += 1.5
    weights, auc = explore.importance_weights(source, target)
    assert weights.shape == (300,) and weights.mean() == pytest.approx(1.0)
    assert auc > 0.75
    assert np.corrcoef(weights, source[:, 0])[0, 1] > 0.5  # source photos that look like the target count more
    _, same_auc = explore.importance_weights(source, rng.normal(0, 1, (300, 3)))
    assert same_auc < 0.6


def test_effective_size():
    assert explore.effective_size(np.ones(10)) == pytest.approx(10)
    assert explore.effective_size(np.array([1.0, 0, 0, 0])) == pytest.approx(1)


def test_random_twin_features_are_not_degenerate(tmp_path, monkeypatch):
    monkeypatch.setenv("FRUITLIB_CACHE", str(tmp_path))
    torch.manual_seed(0)
    model = models.build_model(["a", "b"], "efficientnet_lite0", pretrained=False, mode="frozen", image_size=32)
    images = torch.randint(0, 256, (8, 3, 37, 37), dtype=torch.uint8)
    uncalibrated = explore.pooled_features(model, images)
    twin = explore.random_twin(model, images, seed=0, calibrate=8)
    features = explore.pooled_features(twin, images)
    assert features.shape == (8, 1280) and features.dtype == np.float32
    assert np.abs(uncalibrated).max() < 1e-3  # eval-mode batch norm on random weights: almost nothing left
    assert features.std(0).mean() > 1e-2
    assert twin.spec.backbone == model.spec.backbone and not twin.spec.pretrained and not twin.training
    again = explore.pooled_features(explore.random_twin(model, images, seed=0, calibrate=8), images)
    assert np.array_equal(features, again)  # seeded: same twin, same cache entry
    assert len(list(tmp_path.glob("activations-*.pt"))) == 2


def test_figures_have_the_expected_panels(tmp_path):
    catalog = make_catalog([("Apple", "train")] * 3 + [("Kiwi", "val")] * 2)
    figures = [
        explore.counts_figure(explore.class_counts(catalog)),
        explore.colour_figure(
            explore.colour_stats(
                torch.randint(0, 256, (4, 3, 4, 4), dtype=torch.uint8), torch.tensor([0, 0, 1, 1]), ["A", "B"]
            )
        ),
        explore.projection_figure(
            {"p": np.zeros((4, 2)), "r": np.ones((4, 2))}, np.array([0, 1, 0, 1]), ["A", "B"], {"p": 0.5, "r": 0.25}
        ),
        explore.similarity_figure({"a": np.array([0.5, 0.9]), "b": np.array([0.7, 0.95])}, 0.9),
        explore.pairs_figure(
            torch.zeros(2, 3, 4, 4, dtype=torch.uint8),
            torch.ones(2, 3, 4, 4, dtype=torch.uint8),
            [("l1", "r1"), ("l2", "r2")],
            pairs_per_row=2,
        ),
    ]
    assert [len(f.axes) for f in figures] == [1, 2, 2, 1, 4]
    assert "50%" in figures[2].axes[0].get_title()
    assert [a.get_title() for a in figures[4].axes] == ["l1", "r1", "l2", "r2"]
    plt.close("all")

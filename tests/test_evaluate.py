"""fruitlib.evaluate: scores checked by hand, probabilities, top-k guesses, one-line errors for bad photos."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import COLOURS, one_line

from fruitlib import FruitlibError, evaluate
from fruitlib.data import decode, scan
from fruitlib.evaluate import load_photo, report, top_k
from fruitlib.models import build_model


def test_report_matches_a_hand_computation():
    classes = ["apple", "banana", "cherry", "durian"]
    labels = np.array([0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 0, 1, 1, 2, 2])
    scores = report(labels, predicted, classes)
    assert scores["accuracy"] == pytest.approx(4 / 6)
    assert scores["n_images"] == 6
    assert scores["confusion"] == [[2, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]]  # rows: true class
    expected = {  # precision = right / predicted as the class, recall = right / truly the class
        "apple": (2 / 2, 2 / 3, 3),
        "banana": (1 / 2, 1 / 2, 2),
        "cherry": (1 / 2, 1 / 1, 1),
        "durian": (0.0, 0.0, 0),  # never seen, never predicted: zero, not an error
    }
    assert list(scores["per_class"]) == classes
    for name, (precision, recall, support) in expected.items():
        got = scores["per_class"][name]
        assert got["precision"] == pytest.approx(precision) and got["recall"] == pytest.approx(recall)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        assert got["f1"] == pytest.approx(f1) and got["support"] == support
    import json

    json.dumps(scores)  # plain Python types only: the CLI prints it as JSON


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(sorted(COLOURS), "efficientnet_lite0", mode="frozen", image_size=32).eval()


def test_top_k_is_sorted_and_names_classes(model, folder_data):
    paths = scan(folder_data).table["path"].tolist()[:3]
    guesses = top_k(model, paths, k=2)
    assert len(guesses) == 3
    for guess in guesses:
        assert len(guess) == 2
        names, probs = zip(*guess)
        assert set(names) <= set(COLOURS) and len(set(names)) == 2
        assert list(probs) == sorted(probs, reverse=True)
        assert all(0 <= p <= 1 for p in probs) and sum(probs) <= 1 + 1e-6
    everything = top_k(model, paths[:1], k=10)[0]  # k is capped at the number of classes
    assert len(everything) == 3 and sum(p for _, p in everything) == pytest.approx(1, abs=1e-5)
    assert [n for n, _ in everything[:2]] == [n for n, _ in guesses[0]]  # alone or in a batch: the same answer
    assert [p for _, p in everything[:2]] == pytest.approx([p for _, p in guesses[0]], abs=1e-5)


def test_top_k_agrees_with_the_network(model, folder_data):
    path = scan(folder_data).table["path"].iloc[0]
    x = load_photo(path, model)
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    with torch.no_grad():
        probs = torch.softmax(model(x[None]), 1)[0]
    [[(name, p)]] = top_k(model, [path], k=1)
    assert name == model.spec.classes[int(probs.argmax())] and p == pytest.approx(float(probs.max()), abs=1e-6)


def test_load_photo_is_prepared_like_evaluation(model, folder_data):
    path = scan(folder_data).table["path"].iloc[0]
    raw = decode(path, 37)[:, 2:34, 2:34].float() / 255  # the centre 32 x 32 of the stored 37 x 37
    assert torch.allclose(load_photo(path, model), (raw - 0.5) / 0.5, atol=1e-5)


@pytest.mark.parametrize("kind", ["missing", "text", "random-bytes"])
def test_bad_photo_is_a_one_line_error(model, tmp_path, kind):
    path = tmp_path / "photo.jpg"
    if kind == "text":
        path.write_text("not a photo")
    elif kind == "random-bytes":
        path.write_bytes(np.random.default_rng(0).bytes(1000))
    with pytest.raises(FruitlibError) as error:
        top_k(model, [path])
    assert one_line(str(error.value)) and str(path) in str(error.value)


def test_top_confusions_are_the_largest_off_diagonal_cells():
    matrix = [[5, 3, 0], [1, 4, 0], [0, 6, 2]]  # rows: true class
    top = evaluate.top_confusions(matrix, ["apple", "banana", "kiwi"], k=2)
    assert top[["true", "predicted", "photos"]].values.tolist() == [["kiwi", "banana", 6], ["apple", "banana", 3]]
    assert top["share of the true class"].tolist() == pytest.approx([6 / 8, 3 / 8])
    assert len(evaluate.top_confusions([[5, 1], [0, 4]], ["apple", "kiwi"], k=4)) == 1  # only real mistakes

"""fruitlib.stats: Wilson intervals, seed summaries, and comparisons that say "better" only when it is."""

from __future__ import annotations

import numpy as np
import pytest

from fruitlib import stats


def test_wilson_interval_matches_the_formula_and_stays_in_range():
    low, high = stats.wilson(0.5, 100)
    assert (low, high) == pytest.approx((0.4038, 0.5962), abs=1e-4)  # 0.5 -+ 1.96 * 0.05, shrunk to the centre
    assert stats.wilson(1.0, 10)[1] == pytest.approx(1.0) and stats.wilson(1.0, 10)[0] < 1.0
    assert stats.wilson(0.0, 10)[0] == pytest.approx(0.0, abs=1e-12)
    wide, narrow = stats.wilson(0.7, 111), stats.wilson(0.7, 1117)
    assert wide[1] - wide[0] > 3 * (narrow[1] - narrow[0]) * 0.9  # ten times the photos: about a third the width


def test_describe_names_the_interval_and_the_photos():
    assert stats.describe(0.642, 1117) == "64.2% (95% interval 61.3-66.9%, 1,117 photos)"  # 717 of 1,117 right


def test_over_seeds_gives_mean_range_and_interval_in_percent():
    table = stats.over_seeds({"a": [0.5, 0.6, 0.7], "b": [0.2]}, 100)
    assert table.loc["a", "seeds"] == 3 and table.loc["a", "mean %"] == 60.0
    assert (table.loc["a", "lowest seed %"], table.loc["a", "highest seed %"]) == (50.0, 70.0)
    assert table.loc["a", "95% low %"] < 60 < table.loc["a", "95% high %"]
    assert table.loc["b", "seeds"] == 1


def test_compare_says_beats_only_when_intervals_and_seeds_separate():
    far = stats.compare("transfer", [0.60, 0.62, 0.61], "scratch", [0.35, 0.37, 0.36], 1117)
    assert far.startswith("transfer beats scratch by 25.0 points")
    close = stats.compare("fixed", [0.64, 0.66, 0.65], "fine-tuned", [0.66, 0.64, 0.67], 1117)
    assert "within noise" in close and "beats" not in close
    few_photos = stats.compare("a", [0.685, 0.69], "b", [0.64, 0.645], 111)  # 68.5% vs 64.0% on 111 photos
    assert "within noise" in few_photos
    interleaved = stats.compare("a", [0.80, 0.50], "b", [0.55, 0.54], 10000)  # intervals apart, seeds not
    assert "within noise" in interleaved
    assert stats.compare("scratch", [0.35], "transfer", [0.6], 1117).startswith("transfer beats scratch")


def test_a_burst_interval_of_independent_photos_is_close_to_wilsons():
    correct = np.arange(1000) % 10 < 7  # 70% of 1,000 photos, each its own burst
    low, high = stats.burst_interval(correct, np.arange(1000))
    assert (low, high) == pytest.approx(stats.wilson(0.7, 1000), abs=0.006)
    assert stats.burst_interval(correct, np.arange(1000)) == (low, high)  # the same draws every time


def test_bursts_of_near_duplicates_widen_the_interval():
    bursts = np.arange(1000) // 10  # 100 bursts of 10 photos, each burst all right or all wrong
    correct = bursts % 10 < 7
    low, high = stats.burst_interval(correct, bursts)
    wilson_low, wilson_high = stats.wilson(0.7, 1000)
    assert low < 0.7 < high and high - low > 2.5 * (wilson_high - wilson_low)  # about sqrt(10) times as wide


def test_a_burst_interval_averages_the_seeds_photo_by_photo():
    seeds = np.array([[1, 1, 0, 0], [1, 0, 1, 0]], dtype=bool)
    low, high = stats.burst_interval(seeds, np.zeros(4))  # one burst: every draw is the whole set
    assert low == high == pytest.approx(0.5)


def test_over_seeds_and_compare_use_burst_intervals_when_given():
    bursts = {"a": (0.50, 0.70), "b": (0.30, 0.52)}
    table = stats.over_seeds({"a": [0.6, 0.61], "b": [0.4, 0.41]}, 1117, bursts)
    assert (table.loc["a", "bursts low %"], table.loc["b", "bursts high %"]) == (50.0, 52.0)
    wilson_only = stats.compare("a", [0.6, 0.61], "b", [0.4, 0.41], 1117)
    assert wilson_only.startswith("a beats b") and "the intervals are apart" in wilson_only
    with_bursts = stats.compare("a", [0.6, 0.61], "b", [0.4, 0.41], 1117, bursts)  # 0.50 < 0.52: they overlap
    assert "within noise" in with_bursts and "burst intervals overlap" in with_bursts
    apart = stats.compare("a", [0.6, 0.61], "b", [0.4, 0.41], 1117, bursts | {"b": (0.30, 0.45)})
    assert apart.startswith("a beats b") and "burst intervals are apart" in apart

"""cwsc.evaluation.maps: agreement of a map with a reference."""

import numpy as np
import pytest

from cwsc.evaluation.maps import agreement


def test_agreement_metrics():
    ref = np.array([[100.0, 200.0], [300.0, np.nan]])
    stats = agreement(ref + 10, ref)
    assert stats["cells"] == 3 and stats["bias"] == pytest.approx(10)
    assert stats["rmse"] == pytest.approx(10) and stats["pearson_r"] == pytest.approx(1)


def test_range_check_separates_a_right_map_from_a_constant_and_a_shuffled_one():
    """Issue 35: the labels of places with narrow identifiable ranges; the own-label map lies
    inside every range and ranks like the labels, the median and a shuffle do neither."""
    from cwsc.evaluation.maps import range_check

    rng = np.random.default_rng(0)
    labels = rng.uniform(50, 400, 30)
    low, high = 0.8 * labels, 1.25 * labels
    own = range_check(labels, labels, low, high)
    assert own["share_in_range_map"] == 1.0 and own["spearman_map_labels"] == pytest.approx(1.0)
    inside = ((np.median(labels) >= low) & (np.median(labels) <= high)).mean()
    assert own["share_in_range_constant"] == pytest.approx(inside) and inside < 0.5
    shuffled = range_check(rng.permutation(labels), labels, low, high)
    assert shuffled["share_in_range_map"] < 0.5 and abs(shuffled["spearman_map_labels"]) < 0.5
    gaps = range_check([100.0, np.nan], [100.0, 200.0], [90.0, 150.0], [np.nan, 250.0])
    assert np.isnan(gaps["in_range_map"]).all() and gaps["places"] == 0

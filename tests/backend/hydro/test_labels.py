"""The joint CWSC label rule and the KGE mask."""

from __future__ import annotations


import numpy as np
import pytest

from backend.hydro.labels import ModelLabels, joint_labels, mask_by_kge


def _labels(kge, sc, spread):
    nan = np.full(len(kge), np.nan)
    return ModelLabels({"sc": np.array(sc, float)}, np.array(kge, float), nan, nan, nan, nan,
                       np.array(spread, float), np.zeros(len(kge)))


def test_joint_labels_weighting_threshold_and_best_kge():
    labs = {"A": _labels([0.8, -0.2, np.nan, 0.0], [100, 300, 10, 50], [10, 5, 1, 4]),
            "B": _labels([0.2, -0.5, np.nan, 0.3], [200, 400, 20, 70], [20, 5, 1, 8])}
    cwsc, spread, best = joint_labels(labs, threshold=0.0)
    assert cwsc[0] == pytest.approx((0.8 * 100 + 0.2 * 200) / 1.0)
    assert spread[0] == pytest.approx((0.8 * 10 + 0.2 * 20) / 1.0)
    assert np.isnan(cwsc[1]) and best[1] == pytest.approx(-0.2)   # no model above 0
    assert np.isnan(cwsc[2]) and np.isnan(best[2])                # never calibrated
    assert cwsc[3] == pytest.approx(70.0)                          # KGE = 0 is not above 0
    cwsc_low, _, _ = joint_labels(labs, threshold=-1.0)
    assert cwsc_low[1] == pytest.approx(350.0)                     # all weights 0: equal


def test_joint_label_margin_keeps_the_models_close_to_the_best():
    labs = {"A": _labels([0.90, 0.50, 0.30], [100, 300, 10], [1, 1, 1]),
            "B": _labels([0.89, 0.80, np.nan], [200, 400, 20], [3, 3, 3]),
            "C": _labels([0.60, 0.79, 0.20], [900, 500, 30], [5, 5, 5])}
    cwsc, _, best = joint_labels(labs, threshold=0.0, margin=0.02)
    assert cwsc[0] == pytest.approx((0.90 * 100 + 0.89 * 200) / 1.79)   # C is 0.30 behind
    assert cwsc[1] == pytest.approx((0.80 * 400 + 0.79 * 500) / 1.59)   # A is 0.30 behind
    assert cwsc[2] == pytest.approx(10.0)                                # only the best
    np.testing.assert_allclose(best, [0.90, 0.80, 0.30])
    cwsc_all, _, _ = joint_labels(labs, threshold=0.0)
    assert cwsc_all[0] == pytest.approx((90 + 178 + 540) / 2.39)          # no margin: all three


def test_mask_by_kge_keeps_only_cells_above_threshold():
    labels = np.array([100.0, 200.0, np.nan, 300.0])
    kge = np.array([0.5, -0.1, 0.9, np.nan])
    out = mask_by_kge(labels, kge, 0.0)
    assert out[0] == 100 and np.isnan(out[1:]).all()

"""The joint CWSC label rule, its range and quality flags, and the mask."""

from __future__ import annotations

import numpy as np
import pytest

from cwsc.hydro.labels import ModelLabels, joint_labels, mask_by_kge


def _labels(kge, sc, low=None, high=None, limited=None, months=None):
    n = len(kge)
    sc = np.array(sc, float)
    return ModelLabels(
        {"sc": sc},
        np.array(kge, float),
        *(np.full(n, np.nan) for _ in range(3)),
        np.full(n, np.nan),
        np.array(low if low is not None else sc - 1, float),
        np.array(high if high is not None else sc + 1, float),
        np.array(limited if limited is not None else np.zeros(n), float),
        np.array(months if months is not None else np.full(n, 120), float),
        np.zeros(n, np.int64),
    )


def _as_models(labs):
    # joint_labels looks the sc bounds up by model name: name the test models after them.
    return dict(zip(("DWBM", "SWBM", "TVGM"), labs.values()))


def test_joint_labels_weighting_threshold_and_best_kge():
    labs = _as_models(
        {
            "A": _labels([0.8, -0.2, np.nan, 0.0], [100, 300, 10, 50]),
            "B": _labels([0.2, -0.5, np.nan, 0.3], [200, 400, 20, 70]),
        }
    )
    cwsc, width, flags, best = joint_labels(labs, threshold=0.0)
    assert cwsc[0] == pytest.approx((0.8 * 100 + 0.2 * 200) / 1.0)
    assert width[0] == pytest.approx(201 - 99)  # the union of both ranges
    # No model above 0: the label is still written (the mask removes it), here from both
    # models (no margin) with equal weights.
    assert cwsc[1] == pytest.approx(350.0) and best[1] == pytest.approx(-0.2)
    assert np.isnan(cwsc[2]) and np.isnan(best[2]) and np.isnan(flags[2])  # never calibrated
    assert cwsc[3] == pytest.approx(70.0)  # KGE = 0 is not above 0


def test_joint_label_margin_keeps_the_models_close_to_the_best():
    labs = _as_models(
        {
            "A": _labels([0.90, 0.50, 0.30], [100, 300, 10]),
            "B": _labels([0.89, 0.80, np.nan], [200, 400, 20]),
            "C": _labels([0.60, 0.79, 0.20], [900, 500, 30]),
        }
    )
    cwsc, _, _, best = joint_labels(labs, threshold=0.0, margin=0.02)
    assert cwsc[0] == pytest.approx((0.90 * 100 + 0.89 * 200) / 1.79)  # C is 0.30 behind
    assert cwsc[1] == pytest.approx((0.80 * 400 + 0.79 * 500) / 1.59)  # A is 0.30 behind
    assert cwsc[2] == pytest.approx(10.0)  # only the best
    np.testing.assert_allclose(best, [0.90, 0.80, 0.30])
    cwsc_all, _, _, _ = joint_labels(labs, threshold=0.0)
    assert cwsc_all[0] == pytest.approx((90 + 178 + 540) / 2.39)  # no margin: all three


def test_each_flag_bit_trips_on_the_cell_built_for_it():
    # Cells: 0 clean; 1 sc at the lower bound; 2 models disagree (factor 2); 3 too few
    # months; 4 range wider than the label; 5 limits in 30 % of months; 6 at the upper bound.
    a = _labels(
        [0.9] * 7,
        [300, 5, 150, 300, 100, 300, 999],
        low=[290, 0, 140, 290, 20, 290, 960],
        high=[310, 20, 160, 310, 300, 310, 1000],
        limited=[0, 0, 0, 0, 0, 0.3, 0],
        months=[120, 120, 120, 12, 120, 120, 120],
    )
    b = _labels([0.9, 0.5, 0.9, 0.5, 0.5, 0.5, 0.5], [300] * 7)
    _, _, flags, _ = joint_labels({"DWBM": a, "SWBM": b}, threshold=0.0, margin=0.02)
    assert flags.tolist() == [0, 1 | 8, 2, 4, 8, 16, 1]
    # Bits of a model outside the label do not count: SWBM's limits at cell 5 when it is 0.4 behind.
    b.limited_fraction[5] = 0.5
    _, _, flags, _ = joint_labels({"DWBM": a, "SWBM": b}, threshold=0.0, margin=0.02)
    assert flags[5] == 16


def test_mask_by_kge_keeps_only_cells_above_threshold_and_without_excluded_flags():
    labels = np.array([100.0, 200.0, np.nan, 300.0, 400.0, 500.0])
    kge = np.array([0.5, -0.1, 0.9, np.nan, 0.7, 0.7])
    out = mask_by_kge(labels, kge, 0.0)
    assert out[0] == 100 and np.isnan(out[1:4]).all() and out[4] == 400
    flags = np.array([0, 0, 0, 0, 1 | 4, 8])
    out = mask_by_kge(labels, kge, 0.0, flags, exclude=1)
    assert out[0] == 100 and np.isnan(out[4]) and out[5] == 500
    out = mask_by_kge(labels, kge, 0.0, flags, exclude=1 | 8)
    assert np.isnan(out[4]) and np.isnan(out[5])


def test_models_that_evaporate_above_pet_leave_the_label_where_one_within_the_margin_does_not():
    """Issue 35: a model that fits only by evaporating more than PET (share of months above
    ABOVE_PET_SHARE) enters the label only where no model within the margin respects PET;
    then the cell carries bit 64."""
    from cwsc.hydro.labels import ABOVE_PET_SHARE, FLAG_ABOVE_PET

    # cell 0: both fit equally, TVGM above PET -> DWBM alone; cell 1: DWBM far behind -> TVGM
    # alone, bit 64; cell 2: both respect PET -> the mean of both; cell 3: above PET in
    # exactly the allowed share -> counts as respecting it.
    dwbm = _labels([0.85, 0.5, 0.85, 0.85], [300, 300, 300, 300])
    tvgm = _labels([0.86, 0.86, 0.86, 0.86], [100, 100, 100, 100])
    dwbm.above_pet_fraction = np.zeros(4)
    tvgm.above_pet_fraction = np.array([0.9, 0.9, 0.0, ABOVE_PET_SHARE])
    cwsc, _, flags, kge = joint_labels({"DWBM": dwbm, "TVGM": tvgm}, threshold=0.0, margin=0.02)
    assert cwsc[0] == 300 and cwsc[1] == 100
    assert cwsc[2] == pytest.approx((0.85 * 300 + 0.86 * 100) / (0.85 + 0.86)) == cwsc[3]
    bits = flags.astype(int) & FLAG_ABOVE_PET
    assert bits.tolist() == [0, FLAG_ABOVE_PET, 0, 0]
    np.testing.assert_array_equal(kge, [0.86] * 4)  # the joint KGE stays the best model's
    # Without the measure (labels of an earlier release) the rule is the old one.
    dwbm.above_pet_fraction = tvgm.above_pet_fraction = None
    cwsc_old, _, flags_old, _ = joint_labels({"DWBM": dwbm, "TVGM": tvgm}, threshold=0.0, margin=0.02)
    assert cwsc_old[0] == pytest.approx((0.85 * 300 + 0.86 * 100) / (0.85 + 0.86))
    assert not (flags_old.astype(int) & FLAG_ABOVE_PET).any()

"""cwsc.ml.baseline: neighbourhood features by hand, what the trees learn, the network's cells."""

import math

import numpy as np
import pytest

from cwsc.ml import patches as P
from cwsc.ml.baseline import (
    FIXED_ITERATIONS,
    baseline_features,
    feature_names,
    fit_baseline,
    fit_best_baseline,
    neighbourhood_mean,
)
from cwsc.ml.metrics import r2_score
from cwsc.reports.html import baseline_sentence

NAN = np.nan


def brute_mean(band, size):
    """The window mean by loops: valid values on the grid only."""
    r = size // 2
    h, w = band.shape
    out = np.full((h, w), np.nan)
    for i in range(h):
        for j in range(w):
            win = band[max(i - r, 0) : i + r + 1, max(j - r, 0) : j + r + 1]
            v = win[np.isfinite(win)]
            if v.size:
                out[i, j] = v.mean()
    return out


def test_neighbourhood_mean_by_hand_with_nodata_and_edges():
    band = np.array(
        [
            [1.0, 2.0, NAN, 4.0],
            [5.0, NAN, 7.0, 8.0],
            [9.0, 10.0, 11.0, NAN],
        ],
        np.float32,
    )
    m3 = neighbourhood_mean(band, 3)
    assert m3.dtype == np.float32 and m3.shape == band.shape
    # Corner (0, 0): 1, 2, 5 (the NaN at (1, 1) and the off-grid cells do not count).
    assert m3[0, 0] == pytest.approx((1 + 2 + 5) / 3)
    # A NaN cell gets the mean of its valid neighbours: (0, 2) sees 2, 4, 7, 8.
    assert m3[0, 2] == pytest.approx((2 + 4 + 7 + 8) / 4)
    # Inner cell (1, 1): every valid value of rows 0-2, columns 0-2.
    assert m3[1, 1] == pytest.approx((1 + 2 + 5 + 7 + 9 + 10 + 11) / 7)
    # Corner (2, 3): 7, 8, 11.
    assert m3[2, 3] == pytest.approx((7 + 8 + 11) / 3)
    # size 1 is the band itself; a window larger than the grid is the mean of every valid value.
    np.testing.assert_array_equal(neighbourhood_mean(band, 1), band)
    assert np.allclose(neighbourhood_mean(band, 11), np.nanmean(band))
    rng = np.random.default_rng(0)
    noisy = rng.normal(300, 50, (9, 13)).astype(np.float32)
    noisy[rng.random(noisy.shape) < 0.3] = np.nan
    noisy[:, :2] = np.nan  # a sea on the left
    for size in (3, 5, 11):
        np.testing.assert_allclose(neighbourhood_mean(noisy, size), brute_mean(noisy, size), rtol=1e-5)
    assert np.isnan(neighbourhood_mean(np.full((3, 3), np.nan, np.float32), 3)).all()
    with pytest.raises(ValueError):
        neighbourhood_mean(band, 4)


def test_features_are_the_predictors_then_each_neighbourhood():
    rng = np.random.default_rng(1)
    stack = rng.normal(size=(2, 12, 14)).astype(np.float32)
    stack[1, 3:5, 6:9] = np.nan
    rows, cols = np.array([0, 5, 11, 7]), np.array([0, 7, 13, 2])
    x = baseline_features(stack, rows, cols)
    assert x.shape == (4, 6) and x.dtype == np.float32
    np.testing.assert_array_equal(x[:, :2], stack[:, rows, cols].T)
    for c in range(2):
        np.testing.assert_allclose(x[:, 2 + c], brute_mean(stack[c], 3)[rows, cols], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(x[:, 4 + c], brute_mean(stack[c], 11)[rows, cols], rtol=1e-5, atol=1e-6)
    assert feature_names(["a", "b"]) == ["a", "b", "a (3 x 3 mean)", "b (3 x 3 mean)"] + [
        "a (11 x 11 mean)",
        "b (11 x 11 mean)",
    ]


def _neighbourhood_task(shape=(48, 48), seed=2):
    """White-noise predictors; the label is the 3 x 3 mean of one of them: a cell's own
    value explains about a ninth of it, its neighbourhood all of it."""
    rng = np.random.default_rng(seed)
    stack = rng.normal(size=(2, *shape)).astype(np.float32)
    labels = (200.0 + 50.0 * brute_mean(stack[0], 3)).astype(np.float32)
    return stack, labels


@pytest.mark.slow
def test_the_trees_learn_a_neighbourhood_function_a_per_cell_model_cannot():
    stack, labels = _neighbourhood_task()
    samples = P.select_samples(stack, labels)
    split = P.training_split(samples, 0.3, "random", seed=0, val_fraction=0.15)
    with_means = fit_baseline(stack, split, seed=0)
    per_cell = fit_baseline(stack, split, seed=0, sizes=())
    assert with_means.test_r2 > 0.9
    assert per_cell.test_r2 < 0.3
    # Same test cells, same R2 function as the network's test score.
    np.testing.assert_array_equal(with_means.test_obs, samples.labels[split.test])
    assert with_means.test_r2 == r2_score(with_means.test_obs, with_means.test_pred)
    assert with_means.test_pred.shape == (len(split.test),) and with_means.test_pred.dtype == np.float32


@pytest.mark.slow
def test_same_seed_same_predictions_and_the_edge_cases():
    stack, labels = _neighbourhood_task((30, 30), seed=5)
    samples = P.select_samples(stack, labels)
    split = P.training_split(samples, 0.3, "blocks", seed=3, val_fraction=0.15)
    a, b = fit_baseline(stack, split, seed=4), fit_baseline(stack, split, seed=4)
    np.testing.assert_array_equal(a.test_pred, b.test_pred)
    assert a.test_r2 == b.test_r2
    # No validation cells (the seed recipe): a fixed number of iterations.
    no_val = P.training_split(samples, 0.3, "random", seed=3)
    assert len(no_val.val) == 0
    assert fit_baseline(stack, no_val, seed=4).iterations == FIXED_ITERATIONS
    # No test cells: no score.
    none = fit_baseline(stack, P.training_split(samples, 0.0), seed=4)
    assert math.isnan(none.test_r2) and none.test_pred.shape == (0,)


def test_the_baseline_uses_the_cells_of_the_network():
    from cwsc.ml.training import RECIPES, TrainConfig, train_from_arrays
    from cwsc.synthetic.twin import make_twin

    twin = make_twin((28, 28), channels=5, seed=3)
    config = TrainConfig(
        epochs=1,
        batch_size=32,
        device="cpu",
        split="blocks",
        seed=6,
        blocks=1,
        widths=(4, 4, 4),
        patch_size=5,
        threads=1,
    )
    res = train_from_arrays(twin.predictors, twin.labels, twin.kge, config)
    split = res.split
    # The split is the one made from the config, and the network trained and tested on it.
    samples = P.select_samples(twin.predictors, twin.labels, twin.kge)
    again = P.training_split(samples, 0.3, "blocks", None, 6, RECIPES["default"].val_fraction)
    for part in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(split, part), getattr(again, part))
    assert len(split.train) == res.sizes["train_samples"] and len(split.val) == res.sizes["val_samples"]
    np.testing.assert_array_equal(split.samples.rows[split.test], res.test_rows)
    np.testing.assert_array_equal(split.samples.cols[split.test], res.test_cols)
    base = fit_baseline(twin.predictors, split, seed=6)
    np.testing.assert_array_equal(base.test_obs, res.test_obs)
    assert math.isfinite(base.test_r2) and base.test_r2 > 0.3


def test_the_report_sentence():
    assert baseline_sentence(0.85, 0.80) == (
        "The network beats a tree baseline by 0.050 (test R² 0.850 vs 0.800)."
    )
    close = baseline_sentence(0.824, 0.833)
    assert close.startswith(
        "The network does not beat a tree baseline: it trails it by 0.009 (test R² 0.824 vs 0.833). "
        "A gap under 0.02 is within what the choice of test cells moves"
    )
    assert baseline_sentence(math.nan, math.nan).startswith("No comparison")
    assert baseline_sentence(0.80, 0.83, "trees on each cell's predictors") == (
        "The network does not beat the better tree baseline (trees on each cell's predictors): "
        "it trails it by 0.030 (test R² 0.800 vs 0.830)."
    )  # a wider gap gets no excuse


def test_the_bar_is_the_better_of_the_per_cell_and_the_neighbourhood_trees():
    # A neighbourhood function: the trees with the means win.
    stack, labels = _neighbourhood_task()
    split = P.training_split(P.select_samples(stack, labels), 0.3, "random", seed=0, val_fraction=0.15)
    best = fit_best_baseline(stack, split, seed=0)
    assert best.name == "trees with neighbourhood means"
    assert best.test_r2["trees with neighbourhood means"] == fit_baseline(stack, split, seed=0).test_r2
    assert best.result.test_r2 == max(best.test_r2.values())
    # A function of each cell's own predictors with noisy neighbours: the means only add
    # features to overfit on, and the per-cell trees are at least as good.
    rng = np.random.default_rng(8)
    own = rng.normal(size=(2, 36, 36)).astype(np.float32)
    labels = (200 + 60 * np.sin(2 * own[0]) + 30 * own[1] ** 2).astype(np.float32)
    split = P.training_split(P.select_samples(own, labels), 0.3, "blocks", 6, seed=1, val_fraction=0.15)
    best = fit_best_baseline(own, split, seed=1)
    cell = fit_baseline(own, split, seed=1, sizes=())
    assert best.test_r2["trees on each cell's predictors"] == cell.test_r2
    assert best.result.test_r2 == max(best.test_r2.values()) >= cell.test_r2
    assert best.name == max(best.test_r2, key=best.test_r2.get)

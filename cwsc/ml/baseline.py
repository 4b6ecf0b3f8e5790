"""The tree baselines beside the network: gradient-boosted trees on each cell's predictors, and
on them with their neighbourhood means, fitted and scored on the network's own split; the
network is compared with the better of the two (:func:`fit_best_baseline`).

The features of a cell are its C predictors, then the mean of each predictor over the
3 x 3 and then the 11 x 11 cells around it (:data:`NEIGHBOURHOODS`), computed on the whole
grid, so a held-out cell sees its neighbours as a network patch does. The means count only
the valid (finite) values of the window that lie on the grid. The model is scikit-learn's
``HistGradientBoostingRegressor``, fitted on the split's training cells with early stopping
on its validation cells (the ones the network's early stopping watches), and scored with
:func:`cwsc.ml.metrics.r2_score` on its test cells, the function of the network's test R2.
Arrays follow :mod:`cwsc.ml.patches`: predictors float32 ``(C, rows, cols)``, NaN = nodata;
labels in mm.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from cwsc.ml.metrics import r2_score
from cwsc.ml.patches import TrainingSplit

log = logging.getLogger(__name__)

#: Sides (cells, odd) of the neighbourhoods whose means are features.
NEIGHBOURHOODS = (3, 11)

#: The boosting settings: small steps, with early stopping on the validation cells.
LEARNING_RATE = 0.05
MAX_ITERATIONS = 1000  # with validation cells: at most, early stopping ends it sooner
PATIENCE = 20  # iterations without a better validation loss before stopping
FIXED_ITERATIONS = 300  # without validation cells (the seed recipe holds none)


#: The two tree baselines, by the name the reports give them: name -> neighbourhood sizes.
BASELINES: dict[str, tuple[int, ...]] = {
    "trees on each cell's predictors": (),
    "trees with neighbourhood means": NEIGHBOURHOODS,
}


def neighbourhood_mean(band: np.ndarray, size: int) -> np.ndarray:
    """Mean of the valid values of ``band`` in the ``size`` x ``size`` window around each cell.

    band: ``(rows, cols)``, NaN = nodata; size: odd, in cells. Neighbours off the grid and
    NaN ones are left out of the mean (not filled); a cell with no valid value in its window
    gets NaN. Returns float32 ``(rows, cols)`` in the band's units. Sums in float64 over
    summed-area tables: one pass whatever the window.
    """
    if size < 1 or size % 2 == 0:
        raise ValueError(f"neighbourhood size {size} must be a positive odd number")
    r = size // 2
    valid = np.isfinite(band)
    values = np.where(valid, band, 0.0).astype(np.float64)

    def box_sum(a: np.ndarray) -> np.ndarray:
        # r + 1 zero rows/columns before (the table's leading zero), r after.
        table = np.pad(a, ((r + 1, r), (r + 1, r))).cumsum(0).cumsum(1)
        return table[size:, size:] - table[:-size, size:] - table[size:, :-size] + table[:-size, :-size]

    total, count = box_sum(values), box_sum(valid.astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0.5, total / np.maximum(count, 1.0), np.nan)
    return mean.astype(np.float32)


def baseline_features(
    predictors: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    sizes: Sequence[int] = NEIGHBOURHOODS,
) -> np.ndarray:
    """Features of the cells ``(rows, cols)``: float32 ``(N, C * (1 + len(sizes)))``.

    Columns: the C predictors of the cell, then for each size in ``sizes`` the C
    :func:`neighbourhood_mean` values (channel order within each group). The means are
    computed on the whole grid one channel at a time, so memory stays one band large.
    """
    c = predictors.shape[0]
    out = np.empty((len(rows), c * (1 + len(sizes))), np.float32)
    out[:, :c] = predictors[:, rows, cols].T
    for j, size in enumerate(sizes):
        for i in range(c):
            out[:, c * (1 + j) + i] = neighbourhood_mean(predictors[i], size)[rows, cols]
    return out


def feature_names(channels: Sequence[str], sizes: Sequence[int] = NEIGHBOURHOODS) -> list[str]:
    """Names of the :func:`baseline_features` columns."""
    return list(channels) + [f"{n} ({s} x {s} mean)" for s in sizes for n in channels]


@dataclass
class BaselineResult:
    """The tree baseline on one split: predictions and observations of its test cells in mm."""

    test_r2: float  # NaN without test cells (or with constant test labels)
    test_obs: np.ndarray  # (N_test,) float32, mm
    test_pred: np.ndarray  # (N_test,) float32, mm
    iterations: int  # boosting iterations kept
    seconds: float  # features and fit
    val_r2: float = math.nan  # on the validation cells (NaN without them): chooses without the test
    model: object = None  # the fitted HistGradientBoostingRegressor (cwsc.ml.trees exports it)


def fit_baseline(
    predictors: np.ndarray,
    split: TrainingSplit,
    seed: int = 0,
    sizes: Sequence[int] = NEIGHBOURHOODS,
) -> BaselineResult:
    """Fit the tree baseline on ``split.train``, stop early on ``split.val`` (a fixed
    :data:`FIXED_ITERATIONS` when it is empty), and score it on ``split.test``.

    predictors: float32 ``(C, rows, cols)`` (the network's, unscaled: trees need no
    scaling); ``split``: the network's (``TrainResult.split``). Deterministic for a seed
    (``random_state``: the bin thresholds' subsample on large samples).
    """
    from sklearn.ensemble import HistGradientBoostingRegressor

    t0 = time.perf_counter()
    s = split.samples
    x = baseline_features(predictors, s.rows, s.cols, sizes)
    y = s.labels.astype(np.float64)
    has_val = len(split.val) > 0
    model = HistGradientBoostingRegressor(
        learning_rate=LEARNING_RATE,
        max_iter=MAX_ITERATIONS if has_val else FIXED_ITERATIONS,
        early_stopping=has_val,
        n_iter_no_change=PATIENCE,
        random_state=seed,
    )
    if has_val:
        model.fit(x[split.train], y[split.train], X_val=x[split.val], y_val=y[split.val])
    else:
        model.fit(x[split.train], y[split.train])
    obs = s.labels[split.test].astype(np.float32)
    pred = model.predict(x[split.test]).astype(np.float32) if len(split.test) else np.zeros(0, np.float32)
    r2 = r2_score(obs, pred) if len(split.test) else math.nan
    val_r2 = r2_score(s.labels[split.val], model.predict(x[split.val])) if has_val else math.nan
    seconds = time.perf_counter() - t0
    log.info(
        f"tree baseline: test R2 {r2:.4g} after {model.n_iter_} boosting iterations "
        f"({x.shape[1]} features, {len(split.train)} training cells, {seconds:.1f} s)"
    )
    return BaselineResult(r2, obs, pred, int(model.n_iter_), seconds, float(val_r2), model)


@dataclass
class BestBaseline:
    """The better of the :data:`BASELINES` on a split (higher test R2), named."""

    name: str  # a key of BASELINES
    result: BaselineResult
    test_r2: dict[str, float]  # every baseline's test R2, by name
    fits: dict[str, BaselineResult] = field(default_factory=dict)  # every baseline, by name

    def chosen_on_validation(self) -> str | None:
        """The baseline with the higher validation R2 (the first of :data:`BASELINES` on a
        tie, as ``benchmarks/real_map.py`` picks it), or None without validation cells: the
        choice the shipped model makes without looking at the test cells."""
        scores = {n: f.val_r2 for n, f in self.fits.items() if math.isfinite(f.val_r2)}
        return max(scores, key=scores.get) if scores else None

    @property
    def seconds(self) -> float:
        return self.result.seconds


def fit_best_baseline(predictors: np.ndarray, split: TrainingSplit, seed: int = 0) -> BestBaseline:
    """Fit every baseline of :data:`BASELINES` on ``split`` (:func:`fit_baseline`) and keep
    the one with the higher test R2: the bar the network has to clear. On the real-map
    case the per-cell trees beat the neighbourhood trees on some splits and lose on others
    (docs/results.md), so neither alone is the bar. Without a test score the neighbourhood
    trees are kept."""
    fits = {name: fit_baseline(predictors, split, seed, sizes) for name, sizes in BASELINES.items()}
    scores = {name: f.test_r2 for name, f in fits.items()}
    finite = {name: r2 for name, r2 in scores.items() if math.isfinite(r2)}
    name = max(finite, key=finite.get) if finite else "trees with neighbourhood means"
    return BestBaseline(name, fits[name], scores, fits)

"""cwsc.ml.trees: the boosted trees exported as arrays predict what scikit-learn predicts."""

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor

from cwsc.ml.baseline import NEIGHBOURHOODS, baseline_features
from cwsc.ml.trees import TreeEnsemble, export_trees, predict_trees


def _grid(seed=0, shape=(40, 50), channels=3):
    """Predictors ``(C, rows, cols)`` with nodata holes, and labels that depend on a cell's
    own values and on its surroundings (so the neighbourhood trees split on the means)."""
    rng = np.random.default_rng(seed)
    data = rng.normal(0, 1, (channels, *shape)).astype(np.float32)
    data[0] += np.linspace(-2, 2, shape[1])[None, :]  # a smooth trend the means carry
    data[:, :4, :6] = np.nan  # a sea corner
    holes = rng.random(data.shape) < 0.08
    data[holes] = np.nan  # single channels missing: the trees route NaNs
    labels = 300 + 60 * np.nan_to_num(data[0]) - 30 * np.nan_to_num(data[1]) ** 2
    return data, labels.astype(np.float32)


@pytest.mark.parametrize("sizes", [(), NEIGHBOURHOODS], ids=["cell", "neighbourhood"])
def test_exported_trees_predict_what_scikit_learn_predicts_value_for_value(sizes):
    data, labels = _grid()
    rows, cols = np.nonzero(np.isfinite(data).any(axis=0))
    x = baseline_features(data, rows, cols, sizes)
    assert np.isnan(x).any()  # missing values reach the trees
    model = HistGradientBoostingRegressor(learning_rate=0.05, max_iter=80, random_state=0)
    model.fit(x[::2], labels[rows, cols][::2])
    trees = export_trees(model)
    assert trees.n_trees == model.n_iter_ and trees.n_features == x.shape[1]
    # Every cell, the ones not fitted on included; all-NaN rows go where each node says.
    x_all = np.vstack([x, np.full((3, x.shape[1]), np.nan, np.float32)])
    ours = predict_trees(trees, x_all)
    np.testing.assert_array_equal(ours, model.predict(x_all))  # bit for bit
    # The arrays round-trip (as the model file stores them) and a walk in small chunks agrees.
    back = TreeEnsemble.from_arrays(trees.arrays())
    np.testing.assert_array_equal(predict_trees(back, x_all[:100]), ours[:100])


def test_a_walk_in_chunks_equals_one_walk(monkeypatch):
    from cwsc.ml import trees as T

    data, labels = _grid(seed=1)
    rows, cols = np.nonzero(np.isfinite(data).all(axis=0))
    x = baseline_features(data, rows, cols, ())
    model = HistGradientBoostingRegressor(max_iter=30, random_state=0).fit(x, labels[rows, cols])
    trees = export_trees(model)
    whole = predict_trees(trees, x)
    monkeypatch.setattr(T, "CHUNK_STEPS", 7 * trees.n_trees)  # seven cells at a time
    np.testing.assert_array_equal(predict_trees(trees, x), whole)


def test_categorical_splits_are_refused():
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.integers(0, 4, 400), rng.normal(size=400)]).astype(np.float64)
    y = 10.0 * (x[:, 0] == 2) + x[:, 1]
    model = HistGradientBoostingRegressor(max_iter=10, categorical_features=[0]).fit(x, y)
    with pytest.raises(ValueError, match="categorical"):
        export_trees(model)


def test_damaged_arrays_are_refused():
    data, labels = _grid(seed=2)
    rows, cols = np.nonzero(np.isfinite(data).all(axis=0))
    x = baseline_features(data, rows, cols, ())
    trees = export_trees(HistGradientBoostingRegressor(max_iter=5).fit(x, labels[rows, cols]))
    a = trees.arrays()
    with pytest.raises(ValueError, match="children point outside"):
        TreeEnsemble.from_arrays({**a, "left": a["left"] + len(a["left"])})
    with pytest.raises(ValueError, match="NaN or infinite"):
        TreeEnsemble.from_arrays({**a, "value": np.full_like(a["value"], np.nan)})
    with pytest.raises(ValueError, match="differ in length"):
        TreeEnsemble.from_arrays({**a, "threshold": a["threshold"][:-1]})
    with pytest.raises(ValueError, match="take 3 features"):
        predict_trees(trees, np.zeros((4, 5)))

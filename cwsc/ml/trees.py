"""Gradient-boosted trees as plain arrays: exported from a fitted scikit-learn
``HistGradientBoostingRegressor`` and predicted with NumPy.

The model file keeps the tree baseline ``train`` averages with the network
(:mod:`cwsc.ml.modelfile`). Pickling the scikit-learn object would make the file unsafe to open
(``torch.load(weights_only=True)`` refuses code) and tie it to one scikit-learn version, so the
trees travel as arrays of numbers: per node the feature it splits on, the threshold, where a
missing value goes, its two children, whether it is a leaf and the leaf's value (the learning
rate already applied), plus the constant the boosting starts from. :func:`predict_trees`
walks them exactly as scikit-learn does (a value ``<=`` the threshold goes left; NaN goes
where the node says) and sums the trees in the same order, so its predictions equal
``model.predict`` value for value.

Shapes: ``N`` cells, ``F`` features, ``T`` trees, ``M`` nodes of all trees together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The share of the trees in the map of a model that carries them (the network's is the rest):
#: the equal weights ``benchmarks/real_map.py`` scored as ``net+trees``.
TREES_WEIGHT = 0.5

#: The node fields kept, by the names of scikit-learn's predictor records.
FIELDS = ("feature_idx", "num_threshold", "missing_go_to_left", "left", "right", "is_leaf", "value")


@dataclass
class TreeEnsemble:
    """Boosted regression trees as flat arrays; node ``j`` of tree ``t`` is ``offsets[t] + j``.

    Children (``left``, ``right``) are global node numbers (the tree's offset added); a leaf's
    children are itself, so walking on from a leaf stays there.
    """

    feature: np.ndarray  # (M,) int64: the feature column a node splits on (0 for a leaf)
    threshold: np.ndarray  # (M,) float64: go left when the value is <= it
    missing_left: np.ndarray  # (M,) bool: a NaN value goes left
    left: np.ndarray  # (M,) int64
    right: np.ndarray  # (M,) int64
    is_leaf: np.ndarray  # (M,) bool
    value: np.ndarray  # (M,) float64: a leaf's contribution in label units (mm)
    offsets: np.ndarray  # (T,) int64: each tree's root
    baseline: float  # the prediction before any tree (mm)
    n_features: int  # F

    @property
    def n_trees(self) -> int:
        return len(self.offsets)

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays to store (numbers only); :meth:`from_arrays` reads them back."""
        return {
            "feature": self.feature,
            "threshold": self.threshold,
            "missing_left": self.missing_left,
            "left": self.left,
            "right": self.right,
            "is_leaf": self.is_leaf,
            "value": self.value,
            "offsets": self.offsets,
            "baseline": np.array([self.baseline], np.float64),
            "n_features": np.array([self.n_features], np.int64),
        }

    @classmethod
    def from_arrays(cls, a: dict) -> TreeEnsemble:
        """From :meth:`arrays` (NumPy arrays or CPU tensors); checks that every child and
        feature number lies within the arrays, so a damaged file fails here, not mid-map."""
        get = {k: np.asarray(v) for k, v in a.items()}
        trees = cls(
            feature=get["feature"].astype(np.int64),
            threshold=get["threshold"].astype(np.float64),
            missing_left=get["missing_left"].astype(bool),
            left=get["left"].astype(np.int64),
            right=get["right"].astype(np.int64),
            is_leaf=get["is_leaf"].astype(bool),
            value=get["value"].astype(np.float64),
            offsets=get["offsets"].astype(np.int64),
            baseline=float(get["baseline"].reshape(-1)[0]),
            n_features=int(get["n_features"].reshape(-1)[0]),
        )
        m = len(trees.feature)
        if any(len(x) != m for x in (trees.threshold, trees.missing_left, trees.left, trees.right)) or any(
            len(x) != m for x in (trees.is_leaf, trees.value)
        ):
            raise ValueError("the trees' node arrays differ in length")
        for name, idx in (("children", trees.left), ("children", trees.right), ("roots", trees.offsets)):
            if len(idx) and (idx.min() < 0 or idx.max() >= m):
                raise ValueError(f"the trees' {name} point outside their {m} nodes")
        inner = ~trees.is_leaf
        if inner.any() and (trees.feature[inner].min() < 0 or trees.feature[inner].max() >= trees.n_features):
            raise ValueError(f"the trees split on a feature outside their {trees.n_features}")
        if not (np.isfinite(trees.value).all() and np.isfinite(trees.baseline)):
            raise ValueError("the trees' values hold NaN or infinite numbers")
        return trees


def export_trees(model) -> TreeEnsemble:
    """The trees of a fitted ``sklearn.ensemble.HistGradientBoostingRegressor`` (one output) as
    a :class:`TreeEnsemble`. Reads the fitted predictors' node records (``model._predictors``:
    one list of one predictor per boosting iteration) and ``model._baseline_prediction``.

    Categorical splits (a bitset per node) are not exported: the toolkit never declares
    categorical features, and a model that has them is refused with a ``ValueError``.
    """
    if getattr(model, "is_categorical_", None) is not None and np.any(model.is_categorical_):
        raise ValueError(
            "the tree model has categorical features; only numeric splits can be stored in a model file"
        )
    parts = {k: [] for k in FIELDS}
    offsets = []
    start = 0
    for iteration in model._predictors:
        if len(iteration) != 1:
            raise ValueError(f"the tree model predicts {len(iteration)} outputs; a CWSC model predicts one")
        nodes = iteration[0].nodes
        if np.any(nodes["is_categorical"]):
            raise ValueError(
                "the tree model splits on a categorical feature; only numeric splits can be "
                "stored in a model file"
            )
        offsets.append(start)
        for k in FIELDS:
            parts[k].append(np.asarray(nodes[k]))
        start += len(nodes)
    cat = {k: np.concatenate(v) if v else np.zeros(0) for k, v in parts.items()}
    shift = np.repeat(np.asarray(offsets, np.int64), [len(p) for p in parts["left"]])
    is_leaf = cat["is_leaf"].astype(bool)
    own = np.arange(start, dtype=np.int64)
    # A leaf's children are itself (scikit-learn leaves them 0): the walk stays on a leaf.
    left = np.where(is_leaf, own, cat["left"].astype(np.int64) + shift)
    right = np.where(is_leaf, own, cat["right"].astype(np.int64) + shift)
    baseline = np.asarray(model._baseline_prediction, np.float64).reshape(-1)
    return TreeEnsemble(
        feature=np.where(is_leaf, 0, cat["feature_idx"].astype(np.int64)),
        threshold=cat["num_threshold"].astype(np.float64),
        missing_left=cat["missing_go_to_left"].astype(bool),
        left=left,
        right=right,
        is_leaf=is_leaf,
        value=cat["value"].astype(np.float64),
        offsets=np.asarray(offsets, np.int64),
        baseline=float(baseline[0]),
        n_features=int(model.n_features_in_),
    )


#: Cells x trees walked at once: a walk holds four int64 arrays of this length and their
#: temporaries, some 60 MB.
CHUNK_STEPS = 2**20


def predict_trees(trees: TreeEnsemble, x: np.ndarray) -> np.ndarray:
    """Predictions of ``trees`` for the rows of ``x``.

    x: ``(N, F)`` features (any float dtype, compared in float64 as scikit-learn does;
    NaN = missing). Returns float64 ``(N,)`` in the labels' units (mm): the baseline plus
    every tree's leaf value, added tree after tree (scikit-learn's order, so the sums are the
    same to the last bit). All trees walk together, one level per step, cells in chunks.
    """
    if x.ndim != 2 or x.shape[1] != trees.n_features:
        raise ValueError(f"the trees take {trees.n_features} features per cell, given shape {x.shape}")
    n, t, f = x.shape[0], trees.n_trees, trees.n_features
    out = np.full(n, trees.baseline, np.float64)
    if n == 0 or t == 0:
        return out
    chunk = max(1, CHUNK_STEPS // t)
    for i in range(0, n, chunk):
        xc = np.asarray(x[i : i + chunk], np.float64)  # a chunk at a time: float64 stays small
        m = len(xc)
        values = xc.ravel()
        # One walk per (tree, cell), flat as tree * m + cell; those that reach a leaf leave
        # the active set, so each level costs only the walks still inside a tree.
        walk = np.arange(t * m)
        node = np.repeat(trees.offsets, m)
        row = np.tile(np.arange(m) * f, t)  # the cell's first value in ``values``
        leaf_of = np.empty(t * m, np.int64)
        while True:
            done = trees.is_leaf[node]
            if done.any():
                leaf_of[walk[done]] = node[done]
                going = ~done
                walk, node, row = walk[going], node[going], row[going]
                if not walk.size:
                    break
            v = values[row + trees.feature[node]]
            go_left = np.where(np.isnan(v), trees.missing_left[node], v <= trees.threshold[node])
            node = np.where(go_left, trees.left[node], trees.right[node])
        leaf_values = trees.value[leaf_of].reshape(t, m)
        acc = out[i : i + m]
        for k in range(t):  # tree after tree, as scikit-learn adds them
            acc += leaf_values[k]
    return out
    chunk = max(1, CHUNK_STEPS // t)
    for i in range(0, n, chunk):
        xc = np.asarray(x[i : i + chunk], np.float64)  # a chunk at a time: float64 stays small
        m = len(xc)
        node = np.broadcast_to(trees.offsets[:, None], (t, m)).copy()  # (T, m)
        cell = np.broadcast_to(np.arange(m)[None, :], (t, m))
        while True:
            inner = ~trees.is_leaf[node]
            if not inner.any():
                break
            node_in = node[inner]
            v = xc[cell[inner], trees.feature[node_in]]
            go_left = np.where(np.isnan(v), trees.missing_left[node_in], v <= trees.threshold[node_in])
            node[inner] = np.where(go_left, trees.left[node_in], trees.right[node_in])
        leaf_values = trees.value[node]  # (T, m)
        acc = out[i : i + m]
        for k in range(t):  # tree after tree, as scikit-learn adds them
            acc += leaf_values[k]
    return out

"""The network against the trees on the real-map case, on many splits (issue 34).

    python -m benchmarks real_map --case DIR [--splits ...] [--learners ...] [--quick]
                                  [--out FILE.jsonl] [--preds DIR] [--epochs N] [--table FILE.jsonl ...]

``--case``: the real-map case folder described on the results page (docs/results.md, 'The real-map case') (``DIR`` or ``DIR/case``:
``predictors/*.tif`` and ``xie_cwsc.tif``, 16 public predictors and the published CWSC map at
0.5 degree); ``demo`` (the masked labels and predictors ``make demo`` leaves in
``demo-output/``), or a folder laid out as that one (``cwsc_labels_masked.tif`` and
``data/predictors/*.tif``: ``cwsc demo-data``, ``calibrate`` and ``mask`` at seed 42); ``twin`` (``make_twin((60, 60), 13 channels, seed 0)``). The repository never
holds the real case and the tests do not need it.

Splits (:func:`block_splits`, :func:`region_splits`): ``blocks0`` .. ``blocks4``: 30 % of the
10 x 10-cell blocks held out, seeds 0-4; and held-out regions, the way a map is used where no
labels exist: on a grid in degrees three latitude bands (``tropics``, ``north`` of 50 N,
``south`` of 23.5 S) and three continents (``americas``, ``africa``, ``australia``), boxes in
:data:`GEOGRAPHIC_REGIONS`; on the twin, whose grid is not in degrees, the north, middle and
south third of its rows. In every split the validation cells (early stopping of the network and
of the trees) are 15 % of the training cells, drawn in 10 x 10 blocks.

Learners (:data:`LEARNERS`), every network with the default recipe as it is now (every epoch
of the one-cycle schedule, the weights best on validation kept, the batch growing with many
training cells: 256 on the real map): ``trees-cell`` (the toolkit's gradient-boosted trees,
:func:`cwsc.ml.baseline.fit_baseline`, on each cell's predictors), ``trees-neighbourhood``
(the same with the 3 x 3 and 11 x 11 neighbourhood means), ``network`` (11 x 11 patches, the
default patch size until 0.2.0), ``patch5`` (5 x 5 patches: ``train --no-position``),
``patch5-position`` (and the sine and cosine of each cell's latitude and longitude as four
channels: the network ``train`` ships), and the candidates: ``patch7``, ``minmax`` (the seed's
per-patch min-max scaling instead of per-channel standardisation), ``context`` (the 31 x 31
and 91 x 91 neighbourhood means as extra channels), ``patch5-context11`` (the 11 x 11 means),
``patch5-context11-position``, ``position`` (on 11 x 11 patches), ``patch5-wide`` (widths
32/64/128), ``patch5-residual`` (the neighbourhood trees plus a network fitted to their
out-of-fold residuals), ``seeds3`` (an ensemble of three seeds), ``tta`` (``network``
averaged over the 8 rotations and reflections of each test patch, no retraining); and
``<network>+trees``: the mean of that network and the better of the two trees on the
validation cells. ``shipped`` is what ``train`` ships by default on the case:
``patch5-position+trees`` with 10,000 labelled cells or more (the real map), else
``patch5+trees`` (the twin, the demo region). The table adds ``best-tree``: per split the
better of the two trees on test R2, the bar of the issue. Rows whose learner ends in ``@0.2``
(in result files of earlier runs) were measured with 0.2.0's recipe (early stopping after 10
epochs without progress, batch 64).

One JSON line per split and learner goes to stdout and ``--out`` (appended; a split and
learner already in it is not run again, so a long run can be resumed); ``--preds DIR`` keeps
each learner's test predictions (``<case>_<split>_<learner>.npy``, float32 mm in the order of
the split's test cells) and reuses them, so an ensemble of learners already run costs no fit; the table at the end
gives per learner the mean test R2, its spread (standard deviation over splits), the worst
split, the mean margin over the best tree on the same splits and the mean seconds.
``--table FILE ...`` prints the table of result files without running anything. ``--quick``:
two block splits, one region, the trees and the network with at most 5 epochs.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BLOCK = 10  # cells a side of the blocks held out (and of the validation blocks)
TEST_FRACTION = 0.3
VAL_FRACTION = 0.15  # the default recipe's share of the training cells for validation
BLOCK_SEEDS = (0, 1, 2, 3, 4)

#: Held-out regions on a grid in degrees: name -> (south, north, west, east) in degrees.
GEOGRAPHIC_REGIONS: dict[str, tuple[float, float, float, float]] = {
    "tropics": (-23.5, 23.5, -180.0, 180.0),
    "north": (50.0, 90.0, -180.0, 180.0),
    "south": (-90.0, -23.5, -180.0, 180.0),
    "americas": (-90.0, 90.0, -180.0, -30.0),
    "africa": (-35.0, 37.0, -20.0, 55.0),
    "australia": (-45.0, -10.0, 110.0, 155.0),
}
#: Held-out regions on a grid not in degrees: thirds of the labelled rows, north first.
ROW_THIRDS = ("north-third", "middle-third", "south-third")

TREES = ("trees-cell", "trees-neighbourhood")
LEARNERS = (
    *TREES,
    "network",
    "patch5",
    "patch7",
    "minmax",
    "context",
    "position",
    "seeds3",
    "tta",
    "patch5-position",
    "patch5-context11",
    "patch5-context11-position",
    "patch5-wide",
    "patch5-residual",
    "net+trees",
    "patch5+trees",
    "patch5-position+trees",
    "patch5-context11+trees",
    "patch5-context11-position+trees",
    "patch5-wide+trees",
    "shipped",
)
#: Ensembles: learner -> the network it averages with the tree chosen on the validation cells.
ENSEMBLES = {
    "net+trees": "network",
    "patch5+trees": "patch5",
    "patch5-position+trees": "patch5-position",
    "patch5-context11+trees": "patch5-context11",
    "patch5-context11-position+trees": "patch5-context11-position",
    "patch5-wide+trees": "patch5-wide",
}
BEST_TREE = "best-tree"


# ---------------------------------------------------------------------------------------
# Splits
# ---------------------------------------------------------------------------------------


def block_splits(samples, seeds: Iterable[int] = BLOCK_SEEDS, block: int = BLOCK) -> dict:
    """``{"blocks<seed>": TrainingSplit}``: for each seed, :data:`TEST_FRACTION` of the
    samples held out in whole ``block`` x ``block`` blocks, and :data:`VAL_FRACTION` of the
    rest for validation in blocks too (:func:`cwsc.ml.patches.training_split`, as ``train``
    with ``SPLIT blocks`` draws it)."""
    from cwsc.ml import patches as P

    return {
        f"blocks{s}": P.training_split(samples, TEST_FRACTION, "blocks", block, s, VAL_FRACTION)
        for s in seeds
    }


def held_out_split(samples, held: np.ndarray, seed: int = 0, block: int = BLOCK):
    """A :class:`~cwsc.ml.patches.TrainingSplit` testing on the samples where ``held``
    (bool ``(N,)``) is true; validation: :data:`VAL_FRACTION` of the others in blocks."""
    from cwsc.ml import patches as P

    test = np.nonzero(held)[0]
    rest = np.nonzero(~held)[0]
    sub_tr, sub_val = P.split_samples(
        samples.rows[rest], samples.cols[rest], VAL_FRACTION, "blocks", block, seed + 1
    )
    return P.TrainingSplit(samples, rest[sub_tr], rest[sub_val], test)


def region_masks(samples, latitude: np.ndarray | None, longitude: np.ndarray | None) -> dict:
    """``{region: bool (N,)}``: which samples lie in each held-out region.

    latitude: degrees of each grid row ``(rows,)``; longitude: of each column ``(cols,)``;
    both None for a grid not in degrees. A region with no sample, or with every sample, is
    left out (nothing to test or to train on); when fewer than three of
    :data:`GEOGRAPHIC_REGIONS` are left (a region smaller than a continent, such as the demo's),
    or off a grid in degrees, the regions are :data:`ROW_THIRDS`: latitude bands of the
    samples' rows.
    """
    n = len(samples.rows)
    out = {}
    if latitude is not None and longitude is not None:
        lat, lon = latitude[samples.rows], longitude[samples.cols]
        for name, (s, nth, w, e) in GEOGRAPHIC_REGIONS.items():
            held = (lat >= s) & (lat < nth) & (lon >= w) & (lon < e)
            if 0 < int(held.sum()) < n:
                out[name] = held
    if len(out) >= 3:
        return out
    edges = np.quantile(samples.rows, [1 / 3, 2 / 3])
    third = np.searchsorted(edges, samples.rows, side="right")
    return {name: third == k for k, name in enumerate(ROW_THIRDS)}


def region_splits(samples, latitude=None, longitude=None, seed: int = 0) -> dict:
    """``{region: TrainingSplit}`` holding out each region of :func:`region_masks` whole."""
    return {
        name: held_out_split(samples, held, seed)
        for name, held in region_masks(samples, latitude, longitude).items()
    }


# ---------------------------------------------------------------------------------------
# The case
# ---------------------------------------------------------------------------------------


@dataclass
class Case:
    """Predictors float32 ``(C, rows, cols)`` and labels ``(rows, cols)`` in mm (NaN nodata);
    ``latitude``/``longitude`` of the rows/columns in degrees, None off a geographic grid."""

    name: str
    predictors: np.ndarray
    labels: np.ndarray
    latitude: np.ndarray | None
    longitude: np.ndarray | None


def load_case(case: str) -> Case:
    from cwsc.ml import patches as P

    if case == "twin":
        from cwsc.synthetic.twin import make_twin

        t = make_twin((60, 60), channels=13, seed=0)
        labels = np.where(np.isfinite(t.kge) & (t.kge > 0), t.labels, np.nan).astype(np.float32)
        return Case("twin", t.predictors, labels, None, None)
    folder = ROOT / "demo-output" if case == "demo" else Path(case).expanduser()
    if (folder / "cwsc_labels_masked.tif").exists():  # a make demo output (or the same steps)
        name = "demo"
        label_path, pred_dir = folder / "cwsc_labels_masked.tif", folder / "data" / "predictors"
    else:
        name = "real-map"
        if (folder / "case").is_dir():
            folder = folder / "case"
        label_path, pred_dir = folder / "xie_cwsc.tif", folder / "predictors"
    if not label_path.exists():
        raise SystemExit(f"--case: no labels at '{label_path}' (build the case, or run make demo)")
    labels, grid = P.read_single_band(str(label_path), "LABELS")
    paths = sorted(str(p) for p in pred_dir.glob("*.tif"))
    stack = P.read_predictors(paths, grid)
    lat = lon = None
    crs = grid.rasterio_crs()
    if crs is not None and crs.is_geographic:
        a, _, c, _, e, f = grid.transform[:6]
        lat = f + e * (np.arange(grid.height) + 0.5)
        lon = c + a * (np.arange(grid.width) + 0.5)
    return Case(name, stack.data, labels, lat, lon)


# ---------------------------------------------------------------------------------------
# Learners
# ---------------------------------------------------------------------------------------


def extra_channels(case: Case, kind: str) -> np.ndarray:
    """The predictors with the candidate's extra channels appended (float32 ``(C', rows, cols)``):
    ``context`` the 31 x 31 and 91 x 91 neighbourhood means, ``context11`` the 11 x 11 means
    (the neighbourhood trees' widest), ``position`` sine and cosine of latitude and longitude;
    ``context11-position`` both."""
    from cwsc.ml.baseline import neighbourhood_mean

    p = case.predictors
    if kind == "context11-position":
        return extra_channels(
            Case(case.name, extra_channels(case, "context11"), case.labels, case.latitude, case.longitude),
            "position",
        )
    if kind in ("context", "context11"):
        sizes = (31, 91) if kind == "context" else (11,)
        extra = [neighbourhood_mean(p[i], s) for s in sizes for i in range(p.shape[0])]
    else:  # position: sine and cosine of latitude and longitude (the twin: where write_twin puts it)
        h, w = p.shape[1:]
        lat = case.latitude if case.latitude is not None else 50.0 - 0.5 * (np.arange(h) + 0.5)
        lon = case.longitude if case.longitude is not None else 10.0 + 0.5 * (np.arange(w) + 0.5)
        la, lo = np.deg2rad(lat)[:, None] * np.ones((1, w)), np.ones((h, 1)) * np.deg2rad(lon)[None, :]
        extra = [np.sin(la), np.cos(la), np.sin(lo), np.cos(lo)]
    return np.concatenate([p, np.stack(extra).astype(np.float32)], axis=0)


def tta_predictions(result, predictors: np.ndarray, patch: int) -> np.ndarray:
    """The trained ensemble's test predictions (mm) averaged over the 8 symmetries of the
    square, patch by patch: float32 ``(N_test,)``."""
    import torch

    from cwsc.ml import patches as P
    from cwsc.ml.network import build_network
    from cwsc.ml.training import predict_scaled

    split, sc = result.split, result.scaling
    padded = P.pad_block(predictors.copy(), sc, patch // 2)
    x = torch.from_numpy(
        P.extract_patches(
            padded, split.samples.rows[split.test], split.samples.cols[split.test], patch, sc.kind
        )
    )
    net = build_network(result.network)
    dev = torch.device("cpu")
    preds = []
    for state in result.members:
        net.load_state_dict(state)
        for k in range(8):
            xk = x.flip(3) if k & 4 else x
            xk = torch.rot90(xk, k & 3, dims=(2, 3)).contiguous() if k & 3 else xk
            preds.append(sc.unscale_labels(predict_scaled(net, xk, dev)))
    return np.mean(preds, axis=0).astype(np.float32)


def shipped_network(case: Case) -> str:
    """The network ``train`` ships on ``case`` with its defaults: with the position channels
    when the case has :data:`cwsc.ml.options.POSITION_MIN_CELLS` labelled cells or more."""
    from cwsc.ml.options import POSITION_MIN_CELLS

    cells = int((np.isfinite(case.labels) & np.isfinite(case.predictors).all(axis=0)).sum())
    return "patch5-position" if cells >= POSITION_MIN_CELLS else "patch5"


def run_split(
    case: Case,
    split,
    learners: Sequence[str],
    epochs: int | None,
    seed: int,
    preds: Path | None = None,
    split_name: str = "",
) -> Iterable[dict]:
    """Fit and score each learner on ``split``: yields ``{"learner", "test_r2", "seconds", ...}``.

    preds: a folder keeping each learner's test predictions (and the fit's seconds), reused
    by the ensembles and by a later run instead of fitting again."""
    from cwsc.ml.baseline import NEIGHBOURHOODS, baseline_features, fit_baseline
    from cwsc.ml.metrics import r2_score
    from cwsc.ml.training import RECIPES, TrainConfig, train_from_arrays

    obs = split.samples.labels[split.test]
    trees, networks = {}, {}

    def kept(learner: str) -> Path | None:
        return preds / f"{case.name}_{split_name}_{learner}.npy" if preds else None

    def keep(learner: str, pred: np.ndarray, seconds: float, **extra) -> None:
        if preds:
            preds.mkdir(parents=True, exist_ok=True)
            np.save(kept(learner), np.asarray(pred, np.float32))
            kept(learner).with_suffix(".json").write_text(json.dumps({"seconds": seconds, **extra}))

    def stored(learner: str):
        """(test predictions, seconds, extra) of a learner already run, or None."""
        p = kept(learner)
        if p is None or not p.exists() or not p.with_suffix(".json").exists():
            return None
        meta = json.loads(p.with_suffix(".json").read_text())
        return np.load(p), float(meta.pop("seconds")), meta

    def tree(name: str):
        if name not in trees:
            trees[name] = fit_baseline(
                case.predictors, split, seed, sizes=() if name == "trees-cell" else NEIGHBOURHOODS
            )
            t = trees[name]
            keep(name, t.test_pred, t.seconds, val_r2=t.val_r2, iterations=t.iterations)
        return trees[name]

    def chosen_tree():
        """(test predictions, seconds, name) of the tree better on the validation cells."""
        got = {}
        for name in TREES:
            s = stored(name)
            if s is None:
                t = tree(name)
                s = (t.test_pred, t.seconds, {"val_r2": t.val_r2})
            got[name] = s
        best = max(TREES, key=lambda n: got[n][2].get("val_r2", -math.inf))
        return got[best][0], sum(g[1] for g in got.values()), best

    def network_pred(name: str):
        """(test predictions, seconds, extra) of a network learner: stored, or fitted."""
        s = stored(name)
        if s is not None:
            return s
        res, seconds, _ = network(name)
        return res.test_pred, seconds, {"epochs_run": res.epochs_run}

    def residual_pred():
        """The neighbourhood trees' prediction plus a network fitted to their out-of-fold
        residuals on the training cells (5 folds of 10 x 10 blocks)."""
        from cwsc.ml import patches as P

        s = split.samples
        t0 = time.perf_counter()
        full = fit_baseline(case.predictors, split, seed, sizes=NEIGHBOURHOODS)
        feats = baseline_features(case.predictors, s.rows, s.cols, NEIGHBOURHOODS)
        t_all = full.model.predict(feats).astype(np.float32)
        rng = np.random.default_rng(seed)
        blocks = (s.rows[split.train] // BLOCK) * 100003 + s.cols[split.train] // BLOCK
        ub, inv = np.unique(blocks, return_inverse=True)
        fold = rng.integers(0, 5, len(ub))[inv]
        for f in range(5):
            inner = P.TrainingSplit(s, split.train[fold != f], split.val, split.train[fold == f])
            t_all[split.train[fold == f]] = fit_baseline(
                case.predictors, inner, seed, NEIGHBOURHOODS
            ).test_pred
        resid = (s.labels - t_all).astype(np.float32)
        grid = np.full(case.labels.shape, np.nan, np.float32)
        grid[s.rows, s.cols] = resid
        rsplit = P.TrainingSplit(
            P.Samples(s.rows, s.cols, resid, s.skipped, s.masked), split.train, split.val, split.test
        )
        config = TrainConfig(patch_size=5, epochs=epochs, seed=seed, device="cpu")
        res = train_from_arrays(case.predictors, grid, None, config, split=rsplit)
        pred = t_all[split.test] + res.test_pred
        seconds = time.perf_counter() - t0
        keep("patch5-residual", pred, seconds, epochs_run=res.epochs_run)
        return pred, seconds, {"epochs_run": res.epochs_run}

    def network(name: str):
        if name in networks:
            return networks[name]
        predictors = case.predictors
        options: dict = {"patch_size": 11}
        if name in ("patch5", "patch7"):
            options["patch_size"] = int(name[5:])
        elif name == "minmax":
            RECIPES["minmax"] = replace(RECIPES["default"], name="minmax", scaling="patch_minmax")
            options["recipe"] = "minmax"
        elif name in ("context", "position"):
            predictors = extra_channels(case, name)
        elif name == "patch5-wide":  # twice the widths: a network sized for 40,000 cells
            options.update(patch_size=5, widths=(32, 64, 128))
        elif name.startswith("patch5-"):
            options["patch_size"] = 5
            predictors = extra_channels(case, name[len("patch5-") :])
        elif name == "seeds3":
            options["ensemble"] = 3
        config = TrainConfig(**options, epochs=epochs, seed=seed, device="cpu")
        t0 = time.perf_counter()
        res = train_from_arrays(predictors, case.labels, None, config, split=split)
        networks[name] = (res, time.perf_counter() - t0, predictors)
        keep(name, res.test_pred, networks[name][1], epochs_run=res.epochs_run)
        return networks[name]

    for learner in learners:
        t0 = time.perf_counter()
        extra: dict = {}
        if learner in TREES:
            res = tree(learner)
            r2, seconds = res.test_r2, res.seconds
            extra = {"iterations": res.iterations, "val_r2": res.val_r2}
        elif learner == "tta":
            res, fit_seconds, predictors = network("network")
            pred = tta_predictions(res, predictors, 11)
            r2, seconds = r2_score(obs, pred), fit_seconds + time.perf_counter() - t0
        elif learner == "patch5-residual":
            got = stored(learner) or residual_pred()
            r2, seconds, extra = r2_score(obs, got[0]), got[1], got[2]
        elif learner in ENSEMBLES or learner == "shipped":
            net_pred, net_seconds, _ = network_pred(ENSEMBLES.get(learner) or shipped_network(case))
            tree_pred, tree_seconds, picked = chosen_tree()
            r2 = r2_score(obs, 0.5 * (net_pred + tree_pred))
            seconds, extra = net_seconds + tree_seconds, {"tree": picked}
        else:
            pred, seconds, extra = network_pred(learner)
            r2 = r2_score(obs, pred)
        yield {"learner": learner, "test_r2": float(r2), "seconds": round(float(seconds), 1), **extra}


# ---------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------


def split_kind(name: str) -> str:
    """``blocks`` for a block split, ``regions`` for a held-out region."""
    return "blocks" if name.startswith("blocks") else "regions"


def summarise(rows: Sequence[dict]) -> list[dict]:
    """Per case, kind of split (:func:`split_kind`) and learner: splits, mean, spread
    (population standard deviation), worst split of test R2, mean margin over the best tree on
    the same splits, mean seconds. Adds the ``best-tree`` learner: per split the better of
    :data:`TREES` (where both ran)."""
    by: dict[tuple, dict[str, dict]] = {}
    for r in rows:
        by.setdefault((r["case"], split_kind(r["split"]), r["learner"]), {})[r["split"]] = r
    for case, kind in {(c, k) for c, k, _ in by}:
        cell, nb = by.get((case, kind, TREES[0]), {}), by.get((case, kind, TREES[1]), {})
        best = {}
        for s in set(cell) & set(nb):
            a, b = cell[s], nb[s]
            pick = a if a["test_r2"] >= b["test_r2"] else b
            best[s] = {**pick, "learner": BEST_TREE, "picked": pick["learner"]}
        if best:
            by[(case, kind, BEST_TREE)] = best
    table = []
    for (case, kind, learner), splits in sorted(by.items()):
        r2 = np.array([splits[s]["test_r2"] for s in sorted(splits)])
        worst = min(splits, key=lambda s: splits[s]["test_r2"])
        best = by.get((case, kind, BEST_TREE), {})
        common = [s for s in splits if s in best]
        margin = (
            float(np.mean([splits[s]["test_r2"] - best[s]["test_r2"] for s in common]))
            if common
            else math.nan
        )
        table.append(
            {
                "case": case,
                "kind": kind,
                "learner": learner,
                "splits": len(splits),
                "mean": float(r2.mean()),
                "spread": float(r2.std()),
                "worst": float(splits[worst]["test_r2"]),
                "worst_split": worst,
                "vs_best_tree": margin,
                "seconds": float(np.mean([splits[s]["seconds"] for s in splits])),
            }
        )
    return table


def format_table(table: Sequence[dict]) -> str:
    lines = [
        "| case | splits | learner | n | mean test R2 | spread (sd) | worst split | vs best tree | seconds |",
        "|---|---|---|---:|---:|---:|---|---:|---:|",
    ]
    for t in table:
        lines.append(
            f"| {t['case']} | {t['kind']} | {t['learner']} | {t['splits']} | {t['mean']:.3f} | {t['spread']:.3f} | "
            f"{t['worst']:.3f} ({t['worst_split']}) | {t['vs_best_tree']:+.3f} | {t['seconds']:.0f} |"
        )
    return "\n".join(lines)


def read_rows(paths: Iterable[str | Path]) -> list[dict]:
    rows = []
    for p in paths:
        p = Path(p)
        if p.exists():
            rows += [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
    return rows


def main(argv: Sequence[str] | None = None, emit: Callable[[str], None] = print) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks real_map", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--case", help="the real-map case folder, or 'demo' or 'twin'")
    parser.add_argument("--splits", help="comma-separated split names (default: all)")
    parser.add_argument("--learners", help=f"comma-separated, of {', '.join(LEARNERS)} (default: all)")
    parser.add_argument(
        "--epochs", type=int, help="at most this many epochs per network (default: the recipe's)"
    )
    parser.add_argument("--seed", type=int, default=0, help="the learners' seed (the splits have their own)")
    parser.add_argument(
        "--out", help="append one JSON line per split and learner to this file (and resume from it)"
    )
    parser.add_argument(
        "--preds", help="keep each learner's test predictions in this folder (and reuse them)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="two block splits, one region, trees and a 5-epoch network"
    )
    parser.add_argument(
        "--table", nargs="+", metavar="FILE", help="print the table of these result files and stop"
    )
    args = parser.parse_args(argv)
    if args.table:
        emit(format_table(summarise(read_rows(args.table))))
        return 0
    if not args.case:
        parser.error("--case is required (or --table)")

    from cwsc.machine.devices import prepare_process

    prepare_process()  # before torch loads
    from cwsc.ml import patches as P

    case = load_case(args.case)
    samples = P.select_samples(case.predictors, case.labels)
    splits = {**block_splits(samples), **region_splits(samples, case.latitude, case.longitude)}
    learners = list(LEARNERS)
    epochs = args.epochs
    if args.quick:
        regions = [k for k in splits if not k.startswith("blocks")]
        splits = {k: splits[k] for k in ("blocks0", "blocks1", *regions[:1])}
        learners, epochs = [*TREES, "network"], min(epochs or 5, 5)
    if args.splits:
        wanted = args.splits.split(",")
        unknown = [s for s in wanted if s not in splits]
        if unknown:
            parser.error(f"--splits: unknown {', '.join(unknown)} (this case has {', '.join(splits)})")
        splits = {k: splits[k] for k in wanted}
    if args.learners:
        learners = args.learners.split(",")
        unknown = [x for x in learners if x not in LEARNERS]
        if unknown:
            parser.error(f"--learners: unknown {', '.join(unknown)} (use {', '.join(LEARNERS)})")
    emit(
        f"case {case.name}: {len(samples.labels)} labelled cells, {case.predictors.shape[0]} predictors; "
        f"splits {', '.join(f'{k} ({len(v.test)} test)' for k, v in splits.items())}"
    )
    done = {(r["case"], r["split"], r["learner"]) for r in read_rows([args.out] if args.out else [])}
    rows = read_rows([args.out]) if args.out else []
    for name, split in splits.items():
        todo = [x for x in learners if (case.name, name, x) not in done]
        preds = Path(args.preds) if args.preds else None
        for row in run_split(case, split, todo, epochs, args.seed, preds, name):
            row = {"case": case.name, "split": name, **row, "epochs_max": epochs}
            emit(json.dumps(row))
            rows.append(row)
            if args.out:
                with open(args.out, "a") as f:
                    f.write(json.dumps(row) + "\n")
    emit(format_table([t for t in summarise(rows) if t["case"] == case.name]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

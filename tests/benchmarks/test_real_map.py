"""benchmarks/real_map.py: its splits on a small synthetic grid, its table, a run on the twin."""

import json

import numpy as np
import pytest

from benchmarks import real_map as R
from cwsc.ml import patches as P


def grid_samples(shape=(40, 50), seed=0):
    """Samples of a grid with a random tenth of the cells unlabelled (a sea, gaps)."""
    rng = np.random.default_rng(seed)
    labels = rng.uniform(50, 500, shape).astype(np.float32)
    labels[rng.random(shape) < 0.1] = np.nan
    predictors = rng.normal(size=(2, *shape)).astype(np.float32)
    return P.select_samples(predictors, labels)


def parts_cover_once(split):
    n = len(split.samples.rows)
    joined = np.concatenate([split.train, split.val, split.test])
    assert len(joined) == n and len(np.unique(joined)) == n  # every sample in exactly one part


def test_block_splits_hold_out_whole_blocks_of_ten_at_thirty_percent():
    samples = grid_samples()
    splits = R.block_splits(samples)
    assert list(splits) == ["blocks0", "blocks1", "blocks2", "blocks3", "blocks4"]
    block = (samples.rows // 10) * 100 + samples.cols // 10
    tests = []
    for split in splits.values():
        parts_cover_once(split)
        n = len(samples.rows)
        # Whole blocks of 10 x 10 cells: a share near 30 % (at most one block over).
        assert 0.3 * n - 1 <= len(split.test) <= 0.3 * n + 100
        held = set(block[split.test])
        assert not held & set(block[np.concatenate([split.train, split.val])])  # no block shared
        # Validation: 15 % of the rest, in blocks too.
        assert 0.15 * (n - len(split.test)) - 1 <= len(split.val) <= 0.15 * (n - len(split.test)) + 100
        assert not set(block[split.val]) & set(block[split.train])
        tests.append(frozenset(split.test.tolist()))
    assert len(set(tests)) == 5  # five different held-out sets


def test_region_splits_hold_out_each_region_whole_on_a_grid_in_degrees():
    samples = grid_samples((18, 36), seed=1)  # 10-degree cells, the whole globe
    lat = 90 - 10 * (np.arange(18) + 0.5)
    lon = -180 + 10 * (np.arange(36) + 0.5)
    splits = R.region_splits(samples, lat, lon)
    assert set(splits) == set(R.GEOGRAPHIC_REGIONS)
    cell_lat, cell_lon = lat[samples.rows], lon[samples.cols]
    for name, split in splits.items():
        parts_cover_once(split)
        s, n, w, e = R.GEOGRAPHIC_REGIONS[name]
        inside = (cell_lat >= s) & (cell_lat < n) & (cell_lon >= w) & (cell_lon < e)
        np.testing.assert_array_equal(np.sort(split.test), np.nonzero(inside)[0])
        assert len(split.val) > 0 and not inside[split.val].any() and not inside[split.train].any()
    # Tropics: cells centred between 23.5 S and 23.5 N: 15 S to 15 N at 10 degrees.
    assert set(np.unique(cell_lat[splits["tropics"].test])) == {-15.0, -5.0, 5.0, 15.0}


def test_region_splits_leave_out_a_region_without_cells_and_use_thirds_off_degrees():
    samples = grid_samples((18, 36), seed=2)
    lat = np.linspace(85, -5, 18)  # no south, no australia; tropics, north, americas, africa
    lon = -180 + 10 * (np.arange(36) + 0.5)
    assert set(R.region_masks(samples, lat, lon)) == {"tropics", "north", "americas", "africa"}
    # North of 50 N only: every cell is "north" (nothing to train on), no tropics: fewer than
    # three regions, so latitude bands of the grid's rows instead.
    assert list(R.region_masks(samples, np.linspace(85, 55, 18), lon)) == list(R.ROW_THIRDS)
    thirds = R.region_splits(grid_samples((30, 20), seed=3))
    assert list(thirds) == list(R.ROW_THIRDS)
    rows = grid_samples((30, 20), seed=3).rows
    north, middle, south = (rows[thirds[k].test] for k in R.ROW_THIRDS)
    assert north.max() < middle.min() and middle.max() < south.min()
    for split in thirds.values():
        parts_cover_once(split)
        assert 0.25 < len(split.test) / len(rows) < 0.42


def test_table_gives_mean_spread_worst_and_margin_over_the_better_tree_per_split():
    rows = []
    scores = {
        "trees-cell": {"blocks0": 0.70, "blocks1": 0.80, "north": 0.1},
        "trees-neighbourhood": {"blocks0": 0.75, "blocks1": 0.60, "north": 0.3},
        "network": {"blocks0": 0.78, "blocks1": 0.82, "north": 0.2},
    }
    for learner, by_split in scores.items():
        for split, r2 in by_split.items():
            rows.append({"case": "x", "split": split, "learner": learner, "test_r2": r2, "seconds": 10.0})
    table = {t["learner"]: t for t in R.summarise(rows) if t["kind"] == "blocks"}
    best = table[R.BEST_TREE]
    assert best["mean"] == pytest.approx((0.75 + 0.80) / 2)  # per split the better tree
    net = table["network"]
    assert net["mean"] == pytest.approx(0.80)
    assert net["spread"] == pytest.approx(np.std([0.78, 0.82]))
    assert (net["worst"], net["worst_split"]) == (pytest.approx(0.78), "blocks0")
    assert net["vs_best_tree"] == pytest.approx(((0.78 - 0.75) + (0.82 - 0.80)) / 2)
    regions = {t["learner"]: t for t in R.summarise(rows) if t["kind"] == "regions"}
    assert regions[R.BEST_TREE]["mean"] == pytest.approx(0.3)
    assert regions["network"]["vs_best_tree"] == pytest.approx(0.2 - 0.3)
    text = R.format_table(R.summarise(rows))
    assert "| x | blocks | network | 2 | 0.800 |" in text and "0.780 (blocks0)" in text


def test_a_run_on_the_twin_prints_rows_and_the_table_and_resumes(tmp_path):
    out = tmp_path / "rows.jsonl"
    lines: list[str] = []
    argv = [
        "--case",
        "twin",
        "--splits",
        "blocks0,north-third",
        "--learners",
        "trees-cell,trees-neighbourhood",
    ]
    assert R.main([*argv, "--out", str(out)], emit=lines.append) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert {(r["split"], r["learner"]) for r in rows} == {
        (s, x) for s in ("blocks0", "north-third") for x in ("trees-cell", "trees-neighbourhood")
    }
    assert all(np.isfinite(r["test_r2"]) and r["seconds"] >= 0 for r in rows)
    table = lines[-1].splitlines()
    assert any(x.startswith("| twin | blocks | best-tree | 1 |") for x in table)
    assert any(x.startswith("| twin | regions | best-tree | 1 |") for x in table)
    # A second run with the same file runs nothing again.
    again: list[str] = []
    R.main([*argv, "--out", str(out)], emit=again.append)
    assert len(out.read_text().splitlines()) == 4 and not any(x.startswith("{") for x in again)
    with pytest.raises(SystemExit):
        R.main(["--case", "twin", "--learners", "forest"], emit=lines.append)


def test_network_candidates_on_the_same_split_of_the_twin():
    lines: list[str] = []
    R.main(
        [
            "--case",
            "twin",
            "--splits",
            "blocks0",
            "--learners",
            "network,tta,net+trees,position",
            "--epochs",
            "1",
        ],
        emit=lines.append,
    )
    rows = {r["learner"]: r for r in (json.loads(x) for x in lines if x.startswith("{"))}
    assert set(rows) == {"network", "tta", "net+trees", "position"}
    assert all(np.isfinite(r["test_r2"]) for r in rows.values())
    assert rows["tta"]["test_r2"] != rows["network"]["test_r2"]  # the 8 symmetries change the mean


def test_the_shipped_learner_is_the_network_train_ships_on_the_case():
    from cwsc.ml.options import POSITION_MIN_CELLS

    side = int(np.ceil(np.sqrt(POSITION_MIN_CELLS)))
    big = R.Case("big", np.zeros((1, side, side), np.float32), np.ones((side, side), np.float32), None, None)
    small = R.Case("small", np.zeros((1, 30, 30), np.float32), np.ones((30, 30), np.float32), None, None)
    assert R.shipped_network(big) == "patch5-position" and R.shipped_network(small) == "patch5"
    assert "shipped" in R.LEARNERS

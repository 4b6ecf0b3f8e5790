"""``python -m cwsc evaluate``: against a reference, free vs fixed calibration, refusals."""

import numpy as np
import pytest
from backend_testing import last_event, run_backend, write_tif

from cwsc.synthetic.demo_region import DemoRegion, write_demo

pytestmark = pytest.mark.slow  # subprocess runs of the backend, tens of seconds in all

SMALL = DemoRegion(west=-10.0, east=0.0, south=36.0, north=44.0, years=3)  # Iberia, 3 years


def test_evaluate_against_a_reference_writes_a_report(tmp_path):
    rng = np.random.default_rng(0)
    truth = rng.uniform(50, 500, (12, 14))
    cwsc = write_tif(tmp_path / "cwsc.tif", truth + rng.normal(0, 20, truth.shape))
    ref = write_tif(tmp_path / "ref.tif", truth)
    code, events, err = run_backend(
        "evaluate", "--cwsc", cwsc, "--reference", ref, "--out-report", tmp_path / "r.html"
    )
    assert code == 0, err
    m = last_event(events, "result")["metrics"]
    assert 0.9 < m["r2_reference"] <= 1 and m["cells_reference"] == 12 * 14
    html = (tmp_path / "r.html").read_text()
    assert "data:image/png;base64," in html and "Agreement with the reference" in html


def test_evaluate_needs_something_to_compare_with(tmp_path):
    cwsc = write_tif(tmp_path / "cwsc.tif", np.ones((4, 4)))
    code, events, _ = run_backend("evaluate", "--cwsc", cwsc, "--out-report", tmp_path / "r.html")
    assert code == 2 and "REFERENCE" in last_event(events, "error")["message"]
    code, events, _ = run_backend(
        "evaluate", "--cwsc", cwsc, "--precip", cwsc, "--out-report", tmp_path / "r.html"
    )
    assert code == 2 and "all three" in last_event(events, "error")["message"]
    assert not (tmp_path / "r.html").exists()


def test_evaluate_scores_validation_months_on_the_same_cells(tmp_path):
    region = DemoRegion(west=-10.0, east=-6.0, south=37.0, north=42.0, years=5)
    m = write_demo(tmp_path / "d", seed=1, region=region)
    d = tmp_path / "d"
    code, events, err = run_backend(
        "evaluate",
        "--cwsc",
        d / "true_cwsc.tif",
        "--reference",
        d / "true_cwsc.tif",
        "--precip",
        d / "precipitation.tif",
        "--pet",
        d / "pet.tif",
        "--runoff",
        d / "runoff.tif",
        "--models",
        "SWBM,TVGM",
        "--max-cells",
        "6",
        "--max-evaluations",
        "80",
        "--out-report",
        tmp_path / "e.html",
    )
    assert code == 0, err
    metrics = last_event(events, "result")["metrics"]
    assert metrics["cells_scored"] == 6 and m["land_cells"] >= 6
    for key in (
        "kge_val_fixed",
        "kge_val_constant",
        "kge_val_free",
        "kge_val_fixed_swbm",
        "spearman_reference",
        "rmse_reference_constant",
    ):
        assert metrics[key] is not None, (key, sorted(metrics.items()))
    assert metrics["spearman_reference"] == 1.0
    assert set(metrics["failed_runs"]) == {"fixed", "constant", "free"}
    html = (tmp_path / "e.html").read_text()
    assert "Simulation efficiency on the validation months" in html and "By aridity" in html
    assert "constant map (its median)" in html
    # per model: the median at the cells of its label and over all cells (KGE_VAL_FIXED_SWBM),
    # named apart
    assert "median validation KGE at those cells, map" in html
    assert "median over all cells scored, map (KGE_VAL_FIXED_&lt;model&gt;)" in html or (
        "median over all cells scored, map (KGE_VAL_FIXED_<model>)" in html
    )
    # Three years leave 9 validation months: too few for a KGE, said before any work.
    short = DemoRegion(west=-10.0, east=-6.0, south=37.0, north=42.0, years=3)
    write_demo(tmp_path / "s", seed=1, region=short)
    s = tmp_path / "s"
    code, events, _ = run_backend(
        "evaluate",
        "--cwsc",
        s / "true_cwsc.tif",
        "--precip",
        s / "precipitation.tif",
        "--pet",
        s / "pet.tif",
        "--runoff",
        s / "runoff.tif",
        "--out-report",
        tmp_path / "s.html",
    )
    assert code == 2 and "validation period" in last_event(events, "error")["message"]
    assert not (tmp_path / "s.html").exists()


def test_the_true_map_beats_a_shuffled_copy_and_the_constant_map(tmp_path):
    """On the demo twin (runoff made from the true CWSC), with sc fixed and scored on the
    validation months in the models that make each cell's label."""
    from cwsc.evaluation.maps import simulation_check
    from cwsc.synthetic.demo_region import make_demo

    data = make_demo(DemoRegion(), 42)
    truth = np.where(data["land"], data["true_cwsc"], np.nan)
    made = data["failed"] == 0  # cells whose runoff a model made (not noise)
    shuffled = truth.copy()
    land = np.flatnonzero(np.isfinite(truth.ravel()))
    shuffled.ravel()[land] = np.random.default_rng(3).permutation(truth.ravel()[land])
    forcing = (data["precip_series"], data["pet_series"], data["runoff_series"])
    candidates = np.flatnonzero(made.ravel() & np.isfinite(truth.ravel()))
    true_check = simulation_check(
        truth, *forcing, ("DWBM", "SWBM", "TVGM"), 1, 0, "cpu", 150, candidates=candidates
    )
    shuffled_check = simulation_check(
        shuffled, *forcing, ("DWBM", "SWBM", "TVGM"), 1, 0, "cpu", 150, candidates=candidates
    )
    np.testing.assert_array_equal(true_check["cells"], shuffled_check["cells"])
    fixed = float(np.median(true_check["scores"]["fixed"]))
    constant = float(np.median(true_check["scores"]["constant"]))
    mixed = float(np.median(shuffled_check["scores"]["fixed"]))
    print(
        f"\ndemo twin, 150 cells, median validation KGE: true map {fixed:.3f}, "
        f"constant map {constant:.3f}, shuffled map {mixed:.3f}, free "
        f"{np.median(true_check['scores']['free']):.3f}"
    )
    assert fixed - mixed >= MARGIN_TRUE_OVER_SHUFFLED
    assert mixed <= constant <= fixed


#: Measured on this test's cells (see docs/science.md, "How the CWSC label is made"); the issue
#: asks for at least 0.02.
MARGIN_TRUE_OVER_SHUFFLED = 0.05  # measured: 0.114 (true 0.915, shuffled 0.801)


def test_per_cell_the_own_labels_lie_in_their_ranges_and_a_shuffled_map_does_not(tmp_path):
    """Issue 35, per cell: with calibrate's DETAILS, evaluate says where the map lies inside
    each cell's identifiable range of sc and how it ranks with the labels; on a small demo
    region the labels themselves do, a shuffled copy and the constant do not."""
    import rasterio
    from backend_testing import read_tif

    region = DemoRegion(west=-10.0, east=-6.0, south=37.0, north=42.0, years=8)
    write_demo(tmp_path / "d", seed=1, region=region)
    d = tmp_path / "d"
    code, _, err = run_backend(
        "calibrate", "--precip", d / "precipitation.tif", "--pet", d / "pet.tif", "--runoff", d / "runoff.tif",
        "--out-cwsc", tmp_path / "labels.tif", "--out-kge", tmp_path / "kge.tif",
        "--out-details", tmp_path / "details.tif", "--max-evaluations", "300",
    )  # fmt: skip
    assert code == 0, err[-3000:]
    labels = read_tif(tmp_path / "labels.tif")[0][0]
    shuffled = labels.copy()
    cells = np.flatnonzero(np.isfinite(labels.ravel()))
    shuffled.ravel()[cells] = np.random.default_rng(0).permutation(labels.ravel()[cells])
    with rasterio.open(tmp_path / "labels.tif") as src:
        transform = src.transform
    write_tif(tmp_path / "own.tif", labels, transform=tuple(transform)[:6])
    write_tif(tmp_path / "shuffled.tif", shuffled, transform=tuple(transform)[:6])
    got = {}
    for name in ("own", "shuffled"):
        code, events, err = run_backend(
            "evaluate", "--cwsc", tmp_path / f"{name}.tif", "--reference", d / "true_cwsc.tif",
            "--details", tmp_path / "details.tif", "--labels", tmp_path / "labels.tif",
            "--out-report", tmp_path / f"{name}.html",
        )  # fmt: skip
        assert code == 0, err[-3000:]
        got[name] = last_event(events, "result")["metrics"]
    own, mixed = got["own"], got["shuffled"]
    print(
        f"\n{own['cells_with_range']} cells: share in range own {own['share_in_range_map']:.2f}, constant "
        f"{own['share_in_range_constant']:.2f}, shuffled {mixed['share_in_range_map']:.2f}; Spearman own "
        f"{own['spearman_map_labels']:.2f}, shuffled {mixed['spearman_map_labels']:.2f}"
    )
    assert own["cells_with_range"] == cells.size
    assert own["share_in_range_map"] == 1.0 and own["spearman_map_labels"] == pytest.approx(1.0)
    assert own["share_in_range_constant"] <= 0.6 and mixed["share_in_range_map"] <= 0.6
    assert abs(mixed["spearman_map_labels"]) <= 0.3
    assert "identifiable range" in (tmp_path / "own.html").read_text()

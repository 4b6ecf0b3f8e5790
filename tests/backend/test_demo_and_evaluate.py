"""The demo data generator and the evaluate command."""

import hashlib
import json

import numpy as np
import pytest

from backend.demo import DemoRegion, write_demo
from backend.evaluate import agreement
from conftest import last_event, read_tif, run_backend, write_tif

SMALL = DemoRegion(west=-10.0, east=0.0, south=36.0, north=44.0, years=3)  # Iberia, 3 years


def _digest(folder):
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*.tif")):
        data, _, _ = read_tif(p)
        h.update(p.name.encode() + np.nan_to_num(data, nan=-1).tobytes())
    return h.hexdigest()


def test_demo_data_is_deterministic_and_documented(tmp_path):
    a = write_demo(tmp_path / "a", seed=7, region=SMALL)
    b = write_demo(tmp_path / "b", seed=7, region=SMALL)
    c = write_demo(tmp_path / "c", seed=8, region=SMALL)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b") != _digest(tmp_path / "c")
    assert a["land_cells"] > 100 and 0 < a["failed_cells"] < a["land_cells"]
    readme = (tmp_path / "a" / "README.md").read_text()
    assert "SYNTHETIC" in readme and "runoff.tif" in readme
    assert 13 <= len(a["predictors"]) <= 15

    precip, profile, desc = read_tif(tmp_path / "a" / "precipitation.tif")
    runoff, _, _ = read_tif(tmp_path / "a" / "runoff.tif")
    truth, _, _ = read_tif(tmp_path / "a" / "true_cwsc.tif")
    assert precip.shape[0] == 36 and desc[0].endswith("1981-01")
    land = np.isfinite(truth[0])
    assert 0 < land.mean() < 1  # a real coastline: sea cells are nodata
    assert np.isfinite(runoff[:, land]).all() and (runoff[:, land] >= 0).all()
    assert 10 <= np.nanmin(truth) and np.nanmax(truth) <= 990
    # Runoff is a fraction of precipitation where the calibration is meant to work.
    assert np.nanmedian(runoff.sum(0) / precip.sum(0)) < 0.8
    for path in a["predictors"]:
        data, _, desc = read_tif(path)
        assert np.isfinite(data[0][land]).all() and "(" in desc[0]  # units in the name


def test_demo_data_command_writes_manifest(tmp_path):
    code, events, _ = run_backend("demo-data", "--out", tmp_path / "d", "--seed", "3", timeout=120)
    assert code == 0
    res = last_event(events, "result")
    assert res["metrics"]["land_cells"] > 1000 and res["metrics"]["months"] == 360
    manifest = json.loads((tmp_path / "d" / "manifest.json").read_text())
    assert manifest["predictors"] == res["outputs"]["predictors"]


def test_agreement_metrics():
    ref = np.array([[100.0, 200.0], [300.0, np.nan]])
    stats = agreement(ref + 10, ref)
    assert stats["cells"] == 3 and stats["bias"] == pytest.approx(10)
    assert stats["rmse"] == pytest.approx(10) and stats["pearson_r"] == pytest.approx(1)


def test_evaluate_against_a_reference_writes_a_report(tmp_path):
    rng = np.random.default_rng(0)
    truth = rng.uniform(50, 500, (12, 14))
    cwsc = write_tif(tmp_path / "cwsc.tif", truth + rng.normal(0, 20, truth.shape))
    ref = write_tif(tmp_path / "ref.tif", truth)
    code, events, err = run_backend("evaluate", "--cwsc", cwsc, "--reference", ref,
                                    "--out-report", tmp_path / "r.html")
    assert code == 0, err
    m = last_event(events, "result")["metrics"]
    assert 0.9 < m["r2_reference"] <= 1 and m["cells_reference"] == 12 * 14
    html = (tmp_path / "r.html").read_text()
    assert "data:image/png;base64," in html and "Agreement with the reference" in html


def test_evaluate_needs_something_to_compare_with(tmp_path):
    cwsc = write_tif(tmp_path / "cwsc.tif", np.ones((4, 4)))
    code, events, _ = run_backend("evaluate", "--cwsc", cwsc, "--out-report", tmp_path / "r.html")
    assert code == 2 and "REFERENCE" in last_event(events, "error")["message"]
    code, events, _ = run_backend("evaluate", "--cwsc", cwsc, "--precip", cwsc,
                                  "--out-report", tmp_path / "r.html")
    assert code == 2 and "all three" in last_event(events, "error")["message"]
    assert not (tmp_path / "r.html").exists()


def test_evaluate_simulation_check_free_versus_fixed(tmp_path):
    region = DemoRegion(west=-10.0, east=-6.0, south=37.0, north=42.0, years=3)
    m = write_demo(tmp_path / "d", seed=1, region=region)
    d = tmp_path / "d"
    code, events, err = run_backend(
        "evaluate", "--cwsc", d / "true_cwsc.tif", "--precip", d / "precipitation.tif",
        "--pet", d / "pet.tif", "--runoff", d / "runoff.tif", "--models", "SWBM",
        "--max-cells", "6", "--max-evaluations", "80", "--out-report", tmp_path / "e.html")
    assert code == 0, err
    metrics = last_event(events, "result")["metrics"]
    assert metrics["cells_simulated"] == 6 and m["land_cells"] >= 6
    assert metrics["median_kge_free_swbm"] is not None and metrics["median_kge_fixed_swbm"] is not None
    html = (tmp_path / "e.html").read_text()
    assert "free calibration vs CWSC fixed" in html

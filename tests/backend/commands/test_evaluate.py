"""``python -m backend evaluate``: against a reference, free vs fixed calibration, refusals."""


import numpy as np

from backend.synthetic.demo_region import DemoRegion, write_demo
from backend_testing import last_event, run_backend, write_tif


SMALL = DemoRegion(west=-10.0, east=0.0, south=36.0, north=44.0, years=3)  # Iberia, 3 years


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

"""TEMPERATURE through evaluate, learn from runoff and prepare, on the demo region's snowy
variant (an Alpine window): the snow store runs, the fits with it are better, and the
models' gradients reach the network through the store's output."""

from __future__ import annotations

import pytest
from backend_testing import TINY, last_event, read_tif, run_backend

from cwsc.synthetic.demo_region import DemoRegion, write_demo

pytestmark = pytest.mark.slow
ALPS = DemoRegion(west=6.0, east=11.0, south=45.0, north=48.0, years=6, failed_fraction=0.0)


@pytest.fixture(scope="module")
def snowy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("snowy_demo")
    write_demo(folder, seed=5, region=ALPS, snow=True)
    return folder


def _evaluate(d, out, *extra):
    code, events, err = run_backend(
        "evaluate",
        "--cwsc",
        d / "true_cwsc.tif",
        "--precip",
        d / "precipitation.tif",
        "--pet",
        d / "pet.tif",
        "--runoff",
        d / "runoff.tif",
        "--max-cells",
        "12",
        "--max-evaluations",
        "150",
        "--out-report",
        out,
        *extra,
    )
    assert code == 0, err[-2000:]
    return events


def test_evaluate_with_temperature_runs_the_snow_store_and_fits_better(snowy, tmp_path):
    plain = last_event(_evaluate(snowy, tmp_path / "a.html"), "result")["metrics"]
    events = _evaluate(snowy, tmp_path / "b.html", "--temperature", snowy / "temperature.tif")
    assert any("snow store" in e.get("message", "") for e in events if e["event"] == "log")
    with_t = last_event(events, "result")["metrics"]
    assert with_t["kge_val_fixed"] > plain["kge_val_fixed"]


def test_learn_from_runoff_with_temperature_learns_through_the_store(snowy, tmp_path):
    predictors = sorted((snowy / "predictors").glob("*.tif"))[:4]
    code, events, err = run_backend(
        "learn",
        "--predictors",
        *predictors,
        "--precip",
        snowy / "precipitation.tif",
        "--pet",
        snowy / "pet.tif",
        "--runoff",
        snowy / "runoff.tif",
        "--temperature",
        snowy / "temperature.tif",
        "--models",
        "DWBM",
        "--epochs",
        "2",
        "--out-model",
        tmp_path / "m.pt",
        *TINY,
        "--batch-size",
        "16",
    )
    assert code == 0, err[-2000:]
    assert any("snow store" in e.get("message", "") for e in events if e["event"] == "log")
    losses = [e["train_loss"] for e in events if e["event"] == "progress" and "train_loss" in e]
    assert len(losses) == 2 and all(loss == loss for loss in losses)  # finite: gradients flowed
    assert -1.0 < last_event(events, "result")["metrics"]["val_kge_test_cells"] <= 1.0


def test_prepare_writes_the_temperature_on_the_target_grid_in_celsius(snowy, tmp_path):
    code, events, err = run_backend(
        "prepare",
        "--precip",
        snowy / "precipitation.tif",
        "--pet",
        snowy / "pet.tif",
        "--runoff",
        snowy / "runoff.tif",
        "--temperature",
        snowy / "temperature.tif",
        "--out-precip",
        tmp_path / "p.tif",
        "--out-pet",
        tmp_path / "e.tif",
        "--out-runoff",
        tmp_path / "q.tif",
        "--out-temperature",
        tmp_path / "t.tif",
    )
    assert code == 0, err[-2000:]
    t, profile, descriptions = read_tif(tmp_path / "t.tif")
    source = read_tif(snowy / "temperature.tif")[0]
    assert t.shape == source.shape and descriptions[0].startswith("air temperature (C)")
    assert abs(float((t - source)[source == source].max())) < 1e-4
    code, events, _ = run_backend(
        "prepare",
        "--precip",
        snowy / "precipitation.tif",
        "--pet",
        snowy / "pet.tif",
        "--runoff",
        snowy / "runoff.tif",
        "--temperature",
        snowy / "temperature.tif",
        "--out-precip",
        tmp_path / "p2.tif",
        "--out-pet",
        tmp_path / "e2.tif",
        "--out-runoff",
        tmp_path / "q2.tif",
    )
    assert code == 2 and "OUTPUT_TEMPERATURE" in last_event(events, "error")["message"]

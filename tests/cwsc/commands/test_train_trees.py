"""``train`` ships the network averaged with gradient-boosted trees (or, ``--no-trees``, the
network alone); ``predict`` and ``evaluate`` take either model file."""

import numpy as np
import pytest
from backend_testing import TINY, last_event, leftovers, read_tif, run_backend, train_args

from cwsc.ml.baseline import BASELINES
from cwsc.ml.modelfile import load_model
from cwsc.synthetic.demo_region import DemoRegion, write_demo


@pytest.mark.slow  # the demo region's forcing, then train, predict and evaluate: about a minute
def test_the_model_with_trees_trains_predicts_and_evaluates(tmp_path):
    region = DemoRegion(west=-10.0, east=-6.0, south=37.0, north=42.0, years=5)
    demo = write_demo(tmp_path / "d", seed=1, region=region)
    d = tmp_path / "d"
    model, report = tmp_path / "m.pt", tmp_path / "r.html"
    rc, events, err = run_backend(
        "train",
        "--predictors",
        *demo["predictors"],
        "--labels",
        d / "true_cwsc.tif",
        "--out-model",
        model,
        "--out-report",
        report,
        "--epochs",
        "2",
        "--batch-size",
        "8",
        *TINY,
    )
    assert rc == 0, err
    m = last_event(events, "result")["metrics"]
    bundle = load_model(model)
    # The trees better on the validation cells are in the model file, and the scores are the
    # averaged model's, the network's alone beside them.
    assert bundle.trees is not None and bundle.trees_info["name"] in BASELINES
    assert bundle.trees_info["weight"] == 0.5 and bundle.predictions == 2
    assert m["test_r2"] != m["test_r2_network"] and np.isfinite(m["test_r2_network"])
    assert (
        bundle.metrics["test_r2"] == m["test_r2"]
        and bundle.metrics["test_r2_network"] == m["test_r2_network"]
    )
    said = [e["message"] for e in events if e["event"] == "log"]
    assert any(
        s.startswith(f"the model averages the network with the {bundle.trees_info['name']}") for s in said
    )
    assert any(s.startswith("The network averaged with trees ") for s in said)
    html = report.read_text()
    assert "R² of the network alone" in html and "The network averaged with trees " in html

    out, spread = tmp_path / "cwsc.tif", tmp_path / "spread.tif"
    rc, events, err = run_backend(
        "predict",
        "--model",
        model,
        "--predictors",
        *demo["predictors"],
        "--out",
        out,
        "--out-uncertainty",
        spread,
    )
    assert rc == 0, err
    assert last_event(events, "result")["outputs"]["OUTPUT_UNCERTAINTY"] == str(
        spread
    )  # one member, and trees
    cwsc, _, _ = read_tif(out)
    sd, _, desc = read_tif(spread)
    land = np.isfinite(cwsc[0])
    assert land.sum() > 0 and np.all(sd[0][land] >= 0) and "trees" in desc[0]

    rc, events, err = run_backend(
        "evaluate",
        "--cwsc",
        out,
        "--precip",
        d / "precipitation.tif",
        "--pet",
        d / "pet.tif",
        "--runoff",
        d / "runoff.tif",
        "--model",
        model,
        "--models",
        "SWBM",
        "--max-cells",
        "3",
        "--max-evaluations",
        "60",
        "--out-report",
        tmp_path / "e.html",
    )
    assert rc == 0, err
    assert last_event(events, "result")["metrics"]["cells_scored"] == 3
    assert "held-out test cells" in (tmp_path / "e.html").read_text()
    assert leftovers(tmp_path) == []


@pytest.mark.slow  # two backend runs: about 25 s on a loaded 2-core machine
def test_no_trees_ships_the_network_alone(twin_files, tmp_path):
    files, _ = twin_files
    model = tmp_path / "m.pt"
    rc, events, err = run_backend(*train_args(files, model, "--epochs", "1", "--no-trees"))
    assert rc == 0, err
    m = last_event(events, "result")["metrics"]
    bundle = load_model(model)
    assert bundle.trees is None and bundle.predictions == 1
    assert m["test_r2"] == m["test_r2_network"]
    said = [e["message"] for e in events if e["event"] == "log" and e["message"].startswith("The network ")]
    assert len(said) == 1 and "averaged" not in said[0]  # the network alone against the trees
    rc, events, err = run_backend(
        "predict",
        "--model",
        model,
        "--predictors",
        *files["predictors"],
        "--out",
        tmp_path / "cwsc.tif",
        "--out-uncertainty",
        tmp_path / "spread.tif",
    )
    assert rc == 0, err
    warned = [e["message"] for e in events if e["event"] == "log" and e["level"] == "warning"]
    assert any("one network without trees" in w for w in warned)
    assert not (tmp_path / "spread.tif").exists()

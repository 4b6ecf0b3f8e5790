"""``python -m cwsc train`` (then predict) as the plugin runs it: events, exit codes, no leftovers."""

import numpy as np
import pytest
from backend_testing import (
    TINY,
    expect_bad_input,
    last_event,
    leftovers,
    read_tif,
    run_backend,
    start_backend,
    terminate_when,
    train_args,
    write_tif,
)

from cwsc.commands.options import parse_widths
from cwsc.errors import ParameterError
from cwsc.ml.predict import STD_TREES_DESCRIPTION


@pytest.mark.slow
def test_train_then_predict_speaks_the_protocol(twin_files, tmp_path):
    files, _ = twin_files
    model, report = tmp_path / "m.pt", tmp_path / "r.html"
    rc, events, err = run_backend(
        *train_args(files, model, "--epochs", "3", "--ensemble", "2", "--out-report", report)
    )
    assert rc == 0, err
    epochs = [e for e in events if e["event"] == "progress" and "epoch" in e]
    assert all(e["stage"] == "training" for e in epochs)
    assert [e["epoch"] for e in epochs] == [1, 2, 3, 1, 2, 3]
    assert {"train_loss", "val_loss", "val_r2", "member"} <= set(epochs[0])
    fr = [e["fraction"] for e in events if e["event"] == "progress"]
    assert fr == sorted(fr) and fr[-1] == 1.0
    res = last_event(events, "result")
    assert res["outputs"] == {"OUTPUT_MODEL": str(model), "OUTPUT_REPORT": str(report)}
    m = res["metrics"]
    assert {
        "test_r2",
        "test_rmse",
        "test_mae",
        "test_bias",
        "test_kge",
        "test_r2_baseline",
        "train_samples",
        "val_samples",
        "test_samples",
        "skipped_cells",
        "epochs_run",
        "seconds",
    } <= set(m)
    assert m["epochs_run"] == 6 and m["test_samples"] > 0
    assert np.isfinite(m["test_r2_baseline"]) and m["test_r2_baseline"] > 0.3  # trees learn the twin
    # The line names the better of the two tree baselines, and is a warning when the network trails.
    said = [e for e in events if e["event"] == "log" and e["message"].startswith("The network ")]
    assert len(said) == 1 and "the better tree baseline (trees " in said[0]["message"]
    trails = m["test_r2"] <= m["test_r2_baseline"]
    assert said[0]["level"] == ("warning" if trails else "info")
    html = report.read_text()
    assert html.count("data:image/png;base64,") >= 4 and "RMSE (mm)" in html
    assert "the better tree baseline (trees " in html
    assert "R² of the tree baseline" in html

    out, std = tmp_path / "cwsc.tif", tmp_path / "std.tif"
    rc, events, err = run_backend(
        "predict",
        "--model",
        model,
        "--predictors",
        *files["predictors"],
        "--out",
        out,
        "--out-uncertainty",
        std,
    )
    assert rc == 0, err
    res = last_event(events, "result")
    assert res["outputs"] == {"OUTPUT": str(out), "OUTPUT_UNCERTAINTY": str(std)}
    cwsc, prof, desc = read_tif(out)
    land = np.isfinite(read_tif(files["truth"])[0][0])
    assert res["metrics"]["cells_predicted"] == int(land.sum()) == int(np.isfinite(cwsc).sum())
    # Two members and the trees: the spread is theirs around the map, weighted as in it.
    assert desc == ["CWSC (mm)"] and read_tif(std)[2] == [STD_TREES_DESCRIPTION]
    assert leftovers(tmp_path) == []


@pytest.mark.slow
def test_train_bad_inputs(twin_files, tmp_path):
    files, _ = twin_files
    out = tmp_path / "m.pt"
    expect_bad_input(train_args(files, out, "--patch-size", "10"), "odd", tmp_path)
    expect_bad_input(train_args(files, out, "--patch-size", "31"), "larger than the grid", tmp_path)
    expect_bad_input(train_args(files, out, "--kge-threshold", "2"), "no valid training sample", tmp_path)
    expect_bad_input(train_args(files, out, "--batch-size", "5000"), "fewer than one batch", tmp_path)
    expect_bad_input(train_args(files, tmp_path / "nofolder" / "m.pt"), "does not exist", tmp_path)
    expect_bad_input(train_args(files, out, "--widths", "8,8"), "WIDTHS", tmp_path)


@pytest.mark.slow
def test_train_refuses_inf_predictors_and_unalignable_grids(twin_files, tmp_path):
    import rasterio

    files, _ = twin_files
    with rasterio.open(files["labels"]) as src:
        prof, data = src.profile, src.read()
    data = np.where(data == -9999, 1.0, data)
    data[0, 4, 4] = np.inf
    with rasterio.open(tmp_path / "inf.tif", "w", **prof) as dst:
        dst.write(data)
    args = [
        "train",
        "--predictors",
        tmp_path / "inf.tif",
        "--labels",
        files["labels"],
        "--out-model",
        tmp_path / "m.pt",
        *TINY,
    ]
    expect_bad_input(args, "inf.tif' band 1 holds 1 infinite", tmp_path)
    nocrs = write_tif(tmp_path / "nocrs.tif", np.ones((20, 20)), transform=(1, 0, 0, 0, -1, 0), crs=None)
    args[2] = nocrs
    expect_bad_input(args, "nocrs.tif", tmp_path)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_bad_input(twin_files, tmp_path):
    files, _ = twin_files
    expect_bad_input(train_args(files, tmp_path / "m.pt", "--device", "cuda"), "no CUDA", tmp_path)


@pytest.mark.serial
def test_sigterm_during_training_leaves_nothing(twin_files, tmp_path):
    files, _ = twin_files
    proc = start_backend(
        train_args(files, tmp_path / "m.pt", "--epochs", "500", "--out-report", tmp_path / "r.html")
    )
    timings = {}
    rc, events = terminate_when(proc, lambda e: e.get("stage") == "training", timings=timings)
    print(f"\nSIGTERM during training: backend gone {timings['stop_s']:.2f} s later")
    assert timings["stop_s"] < 1.0
    assert rc == 3
    assert last_event(events, "error")["kind"] == "cancelled"
    assert list(tmp_path.iterdir()) == []


def test_widths_option_parsing():
    assert parse_widths("16,32,128") == (16, 32, 128)
    assert parse_widths(None) is None
    for bad in ("16,32", "a,b,c", "0,1,2"):
        with pytest.raises(ParameterError, match="WIDTHS"):
            parse_widths(bad)


@pytest.mark.slow  # three short trainings
def test_the_network_takes_each_cells_position_when_asked_or_with_many_cells(twin_files, tmp_path):
    from cwsc.ml.modelfile import load_model
    from cwsc.ml.position import POSITION_CHANNELS
    from cwsc.synthetic.twin import make_twin, write_twin

    files, _ = twin_files

    def said(events):
        return [e["message"] for e in events if e["event"] == "log"]

    # The twin's 900 cells are fewer than POSITION_MIN_CELLS: left to the data, no position.
    rc, events, err = run_backend(*train_args(files, tmp_path / "n.pt", "--epochs", "1"))
    assert rc == 0, err
    b = load_model(tmp_path / "n.pt")
    assert not b.position and b.network.in_channels == len(b.channels) + 1
    assert any(m.startswith("position channels (latitude and longitude): off: ") for m in said(events))
    rc, events, err = run_backend(*train_args(files, tmp_path / "m.pt", "--epochs", "1", "--position"))
    assert rc == 0, err
    b = load_model(tmp_path / "m.pt")
    assert b.position and b.network.in_channels == len(b.channels) + len(POSITION_CHANNELS) + 1
    assert b.training["position channels"] == "latitude and longitude (sine, cosine)"
    # Rasters without a CRS cannot be placed: trained without position, and said so.
    bare = write_twin(tmp_path / "bare", make_twin((30, 30), channels=5, seed=4), crs=None)
    rc, events, err = run_backend(*train_args(bare, tmp_path / "o.pt", "--epochs", "1", "--position"))
    assert rc == 0, err
    warned = [e["message"] for e in events if e["event"] == "log" and e.get("level") == "warning"]
    assert any("no CRS" in w and "without position channels" in w for w in warned), warned
    assert not load_model(tmp_path / "o.pt").position

"""``python -m backend train`` / ``predict`` as the plugin runs them: events, exit codes, no leftovers."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from backend.ml.twin import make_twin, write_twin
from conftest import ROOT, last_event, read_tif, run_backend, write_tif

TINY = ["--blocks", "1", "--widths", "4,8,8", "--patch-size", "5"]


@pytest.fixture(scope="module")
def twin_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("twin")
    return write_twin(folder, make_twin((30, 30), channels=5, seed=4)), folder


def _train_args(files, out, *extra):
    return ["train", "--predictors", *files["predictors"], "--labels", files["labels"],
            "--kge", files["kge"], "--out-model", out, *TINY, *extra]


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if ".part" in p.name)


def test_train_then_predict_speaks_the_protocol(twin_files, tmp_path):
    files, _ = twin_files
    model, report = tmp_path / "m.pt", tmp_path / "r.html"
    rc, events, err = run_backend(*_train_args(files, model, "--epochs", "3", "--ensemble", "2",
                                               "--out-report", report))
    assert rc == 0, err
    epochs = [e for e in events if e["event"] == "progress" and "epoch" in e]
    assert all(e["stage"] == "train" for e in epochs)
    assert [e["epoch"] for e in epochs] == [1, 2, 3, 1, 2, 3]
    assert {"train_loss", "val_loss", "val_r2", "member"} <= set(epochs[0])
    fr = [e["fraction"] for e in events if e["event"] == "progress"]
    assert fr == sorted(fr) and fr[-1] == 1.0
    res = last_event(events, "result")
    assert res["outputs"] == {"OUTPUT_MODEL": str(model), "OUTPUT_REPORT": str(report)}
    m = res["metrics"]
    assert {"test_r2", "test_rmse", "test_mae", "test_bias", "test_kge", "train_samples",
            "val_samples", "test_samples", "skipped_cells", "epochs_run", "seconds"} <= set(m)
    assert m["epochs_run"] == 6 and m["test_samples"] > 0
    html = report.read_text()
    assert html.count("data:image/png;base64,") >= 4 and "RMSE (mm)" in html

    out, std = tmp_path / "cwsc.tif", tmp_path / "std.tif"
    rc, events, err = run_backend("predict", "--model", model, "--predictors", *files["predictors"],
                                  "--out", out, "--out-uncertainty", std)
    assert rc == 0, err
    res = last_event(events, "result")
    assert res["outputs"] == {"OUTPUT": str(out), "OUTPUT_UNCERTAINTY": str(std)}
    cwsc, prof, desc = read_tif(out)
    land = np.isfinite(read_tif(files["truth"])[0][0])
    assert res["metrics"]["cells_predicted"] == int(land.sum()) == int(np.isfinite(cwsc).sum())
    assert desc == ["CWSC (mm)"] and read_tif(std)[2] == ["CWSC ensemble standard deviation (mm)"]
    assert _leftovers(tmp_path) == []


def _expect_bad(args, pattern, folder=None):
    rc, events, err = run_backend(*args)
    assert rc == 2, err
    e = last_event(events, "error")
    assert e["kind"] == "bad_input" and pattern in e["message"], e["message"]
    if folder is not None:
        assert not any(p.suffix in (".pt", ".html") or ".part" in p.name for p in folder.iterdir())


def test_train_bad_inputs(twin_files, tmp_path):
    files, _ = twin_files
    out = tmp_path / "m.pt"
    _expect_bad(_train_args(files, out, "--patch-size", "10"), "odd", tmp_path)
    _expect_bad(_train_args(files, out, "--patch-size", "31"), "larger than the grid", tmp_path)
    _expect_bad(_train_args(files, out, "--kge-threshold", "2"), "no valid training sample", tmp_path)
    _expect_bad(_train_args(files, out, "--batch-size", "5000"), "fewer than one batch", tmp_path)
    _expect_bad(_train_args(files, tmp_path / "nofolder" / "m.pt"), "does not exist", tmp_path)
    _expect_bad(_train_args(files, out, "--widths", "8,8"), "WIDTHS", tmp_path)


def test_train_refuses_inf_predictors_and_unalignable_grids(twin_files, tmp_path):
    import rasterio

    files, _ = twin_files
    with rasterio.open(files["labels"]) as src:
        prof, data = src.profile, src.read()
    data = np.where(data == -9999, 1.0, data)
    data[0, 4, 4] = np.inf
    with rasterio.open(tmp_path / "inf.tif", "w", **prof) as dst:
        dst.write(data)
    args = ["train", "--predictors", tmp_path / "inf.tif", "--labels", files["labels"],
            "--out-model", tmp_path / "m.pt", *TINY]
    _expect_bad(args, "inf.tif' band 1 holds 1 infinite", tmp_path)
    nocrs = write_tif(tmp_path / "nocrs.tif", np.ones((20, 20)), transform=(1, 0, 0, 0, -1, 0), crs=None)
    args[2] = nocrs
    _expect_bad(args, "nocrs.tif", tmp_path)


def test_predict_bad_models_and_channels(twin_files, tmp_path):
    files, _ = twin_files
    (tmp_path / "junk.pt").write_bytes(os.urandom(500))
    base = ["--predictors", *files["predictors"], "--out", tmp_path / "o.tif"]
    _expect_bad(["predict", "--model", tmp_path / "junk.pt", *base], "not a CWSC model file")
    _expect_bad(["predict", "--model", files["labels"], *base], "not a CWSC model file")
    _expect_bad(["predict", "--model", tmp_path / "none.pt", *base], "does not exist")
    assert not (tmp_path / "o.tif").exists() and _leftovers(tmp_path) == []


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_bad_input(twin_files, tmp_path):
    files, _ = twin_files
    _expect_bad(_train_args(files, tmp_path / "m.pt", "--device", "cuda"), "no CUDA", tmp_path)


def _start(args):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "backend", *map(str, args)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _terminate_when(proc, ready, delay=0.0, timeout=120):
    """Read events until ``ready(event)``; then SIGTERM; return (exit code, events)."""
    events, t0 = [], time.monotonic()
    for line in proc.stdout:
        events.append(json.loads(line))
        if ready(events[-1]):
            time.sleep(delay)
            proc.send_signal(signal.SIGTERM)
            break
        assert time.monotonic() - t0 < timeout
    rest, _ = proc.communicate(timeout=60)
    events += [json.loads(x) for x in rest.splitlines() if x.strip()]
    return proc.returncode, events


def test_sigterm_during_training_leaves_nothing(twin_files, tmp_path):
    files, _ = twin_files
    proc = _start(_train_args(files, tmp_path / "m.pt", "--epochs", "500", "--out-report",
                              tmp_path / "r.html"))
    rc, events = _terminate_when(proc, lambda e: e.get("stage") == "train")
    assert rc == 3
    assert last_event(events, "error")["kind"] == "cancelled"
    assert list(tmp_path.iterdir()) == []


def test_sigterm_during_prediction_leaves_nothing(tmp_path):
    from backend import io
    from backend.ml.modelfile import ModelBundle, grid_summary, save_model
    from backend.ml.network import ResNetConfig, build_network
    from backend.ml.patches import Scaling

    cfg = ResNetConfig(14)  # the seed's ResNet-32: slow enough on CPU to be caught mid-way
    c = 13
    bundle = ModelBundle([build_network(cfg).state_dict()], cfg,
                         Scaling("standard", np.zeros(c, np.float32), np.ones(c, np.float32), 0, 1),
                         [f"b{i}" for i in range(c)], 11,
                         grid_summary(io.Grid("", (0.5, 0, 0, 0, -0.5, 0), 200, 200)),
                         {"name": "default"})
    model = save_model(tmp_path / "m.pt", bundle)
    pred = write_tif(tmp_path / "p.tif", np.random.default_rng(0).normal(size=(c, 200, 200)),
                     descriptions=[f"b{i}" for i in range(c)])
    out = tmp_path / "out" / "cwsc.tif"
    out.parent.mkdir()
    proc = _start(["predict", "--model", model, "--predictors", pred, "--out", out, "--device", "cpu"])
    rc, events = _terminate_when(proc, lambda e: "model:" in e.get("message", ""), delay=1.0)
    assert rc == 3, events
    assert last_event(events, "error")["kind"] == "cancelled"
    assert list(out.parent.iterdir()) == []

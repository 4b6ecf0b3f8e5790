"""``python -m backend predict`` as the plugin runs it: refused models, SIGTERM leaves nothing."""

import os

import numpy as np

from backend_testing import expect_bad_input, last_event, leftovers, start_backend, terminate_when, write_tif


def test_predict_bad_models_and_channels(twin_files, tmp_path):
    files, _ = twin_files
    (tmp_path / "junk.pt").write_bytes(os.urandom(500))
    base = ["--predictors", *files["predictors"], "--out", tmp_path / "o.tif"]
    expect_bad_input(["predict", "--model", tmp_path / "junk.pt", *base], "not a CWSC model file")
    expect_bad_input(["predict", "--model", files["labels"], *base], "not a CWSC model file")
    expect_bad_input(["predict", "--model", tmp_path / "none.pt", *base], "does not exist")
    assert not (tmp_path / "o.tif").exists() and leftovers(tmp_path) == []


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
    proc = start_backend(["predict", "--model", model, "--predictors", pred, "--out", out, "--device", "cpu"])
    rc, events = terminate_when(proc, lambda e: "model:" in e.get("message", ""), delay=1.0)
    assert rc == 3, events
    assert last_event(events, "error")["kind"] == "cancelled"
    assert list(out.parent.iterdir()) == []

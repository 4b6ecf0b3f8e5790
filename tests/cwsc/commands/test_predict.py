"""``python -m cwsc predict`` as the plugin runs it: refused models and predictors, SIGTERM
leaves nothing, an extent."""

import os

import numpy as np
import pytest
from backend_testing import (
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


@pytest.mark.slow
def test_predict_bad_models_and_channels(twin_files, tmp_path):
    files, _ = twin_files
    (tmp_path / "junk.pt").write_bytes(os.urandom(500))
    base = ["--predictors", *files["predictors"], "--out", tmp_path / "o.tif"]
    expect_bad_input(["predict", "--model", tmp_path / "junk.pt", *base], "not a CWSC model file")
    expect_bad_input(["predict", "--model", files["labels"], *base], "not a CWSC model file")
    expect_bad_input(["predict", "--model", tmp_path / "none.pt", *base], "does not exist")
    assert not (tmp_path / "o.tif").exists() and leftovers(tmp_path) == []


@pytest.mark.serial
def test_sigterm_during_prediction_leaves_nothing(tmp_path):
    from cwsc.io import rasters as io
    from cwsc.ml.modelfile import ModelBundle, grid_summary, save_model
    from cwsc.ml.network import ResNetConfig, build_network
    from cwsc.ml.patches import Scaling

    cfg = ResNetConfig(14)  # the seed's ResNet-32: slow enough on CPU to be caught mid-way
    c = 13
    bundle = ModelBundle(
        [build_network(cfg).state_dict()],
        cfg,
        Scaling("standard", np.zeros(c, np.float32), np.ones(c, np.float32), 0, 1),
        [f"b{i}" for i in range(c)],
        11,
        grid_summary(io.Grid("", (0.5, 0, 0, 0, -0.5, 0), 200, 200)),
        {"name": "default"},
    )
    model = save_model(tmp_path / "m.pt", bundle)
    pred = write_tif(
        tmp_path / "p.tif",
        np.random.default_rng(0).normal(size=(c, 200, 200)),
        descriptions=[f"b{i}" for i in range(c)],
    )
    out = tmp_path / "out" / "cwsc.tif"
    out.parent.mkdir()
    proc = start_backend(["predict", "--model", model, "--predictors", pred, "--out", out, "--device", "cpu"])
    timings = {}
    rc, events = terminate_when(proc, lambda e: "model:" in e.get("message", ""), delay=1.0, timings=timings)
    print(f"\nSIGTERM during prediction: backend gone {timings['stop_s']:.2f} s later")
    assert timings["stop_s"] < 1.0
    assert rc == 3, events
    assert last_event(events, "error")["kind"] == "cancelled"
    assert list(out.parent.iterdir()) == []


@pytest.mark.slow
def test_a_predictor_far_outside_its_training_range_is_refused_unless_allowed(twin_files, tmp_path):
    """Problem 7 of issue 13: a predictor in another unit (or another one in its place) gave a
    map off by a median 55 mm with only a warning."""
    import rasterio

    files, _ = twin_files
    model = tmp_path / "m.pt"
    rc, _, err = run_backend(*train_args(files, model, "--epochs", "1"))
    assert rc == 0, err
    first = files["predictors"][0]
    with rasterio.open(first) as src:
        profile, data, names = src.profile, src.read(), src.descriptions
    data = np.where(data == src.nodata, data, data * 1000.0)  # m -> mm, say
    shifted = tmp_path / "in_mm.tif"
    with rasterio.open(shifted, "w", **profile) as dst:
        dst.write(data)
        for i, n in enumerate(names, 1):
            dst.set_band_description(i, n)
    args = [
        "predict",
        "--model",
        model,
        "--predictors",
        shifted,
        *files["predictors"][1:],
        "--out",
        tmp_path / "cwsc.tif",
    ]
    before = sorted(p.name for p in tmp_path.iterdir())
    expect_bad_input(args, "far outside what the model was trained on")
    rc, events, _ = run_backend(*args)
    message = last_event(events, "error")["message"]
    assert "channel 1 ('x00'" in message and "in_mm.tif' band 1" in message and "ALLOW_SHIFT" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    rc, events, err = run_backend(*args, "--allow-shift")
    assert rc == 0, err


@pytest.mark.slow
def test_a_time_series_given_as_a_predictor_gets_a_warning(twin_files, tmp_path):
    files, _ = twin_files
    model = tmp_path / "m.pt"
    assert run_backend(*train_args(files, model, "--epochs", "1"))[0] == 0
    series = write_tif(
        tmp_path / "monthly.tif", np.ones((30, 30, 30)), transform=(0.5, 0, 10.0, 0, -0.5, 50.0)
    )
    rc, events, _ = run_backend(
        "predict", "--model", model, "--predictors", series, "--out", tmp_path / "cwsc.tif"
    )
    warnings = [e["message"] for e in events if e.get("level") == "warning"]
    assert any("monthly.tif' has 30 bands" in w and "time series" in w for w in warnings), warnings


@pytest.mark.slow
def test_extent_predicts_a_window_like_the_whole_grid_inside_it(twin_files, tmp_path):
    files, _ = twin_files
    model = tmp_path / "m.pt"
    assert run_backend(*train_args(files, model, "--epochs", "1", "--extent=12,20,38,46"))[0] == 0
    whole, part = tmp_path / "whole.tif", tmp_path / "part.tif"
    for out, extra in ((whole, []), (part, ["--extent=11,19,40,48"])):
        rc, _, err = run_backend(
            "predict", "--model", model, "--predictors", *files["predictors"], "--out", out, *extra
        )
        assert rc == 0, err
    a, _, _ = read_tif(whole)
    b, profile, _ = read_tif(part)
    assert b.shape[1:] == (16, 16)
    assert tuple(profile["transform"])[:6] == (0.5, 0.0, 11.0, 0.0, -0.5, 48.0)
    # 10 E 50 N is the twin's corner: the window starts 2 columns and 4 rows in. Away from its
    # edges (the patch reaches 2 cells, the trees' 11 x 11 means 5) the window predicts what
    # the whole grid predicts.
    inner_a, inner_b = a[0, 9:15, 7:13], b[0, 5:11, 5:11]
    ok = np.isfinite(inner_a)
    np.testing.assert_allclose(inner_b[ok], inner_a[ok], rtol=1e-5)


@pytest.mark.slow
def test_a_trained_model_keeps_its_label_range_and_predict_writes_the_flags(twin_files, tmp_path):
    from cwsc.ml.modelfile import load_model

    files, _ = twin_files
    model = tmp_path / "m.pt"
    assert run_backend(*train_args(files, model, "--epochs", "1"))[0] == 0
    lo, hi = load_model(model).training["label_range"]
    labels = read_tif(files["labels"])[0][0]
    assert lo >= np.nanmin(labels) and hi <= np.nanmax(labels) and lo < hi
    rc, events, err = run_backend(
        "predict",
        "--model",
        model,
        "--predictors",
        *files["predictors"],
        "--out",
        tmp_path / "cwsc.tif",
        "--out-flags",
        tmp_path / "flags.tif",
    )
    assert rc == 0, err
    res = last_event(events, "result")
    assert res["outputs"]["OUTPUT_FLAGS"] == str(tmp_path / "flags.tif")
    cwsc, flags = read_tif(tmp_path / "cwsc.tif")[0][0], read_tif(tmp_path / "flags.tif")[0][0]
    land = np.isfinite(cwsc)
    assert np.nanmin(cwsc) >= lo - 1e-3 and np.nanmax(cwsc) <= hi + 1e-3
    np.testing.assert_array_equal(np.isfinite(flags), land)
    assert int((flags[land] > 0).sum()) == res["metrics"]["cells_bounded"]

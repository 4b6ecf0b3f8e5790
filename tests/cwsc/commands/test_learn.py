"""``python -m cwsc learn`` (then predict) as the plugin runs it: real GeoTIFFs of a twin,
events, the model file predict reads, bad input, and SIGTERM."""

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
    write_tif,
)

from cwsc.hydro.models import simulate
from cwsc.synthetic.fields import smooth_field
from cwsc.synthetic.forcing import synthetic_forcing

pytestmark = pytest.mark.slow  # subprocess runs of the backend, tens of seconds in all

SHAPE = (20, 20)
MONTHS = 96


@pytest.fixture(scope="module")
def runoff_twin(tmp_path_factory):
    """Predictors (two files, 3 bands), P, PET and Q (one band per month, dated 2001-01 on)
    of a twin whose runoff comes from SWBM with sc a smooth function of predictor 0; a sea
    column of nodata on the left."""
    folder = tmp_path_factory.mktemp("runoff_twin")
    rng = np.random.default_rng(3)
    preds = np.stack([smooth_field(rng, SHAPE, 3) for _ in range(3)]).astype(np.float32)
    truth = 60.0 + 400.0 / (1.0 + np.exp(-1.5 * preds[0]))
    p, e = synthetic_forcing(SHAPE[0] * SHAPE[1], MONTHS, seed=3)
    q = simulate("SWBM", p, e, {"sc": truth.ravel(), "ks": 0.3, "kg": 0.2}).runoff
    q = q * rng.lognormal(0, 0.05, q.shape)

    def grid(a):
        out = np.ascontiguousarray(a.T.reshape(MONTHS, *SHAPE)).astype(np.float32)
        out[:, :, 0] = np.nan
        return out

    dates = [f"{2001 + m // 12}-{m % 12 + 1:02d}" for m in range(MONTHS)]
    preds[:, :, 0] = np.nan
    files = {
        "predictors": [
            write_tif(folder / "terrain.tif", preds[:2], descriptions=["a (-)", "b (-)"]),
            write_tif(folder / "soil.tif", preds[2], descriptions=["c (-)"]),
        ],
        "precip": write_tif(folder / "p.tif", grid(p), descriptions=dates),
        "pet": write_tif(folder / "pet.tif", grid(e), descriptions=dates),
        "runoff": write_tif(folder / "q.tif", grid(q), descriptions=dates),
        "labels": write_tif(folder / "labels.tif", np.where(np.isfinite(preds[0]), truth, np.nan)),
    }
    return files, truth


def learn_args(files, out, *extra):
    return [
        "learn",
        "--predictors",
        *files["predictors"],
        "--precip",
        files["precip"],
        "--pet",
        files["pet"],
        "--runoff",
        files["runoff"],
        "--out-model",
        out,
        *TINY,
        "--batch-size",
        "32",
        *extra,
    ]


def test_learn_then_predict_speaks_the_protocol(runoff_twin, tmp_path):
    files, truth = runoff_twin
    model, report = tmp_path / "m.pt", tmp_path / "r.html"
    rc, events, err = run_backend(
        *learn_args(
            files,
            model,
            "--models",
            "SWBM,TVGM",
            "--epochs",
            "3",
            "--pretrain-epochs",
            "4",
            "--labels",
            files["labels"],
            "--out-report",
            report,
            "--batch-size",
            "4096",  # more than the training cells: each step takes them all
        )
    )
    assert rc == 0, err
    # The pretraining reports every epoch (PRETRAIN_EPOCHS of a million no longer sits silent).
    stages = [e["stage"] for e in events if e["event"] == "progress"]
    pretraining = [s for s in stages if s.startswith("pretraining: epoch")]
    assert pretraining and set(pretraining) <= {f"pretraining: epoch {k} of 4" for k in range(1, 5)}
    assert stages.index(pretraining[0]) < stages.index("learning")
    epochs = [e for e in events if e["event"] == "progress" and "epoch" in e]
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    assert all(e["stage"] == "learning" for e in epochs)
    assert {"train_loss", "val_loss", "val_kge"} <= set(epochs[0])
    fr = [e["fraction"] for e in events if e["event"] == "progress"]
    assert fr == sorted(fr) and fr[-1] == 1.0
    res = last_event(events, "result")
    assert res["outputs"] == {"OUTPUT_MODEL": str(model), "OUTPUT_REPORT": str(report)}
    m = res["metrics"]
    assert {
        "val_kge_test_cells",
        "cal_kge_train_cells",
        "cal_kge_test_cells",
        "train_cells",
        "test_cells",
        "epochs_run",
        "seconds",
    } <= set(m)
    land = SHAPE[0] * (SHAPE[1] - 1)
    assert m["train_cells"] + m["val_cells"] + m["test_cells"] + m["cells_without_runoff"] == land
    assert m["train_cells"] + m["val_cells"] + m["test_cells"] > 0.9 * land
    assert m["skipped_cells"] == 0
    assert -1.0 < m["val_kge_test_cells"] <= 1.0
    html = report.read_text()
    assert html.count("data:image/png;base64,") >= 4
    assert "validation months, held-out cells" in html and "Against the labels" in html
    assert "2001-01" in html  # the period read from the files
    # Fewer training cells than a batch: each step takes them all, and the model file says so.
    from cwsc.ml.modelfile import load_model

    bundle = load_model(model)
    assert m["train_cells"] < 4096 and bundle.recipe["batch_size"] == m["train_cells"]
    assert bundle.training["batch_size"] == m["train_cells"]

    out = tmp_path / "cwsc.tif"
    rc, events, err = run_backend(
        "predict", "--model", model, "--predictors", *files["predictors"], "--out", out
    )
    assert rc == 0, err
    bands, _, desc = read_tif(out)
    assert desc == ["CWSC (mm)", "SWBM sc (mm)", "TVGM sc (mm)"]
    valid = np.isfinite(bands[0])
    assert valid.sum() == land and not valid[:, 0].any()
    assert (bands[1:, valid] > 0).all() and (bands[1:, valid] <= 1000).all()
    # The joint CWSC is one model's sc or the mean of both (the label rule on the fits).
    lo, hi = bands[1:, valid].min(0), bands[1:, valid].max(0)
    assert ((bands[0, valid] >= lo - 1e-3) & (bands[0, valid] <= hi + 1e-3)).all()
    assert leftovers(tmp_path) == []


def test_learn_bad_inputs(runoff_twin, tmp_path):
    files, _ = runoff_twin
    out = tmp_path / "m.pt"
    expect_bad_input(learn_args(files, out, "--models", "HBV"), "HBV", tmp_path)
    expect_bad_input(learn_args(files, out, "--batch-size", "1"), "BATCH_SIZE must be at least 2", tmp_path)
    expect_bad_input(learn_args(files, out, "--calibration-fraction", "0.2"), "calibration", tmp_path)
    expect_bad_input(learn_args(files, out, "--pretrain-epochs", "-1"), "PRETRAIN_EPOCHS", tmp_path)
    expect_bad_input(learn_args(files, tmp_path / "nofolder" / "m.pt"), "does not exist", tmp_path)
    # No cell with valid runoff.
    dry = write_tif(
        tmp_path / "dry.tif",
        np.full((MONTHS,) + SHAPE, np.nan),
        descriptions=[f"{2001 + m // 12}-{m % 12 + 1:02d}" for m in range(MONTHS)],
    )
    args = learn_args(files, out)
    args[args.index("--runoff") + 1] = dry
    expect_bad_input(args, "RUNOFF", tmp_path)
    dry.unlink()
    # Predictors that cannot be put on the runoff's grid are refused, naming the file.
    nocrs = write_tif(tmp_path / "nocrs.tif", np.ones(SHAPE), transform=(1, 0, 0, 0, -1, 0), crs=None)
    args = learn_args(files, out)
    args[2:4] = [nocrs]
    expect_bad_input(args, "nocrs.tif", tmp_path)


def test_predictors_on_another_grid_are_aligned_with_a_warning(runoff_twin, tmp_path):
    import rasterio

    files, _ = runoff_twin
    # The same predictors at twice the resolution: resampled to the runoff's grid.
    fine = []
    for path in files["predictors"]:
        with rasterio.open(path) as src:
            data = src.read().astype(np.float32)
            data[data == src.nodata] = np.nan
        data = np.repeat(np.repeat(data, 2, axis=1), 2, axis=2)
        fine.append(write_tif(tmp_path / path.name, data, transform=(0.25, 0, -10.0, 0, -0.25, 60.0)))
    args = learn_args(files, tmp_path / "m.pt", "--models", "SWBM", "--epochs", "1")
    args[2:4] = fine
    rc, events, err = run_backend(*args)
    assert rc == 0, err
    warnings = [e["message"] for e in events if e.get("level") == "warning"]
    assert any("terrain.tif" in w and "resampl" in w for w in warnings), warnings


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_bad_input(runoff_twin, tmp_path):
    files, _ = runoff_twin
    expect_bad_input(learn_args(files, tmp_path / "m.pt", "--device", "cuda"), "no CUDA", tmp_path)


def test_a_failed_or_stopped_learn_leaves_the_users_files_byte_identical(runoff_twin, tmp_path):
    files, _ = runoff_twin
    model, report = tmp_path / "m.pt", tmp_path / "r.html"
    model.write_bytes(b"the user's earlier model")
    report.write_bytes(b"<html>the user's earlier report</html>")
    before = {p: p.read_bytes() for p in (model, report, *files["predictors"], files["runoff"])}
    rc, events, _ = run_backend(*learn_args(files, model, "--models", "HBV", "--out-report", report))
    assert rc == 2 and "HBV" in last_event(events, "error")["message"]
    proc = start_backend(learn_args(files, model, "--epochs", "500", "--out-report", report))
    rc, _ = terminate_when(proc, lambda e: e.get("stage") == "learning")
    assert rc == 3
    assert {p: p.read_bytes() for p in before} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt", "r.html"]


@pytest.mark.serial
def test_sigterm_during_learning_leaves_nothing(runoff_twin, tmp_path):
    files, _ = runoff_twin
    proc = start_backend(
        learn_args(files, tmp_path / "m.pt", "--epochs", "500", "--out-report", tmp_path / "r.html")
    )
    timings = {}
    rc, events = terminate_when(proc, lambda e: e.get("stage") == "learning", timings=timings)
    print(f"\nSIGTERM during learning: backend gone {timings['stop_s']:.2f} s later")
    assert timings["stop_s"] < 1.0
    assert rc == 3
    assert last_event(events, "error")["kind"] == "cancelled"
    assert list(tmp_path.iterdir()) == []


def test_sigterm_while_the_training_cells_are_calibrated_leaves_nothing(runoff_twin, tmp_path):
    files, _ = runoff_twin
    model = tmp_path / "m.pt"
    model.write_bytes(b"the user's earlier model")
    proc = start_backend(
        learn_args(files, model, "--pretrain-epochs", "50", "--out-report", tmp_path / "r.html")
    )
    rc, events = terminate_when(proc, lambda e: e.get("stage", "").startswith("pretraining"))
    assert rc == 3 and last_event(events, "error")["kind"] == "cancelled"
    assert model.read_bytes() == b"the user's earlier model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]

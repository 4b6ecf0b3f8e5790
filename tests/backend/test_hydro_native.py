"""The C kernels of the calibration objective (backend/hydro/cpu_kernels.c) against torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.hydro import CalibrationConfig, SceuaSettings, calibrate_model, metrics, native
from backend.hydro.models import PARAMETERS, Forcing, run_months
from backend.hydro.synthetic import random_params, synthetic_forcing, synthetic_runoff

needs_kernels = pytest.mark.skipif(not native.available(),
                                   reason=f"CPU kernels unavailable: {native.why_not()}")


def _case(model, form, objective, dtype, cells=40, months=120, columns=600, seed=4):
    p, e = synthetic_forcing(cells, months, seed)
    q = synthetic_runoff(model, p, e, random_params(model, cells, seed), noise=0.15, seed=seed)
    q[3, 20:50] = np.nan                      # missing months are skipped
    q[7, :] = np.nan                          # a cell with no defined metric
    pt, et, qt = (torch.as_tensor(a, dtype=dtype).T.contiguous() for a in (p, e, q))
    forcing = Forcing(model, pt, et, form)
    w, c = 12, 90
    target = metrics.CalibrationTarget(qt, slice(w, c), objective)
    g = torch.Generator().manual_seed(seed)
    cell = torch.randint(0, cells, (columns,), generator=g)
    lo = torch.tensor([b[0] for b in PARAMETERS[model].values()], dtype=torch.float64)
    hi = torch.tensor([b[1] for b in PARAMETERS[model].values()], dtype=torch.float64)
    x = lo + torch.rand(columns, len(lo), generator=g, dtype=torch.float64) * (hi - lo)
    x[:5, 0] = lo[0]                          # parameters on the bounds (DWBM: sc = 0)
    x[5:10, -1] = hi[-1]
    return forcing, target, cell, x, w, c


@needs_kernels
@pytest.mark.parametrize("model", ["DWBM", "SWBM", "TVGM"])
@pytest.mark.parametrize("form", ["conserving", "seed"])
@pytest.mark.parametrize("objective", ["kge", "nse"])
def test_kernel_objective_matches_torch_in_float64(model, form, objective):
    forcing64, target64, cell, x, w, c = _case(model, form, objective, torch.float64)
    names = list(PARAMETERS[model])
    prm = {k: x[:, i].contiguous() for i, k in enumerate(names)}
    sim = run_months(forcing64.select(cell), prm, compile=False, months=c)["runoff"]
    ref = target64.objective(sim, cell, compile=False)

    forcing32, target32, *_ = _case(model, form, objective, torch.float32)
    _, stacked = forcing32.block_arrays()
    sums = native.score_sums(model, form == "conserving", cell, stacked,
                             x.T.to(torch.float32), c, w, target32.weight, target32.centred)
    got = target32.objective_from_sums(sums, cell)

    np.testing.assert_array_equal(torch.isnan(got).numpy(), torch.isnan(ref).numpy())
    assert bool(torch.isnan(got[cell == 7]).all())
    fine = torch.isfinite(ref) & (ref.abs() < 10)   # runaway seed runs aside (float32 range)
    assert int(fine.sum()) > 400
    # float32 arithmetic against the float64 reference: what the torch float32 path reaches.
    assert float((got - ref)[fine].abs().max()) < 2e-4


@needs_kernels
def test_kernel_threads_and_padding_do_not_change_the_result():
    forcing, target, cell, x, w, c = _case("DWBM", "conserving", "kge", torch.float32,
                                           columns=131)   # not a multiple of the block
    _, stacked = forcing.block_arrays()
    prm = x.T.to(torch.float32)
    one = native.score_sums("DWBM", True, cell, stacked, prm, c, w, target.weight,
                            target.centred, threads=1)
    two = native.score_sums("DWBM", True, cell, stacked, prm, c, w, target.weight,
                            target.centred, threads=2)
    assert torch.equal(one, two)
    part = native.score_sums("DWBM", True, cell[:7], stacked, prm[:, :7].contiguous(), c, w,
                             target.weight, target.centred, threads=1)
    assert torch.equal(part, one[:, :7])


def dwbm_cells(cells: int, months: int, seed: int):
    """Forcing and noisy DWBM runoff (cells, months) for the calibration comparisons."""
    p, e = synthetic_forcing(cells, months, seed=seed)
    q = synthetic_runoff("DWBM", p, e, random_params("DWBM", cells, seed=seed), noise=0.1,
                         seed=seed)
    return p, e, q


@needs_kernels
def test_calibration_with_kernels_matches_torch_path():
    p, e, q = dwbm_cells(24, 120, seed=9)
    cfg = dict(models=("DWBM",), sceua=SceuaSettings(max_evaluations=400), seed=2)
    fast = calibrate_model("DWBM", p, e, q, CalibrationConfig(native=True, **cfg))
    slow = calibrate_model("DWBM", p, e, q, CalibrationConfig(native=False, compile=False, **cfg))
    assert np.all(np.isfinite(fast.kge_cal))
    # Rounding differs, so the searches part ways; the quality must not.
    assert abs(np.median(fast.kge_cal) - np.median(slow.kge_cal)) < 0.01
    again = calibrate_model("DWBM", p, e, q, CalibrationConfig(native=True, **cfg))
    np.testing.assert_array_equal(fast.params["sc"], again.params["sc"])


def test_without_a_compiler_calibration_runs_on_torch(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(native, "_LIB", None)
    monkeypatch.setattr(native, "_TRIED", False)
    monkeypatch.setattr(native, "_WHY", "")
    monkeypatch.setattr(native, "_compiler", lambda: None)
    assert not native.available()
    assert "compiler" in native.why_not()
    p, e = synthetic_forcing(4, 60, seed=1)
    q = synthetic_runoff("SWBM", p, e, random_params("SWBM", 4, seed=1), noise=0.05, seed=1)
    lab = calibrate_model("SWBM", p, e, q, CalibrationConfig(
        models=("SWBM",), sceua=SceuaSettings(max_evaluations=60)))
    assert np.all(np.isfinite(lab.kge_cal))


def test_kernels_build_into_the_cache_atomically(monkeypatch, tmp_path):
    if native._compiler() is None:
        pytest.skip("no C compiler")
    monkeypatch.setenv("CWSC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(native, "_LIB", None)
    monkeypatch.setattr(native, "_TRIED", False)
    monkeypatch.setattr(native, "_WHY", "")
    assert native.available(), native.why_not()
    files = sorted(f.name for f in (tmp_path / "cache").iterdir())
    assert len(files) == 1 and files[0].startswith("cwsc_kernels-") and files[0].endswith(".so")


def test_environment_turns_the_kernels_off(monkeypatch):
    monkeypatch.setenv("CWSC_NATIVE", "0")
    assert native.wanted() is False
    assert native.wanted(False) is False


def test_info_says_which_calibration_path_runs():
    from conftest import last_event, run_backend

    rc, events, err = run_backend("info", timeout=120)
    assert rc == 0, err
    kernels = last_event(events, "result")["metrics"]["cpu_kernels"]
    assert kernels["available"] == native.available()
    logs = [e["message"] for e in events if e["event"] == "log"]
    assert any(m.startswith("calibration on the CPU: ") for m in logs)


def test_the_calibrate_log_names_the_engine():
    from backend.hydro.command import _engine

    if native.available():
        assert _engine(CalibrationConfig()) == "models run in the C kernels"
        assert _engine(CalibrationConfig(native=False)) == \
            "models run in torch (C kernels turned off)"
    else:
        assert native.why_not() in _engine(CalibrationConfig())
    assert _engine(CalibrationConfig(dtype=torch.float64)) == "models run in torch"


def test_an_unwritable_cache_falls_back_to_the_temporary_folder(monkeypatch, tmp_path):
    if native._compiler() is None:
        pytest.skip("no C compiler")
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("x")               # a file where the cache folder should be
    monkeypatch.setenv("CWSC_CACHE_DIR", str(blocked / "cwsc"))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(native.tempfile, "tempdir", None)   # re-read TMPDIR
    monkeypatch.setattr(native, "_LIB", None)
    monkeypatch.setattr(native, "_TRIED", False)
    monkeypatch.setattr(native, "_WHY", "")
    assert native.available(), native.why_not()
    built = list((tmp_path / "tmp").glob("cwsc-*/cwsc_kernels-*.so"))
    assert len(built) == 1


@needs_kernels
def test_kernel_calls_are_chunked_without_changing_the_result():
    p, e, q = dwbm_cells(12, 96, seed=3)
    cfg = dict(models=("DWBM",), sceua=SceuaSettings(max_evaluations=120), seed=4, native=True)
    whole = calibrate_model("DWBM", p, e, q, CalibrationConfig(**cfg))
    chunked = calibrate_model("DWBM", p, e, q, CalibrationConfig(max_columns=7, **cfg))
    np.testing.assert_array_equal(whole.params["sc"], chunked.params["sc"])
    np.testing.assert_array_equal(whole.kge_cal, chunked.kge_cal)

"""The C kernels of the calibration objective (cwsc/hydro/engines/cpu_kernels.c) against torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from backend_testing import dwbm_cells, objective_case

from cwsc.hydro.calibration.config import CalibrationConfig
from cwsc.hydro.calibration.shard import calibrate_model
from cwsc.hydro.engines import cpu as cpu_kernels
from cwsc.hydro.engines.selection import Tuning
from cwsc.hydro.models import PARAMETERS, run_months
from cwsc.hydro.sceua import SceuaSettings
from cwsc.synthetic.forcing import random_params, synthetic_forcing, synthetic_runoff

needs_kernels = pytest.mark.skipif(
    not cpu_kernels.available(), reason=f"CPU kernels unavailable: {cpu_kernels.why_not()}"
)


@needs_kernels
@pytest.mark.parametrize("model", ["DWBM", "SWBM", "TVGM"])
@pytest.mark.parametrize("form", ["conserving", "seed", "bounded"])
@pytest.mark.parametrize("objective", ["kge", "nse"])
def test_kernel_objective_matches_torch_in_float64(model, form, objective):
    forcing64, target64, cell, x, w, c = objective_case(model, form, objective, torch.float64)
    names = list(PARAMETERS[model])
    prm = {k: x[:, i].contiguous() for i, k in enumerate(names)}
    sim = run_months(forcing64.select(cell), prm, fused=False, months=c)["runoff"]
    ref = target64.objective(sim, cell, fused=False)

    forcing32, target32, *_ = objective_case(model, form, objective, torch.float32)
    _, stacked = forcing32.block_arrays()
    mode = {"seed": 0, "conserving": 1, "bounded": 2}[form]
    sums = cpu_kernels.score_sums(
        model, mode, cell, stacked, x.T.to(torch.float32), c, w, target32.weight, target32.centred
    )
    got = target32.objective_from_sums(sums, cell)

    np.testing.assert_array_equal(torch.isnan(got).numpy(), torch.isnan(ref).numpy())
    assert bool(torch.isnan(got[cell == 7]).all())
    fine = torch.isfinite(ref) & (ref.abs() < 10)  # runaway seed runs aside (float32 range)
    assert int(fine.sum()) > 400
    # float32 arithmetic against the float64 reference: what the torch float32 path reaches.
    assert float((got - ref)[fine].abs().max()) < 2e-4


@needs_kernels
def test_kernel_threads_and_padding_do_not_change_the_result():
    forcing, target, cell, x, w, c = objective_case(
        "DWBM", "conserving", "kge", torch.float32, columns=131
    )  # not a multiple of the block
    _, stacked = forcing.block_arrays()
    prm = x.T.to(torch.float32)
    one = cpu_kernels.score_sums(
        "DWBM", True, cell, stacked, prm, c, w, target.weight, target.centred, threads=1
    )
    two = cpu_kernels.score_sums(
        "DWBM", True, cell, stacked, prm, c, w, target.weight, target.centred, threads=2
    )
    assert torch.equal(one, two)
    part = cpu_kernels.score_sums(
        "DWBM",
        True,
        cell[:7],
        stacked,
        prm[:, :7].contiguous(),
        c,
        w,
        target.weight,
        target.centred,
        threads=1,
    )
    assert torch.equal(part, one[:, :7])


@needs_kernels
@pytest.mark.slow
def test_calibration_with_kernels_matches_torch_path():
    p, e, q = dwbm_cells(24, 120, seed=9)
    cfg = dict(models=("DWBM",), sceua=SceuaSettings(max_evaluations=400), seed=2)
    fast = calibrate_model("DWBM", p, e, q, CalibrationConfig(**cfg), tuning=Tuning(kernels=True))
    slow = calibrate_model(
        "DWBM", p, e, q, CalibrationConfig(**cfg), tuning=Tuning(kernels=False, compile=False)
    )
    assert np.all(np.isfinite(fast.kge_cal))
    # Rounding differs, so the searches part ways; the quality must not.
    assert abs(np.median(fast.kge_cal) - np.median(slow.kge_cal)) < 0.01
    again = calibrate_model("DWBM", p, e, q, CalibrationConfig(**cfg), tuning=Tuning(kernels=True))
    np.testing.assert_array_equal(fast.params["sc"], again.params["sc"])


def test_without_a_compiler_calibration_runs_on_torch(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(cpu_kernels, "_LIB", None)
    monkeypatch.setattr(cpu_kernels, "_TRIED", False)
    monkeypatch.setattr(cpu_kernels, "_WHY", "")
    monkeypatch.setattr(cpu_kernels, "compiler", lambda: None)
    assert not cpu_kernels.available()
    assert "compiler" in cpu_kernels.why_not()
    p, e = synthetic_forcing(4, 60, seed=1)
    q = synthetic_runoff("SWBM", p, e, random_params("SWBM", 4, seed=1), noise=0.05, seed=1)
    lab = calibrate_model(
        "SWBM", p, e, q, CalibrationConfig(models=("SWBM",), sceua=SceuaSettings(max_evaluations=60))
    )
    assert np.all(np.isfinite(lab.kge_cal))


def test_kernels_build_into_the_cache_atomically(monkeypatch, tmp_path):
    if cpu_kernels.compiler() is None:
        pytest.skip("no C compiler")
    monkeypatch.setenv("CWSC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(cpu_kernels, "_LIB", None)
    monkeypatch.setattr(cpu_kernels, "_TRIED", False)
    monkeypatch.setattr(cpu_kernels, "_WHY", "")
    assert cpu_kernels.available(), cpu_kernels.why_not()
    files = sorted(f.name for f in (tmp_path / "cache").iterdir())
    assert len(files) == 1 and files[0].startswith("cwsc_kernels-") and files[0].endswith(".so")


def test_info_says_which_calibration_path_runs():
    from backend_testing import last_event, run_backend

    rc, events, err = run_backend("info", timeout=120)
    assert rc == 0, err
    kernels = last_event(events, "result")["metrics"]["cpu_kernels"]
    assert kernels["available"] == cpu_kernels.available()
    logs = [e["message"] for e in events if e["event"] == "log"]
    assert any(m.startswith("calibration on the CPU: ") for m in logs)


def test_an_unwritable_cache_falls_back_to_the_temporary_folder(monkeypatch, tmp_path):
    if cpu_kernels.compiler() is None:
        pytest.skip("no C compiler")
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("x")  # a file where the cache folder should be
    monkeypatch.setenv("CWSC_CACHE_DIR", str(blocked / "cwsc"))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(cpu_kernels.tempfile, "tempdir", None)  # re-read TMPDIR
    monkeypatch.setattr(cpu_kernels, "_LIB", None)
    monkeypatch.setattr(cpu_kernels, "_TRIED", False)
    monkeypatch.setattr(cpu_kernels, "_WHY", "")
    assert cpu_kernels.available(), cpu_kernels.why_not()
    built = list((tmp_path / "tmp").glob("cwsc-*/cwsc_kernels-*.so"))
    assert len(built) == 1


@needs_kernels
def test_kernel_calls_are_chunked_without_changing_the_result():
    p, e, q = dwbm_cells(12, 96, seed=3)
    cfg = CalibrationConfig(models=("DWBM",), sceua=SceuaSettings(max_evaluations=120), seed=4)
    whole = calibrate_model("DWBM", p, e, q, cfg, tuning=Tuning(kernels=True))
    chunked = calibrate_model("DWBM", p, e, q, cfg, tuning=Tuning(kernels=True, max_columns=7))
    np.testing.assert_array_equal(whole.params["sc"], chunked.params["sc"])
    np.testing.assert_array_equal(whole.kge_cal, chunked.kge_cal)

"""Per-cell calibration (one batch, one model, every model) and its periods."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cwsc.hydro.calibration.config import CalibrationConfig
from cwsc.hydro.calibration.driver import calibrate
from cwsc.hydro.calibration.shard import calibrate_model
from cwsc.hydro.sceua import SceuaSettings


def test_periods_follow_the_seed_and_are_configurable():
    assert CalibrationConfig().periods(240) == (24, 180)
    assert CalibrationConfig().periods(96) == (12, 72)
    assert CalibrationConfig(warmup_months=6, calibration_fraction=0.5).periods(96) == (6, 48)
    with pytest.raises(ValueError):
        CalibrationConfig(warmup_months=80).periods(96)


def _config(**kw):
    return CalibrationConfig(**{"restarts": 2, "sceua": SceuaSettings(max_evaluations=400), **kw})


def test_calibration_recovers_a_twin_experiment(twin):
    p, e, q, _ = twin
    lab = calibrate_model("SWBM", p, e, q, _config())
    assert np.all(lab.kge_cal > 0.9)
    assert np.all(np.isfinite(lab.kge_val)) and np.all(np.isfinite(lab.nse_cal))
    assert np.all(lab.sc_low <= lab.params["sc"]) and np.all(lab.params["sc"] <= lab.sc_high)
    assert np.all(lab.evaluations > 0) and np.all(lab.calibration_months == 60)
    assert np.all((lab.limited_fraction >= 0) & (lab.limited_fraction <= 1))
    for k in ("ks", "kg", "sc"):
        assert lab.params[k].shape == (6,)


def test_calibration_is_reproducible_with_a_seed(twin):
    p, e, q, _ = twin
    cfg = _config(sceua=SceuaSettings(max_evaluations=60), seed=3)
    a = calibrate_model("SWBM", p[:3], e[:3], q[:3], cfg)
    b = calibrate_model("SWBM", p[:3], e[:3], q[:3], cfg)
    np.testing.assert_array_equal(a.params["sc"], b.params["sc"])
    np.testing.assert_array_equal(a.kge_cal, b.kge_cal)


def test_fixed_sc_is_kept_and_others_calibrated(twin):
    p, e, q, prm = twin
    lab = calibrate_model(
        "SWBM", p, e, q, _config(sceua=SceuaSettings(max_evaluations=150)), fixed={"sc": prm["sc"]}
    )
    np.testing.assert_allclose(lab.params["sc"], prm["sc"], rtol=1e-6)
    assert np.isnan(lab.sc_low).all() and np.isnan(lab.sc_high).all()  # sc given: no range
    assert np.median(lab.kge_cal) > 0.8


def test_unusable_cells_get_nan_labels(twin):
    p, e, q, _ = twin
    p, e, q = p[:3].copy(), e[:3].copy(), q[:3].copy()
    p[0, 5] = np.nan  # missing forcing
    q[1, :] = np.nan  # no runoff at all
    q[1, 40:45] = 3.0
    lab = calibrate_model("SWBM", p, e, q, _config(sceua=SceuaSettings(max_evaluations=40)))
    assert np.isnan(lab.kge_cal[:2]).all() and np.isnan(lab.params["sc"][:2]).all()
    assert np.isfinite(lab.kge_cal[2])


def test_calibrate_runs_every_model_and_reports_progress(twin):
    p, e, q, _ = twin
    seen = []
    res = calibrate(
        p[:2], e[:2], q[:2], _config(sceua=SceuaSettings(max_evaluations=40)), progress=seen.append
    )
    assert set(res.models) == {"DWBM", "SWBM", "TVGM"}
    assert seen[-1] == 1.0 and seen == sorted(seen) and len(seen) > 3
    assert res.cwsc.shape == (2,) and np.all(np.isfinite(res.kge))
    best = np.nanmax(np.stack([res.models[m].kge_cal for m in res.models]), 0)
    np.testing.assert_allclose(res.kge, best)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_calibration_on_cuda(twin):
    p, e, q, _ = twin
    cfg = _config(device="cuda")
    gpu = calibrate_model("SWBM", p, e, q, cfg)
    cpu = calibrate_model("SWBM", p, e, q, _config())
    assert np.all(np.isfinite(gpu.kge_cal))
    assert abs(np.median(gpu.kge_cal) - np.median(cpu.kge_cal)) < 0.02

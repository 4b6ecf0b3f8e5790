"""Shards in worker processes: the same labels for any number of workers."""

from __future__ import annotations

import numpy as np

from backend.hydro.calibrate import calibrate_model
from backend.hydro.config import CalibrationConfig
from backend.hydro.sceua import SceuaSettings


def _config(**kw):
    return CalibrationConfig(**{"restarts": 2, "sceua": SceuaSettings(max_evaluations=400), **kw})


def test_sharded_cpu_calibration_is_the_same_with_any_worker_count(twin, monkeypatch):
    # Large CPU runs are split into shards of cells calibrated in worker processes; the
    # shards and their seeds depend on the cells and the seed only, not on the workers.
    p, e, q, _ = twin
    monkeypatch.setenv("CWSC_PARALLEL_MIN_CELLS", "4")
    cfg = _config(sceua=SceuaSettings(max_evaluations=60), seed=5)
    out = {}
    for workers in ("1", "2"):
        monkeypatch.setenv("CWSC_WORKERS", workers)
        seen = []
        out[workers] = calibrate_model("DWBM", p, e, q, cfg, progress=seen.append)
        assert seen and seen[-1] == 1.0 and all(0.0 <= f <= 1.0 for f in seen)
    a, b = out["1"], out["2"]
    assert a.kge_cal.shape == (p.shape[0],)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    np.testing.assert_array_equal(a.kge_cal, b.kge_cal)
    np.testing.assert_array_equal(a.evaluations, b.evaluations)
    assert np.all(np.isfinite(a.kge_cal))

"""SCE-UA in lockstep and the per-cell calibration with its labels."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from backend.hydro import (CalibrationConfig, ModelLabels, SceuaSettings, calibrate,
                           calibrate_model, joint_labels, sceua)
from backend.hydro.synthetic import random_params, synthetic_forcing, synthetic_runoff


def _quadratic(shift):
    calls = []

    def objective(x, prob):
        calls.append(x.shape[0])
        return ((x - shift[prob]) ** 2).sum(-1)
    return objective, calls


def test_sceua_finds_each_problems_own_optimum():
    b, n = 12, 3
    shift = torch.rand(b, n, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 4 - 2
    objective, calls = _quadratic(shift)
    lo, hi = torch.full((n,), -5.0, dtype=torch.float64), torch.full((n,), 5.0, dtype=torch.float64)
    res = sceua(objective, lo, hi, b, initial=torch.zeros(n, dtype=torch.float64),
                settings=SceuaSettings(max_evaluations=2000), generator=torch.Generator().manual_seed(0))
    assert (res.best_x - shift).abs().max() < 0.05
    assert res.population_x.shape == (b, 2 * (2 * n + 1), n)
    assert torch.all(res.population_f[:, :-1] <= res.population_f[:, 1:])  # sorted best first
    # Lockstep: far fewer objective calls than evaluations.
    assert len(calls) < res.evaluations.sum() / 5


def test_sceua_stops_each_problem_on_its_own():
    n = 2
    shift = torch.zeros(3, n, dtype=torch.float64)
    flat = torch.tensor([False, False, True])

    def objective(x, prob):
        f = ((x - shift[prob]) ** 2).sum(-1)
        # Problem 2 is flat: its best never changes, so kstop/pcento stops it early.
        return torch.where(flat[prob], torch.ones_like(f), f)

    lo, hi = torch.full((n,), -1.0, dtype=torch.float64), torch.full((n,), 1.0, dtype=torch.float64)
    st = SceuaSettings(max_evaluations=400, kstop=3, peps=1e-12)
    res = sceua(objective, lo, hi, 3, settings=st, generator=torch.Generator().manual_seed(0))
    assert res.evaluations[2] < res.evaluations[0]
    assert res.loops[2] < res.loops[0]
    assert torch.all(res.evaluations <= st.max_evaluations + 3 * st.complexes)


def test_sceua_never_accepts_nan_and_is_seeded():
    n = 2

    def objective(x, prob):
        f = ((x - 0.8) ** 2).sum(-1)
        return torch.where(x[:, 0] > 0.5, torch.full_like(f, math.nan), f)  # optimum region fails

    lo, hi = torch.zeros(n, dtype=torch.float64), torch.ones(n, dtype=torch.float64)
    run = lambda seed: sceua(objective, lo, hi, 4, settings=SceuaSettings(max_evaluations=300),  # noqa: E731
                             generator=torch.Generator().manual_seed(seed))
    a, b, c = run(7), run(7), run(8)
    assert torch.isfinite(a.best_f).all()
    assert (a.best_x[:, 0] <= 0.5).all()
    assert torch.equal(a.best_x, b.best_x) and torch.equal(a.evaluations, b.evaluations)
    assert not torch.equal(a.population_x, c.population_x)


def test_sceua_all_nan_problem_stops_at_once():
    def objective(x, prob):
        return torch.where(prob == 0, torch.full((x.shape[0],), math.nan, dtype=x.dtype),
                           (x ** 2).sum(-1))

    lo, hi = torch.full((2,), -1.0), torch.full((2,), 1.0)
    res = sceua(objective, lo, hi, 2, settings=SceuaSettings(max_evaluations=200))
    assert res.evaluations[0] == 10 and torch.isnan(res.best_f[0])
    assert torch.isfinite(res.best_f[1])


def test_periods_follow_the_seed_and_are_configurable():
    assert CalibrationConfig().periods(240) == (24, 180)
    assert CalibrationConfig().periods(96) == (12, 72)
    assert CalibrationConfig(warmup_months=6, calibration_fraction=0.5).periods(96) == (6, 48)
    with pytest.raises(ValueError):
        CalibrationConfig(warmup_months=80).periods(96)


@pytest.fixture(scope="module")
def twin():
    cells, months = 6, 96
    p, e = synthetic_forcing(cells, months, seed=11)
    prm = random_params("SWBM", cells, seed=11)
    q = synthetic_runoff("SWBM", p, e, prm, noise=0.05, seed=11)
    return p, e, q, prm


def _config(**kw):
    return CalibrationConfig(**{"restarts": 2, "sceua": SceuaSettings(max_evaluations=400), **kw})


def test_calibration_recovers_a_twin_experiment(twin):
    p, e, q, _ = twin
    lab = calibrate_model("SWBM", p, e, q, _config())
    assert np.all(lab.kge_cal > 0.9)
    assert np.all(np.isfinite(lab.kge_val)) and np.all(np.isfinite(lab.nse_cal))
    assert np.all(lab.sc_spread >= 0) and np.all(lab.evaluations > 0)
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
    lab = calibrate_model("SWBM", p, e, q, _config(sceua=SceuaSettings(max_evaluations=150)),
                          fixed={"sc": prm["sc"]})
    np.testing.assert_allclose(lab.params["sc"], prm["sc"], rtol=1e-6)
    assert np.all(lab.sc_spread == 0)
    assert np.median(lab.kge_cal) > 0.8


def test_unusable_cells_get_nan_labels(twin):
    p, e, q, _ = twin
    p, e, q = p[:3].copy(), e[:3].copy(), q[:3].copy()
    p[0, 5] = np.nan            # missing forcing
    q[1, :] = np.nan            # no runoff at all
    q[1, 40:45] = 3.0
    lab = calibrate_model("SWBM", p, e, q, _config(sceua=SceuaSettings(max_evaluations=40)))
    assert np.isnan(lab.kge_cal[:2]).all() and np.isnan(lab.params["sc"][:2]).all()
    assert np.isfinite(lab.kge_cal[2])


def _labels(kge, sc, spread):
    nan = np.full(len(kge), np.nan)
    return ModelLabels({"sc": np.array(sc, float)}, np.array(kge, float), nan, nan, nan, nan,
                       np.array(spread, float), np.zeros(len(kge)))


def test_joint_labels_weighting_threshold_and_best_kge():
    labs = {"A": _labels([0.8, -0.2, np.nan, 0.0], [100, 300, 10, 50], [10, 5, 1, 4]),
            "B": _labels([0.2, -0.5, np.nan, 0.3], [200, 400, 20, 70], [20, 5, 1, 8])}
    cwsc, spread, best = joint_labels(labs, threshold=0.0)
    assert cwsc[0] == pytest.approx((0.8 * 100 + 0.2 * 200) / 1.0)
    assert spread[0] == pytest.approx((0.8 * 10 + 0.2 * 20) / 1.0)
    assert np.isnan(cwsc[1]) and best[1] == pytest.approx(-0.2)   # no model above 0
    assert np.isnan(cwsc[2]) and np.isnan(best[2])                # never calibrated
    assert cwsc[3] == pytest.approx(70.0)                          # KGE = 0 is not above 0
    cwsc_low, _, _ = joint_labels(labs, threshold=-1.0)
    assert cwsc_low[1] == pytest.approx(350.0)                     # all weights 0: equal


def test_joint_label_margin_keeps_the_models_close_to_the_best():
    labs = {"A": _labels([0.90, 0.50, 0.30], [100, 300, 10], [1, 1, 1]),
            "B": _labels([0.89, 0.80, np.nan], [200, 400, 20], [3, 3, 3]),
            "C": _labels([0.60, 0.79, 0.20], [900, 500, 30], [5, 5, 5])}
    cwsc, _, best = joint_labels(labs, threshold=0.0, margin=0.02)
    assert cwsc[0] == pytest.approx((0.90 * 100 + 0.89 * 200) / 1.79)   # C is 0.30 behind
    assert cwsc[1] == pytest.approx((0.80 * 400 + 0.79 * 500) / 1.59)   # A is 0.30 behind
    assert cwsc[2] == pytest.approx(10.0)                                # only the best
    np.testing.assert_allclose(best, [0.90, 0.80, 0.30])
    cwsc_all, _, _ = joint_labels(labs, threshold=0.0)
    assert cwsc_all[0] == pytest.approx((90 + 178 + 540) / 2.39)          # no margin: all three


def test_calibrate_runs_every_model_and_reports_progress(twin):
    p, e, q, _ = twin
    seen = []
    res = calibrate(p[:2], e[:2], q[:2], _config(sceua=SceuaSettings(max_evaluations=40)),
                    progress=lambda m, f: seen.append((m, f)))
    assert set(res.models) == {"DWBM", "SWBM", "TVGM"}
    assert {m for m, _ in seen} == {"DWBM", "SWBM", "TVGM"} and seen[-1][1] == 1.0
    assert res.cwsc.shape == (2,) and np.all(np.isfinite(res.kge))
    best = np.nanmax(np.stack([res.models[m].kge_cal for m in res.models]), 0)
    np.testing.assert_allclose(res.kge, best)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_calibration_on_cuda(twin):
    p, e, q, _ = twin
    cfg = _config(device="cuda")
    gpu = calibrate_model("SWBM", p, e, q, cfg)
    cpu = calibrate_model("SWBM", p, e, q, _config())
    assert np.all(np.isfinite(gpu.kge_cal))
    assert abs(np.median(gpu.kge_cal) - np.median(cpu.kge_cal)) < 0.02


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

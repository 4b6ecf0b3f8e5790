"""KGE and NSE against hydroeval, with missing months and undefined cells."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

he = pytest.importorskip("hydroeval")  # test-only; make setup installs it

from cwsc.hydro.metrics import CalibrationTarget, kge, nse, undefined_count  # noqa: E402


def _series(cells=20, months=60, seed=0):
    rng = np.random.default_rng(seed)
    obs = rng.gamma(2.0, 20.0, (cells, months))
    sim = obs * rng.lognormal(0.0, 0.4, (cells, months)) + rng.normal(0, 5, (cells, months))
    return sim, obs


def test_kge_2009_2012_and_nse_match_hydroeval():
    sim, obs = _series()
    ours = kge(sim, obs)
    ours12 = kge(sim, obs, version="2012")
    ours_nse = nse(sim, obs)
    for i in range(len(sim)):
        assert ours[i] == pytest.approx(he.evaluator(he.kge, sim[i], obs[i])[0, 0], rel=1e-9)
        assert ours12[i] == pytest.approx(he.evaluator(he.kgeprime, sim[i], obs[i])[0, 0], rel=1e-9)
        assert ours_nse[i] == pytest.approx(he.evaluator(he.nse, sim[i], obs[i])[0], rel=1e-9)


def test_missing_months_are_skipped():
    sim, obs = _series(seed=1)
    rng = np.random.default_rng(2)
    holes = rng.random(obs.shape) < 0.2
    obs_nan = np.where(holes, np.nan, obs)
    ours = kge(sim, obs_nan)
    ours_nse = nse(sim, obs_nan)
    for i in range(len(sim)):
        keep = ~holes[i]
        assert ours[i] == pytest.approx(he.evaluator(he.kge, sim[i][keep], obs[i][keep])[0, 0], rel=1e-9)
        assert ours_nse[i] == pytest.approx(he.evaluator(he.nse, sim[i][keep], obs[i][keep])[0], rel=1e-9)


def test_undefined_cells_get_nan_and_are_counted():
    sim, obs = _series(cells=4, months=30, seed=3)
    obs[1] = 7.0  # no variance
    obs[2, 11:] = np.nan  # 11 valid months
    sim[3, 5] = np.nan  # a failed simulation in a valid month
    out = kge(sim, obs)
    assert np.isfinite(out[0]) and np.isnan(out[1:]).all()
    assert np.isnan(nse(sim, obs)[1:3]).all()
    assert undefined_count(obs) == 2


def test_axis_torch_and_float32():
    sim, obs = _series(cells=5, months=40, seed=4)
    a = kge(sim, obs)
    b = kge(torch.tensor(sim.T, dtype=torch.float32), torch.tensor(obs.T, dtype=torch.float32), axis=0)
    assert isinstance(b, torch.Tensor) and b.dtype == torch.float32
    np.testing.assert_allclose(b.numpy(), a, rtol=1e-4)


@pytest.mark.parametrize("objective, fused", [("kge", False), ("nse", False), ("kge", True)])
@pytest.mark.slow
def test_calibration_target_scores_like_the_metrics(objective, fused):
    if fused and shutil.which("g++") is None and shutil.which("c++") is None:
        pytest.skip("torch.compile on CPU needs a C++ compiler")
    sim, obs = _series(cells=6, months=48, seed=5)
    obs[0, 3:9] = np.nan
    target = CalibrationTarget(torch.tensor(obs.T), slice(12, 48), objective)
    cells = torch.tensor([0, 3, 3, 5])
    got = target.objective(torch.tensor(sim.T)[:, cells], cells, fused=fused).numpy()
    fn = kge if objective == "kge" else nse
    want = 1.0 - fn(sim[:, 12:], obs[:, 12:])[cells.numpy()]
    np.testing.assert_allclose(got, want, rtol=1e-6 if fused else 1e-9)

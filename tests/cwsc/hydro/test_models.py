"""DWBM, SWBM and TVGM: the seed formulation against the Fortran reference vectors, and the
conserving formulation's water balance, limits and agreement with seed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from cwsc.hydro.models import PARAMETERS, Forcing, run_months, simulate
from cwsc.machine import environment

REFERENCE = Path(__file__).resolve().parents[2] / "data" / "wbm_reference_vectors.json"
MODELS = ("DWBM", "SWBM", "TVGM")


@pytest.fixture(scope="module")
def reference():
    return json.loads(REFERENCE.read_text())


def _cases(reference, model, dtype):
    cases = reference[model]["cases"]
    p = np.array([c["precip"] for c in cases], dtype=dtype)
    e = np.array([c["pet"] for c in cases], dtype=dtype)
    prm = {k: np.array([c["params"][k] for c in cases], dtype=dtype) for k in cases[0]["params"]}
    q = np.array([c["runoff"] for c in cases])
    ev = np.array([c["evap"] for c in cases])
    return p, e, prm, q, ev


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-5), (np.float32, 1e-4)])
def test_seed_reproduces_reference_vectors(reference, model, dtype, rtol):
    p, e, prm, q, ev = _cases(reference, model, dtype)
    sim = simulate(model, p, e, prm, formulation="seed")
    assert sim.runoff.dtype == dtype and sim.runoff.shape == q.shape
    for i in range(len(q)):  # absolute floor: a millionth of the series' largest flux
        np.testing.assert_allclose(sim.runoff[i], q[i], rtol=rtol, atol=1e-6 * q[i].max())
        np.testing.assert_allclose(sim.evap[i], ev[i], rtol=rtol, atol=1e-6 * ev[i].max())


def test_seed_storage_matches_reference(reference):
    p, e, prm, _, _ = _cases(reference, "SWBM", np.float64)
    ref = np.array([c["storage"] for c in reference["SWBM"]["cases"]])
    sim = simulate("SWBM", p, e, prm, formulation="seed")
    # The last reference entry is never assigned by the original code.
    np.testing.assert_allclose(sim.storage[:, :-1], ref[:, :-1], rtol=1e-5, atol=1e-9)


def _harsh_forcing(cells=64, months=120, seed=3):
    """Dry months, tiny rain, huge PET, long droughts: where limits bite."""
    rng = np.random.default_rng(seed)
    p = rng.gamma(0.6, 60.0, (cells, months))
    p[rng.random((cells, months)) < 0.15] = 0.0
    p[rng.random((cells, months)) < 0.05] = 0.004  # below DWBM's 0.01 mm threshold
    p[: cells // 4, 30:60] = 0.0  # a drought that empties stores
    e = rng.uniform(0.0, 400.0, (cells, months))
    return p, e


def _random_params(model, cells, seed=4):
    rng = np.random.default_rng(seed)
    out = {}
    for k, (lo, hi, _) in PARAMETERS[model].items():
        v = rng.uniform(lo, hi, cells)
        v[:3] = lo  # the bounds themselves (sc = 0 included)
        v[3:6] = hi
        out[k] = v
    return out


@pytest.mark.parametrize("model", MODELS)
def test_conserving_closes_the_water_balance(model):
    p, e = _harsh_forcing()
    prm = _random_params(model, p.shape[0])
    sim = simulate(model, p, e, prm)  # float64 in, float64 out
    assert sim.runoff.dtype == np.float64
    for arr in (sim.runoff, sim.evap, sim.storage):
        assert np.isfinite(arr).all()
        assert (arr >= 0).all()
    change = sim.storage[:, -1] - sim.storage[:, 0]
    if model == "DWBM":
        assert np.isfinite(sim.groundwater).all() and (sim.groundwater >= 0).all()
        change = change + sim.groundwater[:, -1] - sim.groundwater[:, 0]
    balance = p.sum(1) - sim.runoff.sum(1) - sim.evap.sum(1) - change
    assert np.all(np.abs(balance) <= 1e-6 * p.sum(1))


@pytest.mark.parametrize("model", MODELS)
def test_bounded_closes_the_water_balance_within_its_limits(model):
    p, e = _harsh_forcing()
    prm = _random_params(model, p.shape[0])
    sim = simulate(model, p, e, prm, formulation="bounded")
    for arr in (sim.runoff, sim.evap, sim.storage):
        assert np.isfinite(arr).all() and (arr >= 0).all()
    change = sim.storage[:, -1] - sim.storage[:, 0]
    if model == "DWBM":
        change = change + sim.groundwater[:, -1] - sim.groundwater[:, 0]
    balance = p.sum(1) - sim.runoff.sum(1) - sim.evap.sum(1) - change
    assert np.all(np.abs(balance) <= 1e-6 * p.sum(1))
    # Evaporation at most PET; the store at most sc (sc = 0 runs as the 0.1 mm floor).
    assert np.all(sim.evap <= e * (1 + 1e-12) + 1e-9)
    sc = np.maximum(prm["sc"], 0.1)[:, None]
    assert np.all(sim.storage <= sc * (1 + 1e-12) + 1e-9)


@pytest.mark.parametrize("model", ["SWBM", "TVGM"])
def test_conserving_buckets_exceed_pet_and_sc_where_bounded_does_not(model):
    # A small store under steady rain: W/sc above 1 is what makes E > PET in the original.
    cells, months = 8, 60
    p = np.full((cells, months), 150.0)
    e = np.full((cells, months), 60.0)
    prm = {k: np.full(cells, lo) for k, (lo, hi, _) in PARAMETERS[model].items()}
    prm["sc"] = np.full(cells, 40.0)
    conserving = simulate(model, p, e, prm)
    bounded = simulate(model, p, e, prm, formulation="bounded")
    assert conserving.evap.max() > 60.0 and conserving.storage.max() > 40.0
    assert bounded.evap.max() <= 60.0 + 1e-9 and bounded.storage.max() <= 40.0 + 1e-9
    # Same water in, same water out: the bound moves it from evaporation and store to runoff.
    assert bounded.runoff.sum() > conserving.runoff.sum()


def test_bounded_dwbm_is_conserving_dwbm():
    p, e = _harsh_forcing(cells=16)
    prm = _random_params("DWBM", 16)
    a = simulate("DWBM", p, e, prm, formulation="bounded")
    b = simulate("DWBM", p, e, prm, formulation="conserving")
    np.testing.assert_array_equal(a.runoff, b.runoff)


@pytest.mark.parametrize("model", ["SWBM", "TVGM"])
def test_seed_creates_water_where_conserving_does_not(model):
    p, e = _harsh_forcing()
    prm = _random_params(model, p.shape[0])
    seed = simulate(model, p, e, prm, formulation="seed")
    gain = seed.runoff.sum(1) + seed.evap.sum(1) + seed.storage[:, -1] - seed.storage[:, 0] - p.sum(1)
    assert gain.max() > 1.0  # the epsilon floor makes water in the original


@pytest.mark.parametrize("model", MODELS)
def test_conserving_equals_seed_where_no_limit_is_hit(model):
    # Humid, mild forcing and a large store: no flux ever exceeds the store.
    rng = np.random.default_rng(5)
    cells, months = 16, 96
    p = rng.uniform(40.0, 120.0, (cells, months))
    e = rng.uniform(10.0, 40.0, (cells, months))
    prm = {k: np.full(cells, (lo + hi) / 2) for k, (lo, hi, _) in PARAMETERS[model].items()}
    prm["sc"] = np.full(cells, 900.0)
    if model == "SWBM":
        prm.update(ks=np.full(cells, 0.2), kg=np.full(cells, 0.1))
    if model == "TVGM":
        prm.update(g1=np.full(cells, 0.1), kr=np.full(cells, 0.02), gamma=np.full(cells, 0.5))
    seed = simulate(model, p, e, prm, formulation="seed")
    cons = simulate(model, p, e, prm, formulation="conserving")
    assert seed.storage.min() > 1.0  # the seed floor was never reached
    np.testing.assert_allclose(cons.runoff, seed.runoff, rtol=1e-12)
    np.testing.assert_allclose(cons.evap, seed.evap, rtol=1e-12)


@pytest.mark.parametrize("model", MODELS)
def test_empty_store_gives_no_evaporation_and_no_nan(model):
    cells, months = 4, 40
    p = np.zeros((cells, months))
    p[:, :2] = 30.0
    e = np.full((cells, months), 300.0)
    prm = {k: np.full(cells, v[2]) for k, v in PARAMETERS[model].items()}
    prm = {k: np.clip(v, PARAMETERS[model][k][0], PARAMETERS[model][k][1]) for k, v in prm.items()}
    sim = simulate(model, p, e, prm)
    assert np.isfinite(sim.runoff).all() and np.isfinite(sim.evap).all()
    empty = (sim.storage[:, :-1] <= 1e-9) & (p == 0)  # empty store, no rain this month
    assert empty[:, -5:].all()
    assert np.all(sim.evap[empty] <= 1e-9)
    if model == "DWBM":
        # The groundwater store is kept: it drains geometrically, never reset to zero.
        g = sim.groundwater[0]
        kg = prm["kg"][0]
        np.testing.assert_allclose(g[-1], g[-2] * (1 - kg), rtol=1e-9)
        assert g[-1] > 0


def test_dwbm_tiny_rain_is_kept_by_conserving_and_lost_by_seed():
    p = np.full((1, 24), 0.005)
    e = np.full((1, 24), 0.0)
    prm = {"sc": 100.0, "alpha1": 2.0, "alpha2": 2.0, "kg": 0.5}

    def lost(s):
        change = s.storage[0, -1] - s.storage[0, 0] + s.groundwater[0, -1] - s.groundwater[0, 0]
        return p.sum() - s.runoff.sum() - s.evap.sum() - change

    assert lost(simulate("DWBM", p, e, prm, formulation="seed")) == pytest.approx(p.sum(), rel=1e-6)
    assert abs(lost(simulate("DWBM", p, e, prm))) < 1e-9


def test_shapes_kinds_broadcasting_and_dtype():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 100, (2, 3, 30)).astype(np.float32)
    e = rng.uniform(0, 100, (2, 3, 30)).astype(np.float32)
    prm = {"ks": 0.5, "kg": np.array([0.2, 0.3, 0.4]), "sc": np.full((2, 1), 300.0)}
    sim = simulate("SWBM", p, e, prm)
    assert isinstance(sim.runoff, np.ndarray) and sim.runoff.dtype == np.float32
    assert sim.runoff.shape == (2, 3, 30) and sim.storage.shape == (2, 3, 31)
    assert sim.groundwater is None
    one = simulate("SWBM", p[1, 2], e[1, 2], {"ks": 0.5, "kg": 0.4, "sc": 300.0})
    np.testing.assert_allclose(one.runoff, sim.runoff[1, 2], rtol=1e-6)
    t = simulate("swbm", torch.from_numpy(p), torch.from_numpy(e), prm, dtype=torch.float64)
    assert isinstance(t.runoff, torch.Tensor) and t.runoff.dtype == torch.float64
    np.testing.assert_allclose(t.runoff.numpy(), sim.runoff, rtol=1e-4, atol=1e-4)


def test_bad_arguments_are_refused():
    p = np.ones((2, 10))
    with pytest.raises(ValueError, match="unknown model"):
        simulate("XYZ", p, p, {})
    with pytest.raises(ValueError, match="needs parameters"):
        simulate("DWBM", p, p, {"sc": 1.0})
    with pytest.raises(ValueError, match="unknown formulation"):
        simulate("SWBM", p, p, {"ks": 0.5, "kg": 0.5, "sc": 100.0}, formulation="fortran")


@pytest.mark.skipif(
    shutil.which("g++") is None and shutil.which("c++") is None,
    reason="torch.compile on CPU needs a C++ compiler",
)
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.slow
def test_compiled_blocks_match_eager(model):
    """Fused month blocks plus a remainder done month by month give the eager runoff."""
    rng = np.random.default_rng(1)
    n, months = 64, 2 * environment.block_months() + 3
    p = torch.tensor(rng.uniform(0, 150, (months, n)), dtype=torch.float32)
    e = torch.tensor(rng.uniform(0, 150, (months, n)), dtype=torch.float32)
    prm = {
        k: torch.tensor(rng.uniform(lo, hi, n), dtype=torch.float32)
        for k, (lo, hi, _) in PARAMETERS[model].items()
    }
    for formulation in ("conserving", "bounded"):
        f = Forcing(model, p, e, formulation)
        eager = run_months(f, prm, fused=False)["runoff"]
        fused = run_months(f, prm, fused=True)["runoff"]
        torch.testing.assert_close(fused, eager, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("model", MODELS)
def test_run_months_stops_where_asked(model):
    """The optimiser simulates only up to the end of calibration: the same first months."""
    p, e = _harsh_forcing(cells=16, months=30)
    prm = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in _random_params(model, 16).items()}
    f = Forcing(model, torch.tensor(p.T.copy()), torch.tensor(e.T.copy()))
    whole = run_months(f, prm, fused=False)["runoff"]
    part = run_months(f, prm, fused=False, months=17)["runoff"]
    assert part.shape == (17, 16)
    torch.testing.assert_close(part, whole[:17], rtol=0, atol=0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("model", MODELS)
def test_cuda_matches_cpu(model):
    p, e = _harsh_forcing(cells=32, months=60)
    prm = _random_params(model, 32)
    cpu = simulate(model, torch.tensor(p), torch.tensor(e), prm)
    gpu = simulate(model, torch.tensor(p, device="cuda"), torch.tensor(e, device="cuda"), prm)
    assert gpu.runoff.device.type == "cuda"
    torch.testing.assert_close(gpu.runoff.cpu(), cpu.runoff, rtol=1e-9, atol=1e-9)


def test_compile_decision_follows_the_work(monkeypatch):
    """Small calibrations stay eager (a cold compile would cost more than it saves); large
    ones compile when a compiler is there; CWSC_COMPILE forces either way."""
    from cwsc.hydro.engines import fusion

    monkeypatch.delenv("CWSC_COMPILE", raising=False)
    monkeypatch.setattr(fusion, "_BROKEN", False)  # an earlier compiler failure in this process
    cpu = torch.device("cpu")
    assert not fusion.compile_wanted(10**6, cpu, "auto", work=fusion.COMPILE_MIN_WORK / 10)
    has_compiler = shutil.which("g++") is not None or shutil.which("c++") is not None
    assert fusion.compile_wanted(10, cpu, "auto", work=fusion.COMPILE_MIN_WORK) == has_compiler
    assert fusion.compile_wanted(10, cpu, False, work=1e12) is False
    monkeypatch.setenv("CWSC_COMPILE", "1")
    assert fusion.compile_wanted(10, cpu, None, work=1.0) is True


@pytest.mark.parametrize("model", MODELS)
def test_rounding_level_changes_stay_at_rounding_level(model):
    """One ulp more rain must not move runoff by more than rounding. TVGM once kept the
    rounding residue of an emptied store, and (W/sc)^g2 with g2 < 1 turned 1e-13 mm into
    0.4 mm of runoff: the CPU/CUDA mismatch seen on the H100."""
    p, e = _harsh_forcing(cells=512, months=120)
    prm = _random_params(model, 512)
    a = simulate(model, p, e, prm).runoff
    b = simulate(model, np.nextafter(p, np.inf) * (p > 0), e, prm).runoff
    np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-9)

"""SCE-UA in lockstep: each problem its own optimum, stop and seed."""

from __future__ import annotations

import math

import torch

from cwsc.hydro.sceua import SceuaSettings, sceua


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
    res = sceua(
        objective,
        lo,
        hi,
        b,
        initial=torch.zeros(n, dtype=torch.float64),
        settings=SceuaSettings(max_evaluations=2000),
        generator=torch.Generator().manual_seed(0),
    )
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

    def run(seed):
        return sceua(
            objective,
            lo,
            hi,
            4,
            settings=SceuaSettings(max_evaluations=300),
            generator=torch.Generator().manual_seed(seed),
        )

    a, b, c = run(7), run(7), run(8)
    assert torch.isfinite(a.best_f).all()
    assert (a.best_x[:, 0] <= 0.5).all()
    assert torch.equal(a.best_x, b.best_x) and torch.equal(a.evaluations, b.evaluations)
    assert not torch.equal(a.population_x, c.population_x)


def test_sceua_all_nan_problem_stops_at_once():
    def objective(x, prob):
        return torch.where(prob == 0, torch.full((x.shape[0],), math.nan, dtype=x.dtype), (x**2).sum(-1))

    lo, hi = torch.full((2,), -1.0), torch.full((2,), 1.0)
    res = sceua(objective, lo, hi, 2, settings=SceuaSettings(max_evaluations=200))
    assert res.evaluations[0] == 10 and torch.isnan(res.best_f[0])
    assert torch.isfinite(res.best_f[1])

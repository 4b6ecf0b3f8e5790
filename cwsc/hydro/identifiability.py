"""The identifiable range of sc: a profile of the calibration objective over sc.

For every cell, sc is fixed on a grid over its bounds and the other parameters are
re-optimised (short SCE-UA runs, warm-started by continuation from the cell's best point);
the range is the sc values whose best objective lies within a tolerance of the best (0.01
in KGE by default). The edges are then refined by bisection between the last grid point
inside and the first outside. The profile of a point can only over-estimate its best objective (a short search
may miss the optimum), so the range errs on the narrow side; it does not depend on how the
best point was found, and so not on the number of restarts.

Shapes: C cells, n parameters (sc among them, at ``column``); objectives to minimise.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import torch

from cwsc.hydro.options import PROFILE_EVALUATIONS
from cwsc.hydro.sceua import SceuaSettings, sceua

#: score(x (M, n) parameters in real units, cell (M,)) -> (M,) objective values.
Score = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class ProfileSettings:
    """How the profile is made: ``points`` grid values of sc over its bounds, each searched
    with ``evaluations`` SCE-UA evaluations within ``radius`` of the warm start;
    ``refinements`` bisection steps at each edge."""

    points: int = 9
    evaluations: int = PROFILE_EVALUATIONS
    refinements: int = 3
    radius: float = 0.25  # of each other parameter's range, around the warm start


@dataclass
class IdentifiableRange:
    """Per cell (C,): the range [low, high] of sc (mm) and the best objective seen."""

    low: torch.Tensor
    high: torch.Tensor
    best: torch.Tensor
    evaluations: torch.Tensor


def profile_range(
    score: Score,
    lower: torch.Tensor,
    upper: torch.Tensor,
    column: int,
    best_x: torch.Tensor,
    best_f: torch.Tensor,
    tolerance: float,
    settings: ProfileSettings | None = None,
    sceua_settings: SceuaSettings | None = None,
    generator: torch.Generator | None = None,
) -> IdentifiableRange:
    """The identifiable range of parameter ``column`` for C cells.

    lower, upper (n,): the bounds. best_x (C, n), best_f (C,): each cell's calibrated point
    and objective (NaN: not calibrated, the range is NaN). tolerance: objective distance
    from the best (1 - KGE, so 0.01 is 0.01 in KGE).

    The profile walks the grid outward from each cell's best sc, one grid point per step in
    both directions, each search warm-started from the optimum of the point before (the
    other parameters move smoothly with sc), and stops a direction at its first point
    outside the tolerance; then each edge is bisected between its last point inside and
    its first outside.
    """
    st = settings or ProfileSettings()
    n_c, n = best_x.shape
    others = [i for i in range(n) if i != column]
    search = replace(sceua_settings or SceuaSettings(), max_evaluations=int(st.evaluations))
    gen = generator or torch.Generator().manual_seed(0)
    evaluations = torch.zeros(n_c, dtype=torch.long)
    dtype, device = best_x.dtype, best_x.device
    inf = float("inf")

    def profile(cells: torch.Tensor, values: torch.Tensor, start: torch.Tensor):
        """Best objective (P,) and point (P, n) with sc fixed at ``values`` (P,) for ``cells``
        (P,), each search starting from ``start`` (P, n)."""
        if cells.numel() == 0:
            return values.new_empty((0,)), start
        if not others:  # sc is the only parameter: just score it
            x = values.unsqueeze(1)
            return torch.nan_to_num(score(x, cells), nan=inf), x

        # A local search: offsets within +-radius of each parameter's range around the start
        # (a global search from one warm point spends its few evaluations exploring).
        lo_o, hi_o = lower[others], upper[others]
        reach = st.radius * (hi_o - lo_o)
        origin = start[:, others]

        def place(d: torch.Tensor, problem: torch.Tensor) -> torch.Tensor:
            return torch.minimum(torch.maximum(origin[problem] + d, lo_o), hi_o)

        def objective(d: torch.Tensor, problem: torch.Tensor) -> torch.Tensor:
            x = d.new_empty((d.shape[0], n))
            x[:, others] = place(d, problem)
            x[:, column] = values[problem]
            return score(x, cells[problem])

        res = sceua(
            objective,
            -reach,
            reach,
            cells.numel(),
            initial=torch.zeros_like(reach),
            settings=search,
            generator=gen,
        )
        evaluations.index_add_(0, cells.cpu(), res.evaluations.cpu())
        x = start.clone()
        x[:, others] = place(res.best_x, torch.arange(cells.numel(), device=device))
        x[:, column] = values
        return torch.nan_to_num(res.best_f, nan=inf), x

    lo, hi = float(lower[column]), float(upper[column])
    grid = torch.linspace(lo, hi, st.points, dtype=dtype, device=device)
    known = torch.isfinite(best_f)
    best = torch.where(known, best_f, torch.full_like(best_f, inf))
    limit = best + float(tolerance)
    sc_best = best_x[:, column].contiguous()
    all_cells = torch.arange(n_c, device=device)
    # Per direction (0: down, 1: up): the edge inside, the point outside, where to start.
    edge = [sc_best.clone(), sc_best.clone()]
    outside = [torch.full_like(sc_best, lo), torch.full_like(sc_best, hi)]
    at = [best_x.clone(), best_x.clone()]
    nxt = [torch.searchsorted(grid, sc_best, right=False) - 1, torch.searchsorted(grid, sc_best, right=True)]
    active = [known & (nxt[0] >= 0), known & (nxt[1] < st.points)]

    def settle(picks, values, start):
        """Profile ``values`` for the cells ``picks`` (down, up) from ``start``; move each
        direction's edge (inside) or outside point there. Returns (direction, cells, inside)."""
        f, x = profile(torch.cat(picks), values, start)
        out, at_ = [], 0
        for d in (0, 1):
            c = picks[d]
            part = slice(at_, at_ + c.numel())
            at_ += c.numel()
            inside = f[part] <= limit[c]
            edge[d][c] = torch.where(inside, values[part], edge[d][c])
            outside[d][c] = torch.where(inside, outside[d][c], values[part])
            at[d][c] = torch.where(inside.unsqueeze(1), x[part], at[d][c])
            out.append((d, c, inside))
        return out

    while bool(active[0].any() or active[1].any()):
        picks = [all_cells[active[d]] for d in (0, 1)]
        values = torch.cat([grid[nxt[d][picks[d]]] for d in (0, 1)])
        start = torch.cat([at[d][picks[d]] for d in (0, 1)])
        for d, c, inside in settle(picks, values, start):
            nxt[d][c] += 1 if d else -1
            active[d][c] = inside & (nxt[d][c] >= 0) & (nxt[d][c] < st.points)
    for _ in range(st.refinements):
        picks = [all_cells[known], all_cells[known]]
        values = torch.cat([(edge[d][known] + outside[d][known]) / 2 for d in (0, 1)])
        settle(picks, values, torch.cat([at[d][known] for d in (0, 1)]))
    nan = torch.full_like(sc_best, float("nan"))
    return IdentifiableRange(
        torch.where(known, edge[0], nan),
        torch.where(known, edge[1], nan),
        torch.where(known, best, nan),
        evaluations,
    )

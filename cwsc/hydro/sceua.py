"""Shuffled complex evolution (SCE-UA, Duan et al. 1992) for many problems at once.

Each of the B problems (grid cells times independent restarts) keeps its own population
and complexes; all evolve in lockstep with tensor operations, and each stops on its own
criteria (max evaluations, kstop/pcento on the best objective, peps on the population's
normalised geometric range). Within one competitive complex evolution (CCE) step, the
reflections of every complex of every active problem go to the objective in one call,
then the contractions of those whose reflection failed, then the random points of those
whose contraction failed, so the objective sees few, large batches.

Parameters are handled in the unit cube internally. A reflection outside the box is
replaced by a uniform random point (as spotpy does); NaN objectives rank as the worst and
are never accepted as an improvement. Randomness comes from one CPU ``torch.Generator``,
so a seed gives the same numbers on any device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from cwsc.hydro.options import DEFAULT_MAX_EVALUATIONS

#: objective(x, problem) -> f: x (M, n) parameters in real units, problem (M,) the index of
#: the problem each row belongs to; returns (M,) values to minimise (NaN allowed).
Objective = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class SceuaSettings:
    """SCE-UA settings; complex sizes default to Duan's (npg = 2n+1, nps = n+1, nspl = 2n+1)."""

    max_evaluations: int = DEFAULT_MAX_EVALUATIONS  # maxn, per problem
    kstop: int = 10  # loops over which the best objective must change ...
    pcento: float = 1e-4  # ... by at least this fraction, or the problem stops
    peps: float = 1e-3  # stop when the population's normalised range falls below
    complexes: int = 2  # ngs
    points_per_complex: int | None = None  # npg
    simplex_points: int | None = None  # nps
    evolution_steps: int | None = None  # nspl

    def sizes(self, n: int) -> tuple[int, int, int, int]:
        npg = self.points_per_complex or 2 * n + 1
        nps = self.simplex_points or n + 1
        nspl = self.evolution_steps or 2 * n + 1
        if nps > npg:
            raise ValueError("simplex_points cannot exceed points_per_complex")
        return self.complexes, npg, nps, nspl


@dataclass
class SceuaResult:
    """Per problem: best point (B, n) in real units and its objective (B,), the final
    population (B, npt, n) sorted best first with objectives (B, npt), evaluations used (B,)
    and shuffling loops run (B,)."""

    best_x: torch.Tensor
    best_f: torch.Tensor
    population_x: torch.Tensor
    population_f: torch.Tensor
    evaluations: torch.Tensor
    loops: torch.Tensor


def _rank_key(f: torch.Tensor) -> torch.Tensor:
    # NaN ranks after everything, so it is never taken for the better point.
    return torch.nan_to_num(f, nan=math.inf)


def sceua(
    objective: Objective,
    lower: torch.Tensor,
    upper: torch.Tensor,
    problems: int,
    initial: torch.Tensor | None = None,
    settings: SceuaSettings | None = None,
    generator: torch.Generator | None = None,
    on_loop: Callable[[float], None] | None = None,
) -> SceuaResult:
    """Minimise ``objective`` for ``problems`` independent problems sharing the box
    [lower, upper] (each (n,), real units; device and dtype of the search taken from them).

    initial: (n,) or (problems, n) starting point included in the first population (clipped
    into the box). on_loop(fraction): called after every shuffling loop with the share of
    the total work done (problems stopped count as done).
    """
    st = settings or SceuaSettings()
    device, dtype = lower.device, lower.dtype
    n = lower.shape[0]
    ngs, npg, nps, nspl = st.sizes(n)
    npt = ngs * npg
    b = problems
    gen = generator or torch.Generator().manual_seed(0)
    span = upper - lower
    span_safe = torch.where(span > 0, span, torch.ones_like(span))

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=gen, dtype=torch.float64).to(device=device, dtype=dtype)

    def real(u: torch.Tensor) -> torch.Tensor:
        return lower + u * span

    def evaluate(u: torch.Tensor, prob: torch.Tensor) -> torch.Tensor:
        if prob.numel() == 0:
            return u.new_empty((0,))
        return objective(real(u), prob).to(dtype)

    # Initial population: uniform in the box, the initial point first.
    u = rand(b, npt, n)
    if initial is not None:
        u0 = ((initial.to(device=device, dtype=dtype) - lower) / span_safe).clamp(0.0, 1.0)
        u[:, 0] = u0.expand(b, n)
    all_prob = torch.arange(b, device=device)
    f = evaluate(u.reshape(b * npt, n), all_prob.repeat_interleave(npt)).reshape(b, npt)
    evals = torch.full((b,), npt, dtype=torch.long, device=device)
    loops = torch.zeros(b, dtype=torch.long, device=device)
    order = torch.sort(_rank_key(f), dim=1, stable=True).indices
    u = torch.gather(u, 1, order.unsqueeze(-1).expand(b, npt, n))
    f = torch.gather(f, 1, order)
    # A problem whose every point fails (no defined objective) has nothing to optimise.
    active = torch.isfinite(f[:, 0]) & (evals < st.max_evaluations)
    history = [f[:, 0].clone()]
    # Triangular selection weights of Duan: member j (0 = best) drawn with weight npg - j.
    log_w = torch.log(torch.arange(npg, 0, -1, dtype=dtype, device=device))

    while bool(active.any()):
        running = active.clone()
        # Partition: member j of complex k is population point j * ngs + k.
        cu = u.reshape(b, npg, ngs, n).transpose(1, 2).contiguous()  # (b, ngs, npg, n)
        cf = f.reshape(b, npg, ngs).transpose(1, 2).contiguous()  # (b, ngs, npg)
        for _ in range(nspl):
            if not bool(active.any()):
                break
            # Simplex: nps members drawn without replacement with triangular weights
            # (Gumbel top-k), kept in rank order so the last one is the worst.
            gumbel = -torch.log(-torch.log(rand(b, ngs, npg).clamp_min(1e-30)))
            pick = torch.topk(log_w + gumbel, nps, dim=-1).indices.sort(dim=-1).values
            s = torch.gather(cu, 2, pick.unsqueeze(-1).expand(b, ngs, nps, n))
            worst_idx = pick[..., -1]  # (b, ngs)
            sw = s[:, :, -1]
            fw = _rank_key(torch.gather(cf, 2, worst_idx.unsqueeze(-1)).squeeze(-1))
            ce = s[:, :, :-1].mean(2)
            new_u = 2.0 * ce - sw  # reflection
            outside = ((new_u < 0) | (new_u > 1)).any(-1, keepdim=True)
            new_u = torch.where(outside, rand(b, ngs, n), new_u)
            random_u = rand(b, ngs, n)  # for the mutation
            new_f = torch.full((b, ngs), math.nan, dtype=dtype, device=device)
            todo = active.unsqueeze(1).expand(b, ngs).clone()
            used = torch.zeros(b, dtype=torch.long, device=device)
            for stage in range(3):
                if stage == 1:
                    new_u = torch.where(todo.unsqueeze(-1), 0.5 * (ce + sw), new_u)  # contraction
                elif stage == 2:
                    new_u = torch.where(todo.unsqueeze(-1), random_u, new_u)  # mutation
                idx = todo.nonzero(as_tuple=True)
                if idx[0].numel() == 0:
                    break
                vals = evaluate(new_u[idx], idx[0])
                new_f[idx] = vals
                used += torch.bincount(idx[0], minlength=b)
                if stage < 2:
                    # NaN compares False: never taken for an improvement.
                    todo = todo & ~(new_f <= fw)
                else:
                    # Duan keeps the random point whatever it scores, but not a failed run.
                    todo = todo & torch.isnan(new_f)
            accept = active.unsqueeze(1) & ~todo
            # Replace each simplex's worst member, then keep the complex sorted.
            rows = accept.unsqueeze(-1) & (torch.arange(npg, device=device) == worst_idx.unsqueeze(-1))
            cu = torch.where(rows.unsqueeze(-1), new_u.unsqueeze(2), cu)
            cf = torch.where(rows, new_f.unsqueeze(-1), cf)
            order = torch.sort(_rank_key(cf), dim=-1, stable=True).indices
            cu = torch.gather(cu, 2, order.unsqueeze(-1).expand(b, ngs, npg, n))
            cf = torch.gather(cf, 2, order)
            evals += used
            active = active & (evals < st.max_evaluations)
        # Shuffle: merge the complexes and rank the whole population.
        u = cu.transpose(1, 2).reshape(b, npt, n)
        f = cf.transpose(1, 2).reshape(b, npt)
        order = torch.sort(_rank_key(f), dim=1, stable=True).indices
        u = torch.gather(u, 1, order.unsqueeze(-1).expand(b, npt, n))
        f = torch.gather(f, 1, order)
        loops += running.long()
        history.append(f[:, 0].clone())
        # Convergence: normalised geometric range of the population ...
        rng = (u.amax(1) - u.amin(1)).clamp_min(1e-30)
        gnrng = torch.exp(torch.log(rng).mean(-1))
        active = active & (gnrng >= st.peps)
        # ... and the relative change of the best objective over the last kstop loops.
        if len(history) > st.kstop:
            old, new = history[-1 - st.kstop], history[-1]
            denom = (old + new).abs() / 2.0
            change = (old - new).abs() / denom.clamp_min(1e-30)
            active = active & ~(change < st.pcento)
        if on_loop is not None:
            done = torch.where(
                active,
                evals.to(torch.float64) / st.max_evaluations,
                torch.ones((), dtype=torch.float64, device=device),
            )
            on_loop(float(done.clamp(max=1.0).mean()))
    x = real(u)
    return SceuaResult(x[:, 0].clone(), f[:, 0].clone(), x, f, evals, loops)

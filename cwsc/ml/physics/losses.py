"""The losses of learning from runoff: 1 - KGE (or 1 - NSE) per cell and model, their
combination over the models, and the KGE mask."""

from __future__ import annotations

import torch

from cwsc.hydro.metrics import kge_from_moments, moments

#: Weight of the fit regression in the loss (it must not pull the parameters).
FIT_WEIGHT = 0.1
#: Width (in 1 - KGE) of the soft minimum over models of ``model_loss="best"``.
SOFT_MIN_WIDTH = 0.05


def fit_loss(sim: torch.Tensor, obs: torch.Tensor, objective: str = "kge") -> torch.Tensor:
    """Per cell 1 - KGE (2009) or 1 - NSE of ``sim`` against ``obs``, both ``(months, N)``;
    NaN observations are skipped. The simulated variance is floored so that a cell whose
    model gives constant runoff still has a finite gradient."""
    mo, ms, vo, vs, cov, _ = moments(sim, obs, 0, 1)
    if objective == "kge":
        return 1.0 - kge_from_moments(mo, ms, vo, vs.clamp_min(1e-6), cov)
    valid = ~torch.isnan(obs)
    err = torch.where(valid, sim - obs, torch.zeros((), dtype=sim.dtype)).pow(2).sum(0)
    n = valid.sum(0).to(sim.dtype).clamp_min(1.0)
    return err / (vo * n)


def combine(
    losses: torch.Tensor, how: str = "best", mean_weight: float = 0.1, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """One loss from the models' per-cell losses ``(models, N)``: their mean, or ("best") a
    soft minimum over the models (width :data:`SOFT_MIN_WIDTH`) plus ``mean_weight`` times
    the mean, so that each model's parameters need only fit the cells that model can fit.
    ``weight`` ``(N,)``: each cell's weight (0: the cell takes no part)."""
    if how == "best" and losses.shape[0] > 1:
        soft = -SOFT_MIN_WIDTH * torch.logsumexp(-losses / SOFT_MIN_WIDTH, dim=0)
        per_cell = soft + mean_weight * losses.mean(0)
    else:
        per_cell = losses.mean(0)
    if weight is None:
        return per_cell.mean()
    return (per_cell * weight).sum() / weight.sum().clamp_min(1.0)


def kge_mask_weight(losses: torch.Tensor, threshold: float | None) -> torch.Tensor | None:
    """(N,) 1 where the best model of a cell reaches a KGE (1 - loss) above ``threshold``,
    else 0: the label route's KGE mask, applied to the fits as learning goes (runoff that no
    model can make from the cell's forcing must not pull the parameters)."""
    if threshold is None:
        return None
    return (1.0 - losses.detach().min(0).values > threshold).to(losses.dtype)

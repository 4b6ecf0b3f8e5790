"""Goodness of fit, vectorised over cells: KGE (Gupta et al. 2009; Kling et al. 2012) and NSE.

Months whose observation is missing (NaN) are skipped. A cell with fewer than
``min_months`` valid months, or whose observations do not vary, has no defined metric and
gets NaN (never an exception); :func:`undefined_count` counts them. A NaN simulation in a
valid month makes the metric NaN, so a failed model run can never look good.
"""

from __future__ import annotations

import math

import numpy as np
import torch

MIN_MONTHS = 12


def _to_torch(x) -> tuple[torch.Tensor, bool]:
    if isinstance(x, torch.Tensor):
        return x, False
    arr = np.asarray(x)
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    return torch.from_numpy(np.ascontiguousarray(arr)), True


def moments(sim: torch.Tensor, obs: torch.Tensor, dim: int, min_months: int):
    """Means, variances and covariance over valid months; ``ok`` where a metric is defined."""
    sim, obs = torch.broadcast_tensors(sim, obs)
    valid = ~torch.isnan(obs)
    n = valid.sum(dim).to(obs.dtype)
    zero = torch.zeros((), dtype=obs.dtype, device=obs.device)
    safe_n = n.clamp_min(1.0)
    mo = torch.where(valid, obs, zero).sum(dim) / safe_n
    ms = torch.where(valid, sim, zero).sum(dim) / safe_n
    do = torch.where(valid, obs - mo.unsqueeze(dim), zero)
    ds = torch.where(valid, sim - ms.unsqueeze(dim), zero)
    vo = (do * do).sum(dim) / safe_n
    vs = (ds * ds).sum(dim) / safe_n
    cov = (do * ds).sum(dim) / safe_n
    ok = (n >= min_months) & (vo > 0)
    return mo, ms, vo, vs, cov, ok


def _finish(value: torch.Tensor, ok: torch.Tensor, as_numpy: bool):
    value = torch.where(ok, value, torch.full_like(value, float("nan")))
    return value.cpu().numpy() if as_numpy else value


def kge_from_moments(mo, ms, vo, vs, cov, version: str = "2009") -> torch.Tensor:
    """KGE from the moments: 1 - sqrt((r-1)^2 + (a-1)^2 + (b-1)^2).

    2009: a = sd_sim / sd_obs; 2012: a = CV_sim / CV_obs. b = mean_sim / mean_obs.
    """
    so, ss = vo.sqrt(), vs.sqrt()
    r = cov / (so * ss)
    beta = ms / mo
    if version == "2009":
        alpha = ss / so
    elif version == "2012":
        alpha = (ss / ms) / (so / mo)
    else:
        raise ValueError(f"unknown KGE version '{version}' (use 2009 or 2012)")
    return 1.0 - torch.sqrt((r - 1.0) ** 2 + (alpha - 1.0) ** 2 + (beta - 1.0) ** 2)


def kge(sim, obs, axis: int = -1, version: str = "2009", min_months: int = MIN_MONTHS):
    """Kling-Gupta efficiency along ``axis`` (months). sim, obs: broadcastable arrays
    (numpy or torch; numpy in, numpy out). Returns the other axes' shape; NaN where undefined."""
    s, as_np = _to_torch(sim)
    o, _ = _to_torch(obs)
    dtype = torch.promote_types(s.dtype, o.dtype)
    mo, ms, vo, vs, cov, ok = moments(s.to(dtype), o.to(dtype), axis, min_months)
    return _finish(kge_from_moments(mo, ms, vo, vs, cov, version), ok, as_np)


def nse(sim, obs, axis: int = -1, min_months: int = MIN_MONTHS):
    """Nash-Sutcliffe efficiency along ``axis``: 1 - sum (s - o)^2 / sum (o - mean o)^2."""
    s, as_np = _to_torch(sim)
    o, _ = _to_torch(obs)
    dtype = torch.promote_types(s.dtype, o.dtype)
    s, o = torch.broadcast_tensors(s.to(dtype), o.to(dtype))
    mo, _, vo, _, _, ok = moments(s, o, axis, min_months)
    valid = ~torch.isnan(o)
    err = torch.where(valid, s - o, torch.zeros((), dtype=dtype)).pow(2).sum(axis)
    n = valid.sum(axis).to(dtype).clamp_min(1.0)
    return _finish(1.0 - err / (vo * n), ok, as_np)


def undefined_count(obs, axis: int = -1, min_months: int = MIN_MONTHS) -> int:
    """How many cells have no defined metric (too few valid months or constant observations)."""
    o, _ = _to_torch(obs)
    _, _, _, _, _, ok = moments(o, o, axis, min_months)
    return int((~ok).sum())


class CalibrationTarget:
    """Observed runoff over the scored months, prepared once for many objective evaluations.

    ``obs``: (T, C) runoff of C cells (NaN = missing); ``months``: the slice of scored
    months. :meth:`objective` scores simulations of columns mapped to cells by ``cells``.
    """

    def __init__(
        self,
        obs: torch.Tensor,
        months: slice,
        objective: str = "kge",
        kge_version: str = "2009",
        min_months: int = MIN_MONTHS,
    ) -> None:
        o = obs[months]
        valid = ~torch.isnan(o)
        n = valid.sum(0).to(o.dtype)
        safe_n = n.clamp_min(1.0)
        mo = torch.where(valid, o, 0.0).sum(0) / safe_n
        self.months = months
        self.objective_name = objective
        self.version = kge_version
        self.weight = valid.to(o.dtype) / safe_n  # 1/n on valid months, 0 elsewhere
        self.centred = torch.where(valid, o - mo, 0.0)  # obs - mean, 0 on missing months
        self.mo, self.vo = mo, (self.centred**2).sum(0) / safe_n
        self.ok = (n >= min_months) & (self.vo > 0)

    def objective(self, sim: torch.Tensor, cells: torch.Tensor, fused: bool = False) -> torch.Tensor:
        """1 - KGE (or 1 - NSE) of ``sim`` (T, M) against the cells ``cells`` (M,); NaN where
        the metric is undefined or the simulation failed. ``fused``: the reductions compiled
        with torch.compile (the caller decides, see :mod:`cwsc.hydro.engines.selection`)."""
        from cwsc.hydro.engines import fusion

        args = (
            sim[self.months],
            torch.index_select(self.weight, 1, cells),
            torch.index_select(self.centred, 1, cells),
            self.mo[cells],
            self.vo[cells],
            self.ok[cells],
            self.objective_name == "kge",
            self.version,
        )
        return fusion.run_fused("objective", _objective, fused, *args)

    def objective_from_sums(self, sums: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
        """The objective of :meth:`objective` from the sums of the CPU kernels
        (:func:`cwsc.hydro.engines.cpu.score_sums`): ``sums`` (3, M) float64 = sum w s,
        sum w s^2, sum w s (obs - mean obs) over the scored months. Returns (M,) float64."""
        ms, mss, cov = sums[0], sums[1], sums[2]
        mo = self.mo[cells].to(torch.float64)
        vo = self.vo[cells].to(torch.float64)
        if self.objective_name == "kge":
            vs = (mss - ms * ms).clamp_min(0.0)
            value = 1.0 - kge_from_moments(mo, ms, vo, vs, cov, self.version)
        else:
            # sum w (s - o)^2 with o = oc + mo, sum w = 1, sum w oc = 0, sum w oc^2 = vo.
            value = (mss - 2.0 * (cov + mo * ms) + vo + mo * mo).clamp_min(0.0) / vo
        ok = self.ok[cells]
        return torch.where(ok, value, torch.full_like(value, float("nan")))


def _objective(s, w, oc, mo, vo, ok, use_kge: bool, version: str):
    # One pass for the weighted sums: with sum(w * oc) = 0, cov = sum(w * s * oc) and
    # var_s = sum(w * s^2) - mean_s^2 (runoff varies enough for float32 here).
    sw = s * w
    ms = sw.sum(0)
    if use_kge:
        vs = ((sw * s).sum(0) - ms * ms).clamp_min(0.0)
        cov = (sw * oc).sum(0)
        value = 1.0 - kge_from_moments(mo, ms, vo, vs, cov, version)
    else:
        err = s - (oc + mo)
        value = (err * err * w).sum(0) / vo
    return torch.where(ok, value, torch.full_like(value, float("nan")))


def finite_median(values: np.ndarray) -> float:
    """The median of the finite values of ``values``; NaN when there are none."""
    values = np.asarray(values)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if len(values) else math.nan

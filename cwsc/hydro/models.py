"""The three monthly water balance models (DWBM, SWBM, TVGM), vectorised over cells in torch.

Every model runs month by month (the loop is sequential), but each month is a handful of
tensor operations over *all* cells and parameter sets at once. Inside this module series
are laid out ``(months, N)`` so that one month of every cell is one contiguous row.

Two formulations share the equations of ``docs/models.md``:

- ``"seed"`` reproduces the original Fortran subroutines (the reference vectors), defects
  included (SWBM/TVGM floor the store at machine epsilon, which creates water; DWBM loses
  precipitation below 0.01 mm). Only DWBM's empty-store guard is kept, since there the
  original result depends on rounding.
- ``"conserving"`` (the default): the same equations, but outgoing fluxes never take more
  water than the store holds, so the water balance closes; where no limit is reached it
  equals ``"seed"``. An empty store gives no evaporation and no recharge, and the
  groundwater store of DWBM is kept.
- ``"bounded"``: as conserving, and in SWBM and TVGM sc is a capacity: the store's relative
  filling W/sc that drives evaporation and quick runoff is at most 1, so evaporation never
  exceeds PET, and water above sc at the end of a month leaves as runoff (saturation
  excess), so the store never holds more than sc; the store starts at min(50 mm, sc). DWBM
  is already bounded (its Fu curves keep E <= PET and S <= sc) and runs as conserving.

Units: mm and mm/month throughout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch

from cwsc.hydro.engines import fusion
from cwsc.hydro.options import FORMULATIONS
from cwsc.machine import environment

#: Parameter bounds and initial values per model: name -> (lower, upper, initial).
#: From the original calibration code (``docs/models.md``). TVGM's kr initial value lies
#: outside its bounds there; the optimiser clips the initial point into the box.
PARAMETERS: dict[str, dict[str, tuple[float, float, float]]] = {
    "DWBM": {
        "sc": (0.0, 1000.0, 310.6),
        "alpha1": (1.0, 5.0, 2.0),
        "alpha2": (1.0, 5.0, 2.0),
        "kg": (0.01, 1.0, 0.2),
    },
    "SWBM": {"ks": (0.1, 1.0, 0.2), "kg": (0.1, 1.0, 0.2), "sc": (0.0, 1000.0, 206.8)},
    "TVGM": {
        "g1": (0.02, 0.4, 0.2),
        "g2": (0.1, 5.0, 0.8),
        "kr": (0.005, 0.1, 0.2),
        "sc": (0.0, 1000.0, 149.8),
        "gamma": (0.1, 1.0, 0.8),
    },
}
MODELS = tuple(PARAMETERS)

#: Storage capacities below this (mm) are treated as this: a zero capacity makes W/sc
#: undefined, and the bounds allow sc = 0.
SC_FLOOR = 0.1
#: A store holding less than this (mm) counts as empty (no evaporation, no recharge).
EMPTY = 1e-12
SEED_EPS = 2.220446049250313e-16  # the Fortran code's floor (double-precision epsilon)


@dataclass
class Simulation:
    """Model output. ``runoff`` and ``evap`` are (..., months) in mm/month; ``storage`` (the
    soil store) and ``groundwater`` (DWBM only, else None) are (..., months + 1) in mm, index
    0 the initial state and index t + 1 the state at the end of month t."""

    runoff: np.ndarray | torch.Tensor
    evap: np.ndarray | torch.Tensor
    storage: np.ndarray | torch.Tensor
    groundwater: np.ndarray | torch.Tensor | None = None


def parameter_names(model: str) -> list[str]:
    return list(PARAMETERS[_check_model(model)])


def _check_model(model: str) -> str:
    name = model.upper()
    if name not in PARAMETERS:
        raise ValueError(f"unknown model '{model}' (use one of {', '.join(MODELS)})")
    return name


# --------------------------------------------------------------------------------------
# The month steps. Forcing rows are (N,), parameters (N,), states (N,).
# --------------------------------------------------------------------------------------


def _fu(phi: torch.Tensor, a: torch.Tensor, inv_a: torch.Tensor) -> torch.Tensor:
    """Fu's curve F(phi; a) = 1 + phi - (1 + phi^a)^(1/a) for phi >= 0 (finite).

    Written as (1 + phi - m) - m * expm1(log1p(u) / a) with m = max(phi, 1) and
    u = min(phi, 1/phi)^a, which is the same function but loses no precision for large or
    small phi (the direct form cancels catastrophically in float32). F(0) = 0.
    (Series in place of log1p/expm1 were tried: as accurate, but slower once fused.)
    Out of place and with phi = 0 kept off the logarithm, so that gradients (physics-guided
    learning) are finite: log(0) would give 0 * inf in the derivative in alpha.
    """
    pos = phi > 0
    lp = torch.log(torch.where(pos, phi, 1.0))
    u = torch.where(pos, torch.exp(lp.abs() * -a), 0.0)
    g = torch.expm1(torch.log1p(u) * inv_a)
    m = torch.clamp_min(phi, 1.0)
    # F >= 0 for phi >= 0; the clamp removes rounding below zero (alpha = 1 gives F = 0).
    return ((phi + 1.0) - m - m * g).clamp_min(0.0)


def _pow(x: torch.Tensor, expo: torch.Tensor) -> torch.Tensor:
    """x ** expo for x >= 0, expo > 0, with a finite derivative in expo where x = 0."""
    pos = x > 0
    return torch.where(pos, torch.pow(torch.where(pos, x, 1.0), expo), 0.0)


@dataclass
class _DwbmForcing:
    """Forcing-only terms of DWBM, computed once per forcing and reused by every evaluation."""

    p: torch.Tensor  # P (T, N)
    p_wet: torch.Tensor  # P where P >= 0.01, else 0
    p_dry: torch.Tensor  # P where P < 0.01 and the formulation keeps it (conserving), else 0
    inv_p: torch.Tensor  # 1/P where P >= 0.01, else 0 (so phi = 0 and F = 0)
    e0p: torch.Tensor  # PET capped at 50 P on wet months (the Fortran order of caps)


def _dwbm_forcing(p: torch.Tensor, e0: torch.Tensor, conserving: bool) -> _DwbmForcing:
    wet = p >= 0.01
    zero = torch.zeros((), dtype=p.dtype, device=p.device)
    p_wet = torch.where(wet, p, zero)
    # Seed: X = 0 and Qd = 0 when P < 0.01, so that precipitation vanishes. Conserving:
    # it all infiltrates, the limit of X = P F(phi) as P -> 0.
    p_dry = torch.where(wet, zero, p) if conserving else torch.zeros_like(p)
    inv_p = torch.where(wet, 1.0 / torch.where(wet, p, torch.ones_like(p)), zero)
    e0p = torch.where(wet, torch.minimum(e0, 50.0 * p), e0)
    return _DwbmForcing(p, p_wet, p_dry, inv_p, e0p)


def _dwbm_step(p, p_wet, p_dry, inv_p, e0p, s, g, sc, a1, a2, ia1, ia2, kg, conserving: bool):
    """One DWBM month on rows (N,): returns (runoff, evap, new soil store S, new groundwater G).
    Out of place throughout, so that it also runs under autograd (physics-guided learning)."""
    phi1 = ((e0p + sc - s) * inv_p).clamp_min(0.0)
    x = _fu(phi1, a1, ia1) * p_wet + p_dry
    if conserving:
        x = torch.minimum(x, p)  # rounding only: F <= 1, so infiltration never exceeds P
    qd = p - x
    w = x + s
    full = w > EMPTY
    e0w = torch.minimum(e0p, 50.0 * w)
    inv_w = torch.where(full, 1.0 / torch.where(full, w, 1.0), 0.0)
    y = _fu((e0w + sc) * inv_w, a2, ia2) * w
    e = _fu(e0w * inv_w, a2, ia2) * w
    if conserving:
        # Rounding only: F <= 1 and F is increasing, so E <= Y <= W in exact arithmetic.
        y = torch.minimum(y, w)
        e = torch.minimum(e, y)
    r = w - y
    s_new = y - e
    if not conserving:
        s_new = s_new.clamp_min(0.0)
    qb = kg * g
    g_new = (g - qb) + r
    return qd + qb, e, s_new, g_new


def _bucket_step(
    p, e0, w, c1, c2, inv_sc, expo_e, expo_q, tvgm: bool, conserving: bool, bounded: bool = False
):
    """One SWBM or TVGM month on rows (N,): returns (runoff, evap, new store W).

    SWBM: E = E0 W0/sc, Q = ks (W/sc) P + kg W (c1 = ks, c2 = kg).
    TVGM: E = E0 (W0/sc)^gamma, Q = g1 (W/sc)^g2 P + kr (W + W0)/2 (c1 = g1, c2 = kr/2).
    Bounded: W0/sc and W/sc at most 1, and the store above sc at the end spills as runoff.
    Out of place, as :func:`_dwbm_step`.
    """
    w0 = w + p
    if bounded:
        fill0 = torch.clamp_max(w0 * inv_sc, 1.0)
        fill = torch.clamp_max(w * inv_sc, 1.0)
        if tvgm:
            e = e0 * _pow(fill0, expo_e)
            q = (c1 * _pow(fill, expo_q)) * p + c2 * (w + w0)
        else:
            e = e0 * fill0
            q = (c1 * fill) * p + c2 * w
    elif tvgm:
        e = e0 * _pow(w0 * inv_sc, expo_e)
        q = (c1 * _pow(w * inv_sc, expo_q)) * p + c2 * (w + w0)
    else:
        e = e0 * w0 * inv_sc
        q = (c1 * inv_sc * w) * p + c2 * w
    if conserving:
        # Outgoing fluxes share what the store holds, in proportion, when they would take more.
        demand = q + e
        over = demand > w0
        scale = torch.where(over, w0 / torch.where(over, demand, 1.0), 1.0)
        q = q * scale
        e = e * scale
        # A store whose fluxes were limited is empty: exactly 0, not the rounding residue of
        # w0 - q - e (~1e-13 mm), which TVGM's (W/sc)^g2 with g2 < 1 would turn into runoff
        # (1e-13^0.1 = 0.05) that differs between CPU and CUDA rounding.
        w_new = torch.where(over, torch.zeros_like(w0), (w0 - q - e).clamp_min(0.0))
        if bounded:
            spill = (w_new - 1.0 / inv_sc).clamp_min(0.0)
            q = q + spill
            w_new = w_new - spill
    else:
        w_new = (w0 - q - e).clamp_min(SEED_EPS)
    return q, e, w_new


def _dwbm_block(idx, forcing, state, prm, conserving: bool):
    """A block of DWBM months (``CWSC_BLOCK_MONTHS``) in one call. forcing (5, K, C): P as the formulation
    runs it, P wet, P dry, 1/P, capped PET (see :class:`_DwbmForcing`), of which the columns
    ``idx`` (N,) are run (the gather fuses into the kernel); state (2, N): S, G; prm (6, N):
    sc, alpha1, alpha2, 1/alpha1, 1/alpha2, kg. Returns (runoff (K, N), state (2, N)).
    Few, stacked arguments: each one costs guard checks on every call."""
    f = torch.index_select(forcing, 2, idx)
    s, g = state[0], state[1]
    sc, a1, a2, ia1, ia2, kg = prm.unbind(0)
    qs = []
    for k in range(f.shape[1]):
        q, _, s, g = _dwbm_step(
            f[0, k], f[1, k], f[2, k], f[3, k], f[4, k], s, g, sc, a1, a2, ia1, ia2, kg, conserving
        )
        qs.append(q)
    return torch.stack(qs), torch.stack((s, g))


def _bucket_block(idx, forcing, w, prm, tvgm: bool, conserving: bool, bounded: bool = False):
    """A block of SWBM or TVGM months, as :func:`_dwbm_block`: forcing (2, K, C)
    P and PET; w (N,); prm (5, N): c1, c2, 1/sc, exponent of E, exponent of Q (see
    :func:`_bucket_step`). Returns (runoff (K, N), W)."""
    f = torch.index_select(forcing, 2, idx)
    c1, c2, inv_sc, expo_e, expo_q = prm.unbind(0)
    qs = []
    for k in range(f.shape[1]):
        q, _, w = _bucket_step(f[0, k], f[1, k], w, c1, c2, inv_sc, expo_e, expo_q, tvgm, conserving, bounded)
        qs.append(q)
    return torch.stack(qs), w


#: Months per compiled call when only runoff is wanted (the optimiser's case) come from
#: :func:`cwsc.machine.environment.block_months`: one fused kernel carries the stores through all
#: of them, so the per-call cost (guards, launch, allocation) is paid once per block instead
#: of once per month; 10 divides the usual 20- and 30-year records and their calibration
#: periods (3/4 of them), and compile time grows with the block.


def _step_function(name: str, fused: bool):
    fn = _dwbm_step if name == "DWBM" else _bucket_step
    return fusion.compiled(name, fn) if fused else fn


def _block_function(name: str):
    fn = _dwbm_block if name == "DWBM" else _bucket_block
    return fusion.compiled(name + "-block", fn)


# --------------------------------------------------------------------------------------
# The month loop on (T, N) tensors.
# --------------------------------------------------------------------------------------


def prepare_params(model: str, params: Mapping[str, torch.Tensor]) -> dict:
    """Parameters (N,) plus the derived terms the steps use (1/alpha, 1/sc)."""
    model = _check_model(model)
    prm = {k: params[k] for k in PARAMETERS[model]}
    prm["sc"] = torch.clamp_min(prm["sc"], SC_FLOOR)
    if model == "DWBM":
        prm["ia1"] = 1.0 / prm["alpha1"]
        prm["ia2"] = 1.0 / prm["alpha2"]
    else:
        prm["inv_sc"] = 1.0 / prm["sc"]
    return prm


def _bucket_coefficients(prm: Mapping[str, torch.Tensor], tvgm: bool):
    """(c1, c2, exponent of E, exponent of Q) of :func:`_bucket_step` from the parameters."""
    if tvgm:
        return prm["g1"], 0.5 * prm["kr"], prm["gamma"], prm["g2"]
    ones = torch.ones_like(prm["ks"])  # the exponents are unused by SWBM
    return prm["ks"], prm["kg"], ones, ones


class Forcing:
    """Forcing laid out (T, N) with the model's forcing-only terms precomputed, so repeated
    evaluations (the optimiser) pay for them once."""

    def __init__(
        self, model: str, precip: torch.Tensor, pet: torch.Tensor, formulation: str = "conserving"
    ) -> None:
        if formulation not in FORMULATIONS:
            raise ValueError(f"unknown formulation '{formulation}' (use {' or '.join(FORMULATIONS)})")
        self.model = _check_model(model)
        self.conserving = formulation in ("conserving", "bounded")
        self.bounded = formulation == "bounded"
        self.base: Forcing | None = None  # set on a selection: the forcing selected from
        self.index: torch.Tensor | None = None
        self._p = precip
        self._e0 = pet
        self._dwbm = _dwbm_forcing(precip, pet, self.conserving) if self.model == "DWBM" else None
        self._stacked: torch.Tensor | None = None

    @property
    def months(self) -> int:
        return (self.base or self)._p.shape[0]

    @property
    def columns(self) -> int:
        return self.index.numel() if self.index is not None else self._p.shape[1]

    @property
    def like(self) -> torch.Tensor:
        """A tensor of the forcing's dtype and device."""
        return (self.base or self)._p

    def select(self, index: torch.Tensor) -> Forcing:
        """The forcing of the columns ``index`` (N',), for evaluating a subset of points. Lazy:
        the compiled month blocks gather the columns inside their kernel; the arrays are only
        copied out (:attr:`p`, :attr:`e0`, :attr:`dwbm`) where the month-by-month path needs them."""
        out = Forcing.__new__(Forcing)
        out.model, out.conserving, out.bounded = self.model, self.conserving, self.bounded
        out.base = self.base or self
        out.index = index if self.index is None else self.index[index]
        out._p = out._e0 = out._dwbm = None
        return out

    def _pick(self, a: torch.Tensor) -> torch.Tensor:
        # index_select along the cell axis is several times faster than fancy indexing.
        return torch.index_select(a, 1, self.index)

    @property
    def p(self) -> torch.Tensor:
        if self._p is None:
            self._p = self._pick(self.base._p)
        return self._p

    @property
    def e0(self) -> torch.Tensor:
        if self._e0 is None:
            self._e0 = self._pick(self.base._e0)
        return self._e0

    @property
    def dwbm(self) -> _DwbmForcing | None:
        if self._dwbm is None and self.base is not None and self.base._dwbm is not None:
            d = self.base._dwbm
            self._dwbm = _DwbmForcing(
                self.p, self._pick(d.p_wet), self._pick(d.p_dry), self._pick(d.inv_p), self._pick(d.e0p)
            )
        return self._dwbm

    def block_arrays(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(column index (N,), unselected forcing stacked (F, T, C)) for the compiled blocks."""
        src = self.base or self
        idx = self.index if self.index is not None else torch.arange(src._p.shape[1], device=src._p.device)
        if src._stacked is None:
            if self.model == "DWBM":
                d = src._dwbm
                arrays = [d.p if self.conserving else d.p_wet, d.p_wet, d.p_dry, d.inv_p, d.e0p]
            else:
                arrays = [src._p, src._e0]
            src._stacked = torch.stack(arrays)
        return idx, src._stacked


def run_months(
    forcing: Forcing,
    params: Mapping[str, torch.Tensor],
    full: bool = False,
    fused: bool = False,
    months: int | None = None,
) -> dict[str, torch.Tensor]:
    """Run the model from the first month for N columns.

    ``params``: name -> (N,) tensors on the forcing's device and dtype. ``months``: how many
    months to run (default all T; the optimiser stops at the end of the calibration period,
    as later months cannot change its score). Returns ``runoff`` (months, N); with ``full`` also
    ``evap`` (T, N), ``storage`` and, for DWBM, ``groundwater`` (T + 1, N). ``fused``: the month steps
    compiled with torch.compile (the caller decides, see :mod:`cwsc.hydro.engines.selection`); a
    compiler failure reruns eagerly.
    """
    n_t = forcing.months if months is None else max(0, min(int(months), forcing.months))
    try:
        return _run_months(forcing, params, full, fused, n_t)
    except Exception as exc:  # noqa: BLE001 - a compiler failure must not stop the work
        if not fused:
            raise
        fusion.mark_broken(exc)
        return _run_months(forcing, params, full, False, n_t)


def _run_months(
    forcing: Forcing, params: Mapping[str, torch.Tensor], full: bool, fused: bool, n_t: int
) -> dict[str, torch.Tensor]:
    model, conserving, bounded = forcing.model, forcing.conserving, forcing.bounded
    prm = prepare_params(model, params)
    kind = "DWBM" if model == "DWBM" else "bucket"
    step = _step_function(kind, fused)
    # Whole blocks of months go through one compiled call; the rest month by month.
    block_months = environment.block_months()
    blocked = 0 if (full or not fused) else n_t - n_t % block_months
    block = _block_function(kind) if blocked else None
    like = forcing.like
    n = forcing.columns
    if blocked:
        idx, stacked = forcing.block_arrays()
    q_out = like.new_empty((n_t, n))
    if full:
        e_out = like.new_empty((n_t, n))
        s_out = like.new_empty((n_t + 1, n))
    with torch.no_grad():
        if model == "DWBM":
            sc, a1, a2, ia1, ia2, kg = (prm[k] for k in ("sc", "alpha1", "alpha2", "ia1", "ia2", "kg"))
            s = (0.1 * sc).expand(n).clone()
            g = torch.full((n,), 0.001, dtype=like.dtype, device=like.device)
            if full:
                g_out = like.new_empty((n_t + 1, n))
                s_out[0], g_out[0] = s, g
            if blocked:
                state = torch.stack((s, g))
                prm_stack = torch.stack([v.expand(n) for v in (sc, a1, a2, ia1, ia2, kg)])
                for t in range(0, blocked, block_months):
                    q_out[t : t + block_months], state = block(
                        idx, stacked[:, t : t + block_months], state, prm_stack, conserving
                    )
                s, g = state[0].clone(), state[1].clone()
            if blocked < n_t:
                d = forcing.dwbm
                # Seed: Qd = 0 (not P) in months below 0.01 mm, so P counts only on wet months.
                p_in = d.p if conserving else d.p_wet
            for t in range(blocked, n_t):
                q, e, s, g = step(
                    p_in[t],
                    d.p_wet[t],
                    d.p_dry[t],
                    d.inv_p[t],
                    d.e0p[t],
                    s,
                    g,
                    sc,
                    a1,
                    a2,
                    ia1,
                    ia2,
                    kg,
                    conserving,
                )
                q_out[t] = q
                if full:
                    e_out[t], s_out[t + 1], g_out[t + 1] = e, s, g
        else:
            tvgm = model == "TVGM"
            c1, c2, e_exp, q_exp = _bucket_coefficients(prm, tvgm)
            inv_sc = prm["inv_sc"]
            w = torch.full((n,), 50.0, dtype=like.dtype, device=like.device)
            if bounded:
                w = torch.minimum(w, prm["sc"].expand(n))
            if full:
                s_out[0] = w
            if blocked:
                prm_stack = torch.stack([v.expand(n) for v in (c1, c2, inv_sc, e_exp, q_exp)])
                for t in range(0, blocked, block_months):
                    q_out[t : t + block_months], w = block(
                        idx, stacked[:, t : t + block_months], w, prm_stack, tvgm, conserving, bounded
                    )
            for t in range(blocked, n_t):
                q, e, w = step(
                    forcing.p[t], forcing.e0[t], w, c1, c2, inv_sc, e_exp, q_exp, tvgm, conserving, bounded
                )
                q_out[t] = q
                if full:
                    e_out[t], s_out[t + 1] = e, w
    out = {"runoff": q_out}
    if full:
        out.update(evap=e_out, storage=s_out)
        if model == "DWBM":
            out["groundwater"] = g_out
    return out


def runoff_with_gradients(
    forcing: Forcing,
    params: Mapping[str, torch.Tensor],
    months: int | None = None,
    checkpoint_months: int = 0,
) -> torch.Tensor:
    """Runoff (months, N) of the model from the first month, differentiable in ``params``
    (name -> (N,) tensors, typically a network's output): the month loop runs eagerly under
    autograd, so the gradient of a loss on the runoff flows back through every month (full
    backpropagation through time). ``checkpoint_months`` > 0 recomputes the forward pass of
    each block of that many months during the backward pass instead of keeping its
    intermediate tensors (less memory, about a third more time). The same equations as
    :func:`run_months`, which is faster where no gradient is needed."""
    from torch.utils.checkpoint import checkpoint

    n_t = forcing.months if months is None else max(0, min(int(months), forcing.months))
    model, conserving, bounded = forcing.model, forcing.conserving, forcing.bounded
    prm = prepare_params(model, params)
    like = forcing.like
    n = forcing.columns
    if model == "DWBM":
        d = forcing.dwbm
        p_in = d.p if conserving else d.p_wet
        names = ("sc", "alpha1", "alpha2", "ia1", "ia2", "kg")
        consts = tuple(prm[k].expand(n) for k in names)
        state = ((0.1 * prm["sc"]).expand(n), torch.full((n,), 0.001, dtype=like.dtype, device=like.device))

        def months_from(t0: int, t1: int, *carry_and_prm):
            s, g, sc, a1, a2, ia1, ia2, kg = carry_and_prm
            qs = []
            for t in range(t0, t1):
                q, _, s, g = _dwbm_step(
                    p_in[t],
                    d.p_wet[t],
                    d.p_dry[t],
                    d.inv_p[t],
                    d.e0p[t],
                    s,
                    g,
                    sc,
                    a1,
                    a2,
                    ia1,
                    ia2,
                    kg,
                    conserving,
                )
                qs.append(q)
            return torch.stack(qs), s, g
    else:
        tvgm = model == "TVGM"
        c1, c2, e_exp, q_exp = _bucket_coefficients(prm, tvgm)
        consts = tuple(v.expand(n) for v in (c1, c2, prm["inv_sc"], e_exp, q_exp))
        w = torch.full((n,), 50.0, dtype=like.dtype, device=like.device)
        if bounded:
            w = torch.minimum(w, prm["sc"].expand(n))
        state = (w,)
        p, e0 = forcing.p, forcing.e0

        def months_from(t0: int, t1: int, *carry_and_prm):
            w, c1, c2, inv_sc, e_exp, q_exp = carry_and_prm
            qs = []
            for t in range(t0, t1):
                q, _, w = _bucket_step(
                    p[t], e0[t], w, c1, c2, inv_sc, e_exp, q_exp, tvgm, conserving, bounded
                )
                qs.append(q)
            return torch.stack(qs), w

    if n_t == 0:
        return like.new_empty((0, n))
    step = checkpoint_months if checkpoint_months > 0 else n_t
    pieces = []
    for t0 in range(0, n_t, step):
        t1 = min(n_t, t0 + step)
        if checkpoint_months > 0 and torch.is_grad_enabled():
            out = checkpoint(months_from, t0, t1, *state, *consts, use_reentrant=False)
        else:
            out = months_from(t0, t1, *state, *consts)
        pieces.append(out[0])
        state = tuple(out[1:])
    return torch.cat(pieces)


# --------------------------------------------------------------------------------------
# The public entry point.
# --------------------------------------------------------------------------------------


def _as_tensor(x, dtype, device) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.to(dtype=dtype, device=device)
    return torch.as_tensor(np.asarray(x), dtype=dtype, device=device)


def simulate(
    model: str,
    precip,
    pet,
    params: Mapping[str, object],
    formulation: str = "conserving",
    dtype: torch.dtype | str | None = None,
    device: torch.device | str | None = None,
) -> Simulation:
    """Run ``model`` ("DWBM", "SWBM" or "TVGM") over monthly forcing.

    - precip, pet: arrays shaped (..., months) in mm/month (numpy or torch).
    - params: parameter name (see :data:`PARAMETERS`) -> scalar or array broadcastable to
      (...), the batch shape of the forcing.
    - formulation: "conserving" (default), "bounded" or "seed" (the original Fortran, see
      the module doc).
    - dtype: float32 or float64; default float64 when the forcing is float64, else float32.
    - device: torch device; default the forcing's (CPU for numpy).

    Returns a :class:`Simulation` of the same kind as ``precip`` (numpy in, numpy out).
    """
    model = _check_model(model)
    as_numpy = not isinstance(precip, torch.Tensor)
    if dtype is None:
        src = precip.dtype if isinstance(precip, torch.Tensor) else np.asarray(precip).dtype
        dtype = torch.float64 if src in (torch.float64, np.float64) else torch.float32
    elif isinstance(dtype, str):
        dtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
    if device is None:
        device = precip.device if isinstance(precip, torch.Tensor) else torch.device("cpu")
    p = _as_tensor(precip, dtype, device)
    e0 = _as_tensor(pet, dtype, device)
    if p.ndim == 0 or e0.ndim == 0:
        raise ValueError("precip and pet must have a months axis (the last one)")
    if p.shape[-1] != e0.shape[-1]:
        raise ValueError(f"precip has {p.shape[-1]} months, pet {e0.shape[-1]}")
    missing = [k for k in PARAMETERS[model] if k not in params]
    if missing:
        raise ValueError(f"{model} needs parameters {', '.join(missing)}")
    prm = {k: _as_tensor(params[k], dtype, device) for k in PARAMETERS[model]}
    batch = torch.broadcast_shapes(p.shape[:-1], e0.shape[:-1], *(v.shape for v in prm.values()))
    n_t = p.shape[-1]
    n = int(np.prod(batch)) if batch else 1
    p2 = p.expand(*batch, n_t).reshape(n, n_t).T.contiguous()
    e2 = e0.expand(*batch, n_t).reshape(n, n_t).T.contiguous()
    prm = {k: v.expand(batch).reshape(n).contiguous() for k, v in prm.items()}
    fused = fusion.compile_wanted(n, p2.device)
    out = run_months(Forcing(model, p2, e2, formulation), prm, full=True, fused=fused)

    def back(x: torch.Tensor | None):
        if x is None:
            return None
        y = x.T.reshape(*batch, x.shape[0])
        return y.cpu().numpy() if as_numpy else y

    return Simulation(
        back(out["runoff"]), back(out["evap"]), back(out["storage"]), back(out.get("groundwater"))
    )

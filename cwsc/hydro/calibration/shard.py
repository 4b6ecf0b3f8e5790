"""The per-shard step: calibrating models on a batch of cells in this process.

For every cell and model: SCE-UA on 1 - KGE (or 1 - NSE) over the calibration months,
every evaluation simulating from month 0 (warm-up months are simulated, not scored);
independent restarts run side by side as extra problems and the best one wins. Then the
labels: every parameter, calibration and validation KGE and NSE, and the identifiable range
of sc (:mod:`cwsc.hydro.identifiability`, :class:`~cwsc.hydro.labels.ModelLabels`).
Across models: the joint CWSC label, the width of its range, its quality flags and the joint
KGE (:func:`~cwsc.hydro.labels.joint_labels`).

- :func:`calibrate_batch`: one model, one batch of cells, in this process.
- :func:`calibrate_model`: one model on any number of cells, in this process.
- :func:`calibrate_in_process`: every model on one batch, then the joint labels (a shard).
- :func:`concatenate_results`: the results of consecutive shards, end to end.

The driver that runs shards on workers is :mod:`cwsc.hydro.calibration.driver`.
"""

from __future__ import annotations

import logging
from typing import Callable, Mapping

import numpy as np
import torch

from cwsc.hydro import metrics
from cwsc.hydro.calibration.config import CalibrationConfig
from cwsc.hydro.engines import cuda as cuda_kernels
from cwsc.hydro.engines.selection import Engine, Tuning, choose_engine
from cwsc.hydro.identifiability import profile_range
from cwsc.hydro.labels import ABOVE_PET_SLACK, CalibrationResult, ModelLabels, joint_labels
from cwsc.hydro.models import PARAMETERS, SEED_EPS, Forcing, run_months
from cwsc.hydro.sceua import sceua

#: A store at or below this (mm) at the end of a month was emptied by the conserving limit
#: (the seed formulation floors it at machine epsilon instead).
log = logging.getLogger(__name__)

LIMIT_EMPTY = 2 * SEED_EPS


def _tensor(x, config: CalibrationConfig) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.to(dtype=config.dtype, device=config.device)
    return torch.as_tensor(np.asarray(x), dtype=config.dtype, device=config.device)


def calibrate_batch(
    model: str,
    precip,
    pet,
    runoff,
    config: CalibrationConfig,
    engine: Engine,
    fixed: Mapping[str, object] | None = None,
    progress: Callable[[float], None] | None = None,
) -> ModelLabels:
    """Calibrate ``model`` on a batch of C cells in this process, with ``engine``.

    precip, pet, runoff: (C, months) in mm/month (NaN runoff = missing month). fixed:
    parameter name -> (C,) values held fixed per cell (the others are calibrated), e.g.
    ``{"sc": cwsc_map}``. Cells with missing forcing or too few / constant observations get
    NaN labels. progress(fraction) after every SCE-UA loop. ``config.seed`` seeds the search.
    """
    model = model.upper()
    p, e0, q = (_tensor(a, config) for a in (precip, pet, runoff))
    n_cells, months = p.shape
    w, c = config.periods(months)
    fixed = {
        k: _tensor(v, config).reshape(n_cells) for k, v in (fixed or {}).items() if k in PARAMETERS[model]
    }
    names = list(PARAMETERS[model])
    free = [k for k in names if k not in fixed]

    target_all = metrics.CalibrationTarget(q.T, slice(w, c), config.objective, config.kge_version)
    usable = target_all.ok & torch.isfinite(p).all(1) & torch.isfinite(e0).all(1)
    usable &= torch.stack([torch.isfinite(v) for v in fixed.values()]).all(0) if fixed else True
    cells = usable.nonzero(as_tuple=True)[0]
    labels = ModelLabels.empty(model, n_cells)
    if cells.numel() == 0:
        if progress:
            progress(1.0)
        return labels

    # Work on the usable cells only, laid out (months, cells).
    pc, ec, qc = p[cells].T.contiguous(), e0[cells].T.contiguous(), q[cells].T.contiguous()
    fixed_c = {k: v[cells] for k, v in fixed.items()}
    forcing = Forcing(model, pc, ec, config.formulation)
    target = metrics.CalibrationTarget(qc, slice(w, c), config.objective, config.kge_version)
    restarts = max(1, int(config.restarts))
    lower = torch.tensor([PARAMETERS[model][k][0] for k in free], dtype=config.dtype, device=config.device)
    upper = torch.tensor([PARAMETERS[model][k][1] for k in free], dtype=config.dtype, device=config.device)
    initial = torch.tensor([PARAMETERS[model][k][2] for k in free], dtype=config.dtype, device=config.device)

    max_cols = engine.max_columns
    kernel = engine.kernel()
    fused = engine.fused

    def params_of(x: torch.Tensor, cell: torch.Tensor) -> dict[str, torch.Tensor]:
        prm = {k: x[:, i].contiguous() for i, k in enumerate(free)}
        prm.update({k: v[cell] for k, v in fixed_c.items()})
        return prm

    def torch_score(x: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        out = []
        for i0 in range(0, x.shape[0], max_cols):
            sl = slice(i0, i0 + max_cols)
            # Months after the calibration period cannot change the score: not simulated.
            sim = run_months(forcing.select(cell[sl]), params_of(x[sl], cell[sl]), fused=fused, months=c)[
                "runoff"
            ]
            out.append(target.objective(sim, cell[sl], fused=fused))
        return torch.cat(out)

    if kernel is not None and config.formulation == "bounded" and engine.kind == "triton":
        kernel = None  # the Triton kernel has no bounded formulation: torch runs it
    if kernel is not None:
        _, stacked = forcing.block_arrays()
        column = {k: i for i, k in enumerate(free)}
        conserving = {"seed": 0, "conserving": 1, "bounded": 2}[config.formulation]

        def kernel_score(x: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
            nonlocal kernel
            if kernel is None:
                return torch_score(x, cell)
            prm = torch.stack([x[:, column[k]] if k in column else fixed_c[k][cell] for k in names])
            try:
                # In chunks: a stop signal is handled between calls, never minutes later.
                sums = torch.cat(
                    [
                        kernel(
                            model,
                            conserving,
                            cell[i0 : i0 + max_cols],
                            stacked,
                            prm[:, i0 : i0 + max_cols],
                            c,
                            w,
                            target.weight,
                            target.centred,
                        )
                        for i0 in range(0, max(cell.numel(), 1), max_cols)
                    ],
                    dim=1,
                )
            except Exception as exc:  # noqa: BLE001 - a GPU kernel failure must not stop the run
                if engine.kind != "triton":
                    raise
                cuda_kernels.mark_broken(exc)
                kernel = None
                return torch_score(x, cell)
            return target.objective_from_sums(sums, cell).to(config.dtype)

    score = torch_score if kernel is None else kernel_score

    def objective(x: torch.Tensor, problem: torch.Tensor) -> torch.Tensor:
        return score(x, torch.div(problem, restarts, rounding_mode="floor"))

    n_c = cells.numel()
    if free:
        gen = torch.Generator().manual_seed(int(config.seed))
        res = sceua(
            objective,
            lower,
            upper,
            n_c * restarts,
            initial=initial,
            settings=config.sceua,
            generator=gen,
            on_loop=progress,
        )
        # The best restart of every cell.
        best_f = torch.nan_to_num(res.best_f.reshape(n_c, restarts), nan=float("inf"))
        pick = best_f.argmin(1)
        rows = torch.arange(n_c, device=pick.device) * restarts + pick
        best_x = res.best_x[rows]
        objective_best = res.best_f[rows]
        evaluations = res.evaluations.reshape(n_c, restarts).sum(1)
        labels.restart_objective = np.full((n_cells, restarts), np.nan)
        labels.restart_objective[cells.cpu().numpy()] = res.best_f.reshape(n_c, restarts).cpu().numpy()
        sc_low = sc_high = None
        if "sc" in free and config.profile is not None:
            # The identifiable range of sc: a profile of the objective (its own stream of
            # random numbers, so the labels do not depend on whether it runs).
            found = profile_range(
                score,
                lower,
                upper,
                free.index("sc"),
                best_x,
                objective_best,
                config.identifiability_tolerance,
                config.profile,
                config.sceua,
                torch.Generator().manual_seed(int(config.seed) + 7919),
            )
            sc_low, sc_high = found.low, found.high
            evaluations = evaluations + found.evaluations.to(evaluations.device)
    else:  # everything fixed: just score the given parameters
        best_x = torch.empty((n_c, 0), dtype=config.dtype, device=config.device)
        evaluations = torch.zeros(n_c, dtype=torch.long)
        objective_best = None
        sc_low = sc_high = None

    # Final simulation with the best parameters: the labels' fit on both periods, and how
    # often the conserving limits emptied the store in the calibration months.
    prm = params_of(best_x, torch.arange(n_c, device=best_x.device))
    full = run_months(forcing, prm, full=True, fused=fused)
    sim = full["runoff"]
    limited = (full["storage"][w + 1 : c + 1] <= LIMIT_EMPTY).to(config.dtype).mean(0)
    # How often the model evaporates more than the atmosphere demands (issue 35): a fit that
    # needs it compensates for forcing that does not balance.
    above_pet = (full["evap"][w:c] > ec[w:c] + ABOVE_PET_SLACK).to(config.dtype).mean(0)
    scored = torch.isfinite(qc[w:c]).sum(0)
    if sc_low is None:  # sc given (or profile off): no range
        sc_low = sc_high = torch.full((n_c,), float("nan"), dtype=config.dtype, device=config.device)
    kge_cal = metrics.kge(sim[w:c], qc[w:c], axis=0, version=config.kge_version)
    nse_cal = metrics.nse(sim[w:c], qc[w:c], axis=0)
    kge_val = metrics.kge(sim[c:], qc[c:], axis=0, version=config.kge_version)
    nse_val = metrics.nse(sim[c:], qc[c:], axis=0)
    if objective_best is None:
        objective_best = 1.0 - (kge_cal if config.objective == "kge" else nse_cal)

    idx = cells.cpu().numpy()

    def put(dst: np.ndarray, src: torch.Tensor) -> None:
        dst[idx] = src.detach().cpu().numpy()

    for k in names:
        put(labels.params[k], prm[k])
    put(labels.kge_cal, kge_cal), put(labels.kge_val, kge_val)
    put(labels.nse_cal, nse_cal), put(labels.nse_val, nse_val)
    put(labels.objective, objective_best)
    put(labels.sc_low, sc_low), put(labels.sc_high, sc_high)
    put(labels.limited_fraction, limited), put(labels.calibration_months, scored)
    put(labels.above_pet_fraction, above_pet)
    labels.evaluations[idx] = evaluations.cpu().numpy()
    if progress:
        progress(1.0)
    return labels


def calibrate_model(
    model: str,
    precip,
    pet,
    runoff,
    config: CalibrationConfig | None = None,
    fixed: Mapping[str, object] | None = None,
    progress: Callable[[float], None] | None = None,
    engine: Engine | None = None,
    tuning: Tuning | None = None,
) -> ModelLabels:
    """Calibrate ``model`` on C cells in this process, as one batch (arrays as
    :func:`calibrate_batch`). ``engine``: what runs the objective, chosen here when not
    given (``tuning`` overrides the automatic choice)."""
    config = config or CalibrationConfig()
    cells, months = int(np.shape(precip)[0]), int(np.shape(precip)[1])
    engine = engine or choose_engine(config, cells, months, tuning)
    return calibrate_batch(model.upper(), precip, pet, runoff, config, engine, fixed, progress)


def calibrate_in_process(
    precip,
    pet,
    runoff,
    config: CalibrationConfig,
    engine: Engine,
    fixed: Mapping[str, object] | None = None,
    progress: Callable[[float], None] | None = None,
) -> CalibrationResult:
    """Every model of ``config.models`` on one batch of cells in this process, then the
    joint labels; progress(fraction of the whole batch's work)."""
    out: dict[str, ModelLabels] = {}
    models = [m.upper() for m in config.models]
    for i, name in enumerate(models):
        cb = (lambda frac, _i=i: progress((_i + frac) / len(models))) if progress else None
        out[name] = calibrate_batch(name, precip, pet, runoff, config, engine, fixed, cb)
    return CalibrationResult(out, *joint_labels(out, config.kge_threshold, config.kge_margin))


def concatenate_results(parts: list[CalibrationResult], config: CalibrationConfig) -> CalibrationResult:
    """The results of consecutive shards, end to end."""
    if not parts:
        empty = {m.upper(): ModelLabels.empty(m.upper(), 0) for m in config.models}
        return CalibrationResult(empty, *(np.empty(0) for _ in range(4)))
    models = {m: ModelLabels.concatenate([pt.models[m] for pt in parts]) for m in parts[0].models}
    cat = lambda name: np.concatenate([getattr(pt, name) for pt in parts])  # noqa: E731
    return CalibrationResult(models, cat("cwsc"), cat("cwsc_range"), cat("flags"), cat("kge"))

"""Calibrating one model on a batch of cells in this process, and the entry points.

For every cell and model: SCE-UA on 1 - KGE (or 1 - NSE) over the calibration months,
every evaluation simulating from month 0 (warm-up months are simulated, not scored);
independent restarts run side by side as extra problems and the best one wins. Then the
labels: every parameter, calibration and validation KGE and NSE, and the equifinality
spread of sc (:class:`~backend.hydro.labels.ModelLabels`). Across models: the joint CWSC
label and joint KGE (:func:`~backend.hydro.labels.joint_labels`).

- :func:`calibrate_batch`: one model, one batch of cells, in this process.
- :func:`calibrate_model`: one model on any number of cells (shards in worker processes on
  the CPU, see :mod:`backend.hydro.parallel`).
- :func:`calibrate`: every model of the configuration, then the joint labels.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
import torch

from backend.hydro import cuda_kernels, metrics, parallel
from backend.hydro.config import CalibrationConfig
from backend.hydro.engine import Engine, Tuning, choose_engine
from backend.hydro.labels import CalibrationResult, ModelLabels, joint_labels
from backend.hydro.models import PARAMETERS, Forcing, run_months
from backend.hydro.sceua import sceua


def _tensor(x, config: CalibrationConfig) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.to(dtype=config.dtype, device=config.device)
    return torch.as_tensor(np.asarray(x), dtype=config.dtype, device=config.device)


def calibrate_batch(model: str, precip, pet, runoff, config: CalibrationConfig, engine: Engine,
                    fixed: Mapping[str, object] | None = None,
                    progress: Callable[[float], None] | None = None) -> ModelLabels:
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
    fixed = {k: _tensor(v, config).reshape(n_cells) for k, v in (fixed or {}).items()
             if k in PARAMETERS[model]}
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
    lower = torch.tensor([PARAMETERS[model][k][0] for k in free], dtype=config.dtype,
                         device=config.device)
    upper = torch.tensor([PARAMETERS[model][k][1] for k in free], dtype=config.dtype,
                         device=config.device)
    initial = torch.tensor([PARAMETERS[model][k][2] for k in free], dtype=config.dtype,
                           device=config.device)

    max_cols = engine.max_columns
    kernel = engine.kernel()
    fused = engine.fused

    def params_of(x: torch.Tensor, cell: torch.Tensor) -> dict[str, torch.Tensor]:
        prm = {k: x[:, i].contiguous() for i, k in enumerate(free)}
        prm.update({k: v[cell] for k, v in fixed_c.items()})
        return prm

    def torch_objective(x: torch.Tensor, problem: torch.Tensor) -> torch.Tensor:
        cell = torch.div(problem, restarts, rounding_mode="floor")
        out = []
        for i0 in range(0, x.shape[0], max_cols):
            sl = slice(i0, i0 + max_cols)
            # Months after the calibration period cannot change the score: not simulated.
            sim = run_months(forcing.select(cell[sl]), params_of(x[sl], cell[sl]),
                             fused=fused, months=c)["runoff"]
            out.append(target.objective(sim, cell[sl], fused=fused))
        return torch.cat(out)

    if kernel is not None:
        _, stacked = forcing.block_arrays()
        column = {k: i for i, k in enumerate(free)}
        conserving = config.formulation == "conserving"

        def kernel_objective(x: torch.Tensor, problem: torch.Tensor) -> torch.Tensor:
            nonlocal kernel
            if kernel is None:
                return torch_objective(x, problem)
            cell = torch.div(problem, restarts, rounding_mode="floor")
            prm = torch.stack([x[:, column[k]] if k in column else fixed_c[k][cell]
                               for k in names])
            try:
                # In chunks: a stop signal is handled between calls, never minutes later.
                sums = torch.cat([kernel(model, conserving, cell[i0:i0 + max_cols], stacked,
                                         prm[:, i0:i0 + max_cols], c, w, target.weight,
                                         target.centred)
                                  for i0 in range(0, max(cell.numel(), 1), max_cols)], dim=1)
            except Exception as exc:  # noqa: BLE001 - a GPU kernel failure must not stop the run
                if engine.kind != "triton":
                    raise
                cuda_kernels.mark_broken(exc)
                kernel = None
                return torch_objective(x, problem)
            return target.objective_from_sums(sums, cell).to(config.dtype)

    objective = torch_objective if kernel is None else kernel_objective

    n_c = cells.numel()
    if free:
        gen = torch.Generator().manual_seed(int(config.seed))
        res = sceua(objective, lower, upper, n_c * restarts, initial=initial,
                    settings=config.sceua, generator=gen, on_loop=progress)
        # The best restart of every cell.
        best_f = torch.nan_to_num(res.best_f.reshape(n_c, restarts), nan=float("inf"))
        pick = best_f.argmin(1)
        rows = torch.arange(n_c, device=pick.device) * restarts + pick
        best_x = res.best_x[rows]
        objective_best = res.best_f[rows]
        evaluations = res.evaluations.reshape(n_c, restarts).sum(1)
        labels.restart_objective = np.full((n_cells, restarts), np.nan)
        labels.restart_objective[cells.cpu().numpy()] = res.best_f.reshape(n_c, restarts).cpu().numpy()
        # Equifinality: sc over the final populations of all restarts, among the points
        # within the tolerance of the cell's best objective.
        pop_f = res.population_f.reshape(n_c, -1)
        pop_x = res.population_x.reshape(n_c, -1, len(free))
        near = torch.isfinite(pop_f) & (pop_f <= objective_best.unsqueeze(1)
                                        + config.equifinality_tolerance)
        if "sc" in free:
            sc_pts = pop_x[..., free.index("sc")]
            hi = torch.where(near, sc_pts, torch.full_like(sc_pts, -float("inf"))).amax(1)
            lo = torch.where(near, sc_pts, torch.full_like(sc_pts, float("inf"))).amin(1)
            spread = torch.where(torch.isfinite(objective_best), hi - lo,
                                 torch.full_like(hi, float("nan")))
        else:
            spread = torch.zeros(n_c, dtype=config.dtype, device=config.device)
    else:  # everything fixed: just score the given parameters
        best_x = torch.empty((n_c, 0), dtype=config.dtype, device=config.device)
        evaluations = torch.zeros(n_c, dtype=torch.long)
        spread = torch.zeros(n_c, dtype=config.dtype, device=config.device)
        objective_best = None

    # Final simulation with the best parameters: the labels' fit on both periods.
    prm = params_of(best_x, torch.arange(n_c, device=best_x.device))
    sim = run_months(forcing, prm, fused=fused)["runoff"]
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
    put(labels.objective, objective_best), put(labels.sc_spread, spread)
    labels.evaluations[idx] = evaluations.cpu().numpy()
    if progress:
        progress(1.0)
    return labels


def calibrate_model(model: str, precip, pet, runoff, config: CalibrationConfig | None = None,
                    fixed: Mapping[str, object] | None = None,
                    progress: Callable[[float], None] | None = None,
                    engine: Engine | None = None, tuning: Tuning | None = None) -> ModelLabels:
    """Calibrate ``model`` on C cells (arrays as :func:`calibrate_batch`).

    Large CPU runs are cut into shards calibrated by worker processes
    (:func:`backend.hydro.parallel.calibrate_sharded`); the result is the same for any number
    of workers. ``engine``: what runs the objective, chosen for the whole run when not given
    (``tuning`` overrides the automatic choice)."""
    config = config or CalibrationConfig()
    model = model.upper()
    cells, months = int(np.shape(precip)[0]), int(np.shape(precip)[1])
    engine = engine or choose_engine(config, cells, months, tuning)
    if parallel.wants_shards(cells, config.device):
        return parallel.calibrate_sharded(model, precip, pet, runoff, config, engine, fixed,
                                          progress)
    return calibrate_batch(model, precip, pet, runoff, config, engine, fixed, progress)


def calibrate(precip, pet, runoff, config: CalibrationConfig | None = None,
              fixed: Mapping[str, object] | None = None,
              progress: Callable[[str, float], None] | None = None,
              engine: Engine | None = None, tuning: Tuning | None = None) -> CalibrationResult:
    """Calibrate every model of ``config.models`` on C cells and derive the joint labels.

    precip, pet, runoff: (C, months) mm/month (numpy or torch; NaN runoff = missing).
    fixed: parameter name -> (C,) values held fixed in every model that has the parameter
    (e.g. ``{"sc": cwsc}`` to calibrate the others with the storage capacity given).
    progress(model, fraction of that model's work). ``engine``/``tuning``: as
    :func:`calibrate_model`, one engine for every model.
    """
    config = config or CalibrationConfig()
    engine = engine or choose_engine(config, int(np.shape(precip)[0]), int(np.shape(precip)[1]),
                                     tuning)
    out: dict[str, ModelLabels] = {}
    for model in config.models:
        name = model.upper()
        cb = (lambda frac, _m=name: progress(_m, frac)) if progress else None
        out[name] = calibrate_model(name, precip, pet, runoff, config, fixed=fixed, progress=cb,
                                    engine=engine)
    cwsc, spread, kge = joint_labels(out, config.kge_threshold, config.kge_margin)
    return CalibrationResult(out, cwsc, spread, kge)

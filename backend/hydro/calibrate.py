"""Calibrating the monthly models cell by cell (all cells at once) and the labels they give.

For every cell and model: SCE-UA on 1 - KGE (or 1 - NSE) over the calibration months,
every evaluation simulating from month 0 (warm-up months are simulated, not scored);
independent restarts run side by side as extra problems and the best one wins. Then the
labels: every parameter, calibration and validation KGE and NSE, and the equifinality
spread of sc. Across models: the joint CWSC label and joint KGE (see :func:`joint_labels`).
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from backend.hydro import fusion, gpu_kernels, metrics, native
from backend.hydro.models import MODELS, PARAMETERS, Forcing, run_months
from backend.hydro.sceua import SceuaSettings, sceua

#: Independent SCE-UA runs per cell. Measured (benchmarks/bench_calibrate.py, restarts
#: part): 384 synthetic DWBM cells, 240 months, seed settings, 10 restarts each; median
#: calibration KGE of the best of 10 restarts 0.9834, of the first one alone 0.9830
#: (-0.0004), of the best of 2 0.9833; 128 TVGM cells: 0.9765 for ten, 0.9754 for one
#: (-0.0011). One run is within 0.005 of ten. Re-measured on the C kernels (384 cells each):
#: DWBM 0.9830 vs 0.9834, TVGM 0.9760 vs 0.9765.
DEFAULT_RESTARTS = 1

#: Only models whose calibration KGE is within this of the cell's best model enter the joint
#: CWSC label (None: every model above the threshold, the rule of the first release). Why:
#: the three models' sc differ by structure (DWBM's is 2-3x SWBM's or TVGM's on the same
#: runoff, and poorly identified on runoff it did not make), so a mean over every model that
#: fits at all mixes scales. Measured on the demo twin (seed 42, every other default): labels
#: vs true CWSC R2 -0.15 with every model, 0.885 with 0.02 (0.843 with 0.05, 0.888 with 0.01);
#: the map 0.87. 0.02 is 20-50x the KGE that one SCE-UA run leaves on the table, so models that
#: fit equally well are averaged, not picked by optimiser noise.
DEFAULT_KGE_MARGIN = 0.02

#: CPU runs of at least this many cells are split into :data:`CPU_SHARDS` shards of cells,
#: each calibrated in its own process with one torch thread (per-op overhead and intra-op
#: threading dominate the lockstep loop on CPU; processes use the cores far better). The
#: shard layout and seeds depend only on the cell count and the seed, never on the number of
#: workers, so a seed gives the same result with any CWSC_WORKERS (default: the cores).
PARALLEL_MIN_CELLS = 2048
CPU_SHARDS = 2


@dataclass
class CalibrationConfig:
    """What to calibrate and how. Periods: warm-up months [0, w) are simulated but not
    scored, calibration months [w, c), validation months [c, n)."""

    models: Sequence[str] = MODELS
    objective: str = "kge"                 # "kge" (1 - KGE) or "nse" (1 - NSE)
    kge_version: str = "2009"              # "2009" (Gupta) or "2012" (Kling)
    formulation: str = "conserving"        # or "seed" (the original Fortran equations)
    warmup_months: int | None = None       # default min(n // 8, 24)
    calibration_fraction: float = 0.75     # calibration ends at round(fraction * n)
    restarts: int = DEFAULT_RESTARTS
    sceua: SceuaSettings = field(default_factory=SceuaSettings)
    kge_threshold: float = 0.0             # models above it enter the joint CWSC label
    kge_margin: float | None = DEFAULT_KGE_MARGIN  # ... and within it of the best model's
                                           # KGE (None: no such limit)
    equifinality_tolerance: float = 0.01   # objective distance from the best, for the spread
    seed: int = 0
    dtype: torch.dtype = torch.float32
    device: torch.device | str = "cpu"
    max_columns: int | None = None         # model runs per call (memory); None: 64 Ki CPU, 1 Mi CUDA
    compile: str | bool | None = None      # fuse the month step: True/False/"auto" (None: env)
    native: str | bool | None = None       # hand-written objective kernels (C on CPU, Triton
                                           # on CUDA; float32): True/False/"auto" (None: env
                                           # CWSC_NATIVE)

    def periods(self, months: int) -> tuple[int, int]:
        """(w, c): calibration months are [w, c), validation [c, months)."""
        w = min(months // 8, 24) if self.warmup_months is None else int(self.warmup_months)
        c = int(round(self.calibration_fraction * months))
        if not 0 <= w < c <= months:
            raise ValueError(f"periods do not fit {months} months: warm-up {w}, calibration "
                             f"ends at {c}")
        return w, c


@dataclass
class ModelLabels:
    """One model's labels per cell (C,): parameters, fit, equifinality spread of sc (mm)."""

    params: dict[str, np.ndarray]
    kge_cal: np.ndarray
    kge_val: np.ndarray
    nse_cal: np.ndarray
    nse_val: np.ndarray
    objective: np.ndarray
    sc_spread: np.ndarray
    evaluations: np.ndarray
    restart_objective: np.ndarray | None = None   # (C, restarts): each restart's best


@dataclass
class CalibrationResult:
    """Labels of every model plus the joint ones: ``cwsc`` (mm), ``cwsc_spread`` (mm) and
    ``kge`` (the best model's calibration KGE), each (C,), NaN where not calibrated."""

    models: dict[str, ModelLabels]
    cwsc: np.ndarray
    cwsc_spread: np.ndarray
    kge: np.ndarray


def _tensor(x, config: CalibrationConfig) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.to(dtype=config.dtype, device=config.device)
    return torch.as_tensor(np.asarray(x), dtype=config.dtype, device=config.device)


def calibrate_model(model: str, precip, pet, runoff, config: CalibrationConfig | None = None,
                    fixed: Mapping[str, object] | None = None,
                    progress: Callable[[float], None] | None = None) -> ModelLabels:
    """Calibrate ``model`` on C cells. precip, pet, runoff: (C, months) in mm/month (NaN
    runoff = missing month). fixed: parameter name -> (C,) values held fixed per cell (the
    others are calibrated), e.g. ``{"sc": cwsc_map}``. Cells with missing forcing or too
    few / constant observations get NaN labels. progress(fraction) after every loop."""
    config = config or CalibrationConfig()
    model = model.upper()
    n_all = int(np.shape(precip)[0])
    min_cells = int(os.environ.get("CWSC_PARALLEL_MIN_CELLS", PARALLEL_MIN_CELLS))
    if (torch.device(config.device).type == "cpu" and n_all >= max(min_cells, CPU_SHARDS)
            and not getattr(config, "_shard", False)):
        return _calibrate_sharded(model, precip, pet, runoff, config, fixed, progress)
    p, e0, q = (_tensor(a, config) for a in (precip, pet, runoff))
    n_cells, months = p.shape
    w, c = config.periods(months)
    fixed = {k: _tensor(v, config).reshape(n_cells) for k, v in (fixed or {}).items()
             if k in PARAMETERS[model]}
    names = list(PARAMETERS[model])
    free = [k for k in names if k not in fixed]
    nan = np.full(n_cells, np.nan, dtype=np.float64)

    target_all = metrics.CalibrationTarget(q.T, slice(w, c), config.objective, config.kge_version)
    usable = target_all.ok & torch.isfinite(p).all(1) & torch.isfinite(e0).all(1)
    usable &= torch.stack([torch.isfinite(v) for v in fixed.values()]).all(0) if fixed else True
    cells = usable.nonzero(as_tuple=True)[0]
    labels = ModelLabels({k: nan.copy() for k in names}, nan.copy(), nan.copy(), nan.copy(),
                         nan.copy(), nan.copy(), nan.copy(), np.zeros(n_cells, dtype=np.int64))
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

    device = torch.device(config.device)
    max_cols = config.max_columns or (1 << 20 if device.type == "cuda" else 1 << 16)
    # One decision per run, so that every call of a run takes the same path: hand-written
    # kernels (C on CPU, Triton on CUDA; float32), else torch, fused or eager by job size.
    kernel = _kernel_for(config)
    fused = kernel is None and fusion.compile_wanted(
        cells.numel() * restarts * config.sceua.complexes, device, config.compile,
        work=_work(cells.numel(), months, config))

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
                             compile=fused, months=c)["runoff"]
            out.append(target.objective(sim, cell[sl], compile=fused))
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
                if kernel is native.score_sums:
                    raise
                gpu_kernels.mark_broken(exc)
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
    sim = run_months(forcing, prm, compile=fused)["runoff"]
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


def _native_wanted(config: CalibrationConfig) -> bool:
    """Whether the objective runs on the C kernels: CPU, float32, and they build."""
    return (torch.device(config.device).type == "cpu" and config.dtype == torch.float32
            and native.wanted(config.native))


def _kernel_for(config: CalibrationConfig):
    """The hand-written objective kernel for this run (``score_sums`` of
    :mod:`backend.hydro.native` on CPU or :mod:`backend.hydro.gpu_kernels` on CUDA), or
    None for the torch path. ``config.native`` (or CWSC_NATIVE) = 0 turns both off."""
    if _native_wanted(config):
        return native.score_sums
    mode = config.native if config.native is not None else os.environ.get("CWSC_NATIVE", "auto")
    if str(mode).lower() in ("false", "0", "no", "off"):
        return None
    device = torch.device(config.device)
    if device.type != "cpu" and config.dtype == torch.float32 and gpu_kernels.available(device):
        return gpu_kernels.score_sums
    return None


def _work(cells: int, months: int, config: CalibrationConfig) -> float:
    """Cell-months a calibration may simulate: what decides whether compiling pays."""
    return float(cells) * max(1, int(config.restarts)) * config.sceua.max_evaluations * months


def _workers() -> int:
    env = os.environ.get("CWSC_WORKERS", "").strip()
    if env:
        return max(1, int(env))
    return max(1, os.cpu_count() or 1)


def _shard_seed(seed: int, shard: int) -> int:
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, shard]).generate_state(1)[0])


def _to_numpy(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy()
    return np.asarray(a)


_QUEUE = None


def _worker_init(queue) -> None:
    global _QUEUE
    _QUEUE = queue
    torch.set_num_threads(1)


def _shard_job(shard: int, model, precip, pet, runoff, config, fixed) -> ModelLabels:
    def report(frac: float) -> None:
        if _QUEUE is not None:
            _QUEUE.put((shard, frac))

    return calibrate_model(model, precip, pet, runoff, config, fixed=fixed, progress=report)


def _calibrate_sharded(model, precip, pet, runoff, config, fixed, progress) -> ModelLabels:
    """Calibrate in :data:`CPU_SHARDS` shards of cells, in worker processes on CPU."""
    p, e0, q = (_to_numpy(a) for a in (precip, pet, runoff))
    n = p.shape[0]
    fixed_np = {k: _to_numpy(v).reshape(n) for k, v in (fixed or {}).items()}
    bounds = np.linspace(0, n, CPU_SHARDS + 1).astype(int)
    # One fusion decision for the whole run (not per shard), so shards match any worker count.
    use_native = _native_wanted(config)
    fused = (not use_native) and fusion.compile_wanted(
        n * max(1, int(config.restarts)) * config.sceua.complexes, torch.device(config.device),
        config.compile, work=_work(n, p.shape[1], config))
    jobs = []
    for i in range(CPU_SHARDS):
        sl = slice(bounds[i], bounds[i + 1])
        cfg = replace(config, seed=_shard_seed(config.seed, i), compile=fused, native=use_native)
        cfg._shard = True
        jobs.append((i, model, p[sl], e0[sl], q[sl], cfg, {k: v[sl] for k, v in fixed_np.items()}))
    sizes = np.diff(bounds).astype(float)
    done = np.zeros(CPU_SHARDS)

    def report(shard: int, frac: float) -> None:
        done[shard] = frac
        if progress:
            progress(float((done * sizes).sum() / max(sizes.sum(), 1.0)))

    workers = min(_workers(), CPU_SHARDS)
    results: list | None = None
    if workers > 1:
        try:
            results = _run_pool(jobs, workers, report)
        except BrokenProcessPool as exc:
            # E.g. a caller's script without ``if __name__ == "__main__"``: spawn cannot
            # start workers. The same shards in this process give the same result.
            print(f"cwsc: worker processes failed ({exc}); calibrating in this process",
                  file=sys.stderr)
    if results is None:
        results = [calibrate_model(*job[1:6], fixed=job[6],
                                   progress=lambda f, _i=job[0]: report(_i, f)) for job in jobs]
    if progress:
        progress(1.0)
    return _merge_labels(results, n)


def _run_pool(jobs, workers, report) -> list:
    import multiprocessing as mp
    import queue as queue_mod

    results = [None] * len(jobs)
    ctx = mp.get_context("spawn")
    events = ctx.Queue()
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init,
                               initargs=(events,))
    try:
        futures = [pool.submit(_shard_job, *job) for job in jobs]
        while not all(f.done() for f in futures):
            try:
                shard, frac = events.get(timeout=0.2)
            except queue_mod.Empty:
                continue
            report(shard, frac)
        for i, f in enumerate(futures):
            results[i] = f.result()
    except BaseException:
        # Stopped (SIGTERM) or failed: the workers go with us.
        for proc in list((getattr(pool, "_processes", None) or {}).values()):
            proc.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    else:
        pool.shutdown(wait=True)
    finally:
        events.close()
        events.cancel_join_thread()
    return results


def _merge_labels(parts: list, n: int) -> ModelLabels:
    cat = lambda xs: np.concatenate(xs) if xs else np.empty(0)  # noqa: E731
    restart = [pt.restart_objective for pt in parts]
    merged = ModelLabels(
        {k: cat([pt.params[k] for pt in parts]) for k in parts[0].params},
        *(cat([getattr(pt, a) for pt in parts]) for a in
          ("kge_cal", "kge_val", "nse_cal", "nse_val", "objective", "sc_spread", "evaluations")),
        restart_objective=None if any(r is None for r in restart) else cat(restart))
    assert merged.kge_cal.shape[0] == n
    return merged


def joint_labels(labels: Mapping[str, ModelLabels], threshold: float = 0.0,
                 margin: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cwsc, cwsc_spread, kge) per cell from the models' labels.

    cwsc: mean of the models' sc weighted by their calibration KGE, over the models whose
    calibration KGE exceeds ``threshold`` and, when ``margin`` is given, lies within
    ``margin`` of the cell's best model (weights below zero count as zero; equal weights
    when all are zero); NaN where no model qualifies. cwsc_spread: the same weighted mean of
    the models' equifinality spreads of sc. kge: the best model's calibration KGE.
    """
    kges = np.stack([lab.kge_cal for lab in labels.values()])          # (models, C)
    scs = np.stack([lab.params["sc"] for lab in labels.values()])
    spreads = np.stack([lab.sc_spread for lab in labels.values()])
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(kges) & (kges > threshold) & np.isfinite(scs)
        if margin is not None:
            best = np.max(np.where(np.isfinite(kges), kges, -np.inf), axis=0)
            ok &= kges >= best - float(margin)
    weights = np.where(ok, np.clip(np.nan_to_num(kges), 0.0, None), 0.0)
    total = weights.sum(0)
    weights = np.where(total > 0, weights, ok.astype(np.float64))   # all-zero: equal weights
    total = weights.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cwsc = np.where(total > 0, (weights * np.nan_to_num(scs)).sum(0) / total, np.nan)
        spread = np.where(total > 0, (weights * np.nan_to_num(spreads)).sum(0) / total, np.nan)
    all_nan = ~np.isfinite(kges).any(0)
    kge = np.where(all_nan, np.nan, np.nanmax(np.where(np.isfinite(kges), kges, -np.inf), 0))
    return cwsc, spread, kge


def calibrate(precip, pet, runoff, config: CalibrationConfig | None = None,
              fixed: Mapping[str, object] | None = None,
              progress: Callable[[str, float], None] | None = None) -> CalibrationResult:
    """Calibrate every model of ``config.models`` on C cells and derive the joint labels.

    precip, pet, runoff: (C, months) mm/month (numpy or torch; NaN runoff = missing).
    fixed: parameter name -> (C,) values held fixed in every model that has the parameter
    (e.g. ``{"sc": cwsc}`` to calibrate the others with the storage capacity given).
    progress(model, fraction of that model's work).
    """
    config = config or CalibrationConfig()
    out: dict[str, ModelLabels] = {}
    for model in config.models:
        name = model.upper()
        cb = (lambda frac, _m=name: progress(_m, frac)) if progress else None
        out[name] = calibrate_model(name, precip, pet, runoff, config, fixed=fixed, progress=cb)
    cwsc, spread, kge = joint_labels(out, config.kge_threshold, config.kge_margin)
    return CalibrationResult(out, cwsc, spread, kge)

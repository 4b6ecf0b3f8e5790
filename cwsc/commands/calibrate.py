"""``python -m cwsc calibrate``: rasters in, CWSC labels, KGE and per-model details out.

Reads P, PET and Q (:mod:`cwsc.io.forcing`) strip by strip, cuts the land cells into
shards (:mod:`cwsc.hydro.calibration.shards`), has them calibrated by worker processes or a Dask
cluster (:mod:`cwsc.hydro.calibration.runners`), saving each finished shard in the work folder when
one is given (:mod:`cwsc.runtime.workfolder`), and writes:

- ``--out-cwsc``: band 1 the joint CWSC label (mm, wherever a model was calibrated), band 2
  the width of its identifiable range (mm), band 3 its quality flags (bits);
- ``--out-kge``: band 1 the joint KGE (the best model's calibration KGE);
- ``--out-details`` (optional): per model every parameter, the identifiable range of sc
  (low, high), and calibration and validation KGE and NSE.

Events: progress per SCE-UA loop of every worker, then one result.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np

from cwsc.commands.options import GDAL_CACHE_MB, forcing_options, kge_margin
from cwsc.errors import ParameterError, PeriodError
from cwsc.hydro.metrics import finite_median
from cwsc.io import rasters as io
from cwsc.runtime import protocol
from cwsc.runtime.outputs import Outputs


def calibration_config(args: argparse.Namespace, models: list[str], device, months: int):
    """The :class:`~cwsc.hydro.calibration.config.CalibrationConfig` the options ask for, checked
    against the record length."""
    import torch

    from cwsc.hydro.calibration.config import CalibrationConfig
    from cwsc.hydro.identifiability import ProfileSettings
    from cwsc.hydro.options import DEFAULT_RESTARTS, IDENTIFIABILITY_TOLERANCE
    from cwsc.hydro.sceua import SceuaSettings

    settings = SceuaSettings()
    if args.max_evaluations is not None:
        if args.max_evaluations < 1:
            raise ParameterError("MAX_EVALUATIONS must be at least 1")
        settings.max_evaluations = int(args.max_evaluations)
    restarts = DEFAULT_RESTARTS if args.restarts is None else int(args.restarts)
    if restarts < 1:
        raise ParameterError("RESTARTS must be at least 1")
    tolerance = float(getattr(args, "identifiability_tolerance", IDENTIFIABILITY_TOLERANCE))
    if not tolerance > 0:
        raise ParameterError(f"IDENTIFIABILITY_TOLERANCE must be above 0, got {tolerance:g}")
    evaluations = getattr(args, "profile_evaluations", None)
    profile = (
        ProfileSettings()
        if evaluations is None
        else (replace(ProfileSettings(), evaluations=int(evaluations)) if evaluations > 0 else None)
    )
    config = CalibrationConfig(
        identifiability_tolerance=tolerance,
        profile=profile,
        models=tuple(models),
        objective=args.objective,
        kge_version=args.kge_form,
        formulation=args.formulation,
        warmup_months=args.warmup_months,
        calibration_fraction=args.calibration_fraction,
        restarts=restarts,
        sceua=settings,
        kge_threshold=args.kge_threshold,
        kge_margin=kge_margin(args),
        seed=int(args.seed),
        dtype=torch.float64 if args.dtype == "float64" else torch.float32,
        device=device,
    )
    w, c = config.periods(months)
    if c - w < 12:
        raise PeriodError(
            f"the forcing has {months} months: the calibration period ({c - w} months) needs at least 12"
        )
    return config


def calibrate_command(args: argparse.Namespace) -> None:
    import rasterio

    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
        _calibrate(args)


def _calibrate(args: argparse.Namespace) -> None:
    from cwsc.hydro.calibration.runners import prestart
    from cwsc.hydro.calibration.shards import workers
    from cwsc.hydro.options import parse_models
    from cwsc.io.gate import open_forcing
    from cwsc.machine.devices import configure_cpu_threads, resolve_device

    started = time.monotonic()
    if args.device != "cuda" and not args.dask_scheduler and workers(args.workers) > 1:
        prestart()  # the workers' server imports torch while this process does
    models = parse_models(args.models)
    device = resolve_device(args.device)
    outputs = Outputs(
        {"OUTPUT_CWSC": args.out_cwsc, "OUTPUT_KGE": args.out_kge, "OUTPUT_DETAILS": args.out_details},
        inputs=forcing_inputs(args),
    )
    with outputs:
        if device.type == "cpu":
            configure_cpu_threads()
        rasters, alignment = open_forcing(
            args.precip,
            args.pet,
            args.runoff,
            forcing_options(args),
            temperature=getattr(args, "temperature", None),
        )
        try:
            metrics = _run(args, models, outputs, rasters, alignment, device, started)
        finally:
            for r in rasters:
                r.close()
    protocol.result({k: str(v) for k, v in outputs.paths().items()}, metrics)


#: Options that change how a run is carried out, never its result (left out of the work
#: folder's fingerprint).
RUN_ONLY_OPTIONS = {
    "out_cwsc",
    "out_kge",
    "out_details",
    "workers",
    "dask_scheduler",
    "work_dir",
    "keep_work",
    "command",
}


def forcing_inputs(args: argparse.Namespace) -> dict[str, str]:
    """The forcing files by parameter name (temperature only when given)."""
    files = {"PRECIPITATION": args.precip, "PET": args.pet, "RUNOFF": args.runoff}
    if getattr(args, "temperature", None):
        files["TEMPERATURE"] = args.temperature
    return files


def run_settings(args: argparse.Namespace, device, engine, shard_size: int) -> dict:
    """Every setting that changes a result: the work folder's fingerprint."""
    import torch

    settings = {k: v for k, v in sorted(vars(args).items()) if k not in RUN_ONLY_OPTIONS and not callable(v)}
    settings.update(device=device.type, engine=engine.kind, shard_cells=shard_size, torch=torch.__version__)
    return settings


def _run(args, models, outputs, rasters, alignment, device, started) -> dict:
    from cwsc.hydro.calibration.driver import calibrate_stream
    from cwsc.hydro.calibration.shards import shard_cells
    from cwsc.hydro.engines.selection import Tuning, choose_engine
    from cwsc.hydro.labels import (
        FIT_FIELDS,
        cwsc_descriptions,
        detail_bands,
        result_arrays,
        result_from_arrays,
    )
    from cwsc.hydro.models import PARAMETERS
    from cwsc.io.gate import forcing_strips
    from cwsc.io.rasters import raster_bytes
    from cwsc.runtime.workfolder import WorkFolder, check_writable, input_fingerprint

    if args.work_dir:
        check_writable(args.work_dir)
    grid = rasters[0].grid
    months = rasters[0].count
    config = calibration_config(args, models, device, months)
    cells_bytes = raster_bytes(grid.width, grid.height, 1)
    outputs.need(
        {
            "OUTPUT_CWSC": 3 * cells_bytes * 4 / 3,
            "OUTPUT_KGE": cells_bytes * 4 / 3,
            "OUTPUT_DETAILS": len(detail_bands(models)) * cells_bytes,
        }
    )
    strips = forcing_strips(grid, months)
    n_cells = grid.width * grid.height
    # Land cells: forcing present in every month (ocean and nodata cells are skipped).
    land_total = 0
    snow = len(rasters) > 3
    for rows in strips:
        p = rasters[0].read(rows)
        e = rasters[1].read(rows)
        land = np.isfinite(p).all(0) & np.isfinite(e).all(0)
        if snow:
            land &= np.isfinite(rasters[3].read(rows)).all(0)
        land_total += int(land.sum())
    tuning = Tuning(compile={"on": True, "off": False}.get(args.compile))
    engine = choose_engine(config, land_total, months, tuning)
    size = shard_cells(device, args.shard_cells)
    n_shards = -(-land_total // size)
    work = None
    if args.work_dir:
        inputs = input_fingerprint(forcing_inputs(args))
        work = WorkFolder(
            args.work_dir,
            "calibrate",
            inputs,
            run_settings(args, device, engine, size),
            keep=args.keep_work,
            log=protocol.log,
        ).open()
    resumable = work.finished() if work else set()

    per_model = {
        m: {k: np.full(n_cells, np.nan, np.float32) for k in list(PARAMETERS[m]) + list(FIT_FIELDS)}
        for m in models
    }
    cwsc, width, flags, kge = (np.full(n_cells, np.nan, np.float32) for _ in range(4))
    snow_likely = np.zeros(n_cells, bool)  # cold months hold much of P, no temperature given
    # The long-term balance of the forcing per cell: Q / P and (P - Q) / PET (hydro/balance.py).
    runoff_excess, evaporation_excess = (np.full(n_cells, np.nan) for _ in range(2))
    resumed = []

    def place(number: int, cells: np.ndarray, result) -> None:
        for m, lab in result.models.items():
            for k in PARAMETERS[m]:
                per_model[m][k][cells] = lab.params[k]
            for k in FIT_FIELDS:
                per_model[m][k][cells] = getattr(lab, k)
        cwsc[cells], width[cells], kge[cells] = result.cwsc, result.cwsc_range, result.kge
        flags[cells] = result.flags
        if work is not None and number not in resumed:
            work.save(number, result_arrays(result))

    def saved(number: int):
        arrays = work.load(number) if work is not None and number in resumable else None
        if arrays is None:
            return None
        resumed.append(number)
        return result_from_arrays(arrays, models)

    def chunks():
        """The land cells strip by strip: (flat grid index, P, PET, Q) as (cells, months); P
        is the snow store's rain and melt when temperature is given."""
        from cwsc.hydro import snow as S
        from cwsc.hydro.balance import water_balance

        for rows in strips:
            arrays = [r.read(rows) for r in rasters]
            n = arrays[0].shape[0]
            p, e, q, *t = (a.reshape(n, -1).T for a in arrays)
            ok = np.isfinite(p).all(1) & np.isfinite(e).all(1)
            if t:
                ok &= np.isfinite(t[0]).all(1)
            land = np.nonzero(ok)[0]
            cells = rows.start * grid.width + land
            balance = water_balance(p[land], e[land], q[land])
            runoff_excess[cells], evaporation_excess[cells] = (
                balance.runoff_excess,
                balance.evaporation_excess,
            )
            if t:
                p_land = S.liquid_water(p[land], t[0][land]).astype(p.dtype, copy=False)
            else:
                p_land = p[land]
                snow_likely[cells] = S.snow_likely(p_land, e[land])
            yield cells, p_land, e[land], q[land]

    opened = {}

    def announce(runner) -> None:
        opened["workers"] = runner.count
        protocol.log(
            f"calibrating {', '.join(models)} on {grid.describe()}, {months} months "
            f"({period_tags(alignment.months, *config.periods(months), months)['periods']}), "
            f"{config.restarts} restart{'s' if config.restarts != 1 else ''}, "
            f"device {device}, {engine.describe()}, {land_total} land cells in "
            f"{n_shards} shard{'s' if n_shards != 1 else ''} {runner.describe()}"
            + (", a snow store ahead of the models (TEMPERATURE given)" if snow else "")
        )

    calibrate_stream(
        chunks(),
        land_total,
        config,
        engine,
        place,
        lambda fraction, _shards: protocol.progress(
            fraction, f"calibrating: {min(int(fraction * land_total), land_total):,} of {land_total:,} cells"
        ),
        args.workers,
        args.dask_scheduler,
        size,
        saved=saved,
        skip=len(resumable & set(range(n_shards))),
        announce=announce,
    )
    state = {"resumed": len(resumed)}
    from cwsc.hydro.labels import FLAG_SNOW
    from cwsc.hydro.snow import COLD_PET

    _flag_water_balance(flags, runoff_excess, evaporation_excess)
    flagged = snow_likely & np.isfinite(flags)
    flags[flagged] = (flags[flagged].astype(np.int64) | FLAG_SNOW).astype(np.float32)
    if flagged.any():
        protocol.warning(
            f"{int(flagged.sum()):,} labelled cells have cold months (PET below "
            f"{COLD_PET:g} mm) that hold much of their precipitation, and no TEMPERATURE was given: "
            "snow falls there, and the models let it run off at once; give TEMPERATURE (quality bit 32)"
        )

    shape = grid.shape
    w, c = config.periods(months)
    periods = period_tags(alignment.months, w, c, months)
    tags = {
        "restarts": config.restarts,
        "objective": config.objective,
        "kge_version": config.kge_version,
        "formulation": config.formulation,
        **periods,
        "models": ",".join(models),
        "seed": config.seed,
    }
    if snow:
        from cwsc.hydro.snow import PUBLISHED

        tags["snow_store"] = (
            f"McCabe and Markstrom 2007: t_snow {PUBLISHED.t_snow:g} C, t_rain {PUBLISHED.t_rain:g} C, "
            f"melt_max {PUBLISHED.melt_max:g}"
        )
    io.write_raster(
        outputs.temporary("OUTPUT_CWSC"),
        np.stack([cwsc, width, flags]).reshape(3, *shape),
        grid,
        cwsc_descriptions(config.kge_threshold, config.identifiability_tolerance, config.kge_margin),
        tags=tags,
        overviews=True,
    )
    io.write_raster(
        outputs.temporary("OUTPUT_KGE"),
        kge.reshape(1, *shape),
        grid,
        [f"Joint KGE: the best model's calibration KGE ({periods['calibration']})"],
        tags=tags,
        overviews=True,
    )
    if outputs.temporary("OUTPUT_DETAILS"):
        bands = detail_bands(models)
        data = np.stack([per_model[m][k] for m, k, _ in bands]).reshape(len(bands), *shape)
        io.write_raster(outputs.temporary("OUTPUT_DETAILS"), data, grid, [d for _, _, d in bands], tags=tags)
    if work is not None:
        outputs.after_commit(work.finish)

    with np.errstate(invalid="ignore"):
        metrics = {
            "cells_calibrated": int(np.isfinite(kge).sum()),
            "cells_kge_positive": int((kge > 0).sum()),
            "cells_skipped_nodata": int(n_cells - land_total),
            "cells_metric_undefined": int(land_total - np.isfinite(kge).sum()),
            "median_kge": {m: finite_median(d["kge_cal"]) for m, d in per_model.items()},
            "median_kge_validation": {m: finite_median(d["kge_val"]) for m, d in per_model.items()},
            "median_cwsc_mm": finite_median(cwsc),
            "restarts": config.restarts,
            "max_evaluations": config.sceua.max_evaluations,
            "device": str(device),
            "engine": engine.kind,
            "workers": opened["workers"],
            "shards": n_shards,
            "shards_resumed": state["resumed"],
            "seconds": round(time.monotonic() - started, 3),
        }
    return metrics


def _flag_water_balance(flags: np.ndarray, runoff_excess: np.ndarray, evaporation_excess: np.ndarray) -> None:
    """Quality bit 128 (in place) and a warning for the labelled cells whose forcing does not
    balance over the record: long-term Q above P, or P - Q above PET, beyond the tolerance;
    their labels come from a model compensating for the forcing (issue 35)."""
    from cwsc.hydro.balance import TOLERANCE, WaterBalance, describe
    from cwsc.hydro.labels import FLAG_WATER_BALANCE

    with np.errstate(invalid="ignore"):
        bad = (runoff_excess > 1.0 + TOLERANCE) | (evaporation_excess > 1.0 + TOLERANCE)
    bad &= np.isfinite(flags)
    if not bad.any():
        return
    flags[bad] = (flags[bad].astype(np.int64) | FLAG_WATER_BALANCE).astype(np.float32)
    nan = np.full_like(runoff_excess, np.nan)
    words = describe(WaterBalance(nan, nan, nan, runoff_excess, evaporation_excess, bad))
    protocol.warning(
        f"{int(bad.sum()):,} labelled cells have forcing that cannot balance over the record: {words} "
        f"(tolerance {TOLERANCE:.0%}); their labels come from a model compensating for the forcing, "
        "check the precipitation, PET and runoff there (quality bit 128)"
    )


def period_tags(common: list[int] | None, w: int, c: int, n: int) -> dict[str, str]:
    """The periods of a run as dates (month indices when the inputs had no dates)."""
    from cwsc.io import months as M

    def span(a: int, b: int) -> str:
        if b <= a:
            return "none"
        if common is None:
            return f"months {a + 1} to {b} of the inputs"
        return f"{M.label(common[a])} to {M.label(common[b - 1])}"

    out = {
        "first_month": M.label(common[0]) if common else "month 1 of the inputs",
        "last_month": M.label(common[-1]) if common else f"month {n} of the inputs",
        "warm_up": span(0, w),
        "calibration": span(w, c),
        "validation": span(c, n),
    }
    out["periods"] = (
        f"warm-up {out['warm_up']}, calibration {out['calibration']}, validation {out['validation']}"
    )
    return out

"""``python -m backend calibrate``: rasters in, CWSC labels, KGE and per-model details out.

Reads P, PET and Q (GeoTIFF one band per month, or NetCDF), checks them, calibrates every
requested model on every land cell in chunks of cells (bounded memory), and writes:

- ``--out-cwsc``: band 1 the joint CWSC label (mm), band 2 its equifinality spread (mm);
- ``--out-kge``: band 1 the joint KGE (the best model's calibration KGE);
- ``--out-details`` (optional): per model every parameter, the sc spread, and calibration
  and validation KGE and NSE.

Events: progress per model and SCE-UA loop (stage "calibrate DWBM" ...), then one result.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from backend import io, protocol
from backend.devices import configure_cpu_threads, resolve_device
from backend.hydro.calibrate import (DEFAULT_KGE_MARGIN, DEFAULT_RESTARTS, CalibrationConfig,
                                     calibrate_model, joint_labels)
from backend.hydro.models import MODELS, PARAMETERS
from backend.hydro.sceua import SceuaSettings

#: Units of the parameters in band descriptions.
UNITS = {"sc": "mm"}
DEFAULT_CHUNK_CPU = 16384
DEFAULT_CHUNK_CUDA = 65536


def cwsc_descriptions(threshold: float, tolerance: float, margin: float | None = None) -> list[str]:
    within = "" if margin is None else f" and within {margin:g} of the best model's"
    return [f"CWSC (mm): mean of the models' sc weighted by calibration KGE, models with KGE > "
            f"{threshold:g}{within}",
            f"CWSC equifinality spread (mm): max - min of sc among the final SCE-UA points "
            f"within {tolerance:g} of the best objective, weighted as band 1"]


def detail_bands(models: list[str]) -> list[tuple[str, str, str]]:
    """(model, key, description) per band of the details raster."""
    out = []
    for m in models:
        for k in PARAMETERS[m]:
            out.append((m, k, f"{m} {k} ({UNITS.get(k, '-')})"))
        out.append((m, "sc_spread", f"{m} sc equifinality spread (mm)"))
        out += [(m, "kge_cal", f"{m} KGE calibration"), (m, "kge_val", f"{m} KGE validation"),
                (m, "nse_cal", f"{m} NSE calibration"), (m, "nse_val", f"{m} NSE validation")]
    return out


def _models(text: str) -> list[str]:
    names = [m.strip().upper() for m in text.split(",") if m.strip()]
    bad = [m for m in names if m not in MODELS]
    if not names or bad:
        raise protocol.BadInput(f"MODELS: unknown model(s) {', '.join(bad) or '(none)'}; "
                                f"use a subset of {', '.join(MODELS)}")
    return list(dict.fromkeys(names))


def _check_inputs(rasters: list[io.Raster], strips: list[slice]) -> None:
    """Negative forcing and an all-nodata runoff are refused before any work is done."""
    runoff_seen = False
    for r in rasters:
        for rows in strips:
            data = r.read(rows)
            if r.label != "RUNOFF":
                with np.errstate(invalid="ignore"):
                    if (data < 0).any():
                        band = int(np.nonzero((data < 0).any(axis=(1, 2)))[0][0]) + 1
                        raise protocol.BadInput(f"{r.label}: '{r.path}' has negative values "
                                                f"(first in band {band}); expected mm/month >= 0")
            elif np.isfinite(data).any():
                runoff_seen = True
    if not runoff_seen:
        raise protocol.BadInput(f"RUNOFF: '{rasters[2].path}' is all nodata: nothing to calibrate on")


def open_forcing(precip: str, pet: str, runoff: str, precip_var: str | None = None,
                 pet_var: str | None = None, runoff_var: str | None = None,
                 time_dim: str | None = None) -> list[io.Raster]:
    """Open P, PET and Q and check them (same grid and month count, no negative forcing,
    some runoff): a ``BadInput`` naming the file otherwise. The caller closes the rasters."""
    rasters = [io.open_raster(precip, "PRECIPITATION", precip_var, time_dim)]
    try:
        rasters.append(io.open_raster(pet, "PET", pet_var, time_dim))
        rasters.append(io.open_raster(runoff, "RUNOFF", runoff_var, time_dim))
        for r in rasters:
            if r.count < 2:
                raise protocol.BadInput(f"{r.label}: '{r.path}' holds a single month (no time "
                                        "dimension or one band): one band per month is needed")
        grid = io.check_same_grid(rasters)
        months = rasters[0].count
        for r in rasters[1:]:
            if r.count != months:
                raise protocol.BadInput(f"{r.label}: '{r.path}' has {r.count} months (bands) but "
                                        f"{rasters[0].label} '{rasters[0].path}' has {months}")
        _check_inputs(rasters, _strips(grid, months))
    except BaseException:
        for r in rasters:
            r.close()
        raise
    return rasters


def read_forcing(precip: str, pet: str, runoff: str, precip_var: str | None = None,
                 pet_var: str | None = None, runoff_var: str | None = None,
                 time_dim: str | None = None):
    """(precip, pet, runoff, grid): the checked forcing as (months, rows, cols) float32 arrays
    (NaN = nodata), for commands that need it whole (evaluate)."""
    rasters = open_forcing(precip, pet, runoff, precip_var, pet_var, runoff_var, time_dim)
    try:
        return (*(r.read() for r in rasters), rasters[0].grid)
    finally:
        for r in rasters:
            r.close()


def _strips(grid: io.Grid, months: int) -> list[slice]:
    return list(io.row_strips(grid.height, grid.width, 3 * months, budget_bytes=128 * 2**20))


#: GDAL's block cache (MB). Its default (5 % of RAM) alone took about 1 GB of peak RSS on a
#: 720 x 360 x 360-month input; reading strip by strip needs little cache.
GDAL_CACHE_MB = 256


def calibrate_command(args: argparse.Namespace) -> None:
    import rasterio

    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
        _calibrate_command(args)


def _calibrate_command(args: argparse.Namespace) -> None:
    started = time.monotonic()
    models = _models(args.models)
    outputs = {"OUTPUT_CWSC": args.out_cwsc, "OUTPUT_KGE": args.out_kge}
    if args.out_details:
        outputs["OUTPUT_DETAILS"] = args.out_details
    for label, path in outputs.items():
        io.check_output_path(path, label)
    if len({str(p) for p in outputs.values()}) < len(outputs):
        raise protocol.BadInput("the output files must be different files")

    device = resolve_device(args.device)
    if device.type == "cpu":
        configure_cpu_threads()
    rasters = open_forcing(args.precip, args.pet, args.runoff, args.precip_var, args.pet_var,
                           args.runoff_var, args.time_dim)
    try:
        _run(args, models, outputs, rasters, device, started)
    finally:
        for r in rasters:
            r.close()


def _margin(args: argparse.Namespace) -> float | None:
    margin = getattr(args, "kge_margin", None)
    if margin is None:
        return DEFAULT_KGE_MARGIN
    if margin == "none":
        return None
    if margin < 0:
        raise protocol.BadInput(f"MODEL_KGE_MARGIN must be 0 or more, got {margin:g}")
    return margin


def _config(args: argparse.Namespace, models: list[str], device, months: int) -> CalibrationConfig:
    import torch

    settings = SceuaSettings()
    if args.max_evaluations is not None:
        if args.max_evaluations < 1:
            raise protocol.BadInput("MAX_EVALUATIONS must be at least 1")
        settings.max_evaluations = int(args.max_evaluations)
    restarts = DEFAULT_RESTARTS if args.restarts is None else int(args.restarts)
    if restarts < 1:
        raise protocol.BadInput("RESTARTS must be at least 1")
    config = CalibrationConfig(
        models=tuple(models), objective=args.objective, kge_version=args.kge_form,
        formulation=args.formulation, warmup_months=args.warmup_months,
        calibration_fraction=args.calibration_fraction, restarts=restarts, sceua=settings,
        kge_threshold=args.kge_threshold, kge_margin=_margin(args), seed=int(args.seed),
        compile={"on": True, "off": False}.get(getattr(args, "compile", "auto")),
        dtype=torch.float64 if args.dtype == "float64" else torch.float32, device=device)
    try:
        w, c = config.periods(months)
    except ValueError as exc:
        raise protocol.BadInput(f"periods: {exc}") from None
    if c - w < 12:
        raise protocol.BadInput(f"the forcing has {months} months: the calibration period "
                                f"({c - w} months) needs at least 12")
    return config


def _engine(config: CalibrationConfig) -> str:
    """What runs the models, in a user's words (for the log)."""
    import importlib

    import torch

    from backend.hydro import native

    kernel = importlib.import_module("backend.hydro.calibrate")._kernel_for(config)
    if kernel is native.score_sums:
        return "models run in the C kernels"
    if kernel is not None:
        return "models run in the Triton kernel"
    if torch.device(config.device).type == "cpu" and config.dtype == torch.float32:
        return f"models run in torch ({native.why_not() or 'C kernels turned off'})"
    return "models run in torch"


def _run(args, models, outputs, rasters, device, started) -> None:
    grid = rasters[0].grid
    months = rasters[0].count
    config = _config(args, models, device, months)
    strips = _strips(grid, months)
    protocol.log(f"calibrating {', '.join(models)} on {grid.describe()}, {months} months, "
                 f"{config.restarts} restarts, device {device}, {_engine(config)}")

    n_cells = grid.width * grid.height
    per_model = {m: {k: np.full(n_cells, np.nan, np.float32)
                     for k in list(PARAMETERS[m]) + ["sc_spread", "kge_cal", "kge_val",
                                                      "nse_cal", "nse_val"]} for m in models}
    chunk = args.chunk_cells or (DEFAULT_CHUNK_CUDA if device.type == "cuda" else DEFAULT_CHUNK_CPU)
    # Land cells: forcing present in every month (ocean and nodata cells are skipped).
    land_total = 0
    for rows in strips:
        p = rasters[0].read(rows)
        e = rasters[1].read(rows)
        land_total += int((np.isfinite(p).all(0) & np.isfinite(e).all(0)).sum())
    done = 0
    total = max(1, land_total * len(models))
    skipped = n_cells - land_total
    chunk_no = 0
    for rows in strips:
        p, e, q = (r.read(rows) for r in rasters)
        t = p.shape[0]
        p, e, q = (a.reshape(t, -1).T for a in (p, e, q))         # (cells, months)
        land = np.isfinite(p).all(1) & np.isfinite(e).all(1)
        flat = np.nonzero(land)[0]
        offset = rows.start * grid.width
        for i0 in range(0, flat.size, chunk):
            idx = flat[i0:i0 + chunk]
            chunk_no += 1
            for m in models:
                stage = f"calibrate {m}"

                def report(frac: float, _n=idx.size, _stage=stage) -> None:
                    protocol.progress((done + frac * _n) / total, _stage)

                cfg = CalibrationConfig(**{**config.__dict__, "seed": config.seed + 7919 * chunk_no})
                lab = calibrate_model(m, p[idx], e[idx], q[idx], cfg, progress=report)
                dst = per_model[m]
                cells = offset + idx
                for k in PARAMETERS[m]:
                    dst[k][cells] = lab.params[k]
                for k in ("sc_spread", "kge_cal", "kge_val", "nse_cal", "nse_val"):
                    dst[k][cells] = getattr(lab, k)
                done += idx.size
                protocol.progress(done / total, stage)

    # Joint labels from the models' rasters.
    from backend.hydro.calibrate import ModelLabels

    labs = {m: ModelLabels({k: d[k].astype(np.float64) for k in PARAMETERS[m]}, d["kge_cal"],
                           d["kge_val"], d["nse_cal"], d["nse_val"], d["kge_cal"], d["sc_spread"],
                           np.zeros(n_cells)) for m, d in per_model.items()}
    cwsc, spread, kge = joint_labels(labs, config.kge_threshold, config.kge_margin)
    shape = grid.shape
    tags = {"restarts": config.restarts, "objective": config.objective,
            "kge_version": config.kge_version, "formulation": config.formulation,
            "periods": "warm-up {}, calibration to {}, validation to {}".format(
                *config.periods(months), months),
            "models": ",".join(models), "seed": config.seed}
    io.write_raster(outputs["OUTPUT_CWSC"], np.stack([cwsc, spread]).reshape(2, *shape), grid,
                    cwsc_descriptions(config.kge_threshold, config.equifinality_tolerance,
                                      config.kge_margin),
                    label="OUTPUT_CWSC", tags=tags, overviews=True)
    io.write_raster(outputs["OUTPUT_KGE"], kge.reshape(1, *shape), grid,
                    ["Joint KGE: the best model's calibration KGE"], label="OUTPUT_KGE",
                    tags=tags, overviews=True)
    if "OUTPUT_DETAILS" in outputs:
        bands = detail_bands(models)
        data = np.stack([per_model[m][k] for m, k, _ in bands]).reshape(len(bands), *shape)
        io.write_raster(outputs["OUTPUT_DETAILS"], data, grid, [d for _, _, d in bands],
                        label="OUTPUT_DETAILS", tags=tags)

    with np.errstate(invalid="ignore"):
        metrics = {
            "cells_calibrated": int(np.isfinite(kge).sum()),
            "cells_kge_positive": int((kge > 0).sum()),
            "cells_skipped_nodata": int(skipped),
            "cells_metric_undefined": int(land_total - np.isfinite(kge).sum()),
            "median_kge": {m: float(np.nanmedian(d["kge_cal"])) if np.isfinite(d["kge_cal"]).any()
                           else None for m, d in per_model.items()},
            "median_kge_validation": {m: float(np.nanmedian(d["kge_val"]))
                                      if np.isfinite(d["kge_val"]).any() else None
                                      for m, d in per_model.items()},
            "median_cwsc_mm": float(np.nanmedian(cwsc)) if np.isfinite(cwsc).any() else None,
            "restarts": config.restarts,
            "max_evaluations": config.sceua.max_evaluations,
            "device": str(device),
            "seconds": round(time.monotonic() - started, 3),
        }
    protocol.result({k: str(v) for k, v in outputs.items()}, metrics)

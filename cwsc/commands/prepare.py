"""``python -m cwsc prepare``: real products in, the three forcings on one grid in mm/month
over their common months, and climate predictors, out."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from cwsc.errors import GridMismatch, OutputRefused
from cwsc.io import gate
from cwsc.io import rasters as io
from cwsc.io.rasters import raster_bytes
from cwsc.runtime import protocol
from cwsc.runtime.outputs import Outputs

FORCING_OUTPUTS = (
    ("PRECIPITATION", "OUTPUT_PRECIPITATION", "precipitation"),
    ("PET", "OUTPUT_PET", "potential evapotranspiration"),
    ("RUNOFF", "OUTPUT_RUNOFF", "runoff"),
)


FORCING_KEYS = {o for _, o, _ in FORCING_OUTPUTS} | {"OUTPUT_TEMPERATURE"}


def prepare_command(args: argparse.Namespace) -> None:
    import rasterio

    from cwsc.commands.options import GDAL_CACHE_MB

    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
        _prepare(args)


def _prepare(args: argparse.Namespace) -> None:
    from cwsc.commands.options import forcing_options
    from cwsc.io import months as M
    from cwsc.io.forcing import runoff_above_precipitation
    from cwsc.io.gate import open_forcing
    from cwsc.io.regrid import PREDICTORS, annual_mean, climate_predictors, monthly_means, to_grid

    t0 = time.perf_counter()
    paths = {
        "OUTPUT_PRECIPITATION": args.out_precip,
        "OUTPUT_PET": args.out_pet,
        "OUTPUT_RUNOFF": args.out_runoff,
    }
    temperature = getattr(args, "temperature", None)
    if temperature and not getattr(args, "out_temperature", None):
        raise OutputRefused("OUTPUT_TEMPERATURE: TEMPERATURE is given, so give a file for it as well")
    if temperature:
        paths["OUTPUT_TEMPERATURE"] = args.out_temperature
    folder = Path(args.out_predictors) if args.out_predictors else None
    if folder is not None:
        paths.update({f"OUTPUT_PREDICTORS/{k}": folder / f"{k}.tif" for k in PREDICTORS})
    inputs = {
        "PRECIPITATION": args.precip,
        "PET": args.pet,
        "RUNOFF": args.runoff,
        "TARGET_GRID": args.target_grid,
    }
    if temperature:
        inputs["TEMPERATURE"] = temperature
    # A folder output: new, empty, or holding only an earlier prepare's predictors.
    folders = {"OUTPUT_PREDICTORS": (folder, "prepare (climate predictors)")} if folder is not None else None
    outputs = Outputs(paths, inputs=inputs, folders=folders)
    with outputs:
        forcing, alignment = open_forcing(
            args.precip,
            args.pet,
            args.runoff,
            forcing_options(args),
            same_grid=False,
            temperature=temperature,
        )
        try:
            if args.target_grid:
                with gate.open_input(args.target_grid, "TARGET_GRID") as target:
                    grid = target.grid
                if not grid.crs:
                    raise GridMismatch(
                        f"TARGET_GRID: '{args.target_grid}' has no CRS, so the outputs would have none: "
                        "give a raster with a CRS (for example gdal_edit.py -a_srs EPSG:4326)"
                    )
            else:
                grid = forcing[2].grid
            grid = io.cut_grid(grid, io.parse_extent(args.extent, grid))
            months = alignment.months
            n = forcing[0].count
            outputs.need(
                {
                    **{o: raster_bytes(grid.width, grid.height, n) for o in paths if o in FORCING_KEYS},
                    **{
                        k: raster_bytes(grid.width, grid.height, 1)
                        for k in paths
                        if k.startswith("OUTPUT_PREDICTORS/")
                    },
                }
            )
            protocol.log(f"target grid: {grid.describe()}")
            names = (
                [M.label(m) for m in months] if months is not None else [f"month {i + 1}" for i in range(n)]
            )
            years, p_monthly = {}, None
            for i, (inp, (label, output, what)) in enumerate(zip(forcing, FORCING_OUTPUTS)):
                protocol.progress(0.1 + 0.25 * i, "preparing forcing and predictors")
                io.warn_if_resampled(inp.raster, grid, "average")
                data = to_grid(inp.read(), inp.grid, grid, f"{inp.raster.label}: '{inp.raster.path}'")
                # Only the summaries the predictors need are kept: one input in memory at a time.
                years[label] = annual_mean(data, months)
                if label == "PRECIPITATION":
                    p_monthly = monthly_means(data, months)
                io.write_raster(
                    outputs.temporary(output),
                    data,
                    grid,
                    [f"{what} (mm/month) {d}" for d in names],
                    units="mm/month",
                    tags={
                        "units": "mm/month",
                        "source": inp.path,
                        "first_month": names[0],
                        "last_month": names[-1],
                    },
                )
                del data
            if temperature:
                protocol.progress(0.8, "preparing forcing and predictors")
                inp = forcing[3]
                io.warn_if_resampled(inp.raster, grid, "average")
                data = to_grid(inp.read(), inp.grid, grid, f"{inp.raster.label}: '{inp.raster.path}'")
                io.write_raster(
                    outputs.temporary("OUTPUT_TEMPERATURE"),
                    data,
                    grid,
                    [f"air temperature (C) {d}" for d in names],
                    units="C",
                    tags={"units": "C", "source": inp.path, "first_month": names[0], "last_month": names[-1]},
                )
                del data
        finally:
            for r in forcing:
                r.close()
        ok = np.isfinite(years["PRECIPITATION"]) & np.isfinite(years["RUNOFF"])
        line = runoff_above_precipitation(
            int((ok & (years["RUNOFF"] > years["PRECIPITATION"])).sum()), int(ok.sum())
        )
        if line:
            protocol.warning(line)
        if folder is not None:
            protocol.progress(0.85, "preparing forcing and predictors")
            derived = climate_predictors(years["PRECIPITATION"], years["PET"], years["RUNOFF"], p_monthly)
            for name, description in PREDICTORS.items():
                unit = description[description.rindex("(") + 1 : -1]
                io.write_raster(
                    outputs.temporary(f"OUTPUT_PREDICTORS/{name}"),
                    derived[name][None],
                    grid,
                    [description],
                    units=unit,
                    tags={"period": f"{names[0]} to {names[-1]}"},
                )
    protocol.progress(1.0, "preparing forcing and predictors")
    result = {k: str(v) for k, v in outputs.paths().items() if not k.startswith("OUTPUT_PREDICTORS/")}
    if folder is not None:
        result["OUTPUT_PREDICTORS"] = str(folder)
        result["PREDICTOR_FILES"] = [str(folder / f"{k}.tif") for k in PREDICTORS]
    protocol.result(
        outputs=result,
        metrics={
            "months": n,
            "first_month": names[0],
            "last_month": names[-1],
            "width": grid.width,
            "height": grid.height,
            "seconds": round(time.perf_counter() - t0, 2),
        },
    )

"""Reading the three forcings of a calibration: precipitation, PET and runoff.

Used by the calibrate and evaluate commands: the same checks for both (same grid, same
month count, one band per month, no negative forcing, some runoff), each failure a
``BadInput`` naming the file.
"""

from __future__ import annotations

import numpy as np

from backend import io
from backend.protocol import BadInput

#: Memory for one strip of the three forcings (bytes).
STRIP_BUDGET = 128 * 2**20


def forcing_strips(grid: io.Grid, months: int) -> list[slice]:
    """The strips (rows) in which the three forcings of ``months`` months are read."""
    return list(io.row_strips(grid.height, grid.width, 3 * months, budget_bytes=STRIP_BUDGET))


def _check_values(rasters: list[io.Raster], strips: list[slice]) -> None:
    """Negative forcing and an all-nodata runoff are refused before any work is done."""
    runoff_seen = False
    for r in rasters:
        for rows in strips:
            data = r.read(rows)
            if r.label != "RUNOFF":
                with np.errstate(invalid="ignore"):
                    if (data < 0).any():
                        band = int(np.nonzero((data < 0).any(axis=(1, 2)))[0][0]) + 1
                        raise BadInput(f"{r.label}: '{r.path}' has negative values "
                                       f"(first in band {band}); expected mm/month >= 0")
            elif np.isfinite(data).any():
                runoff_seen = True
    if not runoff_seen:
        raise BadInput(f"RUNOFF: '{rasters[2].path}' is all nodata: nothing to calibrate on")


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
                raise BadInput(f"{r.label}: '{r.path}' holds a single month (no time "
                               "dimension or one band): one band per month is needed")
        grid = io.check_same_grid(rasters)
        months = rasters[0].count
        for r in rasters[1:]:
            if r.count != months:
                raise BadInput(f"{r.label}: '{r.path}' has {r.count} months (bands) but "
                               f"{rasters[0].label} '{rasters[0].path}' has {months}")
        _check_values(rasters, forcing_strips(grid, months))
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

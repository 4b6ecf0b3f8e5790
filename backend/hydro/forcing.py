"""Reading the three forcings of a calibration: precipitation, PET and runoff.

Used by the calibrate and evaluate commands: the same checks for both (same grid, same
month count, one band per month, no negative values, no undeclared nodata sentinel such as
-9999, some runoff), each failure a ``BadInput`` naming the file.
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


#: Values that products use for "no data" and that must be declared as such: found in a
#: file where nodata is not declared, they would be read as water.
SENTINELS = (-999.0, -9999.0, -99999.0, -32768.0, -3.4028234663852886e38, 1e20,
             9.969209968386869e36, 3.4028234663852886e38)
#: Override parameters, by input.
NODATA_PARAMETERS = {"PRECIPITATION": "PRECIPITATION_NODATA", "PET": "PET_NODATA",
                     "RUNOFF": "RUNOFF_NODATA"}


def _sentinel_mask(data: np.ndarray) -> np.ndarray:
    out = np.zeros(data.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        for value in SENTINELS:
            out |= np.abs(data - np.float32(value)) <= 1e-6 * abs(value)
    return out


def _first(mask: np.ndarray, row0: int) -> tuple[int, int, int]:
    """(band, row, column), 1-based, of the first True of a (bands, rows, cols) mask."""
    band, row, col = (int(v[0]) for v in np.nonzero(mask))
    return band + 1, row0 + row + 1, col + 1


def _check_values(rasters: list[io.Raster], strips: list[slice]) -> None:
    """Refused before any work, naming the file, the count and the first cell and month:
    undeclared nodata sentinels, negative values, an all-nodata runoff."""
    runoff_seen = False
    for r in rasters:
        negative = 0
        first_negative = None
        for rows in strips:
            data = r.read(rows)
            sentinel = _sentinel_mask(data)
            if sentinel.any():
                band, row, col = _first(sentinel, rows.start)
                value = float(data[band - 1, row - rows.start - 1, col - 1])
                cells = int(sentinel.any(axis=0).sum())
                raise BadInput(
                    f"{r.label}: '{r.path}' holds {value:g} in {cells} cells of this strip "
                    f"(first at row {row}, column {col}, band {band}), a value products use for "
                    f"no data, but the file does not declare it as nodata. Declare it "
                    f"(gdal_translate -a_nodata {value:g} in.tif out.tif) or give "
                    f"{NODATA_PARAMETERS.get(r.label, 'NODATA')}={value:g}")
            with np.errstate(invalid="ignore"):
                below = data < 0
            if below.any():
                negative += int(below.sum())
                if first_negative is None:
                    band, row, col = _first(below, rows.start)
                    first_negative = (band, row, col,
                                      float(data[band - 1, row - rows.start - 1, col - 1]))
            if r.label == "RUNOFF" and np.isfinite(data).any():
                runoff_seen = True
        if first_negative is not None:
            band, row, col, value = first_negative
            raise BadInput(f"{r.label}: '{r.path}' has {negative} negative values (first in band "
                           f"{band}, row {row}, column {col}: {value:g}); expected mm/month >= 0")
    if not runoff_seen:
        raise BadInput(f"RUNOFF: '{rasters[2].path}' is all nodata: nothing to calibrate on")


def open_forcing(precip: str, pet: str, runoff: str, precip_var: str | None = None,
                 pet_var: str | None = None, runoff_var: str | None = None,
                 time_dim: str | None = None,
                 nodata: dict[str, float | None] | None = None) -> list[io.Raster]:
    """Open P, PET and Q and check them (same grid and month count, no negative values, no
    undeclared nodata sentinel, some runoff): a ``BadInput`` naming the file otherwise.
    ``nodata``: label -> a nodata value to use instead of the file's. The caller closes the
    rasters."""
    nodata = nodata or {}
    rasters = [io.open_raster(precip, "PRECIPITATION", precip_var, time_dim,
                              nodata.get("PRECIPITATION"))]
    try:
        rasters.append(io.open_raster(pet, "PET", pet_var, time_dim, nodata.get("PET")))
        rasters.append(io.open_raster(runoff, "RUNOFF", runoff_var, time_dim, nodata.get("RUNOFF")))
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
                 time_dim: str | None = None, nodata: dict[str, float | None] | None = None):
    """(precip, pet, runoff, grid): the checked forcing as (months, rows, cols) float32 arrays
    (NaN = nodata), for commands that need it whole (evaluate)."""
    rasters = open_forcing(precip, pet, runoff, precip_var, pet_var, runoff_var, time_dim, nodata)
    try:
        return (*(r.read() for r in rasters), rasters[0].grid)
    finally:
        for r in rasters:
            r.close()

"""Preparing real products for the workflow: the three forcings on one grid, in mm/month, over
their common months, and the climate predictors derived from them.

The forcings are read as :mod:`backend.hydro.forcing` reads them (months, units, longitudes,
CRS from the files), put onto the target grid by area-weighted averaging of the mm/month
values (GDAL's ``average`` resampling: each target cell is the mean of the source cells it
covers, weighted by the part of each it covers), and cut to an extent when one is given.

Climate predictors (one GeoTIFF each, described with its unit), over whole years of the
common period when it holds at least one (else over every month, scaled to a year):

- ``precipitation``: mean annual precipitation (mm/yr)
- ``pet``: mean annual potential evapotranspiration (mm/yr)
- ``runoff``: mean annual runoff (mm/yr)
- ``aridity``: aridity index PET / P (-)
- ``runoff_coefficient``: Q / P (-)
- ``precipitation_seasonality``: coefficient of variation of the mean monthly precipitation
  over the twelve calendar months (-), as in WorldClim's BIO15 (in fraction, not %).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from backend import io
from backend.protocol import BadInput

#: predictor name -> band description
PREDICTORS = {
    "precipitation": "mean annual precipitation (mm/yr)",
    "pet": "mean annual potential evapotranspiration (mm/yr)",
    "runoff": "mean annual runoff (mm/yr)",
    "aridity": "aridity index PET/P (-)",
    "runoff_coefficient": "runoff coefficient Q/P (-)",
    "precipitation_seasonality": "precipitation seasonality, CV of the monthly means (-)",
}


@dataclass(frozen=True)
class Extent:
    """A box in the target grid's CRS: west, south, east, north."""

    west: float
    south: float
    east: float
    north: float


def parse_extent(text: str | None, grid: io.Grid) -> Extent | None:
    """``"xmin,xmax,ymin,ymax"`` (QGIS's order) with an optional ``[EPSG:xxxx]`` (or WKT in
    brackets) giving its CRS, in which case it is transformed to ``grid``'s CRS; else it is
    taken in ``grid``'s CRS. None without text."""
    if text in (None, ""):
        return None
    text = str(text)
    body, _, crs = text.partition("[")
    try:
        xmin, xmax, ymin, ymax = (float(v) for v in body.replace(" ", "").split(","))
    except ValueError:
        raise BadInput(f"EXTENT: '{text}' is not xmin,xmax,ymin,ymax") from None
    if not (xmin < xmax and ymin < ymax):
        raise BadInput(f"EXTENT: '{text}' is empty (xmin must be below xmax, ymin below ymax)")
    crs = crs.rstrip("]").strip()
    if crs and grid.crs:
        from rasterio.crs import CRS
        from rasterio.warp import transform_bounds

        try:
            xmin, ymin, xmax, ymax = transform_bounds(CRS.from_user_input(crs),
                                                      grid.rasterio_crs(), xmin, ymin, xmax, ymax)
        except Exception as exc:  # noqa: BLE001 - any CRS failure is the user's to fix
            raise BadInput(f"EXTENT: its CRS '{crs}' cannot be used ({exc})") from None
    return Extent(xmin, ymin, xmax, ymax)


def cut(grid: io.Grid, extent: Extent | None, label: str = "EXTENT") -> io.Grid:
    """``grid`` cut to the cells that touch ``extent`` (the whole grid without one)."""
    if extent is None:
        return grid
    a, _, c, _, e, f = grid.transform
    col0 = int(np.floor((extent.west - c) / a))
    col1 = int(np.ceil((extent.east - c) / a))
    row0 = int(np.floor((extent.north - f) / e))
    row1 = int(np.ceil((extent.south - f) / e))
    col0, row0 = max(col0, 0), max(row0, 0)
    col1, row1 = min(col1, grid.width), min(row1, grid.height)
    if col1 <= col0 or row1 <= row0:
        raise BadInput(f"{label}: ({extent.west:g}, {extent.south:g}, {extent.east:g}, "
                       f"{extent.north:g}) does not overlap the grid {grid.describe()}")
    return io.Grid(grid.crs, (a, 0.0, c + col0 * a, 0.0, e, f + row0 * e), col1 - col0,
                   row1 - row0)


def to_grid(data: np.ndarray, source: io.Grid, target: io.Grid) -> np.ndarray:
    """(bands, rows, cols) mm/month on ``source`` onto ``target`` by area-weighted averaging
    (NaN: nodata, never averaged in)."""
    if source.same_as(target):
        return data
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    out = np.full((data.shape[0], target.height, target.width), np.nan, np.float32)
    same_cells = source.crs == target.crs and np.allclose(source.resolution, target.resolution)
    method = Resampling.nearest if same_cells else Resampling.average
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reproject(data, out, src_transform=source.affine(), src_crs=source.rasterio_crs(),
                  dst_transform=target.affine(), dst_crs=target.rasterio_crs(),
                  src_nodata=np.nan, dst_nodata=np.nan, resampling=method)
    return out


def climate_predictors(precip: np.ndarray, pet: np.ndarray, runoff: np.ndarray,
                       months: list[int] | None) -> dict[str, np.ndarray]:
    """The predictors of the module docstring from (months, rows, cols) mm/month arrays."""
    n = precip.shape[0]
    if months is not None and n >= 12:
        first = next(i for i, m in enumerate(months) if m % 12 == 0) if any(
            m % 12 == 0 for m in months[: 12]) else 0
        whole = (n - first) // 12 * 12
        sl = slice(first, first + whole) if whole >= 12 else slice(0, n)
    else:
        sl = slice(0, n)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        p_year = np.nanmean(precip[sl], axis=0) * 12
        e_year = np.nanmean(pet[sl], axis=0) * 12
        q_year = np.nanmean(runoff[sl], axis=0) * 12
        calendar_months = np.array([m % 12 for m in months]) if months is not None else \
            np.arange(n) % 12
        monthly = np.stack([np.nanmean(precip[calendar_months == k], axis=0)
                            for k in range(12) if (calendar_months == k).any()])
        seasonality = np.nanstd(monthly, axis=0) / np.nanmean(monthly, axis=0)
        out = {"precipitation": p_year, "pet": e_year, "runoff": q_year,
               "aridity": np.where(p_year > 0, e_year / p_year, np.nan),
               "runoff_coefficient": np.where(p_year > 0, q_year / p_year, np.nan),
               "precipitation_seasonality": seasonality}
    return {k: np.where(np.isfinite(v), v, np.nan).astype(np.float32) for k, v in out.items()}

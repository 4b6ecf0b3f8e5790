"""Preparing real products for the workflow: the three forcings on one grid, in mm/month, over
their common months, and the climate predictors derived from them.

The forcings are read as :mod:`cwsc.io.forcing` reads them (months, units, longitudes,
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

import numpy as np

from cwsc.errors import GridMismatch
from cwsc.io import rasters as io

#: predictor name -> band description
PREDICTORS = {
    "precipitation": "mean annual precipitation (mm/yr)",
    "pet": "mean annual potential evapotranspiration (mm/yr)",
    "runoff": "mean annual runoff (mm/yr)",
    "aridity": "aridity index PET/P (-)",
    "runoff_coefficient": "runoff coefficient Q/P (-)",
    "precipitation_seasonality": "precipitation seasonality, CV of the monthly means (-)",
}


def to_grid(data: np.ndarray, source: io.Grid, target: io.Grid, what: str = "the input") -> np.ndarray:
    """(bands, rows, cols) mm/month on ``source`` onto ``target`` by area-weighted averaging
    (NaN: nodata, never averaged in). ``what`` names the input in the message when one of the
    two grids has no CRS, so that the cells cannot be matched."""
    if source.same_as(target):
        return data
    if not source.crs or not target.crs:
        which = "it has" if not source.crs else "the target grid has"
        raise GridMismatch(
            f"{what} is on another grid ({source.describe()}) than the target ({target.describe()}) "
            f"and {which} no CRS, so its cells cannot be matched: give the file a CRS "
            "(for example gdal_edit.py -a_srs EPSG:4326)"
        )
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    out = np.full((data.shape[0], target.height, target.width), np.nan, np.float32)
    same_cells = source.crs == target.crs and np.allclose(source.resolution, target.resolution)
    method = Resampling.nearest if same_cells else Resampling.average
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reproject(
            data,
            out,
            src_transform=source.affine(),
            src_crs=source.rasterio_crs(),
            dst_transform=target.affine(),
            dst_crs=target.rasterio_crs(),
            src_nodata=np.nan,
            dst_nodata=np.nan,
            resampling=method,
        )
    return out


def _whole_years(months: list[int] | None, n: int) -> slice:
    """The months of whole calendar years in the period (all months when under a year)."""
    if months is None or n < 12:
        return slice(0, n)
    first = next((i for i, m in enumerate(months[:12]) if m % 12 == 0), 0)
    whole = (n - first) // 12 * 12
    return slice(first, first + whole) if whole >= 12 else slice(0, n)


def annual_mean(data: np.ndarray, months: list[int] | None) -> np.ndarray:
    """Mean annual total (mm/yr) of (months, rows, cols) mm/month over whole years."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return (np.nanmean(data[_whole_years(months, data.shape[0])], axis=0) * 12).astype(np.float32)


def monthly_means(data: np.ndarray, months: list[int] | None) -> np.ndarray:
    """(12, rows, cols): the mean of each calendar month (NaN for a month not in the period)."""
    n = data.shape[0]
    calendar_months = np.array([m % 12 for m in months]) if months is not None else np.arange(n) % 12
    out = np.full((12,) + data.shape[1:], np.nan, np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for k in range(12):
            if (calendar_months == k).any():
                out[k] = np.nanmean(data[calendar_months == k], axis=0)
    return out


def climate_predictors(
    p_year: np.ndarray, e_year: np.ndarray, q_year: np.ndarray, p_monthly: np.ndarray
) -> dict[str, np.ndarray]:
    """The predictors of the module docstring from the mean annual totals (mm/yr) and the
    twelve monthly means of precipitation (mm/month)."""
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        seasonality = np.nanstd(p_monthly, axis=0) / np.nanmean(p_monthly, axis=0)
        out = {
            "precipitation": p_year,
            "pet": e_year,
            "runoff": q_year,
            "aridity": np.where(p_year > 0, e_year / p_year, np.nan),
            "runoff_coefficient": np.where(p_year > 0, q_year / p_year, np.nan),
            "precipitation_seasonality": seasonality,
        }
    return {k: np.where(np.isfinite(v), v, np.nan).astype(np.float32) for k, v in out.items()}

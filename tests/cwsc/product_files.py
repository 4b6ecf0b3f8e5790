"""NetCDF files laid out like the real products (CRU TS, GLEAM, GRUN, ERA5), all holding the
same water as plain mm/month GeoTIFFs on a coarse global grid: for the reader and prepare
tests."""

from __future__ import annotations

import numpy as np
from backend_testing import write_tif

from cwsc.io import months as M
from cwsc.synthetic.forcing import random_params, synthetic_forcing, synthetic_runoff

#: A coarse global grid: 12 x 6 cells of 30 degrees, -180..180, north row first.
LON = np.arange(-165.0, 180.0, 30.0)
LAT = np.arange(75.0, -90.0, -30.0)
TRANSFORM = (30.0, 0.0, -180.0, 0.0, -30.0, 90.0)
START = M.month(2000, 7)  # the truth runs 2000-07 .. 2005-06
N = 60


def make_truth():
    """P, PET, Q in mm/month, (months, lat, lon), the water every fixture holds."""
    cells = len(LAT) * len(LON)
    p, e = synthetic_forcing(cells, N, seed=3)
    q = synthetic_runoff("SWBM", p, e, random_params("SWBM", cells, seed=3), noise=0.05, seed=3)
    cube = lambda a: a.T.reshape(N, len(LAT), len(LON)).astype(np.float64)  # noqa: E731
    return {"P": cube(p), "E": cube(e), "Q": cube(q)}


def days(months, calendar="standard"):
    return np.array([M.days_in(m, calendar) for m in months], dtype=np.float64)[:, None, None]


def cf_time(months, units="days since 1900-01-01", calendar="standard", mid=True):
    import cftime

    dates = [cftime.datetime(m // 12, m % 12 + 1, 15 if mid else 1, calendar=calendar) for m in months]
    return cftime.date2num(dates, units, calendar=calendar)


def write_nc(
    path,
    variables,
    months,
    lat=LAT,
    lon=LON,
    dims=("time", "lat", "lon"),
    time_attrs=None,
    coords=True,
    extra_attrs=None,
):
    import xarray as xr

    time_attrs = time_attrs or {"units": "days since 1900-01-01", "calendar": "standard"}
    data_vars, fills = {}, {}
    for name, (values, attrs) in variables.items():
        attrs = dict(attrs)
        if "_FillValue" in attrs:
            fills[name] = attrs.pop("_FillValue")
        order = [
            ("time", "lat", "lon").index(
                d
                if d in ("time", "lat", "lon")
                else {"Y": "lat", "X": "lon", "latitude": "lat", "longitude": "lon", "y": "lat", "x": "lon"}[
                    d
                ]
            )
            for d in dims
        ]
        data_vars[name] = (dims, np.transpose(values, order).astype(np.float32), attrs)
    coord_vars = {}
    if coords:
        coord_vars[dims[0]] = (
            dims[0],
            cf_time(months, time_attrs["units"], time_attrs.get("calendar", "standard")),
            time_attrs,
        )
        ydim = [d for d in dims if d.lower() in ("lat", "latitude", "y")][0]
        xdim = [d for d in dims if d.lower() in ("lon", "longitude", "x")][0]
        coord_vars[ydim] = (ydim, lat, {"units": "degrees_north"})
        coord_vars[xdim] = (xdim, lon, {"units": "degrees_east"})
    ds = xr.Dataset(data_vars, coords=coord_vars, attrs=extra_attrs or {})
    encoding = {n: {"_FillValue": v} for n, v in fills.items()}
    for n in data_vars:
        encoding.setdefault(n, {"_FillValue": None})
    for c in coord_vars:
        encoding[c] = {"_FillValue": None}
    ds.to_netcdf(path, encoding=encoding, engine="netcdf4")
    return str(path)


def reference(tmp_path, truth, months):
    """The same water as dated mm/month GeoTIFFs over ``months``."""
    i0 = months[0] - START
    sl = slice(i0, i0 + len(months))
    names = [M.label(m) for m in months]
    return {
        k: str(write_tif(tmp_path / f"ref_{k}.tif", truth[k][sl], transform=TRANSFORM, descriptions=names))
        for k in ("P", "E", "Q")
    }


def cru(tmp_path, truth):
    """CRU TS: pre (mm/month) beside stn, latitudes south to north, mid-month stamps,
    2000-07 .. 2004-12."""
    months = list(range(START, M.month(2004, 12) + 1))
    pre = truth["P"][: len(months)][:, ::-1, :]
    stn = np.full_like(pre, 8.0)
    return write_nc(
        tmp_path / "cru_ts4.pre.nc",
        {
            "pre": (pre, {"units": "mm/month", "long_name": "precipitation"}),
            "stn": (stn, {"units": "1", "long_name": "stations"}),
        },
        months,
        lat=LAT[::-1],
    )


def gleam(tmp_path, truth, calendar="standard"):
    """GLEAM: Ep in mm/day, dims (time, lon, lat), start-of-month stamps, 2001-01 .. 2005-06."""
    months = list(range(M.month(2001, 1), START + N))
    i0 = months[0] - START
    ep = truth["E"][i0 : i0 + len(months)] / days(months, calendar)
    return write_nc(
        tmp_path / f"E_GLEAM_{calendar}.nc",
        {"Ep": (ep, {"units": "mm/day"})},
        months,
        dims=("time", "lon", "lat"),
        time_attrs={"units": "days since 1980-01-01", "calendar": calendar},
    )


def grun(tmp_path, truth):
    """GRUN: Runoff in mm/day with a declared _FillValue (the ocean), dims (time, Y, X),
    2001-06 .. 2004-12."""
    months = list(range(M.month(2001, 6), M.month(2004, 12) + 1))
    i0 = months[0] - START
    q = truth["Q"][i0 : i0 + len(months)] / days(months)
    return write_nc(
        tmp_path / "GRUN_v1.nc",
        {"Runoff": (q, {"units": "mm/day", "_FillValue": -9999.0})},
        months,
        dims=("time", "Y", "X"),
    )


def era5(tmp_path, truth, key="P"):
    """ERA5-like: kg m-2 s-1 on longitudes 0..360 (a global grid), latitudes north to south,
    the whole period."""
    months = list(range(START, START + N))
    rate = truth[key] / (days(months) * 86400.0)
    order = np.argsort(np.where(LON < 0, LON + 360, LON))
    lon360 = np.where(LON < 0, LON + 360, LON)[order]
    return write_nc(
        tmp_path / f"era5_{key}.nc",
        {"tp": (rate[:, :, order], {"units": "kg m-2 s-1"})},
        months,
        lon=lon360,
        dims=("time", "latitude", "longitude"),
        time_attrs={"units": "hours since 1900-01-01", "calendar": "gregorian"},
    )


def make_temperature():
    """Monthly mean air temperature in degrees C, (months, lat, lon): cold at the poles, a
    season of either sign by hemisphere."""
    m = np.arange(N)[:, None, None]
    lat = LAT[None, :, None]
    season = np.cos(2 * np.pi * ((START + m) % 12 - 0.5) / 12) * np.sign(lat)
    values = 27.0 - 0.45 * np.abs(lat) - 12.0 * season + 0.0 * LON[None, None, :]
    return values.astype(np.float64)


def cru_tmp(tmp_path, temperature):
    """CRU TS: tmp in degrees Celsius beside stn, latitudes south to north, mid-month stamps,
    2000-07 .. 2004-12."""
    months = list(range(START, M.month(2004, 12) + 1))
    tmp = temperature[: len(months)][:, ::-1, :]
    return write_nc(
        tmp_path / "cru_ts4.tmp.nc",
        {
            "tmp": (tmp, {"units": "degrees Celsius", "long_name": "near-surface temperature"}),
            "stn": (np.full_like(tmp, 8.0), {"units": "1"}),
        },
        months,
        lat=LAT[::-1],
    )


def era5_t2m(tmp_path, temperature):
    """ERA5: t2m in K on longitudes 0..360, latitudes north to south, hours since 1900."""
    months = list(range(START, START + N))
    order = np.argsort(np.where(LON < 0, LON + 360, LON))
    lon360 = np.where(LON < 0, LON + 360, LON)[order]
    return write_nc(
        tmp_path / "era5_t2m.nc",
        {"t2m": (temperature[:, :, order] + 273.15, {"units": "K", "long_name": "2 metre temperature"})},
        months,
        lon=lon360,
        dims=("time", "latitude", "longitude"),
        time_attrs={"units": "hours since 1900-01-01", "calendar": "gregorian"},
    )

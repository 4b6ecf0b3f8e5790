"""Helpers for the plugin tests: tiny rasters written with GDAL from QGIS's own Python
(rasterio is not there), and the registered provider."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
QGIS_PROCESS = shutil.which("qgis_process.bin") or shutil.which("qgis_process")
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("CWSC_BACKEND_PYTHON", str(ROOT / ".venv" / "bin" / "python"))

from osgeo import gdal, osr  # noqa: E402

gdal.UseExceptions()


GRID = dict(width=16, height=12, west=10.0, north=50.0, res=0.25)
FORCING_SHAPE = (4, 6)  # rows, cols: calibration is per cell, so its inputs stay very small
MONTHS = 48


def write_tif(
    path, data, west=GRID["west"], north=GRID["north"], res=GRID["res"], descriptions=None, nodata=-9999.0
):
    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 2:
        data = data[None]
    bands, rows, cols = data.shape
    ds = gdal.GetDriverByName("GTiff").Create(str(path), cols, rows, bands, gdal.GDT_Float32)
    ds.SetGeoTransform((west, res, 0.0, north, 0.0, -res))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    ds.SetProjection(srs.ExportToWkt())
    for i in range(bands):
        band = ds.GetRasterBand(i + 1)
        band.SetNoDataValue(nodata)
        band.WriteArray(np.where(np.isfinite(data[i]), data[i], nodata))
        if descriptions:
            band.SetDescription(descriptions[i])
    ds.FlushCache()
    ds = None
    return str(path)


def forcing(rng, rows, cols):
    t = np.arange(MONTHS)[:, None, None]
    season = np.sin(2 * np.pi * (t % 12) / 12.0)
    wet = rng.uniform(40, 120, (1, rows, cols))
    precip = np.clip(wet * (1 + 0.5 * season) + rng.gamma(2.0, 10.0, (MONTHS, rows, cols)), 0, None)
    pet = np.clip(60 + 50 * np.sin(2 * np.pi * ((t % 12) - 3) / 12.0) + 0.1 * wet, 5, None)
    capacity = rng.uniform(80, 400, (rows, cols))
    storage = 0.5 * capacity
    runoff = np.empty_like(precip)
    for m in range(MONTHS):  # a one-bucket model: enough for a calibration to work on
        water = storage + precip[m]
        et = np.minimum(pet[m] * storage / capacity, water)
        overflow = np.maximum(water - et - capacity, 0)
        base = 0.05 * (water - et - overflow)
        storage = water - et - overflow - base
        runoff[m] = overflow + base
    return precip, pet, runoff


#: The plugin object that registered the session's provider (kept so the Python provider
#: outlives every test).
PLUGIN = {}


def ensure_provider():
    """The registered cwsc provider; registers it through the plugin when it is not there.

    The plugin object is kept here so the Python provider outlives every test.
    """
    from qgis.core import QgsApplication

    from cwsc_qgis.plugin import CwscPlugin

    existing = QgsApplication.processingRegistry().providerById("cwsc")
    if existing is not None:
        return existing
    plugin = CwscPlugin(None)
    plugin.initProcessing()
    PLUGIN["plugin"] = plugin
    return plugin.provider


def qgis_process(env, *args, check=True, timeout=300):
    done = subprocess.run(
        [QGIS_PROCESS, *map(str, args)], env=env, capture_output=True, text=True, timeout=timeout
    )
    if check:
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def run_json(env, alg, params, check=True):
    args = ["--json", "run", alg, "--"] + [f"{k}={v}" for k, v in params]
    done = qgis_process(env, *args, check=check)
    start = done.stdout.find("{")
    data = json.loads(done.stdout[start:]) if start >= 0 and done.returncode == 0 else None
    return done, data


_MAKE_NETCDF = r"""
import sys
import numpy as np, xarray as xr, cftime, rasterio
src, out, kind = sys.argv[1], sys.argv[2], sys.argv[3]
with rasterio.open(src) as r:
    data = r.read().astype("float64"); t = r.transform; nodata = r.nodata
data[data == nodata] = np.nan
n, h, w = data.shape
lat = t.f + t.e * (np.arange(h) + 0.5); lon = t.c + t.a * (np.arange(w) + 0.5)
dates = [cftime.datetime(2001 + i // 12, i % 12 + 1, 15, calendar="standard") for i in range(n)]
days = np.array([[31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][d.month - 1] for d in dates], float)
time = cftime.date2num(dates, "days since 1900-01-01", calendar="standard")
if kind == "grun":      # one variable, mm/day, (time, Y, X)
    ds = xr.Dataset({"Runoff": (("time", "Y", "X"), (data / days[:, None, None]).astype("float32"),
                                {"units": "mm/day"})},
                    coords={"time": ("time", time, {"units": "days since 1900-01-01", "calendar": "standard"}),
                            "Y": ("Y", lat, {"units": "degrees_north"}), "X": ("X", lon, {"units": "degrees_east"})})
else:                   # CRU TS: pre beside stn, latitudes south to north
    ds = xr.Dataset({"pre": (("time", "lat", "lon"), data[:, ::-1].astype("float32"), {"units": "mm/month"}),
                     "stn": (("time", "lat", "lon"), np.ones_like(data, dtype="float32"), {"units": "1"})},
                    coords={"time": ("time", time, {"units": "days since 1900-01-01", "calendar": "standard"}),
                            "lat": ("lat", lat[::-1], {"units": "degrees_north"}), "lon": ("lon", lon, {"units": "degrees_east"})})
ds.to_netcdf(out, encoding={v: {"_FillValue": None} for v in list(ds.data_vars) + list(ds.coords)})
"""


def product_netcdf(tif, out, kind):
    """A NetCDF laid out like GRUN (``kind`` 'grun': Runoff in mm/day, (time, Y, X)) or CRU TS
    ('cru': pre beside stn, latitudes south to north) holding the water of the mm/month
    GeoTIFF ``tif`` from 2001-01, written with the backend's Python (QGIS's has no xarray)."""
    done = subprocess.run(
        [os.environ["CWSC_BACKEND_PYTHON"], "-c", _MAKE_NETCDF, str(tif), str(out), kind],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return out

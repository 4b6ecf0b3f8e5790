"""Fixtures for the plugin tests (pytest-qgis on the QGIS from apt).

Tiny rasters are written with GDAL from QGIS's own Python (rasterio is not there) into a
folder whose name has a space and non-ASCII letters, so every end-to-end test also
checks such paths. The backend interpreter is $CWSC_BACKEND_PYTHON (the Makefile sets
it to the repository's .venv python).
"""

import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("CWSC_BACKEND_PYTHON", str(ROOT / ".venv" / "bin" / "python"))

from osgeo import gdal, osr  # noqa: E402

gdal.UseExceptions()

BACKEND_MODULES = {
    "calibrate": "backend/hydro/command.py",
    "mask": "backend/mask.py",
    "train": "backend/ml/command.py",
    "predict": "backend/ml/command.py",
    "evaluate": "backend/evaluate.py",
    "demo-data": "backend/demo.py",
}


def backend_has(command):
    return (ROOT / BACKEND_MODULES[command]).is_file()


def requires_backend(command):
    return pytest.mark.skipif(not backend_has(command),
                              reason=f"backend command '{command}' is not written yet")


GRID = dict(width=16, height=12, west=10.0, north=50.0, res=0.25)
FORCING_SHAPE = (4, 6)  # rows, cols: calibration is per cell, so its inputs stay very small
MONTHS = 48


def write_tif(path, data, west=GRID["west"], north=GRID["north"], res=GRID["res"],
              descriptions=None, nodata=-9999.0):
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


def _forcing(rng, rows, cols):
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


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    """Tiny inputs: forcing on 6 x 4 cells, 48 months; predictors, labels and KGE on
    16 x 12 cells; a KGE raster on another grid."""
    folder = tmp_path_factory.mktemp("cwsc dätä ü")
    rng = np.random.default_rng(7)
    precip, pet, runoff = _forcing(rng, *FORCING_SHAPE)
    write_tif(folder / "precipitation.tif", precip)
    write_tif(folder / "pet.tif", pet)
    write_tif(folder / "runoff.tif", runoff)
    rows, cols = GRID["height"], GRID["width"]
    y, x = np.mgrid[0:rows, 0:cols]
    predictors = {
        "elevation": 200 + 30 * x + 10 * rng.standard_normal((rows, cols)),
        "soil_depth": 50 + 20 * y + 5 * rng.standard_normal((rows, cols)),
        "tree_cover": 100 * rng.random((rows, cols)),
    }
    (folder / "predictors").mkdir()
    for name, values in predictors.items():
        write_tif(folder / "predictors" / f"{name}.tif", values, descriptions=[name])
    labels = 80 + 1.5 * predictors["soil_depth"] + 0.8 * predictors["tree_cover"]
    labels[0, 0] = np.nan
    spread = 10 + 0.1 * labels
    write_tif(folder / "labels.tif", np.stack([labels, spread]),
              descriptions=["CWSC (mm)", "spread (mm)"])
    write_tif(folder / "cwsc_forcing_grid.tif", labels[1:1 + FORCING_SHAPE[0], :FORCING_SHAPE[1]])
    kge = np.clip(rng.normal(0.5, 0.4, (rows, cols)), -1.5, 0.99)
    write_tif(folder / "kge.tif", kge)
    write_tif(folder / "kge_other_grid.tif", kge[:8, :10], west=0.0, north=40.0, res=0.5)
    return folder


_PLUGIN = {}


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
    _PLUGIN["plugin"] = plugin
    return plugin.provider


@pytest.fixture(scope="session")
def processing_ready(qgis_processing):  # noqa: ARG001 - initialises Processing
    ensure_provider()
    yield
    plugin = _PLUGIN.pop("plugin", None)
    if plugin is not None:
        plugin.unload()


@pytest.fixture()
def provider(processing_ready):  # noqa: ARG001
    return ensure_provider()


@pytest.fixture()
def run_alg(provider):  # noqa: ARG001
    """``run_alg(alg_id, params, feedback=None)`` through processing.run."""
    import processing
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback, QgsProject

    def _run(alg_id, params, feedback=None, context=None):
        feedback = feedback or QgsProcessingFeedback()
        if context is None:
            context = QgsProcessingContext()
            context.setProject(QgsProject.instance())
        return processing.run(alg_id, params, feedback=feedback, context=context)

    return _run


@pytest.fixture()
def backend_env(monkeypatch):
    """A clean interpreter choice for a test: the repository's backend, checks forgotten."""
    from cwsc_qgis import runner

    runner.forget_checks()
    yield monkeypatch
    runner.forget_checks()

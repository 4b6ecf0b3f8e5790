"""Fixtures for the plugin tests (pytest-qgis on the QGIS from apt); helpers live in
``plugin_testing.py``.

Tiny rasters are written into a folder whose name has a space and non-ASCII letters, so
every end-to-end test also checks such paths. The backend interpreter is
$CWSC_BACKEND_PYTHON (the Makefile sets it to the repository's .venv python).
"""

import atexit
import os
import shutil
import subprocess
import tempfile

import numpy as np
import pytest
from plugin_testing import FORCING_SHAPE, GRID, PLUGIN, ROOT, ensure_provider, forcing, write_tif

# Each pytest process (each pytest-xdist worker) is its own QGIS with its own profile folder,
# set before pytest-qgis starts QGIS: Processing settings that a test changes (the default
# device, the backend interpreter) are saved in the profile, and a test running at the same
# moment in the other worker must not read them. It also keeps the user's own profile out of it.
_PROFILE = tempfile.mkdtemp(prefix=f"cwsc-qgis-profile-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-")
os.environ["QGIS_CUSTOM_CONFIG_PATH"] = _PROFILE
atexit.register(shutil.rmtree, _PROFILE, ignore_errors=True)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    """Tiny inputs: forcing on 6 x 4 cells, 48 months; predictors, labels and KGE on
    16 x 12 cells; a KGE raster on another grid."""
    folder = tmp_path_factory.mktemp("cwsc dätä ü")
    rng = np.random.default_rng(7)
    precip, pet, runoff = forcing(rng, *FORCING_SHAPE)
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
    write_tif(folder / "labels.tif", np.stack([labels, spread]), descriptions=["CWSC (mm)", "spread (mm)"])
    write_tif(folder / "cwsc_forcing_grid.tif", labels[1 : 1 + FORCING_SHAPE[0], : FORCING_SHAPE[1]])
    kge = np.clip(rng.normal(0.5, 0.4, (rows, cols)), -1.5, 0.99)
    write_tif(folder / "kge.tif", kge)
    write_tif(folder / "kge_other_grid.tif", kge[:8, :10], west=0.0, north=40.0, res=0.5)
    return folder


@pytest.fixture(scope="session")
def processing_ready(qgis_processing):  # noqa: ARG001 - initialises Processing
    ensure_provider()
    yield
    plugin = PLUGIN.pop("plugin", None)
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
    from cwsc_qgis import interpreter

    interpreter.forget_checks()
    yield monkeypatch
    interpreter.forget_checks()


@pytest.fixture(scope="session")
def qp_env(tmp_path_factory):
    """A HOME with the plugin deployed by scripts/deploy.sh (package included) and enabled."""
    home = tmp_path_factory.mktemp("qgis home")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("QGIS_CUSTOM_CONFIG_PATH", "PYTHONPATH", "PYTHONHOME")
    }
    env.update(
        HOME=str(home),
        QT_QPA_PLATFORM="offscreen",
        CWSC_DIST_DIR=str(home / "dist"),
        XDG_RUNTIME_DIR=str(home / "runtime"),
    )
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "deploy.sh")],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "12 cwsc algorithms" in done.stdout
    plugin = home / ".local/share/QGIS/QGIS3/profiles/default/python/plugins/cwsc_qgis"
    assert (plugin / "metadata.txt").is_file() and (plugin / "lib" / "cwsc" / "__main__.py").is_file()
    recorded = (plugin / "backend_python.txt").read_text(encoding="utf-8").strip()
    assert recorded == os.environ["CWSC_BACKEND_PYTHON"]
    # From here on the plugin must find the backend through the path deploy recorded.
    env.pop("CWSC_BACKEND_PYTHON", None)
    return env


@pytest.fixture(scope="session")
def demo_region(tmp_path_factory):
    """The demo region (2298 land cells, 360 months, 13 predictors) written by the backend."""
    folder = tmp_path_factory.mktemp("demo region")
    done = subprocess.run(
        [os.environ["CWSC_BACKEND_PYTHON"], "-m", "cwsc", "demo-data", "--out", str(folder), "--seed", "3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return folder

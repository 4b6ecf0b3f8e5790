"""The fault catalogue of issue 13 through ``qgis_process``, as a scripting user meets it: a
message that names the file or parameter, no traceback, a failing exit status, and every
file that was there before byte-identical (the backend cases are in
``tests/cwsc/test_faults.py``)."""

import numpy as np
import pytest
from plugin_testing import QGIS_PROCESS, product_netcdf, run_json, write_tif

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(QGIS_PROCESS is None, reason="qgis_process is not installed"),
]


def snapshot(folder):
    """Every file below ``folder`` and its bytes, but the ``.aux.xml`` statistics that QGIS
    itself writes beside a raster it opens as a layer (it checks the parameters so before
    any algorithm runs; opening the raster in QGIS does the same)."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.endswith(".tif.aux.xml")
    }


def refused(env, alg, params, *words):
    done, _ = run_json(env, alg, params, check=False)
    text = done.stdout + done.stderr
    assert done.returncode != 0, text[-2000:]
    assert "Traceback" not in text, text[-3000:]
    for w in words:
        assert w in text, text[-2000:]
    return text


@pytest.fixture
def forcing(data_dir, tmp_path):
    """Copies of the forcing in a folder of the test's own, and earlier outputs beside them."""
    folder = tmp_path / "run"
    folder.mkdir()
    for name in ("precipitation.tif", "pet.tif", "runoff.tif"):
        (folder / name).write_bytes((data_dir / name).read_bytes())
    (folder / "cwsc.tif").write_bytes(b"last year's labels")
    (folder / "kge.tif").write_bytes(b"last year's KGE")
    return folder


def calibrate(folder, **over):
    params = {
        "PRECIPITATION": folder / "precipitation.tif",
        "PET": folder / "pet.tif",
        "RUNOFF": folder / "runoff.tif",
        "MAX_EVALUATIONS": 30,
        "OUTPUT_CWSC": folder / "cwsc.tif",
        "OUTPUT_KGE": folder / "kge.tif",
        **over,
    }
    return list(params.items())


def test_an_output_that_is_an_input(qp_env, forcing):
    before = snapshot(forcing)
    refused(
        qp_env,
        "cwsc:calibrate",
        calibrate(forcing, OUTPUT_CWSC=forcing / "runoff.tif"),
        "OUTPUT_CWSC",
        "runoff.tif' is the input RUNOFF",
    )
    assert snapshot(forcing) == before


def test_one_file_under_two_names(qp_env, forcing):
    (forcing / "same").symlink_to(forcing)
    before = snapshot(forcing)
    refused(
        qp_env,
        "cwsc:calibrate",
        calibrate(forcing, OUTPUT_KGE=forcing / "same" / "cwsc.tif"),
        "OUTPUT_CWSC and OUTPUT_KGE are the same file",
    )
    assert snapshot(forcing) == before


def test_undeclared_runoff_sentinel_and_nan_threshold(qp_env, forcing):
    from osgeo import gdal

    ds = gdal.Open(str(forcing / "runoff.tif"))
    runoff = ds.ReadAsArray().astype(np.float32)
    ds = None
    runoff[runoff == -9999] = np.nan
    runoff[5, 1, 2] = -999.0
    write_tif(forcing / "runoff_grun.tif", runoff)
    before = snapshot(forcing)
    refused(
        qp_env,
        "cwsc:calibrate",
        calibrate(forcing, RUNOFF=forcing / "runoff_grun.tif"),
        "runoff_grun.tif",
        "holds -999",
        "RUNOFF_NODATA=-999",
    )
    refused(
        qp_env,
        "cwsc:calibrate",
        calibrate(forcing, MODEL_KGE_THRESHOLD="nan"),
        "MODEL_KGE_THRESHOLD must be a finite number",
    )
    assert snapshot(forcing) == before
    done, data = run_json(
        qp_env,
        "cwsc:calibrate",
        calibrate(
            forcing,
            RUNOFF=forcing / "runoff_grun.tif",
            RUNOFF_NODATA=-999,
            OUTPUT_CWSC=forcing / "new_cwsc.tif",
            OUTPUT_KGE=forcing / "new_kge.tif",
        ),
    )
    assert data["results"]["CELLS_CALIBRATED"] > 0


def test_mask_nan_threshold_png_output_and_long_names(qp_env, data_dir, tmp_path):
    labels, kge = data_dir / "labels.tif", data_dir / "kge.tif"
    (tmp_path / "masked.tif").write_bytes(b"an earlier mask")
    before = snapshot(tmp_path)
    refused(
        qp_env,
        "cwsc:maskbykge",
        [("LABELS", labels), ("KGE", kge), ("THRESHOLD", "nan"), ("OUTPUT", tmp_path / "masked.tif")],
        "THRESHOLD must be a finite number",
    )
    refused(
        qp_env,
        "cwsc:maskbykge",
        [("LABELS", labels), ("KGE", kge), ("OUTPUT", tmp_path / "masked.png")],
        "masked.png' must end in .tif",
        "GeoTIFF",
    )
    refused(
        qp_env,
        "cwsc:maskbykge",
        [("LABELS", labels), ("KGE", kge), ("OUTPUT", tmp_path / ("m" * 245 + ".tif"))],
        "too long",
    )
    refused(
        qp_env,
        "cwsc:maskbykge",
        [("LABELS", labels), ("KGE", kge), ("OUTPUT", labels)],
        "is the input LABELS",
    )
    assert snapshot(tmp_path) == before


def test_calibrate_reads_a_grun_netcdf_in_mm_per_day_from_qgis_process(qp_env, forcing):
    """A single-variable NetCDF loads as a layer in qgis_process 3.22; its time and units
    reach the backend (the file is handed over, not a temporary GeoTIFF)."""
    grun = product_netcdf(forcing / "runoff.tif", forcing / "GRUN.nc", "grun")
    done, data = run_json(
        qp_env,
        "cwsc:calibrate",
        calibrate(
            forcing,
            RUNOFF=grun,
            PRECIPITATION_START="2001-01",
            PET_START="2001-01",
            OUTPUT_CWSC=forcing / "grun_cwsc.tif",
            OUTPUT_KGE=forcing / "grun_kge.tif",
        ),
    )
    assert data["results"]["CELLS_CALIBRATED"] > 0
    text = done.stdout + done.stderr
    assert "in mm/day, converted to mm/month" in text and "period used: 2001-01 to 2004-12" in text
    reference, _ = run_json(
        qp_env,
        "cwsc:calibrate",
        calibrate(forcing, OUTPUT_CWSC=forcing / "ref_cwsc.tif", OUTPUT_KGE=forcing / "ref_kge.tif"),
    )
    from osgeo import gdal

    ds_a = gdal.Open(str(forcing / "grun_cwsc.tif"))  # keep the datasets: a chained call crashes GDAL
    ds_b = gdal.Open(str(forcing / "ref_cwsc.tif"))
    a = ds_a.GetRasterBand(1).ReadAsArray()
    b = ds_b.GetRasterBand(1).ReadAsArray()
    ok = (a > 0) & (b > 0)
    assert ok.sum() > 0 and np.median(np.abs(a[ok] - b[ok]) / b[ok]) < 0.01


def test_a_netcdf_variable_layer_reaches_the_backend_as_file_and_variable(provider, forcing):  # noqa: ARG001
    from qgis.core import (
        QgsApplication,
        QgsProcessingContext,
        QgsProcessingFeedback,
        QgsProject,
        QgsRasterLayer,
    )

    cru = product_netcdf(forcing / "precipitation.tif", forcing / "cru_ts4.nc", "cru")
    layer = QgsRasterLayer('NETCDF:"{}":pre'.format(cru), "pre")
    assert layer.isValid()
    QgsProject.instance().addMapLayer(layer)
    try:
        alg = QgsApplication.processingRegistry().algorithmById("cwsc:calibrate").create()
        context = QgsProcessingContext()
        context.setProject(QgsProject.instance())
        args, _ = alg.build(
            {
                "PRECIPITATION": layer.id(),
                "PET": str(forcing / "pet.tif"),
                "RUNOFF": str(forcing / "runoff.tif"),
                "OUTPUT_CWSC": str(forcing / "c.tif"),
                "OUTPUT_KGE": str(forcing / "k.tif"),
            },
            context,
            QgsProcessingFeedback(),
        )
    finally:
        QgsProject.instance().removeMapLayer(layer.id())
    i = args.index("--precip")
    assert args[i + 1] == str(cru) and args[args.index("--precip-var") + 1] == "pre"


def test_ctrl_c_on_qgis_process_fails_the_command(qp_env, forcing):
    """Ctrl-C in a terminal sends SIGINT to the whole foreground group: the run stops cleanly,
    and qgis_process must not exit 0 (``qgis_process ... && next-step`` would go on with last
    year's files)."""
    import os
    import signal
    import subprocess
    import time

    before = snapshot(forcing)
    params = calibrate(forcing, MAX_EVALUATIONS=50000, RESTARTS=32)
    proc = subprocess.Popen(
        [QGIS_PROCESS, "--json", "run", "cwsc:calibrate", "--"] + [f"{k}={v}" for k, v in params],
        env=qp_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own group, as a terminal's foreground job
    )
    t0 = time.monotonic()
    while not any(".cwsc-" in p.name for p in forcing.iterdir()):
        assert proc.poll() is None and time.monotonic() - t0 < 120
        time.sleep(0.05)
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0, out[-2000:]
    assert "Traceback" not in out
    assert snapshot(forcing) == before


def test_a_refused_run_leaves_no_new_folder(qp_env, forcing):
    before = snapshot(forcing)
    refused(
        qp_env,
        "cwsc:calibrate",
        calibrate(
            forcing, OUTPUT_CWSC=forcing / "new" / "deeper" / "cwsc.tif", OUTPUT_KGE=forcing / "runoff.tif"
        ),
        "is the input RUNOFF",
    )
    assert not (forcing / "new").exists()
    assert snapshot(forcing) == before


def test_quality_flags_as_ticks_or_as_the_bit_mask(qp_env, data_dir, tmp_path):
    """The dialog's check boxes and qgis_process's integer reach the backend as one bit mask."""
    masks = {}
    for given in ("9", "0,3"):
        out = tmp_path / f"masked {given.replace(',', '_')}.tif"
        done, data = run_json(
            qp_env,
            "cwsc:maskbykge",
            [
                ("LABELS", data_dir / "labels.tif"),
                ("KGE", data_dir / "kge.tif"),
                ("EXCLUDE_FLAGS", given),
                ("OUTPUT", out),
            ],
        )
        assert data is not None, done.stdout[-2000:] + done.stderr[-2000:]
        masks[given] = (data["results"]["KEPT_CELLS"], out.read_bytes())
    assert masks["9"] == masks["0,3"]
    done, _ = run_json(
        qp_env,
        "cwsc:maskbykge",
        [
            ("LABELS", data_dir / "labels.tif"),
            ("KGE", data_dir / "kge.tif"),
            ("EXCLUDE_FLAGS", "256"),
            ("OUTPUT", tmp_path / "x.tif"),
        ],
        check=False,
    )
    assert done.returncode != 0 and "EXCLUDE_FLAGS" in done.stdout + done.stderr

"""Fault 27b: successful runs on constant rasters print no GDAL error. The plugin styled a
many-band output by opening it as a layer, whose default renderer took a histogram of every
band, and GDAL refuses one of a constant band ("ERROR 5: dfMax should be strictly greater
than dfMin"); the sidecar style is now written without opening the output."""

import numpy as np
import pytest
from plugin_testing import FORCING_SHAPE, QGIS_PROCESS, forcing, run_json, write_tif
from qgis.core import QgsRasterLayer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(QGIS_PROCESS is None, reason="qgis_process is not installed"),
]

GDAL_RANGE_ERROR = "dfMax should be strictly greater than dfMin"


def _clean_run(env, alg, params):
    done, data = run_json(env, alg, params)
    text = done.stdout + done.stderr
    assert data is not None, text[-3000:]
    assert GDAL_RANGE_ERROR not in text and "ERROR 5" not in text, text[-3000:]
    return data


def test_calibrate_and_mask_on_constant_rasters_print_no_gdal_error(qp_env, tmp_path):
    rng = np.random.default_rng(5)
    precip, pet, runoff = forcing(rng, *FORCING_SHAPE)
    for name, values in (("precipitation", precip), ("pet", pet), ("runoff", runoff)):
        write_tif(tmp_path / f"{name}.tif", values)
    # Without the sc profile the width band of the labels is empty and the flags band all
    # equal: a many-band output with constant bands, styled on the CWSC scale.
    data = _clean_run(
        qp_env,
        "cwsc:calibrate",
        [
            ("PRECIPITATION", tmp_path / "precipitation.tif"),
            ("PET", tmp_path / "pet.tif"),
            ("RUNOFF", tmp_path / "runoff.tif"),
            ("MODELS", 0),
            ("MAX_EVALUATIONS", 100),
            ("PROFILE_EVALUATIONS", 0),
            ("OUTPUT_CWSC", tmp_path / "labels.tif"),
            ("OUTPUT_KGE", tmp_path / "kge.tif"),
            ("OUTPUT_DETAILS", tmp_path / "details.tif"),
        ],
    )
    assert (tmp_path / "labels.qml").is_file() and (tmp_path / "details.qml").is_file()
    # An all-equal CWSC raster and an all-equal KGE raster, masked and styled.
    rows, cols = FORCING_SHAPE
    write_tif(tmp_path / "flat_labels.tif", np.full((rows, cols), 250.0))
    write_tif(tmp_path / "flat_kge.tif", np.full((rows, cols), 0.5))
    data = _clean_run(
        qp_env,
        "cwsc:maskbykge",
        [
            ("LABELS", tmp_path / "flat_labels.tif"),
            ("KGE", tmp_path / "flat_kge.tif"),
            ("OUTPUT", tmp_path / "masked.tif"),
        ],
    )
    assert data["results"]["KEPT_CELLS"] == rows * cols
    # The sidecars hold the shared scale, 0 to 800 mm, as QGIS reads them.
    for name in ("labels", "masked"):
        layer = QgsRasterLayer(str(tmp_path / f"{name}.tif"), name, "gdal")
        message, ok = layer.loadNamedStyle(str(tmp_path / f"{name}.qml"))
        assert ok, message
        items = layer.renderer().shader().rasterShaderFunction().colorRampItemList()
        assert (items[0].value, items[-1].value) == (0.0, 800.0)
        assert items[-1].label == "800 mm"


def test_a_ramp_on_a_degenerate_range_still_rises(tmp_path, qgis_app):  # noqa: ARG001
    from cwsc_qgis import styles

    target = tmp_path / "flat.qml"
    assert styles._write_rescaled(styles.style_file("spread"), str(target), 0.0, 0.0, "mm")
    text = target.read_text(encoding="utf-8")
    assert 'classificationMin="0.0"' in text and 'classificationMax="1.0"' in text

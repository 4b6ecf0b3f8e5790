"""Predict CWSC's optional OUTPUT_FLAGS (the backend's ``--out-flags``): the cells whose CWSC
was raised or lowered to the training labels' range, written and loaded styled."""

import numpy as np
import pytest
from osgeo import gdal
from plugin_testing import write_tif
from qgis.core import QgsProcessingContext, QgsProject, QgsRasterLayer


@pytest.fixture(scope="module")
def north_model(processing_ready, data_dir, tmp_path_factory):  # noqa: ARG001
    """A model trained for two epochs on the northern half's labels."""
    import processing

    folder = tmp_path_factory.mktemp("north model")
    ds = gdal.Open(str(data_dir / "labels.tif"))
    values = ds.GetRasterBand(1).ReadAsArray().astype(float)
    values[values == ds.GetRasterBand(1).GetNoDataValue()] = np.nan
    values[values.shape[0] // 2 :] = np.nan
    labels = write_tif(folder / "labels.tif", values)
    predictors = [
        str(data_dir / "predictors" / f"{n}.tif") for n in ("elevation", "soil_depth", "tree_cover")
    ]
    params = {
        "PREDICTORS": predictors,
        "LABELS": labels,
        "PATCH_SIZE": 5,
        "EPOCHS": 2,
        "BATCH_SIZE": 16,
        "BLOCKS": 1,
        "WIDTHS": "4,4,8",
        "DEVICE": 1,
        "SEED": 3,
        "OUTPUT_MODEL": str(folder / "model.pt"),
    }
    processing.run("cwsc:train", params)
    return folder / "model.pt", predictors, (np.nanmin(values), np.nanmax(values))


def _band(path):
    ds = gdal.Open(str(path))
    band = ds.GetRasterBand(1)
    values = band.ReadAsArray().astype(float)
    values[values == band.GetNoDataValue()] = np.nan
    return values


@pytest.mark.slow  # a training run first (about 30 s)
def test_predict_writes_the_bounded_cells_and_loads_them_styled(run_alg, north_model, tmp_path):
    """Predictors ten times the training's (ALLOW_SHIFT): the network's CWSC leaves the labels'
    range on most cells, which the map is bounded to and OUTPUT_FLAGS marks."""
    model, predictors, _ = north_model
    shifted = []
    for path in predictors:
        name = path.rsplit("/", 1)[-1][:-4]
        shifted.append(write_tif(tmp_path / (name + ".tif"), 10 * _band(path), descriptions=[name]))
    predictors = shifted
    out, flags = tmp_path / "cwsc.tif", tmp_path / "bounded cells.tif"
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    context.addLayerToLoadOnCompletion(
        str(flags), QgsProcessingContext.LayerDetails("bounded", QgsProject.instance(), "OUTPUT_FLAGS")
    )
    result = run_alg(
        "cwsc:predict",
        {
            "MODEL": str(model),
            "PREDICTORS": predictors,
            "DEVICE": 1,
            "ALLOW_SHIFT": True,
            "OUTPUT": str(out),
            "OUTPUT_FLAGS": str(flags),
        },
        context=context,
    )
    assert result["OUTPUT_FLAGS"] == str(flags) and flags.is_file()
    cwsc, flag = _band(out), _band(flags)
    predicted = np.isfinite(cwsc)
    assert predicted.any() and np.array_equal(predicted, np.isfinite(flag))
    assert set(np.unique(flag[predicted])) <= {0.0, 1.0, 2.0}
    # the log's count of bounded cells
    assert int((flag > 0).sum()) == result["CELLS_BOUNDED"], (int((flag > 0).sum()), result["CELLS_BOUNDED"])
    assert (flag > 0).sum() > predicted.sum() // 2, (int((flag == 1).sum()), int((flag == 2).sum()))
    # styled: a sidecar with the three classes, and the layer QGIS loads gets it
    layer = QgsRasterLayer(str(flags), "flags", "gdal")
    assert layer.renderer().type() == "paletted", layer.renderer().type()
    labels = {c.value: c.label for c in layer.renderer().classes()}
    assert labels == {
        0: "within the labels' range",
        1: "raised to the lowest label",
        2: "lowered to the highest label",
    }
    details = context.layerToLoadOnCompletionDetails(str(flags))
    assert details.postProcessor() is not None

"""Each algorithm end to end through processing.run on tiny rasters; bad inputs; cancel;
styles; the Run -> first progress overhead."""

import math
import os
import re
import sys
import time
import zipfile
from pathlib import Path

import pytest
from qgis.core import QgsProcessingException, QgsProcessingFeedback, QgsProject, QgsRasterLayer

from cwsc_qgis import runner

TINY_NET = {
    "PATCH_SIZE": 5,
    "EPOCHS": 2,
    "BATCH_SIZE": 16,
    "BLOCKS": 1,
    "WIDTHS": "4,4,8",
    "DEVICE": 1,
    "SEED": 3,
}


class TimingFeedback(QgsProcessingFeedback):
    """Records when progress arrives; cancels at the n-th progress event when asked."""

    def __init__(self, cancel_at=None):
        super().__init__()
        self.t0 = time.monotonic()
        self.first_progress = None
        self.values = []
        self.cancel_at = cancel_at
        self.cancelled_at = None
        self.messages = []

    def setProgress(self, value):  # noqa: N802
        if self.first_progress is None:
            self.first_progress = time.monotonic() - self.t0
        self.values.append(value)
        super().setProgress(value)
        if self.cancel_at is not None and len(self.values) >= self.cancel_at and self.cancelled_at is None:
            self.cancelled_at = time.monotonic()
            self.cancel()

    def pushInfo(self, text):  # noqa: N802
        self.messages.append(text)


def predictors(data_dir):
    return [str(data_dir / "predictors" / f"{n}.tif") for n in ("elevation", "soil_depth", "tree_cover")]


_KEEP = []


@pytest.fixture(autouse=True)
def _release_layers():
    yield
    _KEEP.clear()  # layers must go before QGIS exits, or the interpreter crashes at exit


def _renderer(path):
    layer = QgsRasterLayer(str(path), "check", "gdal")  # loads <name>.qml as its default style
    assert layer.isValid()
    _KEEP.append(layer)  # the renderer lives as long as its layer
    return layer.renderer()


def _ramp_range(renderer):
    items = renderer.shader().rasterShaderFunction().colorRampItemList()
    return items[0].value, items[-1].value


# -- mask ------------------------------------------------------------------------------
def test_maskbykge_end_to_end_with_styles(run_alg, data_dir, tmp_path):
    out = tmp_path / "ausgabe ö" / "masked labels.tif"
    result = run_alg(
        "cwsc:maskbykge",
        {
            "LABELS": str(data_dir / "labels.tif"),
            "KGE": str(data_dir / "kge.tif"),
            "THRESHOLD": 0.2,
            "OUTPUT": str(out),
        },
    )
    assert result["OUTPUT"] == str(out) and out.is_file()
    assert result["KEPT_CELLS"] > 0 and result["MASKED_CELLS"] > 0
    assert result["KEPT_CELLS"] + result["MASKED_CELLS"] == 16 * 12 - 1
    sidecar = out.with_suffix(".qml")
    assert sidecar.is_file()
    renderer = _renderer(out)
    assert renderer.type() == "singlebandpseudocolor"
    low, high = _ramp_range(renderer)
    assert (low, high) == (0, 800)  # the one CWSC scale of every CWSC layer, in mm
    labels = [i.label for i in renderer.shader().rasterShaderFunction().colorRampItemList()]
    assert all(label.endswith(" mm") for label in labels)


def test_styles_applied_when_loaded(provider, data_dir, tmp_path):  # noqa: ARG001
    import processing

    QgsProject.instance().removeAllMapLayers()
    out = tmp_path / "loaded.tif"
    result = processing.runAndLoadResults(
        "cwsc:maskbykge",
        {"LABELS": str(data_dir / "labels.tif"), "KGE": str(data_dir / "kge.tif"), "OUTPUT": str(out)},
    )
    layers = [
        lyr
        for lyr in QgsProject.instance().mapLayers().values()
        if os.path.normpath(lyr.source()) == os.path.normpath(result["OUTPUT"])
    ]
    assert layers, list(QgsProject.instance().mapLayers().values())
    assert layers[0].renderer().type() == "singlebandpseudocolor"
    assert _ramp_range(layers[0].renderer())[0] == 0
    QgsProject.instance().removeAllMapLayers()


def test_layer_that_is_not_a_file_goes_through_a_temporary_geotiff(run_alg, data_dir, tmp_path):
    archive = tmp_path / "inputs.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(data_dir / "kge.tif", "kge.tif")
    kge_layer = QgsRasterLayer(f"/vsizip/{archive}/kge.tif", "zipped kge", "gdal")
    assert kge_layer.isValid() and not os.path.isfile(kge_layer.source())
    fb = TimingFeedback()
    out = tmp_path / "masked.tif"
    result = run_alg(
        "cwsc:maskbykge",
        {"LABELS": str(data_dir / "labels.tif"), "KGE": kge_layer, "OUTPUT": str(out)},
        feedback=fb,
    )
    assert out.is_file() and result["KEPT_CELLS"] > 0
    assert any("temporary GeoTIFF" in m for m in fb.messages)


def test_rasters_on_different_grids(run_alg, data_dir, tmp_path):
    out = tmp_path / "masked.tif"
    with pytest.raises(QgsProcessingException) as err:
        run_alg(
            "cwsc:maskbykge",
            {
                "LABELS": str(data_dir / "labels.tif"),
                "KGE": str(data_dir / "kge_other_grid.tif"),
                "OUTPUT": str(out),
            },
        )
    text = str(err.value)
    print("\nbad input (grids):", text)
    assert "grid" in text and "kge_other_grid.tif" in text
    assert "Traceback" not in text
    assert not out.exists()


def test_output_path_not_writable(run_alg, data_dir):
    with pytest.raises(QgsProcessingException) as err:
        run_alg(
            "cwsc:maskbykge",
            {
                "LABELS": str(data_dir / "labels.tif"),
                "KGE": str(data_dir / "kge.tif"),
                "OUTPUT": "/proc/cwsc-not-writable/out.tif",
            },
        )
    print("\nbad input (output):", err.value)
    assert "OUTPUT" in str(err.value) and "cannot be written" in str(err.value)


def test_backend_interpreter_missing(run_alg, backend_env):
    backend_env.setenv("CWSC_BACKEND_PYTHON", "/nonexistent/cwsc/bin/python")
    with pytest.raises(QgsProcessingException) as err:
        run_alg("cwsc:info", {})
    print("\nbad input (no interpreter):", err.value)
    assert "does not exist" in str(err.value) and "Set up the backend" in str(err.value)
    assert "CWSC_BACKEND_PYTHON" in str(err.value)


def test_backend_interpreter_without_torch(run_alg, backend_env):
    backend_env.setenv("CWSC_BACKEND_PYTHON", "/usr/bin/python3")  # QGIS's python: no torch
    with pytest.raises(QgsProcessingException) as err:
        run_alg("cwsc:info", {})
    print("\nbad input (no torch):", err.value)
    assert "lacks torch" in str(err.value) and "Set up the backend" in str(err.value)


def test_info_opens_a_dialog_and_checks_another_interpreter(run_alg, backend_env):  # noqa: ARG001
    """The Toolbox runs an algorithm without visible parameters in the message bar, whose
    progress bar QGIS 3.22 feeds with floats (TypeError: setValue ... 'float'); with BACKEND_PYTHON it
    opens a dialog, and BACKEND_PYTHON checks an interpreter before it is chosen."""
    from qgis.core import QgsApplication

    alg = QgsApplication.processingRegistry().algorithmById("cwsc:info")
    assert alg.countVisibleParameters() == 1
    result = run_alg("cwsc:info", {"BACKEND_PYTHON": os.environ["CWSC_BACKEND_PYTHON"]})
    assert result["INTERPRETER"] == os.environ["CWSC_BACKEND_PYTHON"]
    with pytest.raises(QgsProcessingException, match="lacks torch"):
        run_alg("cwsc:info", {"BACKEND_PYTHON": "/usr/bin/python3"})  # QGIS's own Python


def test_info_reports_the_backend(run_alg):
    result = run_alg("cwsc:info", {})
    assert result["INTERPRETER"] == os.environ["CWSC_BACKEND_PYTHON"]
    assert result["TORCH_VERSION"] and result["BACKEND_VERSION"]
    assert "cpu" in result["DEVICES"]
    assert isinstance(result["CUDA_AVAILABLE"], bool)


# -- train / predict -------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(processing_ready, data_dir, tmp_path_factory):  # noqa: ARG001
    import processing

    folder = tmp_path_factory.mktemp("modèle dir")
    params = {
        "PREDICTORS": predictors(data_dir),
        "LABELS": str(data_dir / "labels.tif"),
        "KGE": str(data_dir / "kge.tif"),
        "KGE_THRESHOLD": -0.5,
        "ENSEMBLE": 2,
        "OUTPUT_MODEL": str(folder / "cwsc model.pt"),
        "OUTPUT_REPORT": str(folder / "training report.html"),
        **TINY_NET,
    }
    fb = TimingFeedback()
    result = processing.run("cwsc:train", params, feedback=fb)
    print(f"\noverhead: train Run -> first progress {fb.first_progress:.2f} s")
    return result, folder


def test_train_end_to_end(trained):
    result, folder = trained
    assert Path(result["OUTPUT_MODEL"]).is_file() and Path(result["OUTPUT_REPORT"]).is_file()
    for name in (
        "TEST_R2",
        "TEST_R2_NETWORK",
        "TEST_R2_BASELINE",
        "TEST_RMSE",
        "TEST_KGE",
        "TRAIN_SAMPLES",
        "TEST_SAMPLES",
    ):
        assert name in result
    # TREES is on by default: TEST_R2 is the network averaged with the trees, not the network's.
    assert math.isfinite(result["TEST_R2_NETWORK"]) and result["TEST_R2"] != result["TEST_R2_NETWORK"]
    assert result["TRAIN_SAMPLES"] > 0 and result["TEST_SAMPLES"] > 0
    assert math.isfinite(result["TEST_R2_BASELINE"])  # the tree baseline on the same test cells
    assert result["TEST_RMSE"] is not None and result["TEST_RMSE"] >= 0


def test_predict_end_to_end_with_uncertainty(run_alg, trained, data_dir, tmp_path):
    model = trained[0]["OUTPUT_MODEL"]
    out, unc = tmp_path / "cwsc.tif", tmp_path / "cwsc spread.tif"
    result = run_alg(
        "cwsc:predict",
        {
            "MODEL": model,
            "PREDICTORS": predictors(data_dir),
            "DEVICE": 1,
            "OUTPUT": str(out),
            "OUTPUT_UNCERTAINTY": str(unc),
        },
    )
    assert out.is_file() and unc.is_file()
    assert result["OUTPUT"] == str(out) and result["OUTPUT_UNCERTAINTY"] == str(unc)
    assert result["CELLS_PREDICTED"] > 0
    assert _renderer(out).type() == "singlebandpseudocolor"
    assert out.with_suffix(".qml").is_file() and Path(str(unc)[:-4] + ".qml").is_file()
    # the uncertainty has its own (sequential) ramp, not the CWSC one
    cwsc_colour = _renderer(out).shader().rasterShaderFunction().colorRampItemList()[-1].color
    unc_colour = _renderer(unc).shader().rasterShaderFunction().colorRampItemList()[-1].color
    assert cwsc_colour != unc_colour


def test_model_made_for_other_predictors(run_alg, trained, data_dir, tmp_path):
    with pytest.raises(QgsProcessingException) as err:
        run_alg(
            "cwsc:predict",
            {
                "MODEL": trained[0]["OUTPUT_MODEL"],
                "PREDICTORS": predictors(data_dir)[:2],
                "DEVICE": 1,
                "OUTPUT": str(tmp_path / "cwsc.tif"),
            },
        )
    print("\nbad input (predictors):", err.value)
    assert "PREDICTORS" in str(err.value) or "predictor" in str(err.value).lower()
    assert "Traceback" not in str(err.value)
    assert not (tmp_path / "cwsc.tif").exists()


def test_cuda_without_cuda(run_alg, trained, data_dir, tmp_path):
    info = run_alg("cwsc:info", {})
    if info["CUDA_AVAILABLE"]:
        pytest.skip("this backend has CUDA")
    with pytest.raises(QgsProcessingException) as err:
        run_alg(
            "cwsc:predict",
            {
                "MODEL": trained[0]["OUTPUT_MODEL"],
                "PREDICTORS": predictors(data_dir),
                "DEVICE": 2,
                "OUTPUT": str(tmp_path / "cwsc.tif"),
            },
        )
    print("\nbad input (cuda):", err.value)
    assert "cuda" in str(err.value).lower() and "DEVICE" in str(err.value)
    # DEVICE left at auto follows the provider's default device setting
    from processing.core.ProcessingConfig import ProcessingConfig

    from cwsc_qgis import settings

    ProcessingConfig.setSettingValue(settings.DEFAULT_DEVICE, 2)  # cuda
    try:
        with pytest.raises(QgsProcessingException, match="cuda"):
            run_alg(
                "cwsc:predict",
                {
                    "MODEL": trained[0]["OUTPUT_MODEL"],
                    "PREDICTORS": predictors(data_dir),
                    "DEVICE": 0,
                    "OUTPUT": str(tmp_path / "cwsc.tif"),
                },
            )
    finally:
        ProcessingConfig.setSettingValue(settings.DEFAULT_DEVICE, 0)


@pytest.mark.serial
@pytest.mark.skipif(sys.platform == "win32", reason="process groups")
def test_cancel_during_training(run_alg, data_dir, tmp_path):
    from test_runner import _group_members

    out_dir = tmp_path / "cancelled"
    fb = TimingFeedback(cancel_at=3)  # "read", then training epochs
    params = {
        "PREDICTORS": predictors(data_dir),
        "LABELS": str(data_dir / "labels.tif"),
        "OUTPUT_MODEL": str(out_dir / "model.pt"),
        "OUTPUT_REPORT": str(out_dir / "report.html"),
        **TINY_NET,
        "EPOCHS": 500,
    }
    assert run_alg("cwsc:train", params, feedback=fb) == {}  # a cancel is no error
    assert "cancelled: no output written" in fb.messages
    elapsed = time.monotonic() - fb.cancelled_at
    pgid = runner.BackendRun.last.proc.pid
    assert _group_members(pgid) == []
    print(f"\ncancel during training: backend process tree gone {elapsed:.2f} s after Cancel")
    assert elapsed < 2.0
    assert not out_dir.exists()  # the folder the run made for its outputs goes with them


@pytest.mark.serial
def test_overhead_run_to_first_progress(run_alg, data_dir, tmp_path):
    run_alg("cwsc:info", {})  # warm disk cache and the interpreter check
    fb = TimingFeedback()
    run_alg(
        "cwsc:maskbykge",
        {
            "LABELS": str(data_dir / "labels.tif"),
            "KGE": str(data_dir / "kge.tif"),
            "OUTPUT": str(tmp_path / "m.tif"),
        },
        feedback=fb,
    )
    print(f"\noverhead: maskbykge Run -> first progress {fb.first_progress:.2f} s")
    assert fb.first_progress <= 3.0


# -- calibrate / evaluate ---------------------------------------------------------------
FAST_CALIBRATION = {
    "MODELS": [0, 2],
    "RESTARTS": 1,
    "MAX_EVALUATIONS": 200,
    "SEED": 1,
    "WARMUP_MONTHS": 6,
    "DEVICE": 1,
}


def test_calibrate_end_to_end(run_alg, data_dir, tmp_path):
    outs = {k: tmp_path / f"{k.lower()} é.tif" for k in ("OUTPUT_CWSC", "OUTPUT_KGE", "OUTPUT_DETAILS")}
    result = run_alg(
        "cwsc:calibrate",
        {
            "PRECIPITATION": str(data_dir / "precipitation.tif"),
            "PET": str(data_dir / "pet.tif"),
            "RUNOFF": str(data_dir / "runoff.tif"),
            "OBJECTIVE": 0,
            **FAST_CALIBRATION,
            "MODEL_KGE_MARGIN": 0.05,
            **{k: str(v) for k, v in outs.items()},
        },
    )
    from osgeo import gdal

    dataset = gdal.Open(str(outs["OUTPUT_CWSC"]))  # kept: a band outliving it crashes GDAL
    band = dataset.GetRasterBand(1).GetDescription()
    dataset = None
    assert "within 0.05 of the best model's" in band  # the label rule, as the user set it
    for name, path in outs.items():
        assert result[name] == str(path) and path.is_file(), name
        assert path.with_suffix(".qml").is_file(), name
    kge = _renderer(outs["OUTPUT_KGE"])
    assert _ramp_range(kge) == (-1.0, 1.0)  # diverging, centred on 0
    assert _renderer(outs["OUTPUT_CWSC"]).type() == "singlebandpseudocolor"
    assert result["CELLS_CALIBRATED"] == 24
    assert "MEDIAN_KGE_DWBM" in result and "MEDIAN_KGE_TVGM" in result  # nested metrics, flat


def test_calibrate_kge_margin_default_value_and_cleared(provider, data_dir, tmp_path):
    """The label rule reaches the backend: absent -> the default 0.02, a value as given,
    a cleared field (None or an empty string from the command line) -> no margin."""
    from qgis.core import QgsApplication, QgsProcessingContext

    alg = QgsApplication.processingRegistry().createAlgorithmById("cwsc:calibrate")
    base = {
        "PRECIPITATION": str(data_dir / "precipitation.tif"),
        "PET": str(data_dir / "pet.tif"),
        "RUNOFF": str(data_dir / "runoff.tif"),
        "OUTPUT_CWSC": str(tmp_path / "c.tif"),
        "OUTPUT_KGE": str(tmp_path / "k.tif"),
    }

    def margin(**extra):
        args, _ = alg.build({**base, **extra}, QgsProcessingContext(), QgsProcessingFeedback())
        return args[args.index("--kge-margin") + 1]

    assert float(margin()) == 0.02
    assert float(margin(MODEL_KGE_MARGIN=0.1)) == 0.1
    assert margin(MODEL_KGE_MARGIN=None) == "none"
    assert margin(MODEL_KGE_MARGIN="") == "none"


def test_calibrate_rasters_on_different_grids(run_alg, data_dir, tmp_path):
    with pytest.raises(QgsProcessingException) as err:
        run_alg(
            "cwsc:calibrate",
            {
                "PRECIPITATION": str(data_dir / "precipitation.tif"),
                "PET": str(data_dir / "pet.tif"),
                "RUNOFF": str(data_dir / "kge_other_grid.tif"),
                **FAST_CALIBRATION,
                "OUTPUT_CWSC": str(tmp_path / "c.tif"),
                "OUTPUT_KGE": str(tmp_path / "k.tif"),
            },
        )
    print("\nbad input (calibrate grids):", err.value)
    assert "kge_other_grid.tif" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_evaluate_end_to_end(run_alg, data_dir, tmp_path):
    report = tmp_path / "évaluation report.html"
    result = run_alg(
        "cwsc:evaluate",
        {
            "CWSC": str(data_dir / "cwsc_forcing_grid.tif"),
            "REFERENCE": str(data_dir / "cwsc_forcing_grid.tif"),
            "PRECIPITATION": str(data_dir / "precipitation.tif"),
            "PET": str(data_dir / "pet.tif"),
            "RUNOFF": str(data_dir / "runoff.tif"),
            "MODELS": [0],
            "RESTARTS": 1,
            "MAX_CELLS": 4,
            "MAX_EVALUATIONS": 80,
            "DEVICE": 1,
            "OUTPUT_REPORT": str(report),
        },
    )
    assert report.is_file() and result["OUTPUT_REPORT"] == str(report)
    assert result["R2_REFERENCE"] == pytest.approx(1.0)
    assert result["MEDIAN_KGE_FIXED"] is not None and result["MEDIAN_KGE_FREE"] is not None


def test_a_spread_asked_of_a_one_member_model_ends_without_red(provider, data_dir, tmp_path):
    """Predict with OUTPUT_UNCERTAINTY on a one-member model without trees: the backend says
    there is no spread; QGIS must not then report the missing layer as "not correctly
    generated"."""
    import processing
    from qgis.core import QgsProcessingContext

    errors = []

    class Collecting(QgsProcessingFeedback):
        def reportError(self, error, fatalError=False):  # noqa: N802, N803
            errors.append(error)
            super().reportError(error, fatalError)

    model = tmp_path / "one.pt"
    processing.run(
        "cwsc:train",
        {
            "PREDICTORS": predictors(data_dir),
            "LABELS": str(data_dir / "labels.tif"),
            "OUTPUT_MODEL": str(model),
            "TREES": False,  # the network alone: one prediction, no spread
            **TINY_NET,
        },
        feedback=QgsProcessingFeedback(),
    )
    out, spread = tmp_path / "cwsc.tif", tmp_path / "spread.tif"
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    result = processing.runAndLoadResults(
        "cwsc:predict",
        {
            "MODEL": str(model),
            "PREDICTORS": predictors(data_dir),
            "OUTPUT": str(out),
            "OUTPUT_UNCERTAINTY": str(spread),
        },
        feedback=Collecting(),
        context=context,
    )
    assert out.is_file() and not spread.exists()
    assert "OUTPUT_UNCERTAINTY" not in result
    assert not [e for e in errors if "not correctly generated" in e], errors


def test_a_layer_whose_file_is_gone_is_named(run_alg, data_dir, tmp_path):
    copy = tmp_path / "runoff copy.tif"
    copy.write_bytes((data_dir / "runoff.tif").read_bytes())
    layer = QgsRasterLayer(str(copy), "my runoff")
    assert layer.isValid()
    QgsProject.instance().addMapLayer(layer)
    try:
        copy.unlink()
        with pytest.raises(QgsProcessingException) as err:
            run_alg(
                "cwsc:calibrate",
                {
                    "PRECIPITATION": str(data_dir / "precipitation.tif"),
                    "PET": str(data_dir / "pet.tif"),
                    "RUNOFF": layer.id(),
                    "OUTPUT_CWSC": str(tmp_path / "cwsc.tif"),
                    "OUTPUT_KGE": str(tmp_path / "kge.tif"),
                },
            )
        message = str(err.value)
        assert "RUNOFF" in message and "'my runoff'" in message and "is gone" in message, message
        assert "RUNOFF_START" not in message and "processing_" not in message
    finally:
        QgsProject.instance().removeMapLayer(layer.id())


def test_prepare_outputs_load_readable_and_the_predictors_with_them(provider, data_dir, tmp_path):
    """The monthly stacks load as their first month in grey (not months 1-3 as false
    colour), and the climate predictors the run made load too."""
    import processing
    from qgis.core import QgsProcessingContext

    project = QgsProject.instance()
    before = set(project.mapLayers())
    context = QgsProcessingContext()
    context.setProject(project)
    try:
        processing.runAndLoadResults(
            "cwsc:prepare",
            {
                "PRECIPITATION": str(data_dir / "precipitation.tif"),
                "PET": str(data_dir / "pet.tif"),
                "RUNOFF": str(data_dir / "runoff.tif"),
                "OUTPUT_PRECIPITATION": str(tmp_path / "p.tif"),
                "OUTPUT_PET": str(tmp_path / "e.tif"),
                "OUTPUT_RUNOFF": str(tmp_path / "q.tif"),
                "OUTPUT_PREDICTORS": str(tmp_path / "predictors"),
            },
            feedback=QgsProcessingFeedback(),
            context=context,
        )
        added = [project.mapLayer(i) for i in set(project.mapLayers()) - before]
        by_file = {Path(layer.source()).name: layer for layer in added}
        assert by_file["q.tif"].renderer().type() == "singlebandgray"
        assert {"aridity.tif", "runoff_coefficient.tif"} <= set(by_file)
    finally:
        for i in set(project.mapLayers()) - before:
            project.removeMapLayer(i)


def test_demo_data_defaults_to_a_folder_the_user_keeps(provider):  # noqa: ARG001
    from qgis.core import QgsApplication

    alg = QgsApplication.processingRegistry().algorithmById("cwsc:demodata")
    default = alg.parameterDefinition("OUTPUT").defaultValue()
    assert default == os.path.join(os.path.expanduser("~"), "CWSC demo data")


def test_demo_data_from_the_toolbox_loads_as_a_group(provider, tmp_path):
    """Create demo data: a user without a terminal gets the demo region, loaded as a group."""
    import processing
    from qgis.core import QgsProcessingContext

    project = QgsProject.instance()
    before = set(project.mapLayers())
    context = QgsProcessingContext()
    context.setProject(project)
    try:
        result = processing.runAndLoadResults(
            "cwsc:demodata",
            {"OUTPUT": str(tmp_path / "demo")},
            feedback=QgsProcessingFeedback(),
            context=context,
        )
        assert result["LAND_CELLS"] > 1000 and Path(result["TRUE_CWSC"]).is_file()
        assert (tmp_path / "demo" / "README.md").is_file()
        group = project.layerTreeRoot().findGroup("CWSC demo data")
        assert group is not None
        names = {Path(node.layer().source()).name for node in group.findLayers()}
        assert {"precipitation.tif", "pet.tif", "runoff.tif", "true_cwsc.tif", "elevation.tif"} <= names
        # Named apart: the monthly forcing and the annual means among the predictors (a
        # subgroup), never two layers of one name in a drop-down.
        layers = [node.layer() for node in group.findLayers()]
        assert len({layer.name() for layer in layers}) == len(layers), sorted(x.name() for x in layers)
        by_name = {layer.name(): layer for layer in layers}
        assert Path(by_name["precipitation (monthly)"].source()).name == "precipitation.tif"
        predictors = group.findGroup("predictors (annual means and maps)")
        assert predictors is not None
        inside = {node.layer().name() for node in predictors.findLayers()}
        assert len(inside) == 13 and "precipitation, annual mean (predictor)" in inside
        assert "precipitation (monthly)" not in inside
        # The gauges, to try Evaluate CWSC at gauged catchments on (with gauges.csv).
        gauges = by_name["gauges (catchments, G01-G12)"]
        assert group.children()[0].layer() is gauges  # polygons on top, not hidden by rasters
        assert gauges.featureCount() == 12 and result["GAUGES"] == str(tmp_path / "demo" / "gauges.gpkg")
        assert Path(result["GAUGES_TABLE"]).read_text(encoding="utf-8").startswith("id,month,runoff")
        # The true CWSC on the CWSC scale (0-800 mm), not grey over its own range.
        truth = by_name["true CWSC (mm)"].renderer()
        assert truth.type() == "singlebandpseudocolor"
        assert (truth.classificationMin(), truth.classificationMax()) == (0.0, 800.0)
        # and the folder holds only what demo-data wrote (a rerun there replaces it whole)
        assert not list((tmp_path / "demo").glob("*.qml"))
    finally:
        for i in set(project.mapLayers()) - before:
            project.removeMapLayer(i)
        group = project.layerTreeRoot().findGroup("CWSC demo data")
        if group is not None:
            project.layerTreeRoot().removeChildNode(group)


def _predictor_files(data_dir):
    return [str(p) for p in sorted((data_dir / "predictors").glob("*.tif"))]


@pytest.mark.parametrize(
    ("alg_id", "params", "expected"),
    [
        (
            "cwsc:predict",
            {"MODEL": "cwsc_model.pt", "PREDICTORS": _predictor_files, "OUTPUT": "cwsc.tif"},
            {"--model": "cwsc_model.pt", "--out": "cwsc.tif"},
        ),
        (
            "cwsc:calibrate",
            {
                "PRECIPITATION": "precipitation.tif",
                "PET": "pet.tif",
                "RUNOFF": "runoff.tif",
                "WORK_DIR": "wd",
                "OUTPUT_CWSC": "labels.tif",
                "OUTPUT_KGE": "kge.tif",
            },
            {"--work-dir": "wd", "--precip": "precipitation.tif"},
        ),
        (
            "cwsc:evaluate",
            {
                "CWSC": lambda data_dir: str(data_dir / "labels.tif"),
                "MODEL": "cwsc_model.pt",
                "OUTPUT_REPORT": "report.html",
            },
            {"--model": "cwsc_model.pt"},
        ),
        (
            "cwsc:prepare",
            {
                "PRECIPITATION": "precipitation.tif",
                "PET": "pet.tif",
                "RUNOFF": "runoff.tif",
                "OUTPUT_PRECIPITATION": "p.tif",
                "OUTPUT_PET": "e.tif",
                "OUTPUT_RUNOFF": "q.tif",
                "OUTPUT_PREDICTORS": "climate",
            },
            {"--runoff": "runoff.tif", "--out-predictors": "climate"},
        ),
        ("cwsc:demodata", {"OUTPUT": "demo"}, {"--out": "demo"}),
    ],
    ids=["predict", "calibrate", "evaluate", "prepare", "demodata"],
)
def test_relative_paths_are_the_callers(provider, data_dir, tmp_path, monkeypatch, alg_id, params, expected):  # noqa: ARG001
    """qgis_process in a user's folder: ``MODEL=cwsc_model.pt`` right after train wrote it there,
    ``WORK_DIR=wd``, ``SERIES=gauges.csv``, ``OUTPUT=cwsc.tif`` are files of that folder, never
    of the plugin's (where the backend runs and the next plugin update deletes what is there).
    ``params``: a value that is a function is given the test data's folder."""
    import shutil

    from qgis.core import QgsApplication, QgsProcessingContext

    here = tmp_path / "my project"
    here.mkdir()
    for name in ("precipitation.tif", "pet.tif", "runoff.tif"):
        shutil.copy(data_dir / name, here / name)
    (here / "cwsc_model.pt").write_bytes(b"a model file")
    (here / "gauges.csv").write_text("id,month,runoff\ng0,2001-01,3\n", encoding="utf-8")
    monkeypatch.chdir(here)

    alg = QgsApplication.processingRegistry().algorithmById(alg_id).create()
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    params = {k: v(data_dir) if callable(v) else v for k, v in params.items()}
    args, _ = alg.build(params, context, QgsProcessingFeedback())
    args = [str(a) for a in args]
    for flag, name in expected.items():
        assert args[args.index(flag) + 1] == str(here / name), flag


def test_predictor_lists_skip_sidecars_and_name_what_they_refuse(provider, data_dir, tmp_path):  # noqa: ARG001
    """ "Add Directory..." in a predictor list also adds QGIS's .aux.xml files: left out, not
    "Incorrect parameter value for PREDICTORS"; a file that is no raster is named; a monthly
    raster given as a predictor (48 bands here, 360 in the demo) is refused, named."""
    import shutil

    from qgis.core import QgsApplication, QgsProcessingContext

    folder = tmp_path / "predictors"
    shutil.copytree(data_dir / "predictors", folder)
    (folder / "elevation.tif.aux.xml").write_text("<PAMDataset/>", encoding="utf-8")
    alg = QgsApplication.processingRegistry().algorithmById("cwsc:train").create()
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    listed = sorted(str(p) for p in folder.iterdir())  # what "Add Directory..." puts in the list
    params = {
        "PREDICTORS": listed,
        "LABELS": str(data_dir / "labels.tif"),
        "OUTPUT_MODEL": str(tmp_path / "model.pt"),
        "OUTPUT_REPORT": str(tmp_path / "report.html"),
    }
    ok, message = alg.checkParameterValues(params, context)
    assert ok, message
    args, _ = alg.build(params, context, QgsProcessingFeedback())
    args = [str(a) for a in args]
    given = args[args.index("--predictors") + 1 : args.index("--predictors") + 4]
    assert given == sorted(str(p) for p in folder.glob("*.tif"))
    assert not any(a.endswith(".aux.xml") for a in args)
    (folder / "stations.csv").write_text("id,x\n1,2\n", encoding="utf-8")
    ok, message = alg.checkParameterValues(
        {**params, "PREDICTORS": [*listed, str(folder / "stations.csv")]}, context
    )
    assert not ok and "stations.csv" in message and "PREDICTORS" in message, message
    monthly = {**params, "PREDICTORS": [*listed, str(data_dir / "precipitation.tif")]}
    with pytest.raises(QgsProcessingException) as refused:
        alg.build(monthly, context, QgsProcessingFeedback())
    print("\nrefused:", refused.value)
    assert "'precipitation.tif' has 48 bands" in str(refused.value)


def test_result_layers_are_named_by_their_file_or_run(provider, data_dir, tmp_path):  # noqa: ARG001
    """Three runs are three names in the layer tree, not "Masked CWSC labels" x3: a file output
    by its file, a temporary one by the time of its run."""
    import processing
    from qgis.core import QgsProcessingContext

    project = QgsProject.instance()
    before = set(project.mapLayers())
    params = {"LABELS": str(data_dir / "labels.tif"), "KGE": str(data_dir / "kge.tif"), "THRESHOLD": 0.2}
    try:
        for output in (str(tmp_path / "masked_1990s.tif"), "TEMPORARY_OUTPUT"):
            context = QgsProcessingContext()
            context.setProject(project)
            processing.runAndLoadResults(
                "cwsc:maskbykge",
                {**params, "OUTPUT": output},
                feedback=QgsProcessingFeedback(),
                context=context,
            )
        names = sorted(project.mapLayer(i).name() for i in set(project.mapLayers()) - before)
        assert len(names) == 2 and len(set(names)) == 2, names
        assert any(n.endswith("(masked_1990s)") for n in names), names
        assert any(re.search(r"\(\d\d:\d\d:\d\d\)$", n) for n in names), names
    finally:
        for i in set(project.mapLayers()) - before:
            project.removeMapLayer(i)


def test_a_cancelled_calibration_says_what_its_work_folder_keeps(run_alg, provider, data_dir, tmp_path):  # noqa: ARG001
    """After Cancel with a work folder: how many finished shards a rerun continues from, or a
    warning that none had finished and a rerun starts from the beginning (SHARDS_RESUMED 0
    without a word was the surprise)."""
    from qgis.core import QgsApplication, QgsProcessingContext

    class Recording(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.lines = []

        def pushInfo(self, info):  # noqa: N802
            self.lines.append(info)

        def pushWarning(self, warning):  # noqa: N802
            self.lines.append(warning)

    params = {
        "PRECIPITATION": str(data_dir / "precipitation.tif"),
        "PET": str(data_dir / "pet.tif"),
        "RUNOFF": str(data_dir / "runoff.tif"),
        **FAST_CALIBRATION,
        "WORK_DIR": str(tmp_path / "work"),
        "KEEP_WORK": True,  # a finished run's shard stays: what a cancel after it had left
        "OUTPUT_CWSC": str(tmp_path / "labels.tif"),
        "OUTPUT_KGE": str(tmp_path / "kge.tif"),
    }
    run_alg("cwsc:calibrate", params)
    alg = QgsApplication.processingRegistry().algorithmById("cwsc:calibrate").create()
    context = QgsProcessingContext()
    feedback = Recording()
    alg.after_cancel(params, context, feedback)
    assert any("1 finished shard kept in" in line and "continue" in line for line in feedback.lines), (
        feedback.lines
    )
    feedback = Recording()
    alg.after_cancel({**params, "WORK_DIR": str(tmp_path / "empty")}, context, feedback)
    assert any("nothing was kept" in line for line in feedback.lines), feedback.lines

"""cwsc:workflow, the shipped model: registered, in step with the algorithms it chains, run
from qgis_process on a small region; and the maps it leaves (COG, NetCDF read by QGIS)."""

import os
import subprocess

import pytest
from plugin_testing import ROOT, run_json
from qgis.core import QgsApplication, QgsProcessingModelAlgorithm, QgsRasterLayer

pytestmark = pytest.mark.slow  # qgis_process runs of whole algorithms

MODEL = ROOT / "resources" / "models" / "cwsc_workflow.model3"


def test_the_model_is_registered_and_matches_the_algorithms_it_chains(provider):  # noqa: ARG001
    alg = QgsApplication.processingRegistry().algorithmById("cwsc:workflow")
    assert alg is not None
    assert alg.displayName() == "Forcing to CWSC map"
    assert alg.svgIconPath().endswith("icon.svg")
    names = {d.name() for d in alg.parameterDefinitions()}
    assert {"PRECIPITATION", "PET", "RUNOFF", "PREDICTORS", "MODELS", "EPOCHS", "SEED"} <= names
    outputs = {d.name() for d in alg.destinationParameterDefinitions()}
    assert any("CWSC map" in o for o in outputs) and any("Model file" in o for o in outputs)
    # The file opens as a model (as the modeler opens it), and every child parameter it sets
    # exists in the child's algorithm: a renamed parameter would break the model silently.
    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(str(MODEL))
    for child in model.childAlgorithms().values():
        target = QgsApplication.processingRegistry().algorithmById(child.algorithmId())
        assert target is not None, child.algorithmId()
        known = {d.name() for d in target.parameterDefinitions()}
        assert set(child.parameterSources()) <= known, (child.algorithmId(), child.parameterSources())


def test_the_model_is_valid_in_the_modeler_at_its_defaults(provider):  # noqa: ARG001
    """The modeler's own check finds no issue ("Parameter X is mandatory" for a child value
    left to its default), and the dialog lists the inputs in the workflow's order."""
    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(str(MODEL))
    assert model.validate() == (True, [])
    inputs = [p.parameterName() for p in model.orderedParameters()]
    assert inputs == [
        "PRECIPITATION",
        "PET",
        "RUNOFF",
        "TEMPERATURE",
        "PREDICTORS",
        "MODELS",
        "EPOCHS",
        "SEED",
    ]
    boxes = sorted((c.position().x(), c.position().y()) for c in model.childAlgorithms().values())
    # Boxes of the modeler's size (about 200 x 50) that do not overlap.
    for (x0, y0), (x1, y1) in zip(boxes, boxes[1:]):
        assert abs(x1 - x0) >= 200 or abs(y1 - y0) >= 60


def test_the_workflow_runs_from_qgis_process(qp_env, demo_region, tmp_path):
    region = demo_region
    predictors = sorted((region / "predictors").glob("*.tif"))
    out = tmp_path / "out"
    out.mkdir()
    params = [
        ("PRECIPITATION", region / "precipitation.tif"),
        ("PET", region / "pet.tif"),
        ("RUNOFF", region / "runoff.tif"),
        ("MODELS", 0),
        ("EPOCHS", 2),
        ("SEED", 3),
    ]
    params += [("PREDICTORS", p) for p in predictors]
    names = {
        "calibrate:CWSC labels": "labels.tif",
        "calibrate:Calibration KGE": "kge.tif",
        "mask:Masked CWSC labels": "masked.tif",
        "train:Model file": "model.pt",
        "train:Training report": "report.html",
        "predict:CWSC map": "cwsc.tif",
    }
    params += [(k, out / v) for k, v in names.items()]
    done, data = run_json(qp_env, "cwsc:workflow", params)
    assert data is not None, done.stdout[-3000:] + done.stderr[-3000:]
    for name in names.values():
        assert (out / name).is_file(), name
    layer = QgsRasterLayer(str(out / "cwsc.tif"), "cwsc", "gdal")
    assert layer.isValid() and layer.bandCount() == 1
    stats = layer.dataProvider().bandStatistics(1)
    assert 0 < stats.mean < 1500


def test_qgis_reads_the_netcdf_map_as_the_geotiff(provider, run_alg, demo_region, tmp_path):  # noqa: ARG001
    region = demo_region
    # A tiny model on the demo region, then the map as COG + NetCDF, both opened by QGIS.
    backend = os.environ["CWSC_BACKEND_PYTHON"]
    predictors = [str(p) for p in sorted((region / "predictors").glob("*.tif"))]
    model = tmp_path / "m.pt"
    done = subprocess.run(
        [
            backend,
            "-m",
            "cwsc",
            "train",
            "--predictors",
            *predictors,
            "--labels",
            str(region / "true_cwsc.tif"),
            "--epochs",
            "1",
            "--blocks",
            "1",
            "--widths",
            "4,8,8",
            "--patch-size",
            "5",
            "--out-model",
            str(model),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = run_alg(
        "cwsc:predict",
        {
            "MODEL": str(model),
            "PREDICTORS": predictors,
            "OUTPUT": str(tmp_path / "cwsc.tif"),
            "OUTPUT_NETCDF": str(tmp_path / "cwsc.nc"),
        },
    )
    assert result["OUTPUT_NETCDF"] == str(tmp_path / "cwsc.nc")
    tif = QgsRasterLayer(str(tmp_path / "cwsc.tif"), "tif", "gdal")
    nc = QgsRasterLayer(f'NETCDF:"{tmp_path / "cwsc.nc"}":cwsc', "nc", "gdal")
    assert tif.isValid() and nc.isValid()
    assert nc.crs().authid() == "EPSG:4326" or nc.crs().isGeographic()
    a, b = tif.extent(), nc.extent()
    for u, v in (
        (a.xMinimum(), b.xMinimum()),
        (a.xMaximum(), b.xMaximum()),
        (a.yMinimum(), b.yMinimum()),
        (a.yMaximum(), b.yMaximum()),
    ):
        assert abs(u - v) < 1e-6
    centre = a.center()
    value_tif, ok1 = tif.dataProvider().sample(centre, 1)
    value_nc, ok2 = nc.dataProvider().sample(centre, 1)
    assert ok1 and ok2 and value_tif == pytest.approx(value_nc)

"""cwsc:evaluatecatchments in the plugin: its parameters and defaults, the command line its
build() makes (polygon layers of any kind reach the backend as files, reference maps are
named by their layers), and the style of its catchment scores. The backend's side is
tests/cwsc; the parser's is tests/plugin/test_contract.py."""

import os

import pytest
from qgis.core import (
    QgsApplication,
    QgsFeature,
    QgsGeometry,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeatureSourceDefinition,
    QgsProcessingFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingParameterDefinition,
    QgsProject,
    QgsRasterLayer,
    QgsRenderContext,
    QgsVectorLayer,
)

from cwsc_qgis import styles
from cwsc_qgis.algorithms import base
from cwsc_qgis.algorithms.evaluatecatchments import TYPE_POLYGON, reference_names

ALG_ID = "cwsc:evaluatecatchments"


def _alg():
    alg = QgsApplication.processingRegistry().algorithmById(ALG_ID)
    assert alg is not None
    return alg.create()


def _context():
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    return context


def _option(args, flag):
    return args[args.index(flag) + 1]


def _values(args, flag):
    """The values of an option that takes several (up to the next option)."""
    start = args.index(flag) + 1
    end = next((i for i in range(start, len(args)) if str(args[i]).startswith("--")), len(args))
    return args[start:end]


@pytest.fixture()
def gauges():
    """A memory layer of three square catchments in a projected CRS, ids in ``gauge``."""
    layer = QgsVectorLayer("Polygon?crs=EPSG:3035&field=gauge:string&field=name:string", "gauges", "memory")
    features = []
    for i in range(3):
        feature = QgsFeature(layer.fields())
        feature.setAttributes([f"G{i}", f"river {i}"])
        x = 4_300_000 + i * 20_000
        feature.setGeometry(
            QgsGeometry.fromWkt(
                f"POLYGON(({x} 2900000,{x + 10000} 2900000,{x + 10000} 2910000,{x} 2910000,{x} 2900000))"
            )
        )
        features.append(feature)
    assert layer.dataProvider().addFeatures(features)[0]
    QgsProject.instance().addMapLayer(layer)
    yield layer
    QgsProject.instance().removeMapLayer(layer.id())


def _parameters(data_dir, tmp_path, catchments, **more):
    series = tmp_path / "series.csv"
    series.write_text("id,month,runoff\nG0,2001-01,10\n", encoding="utf-8")
    return {
        "CATCHMENTS": catchments,
        "ID_FIELD": "gauge",
        "SERIES": str(series),
        "CWSC": str(data_dir / "cwsc_forcing_grid.tif"),
        "OUTPUT": str(tmp_path / "out" / "scores.gpkg"),
        "OUTPUT_TABLE": str(tmp_path / "out" / "scores.csv"),
        "OUTPUT_REPORT": str(tmp_path / "out" / "report.html"),
        **more,
    }


def _exported(path):
    layer = QgsVectorLayer(path, "exported", "ogr")
    assert layer.isValid(), path
    return layer


def test_parameters_and_defaults(provider):  # noqa: ARG001
    alg = _alg()
    assert alg.group() == "4 Evaluation" and alg.groupId() == "evaluation"
    assert alg.COMMAND == "evaluate-catchments"
    assert {"gauge", "catchment", "validation", "KGE"} <= set(alg.tags())
    params = {d.name(): d for d in alg.parameterDefinitions()}
    kinds = {
        "CATCHMENTS": "source",
        "ID_FIELD": "field",
        "SERIES": "file",
        "RUNOFF_UNITS": "enum",
        "PRECIPITATION": "raster",
        "PET": "raster",
        "TEMPERATURE": "raster",
        "CWSC": "raster",
        "REFERENCE_MAPS": "multilayer",
        "MODELS": "enum",
        "OBJECTIVE": "enum",
        "FORMULATION": "enum",
        "WARMUP_MONTHS": "number",
        "CALIBRATION_FRACTION": "number",
        "RESTARTS": "number",
        "SEED": "number",
        "MAX_EVALUATIONS": "number",
        "TEMPERATURE_UNITS": "enum",
        "OUTPUT": "vectorDestination",
        "OUTPUT_TABLE": "fileDestination",
        "OUTPUT_REPORT": "fileDestination",
    }
    assert {name: params[name].type() for name in kinds} == kinds
    assert set(params) == set(kinds)

    def optional(name):
        return bool(params[name].flags() & QgsProcessingParameterDefinition.FlagOptional)

    def is_advanced(name):
        return bool(params[name].flags() & QgsProcessingParameterDefinition.FlagAdvanced)

    required = {"CATCHMENTS", "SERIES", "CWSC", "OUTPUT", "OUTPUT_TABLE", "OUTPUT_REPORT"}
    assert {n for n in params if not optional(n)} >= required
    assert all(
        optional(n)
        for n in ("ID_FIELD", "PRECIPITATION", "PET", "TEMPERATURE", "REFERENCE_MAPS", "WARMUP_MONTHS")
    )
    assert {n for n in params if is_advanced(n)} == {
        "FORMULATION",
        "WARMUP_MONTHS",
        "CALIBRATION_FRACTION",
        "RESTARTS",
        "SEED",
        "MAX_EVALUATIONS",
        "TEMPERATURE_UNITS",
    }
    assert params["CATCHMENTS"].dataTypes() == [TYPE_POLYGON]
    assert params["ID_FIELD"].parentLayerParameterName() == "CATCHMENTS"
    assert params["SERIES"].extension() == "csv"
    assert params["RUNOFF_UNITS"].options() == ["mm/month", "mm/day", "m3/s"]
    assert params["RUNOFF_UNITS"].defaultValue() == 0
    assert params["MODELS"].options() == ["DWBM", "SWBM", "TVGM"] and params["MODELS"].allowMultiple()
    assert params["MODELS"].defaultValue() == [0, 1, 2]
    assert params["OBJECTIVE"].options() == ["KGE", "NSE"] and params["OBJECTIVE"].defaultValue() == 0
    assert params["FORMULATION"].options() == base.FORMULATIONS
    assert params["CALIBRATION_FRACTION"].defaultValue() == 0.75
    assert params["WARMUP_MONTHS"].defaultValue() is None
    assert params["RESTARTS"].defaultValue() == base.RESTARTS_DEFAULT
    assert params["MAX_EVALUATIONS"].defaultValue() == base.MAX_EVALUATIONS_DEFAULT
    assert params["SEED"].defaultValue() == 0
    assert params["TEMPERATURE_UNITS"].options() == base.TEMPERATURE_UNITS
    assert params["OUTPUT"].defaultFileExtension() == "gpkg"
    outputs = {o.name(): o for o in alg.outputDefinitions()}
    for name in (
        "CATCHMENTS_SCORED",
        "CATCHMENTS_NOT_SCORED",
        "MEDIAN_KGE_VAL_MAP",
        "MEDIAN_KGE_VAL_FREE",
        "MEDIAN_KGE_VAL_CONSTANT",
    ):
        assert isinstance(outputs[name], QgsProcessingOutputNumber), name
    assert {"OUTPUT", "OUTPUT_TABLE", "OUTPUT_REPORT"} <= set(outputs)
    text = alg.shortHelpString()
    assert "\n" not in text and 300 < len(text) <= 1500
    assert "<code>CATCHMENTS</code>" in text and "References" in text


def test_build_exports_a_memory_layer_and_passes_every_option(provider, data_dir, tmp_path, gauges):  # noqa: ARG001
    alg = _alg()
    params = _parameters(data_dir, tmp_path, gauges.id())
    args, outputs = alg.build(params, _context(), QgsProcessingFeedback())
    args = [str(a) for a in args]
    catchments = _option(args, "--catchments")
    assert catchments.endswith(".gpkg") and os.path.isfile(catchments)
    exported = _exported(catchments)
    assert exported.featureCount() == 3 and exported.crs().authid() == "EPSG:3035"
    assert sorted(f["gauge"] for f in exported.getFeatures()) == ["G0", "G1", "G2"]
    assert _option(args, "--id-field") == "gauge"
    assert _option(args, "--series") == str(tmp_path / "series.csv")
    assert _option(args, "--runoff-units") == "mm/month"
    assert _option(args, "--cwsc") == str(data_dir / "cwsc_forcing_grid.tif")
    assert _option(args, "--models") == "DWBM,SWBM,TVGM"
    assert _option(args, "--objective") == "kge"
    assert _option(args, "--formulation") == "conserving"
    assert _option(args, "--calibration-fraction") == "0.75"
    assert _option(args, "--seed") == "0"
    for absent in (
        "--precip",
        "--pet",
        "--temperature",
        "--temperature-units",
        "--warmup-months",
        "--restarts",  # not given: the backend's default
        "--max-evaluations",
        "--reference-maps",
        "--reference-names",
        "--device",
    ):
        assert absent not in args, absent
    assert outputs == {
        "OUTPUT": str(tmp_path / "out" / "scores.gpkg"),
        "OUTPUT_TABLE": str(tmp_path / "out" / "scores.csv"),
        "OUTPUT_REPORT": str(tmp_path / "out" / "report.html"),
    }
    assert (_option(args, "--out"), _option(args, "--out-table"), _option(args, "--out-report")) == (
        outputs["OUTPUT"],
        outputs["OUTPUT_TABLE"],
        outputs["OUTPUT_REPORT"],
    )
    # Settings moved off their defaults, rasters for the missing columns.
    more = {
        "RUNOFF_UNITS": 2,
        "PRECIPITATION": str(data_dir / "precipitation.tif"),
        "PET": str(data_dir / "pet.tif"),
        "TEMPERATURE": str(data_dir / "pet.tif"),
        "TEMPERATURE_UNITS": 2,
        "MODELS": [2, 0],
        "OBJECTIVE": 1,
        "FORMULATION": 2,
        "WARMUP_MONTHS": 12,
        "CALIBRATION_FRACTION": 0.6,
        "RESTARTS": 3,
        "MAX_EVALUATIONS": 200,
        "SEED": 7,
    }
    args, _ = alg.build({**params, **more}, _context(), QgsProcessingFeedback())
    args = [str(a) for a in args]
    expected = {
        "--runoff-units": "m3/s",
        "--precip": str(data_dir / "precipitation.tif"),
        "--pet": str(data_dir / "pet.tif"),
        "--temperature": str(data_dir / "pet.tif"),
        "--temperature-units": "K",
        "--models": "DWBM,TVGM",
        "--objective": "nse",
        "--formulation": "bounded",
        "--warmup-months": "12",
        "--calibration-fraction": "0.6",
        "--restarts": "3",
        "--max-evaluations": "200",
        "--seed": "7",
    }
    assert {flag: _option(args, flag) for flag in expected} == expected


def test_selected_features_only_reach_the_backend(provider, data_dir, tmp_path, gauges):  # noqa: ARG001
    gauges.selectByIds([f.id() for f in gauges.getFeatures() if f["gauge"] != "G1"])
    source = QgsProcessingFeatureSourceDefinition(gauges.id(), True)
    args, _ = _alg().build(_parameters(data_dir, tmp_path, source), _context(), QgsProcessingFeedback())
    exported = _exported(_option(args, "--catchments"))
    assert sorted(f["gauge"] for f in exported.getFeatures()) == ["G0", "G2"]


def test_a_geopackage_file_is_passed_as_it_is(provider, data_dir, tmp_path, gauges):  # noqa: ARG001
    from qgis.core import QgsVectorFileWriter

    path = tmp_path / "gauges.gpkg"
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = "GPKG"
    options.layerName = "gauges"
    error = QgsVectorFileWriter.writeAsVectorFormatV3(
        gauges, str(path), QgsProject.instance().transformContext(), options
    )
    assert error[0] == QgsVectorFileWriter.NoError
    args, _ = _alg().build(_parameters(data_dir, tmp_path, str(path)), _context(), QgsProcessingFeedback())
    assert _option(args, "--catchments") == str(path)


def test_reference_maps_are_named_by_their_layers(provider, data_dir, tmp_path, gauges):  # noqa: ARG001
    tif = str(data_dir / "cwsc_forcing_grid.tif")
    layers = [
        QgsRasterLayer(tif, "Root zone (Wang-Erlandsson 2016)", "gdal"),
        QgsRasterLayer(tif, "GLDAS sc", "gdal"),
        QgsRasterLayer(tif, "gldas_sc", "gdal"),
        QgsRasterLayer(tif, "map", "gdal"),
    ]
    assert all(layer.isValid() for layer in layers)
    QgsProject.instance().addMapLayers(layers)
    try:
        params = _parameters(data_dir, tmp_path, gauges.id(), REFERENCE_MAPS=[layer.id() for layer in layers])
        args, _ = _alg().build(params, _context(), QgsProcessingFeedback())
    finally:
        QgsProject.instance().removeMapLayers([layer.id() for layer in layers])
    args = [str(a) for a in args]
    assert _values(args, "--reference-maps") == [tif] * 4
    assert _values(args, "--reference-names") == [
        "root_zone_wang_erlandsson_2016",
        "gldas_sc",
        "gldas_sc_2",
        "map_ref",
    ]
    # Files (qgis_process, scripts) are named by their stems.
    predictors = sorted(str(p) for p in (data_dir / "predictors").glob("*.tif"))
    params = _parameters(data_dir, tmp_path, gauges.id(), REFERENCE_MAPS=predictors)
    args, _ = _alg().build(params, _context(), QgsProcessingFeedback())
    assert _values(args, "--reference-maps") == predictors
    assert _values(args, "--reference-names") == [
        os.path.splitext(os.path.basename(p))[0] for p in predictors
    ]


def test_reference_names():
    assert reference_names([]) == []
    assert reference_names(["CWSC (Xie 2021)", "", "free", "constant", "Map SD", "a", "A"]) == [
        "cwsc_xie_2021",
        "map2",
        "free_ref",
        "constant_ref",
        "map_sd_ref",
        "a",
        "a_2",
    ]


def test_the_output_must_be_a_geopackage(provider, data_dir, tmp_path, gauges):  # noqa: ARG001
    params = _parameters(data_dir, tmp_path, gauges.id(), OUTPUT=str(tmp_path / "scores.shp"))
    with pytest.raises(QgsProcessingException, match=r"\.gpkg"):
        _alg().build(params, _context(), QgsProcessingFeedback())
    params = _parameters(data_dir, tmp_path, gauges.id(), OUTPUT="TEMPORARY_OUTPUT")
    _, outputs = _alg().build(params, _context(), QgsProcessingFeedback())
    assert outputs["OUTPUT"].endswith(".gpkg")


def test_a_temporary_output_is_the_file_qgis_loads(provider, data_dir, tmp_path, gauges):  # noqa: ARG001
    """The dialog's default (a temporary GeoPackage): the path handed to the backend is the one
    QGIS loads at the end, not a second temporary name ("not correctly generated")."""
    from qgis.core import QgsProcessingOutputLayerDefinition

    destination = QgsProcessingOutputLayerDefinition("TEMPORARY_OUTPUT", QgsProject.instance())
    params = _parameters(data_dir, tmp_path, gauges.id(), OUTPUT=destination)
    context = _context()
    args, outputs = _alg().build(params, context, QgsProcessingFeedback())
    to_load = [os.path.abspath(p) for p in context.layersToLoadOnCompletion()]
    assert to_load == [outputs["OUTPUT"]]
    assert _option([str(a) for a in args], "--out") == outputs["OUTPUT"]


def test_an_empty_id_field_is_the_field_holding_the_tables_ids(provider, data_dir, tmp_path, gauges):  # noqa: ARG001
    """Left empty (the dialog's default), ID_FIELD is the field whose values are the table's
    ids, also in a semicolon table; a field matching none of them is refused, naming the one
    that does, instead of a run that scores nothing."""
    params = _parameters(data_dir, tmp_path, gauges.id(), ID_FIELD=None)
    series = tmp_path / "semicolons.csv"
    series.write_text("ID;month;runoff\nG2;2001-01;3,5\nG1;2001-01;4\nX9;2001-01;1\n", encoding="utf-8")
    params["SERIES"] = str(series)
    feedback = _Recording()
    args, _ = _alg().build(params, _context(), feedback)
    assert _option([str(a) for a in args], "--id-field") == "gauge"
    assert any("'gauge'" in line and "2 of the table's 3 ids" in line for line in feedback.lines), (
        feedback.lines
    )
    with pytest.raises(QgsProcessingException) as refused:
        _alg().build({**params, "ID_FIELD": "name"}, _context(), QgsProcessingFeedback())
    message = str(refused.value)
    print("\nID_FIELD refused:", message)
    assert "'name'" in message and "'gauge'" in message and "semicolons.csv" in message
    with pytest.raises(QgsProcessingException, match="no field of the catchments holds the ids"):
        series.write_text("id;month;runoff\nZ1;2001-01;1\n", encoding="utf-8")
        _alg().build(params, _context(), QgsProcessingFeedback())


class _Recording(QgsProcessingFeedback):
    def __init__(self):
        super().__init__()
        self.lines = []

    def pushInfo(self, info):  # noqa: N802 - QGIS API
        self.lines.append(info)
        super().pushInfo(info)


def _scores(path):
    """A GeoPackage as the backend writes it: three catchments, one not scored."""
    from osgeo import ogr, osr

    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    dataset = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = dataset.CreateLayer(path.stem, srs, ogr.wkbPolygon)
    for name, kind in (("id", ogr.OFTString), ("kge_val_map", ogr.OFTReal), ("not_scored", ogr.OFTString)):
        layer.CreateField(ogr.FieldDefn(name, kind))
    for i, (kge, reason) in enumerate(((-0.3, ""), (0.9, ""), (None, "fewer than 24 months"))):
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetField("id", f"G{i}")
        if kge is not None:
            feature.SetField("kge_val_map", kge)
        feature.SetField("not_scored", reason)
        feature.SetGeometry(ogr.CreateGeometryFromWkt(f"POLYGON(({i} 0,{i + 1} 0,{i + 1} 1,{i} 1,{i} 0))"))
        layer.CreateFeature(feature)
        feature = None
    dataset = None
    return str(path)


def test_scores_are_coloured_by_the_validation_kge(provider, tmp_path):  # noqa: ARG001
    path = _scores(tmp_path / "scores.gpkg")
    context = _context()
    details = QgsProcessingContext.LayerDetails("Catchment scores", QgsProject.instance(), "OUTPUT")
    context.addLayerToLoadOnCompletion(path, details)
    outputs = {"OUTPUT": path, "OUTPUT_TABLE": str(tmp_path / "none.csv"), "OUTPUT_REPORT": ""}
    metrics = {
        "catchments_scored": 2,
        "catchments_not_scored": 1,
        "median_kge_val_map": 0.3,
        "median_kge_val_free": 0.7,
        "median_kge_val_constant": 0.1,
    }
    results = _alg().collect({"metrics": metrics}, outputs, context, QgsProcessingFeedback())
    assert results["OUTPUT"] == path and "OUTPUT_TABLE" not in results
    assert (results["CATCHMENTS_SCORED"], results["CATCHMENTS_NOT_SCORED"]) == (2, 1)
    assert (
        results["MEDIAN_KGE_VAL_MAP"],
        results["MEDIAN_KGE_VAL_FREE"],
        results["MEDIAN_KGE_VAL_CONSTANT"],
    ) == (
        0.3,
        0.7,
        0.1,
    )
    qml = tmp_path / "scores.qml"
    assert qml.is_file()
    assert context.layerToLoadOnCompletionDetails(path).postProcessor() is not None
    # Opened later (qgis_process outputs, a project), the layer takes the sidecar.
    layer = QgsVectorLayer(path, "scores", "ogr")
    renderer = layer.renderer()
    assert renderer.type() == "graduatedSymbol"
    assert "kge_val_map" in renderer.classAttribute()
    assert [r.label() for r in renderer.ranges()][:2] == ["not scored (see not_scored)", "below 0"]
    render = QgsRenderContext()
    renderer.startRender(render, layer.fields())
    colours = {}
    for feature in layer.getFeatures():
        render.expressionContext().setFeature(feature)  # as the map renderer does
        colours[feature["id"]] = renderer.symbolForFeature(feature, render).color().name()
    renderer.stopRender(render)
    assert colours == {"G0": "#d7191c", "G1": "#2c7bb6", "G2": "#bdbdbd"}


def test_no_style_without_the_field(provider, tmp_path):  # noqa: ARG001
    layer = QgsVectorLayer("Polygon?crs=EPSG:4326&field=id:string", "x", "memory")
    assert styles.style_catchments(str(tmp_path / "missing.gpkg"), None) is None
    assert layer.isValid()


# -- end to end: the backend on tiny synthetic data ------------------------------------


def _gauged(data_dir, folder):
    """Three catchments on the forcing grid of ``data_dir`` (the third off it: not scored) and
    their series (runoff, precipitation and PET of one cell each, 48 months)."""
    import numpy as np
    from osgeo import gdal
    from plugin_testing import GRID

    def read(name):
        dataset = gdal.Open(str(data_dir / name))
        values = dataset.ReadAsArray()
        dataset = None
        return values

    precip, pet, runoff = (read(n) for n in ("precipitation.tif", "pet.tif", "runoff.tif"))
    cells = [(1, 0), (1, 3), (0, 0)]
    lines = ["id,month,runoff,precipitation,pet"]
    for i, (row, col) in enumerate(cells):
        for m in range(runoff.shape[0]):
            values = (runoff[m, row, col], precip[m, row, col], pet[m, row, col])
            lines.append(f"G{i},{2001 + m // 12}-{m % 12 + 1:02d}," + ",".join(f"{v:.3f}" for v in values))
    series = folder / "gauged sëries.csv"
    series.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert np.isfinite(runoff).all()
    layer = QgsVectorLayer("Polygon?crs=EPSG:4326&field=gauge:string", "gauges", "memory")
    features = []
    corners = [(GRID["west"] + 0.05, 49.3), (GRID["west"] + 0.8, 49.3), (GRID["west"] + 20.0, 30.0)]
    for i, (x, y) in enumerate(corners):
        feature = QgsFeature(layer.fields())
        feature.setAttributes([f"G{i}"])
        feature.setGeometry(
            QgsGeometry.fromWkt(f"POLYGON(({x} {y},{x + 0.5} {y},{x + 0.5} {y + 0.5},{x} {y + 0.5},{x} {y}))")
        )
        features.append(feature)
    assert layer.dataProvider().addFeatures(features)[0]
    return layer, series


def _check_outputs(results, outputs):
    assert results["CATCHMENTS_SCORED"] == 2 and results["CATCHMENTS_NOT_SCORED"] == 1
    for name in ("MEDIAN_KGE_VAL_MAP", "MEDIAN_KGE_VAL_FREE", "MEDIAN_KGE_VAL_CONSTANT"):
        assert -10 < results[name] <= 1, name
    for name, path in outputs.items():
        assert results[name] == str(path) and path.is_file(), name
    assert outputs["OUTPUT"].with_suffix(".qml").is_file()
    scores = QgsVectorLayer(str(outputs["OUTPUT"]), "scores", "ogr")
    assert scores.isValid() and scores.featureCount() == 3
    assert scores.renderer().type() == "graduatedSymbol"  # the sidecar
    by_id = {f["id"]: f for f in scores.getFeatures()}
    assert by_id["G2"]["not_scored"] and not by_id["G0"]["not_scored"]
    assert {"kge_val_map", "kge_val_elevation", "cwsc_elevation_mm"} <= set(scores.fields().names())


@pytest.mark.slow
def test_end_to_end_with_a_memory_layer(run_alg, data_dir, tmp_path):
    layer, series = _gauged(data_dir, tmp_path)
    QgsProject.instance().addMapLayer(layer)
    outputs = {
        "OUTPUT": tmp_path / "out" / "catchment scores.gpkg",
        "OUTPUT_TABLE": tmp_path / "out" / "scores.csv",
        "OUTPUT_REPORT": tmp_path / "out" / "report.html",
    }
    try:
        results = run_alg(
            ALG_ID,
            {
                "CATCHMENTS": layer.id(),
                "ID_FIELD": "gauge",
                "SERIES": str(series),
                "CWSC": str(data_dir / "cwsc_forcing_grid.tif"),
                "REFERENCE_MAPS": [str(data_dir / "predictors" / "elevation.tif")],
                "MODELS": [0],
                "MAX_EVALUATIONS": 60,
                **{k: str(v) for k, v in outputs.items()},
            },
        )
    finally:
        QgsProject.instance().removeMapLayer(layer.id())
    _check_outputs(results, outputs)
    assert _alg().hasHtmlOutputs()  # a run that wrote its report says so


@pytest.mark.slow
@pytest.mark.skipif(__import__("plugin_testing").QGIS_PROCESS is None, reason="qgis_process is not installed")
def test_from_the_command_line(qp_env, data_dir, tmp_path):
    from plugin_testing import run_json
    from qgis.core import QgsVectorFileWriter

    layer, series = _gauged(data_dir, tmp_path)
    shapefile = tmp_path / "gauges.shp"  # a file the backend reads as it is
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = "ESRI Shapefile"
    error = QgsVectorFileWriter.writeAsVectorFormatV3(
        layer, str(shapefile), QgsProject.instance().transformContext(), options
    )
    assert error[0] == QgsVectorFileWriter.NoError
    outputs = {
        "OUTPUT": tmp_path / "qp scores.gpkg",
        "OUTPUT_TABLE": tmp_path / "qp scores.csv",
        "OUTPUT_REPORT": tmp_path / "qp report.html",
    }
    _, data = run_json(
        qp_env,
        ALG_ID,
        [
            ("CATCHMENTS", shapefile),
            ("ID_FIELD", "gauge"),
            ("SERIES", series),
            ("CWSC", data_dir / "cwsc_forcing_grid.tif"),
            ("REFERENCE_MAPS", data_dir / "predictors" / "elevation.tif"),
            ("MODELS", 0),
            ("MAX_EVALUATIONS", 60),
        ]
        + list(outputs.items()),
    )
    _check_outputs(data["results"], outputs)
    print("\nqgis_process cwsc:evaluatecatchments results:", data["results"])


def test_a_failed_run_does_not_say_html_was_generated(run_alg, data_dir, tmp_path, gauges):
    """QGIS's dialog asks hasHtmlOutputs() after a run that keeps it open: after a failed run
    there is no report, so no "HTML output has been generated by this algorithm"."""
    params = _parameters(data_dir, tmp_path, gauges.id(), ID_FIELD="name")  # matches no id
    assert _alg().hasHtmlOutputs()  # before any run: the report is an HTML output
    with pytest.raises(QgsProcessingException):
        run_alg(ALG_ID, params)
    assert not _alg().hasHtmlOutputs()
    assert not (tmp_path / "out" / "report.html").exists()


@pytest.mark.parametrize(
    ("destination", "expected"),
    [
        ("/d/scores.gpkg", ("/d/scores.gpkg", None)),
        ("/d/my project.gpkg|layername=cwsc scores", ("/d/my project.gpkg", "cwsc scores")),
        ("ogr:dbname='/d/my project.gpkg' table=\"scores\" (geom)", ("/d/my project.gpkg", "scores")),
    ],
)
def test_a_geopackage_layer_is_read_from_the_destinations_qgis_users_give(destination, expected):
    """``file.gpkg|layername=NAME`` (qgis_process, scripts) and the dialog's *Save to
    GeoPackage...* (``ogr:dbname=... table=...``) name a layer of a GeoPackage."""
    from cwsc_qgis.algorithms.evaluatecatchments import gpkg_layer

    assert gpkg_layer(destination) == expected


@pytest.mark.slow
@pytest.mark.skipif(__import__("plugin_testing").QGIS_PROCESS is None, reason="qgis_process is not installed")
def test_from_the_command_line_into_a_layer_of_the_catchments_geopackage(qp_env, data_dir, tmp_path):
    """OUTPUT=project.gpkg|layername=scores writes the scores as the layer 'scores' of the
    GeoPackage the catchments come from; its catchments layer stays as it was."""
    import hashlib

    from plugin_testing import run_json
    from qgis.core import QgsVectorFileWriter

    layer, series = _gauged(data_dir, tmp_path)
    project = tmp_path / "my project.gpkg"
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName, options.layerName = "GPKG", "gauges"
    error = QgsVectorFileWriter.writeAsVectorFormatV3(
        layer, str(project), QgsProject.instance().transformContext(), options
    )
    assert error[0] == QgsVectorFileWriter.NoError

    def gauges_rows():
        gauges = QgsVectorLayer(f"{project}|layername=gauges", "gauges", "ogr")
        return hashlib.sha256(
            repr([(f.attributes(), f.geometry().asWkt()) for f in gauges.getFeatures()]).encode()
        )

    before = gauges_rows().hexdigest()
    destination = f"{project}|layername=scores"
    _, data = run_json(
        qp_env,
        ALG_ID,
        [
            ("CATCHMENTS", f"{project}|layername=gauges"),
            ("ID_FIELD", "gauge"),
            ("SERIES", series),
            ("CWSC", data_dir / "cwsc_forcing_grid.tif"),
            ("MODELS", 0),
            ("MAX_EVALUATIONS", 60),
            ("OUTPUT", destination),
            ("OUTPUT_TABLE", tmp_path / "scores.csv"),
            ("OUTPUT_REPORT", tmp_path / "report.html"),
        ],
    )
    results = data["results"]
    assert results["OUTPUT"] == destination and results["CATCHMENTS_SCORED"] == 2
    scores = QgsVectorLayer(destination, "scores", "ogr")
    assert scores.isValid() and scores.featureCount() == 3 and "kge_val_map" in scores.fields().names()
    del scores
    from osgeo import ogr

    dataset = ogr.Open(str(project))
    assert sorted(dataset.GetLayer(i).GetName() for i in range(dataset.GetLayerCount())) == [
        "gauges",
        "scores",
    ]
    dataset = None
    assert gauges_rows().hexdigest() == before
    assert not project.with_suffix(".qml").exists()  # no sidecar to style the file's other layers

"""The plugin and the backend agree on the command line: every set of options an algorithm's
``build()`` produces parses with the backend's own parser (run here in QGIS's Python, which
works because the parser imports only the standard library), enum options and defaults match
on both sides, and so do the exit codes."""

import contextlib
import io
import subprocess
import sys

import pytest
from plugin_testing import ROOT
from qgis.core import (
    QgsApplication,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingParameterDefinition,
    QgsProject,
)

from cwsc import cli
from cwsc.hydro import options
from cwsc.runtime import protocol
from cwsc_qgis import runner
from cwsc_qgis.algorithms import base, calibrate, learnfromrunoff, train

#: The algorithms that build options (cwsc:info runs the command with none).
ALGORITHMS = (
    "prepare",
    "calibrate",
    "maskbykge",
    "train",
    "learnfromrunoff",
    "predict",
    "evaluate",
    "evaluatecatchments",
)
#: Backend options that carry a file (inputs and outputs): their values are paths, not settings.
PATHS = {
    "precip",
    "pet",
    "runoff",
    "out_cwsc",
    "out_kge",
    "out_details",
    "labels",
    "kge",
    "out",
    "predictors",
    "out_model",
    "out_report",
    "model",
    "out_uncertainty",
    "out_netcdf",
    "cwsc",
    "reference",
    "work_dir",
    "details",
    "temperature",
    "out_temperature",
    "catchments",
    "series",
    "out_table",
    "reference_maps",
}
RASTERS = {
    "PRECIPITATION": "precipitation.tif",
    "PET": "pet.tif",
    "RUNOFF": "runoff.tif",
    "TEMPERATURE": "pet.tif",
    "LABELS": "labels.tif",
    "KGE": "kge.tif",
    "CWSC": "cwsc_forcing_grid.tif",
    "REFERENCE": "cwsc_forcing_grid.tif",
    "TARGET_GRID": "runoff.tif",
    "DETAILS": "labels.tif",
}


def _algorithm(name):
    alg = QgsApplication.processingRegistry().algorithmById(f"cwsc:{name}")
    assert alg is not None, name
    return alg.create()


def _optional(d):
    return bool(d.flags() & QgsProcessingParameterDefinition.FlagOptional)


def _parameters(alg, data_dir, tmp_path, full):
    """Values for every required parameter (and with ``full`` every optional input and
    output too); settings stay at their defaults."""
    params = {}
    for d in alg.parameterDefinitions():
        name, kind = d.name(), d.type()
        if _optional(d) and not full:
            continue
        if kind in ("rasterDestination", "fileDestination", "vectorDestination"):
            params[name] = str(tmp_path / f"{name.lower()}.{d.defaultFileExtension()}")
        elif kind == "raster":
            params[name] = str(data_dir / RASTERS[name])
        elif kind == "multilayer":
            params[name] = [str(p) for p in sorted((data_dir / "predictors").glob("*.tif"))]
        elif kind == "file" and d.extension() == "csv":
            params[name] = str(tmp_path / f"{name.lower()}.csv")
        elif kind == "file":
            params[name] = str(data_dir / RASTERS[name]) if name in RASTERS else str(tmp_path / "model.pt")
        elif kind == "source":
            params[name] = _polygons(tmp_path / f"{name.lower()}.gpkg")
        elif kind == "field":
            params[name] = "id"
        elif kind == "folderDestination":
            params[name] = str(tmp_path / name.lower())
        elif kind == "extent":
            params[name] = "10.0,11.0,49.0,50.0 [EPSG:4326]"
    return params


def _polygons(path):
    """A GeoPackage of two square polygons with an ``id`` field (written once per test)."""
    from osgeo import ogr, osr

    if not path.exists():
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(4326)
        dataset = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
        layer = dataset.CreateLayer(path.stem, srs, ogr.wkbPolygon)
        layer.CreateField(ogr.FieldDefn("id", ogr.OFTString))
        for i in range(2):
            feature = ogr.Feature(layer.GetLayerDefn())
            feature.SetField("id", f"g{i}")
            x = 10.0 + i
            feature.SetGeometry(
                ogr.CreateGeometryFromWkt(f"POLYGON(({x} 49,{x + 1} 49,{x + 1} 50,{x} 50,{x} 49))")
            )
            layer.CreateFeature(feature)
            feature = None
        dataset = None
    return str(path)


def _variants(alg):
    """(parameter, value) pairs that move each setting off its default."""
    out = []
    for d in alg.parameterDefinitions():
        name, kind = d.name(), d.type()
        if kind == "enum":
            if d.allowMultiple():
                out += [(name, [0]), (name, [len(d.options()) - 1]), (name, [0, 1])]
            else:
                out += [(name, i) for i in range(len(d.options())) if i != d.defaultValue()]
        elif kind == "number":
            default, low, high = d.defaultValue(), d.minimum(), d.maximum()
            if default is None:
                value = max(low, 1) if low > -1e300 else 1
            elif default + 1 <= high:
                value = default + 1
            else:
                value = (default + low) / 2 if low > -1e300 else default - 1
            if d.dataType() == 0:  # integer
                value = int(value)
            out.append((name, value))
            if _optional(d) and default is not None:
                out.append((name, ""))  # a cleared field
        elif kind == "string":
            out.append((name, "8,16,32"))
        elif kind == "boolean":
            out.append((name, not d.defaultValue()))
    return out


def _build(alg, params):
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    args, _ = alg.build(params, context, QgsProcessingFeedback())
    return args


def _parse(command, args):
    """The backend parser's namespace for ``args``; a refusal fails the test with its message."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        try:
            return cli.build_parser().parse_args([command, *map(str, args)])
        except SystemExit:
            pass
    pytest.fail(f"the backend refused {command} {args}: {out.getvalue().strip()}")


@pytest.mark.parametrize("name", ALGORITHMS)
def test_every_option_the_plugin_builds_parses(name, provider, data_dir, tmp_path):  # noqa: ARG001
    alg = _algorithm(name)
    for full in (False, True):
        _parse(alg.COMMAND, _build(alg, _parameters(alg, data_dir, tmp_path, full)))
    for param, value in _variants(alg):
        params = {**_parameters(alg, data_dir, tmp_path, True), param: value}
        _parse(alg.COMMAND, _build(alg, params))


@pytest.mark.parametrize("name", ALGORITHMS)
def test_plugin_defaults_are_the_backend_defaults(name, provider, data_dir, tmp_path):  # noqa: ARG001
    alg = _algorithm(name)
    args = _build(alg, _parameters(alg, data_dir, tmp_path, False))
    ns = _parse(alg.COMMAND, args)
    given = {a for a in map(str, args) if a.startswith("--")}
    for flag, option in cli.command_options(alg.COMMAND).items():
        if flag in given and option["dest"] not in PATHS and option["default"] is not None:
            assert getattr(ns, option["dest"]) == option["default"], (
                f"cwsc:{name} passes {flag} {getattr(ns, option['dest'])!r} at its defaults; "
                f"the backend's default is {option['default']!r}"
            )


def test_every_command_the_plugin_runs_exists_in_the_backend(provider):  # noqa: ARG001
    commands = {
        a.COMMAND
        for a in QgsApplication.processingRegistry().providerById("cwsc").algorithms()
        if hasattr(a, "COMMAND")
    }
    assert commands <= set(cli.COMMANDS)
    _parse("info", [])


def test_every_option_the_plugin_can_pass_has_a_help_line(provider):  # noqa: ARG001
    """The command line's help (cwsc.commands.options) covers every option of every command
    the plugin runs: what the Toolbox passes, a scripting user can look up with --help."""
    commands = {
        a.COMMAND
        for a in QgsApplication.processingRegistry().providerById("cwsc").algorithms()
        if hasattr(a, "COMMAND")
    }
    missing = [
        f"{c} {flag}" for c in sorted(commands) for flag, o in cli.command_options(c).items() if not o["help"]
    ]
    assert missing == []


def test_enum_options_match_the_backend_choices():
    calibrate_options = cli.command_options("calibrate")
    assert tuple(base.MODELS) == options.MODELS
    assert tuple(o.lower() for o in base.OBJECTIVES) == calibrate_options["--objective"]["choices"]
    assert tuple(base.FORMULATIONS) == calibrate_options["--formulation"]["choices"]
    train_options = cli.command_options("train")
    assert tuple(train.SPLITS) == train_options["--split"]["choices"]
    assert tuple(train.RECIPES) == train_options["--recipe"]["choices"]
    learn_options = cli.command_options("learn")
    assert tuple(o.lower() for o in base.OBJECTIVES) == learn_options["--objective"]["choices"]
    assert tuple(base.FORMULATIONS) == learn_options["--formulation"]["choices"]
    assert tuple(train.SPLITS) == learn_options["--split"]["choices"]
    assert tuple(learnfromrunoff.MODEL_LOSSES) == learn_options["--model-loss"]["choices"]
    from cwsc_qgis.algorithms import evaluatecatchments

    catchment_options = cli.command_options("evaluate-catchments")
    assert tuple(evaluatecatchments.RUNOFF_UNITS) == catchment_options["--runoff-units"]["choices"]
    assert tuple(o.lower() for o in base.OBJECTIVES) == catchment_options["--objective"]["choices"]
    assert tuple(base.FORMULATIONS) == catchment_options["--formulation"]["choices"]
    for command in ("calibrate", "train", "learn", "predict", "evaluate"):
        assert tuple(base.DEVICES) == cli.command_options(command)["--device"]["choices"]
    from cwsc.io import units

    assert tuple(base.UNITS) == units.CHOICES


def test_defaults_shown_in_the_dialogs_are_the_backends():
    assert base.RESTARTS_DEFAULT == options.DEFAULT_RESTARTS
    assert base.MAX_EVALUATIONS_DEFAULT == options.DEFAULT_MAX_EVALUATIONS
    assert calibrate.IDENTIFIABILITY_TOLERANCE == options.IDENTIFIABILITY_TOLERANCE
    assert calibrate.PROFILE_EVALUATIONS == options.PROFILE_EVALUATIONS
    from cwsc_qgis.algorithms import maskbykge

    assert maskbykge.EXCLUDE_FLAGS == options.DEFAULT_EXCLUDE_FLAGS
    assert [1 << i for i in range(len(maskbykge.FLAG_NAMES))] == list(options.FLAG_BITS)
    from cwsc.ml import options as ml_options

    assert (base.EPOCHS_DEFAULT, base.SEED_RECIPE_EPOCHS) == (
        ml_options.RECIPE_EPOCHS["default"],
        ml_options.RECIPE_EPOCHS["seed"],
    )
    assert (base.BATCH_SIZE_DEFAULT, base.SEED_RECIPE_BATCH_SIZE) == (
        ml_options.RECIPE_BATCH_SIZE["default"],
        ml_options.RECIPE_BATCH_SIZE["seed"],
    )
    assert base.POSITION_MIN_CELLS == ml_options.POSITION_MIN_CELLS
    assert f"{base.POSITION_MIN_CELLS:,} labelled cells" in train.TrainAlgorithm.DETAILS
    assert (base.LEARN_EPOCHS_DEFAULT, base.LEARN_BATCH_SIZE_DEFAULT, base.LEARN_PRETRAIN_EPOCHS_DEFAULT) == (
        ml_options.LEARN_EPOCHS,
        ml_options.LEARN_BATCH_SIZE,
        ml_options.LEARN_PRETRAIN_EPOCHS,
    )


def test_the_seed_recipe_keeps_its_own_epochs_unless_changed(provider, data_dir, tmp_path):  # noqa: ARG001
    alg = _algorithm("train")
    params = _parameters(alg, data_dir, tmp_path, full=False)
    seed = train.RECIPES.index("seed")
    # The dialog sends its filled-in defaults (40, 64): they mean "the recipe's own" (with the
    # seed recipe its 150 and 32; with the default recipe 40, and a batch that may grow with
    # many training cells); a changed number is sent.
    shown = {**params, "EPOCHS": base.EPOCHS_DEFAULT, "BATCH_SIZE": base.BATCH_SIZE_DEFAULT}
    args = _build(alg, {**shown, "RECIPE": seed})
    assert "--epochs" not in args and "--batch-size" not in args
    args = _build(alg, {**shown, "RECIPE": seed, "EPOCHS": 12})
    assert args[args.index("--epochs") + 1] == "12"
    args = _build(alg, shown)
    assert "--epochs" not in args and "--batch-size" not in args
    args = _build(alg, {**shown, "BATCH_SIZE": 32})
    assert args[args.index("--batch-size") + 1] == "32"


@pytest.mark.parametrize("name", ALGORITHMS + ("info",))
def test_help_texts_have_no_hard_line_breaks(name, provider):  # noqa: ARG001
    help_text = _algorithm(name).shortHelpString()
    assert "\n" not in help_text and len(help_text) > 300


def test_exit_codes_agree_with_the_protocol():
    assert (runner.EXIT_OK, runner.EXIT_INTERNAL, runner.EXIT_BAD_INPUT, runner.EXIT_CANCELLED) == (
        protocol.EXIT_OK,
        protocol.EXIT_INTERNAL,
        protocol.EXIT_BAD_INPUT,
        protocol.EXIT_CANCELLED,
    )


def test_the_backend_parser_imports_only_the_standard_library():
    heavy = ("numpy", "torch", "rasterio", "xarray", "dask", "qgis")
    code = (
        "import sys, cwsc.cli; cwsc.cli.build_parser(); "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_one_parameter_name_has_one_label_everywhere(provider):  # noqa: ARG001
    """The glossary (cwsc_qgis/glossary.py): a parameter that means the same in two dialogs
    reads the same in both; labels never say "(optional)" (QGIS adds "[optional]")."""
    import collections

    from cwsc_qgis import glossary

    labels = collections.defaultdict(set)
    for alg in QgsApplication.processingRegistry().providerById("cwsc").algorithms():
        if not hasattr(alg, "COMMAND"):
            continue
        for d in alg.parameterDefinitions():
            labels[d.name()].add(d.description())
            assert "(optional)" not in d.description().lower(), (alg.id(), d.name())
    differing = {k: v for k, v in labels.items() if len(v) > 1 and k not in glossary.ROLES}
    assert differing == {}
    for name, text in glossary.LABELS.items():
        assert labels[name] == {text}, name


def test_labels_are_short_enough_for_the_dialog(provider):  # noqa: ARG001
    """A dialog at its first size shows about 60 characters of a label without a horizontal
    scrollbar; what a parameter needs beyond that belongs in the help or its page."""
    long = {
        (alg.id(), d.name()): len(d.description())
        for alg in QgsApplication.processingRegistry().providerById("cwsc").algorithms()
        if hasattr(alg, "COMMAND")
        for d in alg.parameterDefinitions()
        if len(d.description()) > 64
    }
    assert long == {}

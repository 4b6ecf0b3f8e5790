"""The provider, its algorithms and their contracted parameter names; plugin entry points."""

import configparser
import os
from pathlib import Path

from qgis.core import QgsApplication, QgsProcessingOutputNumber, QgsProcessingParameterDefinition

ROOT = Path(__file__).resolve().parents[2]

CONTRACT = {
    "cwsc:prepare": (
        [
            "PRECIPITATION",
            "PET",
            "RUNOFF",
            "PRECIPITATION_VARIABLE",
            "PET_VARIABLE",
            "RUNOFF_VARIABLE",
            "PRECIPITATION_UNITS",
            "PET_UNITS",
            "RUNOFF_UNITS",
            "PRECIPITATION_START",
            "PET_START",
            "RUNOFF_START",
            "PERIOD_START",
            "PERIOD_END",
            "TARGET_GRID",
            "EXTENT",
        ],
        ["OUTPUT_PRECIPITATION", "OUTPUT_PET", "OUTPUT_RUNOFF", "OUTPUT_PREDICTORS"],
        ["MONTHS"],
    ),
    "cwsc:calibrate": (
        [
            "PRECIPITATION",
            "PET",
            "RUNOFF",
            "MODELS",
            "OBJECTIVE",
            "FORMULATION",
            "WARMUP_MONTHS",
            "CALIBRATION_FRACTION",
            "RESTARTS",
            "SEED",
            "DEVICE",
            "IDENTIFIABILITY_TOLERANCE",
            "PROFILE_EVALUATIONS",
            "WORKERS",
            "DASK_SCHEDULER",
            "WORK_DIR",
            "KEEP_WORK",
        ],
        ["OUTPUT_CWSC", "OUTPUT_KGE", "OUTPUT_DETAILS"],
        [],
    ),
    "cwsc:maskbykge": (
        ["LABELS", "KGE", "THRESHOLD", "EXCLUDE_FLAGS"],
        ["OUTPUT"],
        ["KEPT_CELLS", "MASKED_CELLS"],
    ),
    "cwsc:train": (
        [
            "PREDICTORS",
            "LABELS",
            "KGE",
            "KGE_THRESHOLD",
            "PATCH_SIZE",
            "TEST_FRACTION",
            "SPLIT",
            "EPOCHS",
            "BATCH_SIZE",
            "RECIPE",
            "ENSEMBLE",
            "DEVICE",
            "SEED",
        ],
        ["OUTPUT_MODEL", "OUTPUT_REPORT"],
        ["TEST_R2", "TEST_R2_BASELINE", "TEST_RMSE", "TEST_KGE", "TRAIN_SAMPLES", "TEST_SAMPLES"],
    ),
    "cwsc:learnfromrunoff": (
        [
            "PREDICTORS",
            "PRECIPITATION",
            "PET",
            "RUNOFF",
            "MODELS",
            "TEST_FRACTION",
            "SPLIT",
            "EPOCHS",
            "BATCH_SIZE",
            "PRETRAIN_EPOCHS",
            "DEVICE",
            "SEED",
            "FORMULATION",
            "WARMUP_MONTHS",
            "CALIBRATION_FRACTION",
            "PERIOD_START",
            "PERIOD_END",
            "LABELS",
            "SHARED_SC",
        ],
        ["OUTPUT_MODEL", "OUTPUT_REPORT"],
        ["VAL_KGE_TEST_CELLS", "CAL_KGE_TRAIN_CELLS"],
    ),
    "cwsc:predict": (
        ["MODEL", "PREDICTORS", "DEVICE"],
        ["OUTPUT", "OUTPUT_UNCERTAINTY", "OUTPUT_NETCDF"],
        [],
    ),
    "cwsc:evaluate": (
        ["CWSC", "REFERENCE", "PRECIPITATION", "PET", "RUNOFF", "DETAILS", "LABELS", "MODEL"],
        ["OUTPUT_REPORT"],
        [
            "R2_REFERENCE",
            "MEDIAN_KGE_FIXED",
            "KGE_VAL_FIXED",
            "KGE_VAL_CONSTANT",
            "KGE_VAL_FREE",
            "CELLS_SCORED",
        ],
    ),
    "cwsc:evaluatecatchments": (
        [
            "CATCHMENTS",
            "ID_FIELD",
            "SERIES",
            "RUNOFF_UNITS",
            "PRECIPITATION",
            "PET",
            "TEMPERATURE",
            "CWSC",
            "REFERENCE_MAPS",
            "MODELS",
            "OBJECTIVE",
            "FORMULATION",
            "WARMUP_MONTHS",
            "CALIBRATION_FRACTION",
            "RESTARTS",
            "SEED",
            "MAX_EVALUATIONS",
        ],
        ["OUTPUT", "OUTPUT_TABLE", "OUTPUT_REPORT"],
        ["CATCHMENTS_SCORED", "MEDIAN_KGE_VAL_MAP", "MEDIAN_KGE_VAL_FREE", "MEDIAN_KGE_VAL_CONSTANT"],
    ),
    "cwsc:info": (["BACKEND_PYTHON"], [], []),
    "cwsc:setup": (["FOLDER", "PYTHON", "TORCH"], [], []),
}


def _alg(alg_id):
    alg = QgsApplication.processingRegistry().algorithmById(alg_id)
    assert alg is not None, alg_id
    return alg


def test_provider_loads_its_algorithms_and_the_workflow(provider):
    assert provider.id() == "cwsc"
    assert provider.name() == "CWSC"  # short: the Toolbox dock shows it whole
    assert not provider.icon().isNull()
    assert Path(provider.svgIconPath()).is_file()
    assert sorted(a.id() for a in provider.algorithms()) == sorted(
        [*CONTRACT, "cwsc:demodata", "cwsc:workflow"]
    )
    setup = _alg("cwsc:setup")
    # the output is not named as the input PYTHON (QGIS's help would list it under its label)
    assert {o.name() for o in setup.outputDefinitions()} >= {"INTERPRETER", "INFO"}
    assert "PYTHON" not in {o.name() for o in setup.outputDefinitions()}


def test_contracted_parameter_and_output_names(provider):  # noqa: ARG001
    for alg_id, (inputs, destinations, numbers) in CONTRACT.items():
        alg = _alg(alg_id)
        params = {p.name(): p for p in alg.parameterDefinitions()}
        for name in inputs + destinations:
            assert name in params, f"{alg_id} lacks parameter {name}"
        outputs = {o.name(): o for o in alg.outputDefinitions()}
        for name in destinations + numbers:
            assert name in outputs, f"{alg_id} lacks output {name}"
        for name in numbers:
            assert isinstance(outputs[name], QgsProcessingOutputNumber), (alg_id, name)


def test_defaults_from_the_issue(provider):  # noqa: ARG001
    cal = _alg("cwsc:calibrate")
    models = cal.parameterDefinition("MODELS")
    assert models.allowMultiple() and models.options() == ["DWBM", "SWBM", "TVGM"]
    assert sorted(models.defaultValue()) == [0, 1, 2]
    assert cal.parameterDefinition("OBJECTIVE").options() == ["KGE", "NSE"]
    assert cal.parameterDefinition("FORMULATION").options() == ["conserving", "seed", "bounded"]
    assert cal.parameterDefinition("FORMULATION").defaultValue() == 0
    assert cal.parameterDefinition("CALIBRATION_FRACTION").defaultValue() == 0.75
    assert cal.parameterDefinition("DEVICE").options() == ["auto", "cpu", "cuda"]
    assert _alg("cwsc:maskbykge").parameterDefinition("THRESHOLD").defaultValue() == 0.0
    flags = _alg("cwsc:maskbykge").parameterDefinition("EXCLUDE_FLAGS")
    assert flags.allowMultiple() and len(flags.options()) == 8 and flags.defaultValue() == [0, 6, 7]
    assert cal.parameterDefinition("IDENTIFIABILITY_TOLERANCE").defaultValue() == 0.01
    train = _alg("cwsc:train")
    assert train.parameterDefinition("KGE").flags() & QgsProcessingParameterDefinition.FlagOptional
    assert train.parameterDefinition("KGE_THRESHOLD").defaultValue() == 0.0
    assert train.parameterDefinition("PATCH_SIZE").defaultValue() == 5  # issue 34
    assert train.parameterDefinition("TEST_FRACTION").defaultValue() == 0.3
    assert train.parameterDefinition("SPLIT").options() == ["random", "blocks"]
    assert train.parameterDefinition("RECIPE").options() == ["default", "seed"]
    assert train.parameterDefinition("ENSEMBLE").defaultValue() == 1
    ev = _alg("cwsc:evaluate")
    for name in ("REFERENCE", "PRECIPITATION", "PET", "RUNOFF"):
        assert ev.parameterDefinition(name).flags() & QgsProcessingParameterDefinition.FlagOptional
    advanced = QgsProcessingParameterDefinition.FlagAdvanced
    for name in ("FORMULATION", "WARMUP_MONTHS", "RESTARTS", "SEED", "DEVICE"):
        assert cal.parameterDefinition(name).flags() & advanced, name


def test_groups_help_and_references(provider):  # noqa: ARG001
    groups = {}
    for alg_id in CONTRACT:
        alg = _alg(alg_id)
        groups[alg_id] = alg.group()
        text = alg.shortHelpString()
        assert 300 < len(text) <= 1500, alg_id
        alg_refs = _alg(alg_id).REFS
        assert ("References" in text) == bool(alg_refs), alg_id  # the full list: docs/science.md
    assert groups["cwsc:calibrate"] == groups["cwsc:maskbykge"] == "1 Calibration"
    assert (
        groups["cwsc:train"] == groups["cwsc:learnfromrunoff"] == "2 Learning"
        and groups["cwsc:predict"] == "3 Mapping"
    )
    assert groups["cwsc:evaluate"] == groups["cwsc:evaluatecatchments"] == "4 Evaluation"
    assert groups["cwsc:info"] == "Tools"
    for alg_id in CONTRACT:  # the CWSC icon in the Toolbox and the modeler
        path = _alg(alg_id).svgIconPath()
        assert path.endswith("icon.svg") and os.path.isfile(path), alg_id
    # The Toolbox sorts groups, then algorithms, by name: the workflow's order.
    listed = sorted(CONTRACT, key=lambda a: (_alg(a).group(), _alg(a).displayName()))
    workflow = [
        "cwsc:prepare",
        "cwsc:calibrate",
        "cwsc:maskbykge",
        "cwsc:train",
        "cwsc:predict",
        "cwsc:evaluate",
    ]
    assert [a for a in listed if a in workflow] == workflow


def test_settings_registered(provider):  # noqa: ARG001
    from processing.core.ProcessingConfig import ProcessingConfig

    from cwsc_qgis import settings

    assert settings.BACKEND_PYTHON in ProcessingConfig.settings
    assert ProcessingConfig.settings[settings.DEFAULT_DEVICE].options == ["auto", "cpu", "cuda"]
    assert ProcessingConfig.settings[settings.BACKEND_PYTHON].group == provider.name()
    ProcessingConfig.setSettingValue(settings.DEFAULT_DEVICE, 1)
    try:
        assert settings.setting_default_device() == "cpu"
    finally:
        ProcessingConfig.setSettingValue(settings.DEFAULT_DEVICE, 0)
    assert settings.setting_default_device() == "auto"


def test_class_factory_init_gui_and_unload(qgis_iface, provider):  # noqa: ARG001
    from plugin_testing import PLUGIN, ensure_provider

    import cwsc_qgis

    registry = QgsApplication.processingRegistry()
    session_plugin = PLUGIN.pop("plugin", None)
    if session_plugin is not None:  # take the session's provider out while this one is in
        session_plugin.unload()
    plugin = cwsc_qgis.classFactory(qgis_iface)
    try:
        plugin.initGui()
        assert registry.providerById("cwsc") is plugin.provider
        assert registry.algorithmById("cwsc:train") is not None
        plugin.initProcessing()  # idempotent
        plugin.unload()
        assert registry.providerById("cwsc") is None
        assert registry.algorithmById("cwsc:train") is None
    finally:
        plugin.unload()
        ensure_provider()


def test_metadata():
    meta = configparser.ConfigParser()
    meta.read(ROOT / "metadata.txt", encoding="utf-8")
    general = meta["general"]
    assert general["hasProcessingProvider"] == "yes"
    assert general["qgisMinimumVersion"] == "3.22"
    assert general["supportsQt6"] == "True"
    # No placeholder contact or URLs (issue 16): email, repository and tracker come when the
    # project has them (tests/plugin/test_package.py checks the zip as the repository would).
    for key in ("name", "version", "description", "about", "author", "icon"):
        assert general.get(key), key
    assert (ROOT / general["icon"]).is_file()
    # What a user reads in the Plugin Manager: no terminal commands, every algorithm named.
    text = general["about"] + general["description"] + general["changelog"]
    assert "make " not in text and ".venv" not in text
    for name in ("Set up the backend", "Train CWSC ResNet on runoff", "Prepare forcing", "Evaluate CWSC map"):
        assert name in general["about"], name
    assert "hydrology" in general["tags"].split(",")


def test_plugin_imports_only_qgis_and_stdlib():
    import ast
    import sys

    allowed = {"qgis", "processing"} | set(sys.stdlib_module_names)
    for path in (ROOT / "cwsc_qgis").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"
            if any(n.startswith("qgis.PyQt") or n == "PyQt5" for n in names):
                pass
        assert "PyQt5" not in path.read_text(encoding="utf-8"), path


def test_without_a_backend_a_message_bar_offers_the_set_up(qgis_iface, monkeypatch):
    """After installing from the zip, before any set-up: one message with a button that opens
    Set up the backend; none once a backend is found."""
    from qgis.core import QgsProcessingException
    from qgis.gui import QgsMessageBar
    from qgis.PyQt.QtWidgets import QPushButton

    import cwsc_qgis
    from cwsc_qgis import interpreter

    bar = QgsMessageBar()  # the real widget (pytest-qgis's stand-in only takes text)
    monkeypatch.setattr(qgis_iface, "messageBar", lambda: bar)
    plugin = cwsc_qgis.classFactory(qgis_iface)
    opened = []
    monkeypatch.setattr(plugin, "_open_setup", lambda: opened.append("cwsc:setup"))
    assert plugin.offer_setup() is None  # this test environment has a backend

    def nothing():
        raise QgsProcessingException("No CWSC backend interpreter found")

    monkeypatch.setattr(interpreter, "find_backend_python", nothing)
    item = plugin.offer_setup()
    assert item is not None and "Set up the backend" in item.text()
    buttons = item.findChildren(QPushButton)
    assert [b.text() for b in buttons] == ["Set up the backend"]
    buttons[0].click()
    assert opened == ["cwsc:setup"]


def test_after_a_set_up_the_not_set_up_message_goes(qgis_iface, monkeypatch):
    """A set-up that finishes (in the Processing task's thread) takes the "not set up" message
    down at once and says which interpreter the algorithms now use: no restart."""
    import threading

    from qgis.core import QgsProcessingException
    from qgis.gui import QgsMessageBar
    from qgis.PyQt.QtCore import QCoreApplication

    import cwsc_qgis
    from cwsc_qgis import installer, interpreter

    bar = QgsMessageBar()
    monkeypatch.setattr(qgis_iface, "messageBar", lambda: bar)

    def nothing():
        raise QgsProcessingException("No CWSC backend interpreter found")

    monkeypatch.setattr(interpreter, "find_backend_python", nothing)
    plugin = cwsc_qgis.classFactory(qgis_iface)
    item = plugin.offer_setup()
    assert bar.items() == [item]
    # what cwsc:setup does when it has built and recorded the environment, from its thread
    worker = threading.Thread(target=installer.NOTICES.backend_ready.emit, args=("/opt/cwsc/bin/python",))
    worker.start()
    worker.join()
    for _ in range(20):
        QCoreApplication.processEvents()
    assert item not in bar.items()
    texts = [i.text() for i in bar.items()]
    assert any("set up" in t and "/opt/cwsc/bin/python" in t for t in texts), texts
    plugin.unload()


def test_the_workflow_model_has_a_help_button_and_says_where_its_file_is(provider):  # noqa: ARG001
    """Its Help button opens the workflow page of the shipped site; its help names the menu and
    the .model3 file to open in the graphical modeler."""
    from cwsc_qgis import settings

    model = _alg("cwsc:workflow")
    url = model.helpUrl()  # in this checkout: the site make docs built
    assert url.startswith("file://") and url.endswith("/workflow.html"), url
    assert Path(url[len("file://") :]).is_file()
    text = model.shortHelpString()
    path = settings.resource_path("models", "cwsc_workflow.model3")
    assert "Graphical Modeler" in text and path in text and os.path.isfile(path)
    assert "<br" not in text and "\n" not in text


def test_a_parameter_is_advanced_in_every_dialog_or_in_none(provider):  # noqa: ARG001
    """The same parameter (MODELS, "Water balance models") sits in the same place in every
    dialog that has it: among the main inputs or under Advanced, never both."""
    import collections

    from qgis.core import QgsProcessingParameterDefinition

    where = collections.defaultdict(set)
    for alg in provider.algorithms():
        if not hasattr(alg, "COMMAND"):
            continue
        for d in alg.parameterDefinitions():
            where[d.name()].add(bool(d.flags() & QgsProcessingParameterDefinition.FlagAdvanced))
    assert where["MODELS"] == {False}

"""What the algorithm dialogs show, built offscreen as QGIS 3.22 builds them: the decimals of
every double parameter (QGIS's default is six: 0.750000), and the inputs of a normal run
outside the Advanced section."""

import re

import pytest
from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingParameterNumber
from qgis.gui import QgsGui, QgsProcessingGui
from qgis.PyQt.QtWidgets import QDoubleSpinBox

from cwsc_qgis.algorithms.base import set_decimals
from cwsc_qgis.compat import DOUBLE, FLAG_ADVANCED


def _cwsc_algorithms():
    return [
        a
        for a in QgsApplication.processingRegistry().providerById("cwsc").algorithms()
        if hasattr(a, "COMMAND")
    ]


def _doubles(alg):
    return [
        d
        for d in alg.parameterDefinitions()
        if isinstance(d, QgsProcessingParameterNumber) and d.dataType() == DOUBLE
    ]


def test_every_double_parameter_shows_the_decimals_it_needs(provider, qgis_app):  # noqa: ARG001
    """The metadata QGIS 3.22 reads ({"widget_wrapper": {"decimals": N}}) is set on every
    double parameter, and the spin box QGIS builds for it honours it: 0.75, not 0.750000."""
    context = QgsProcessingContext()
    seen = {}
    for alg in _cwsc_algorithms():
        for d in _doubles(alg):
            wanted = d.metadata()["widget_wrapper"]["decimals"]
            assert 2 <= wanted <= 4, (alg.id(), d.name())
            wrapper = QgsGui.processingGuiRegistry().createParameterWidgetWrapper(
                d, QgsProcessingGui.Standard
            )
            widget = wrapper.createWrappedWidget(context)
            spin = widget if isinstance(widget, QDoubleSpinBox) else widget.findChild(QDoubleSpinBox)
            assert spin is not None, (alg.id(), d.name())
            assert spin.decimals() == wanted, (alg.id(), d.name(), spin.decimals())
            if d.defaultValue() is not None:
                wrapper.setWidgetValue(d.defaultValue(), context)
                assert not re.search(r"\.\d*000$", spin.text()), (alg.id(), d.name(), spin.text())
            seen[d.name()] = (wanted, spin.text())
    assert seen["CALIBRATION_FRACTION"] == (2, "0.75")
    assert seen["MODEL_KGE_MARGIN"] == (2, "0.02")
    assert seen["IDENTIFIABILITY_TOLERANCE"][0] == 4  # its minimum is 0.0001


@pytest.mark.parametrize(
    ("default", "minimum", "decimals"),
    [(0.75, 0.05, 2), (0.0, -1e300, 2), (0.01, 0.0001, 4), (None, None, 2), (1e-7, 0.0, 4)],
)
def test_decimals_follow_the_default_and_the_bounds(default, minimum, decimals):
    kwargs = {"type": DOUBLE, "defaultValue": default, "optional": default is None}
    if minimum is not None:
        kwargs["minValue"] = minimum
    param = set_decimals(QgsProcessingParameterNumber("X", "x", **kwargs))
    assert param.metadata()["widget_wrapper"]["decimals"] == decimals
    # a number given in the metadata stays
    param.setMetadata({"widget_wrapper": {"decimals": 1}})
    assert set_decimals(param).metadata()["widget_wrapper"]["decimals"] == 1


def test_a_normal_evaluate_run_needs_nothing_from_the_advanced_section(provider):  # noqa: ARG001
    alg = QgsApplication.processingRegistry().algorithmById("cwsc:evaluate")
    for name in ("CWSC", "REFERENCE", "PRECIPITATION", "PET", "RUNOFF", "DETAILS", "LABELS", "MODEL"):
        assert not alg.parameterDefinition(name).flags() & FLAG_ADVANCED, name


def _shown_layers(alg_id, active):
    """What each raster layer input of ``alg_id``'s dialog shows when it opens, built as
    QGIS 3.22's ParametersPanel builds it (a fresh instance, the active layer in the widget
    context): {name: (widget value, combo box text)}."""
    from qgis.core import QgsProcessingParameterRasterLayer, QgsProject
    from qgis.gui import QgsProcessingParameterWidgetContext
    from qgis.PyQt.QtWidgets import QComboBox

    alg = QgsApplication.processingRegistry().createAlgorithmById(alg_id)
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    widget_context = QgsProcessingParameterWidgetContext()
    widget_context.setProject(QgsProject.instance())
    widget_context.setActiveLayer(active)
    shown = {}
    for d in alg.parameterDefinitions():
        if not isinstance(d, QgsProcessingParameterRasterLayer):
            continue
        wrapper = QgsGui.processingGuiRegistry().createParameterWidgetWrapper(d, QgsProcessingGui.Standard)
        wrapper.setWidgetContext(widget_context)
        widget = wrapper.createWrappedWidget(context)
        value = wrapper.widgetValue()
        layer = QgsProject.instance().mapLayer(value) if isinstance(value, str) else None
        shown[d.name()] = (
            layer.name() if layer is not None else value,
            widget.findChild(QComboBox).currentText(),
        )
    return alg, shown


@pytest.fixture()
def project_layers(data_dir):
    """The project holds the demo's names: "true CWSC (mm)" (the active layer), the monthly
    forcing, and a calibration's two outputs; removed afterwards."""
    from qgis.core import QgsProject, QgsRasterLayer

    files = {
        "true CWSC (mm)": "labels.tif",
        "precipitation (monthly)": "precipitation.tif",
        "PET (monthly)": "pet.tif",
        "runoff (monthly)": "runoff.tif",
        "CWSC labels (mm) (18:23:05)": "labels.tif",
        "Calibration KGE (18:23:05)": "kge.tif",
    }
    # Layers another test of this process left behind (an algorithm's loaded output named
    # "CWSC (mm) ...") would be picked up by name: start from an empty project.
    QgsProject.instance().removeAllMapLayers()
    layers = {}
    for name, file in files.items():
        layers[name] = QgsRasterLayer(str(data_dir / file), name)
        assert layers[name].isValid(), name
        QgsProject.instance().addMapLayer(layers[name])
    yield layers
    QgsProject.instance().removeMapLayers([layer.id() for layer in layers.values()])


def test_dialogs_show_the_layer_named_for_each_input_not_the_active_layer(provider, project_layers):  # noqa: ARG001
    """#37 item 15: Calibrate showed the active layer ("true CWSC") in PRECIPITATION, PET and
    RUNOFF, Mask by KGE "Calibration KGE" in both inputs: each input now shows the layer
    named for it, in every algorithm."""
    active = project_layers["true CWSC (mm)"]
    _, calibrate = _shown_layers("cwsc:calibrate", active)
    assert calibrate["PRECIPITATION"][0] == "precipitation (monthly)"
    assert calibrate["PET"][0] == "PET (monthly)"
    assert calibrate["RUNOFF"][0] == "runoff (monthly)"
    assert calibrate["TEMPERATURE"][0] is None  # optional, and no layer is named for it
    _, mask = _shown_layers("cwsc:maskbykge", active)
    assert mask["LABELS"][0] == "CWSC labels (mm) (18:23:05)"
    assert mask["KGE"][0] == "Calibration KGE (18:23:05)"
    _, evaluate = _shown_layers("cwsc:evaluate", active)
    assert evaluate["REFERENCE"][0] == "true CWSC (mm)"
    assert evaluate["PRECIPITATION"][0] == "precipitation (monthly)"


def test_a_required_input_without_a_layer_named_for_it_is_shown_empty_and_refused_with_its_name(
    provider,  # noqa: ARG001
    project_layers,
):
    """No layer named for an input: the dialog shows it empty (not the active layer), and a
    run from there is refused naming the input; qgis_process and scripts keep no default."""
    from qgis.core import QgsProject

    QgsProject.instance().removeMapLayer(project_layers.pop("runoff (monthly)").id())
    QgsProject.instance().removeMapLayer(project_layers.pop("Calibration KGE (18:23:05)").id())
    active = project_layers["true CWSC (mm)"]
    for alg_id, name in (("cwsc:calibrate", "RUNOFF"), ("cwsc:maskbykge", "KGE"), ("cwsc:evaluate", "CWSC")):
        alg, shown = _shown_layers(alg_id, active)
        value, text = shown[name]
        assert not value.strip() and not text.strip(), (alg_id, name, shown[name])
        assert alg.parameterDefinition(name).defaultValue() is None
        ok, message = alg.checkParameterValues({name: value}, QgsProcessingContext())
        assert not ok and message.endswith("({}): choose a raster layer or file".format(name)), message

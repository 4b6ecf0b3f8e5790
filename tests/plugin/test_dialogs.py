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

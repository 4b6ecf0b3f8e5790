"""cwsc:maskbykge - keep the CWSC labels whose calibration KGE exceeds a threshold."""

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from ..compat import DOUBLE
from ..glossary import term
from .base import CwscAlgorithm, tr

#: The backend's default (cwsc/hydro/options.py; the contract test holds them equal).
EXCLUDE_FLAGS = 1 | 64 | 128
#: The quality flags in the order of their bits (1, 2, ..., 128: cwsc/hydro/options.py FLAG_BITS).
FLAG_NAMES = [
    "sc at a bound of its range",
    "models disagree on sc (factor > 1.5)",
    "fewer than 24 calibration months",
    "identifiable range wider than the label",
    "store emptied in > 10 % of months (conserving)",
    "snowy (cold months wet) but no temperature given",
    "label rests on a model evaporating above PET",
    "forcing does not balance (Q > P or P - Q > PET)",
]


def bits_to_choices(mask):
    return [i for i in range(len(FLAG_NAMES)) if int(mask) & (1 << i)]


def _as_mask(value):
    """An integer bit mask given as such (qgis_process ``EXCLUDE_FLAGS=9``, a script's 9),
    else None: a list of choices, as the dialog and the modeler give."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


class FlagsParameter(QgsProcessingParameterEnum):
    """The quality flags as check boxes, whose value still reaches the backend as the bit
    mask; an integer (the bit mask, as before) is accepted too."""

    def clone(self):
        optional = bool(self.flags() & QgsProcessingParameterDefinition.FlagOptional)
        copy = FlagsParameter(
            self.name(), self.description(), self.options(), True, self.defaultValue(), optional
        )
        copy.setFlags(self.flags())
        return copy

    def checkValueIsAcceptable(self, value, context=None):  # noqa: N802
        mask = _as_mask(value)
        if mask is not None:
            return 0 <= mask < (1 << len(FLAG_NAMES))
        return super().checkValueIsAcceptable(value, context)


class MaskByKgeAlgorithm(CwscAlgorithm):
    ALG_NAME = "maskbykge"
    DISPLAY_NAME = "Mask labels by KGE"
    GROUP = "calibration"
    COMMAND = "mask"
    TAGS = ("KGE", "mask", "quality", "labels")
    STYLES = {"OUTPUT": "cwsc"}
    NUMBERS = {"KEPT_CELLS": "kept_cells", "MASKED_CELLS": "masked_cells"}
    DETAILS = """
<p><b>Step 1b of the CWSC workflow.</b> Keeps the CWSC labels of the cells whose calibration
KGE (Gupta et al. 2009) is above <b>THRESHOLD</b> (default 0.0, the KGE of the mean flow
benchmark is -0.41) and whose quality flags (band 3 of the labels) are none of those ticked in
<b>EXCLUDE_FLAGS</b> (default: sc at a bound of its range, a censored value rather than an
estimate; a label resting on a model that evaporates above PET; forcing that cannot balance:
in the last two a model fits by compensating for the forcing; labels without a flags band are
masked by KGE only), and sets every other cell to nodata, so the network trains only on
labels the models could explain. From qgis_process or a script the flags can also be given
as the bit mask of band 3 (1, 2, 4, ..., 128; e.g. 9 = 1 + 8; the default is 193 = 1 + 64 +
128).</p>
<p><b>Inputs</b>: <b>LABELS</b> (the CWSC output of <i>Calibrate models per cell</i>, mm;
every band is masked) and <b>KGE</b> (its KGE output), on the same grid.</p>
<p><b>Outputs</b>: <b>OUTPUT</b>: masked labels in mm (nodata -9999); numbers
<b>KEPT_CELLS</b> and <b>MASKED_CELLS</b> (of which the log says how many by KGE and how many
by flags).</p>
<p>Next step: <i>Train CWSC ResNet</i> (or give the KGE raster to the training directly).</p>
"""
    HELP = """
<p>Keeps the CWSC labels of the cells whose calibration KGE is above <b>THRESHOLD</b> and whose
quality flags are none of those ticked in <b>EXCLUDE_FLAGS</b>; every other cell becomes
nodata, so the network trains only on labels the models could explain.</p>
<p><b>Inputs</b>: <b>LABELS</b> and <b>KGE</b>, the two outputs of <i>Calibrate models per cell</i> (given the wrong way round, they are refused).</p>
<p><b>Outputs</b>: <b>OUTPUT</b> (masked labels, mm); <b>KEPT_CELLS</b>, <b>MASKED_CELLS</b>.</p>
<p>From qgis_process the flags can also be the bit mask of band 3 (e.g. 9 = 1 + 8).</p>
"""
    REFS = ("gupta2009",)
    #: the calibration's labels, not an earlier mask's
    LAYER_NAMES = {"LABELS": ("CWSC labels",)}

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer("LABELS", tr("CWSC labels (mm)")))
        self.addParameter(QgsProcessingParameterRasterLayer("KGE", term("KGE")))
        self.addParameter(
            QgsProcessingParameterNumber(
                "THRESHOLD",
                tr("KGE threshold (cells with KGE above it are kept)"),
                type=DOUBLE,
                defaultValue=0.0,
            )
        )
        self.addParameter(
            FlagsParameter(
                "EXCLUDE_FLAGS",
                tr("Quality flags to exclude"),
                [tr(n) for n in FLAG_NAMES],
                True,
                bits_to_choices(EXCLUDE_FLAGS),
                True,
            )
        )
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", tr("Masked CWSC labels (mm)")))
        self.addOutput(QgsProcessingOutputNumber("KEPT_CELLS", tr("Cells kept")))
        self.addOutput(QgsProcessingOutputNumber("MASKED_CELLS", tr("Cells masked")))

    def exclude_flags(self, parameters, context):
        """The bit mask: from an integer as given, else from the ticked flags."""
        mask = _as_mask(parameters.get("EXCLUDE_FLAGS"))
        if mask is not None:
            return mask
        return sum(1 << i for i in self.parameterAsEnums(parameters, "EXCLUDE_FLAGS", context))

    def build(self, parameters, context, feedback):
        outputs = {"OUTPUT": self.output_raster(parameters, "OUTPUT", context)}
        args = [
            "--labels",
            self.raster_path(parameters, "LABELS", context, feedback),
            "--kge",
            self.raster_path(parameters, "KGE", context, feedback),
            "--threshold",
            repr(self.parameterAsDouble(parameters, "THRESHOLD", context)),
            "--exclude-flags",
            str(self.exclude_flags(parameters, context)),
            "--out",
            outputs["OUTPUT"],
        ]
        return args, outputs

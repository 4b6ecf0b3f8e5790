"""cwsc:maskbykge - keep the CWSC labels whose calibration KGE exceeds a threshold."""

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from ..compat import DOUBLE, INTEGER
from .base import CwscAlgorithm, tr

#: The backend's default (cwsc/hydro/options.py; the contract test holds them equal).
EXCLUDE_FLAGS = 1


class MaskByKgeAlgorithm(CwscAlgorithm):
    ALG_NAME = "maskbykge"
    DISPLAY_NAME = "Mask labels by KGE"
    GROUP = "calibration"
    COMMAND = "mask"
    TAGS = ("KGE", "mask", "quality", "labels")
    STYLES = {"OUTPUT": "cwsc"}
    NUMBERS = {"KEPT_CELLS": "kept_cells", "MASKED_CELLS": "masked_cells"}
    HELP = """
<p><b>Step 1b of the CWSC workflow.</b> Keeps the CWSC labels of the cells whose calibration
KGE (Gupta et al. 2009) is above <b>THRESHOLD</b> (default 0.0, the KGE of the mean flow
benchmark is -0.41) and whose quality flags (band 3 of the labels) hold none of the bits in
<b>EXCLUDE_FLAGS</b> (default 1: labels at a bound of sc, which are censored values rather
than estimates; 0: none; 1 = sc at a bound, 2 = models disagree by more than a
factor 1.5, 4 = fewer than 24 calibration months, 8 = identifiable range wider than the
label, 16 = conserving limits in more than 10 % of months; add bits to exclude several, e.g.
9 = 1 + 8; labels without a flags band are masked by KGE only), and sets every other cell to nodata, so the network trains only on labels the
models could explain.</p>
<p><b>Inputs</b>: <b>LABELS</b> (the CWSC output of <i>Calibrate water balance models</i>, mm;
every band is masked) and <b>KGE</b> (its KGE output), on the same grid.</p>
<p><b>Outputs</b>: <b>OUTPUT</b>: masked labels in mm (nodata -9999); numbers
<b>KEPT_CELLS</b> and <b>MASKED_CELLS</b> (of which the log says how many by KGE and how many
by flags).</p>
<p>Next step: <i>Train CWSC ResNet</i> (or give the KGE raster to the training directly).</p>
"""

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer("LABELS", tr("CWSC labels (mm)")))
        self.addParameter(QgsProcessingParameterRasterLayer("KGE", tr("Calibration KGE")))
        self.addParameter(
            QgsProcessingParameterNumber(
                "THRESHOLD",
                tr("KGE threshold (cells with KGE above it are kept)"),
                type=DOUBLE,
                defaultValue=0.0,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "EXCLUDE_FLAGS",
                tr("Quality flags to exclude (bit mask, 0: none)"),
                type=INTEGER,
                defaultValue=EXCLUDE_FLAGS,
                minValue=0,
                maxValue=31,
            )
        )
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", tr("Masked CWSC labels (mm)")))
        self.addOutput(QgsProcessingOutputNumber("KEPT_CELLS", tr("Cells kept")))
        self.addOutput(QgsProcessingOutputNumber("MASKED_CELLS", tr("Cells masked")))

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
            str(self.parameterAsInt(parameters, "EXCLUDE_FLAGS", context)),
            "--out",
            outputs["OUTPUT"],
        ]
        return args, outputs

"""cwsc:demodata - write the demo region's inputs into a folder and load them as a group."""

import os

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
)

from .. import styles
from ..compat import INTEGER
from .base import CwscAlgorithm, advanced, checked_output, tr

#: The demo's layers in the order a hydrologist meets them (the first ends on top).
LAYERS = ("true_cwsc", "runoff", "pet", "precipitation", "temperature")


class DemoDataAlgorithm(CwscAlgorithm):
    ALG_NAME = "demodata"
    DISPLAY_NAME = "Create demo data"
    GROUP = "tools"
    COMMAND = "demo-data"
    TAGS = ("demo", "example", "tutorial", "synthetic", "twin experiment")
    DETAILS = """
<p>Writes the demo region into a folder: Europe at 0.5 degree with a real coastline and
synthetic data (a twin experiment). Monthly precipitation, PET and runoff for 30 years, 13
predictor rasters (climate, terrain, soil, vegetation), and the true CWSC the runoff was made
with, so that every step of the workflow can be checked against the truth. The same seed
gives the same files. The folder's README.md says what each file is. <b>SNOW</b> (advanced):
the snowy variant, with monthly air temperature (temperature.tif) and runoff made through a
snow store, so that the Alps, the Carpathians and Scandinavia calibrate well only with
<b>TEMPERATURE</b>.</p>
<p>With them: <i>Calibrate water balance models</i> on precipitation, PET and runoff;
<i>Mask labels by KGE</i>; <i>Train CWSC ResNet</i> on the predictors; <i>Predict CWSC</i>;
<i>Evaluate CWSC map</i> against true_cwsc. The CWSC workflow model runs all of it at once.</p>
"""
    HELP = """
<p>Writes the demo region (Europe at 0.5 degree, synthetic data, a real coastline) into a
folder and loads it as a group: monthly precipitation, PET and runoff, 13 predictor rasters
and the true CWSC the runoff was made with, to try every step of the workflow on and check it
against the truth.</p>
<p><b>Inputs</b>: <b>OUTPUT</b> (a new folder); optionally <b>SEED</b>.</p>
<p><b>Outputs</b>: the files in the folder (a text file there says what each is);
<b>LAND_CELLS</b>.</p>
<p>Next: <i>Calibrate water balance models</i>, or the CWSC workflow model.</p>
"""
    REFS = ()
    NUMBERS = {"LAND_CELLS": "land_cells", "MONTHS": "months"}

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(
            advanced(
                QgsProcessingParameterNumber(
                    "SEED", tr("Random seed"), type=INTEGER, defaultValue=42, minValue=0
                )
            )
        )
        self.addParameter(
            advanced(
                QgsProcessingParameterBoolean(
                    "SNOW", tr("Snowy variant (adds monthly air temperature)"), defaultValue=False
                )
            )
        )
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", tr("Folder for the demo data")))
        self.addOutput(QgsProcessingOutputNumber("LAND_CELLS", tr("Land cells")))
        self.addOutput(QgsProcessingOutputNumber("MONTHS", tr("Months")))
        self.addOutput(QgsProcessingOutputString("PRECIPITATION", tr("Monthly precipitation")))
        self.addOutput(QgsProcessingOutputString("PET", tr("Monthly potential evapotranspiration")))
        self.addOutput(QgsProcessingOutputString("RUNOFF", tr("Monthly runoff")))
        self.addOutput(QgsProcessingOutputString("TRUE_CWSC", tr("True CWSC (mm)")))

    def build(self, parameters, context, feedback):
        folder = os.path.abspath(os.path.expanduser(self.parameterAsString(parameters, "OUTPUT", context)))
        # The folder itself is the output: it must be new or empty (the backend refuses a file).
        checked_output("OUTPUT", os.path.join(folder, "README.md"))
        args = ["--out", folder, "--seed", str(self.parameterAsInt(parameters, "SEED", context))]
        if self.parameterAsBool(parameters, "SNOW", context):
            args.append("--snow")
        return args, {}

    def collect(self, result, outputs, context, feedback):
        files = result.get("outputs") or {}
        folder = files.get("folder")
        rasters = [files[name] for name in LAYERS if files.get(name)] + list(files.get("predictors") or [])
        styles.load_on_completion(rasters, context, "CWSC demo data")
        metrics = result.get("metrics") or {}
        return {
            "OUTPUT": folder,
            "LAND_CELLS": metrics.get("land_cells"),
            "MONTHS": metrics.get("months"),
            "PRECIPITATION": files.get("precipitation"),
            "PET": files.get("pet"),
            "RUNOFF": files.get("runoff"),
            "TRUE_CWSC": files.get("true_cwsc"),
        }

"""cwsc:demodata - write the demo region's inputs into a folder and load them as a group."""

import os

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingUtils,
)

from .. import styles
from ..compat import INTEGER
from .base import CwscAlgorithm, advanced, checked_output, tr

#: The demo's layers in the order a hydrologist meets them (the first ends on top), with
#: their layer names: the monthly forcing is named apart from the predictors of the same
#: quantity (annual means), which sit in a subgroup of their own.
LAYERS = (
    ("gauges", "gauges (catchments, G01-G12)"),
    ("true_cwsc", "true CWSC (mm)"),
    ("runoff", "runoff (monthly)"),
    ("pet", "PET (monthly)"),
    ("precipitation", "precipitation (monthly)"),
    ("temperature", "temperature (monthly)"),
)
#: The subgroup of the predictors (one band each, the ResNet's channels).
PREDICTOR_GROUP = "predictors (annual means and maps)"
#: Predictors named as a monthly input: their layer name says they are annual means.
ANNUAL = {"precipitation", "pet", "runoff", "temperature"}
#: The default folder: one the user keeps (QGIS deletes its temporary folder on exit).
DEFAULT_FOLDER = os.path.join(os.path.expanduser("~"), "CWSC demo data")


def predictor_name(path):
    """``precipitation.tif`` -> "precipitation, annual mean (predictor)";
    ``soil_depth.tif`` -> "soil depth (predictor)"."""
    stem = os.path.splitext(os.path.basename(path))[0]
    words = "PET" if stem == "pet" else stem.replace("_", " ")
    return "{}{} (predictor)".format(words, ", annual mean" if stem in ANNUAL else "")


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
with, so that every step of the workflow can be checked against the truth; and 12 gauged
catchments (gauges.gpkg, field <code>gauge</code>, with their monthly runoff in gauges.csv)
for <i>Evaluate CWSC with gauges</i>. The same seed gives the same files. The folder's README.md says what each file is. <b>SNOW</b> (advanced):
the snowy variant, with monthly air temperature (temperature.tif) and runoff made through a
snow store, so that the Alps, the Carpathians and Scandinavia calibrate well only with
<b>TEMPERATURE</b>.</p>
<p>With them: <i>Calibrate models per cell</i> on precipitation, PET and runoff;
<i>Mask labels by KGE</i>; <i>Train CWSC ResNet</i> on the predictors; <i>Predict CWSC</i>;
<i>Evaluate CWSC map</i> against true_cwsc; <i>Evaluate CWSC with gauges</i> with
the gauges layer and gauges.csv. The CWSC workflow model runs all of it at once.</p>
<p>The layers load in the group <i>CWSC demo data</i>: the monthly forcing as
"precipitation (monthly)", "PET (monthly)", "runoff (monthly)", the 13 predictors in the
subgroup "predictors (annual means and maps)" (e.g. "precipitation, annual mean
(predictor)"), the true CWSC on the 0-800 mm scale and the gauges. <b>OUTPUT</b> defaults to
the folder "CWSC demo data" in your home folder, which stays after QGIS closes (a temporary
folder would not); running it again there replaces the earlier demo.</p>
"""
    HELP = """
<p>Writes the demo region (Europe at 0.5 degree, synthetic data, a real coastline) into a
folder and loads it as a group: monthly precipitation, PET and runoff, 13 predictor rasters
(a subgroup), the true CWSC the runoff was made with and 12 gauged catchments with their
runoff, to try every step of the workflow on and check it against the truth.</p>
<p><b>Inputs</b>: <b>OUTPUT</b> (default: "CWSC demo data" in your home folder, kept after
QGIS closes); optionally <b>SEED</b>.</p>
<p><b>Outputs</b>: the files in the folder (a text file there says what each is);
<b>LAND_CELLS</b>, <b>GAUGES</b>, <b>GAUGES_TABLE</b>.</p>
<p>Next: <i>Calibrate models per cell</i>, or the CWSC workflow model.</p>
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
        self.addParameter(
            QgsProcessingParameterFolderDestination(
                "OUTPUT", tr("Folder for the demo data (kept after QGIS closes)"), defaultValue=DEFAULT_FOLDER
            )
        )
        self.addOutput(QgsProcessingOutputNumber("LAND_CELLS", tr("Land cells")))
        self.addOutput(QgsProcessingOutputNumber("MONTHS", tr("Months")))
        self.addOutput(QgsProcessingOutputString("PRECIPITATION", tr("Monthly precipitation")))
        self.addOutput(QgsProcessingOutputString("PET", tr("Monthly potential evapotranspiration")))
        self.addOutput(QgsProcessingOutputString("RUNOFF", tr("Monthly runoff")))
        self.addOutput(QgsProcessingOutputString("TRUE_CWSC", tr("True CWSC (mm)")))
        self.addOutput(QgsProcessingOutputString("GAUGES", tr("Gauged catchments (polygons)")))
        self.addOutput(
            QgsProcessingOutputString("GAUGES_TABLE", tr("Gauged catchments' monthly runoff (CSV)"))
        )

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
        predictors = list(files.get("predictors") or [])
        layers = [files[name] for name, _ in LAYERS if files.get(name)] + predictors
        names = {files[name]: label for name, label in LAYERS if files.get(name)}
        names.update({path: predictor_name(path) for path in predictors})
        qmls = {}
        if files.get("true_cwsc"):  # on the 0-800 mm scale of every CWSC map
            target = QgsProcessingUtils.generateTempFilename("true_cwsc.qml")
            qmls[files["true_cwsc"]] = styles.shared_scale_style("cwsc", target)
        styles.load_on_completion(
            layers,
            context,
            "CWSC demo data",
            names=names,
            subgroups={path: PREDICTOR_GROUP for path in predictors},
            qmls=qmls,
        )
        metrics = result.get("metrics") or {}
        return {
            "OUTPUT": folder,
            "LAND_CELLS": metrics.get("land_cells"),
            "MONTHS": metrics.get("months"),
            "PRECIPITATION": files.get("precipitation"),
            "PET": files.get("pet"),
            "RUNOFF": files.get("runoff"),
            "TRUE_CWSC": files.get("true_cwsc"),
            "GAUGES": files.get("gauges"),
            "GAUGES_TABLE": files.get("gauges_table"),
        }

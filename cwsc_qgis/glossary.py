"""One label per parameter name, the same in every dialog (the contract test checks it).

Labels say what a thing is in a hydrologist's words, with its unit; QGIS adds "[optional]"
itself, so labels never say it. Parameters whose role differs between algorithms (an
algorithm's own OUTPUT, its report, the labels or model it reads) keep their own labels.
"""

from qgis.PyQt.QtCore import QCoreApplication

LABELS = {
    "PRECIPITATION": "Monthly precipitation",
    "PET": "Monthly potential evapotranspiration",
    "RUNOFF": "Monthly runoff",
    "TEMPERATURE": "Monthly air temperature (adds a snow store)",
    "PREDICTORS": "Predictor rasters (one channel per band)",
    "KGE": "Calibration KGE",
    "TEST_FRACTION": "Fraction of the cells held out for the test",
    "SPLIT": "Held-out cells",
    "BLOCK_SIZE": "Spatial block size (cells per side)",
    "BATCH_SIZE": "Cells per step",
    "EPOCHS": "Epochs (at most)",
    "BLOCKS": "Residual blocks per stage",
    "WIDTHS": "Stage widths (e.g. 16,32,128)",
    "CALIBRATION_FRACTION": "Fraction of the months used for calibration",
    "EXTENT": "Extent (empty: the whole grid)",
    "MODEL_KGE_MARGIN": "KGE margin of the models in the label",
    "CWSC": "CWSC map (mm)",
    "MODELS": "Water balance models",
    "OBJECTIVE": "Objective function",
    "RESTARTS": "SCE-UA restarts per cell",
    "MAX_EVALUATIONS": "Evaluations per SCE-UA run (at most)",
    "SEED": "Random seed",
}

#: Parameter names whose label may differ from one algorithm to another (another role).
#: RUNOFF_UNITS: the units of a runoff raster (auto: as the file says) in most dialogs, the units
#: of the runoff column of a gauge table in cwsc:evaluatecatchments.
ROLES = {"OUTPUT", "OUTPUT_REPORT", "LABELS", "MODEL", "RUNOFF_UNITS"}


def term(name):
    return QCoreApplication.translate("CWSC", LABELS[name])

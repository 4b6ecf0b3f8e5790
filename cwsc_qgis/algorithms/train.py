"""cwsc:train - train the CWSC ResNet on spatial patches of predictor rasters."""

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ..compat import DOUBLE, INTEGER, TYPE_RASTER
from ..glossary import term
from .base import (
    BATCH_SIZE_DEFAULT,
    EPOCHS_DEFAULT,
    POSITION_MIN_CELLS,
    SEED_RECIPE_BATCH_SIZE,
    SEED_RECIPE_EPOCHS,
    CwscAlgorithm,
    advanced,
    device_parameter,
    extent_parameter,
    tr,
)

SPLITS = ["random", "blocks"]
RECIPES = ["default", "seed"]
#: POSITION's options -> the backend's arguments: automatic (the backend decides), yes, no.
POSITION_ARGS = ([], ["--position"], ["--no-position"])
MODEL_FILTER = "CWSC model files (*.pt)"
HTML_FILTER = "HTML files (*.html)"


class TrainAlgorithm(CwscAlgorithm):
    ALG_NAME = "train"
    DISPLAY_NAME = "Train CWSC ResNet"
    GROUP = "learning"
    COMMAND = "train"
    TAGS = ("deep learning", "ResNet", "neural network", "machine learning", "PyTorch", "training")
    NUMBERS = {
        "TEST_R2": "test_r2",
        "TEST_R2_NETWORK": "test_r2_network",
        "TEST_R2_BASELINE": "test_r2_baseline",
        "TEST_RMSE": "test_rmse",
        "TEST_KGE": "test_kge",
        "TRAIN_SAMPLES": "train_samples",
        "TEST_SAMPLES": "test_samples",
    }
    DETAILS = """
<p><b>Step 2 of the CWSC workflow.</b> Trains a deep residual network (ResNet, He et al.
2016) that maps a square patch of predictor rasters around a cell to the cell's CWSC label
(Xie et al.), so CWSC can be predicted where no runoff was observed.</p>
<p><b>Inputs</b>: <b>PREDICTORS</b>: the predictor rasters (climate, terrain, soil,
vegetation), one channel each, in this order (predict needs the same order);
<b>LABELS</b>: the CWSC labels in mm (band 1 is used), usually masked by KGE;
<b>KGE</b> (optional) with <b>KGE_THRESHOLD</b> (0.0): only cells above it are used.
Predictors on another grid than the labels are resampled onto the labels' grid, with a warning.</p>
<p><b>Parameters</b>: <b>PATCH_SIZE</b> (5 cells, odd), <b>TEST_FRACTION</b> (0.3 of the
labelled cells held out), <b>SPLIT</b> (random cells, or spatial blocks against spatial
leakage), <b>EPOCHS</b> (40) and <b>BATCH_SIZE</b> (64, growing to 128 or 256 with
tens of thousands of training cells unless set to another number; with the seed recipe 150
and 32 unless changed), <b>RECIPE</b> (default,
or the seed paper's settings), <b>ENSEMBLE</b> (1: networks trained with different seeds;
their spread is the prediction uncertainty), <b>DEVICE</b> (auto, cpu, cuda), <b>SEED</b>
(0: same seed on CPU gives the same model). Advanced: <b>BLOCK_SIZE</b>, network
<b>BLOCKS</b> (n of 6n+2 layers) and <b>WIDTHS</b> (e.g. 16,32,128), <b>TREES</b> (on:
the model averages the network with gradient-boosted trees, see below; off: the network
alone), <b>POSITION</b> (the network also takes each cell's latitude and longitude, as
sine and cosine, so it can learn what varies with place and is not in the predictors; needs
rasters with a CRS; automatic: with 10,000 labelled cells or more, as over a continent, where
it helped, and not on a small region, where it cost accuracy).</p>
<p><b>The model</b>: two gradient-boosted trees are fitted on the network's training cells,
one on each cell's predictors and one on them and their 3 x 3 and 11 x 11 neighbourhood
means. With <b>TREES</b> on (the default) the model file keeps the one better on the
validation cells and the map is the mean of the network and those trees (half each), which
beat both on most real splits; the seed recipe holds no validation cells, so it ships the
network alone.</p>
<p><b>Outputs</b>: <b>OUTPUT_MODEL</b>: the model file (.pt, it remembers the predictors,
their order and normalisation, and the trees); <b>OUTPUT_REPORT</b>: an HTML report with loss
curves and test scatter, and whether the model beats a tree baseline; numbers <b>TEST_R2</b>
(the model's: the network averaged with the trees, or the network alone),
<b>TEST_R2_NETWORK</b> (the network alone),
<b>TEST_R2_BASELINE</b> (the test R2 of the better, on the test cells, of the two trees: the
bar the model has to clear; the report names which), <b>TEST_RMSE</b> (mm),
<b>TEST_KGE</b>, <b>TRAIN_SAMPLES</b>, <b>TEST_SAMPLES</b>.</p>
<p>Next step: <i>Predict CWSC</i> with the model file and the same predictors.</p>
"""
    HELP = """
<p>Trains the CWSC residual network on square patches of the predictor rasters around each
labelled cell, holds cells out for the test, and writes a model file for <i>Predict CWSC</i>.</p>
<p><b>Inputs</b>: <b>PREDICTORS</b> (climate, terrain, soil, vegetation; each band one channel,
in this order), <b>LABELS</b> (masked CWSC labels, mm), optionally <b>KGE</b>.</p>
<p>With <b>TREES</b> (default) the model averages the network with gradient-boosted trees
chosen on the validation cells.</p>
<p><b>Outputs</b>: <b>OUTPUT_MODEL</b> (.pt), <b>OUTPUT_REPORT</b> (HTML); <b>TEST_R2</b>,
<b>TEST_R2_NETWORK</b> (the network alone), <b>TEST_R2_BASELINE</b> (the better tree
baseline), <b>TEST_RMSE</b>.</p>
<p>Predictors on another grid than the labels are resampled onto the labels' grid, with a
warning. <b>SPLIT</b> blocks holds out whole regions, the honest test of a map.</p>
"""
    REFS = ("xie2021", "he2016")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterMultipleLayers("PREDICTORS", term("PREDICTORS"), TYPE_RASTER))
        self.addParameter(QgsProcessingParameterRasterLayer("LABELS", tr("CWSC labels (mm)")))
        self.addParameter(QgsProcessingParameterRasterLayer("KGE", term("KGE"), optional=True))
        self.addParameter(
            QgsProcessingParameterNumber(
                "KGE_THRESHOLD", tr("KGE threshold (with KGE)"), type=DOUBLE, defaultValue=0.0
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "PATCH_SIZE",
                tr("Patch size (cells, odd)"),
                type=INTEGER,
                defaultValue=5,
                minValue=1,
                maxValue=101,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "TEST_FRACTION",
                term("TEST_FRACTION"),
                type=DOUBLE,
                defaultValue=0.3,
                minValue=0.0,
                maxValue=0.9,
            )
        )
        self.addParameter(QgsProcessingParameterEnum("SPLIT", term("SPLIT"), options=SPLITS, defaultValue=0))
        self.addParameter(
            QgsProcessingParameterNumber(
                "EPOCHS",
                term("EPOCHS").format(SEED_RECIPE_EPOCHS),
                type=INTEGER,
                minValue=1,
                defaultValue=EPOCHS_DEFAULT,
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "BATCH_SIZE",
                term("BATCH_SIZE").format(SEED_RECIPE_BATCH_SIZE),
                type=INTEGER,
                minValue=2,
                defaultValue=BATCH_SIZE_DEFAULT,
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum("RECIPE", tr("Training recipe"), options=RECIPES, defaultValue=0)
        )
        self.addParameter(device_parameter(is_advanced=False))
        # Advanced, in the same order in every algorithm: the network and its split, the
        # ensemble and the seed, the data; the outputs come last.
        self.addParameter(
            advanced(
                QgsProcessingParameterNumber(
                    "BLOCK_SIZE",
                    term("BLOCK_SIZE"),
                    type=INTEGER,
                    minValue=1,
                    optional=True,
                )
            )
        )
        self.addParameter(
            advanced(
                QgsProcessingParameterNumber(
                    "BLOCKS",
                    term("BLOCKS"),
                    type=INTEGER,
                    minValue=1,
                    optional=True,
                )
            )
        )
        self.addParameter(advanced(QgsProcessingParameterString("WIDTHS", term("WIDTHS"), optional=True)))
        self.addParameter(
            advanced(
                QgsProcessingParameterNumber(
                    "ENSEMBLE", tr("Ensemble members"), type=INTEGER, defaultValue=1, minValue=1, maxValue=50
                )
            )
        )
        self.addParameter(
            advanced(
                QgsProcessingParameterBoolean(
                    "TREES", tr("Average with gradient-boosted trees"), defaultValue=True
                )
            )
        )
        self.addParameter(
            advanced(
                QgsProcessingParameterEnum(
                    "POSITION",
                    tr("Give the network each cell's latitude and longitude"),
                    options=[
                        tr("Automatic: with {:,} labelled cells or more").format(POSITION_MIN_CELLS),
                        tr("Yes"),
                        tr("No"),
                    ],
                    defaultValue=0,
                )
            )
        )
        self.addParameter(
            advanced(
                QgsProcessingParameterNumber(
                    "SEED", tr("Random seed"), type=INTEGER, defaultValue=0, minValue=0
                )
            )
        )
        # The data: the region
        self.addParameter(extent_parameter())
        self.addParameter(
            QgsProcessingParameterFileDestination("OUTPUT_MODEL", tr("Model file"), fileFilter=MODEL_FILTER)
        )
        self.addParameter(
            QgsProcessingParameterFileDestination(
                "OUTPUT_REPORT",
                tr("Training report"),
                fileFilter=HTML_FILTER,
                optional=True,
                createByDefault=True,
            )
        )
        for name, label in (
            ("TEST_R2", "Test R2"),
            ("TEST_R2_NETWORK", "Test R2 of the network alone"),
            ("TEST_R2_BASELINE", "Test R2 of a tree baseline"),
            ("TEST_RMSE", "Test RMSE (mm)"),
            ("TEST_KGE", "Test KGE"),
            ("TRAIN_SAMPLES", "Training samples"),
            ("TEST_SAMPLES", "Test samples"),
        ):
            self.addOutput(QgsProcessingOutputNumber(name, tr(label)))

    def build(self, parameters, context, feedback):
        outputs = {
            "OUTPUT_MODEL": self.output_file(parameters, "OUTPUT_MODEL", context),
            "OUTPUT_REPORT": self.output_file(parameters, "OUTPUT_REPORT", context, optional=True),
        }
        args = ["--predictors"] + self.raster_paths(parameters, "PREDICTORS", context, feedback)
        args += ["--labels", self.raster_path(parameters, "LABELS", context, feedback)]
        kge = self.raster_path(parameters, "KGE", context, feedback, optional=True)
        if kge:
            args += ["--kge", kge]
        args += [
            "--kge-threshold",
            repr(self.parameterAsDouble(parameters, "KGE_THRESHOLD", context)),
            "--patch-size",
            str(self.parameterAsInt(parameters, "PATCH_SIZE", context)),
            "--test-fraction",
            repr(self.parameterAsDouble(parameters, "TEST_FRACTION", context)),
            "--split",
            SPLITS[self.parameterAsEnum(parameters, "SPLIT", context)],
            "--recipe",
            RECIPES[self.parameterAsEnum(parameters, "RECIPE", context)],
            "--ensemble",
            str(self.parameterAsInt(parameters, "ENSEMBLE", context)),
            "--trees" if self.parameterAsBoolean(parameters, "TREES", context) else "--no-trees",
            *POSITION_ARGS[self.parameterAsEnum(parameters, "POSITION", context)],
            "--seed",
            str(self.parameterAsInt(parameters, "SEED", context)),
            "--device",
            self.device(parameters, "DEVICE", context),
            "--out-model",
            outputs["OUTPUT_MODEL"],
        ]
        # The default left in place is not passed: the seed recipe then takes its own, and
        # the default recipe's batch may grow with many training cells.
        for name, flag, default in (
            ("EPOCHS", "--epochs", EPOCHS_DEFAULT),
            ("BATCH_SIZE", "--batch-size", BATCH_SIZE_DEFAULT),
            ("BLOCK_SIZE", "--block-size", None),
            ("BLOCKS", "--blocks", None),
        ):
            value = self.optional_number(parameters, name, context)
            if value is not None and value != default:
                args += [flag, str(value)]
        widths = (self.parameterAsString(parameters, "WIDTHS", context) or "").strip()
        if widths:
            args += ["--widths", widths.replace(" ", "")]
        if outputs["OUTPUT_REPORT"]:
            args += ["--out-report", outputs["OUTPUT_REPORT"]]
        return args + self.extent_args(parameters, context), outputs

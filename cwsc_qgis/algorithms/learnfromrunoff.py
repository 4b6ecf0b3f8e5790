"""cwsc:learnfromrunoff - learn CWSC from runoff through the models (physics-guided)."""

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
    LEARN_BATCH_SIZE_DEFAULT,
    LEARN_EPOCHS_DEFAULT,
    LEARN_PRETRAIN_EPOCHS_DEFAULT,
    CwscAlgorithm,
    advanced,
    device_parameter,
    extent_parameter,
    forcing_layer_parameters,
    forcing_parameters,
    models_parameter,
    objective_parameter,
    period_parameters,
    tr,
)
from .train import HTML_FILTER, MODEL_FILTER, SPLITS

MODEL_LOSSES = ["best", "mean"]


class LearnFromRunoffAlgorithm(CwscAlgorithm):
    ALG_NAME = "learnfromrunoff"
    DISPLAY_NAME = "Train CWSC ResNet on runoff"
    GROUP = "learning"
    COMMAND = "learn"
    TAGS = ("physics-guided", "deep learning", "differentiable model", "PyTorch", "runoff")
    NUMBERS = {
        "VAL_KGE_TEST_CELLS": "val_kge_test_cells",
        "CAL_KGE_TRAIN_CELLS": "cal_kge_train_cells",
        "CAL_KGE_TEST_CELLS": "cal_kge_test_cells",
        "TRAIN_CELLS": "train_cells",
        "TEST_CELLS": "test_cells",
    }
    DETAILS = """
<p><b>The other route to a CWSC map, in one step</b> (in place of <i>Calibrate</i>, <i>Mask</i>
and <i>Train</i>): the ResNet learns, from the predictor patch of each cell, the parameters of
the water balance models (sc and the others), and is trained so that the models, run on each
cell's forcing with those parameters, reproduce the observed runoff of all training cells at
once (differentiable parameter learning, Tsai et al. 2021): sc follows the landscape, and the
held-out cells get all of each model's parameters, not only sc. The gradient flows through the
month loop of the models. First (<b>PRETRAIN_EPOCHS</b>, 100; 0 skips it) the training cells
are calibrated one by one (SCE-UA, as <i>Calibrate</i> with one restart) and the network is
pretrained on those parameters, so that learning from runoff starts where each cell's runoff
puts its parameters (from the models' initial values it did not get there: on the demo twin
(seed 7) a map R2 of 0.64 against 0.87 with the pretraining). Held-out and validation cells
are never calibrated.
Cells whose runoff over the calibration months exceeds their precipitation take no part (no
water balance makes that runoff); the log counts them.</p>
<p><b>Inputs</b>: <b>PREDICTORS</b> (as <i>Train CWSC ResNet</i>, in this order; predict needs
the same order; on another grid than the runoff they are resampled to it with a warning);
<b>PRECIPITATION</b>, <b>PET</b>, <b>RUNOFF</b> (as <i>Calibrate</i>: one band per month,
GeoTIFF or NetCDF, months and units read from the files and aligned; the same advanced
units, first-month, period and nodata overrides); <b>LABELS</b> (optional): calibrate's CWSC
labels, only to compare the learned map with them in the report.</p>
<p><b>Parameters</b>: <b>MODELS</b> (one or more of DWBM, SWBM, TVGM; default all: the map
of a cell follows the label rule on the models' fits, the models within
<b>MODEL_KGE_MARGIN</b> (0.02) of the best fit enter its CWSC); <b>OBJECTIVE</b> (KGE or NSE
over the calibration months); <b>TEST_FRACTION</b> (0.3 of the cells with runoff held out,
never seen by learning) and <b>SPLIT</b> (random cells, or spatial blocks); <b>EPOCHS</b>
(40, a maximum: learning stops when 15 % of the training cells kept for validation stop
improving) and <b>BATCH_SIZE</b> (512 cells per step; fewer training cells: all in each step); <b>PRETRAIN_EPOCHS</b> (100, see
above); <b>DEVICE</b> (auto, cpu, cuda);
advanced: <b>FORMULATION</b>, <b>WARMUP_MONTHS</b> (simulated, not scored; default
min(n/8, 24)), <b>CALIBRATION_FRACTION</b> (0.75: the first 75 % of the months are learned
from, the rest validate), <b>MODEL_LOSS</b> (best: a soft minimum over the models, so that
each model only has to fit the cells it can fit; mean), <b>SHARED_SC</b> (off: each model
has its own sc, as in calibrate; on: one sc for all models, which differ in their other
parameters only; on the demo twin, whose models share one true sc, this maps it better),
<b>PATCH_SIZE</b> (11),
<b>BLOCK_SIZE</b>, <b>CHECKPOINT_MONTHS</b> (0: keep every month for the backward pass;
a number: recompute in blocks of that many months, less memory), <b>SEED</b> (0).</p>
<p><b>Outputs</b>: <b>OUTPUT_MODEL</b>: the model file (.pt), read by <i>Predict CWSC</i> like
a trained one: its map has the joint CWSC in band 1 and each model's sc in the next bands;
<b>OUTPUT_REPORT</b>: an HTML report with the learning curves, maps of the KGE of training
and held-out cells over the calibration and validation months, the distribution of the
learned sc and, with LABELS, the map against the labels; numbers
<b>VAL_KGE_TEST_CELLS</b> (median KGE over the validation months of the held-out cells: the
honest score), <b>CAL_KGE_TRAIN_CELLS</b>, <b>CAL_KGE_TEST_CELLS</b>, <b>TRAIN_CELLS</b>,
<b>TEST_CELLS</b>. The outputs replace existing files only when the run succeeds.</p>
<p>See "Learning from runoff through the models" on the science page for when this route or the
label route maps CWSC better.</p>
"""
    HELP = """
<p>Learns CWSC from runoff through the models (physics-guided): the network outputs every
model's parameters per cell, and its loss is the models' fit to the observed runoff. The
training cells are first calibrated and the network pretrained on them.</p>
<p><b>Inputs</b>: <b>PREDICTORS</b>, <b>PRECIPITATION</b>, <b>PET</b>, <b>RUNOFF</b>
(mm/month); optionally <b>TEMPERATURE</b> (a snow store ahead of the models) and <b>LABELS</b>
to compare with.</p>
<p><b>Outputs</b>: <b>OUTPUT_MODEL</b> (for <i>Predict CWSC</i>: the map and each model's
sc), <b>OUTPUT_REPORT</b>; validation KGE of the held-out cells.</p>
<p>It writes a model file, not a map: run <i>Predict CWSC</i> with it for the map. On a
2-core CPU the demo region (2,298 cells, 30 years) takes about 3 minutes when the CPU is free
and two to three times that on a busy one, more with more cells (the progress shows the
stage: calibrating, pretraining, learning); a GPU is much faster.</p>
"""
    REFS = ("tsai2021", "xie2021")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterMultipleLayers("PREDICTORS", term("PREDICTORS"), TYPE_RASTER))
        for param in forcing_layer_parameters():
            self.addParameter(param)
        self.addParameter(models_parameter())
        self.addParameter(objective_parameter())
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
                "EPOCHS", term("EPOCHS"), type=INTEGER, minValue=1, defaultValue=LEARN_EPOCHS_DEFAULT
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "BATCH_SIZE",
                term("BATCH_SIZE"),
                type=INTEGER,
                minValue=2,
                defaultValue=LEARN_BATCH_SIZE_DEFAULT,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "PRETRAIN_EPOCHS",
                tr("Pretraining epochs (0: none)"),
                type=INTEGER,
                minValue=0,
                defaultValue=LEARN_PRETRAIN_EPOCHS_DEFAULT,
            )
        )
        self.addParameter(device_parameter(is_advanced=False))
        self.addParameter(
            QgsProcessingParameterRasterLayer("LABELS", tr("CWSC labels to compare with"), optional=True)
        )
        # Advanced, in the same order in every algorithm: the models and the label rule, the
        # network and its split, the data, computing; the outputs come last.
        for param in period_parameters():
            self.addParameter(param)
        self.addParameter(
            advanced(
                QgsProcessingParameterNumber(
                    "MODEL_KGE_MARGIN",
                    term("MODEL_KGE_MARGIN"),
                    type=DOUBLE,
                    defaultValue=0.02,
                    minValue=0.0,
                    optional=True,
                )
            )
        )
        self.addParameter(
            advanced(
                QgsProcessingParameterEnum(
                    "MODEL_LOSS",
                    tr("How the models' losses of a cell combine"),
                    options=MODEL_LOSSES,
                    defaultValue=0,
                )
            )
        )
        self.addParameter(
            advanced(
                QgsProcessingParameterBoolean(
                    "SHARED_SC",
                    tr("One sc shared by every model"),
                    defaultValue=False,
                )
            )
        )
        self.addParameter(
            advanced(
                QgsProcessingParameterNumber(
                    "PATCH_SIZE",
                    tr("Patch size (cells, odd)"),
                    type=INTEGER,
                    defaultValue=11,
                    minValue=1,
                    maxValue=101,
                )
            )
        )
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
                    "SEED", tr("Random seed"), type=INTEGER, defaultValue=0, minValue=0
                )
            )
        )
        # The data: forcing overrides, period and region
        for param in forcing_parameters():
            self.addParameter(param)
        self.addParameter(extent_parameter())
        # Computing: memory of the backward pass
        self.addParameter(
            advanced(
                QgsProcessingParameterNumber(
                    "CHECKPOINT_MONTHS",
                    tr("Months per recomputed block (0: keep all)"),
                    type=INTEGER,
                    defaultValue=0,
                    minValue=0,
                )
            )
        )
        self.addParameter(
            QgsProcessingParameterFileDestination("OUTPUT_MODEL", tr("Model file"), fileFilter=MODEL_FILTER)
        )
        self.addParameter(
            QgsProcessingParameterFileDestination(
                "OUTPUT_REPORT",
                tr("Learning report"),
                fileFilter=HTML_FILTER,
                optional=True,
                createByDefault=True,
            )
        )
        for name, label in (
            ("VAL_KGE_TEST_CELLS", "Median KGE, validation months, held-out cells"),
            ("CAL_KGE_TRAIN_CELLS", "Median KGE, calibration months, training cells"),
            ("CAL_KGE_TEST_CELLS", "Median KGE, calibration months, held-out cells"),
            ("TRAIN_CELLS", "Training cells"),
            ("TEST_CELLS", "Held-out cells"),
        ):
            self.addOutput(QgsProcessingOutputNumber(name, tr(label)))

    def build(self, parameters, context, feedback):
        outputs = {
            "OUTPUT_MODEL": self.output_file(parameters, "OUTPUT_MODEL", context),
            "OUTPUT_REPORT": self.output_file(parameters, "OUTPUT_REPORT", context, optional=True),
        }
        args = ["--predictors"] + self.raster_paths(parameters, "PREDICTORS", context, feedback)
        args += self.forcing_layer_args(parameters, context, feedback)
        labels = self.raster_path(parameters, "LABELS", context, feedback, optional=True)
        if labels:
            args += ["--labels", labels]
        args += self.model_args(parameters, context)
        args += [
            "--model-loss",
            MODEL_LOSSES[self.parameterAsEnum(parameters, "MODEL_LOSS", context)],
            "--patch-size",
            str(self.parameterAsInt(parameters, "PATCH_SIZE", context)),
            "--test-fraction",
            repr(self.parameterAsDouble(parameters, "TEST_FRACTION", context)),
            "--split",
            SPLITS[self.parameterAsEnum(parameters, "SPLIT", context)],
            "--epochs",
            str(self.parameterAsInt(parameters, "EPOCHS", context)),
            "--batch-size",
            str(self.parameterAsInt(parameters, "BATCH_SIZE", context)),
            "--pretrain-epochs",
            str(self.parameterAsInt(parameters, "PRETRAIN_EPOCHS", context)),
            "--checkpoint-months",
            str(self.parameterAsInt(parameters, "CHECKPOINT_MONTHS", context)),
            "--seed",
            str(self.parameterAsInt(parameters, "SEED", context)),
            "--device",
            self.device(parameters, "DEVICE", context),
            "--out-model",
            outputs["OUTPUT_MODEL"],
        ]
        args += self.optional_args(
            parameters,
            context,
            (("BLOCK_SIZE", "--block-size"), ("BLOCKS", "--blocks")),
        )
        args += self.kge_margin_args(parameters, context)
        widths = (self.parameterAsString(parameters, "WIDTHS", context) or "").strip()
        if widths:
            args += ["--widths", widths.replace(" ", "")]
        if self.parameterAsBool(parameters, "SHARED_SC", context):
            args += ["--shared-sc"]
        if outputs["OUTPUT_REPORT"]:
            args += ["--out-report", outputs["OUTPUT_REPORT"]]
        return (
            args + self.forcing_args(parameters, context) + self.extent_args(parameters, context)
        ), outputs

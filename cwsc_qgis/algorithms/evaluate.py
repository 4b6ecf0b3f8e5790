"""cwsc:evaluate - compare a CWSC map with a reference and with free calibration."""

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
)

from ..compat import INTEGER
from ..glossary import term
from .base import (
    MODELS,
    CwscAlgorithm,
    advanced,
    device_parameter,
    forcing_parameters,
    models_parameter,
    optimiser_parameters,
    seed_parameter,
    temperature_parameter,
    tr,
)


class EvaluateAlgorithm(CwscAlgorithm):
    ALG_NAME = "evaluate"
    DISPLAY_NAME = "Evaluate CWSC map"
    GROUP = "evaluation"
    COMMAND = "evaluate"
    TAGS = ("evaluation", "validation", "KGE", "simulation")
    NUMBERS = {
        "R2_REFERENCE": "r2_reference",
        "RMSE_REFERENCE": "rmse_reference",
        "KGE_VAL_FIXED": "kge_val_fixed",
        "KGE_VAL_CONSTANT": "kge_val_constant",
        "KGE_VAL_FREE": "kge_val_free",
        "CELLS_SCORED": "cells_scored",
        "MEDIAN_KGE_FIXED": "median_kge_fixed",
        "MEDIAN_KGE_FREE": "median_kge_free",
    }
    DETAILS = """
<p><b>Step 4 of the CWSC workflow.</b> Checks a CWSC map two ways and writes an HTML report
with figures:</p>
<ul><li>against a <b>REFERENCE</b> map (optional; e.g. a root-zone storage capacity map, mm):
R2 and RMSE of the cells both maps cover;</li>
<li>with <b>PRECIPITATION</b>, <b>PET</b> and <b>RUNOFF</b> (optional, mm/month, one band per
month, at least 48 months): on a sample of cells the water balance models (Zhang et al.
2008 DWBM, SWBM, Xia TVGM) are calibrated by SCE-UA (Duan et al. 1992) on the calibration
months (the first 75 %) three ways: CWSC fixed to the map, fixed to a constant map equal to
the map's median (the null model: a map that carries no information scores no better), and
free. Each cell is scored by the KGE (Gupta et al. 2009) of the <i>validation</i> months,
which the calibration did not see, in the model(s) that make its label by the label rule
(from <b>DETAILS</b>, the details output of <i>Calibrate models per cell</i>, when
given; else by the free calibration). A run that fails counts as the worst score and is
reported. With <b>MODEL</b> (the model file of <i>Train CWSC ResNet</i>) only the network's
held-out test cells are scored. With <b>LABELS</b> (the CWSC labels output of the calibration) the
report breaks the scores down by quality flag; it always breaks them down by aridity
(PET/P below 0.75, 0.75-1.5, 1.5-3, above 3).</li></ul>
<p>Advanced: <b>MODELS</b>,
<b>RESTARTS</b>, <b>MAX_EVALUATIONS</b> (SCE-UA budget per run), <b>MAX_CELLS</b> (2000 cells sampled for the simulation check), <b>SEED</b>,
<b>DEVICE</b>.</p>
<p><b>Outputs</b>: <b>OUTPUT_REPORT</b> (HTML: the distributions, the breakdowns, and against
the reference R2, r, Spearman, bias and RMSE of the map and of the constant map); numbers
<b>KGE_VAL_FIXED</b> (median validation KGE, CWSC fixed to the map), <b>KGE_VAL_CONSTANT</b>
(the constant map), <b>KGE_VAL_FREE</b> (free calibration), <b>CELLS_SCORED</b>,
<b>R2_REFERENCE</b>, <b>RMSE_REFERENCE</b> (mm) and every other metric the backend reports.
A useful map scores clearly above the constant map, and close to free calibration.</p>
"""
    HELP = """
<p>Checks a CWSC map: its agreement with a reference map, and by simulation, the validation
KGE of the models run with sc fixed to the map against free calibration and a constant map.</p>
<p><b>Inputs</b>: <b>CWSC</b> (the map, mm); <b>REFERENCE</b> and/or <b>PRECIPITATION</b>,
<b>PET</b>, <b>RUNOFF</b> (and <b>TEMPERATURE</b>: a snow store); optionally <b>DETAILS</b>,
<b>LABELS</b>, <b>MODEL</b>.</p>
<p><b>Outputs</b>: <b>OUTPUT_REPORT</b> (HTML); <b>KGE_VAL_FIXED</b>, <b>KGE_VAL_FREE</b>,
<b>KGE_VAL_CONSTANT</b>, <b>CELLS_SCORED</b>.</p>
<p>A map in metres is converted (by its unit) or questioned (no unit, tiny values).</p>
"""
    REFS = ("xie2021", "gupta2009")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer("CWSC", tr("CWSC map (mm)")))
        self.addParameter(
            QgsProcessingParameterRasterLayer("REFERENCE", tr("Reference map (mm)"), optional=True)
        )
        self.addParameter(
            QgsProcessingParameterRasterLayer("PRECIPITATION", term("PRECIPITATION"), optional=True)
        )
        self.addParameter(QgsProcessingParameterRasterLayer("PET", term("PET"), optional=True))
        self.addParameter(QgsProcessingParameterRasterLayer("RUNOFF", term("RUNOFF"), optional=True))
        self.addParameter(temperature_parameter())
        # What a normal run reads beside the map: calibrate's details and labels, the model
        # file (then only its held-out cells are scored).
        self.addParameter(
            QgsProcessingParameterRasterLayer("DETAILS", tr("Calibration details (per model)"), optional=True)
        )
        self.addParameter(
            QgsProcessingParameterRasterLayer(
                "LABELS", tr("Calibration labels (with quality flags)"), optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterFile(
                "MODEL", tr("Model file (its test cells only)"), extension="pt", optional=True
            )
        )
        # Advanced, in the same order in every algorithm: the models, the optimiser, the
        # sample, the data, computing.
        self.addParameter(models_parameter())  # not advanced: as in every algorithm that has it
        for param in optimiser_parameters(min_evaluations=1):
            self.addParameter(param)
        self.addParameter(
            advanced(
                QgsProcessingParameterNumber(
                    "MAX_CELLS",
                    tr("Cells sampled for the simulation check"),
                    type=INTEGER,
                    defaultValue=2000,
                    minValue=1,
                )
            )
        )
        self.addParameter(seed_parameter())
        for param in forcing_parameters():
            self.addParameter(param)
        self.addParameter(device_parameter())
        self.addParameter(
            QgsProcessingParameterFileDestination(
                "OUTPUT_REPORT", tr("Evaluation report"), fileFilter="HTML files (*.html)"
            )
        )
        for name, label in (
            ("R2_REFERENCE", "R2 against the reference"),
            ("RMSE_REFERENCE", "RMSE against the reference (mm)"),
            ("KGE_VAL_FIXED", "Median validation KGE, CWSC fixed to the map"),
            ("KGE_VAL_CONSTANT", "Median validation KGE, a constant CWSC map"),
            ("KGE_VAL_FREE", "Median validation KGE, CWSC calibrated freely"),
            ("CELLS_SCORED", "Cells scored"),
            ("MEDIAN_KGE_FIXED", "Median validation KGE, CWSC fixed (as KGE_VAL_FIXED)"),
            ("MEDIAN_KGE_FREE", "Median validation KGE, free (as KGE_VAL_FREE)"),
        ):
            self.addOutput(QgsProcessingOutputNumber(name, tr(label)))

    def build(self, parameters, context, feedback):
        outputs = {"OUTPUT_REPORT": self.output_file(parameters, "OUTPUT_REPORT", context)}
        args = ["--cwsc", self.raster_path(parameters, "CWSC", context, feedback)]
        path = self.raster_path(parameters, "REFERENCE", context, feedback, optional=True)
        if path:
            args += ["--reference", path]
        args += self.forcing_layer_args(parameters, context, feedback, optional=True)
        for name, flag in (("DETAILS", "--details"), ("LABELS", "--labels")):
            path = self.raster_path(parameters, name, context, feedback, optional=True)
            if path:
                args += [flag, path]
        model = self.user_path(parameters, "MODEL", context)
        if model:
            args += ["--model", model]
        models = self.parameterAsEnums(parameters, "MODELS", context) or [0, 1, 2]
        args += [
            "--models",
            ",".join(MODELS[i] for i in sorted(set(models))),
            "--max-cells",
            str(self.parameterAsInt(parameters, "MAX_CELLS", context)),
            "--seed",
            str(self.parameterAsInt(parameters, "SEED", context)),
            "--device",
            self.device(parameters, "DEVICE", context),
            "--out-report",
            outputs["OUTPUT_REPORT"],
        ]
        args += self.optional_args(
            parameters, context, (("RESTARTS", "--restarts"), ("MAX_EVALUATIONS", "--max-evaluations"))
        )
        return args + self.forcing_args(parameters, context), outputs

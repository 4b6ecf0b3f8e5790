"""cwsc:calibrate - per-cell calibration of DWBM, SWBM and TVGM: CWSC labels and KGE."""

import glob
import os

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterString,
)

from .. import settings
from ..compat import DOUBLE, INTEGER
from ..glossary import term
from .base import (
    CwscAlgorithm,
    advanced,
    device_parameter,
    extent_parameter,
    forcing_layer_parameters,
    forcing_parameters,
    models_parameter,
    objective_parameter,
    optimiser_parameters,
    period_parameters,
    seed_parameter,
    tr,
)

#: The backend's defaults (cwsc/hydro/options.py; the contract test holds them equal).
IDENTIFIABILITY_TOLERANCE = 0.01
PROFILE_EVALUATIONS = 100


class CalibrateAlgorithm(CwscAlgorithm):
    ALG_NAME = "calibrate"
    DISPLAY_NAME = "Calibrate models per cell"
    GROUP = "calibration"
    COMMAND = "calibrate"
    TAGS = ("calibration", "SCE-UA", "KGE", "DWBM", "SWBM", "TVGM", "model")
    STYLES = {"OUTPUT_CWSC": "cwsc", "OUTPUT_KGE": "kge", "OUTPUT_DETAILS": "cwsc"}
    NUMBERS = {
        "CELLS_CALIBRATED": "cells_calibrated",
        "CELLS_KGE_POSITIVE": "cells_kge_positive",
        "MEDIAN_CWSC_MM": "median_cwsc_mm",
    }
    DETAILS = """
<p><b>Step 1 of the CWSC workflow.</b> Calibrates three monthly water balance models on every
grid cell with SCE-UA and turns the calibrated storage capacity parameter into a CWSC label
(the training target of <i>Train CWSC ResNet</i>).</p>
<p><b>Inputs</b>: <b>PRECIPITATION</b>, <b>PET</b> (potential evapotranspiration) and
<b>RUNOFF</b>: rasters with one band per month on one grid (GeoTIFF or NetCDF; a NetCDF
variable layer is read from its file, so its time axis and units are used). Each file's
months are read from the file (CF time in any calendar, GDAL NetCDF band metadata, dates
such as 2001-01 in the band descriptions) and the three are aligned on their common months;
the log says the period used and what was dropped. Units are read from the file (mm/month,
mm/day, kg m-2 s-1, m ...) and converted to mm/month with the days of each month; a file
without units is read as mm/month, and values far from what the Earth produces get a
warning. Longitudes 0 to 360 and east-to-west grids are read the right way round.
<b>TEMPERATURE</b> (optional, monthly mean air temperature in C or K on the same grid): a snow
store (McCabe and Markstrom 2007, published parameters) runs ahead of the models in the cells
where a tenth or more of the precipitation falls as snow; without it, cells whose cold months
hold much of their precipitation get quality bit 32.</p>
<p><b>Parameters</b>: <b>MODELS</b>: DWBM (Zhang et al. 2008), SWBM and TVGM (Xia), default all;
<b>OBJECTIVE</b>: KGE (Gupta et al. 2009, default) or NSE; advanced: <b>FORMULATION</b>
(conserving, default: the seed paper's equations with the water balance closed; seed: the
original code; bounded: in SWBM and TVGM evaporation at most PET and the store at most sc,
the excess running off; see the science page), <b>WARMUP_MONTHS</b> (simulated, not scored;
default min(n/8, 24)), <b>CALIBRATION_FRACTION</b> (0.75: the first 75 % of the months
calibrate, the rest validate), <b>RESTARTS</b> (independent SCE-UA runs per cell),
<b>MAX_EVALUATIONS</b>, <b>MODEL_KGE_THRESHOLD</b> (0: models above it enter the joint
label), <b>MODEL_KGE_MARGIN</b> (0.02: of those, only the models within 0.02 of the cell's best
KGE enter the label; empty, or 1 with a threshold of 0: every model above the threshold, as
in the original work; see "How the CWSC label is made" on the science page),
<b>IDENTIFIABILITY_TOLERANCE</b> (0.01: the identifiable range of sc holds the values whose
best KGE, the other parameters re-optimised, lies within 0.01 of the best),
<b>PROFILE_EVALUATIONS</b> (100 SCE-UA evaluations per point of that profile; 0: no range,
the calibration then takes about half the time), <b>SEED</b> (0),
<b>DEVICE</b> (auto, cpu, cuda); <b>PRECIPITATION_UNITS</b>, <b>PET_UNITS</b>,
<b>RUNOFF_UNITS</b> (auto: as the file says); <b>PRECIPITATION_START</b>, <b>PET_START</b>,
<b>RUNOFF_START</b> (YYYY-MM, the first month of a file that does not date its bands; when
no file is dated they are paired by position); <b>PERIOD_START</b>, <b>PERIOD_END</b>
(YYYY-MM: restrict the run); <b>PRECIPITATION_NODATA</b>, <b>PET_NODATA</b>,
<b>RUNOFF_NODATA</b>: a value to read as nodata where a file holds -999, -9999 or a similar
fill value without declaring it (such values are refused otherwise, naming the file and the
first cell; negative runoff is refused too).</p>
<p><b>Outputs</b>: <b>OUTPUT_CWSC</b>: the joint CWSC label in mm (band 1), written wherever
a model was calibrated (<i>Mask labels by KGE</i> then removes the cells whose KGE or quality
flags fail); band 2 the width in mm of the label's identifiable range (the union of the
ranges of the models that enter the label, so their disagreement counts); band 3 the quality
flags, a bit mask: 1 = sc within 1 % of a bound of its range in a model entering the label;
2 = the models entering the label disagree on sc by more than a factor 1.5; 4 = fewer than
24 valid calibration months; 8 = identifiable range wider than the label itself; 16 = the
conserving limits emptied the store in more than 10 % of the calibration months; 32 = months
with PET below 5 mm hold more than 15 % of the precipitation and no temperature was given; 64 =
the label rests on a model that evaporates more than PET in more than 10 % of the calibration
months (such models enter the label only where no model within <b>MODEL_KGE_MARGIN</b> respects
PET); 128 = the forcing cannot balance: long-term runoff above precipitation, or P - Q above
PET, by more than 10 % (the run warns with the number of cells) (a flag value is the sum of
its bits: 9 = 1 + 8). <b>OUTPUT_KGE</b>: calibration KGE of the best model
(-inf..1, used by <i>Mask labels by KGE</i>); <b>OUTPUT_DETAILS</b> (optional): per model
every parameter, the identifiable range of sc (low, high, mm) and the efficiencies (band
descriptions name them); numbers
<b>CELLS_CALIBRATED</b>, <b>CELLS_KGE_POSITIVE</b>, <b>MEDIAN_CWSC_MM</b> and, per model,
<b>MEDIAN_KGE_DWBM</b> etc. The outputs are GeoTIFF (.tif) files other than the inputs; they
are written under temporary names and replace existing files together, only when the run
succeeds (a failed or cancelled run leaves every file as it was).</p>
<p><b>Speed</b>: about 2 ms per cell and model on one CPU core (240 months, default
settings), in small C kernels the backend builds with the system C compiler on first use (a
second or two; without a compiler it runs in torch, several times slower); with
<b>DEVICE</b> cuda the models run in one Triton kernel on the GPU. The log says which. The
land cells are cut into shards of 1024 cells calibrated by as many worker processes as the
computer has cores (advanced <b>WORKERS</b>, default every core), or by the workers of a Dask
cluster (<b>DASK_SCHEDULER</b>, an address such as tcp://host:8786, or the provider setting;
see "On a cluster" in getting started); the same seed gives the same labels either way. With a
<b>WORK_DIR</b>, every finished shard is saved there and a rerun with the same inputs and
settings after a crash or a reboot continues from them; the folder is removed on success
unless <b>KEEP_WORK</b>.</p>
<p>Next step: <i>Mask labels by KGE</i>, then <i>Train CWSC ResNet</i>.</p>
"""
    HELP = """
<p>Calibrates the monthly water balance models DWBM, SWBM and TVGM on every cell with SCE-UA
against runoff. The storage capacities of the models that fit best give the CWSC label.</p>
<p><b>Inputs</b>: <b>PRECIPITATION</b>, <b>PET</b>, <b>RUNOFF</b> (mm/month, one band per
month, one grid); <b>TEMPERATURE</b> (optional: a snow store); <b>MODELS</b>.</p>
<p><b>Outputs</b>: <b>OUTPUT_CWSC</b> (label, width of its identifiable range, quality flags),
<b>OUTPUT_KGE</b>, optionally <b>OUTPUT_DETAILS</b> (every model's parameters and fits).</p>
<p>About a minute per thousand cells on a laptop's CPU (every core is used); a GPU or a Dask
cluster (<b>DASK_SCHEDULER</b>) for continents. The first months warm the stores up; the
last quarter is kept for validation.</p>
"""
    REFS = ("xie2021", "zhang2008", "duan1992", "gupta2009")

    def initAlgorithm(self, config=None):  # noqa: N802
        for param in forcing_layer_parameters():
            self.addParameter(param)
        self.addParameter(models_parameter())
        self.addParameter(objective_parameter())
        # Advanced, in the same order in every algorithm: the models and the label rule, the
        # optimiser, the data, computing; the outputs come last.
        for param in period_parameters():
            self.addParameter(param)
        self.addParameter(
            advanced(
                QgsProcessingParameterNumber(
                    "MODEL_KGE_THRESHOLD",
                    tr("KGE above which a model enters the label"),
                    type=DOUBLE,
                    defaultValue=0.0,
                )
            )
        )
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
                QgsProcessingParameterNumber(
                    "IDENTIFIABILITY_TOLERANCE",
                    tr("Identifiable range of sc: KGE distance from the best"),
                    type=DOUBLE,
                    defaultValue=IDENTIFIABILITY_TOLERANCE,
                    minValue=0.0001,
                )
            )
        )
        self.addParameter(
            advanced(
                QgsProcessingParameterNumber(
                    "PROFILE_EVALUATIONS",
                    tr("Evaluations per point of the sc profile (0: no range)"),
                    type=INTEGER,
                    defaultValue=PROFILE_EVALUATIONS,
                    minValue=0,
                )
            )
        )
        # The optimiser (SCE-UA)
        for param in optimiser_parameters():
            self.addParameter(param)
        self.addParameter(seed_parameter())
        # The data: forcing overrides, period and region
        for param in forcing_parameters():
            self.addParameter(param)
        self.addParameter(extent_parameter())
        # Computing: device, workers, cluster, resumable work folder
        self.addParameter(device_parameter())
        self.addParameter(
            advanced(
                QgsProcessingParameterNumber(
                    "WORKERS",
                    tr("Worker processes (empty: every core)"),
                    type=INTEGER,
                    minValue=1,
                    optional=True,
                )
            )
        )
        self.addParameter(
            advanced(
                QgsProcessingParameterString(
                    "DASK_SCHEDULER",
                    tr("Dask scheduler (empty: this computer)"),
                    optional=True,
                )
            )
        )
        self.addParameter(
            advanced(
                QgsProcessingParameterFile(
                    "WORK_DIR",
                    tr("Work folder to resume a stopped run"),
                    behavior=QgsProcessingParameterFile.Folder,
                    optional=True,
                )
            )
        )
        self.addParameter(
            advanced(
                QgsProcessingParameterBoolean(
                    "KEEP_WORK", tr("Keep the work folder after success"), defaultValue=False
                )
            )
        )
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT_CWSC", tr("CWSC labels (mm)")))
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT_KGE", tr("Calibration KGE")))
        self.addParameter(
            QgsProcessingParameterRasterDestination(
                "OUTPUT_DETAILS", tr("Per-model details"), optional=True, createByDefault=True
            )
        )
        for name, label in (
            ("CELLS_CALIBRATED", "Cells calibrated"),
            ("CELLS_KGE_POSITIVE", "Cells with calibration KGE > 0"),
            ("MEDIAN_CWSC_MM", "Median CWSC (mm)"),
        ):
            self.addOutput(QgsProcessingOutputNumber(name, tr(label)))

    def after_cancel(self, parameters, context, feedback):
        """Say what the work folder keeps: the shards that finished before the cancel, from
        which a rerun with the same WORK_DIR continues, or that none had (a shard is 1,024
        cells on the CPU; shards in flight are lost), so a rerun starts from the beginning."""
        root = self.user_path(parameters, "WORK_DIR", context)
        if not root:
            return
        folders = [os.path.join(root, n) for n in os.listdir(root)] if os.path.isdir(root) else []
        folders = [f for f in folders if os.path.basename(f).startswith("calibrate-") and os.path.isdir(f)]
        latest = max(folders, key=os.path.getmtime) if folders else None
        kept = len(glob.glob(os.path.join(glob.escape(latest), "shard-*.npz"))) if latest else 0
        if kept:
            feedback.pushInfo(
                tr(
                    "WORK_DIR: {} finished shard{} kept in {}; run again with the same inputs, "
                    "settings and WORK_DIR to continue from them"
                ).format(kept, "s" if kept != 1 else "", latest)
            )
        else:
            feedback.pushWarning(
                tr(
                    "WORK_DIR: no shard had finished before the cancel (a shard is 1,024 cells on "
                    "the CPU; those in flight are lost), so nothing was kept: a rerun starts from "
                    "the beginning"
                )
            )

    def build(self, parameters, context, feedback):
        outputs = {
            "OUTPUT_CWSC": self.output_raster(parameters, "OUTPUT_CWSC", context),
            "OUTPUT_KGE": self.output_raster(parameters, "OUTPUT_KGE", context),
            "OUTPUT_DETAILS": self.output_raster(parameters, "OUTPUT_DETAILS", context, optional=True),
        }
        args = self.forcing_layer_args(parameters, context, feedback) + self.model_args(parameters, context)
        args += [
            "--kge-threshold",
            repr(self.parameterAsDouble(parameters, "MODEL_KGE_THRESHOLD", context)),
            "--identifiability-tolerance",
            repr(self.parameterAsDouble(parameters, "IDENTIFIABILITY_TOLERANCE", context)),
            "--profile-evaluations",
            str(self.parameterAsInt(parameters, "PROFILE_EVALUATIONS", context)),
            "--seed",
            str(self.parameterAsInt(parameters, "SEED", context)),
            "--device",
            self.device(parameters, "DEVICE", context),
            "--out-cwsc",
            outputs["OUTPUT_CWSC"],
            "--out-kge",
            outputs["OUTPUT_KGE"],
        ]
        args += self.optional_args(
            parameters,
            context,
            (
                ("RESTARTS", "--restarts"),
                ("MAX_EVALUATIONS", "--max-evaluations"),
            ),
        )
        args += self.kge_margin_args(parameters, context)
        if outputs["OUTPUT_DETAILS"]:
            args += ["--out-details", outputs["OUTPUT_DETAILS"]]
        workers = self.optional_number(parameters, "WORKERS", context)
        if workers is not None:
            args += ["--workers", str(workers)]
        scheduler = (
            self.parameterAsString(parameters, "DASK_SCHEDULER", context).strip()
            or settings.setting_dask_scheduler()
        )
        if scheduler:
            args += ["--dask-scheduler", scheduler]
        work_dir = self.user_path(parameters, "WORK_DIR", context)
        if work_dir:
            args += ["--work-dir", work_dir]
            if self.parameterAsBool(parameters, "KEEP_WORK", context):
                args += ["--keep-work"]
        return args + self.forcing_args(parameters, context) + self.extent_args(parameters, context), outputs

"""cwsc:predict - the CWSC raster from a model file and the predictors."""

from qgis.core import (
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
)

from ..compat import INTEGER, TYPE_RASTER
from ..glossary import term
from .base import CwscAlgorithm, advanced, device_parameter, extent_parameter, tr


class PredictAlgorithm(CwscAlgorithm):
    ALG_NAME = "predict"
    DISPLAY_NAME = "Predict CWSC"
    GROUP = "mapping"
    COMMAND = "predict"
    TAGS = ("map", "prediction", "ResNet", "raster")
    STYLES = {"OUTPUT": "cwsc", "OUTPUT_UNCERTAINTY": "uncertainty", "OUTPUT_FLAGS": "bounded"}
    ON_TOP = ("OUTPUT",)
    DETAILS = """
<p><b>Step 3 of the CWSC workflow.</b> Applies a model trained by <i>Train CWSC ResNet</i> to
a patch around every cell of the predictors and writes the CWSC map in mm (Xie et al.;
ResNet, He et al. 2016).</p>
<p><b>Inputs</b>: <b>MODEL</b>: the model file (.pt; opened without running code from it);
<b>PREDICTORS</b>: the same predictor rasters, in the same order, as for training (the
model names the ones it expects when they differ); <b>DEVICE</b> (auto, cpu, cuda).
A predictor whose values lie far outside what the model saw at training (a predictor given in
another place of the list, another unit) is refused, naming the channel, the file and both
ranges; <b>ALLOW_SHIFT</b> (advanced) predicts anyway, for a region that really is unlike the
training one. A raster of 24 bands or more gets a warning: it looks like a time series, not a
predictor.</p>
<p><b>Outputs</b>: <b>OUTPUT</b>: CWSC (mm, nodata -9999) as a Cloud-Optimised GeoTIFF
(tiled, with overviews, readable over HTTP by web maps); for a model that averages the
network with gradient-boosted trees (the default of <i>Train CWSC ResNet</i>), the mean of the
two. <b>OUTPUT_UNCERTAINTY</b> (optional): the spread in mm of the predictions the map
averages, their standard deviation around the map: the network members (ENSEMBLE at
training) and, for a model with trees, the trees, each weighted as in the map (for one
network and the trees, half their difference). None for one network without trees; without
this output an ensemble's spread (ENSEMBLE &gt; 1) is band 2 of OUTPUT. A map of <i>Train CWSC ResNet</i> stays within the
range of the labels it was trained on (never below 0 mm): the log says how many cells were
raised or lowered to it, and <b>OUTPUT_FLAGS</b> (optional) which: 1 raised to the labels'
lowest value, 2 lowered to their highest, 0 within (loaded coloured: blue, red, transparent).
<b>OUTPUT_NETCDF</b> (optional): the same map as
CF-1.8 NetCDF (.nc), variable <i>cwsc</i> in mm on lat/lon (or projected x/y) coordinates
with a <i>crs</i> grid mapping, and <i>cwsc_uncertainty</i> with an ensemble, compressed:
the parameter-map format of distributed models such as mHM and Wflow.</p>
<p>Next step: <i>Evaluate CWSC map</i>.</p>
"""
    HELP = """
<p>Maps CWSC on every cell with predictors, from a model file of <i>Train CWSC ResNet</i> or
<i>Train CWSC ResNet on runoff</i>.</p>
<p><b>Inputs</b>: <b>MODEL</b> (.pt), <b>PREDICTORS</b> (the training's channels; given in
another order they are matched by name and put in the model's order).</p>
<p><b>Outputs</b>: <b>OUTPUT</b> (CWSC, mm, a cloud-optimised GeoTIFF), optionally
<b>OUTPUT_UNCERTAINTY</b> (the spread of the network members and the trees the map averages;
none for one network without trees) and a
NetCDF copy.</p>
<p>Cells whose predictors lie far outside the training's are refused unless
<b>ALLOW_SHIFT</b>; a CWSC outside the training labels' range is set to its nearest end (the
log counts those cells; <b>OUTPUT_FLAGS</b> maps them).</p>
"""
    REFS = ("xie2021", "he2016")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterFile("MODEL", tr("Model file"), extension="pt"))
        self.addParameter(QgsProcessingParameterMultipleLayers("PREDICTORS", term("PREDICTORS"), TYPE_RASTER))
        self.addParameter(device_parameter(is_advanced=False))
        self.addParameter(extent_parameter())
        self.addParameter(
            advanced(
                QgsProcessingParameterNumber(
                    "BATCH_SIZE", term("BATCH_SIZE"), type=INTEGER, minValue=1, optional=True
                )
            )
        )
        self.addParameter(
            advanced(
                QgsProcessingParameterBoolean(
                    "ALLOW_SHIFT",
                    tr("Predict even far outside the training's predictors"),
                    defaultValue=False,
                )
            )
        )
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", tr("CWSC (mm)")))
        self.addParameter(
            QgsProcessingParameterRasterDestination(
                "OUTPUT_UNCERTAINTY",
                tr("CWSC uncertainty (ensemble spread, mm)"),
                optional=True,
                createByDefault=False,
            )
        )
        self.addParameter(
            QgsProcessingParameterRasterDestination(
                "OUTPUT_FLAGS",
                tr("Cells bounded to the labels' range"),
                optional=True,
                createByDefault=False,
            )
        )
        self.addParameter(
            QgsProcessingParameterFileDestination(
                "OUTPUT_NETCDF",
                tr("CWSC as CF NetCDF (for hydrological models)"),
                fileFilter="NetCDF files (*.nc)",
                optional=True,
                createByDefault=False,
            )
        )

    def build(self, parameters, context, feedback):
        outputs = {
            "OUTPUT": self.output_raster(parameters, "OUTPUT", context),
            "OUTPUT_UNCERTAINTY": self.output_raster(
                parameters, "OUTPUT_UNCERTAINTY", context, optional=True
            ),
            "OUTPUT_NETCDF": self.output_file(parameters, "OUTPUT_NETCDF", context, optional=True),
            "OUTPUT_FLAGS": self.output_raster(parameters, "OUTPUT_FLAGS", context, optional=True),
        }
        args = ["--model", self.user_path(parameters, "MODEL", context)]
        args += ["--predictors"] + self.raster_paths(parameters, "PREDICTORS", context, feedback)
        args += ["--device", self.device(parameters, "DEVICE", context), "--out", outputs["OUTPUT"]]
        batch = self.optional_number(parameters, "BATCH_SIZE", context)
        if batch is not None:
            args += ["--batch-size", str(batch)]
        if outputs["OUTPUT_UNCERTAINTY"]:
            args += ["--out-uncertainty", outputs["OUTPUT_UNCERTAINTY"]]
        if outputs["OUTPUT_NETCDF"]:
            args += ["--out-netcdf", outputs["OUTPUT_NETCDF"]]
        if outputs["OUTPUT_FLAGS"]:
            args += ["--out-flags", outputs["OUTPUT_FLAGS"]]
        if self.parameterAsBoolean(parameters, "ALLOW_SHIFT", context):
            args += ["--allow-shift"]
        return args + self.extent_args(parameters, context), outputs

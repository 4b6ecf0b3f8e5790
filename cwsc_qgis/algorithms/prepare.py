"""cwsc:prepare - real products (GeoTIFF or NetCDF, any units, periods and grids) onto one grid
in mm/month over their common months, and the climate predictors derived from them."""

import os

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingUtils,
)

from .. import styles
from ..glossary import term
from .base import FORCINGS, CwscAlgorithm, advanced, forcing_parameters, tr

FILE_FILTER = "Rasters (*.tif *.tiff *.nc *.nc4 *.cdf);;All files (*.*)"


class PrepareAlgorithm(CwscAlgorithm):
    ALG_NAME = "prepare"
    DISPLAY_NAME = "Prepare forcing & predictors"
    GROUP = "preparation"
    COMMAND = "prepare"
    TAGS = (
        "precipitation",
        "evapotranspiration",
        "PET",
        "GRUN",
        "CRU",
        "GLEAM",
        "ERA5",
        "NetCDF",
        "regrid",
        "forcing",
    )
    NUMBERS = {"MONTHS": "months"}
    DETAILS = """
<p><b>Step 0 of the CWSC workflow.</b> Brings precipitation, PET and runoff products as they
come (GRUN, CRU TS, GLEAM, ERA5 ...: GeoTIFF or NetCDF, any of mm/month, mm/day,
kg m-2 s-1, m; any calendar; longitudes 0 to 360 or -180 to 180, in either direction) onto
one grid, in mm/month, over their common months, and derives the climate predictors.</p>
<p><b>Inputs</b> (files, so that a NetCDF file with several variables works here and from
qgis_process): <b>PRECIPITATION</b>, <b>PET</b>, <b>RUNOFF</b>, with
<b>PRECIPITATION_VARIABLE</b>, <b>PET_VARIABLE</b>, <b>RUNOFF_VARIABLE</b> naming the variable
of a NetCDF file that holds several (CRU TS: pre beside stn). Each file's months and units
are read from it; advanced: <b>*_UNITS</b> when a file does not say (or says wrong),
<b>*_START</b> (YYYY-MM) for a file that does not date its bands, <b>PERIOD_START</b> and
<b>PERIOD_END</b> to restrict the period, <b>*_NODATA</b> for an undeclared fill value;
<b>TARGET_GRID</b> (a raster layer; default the runoff's grid) and <b>EXTENT</b> (cut to a
region).</p>
<p><b>Outputs</b>: <b>OUTPUT_PRECIPITATION</b>, <b>OUTPUT_PET</b>, <b>OUTPUT_RUNOFF</b>:
GeoTIFF, mm/month, one band per common month described with its date, put onto the target
grid by area-weighted averaging; <b>OUTPUT_PREDICTORS</b> (a folder): mean annual
precipitation, PET and runoff (mm/yr), aridity PET/P, runoff coefficient Q/P and
precipitation seasonality, each a GeoTIFF described with its unit, over the whole years of
the period.</p>
<p>Next step: <i>Calibrate models per cell</i> on the three outputs; the predictors go
to <i>Train CWSC ResNet</i> with the other predictors (soil, terrain, vegetation).</p>
"""
    HELP = """
<p>Puts real forcing products (GRUN, CRU TS, GLEAM, ERA5, or any GeoTIFF/NetCDF with one band
per month) onto one grid in mm/month over their common months, and derives climate predictors.</p>
<p><b>Inputs</b>: <b>PRECIPITATION</b>, <b>PET</b>, <b>RUNOFF</b> (files; months and units
read from each); optionally <b>TARGET_GRID</b> and <b>EXTENT</b>.</p>
<p><b>Outputs</b>: <b>OUTPUT_PRECIPITATION</b>, <b>OUTPUT_PET</b>, <b>OUTPUT_RUNOFF</b> (one
band per month); <b>OUTPUT_PREDICTORS</b> (a folder of annual means, aridity, runoff
coefficient, seasonality).</p>
<p>Files that do not say their units or months need the *_UNITS / *_START options; values are
averaged by area when grids differ.</p>
"""
    REFS = ("xie2021",)

    def initAlgorithm(self, config=None):  # noqa: N802
        for name, _, what in FORCINGS:
            self.addParameter(QgsProcessingParameterFile(name, term(name), fileFilter=FILE_FILTER))
            self.addParameter(
                QgsProcessingParameterString(
                    name + "_VARIABLE",
                    tr("NetCDF variable of the {}").format(what),
                    optional=True,
                )
            )
        self.addParameter(
            QgsProcessingParameterFile(
                "TEMPERATURE", term("TEMPERATURE"), fileFilter=FILE_FILTER, optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterString(
                "TEMPERATURE_VARIABLE",
                tr("NetCDF variable of the temperature"),
                optional=True,
            )
        )
        for param in forcing_parameters():
            self.addParameter(param)
        self.addParameter(
            advanced(
                QgsProcessingParameterRasterLayer(
                    "TARGET_GRID", tr("Target grid (empty: the runoff's grid)"), optional=True
                )
            )
        )
        self.addParameter(QgsProcessingParameterExtent("EXTENT", term("EXTENT"), optional=True))
        for name, label in (
            ("OUTPUT_PRECIPITATION", "Precipitation (mm/month)"),
            ("OUTPUT_PET", "PET (mm/month)"),
            ("OUTPUT_RUNOFF", "Runoff (mm/month)"),
        ):
            self.addParameter(QgsProcessingParameterRasterDestination(name, tr(label)))
        self.addParameter(
            QgsProcessingParameterRasterDestination(
                "OUTPUT_TEMPERATURE", tr("Air temperature (C; with a temperature input)"), optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterFolderDestination(
                "OUTPUT_PREDICTORS",
                tr("Folder for the climate predictors"),
                optional=True,
                createByDefault=True,
            )
        )
        self.addOutput(QgsProcessingOutputNumber("MONTHS", tr("Months in the common period")))
        self.addOutput(QgsProcessingOutputString("FIRST_MONTH", tr("First month")))
        self.addOutput(QgsProcessingOutputString("LAST_MONTH", tr("Last month")))

    def build(self, parameters, context, feedback):
        outputs = {
            name: self.output_raster(parameters, name, context)
            for name in ("OUTPUT_PRECIPITATION", "OUTPUT_PET", "OUTPUT_RUNOFF")
        }
        args = []
        for name, stem, _ in FORCINGS:
            args += ["--" + stem, self.user_path(parameters, name, context)]
            variable = (self.parameterAsString(parameters, name + "_VARIABLE", context) or "").strip()
            if variable:
                args += ["--{}-var".format(stem), variable]
        target = self.raster_path(parameters, "TARGET_GRID", context, feedback, optional=True)
        if target:
            args += ["--target-grid", target]
        args += self.extent_args(parameters, context)
        args += [
            "--out-precip",
            outputs["OUTPUT_PRECIPITATION"],
            "--out-pet",
            outputs["OUTPUT_PET"],
            "--out-runoff",
            outputs["OUTPUT_RUNOFF"],
        ]
        temperature = self.user_path(parameters, "TEMPERATURE", context)
        if temperature:
            args += ["--temperature", temperature]
            variable = (self.parameterAsString(parameters, "TEMPERATURE_VARIABLE", context) or "").strip()
            if variable:
                args += ["--temperature-var", variable]
            out = self.output_raster(parameters, "OUTPUT_TEMPERATURE", context)
            if not out:
                out = QgsProcessingUtils.generateTempFilename("temperature.tif")
            outputs["OUTPUT_TEMPERATURE"] = out
            args += ["--out-temperature", out]
        folder = self.parameterAsString(parameters, "OUTPUT_PREDICTORS", context)
        if folder:
            folder = os.path.abspath(os.path.expanduser(folder))
            args += ["--out-predictors", folder]
            outputs["OUTPUT_PREDICTORS"] = folder
        return args + self.forcing_args(parameters, context), outputs

    def collect(self, result, outputs, context, feedback):
        results = super().collect(result, outputs, context, feedback)
        for name in ("OUTPUT_PRECIPITATION", "OUTPUT_PET", "OUTPUT_RUNOFF", "OUTPUT_TEMPERATURE"):
            if results.get(name):
                styles.show_first_band(results[name], context)
        styles.load_on_completion(
            (result.get("outputs") or {}).get("PREDICTOR_FILES") or [], context, "CWSC predictors"
        )
        metrics = result.get("metrics") or {}
        results["FIRST_MONTH"] = metrics.get("first_month")
        results["LAST_MONTH"] = metrics.get("last_month")
        return results

"""cwsc:evaluatecatchments - score a CWSC map at gauged catchments against their own calibration."""

import csv
import os
import re

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorDestination,
    QgsRasterLayer,
)

from .. import styles
from ..compat import TYPE_RASTER, _pick
from ..glossary import term
from .base import (
    TEMPERATURE_UNITS,
    CwscAlgorithm,
    _file_path,
    advanced,
    checked_output,
    local_raster_path,
    models_parameter,
    objective_parameter,
    optimiser_parameters,
    period_parameters,
    seed_parameter,
    temperature_parameter,
    tr,
)

TYPE_POLYGON = _pick("ProcessingSourceType", "VectorPolygon", QgsProcessing, "TypeVectorPolygon")
#: The units of the table's runoff (the backend's ``--runoff-units`` choices).
RUNOFF_UNITS = ["mm/month", "mm/day", "m3/s"]
#: The vector formats the backend reads; other layers (memory, selections, databases) are
#: written to a temporary GeoPackage first.
CATCHMENT_FORMATS = ["gpkg", "shp", "geojson"]
#: (input, backend option stem) of the forcing rasters used where the table has no column.
RASTER_FORCINGS = (("PRECIPITATION", "precip"), ("PET", "pet"), ("TEMPERATURE", "temperature"))
#: Reference names that would give the fields of the map under test (cwsc_map_mm,
#: cwsc_map_sd_mm, kge_val_map, kge_val_free, kge_val_constant).
RESERVED_NAMES = {"map", "map_sd", "free", "constant"}


def reference_names(names):
    """Field-safe, distinct names for the reference maps (``cwsc_<name>_mm``, ``kge_val_<name>``):
    letters, digits and underscores in lower case, as the backend makes them; a name that
    would clash with the map under test or with an earlier one gets a suffix."""
    out = []
    for i, name in enumerate(names):
        clean = re.sub(r"[^0-9a-zA-Z]+", "_", str(name)).strip("_").lower() or "map{}".format(i + 1)
        if clean in RESERVED_NAMES:
            clean += "_ref"
        candidate, n = clean, 2
        while candidate in out or candidate in RESERVED_NAMES:
            candidate = "{}_{}".format(clean, n)
            n += 1
        out.append(candidate)
    return out


def series_ids(path, limit=2_000_000):
    """The distinct ids of the series table ``path`` (its ``id`` column, the delimiter as the
    backend reads it: the most frequent of ``,`` ``;`` tab in the header), or an empty set when
    the file cannot be read or has no such column (the backend then says why). At most
    ``limit`` characters are read: the ids of a large table are near its start and end anyway."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            text = fh.read(limit)
    except (OSError, TypeError, UnicodeDecodeError):
        return set()
    lines = text.splitlines()
    if not lines:
        return set()
    delimiter = max((",", ";", "\t"), key=lines[0].count)
    rows = csv.reader(lines, delimiter=delimiter)
    header = [h.strip().lower() for h in next(rows)]
    if "id" not in header:
        return set()
    column = header.index("id")
    return {row[column].strip() for row in rows if len(row) > column and row[column].strip()}


def field_matches(source, ids):
    """{field name: how many of ``ids`` are among its values} for each field of ``source``;
    numbers compare as their text (12 and '12', 12.0 and '12')."""
    names = source.fields().names()
    values = {name: set() for name in names}
    for feature in source.getFeatures():
        for name, value in zip(names, feature.attributes()):
            if value is None or value == "" or str(value) == "NULL":
                continue
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            values[name].add(str(value).strip())
    return {name: len(ids & found) for name, found in values.items()}


def gpkg_layer(destination):
    """(file, layer name or None) of a vector destination: ``scores.gpkg``,
    ``scores.gpkg|layername=NAME`` or QGIS's ``ogr:dbname='scores.gpkg' table="NAME" (geom)``."""
    from qgis.core import QgsDataSourceUri, QgsProviderRegistry

    destination = destination or ""
    if destination.startswith("ogr:"):
        uri = QgsDataSourceUri(destination[len("ogr:") :])
        return uri.database(), uri.table() or None
    if "|" not in destination:
        return destination, None
    parts = QgsProviderRegistry.instance().decodeUri("ogr", destination)
    return parts.get("path") or destination.split("|", 1)[0], parts.get("layerName") or None


class EvaluateCatchmentsAlgorithm(CwscAlgorithm):
    ALG_NAME = "evaluatecatchments"
    DISPLAY_NAME = "Evaluate CWSC with gauges"
    #: OUTPUT's layer name (None: the backend's default) and its destination as QGIS gave it
    _layer = None
    _destination = None
    _gpkg = None
    #: the scores' layer a successful run wrote, as QGIS loads it (``file|layername=NAME``)
    _scores = None
    GROUP = "evaluation"
    COMMAND = "evaluate-catchments"
    TAGS = ("evaluation", "validation", "KGE", "gauge", "gauged", "catchment", "streamflow", "basin")
    NUMBERS = {
        "CATCHMENTS_SCORED": "catchments_scored",
        "CATCHMENTS_NOT_SCORED": "catchments_not_scored",
        "MEDIAN_KGE_VAL_MAP": "median_kge_val_map",
        "MEDIAN_KGE_VAL_FREE": "median_kge_val_free",
        "MEDIAN_KGE_VAL_CONSTANT": "median_kge_val_constant",
        "SHARE_IN_RANGE_MAP": "share_in_range_map",
        "SHARE_IN_RANGE_CONSTANT": "share_in_range_constant",
        "SPEARMAN_MAP_LABELS": "spearman_map_labels",
    }
    HELP = """
<p>Scores a CWSC map at gauged catchments: each catchment's models are calibrated on its own
runoff freely, with sc fixed to the map's mean over the polygon, and with a constant map;
the validation KGEs tell what the map is worth.</p>
<p><b>Inputs</b>: <b>CATCHMENTS</b> with <b>ID_FIELD</b>; <b>SERIES</b> (CSV: id, month
YYYY-MM, runoff[, precipitation, pet, temperature]); rasters for the columns it lacks;
<b>CWSC</b>; optionally <b>REFERENCE_MAPS</b>.</p>
<p><b>Outputs</b>: <b>OUTPUT</b> (polygons coloured by the map's validation KGE),
<b>OUTPUT_TABLE</b>, <b>OUTPUT_REPORT</b>; median KGEs, map checks. Catchments not scored
are kept with their reason.</p>
"""
    DETAILS = """
<p>The seed paper's check of a CWSC map: a map is useful where a water balance model run
with sc from the map, its other parameters calibrated, reproduces the runoff of months it
was not calibrated on nearly as well as the catchment's own free calibration, and clearly
better than with a map that carries no information.</p>
<p><b>Inputs</b>: <b>CATCHMENTS</b>: a polygon layer in any CRS (a memory layer, a
selection or a database layer is written to a temporary GeoPackage first), with
<b>ID_FIELD</b> holding each catchment's id; left empty, the field whose values are most of
the table's ids is used (and named in the log), and a field that holds none of them is
refused, naming the one that does. <b>SERIES</b>: a CSV table, one line per
catchment and month, with the columns <code>id</code> (as in <b>ID_FIELD</b>),
<code>month</code> (YYYY-MM), <code>runoff</code> (in <b>RUNOFF_UNITS</b>: mm/month, the
default, mm/day, or m3/s, converted with the polygon's area on the WGS84 ellipsoid) and
optionally <code>precipitation</code>, <code>pet</code> (mm/month) and
<code>temperature</code> (degrees C). Where the table has no such column, the
<b>PRECIPITATION</b>, <b>PET</b> and <b>TEMPERATURE</b> rasters (one dated band per month;
a NetCDF variable layer is read from its file) are averaged over each polygon with the exact
fraction of each cell it covers; with temperature a snow store runs ahead of the models.
<b>CWSC</b>: the map under test (mm); <b>REFERENCE_MAPS</b>: other CWSC maps (mm), scored
the same way, each named by its layer name (letters, digits and underscores; a name taken
already gets a suffix).</p>
<p><b>Per catchment</b>: the map's area-weighted mean and spread of sc over the polygon; the
catchment's own calibration of <b>MODELS</b> (Zhang et al. 2008 DWBM, SWBM, Xia TVGM) by
SCE-UA (Duan et al. 1992) on the calibration months (the first
<b>CALIBRATION_FRACTION</b>, after <b>WARMUP_MONTHS</b>), which gives the label by the label
rule with its identifiable range and quality flags (as <i>Calibrate models per cell</i>);
then the calibration again with sc fixed to the map's mean, to each reference map's, and to a
constant map (the median of the map's catchment means: the null model). Each is scored by
the KGE (Gupta et al. 2009, or NSE with <b>OBJECTIVE</b>) over the validation months, in the
models of the catchment's label. Advanced: <b>FORMULATION</b>, <b>RESTARTS</b>,
<b>MAX_EVALUATIONS</b>, <b>SEED</b>, <b>TEMPERATURE_UNITS</b>.</p>
<p><b>Not scored</b>: a catchment without a polygon or without series, with fewer than 24
months of runoff, off the rasters or the map, or in m3/s without an area is kept in every
output with its reason in the field <code>not_scored</code>; nothing is dropped silently.</p>
<p><b>Outputs</b>: <b>OUTPUT</b>: a GeoPackage of the polygons (a layer of its own,
cwsc_scores unless named: <i>Save to GeoPackage...</i> asks for a layer name, and
<code>scores.gpkg|layername=NAME</code> names one in qgis_process; the file's other layers stay
as they are) with the fields id, area_km2,
months, cwsc_map_mm, cwsc_map_sd_mm, sc_free_mm, sc_low_mm, sc_high_mm, flags (the quality
bits of <i>Calibrate models per cell</i>; 32: no temperature, and its cold months hold
much of its precipitation; 128: its P, PET and Q cannot balance over the record; the run warns
naming such catchments), kge_cal_free, kge_val_free,
kge_cal_map, kge_val_map, kge_val_constant, in_range_map and in_range_constant (1 where the
map's, or the constant map's, sc lies inside the catchment's identifiable range of sc, 0
where not), models, snow (the share of the precipitation that passed through the snow
store, 0-1; empty without temperature), not_scored, notes (a validation KGE that is undefined
under a map, counted as the run's worst) and, per reference map, cwsc_NAME_mm and
kge_val_NAME; loaded coloured by kge_val_map (red
below 0, blue up to 1, grey: not scored). <b>OUTPUT_TABLE</b>: the same fields as a CSV;
<b>OUTPUT_REPORT</b>: an HTML report (table, map, hydrographs, sc of the map against the
catchments' own). Numbers: <b>CATCHMENTS_SCORED</b>, <b>CATCHMENTS_NOT_SCORED</b>,
<b>MEDIAN_KGE_VAL_MAP</b>, <b>MEDIAN_KGE_VAL_FREE</b>, <b>MEDIAN_KGE_VAL_CONSTANT</b>,
<b>SHARE_IN_RANGE_MAP</b>, <b>SHARE_IN_RANGE_CONSTANT</b>, <b>SPEARMAN_MAP_LABELS</b> and
every other metric the backend reports. A useful map scores close to free calibration and
above the constant map; since the other parameters, re-calibrated, absorb most of a wrong
sc, a plausible constant scores close too, and the checks that tell them apart are the
share in range (the map's well above the constant's) and a clearly positive rank
correlation with the catchments' own labels.</p>
"""
    REFS = ("xie2021", "zhang2008", "duan1992", "gupta2009")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(
            QgsProcessingParameterFeatureSource(
                "CATCHMENTS", tr("Gauged catchments (polygons)"), [TYPE_POLYGON]
            )
        )
        self.addParameter(
            QgsProcessingParameterField(
                "ID_FIELD",
                tr("Catchment id field (empty: auto)"),
                parentLayerParameterName="CATCHMENTS",
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterFile(
                "SERIES", tr("Monthly series table (CSV: id, month, runoff ...)"), extension="csv"
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                "RUNOFF_UNITS", tr("Units of the table's runoff"), options=RUNOFF_UNITS, defaultValue=0
            )
        )
        self.addParameter(
            QgsProcessingParameterRasterLayer("PRECIPITATION", term("PRECIPITATION"), optional=True)
        )
        self.addParameter(QgsProcessingParameterRasterLayer("PET", term("PET"), optional=True))
        self.addParameter(temperature_parameter())
        self.addParameter(QgsProcessingParameterRasterLayer("CWSC", term("CWSC")))
        self.addParameter(
            QgsProcessingParameterMultipleLayers(
                "REFERENCE_MAPS",
                tr("Reference CWSC maps (mm)"),
                TYPE_RASTER,
                optional=True,
            )
        )
        self.addParameter(models_parameter())
        self.addParameter(objective_parameter())
        # Advanced, in the same order as in calibrate: the models, the optimiser, the data.
        for param in period_parameters():
            self.addParameter(param)
        for param in optimiser_parameters():
            self.addParameter(param)
        self.addParameter(seed_parameter())
        self.addParameter(
            advanced(
                QgsProcessingParameterEnum(
                    "TEMPERATURE_UNITS",
                    tr("Units of the temperature (auto: as the file says)"),
                    options=TEMPERATURE_UNITS,
                    defaultValue=0,
                )
            )
        )
        self.addParameter(
            QgsProcessingParameterVectorDestination("OUTPUT", tr("Catchment scores"), type=TYPE_POLYGON)
        )
        self.addParameter(
            QgsProcessingParameterFileDestination(
                "OUTPUT_TABLE", tr("Catchment scores table"), fileFilter="CSV files (*.csv)"
            )
        )
        self.addParameter(
            QgsProcessingParameterFileDestination(
                "OUTPUT_REPORT", tr("Catchment evaluation report"), fileFilter="HTML files (*.html)"
            )
        )
        for name, label in (
            ("CATCHMENTS_SCORED", "Catchments scored"),
            ("CATCHMENTS_NOT_SCORED", "Catchments not scored"),
            ("MEDIAN_KGE_VAL_MAP", "Median validation KGE, CWSC fixed to the map"),
            ("MEDIAN_KGE_VAL_FREE", "Median validation KGE, CWSC calibrated freely"),
            ("MEDIAN_KGE_VAL_CONSTANT", "Median validation KGE, a constant CWSC map"),
            ("SHARE_IN_RANGE_MAP", "Share of catchments whose identifiable range holds the map's sc"),
            ("SHARE_IN_RANGE_CONSTANT", "Share of catchments whose identifiable range holds the constant"),
            ("SPEARMAN_MAP_LABELS", "Rank correlation of the map with the catchments' own labels"),
        ):
            self.addOutput(QgsProcessingOutputNumber(name, tr(label)))

    # -- build -------------------------------------------------------------------------
    def catchments_path(self, parameters, context, feedback):
        """The polygons as a file the backend reads: the layer's own GeoPackage, Shapefile or
        GeoJSON file where it is one; else (memory, selected features, a filter, a database,
        another format) a temporary GeoPackage that QGIS writes."""
        path = self.parameterAsCompatibleSourceLayerPath(
            parameters, "CATCHMENTS", context, CATCHMENT_FORMATS, "gpkg", feedback
        )
        if not path:
            raise QgsProcessingException(
                tr("CATCHMENTS: the polygon layer cannot be read ({})").format(parameters.get("CATCHMENTS"))
            )
        return os.path.abspath(path) if os.path.isfile(path) else path

    def output_gpkg(self, parameters, context):
        """(file, layer name or None, the destination as QGIS gave it) of OUTPUT: a file
        ``scores.gpkg``, a layer of one as QGIS users name it (``scores.gpkg|layername=NAME``)
        or as the dialog's *Save to GeoPackage...* gives it (``ogr:dbname='scores.gpkg'
        table="NAME" (geom)``)."""
        # The path asked for once: QGIS makes a new temporary name at each call for a
        # TEMPORARY_OUTPUT, and loads the one it gave first.
        destination = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
        path, layer = gpkg_layer(destination)
        if path and not path.lower().endswith(".gpkg"):
            raise QgsProcessingException(
                tr(
                    "OUTPUT: the catchment scores are written as a GeoPackage: give a file name "
                    "ending in .gpkg (not '{}')"
                ).format(path)
            )
        return checked_output("OUTPUT", path), layer, destination

    def reference_maps(self, parameters, context, feedback):
        """([path, ...], [name, ...]) of REFERENCE_MAPS: files as they are (named by their
        stems), layers by their layer names (written to GeoTIFFs where they are no files)."""
        values = parameters.get("REFERENCE_MAPS")
        if values in (None, "", []):
            return [], []
        if not isinstance(values, (list, tuple)):
            values = [values]
        if all(_file_path(v) for v in values):
            paths = [_file_path(v) for v in values]
            return paths, reference_names(os.path.splitext(os.path.basename(p))[0] for p in paths)
        paths, names = [], []
        for layer in self.parameterAsLayerList(parameters, "REFERENCE_MAPS", context):
            if not isinstance(layer, QgsRasterLayer):
                raise QgsProcessingException(
                    tr("REFERENCE_MAPS: '{}' is not a raster layer").format(layer.name())
                )
            paths.append(local_raster_path(layer, "REFERENCE_MAPS", context, feedback))
            names.append(layer.name())
        return paths, reference_names(names)

    def id_field(self, parameters, context, feedback, series):
        """ID_FIELD, or (empty) the field of CATCHMENTS whose values match most of the SERIES
        table's ids. A field that matches none of them is refused, naming a field that does
        (a GeoPackage's ``fid``, the first in the dialog's list, is rarely the gauge id)."""
        chosen = (self.parameterAsString(parameters, "ID_FIELD", context) or "").strip()
        ids = series_ids(series)
        source = self.parameterAsSource(parameters, "CATCHMENTS", context)
        if not ids or source is None:
            # No ids to match (a table the backend will refuse, naming what is wrong with it):
            # the field named id where there is one.
            names = source.fields().names() if source is not None else []
            fallback = next((n for n in names if n.lower() == "id"), names[0] if names else "")
            if chosen or fallback:
                return chosen or fallback
            raise QgsProcessingException(tr("ID_FIELD: choose the field that holds the catchment ids"))
        matches = field_matches(source, ids)
        best = max(matches, key=matches.get) if matches else None
        example = sorted(ids)[0]
        where = os.path.basename(series)
        if chosen:
            if matches.get(chosen, 0) == 0 and best is not None and matches[best] > 0:
                raise QgsProcessingException(
                    tr(
                        "ID_FIELD: no value of the field '{}' is an id of the table '{}' (such as "
                        "'{}'); the field '{}' holds {} of its {} ids: choose it, or leave ID_FIELD "
                        "empty"
                    ).format(chosen, where, example, best, matches[best], len(ids))
                )
            return chosen
        if best is None or matches[best] == 0:
            raise QgsProcessingException(
                tr(
                    "ID_FIELD: no field of the catchments holds the ids of the table '{}' (such as "
                    "'{}'): check that the table and the polygons are of the same gauges"
                ).format(where, example)
            )
        feedback.pushInfo(
            tr("ID_FIELD: '{}', whose values are {} of the table's {} ids").format(
                best, matches[best], len(ids)
            )
        )
        return best

    def build(self, parameters, context, feedback):
        gpkg, self._layer, self._destination = self.output_gpkg(parameters, context)
        self._gpkg = gpkg
        outputs = {
            "OUTPUT": gpkg,
            "OUTPUT_TABLE": self.output_file(parameters, "OUTPUT_TABLE", context),
            "OUTPUT_REPORT": self.output_file(parameters, "OUTPUT_REPORT", context),
        }
        series = self.user_path(parameters, "SERIES", context)
        id_field = self.id_field(parameters, context, feedback, series)
        args = [
            "--catchments",
            self.catchments_path(parameters, context, feedback),
            "--id-field",
            id_field,
            "--series",
            series,
            "--runoff-units",
            RUNOFF_UNITS[self.parameterAsEnum(parameters, "RUNOFF_UNITS", context)],
        ]
        for name, stem in RASTER_FORCINGS:
            path, variable = self.forcing_source(parameters, name, context, feedback, optional=True)
            if path:
                args += ["--" + stem, path] + (["--{}-var".format(stem), variable] if variable else [])
        unit = TEMPERATURE_UNITS[self.parameterAsEnum(parameters, "TEMPERATURE_UNITS", context)]
        if unit != "auto":
            args += ["--temperature-units", unit]
        args += ["--cwsc", self.raster_path(parameters, "CWSC", context, feedback)]
        paths, names = self.reference_maps(parameters, context, feedback)
        if paths:
            args += ["--reference-maps", *paths, "--reference-names", *names]
        args += self.model_args(parameters, context)
        args += [
            "--seed",
            str(self.parameterAsInt(parameters, "SEED", context)),
        ]
        args += self.optional_args(
            parameters,
            context,
            (
                ("RESTARTS", "--restarts"),
                ("MAX_EVALUATIONS", "--max-evaluations"),
            ),
        )
        if self._layer:
            args += ["--layer", self._layer]
        args += [
            "--out",
            outputs["OUTPUT"],
            "--out-table",
            outputs["OUTPUT_TABLE"],
            "--out-report",
            outputs["OUTPUT_REPORT"],
        ]
        return args, outputs

    def postProcessAlgorithm(self, context, feedback):  # noqa: N802 - QGIS API (main thread)
        """The scores go into a copy of the GeoPackage that then replaces it; a layer of that
        file open in the project (the catchments themselves) still reads the file as it was,
        and QGIS would look for the scores' layer there too ("The following layers were not
        correctly generated"): those layers are reopened before QGIS loads the scores."""
        project = context.project() if context is not None else None
        if self._gpkg and project is not None:
            for layer in project.mapLayers().values():
                source = layer.source().split("|", 1)[0]
                if layer.providerType() == "ogr" and os.path.abspath(source) == self._gpkg:
                    layer.reload()
        if self._scores:  # a run that wrote its scores into a layer of a GeoPackage
            styles.style_catchments(self._gpkg, context, feedback, layer=self._layer, load=self._scores)
        return {}

    def collect(self, result, outputs, context, feedback):
        results = super().collect(result, outputs, context, feedback)
        if results.get("OUTPUT") and self._layer:
            # QGIS loads the scores' layer of the file: "scores.gpkg|layername=NAME" (also for
            # a destination given as "ogr:dbname=... table=...", which it cannot load as such)
            uri = "{}|layername={}".format(outputs["OUTPUT"], self._layer)
            if self._destination != uri and context.willLoadLayerOnCompletion(self._destination):
                layers = dict(context.layersToLoadOnCompletion())
                layers[uri] = layers.pop(self._destination)
                context.setLayersToLoadOnCompletion(layers)
            results["OUTPUT"] = self._scores = (
                uri  # styled in postProcessAlgorithm, once the file is reopened
            )
        elif results.get("OUTPUT"):
            styles.style_catchments(results["OUTPUT"], context, feedback)
        return results

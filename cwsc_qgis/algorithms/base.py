"""The shared base class: parameters -> backend command line -> outputs, styles, numbers.

Each algorithm module declares its parameters and implements :meth:`build`, which turns
the parameter values into the backend's command-line options. This class does the rest:
local file paths for input layers (temporary GeoTIFFs for layers that are not local
files), output folder checks, the device default from the provider settings, the backend
run (``runner.py``), ``.qml`` sidecars and load-time styles, and the numbers the backend
reports.
"""

import os
import re
import tempfile
import threading

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingUtils,
    QgsRasterFileWriter,
    QgsRasterLayer,
    QgsRasterPipe,
)
from qgis.PyQt.QtCore import QCoreApplication, QUrl
from qgis.PyQt.QtGui import QIcon

from .. import settings, styles
from ..compat import CAPABILITY_SIZE, DOUBLE, FLAG_ADVANCED, FLAG_OPTIONAL, INTEGER, TYPE_RASTER, WRITER_OK
from ..glossary import term
from ..runner import BackendCancelled, run_backend

GROUPS = {
    "preparation": "0 Preparation",
    "calibration": "1 Calibration",
    "learning": "2 Learning",
    "mapping": "3 Mapping",
    "evaluation": "4 Evaluation",
    "tools": "Tools",
}
DEVICES = ["auto", "cpu", "cuda"]
#: The models' formulations (cwsc/hydro/options.py FORMULATIONS; the contract test holds them equal).
FORMULATIONS = ["conserving", "seed", "bounded"]
#: What a hydrologist types in the Toolbox search to find any CWSC algorithm.
COMMON_TAGS = (
    "hydrology",
    "catchment",
    "water storage capacity",
    "CWSC",
    "water balance",
    "runoff",
    "soil moisture",
)
#: The backend's defaults (cwsc/hydro/options.py), shown in the dialogs; the contract test
#: (tests/plugin/test_contract.py) holds the two sides to the same numbers.
RESTARTS_DEFAULT = 1
MAX_EVALUATIONS_DEFAULT = 1000
#: cwsc/ml/options.py: the default recipe's epochs and batch size, and the seed recipe's.
EPOCHS_DEFAULT = 40
BATCH_SIZE_DEFAULT = 64
SEED_RECIPE_EPOCHS = 150
SEED_RECIPE_BATCH_SIZE = 32
#: cwsc/ml/options.py: learning from runoff (cwsc:learnfromrunoff).
LEARN_EPOCHS_DEFAULT = 40
LEARN_BATCH_SIZE_DEFAULT = 512
LEARN_PRETRAIN_EPOCHS_DEFAULT = 100
#: cwsc/ml/options.py: labelled cells from which the network takes the position by default.
POSITION_MIN_CELLS = 10_000

#: The works an algorithm's help cites (``REFS``), each in one line; the full list is on the
#: documentation site's science page.
CITATIONS = {
    "xie2021": "Xie, K. et al. (2021), global CWSC mapping with calibrated water balance models and deep learning",
    "zhang2008": "Zhang, L. et al. (2008), DWBM, Water Resources Research 44",
    "duan1992": "Duan, Q. et al. (1992), SCE-UA, Water Resources Research 28",
    "gupta2009": "Gupta, H. V. et al. (2009), KGE, Journal of Hydrology 377",
    "he2016": "He, K. et al. (2016), residual networks, ECCV",
    "tsai2021": "Tsai, W.-P. et al. (2021), parameter learning, Nature Communications 12",
}
#: The documentation site, where the plugin carries it (``make package`` builds it into the
#: zip) or in a checkout once ``make docs`` has run.
DOCS_FOLDERS = (("docs",), ("..", "docs", "_build", "html"))


def tr(text):
    return QCoreApplication.translate("CWSC", text)


def advanced(param):
    param.setFlags(param.flags() | FLAG_ADVANCED)
    return param


#: The layers a raster input shows first in a dialog, by name: the topmost raster layer of the
#: project whose name starts with one of these (case-insensitive; the first name that matches
#: wins), as Create demo data and the algorithms' outputs name them. No such layer: the input
#: is shown empty, not QGIS's default of the active layer for every required input (which put
#: "true CWSC" into precipitation, PET and runoff). An algorithm may set its own
#: (``CwscAlgorithm.LAYER_NAMES``).
LAYER_NAMES = {
    "PRECIPITATION": ("precipitation (monthly)", "Precipitation (mm/month)"),
    "PET": ("PET (monthly)", "PET (mm/month)"),
    "RUNOFF": ("runoff (monthly)", "Runoff (mm/month)"),
    "TEMPERATURE": ("temperature (monthly)", "Air temperature"),
    "LABELS": ("Masked CWSC labels", "CWSC labels"),
    "KGE": ("Calibration KGE",),
    "CWSC": ("CWSC map", "CWSC (mm)"),
    "REFERENCE": ("true CWSC",),
    "DETAILS": ("Calibration details",),
}
#: What a required raster input shows when no layer matches its names: a blank entry (QGIS
#: 3.22 cannot show a required layer input empty otherwise: the combo box falls back to the
#: active layer, then to the first layer). Only the dialog sees it (the parameter's GUI
#: default); :meth:`CwscAlgorithm.checkParameterValues` refuses it with one sentence.
NO_LAYER = " "


def dialog_default(definition, names):
    """Set the GUI default of a raster layer input (``QgsProcessingParameterRasterLayer``
    without a default of its own) to the id of the project's layer named for it (``names``),
    else to :data:`NO_LAYER` (required inputs) so that the dialog shows it empty. Only in the
    main thread (a model creates its child algorithms in a worker thread); the parameter's
    default for qgis_process and scripts is untouched."""
    from qgis.core import QgsProject
    from qgis.PyQt.QtCore import QThread

    if not isinstance(definition, QgsProcessingParameterRasterLayer) or definition.defaultValue():
        return definition
    app = QCoreApplication.instance()
    if app is None or QThread.currentThread() is not app.thread():
        return definition
    layer = named_layer(QgsProject.instance(), names)
    if layer is not None:
        definition.setGuiDefaultValueOverride(layer.id())
    elif not definition.flags() & FLAG_OPTIONAL:
        definition.setGuiDefaultValueOverride(NO_LAYER)
    return definition


def named_layer(project, names):
    """The topmost raster layer of ``project``'s layer tree whose name starts with one of
    ``names`` (case-insensitive), the first name first; None when none does."""
    layers = [
        node.layer()
        for node in project.layerTreeRoot().findLayers()
        if isinstance(node.layer(), QgsRasterLayer) and node.layer().isValid()
    ]
    for name in names:
        for layer in layers:
            if layer.name().lower().startswith(name.lower()):
                return layer
    return None


#: The fewest and the most decimals a double parameter's spin box shows (QGIS: six, 0.750000).
DECIMALS = (2, 4)


def set_decimals(param):
    """Give a double parameter's spin box the decimals its default and bounds need (at least
    two, at most four: 0.75, 0.02, 0.0001) instead of QGIS's six; a number set already in
    its metadata (``{"widget_wrapper": {"decimals": N}}``, read by QGIS 3.22) is kept."""
    if not isinstance(param, QgsProcessingParameterNumber) or param.dataType() != DOUBLE:
        return param
    metadata = dict(param.metadata() or {})
    wrapper = dict(metadata.get("widget_wrapper") or {})
    if "decimals" in wrapper:
        return param
    needed = DECIMALS[0]
    for value in (param.defaultValue(), param.minimum(), param.maximum()):
        try:
            value = float(value)
        except (TypeError, ValueError):
            continue
        if abs(value) < 1e9:
            shown = "{:.{}f}".format(value, DECIMALS[1]).rstrip("0").partition(".")[2]
            # a value too small for the most decimals still shows as much of it as it can
            tiny = value != 0 and round(value, DECIMALS[1]) == 0
            needed = max(needed, DECIMALS[1] if tiny else len(shown))
    wrapper["decimals"] = min(needed, DECIMALS[1])
    metadata["widget_wrapper"] = wrapper
    param.setMetadata(metadata)
    return param


def device_parameter(name="DEVICE", is_advanced=True):
    """auto, cpu, cuda; 'auto' uses the provider's default device setting (itself 'auto':
    CUDA when available, else CPU)."""
    param = QgsProcessingParameterEnum(
        name,
        tr("Device (auto: CUDA when available)"),
        options=DEVICES,
        defaultValue=0,
    )
    return advanced(param) if is_advanced else param


#: The backend's models and objectives (cwsc/hydro/options.py; the contract test holds them equal).
MODELS = ["DWBM", "SWBM", "TVGM"]
OBJECTIVES = ["KGE", "NSE"]


def models_parameter():
    """MODELS: any of DWBM, SWBM, TVGM, all by default."""
    return QgsProcessingParameterEnum(
        "MODELS", term("MODELS"), options=MODELS, allowMultiple=True, defaultValue=[0, 1, 2]
    )


def objective_parameter():
    """OBJECTIVE: KGE (default) or NSE."""
    return QgsProcessingParameterEnum("OBJECTIVE", term("OBJECTIVE"), options=OBJECTIVES, defaultValue=0)


def optimiser_parameters(min_evaluations=10):
    """RESTARTS and MAX_EVALUATIONS of SCE-UA (advanced; empty: the backend's defaults)."""
    return [
        advanced(
            QgsProcessingParameterNumber(
                "RESTARTS",
                term("RESTARTS"),
                type=INTEGER,
                minValue=1,
                defaultValue=RESTARTS_DEFAULT,
                optional=True,
            )
        ),
        advanced(
            QgsProcessingParameterNumber(
                "MAX_EVALUATIONS",
                term("MAX_EVALUATIONS"),
                type=INTEGER,
                minValue=min_evaluations,
                defaultValue=MAX_EVALUATIONS_DEFAULT,
                optional=True,
            )
        ),
    ]


def seed_parameter():
    """SEED (advanced): one number behind every random choice."""
    return advanced(
        QgsProcessingParameterNumber("SEED", term("SEED"), type=INTEGER, defaultValue=0, minValue=0)
    )


def period_parameters():
    """The model formulation and the calibration period (warm-up, calibration fraction), the
    same in calibrate and learn from runoff; advanced."""
    return [
        advanced(
            QgsProcessingParameterEnum(
                "FORMULATION", tr("Model formulation"), options=FORMULATIONS, defaultValue=0
            )
        ),
        advanced(
            QgsProcessingParameterNumber(
                "WARMUP_MONTHS",
                tr("Warm-up months (empty: min(n/8, 24))"),
                type=INTEGER,
                minValue=0,
                optional=True,
            )
        ),
        advanced(
            QgsProcessingParameterNumber(
                "CALIBRATION_FRACTION",
                term("CALIBRATION_FRACTION"),
                type=DOUBLE,
                defaultValue=0.75,
                minValue=0.05,
                maxValue=1.0,
            )
        ),
    ]


#: (input parameter, backend option stem, what) of the three forcings.
FORCINGS = (
    ("PRECIPITATION", "precip", "precipitation"),
    ("PET", "pet", "PET"),
    ("RUNOFF", "runoff", "runoff"),
)
#: The units a user may force (the backend's cwsc.io.units.CHOICES; the contract test checks).
UNITS = ["auto", "mm/month", "mm/day", "kg m-2 s-1", "kg m-2", "m/month", "m/day", "m"]
#: The units of air temperature a user may force (cwsc.io.units.TEMPERATURE_CHOICES).
TEMPERATURE_UNITS = ["auto", "C", "K"]


def extent_parameter():
    """Optional EXTENT: work on the cells of a region only (advanced)."""
    from qgis.core import QgsProcessingParameterExtent

    return advanced(QgsProcessingParameterExtent("EXTENT", term("EXTENT"), optional=True))


def forcing_layer_parameters():
    """PRECIPITATION, PET and RUNOFF: the monthly rasters, and the optional TEMPERATURE that
    runs a snow store ahead of the models (calibrate, learn from runoff)."""
    return [
        QgsProcessingParameterRasterLayer("PRECIPITATION", term("PRECIPITATION")),
        QgsProcessingParameterRasterLayer("PET", term("PET")),
        QgsProcessingParameterRasterLayer("RUNOFF", term("RUNOFF")),
        temperature_parameter(),
    ]


def temperature_parameter():
    """Optional TEMPERATURE: monthly mean air temperature on the forcing's grid."""
    return QgsProcessingParameterRasterLayer("TEMPERATURE", term("TEMPERATURE"), optional=True)


def forcing_parameters():
    """Advanced, optional, per forcing: the nodata value when the file does not declare it,
    the units when it does not say (or says wrong), the first month when it does not date its
    bands; and the period to use."""
    from qgis.core import QgsProcessingParameterNumber, QgsProcessingParameterString

    from ..compat import DOUBLE

    params = []
    for name, _, what in FORCINGS:
        params.append(
            advanced(
                QgsProcessingParameterNumber(
                    name + "_NODATA",
                    tr("Nodata value of the {}").format(what),
                    type=DOUBLE,
                    optional=True,
                )
            )
        )
        params.append(
            advanced(
                QgsProcessingParameterEnum(
                    name + "_UNITS",
                    tr("Units of the {} (auto: as the file says)").format(what),
                    options=UNITS,
                    defaultValue=0,
                )
            )
        )
        params.append(
            advanced(
                QgsProcessingParameterString(
                    name + "_START",
                    tr("Start of the {} (YYYY-MM)").format(what),
                    optional=True,
                )
            )
        )
    params.append(
        advanced(
            QgsProcessingParameterNumber(
                "TEMPERATURE_NODATA",
                tr("Nodata value of the temperature"),
                type=DOUBLE,
                optional=True,
            )
        )
    )
    params.append(
        advanced(
            QgsProcessingParameterEnum(
                "TEMPERATURE_UNITS",
                tr("Units of the temperature (auto: as the file says)"),
                options=TEMPERATURE_UNITS,
                defaultValue=0,
            )
        )
    )
    params.append(
        advanced(
            QgsProcessingParameterString(
                "TEMPERATURE_START",
                tr("Start of the temperature (YYYY-MM)"),
                optional=True,
            )
        )
    )
    params.append(
        advanced(
            QgsProcessingParameterString(
                "PERIOD_START",
                tr("First month to use (YYYY-MM)"),
                optional=True,
            )
        )
    )
    params.append(
        advanced(QgsProcessingParameterString("PERIOD_END", tr("Last month to use (YYYY-MM)"), optional=True))
    )
    return params


class CwscAlgorithm(QgsProcessingAlgorithm):
    """Base of every CWSC algorithm. Subclasses set the class attributes and ``build``."""

    ALG_NAME = ""
    DISPLAY_NAME = ""
    GROUP = "tools"
    COMMAND = ""
    HELP = ""
    #: the long description, for the algorithm's page of the documentation site
    DETAILS = ""
    #: keys of CITATIONS that the help cites
    REFS = ()
    #: output parameter -> style name (see styles.STYLES) for raster outputs
    STYLES = {}
    #: the output that goes on top of the layer tree when QGIS loads it (the CWSC map)
    ON_TOP = ()
    #: output number name -> backend metric key
    NUMBERS = {}
    #: words the Toolbox search finds this algorithm by, beside the common ones
    TAGS = ()
    #: raster input -> the names of the layers its dialog shows first (beside :data:`LAYER_NAMES`)
    LAYER_NAMES = {}

    # -- QgsProcessingAlgorithm boilerplate --------------------------------------------
    def addParameter(self, definition, createOutput=True):  # noqa: N802, N803 - QGIS API
        """Every parameter of every CWSC algorithm comes through here: a double parameter
        gets its decimals (:func:`set_decimals`), a raster layer input the layer named for
        it in the dialog, or none (:func:`dialog_default`)."""
        names = self.LAYER_NAMES.get(definition.name(), LAYER_NAMES.get(definition.name(), ()))
        return super().addParameter(dialog_default(set_decimals(definition), names), createOutput)

    def name(self):
        return self.ALG_NAME

    def displayName(self):  # noqa: N802
        return tr(self.DISPLAY_NAME)

    def group(self):
        return tr(GROUPS[self.GROUP])

    def groupId(self):  # noqa: N802
        return self.GROUP

    def tags(self):
        return [tr(w) for w in COMMON_TAGS + tuple(self.TAGS)]

    def icon(self):
        return QIcon(settings.icon_path())

    def svgIconPath(self):  # noqa: N802
        # The modeler draws an algorithm's SVG when it has one (else a generic cog).
        return settings.icon_path()

    def shortHelpString(self):  # noqa: N802
        # QGIS 3.22 makes every line break of the help a paragraph: the source is wrapped for
        # reading, the help text is one line (HTML ignores the whitespace anyway). Short: what
        # it does, inputs, outputs, what to know; the rest is on its page (the Help button).
        refs = "; ".join(CITATIONS[k] for k in self.REFS)
        text = tr(self.HELP) + ("<p><b>References</b>: {}.</p>".format(refs) if refs else "")
        text = " ".join(text.split())
        return re.sub(r"<b>([A-Z][A-Z0-9_]*)</b>", self._label_of, text)

    def helpUrl(self):  # noqa: N802
        """This algorithm's page of the documentation site shipped with the plugin."""
        for parts in DOCS_FOLDERS:
            page = os.path.join(settings.PLUGIN_DIR, *parts, "algorithms", self.ALG_NAME + ".html")
            if os.path.isfile(page):
                return QUrl.fromLocalFile(os.path.normpath(page)).toString()
        return ""

    def _label_of(self, match):
        """``<b>ID</b>`` in a help text becomes the label the dialog shows, the id beside it
        for qgis_process and scripts."""
        name = match.group(1)
        definition = self.parameterDefinition(name) or self.outputDefinition(name)
        if definition is None:
            return match.group(0)
        return "<b>{}</b> <code>{}</code>".format(definition.description(), name)

    def createInstance(self):  # noqa: N802
        return type(self)()

    def tr(self, text):
        return tr(text)

    # -- helpers for build() -----------------------------------------------------------
    def raster_path(self, parameters, name, context, feedback, optional=False):
        """A local file path for a raster input; non-file layers become temporary GeoTIFFs."""
        if optional and parameters.get(name) in (None, ""):
            return None
        direct = _file_path(parameters.get(name))
        if direct:
            return direct
        layer = self.parameterAsRasterLayer(parameters, name, context)
        if layer is None:
            if optional:
                return None
            raise QgsProcessingException(
                tr("{}: the raster layer cannot be loaded ({})").format(name, parameters.get(name))
            )
        return local_raster_path(layer, name, context, feedback)

    def raster_paths(self, parameters, name, context, feedback):
        """The files of a list of raster layers (PREDICTORS); GIS sidecar files that "Add
        Directory..." picks up (``.aux.xml``, ``.qml``, ``.ovr`` ...) are left out, and a
        predictor with many bands (a monthly series given as a predictor) is refused."""
        values = parameters.get(name)
        if isinstance(values, (list, tuple)):
            values = [v for v in values if not is_sidecar(v)]
            parameters = dict(parameters, **{name: values})
        if isinstance(values, (list, tuple)) and values and all(_file_path(v) for v in values):
            paths = [_file_path(v) for v in values]
        else:
            layers = self.parameterAsLayerList(parameters, name, context)
            if not layers:
                raise QgsProcessingException(tr("{}: at least one raster layer is needed").format(name))
            paths = []
            for layer in layers:
                if not isinstance(layer, QgsRasterLayer):
                    raise QgsProcessingException(
                        tr("{}: '{}' is not a raster layer").format(name, layer.name())
                    )
                paths.append(local_raster_path(layer, name, context, feedback))
        if name == "PREDICTORS":
            for path in paths:
                check_predictor_bands(name, path)
        return paths

    def checkParameterValues(self, parameters, context):  # noqa: N802 - QGIS API
        """QGIS's check, with a list of layers checked one by one so that a refusal names the
        file ("Incorrect parameter value for PREDICTORS" does not), and the sidecar files that
        "Add Directory..." picks up left out instead of refused; a required raster input left
        empty in the dialog (:data:`NO_LAYER`) is named."""
        parameters = dict(parameters)
        for definition in self.parameterDefinitions():
            name, values = definition.name(), parameters.get(definition.name())
            if (
                isinstance(definition, QgsProcessingParameterRasterLayer)
                and not definition.flags() & FLAG_OPTIONAL
                and isinstance(values, str)
                and not values.strip()
            ):
                return False, tr("{} ({}): choose a raster layer or file").format(
                    definition.description(), name
                )
            if definition.type() != "multilayer" or not isinstance(values, (list, tuple)):
                continue
            values = [v for v in values if not is_sidecar(v)]
            for value in values:
                if not isinstance(value, str):
                    continue
                unreadable = not definition.checkValueIsAcceptable([value], context)
                if definition.layerType() == TYPE_RASTER and os.path.isfile(value):
                    unreadable = unreadable or _raster_bands(value) == 0  # a CSV opens as a table
                if unreadable:
                    return False, tr("{}: '{}' is not a raster QGIS can open").format(name, value)
            parameters[name] = values
        return super().checkParameterValues(parameters, context)

    def user_path(self, parameters, name, context):
        """A file or folder parameter's path, absolute: a relative path (``MODEL=model.pt`` in
        ``qgis_process``) is the caller's, from the folder QGIS was started in, never the
        backend's (which runs in the plugin's folder, which the next update of the plugin
        replaces); ``~`` is the home folder. Empty when not given."""
        path = (self.parameterAsFile(parameters, name, context) or "").strip()
        return os.path.abspath(os.path.expanduser(path)) if path else ""

    def output_raster(self, parameters, name, context, optional=False):
        path = self.parameterAsOutputLayer(parameters, name, context)
        if optional and not path:
            return None
        return checked_output(name, path)

    def output_file(self, parameters, name, context, optional=False):
        path = self.parameterAsFileOutput(parameters, name, context)
        if optional and not path:
            return None
        return checked_output(name, path)

    def device(self, parameters, name, context):
        value = DEVICES[self.parameterAsEnum(parameters, name, context)]
        if value == "auto":
            value = settings.setting_default_device()
        return value

    def optional_number(self, parameters, name, context, integer=True):
        if parameters.get(name) in (None, ""):
            return None
        if integer:
            return self.parameterAsInt(parameters, name, context)
        return self.parameterAsDouble(parameters, name, context)

    def optional_args(self, parameters, context, flags):
        """``[flag, value, ...]`` for the optional whole-number parameters of ``flags``
        (``((NAME, "--flag"), ...)``) that are set; an empty field sends nothing (the
        backend's default)."""
        args = []
        for name, flag in flags:
            value = self.optional_number(parameters, name, context)
            if value is not None:
                args += [flag, str(value)]
        return args

    def forcing_layer_args(self, parameters, context, feedback, optional=False):
        """``--precip``, ``--pet``, ``--runoff`` (and ``--*-var`` for a NetCDF variable) of
        PRECIPITATION, PET and RUNOFF; with ``optional`` those not given are left out."""
        args = []
        for name, stem, _ in FORCINGS:
            path, variable = self.forcing_source(parameters, name, context, feedback, optional)
            if path:
                args += ["--" + stem, path] + (["--{}-var".format(stem), variable] if variable else [])
        if "TEMPERATURE" in [p.name() for p in self.parameterDefinitions()]:
            path, variable = self.forcing_source(parameters, "TEMPERATURE", context, feedback, True)
            if path:
                args += ["--temperature", path] + (["--temperature-var", variable] if variable else [])
        return args

    def model_args(self, parameters, context):
        """``--models``, ``--objective``, ``--formulation``, ``--calibration-fraction`` and
        ``--warmup-months`` (when set) of :func:`models_parameter`, :func:`objective_parameter`
        and :func:`period_parameters`."""
        models = self.parameterAsEnums(parameters, "MODELS", context) or [0, 1, 2]
        args = [
            "--models",
            ",".join(MODELS[i] for i in sorted(set(models))),
            "--objective",
            OBJECTIVES[self.parameterAsEnum(parameters, "OBJECTIVE", context)].lower(),
            "--formulation",
            FORMULATIONS[self.parameterAsEnum(parameters, "FORMULATION", context)],
            "--calibration-fraction",
            repr(self.parameterAsDouble(parameters, "CALIBRATION_FRACTION", context)),
        ]
        return args + self.optional_args(parameters, context, (("WARMUP_MONTHS", "--warmup-months"),))

    def kge_margin_args(self, parameters, context, name="MODEL_KGE_MARGIN"):
        """``--kge-margin``: absent, the default (0.02); present but empty (a cleared field,
        or ``--MODEL_KGE_MARGIN=`` on the command line): none, every model above the
        threshold."""
        if name in parameters and parameters[name] in (None, ""):
            return ["--kge-margin", "none"]
        return ["--kge-margin", repr(self.parameterAsDouble(parameters, name, context))]

    def forcing_args(self, parameters, context):
        """The backend options of the parameters of :func:`forcing_parameters` that are set."""
        args = []
        for name, stem, _ in FORCINGS:
            value = self.optional_number(parameters, name + "_NODATA", context, integer=False)
            if value is not None:
                args += ["--{}-nodata".format(stem), repr(value)]
            unit = UNITS[self.parameterAsEnum(parameters, name + "_UNITS", context)]
            if unit != "auto":
                args += ["--{}-units".format(stem), unit]
            start = (self.parameterAsString(parameters, name + "_START", context) or "").strip()
            if start:
                args += ["--{}-start".format(stem), start]
        value = self.optional_number(parameters, "TEMPERATURE_NODATA", context, integer=False)
        if value is not None:
            args += ["--temperature-nodata", repr(value)]
        unit = TEMPERATURE_UNITS[self.parameterAsEnum(parameters, "TEMPERATURE_UNITS", context)]
        if unit != "auto":
            args += ["--temperature-units", unit]
        start = (self.parameterAsString(parameters, "TEMPERATURE_START", context) or "").strip()
        if start:
            args += ["--temperature-start", start]
        for name, flag in (("PERIOD_START", "--period-start"), ("PERIOD_END", "--period-end")):
            value = (self.parameterAsString(parameters, name, context) or "").strip()
            if value:
                args += [flag, value]
        return args

    def extent_args(self, parameters, context, name="EXTENT"):
        """``--extent=xmin,xmax,ymin,ymax [CRS]`` for an EXTENT parameter that is set (the
        backend transforms it to the grid's CRS)."""
        if parameters.get(name) in (None, ""):
            return []
        extent = self.parameterAsExtent(parameters, name, context)
        if extent.isNull():
            return []
        crs = self.parameterAsExtentCrs(parameters, name, context)
        text = "{},{},{},{}".format(
            extent.xMinimum(), extent.xMaximum(), extent.yMinimum(), extent.yMaximum()
        )
        if crs.isValid():
            text += " [{}]".format(crs.authid() or crs.toWkt())
        return ["--extent=" + text]

    def forcing_source(self, parameters, name, context, feedback, optional=False):
        """(path, variable) of a forcing raster: a NetCDF variable layer
        (``NETCDF:"file.nc":var``) reaches the backend as its file and variable, so the
        backend reads its time and units; other layers as :meth:`raster_path`."""
        value = parameters.get(name)
        if optional and value in (None, ""):
            return None, None
        direct = _file_path(value) or _netcdf_source(value if isinstance(value, str) else "")
        if direct:
            return direct if isinstance(direct, tuple) else (direct, None)
        layer = self.parameterAsRasterLayer(parameters, name, context)
        if layer is not None:
            found = _netcdf_source(layer.source())
            if found:
                return found
        return self.raster_path(parameters, name, context, feedback, optional), None

    # -- the run -----------------------------------------------------------------------
    def build(self, parameters, context, feedback):
        """Return ``(args, outputs)``: backend options and ``{OUTPUT_NAME: path}``."""
        raise NotImplementedError

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        _MADE.folders = []
        _NO_REPORT[self.id()] = True
        try:
            results = self._process(parameters, context, feedback)
        except BaseException:
            _remove_empty(_MADE.folders)  # a refused or failed run leaves no new folder behind
            raise
        finally:
            _MADE.folders = None
        _NO_REPORT[self.id()] = not results  # a cancel returns no results
        return results

    def hasHtmlOutputs(self):  # noqa: N802 - QGIS API
        """QGIS's dialog says "HTML output has been generated by this algorithm" after every
        run that keeps it open, failed ones too: not after a run of this algorithm that
        failed or was cancelled (the dialog asks its own instance; the run was on a copy)."""
        return super().hasHtmlOutputs() and not _NO_REPORT.get(self.id(), False)

    def _process(self, parameters, context, feedback):
        args, outputs = self.build(parameters, context, feedback)
        try:
            result = run_backend(
                self.COMMAND, args, feedback=feedback, outputs=[p for p in outputs.values() if p]
            )
        except BackendCancelled as exc:
            if feedback is None or not feedback.isCanceled():
                # Stopped from outside (Ctrl-C on qgis_process, a signal to the process
                # group): a script must not carry on as if the outputs were new.
                raise QgsProcessingException(str(exc)) from None
            # A cancel from the dialog is the user's choice, not an error: one line, no
            # traceback, and no results (so no output layers and no "HTML output has been
            # generated").
            feedback.pushInfo(tr("cancelled: no output written"))
            self.after_cancel(parameters, context, feedback)
            _remove_empty(_MADE.folders)
            return {}
        return self.collect(result, outputs, context, feedback)

    def after_cancel(self, parameters, context, feedback):
        """What a cancelled run leaves that a rerun can use (calibrate: its work folder)."""

    def collect(self, result, outputs, context, feedback):
        results = {}
        for name, path in outputs.items():
            if not path:
                continue
            if not os.path.exists(path):
                # An optional output the run had nothing for (the spread of a one-member
                # model): said in the log by the backend; not an output layer QGIS should
                # look for and report as "not correctly generated".
                _not_to_load(context, path)
                continue
            results[name] = path
            style = self.STYLES.get(name)
            if style and os.path.isfile(path):
                styles.style_output(path, style, context, feedback, on_top=name in self.ON_TOP)
            name_by_run(context, path)
        metrics = result.get("metrics") or {}
        for output, key in self.NUMBERS.items():
            results[output] = _number(metrics.get(key))
        for name, value in _flat(metrics):  # every scalar metric, also those not declared
            if name not in results:
                results[name] = value
        return results


def name_by_run(context, path):
    """The layer QGIS loads for the output ``path`` is named by its role and its file ("CWSC
    map (cwsc_1990s)"), or for a temporary output by its role and the time of the run
    ("Calibration KGE (18:23:05)"): three runs are three names, not "Calibration KGE" x3."""
    if context is None or not context.willLoadLayerOnCompletion(path):
        return
    import time

    details = context.layerToLoadOnCompletionDetails(path)
    temporary = os.path.abspath(path).startswith(os.path.abspath(QgsProcessingUtils.tempFolder()))
    which = time.strftime("%H:%M:%S") if temporary else os.path.splitext(os.path.basename(path))[0]
    if which and "(" + which + ")" not in (details.name or ""):
        details.name = "{} ({})".format(details.name or os.path.basename(path), which)


def _not_to_load(context, path):
    if context is None:
        return
    layers = dict(context.layersToLoadOnCompletion())
    for key in [k for k in layers if os.path.abspath(k) == os.path.abspath(path)]:
        del layers[key]
    context.setLayersToLoadOnCompletion(layers)


def _netcdf_source(source):
    """(file, variable) of a GDAL NetCDF subdataset source ``NETCDF:"file.nc":var``, else None."""
    import re

    found = re.match(r'^NETCDF:"?(?P<file>[^"]+?)"?:(?P<var>[^:"]+)$', source or "")
    if found and os.path.isfile(found.group("file")):
        return os.path.abspath(found.group("file")), found.group("var")
    return None


def _file_path(value):
    """The absolute path when ``value`` names a local file (as from qgis_process or a script):
    handed to the backend as it is, without loading it as a layer here (QGIS would compute
    statistics and write a .aux.xml beside the user's file). None otherwise (layer ids,
    layer objects, provider URIs)."""
    if isinstance(value, str) and value and os.path.isfile(value):
        return os.path.abspath(value)
    return None


def _flat(metrics, prefix=""):
    """``{"median_kge": {"DWBM": 0.8}}`` -> ``[("MEDIAN_KGE_DWBM", 0.8)]``; scalars only."""
    out = []
    for key, value in metrics.items():
        name = (prefix + "_" + str(key) if prefix else str(key)).upper().replace(" ", "_")
        if isinstance(value, dict):
            out += _flat(value, name)
        elif value is None or isinstance(value, (int, float, str, bool)):
            out.append((name, value))
    return out


def _number(value):
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return value
    return None


#: The output folders this thread's run made (removed again, when empty, if the run fails).
_MADE = threading.local()
#: algorithm id -> True while its last run wrote no report (failed, cancelled, or running)
_NO_REPORT = {}


def _remove_empty(folders):
    for folder in sorted(folders or (), key=len, reverse=True):
        try:
            os.rmdir(folder)
        except OSError:
            pass


def checked_output(name, path):
    """Create the folder if needed and prove it can be written, before the backend starts."""
    if not path:
        raise QgsProcessingException(tr("{}: no output path given").format(name))
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    missing, up = [], folder
    while up and not os.path.exists(up) and os.path.dirname(up) != up:
        missing.append(up)
        up = os.path.dirname(up)
    try:
        os.makedirs(folder, exist_ok=True)
        if getattr(_MADE, "folders", None) is not None:
            _MADE.folders.extend(missing)
        fd, probe = tempfile.mkstemp(prefix=".cwsc-write-test-", dir=folder)
        os.close(fd)
        os.remove(probe)
    except OSError as exc:
        raise QgsProcessingException(
            tr(
                "{}: the output '{}' cannot be written: the folder '{}' is not writable ({}). "
                "Choose another output path."
            ).format(name, path, folder, exc.strerror or exc)
        ) from None
    if os.path.isdir(path):
        raise QgsProcessingException(tr("{}: '{}' is a folder, not a file name").format(name, path))
    return path


#: Files GIS programs keep beside a raster (statistics, styles, overviews, world files),
#: never inputs themselves.
SIDECARS = (".aux.xml", ".qml", ".sld", ".ovr", ".msk", ".tfw", ".wld", ".prj", ".xml", ".md", ".txt")
#: More bands than this in one predictor file is a series (monthly forcing), not a predictor.
MAX_PREDICTOR_BANDS = 12


def is_sidecar(value):
    """True for a path (a string) to a sidecar file of :data:`SIDECARS`."""
    return isinstance(value, str) and value.lower().endswith(SIDECARS)


def check_predictor_bands(name, path):
    """Refuse a predictor file with more than :data:`MAX_PREDICTOR_BANDS` bands, naming it: a
    360-band monthly raster is not 360 predictors."""
    bands = _raster_bands(path)
    if bands > MAX_PREDICTOR_BANDS:
        raise QgsProcessingException(
            tr(
                "{}: '{}' has {} bands, a series (monthly forcing?) rather than a predictor: a "
                "predictor is a map of one band (or a few); give its mean instead, e.g. the "
                "annual means Prepare forcing & predictors writes"
            ).format(name, os.path.basename(path), bands)
        )


def _raster_bands(path):
    """The number of bands of the raster file ``path`` (0: GDAL cannot open it as a raster)."""
    from qgis.core import QgsDataProvider, QgsProviderRegistry

    provider = QgsProviderRegistry.instance().createProvider("gdal", path, QgsDataProvider.ProviderOptions())
    return provider.bandCount() if provider is not None and provider.isValid() else 0


def local_raster_path(layer, name, context, feedback):
    source = layer.source()
    if layer.providerType() == "gdal" and os.path.isfile(source):
        return os.path.abspath(source)
    missing = _missing_file(layer)
    if missing:
        # Never a temporary copy of what QGIS still holds of it: the user would be asked about
        # a file they never made, without the months of the original.
        raise QgsProcessingException(
            tr(
                "{}: the file of the layer '{}' is gone ('{}'): it was moved, renamed or deleted. "
                "Give the file again, or fix the layer's source (right-click > Change Data Source)."
            ).format(name, layer.name(), missing)
        )
    return write_temporary_geotiff(layer, name, context, feedback)


def _missing_file(layer):
    """The path of a file-based layer whose file no longer exists, else None."""
    if layer.providerType() != "gdal":
        return None
    source = layer.source()
    found = re.match(r'^(?:NETCDF|HDF5|HDF4_SDS|GPKG):"?(?P<file>[^"]+?)"?:', source)
    path = found.group("file") if found else source.split("|")[0]
    if not path or path.startswith(("/vsi", "http://", "https://")) or "://" in path:
        return None
    return None if os.path.exists(path) else path


def write_temporary_geotiff(layer, name, context, feedback):
    """Write a layer that is not a local file (memory, web service, subdataset) to a GeoTIFF."""
    provider = layer.dataProvider()
    if provider is None:
        raise QgsProcessingException(tr("{}: layer '{}' has no data provider").format(name, layer.name()))
    path = QgsProcessingUtils.generateTempFilename("{}.tif".format(name.lower()))
    feedback.pushInfo(
        tr("{}: writing layer '{}' ({}) to the temporary GeoTIFF {}").format(
            name, layer.name(), layer.providerType(), path
        )
    )
    extent = provider.extent()
    if provider.capabilities() & CAPABILITY_SIZE:
        width, height = provider.xSize(), provider.ySize()
    else:  # web services have no native grid: sample 1000 cells along the longer side
        longer = max(extent.width(), extent.height()) or 1.0
        width = max(1, int(round(1000 * extent.width() / longer)))
        height = max(1, int(round(1000 * extent.height() / longer)))
        feedback.pushWarning(
            tr("{}: layer '{}' has no native grid; sampled at {} x {} cells").format(
                name, layer.name(), width, height
            )
        )
    pipe = QgsRasterPipe()
    if not pipe.set(provider.clone()):
        raise QgsProcessingException(tr("{}: cannot read layer '{}'").format(name, layer.name()))
    writer = QgsRasterFileWriter(path)
    writer.setOutputFormat("GTiff")
    writer.setCreateOptions(["COMPRESS=DEFLATE", "TILED=YES"])
    error = writer.writeRaster(pipe, width, height, extent, provider.crs(), context.transformContext())
    if error != WRITER_OK:
        raise QgsProcessingException(
            tr("{}: layer '{}' could not be written to a temporary GeoTIFF (error {})").format(
                name, layer.name(), error
            )
        )
    return path
